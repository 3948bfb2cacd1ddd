/*
 * Placeholder. The engine (KMIP decoding, operations, store, HSM) comes with
 * issue 4's next part. Until then no request can be answered honestly, and a
 * made-up KMIP response would be worse than none: the server is told there
 * is no answer and closes the connection.
 */
#include "engine.h"

#include <stdlib.h>

#include "log.h"

struct keel_engine {
	int unused;
};

int keel_engine_open(const struct keel_engine_config *cfg, struct keel_engine **out_engine)
{
	struct keel_engine *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		return -1;
	}
	*out_engine = e;
	return 0;
}

void keel_engine_close(struct keel_engine *e)
{
	free(e);
}

void keel_engine_handle(void *ctx, const struct keel_client_identity *who, const uint8_t *req,
			size_t req_len, keel_reply_fn reply, void *reply_ctx)
{
	keel_notice("client %s: request of %zu bytes not answered: the KMIP engine is not "
		    "built yet (issue 4)",
		    who->subject, req_len);
	reply(reply_ctx, NULL, 0);
}
