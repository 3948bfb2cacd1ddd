/*
 * Key management for administrators (manage.h): searches and shows on a
 * store snapshot, lifecycle changes through the KMIP handlers, grants, and
 * the audit trail. Each change commits with its audit row, failed or not.
 */
#include "manage.h"
#include "engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define JSON_MAX (64u << 10) /* one attribute value as JSON */

static const char *const level_names[] = {[KEEL_GRANT_USE] = "use", [KEEL_GRANT_MANAGE] = "manage"};
#define NUM_LEVELS (sizeof(level_names) / sizeof(level_names[0]))

const char *keel_grant_level_name(uint32_t level)
{
	return level < NUM_LEVELS ? level_names[level] : NULL;
}

int keel_grant_level_parse(const char *name, uint32_t *out_level)
{
	for (uint32_t l = 1; name != NULL && l < NUM_LEVELS; l++) {
		if (strcmp(name, level_names[l]) == 0) {
			*out_level = l;
			return 0;
		}
	}
	return -1;
}

const char *keel_manage_enum_name(uint32_t tag, uint32_t value)
{
	const struct kmip_tag_def *def = kmip_tag_def(tag);
	const struct kmip_enum_value *v =
	    def != NULL && def->enum_def != NULL ? kmip_enum_value(def->enum_def, value) : NULL;

	return v != NULL ? v->name : NULL;
}

int keel_manage_enum_parse(uint32_t tag, const char *name, uint32_t *out_value)
{
	const struct kmip_tag_def *def = kmip_tag_def(tag);
	const struct kmip_enum_value *v;

	if (def == NULL || def->enum_def == NULL || name == NULL ||
	    (v = kmip_enum_by_name(def->enum_def, name, strlen(name))) == NULL) {
		return -1;
	}
	*out_value = v->value;
	return 0;
}

/* Operations only administrators perform, named as KMIP names its own. */
static const struct {
	uint32_t operation;
	const char *name;
} admin_ops[] = {
    {KEEL_AUDIT_OP_GRANT, "Grant"},
    {KEEL_AUDIT_OP_REVOKE_GRANT, "RevokeGrant"},
    {KEEL_AUDIT_OP_ROTATE_CRK, "RotateCRK"},
    {KEEL_AUDIT_OP_BACKUP, "Backup"},
    {KEEL_AUDIT_OP_RESTORE, "Restore"},
    {KEEL_AUDIT_OP_ENABLE_MIRROR, "EnableMirror"},
    {KEEL_AUDIT_OP_CRYPTO_SHRED, "CryptoShred"},
    {KEEL_AUDIT_OP_RECOVER, "Recover"},
};
#define NUM_ADMIN_OPS (sizeof(admin_ops) / sizeof(admin_ops[0]))

const char *keel_manage_op_name(uint32_t operation)
{
	for (size_t i = 0; i < NUM_ADMIN_OPS; i++) {
		if (admin_ops[i].operation == operation) {
			return admin_ops[i].name;
		}
	}
	return keel_manage_enum_name(KMIP_TAG_OPERATION, operation);
}

int keel_manage_op_parse(const char *name, uint32_t *out_operation)
{
	for (size_t i = 0; name != NULL && i < NUM_ADMIN_OPS; i++) {
		if (strcmp(admin_ops[i].name, name) == 0) {
			*out_operation = admin_ops[i].operation;
			return 0;
		}
	}
	return keel_manage_enum_parse(KMIP_TAG_OPERATION, name, out_operation);
}

/* Records the failure's message and maps the engine's error to manage.h's. */
static int fail(struct keel_manage_ctx *c, int err, const char *msg)
{
	struct eng_result res;

	eng_result(err, KMIP_V1_4, &res);
	snprintf(c->msg, sizeof(c->msg), "%s", msg != NULL ? msg : res.message);
	switch (err) {
	case ENG_E_ITEM_NOT_FOUND:
	case ENG_E_ATTR_NOT_FOUND:
		return KEEL_MANAGE_E_NOT_FOUND;
	case ENG_E_WRONG_STATE:
	case ENG_E_DESTROYED:
		return KEEL_MANAGE_E_STATE;
	case ENG_E_INVALID_FIELD:
	case ENG_E_MISSING_DATA:
	case ENG_E_OBJECT_TYPE:
		return KEEL_MANAGE_E_INVALID;
	default:
		return KEEL_MANAGE_E_INTERNAL;
	}
}

static int store_fail(struct keel_manage_ctx *c, int serr, const char *what)
{
	if (serr == KEEL_STORE_E_NOT_FOUND) {
		return fail(c, ENG_E_ITEM_NOT_FOUND, NULL);
	}
	keel_err("manage: %s: %s", what, keel_store_strerror(serr));
	return fail(c, ENG_E_INTERNAL, NULL);
}

bool keel_manage_is_fingerprint(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n == 2 * KEEL_FINGERPRINT_LEN && strspn(s, "0123456789abcdef") == n;
}

/* ---- reads ---------------------------------------------------------------- */

/* The first text instance of |name| on |uid|, copied into |buf| ("" when none). */
static const char *first_text(struct keel_store_txn *t, const char *uid, const char *name,
			      char *buf, size_t len)
{
	struct keel_store_attr *attrs = NULL;
	size_t n = 0;

	buf[0] = '\0';
	if (keel_store_attr_list(t, uid, name, &attrs, &n) == 0 && n > 0 && attrs[0].text != NULL) {
		snprintf(buf, len, "%s", attrs[0].text);
	}
	keel_store_attrs_free(attrs, n);
	return buf[0] != '\0' ? buf : NULL;
}

/* Builds |o|'s summary and hands it to |fn|. */
static int summarise(struct keel_store_txn *t, const struct keel_store_object *o, keel_key_fn fn,
		     void *ctx)
{
	char name[256], vm[256], comp[128], ident[128];
	struct keel_key_summary k = {
	    .uid = o->uid,
	    .owner = o->owner,
	    .object_type = o->object_type,
	    .state = o->state,
	    .initial_date = o->initial_date,
	    .activation_date = o->activation_date,
	    .deactivation_date = o->deactivation_date,
	    .destroy_date = o->destroy_date,
	    .name = first_text(t, o->uid, "Name", name, sizeof(name)),
	    .vm_name = first_text(t, o->uid, "x-Name", vm, sizeof(vm)),
	    .component = first_text(t, o->uid, "x-Component", comp, sizeof(comp)),
	    .identifier = first_text(t, o->uid, "x-Identifier", ident, sizeof(ident)),
	};

	return fn(ctx, &k);
}

/* Visits the objects |uids| names until |fn| says stop. */
static int summarise_all(struct keel_store_txn *t, struct keel_manage_ctx *c, char **uids,
			 size_t num, keel_key_fn fn, void *ctx)
{
	for (size_t i = 0; i < num; i++) {
		struct keel_store_object o;
		int err, stop;

		if ((err = keel_store_object_get(t, uids[i], NULL, &o)) != 0) {
			return store_fail(c, err, "reading object");
		}
		stop = summarise(t, &o, fn, ctx);
		keel_store_object_cleanup(&o);
		if (stop != 0) {
			break;
		}
	}
	return 0;
}

int keel_manage_keys_find(struct keel_engine *e, struct keel_manage_ctx *c,
			  const struct keel_key_filter *f, keel_key_fn fn, void *ctx)
{
	struct keel_store_filter flt[16];
	struct keel_store_query q = {.any_owner = true,
				     .owner = f->owner,
				     .has_state = f->has_state,
				     .state = f->state,
				     .filters = flt,
				     .num_filters = f->num_matches,
				     .offset = f->offset,
				     .max_items = f->limit != 0 && f->limit < e->max_locate_items
						      ? f->limit
						      : e->max_locate_items};
	struct keel_store_txn *t;
	char **uids = NULL;
	size_t n = 0;
	int err;

	if (f->num_matches > sizeof(flt) / sizeof(flt[0])) {
		return fail(c, ENG_E_INVALID_FIELD, "too many attribute filters");
	}
	for (size_t i = 0; i < f->num_matches; i++) {
		flt[i] = (struct keel_store_filter){.name = f->matches[i].name,
						    .match = KEEL_STORE_MATCH_EQUAL,
						    .text = f->matches[i].text};
	}
	if ((err = keel_store_begin_read(e->store, &t)) != 0) {
		return store_fail(c, err, "begin");
	}
	if ((err = keel_store_locate(t, &q, &uids, &n)) != 0) {
		err = store_fail(c, err, "searching keys");
	} else {
		err = summarise_all(t, c, uids, n, fn, ctx);
	}
	keel_store_uids_free(uids, n);
	keel_store_rollback(t);
	return err;
}

/* Every attribute of |o| as a 1.4 Get Attributes would list it, in JSON. */
static int show_attrs(struct eng_req *r, const struct keel_store_object *o, keel_key_attr_fn fn,
		      void *ctx)
{
	struct eng_attr_out out = {0};
	struct kmip_text_buf b;
	int err;

	if ((err = attr_emit_object(r, &out, o, NULL)) != 0 ||
	    (err = attr_emit_stored(r, &out, o->uid, NULL)) != 0) {
		return err;
	}
	kmip_text_buf_init(&b, JSON_MAX);
	for (size_t i = 0; i < out.num && err == 0; i++) {
		const struct kmip_attribute *a = &out.v1[i];
		const struct attr_rule *rule =
		    attr_rule_by_name(a->attribute_name, a->attribute_name_len);
		struct kmip_node v = *a->attribute_value;
		char name[128];

		/* Tagged as the attribute itself, the encoding names its enumerations. */
		if (rule != NULL && rule->tag != 0) {
			v.tag = rule->tag;
		}
		kmip_text_buf_reset(&b);
		if (kmip_json_encode(&b, &v) != 0 || b.err != 0) {
			err = ENG_E_INTERNAL;
			break;
		}
		snprintf(name, sizeof(name), "%.*s", (int)a->attribute_name_len, a->attribute_name);
		if (fn(ctx, &(struct keel_key_attr){name, a->attribute_index, b.data}) != 0) {
			break;
		}
	}
	kmip_text_buf_cleanup(&b);
	return err;
}

int keel_manage_key_show(struct keel_engine *e, struct keel_manage_ctx *c, const char *uid,
			 keel_key_fn summary, keel_key_attr_fn attr, void *ctx)
{
	struct kmip_arena arena;
	struct keel_client_identity who = {0};
	struct eng_req r = {.e = e, .who = &who, .arena = &arena, .version = KMIP_V1_4};
	struct keel_store_object o = {0};
	int err;

	kmip_arena_init(&arena, NULL, 0);
	if ((err = keel_store_begin_read(e->store, &r.txn)) != 0) {
		err = store_fail(c, err, "begin");
		goto out;
	}
	if ((err = keel_store_object_get(r.txn, uid, NULL, &o)) != 0) {
		err = store_fail(c, err, "reading object");
	} else if (summarise(r.txn, &o, summary, ctx) == 0 &&
		   (err = show_attrs(&r, &o, attr, ctx)) != 0) {
		err = fail(c, err, NULL);
	}
	keel_store_object_cleanup(&o);
	keel_store_rollback(r.txn);
out:
	kmip_arena_cleanup(&arena);
	return err;
}

/* ---- changes ---------------------------------------------------------------- */

/* Appends the audit row of an administrator's action |operation| that ended in |err|. */
static int audit(struct keel_store_txn *t, struct keel_manage_ctx *c, uint32_t operation,
		 const char *uid, int err, const char *detail)
{
	struct eng_result res;

	eng_result(err, KMIP_V1_4, &res);
	return keel_store_audit_append(t, &(struct keel_store_audit){
					      .time = (int64_t)time(NULL),
					      .client = c->actor,
					      .operation = operation,
					      .uid = uid,
					      .result_status = res.status,
					      .result_reason = res.reason,
					      .detail = detail,
					  });
}

/*
 * Runs KMIP handler |fn| on |payload| as an administrator, in a savepoint so
 * a failure changes nothing but the audit row, which is always written.
 */
static int run_as_admin(struct keel_engine *e, struct keel_manage_ctx *c, uint32_t operation,
			eng_op_fn fn, const void *payload, const char *uid, const char *detail)
{
	struct kmip_arena arena;
	struct keel_client_identity who = {0};
	struct eng_req r;
	void *out = NULL;
	int err = 0, serr;

	if (c->actor == NULL || c->actor[0] == '\0' || uid == NULL) {
		return fail(c, ENG_E_MISSING_DATA, "no administrator or no key named");
	}
	snprintf(who.subject, sizeof(who.subject), "%s", c->actor);
	eng_req_init_admin(&r, e, &who, &arena);
	if ((serr = keel_store_begin(e->store, &r.txn)) != 0) {
		kmip_arena_cleanup(&arena);
		return store_fail(c, serr, "begin");
	}
	if ((serr = keel_store_savepoint(r.txn)) == 0) {
		err = fn(&r, payload, &out);
		serr = err != 0 ? keel_store_savepoint_rollback(r.txn)
				: keel_store_savepoint_release(r.txn);
	}
	if (serr == 0 && (serr = audit(r.txn, c, operation, uid, err, detail)) == 0) {
		serr = keel_store_commit(r.txn);
	} else {
		keel_store_rollback(r.txn);
	}
	if (serr == 0 && err == 0) {
		keel_info("manage: %s: %s %s", c->actor,
			  keel_manage_enum_name(KMIP_TAG_OPERATION, operation), uid);
	}
	err = serr != 0 ? store_fail(c, serr, "committing") : err != 0 ? fail(c, err, r.msg) : 0;
	kmip_arena_cleanup(&arena);
	return err;
}

static struct kmip_unique_identifier_request uid_request(const char *uid)
{
	return (struct kmip_unique_identifier_request){uid, uid != NULL ? strlen(uid) : 0};
}

int keel_manage_key_activate(struct keel_engine *e, struct keel_manage_ctx *c, const char *uid)
{
	struct kmip_unique_identifier_request q = uid_request(uid);

	return run_as_admin(e, c, KMIP_OPERATION_ACTIVATE, op_activate, &q, uid, NULL);
}

static int state_of(void *ctx, const struct keel_key_summary *k)
{
	*(uint32_t *)ctx = k->state;
	return 1; /* the summary is all we need */
}

int keel_manage_key_withdraw(struct keel_engine *e, struct keel_manage_ctx *c, const char *uid,
			     const char *message, bool *out_done)
{
	uint32_t state = 0;
	int err;

	*out_done = false;
	if ((err = keel_manage_key_show(e, c, uid, state_of, NULL, &state)) != 0 ||
	    state == KMIP_STATE_DESTROYED || state == KMIP_STATE_DESTROYED_COMPROMISED) {
		return err;
	}
	if (state == KMIP_STATE_ACTIVE &&
	    (err = keel_manage_key_revoke(
		 e, c, uid, KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION, message)) != 0) {
		return err;
	}
	if ((err = keel_manage_key_destroy(e, c, uid)) == 0) {
		*out_done = true;
	}
	return err;
}

int keel_manage_key_destroy(struct keel_engine *e, struct keel_manage_ctx *c, const char *uid)
{
	struct kmip_unique_identifier_request q = uid_request(uid);

	return run_as_admin(e, c, KMIP_OPERATION_DESTROY, op_destroy, &q, uid, NULL);
}

int keel_manage_key_revoke(struct keel_engine *e, struct keel_manage_ctx *c, const char *uid,
			   uint32_t reason, const char *message)
{
	const char *reason_name = keel_manage_enum_name(KMIP_TAG_REVOCATION_REASON_CODE, reason);
	struct kmip_revocation_reason rr = {reason, message, message != NULL ? strlen(message) : 0};
	struct kmip_revoke_request q = {uid, uid != NULL ? strlen(uid) : 0, &rr, 0, false};
	char detail[256];

	if (reason_name == NULL) {
		return fail(c, ENG_E_INVALID_FIELD, "unknown revocation reason");
	}
	snprintf(detail, sizeof(detail), "reason=%s%s%.180s", reason_name,
		 message != NULL ? " message=" : "", message != NULL ? message : "");
	return run_as_admin(e, c, KMIP_OPERATION_REVOKE, op_revoke, &q, uid, detail);
}

/* ---- grants ------------------------------------------------------------------ */

/*
 * Fills the key of a grant: |uid|'s owner for an object grant, else |owner|.
 * Checks the identities' form (the admin API checks that they are
 * registered). Returns an engine error, with its message in *msg.
 */
static int grant_key(struct keel_store_txn *t, const char *owner, const char *uid,
		     const char *grantee, struct keel_store_grant *g, const char **msg)
{
	struct keel_store_object o;
	int err;

	if (!keel_manage_is_fingerprint(grantee)) {
		*msg = "grantee is not a client fingerprint";
		return ENG_E_INVALID_FIELD;
	}
	snprintf(g->grantee, sizeof(g->grantee), "%s", grantee);
	if (uid != NULL) {
		if ((err = keel_store_object_get(t, uid, NULL, &o)) != 0) {
			return err == KEEL_STORE_E_NOT_FOUND ? ENG_E_ITEM_NOT_FOUND
							     : ENG_E_INTERNAL;
		}
		snprintf(g->owner, sizeof(g->owner), "%s", o.owner);
		snprintf(g->uid, sizeof(g->uid), "%s", uid);
		keel_store_object_cleanup(&o);
	} else if (!keel_manage_is_fingerprint(owner)) {
		*msg = "owner is not a client fingerprint";
		return ENG_E_INVALID_FIELD;
	} else {
		snprintf(g->owner, sizeof(g->owner), "%s", owner);
	}
	if (strcmp(g->owner, g->grantee) == 0) {
		*msg = "the owner needs no grant";
		return ENG_E_INVALID_FIELD;
	}
	return 0;
}

/* Grant (|level| > 0) or revoke a grant: check, change, and audit the attempt, whatever
 * its outcome; a failed one changes nothing else. */
static int change_grant(struct keel_engine *e, struct keel_manage_ctx *c, const char *owner,
			const char *uid, const char *grantee, uint32_t level)
{
	struct keel_store_grant g = {.level = level, .time = (int64_t)time(NULL)};
	const char *lname = keel_grant_level_name(level), *msg = NULL;
	struct keel_store_txn *t;
	char detail[256];
	int err, serr;

	if (c->actor == NULL || c->actor[0] == '\0') {
		return fail(c, ENG_E_MISSING_DATA, "no administrator");
	}
	snprintf(g.granted_by, sizeof(g.granted_by), "%s", c->actor);
	if ((serr = keel_store_begin(e->store, &t)) != 0) {
		return store_fail(c, serr, "begin");
	}
	if ((err = grant_key(t, owner, uid, grantee, &g, &msg)) == 0) {
		serr = level != 0 ? keel_store_grant_put(t, &g)
				  : keel_store_grant_delete(t, g.owner, g.uid, g.grantee);
		err = serr == 0			       ? 0
		      : serr == KEEL_STORE_E_NOT_FOUND ? ENG_E_ITEM_NOT_FOUND
						       : ENG_E_INTERNAL;
		msg = serr == KEEL_STORE_E_NOT_FOUND ? "no such grant" : NULL;
		if (err == ENG_E_INTERNAL) {
			keel_err("manage: writing grant: %s", keel_store_strerror(serr));
		}
	}
	snprintf(detail, sizeof(detail), "owner=%s grantee=%s level=%s", g.owner, g.grantee,
		 lname != NULL ? lname : "none");
	if ((serr = audit(t, c, level != 0 ? KEEL_AUDIT_OP_GRANT : KEEL_AUDIT_OP_REVOKE_GRANT, uid,
			  err, detail)) == 0) {
		serr = keel_store_commit(t);
	} else {
		keel_store_rollback(t);
	}
	if (serr != 0) {
		return store_fail(c, serr, "committing");
	}
	return err != 0 ? fail(c, err, msg) : 0;
}

int keel_manage_grant(struct keel_engine *e, struct keel_manage_ctx *c, const char *owner,
		      const char *uid, const char *grantee, uint32_t level)
{
	if (keel_grant_level_name(level) == NULL) {
		return fail(c, ENG_E_INVALID_FIELD, "grant level is use or manage");
	}
	return change_grant(e, c, owner, uid, grantee, level);
}

int keel_manage_revoke_grant(struct keel_engine *e, struct keel_manage_ctx *c, const char *owner,
			     const char *uid, const char *grantee)
{
	return change_grant(e, c, owner, uid, grantee, 0);
}

int keel_manage_forget_grants(struct keel_engine *e, struct keel_manage_ctx *c,
			      const char *identity, size_t *out_num)
{
	struct keel_store_txn *t;
	char detail[160];
	int serr;

	*out_num = 0;
	if (c->actor == NULL || c->actor[0] == '\0' || !keel_manage_is_fingerprint(identity)) {
		return fail(c, ENG_E_INVALID_FIELD,
			    "no administrator, or not a client fingerprint");
	}
	if ((serr = keel_store_begin(e->store, &t)) != 0) {
		return store_fail(c, serr, "begin");
	}
	if ((serr = keel_store_grant_forget(t, identity, out_num)) == 0) {
		snprintf(detail, sizeof(detail), "every grant of or to %s (%zu)", identity,
			 *out_num);
		serr = audit(t, c, KEEL_AUDIT_OP_REVOKE_GRANT, NULL, 0, detail);
	}
	if (serr == 0) {
		serr = keel_store_commit(t);
	} else {
		keel_store_rollback(t);
	}
	return serr != 0 ? store_fail(c, serr, "forgetting grants") : 0;
}

int keel_manage_grants_list(struct keel_engine *e, struct keel_manage_ctx *c, const char *owner,
			    const char *grantee, keel_grant_fn fn, void *ctx)
{
	struct keel_store_grant *gs = NULL;
	struct keel_store_txn *t;
	size_t n = 0;
	int err;

	if ((err = keel_store_begin_read(e->store, &t)) != 0) {
		return store_fail(c, err, "begin");
	}
	err = keel_store_grant_list(t, owner, grantee, &gs, &n);
	keel_store_rollback(t);
	if (err != 0) {
		return store_fail(c, err, "listing grants");
	}
	for (size_t i = 0; i < n; i++) {
		const struct keel_store_grant *g = &gs[i];

		if (fn(ctx, &(struct keel_grant_info){g->owner, g->uid, g->grantee, g->granted_by,
						      g->level, g->time}) != 0) {
			break;
		}
	}
	free(gs);
	return 0;
}

/* ---- the audit trail ------------------------------------------------------------ */

int keel_manage_audit_show(struct keel_engine *e, struct keel_manage_ctx *c,
			   const struct keel_store_audit_filter *f,
			   int (*fn)(void *ctx, const struct keel_store_audit *row), void *ctx)
{
	struct keel_store_txn *t;
	int err;

	if ((err = keel_store_begin_read(e->store, &t)) != 0) {
		return store_fail(c, err, "begin");
	}
	err = keel_store_audit_scan(t, f, fn, ctx);
	keel_store_rollback(t);
	return err != 0 ? store_fail(c, err, "reading the audit trail") : 0;
}

int keel_manage_audit_verify(struct keel_engine *e, struct keel_manage_ctx *c,
			     const struct keel_store_audit_anchor *anchor,
			     struct keel_store_audit_check *out)
{
	struct keel_store_txn *t;
	int err;

	if ((err = keel_store_begin_read(e->store, &t)) != 0) {
		return store_fail(c, err, "begin");
	}
	err = keel_store_audit_verify(t, anchor, out);
	keel_store_rollback(t);
	if (err != 0) {
		return store_fail(c, err, "verifying the audit trail");
	}
	if (out->fault != KEEL_AUDIT_INTACT) {
		keel_err("manage: %s: audit trail broken at record %lld", c->actor,
			 (long long)out->first_bad_id);
	}
	return 0;
}
