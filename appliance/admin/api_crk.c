/* GET /v1/crk and POST /v1/crk/rotate: the customer root key's versions and its rotation. */
#include <stdio.h>

#include "admin_int.h"
#include "keel/mirror.h"
#include "log.h"
#include "rotation.h"
#include "store.h"

static json_t *version_json(const struct keel_rotation_version *v)
{
	char kcv[2 * HSM_KCV_LEN + 1] = "";

	if (v->has_kcv) {
		snprintf(kcv, sizeof(kcv), "%02x%02x%02x", v->kcv[0], v->kcv[1], v->kcv[2]);
	}
	return json_pack("{s:I, s:b, s:b, s:s, s:s, s:I}", "version", (json_int_t)v->version,
			 "in_token", v->in_token, "active", v->active, "created", v->created, "kcv",
			 kcv, "objects", (json_int_t)v->objects);
}

/* "none", "running", "complete", or "stopped" (a sweep that could not rewrap everything). */
static const char *rotation_state(const struct keel_rotation_status *st)
{
	if (st->running) {
		return "running";
	}
	if (!st->has_progress) {
		return "none";
	}
	return st->progress.finished != 0 ? "complete" : "stopped";
}

static json_t *status_json(const struct keel_rotation_status *st)
{
	const struct keel_store_rotation *p = &st->progress;
	json_t *versions = json_array();

	for (size_t i = 0; versions != NULL && i < st->num_versions; i++) {
		if (json_array_append_new(versions, version_json(&st->versions[i])) != 0) {
			json_decref(versions);
			return NULL;
		}
	}
	return json_pack("{s:I, s:o, s:{s:s, s:I, s:I, s:I, s:I, s:I, s:I}}", "active",
			 (json_int_t)st->active, "versions", versions, "rotation", "state",
			 rotation_state(st), "target", (json_int_t)p->target, "total",
			 (json_int_t)p->total, "done", (json_int_t)p->done, "skipped",
			 (json_int_t)st->skipped, "started", (json_int_t)p->started, "finished",
			 (json_int_t)p->finished);
}

int admin_get_crk(struct admin_req *rq)
{
	struct keel_rotation_status st;
	json_t *body;

	if (keel_rotation_status(rq->ctx->rotation, &st) != 0) {
		return admin_fail(rq, 503, "cannot read the CRK status (see keeld's log)");
	}
	body = status_json(&st);
	keel_rotation_status_cleanup(&st);
	if (body == NULL) {
		return admin_fail(rq, 500, "out of memory");
	}
	return admin_ok(rq, 200, body);
}

int admin_post_crk_rotate(struct admin_req *rq)
{
	uint32_t version = 0;
	char detail[32];
	int err = keel_rotation_start(rq->ctx->rotation, &version);

	switch (err) {
	case 0:
		keel_info("admin: %s started a CRK rotation to version %u", rq->who, version);
		snprintf(detail, sizeof(detail), "version %u", version);
		admin_audit(rq, KEEL_AUDIT_OP_ROTATE_CRK, detail);
		if (rq->ctx->mirror != NULL) {
			/* Generated mode: Key Protect's root key follows at once. */
			(void)mirror_service_sync(rq->ctx->mirror);
		}
		return admin_ok(rq, 202, json_pack("{s:I}", "version", (json_int_t)version));
	case KEEL_ROT_E_RUNNING:
		return admin_fail(rq, 409, "%s", keel_rotation_strerror(err));
	case KEEL_ROT_E_MIRROR:
		return admin_fail(rq, 502, "%s (see keeld's log)", keel_rotation_strerror(err));
	case KEEL_ROT_E_NO_CRK:
	case KEEL_ROT_E_HSM:
		return admin_fail(rq, 503, "%s", keel_rotation_strerror(err));
	default:
		return admin_fail(rq, 500, "%s", keel_rotation_strerror(err));
	}
}
