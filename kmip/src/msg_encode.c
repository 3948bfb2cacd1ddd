/*
 * Encoding of typed KMIP structures: the same descriptors as decoding
 * (msg.c), walked in the same order, so the two directions cannot drift.
 */
#include <string.h>

#include "keel/kmip.h"
#include "msg_int.h"

struct enc {
	struct kmip_writer *w;
	uint16_t version; /* one KMIP_V* bit, or 0 to accept every version */
	int err;
};

static void encode_fields(struct enc *e, const struct kmip_struct_desc *desc, const uint8_t *in);

static void enc_fail(struct enc *e, int err)
{
	if (e->err == 0) {
		e->err = err;
	}
	if (e->w->err == 0) {
		e->w->err = err;
	}
}

/* True when field |f| of |in| holds a value to write. */
static bool present(const struct kmip_field_desc *f, const uint8_t *in)
{
	if (f->flags & KMIP_FIELD_REPEATED) {
		return msg_load_size(in + f->aux) > 0;
	}
	if (f->flags & KMIP_FIELD_PTR) {
		return msg_load_ptr(in + f->offset) != NULL ||
		       (f->kind == KMIP_KIND_PAYLOAD && msg_load_ptr(in + f->aux) != NULL);
	}
	return !(f->flags & KMIP_FIELD_HAS) || in[f->aux] != 0;
}

/* The present member of oneof group [i, end), or NULL; |*required| if the group must have one. */
static const struct kmip_field_desc *first_present(const struct kmip_struct_desc *desc, size_t i,
						   size_t end, const uint8_t *in, uint16_t version,
						   bool *required)
{
	const struct kmip_field_desc *f = NULL;

	for (; i < end; i++) {
		const struct kmip_field_desc *g = &desc->fields[i];

		*required |= msg_required(g, version);
		if (f == NULL && present(g, in)) {
			f = g;
		}
	}
	return f;
}

/* A kept subtree must carry the field's tag, or any tag for a "*" field. */
static void encode_node(struct enc *e, const struct kmip_field_desc *f, const struct kmip_node *n)
{
	if (f->tag != 0 && n->tag != f->tag) {
		enc_fail(e, KMIP_E_UNEXPECTED);
		return;
	}
	kmip_encode_tree(e->w, n);
}

/* Writes a scalar stored at |val| (for text and bytes, a pointer to |len| bytes). */
static void encode_scalar(struct enc *e, const struct kmip_field_desc *f, const uint8_t *val,
			  size_t len)
{
	struct kmip_writer *w = e->w;

	switch (f->kind) {
	case KMIP_TYPE_INTEGER:
		kmip_write_int(w, f->tag, (int32_t)msg_load_u32(val));
		break;
	case KMIP_TYPE_ENUMERATION:
		kmip_write_enum(w, f->tag, msg_load_u32(val));
		break;
	case KMIP_TYPE_INTERVAL:
		kmip_write_interval(w, f->tag, msg_load_u32(val));
		break;
	case KMIP_TYPE_BOOLEAN:
		kmip_write_bool(w, f->tag, *val != 0);
		break;
	case KMIP_TYPE_LONG_INTEGER:
		kmip_write_long(w, f->tag, msg_load_i64(val));
		break;
	case KMIP_TYPE_DATE_TIME:
		kmip_write_datetime(w, f->tag, msg_load_i64(val));
		break;
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		kmip_write_datetime_ext(w, f->tag, msg_load_i64(val));
		break;
	case KMIP_TYPE_TEXT_STRING:
		kmip_write_text(w, f->tag, msg_load_ptr(val), len);
		break;
	case KMIP_TYPE_BYTE_STRING:
		kmip_write_bytes(w, f->tag, msg_load_ptr(val), len);
		break;
	case KMIP_TYPE_BIG_INTEGER:
		kmip_write_bigint(w, f->tag, msg_load_ptr(val), len);
		break;
	default:
		enc_fail(e, KMIP_E_TYPE);
		break;
	}
}

/*
 * Writes one value: |val| is the struct itself for a structure, the node
 * pointer for "any", else the scalar.
 */
static void encode_value(struct enc *e, const struct kmip_field_desc *f, const uint8_t *val,
			 size_t len)
{
	if (f->kind == KMIP_TYPE_STRUCTURE) {
		kmip_write_begin(e->w, f->tag);
		encode_fields(e, f->sub, val);
		kmip_write_end(e->w);
	} else if (f->kind == KMIP_KIND_ANY) {
		encode_node(e, f, msg_load_ptr(val));
	} else {
		encode_scalar(e, f, val, len);
	}
}

/* A batch item's payload: typed when its operation has a descriptor, else the node. */
static void encode_payload(struct enc *e, const struct kmip_struct_desc *desc,
			   const struct kmip_field_desc *f, const uint8_t *in)
{
	const uint8_t *typed = msg_load_ptr(in + f->offset);
	const struct kmip_node *node = msg_load_ptr(in + f->aux);
	const struct kmip_struct_desc *pd = msg_payload_desc(desc, f, in, e->version);

	if (typed != NULL && pd != NULL) {
		kmip_write_begin(e->w, f->tag);
		encode_fields(e, pd, typed);
		kmip_write_end(e->w);
	} else if (node != NULL) {
		encode_node(e, f, node);
	} else {
		enc_fail(e, KMIP_E_MISSING); /* a typed payload for an operation without one */
	}
}

static void encode_field(struct enc *e, const struct kmip_struct_desc *desc,
			 const struct kmip_field_desc *f, const uint8_t *in)
{
	if (f->kind == KMIP_KIND_PAYLOAD) {
		encode_payload(e, desc, f, in);
	} else if (msg_is_repeated(f)) {
		const uint8_t *p = msg_load_ptr(in + f->offset);
		size_t n = msg_load_size(in + f->aux), size = msg_elem_size(f);

		for (size_t k = 0; k < n; k++) {
			const uint8_t *el = p + k * size;

			encode_value(e, f, el,
				     msg_has_len(f->kind)
					 ? msg_load_size(el + offsetof(struct kmip_bytes, len))
					 : 0);
		}
	} else if (f->kind == KMIP_TYPE_STRUCTURE) {
		encode_value(e, f, msg_load_ptr(in + f->offset), 0);
	} else {
		encode_value(e, f, in + f->offset,
			     msg_has_len(f->kind) ? msg_load_size(in + f->aux) : 0);
	}
}

/* Writes each group's present member in order; a required group must have one. */
static void encode_fields(struct enc *e, const struct kmip_struct_desc *desc, const uint8_t *in)
{
	for (size_t i = 0, end; i < desc->num_fields && e->err == 0; i = end) {
		const struct kmip_field_desc *f = &desc->fields[i];
		bool required = msg_required(f, e->version);

		end = i + 1;
		if (msg_in_group(f)) {
			end = msg_group_end(desc, i);
			f = first_present(desc, i, end, in, e->version, &required);
		} else if (!present(f, in)) {
			f = NULL;
		}
		if (f == NULL) {
			if (required) {
				enc_fail(e, KMIP_E_MISSING);
			}
		} else if (!msg_in_version(f, e->version)) {
			enc_fail(e, KMIP_E_UNEXPECTED);
		} else {
			encode_field(e, desc, f, in);
		}
	}
}

int kmip_struct_encode(struct kmip_writer *w, const struct kmip_struct_desc *desc, const void *in,
		       uint16_t version)
{
	struct enc e = {w, version, w->err};

	kmip_write_begin(w, desc->tag);
	encode_fields(&e, desc, in);
	kmip_write_end(w);
	return e.err != 0 ? e.err : w->err;
}

/* The KMIP_V* bit of a typed Protocol Version, 0 when absent. */
static uint16_t typed_version(const struct kmip_protocol_version *pv)
{
	return pv == NULL
		   ? 0
		   : kmip_version_bit(pv->protocol_version_major, pv->protocol_version_minor);
}

int kmip_request_encode(struct kmip_writer *w, const struct kmip_request_message *msg)
{
	const struct kmip_request_header *h = msg->request_header;

	return kmip_struct_encode(w, &kmip_request_message_desc, msg,
				  h == NULL ? 0 : typed_version(h->protocol_version));
}

int kmip_response_encode(struct kmip_writer *w, const struct kmip_response_message *msg)
{
	const struct kmip_response_header *h = msg->response_header;

	return kmip_struct_encode(w, &kmip_response_message_desc, msg,
				  h == NULL ? 0 : typed_version(h->protocol_version));
}
