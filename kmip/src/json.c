/*
 * JSON as the KMIP JSON profile writes it (KMIP Additional Message Encodings
 * 1.0 §4.1): every item an object {"tag", "type", "value"}, a structure's
 * value an array. jansson parses; the writer is a few escaping rules. Value
 * text is shared with XML through textval.c.
 */
#include <jansson.h>
#include <string.h>

#include "keel/kmip.h"
#include "kmip_int.h"
#include "textval_int.h"

/* ---- decoding ----------------------------------------------------------- */

struct json_item {
	const char *tag;
	size_t tag_len;
	const char *type; /* NULL for a structure */
	size_t type_len;
	json_t *value;
};

static int string_member(json_t *v, const char **out, size_t *out_len)
{
	if (!json_is_string(v)) {
		return KMIP_E_SYNTAX;
	}
	*out = json_string_value(v);
	*out_len = json_string_length(v);
	return 0;
}

/* Exactly "tag", "value" and an optional "type" (AME 1.0 §4.1.6). */
static int read_item(json_t *obj, struct json_item *out)
{
	const char *key;
	json_t *v;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj)) {
		return KMIP_E_SYNTAX;
	}
	json_object_foreach(obj, key, v)
	{
		int err = KMIP_E_SYNTAX;

		if (strcmp(key, "tag") == 0) {
			err = string_member(v, &out->tag, &out->tag_len);
		} else if (strcmp(key, "type") == 0) {
			err = string_member(v, &out->type, &out->type_len);
		} else if (strcmp(key, "value") == 0) {
			out->value = v;
			err = 0;
		}
		if (err != 0) {
			return err;
		}
	}
	return out->tag == NULL || out->value == NULL ? KMIP_E_SYNTAX : 0;
}

static int decode_item(struct kmip_tv_dec *d, json_t *obj, unsigned depth,
		       const struct kmip_tag_def *attr, struct kmip_node **out);

static int decode_children(struct kmip_tv_dec *d, json_t *array, unsigned depth,
			   struct kmip_node *parent)
{
	const struct kmip_tag_def *attr = NULL;
	struct kmip_node **link = &parent->v.child;
	size_t i;
	json_t *v;

	if (!json_is_array(array)) {
		return KMIP_E_SYNTAX;
	}
	json_array_foreach(array, i, v)
	{
		struct kmip_node *child;
		int err;

		if ((err = decode_item(d, v, depth + 1, attr, &child)) != 0) {
			return err;
		}
		kmip_tv_add_child(parent, &link, child);
		kmip_tv_track_attr(child, &attr);
	}
	return 0;
}

/* A primitive value: a string in the shared text forms, a number, or a Boolean literal. */
static int decode_value(struct kmip_tv_dec *d, json_t *v, const struct kmip_tag_def *attr,
			struct kmip_node *n)
{
	if (json_is_string(v)) {
		return kmip_tv_set_text(d, n, json_string_value(v), json_string_length(v),
					kmip_tv_enum_def(n->tag, n->type, attr));
	}
	if (json_is_integer(v)) {
		return kmip_tv_set_number(d, n, (int64_t)json_integer_value(v));
	}
	if (json_is_boolean(v) && n->type == KMIP_TYPE_BOOLEAN) {
		n->v.b = json_is_true(v);
		return 0;
	}
	return json_is_boolean(v) ? KMIP_E_TYPE : KMIP_E_SYNTAX;
}

static int decode_item(struct kmip_tv_dec *d, json_t *obj, unsigned depth,
		       const struct kmip_tag_def *attr, struct kmip_node **out)
{
	struct json_item it;
	uint8_t type = KMIP_TYPE_STRUCTURE;
	uint32_t tag;
	int err;

	if ((err = read_item(obj, &it)) != 0 ||
	    (err = kmip_tv_tag_parse(it.tag, it.tag_len, &tag)) != 0) {
		return err;
	}
	if (it.type != NULL && (err = kmip_type_by_name(it.type, it.type_len, &type)) != 0) {
		return err;
	}
	if ((err = kmip_tv_new_node(d, tag, type, depth, out)) != 0) {
		return err;
	}
	if (type == KMIP_TYPE_STRUCTURE) {
		return decode_children(d, it.value, depth, *out);
	}
	return decode_value(d, it.value, attr, *out);
}

int kmip_json_decode(const char *text, size_t len, const struct kmip_limits *lim,
		     struct kmip_arena *arena, struct kmip_node **out)
{
	struct kmip_tv_dec d;
	json_error_t jerr;
	json_t *root;
	int err;

	/* Duplicate keys would make an item mean two things. */
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		return KMIP_E_SYNTAX;
	}
	kmip_tv_dec_init(&d, lim, arena);
	err = decode_item(&d, root, 1, NULL, out);
	json_decref(root);
	return err;
}

/* ---- encoding ----------------------------------------------------------- */

/* A JSON string (RFC 8259 §7): quotes, backslashes and control characters escaped. */
static int put_string(struct kmip_text_buf *b, const char *s, size_t len)
{
	size_t start = 0;

	if (!kmip_utf8_valid((const uint8_t *)s, len)) {
		return KMIP_E_UTF8;
	}
	kmip_text_append(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			continue;
		}
		kmip_text_append(b, s + start, i - start);
		if (c == '"' || c == '\\') {
			kmip_text_appendf(b, "\\%c", c);
		} else {
			kmip_text_appendf(b, "\\u%04x", c);
		}
		start = i + 1;
	}
	kmip_text_append(b, s + start, len - start);
	kmip_text_append(b, "\"", 1);
	return 0;
}

static int put_value(struct kmip_text_buf *b, const struct kmip_node *n,
		     const struct kmip_tag_def *attr)
{
	const struct kmip_enum_def *def = kmip_tv_enum_def(n->tag, n->type, attr);

	if (n->placeholder != NULL) {
		return put_string(b, n->placeholder, strlen(n->placeholder));
	}
	if (n->type == KMIP_TYPE_TEXT_STRING) {
		return put_string(b, n->v.text, n->len);
	}
	if (kmip_tv_json_bare(n, def)) {
		kmip_tv_format(b, n, def, KMIP_TV_JSON);
		return 0;
	}
	kmip_text_append(b, "\"", 1);
	kmip_tv_format(b, n, def, KMIP_TV_JSON);
	kmip_text_append(b, "\"", 1);
	return 0;
}

static int encode_node(struct kmip_text_buf *b, const struct kmip_node *n,
		       const struct kmip_tag_def *attr)
{
	const char *type = kmip_type_name(n->type);
	const char *name = kmip_tv_tag_name(n->tag);
	int err;

	if (type == NULL) {
		return KMIP_E_TYPE;
	}
	if (name != NULL) {
		kmip_text_appendf(b, "{\"tag\":\"%s\"", name);
	} else {
		kmip_text_appendf(b, "{\"tag\":\"0x%06X\"", (unsigned)n->tag);
	}
	if (n->type != KMIP_TYPE_STRUCTURE) {
		kmip_text_appendf(b, ",\"type\":\"%s\",\"value\":", type);
		err = put_value(b, n, attr);
		kmip_text_append(b, "}", 1);
		return err;
	}
	kmip_text_append(b, ",\"value\":[", 10);
	attr = NULL;
	for (const struct kmip_node *c = n->v.child; c != NULL; c = c->next) {
		if (c != n->v.child) {
			kmip_text_append(b, ",", 1);
		}
		if ((err = encode_node(b, c, attr)) != 0) {
			return err;
		}
		kmip_tv_track_attr(c, &attr);
	}
	kmip_text_append(b, "]}", 2);
	return 0;
}

int kmip_json_encode(struct kmip_text_buf *b, const struct kmip_node *node)
{
	int err = encode_node(b, node, NULL);

	return err != 0 ? err : b->err;
}
