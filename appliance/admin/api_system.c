/* GET /healthz, /metrics, /v1/status: what monitoring and on-call read first. */
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "keel/hsm.h"
#include "keel/metrics.h"
#include "store.h"

/* "ok", or why the token cannot serve: no CRK, or not answering. */
static const char *token_health(const struct admin_ctx *c, uint32_t *out_crk)
{
	int r = hsm_crk_active(c->hsm, out_crk);

	if (r == 0) {
		return "ok";
	}
	*out_crk = 0;
	return hsm_strerror(r);
}

/* Objects and schema version, or the store's error. */
static const char *store_health(const struct admin_ctx *c, int64_t *out_objects, int *out_schema)
{
	struct keel_store_txn *t = NULL;
	int r;

	*out_objects = 0;
	if ((r = keel_store_schema_version(c->store, out_schema)) != 0 ||
	    (r = keel_store_begin(c->store, &t)) != 0) {
		return keel_store_strerror(r);
	}
	r = keel_store_object_count(t, out_objects);
	keel_store_rollback(t);
	return r == 0 ? "ok" : keel_store_strerror(r);
}

int admin_get_healthz(struct admin_req *rq)
{
	uint32_t crk;
	int64_t objects;
	int schema;
	const char *token = token_health(rq->ctx, &crk);
	const char *store = store_health(rq->ctx, &objects, &schema);
	bool ok = strcmp(token, "ok") == 0 && strcmp(store, "ok") == 0;
	json_t *body = json_pack("{s:s, s:s, s:s}", "status", ok ? "ok" : "failing", "token", token,
				 "store", store);

	if (body == NULL || admin_mirror_health(rq->ctx, body) != 0) {
		json_decref(body);
		return admin_fail(rq, 500, "out of memory");
	}
	/* 503 lets a load balancer take a node whose token or store failed out; a
	 * mirror behind does not: KMIP serves without Key Protect. */
	return admin_ok(rq, ok ? 200 : 503, body);
}

int admin_get_metrics(struct admin_req *rq)
{
	if (keel_metrics_render(&rq->text, &rq->text_len) != 0) {
		return admin_fail(rq, 500, "cannot render the metrics");
	}
	rq->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return 200;
}

int admin_get_status(struct admin_req *rq)
{
	const struct admin_ctx *c = rq->ctx;
	uint32_t crk;
	int64_t objects;
	int schema;
	const char *token = token_health(c, &crk);
	const char *store = store_health(c, &objects, &schema);

	return admin_ok(
	    rq, 200,
	    json_pack("{s:s, s:I, s:{s:s, s:s, s:I}, s:{s:s, s:i, s:I}, s:I, s:I}", "version",
		      c->version, "uptime_seconds", (json_int_t)(time(NULL) - c->started), "token",
		      "label", c->token_label, "state", token, "crk_version", (json_int_t)crk,
		      "store", "state", store, "schema_version", schema, "objects",
		      (json_int_t)objects, "clients", (json_int_t)keel_clients_count(c->clients),
		      "connections", (json_int_t)keel_metrics_open_connections()));
}
