/* JSON decode; oracle in text_oracle.h: TTLV and JSON round trips give identical bytes. */
#include "text_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmip_arena arena;
	struct kmip_node *root;

	kmip_arena_init(&arena, NULL, 0);
	if (kmip_json_decode((const char *)data, size, &kmip_default_limits, &arena, &root) == 0) {
		text_oracle(root, kmip_json_encode, kmip_json_decode);
	}
	kmip_arena_cleanup(&arena);
	return 0;
}
