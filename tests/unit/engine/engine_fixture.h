/* Engine tests' fixture: a SoftHSM2 token with a CRK, a temporary store, and a
 * synchronous reply callback that keeps the response bytes. */
#ifndef KEEL_ENGINE_FIXTURE_H
#define KEEL_ENGINE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "keel/kmip.h"

struct engine_fx {
	struct softhsm_fixture *hsm_fx;
	struct hsm *hsm;
	char db_dir[64];
	char db_path[128];
	struct keel_engine *e;
	struct keel_client_identity alice, bob;
	uint8_t *resp;
	size_t resp_len;
	int replies;
	struct kmip_arena arena;
	struct kmip_response_message *msg;
	/* Called once, then cleared, between a request's preparation and its turn. */
	void (*between)(struct engine_fx *f);
};

struct engine_fx *engine_fx_new(void);
void engine_fx_free(struct engine_fx *f);
/* Sends |req| as |who|; decodes the response into f->msg (asserts it decodes). */
void engine_fx_send(struct engine_fx *f, const struct keel_client_identity *who, const uint8_t *req,
		    size_t len);

#endif
