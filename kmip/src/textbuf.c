/*
 * The text encodings' output buffer: grows up to a ceiling, remembers its
 * first failure, and wipes what it held whenever memory is released, since
 * an encoded message carries keys.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"

void kmip_text_buf_init(struct kmip_text_buf *b, size_t max_len)
{
	memset(b, 0, sizeof(*b));
	b->max_len = max_len;
}

void kmip_text_buf_cleanup(struct kmip_text_buf *b)
{
	if (b->data != NULL) {
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
}

void kmip_text_buf_reset(struct kmip_text_buf *b)
{
	if (b->data != NULL) {
		explicit_bzero(b->data, b->cap);
	}
	b->len = 0;
	b->err = 0;
}

/* Makes room for |n| more bytes and a NUL. Never realloc: the old block must be wiped. */
static int reserve(struct kmip_text_buf *b, size_t n)
{
	size_t cap = b->cap != 0 ? b->cap : 256;
	char *p;

	if (b->err != 0) {
		return b->err;
	}
	if (n > b->max_len || b->len > b->max_len - n) {
		return b->err = KMIP_E_TOO_BIG;
	}
	if (b->len + n < b->cap) {
		return 0;
	}
	while (cap <= b->len + n) {
		cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
	}
	if ((p = malloc(cap)) == NULL) {
		return b->err = KMIP_E_NOMEM;
	}
	if (b->data != NULL) {
		memcpy(p, b->data, b->len + 1);
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void kmip_text_append(struct kmip_text_buf *b, const char *s, size_t len)
{
	if (reserve(b, len) != 0) {
		return;
	}
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void kmip_text_appendf(struct kmip_text_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = b->err != 0 ? b->err : KMIP_E_STATE;
		return;
	}
	if (reserve(b, (size_t)n) != 0) {
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}
