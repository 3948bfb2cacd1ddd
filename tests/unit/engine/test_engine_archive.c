/*
 * Archive (KMIP 1.4 §4.22), Recover (§4.23), Obtain Lease (§4.17) and Get
 * Usage Allocation (§4.18) through keel_engine_handle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "engine_req.h"

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

static void uid_op(struct engine_fx *f, const struct keel_client_identity *who, uint32_t op,
		   const char *uid)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, op);
	req_uid(&w, uid);
	req_item_end(&w);
	req_send(f, who, &w);
}

/* How many instances of |name| |uid| has; the first one's |child| Long Integer in |out|. */
static size_t attr_long(struct engine_fx *f, const char *uid, const char *name, uint32_t child,
			int64_t *out)
{
	struct kmip_writer w;
	const struct kmip_get_attributes_response *p;
	const struct kmip_node *v;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	if (p->num_attribute > 0 && out != NULL) {
		v = p->attribute[0].attribute_value;
		v = child != 0 ? kmip_node_find(v, child) : v;
		assert_non_null(v);
		*out = v->v.i64;
	}
	return p->num_attribute;
}

/* An AES key whose Usage Limits allow |total| objects (§3.21). */
static void create_limited(struct engine_fx *f, int64_t total, char uid[static 129])
{
	struct kmip_writer w;
	const struct kmip_create_response *p;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	req_attr_int(&w, "Cryptographic Length", false, 256);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Usage Limits", 12);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE_VALUE);
	kmip_write_long(&w, KMIP_TAG_USAGE_LIMITS_TOTAL, total);
	kmip_write_enum(&w, KMIP_TAG_USAGE_LIMITS_UNIT, KMIP_USAGE_LIMITS_UNIT_OBJECT);
	kmip_write_end(&w);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	req_copy_uid(uid, p->unique_identifier, p->unique_identifier_len);
}

static void allocate(struct engine_fx *f, const char *uid, int64_t count)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_USAGE_ALLOCATION);
	req_uid(&w, uid);
	kmip_write_long(&w, KMIP_TAG_USAGE_LIMITS_COUNT, count);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

static void test_usage_allocation(void **state)
{
	struct engine_fx *f = *state;
	char uid[129], plain[129];
	int64_t left = -1;

	create_limited(f, 10, uid);
	allocate(f, uid, 4);
	req_expect_ok(f, 0);
	assert_int_equal(attr_long(f, uid, "Usage Limits", KMIP_TAG_USAGE_LIMITS_COUNT, &left), 1);
	assert_int_equal(left, 6);
	assert_int_equal(attr_long(f, uid, "Usage Limits", KMIP_TAG_USAGE_LIMITS_TOTAL, &left), 1);
	assert_int_equal(left, 10);
	allocate(f, uid, 7);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	allocate(f, uid, 6);
	req_expect_ok(f, 0);
	assert_int_equal(attr_long(f, uid, "Usage Limits", KMIP_TAG_USAGE_LIMITS_COUNT, &left), 1);
	assert_int_equal(left, 0);
	allocate(f, uid, 1);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	/* A key without Usage Limits has nothing to allocate. */
	req_create_aes(f, 128, 12, false, plain);
	allocate(f, plain, 1);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
}

static void test_archive_recover(void **state)
{
	struct engine_fx *f = *state;
	char uid[129];
	int64_t when = 0;

	req_create_aes(f, 256, 12, true, uid);
	uid_op(f, &f->alice, KMIP_OPERATION_ARCHIVE, uid);
	req_expect_ok(f, 0);
	assert_int_equal(attr_long(f, uid, "Archive Date", 0, &when), 1);
	assert_true(when > 0);
	/* The state is kept; Recover clears the Archive Date. */
	assert_int_equal(attr_long(f, uid, "State", 0, NULL), 1);
	uid_op(f, &f->alice, KMIP_OPERATION_RECOVER, uid);
	req_expect_ok(f, 0);
	assert_int_equal(attr_long(f, uid, "Archive Date", 0, NULL), 0);
	uint8_t key[64];
	assert_int_equal(req_get_key(f, uid, key), 32);
	uid_op(f, &f->bob, KMIP_OPERATION_ARCHIVE, uid);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

static void test_obtain_lease(void **state)
{
	struct engine_fx *f = *state;
	char uid[129];
	const struct kmip_obtain_lease_response *p;

	req_create_aes(f, 256, 12, false, uid);
	uid_op(f, &f->alice, KMIP_OPERATION_OBTAIN_LEASE, uid);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_true(p->lease_time > 0);
	assert_true(p->last_change_date > 0);
	assert_int_equal(p->unique_identifier_len, strlen(uid));
	uid_op(f, &f->alice, KMIP_OPERATION_DESTROY, uid);
	req_expect_ok(f, 0);
	uid_op(f, &f->alice, KMIP_OPERATION_OBTAIN_LEASE, uid);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	uid_op(f, &f->bob, KMIP_OPERATION_OBTAIN_LEASE, uid);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_usage_allocation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_archive_recover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_obtain_lease, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
