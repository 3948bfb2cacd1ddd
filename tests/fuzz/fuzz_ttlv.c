/*
 * TTLV decode. Oracle: whatever decodes re-encodes to the identical bytes,
 * since the reader accepts only the canonical form (exact lengths, zero
 * padding, 0/1 Booleans).
 */
#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t storage[8192];
	struct kmip_arena arena;
	struct kmip_node *root;
	struct kmip_writer w;
	const uint8_t *out;
	size_t out_len;

	kmip_arena_init(&arena, storage, sizeof(storage));
	if (kmip_decode_tree(data, size, &kmip_default_limits, &arena, &root) == 0) {
		kmip_writer_init(&w, size);
		kmip_encode_tree(&w, root);
		if (kmip_writer_finish(&w, &out, &out_len) != 0 || out_len != size ||
		    memcmp(out, data, size) != 0) {
			abort();
		}
		kmip_writer_cleanup(&w);
	}
	kmip_arena_cleanup(&arena);
	return 0;
}
