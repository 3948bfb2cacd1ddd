/*
 * POST /v1/recover and GET /v1/recover: recovery from Key Protect
 * (mirror.h, mirror_recovery_*; `keelctl recover --from-keyprotect`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "keel/mirror.h"
#include "log.h"

static const char *state_name(enum mirror_recovery_state s)
{
	switch (s) {
	case MIRROR_RECOVERY_RUNNING:
		return "running";
	case MIRROR_RECOVERY_DONE:
		return "done";
	case MIRROR_RECOVERY_FAILED:
		return "failed";
	default:
		return "idle";
	}
}

static json_t *status_json(const struct mirror_recovery_status *st)
{
	json_t *failures = json_array();
	json_t *out;

	for (size_t i = 0; failures != NULL && i < st->num_failures; i++) {
		if (json_array_append_new(failures,
					  json_pack("{s:s, s:s}", "uid", st->failures[i].uid, "why",
						    st->failures[i].why)) != 0) {
			json_decref(failures);
			failures = NULL;
		}
	}
	out = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*}", "state",
			state_name(st->state), "error",
			st->state == MIRROR_RECOVERY_FAILED ? mirror_strerror(st->error) : "",
			"root_key_id", st->root_key_id, "total", (json_int_t)st->total, "processed",
			(json_int_t)st->processed, "restored", (json_int_t)st->restored, "present",
			(json_int_t)st->present, "failed", (json_int_t)st->failed, "started",
			(json_int_t)st->started, "finished", (json_int_t)st->finished, "failures",
			failures);
	return out;
}

/* The recovery's progress as the answer, with |status|. */
static int answer(struct admin_req *rq, int status)
{
	struct mirror_recovery_status *st = malloc(sizeof(*st));
	int r;

	if (st == NULL) {
		return admin_fail(rq, 500, "out of memory");
	}
	mirror_recovery_status(rq->ctx->recovery, st);
	r = admin_ok(rq, status, status_json(st));
	free(st);
	return r;
}

int admin_get_recover(struct admin_req *rq)
{
	return rq->ctx->recovery != NULL ? answer(rq, 200) : admin_mirror_not_configured(rq);
}

int admin_post_recover(struct admin_req *rq)
{
	char *force = admin_query(rq, "force");
	bool forced = force != NULL && strcmp(force, "true") == 0;
	const char *why = "";
	char detail[96];
	int r;

	free(force);
	if (rq->ctx->recovery == NULL) {
		return admin_mirror_not_configured(rq);
	}
	if ((r = mirror_recovery_start(rq->ctx->recovery, forced, &why)) != 0) {
		keel_warn("admin: %s's recovery from Key Protect refused: %s", rq->who, why);
		return admin_fail(rq,
				  r == MIRROR_E_UNAVAILABLE || r == MIRROR_E_AUTH     ? 502
				  : r == MIRROR_E_CONFLICT || r == MIRROR_E_NOT_FOUND ? 409
										      : 500,
				  "refused: %s", why);
	}
	snprintf(detail, sizeof(detail), "started from Key Protect%s", forced ? " (forced)" : "");
	keel_notice("admin: %s %s", rq->who, detail);
	admin_audit(rq, KEEL_AUDIT_OP_RECOVER, detail);
	return answer(rq, 202);
}
