/*
 * Adjust Attribute (KMIP 2.0/2.1 §6.1.3) through keel_engine_handle:
 * Increment, Decrement and Negate of Integer, Long Integer, Interval and
 * Date-Time attributes, standard and custom, and the refusals: read-only,
 * absent, not a number, out of range, missing Adjustment Value.
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

/* An attribute of a test: a standard one by |tag|, or the custom "x-|name|". */
struct ref {
	uint32_t tag;
	const char *name;
};

static void write_ref(struct kmip_writer *w, const struct ref *a)
{
	if (a->name == NULL) {
		kmip_write_enum(w, KMIP_TAG_ATTRIBUTE_REFERENCE, a->tag);
		return;
	}
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE_REFERENCE);
	kmip_write_text(w, KMIP_TAG_VENDOR_IDENTIFICATION, "x", 1);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, a->name, strlen(a->name));
	kmip_write_end(w);
}

/* Writes a value of |type| tagged |tag|. */
static void write_value(struct kmip_writer *w, uint32_t tag, uint8_t type, int64_t v)
{
	switch (type) {
	case KMIP_TYPE_INTEGER:
		kmip_write_int(w, tag, (int32_t)v);
		break;
	case KMIP_TYPE_LONG_INTEGER:
		kmip_write_long(w, tag, v);
		break;
	case KMIP_TYPE_INTERVAL:
		kmip_write_interval(w, tag, (uint32_t)v);
		break;
	default:
		kmip_write_datetime(w, tag, v);
	}
}

/* Set Attribute (2.0 §6.1.52) of |a| to |v| of |type|. */
static void set_attr(struct engine_fx *f, const char *uid, const struct ref *a, uint8_t type,
		     int64_t v)
{
	struct kmip_writer w;

	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_SET_ATTRIBUTE);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_NEW_ATTRIBUTE);
	if (a->name == NULL) {
		write_value(&w, a->tag, type, v);
	} else {
		kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
		kmip_write_text(&w, KMIP_TAG_VENDOR_IDENTIFICATION, "x", 1);
		kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, a->name, strlen(a->name));
		write_value(&w, KMIP_TAG_ATTRIBUTE_VALUE, type, v);
		kmip_write_end(&w);
	}
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
}

/* Sends Adjust Attribute; |type| 0 leaves the Adjustment Value out. */
static void adjust(struct engine_fx *f, int minor, const char *uid, const struct ref *a,
		   uint32_t how, uint8_t type, int64_t by)
{
	struct kmip_writer w;

	req_begin(&w, 2, minor, 1);
	req_item_begin(&w, KMIP_OPERATION_ADJUST_ATTRIBUTE);
	req_uid(&w, uid);
	write_ref(&w, a);
	kmip_write_enum(&w, KMIP_TAG_ADJUSTMENT_TYPE, how);
	if (type != 0) {
		write_value(&w, KMIP_TAG_ADJUSTMENT_VALUE, type, by);
	}
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

/* Adjusts and expects success, the object's UID echoed. */
static void adjust_ok(struct engine_fx *f, const char *uid, const struct ref *a, uint32_t how,
		      uint8_t type, int64_t by)
{
	const struct kmip_unique_identifier_response *p;

	adjust(f, 1, uid, a, how, type, by);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_int_equal(p->unique_identifier_len, strlen(uid));
	assert_memory_equal(p->unique_identifier, uid, strlen(uid));
}

/* The value of |a| as Get Attributes (2.0) answers it, checked to be of |type|. */
static int64_t value_of(struct engine_fx *f, const char *uid, const struct ref *a, uint8_t type)
{
	const struct kmip_get_attributes_response *p;
	const struct kmip_node *v;
	struct kmip_writer w;

	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	write_ref(&w, a);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_non_null(p->attributes);
	assert_int_equal(p->attributes->num_attributes, 1);
	v = p->attributes->attributes[0];
	if (a->name != NULL) {
		assert_non_null(v = kmip_node_find(v, KMIP_TAG_ATTRIBUTE_VALUE));
	}
	assert_int_equal(v->type, type);
	return type == KMIP_TYPE_INTEGER    ? v->v.i32
	       : type == KMIP_TYPE_INTERVAL ? (int64_t)v->v.u32
					    : v->v.i64;
}

static void test_integer(void **state)
{
	struct engine_fx *f = *state;
	const struct ref count = {0, "count"};
	char uid[129];

	req_create_aes(f, 128, 12, false, uid);
	set_attr(f, uid, &count, KMIP_TYPE_INTEGER, 5);
	adjust_ok(f, uid, &count, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_INTEGER, 3);
	assert_int_equal(value_of(f, uid, &count, KMIP_TYPE_INTEGER), 8);
	adjust_ok(f, uid, &count, KMIP_ADJUSTMENT_TYPE_DECREMENT, KMIP_TYPE_INTEGER, 10);
	assert_int_equal(value_of(f, uid, &count, KMIP_TYPE_INTEGER), -2);
	adjust_ok(f, uid, &count, KMIP_ADJUSTMENT_TYPE_NEGATE, 0, 0);
	assert_int_equal(value_of(f, uid, &count, KMIP_TYPE_INTEGER), 2);
	/* Past INT32_MAX: refused, the value unchanged. */
	adjust(f, 1, uid, &count, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_INTEGER, INT32_MAX);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	assert_int_equal(value_of(f, uid, &count, KMIP_TYPE_INTEGER), 2);
	/* Increment and Decrement need an Adjustment Value. */
	adjust(f, 1, uid, &count, KMIP_ADJUSTMENT_TYPE_INCREMENT, 0, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_MISSING_DATA);
}

static void test_long_and_interval(void **state)
{
	struct engine_fx *f = *state;
	const struct ref big = {0, "big"}, wait = {0, "wait"};
	char uid[129];

	req_create_aes(f, 128, 12, false, uid);
	set_attr(f, uid, &big, KMIP_TYPE_LONG_INTEGER, INT64_C(5000000000));
	adjust_ok(f, uid, &big, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_LONG_INTEGER,
		  INT64_C(7000000000));
	assert_true(value_of(f, uid, &big, KMIP_TYPE_LONG_INTEGER) == INT64_C(12000000000));
	adjust_ok(f, uid, &big, KMIP_ADJUSTMENT_TYPE_NEGATE, 0, 0);
	assert_true(value_of(f, uid, &big, KMIP_TYPE_LONG_INTEGER) == INT64_C(-12000000000));
	set_attr(f, uid, &wait, KMIP_TYPE_INTERVAL, 60);
	adjust_ok(f, uid, &wait, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_INTERVAL, 30);
	assert_int_equal(value_of(f, uid, &wait, KMIP_TYPE_INTERVAL), 90);
	/* An Interval does not go below zero, nor negate. */
	adjust(f, 1, uid, &wait, KMIP_ADJUSTMENT_TYPE_DECREMENT, KMIP_TYPE_INTEGER, 91);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	adjust(f, 1, uid, &wait, KMIP_ADJUSTMENT_TYPE_NEGATE, 0, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	assert_int_equal(value_of(f, uid, &wait, KMIP_TYPE_INTERVAL), 90);
}

/* A standard Date-Time attribute a client may change (Process Start Date, 1.4 §3.25). */
static void test_date_time(void **state)
{
	struct engine_fx *f = *state;
	const struct ref psd = {KMIP_TAG_PROCESS_START_DATE, NULL};
	const int64_t t = 1900000000;
	char uid[129];

	req_create_aes(f, 128, 12, false, uid);
	set_attr(f, uid, &psd, KMIP_TYPE_DATE_TIME, t);
	adjust_ok(f, uid, &psd, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_INTERVAL, 86400);
	assert_true(value_of(f, uid, &psd, KMIP_TYPE_DATE_TIME) == t + 86400);
	adjust_ok(f, uid, &psd, KMIP_ADJUSTMENT_TYPE_DECREMENT, KMIP_TYPE_LONG_INTEGER, 3600);
	assert_true(value_of(f, uid, &psd, KMIP_TYPE_DATE_TIME) == t + 86400 - 3600);
	adjust(f, 1, uid, &psd, KMIP_ADJUSTMENT_TYPE_NEGATE, 0, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
}

static void test_refused(void **state)
{
	struct engine_fx *f = *state;
	const struct ref length = {KMIP_TAG_CRYPTOGRAPHIC_LENGTH, NULL};
	const struct ref activation = {KMIP_TAG_ACTIVATION_DATE, NULL};
	const struct ref absent = {0, "absent"};
	const struct ref contact = {KMIP_TAG_CONTACT_INFORMATION, NULL};
	struct kmip_writer w;
	char uid[129];

	req_create_aes(f, 128, 12, true, uid);
	/* Server-managed attributes, and the state machine's dates, are read-only. */
	adjust(f, 1, uid, &length, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_INTEGER, 8);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ATTRIBUTE_READ_ONLY);
	adjust(f, 1, uid, &activation, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_INTERVAL, 8);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ATTRIBUTE_READ_ONLY);
	adjust(f, 1, uid, &absent, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_INTEGER, 1);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ATTRIBUTE_NOT_FOUND);
	/* A text attribute is not a number. */
	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_SET_ATTRIBUTE);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_NEW_ATTRIBUTE);
	kmip_write_text(&w, KMIP_TAG_CONTACT_INFORMATION, "ops", 3);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	adjust(f, 0, uid, &contact, KMIP_ADJUSTMENT_TYPE_INCREMENT, KMIP_TYPE_INTEGER, 1);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	/* Another client's object does not exist. */
	req_begin(&w, 2, 1, 1);
	req_item_begin(&w, KMIP_OPERATION_ADJUST_ATTRIBUTE);
	req_uid(&w, uid);
	write_ref(&w, &contact);
	kmip_write_enum(&w, KMIP_TAG_ADJUSTMENT_TYPE, KMIP_ADJUSTMENT_TYPE_NEGATE);
	req_item_end(&w);
	req_send(f, &f->bob, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_integer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_and_interval, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_date_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
