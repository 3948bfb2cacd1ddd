/*
 * /v1/keys, /v1/grants and /v1/audit: administrators find a VM's key, read
 * its attributes (never its material), change its state, share keys between
 * identities and read and verify the audit trail. The work is the engine's
 * (engine/manage.h); this file turns JSON and query strings into its calls
 * and its answers into JSON. Every change is audited there under rq->who.
 */
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "engine/manage.h"
#include "keel/kmip.h"
#include "store.h"

#define MAX_MATCHES 8 /* attr=NAME=VALUE filters in one search */

int admin_manage_status(struct admin_req *rq, int err, const struct keel_manage_ctx *mc)
{
	static const int status[] = {[-KEEL_MANAGE_E_NOT_FOUND] = 404,
				     [-KEEL_MANAGE_E_INVALID] = 400,
				     [-KEEL_MANAGE_E_STATE] = 409,
				     [-KEEL_MANAGE_E_INTERNAL] = 500};

	if (err >= 0 || (size_t)-err >= sizeof(status) / sizeof(status[0])) {
		return admin_fail(rq, 500, "internal error");
	}
	return admin_fail(rq, status[-err], "%s", mc->msg);
}

int admin_kmip_identity(struct admin_req *rq, const char *id, char out[KEEL_STORE_OWNER_MAX])
{
	struct keel_store_client c = {0};
	struct keel_store_txn *t = NULL;
	int r;

	if ((r = keel_store_begin_read(rq->ctx->store, &t)) == 0) {
		r = keel_store_client_get(t, id, &c);
		keel_store_rollback(t);
	}
	if (r == KEEL_STORE_E_NOT_FOUND && keel_manage_is_fingerprint(id)) {
		snprintf(out, KEEL_STORE_OWNER_MAX, "%s", id); /* not pinned: chains to a CA */
		return 0;
	}
	if (r != 0) {
		return r == KEEL_STORE_E_NOT_FOUND
			   ? admin_fail(rq, 404, "no client %s", id)
			   : admin_fail(rq, 500, "store: %s", keel_store_strerror(r));
	}
	if (strcmp(c.role, "kmip") != 0) {
		r = admin_fail(rq, 400, "%s is registered as %s, not as a KMIP client", id, c.role);
	} else {
		snprintf(out, KEEL_STORE_OWNER_MAX, "%s", c.fingerprint);
	}
	keel_store_client_cleanup(&c);
	return r;
}

/* A non-negative integer query parameter; *out unchanged when absent. */
int admin_query_int(struct admin_req *rq, const char *name, long long *out)
{
	char *v = admin_query(rq, name), *end = NULL;
	long long n;

	if (v == NULL) {
		return 0;
	}
	n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < 0) {
		free(v);
		return admin_fail(rq, 400, "query parameter \"%s\" must be a non-negative integer",
				  name);
	}
	free(v);
	*out = n;
	return 0;
}

static json_t *summary_json(const struct keel_key_summary *k)
{
	const char *type = keel_manage_enum_name(KMIP_TAG_OBJECT_TYPE, k->object_type);
	const char *state = keel_manage_enum_name(KMIP_TAG_STATE, k->state);

	return json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:I, s:I, s:I, s:s?, s:s?, s:s?, s:s?}",
			 "uid", k->uid, "owner", k->owner, "object_type", type, "state", state,
			 "initial_date", (json_int_t)k->initial_date, "activation_date",
			 (json_int_t)k->activation_date, "deactivation_date",
			 (json_int_t)k->deactivation_date, "destroy_date",
			 (json_int_t)k->destroy_date, "name", k->name, "vm_name", k->vm_name,
			 "component", k->component, "identifier", k->identifier);
}

static int add_key(void *ctx, const struct keel_key_summary *k)
{
	json_t *j = summary_json(k);

	return j == NULL || json_array_append_new(ctx, j) != 0 ? -1 : 0;
}

/* Every attr=NAME=VALUE of the query, in order, into |m| (strings in |kv|). */
static int collect_matches(struct admin_req *rq, struct evkeyvalq *kv, struct keel_key_match *m,
			   size_t *num)
{
	struct evkeyval *h;

	*num = 0;
	TAILQ_FOREACH(h, kv, next)
	{
		char *eq = strchr(h->value, '=');

		if (strcmp(h->key, "attr") != 0) {
			continue;
		}
		if (eq == NULL || eq == h->value || *num == MAX_MATCHES) {
			return admin_fail(rq, 400, "attr is NAME=VALUE, at most %d of them",
					  MAX_MATCHES);
		}
		*eq = '\0';
		m[(*num)++] = (struct keel_key_match){h->value, eq + 1};
	}
	return 0;
}

/* The filter of GET /v1/keys: client, state, name, attr, offset, limit. */
static int key_filter(struct admin_req *rq, struct evkeyvalq *kv, struct keel_key_match *m,
		      char owner[KEEL_STORE_OWNER_MAX], struct keel_key_filter *f)
{
	const char *state = evhttp_find_header(kv, "state"), *name = evhttp_find_header(kv, "name");
	const char *client = evhttp_find_header(kv, "client");
	long long offset = 0, limit = 0;
	size_t n;
	int r;

	if ((client != NULL && (r = admin_kmip_identity(rq, client, owner)) != 0) ||
	    (r = collect_matches(rq, kv, m, &n)) != 0 ||
	    (r = admin_query_int(rq, "offset", &offset)) != 0 ||
	    (r = admin_query_int(rq, "limit", &limit)) != 0) {
		return r;
	}
	if (name != NULL && n < MAX_MATCHES) {
		m[n++] = (struct keel_key_match){"Name", name};
	}
	f->owner = client != NULL ? owner : NULL;
	f->matches = m;
	f->num_matches = n;
	f->offset = (size_t)offset;
	f->limit = (size_t)limit;
	f->has_state = state != NULL;
	if (f->has_state && keel_manage_enum_parse(KMIP_TAG_STATE, state, &f->state) != 0) {
		return admin_fail(rq, 400, "unknown state \"%s\" (PreActive, Active, ...)", state);
	}
	return 0;
}

int admin_get_keys(struct admin_req *rq)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(rq->http));
	struct keel_manage_ctx mc = {.actor = rq->who};
	struct keel_key_match m[MAX_MATCHES + 1];
	struct keel_key_filter f = {0};
	char owner[KEEL_STORE_OWNER_MAX];
	struct evkeyvalq kv;
	json_t *keys = json_array();
	int r;

	TAILQ_INIT(&kv);
	if (q != NULL && evhttp_parse_query_str(q, &kv) != 0) {
		r = admin_fail(rq, 400, "malformed query string");
	} else if ((r = key_filter(rq, &kv, m, owner, &f)) == 0) {
		r = keel_manage_keys_find(rq->ctx->engine, &mc, &f, add_key, keys);
		r = r != 0 ? admin_manage_status(rq, r, &mc)
			   : admin_ok(rq, 200, json_pack("{s:O}", "keys", keys));
	}
	evhttp_clear_headers(&kv);
	json_decref(keys);
	return r;
}

struct shown {
	json_t *key, *attrs;
};

static int show_summary(void *ctx, const struct keel_key_summary *k)
{
	struct shown *s = ctx;

	return (s->key = summary_json(k)) != NULL ? 0 : -1;
}

static int show_attr(void *ctx, const struct keel_key_attr *a)
{
	struct shown *s = ctx;
	json_t *value = json_loads(a->json, 0, NULL);

	return json_array_append_new(s->attrs, json_pack("{s:s, s:i, s:o?}", "name", a->name,
							 "index", (int)a->index, "value", value));
}

int admin_get_key(struct admin_req *rq)
{
	struct keel_manage_ctx mc = {.actor = rq->who};
	struct shown s = {NULL, json_array()};
	int r;

	r = keel_manage_key_show(rq->ctx->engine, &mc, rq->params[0], show_summary, show_attr, &s);
	if (r == 0 && s.key != NULL) {
		r = admin_ok(rq, 200, json_pack("{s:o, s:o}", "key", s.key, "attributes", s.attrs));
	} else {
		json_decref(s.key);
		json_decref(s.attrs);
		r = admin_manage_status(rq, r != 0 ? r : KEEL_MANAGE_E_INTERNAL, &mc);
	}
	return r;
}

/* A change's answer: the key as it is now (what a destroyed key protected). */
static int changed(struct admin_req *rq, int err, struct keel_manage_ctx *mc)
{
	struct shown s = {NULL, json_array()};

	if (err != 0) {
		json_decref(s.attrs);
		return admin_manage_status(rq, err, mc);
	}
	err = keel_manage_key_show(rq->ctx->engine, mc, rq->params[0], show_summary, show_attr, &s);
	json_decref(s.attrs);
	if (err != 0 || s.key == NULL) {
		return admin_manage_status(rq, err != 0 ? err : KEEL_MANAGE_E_INTERNAL, mc);
	}
	return admin_ok(rq, 200, json_pack("{s:o}", "key", s.key));
}

int admin_post_key_activate(struct admin_req *rq)
{
	struct keel_manage_ctx mc = {.actor = rq->who};

	return changed(rq, keel_manage_key_activate(rq->ctx->engine, &mc, rq->params[0]), &mc);
}

int admin_post_key_destroy(struct admin_req *rq)
{
	struct keel_manage_ctx mc = {.actor = rq->who};

	return changed(rq, keel_manage_key_destroy(rq->ctx->engine, &mc, rq->params[0]), &mc);
}

int admin_post_key_revoke(struct admin_req *rq)
{
	struct keel_manage_ctx mc = {.actor = rq->who};
	const char *reason, *message;
	json_t *body = NULL;
	uint32_t code;
	int r;

	if ((r = admin_body(rq, &body)) != 0 ||
	    (r = admin_field_string(rq, body, "reason", true, &reason)) != 0 ||
	    (r = admin_field_string(rq, body, "message", false, &message)) != 0) {
		json_decref(body);
		return r;
	}
	if (keel_manage_enum_parse(KMIP_TAG_REVOCATION_REASON_CODE, reason, &code) != 0) {
		r = admin_fail(rq, 400,
			       "unknown reason \"%s\" (Unspecified, KeyCompromise, CACompromise, "
			       "AffiliationChanged, Superseded, CessationOfOperation, "
			       "PrivilegeWithdrawn)",
			       reason);
	} else {
		r = changed(
		    rq, keel_manage_key_revoke(rq->ctx->engine, &mc, rq->params[0], code, message),
		    &mc);
	}
	json_decref(body);
	return r;
}
