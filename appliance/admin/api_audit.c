/*
 * /v1/grants and /v1/audit: who may use whose keys, and what everyone did.
 * Grants are the engine's (engine/manage.h says what each level permits);
 * the audit trail is hash-chained by the store, and verify recomputes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "engine/manage.h"
#include "keel/kmip.h"
#include "store.h"

static int add_grant(void *ctx, const struct keel_grant_info *g)
{
	return json_array_append_new(
	    ctx, json_pack("{s:s, s:s?, s:s, s:s?, s:s, s:I}", "owner", g->owner, "uid",
			   g->uid[0] != '\0' ? g->uid : NULL, "grantee", g->grantee, "level",
			   keel_grant_level_name(g->level), "granted_by", g->granted_by, "time",
			   (json_int_t)g->time));
}

/* A query parameter naming a KMIP client, resolved (admin_kmip_identity); NULL when absent. */
static int query_identity(struct admin_req *rq, const char *param, char out[KEEL_STORE_OWNER_MAX],
			  const char **res)
{
	char *v = admin_query(rq, param);
	int r = v != NULL ? admin_kmip_identity(rq, v, out) : 0;

	*res = v != NULL && r == 0 ? out : NULL;
	free(v);
	return r;
}

int admin_get_grants(struct admin_req *rq)
{
	struct keel_manage_ctx mc = {.actor = rq->who};
	char ob[KEEL_STORE_OWNER_MAX], gb[KEEL_STORE_OWNER_MAX];
	const char *owner, *grantee;
	json_t *grants;
	int r;

	if ((r = query_identity(rq, "owner", ob, &owner)) != 0 ||
	    (r = query_identity(rq, "grantee", gb, &grantee)) != 0) {
		return r;
	}
	grants = json_array();
	r = keel_manage_grants_list(rq->ctx->engine, &mc, owner, grantee, add_grant, grants);
	r = r != 0 ? admin_manage_status(rq, r, &mc)
		   : admin_ok(rq, 200, json_pack("{s:O}", "grants", grants));
	json_decref(grants);
	return r;
}

/* POST /v1/grants and /v1/grants/revoke: {"uid"} or {"owner"}, "grantee", and "level";
 * clients by name or fingerprint. */
static int grant_change(struct admin_req *rq, bool grant)
{
	struct keel_manage_ctx mc = {.actor = rq->who};
	const char *uid, *owner, *grantee, *level = NULL;
	char ob[KEEL_STORE_OWNER_MAX], gb[KEEL_STORE_OWNER_MAX];
	uint32_t l = KEEL_GRANT_USE;
	json_t *body = NULL;
	int r;

	if ((r = admin_body(rq, &body)) != 0 ||
	    (r = admin_field_string(rq, body, "uid", false, &uid)) != 0 ||
	    (r = admin_field_string(rq, body, "owner", false, &owner)) != 0 ||
	    (r = admin_field_string(rq, body, "grantee", true, &grantee)) != 0 ||
	    (grant && (r = admin_field_string(rq, body, "level", false, &level)) != 0)) {
		goto out;
	}
	if ((uid == NULL) == (owner == NULL)) {
		r = admin_fail(rq, 400,
			       "give exactly one of \"uid\" (one key) and \"owner\" "
			       "(every key of a client)");
	} else if (level != NULL && keel_grant_level_parse(level, &l) != 0) {
		r = admin_fail(rq, 400, "level is \"use\" or \"manage\"");
	} else if ((r = admin_kmip_identity(rq, grantee, gb)) == 0 &&
		   (owner == NULL || (r = admin_kmip_identity(rq, owner, ob)) == 0)) {
		owner = owner != NULL ? ob : NULL;
		r = grant ? keel_manage_grant(rq->ctx->engine, &mc, owner, uid, gb, l)
			  : keel_manage_revoke_grant(rq->ctx->engine, &mc, owner, uid, gb);
		r = r != 0 ? admin_manage_status(rq, r, &mc)
			   : admin_ok(rq, grant ? 201 : 200, json_pack("{s:b}", "ok", 1));
	}
out:
	json_decref(body);
	return r;
}

int admin_post_grant(struct admin_req *rq)
{
	return grant_change(rq, true);
}

int admin_post_grant_revoke(struct admin_req *rq)
{
	return grant_change(rq, false);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(out + 2 * i, 3, "%02x", p[i]);
	}
}

static int add_record(void *ctx, const struct keel_store_audit *a)
{
	char h[2 * KEEL_STORE_HASH_LEN + 1];
	const char *reason = keel_manage_enum_name(KMIP_TAG_RESULT_REASON, a->result_reason);

	hex(a->hash, sizeof(a->hash), h);
	return json_array_append_new(
	    ctx,
	    json_pack("{s:I, s:I, s:s, s:s?, s:I, s:s?, s:s?, s:s?, s:s?, s:s}", "id",
		      (json_int_t)a->id, "time", (json_int_t)a->time, "client", a->client,
		      "operation", keel_manage_op_name(a->operation), "operation_code",
		      (json_int_t)a->operation, "uid", a->uid, "result",
		      keel_manage_enum_name(KMIP_TAG_RESULT_STATUS, a->result_status), "reason",
		      a->result_reason != 0 ? reason : NULL, "detail", a->detail, "hash", h));
}

/*
 * Who |*client| acted as in the audit trail: a registered client's name
 * becomes its fingerprint (an administrator's, "cert:" and it, as the admin
 * API records them); anything else stays as given ("local:uid=0").
 */
static void audit_actor(struct admin_req *rq, char **client)
{
	struct keel_store_client c = {0};
	struct keel_store_txn *t = NULL;
	char *as;

	if (*client == NULL || keel_store_begin_read(rq->ctx->store, &t) != 0) {
		return;
	}
	if (keel_store_client_get(t, *client, &c) == 0 &&
	    asprintf(&as, "%s%s", strcmp(c.role, "kmip") == 0 ? "" : "cert:", c.fingerprint) >= 0) {
		free(*client);
		*client = as;
	}
	keel_store_client_cleanup(&c);
	keel_store_rollback(t);
}

/* GET /v1/audit's filter: client, op (a name), uid, since, until, limit (default 100). */
static int audit_filter(struct admin_req *rq, char **strs, struct keel_store_audit_filter *f)
{
	long long since = 0, until = 0, limit = 100;
	int r;

	strs[0] = admin_query(rq, "client");
	audit_actor(rq, &strs[0]);
	strs[1] = admin_query(rq, "uid");
	strs[2] = admin_query(rq, "op");
	if ((r = admin_query_int(rq, "since", &since)) != 0 ||
	    (r = admin_query_int(rq, "until", &until)) != 0 ||
	    (r = admin_query_int(rq, "limit", &limit)) != 0) {
		return r;
	}
	*f = (struct keel_store_audit_filter){.client = strs[0],
					      .uid = strs[1],
					      .has_operation = strs[2] != NULL,
					      .since = since,
					      .until = until,
					      .limit = (size_t)limit};
	if (f->has_operation && keel_manage_op_parse(strs[2], &f->operation) != 0) {
		return admin_fail(rq, 400, "unknown operation \"%s\" (Create, Get, Grant, ...)",
				  strs[2]);
	}
	return 0;
}

int admin_get_audit(struct admin_req *rq)
{
	struct keel_manage_ctx mc = {.actor = rq->who};
	struct keel_store_audit_filter f;
	char *strs[3] = {NULL, NULL, NULL};
	json_t *records = json_array();
	int r;

	if ((r = audit_filter(rq, strs, &f)) == 0) {
		r = keel_manage_audit_show(rq->ctx->engine, &mc, &f, add_record, records);
		r = r != 0 ? admin_manage_status(rq, r, &mc)
			   : admin_ok(rq, 200, json_pack("{s:O}", "records", records));
	}
	json_decref(records);
	for (size_t i = 0; i < 3; i++) {
		free(strs[i]);
	}
	return r;
}

static int hex_digit(char c)
{
	const char *digits = "0123456789abcdef", *p = c != '\0' ? strchr(digits, c | 0x20) : NULL;

	return p != NULL ? (int)(p - digits) : -1;
}

/* "ID:HEX" (as keeld logs anchors and verify reports its head) into *out; -1 if malformed. */
static int parse_anchor(const char *s, struct keel_store_audit_anchor *out)
{
	char *end = NULL;
	long long id = strtoll(s, &end, 10);

	if (end == s || *end != ':' || id <= 0 || strlen(end + 1) != 2 * KEEL_STORE_HASH_LEN) {
		return -1;
	}
	out->id = id;
	for (size_t i = 0; i < KEEL_STORE_HASH_LEN; i++) {
		int hi = hex_digit(end[1 + 2 * i]), lo = hex_digit(end[2 + 2 * i]);

		if (hi < 0 || lo < 0) {
			return -1;
		}
		out->hash[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int admin_get_audit_verify(struct admin_req *rq)
{
	static const char *const faults[] = {[KEEL_AUDIT_INTACT] = "intact",
					     [KEEL_AUDIT_ALTERED] = "altered",
					     [KEEL_AUDIT_MISSING] = "missing",
					     [KEEL_AUDIT_TRUNCATED] = "truncated",
					     [KEEL_AUDIT_ANCHOR] = "anchor mismatch"};
	struct keel_manage_ctx mc = {.actor = rq->who};
	struct keel_store_audit_anchor anchor;
	struct keel_store_audit_check c;
	char *a = admin_query(rq, "anchor"), head[24 + 2 * KEEL_STORE_HASH_LEN];
	int r, n;

	if (a != NULL && parse_anchor(a, &anchor) != 0) {
		free(a);
		return admin_fail(rq, 400, "anchor is ID:HASH, a record id and its 64 hex digits");
	}
	r = keel_manage_audit_verify(rq->ctx->engine, &mc, a != NULL ? &anchor : NULL, &c);
	free(a);
	if (r != 0) {
		return admin_manage_status(rq, r, &mc);
	}
	n = snprintf(head, sizeof(head), "%lld:", (long long)c.head.id);
	hex(c.head.hash, sizeof(c.head.hash), head + n);
	return admin_ok(rq, 200,
			json_pack("{s:b, s:I, s:I, s:s, s:I, s:s}", "intact",
				  c.fault == KEEL_AUDIT_INTACT, "records", (json_int_t)c.num_rows,
				  "bad_records", (json_int_t)c.num_bad, "fault", faults[c.fault],
				  "first_bad_record", (json_int_t)c.first_bad_id, "head", head));
}
