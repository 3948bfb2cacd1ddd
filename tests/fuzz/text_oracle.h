/*
 * The oracle the text-encoding harnesses share. A tree decoded from text
 * must encode to TTLV (unless it holds a test-case placeholder), that TTLV
 * must decode and re-encode to the identical bytes, and the tree's text must
 * decode back to the identical TTLV too. Anything else aborts.
 */
#ifndef KEEL_FUZZ_TEXT_ORACLE_H
#define KEEL_FUZZ_TEXT_ORACLE_H

#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"

typedef int (*text_encode_fn)(struct kmip_text_buf *b, const struct kmip_node *n);
typedef int (*text_decode_fn)(const char *text, size_t len, const struct kmip_limits *lim,
			      struct kmip_arena *a, struct kmip_node **out);

/* TTLV of |n| into |w|: 0, or KMIP_E_PLACEHOLDER; any other failure is a bug. */
static int oracle_ttlv(struct kmip_writer *w, const struct kmip_node *n, const uint8_t **out,
		       size_t *out_len)
{
	int err;

	kmip_writer_init(w, kmip_default_limits.max_message_len);
	kmip_encode_tree(w, n);
	err = kmip_writer_finish(w, out, out_len);
	if (err != 0 && err != KMIP_E_PLACEHOLDER) {
		abort();
	}
	return err;
}

static void oracle_same_ttlv(const struct kmip_node *n, const uint8_t *expect, size_t len)
{
	struct kmip_writer w;
	const uint8_t *bytes;
	size_t n_len;

	if (oracle_ttlv(&w, n, &bytes, &n_len) != 0 || n_len != len ||
	    memcmp(bytes, expect, len) != 0) {
		abort();
	}
	kmip_writer_cleanup(&w);
}

static void text_oracle(const struct kmip_node *root, text_encode_fn encode, text_decode_fn decode)
{
	struct kmip_arena arena;
	struct kmip_text_buf text;
	struct kmip_writer w;
	struct kmip_node *tree;
	const uint8_t *bytes;
	size_t len;

	if (oracle_ttlv(&w, root, &bytes, &len) != 0) {
		kmip_writer_cleanup(&w);
		return;
	}
	kmip_arena_init(&arena, NULL, 0);
	kmip_text_buf_init(&text, 64u << 20);
	if (kmip_decode_tree(bytes, len, &kmip_default_limits, &arena, &tree) != 0) {
		abort();
	}
	oracle_same_ttlv(tree, bytes, len);
	/* XML cannot carry control characters (KMIP_E_RANGE); nothing else may fail. */
	if (encode(&text, tree) == 0) {
		if (decode(text.data, text.len, &kmip_default_limits, &arena, &tree) != 0) {
			abort();
		}
		oracle_same_ttlv(tree, bytes, len);
	} else if (text.err != 0) {
		abort();
	}
	kmip_text_buf_cleanup(&text);
	kmip_arena_cleanup(&arena);
	kmip_writer_cleanup(&w);
}

#endif
