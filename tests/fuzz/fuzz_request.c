/*
 * Typed message decode, requests and responses. Oracle: a message that
 * decodes re-encodes from its typed form to the identical bytes, because the
 * decoder accepts fields only in descriptor order and the encoder writes them
 * in that order.
 */
#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(struct kmip_writer *w, int enc_err, const uint8_t *data, size_t size)
{
	const uint8_t *out;
	size_t out_len;

	if (enc_err != 0 || kmip_writer_finish(w, &out, &out_len) != 0 || out_len != size ||
	    memcmp(out, data, size) != 0) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmip_arena arena;
	struct kmip_request_message *req;
	struct kmip_response_message *resp;
	struct kmip_decode_error where = {0};
	struct kmip_writer w;

	kmip_arena_init(&arena, NULL, 0);
	if (kmip_request_decode(data, size, &kmip_default_limits, &arena, &req, &where) == 0) {
		kmip_writer_init(&w, size);
		check_same(&w, kmip_request_encode(&w, req), data, size);
		kmip_writer_cleanup(&w);
	}
	kmip_arena_cleanup(&arena);

	kmip_arena_init(&arena, NULL, 0);
	memset(&where, 0, sizeof(where));
	if (kmip_response_decode(data, size, &kmip_default_limits, &arena, &resp, &where) == 0) {
		kmip_writer_init(&w, size);
		check_same(&w, kmip_response_encode(&w, resp), data, size);
		kmip_writer_cleanup(&w);
	}
	kmip_arena_cleanup(&arena);
	return 0;
}
