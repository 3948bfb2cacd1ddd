/*
 * Token work out of the writers' turn (engine_int.h, struct eng_prep): a
 * Create's UID, key and sealed blob, and a Register's sealed material, are
 * made before the request's transaction and used in it only while they
 * still hold: not after a CRK rotation made another version active, not
 * after key serving was refused. Errors answer and audit as a request that
 * prepared nothing. A Get prepares nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_req.h"
#include "keel/hsm.h"
#include "store.h"

#define MASK_ED 12 /* Encrypt | Decrypt */

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

static struct keel_engine_prep_stats stats(struct engine_fx *f)
{
	struct keel_engine_prep_stats s;

	keel_engine_prep_stats(f->e, &s);
	return s;
}

/* Asserts how many items were prepared and used since |before|. */
static void expect_prep(struct engine_fx *f, struct keel_engine_prep_stats before,
			uint64_t prepared, uint64_t used)
{
	struct keel_engine_prep_stats now = stats(f);

	assert_int_equal(now.prepared - before.prepared, prepared);
	assert_int_equal(now.used - before.used, used);
}

/* The stored row of |uid| (any owner). */
static void read_row(struct engine_fx *f, const char *uid, struct keel_store_object *o)
{
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin_read(keel_engine_store(f->e), &t), 0);
	assert_int_equal(keel_store_object_get(t, uid, NULL, o), 0);
	keel_store_rollback(t);
}

static uint32_t active_crk(struct engine_fx *f)
{
	uint32_t v;

	assert_int_equal(hsm_crk_active(f->hsm, &v), 0);
	return v;
}

/* A CRK rotation starting between preparation and turn: a new active version. */
static void rotate(struct engine_fx *f)
{
	assert_int_equal(hsm_crk_generate(f->hsm, 0, NULL), 0);
}

/* Writes a Create item of a symmetric key of |algorithm|, |bits| long, usage Encrypt|Decrypt. */
static void create_item(struct kmip_writer *w, uint32_t algorithm, int32_t bits)
{
	req_item_begin(w, KMIP_OPERATION_CREATE);
	kmip_write_enum(w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(w, "Cryptographic Algorithm", true, (int32_t)algorithm);
	req_attr_int(w, "Cryptographic Length", false, bits);
	req_attr_int(w, "Cryptographic Usage Mask", false, MASK_ED);
	kmip_write_end(w);
	req_item_end(w);
}

/* A Create uses what it prepared; a Get prepares nothing (engine_int.h). */
static void test_create_uses_what_was_prepared_get_nothing(void **state)
{
	struct engine_fx *f = *state;
	struct keel_engine_prep_stats before = stats(f);
	struct keel_store_object o = {0};
	uint8_t key[64];
	char uid[129];

	req_create_aes(f, 256, MASK_ED, false, uid);
	expect_prep(f, before, 1, 1);
	read_row(f, uid, &o);
	assert_int_equal(o.crk_version, active_crk(f));
	keel_store_object_cleanup(&o);
	before = stats(f);
	assert_int_equal(req_get_key(f, uid, key), 32);
	expect_prep(f, before, 0, 0);
}

/* A rotation between: the blob sealed under the old version is not stored. */
static void test_create_reseals_after_a_rotation(void **state)
{
	struct engine_fx *f = *state;
	struct keel_engine_prep_stats before = stats(f);
	struct keel_store_object o = {0};
	uint8_t key[64];
	char uid[129];

	f->between = rotate;
	req_create_aes(f, 128, MASK_ED, false, uid);
	expect_prep(f, before, 1, 0);
	read_row(f, uid, &o);
	assert_int_equal(o.crk_version, 2);
	assert_int_equal(active_crk(f), 2);
	keel_store_object_cleanup(&o);
	assert_int_equal(req_get_key(f, uid, key), 16);
}

/* Every Create of a batch has its own preparation. */
static void test_two_creates_in_one_batch(void **state)
{
	struct engine_fx *f = *state;
	struct keel_engine_prep_stats before = stats(f);
	const struct kmip_create_response *p0, *p1;
	struct kmip_writer w;
	uint8_t k0[64], k1[64];
	char u0[129], u1[129];

	req_begin(&w, 1, 4, 2);
	create_item(&w, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 128);
	create_item(&w, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 256);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	req_expect_ok(f, 1);
	p0 = req_item(f, 0)->response_payload;
	p1 = req_item(f, 1)->response_payload;
	req_copy_uid(u0, p0->unique_identifier, p0->unique_identifier_len);
	req_copy_uid(u1, p1->unique_identifier, p1->unique_identifier_len);
	expect_prep(f, before, 2, 2);
	assert_string_not_equal(u0, u1);
	assert_int_equal(req_get_key(f, u0, k0), 16);
	assert_int_equal(req_get_key(f, u1, k1), 32);
}

/* The newest audit row. */
static int newest(void *ctx, const struct keel_store_audit *row)
{
	struct keel_store_audit *out = ctx;

	*out = *row;
	out->client = out->uid = out->detail = NULL; /* the row's strings go with the scan */
	return 1;
}

/* A Create that fails prepares nothing, answers and audits as before. */
static void test_failing_create_answers_as_before(void **state)
{
	struct engine_fx *f = *state;
	struct keel_engine_prep_stats before = stats(f);
	struct keel_store_audit_filter all = {.limit = 1};
	struct keel_store_audit row = {0};
	const struct kmip_response_batch_item *bi;
	struct keel_store_txn *t;
	struct kmip_writer w;
	static const struct {
		uint32_t algorithm;
		int32_t bits;
		const char *message;
	} cases[] = {
	    {KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048,
	     "Cryptographic Algorithm: not a symmetric algorithm Keel generates"},
	    {KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 100,
	     "Cryptographic Length: not a length of this algorithm"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		req_begin(&w, 1, 4, 1);
		create_item(&w, cases[i].algorithm, cases[i].bits);
		req_send(f, &f->alice, &w);
		req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
		bi = req_item(f, 0);
		assert_int_equal(bi->result_message_len, strlen(cases[i].message));
		assert_memory_equal(bi->result_message, cases[i].message, bi->result_message_len);
		assert_int_equal(keel_store_begin_read(keel_engine_store(f->e), &t), 0);
		assert_int_equal(keel_store_audit_scan(t, &all, newest, &row), 0);
		keel_store_rollback(t);
		assert_int_equal(row.operation, KMIP_OPERATION_CREATE);
		assert_int_equal(row.result_status, KMIP_RESULT_STATUS_OPERATION_FAILED);
		assert_int_equal(row.result_reason, KMIP_RESULT_REASON_INVALID_FIELD);
	}
	expect_prep(f, before, 0, 0);
}

/* A Create and a Get of its ID Placeholder in one batch: the Create's preparation is used. */
static void test_placeholder_get_is_not_prepared(void **state)
{
	struct engine_fx *f = *state;
	struct keel_engine_prep_stats before = stats(f);
	const struct kmip_get_response *g;
	struct kmip_writer w;

	req_begin(&w, 1, 4, 2);
	create_item(&w, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 192);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	req_expect_ok(f, 1);
	g = req_item(f, 1)->response_payload;
	assert_int_equal(g->symmetric_key->key_block->key_value->key_material_len, 24);
	expect_prep(f, before, 1, 1);
}

/* Register seals the material it will store, under a UID of its own. */
static void test_register_uses_what_was_prepared(void **state)
{
	struct engine_fx *f = *state;
	struct keel_engine_prep_stats before = stats(f);
	static const uint8_t material[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t key[64];
	char uid[129];

	req_register_key(f, 1, KMIP_OBJECT_TYPE_SYMMETRIC_KEY, KMIP_KEY_FORMAT_TYPE_RAW, material,
			 sizeof(material), uid);
	expect_prep(f, before, 1, 1);
	assert_int_equal(req_get_key(f, uid, key), 16);
	assert_memory_equal(key, material, 16);
}

static void refuse(struct engine_fx *f)
{
	keel_engine_refuse(f->e, "refused in the test");
}

/* Key serving stopped between preparation and turn: what was prepared is not stored. */
static void test_refusal_between_discards_the_preparation(void **state)
{
	struct engine_fx *f = *state;
	struct keel_engine_prep_stats before = stats(f);
	struct keel_store_txn *t;
	struct kmip_writer w;
	int64_t n = -1;

	f->between = refuse;
	req_begin(&w, 1, 4, 1);
	create_item(&w, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 256);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	expect_prep(f, before, 1, 0);
	assert_int_equal(keel_store_begin_read(keel_engine_store(f->e), &t), 0);
	assert_int_equal(keel_store_object_count(t, &n), 0);
	keel_store_rollback(t);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_uses_what_was_prepared_get_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_create_reseals_after_a_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_creates_in_one_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failing_create_answers_as_before, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_placeholder_get_is_not_prepared, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_register_uses_what_was_prepared, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusal_between_discards_the_preparation, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
