/*
 * Typed messages: negative cases of the descriptor walk (each reports the
 * error, the tag and the batch item), and round trips of hand-built 1.x
 * (Template-Attribute) and 2.x (Attributes) messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keel/kmip.h"

#define OP_CREATE	 0x01u
#define OP_LOCATE	 0x08u
#define OP_GET		 0x0Au
#define OP_ADD_ATTRIBUTE 0x0Du
#define OP_REGISTER	 0x03u
#define OP_UNKNOWN	 0x7777u
#define TAG_EXTENSION	 0x540001u /* an extension tag no structure declares */

struct built {
	struct kmip_writer w;
	const uint8_t *bytes;
	size_t len;
};

static void protocol_version(struct kmip_writer *w, int32_t major, int32_t minor)
{
	kmip_write_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, major);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MINOR, minor);
	kmip_write_end(w);
}

/* Opens a Request Message and writes a header with |count| items. */
static void begin_request(struct built *b, int32_t major, int32_t minor, int32_t count)
{
	kmip_writer_init(&b->w, 1u << 16);
	kmip_write_begin(&b->w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(&b->w, KMIP_TAG_REQUEST_HEADER);
	protocol_version(&b->w, major, minor);
	kmip_write_int(&b->w, KMIP_TAG_BATCH_COUNT, count);
	kmip_write_end(&b->w);
}

/* Opens a batch item for |op| and its payload. */
static void begin_item(struct built *b, uint32_t op)
{
	kmip_write_begin(&b->w, KMIP_TAG_BATCH_ITEM);
	kmip_write_enum(&b->w, KMIP_TAG_OPERATION, op);
	kmip_write_begin(&b->w, KMIP_TAG_REQUEST_PAYLOAD);
}

static void end_item(struct built *b)
{
	kmip_write_end(&b->w);
	kmip_write_end(&b->w);
}

static void finish(struct built *b)
{
	assert_int_equal(kmip_writer_finish(&b->w, &b->bytes, &b->len), 0);
}

/* Decodes |b| as a request and expects the error, its tag and its batch item. */
static void expect_error(struct built *b, int err, uint32_t tag, int index)
{
	struct kmip_arena arena;
	struct kmip_request_message *m;
	struct kmip_decode_error e;

	finish(b);
	kmip_arena_init(&arena, NULL, 0);
	assert_int_equal(
	    kmip_request_decode(b->bytes, b->len, &kmip_default_limits, &arena, &m, &e), err);
	assert_int_equal(e.err, err);
	assert_int_equal(e.tag, tag);
	assert_int_equal(e.batch_index, index);
	kmip_arena_cleanup(&arena);
	kmip_writer_cleanup(&b->w);
}

static void uid_payload(struct built *b, uint32_t op)
{
	begin_item(b, op);
	kmip_write_text(&b->w, KMIP_TAG_UNIQUE_IDENTIFIER, "1", 1);
	end_item(b);
}

/* ---- Negative cases ----------------------------------------------------- */

static void test_missing_required(void **state)
{
	struct built b;

	(void)state;
	kmip_writer_init(&b.w, 1u << 16);
	kmip_write_begin(&b.w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(&b.w, KMIP_TAG_REQUEST_HEADER);
	protocol_version(&b.w, 1, 4);
	kmip_write_end(&b.w); /* no Batch Count */
	uid_payload(&b, OP_GET);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_MISSING, KMIP_TAG_BATCH_COUNT, -1);
}

static void test_missing_required_in_payload(void **state)
{
	struct built b;

	(void)state;
	begin_request(&b, 1, 4, 1);
	begin_item(&b, OP_CREATE);
	kmip_write_enum(&b.w, KMIP_TAG_OBJECT_TYPE, 2); /* no Template-Attribute */
	end_item(&b);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_MISSING, KMIP_TAG_TEMPLATE_ATTRIBUTE, 0);
}

static void test_wrong_type(void **state)
{
	struct built b;

	(void)state;
	kmip_writer_init(&b.w, 1u << 16);
	kmip_write_begin(&b.w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(&b.w, KMIP_TAG_REQUEST_HEADER);
	protocol_version(&b.w, 1, 4);
	kmip_write_enum(&b.w, KMIP_TAG_BATCH_COUNT, 1); /* an Integer in KMIP 1.4 §6.14 */
	kmip_write_end(&b.w);
	uid_payload(&b, OP_GET);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_TYPE, KMIP_TAG_BATCH_COUNT, -1);
}

static void test_out_of_order_item(void **state)
{
	struct built b;

	(void)state;
	begin_request(&b, 1, 4, 1);
	kmip_write_begin(&b.w, KMIP_TAG_BATCH_ITEM);
	kmip_write_bytes(&b.w, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, (const uint8_t *)"x", 1);
	kmip_write_enum(&b.w, KMIP_TAG_OPERATION, OP_GET);
	kmip_write_begin(&b.w, KMIP_TAG_REQUEST_PAYLOAD);
	kmip_write_end(&b.w);
	kmip_write_end(&b.w);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_UNEXPECTED, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, 0);
}

static void test_out_of_order_payload(void **state)
{
	struct built b;

	(void)state;
	begin_request(&b, 1, 4, 2);
	uid_payload(&b, OP_GET);
	begin_item(&b, OP_GET);
	kmip_write_enum(&b.w, KMIP_TAG_KEY_FORMAT_TYPE, 1);
	kmip_write_text(&b.w, KMIP_TAG_UNIQUE_IDENTIFIER, "1", 1); /* belongs first */
	end_item(&b);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_UNEXPECTED, KMIP_TAG_UNIQUE_IDENTIFIER, 1);
}

static void test_unknown_tag(void **state)
{
	struct built b;

	(void)state;
	kmip_writer_init(&b.w, 1u << 16);
	kmip_write_begin(&b.w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(&b.w, KMIP_TAG_REQUEST_HEADER);
	kmip_write_begin(&b.w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(&b.w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	kmip_write_int(&b.w, KMIP_TAG_PROTOCOL_VERSION_MINOR, 4);
	kmip_write_int(&b.w, TAG_EXTENSION, 7);
	kmip_write_end(&b.w);
	kmip_write_int(&b.w, KMIP_TAG_BATCH_COUNT, 1);
	kmip_write_end(&b.w);
	uid_payload(&b, OP_GET);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_UNEXPECTED, TAG_EXTENSION, -1);
}

static void test_unknown_tag_in_payload(void **state)
{
	struct built b;

	(void)state;
	begin_request(&b, 1, 4, 1);
	begin_item(&b, OP_GET);
	kmip_write_text(&b.w, KMIP_TAG_UNIQUE_IDENTIFIER, "1", 1);
	kmip_write_int(&b.w, TAG_EXTENSION, 7);
	end_item(&b);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_UNEXPECTED, TAG_EXTENSION, 0);
}

static void test_batch_count_too_high(void **state)
{
	struct built b;

	(void)state;
	begin_request(&b, 1, 4, 2);
	uid_payload(&b, OP_GET);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_MISSING, KMIP_TAG_BATCH_ITEM, 1);
}

static void test_batch_count_too_low(void **state)
{
	struct built b;

	(void)state;
	begin_request(&b, 1, 4, 1);
	uid_payload(&b, OP_GET);
	uid_payload(&b, OP_GET);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_UNEXPECTED, KMIP_TAG_BATCH_ITEM, 1);
}

/* A Create payload under Operation Get: Get's descriptor meets Object Type. */
static void test_payload_for_wrong_operation(void **state)
{
	struct built b;

	(void)state;
	begin_request(&b, 1, 4, 1);
	begin_item(&b, OP_GET);
	kmip_write_enum(&b.w, KMIP_TAG_OBJECT_TYPE, 2);
	kmip_write_begin(&b.w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	kmip_write_end(&b.w);
	end_item(&b);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_UNEXPECTED, KMIP_TAG_OBJECT_TYPE, 0);
}

/* Fields exist only in some versions (KMIP 1.4 §4.11 Key Wrap Type is 1.4+). */
static void test_field_not_in_version(void **state)
{
	struct built b;

	(void)state;
	begin_request(&b, 1, 1, 1);
	begin_item(&b, OP_GET);
	kmip_write_text(&b.w, KMIP_TAG_UNIQUE_IDENTIFIER, "1", 1);
	kmip_write_enum(&b.w, KMIP_TAG_KEY_WRAP_TYPE, 1);
	end_item(&b);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_UNEXPECTED, KMIP_TAG_KEY_WRAP_TYPE, 0);

	/* 2.0 replaced Template-Attribute with Attributes. */
	begin_request(&b, 2, 0, 1);
	begin_item(&b, OP_CREATE);
	kmip_write_enum(&b.w, KMIP_TAG_OBJECT_TYPE, 2);
	kmip_write_begin(&b.w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	kmip_write_end(&b.w);
	end_item(&b);
	kmip_write_end(&b.w);
	expect_error(&b, KMIP_E_UNEXPECTED, KMIP_TAG_TEMPLATE_ATTRIBUTE, 0);
}

static void test_truncated(void **state)
{
	struct built b;
	struct kmip_arena arena;
	struct kmip_request_message *m;
	struct kmip_decode_error e;

	(void)state;
	begin_request(&b, 1, 4, 1);
	uid_payload(&b, OP_GET);
	kmip_write_end(&b.w);
	finish(&b);
	kmip_arena_init(&arena, NULL, 0);
	assert_int_equal(
	    kmip_request_decode(b.bytes, b.len - 8, &kmip_default_limits, &arena, &m, &e),
	    KMIP_E_TRUNCATED);
	assert_int_equal(e.batch_index, -1);
	kmip_arena_cleanup(&arena);
	kmip_writer_cleanup(&b.w);
}

/* An operation without descriptors keeps its payload as a node (Operation Not Supported). */
static void test_unknown_operation(void **state)
{
	struct built b;
	struct kmip_arena arena;
	struct kmip_request_message *m;
	struct kmip_writer w;
	const uint8_t *out;
	size_t out_len;

	(void)state;
	begin_request(&b, 1, 4, 1);
	begin_item(&b, OP_UNKNOWN);
	kmip_write_int(&b.w, TAG_EXTENSION, 7);
	end_item(&b);
	kmip_write_end(&b.w);
	finish(&b);
	kmip_arena_init(&arena, NULL, 0);
	assert_int_equal(
	    kmip_request_decode(b.bytes, b.len, &kmip_default_limits, &arena, &m, NULL), 0);
	assert_null(kmip_operation_desc(OP_UNKNOWN));
	assert_int_equal(m->batch_items[0].operation, OP_UNKNOWN);
	assert_null(m->batch_items[0].request_payload);
	assert_non_null(m->batch_items[0].request_payload_node);
	kmip_writer_init(&w, 1u << 16);
	assert_int_equal(kmip_request_encode(&w, m), 0);
	assert_int_equal(kmip_writer_finish(&w, &out, &out_len), 0);
	assert_int_equal(out_len, b.len);
	assert_memory_equal(out, b.bytes, b.len);
	kmip_writer_cleanup(&w);
	kmip_arena_cleanup(&arena);
	kmip_writer_cleanup(&b.w);
}

/* Two objects where a Get response takes exactly one (a oneof group). */
static void test_oneof_twice(void **state)
{
	struct kmip_writer w;
	struct kmip_arena arena;
	struct kmip_node *tree;
	struct kmip_get_response out;
	struct kmip_decode_error e;
	const uint8_t *bytes;
	size_t len;

	(void)state;
	kmip_writer_init(&w, 1u << 16);
	kmip_write_begin(&w, KMIP_TAG_RESPONSE_PAYLOAD);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, 4);
	kmip_write_text(&w, KMIP_TAG_UNIQUE_IDENTIFIER, "1", 1);
	kmip_write_begin(&w, KMIP_TAG_OPAQUE_OBJECT);
	kmip_write_enum(&w, KMIP_TAG_OPAQUE_DATA_TYPE, 0x80000000u);
	kmip_write_bytes(&w, KMIP_TAG_OPAQUE_DATA_VALUE, (const uint8_t *)"ab", 2);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_OPAQUE_OBJECT);
	kmip_write_end(&w);
	kmip_write_end(&w);
	assert_int_equal(kmip_writer_finish(&w, &bytes, &len), 0);
	kmip_arena_init(&arena, NULL, 0);
	assert_int_equal(kmip_decode_tree(bytes, len, &kmip_default_limits, &arena, &tree), 0);
	memset(&out, 0, sizeof(out));
	assert_int_equal(
	    kmip_struct_decode(&kmip_get_response_desc, tree, KMIP_V1_4, &arena, &out, &e),
	    KMIP_E_UNEXPECTED);
	assert_int_equal(e.tag, KMIP_TAG_OPAQUE_OBJECT);
	kmip_arena_cleanup(&arena);
	kmip_writer_cleanup(&w);
}

static void test_encode_errors(void **state)
{
	struct kmip_writer w;
	struct kmip_get_response get = {
	    .object_type = 2, .unique_identifier = "1", .unique_identifier_len = 1};
	struct kmip_template_attribute ta = {0};
	struct kmip_create_request create = {.object_type = 2, .template_attribute = &ta};

	(void)state;
	kmip_writer_init(&w, 1u << 16);
	/* No object: the oneof group is required (KMIP 1.4 §4.11). */
	assert_int_equal(kmip_struct_encode(&w, &kmip_get_response_desc, &get, KMIP_V1_4),
			 KMIP_E_MISSING);
	kmip_writer_cleanup(&w);
	kmip_writer_init(&w, 1u << 16);
	/* Template-Attribute in a 2.0 message. */
	assert_int_equal(kmip_struct_encode(&w, &kmip_create_request_desc, &create, KMIP_V2_0),
			 KMIP_E_UNEXPECTED);
	kmip_writer_cleanup(&w);
}

/* ---- Round trips ------------------------------------------------------- */

/* Encodes |m|, decodes it back, re-encodes and expects the same bytes. */
static struct kmip_request_message *request_round_trip(const struct kmip_request_message *m,
						       struct kmip_arena *arena,
						       struct kmip_writer *w1)
{
	struct kmip_writer w2;
	struct kmip_request_message *back;
	struct kmip_decode_error e;
	const uint8_t *b1, *b2;
	size_t l1, l2;

	kmip_writer_init(w1, 1u << 16);
	assert_int_equal(kmip_request_encode(w1, m), 0);
	assert_int_equal(kmip_writer_finish(w1, &b1, &l1), 0);
	kmip_arena_init(arena, NULL, 0);
	if (kmip_request_decode(b1, l1, &kmip_default_limits, arena, &back, &e) != 0) {
		fail_msg("%s at 0x%06x, item %d", kmip_strerror(e.err), e.tag, e.batch_index);
	}
	kmip_writer_init(&w2, 1u << 16);
	assert_int_equal(kmip_request_encode(&w2, back), 0);
	assert_int_equal(kmip_writer_finish(&w2, &b2, &l2), 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	kmip_writer_cleanup(&w2);
	return back;
}

static void test_round_trip_2_0_attributes(void **state)
{
	struct kmip_node attr[3] = {
	    {.tag = KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, .type = KMIP_TYPE_ENUMERATION, .v.u32 = 3},
	    {.tag = KMIP_TAG_CRYPTOGRAPHIC_LENGTH, .type = KMIP_TYPE_INTEGER, .v.i32 = 256},
	    {.tag = KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, .type = KMIP_TYPE_INTEGER, .v.i32 = 12},
	};
	const struct kmip_node *list[3] = {&attr[0], &attr[1], &attr[2]};
	struct kmip_attributes attrs = {.attributes = list, .num_attributes = 3};
	struct kmip_create_request create = {.object_type = 2, .attributes = &attrs};
	struct kmip_attribute_holder holder = {.attribute = &attr[1]};
	struct kmip_add_attribute_request add = {
	    .unique_identifier = "k1", .unique_identifier_len = 2, .new_attribute = &holder};
	struct kmip_protocol_version pv = {.protocol_version_major = 2,
					   .protocol_version_minor = 0};
	struct kmip_request_header h = {.protocol_version = &pv, .batch_count = 2};
	struct kmip_request_batch_item items[2] = {
	    {.operation = OP_CREATE, .request_payload = &create},
	    {.operation = OP_ADD_ATTRIBUTE, .request_payload = &add},
	};
	struct kmip_request_message m = {
	    .request_header = &h, .batch_items = items, .num_batch_items = 2};
	struct kmip_arena arena;
	struct kmip_writer w;
	const struct kmip_request_message *back;
	const struct kmip_create_request *c;
	const struct kmip_add_attribute_request *a;

	(void)state;
	for (int32_t minor = 0; minor <= 1; minor++) {
		pv.protocol_version_minor = minor;
		back = request_round_trip(&m, &arena, &w);
		c = back->batch_items[0].request_payload;
		assert_int_equal(c->object_type, 2);
		assert_null(c->template_attribute);
		assert_int_equal(c->attributes->num_attributes, 3);
		assert_int_equal(c->attributes->attributes[1]->v.i32, 256);
		a = back->batch_items[1].request_payload;
		assert_int_equal(a->new_attribute->attribute->tag, KMIP_TAG_CRYPTOGRAPHIC_LENGTH);
		assert_null(a->attribute);
		kmip_arena_cleanup(&arena);
		kmip_writer_cleanup(&w);
	}
}

static void test_round_trip_1_x_template_attribute(void **state)
{
	struct kmip_node alg = {
	    .tag = KMIP_TAG_ATTRIBUTE_VALUE, .type = KMIP_TYPE_ENUMERATION, .v.u32 = 3};
	struct kmip_name name = {.name_value = "key-1", .name_value_len = 5, .name_type = 1};
	struct kmip_attribute attr = {.attribute_name = "Cryptographic Algorithm",
				      .attribute_name_len = 23,
				      .attribute_value = &alg};
	struct kmip_template_attribute ta = {
	    .names = &name, .num_names = 1, .attribute = &attr, .num_attribute = 1};
	struct kmip_create_request create = {.object_type = 2, .template_attribute = &ta};
	struct kmip_protocol_version pv = {.protocol_version_major = 1,
					   .protocol_version_minor = 2};
	struct kmip_request_header h = {.protocol_version = &pv,
					.batch_count = 1,
					.has_batch_order_option = true,
					.batch_order_option = true};
	struct kmip_request_batch_item item = {.operation = OP_CREATE, .request_payload = &create};
	struct kmip_request_message m = {
	    .request_header = &h, .batch_items = &item, .num_batch_items = 1};
	struct kmip_arena arena;
	struct kmip_writer w;
	const struct kmip_request_message *back;
	const struct kmip_create_request *c;

	(void)state;
	back = request_round_trip(&m, &arena, &w);
	assert_true(back->request_header->has_batch_order_option);
	assert_false(back->request_header->has_time_stamp);
	c = back->batch_items[0].request_payload;
	assert_null(c->attributes);
	assert_int_equal(c->template_attribute->num_names, 1);
	assert_memory_equal(c->template_attribute->names[0].name_value, "key-1", 5);
	assert_int_equal(c->template_attribute->attribute[0].attribute_value->v.u32, 3);
	kmip_arena_cleanup(&arena);
	kmip_writer_cleanup(&w);
}

/* Register a Secret Data (a oneof member) with a wrapped Key Value (Byte String). */
static void test_round_trip_register_wrapped(void **state)
{
	static const uint8_t wrapped[24] = {1, 2, 3};
	struct kmip_encryption_key_information eki = {.unique_identifier = "kek",
						      .unique_identifier_len = 3};
	struct kmip_key_wrapping_data kwd = {.wrapping_method = 1,
					     .encryption_key_information = &eki};
	struct kmip_key_block kb = {.key_format_type = 2,
				    .wrapped_key_value = wrapped,
				    .wrapped_key_value_len = sizeof(wrapped),
				    .key_wrapping_data = &kwd};
	struct kmip_secret_data sd = {.secret_data_type = 1, .key_block = &kb};
	struct kmip_template_attribute ta = {0};
	struct kmip_register_request reg = {
	    .object_type = 7, .template_attribute = &ta, .secret_data = &sd};
	struct kmip_protocol_version pv = {.protocol_version_major = 1,
					   .protocol_version_minor = 4};
	struct kmip_request_header h = {.protocol_version = &pv, .batch_count = 1};
	struct kmip_request_batch_item item = {.operation = OP_REGISTER, .request_payload = &reg};
	struct kmip_request_message m = {
	    .request_header = &h, .batch_items = &item, .num_batch_items = 1};
	struct kmip_arena arena;
	struct kmip_writer w;
	const struct kmip_register_request *r;

	(void)state;
	r = request_round_trip(&m, &arena, &w)->batch_items[0].request_payload;
	assert_null(r->symmetric_key);
	assert_non_null(r->secret_data);
	assert_null(r->secret_data->key_block->key_value);
	assert_int_equal(r->secret_data->key_block->wrapped_key_value_len, sizeof(wrapped));
	assert_memory_equal(r->secret_data->key_block->key_wrapping_data->encryption_key_information
				->unique_identifier,
			    "kek", 3);
	kmip_arena_cleanup(&arena);
	kmip_writer_cleanup(&w);
}

/* A 2.1 Locate response: repeated text and an optional 1.3+ integer. */
static void test_round_trip_response_2_1(void **state)
{
	struct kmip_text ids[3] = {{"a", 1}, {"bb", 2}, {"ccc", 3}};
	struct kmip_locate_response loc = {.has_located_items = true,
					   .located_items = 3,
					   .unique_identifiers = ids,
					   .num_unique_identifiers = 3};
	struct kmip_protocol_version pv = {.protocol_version_major = 2,
					   .protocol_version_minor = 1};
	struct kmip_response_header h = {
	    .protocol_version = &pv, .time_stamp = 1700000000, .batch_count = 1};
	struct kmip_response_batch_item item = {.has_operation = true,
						.operation = OP_LOCATE,
						.result_status = 0,
						.response_payload = &loc};
	struct kmip_response_message m = {
	    .response_header = &h, .batch_items = &item, .num_batch_items = 1};
	struct kmip_writer w1, w2;
	struct kmip_arena arena;
	struct kmip_response_message *back;
	const struct kmip_locate_response *l;
	const uint8_t *b1, *b2;
	size_t l1, l2;

	(void)state;
	kmip_writer_init(&w1, 1u << 16);
	assert_int_equal(kmip_response_encode(&w1, &m), 0);
	assert_int_equal(kmip_writer_finish(&w1, &b1, &l1), 0);
	kmip_arena_init(&arena, NULL, 0);
	assert_int_equal(kmip_response_decode(b1, l1, &kmip_default_limits, &arena, &back, NULL),
			 0);
	l = back->batch_items[0].response_payload;
	assert_int_equal(l->located_items, 3);
	assert_int_equal(l->num_unique_identifiers, 3);
	assert_memory_equal(l->unique_identifiers[2].s, "ccc", 3);
	kmip_writer_init(&w2, 1u << 16);
	assert_int_equal(kmip_response_encode(&w2, back), 0);
	assert_int_equal(kmip_writer_finish(&w2, &b2, &l2), 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	kmip_writer_cleanup(&w1);
	kmip_writer_cleanup(&w2);
	kmip_arena_cleanup(&arena);
}

/* Every operation has a request descriptor and every descriptor is well formed. */
static void test_descriptor_table(void **state)
{
	size_t num_ops = 0;

	(void)state;
	for (uint32_t op = 0; op < kmip_num_operation_descs; op++) {
		const struct kmip_operation_desc *od = kmip_operation_desc(op);

		if (od == NULL) {
			continue;
		}
		num_ops++;
		assert_non_null(od->request);
		assert_int_equal(od->request->tag, KMIP_TAG_REQUEST_PAYLOAD);
		assert_true(od->response == NULL || od->response->tag == KMIP_TAG_RESPONSE_PAYLOAD);
	}
	assert_int_equal(num_ops, 43);
	assert_int_equal(kmip_version_bit(1, 0), KMIP_V1_0);
	assert_int_equal(kmip_version_bit(2, 1), KMIP_V2_1);
	assert_int_equal(kmip_version_bit(3, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_required),
	    cmocka_unit_test(test_missing_required_in_payload),
	    cmocka_unit_test(test_wrong_type),
	    cmocka_unit_test(test_out_of_order_item),
	    cmocka_unit_test(test_out_of_order_payload),
	    cmocka_unit_test(test_unknown_tag),
	    cmocka_unit_test(test_unknown_tag_in_payload),
	    cmocka_unit_test(test_batch_count_too_high),
	    cmocka_unit_test(test_batch_count_too_low),
	    cmocka_unit_test(test_payload_for_wrong_operation),
	    cmocka_unit_test(test_field_not_in_version),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_unknown_operation),
	    cmocka_unit_test(test_oneof_twice),
	    cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_round_trip_2_0_attributes),
	    cmocka_unit_test(test_round_trip_1_x_template_attribute),
	    cmocka_unit_test(test_round_trip_register_wrapped),
	    cmocka_unit_test(test_round_trip_response_2_1),
	    cmocka_unit_test(test_descriptor_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
