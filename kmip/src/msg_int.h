/* Private to libkmip: helpers shared by the typed-message walkers (msg.c, msg_encode.c). */
#ifndef KEEL_MSG_INT_H
#define KEEL_MSG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "keel/kmip.h"

static inline bool msg_in_version(const struct kmip_field_desc *f, uint16_t version)
{
	return version == 0 || (f->versions & version) != 0;
}

static inline bool msg_is_repeated(const struct kmip_field_desc *f)
{
	return (f->flags & KMIP_FIELD_REPEATED) != 0;
}

/* Required in |version|: alone, or as a member of a oneof group. */
static inline bool msg_required(const struct kmip_field_desc *f, uint16_t version)
{
	return (f->flags & KMIP_FIELD_REQUIRED) != 0 && msg_in_version(f, version);
}

static inline bool msg_in_group(const struct kmip_field_desc *f)
{
	return f->occurs == KMIP_ONEOF || f->occurs == KMIP_ONEOF_OPTIONAL;
}

/* Text String, Byte String and Big Integer values are a pointer and a length. */
static inline bool msg_has_len(uint8_t kind)
{
	return kind == KMIP_TYPE_TEXT_STRING || kind == KMIP_TYPE_BYTE_STRING ||
	       kind == KMIP_TYPE_BIG_INTEGER;
}

/* Optional and oneof scalars carry a has_ flag at |aux|; text and bytes do not. */
static inline bool msg_has_flag(const struct kmip_field_desc *f)
{
	return (f->flags & KMIP_FIELD_HAS) != 0;
}

/* The end of the group starting at |i|: a run of oneof fields, or |i| alone. */
static inline size_t msg_group_end(const struct kmip_struct_desc *desc, size_t i)
{
	return i + desc->fields[i].group;
}

/* Fields live at offsets in untyped storage: copy, never cast, to read them. */
static inline const void *msg_load_ptr(const uint8_t *p)
{
	const void *v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline size_t msg_load_size(const uint8_t *p)
{
	size_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t msg_load_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline int64_t msg_load_i64(const uint8_t *p)
{
	int64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Bytes of one element of a repeated field's array. */
static inline size_t msg_elem_size(const struct kmip_field_desc *f)
{
	switch (f->kind) {
	case KMIP_TYPE_STRUCTURE:
		return f->sub->size;
	case KMIP_KIND_ANY:
		return sizeof(const struct kmip_node *);
	case KMIP_TYPE_BOOLEAN:
		return sizeof(bool);
	case KMIP_TYPE_LONG_INTEGER:
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		return sizeof(int64_t);
	default:
		return msg_has_len(f->kind) ? sizeof(struct kmip_bytes) : sizeof(uint32_t);
	}
}

/*
 * The descriptor of a batch item's payload, chosen by the item's Operation
 * (KMIP 1.4 §7.2), on the request or response side by the payload's tag.
 * NULL when the operation is absent, has no descriptor, or does not exist in
 * |version| (a KMIP_V* bit, or 0 for any): decode and encode then both keep
 * the payload as a node. The Operation comes first in a batch item, so a
 * decoder has it before the payload.
 */
static inline const struct kmip_struct_desc *msg_payload_desc(const struct kmip_struct_desc *item,
							      const struct kmip_field_desc *payload,
							      const uint8_t *in, uint16_t version)
{
	const struct kmip_operation_desc *od;

	for (size_t i = 0; i < item->num_fields; i++) {
		const struct kmip_field_desc *f = &item->fields[i];

		if (f->tag != KMIP_TAG_OPERATION || f->kind != KMIP_TYPE_ENUMERATION) {
			continue;
		}
		if (msg_has_flag(f) && in[f->aux] == 0) {
			return NULL;
		}
		if ((od = kmip_operation_desc(msg_load_u32(in + f->offset))) == NULL ||
		    (version != 0 && (od->versions & version) == 0)) {
			return NULL;
		}
		return payload->tag == KMIP_TAG_REQUEST_PAYLOAD ? od->request : od->response;
	}
	return NULL;
}

#endif
