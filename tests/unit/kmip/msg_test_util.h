/* Helpers shared by the typed-message tests: hex input and re-encoding. */
#ifndef KEEL_MSG_TEST_UTIL_H
#define KEEL_MSG_TEST_UTIL_H

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"

static int msg_hex_nibble(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes hex (whitespace ignored) into a malloc'd buffer; NULL on bad input. */
static uint8_t *msg_from_hex(const char *hex, size_t *out_len)
{
	size_t n = 0, cap = strlen(hex) / 2 + 1;
	uint8_t *buf = malloc(cap);
	int hi = -1;

	for (; buf != NULL && *hex != '\0'; hex++) {
		int v = msg_hex_nibble((unsigned char)*hex);

		if (isspace((unsigned char)*hex)) {
			continue;
		}
		if (v < 0) {
			free(buf);
			return NULL;
		}
		if (hi < 0) {
			hi = v;
		} else {
			buf[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	*out_len = n;
	return buf;
}

#endif
