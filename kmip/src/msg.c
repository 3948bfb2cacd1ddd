/*
 * Decoding of typed KMIP structures and messages. One walker, driven by the
 * descriptors generated from kmip/spec/structs.txt, checks the order, type,
 * occurrence and version of every field; msg_encode.c walks the same
 * descriptors to write. The walker reads either an item tree
 * (kmip_struct_decode) or TTLV bytes directly (whole messages): reading the
 * bytes once, through the same validating reader the tree uses, halves the
 * work per message, and only the subtrees kept as nodes ("any" fields) are
 * built as trees.
 */
#include <string.h>

#include "keel/kmip.h"
#include "kmip_int.h"
#include "msg_int.h"

struct dec {
	struct kmip_arena *arena;
	uint16_t version;			/* one KMIP_V* bit, or 0 to accept every version */
	const struct kmip_struct_desc *indexed; /* elements of this type are batch items */
	struct kmip_decode_error *err;
};

/* The children of a structure being walked: tree nodes, or TTLV bytes. */
struct cur {
	bool bytes;
	const struct kmip_node *node; /* the current child; NULL at the end */
	struct kmip_reader r;	      /* the remaining children, validated as read */
};

/* One child as taken from a cursor. */
struct item {
	uint32_t tag;
	uint8_t type;
	uint32_t len;
	union {
		int32_t i32;
		uint32_t u32;
		int64_t i64;
		bool b;
		const uint8_t *p;
	} v;
	const struct kmip_node *node; /* tree mode: the child itself */
	struct cur child;	      /* a structure's children */
};

static int decode_fields(struct dec *d, const struct kmip_struct_desc *desc, struct cur *c,
			 uint8_t *out);

/* Records where decoding failed; the first failure wins. */
static int fail(struct dec *d, int err, uint32_t tag)
{
	if (d->err->err == 0) {
		d->err->err = err;
		d->err->tag = tag;
	}
	return err;
}

/* Fields live at offsets in untyped storage: copy, never cast, to write them. */
static void store_ptr(void *dst, const void *p)
{
	memcpy(dst, &p, sizeof(p));
}

static void *zalloc(struct kmip_arena *a, size_t n)
{
	void *p = kmip_arena_alloc(a, n);

	if (p != NULL) {
		memset(p, 0, n);
	}
	return p;
}

/* ---- Cursor ---------------------------------------------------------- */

/* The tag and type of the current child: 1, or 0 at the end, or a TTLV error. */
static int cur_peek(const struct cur *c, uint32_t *tag, uint8_t *type)
{
	int err;

	if (!c->bytes) {
		if (c->node == NULL) {
			return 0;
		}
		*tag = c->node->tag;
		*type = c->node->type;
		return 1;
	}
	if (kmip_reader_empty(&c->r)) {
		return 0;
	}
	err = kmip_reader_peek(&c->r, tag, type);
	return err == 0 ? 1 : err;
}

/* True when a child after the current one carries |tag|. */
static bool cur_follows(const struct cur *c, uint32_t tag)
{
	struct kmip_reader r = c->r;
	struct kmip_item it;

	if (!c->bytes) {
		for (const struct kmip_node *n = c->node->next; n != NULL; n = n->next) {
			if (n->tag == tag) {
				return true;
			}
		}
		return false;
	}
	if (kmip_read_item(&r, &it) != 0) {
		return false;
	}
	while (kmip_read_item(&r, &it) == 0) {
		if (it.tag == tag) {
			return true;
		}
	}
	return false;
}

static int take_node(struct dec *d, struct cur *c, struct item *out)
{
	const struct kmip_node *n = c->node;

	if (n->placeholder != NULL) {
		return fail(d, KMIP_E_PLACEHOLDER, n->tag);
	}
	out->tag = n->tag;
	out->type = n->type;
	out->len = n->len;
	out->node = n;
	switch (n->type) {
	case KMIP_TYPE_STRUCTURE:
		out->child.bytes = false;
		out->child.node = n->v.child;
		break;
	case KMIP_TYPE_INTEGER:
	case KMIP_TYPE_ENUMERATION:
	case KMIP_TYPE_INTERVAL:
		out->v.u32 = n->v.u32;
		break;
	case KMIP_TYPE_BOOLEAN:
		out->v.b = n->v.b;
		break;
	case KMIP_TYPE_LONG_INTEGER:
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		out->v.i64 = n->v.i64;
		break;
	default:
		out->v.p = n->v.bytes;
		break;
	}
	c->node = n->next;
	return 0;
}

/* Builds the item tree of the next child: a field kept as a node. */
static int take_subtree(struct dec *d, struct cur *c, uint32_t tag, struct item *out)
{
	const uint8_t *start = c->r.data;
	struct kmip_limits lim;
	struct kmip_item it;
	struct kmip_node *n;
	int err;

	if ((err = kmip_read_item(&c->r, &it)) != 0) {
		return fail(d, err, tag);
	}
	/* Its own depth limit: what is left below this level. */
	lim.max_message_len = (size_t)(c->r.data - start);
	lim.max_depth = c->r.max_depth - c->r.depth + 1;
	if ((err = kmip_decode_tree(start, lim.max_message_len, &lim, d->arena, &n)) != 0) {
		return fail(d, err, it.tag);
	}
	out->tag = it.tag;
	out->type = it.type;
	out->node = n;
	return 0;
}

/* Reads the next child from the bytes, validating it as the tree decoder would. */
static int take_bytes(struct dec *d, struct cur *c, uint32_t tag, uint8_t type, bool keep,
		      struct item *out)
{
	struct kmip_item it;
	int err;

	if (keep) {
		return take_subtree(d, c, tag, out);
	}
	out->tag = tag;
	out->type = type;
	out->node = NULL;
	if (type == KMIP_TYPE_STRUCTURE) {
		out->child.bytes = true;
		err = kmip_read_struct(&c->r, tag, &out->child.r);
		return err == 0 ? 0 : fail(d, err, tag);
	}
	if ((err = kmip_read_item(&c->r, &it)) != 0) {
		return fail(d, err, tag);
	}
	out->len = it.value_len;
	if (msg_has_len(type)) {
		out->v.p = it.value;
	} else if (it.value_len == 4) { /* Integer, Enumeration, Interval */
		out->v.u32 = kmip_load_be32(it.value);
	} else if (type == KMIP_TYPE_BOOLEAN) {
		out->v.b = kmip_load_be64(it.value) != 0;
	} else {
		out->v.i64 = (int64_t)kmip_load_be64(it.value);
	}
	return 0;
}

/* Takes the current child (known to be |tag|, |type|); |keep| wants it as a node. */
static int cur_take(struct dec *d, struct cur *c, uint32_t tag, uint8_t type, bool keep,
		    struct item *out)
{
	return c->bytes ? take_bytes(d, c, tag, type, keep, out) : take_node(d, c, out);
}

/* A structure's children must all be used (KMIP 1.4 §9.1.1.4). */
static int cur_done(struct dec *d, const struct cur *c)
{
	uint32_t tag;
	uint8_t type;

	int more = cur_peek(c, &tag, &type);

	if (more < 0) {
		return fail(d, more, 0);
	}
	return more > 0 ? fail(d, KMIP_E_UNEXPECTED, tag) : 0;
}

/* ---- Matching fields ---------------------------------------------------- */

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
 * The field of group [i, end) that takes a child |tag| of |type|, or NULL.
 * A member whose tag matches but whose type does not sets |*wrong_type|: the
 * Key Value of a Key Block, for one, is a structure or a Byte String (KMIP
 * 1.4 §2.1.3).
 */
static const struct kmip_field_desc *match(const struct dec *d, const struct kmip_struct_desc *desc,
					   size_t i, size_t end, uint32_t tag, uint8_t type,
					   bool *wrong_type)
{
	*wrong_type = false;
	for (; i < end; i++) {
		const struct kmip_field_desc *f = &desc->fields[i];

		if (!tag_matches(f, tag) || !msg_in_version(f, d->version)) {
			continue;
		}
		if (type_matches(f, type)) {
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
		if (msg_required(&desc->fields[i], d->version)) {
			return true;
		}
	}
	return false;
}

/* True when a field from |i| on (in this version) would take |tag|. */
static bool tag_later(const struct dec *d, const struct kmip_struct_desc *desc, size_t i,
		      uint32_t tag)
{
	for (; i < desc->num_fields; i++) {
		if (msg_in_version(&desc->fields[i], d->version) &&
		    tag_matches(&desc->fields[i], tag)) {
			return true;
		}
	}
	return false;
}

/*
 * A required field (group) at |i| did not take the current child. Blame the
 * child when it is out of place (it belongs nowhere later, or the field comes
 * after it), else the absent field.
 */
static int missing(struct dec *d, const struct kmip_struct_desc *desc, size_t i,
		   const struct cur *c)
{
	uint32_t want = desc->fields[i].tag, tag;
	uint8_t type;

	if (cur_peek(c, &tag, &type) > 0 && (!tag_later(d, desc, i, tag) || cur_follows(c, want))) {
		return fail(d, KMIP_E_UNEXPECTED, tag);
	}
	return fail(d, KMIP_E_MISSING, want);
}

/* ---- Storing values ----------------------------------------------------- */

/*
 * Stores one value. |val| is where it goes (the struct itself for a
 * structure, decoded in place); |len| receives a text or bytes length.
 */
static int store_value(struct dec *d, const struct kmip_field_desc *f, struct item *it, void *val,
		       size_t *len)
{
	switch (f->kind) {
	case KMIP_KIND_ANY:
		store_ptr(val, it->node);
		return 0;
	case KMIP_TYPE_STRUCTURE:
		return decode_fields(d, f->sub, &it->child, val);
	case KMIP_TYPE_INTEGER:
	case KMIP_TYPE_ENUMERATION:
	case KMIP_TYPE_INTERVAL:
		memcpy(val, &it->v.u32, sizeof(it->v.u32));
		return 0;
	case KMIP_TYPE_BOOLEAN:
		memcpy(val, &it->v.b, sizeof(it->v.b));
		return 0;
	case KMIP_TYPE_LONG_INTEGER:
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		memcpy(val, &it->v.i64, sizeof(it->v.i64));
		return 0;
	default: /* Text String, Byte String, Big Integer: a view into the input */
		memcpy(val, &it->v.p, sizeof(it->v.p));
		*len = it->len;
		return 0;
	}
}

/*
 * Steps over the next item by its header alone: counting a run must not
 * validate (UTF-8 and all) what decoding it will validate next.
 */
static bool skip_bytes(struct kmip_reader *r)
{
	uint64_t total;

	if (r->len < 8) {
		return false;
	}
	total = 8 + (((uint64_t)kmip_load_be32(r->data + 4) + 7) & ~(uint64_t)7);
	if (total > r->len) {
		return false;
	}
	r->data += total;
	r->len -= (size_t)total;
	return true;
}

/* Counts the run of children from the current one that |f| takes. */
static size_t count_run(const struct dec *d, const struct kmip_field_desc *f, const struct cur *c)
{
	struct cur probe = *c;
	struct item it;
	struct dec quiet = *d;
	struct kmip_decode_error ignored = {0};
	uint32_t tag;
	uint8_t type;
	size_t n = 0;

	quiet.err = &ignored;
	while (cur_peek(&probe, &tag, &type) > 0 && tag_matches(f, tag)) {
		if (probe.bytes ? !skip_bytes(&probe.r) : take_node(&quiet, &probe, &it) != 0) {
			break;
		}
		n++;
	}
	return n;
}

/* Decodes the run of children that |f| takes into an arena array. */
static int decode_repeated(struct dec *d, const struct kmip_field_desc *f, struct cur *c,
			   uint8_t *out)
{
	size_t n = count_run(d, f, c), size = msg_elem_size(f);
	uint8_t *arr;
	int err;

	if (n > SIZE_MAX / size || (arr = zalloc(d->arena, n * size)) == NULL) {
		return fail(d, KMIP_E_NOMEM, f->tag);
	}
	for (size_t k = 0; k < n; k++) {
		uint8_t *el = arr + k * size;
		struct item it;
		uint32_t tag;
		uint8_t type;

		if (f->sub != NULL && f->sub == d->indexed) {
			d->err->batch_index = (int)k;
		}
		if (cur_peek(c, &tag, &type) <= 0) {
			return fail(d, KMIP_E_TRUNCATED, f->tag);
		}
		if (!type_matches(f, type)) {
			return fail(d, KMIP_E_TYPE, tag);
		}
		if ((err = cur_take(d, c, tag, type, f->kind == KMIP_KIND_ANY, &it)) != 0 ||
		    (err = store_value(d, f, &it, el,
				       (size_t *)(el + offsetof(struct kmip_bytes, len)))) != 0 ||
		    (f->kind == KMIP_TYPE_STRUCTURE && (err = cur_done(d, &it.child)) != 0)) {
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
 * A batch item's payload, typed by its operation's descriptor. An operation
 * without one keeps the payload as a node, for Operation Not Supported.
 */
static int decode_payload(struct dec *d, const struct kmip_struct_desc *desc,
			  const struct kmip_field_desc *f, struct cur *c, uint8_t *out)
{
	const struct kmip_struct_desc *pd = msg_payload_desc(desc, f, out, d->version);
	struct item it;
	void *typed;
	int err;

	if ((err = cur_take(d, c, f->tag, KMIP_TYPE_STRUCTURE, pd == NULL, &it)) != 0) {
		return err;
	}
	if (pd == NULL) {
		store_ptr(out + f->aux, it.node);
		return 0;
	}
	if ((typed = zalloc(d->arena, pd->size)) == NULL) {
		return fail(d, KMIP_E_NOMEM, f->tag);
	}
	memcpy(out + f->offset, &typed, sizeof(typed));
	if ((err = decode_fields(d, pd, &it.child, typed)) != 0) {
		return err;
	}
	return cur_done(d, &it.child);
}

/* Decodes the current child (|tag|, |type|) into the single field |f| of |out|. */
static int decode_single(struct dec *d, const struct kmip_struct_desc *desc,
			 const struct kmip_field_desc *f, struct cur *c, uint32_t tag, uint8_t type,
			 uint8_t *out)
{
	struct item it;
	void *val = out + f->offset;
	int err;

	if (f->kind == KMIP_KIND_PAYLOAD) {
		return decode_payload(d, desc, f, c, out);
	}
	if ((err = cur_take(d, c, tag, type, f->kind == KMIP_KIND_ANY, &it)) != 0) {
		return err;
	}
	if (f->kind == KMIP_TYPE_STRUCTURE) {
		if ((val = zalloc(d->arena, f->sub->size)) == NULL) {
			return fail(d, KMIP_E_NOMEM, tag);
		}
		memcpy(out + f->offset, &val, sizeof(val));
		if ((err = decode_fields(d, f->sub, &it.child, val)) != 0) {
			return err;
		}
		return cur_done(d, &it.child);
	}
	if (msg_has_flag(f)) {
		out[f->aux] = 1;
	}
	return store_value(d, f, &it, val, (size_t *)(out + f->aux));
}

/*
 * Walks the children against the fields in order. Each group takes the next
 * child if it matches, else is absent (an error if required). Leftover
 * children are the caller's to reject (cur_done).
 */
static int decode_fields(struct dec *d, const struct kmip_struct_desc *desc, struct cur *c,
			 uint8_t *out)
{
	uint32_t tag = 0;
	uint8_t type = 0;
	int have = -1; /* the current child's tag and type are known when >= 0 */

	for (size_t i = 0, end; i < desc->num_fields; i = end) {
		const struct kmip_field_desc *head = &desc->fields[i], *f = NULL;
		bool wrong_type = false;
		int err;

		if (have < 0 && (have = cur_peek(c, &tag, &type)) < 0) {
			return fail(d, have, 0);
		}
		end = i + head->group;
		if (msg_in_group(head)) {
			f = have > 0 ? match(d, desc, i, end, tag, type, &wrong_type) : NULL;
		} else if (have > 0 && tag_matches(head, tag) && msg_in_version(head, d->version)) {
			if (!type_matches(head, type)) {
				return fail(d, KMIP_E_TYPE, tag);
			}
			f = head;
		}
		if (f == NULL) {
			if (wrong_type) {
				return fail(d, KMIP_E_TYPE, tag);
			}
			if (group_required(d, desc, i, end)) {
				return missing(d, desc, i, c);
			}
			continue;
		}
		err = msg_is_repeated(f) ? decode_repeated(d, f, c, out)
					 : decode_single(d, desc, f, c, tag, type, out);
		if (err != 0) {
			return err;
		}
		have = -1;
	}
	return 0;
}

int kmip_struct_decode(const struct kmip_struct_desc *desc, const struct kmip_node *node,
		       uint16_t version, struct kmip_arena *arena, void *out,
		       struct kmip_decode_error *out_err)
{
	struct kmip_decode_error scratch;
	struct dec d = {arena, version, NULL, out_err != NULL ? out_err : &scratch};
	struct cur c = {.bytes = false};
	int err;

	d.err->err = 0;
	d.err->tag = node->tag;
	d.err->batch_index = -1;
	if (node->type != KMIP_TYPE_STRUCTURE) {
		return fail(&d, KMIP_E_TYPE, node->tag);
	}
	if (node->placeholder != NULL) {
		return fail(&d, KMIP_E_PLACEHOLDER, node->tag);
	}
	c.node = node->v.child;
	if ((err = decode_fields(&d, desc, &c, out)) != 0) {
		return err;
	}
	return cur_done(&d, &c);
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
 * The protocol version a message's header announces (its first field, KMIP
 * 1.4 §7.2), read ahead of the typed walk that depends on it. 0 when absent
 * or malformed: the typed walk then reports the fault.
 */
static uint16_t peek_version(const struct kmip_reader *msg, uint32_t header_tag)
{
	struct kmip_reader r = *msg, h, pv;
	int32_t major, minor;

	if (kmip_read_struct(&r, header_tag, &h) != 0 ||
	    kmip_read_struct(&h, KMIP_TAG_PROTOCOL_VERSION, &pv) != 0 ||
	    kmip_read_int(&pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR, &major) != 0 ||
	    kmip_read_int(&pv, KMIP_TAG_PROTOCOL_VERSION_MINOR, &minor) != 0) {
		return 0;
	}
	return kmip_version_bit(major, minor);
}

/*
 * Sizes the arena from the message length, so that one place holds the typed
 * structures and any kept subtrees: the caller's storage if it has room, else
 * one heap block. Four bytes per input byte covers every message of the
 * vCenter session and the benchmarks (the tests check num_allocs); a larger
 * message still decodes, with a second block.
 */
static int reserve(struct kmip_arena *a, size_t len)
{
	if (a->blocks != NULL) {
		return 0; /* a block exists */
	}
	if (len > (SIZE_MAX - 1024) / 4) {
		return KMIP_E_TOO_BIG;
	}
	return kmip_arena_reserve(a, len * 4 + 1024);
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

/* The message structure: exactly one item filling |len| bytes (KMIP 1.4 §7.1). */
static int decode_message(const uint8_t *data, size_t len, const struct kmip_limits *lim,
			  struct dec *d, const struct kmip_struct_desc *desc, uint8_t **out)
{
	struct kmip_reader r;
	struct cur c = {.bytes = true};
	uint32_t tag = 0;
	uint8_t type;
	uint8_t *msg;
	int err;

	d->err->err = 0;
	d->err->tag = 0;
	d->err->batch_index = -1;
	if ((err = kmip_reader_init(&r, data, len, lim)) != 0 ||
	    (err = reserve(d->arena, len)) != 0 || (err = kmip_reader_peek(&r, &tag, &type)) != 0 ||
	    (err = kmip_read_struct(&r, desc->tag, &c.r)) != 0 ||
	    (err = kmip_reader_finish(&r)) != 0) {
		return fail(d, err, tag);
	}
	d->version = peek_version(&c.r, desc->fields[0].tag);
	if ((msg = zalloc(d->arena, desc->size)) == NULL) {
		return fail(d, KMIP_E_NOMEM, tag);
	}
	if ((err = decode_fields(d, desc, &c, msg)) != 0 || (err = cur_done(d, &c)) != 0) {
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
