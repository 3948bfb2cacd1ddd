/* Test helpers for the text encodings: tree equality and placeholder binding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text_util.h"

static bool values_equal(const struct kmip_node *a, const struct kmip_node *b)
{
	switch (a->type) {
	case KMIP_TYPE_INTEGER:
		return a->v.i32 == b->v.i32;
	case KMIP_TYPE_ENUMERATION:
	case KMIP_TYPE_INTERVAL:
		return a->v.u32 == b->v.u32;
	case KMIP_TYPE_LONG_INTEGER:
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		return a->v.i64 == b->v.i64;
	case KMIP_TYPE_BOOLEAN:
		return a->v.b == b->v.b;
	case KMIP_TYPE_STRUCTURE:
		return true;
	default:
		return a->len == b->len &&
		       (a->len == 0 || memcmp(a->v.bytes, b->v.bytes, a->len) == 0);
	}
}

static bool node_equal(const struct kmip_node *a, const struct kmip_node *b, char *why,
		       size_t why_len)
{
	if (a->tag != b->tag || a->type != b->type) {
		snprintf(why, why_len, "item 0x%06X type %u vs 0x%06X type %u", (unsigned)a->tag,
			 a->type, (unsigned)b->tag, b->type);
		return false;
	}
	if ((a->placeholder == NULL) != (b->placeholder == NULL) ||
	    (a->placeholder != NULL && strcmp(a->placeholder, b->placeholder) != 0)) {
		snprintf(why, why_len, "0x%06X: placeholder %s vs %s", (unsigned)a->tag,
			 a->placeholder ? a->placeholder : "(none)",
			 b->placeholder ? b->placeholder : "(none)");
		return false;
	}
	if (a->placeholder == NULL && !values_equal(a, b)) {
		snprintf(why, why_len, "0x%06X: values differ", (unsigned)a->tag);
		return false;
	}
	return true;
}

bool tu_tree_equal(const struct kmip_node *a, const struct kmip_node *b, char *why, size_t why_len)
{
	const struct kmip_node *ca, *cb;

	if (!node_equal(a, b, why, why_len)) {
		return false;
	}
	if (a->type != KMIP_TYPE_STRUCTURE) {
		return true;
	}
	for (ca = a->v.child, cb = b->v.child; ca != NULL && cb != NULL;
	     ca = ca->next, cb = cb->next) {
		if (!tu_tree_equal(ca, cb, why, why_len)) {
			return false;
		}
	}
	if (ca != NULL || cb != NULL) {
		snprintf(why, why_len, "0x%06X: child counts differ", (unsigned)a->tag);
		return false;
	}
	return true;
}

static int record(struct tu_placeholders *map, size_t index, const char *text)
{
	if (map->num == map->cap) {
		size_t cap = map->cap != 0 ? map->cap * 2 : 16;
		struct tu_placeholder *p = realloc(map->items, cap * sizeof(*p));

		if (p == NULL) {
			return KMIP_E_NOMEM;
		}
		map->items = p;
		map->cap = cap;
	}
	map->items[map->num].index = index;
	map->items[map->num].text = text;
	map->num++;
	return 0;
}

/* A value of |n|'s type that encodes |index|: what a test would otherwise substitute. */
static int bind_value(struct kmip_node *n, size_t index, struct kmip_arena *arena)
{
	uint8_t *p;

	switch (n->type) {
	case KMIP_TYPE_BYTE_STRING:
	case KMIP_TYPE_BIG_INTEGER:
	case KMIP_TYPE_TEXT_STRING:
		if ((p = kmip_arena_alloc(arena, 8)) == NULL) {
			return KMIP_E_NOMEM;
		}
		for (int i = 0; i < 8; i++) {
			p[i] = (uint8_t)('0' + (index >> (4 * (7 - i)) & 0x7));
		}
		n->v.bytes = p;
		n->len = 8;
		return 0;
	case KMIP_TYPE_BOOLEAN:
		n->v.b = index % 2 != 0;
		return 0;
	case KMIP_TYPE_INTEGER:
	case KMIP_TYPE_ENUMERATION:
	case KMIP_TYPE_INTERVAL:
		n->v.u32 = (uint32_t)index;
		return 0;
	default:
		n->v.i64 = (int64_t)index;
		return 0;
	}
}

static int bind_walk(struct kmip_node *n, struct kmip_arena *arena, struct tu_placeholders *map,
		     size_t *index)
{
	size_t at = (*index)++;
	int err;

	if (n->placeholder != NULL) {
		if ((err = record(map, at, n->placeholder)) != 0 ||
		    (err = bind_value(n, at, arena)) != 0) {
			return err;
		}
		n->placeholder = NULL;
	}
	if (n->type == KMIP_TYPE_STRUCTURE) {
		for (struct kmip_node *c = n->v.child; c != NULL; c = c->next) {
			if ((err = bind_walk(c, arena, map, index)) != 0) {
				return err;
			}
		}
	}
	return 0;
}

int tu_bind_placeholders(struct kmip_node *root, struct kmip_arena *arena,
			 struct tu_placeholders *map)
{
	size_t index = 0;

	map->num = 0;
	return bind_walk(root, arena, map, &index);
}

/* Whether |n| holds what bind_value put at |index|, read back through TTLV. */
static bool holds_bound(const struct kmip_node *n, size_t index)
{
	struct kmip_arena scratch;
	struct kmip_node expect = *n;
	bool same;

	kmip_arena_init(&scratch, NULL, 0);
	same = bind_value(&expect, index, &scratch) == 0 && values_equal(n, &expect);
	kmip_arena_cleanup(&scratch);
	return same;
}

static int restore_walk(struct kmip_node *n, const struct tu_placeholders *map, size_t *next,
			size_t *index)
{
	size_t at = (*index)++;
	int err;

	if (*next < map->num && map->items[*next].index == at) {
		if (!holds_bound(n, at)) {
			return KMIP_E_PLACEHOLDER;
		}
		n->placeholder = map->items[(*next)++].text;
		memset(&n->v, 0, sizeof(n->v));
		n->len = 0;
	}
	if (n->type == KMIP_TYPE_STRUCTURE) {
		for (struct kmip_node *c = n->v.child; c != NULL; c = c->next) {
			if ((err = restore_walk(c, map, next, index)) != 0) {
				return err;
			}
		}
	}
	return 0;
}

int tu_restore_placeholders(struct kmip_node *root, const struct tu_placeholders *map)
{
	size_t next = 0, index = 0;
	int err = restore_walk(root, map, &next, &index);

	return err != 0 ? err : (next == map->num ? 0 : KMIP_E_PLACEHOLDER);
}

void tu_placeholders_free(struct tu_placeholders *map)
{
	free(map->items);
	memset(map, 0, sizeof(*map));
}

char *tu_read_file(const char *path, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long len;

	if (f == NULL) {
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)len + 1)) != NULL) {
		if (fread(buf, 1, (size_t)len, f) == (size_t)len) {
			buf[len] = '\0';
			*out_len = (size_t)len;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

int tu_setup(void **state)
{
	static struct tu_fixture f;

	kmip_arena_init(&f.arena, NULL, 0);
	kmip_text_buf_init(&f.out, 1 << 20);
	*state = &f;
	return 0;
}

int tu_teardown(void **state)
{
	struct tu_fixture *f = *state;

	kmip_arena_cleanup(&f->arena);
	kmip_text_buf_cleanup(&f->out);
	return 0;
}
