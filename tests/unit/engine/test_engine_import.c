/*
 * keel_engine_import, the inverse of keel_engine_export (issue 6, recovery):
 * objects exported from one store come back in a fresh one, under the CRK
 * active there, exporting to the very same bytes (material, state, dates,
 * owner, every attribute); a repeat is a no-op; a payload that was tampered
 * with, names another object, or collides with a different object is refused
 * and changes nothing.
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

#define NUM_OBJECTS 6

struct fx {
	struct engine_fx *src;
	struct keel_engine *dst; /* a fresh store on the same token, after a CRK rotation */
	char dst_path[160];
	char uid[NUM_OBJECTS][129];
	struct hsm_secret *exported[NUM_OBJECTS];
};

static void custom(struct kmip_writer *w)
{
	req_attr_text(w, "x-vmware-cluster", "cluster-7");
	req_attr_text(w, "Contact Information", "ops@example.com");
	req_attr_name(w, "vm-disk-key");
}

static void send_uid_op(struct engine_fx *f, uint32_t operation, const char *uid)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, operation);
	req_uid(&w, uid);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
}

/* An RSA-2048 pair of alice's. */
static void create_pair(struct engine_fx *f, char priv[static 129], char pub[static 129])
{
	struct kmip_writer w;
	const struct kmip_create_key_pair_response *p;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE_KEY_PAIR);
	kmip_write_begin(&w, KMIP_TAG_COMMON_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA);
	req_attr_int(&w, "Cryptographic Length", false, 2048);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_PRIVATE_KEY_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Usage Mask", false, KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_PUBLIC_KEY_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Usage Mask", false, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	req_copy_uid(priv, p->private_key_unique_identifier, p->private_key_unique_identifier_len);
	req_copy_uid(pub, p->public_key_unique_identifier, p->public_key_unique_identifier_len);
}

static struct hsm *rotate_hsm; /* the token a rotation between is made in, once */

static void rotate_between(void *arg)
{
	(void)arg;
	if (rotate_hsm != NULL) {
		assert_int_equal(hsm_crk_generate(rotate_hsm, 0, NULL), 0);
		rotate_hsm = NULL;
	}
}

/* Objects in every shape a recovery meets, exported. */
static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	const struct req_sym_spec active = {.algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_AES,
					    .bits = 256,
					    .mask = 12,
					    .active = true,
					    .attrs = custom};
	const struct req_sym_spec pre = {
	    .algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, .bits = 128, .mask = 12};
	struct keel_engine_config cfg = {0};

	assert_non_null(x);
	x->src = engine_fx_new();
	req_create_sym(x->src, &active, x->uid[0]);
	req_create_sym(x->src, &pre, x->uid[1]);
	req_create_sym(x->src, &active, x->uid[2]);
	req_revoke(x->src, x->uid[2], KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION);
	req_create_sym(x->src, &pre, x->uid[3]);
	send_uid_op(x->src, KMIP_OPERATION_DESTROY, x->uid[3]);
	create_pair(x->src, x->uid[4], x->uid[5]);
	for (size_t i = 0; i < NUM_OBJECTS; i++) {
		assert_int_equal(keel_engine_export(x->src->e, x->uid[i], &x->exported[i]), 0);
	}
	assert_int_equal(hsm_crk_generate(x->src->hsm, 0, NULL), 0);
	snprintf(x->dst_path, sizeof(x->dst_path), "%s/fresh.db", x->src->db_dir);
	cfg.store_path = x->dst_path;
	cfg.hsm = x->src->hsm;
	cfg.max_batch_items = 8;
	cfg.after_prepare = rotate_between;
	assert_int_equal(keel_engine_open(&cfg, &x->dst), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	for (size_t i = 0; i < NUM_OBJECTS; i++) {
		hsm_secret_free(x->exported[i]);
	}
	keel_engine_close(x->dst);
	engine_fx_free(x->src);
	free(x);
	return 0;
}

static int import(struct fx *x, size_t i, const char *uid, bool *identical)
{
	return keel_engine_import(x->dst, uid, hsm_secret_data(x->exported[i]),
				  hsm_secret_len(x->exported[i]), identical);
}

/* Export → import → export gives the same bytes; a second import is a no-op. */
static void test_round_trip(void **state)
{
	struct fx *x = *state;
	bool identical;

	for (size_t i = 0; i < NUM_OBJECTS; i++) {
		struct hsm_secret *again = NULL;

		assert_int_equal(import(x, i, x->uid[i], &identical), 0);
		assert_false(identical);
		assert_int_equal(keel_engine_export(x->dst, x->uid[i], &again), 0);
		assert_int_equal(hsm_secret_len(again), hsm_secret_len(x->exported[i]));
		assert_memory_equal(hsm_secret_data(again), hsm_secret_data(x->exported[i]),
				    hsm_secret_len(again));
		hsm_secret_free(again);
		assert_int_equal(import(x, i, x->uid[i], &identical), 0);
		assert_true(identical);
	}
}

/* The restored key serves its owner over KMIP with its material, under the new CRK. */
static void test_serves(void **state)
{
	struct fx *x = *state;
	struct keel_engine *src_e = x->src->e;
	uint8_t before[64], after[64];
	size_t len = req_get_key(x->src, x->uid[0], before);
	bool identical;

	assert_int_equal(import(x, 0, x->uid[0], &identical), 0);
	x->src->e = x->dst;
	assert_int_equal(req_get_key(x->src, x->uid[0], after), len);
	assert_memory_equal(before, after, len);
	x->src->e = src_e;
}

/*
 * A CRK rotation between the sealing (before the transaction) and the write:
 * the material is sealed again under the version now active, never stored
 * under one the rotation may already have retired.
 */
static void test_rotation_between(void **state)
{
	struct fx *x = *state;
	struct keel_store_object o = {0};
	struct keel_store_txn *t;
	uint32_t active;
	bool identical;

	rotate_hsm = x->src->hsm;
	assert_int_equal(import(x, 0, x->uid[0], &identical), 0);
	assert_null(rotate_hsm);
	assert_int_equal(hsm_crk_active(x->src->hsm, &active), 0);
	assert_int_equal(active, 3);
	assert_int_equal(keel_store_begin_read(keel_engine_store(x->dst), &t), 0);
	assert_int_equal(keel_store_object_get(t, x->uid[0], NULL, &o), 0);
	keel_store_rollback(t);
	assert_int_equal(o.crk_version, active);
	keel_store_object_cleanup(&o);
}

/* Flips one byte of export |i| at |at| (from the end when negative) and tries it. */
static int tampered(struct fx *x, size_t i, long at)
{
	size_t len = hsm_secret_len(x->exported[i]);
	uint8_t *p = hsm_secret_data(x->exported[i]);
	size_t pos = at < 0 ? len - (size_t)-at : (size_t)at;
	bool identical;
	int r;

	p[pos] ^= 0x01;
	r = import(x, i, x->uid[i], &identical);
	p[pos] ^= 0x01;
	return r;
}

/* Refusals write nothing: the object is still absent afterwards. */
static void assert_absent(struct fx *x, const char *uid)
{
	struct hsm_secret *none = NULL;

	assert_int_equal(keel_engine_export(x->dst, uid, &none), KEEL_ENGINE_EXPORT_E_NOT_FOUND);
}

static void test_refusals(void **state)
{
	struct fx *x = *state;
	bool identical;

	/* Truncated, a broken header, or an owner that is not the one exported. */
	assert_int_equal(keel_engine_import(x->dst, x->uid[0], hsm_secret_data(x->exported[0]),
					    hsm_secret_len(x->exported[0]) - 8, &identical),
			 KEEL_ENGINE_IMPORT_E_INVALID);
	assert_int_equal(tampered(x, 0, 2), KEEL_ENGINE_IMPORT_E_INVALID);
	assert_int_equal(tampered(x, 0, -3), 0); /* a flipped owner byte is another owner */
	assert_int_equal(keel_engine_import(x->dst, x->uid[1], hsm_secret_data(x->exported[0]),
					    hsm_secret_len(x->exported[0]), &identical),
			 KEEL_ENGINE_IMPORT_E_INVALID);
	assert_absent(x, x->uid[1]);
	/* uid[0] now holds an object with another owner: the real one collides. */
	assert_int_equal(import(x, 0, x->uid[0], &identical), KEEL_ENGINE_IMPORT_E_EXISTS);
	assert_false(identical);
	assert_int_equal(keel_engine_import(x->dst, "", (const uint8_t *)"", 0, &identical),
			 KEEL_ENGINE_IMPORT_E_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_serves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_between, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
