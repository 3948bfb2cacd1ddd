/*
 * Typed KMIP structures and messages. One walker per direction, driven by the
 * descriptors generated from kmip/spec/structs.txt: decode checks order,
 * types, occurrence and version of every field; encode writes the same
 * fields in the same order, so the two directions cannot drift.
 */
#include <string.h>

#include "keel/kmip.h"

struct dec {
	struct kmip_arena *arena;
	uint16_t version;			/* one KMIP_V* bit, or 0 to accept every version */
	const struct kmip_struct_desc *indexed; /* elements of this type are batch items */
	struct kmip_decode_error *err;
};

struct enc {
	struct kmip_writer *w;
	uint16_t version;
	int err;
};

static int decode_fields(struct dec *d, const struct kmip_struct_desc *desc,
			 const struct kmip_node *first, uint8_t *out);
static void encode_fields(struct enc *e, const struct kmip_struct_desc *desc, const uint8_t *in);

/* Records where decoding failed; the first failure wins. */
static int fail(struct dec *d, int err, uint32_t tag)
{
	if (d->err->err == 0) {
		d->err->err = err;
		d->err->tag = tag;
	}
	return err;
}

static bool in_version(const struct kmip_field_desc *f, uint16_t version)
{
	return version == 0 || (f->versions & version) != 0;
}

static bool is_repeated(const struct kmip_field_desc *f)
{
	return f->occurs == KMIP_REPEATED || f->occurs == KMIP_AT_LEAST_ONE;
}

static bool has_len(uint8_t kind)
{
	return kind == KMIP_TYPE_TEXT_STRING || kind == KMIP_TYPE_BYTE_STRING ||
	       kind == KMIP_TYPE_BIG_INTEGER;
}

static const void *load_ptr(const uint8_t *p)
{
	const void *v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static size_t load_size(const uint8_t *p)
{
	size_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t load_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int64_t load_i64(const uint8_t *p)
{
	int64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Optional and oneof scalars carry a has_ flag at |aux|; text and bytes do not. */
static bool has_flag(const struct kmip_field_desc *f)
{
	return (f->occurs == KMIP_OPTIONAL || f->occurs == KMIP_ONEOF) && f->kind < KMIP_KIND_ANY &&
	       f->kind != KMIP_TYPE_STRUCTURE && !has_len(f->kind);
}

/* The end of the group starting at |i|: a run of ONEOF fields, or |i| alone. */
static size_t group_end(const struct kmip_struct_desc *desc, size_t i)
{
	size_t end = i + 1;

	if (desc->fields[i].occurs != KMIP_ONEOF) {
		return end;
	}
	while (end < desc->num_fields && desc->fields[end].occurs == KMIP_ONEOF) {
		end++;
	}
	return end;
}

static bool tag_matches(const struct kmip_field_desc *f, uint32_t tag)
{
	return f->tag == 0 || f->tag == tag;
}

static bool type_matches(const struct kmip_field_desc *f, uint8_t type)
{
	switch (f->kind) {
	case KMIP_KIND_ANY:
		return true;
	case KMIP_KIND_PAYLOAD:
		return type == KMIP_TYPE_STRUCTURE;
	default:
		return f->kind == type;
	}
}

/*
 * The field of group [i, end) that takes |c|, or NULL. A member whose tag
 * matches but whose type does not sets |*wrong_type|: the Key Value of a Key
 * Block, for one, is a structure or a Byte String (KMIP 1.4 §2.1.3).
 */
static const struct kmip_field_desc *match(const struct dec *d, const struct kmip_struct_desc *desc,
					   size_t i, size_t end, const struct kmip_node *c,
					   bool *wrong_type)
{
	*wrong_type = false;
	for (; c != NULL && i < end; i++) {
		const struct kmip_field_desc *f = &desc->fields[i];

		if (!in_version(f, d->version) || !tag_matches(f, c->tag)) {
			continue;
		}
		if (type_matches(f, c->type)) {
			return f;
		}
		*wrong_type = true;
	}
	return NULL;
}

/* True when some member of group [i, end) is required in this version. */
static bool group_required(const struct dec *d, const struct kmip_struct_desc *desc, size_t i,
			   size_t end)
{
	for (; i < end; i++) {
		const struct kmip_field_desc *f = &desc->fields[i];

		if (in_version(f, d->version) && f->occurs != KMIP_OPTIONAL &&
		    f->occurs != KMIP_REPEATED) {
			return true;
		}
	}
	return false;
}

/* True when a field after |i| (in this version) would take |tag|. */
static bool tag_later(const struct dec *d, const struct kmip_struct_desc *desc, size_t i,
		      uint32_t tag)
{
	for (; i < desc->num_fields; i++) {
		if (in_version(&desc->fields[i], d->version) &&
		    tag_matches(&desc->fields[i], tag)) {
			return true;
		}
	}
	return false;
}

/*
 * The descriptor of a batch item's payload, chosen by the item's Operation
 * (KMIP 1.4 §7.2), on the request or response side by the payload's tag.
 * NULL when the operation is absent or has no descriptor.
 */
static const struct kmip_struct_desc *payload_desc(const struct kmip_struct_desc *item,
						   const struct kmip_field_desc *payload,
						   const uint8_t *in)
{
	const struct kmip_operation_desc *od;

	for (size_t i = 0; i < item->num_fields; i++) {
		const struct kmip_field_desc *f = &item->fields[i];

		if (f->tag != KMIP_TAG_OPERATION || f->kind != KMIP_TYPE_ENUMERATION) {
			continue;
		}
		if (has_flag(f) && in[f->aux] == 0) {
			return NULL;
		}
		if ((od = kmip_operation_desc(load_u32(in + f->offset))) == NULL) {
			return NULL;
		}
		return payload->tag == KMIP_TAG_REQUEST_PAYLOAD ? od->request : od->response;
	}
	return NULL;
}

/* True when a sibling after |c| carries |tag|. */
static bool tag_follows(const struct kmip_node *c, uint32_t tag)
{
	for (c = c->next; c != NULL; c = c->next) {
		if (c->tag == tag) {
			return true;
		}
	}
	return false;
}

/*
 * A required field (group) at |i| did not take |c|. Blame |c| when it is out
 * of place (it belongs nowhere later, or the field comes after it), else the
 * absent field.
 */
static int missing(struct dec *d, const struct kmip_struct_desc *desc, size_t i,
		   const struct kmip_node *c)
{
	uint32_t want = desc->fields[i].tag;

	if (c != NULL && (!tag_later(d, desc, i, c->tag) || tag_follows(c, want))) {
		return fail(d, KMIP_E_UNEXPECTED, c->tag);
	}
	return fail(d, KMIP_E_MISSING, want);
}

static void *zalloc(struct kmip_arena *a, size_t n)
{
	void *p = kmip_arena_alloc(a, n);

	if (p != NULL) {
		memset(p, 0, n);
	}
	return p;
}

/* Decodes a sub-structure into |out|, zeroed storage of f->sub->size bytes. */
static int decode_sub(struct dec *d, const struct kmip_field_desc *f, const struct kmip_node *c,
		      void *out)
{
	if (c->placeholder != NULL) {
		return fail(d, KMIP_E_PLACEHOLDER, c->tag);
	}
	return decode_fields(d, f->sub, c->v.child, out);
}

/*
 * Stores one value of |c|. |val| is where the value goes; |len| its length
 * for text and bytes. A structure is decoded in place (|val| is the struct).
 */
static int decode_value(struct dec *d, const struct kmip_field_desc *f, const struct kmip_node *c,
			void *val, size_t *len)
{
	if (f->kind == KMIP_KIND_ANY) {
		memcpy(val, &c, sizeof(c));
		return 0;
	}
	if (f->kind == KMIP_TYPE_STRUCTURE) {
		return decode_sub(d, f, c, val);
	}
	if (c->placeholder != NULL) {
		return fail(d, KMIP_E_PLACEHOLDER, c->tag);
	}
	switch (f->kind) {
	case KMIP_TYPE_INTEGER:
		memcpy(val, &c->v.i32, sizeof(c->v.i32));
		break;
	case KMIP_TYPE_ENUMERATION:
	case KMIP_TYPE_INTERVAL:
		memcpy(val, &c->v.u32, sizeof(c->v.u32));
		break;
	case KMIP_TYPE_BOOLEAN:
		memcpy(val, &c->v.b, sizeof(c->v.b));
		break;
	case KMIP_TYPE_LONG_INTEGER:
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		memcpy(val, &c->v.i64, sizeof(c->v.i64));
		break;
	default: /* Text String, Byte String, Big Integer: a view into the input */
		memcpy(val, &c->v.bytes, sizeof(c->v.bytes));
		*len = c->len;
		break;
	}
	return 0;
}

/* Bytes of one element of a repeated field's array. */
static size_t elem_size(const struct kmip_field_desc *f)
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
		return has_len(f->kind) ? sizeof(struct kmip_bytes) : sizeof(uint32_t);
	}
}

/* Decodes the run of items starting at |*c| that |f| takes into an arena array. */
static int decode_repeated(struct dec *d, const struct kmip_field_desc *f,
			   const struct kmip_node **c, uint8_t *out)
{
	size_t n = 0, size = elem_size(f);
	const struct kmip_node *it = *c;
	uint8_t *arr;
	int err;

	for (; it != NULL && tag_matches(f, it->tag); it = it->next) {
		if (!type_matches(f, it->type)) {
			return fail(d, KMIP_E_TYPE, it->tag);
		}
		n++;
	}
	if ((arr = zalloc(d->arena, n * size)) == NULL) {
		return fail(d, KMIP_E_NOMEM, f->tag);
	}
	for (size_t k = 0; k < n; k++, *c = (*c)->next) {
		uint8_t *el = arr + k * size;
		size_t *len = (size_t *)(el + offsetof(struct kmip_bytes, len));

		if (f->sub != NULL && f->sub == d->indexed) {
			d->err->batch_index = (int)k;
		}
		if ((err = decode_value(d, f, *c, el, len)) != 0) {
			return err;
		}
	}
	if (f->sub != NULL && f->sub == d->indexed) {
		d->err->batch_index = -1;
	}
	memcpy(out + f->offset, &arr, sizeof(arr));
	memcpy(out + f->aux, &n, sizeof(n));
	return 0;
}

/*
 * Keeps a batch item's payload node and decodes it with its operation's
 * descriptor; the Operation field comes first, so it is already in |out|. An
 * unknown operation leaves only the node, for Operation Not Supported.
 */
static int decode_payload(struct dec *d, const struct kmip_struct_desc *desc,
			  const struct kmip_field_desc *f, const struct kmip_node *c, uint8_t *out)
{
	const struct kmip_struct_desc *pd = payload_desc(desc, f, out);
	void *typed;

	memcpy(out + f->aux, &c, sizeof(c));
	if (pd == NULL) {
		return 0;
	}
	if ((typed = zalloc(d->arena, pd->size)) == NULL) {
		return fail(d, KMIP_E_NOMEM, c->tag);
	}
	memcpy(out + f->offset, &typed, sizeof(typed));
	if (c->placeholder != NULL) {
		return fail(d, KMIP_E_PLACEHOLDER, c->tag);
	}
	return decode_fields(d, pd, c->v.child, typed);
}

/* Decodes the single item |c| into field |f| of |out|. */
static int decode_single(struct dec *d, const struct kmip_struct_desc *desc,
			 const struct kmip_field_desc *f, const struct kmip_node *c, uint8_t *out)
{
	void *sub;

	if (f->kind == KMIP_KIND_PAYLOAD) {
		return decode_payload(d, desc, f, c, out);
	}
	if (f->kind != KMIP_TYPE_STRUCTURE) {
		if (has_flag(f)) {
			out[f->aux] = 1;
		}
		return decode_value(d, f, c, out + f->offset, (size_t *)(out + f->aux));
	}
	if ((sub = zalloc(d->arena, f->sub->size)) == NULL) {
		return fail(d, KMIP_E_NOMEM, c->tag);
	}
	memcpy(out + f->offset, &sub, sizeof(sub));
	return decode_sub(d, f, c, sub);
}

/*
 * Walks the children from |first| against the fields in order. Each group
 * takes the next child if it matches, else is absent (an error if required).
 */
static int decode_fields(struct dec *d, const struct kmip_struct_desc *desc,
			 const struct kmip_node *first, uint8_t *out)
{
	const struct kmip_node *c = first;
	int err;

	for (size_t i = 0, end; i < desc->num_fields; i = end) {
		const struct kmip_field_desc *f;
		bool wrong_type;

		end = group_end(desc, i);
		if ((f = match(d, desc, i, end, c, &wrong_type)) == NULL) {
			if (wrong_type) {
				return fail(d, KMIP_E_TYPE, c->tag);
			}
			if (!group_required(d, desc, i, end)) {
				continue;
			}
			return missing(d, desc, i, c);
		}
		if (is_repeated(f)) {
			err = decode_repeated(d, f, &c, out);
		} else if ((err = decode_single(d, desc, f, c, out)) == 0) {
			c = c->next;
		}
		if (err != 0) {
			return err;
		}
	}
	return c == NULL ? 0 : fail(d, KMIP_E_UNEXPECTED, c->tag);
}

int kmip_struct_decode(const struct kmip_struct_desc *desc, const struct kmip_node *node,
		       uint16_t version, struct kmip_arena *arena, void *out,
		       struct kmip_decode_error *out_err)
{
	struct kmip_decode_error scratch;
	struct dec d = {arena, version, NULL, out_err != NULL ? out_err : &scratch};

	d.err->err = 0;
	d.err->tag = node->tag;
	d.err->batch_index = -1;
	if (node->type != KMIP_TYPE_STRUCTURE) {
		return fail(&d, KMIP_E_TYPE, node->tag);
	}
	if (node->placeholder != NULL) {
		return fail(&d, KMIP_E_PLACEHOLDER, node->tag);
	}
	return decode_fields(&d, desc, node->v.child, out);
}

/* ---- Encoding ------------------------------------------------------------ */

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
	if (is_repeated(f)) {
		return load_size(in + f->aux) > 0;
	}
	if (f->kind == KMIP_KIND_PAYLOAD) {
		return load_ptr(in + f->offset) != NULL || load_ptr(in + f->aux) != NULL;
	}
	if (f->kind == KMIP_TYPE_STRUCTURE || f->kind == KMIP_KIND_ANY || has_len(f->kind)) {
		return load_ptr(in + f->offset) != NULL;
	}
	return !has_flag(f) || in[f->aux] != 0;
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
		kmip_write_int(w, f->tag, (int32_t)load_u32(val));
		break;
	case KMIP_TYPE_ENUMERATION:
		kmip_write_enum(w, f->tag, load_u32(val));
		break;
	case KMIP_TYPE_INTERVAL:
		kmip_write_interval(w, f->tag, load_u32(val));
		break;
	case KMIP_TYPE_BOOLEAN:
		kmip_write_bool(w, f->tag, *val != 0);
		break;
	case KMIP_TYPE_LONG_INTEGER:
		kmip_write_long(w, f->tag, load_i64(val));
		break;
	case KMIP_TYPE_DATE_TIME:
		kmip_write_datetime(w, f->tag, load_i64(val));
		break;
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		kmip_write_datetime_ext(w, f->tag, load_i64(val));
		break;
	case KMIP_TYPE_TEXT_STRING:
		kmip_write_text(w, f->tag, load_ptr(val), len);
		break;
	case KMIP_TYPE_BYTE_STRING:
		kmip_write_bytes(w, f->tag, load_ptr(val), len);
		break;
	case KMIP_TYPE_BIG_INTEGER:
		kmip_write_bigint(w, f->tag, load_ptr(val), len);
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
		encode_node(e, f, load_ptr(val));
	} else {
		encode_scalar(e, f, val, len);
	}
}

/* A batch item's payload: typed when its operation has a descriptor, else the node. */
static void encode_payload(struct enc *e, const struct kmip_struct_desc *desc,
			   const struct kmip_field_desc *f, const uint8_t *in)
{
	const uint8_t *typed = load_ptr(in + f->offset);
	const struct kmip_node *node = load_ptr(in + f->aux);
	const struct kmip_struct_desc *pd = payload_desc(desc, f, in);

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
	const uint8_t *p = load_ptr(in + f->offset);

	if (f->kind == KMIP_KIND_PAYLOAD) {
		encode_payload(e, desc, f, in);
	} else if (is_repeated(f)) {
		size_t n = load_size(in + f->aux), size = elem_size(f);

		for (size_t k = 0; k < n; k++) {
			const uint8_t *el = p + k * size;

			encode_value(e, f, el,
				     has_len(f->kind)
					 ? load_size(el + offsetof(struct kmip_bytes, len))
					 : 0);
		}
	} else if (f->kind == KMIP_TYPE_STRUCTURE) {
		encode_value(e, f, p, 0);
	} else {
		encode_value(e, f, in + f->offset, has_len(f->kind) ? load_size(in + f->aux) : 0);
	}
}

/* Writes each group's present member in order; a required group must have one. */
static void encode_fields(struct enc *e, const struct kmip_struct_desc *desc, const uint8_t *in)
{
	for (size_t i = 0, end; i < desc->num_fields && e->err == 0; i = end) {
		const struct kmip_field_desc *f = NULL;
		bool required = false;

		end = group_end(desc, i);
		for (size_t k = i; k < end; k++) {
			const struct kmip_field_desc *g = &desc->fields[k];

			required |= in_version(g, e->version) && g->occurs != KMIP_OPTIONAL &&
				    g->occurs != KMIP_REPEATED;
			if (f == NULL && present(g, in)) {
				f = g;
			}
		}
		if (f == NULL) {
			if (required) {
				enc_fail(e, KMIP_E_MISSING);
			}
		} else if (!in_version(f, e->version)) {
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

/* ---- Messages (KMIP 1.4 §7) --------------------------------------------- */

const struct kmip_operation_desc *kmip_operation_desc(uint32_t operation)
{
	const struct kmip_operation_desc *od;

	if (operation == 0 || operation >= kmip_num_operation_descs) {
		return NULL;
	}
	od = &kmip_operation_descs[operation];
	return od->operation == operation ? od : NULL;
}

uint16_t kmip_version_bit(int32_t major, int32_t minor)
{
	if (major == 1 && minor >= 0 && minor <= 4) {
		return (uint16_t)(KMIP_V1_0 << minor);
	}
	if (major == 2 && minor >= 0 && minor <= 1) {
		return (uint16_t)(KMIP_V2_0 << minor);
	}
	return 0;
}

/*
 * The protocol version a message's header announces, read from the tree
 * before the typed walk (which depends on it). 0 when absent or malformed:
 * the typed walk then reports the fault.
 */
static uint16_t tree_version(const struct kmip_node *msg)
{
	const struct kmip_node *h = msg->v.child, *pv, *major, *minor;

	if (h == NULL || h->type != KMIP_TYPE_STRUCTURE || (pv = h->v.child) == NULL ||
	    pv->tag != KMIP_TAG_PROTOCOL_VERSION || pv->type != KMIP_TYPE_STRUCTURE) {
		return 0;
	}
	major = pv->v.child;
	minor = major != NULL ? major->next : NULL;
	if (minor == NULL || major->type != KMIP_TYPE_INTEGER || minor->type != KMIP_TYPE_INTEGER) {
		return 0;
	}
	return kmip_version_bit(major->v.i32, minor->v.i32);
}

/*
 * Sizes the arena's first heap block from the message length, so that one
 * allocation holds the tree and the typed structures. Eight bytes per input
 * byte covers every message of the benchmarks and the vCenter session
 * (tests/unit/kmip/test_msg.c checks num_allocs); a larger message still
 * decodes, with a second block.
 */
static void reserve(struct kmip_arena *a, size_t len)
{
	if (a->cap != 0 || len > (SIZE_MAX - 1024) / 8) {
		return;
	}
	if (kmip_arena_alloc(a, len * 8 + 1024) != NULL) {
		a->used = 0; /* keep the block, give back its space */
	}
}

/* Batch Count must equal the number of Batch Items (KMIP 1.4 §6.14). */
static int check_batch_count(struct dec *d, int32_t batch_count, size_t num_items)
{
	if (batch_count >= 0 && (size_t)batch_count == num_items) {
		return 0;
	}
	if (batch_count >= 0 && (size_t)batch_count > num_items) {
		d->err->batch_index = (int)num_items;
		return fail(d, KMIP_E_MISSING, KMIP_TAG_BATCH_ITEM);
	}
	d->err->batch_index = batch_count < 0 ? 0 : batch_count;
	return fail(d, KMIP_E_UNEXPECTED, KMIP_TAG_BATCH_ITEM);
}

static int decode_message(const uint8_t *data, size_t len, const struct kmip_limits *lim,
			  struct dec *d, const struct kmip_struct_desc *desc, uint8_t **out)
{
	struct kmip_node *tree;
	uint8_t *msg;
	int err;

	d->err->err = 0;
	d->err->tag = 0;
	d->err->batch_index = -1;
	reserve(d->arena, len);
	if ((err = kmip_decode_tree(data, len, lim, d->arena, &tree)) != 0) {
		return fail(d, err, 0);
	}
	if (tree->tag != desc->tag) {
		return fail(d, KMIP_E_UNEXPECTED, tree->tag);
	}
	if (tree->type != KMIP_TYPE_STRUCTURE) {
		return fail(d, KMIP_E_TYPE, tree->tag);
	}
	d->version = tree_version(tree);
	if ((msg = zalloc(d->arena, desc->size)) == NULL) {
		return fail(d, KMIP_E_NOMEM, tree->tag);
	}
	if ((err = decode_fields(d, desc, tree->v.child, msg)) != 0) {
		return err;
	}
	*out = msg;
	return 0;
}

int kmip_request_decode(const uint8_t *data, size_t len, const struct kmip_limits *lim,
			struct kmip_arena *arena, struct kmip_request_message **out,
			struct kmip_decode_error *out_err)
{
	struct kmip_decode_error scratch;
	struct dec d = {arena, 0, &kmip_request_batch_item_desc,
			out_err != NULL ? out_err : &scratch};
	struct kmip_request_message *m;
	uint8_t *raw;
	int err;

	if ((err = decode_message(data, len, lim, &d, &kmip_request_message_desc, &raw)) != 0) {
		return err;
	}
	m = (struct kmip_request_message *)raw;
	if ((err = check_batch_count(&d, m->request_header->batch_count, m->num_batch_items)) !=
	    0) {
		return err;
	}
	*out = m;
	return 0;
}

int kmip_response_decode(const uint8_t *data, size_t len, const struct kmip_limits *lim,
			 struct kmip_arena *arena, struct kmip_response_message **out,
			 struct kmip_decode_error *out_err)
{
	struct kmip_decode_error scratch;
	struct dec d = {arena, 0, &kmip_response_batch_item_desc,
			out_err != NULL ? out_err : &scratch};
	struct kmip_response_message *m;
	uint8_t *raw;
	int err;

	if ((err = decode_message(data, len, lim, &d, &kmip_response_message_desc, &raw)) != 0) {
		return err;
	}
	m = (struct kmip_response_message *)raw;
	if ((err = check_batch_count(&d, m->response_header->batch_count, m->num_batch_items)) !=
	    0) {
		return err;
	}
	*out = m;
	return 0;
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
