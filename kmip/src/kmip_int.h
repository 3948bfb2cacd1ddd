/* Private to libkmip: byte order helpers shared by the TTLV code. */
#ifndef KEEL_KMIP_INT_H
#define KEEL_KMIP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline uint32_t kmip_load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t kmip_load_be64(const uint8_t *p)
{
	return (uint64_t)kmip_load_be32(p) << 32 | kmip_load_be32(p + 4);
}

static inline void kmip_store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void kmip_store_be64(uint8_t *p, uint64_t v)
{
	kmip_store_be32(p, (uint32_t)(v >> 32));
	kmip_store_be32(p + 4, (uint32_t)v);
}

/* Strict UTF-8 (RFC 3629), shared by TTLV and the text encodings. */
bool kmip_utf8_valid(const uint8_t *s, size_t len);

#endif
