/*
 * The item tree: TTLV decoded into nodes, and nodes encoded back to TTLV.
 * Decoding walks the message twice: once to validate it and count its items,
 * then to fill exactly that many nodes from a single arena allocation.
 */
#include <string.h>

#include "keel/kmip.h"
#include "kmip_int.h"

/* Validates every item below |r| and adds their number to |*count|. */
static int count_items(struct kmip_reader *r, size_t *count)
{
	while (!kmip_reader_empty(r)) {
		struct kmip_item it;
		struct kmip_reader child;
		uint32_t tag;
		uint8_t type;
		int err;

		if ((err = kmip_reader_peek(r, &tag, &type)) != 0) {
			return err;
		}
		(*count)++;
		if (type != KMIP_TYPE_STRUCTURE) {
			err = kmip_read_item(r, &it);
		} else if ((err = kmip_read_struct(r, tag, &child)) == 0) {
			err = count_items(&child, count);
		}
		if (err != 0) {
			return err;
		}
	}
	return 0;
}

/* Fills a node from an item already validated by count_items. */
static void set_value(struct kmip_node *n, const struct kmip_item *it)
{
	n->tag = it->tag;
	n->type = it->type;
	n->len = 0;
	switch (it->type) {
	case KMIP_TYPE_INTEGER:
		n->v.i32 = (int32_t)kmip_load_be32(it->value);
		break;
	case KMIP_TYPE_ENUMERATION:
	case KMIP_TYPE_INTERVAL:
		n->v.u32 = kmip_load_be32(it->value);
		break;
	case KMIP_TYPE_LONG_INTEGER:
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		n->v.i64 = (int64_t)kmip_load_be64(it->value);
		break;
	case KMIP_TYPE_BOOLEAN:
		n->v.b = kmip_load_be64(it->value) == 1;
		break;
	case KMIP_TYPE_STRUCTURE:
		n->v.child = NULL;
		break;
	default: /* Text String, Byte String, Big Integer */
		n->v.bytes = it->value;
		n->len = it->value_len;
		break;
	}
}

/* Builds the nodes of |r|'s items from |*pool|; returns the first, or NULL if empty. */
static struct kmip_node *build(struct kmip_reader *r, struct kmip_node **pool)
{
	struct kmip_node *first = NULL;
	struct kmip_node **link = &first;

	while (!kmip_reader_empty(r)) {
		struct kmip_item it;
		struct kmip_node *n = (*pool)++;

		if (kmip_read_item(r, &it) != 0) {
			return NULL; /* cannot happen: count_items validated it */
		}
		set_value(n, &it);
		n->next = NULL;
		n->placeholder = NULL;
		if (it.type == KMIP_TYPE_STRUCTURE) {
			struct kmip_reader child = *r;

			child.data = it.value;
			child.len = it.value_len;
			child.depth = r->depth + 1;
			n->v.child = build(&child, pool);
			for (const struct kmip_node *c = n->v.child; c != NULL; c = c->next) {
				n->len++;
			}
		}
		*link = n;
		link = &n->next;
	}
	return first;
}

int kmip_decode_tree(const uint8_t *data, size_t len, const struct kmip_limits *lim,
		     struct kmip_arena *arena, struct kmip_node **out)
{
	struct kmip_reader r;
	struct kmip_item it;
	struct kmip_node *pool;
	size_t count = 0;
	int err;

	if ((err = kmip_reader_init(&r, data, len, lim)) != 0) {
		return err;
	}
	/* Exactly one top-level item: a message is one structure. */
	{
		struct kmip_reader probe = r;

		if ((err = kmip_read_item(&probe, &it)) != 0) {
			return err;
		}
		if ((err = kmip_reader_finish(&probe)) != 0) {
			return err;
		}
	}
	if ((err = count_items(&r, &count)) != 0) {
		return err;
	}
	if (count > SIZE_MAX / sizeof(*pool) ||
	    (pool = kmip_arena_alloc(arena, count * sizeof(*pool))) == NULL) {
		return KMIP_E_NOMEM;
	}
	if ((err = kmip_reader_init(&r, data, len, lim)) != 0) {
		return err;
	}
	*out = build(&r, &pool);
	return 0;
}

void kmip_encode_tree(struct kmip_writer *w, const struct kmip_node *n)
{
	if (n->placeholder != NULL) {
		if (w->err == 0) {
			w->err = KMIP_E_PLACEHOLDER;
		}
		return;
	}
	switch (n->type) {
	case KMIP_TYPE_STRUCTURE:
		kmip_write_begin(w, n->tag);
		for (const struct kmip_node *c = n->v.child; c != NULL; c = c->next) {
			kmip_encode_tree(w, c);
		}
		kmip_write_end(w);
		break;
	case KMIP_TYPE_INTEGER:
		kmip_write_int(w, n->tag, n->v.i32);
		break;
	case KMIP_TYPE_LONG_INTEGER:
		kmip_write_long(w, n->tag, n->v.i64);
		break;
	case KMIP_TYPE_BIG_INTEGER:
		kmip_write_bigint(w, n->tag, n->v.bytes, n->len);
		break;
	case KMIP_TYPE_ENUMERATION:
		kmip_write_enum(w, n->tag, n->v.u32);
		break;
	case KMIP_TYPE_BOOLEAN:
		kmip_write_bool(w, n->tag, n->v.b);
		break;
	case KMIP_TYPE_TEXT_STRING:
		kmip_write_text(w, n->tag, n->v.text, n->len);
		break;
	case KMIP_TYPE_BYTE_STRING:
		kmip_write_bytes(w, n->tag, n->v.bytes, n->len);
		break;
	case KMIP_TYPE_DATE_TIME:
		kmip_write_datetime(w, n->tag, n->v.i64);
		break;
	case KMIP_TYPE_INTERVAL:
		kmip_write_interval(w, n->tag, n->v.u32);
		break;
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		kmip_write_datetime_ext(w, n->tag, n->v.i64);
		break;
	default:
		if (w->err == 0) {
			w->err = KMIP_E_TYPE;
		}
		break;
	}
}

const struct kmip_node *kmip_node_find(const struct kmip_node *parent, uint32_t tag)
{
	if (parent == NULL || parent->type != KMIP_TYPE_STRUCTURE) {
		return NULL;
	}
	for (const struct kmip_node *c = parent->v.child; c != NULL; c = c->next) {
		if (c->tag == tag) {
			return c;
		}
	}
	return NULL;
}
