/*
 * A text form for people reading a capture: one item a line, indented by
 * depth, "Tag (Type): value". Values are written as in XML (textval.c); text
 * is quoted with control characters escaped, so a hostile message cannot
 * drive the operator's terminal.
 */
#include <string.h>

#include "keel/kmip.h"
#include "kmip_int.h"
#include "textval_int.h"

/* Quoted, with C-style escapes for control characters, quotes and bytes that are not UTF-8. */
static void put_quoted(struct kmip_text_buf *b, const char *s, size_t len)
{
	bool utf8 = kmip_utf8_valid((const uint8_t *)s, len);

	kmip_text_append(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			kmip_text_appendf(b, "\\%c", c);
		} else if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8)) {
			kmip_text_appendf(b, "\\x%02X", c);
		} else {
			kmip_text_append(b, s + i, 1);
		}
	}
	kmip_text_append(b, "\"", 1);
}

static void print_value(struct kmip_text_buf *b, const struct kmip_node *n,
			const struct kmip_tag_def *attr)
{
	if (n->placeholder != NULL) {
		put_quoted(b, n->placeholder, strlen(n->placeholder));
	} else if (n->type == KMIP_TYPE_TEXT_STRING) {
		put_quoted(b, n->v.text, n->len);
	} else {
		kmip_tv_format(b, n, kmip_tv_enum_def(n->tag, n->type, attr), KMIP_TV_PRINT);
	}
}

static int print_node(struct kmip_text_buf *b, const struct kmip_node *n, unsigned depth,
		      const struct kmip_tag_def *attr)
{
	const char *type = kmip_type_name(n->type);
	const char *name = kmip_tv_tag_name(n->tag);
	int err;

	if (type == NULL) {
		return KMIP_E_TYPE;
	}
	for (unsigned i = 0; i < depth; i++) {
		kmip_text_append(b, "  ", 2);
	}
	if (name != NULL) {
		kmip_text_appendf(b, "%s (%s)", name, type);
	} else {
		kmip_text_appendf(b, "0x%06X (%s)", (unsigned)n->tag, type);
	}
	if (n->type != KMIP_TYPE_STRUCTURE) {
		kmip_text_append(b, ": ", 2);
		print_value(b, n, attr);
		kmip_text_append(b, "\n", 1);
		return 0;
	}
	kmip_text_append(b, "\n", 1);
	attr = NULL;
	for (const struct kmip_node *c = n->v.child; c != NULL; c = c->next) {
		if ((err = print_node(b, c, depth + 1, attr)) != 0) {
			return err;
		}
		kmip_tv_track_attr(c, &attr);
	}
	return 0;
}

int kmip_print(struct kmip_text_buf *b, const struct kmip_node *node)
{
	int err = print_node(b, node, 0, NULL);

	return err != 0 ? err : b->err;
}
