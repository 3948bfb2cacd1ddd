/*
 * Helpers for the text-encoding tests: comparing trees, and standing
 * concrete values in for test-case placeholders so a tree can go through
 * TTLV and come back with its placeholders.
 */
#ifndef KEEL_TEST_TEXT_UTIL_H
#define KEEL_TEST_TEXT_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "keel/kmip.h"

/*
 * True when the trees carry the same items; otherwise false with the first
 * difference described in |why|. A placeholder equals only the same placeholder.
 */
bool tu_tree_equal(const struct kmip_node *a, const struct kmip_node *b, char *why, size_t why_len);

/* One placeholder that a concrete value stands in for, by the node's pre-order position. */
struct tu_placeholder {
	size_t index;
	const char *text;
};

struct tu_placeholders {
	struct tu_placeholder *items;
	size_t num;
	size_t cap;
};

/*
 * Replaces every placeholder under |root| with a concrete value of the
 * node's type (its position, so each is distinct), recording it in |map|.
 * Byte values come from |arena|. 0 or KMIP_E_NOMEM.
 */
int tu_bind_placeholders(struct kmip_node *root, struct kmip_arena *arena,
			 struct tu_placeholders *map);

/*
 * Puts the placeholders of |map| back into a tree of the same shape, first
 * checking that each position still holds the value bound there: 0, or
 * KMIP_E_PLACEHOLDER when a position's value did not survive.
 */
int tu_restore_placeholders(struct kmip_node *root, const struct tu_placeholders *map);

void tu_placeholders_free(struct tu_placeholders *map);

/* A decoding arena and an output buffer: cmocka setup/teardown for one test. */
struct tu_fixture {
	struct kmip_arena arena;
	struct kmip_text_buf out;
};

int tu_setup(void **state);
int tu_teardown(void **state);

/* Reads a whole file into a NUL-terminated heap buffer; NULL on failure. */
char *tu_read_file(const char *path, size_t *out_len);

#endif
