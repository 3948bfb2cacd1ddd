/*
 * The KMIP engine's entry point, shaped as a keel_request_fn so that the
 * server can call it on a worker thread today and, once keeld is split in
 * two processes, a stub can forward the same call over a socket pair.
 */
#ifndef KEEL_ENGINE_H
#define KEEL_ENGINE_H

#include "keel/request.h"

/* Answers one framed KMIP request from |who| through |reply|. |ctx| is the
 * engine's state (NULL for now). */
void keel_engine_handle(void *ctx, const struct keel_client_identity *who, const uint8_t *req,
			size_t req_len, keel_reply_fn reply, void *reply_ctx);

#endif
