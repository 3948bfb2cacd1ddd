/* GET /v1/mirror, POST /v1/mirror/enable and /v1/mirror/sync: the Key Protect mirror. */
#include <stdio.h>

#include "admin_int.h"
#include "keel/mirror.h"
#include "log.h"

static const char *mode_name(enum mirror_root_mode mode)
{
	switch (mode) {
	case MIRROR_ROOT_IMPORTED:
		return "imported";
	case MIRROR_ROOT_GENERATED:
		return "generated";
	case MIRROR_ROOT_ADOPTED:
		return "adopted";
	default:
		return "none";
	}
}

/* "disabled" (not configured, or never enabled), "crypto-shredded",
 * "suspended", "ok", or the last error. */
static const char *state_name(const struct mirror_service_status *st)
{
	if (!st->enabled) {
		return "disabled";
	}
	if (st->shredded != 0) {
		return "crypto-shredded";
	}
	if (st->suspended) {
		return "suspended";
	}
	return st->last_error != 0 ? mirror_strerror(st->last_error) : "ok";
}

/* How the root key rotates with the CRK, in the mode it was mirrored in. */
static const char *rotation_name(const struct mirror_service_status *st)
{
	if (st->mode == MIRROR_ROOT_GENERATED) {
		return "with the CRK: Key Protect makes each new root key version (the CRK "
		       "stays in the token)";
	}
	if (st->mode == MIRROR_ROOT_ADOPTED) {
		return "with the CRK when Key Protect generated it (a recovery's root key)";
	}
	return st->mode == MIRROR_ROOT_IMPORTED ? "with the CRK: each new CRK version is "
						  "imported as the root key's new version"
						: "";
}

static json_t *status_json(const struct mirror_service_status *st)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:s}",
			 "state", state_name(st), "mode", mode_name(st->mode), "rotation",
			 rotation_name(st), "root_key_id", st->root_key_id, "root_version",
			 st->root_version, "crk_version", (json_int_t)st->crk_version,
			 "token_crk_version", (json_int_t)st->token_crk_version, "in_step",
			 st->crk_version == st->token_crk_version, "backlog",
			 (json_int_t)st->backlog, "rewraps", (json_int_t)st->rewraps, "escrowed",
			 (json_int_t)st->escrowed, "last_success", (json_int_t)st->last_success,
			 "last_error", st->last_error != 0 ? mirror_strerror(st->last_error) : "");
}

int admin_mirror_not_configured(struct admin_req *rq)
{
	return admin_fail(rq, 409,
			  "the mirror is not configured (keeld.conf has no mirror section)");
}

int admin_get_mirror(struct admin_req *rq)
{
	struct mirror_service_status st = {0};

	if (rq->ctx->mirror != NULL) {
		mirror_service_status(rq->ctx->mirror, &st);
	}
	return admin_ok(rq, 200, status_json(&st));
}

int admin_post_mirror_enable(struct admin_req *rq)
{
	struct mirror_root root;
	bool already = false;
	char detail[MIRROR_ID_LEN + 32];
	int r;

	if (rq->ctx->mirror == NULL) {
		return admin_mirror_not_configured(rq);
	}
	if ((r = mirror_service_enable(rq->ctx->mirror, &root, &already)) != 0) {
		return admin_fail(rq, r == MIRROR_E_UNAVAILABLE || r == MIRROR_E_AUTH ? 502 : 500,
				  "Key Protect: %s (see keeld's log)", mirror_strerror(r));
	}
	if (!already) {
		keel_notice("admin: %s enabled the mirror: root key %s (%s)", rq->who, root.key.id,
			    mode_name(root.mode));
		snprintf(detail, sizeof(detail), "root key %s, %s", root.key.id,
			 mode_name(root.mode));
		admin_audit(rq, KEEL_AUDIT_OP_ENABLE_MIRROR, detail);
	}
	return admin_ok(rq, already ? 200 : 201,
			json_pack("{s:s, s:s, s:I, s:b}", "root_key_id", root.key.id, "mode",
				  mode_name(root.mode), "crk_version", (json_int_t)root.crk_version,
				  "already", already));
}

int admin_post_mirror_sync(struct admin_req *rq)
{
	if (rq->ctx->mirror == NULL) {
		return admin_mirror_not_configured(rq);
	}
	if (!mirror_service_sync(rq->ctx->mirror)) {
		return admin_fail(rq, 409, "the mirror is not enabled (keelctl mirror enable)");
	}
	return admin_ok(rq, 202, json_object());
}

int admin_mirror_health(const struct admin_ctx *c, json_t *health)
{
	struct mirror_service_status st = {0};

	if (c->mirror != NULL) {
		mirror_service_status(c->mirror, &st);
	}
	if (json_object_set_new(health, "mirror", json_string(state_name(&st))) != 0) {
		return -1;
	}
	if (!st.enabled) {
		return 0;
	}
	return json_object_set_new(health, "mirror_backlog", json_integer(st.backlog)) != 0 ||
		       json_object_set_new(health, "mirror_last_success",
					   json_integer(st.last_success)) != 0
		   ? -1
		   : 0;
}
