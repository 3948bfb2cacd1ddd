/*
 * TTLV reader and writer. Every TTLV rule lives here and nowhere else
 * (KMIP 1.4 §9.1): tag range, fixed lengths per type, zero padding to a
 * multiple of eight, Boolean 0/1, UTF-8 text, maximum size and depth.
 */
#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"
#include "kmip_int.h"

#define HEADER_LEN 8

const struct kmip_limits kmip_default_limits = {
    .max_message_len = (size_t)1024 * 1024,
    .max_depth = 16,
};

/* Tags are 0x42XXXX (the spec's) or 0x54XXXX (extensions), KMIP 1.4 §9.1.3.1. */
static bool tag_valid(uint32_t tag)
{
	uint32_t prefix = tag >> 16;

	return prefix == 0x42 || prefix == 0x54;
}

static size_t padded(size_t len)
{
	return (len + 7) & ~(size_t)7;
}

/* The value length a type requires, or -1 when it may vary. */
static long fixed_length(uint8_t type)
{
	switch (type) {
	case KMIP_TYPE_INTEGER:
	case KMIP_TYPE_ENUMERATION:
	case KMIP_TYPE_INTERVAL:
		return 4;
	case KMIP_TYPE_LONG_INTEGER:
	case KMIP_TYPE_BOOLEAN:
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		return 8;
	default:
		return -1;
	}
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF.
 */
bool kmip_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;
		uint32_t min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			n = 1, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n) {
			return false;
		}
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80) {
				return false;
			}
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
			return false;
		}
		i += n + 1;
	}
	return true;
}

static bool zero(const uint8_t *p, size_t len)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++) {
		acc |= p[i];
	}
	return acc == 0;
}

/* Checks the value of a single item against the rules of its type. */
static int check_value(uint8_t type, const uint8_t *value, size_t len)
{
	long fixed = fixed_length(type);

	if (type < KMIP_TYPE_STRUCTURE || type > KMIP_TYPE_DATE_TIME_EXTENDED) {
		return KMIP_E_TYPE;
	}
	if (fixed >= 0 && len != (size_t)fixed) {
		return KMIP_E_LENGTH;
	}
	if (type == KMIP_TYPE_BIG_INTEGER && (len == 0 || len % 8 != 0)) {
		return KMIP_E_LENGTH; /* KMIP 1.4 §9.1.1.4: a multiple of eight */
	}
	if (type == KMIP_TYPE_BOOLEAN && kmip_load_be64(value) > 1) {
		return KMIP_E_BOOLEAN;
	}
	if (type == KMIP_TYPE_TEXT_STRING && !kmip_utf8_valid(value, len)) {
		return KMIP_E_UTF8;
	}
	return 0;
}

int kmip_reader_init(struct kmip_reader *r, const uint8_t *data, size_t len,
		     const struct kmip_limits *lim)
{
	if (len > lim->max_message_len) {
		return KMIP_E_TOO_BIG;
	}
	r->data = data;
	r->len = len;
	r->depth = 1;
	r->max_depth = lim->max_depth < KMIP_MAX_DEPTH ? lim->max_depth : KMIP_MAX_DEPTH;
	return 0;
}

bool kmip_reader_empty(const struct kmip_reader *r)
{
	return r->len == 0;
}

int kmip_reader_peek(const struct kmip_reader *r, uint32_t *out_tag, uint8_t *out_type)
{
	if (r->len < HEADER_LEN) {
		return KMIP_E_TRUNCATED;
	}
	*out_tag = kmip_load_be32(r->data) >> 8;
	*out_type = r->data[3];
	return 0;
}

/* Validates the next item and reports its total encoded size without moving. */
static int peek_item(const struct kmip_reader *r, struct kmip_item *out, size_t *out_size)
{
	uint32_t tag;
	uint8_t type;
	size_t len;
	int err;

	if ((err = kmip_reader_peek(r, &tag, &type)) != 0) {
		return err;
	}
	if (!tag_valid(tag)) {
		return KMIP_E_TAG;
	}
	len = kmip_load_be32(r->data + 4);
	if (len > r->len - HEADER_LEN || padded(len) > r->len - HEADER_LEN) {
		return KMIP_E_TRUNCATED;
	}
	if ((err = check_value(type, r->data + HEADER_LEN, len)) != 0) {
		return err;
	}
	if (!zero(r->data + HEADER_LEN + len, padded(len) - len)) {
		return KMIP_E_PADDING;
	}
	out->tag = tag;
	out->type = type;
	out->value = r->data + HEADER_LEN;
	out->value_len = (uint32_t)len;
	*out_size = HEADER_LEN + padded(len);
	return 0;
}

int kmip_read_item(struct kmip_reader *r, struct kmip_item *out)
{
	size_t size;
	int err;

	if ((err = peek_item(r, out, &size)) != 0) {
		return err;
	}
	r->data += size;
	r->len -= size;
	return 0;
}

/* Reads the next item, which must have |tag| and |type|. */
static int read_typed(struct kmip_reader *r, uint32_t tag, uint8_t type, struct kmip_item *out)
{
	size_t size;
	int err;

	if ((err = peek_item(r, out, &size)) != 0) {
		return err;
	}
	if (out->tag != tag) {
		return KMIP_E_UNEXPECTED;
	}
	if (out->type != type) {
		return KMIP_E_TYPE;
	}
	r->data += size;
	r->len -= size;
	return 0;
}

int kmip_read_struct(struct kmip_reader *r, uint32_t tag, struct kmip_reader *out_child)
{
	struct kmip_item it;
	struct kmip_reader saved = *r;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_STRUCTURE, &it)) != 0) {
		return err;
	}
	if (it.value_len > 0 && r->depth + 1 > r->max_depth) {
		*r = saved;
		return KMIP_E_DEPTH;
	}
	out_child->data = it.value;
	out_child->len = it.value_len;
	out_child->depth = r->depth + 1;
	out_child->max_depth = r->max_depth;
	return 0;
}

int kmip_read_int(struct kmip_reader *r, uint32_t tag, int32_t *out)
{
	struct kmip_item it;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_INTEGER, &it)) != 0) {
		return err;
	}
	*out = (int32_t)kmip_load_be32(it.value);
	return 0;
}

int kmip_read_long(struct kmip_reader *r, uint32_t tag, int64_t *out)
{
	struct kmip_item it;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_LONG_INTEGER, &it)) != 0) {
		return err;
	}
	*out = (int64_t)kmip_load_be64(it.value);
	return 0;
}

int kmip_read_enum(struct kmip_reader *r, uint32_t tag, uint32_t *out)
{
	struct kmip_item it;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_ENUMERATION, &it)) != 0) {
		return err;
	}
	*out = kmip_load_be32(it.value);
	return 0;
}

int kmip_read_bool(struct kmip_reader *r, uint32_t tag, bool *out)
{
	struct kmip_item it;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_BOOLEAN, &it)) != 0) {
		return err;
	}
	*out = kmip_load_be64(it.value) == 1;
	return 0;
}

int kmip_read_datetime(struct kmip_reader *r, uint32_t tag, int64_t *out)
{
	struct kmip_item it;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_DATE_TIME, &it)) != 0) {
		return err;
	}
	*out = (int64_t)kmip_load_be64(it.value);
	return 0;
}

int kmip_read_interval(struct kmip_reader *r, uint32_t tag, uint32_t *out)
{
	struct kmip_item it;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_INTERVAL, &it)) != 0) {
		return err;
	}
	*out = kmip_load_be32(it.value);
	return 0;
}

int kmip_read_text(struct kmip_reader *r, uint32_t tag, const char **out, size_t *out_len)
{
	struct kmip_item it;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_TEXT_STRING, &it)) != 0) {
		return err;
	}
	*out = (const char *)it.value;
	*out_len = it.value_len;
	return 0;
}

int kmip_read_bytes(struct kmip_reader *r, uint32_t tag, const uint8_t **out, size_t *out_len)
{
	struct kmip_item it;
	int err;

	if ((err = read_typed(r, tag, KMIP_TYPE_BYTE_STRING, &it)) != 0) {
		return err;
	}
	*out = it.value;
	*out_len = it.value_len;
	return 0;
}

int kmip_reader_finish(const struct kmip_reader *r)
{
	return r->len == 0 ? 0 : KMIP_E_TRAILING;
}

/* ---- writer ---------------------------------------------------------- */

void kmip_writer_init(struct kmip_writer *w, size_t max_len)
{
	memset(w, 0, sizeof(*w));
	w->max_len = max_len;
}

void kmip_writer_init_fixed(struct kmip_writer *w, uint8_t *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	w->max_len = cap;
	w->fixed = true;
}

void kmip_writer_cleanup(struct kmip_writer *w)
{
	if (w->buf != NULL) {
		explicit_bzero(w->buf, w->cap);
		if (!w->fixed) {
			free(w->buf);
		}
	}
	memset(w, 0, sizeof(*w));
}

/*
 * Makes room for |n| more bytes, growing a heap buffer by doubling. When it
 * grows, the old buffer is wiped: it may already hold key material.
 */
static uint8_t *reserve(struct kmip_writer *w, size_t n)
{
	size_t need;
	size_t cap;
	uint8_t *nb;

	if (w->err != 0) {
		return NULL;
	}
	if (n > w->max_len || w->len > w->max_len - n) {
		w->err = KMIP_E_TOO_BIG;
		return NULL;
	}
	need = w->len + n;
	if (need <= w->cap) {
		return w->buf + w->len;
	}
	if (w->fixed) {
		w->err = KMIP_E_TOO_BIG;
		return NULL;
	}
	cap = w->cap < 256 ? 256 : w->cap;
	while (cap < need) {
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	}
	if (cap > w->max_len) {
		cap = w->max_len;
	}
	if ((nb = malloc(cap)) == NULL) {
		w->err = KMIP_E_NOMEM;
		return NULL;
	}
	if (w->buf != NULL) {
		memcpy(nb, w->buf, w->len);
		explicit_bzero(w->buf, w->cap);
		free(w->buf);
	}
	w->buf = nb;
	w->cap = cap;
	return w->buf + w->len;
}

/* Appends a header and |len| value bytes plus zero padding; returns the value's place. */
static uint8_t *put_item(struct kmip_writer *w, uint32_t tag, uint8_t type, size_t len)
{
	uint8_t *p;
	size_t total;

	if (w->err == 0 && !tag_valid(tag)) {
		w->err = KMIP_E_TAG;
	}
	if (w->err == 0 && len > UINT32_MAX - 7) {
		w->err = KMIP_E_TOO_BIG;
	}
	total = HEADER_LEN + padded(len);
	if ((p = reserve(w, total)) == NULL) {
		return NULL;
	}
	kmip_store_be32(p, tag << 8 | type);
	kmip_store_be32(p + 4, (uint32_t)len);
	memset(p + HEADER_LEN + len, 0, padded(len) - len);
	w->len += total;
	return p + HEADER_LEN;
}

void kmip_write_begin(struct kmip_writer *w, uint32_t tag)
{
	if (w->err == 0 && w->depth >= KMIP_MAX_DEPTH) {
		w->err = KMIP_E_DEPTH;
	}
	if (put_item(w, tag, KMIP_TYPE_STRUCTURE, 0) != NULL) {
		w->open[w->depth++] = w->len - HEADER_LEN;
	}
}

void kmip_write_end(struct kmip_writer *w)
{
	size_t start;

	if (w->err != 0) {
		return;
	}
	if (w->depth == 0) {
		w->err = KMIP_E_STATE;
		return;
	}
	start = w->open[--w->depth];
	if (w->len - start - HEADER_LEN > UINT32_MAX) {
		w->err = KMIP_E_TOO_BIG;
		return;
	}
	kmip_store_be32(w->buf + start + 4, (uint32_t)(w->len - start - HEADER_LEN));
}

static void write_u32(struct kmip_writer *w, uint32_t tag, uint8_t type, uint32_t v)
{
	uint8_t *p = put_item(w, tag, type, 4);

	if (p != NULL) {
		kmip_store_be32(p, v);
	}
}

static void write_u64(struct kmip_writer *w, uint32_t tag, uint8_t type, uint64_t v)
{
	uint8_t *p = put_item(w, tag, type, 8);

	if (p != NULL) {
		kmip_store_be64(p, v);
	}
}

void kmip_write_int(struct kmip_writer *w, uint32_t tag, int32_t v)
{
	write_u32(w, tag, KMIP_TYPE_INTEGER, (uint32_t)v);
}

void kmip_write_long(struct kmip_writer *w, uint32_t tag, int64_t v)
{
	write_u64(w, tag, KMIP_TYPE_LONG_INTEGER, (uint64_t)v);
}

void kmip_write_enum(struct kmip_writer *w, uint32_t tag, uint32_t v)
{
	write_u32(w, tag, KMIP_TYPE_ENUMERATION, v);
}

void kmip_write_bool(struct kmip_writer *w, uint32_t tag, bool v)
{
	write_u64(w, tag, KMIP_TYPE_BOOLEAN, v ? 1 : 0);
}

void kmip_write_datetime(struct kmip_writer *w, uint32_t tag, int64_t v)
{
	write_u64(w, tag, KMIP_TYPE_DATE_TIME, (uint64_t)v);
}

void kmip_write_datetime_ext(struct kmip_writer *w, uint32_t tag, int64_t v)
{
	write_u64(w, tag, KMIP_TYPE_DATE_TIME_EXTENDED, (uint64_t)v);
}

void kmip_write_interval(struct kmip_writer *w, uint32_t tag, uint32_t v)
{
	write_u32(w, tag, KMIP_TYPE_INTERVAL, v);
}

static void write_span(struct kmip_writer *w, uint32_t tag, uint8_t type, const void *src,
		       size_t len)
{
	uint8_t *p = put_item(w, tag, type, len);

	if (p != NULL && len > 0) {
		memcpy(p, src, len);
	}
}

void kmip_write_text(struct kmip_writer *w, uint32_t tag, const char *s, size_t len)
{
	if (w->err == 0 && !kmip_utf8_valid((const uint8_t *)s, len)) {
		w->err = KMIP_E_UTF8;
	}
	write_span(w, tag, KMIP_TYPE_TEXT_STRING, s, len);
}

void kmip_write_bytes(struct kmip_writer *w, uint32_t tag, const uint8_t *p, size_t len)
{
	write_span(w, tag, KMIP_TYPE_BYTE_STRING, p, len);
}

void kmip_write_bigint(struct kmip_writer *w, uint32_t tag, const uint8_t *p, size_t len)
{
	if (w->err == 0 && (len == 0 || len % 8 != 0)) {
		w->err = KMIP_E_LENGTH;
	}
	write_span(w, tag, KMIP_TYPE_BIG_INTEGER, p, len);
}

int kmip_writer_finish(struct kmip_writer *w, const uint8_t **out, size_t *out_len)
{
	if (w->err != 0) {
		return w->err;
	}
	if (w->depth != 0) {
		return KMIP_E_STATE;
	}
	*out = w->buf;
	*out_len = w->len;
	return 0;
}
