/*
 * The engine through keel_engine_handle: each operation's success and
 * failure, identities kept apart, bad messages answered with the right
 * KMIP result, batches with their ids echoed, KMIP 1.x and 2.x.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine_fixture.h"

static int setup(void **state)
{
	*state = engine_fx_new();
	return 0;
}

static int teardown(void **state)
{
	engine_fx_free(*state);
	return 0;
}

/* ---- request builder ------------------------------------------------------ */

static void req_begin(struct kmip_writer *w, int major, int minor, int count)
{
	kmip_writer_init(w, 1u << 16);
	kmip_write_begin(w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(w, KMIP_TAG_REQUEST_HEADER);
	kmip_write_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, major);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MINOR, minor);
	kmip_write_end(w);
	kmip_write_int(w, KMIP_TAG_BATCH_COUNT, count);
	kmip_write_end(w);
}

static void item_begin(struct kmip_writer *w, uint32_t op, const char *id)
{
	kmip_write_begin(w, KMIP_TAG_BATCH_ITEM);
	kmip_write_enum(w, KMIP_TAG_OPERATION, op);
	if (id != NULL) {
		kmip_write_bytes(w, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, (const uint8_t *)id, strlen(id));
	}
	kmip_write_begin(w, KMIP_TAG_REQUEST_PAYLOAD);
}

static void item_end(struct kmip_writer *w)
{
	kmip_write_end(w);
	kmip_write_end(w);
}

static void write_uid(struct kmip_writer *w, const char *uid)
{
	if (uid != NULL) {
		kmip_write_text(w, KMIP_TAG_UNIQUE_IDENTIFIER, uid, strlen(uid));
	}
}

static void attr_v1_text(struct kmip_writer *w, const char *name, const char *value)
{
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_VALUE, value, strlen(value));
	kmip_write_end(w);
}

static void attr_v1_int(struct kmip_writer *w, const char *name, bool is_enum, int32_t v)
{
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	if (is_enum) {
		kmip_write_enum(w, KMIP_TAG_ATTRIBUTE_VALUE, (uint32_t)v);
	} else {
		kmip_write_int(w, KMIP_TAG_ATTRIBUTE_VALUE, v);
	}
	kmip_write_end(w);
}

static void send(struct engine_fx *f, const struct keel_client_identity *who, struct kmip_writer *w)
{
	const uint8_t *p;
	size_t n;

	kmip_write_end(w);
	assert_int_equal(kmip_writer_finish(w, &p, &n), 0);
	engine_fx_send(f, who, p, n);
	kmip_writer_cleanup(w);
}

static const struct kmip_response_batch_item *item(struct engine_fx *f, size_t i)
{
	assert_true(i < f->msg->num_batch_items);
	return &f->msg->batch_items[i];
}

static void expect_ok(struct engine_fx *f, size_t i)
{
	const struct kmip_response_batch_item *bi = item(f, i);

	if (bi->result_status != KMIP_RESULT_STATUS_SUCCESS) {
		print_error("item %zu: status %u reason %u: %.*s\n", i, bi->result_status,
			    bi->result_reason, (int)bi->result_message_len, bi->result_message);
	}
	assert_int_equal(bi->result_status, KMIP_RESULT_STATUS_SUCCESS);
}

static void expect_fail(struct engine_fx *f, size_t i, uint32_t reason)
{
	const struct kmip_response_batch_item *bi = item(f, i);

	assert_int_equal(bi->result_status, KMIP_RESULT_STATUS_OPERATION_FAILED);
	assert_true(bi->has_result_reason);
	assert_int_equal(bi->result_reason, reason);
}

/* ---- operations ------------------------------------------------------------ */

/* Creates an AES key in 1.|minor| and returns its UID in |uid|. */
static void create_key(struct engine_fx *f, const struct keel_client_identity *who, int bits,
		       char *uid, size_t uid_len)
{
	struct kmip_writer w;
	const struct kmip_create_response *p;

	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_CREATE, NULL);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	attr_v1_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	attr_v1_int(&w, "Cryptographic Length", false, bits);
	attr_v1_int(&w, "Cryptographic Usage Mask", false, 12);
	kmip_write_end(&w);
	item_end(&w);
	send(f, who, &w);
	expect_ok(f, 0);
	p = item(f, 0)->response_payload;
	assert_non_null(p);
	assert_int_equal(p->object_type, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	assert_true(p->unique_identifier_len < uid_len);
	memcpy(uid, p->unique_identifier, p->unique_identifier_len);
	uid[p->unique_identifier_len] = '\0';
}

static void simple_op(struct engine_fx *f, const struct keel_client_identity *who, uint32_t op,
		      const char *uid)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	item_begin(&w, op, NULL);
	write_uid(&w, uid);
	item_end(&w);
	send(f, who, &w);
}

/* The value of the one attribute |name| of |uid|, as alice sees it. */
static const struct kmip_node *get_attr(struct engine_fx *f, const char *uid, const char *name)
{
	struct kmip_writer w;
	const struct kmip_get_attributes_response *p;

	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES, NULL);
	write_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	p = item(f, 0)->response_payload;
	assert_int_equal(p->num_attribute, 1);
	return p->attribute[0].attribute_value;
}

static void get_state(struct engine_fx *f, const char *uid, uint32_t want)
{
	assert_int_equal(get_attr(f, uid, "State")->v.u32, want);
}

/* Unique Identifier is answered from the object itself, as text (KMIP 1.4 §3.1). */
static void expect_uid_attribute(struct engine_fx *f, const char *uid)
{
	const struct kmip_node *v = get_attr(f, uid, "Unique Identifier");

	assert_int_equal(v->type, KMIP_TYPE_TEXT_STRING);
	assert_int_equal(v->len, strlen(uid));
	assert_memory_equal(v->v.text, uid, v->len);
}

static void test_discover_versions(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	const struct kmip_discover_versions_response *p;

	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_DISCOVER_VERSIONS, NULL);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	p = item(f, 0)->response_payload;
	assert_int_equal(p->num_protocol_versions, 7);
	assert_int_equal(p->protocol_versions[0].protocol_version_major, 2);
	assert_int_equal(p->protocol_versions[0].protocol_version_minor, 1);
	assert_int_equal(f->msg->response_header->protocol_version->protocol_version_minor, 1);
	assert_true(f->msg->response_header->time_stamp > 0);

	/* A client's list is intersected. */
	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_DISCOVER_VERSIONS, NULL);
	kmip_write_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 3);
	kmip_write_int(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, 0);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	kmip_write_int(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, 2);
	kmip_write_end(&w);
	item_end(&w);
	send(f, &f->alice, &w);
	p = item(f, 0)->response_payload;
	assert_int_equal(p->num_protocol_versions, 1);
	assert_int_equal(p->protocol_versions[0].protocol_version_minor, 2);
}

static void test_query(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	const struct kmip_query_response *p;

	req_begin(&w, 1, 4, 1);
	item_begin(&w, KMIP_OPERATION_QUERY, NULL);
	kmip_write_enum(&w, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_FUNCTION_QUERY_OPERATIONS);
	kmip_write_enum(&w, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_FUNCTION_QUERY_OBJECTS);
	kmip_write_enum(&w, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_FUNCTION_QUERY_SERVER_INFORMATION);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	p = item(f, 0)->response_payload;
	assert_true(p->num_operations >= 10);
	assert_int_equal(p->num_object_types, 9); /* with Split Key, Template, PGP Key from 1.2 */
	assert_true(p->vendor_identification_len > 5);
	assert_memory_equal(p->vendor_identification, "Keel ", 5);
	/* Each version lists only its own operations: Set Attribute is 2.x only. */
	for (size_t i = 0; i < p->num_operations; i++) {
		assert_int_not_equal(p->operations[i], KMIP_OPERATION_SET_ATTRIBUTE);
	}
	req_begin(&w, 2, 0, 1);
	item_begin(&w, KMIP_OPERATION_QUERY, NULL);
	kmip_write_enum(&w, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_FUNCTION_QUERY_OPERATIONS);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	p = item(f, 0)->response_payload;
	bool has_set = false;
	for (size_t i = 0; i < p->num_operations; i++) {
		has_set |= p->operations[i] == KMIP_OPERATION_SET_ATTRIBUTE;
	}
	assert_true(has_set);
}

static void test_key_lifecycle(void **state)
{
	struct engine_fx *f = *state;
	char uid[129];
	const struct kmip_get_response *g;

	create_key(f, &f->alice, 256, uid, sizeof(uid));
	get_state(f, uid, KMIP_STATE_PRE_ACTIVE);
	expect_uid_attribute(f, uid);
	simple_op(f, &f->alice, KMIP_OPERATION_GET, uid);
	expect_ok(f, 0);
	g = item(f, 0)->response_payload;
	assert_non_null(g->symmetric_key);
	assert_int_equal(g->symmetric_key->key_block->key_format_type, KMIP_KEY_FORMAT_TYPE_RAW);
	assert_int_equal(g->symmetric_key->key_block->key_value->key_material_len, 32);
	assert_int_equal(g->symmetric_key->key_block->cryptographic_length, 256);
	simple_op(f, &f->alice, KMIP_OPERATION_ACTIVATE, uid);
	expect_ok(f, 0);
	get_state(f, uid, KMIP_STATE_ACTIVE);
	simple_op(f, &f->alice, KMIP_OPERATION_ACTIVATE, uid);
	expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	/* An Active key is not destroyed (KMIP 1.4 §4.21). */
	simple_op(f, &f->alice, KMIP_OPERATION_DESTROY, uid);
	expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	/* Revoke, Cessation of Operation: Deactivated. */
	struct kmip_writer w;
	req_begin(&w, 1, 4, 1);
	item_begin(&w, KMIP_OPERATION_REVOKE, NULL);
	write_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_REVOCATION_REASON);
	kmip_write_enum(&w, KMIP_TAG_REVOCATION_REASON_CODE,
			KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION);
	kmip_write_end(&w);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	get_state(f, uid, KMIP_STATE_DEACTIVATED);
	simple_op(f, &f->alice, KMIP_OPERATION_DESTROY, uid);
	expect_ok(f, 0);
	get_state(f, uid, KMIP_STATE_DESTROYED);
	simple_op(f, &f->alice, KMIP_OPERATION_GET, uid);
	expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	simple_op(f, &f->alice, KMIP_OPERATION_CHECK, uid);
	expect_ok(f, 0);
}

static void test_create_failures(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;

	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_CREATE, NULL);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	attr_v1_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	attr_v1_int(&w, "Cryptographic Length", false, 100);
	kmip_write_end(&w);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	/* A read-only attribute at creation. */
	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_CREATE, NULL);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	attr_v1_int(&w, "State", true, KMIP_STATE_ACTIVE);
	kmip_write_end(&w);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
}

static void test_attributes_batch(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	char uid[129];
	const char *ids[] = {"QLKC\x01", "QLKC\x02", "QLKC\x03"};
	const struct kmip_get_attributes_response *ga;

	create_key(f, &f->alice, 128, uid, sizeof(uid));
	req_begin(&w, 1, 1, 3);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "x-tag%d", i);
		item_begin(&w, KMIP_OPERATION_ADD_ATTRIBUTE, ids[i]);
		write_uid(&w, uid);
		attr_v1_text(&w, name, "value");
		item_end(&w);
	}
	send(f, &f->alice, &w);
	assert_int_equal(f->msg->num_batch_items, 3);
	for (size_t i = 0; i < 3; i++) {
		expect_ok(f, i);
		assert_int_equal(item(f, i)->unique_batch_item_id_len, 5);
		assert_memory_equal(item(f, i)->unique_batch_item_id, ids[i], 5);
	}
	/* Missing attribute: Success with only the UID (VCENTER.md §5.11). */
	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES, NULL);
	write_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "x-none", 6);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	ga = item(f, 0)->response_payload;
	assert_int_equal(ga->num_attribute, 0);
	/* Modify, then delete; a read-only attribute is refused. */
	req_begin(&w, 1, 1, 3);
	item_begin(&w, KMIP_OPERATION_MODIFY_ATTRIBUTE, NULL);
	write_uid(&w, uid);
	attr_v1_text(&w, "x-tag1", "changed");
	item_end(&w);
	item_begin(&w, KMIP_OPERATION_DELETE_ATTRIBUTE, NULL);
	write_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "x-tag2", 6);
	item_end(&w);
	item_begin(&w, KMIP_OPERATION_MODIFY_ATTRIBUTE, NULL);
	write_uid(&w, uid);
	attr_v1_int(&w, "Cryptographic Length", false, 256);
	item_end(&w);
	kmip_write_end(&w);
	/* the request header says 3 items: Continue is not set, Stop is the default */
	const uint8_t *p;
	size_t n;
	assert_int_equal(kmip_writer_finish(&w, &p, &n), 0);
	engine_fx_send(f, &f->alice, p, n);
	kmip_writer_cleanup(&w);
	expect_ok(f, 0);
	expect_ok(f, 1);
	expect_fail(f, 2, KMIP_RESULT_REASON_PERMISSION_DENIED);
	/* Get Attribute List names what is left. */
	simple_op(f, &f->alice, KMIP_OPERATION_GET_ATTRIBUTE_LIST, uid);
	expect_ok(f, 0);
	const struct kmip_get_attribute_list_response *gl = item(f, 0)->response_payload;
	bool tag1 = false, tag2 = false;
	for (size_t i = 0; i < gl->num_attribute_names; i++) {
		tag1 |= gl->attribute_names[i].len == 6 &&
			!memcmp(gl->attribute_names[i].s, "x-tag1", 6);
		tag2 |= gl->attribute_names[i].len == 6 &&
			!memcmp(gl->attribute_names[i].s, "x-tag2", 6);
	}
	assert_true(tag1);
	assert_false(tag2);
}

static void test_locate_and_isolation(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	char a1[129], a2[129], b1[129];
	const struct kmip_locate_response *p;

	create_key(f, &f->alice, 256, a1, sizeof(a1));
	create_key(f, &f->alice, 256, a2, sizeof(a2));
	create_key(f, &f->bob, 256, b1, sizeof(b1));
	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_ADD_ATTRIBUTE, NULL);
	write_uid(&w, a2);
	attr_v1_text(&w, "x-Name", "vm-7");
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	/* Locate by custom attribute, owner-scoped. */
	req_begin(&w, 1, 4, 1);
	item_begin(&w, KMIP_OPERATION_LOCATE, NULL);
	attr_v1_text(&w, "x-Name", "vm-7");
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	p = item(f, 0)->response_payload;
	assert_int_equal(p->num_unique_identifiers, 1);
	assert_memory_equal(p->unique_identifiers[0].s, a2, strlen(a2));
	/* By object type, with Maximum Items. */
	req_begin(&w, 1, 4, 1);
	item_begin(&w, KMIP_OPERATION_LOCATE, NULL);
	kmip_write_int(&w, KMIP_TAG_MAXIMUM_ITEMS, 1);
	attr_v1_int(&w, "Object Type", true, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	p = item(f, 0)->response_payload;
	assert_int_equal(p->num_unique_identifiers, 1);
	/* Bob sees none of Alice's keys: Item Not Found, no existence oracle. */
	simple_op(f, &f->bob, KMIP_OPERATION_GET, a1);
	expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
	simple_op(f, &f->bob, KMIP_OPERATION_DESTROY, a1);
	expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
	req_begin(&w, 1, 4, 1);
	item_begin(&w, KMIP_OPERATION_LOCATE, NULL);
	item_end(&w);
	send(f, &f->bob, &w);
	p = item(f, 0)->response_payload;
	assert_int_equal(p->num_unique_identifiers, 1);
	assert_memory_equal(p->unique_identifiers[0].s, b1, strlen(b1));
	/* Unknown UID (VCENTER.md §5.22). */
	simple_op(f, &f->alice, KMIP_OPERATION_GET, "no-such-key");
	expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

static void test_bad_messages(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	static const uint8_t garbage[] = {0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x08,
					  0x42, 0x00, 0x77, 0x07, 0x00, 0x00, 0x00, 0x00};

	engine_fx_send(f, &f->alice, garbage, sizeof(garbage));
	expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_MESSAGE);
	assert_int_equal(f->msg->response_header->protocol_version->protocol_version_major, 1);
	/* Missing field: Get Attributes without a payload's UID is fine (placeholder),
	 * but Create without Object Type does not decode. */
	req_begin(&w, 1, 2, 1);
	item_begin(&w, KMIP_OPERATION_CREATE, NULL);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	assert_int_equal(f->msg->response_header->protocol_version->protocol_version_minor, 2);
	assert_true(item(f, 0)->result_message_len > 0);
	/* Wrong type. */
	req_begin(&w, 1, 1, 1);
	item_begin(&w, KMIP_OPERATION_GET, NULL);
	kmip_write_int(&w, KMIP_TAG_UNIQUE_IDENTIFIER, 5);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	/* An operation Keel does not serve (Validate is outside issue 4). */
	req_begin(&w, 1, 4, 1);
	item_begin(&w, KMIP_OPERATION_VALIDATE, "x");
	item_end(&w);
	send(f, &f->alice, &w);
	expect_fail(f, 0, KMIP_RESULT_REASON_OPERATION_NOT_SUPPORTED);
	assert_memory_equal(item(f, 0)->unique_batch_item_id, "x", 1);
	/* Too many batch items (the fixture allows 8). */
	req_begin(&w, 1, 1, 9);
	for (int i = 0; i < 9; i++) {
		item_begin(&w, KMIP_OPERATION_DISCOVER_VERSIONS, NULL);
		item_end(&w);
	}
	send(f, &f->alice, &w);
	expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_MESSAGE);
}

/* KMIP 2.0: attributes as tagged items; the response in 2.0. */
static void test_v2(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	const struct kmip_create_response *c;
	char uid[129];

	req_begin(&w, 2, 0, 2);
	item_begin(&w, KMIP_OPERATION_CREATE, NULL);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTES);
	kmip_write_enum(&w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	kmip_write_int(&w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 192);
	kmip_write_datetime(&w, KMIP_TAG_ACTIVATION_DATE, 1000);
	kmip_write_end(&w);
	item_end(&w);
	/* ID Placeholder: Get without a UID takes the key just created. */
	item_begin(&w, KMIP_OPERATION_GET, NULL);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_ok(f, 0);
	expect_ok(f, 1);
	assert_int_equal(f->msg->response_header->protocol_version->protocol_version_major, 2);
	c = item(f, 0)->response_payload;
	memcpy(uid, c->unique_identifier, c->unique_identifier_len);
	uid[c->unique_identifier_len] = '\0';
	const struct kmip_get_response *g = item(f, 1)->response_payload;
	assert_int_equal(g->symmetric_key->key_block->key_value->key_material_len, 24);
	/* Activation Date in the past: Active at once; Destroy refused in 2.x terms. */
	simple_op(f, &f->alice, KMIP_OPERATION_DESTROY, uid);
	expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	req_begin(&w, 2, 1, 1);
	item_begin(&w, KMIP_OPERATION_DESTROY, NULL);
	write_uid(&w, uid);
	item_end(&w);
	send(f, &f->alice, &w);
	expect_fail(f, 0, KMIP_RESULT_REASON_WRONG_KEY_LIFECYCLE_STATE);
}

/* Undo rolls back the earlier items of the batch (KMIP 1.4 §6.7). */
static void test_undo(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	char uid[129];

	create_key(f, &f->alice, 256, uid, sizeof(uid));
	kmip_writer_init(&w, 1u << 16);
	kmip_write_begin(&w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(&w, KMIP_TAG_REQUEST_HEADER);
	kmip_write_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	kmip_write_int(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, 4);
	kmip_write_end(&w);
	kmip_write_enum(&w, KMIP_TAG_BATCH_ERROR_CONTINUATION_OPTION,
			KMIP_BATCH_ERROR_CONTINUATION_OPTION_UNDO);
	kmip_write_int(&w, KMIP_TAG_BATCH_COUNT, 2);
	kmip_write_end(&w);
	item_begin(&w, KMIP_OPERATION_ACTIVATE, NULL);
	write_uid(&w, uid);
	item_end(&w);
	item_begin(&w, KMIP_OPERATION_GET, NULL);
	write_uid(&w, "missing");
	item_end(&w);
	send(f, &f->alice, &w);
	assert_int_equal(item(f, 0)->result_status, KMIP_RESULT_STATUS_OPERATION_UNDONE);
	expect_fail(f, 1, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
	get_state(f, uid, KMIP_STATE_PRE_ACTIVE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_discover_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_query, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attributes_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_locate_and_isolation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_v2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_undo, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
