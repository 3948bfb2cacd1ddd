/*
 * CRK lifecycle and wrap/unwrap against a real SoftHSM2 token (issue 3):
 * round trip, AAD (object id) mismatch, tampering, wrong CRK version,
 * rotation to version 2 with version-1 blobs still readable. Every wrap test
 * runs once with AES-GCM and once with AES-KWP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "softhsm_fixture.h"

struct env {
	struct softhsm_fixture *f;
	struct hsm *h;
};

static const uint8_t uid_a[] = "6f1c2d9e-0a4b-4c1e-9a51-3f3c8b1d2e70";
static const uint8_t uid_b[] = "6f1c2d9e-0a4b-4c1e-9a51-3f3c8b1d2e71";

static int setup_mode(void **state, enum hsm_wrap_mode mode)
{
	struct env *e = calloc(1, sizeof(*e));
	uint32_t v = 0;

	assert_non_null(e);
	e->f = fixture_new();
	e->h = fixture_open(e->f, mode);
	assert_int_equal(hsm_crk_generate(e->h, 0, &v), 0);
	assert_int_equal(v, 1);
	*state = e;
	return 0;
}

static int setup_gcm(void **state)
{
	return setup_mode(state, HSM_WRAP_GCM);
}

static int setup_kwp(void **state)
{
	return setup_mode(state, HSM_WRAP_KWP);
}

static int teardown(void **state)
{
	struct env *e = *state;

	hsm_close(e->h);
	fixture_free(e->f);
	free(e);
	return 0;
}

static void wrap_ok(struct hsm *h, const uint8_t *uid, const uint8_t *key, size_t key_len,
		    uint8_t **out_blob, size_t *out_len)
{
	assert_int_equal(
	    hsm_wrap(h, uid, strlen((const char *)uid), key, key_len, out_blob, out_len), 0);
}

static void unwrap_eq(struct hsm *h, const uint8_t *uid, const uint8_t *blob, size_t blob_len,
		      const uint8_t *key, size_t key_len)
{
	struct hsm_secret *s = NULL;

	assert_int_equal(hsm_unwrap(h, uid, strlen((const char *)uid), blob, blob_len, &s), 0);
	assert_int_equal(hsm_secret_len(s), key_len);
	assert_memory_equal(hsm_secret_data(s), key, key_len);
	hsm_secret_free(s);
}

static int unwrap_err(struct hsm *h, const uint8_t *uid, const uint8_t *blob, size_t blob_len)
{
	struct hsm_secret *s = NULL;
	int r = hsm_unwrap(h, uid, strlen((const char *)uid), blob, blob_len, &s);

	assert_null(s);
	return r;
}

static void test_round_trip(void **state)
{
	struct env *e = *state;
	uint8_t key[32], *blob = NULL;
	size_t len = 0;
	uint32_t v = 0;

	assert_int_equal(hsm_random(e->h, key, sizeof(key)), 0);
	wrap_ok(e->h, uid_a, key, sizeof(key), &blob, &len);
	assert_int_equal(hsm_blob_crk_version(blob, len, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(blob[0], HSM_BLOB_FORMAT);
	/* The key must not appear in the blob. */
	assert_null(memmem(blob, len, key, 8));
	unwrap_eq(e->h, uid_a, blob, len, key, sizeof(key));
	free(blob);
}

static void test_sizes(void **state)
{
	struct env *e = *state;
	static const size_t sizes[] = {1, 15, 16, 17, 32, 1000, HSM_MAX_KEY_LEN};
	uint8_t *key = malloc(HSM_MAX_KEY_LEN), *blob = NULL;
	size_t len;

	assert_non_null(key);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(key, (int)i + 1, sizes[i]);
		wrap_ok(e->h, uid_a, key, sizes[i], &blob, &len);
		unwrap_eq(e->h, uid_a, blob, len, key, sizes[i]);
		free(blob);
	}
	assert_int_equal(hsm_wrap(e->h, uid_a, 3, key, HSM_MAX_KEY_LEN + 1, &blob, &len),
			 HSM_E_INVAL);
	assert_int_equal(hsm_wrap(e->h, uid_a, 0, key, 32, &blob, &len), HSM_E_INVAL);
	free(key);
}

static void test_aad_mismatch(void **state)
{
	struct env *e = *state;
	const uint8_t key[32] = {1, 2, 3};
	uint8_t *blob = NULL;
	size_t len = 0;

	wrap_ok(e->h, uid_a, key, sizeof(key), &blob, &len);
	assert_int_equal(unwrap_err(e->h, uid_b, blob, len), HSM_E_AUTH);
	assert_int_equal(unwrap_err(e->h, (const uint8_t *)"x", blob, len), HSM_E_AUTH);
	free(blob);
}

/* Flipping any bit of any byte must be refused, whatever part it hits. */
static void test_tampered(void **state)
{
	struct env *e = *state;
	const uint8_t key[32] = {9, 8, 7};
	uint8_t *blob = NULL;
	size_t len = 0;
	int r;

	wrap_ok(e->h, uid_a, key, sizeof(key), &blob, &len);
	for (size_t i = 0; i < len; i++) {
		blob[i] ^= 0x01;
		r = unwrap_err(e->h, uid_a, blob, len);
		assert_true(r == HSM_E_AUTH || r == HSM_E_BLOB_FORMAT || r == HSM_E_CRK_NOT_FOUND);
		blob[i] ^= 0x01;
	}
	r = unwrap_err(e->h, uid_a, blob, len - 1); /* GCM: tag short; KWP: not 8-aligned */
	assert_true(r == HSM_E_AUTH || r == HSM_E_BLOB_FORMAT);
	assert_int_equal(unwrap_err(e->h, uid_a, blob, 5), HSM_E_BLOB_FORMAT);
	blob[0] = 2;
	assert_int_equal(unwrap_err(e->h, uid_a, blob, len), HSM_E_BLOB_FORMAT);
	blob[0] = HSM_BLOB_FORMAT;
	unwrap_eq(e->h, uid_a, blob, len, key, sizeof(key));
	free(blob);
}

static void test_wrong_crk_version(void **state)
{
	struct env *e = *state;
	const uint8_t key[32] = {5};
	uint8_t *blob = NULL;
	size_t len = 0;
	uint32_t v = 0;

	wrap_ok(e->h, uid_a, key, sizeof(key), &blob, &len);
	blob[5] = 7; /* names version 7, which does not exist */
	assert_int_equal(unwrap_err(e->h, uid_a, blob, len), HSM_E_CRK_NOT_FOUND);
	assert_int_equal(hsm_crk_generate(e->h, 0, &v), 0);
	assert_int_equal(v, 2);
	blob[5] = 2; /* names version 2, which exists but did not wrap it */
	assert_int_equal(unwrap_err(e->h, uid_a, blob, len), HSM_E_AUTH);
	free(blob);
}

static void test_rotation(void **state)
{
	struct env *e = *state;
	const uint8_t key[32] = {0xaa, 0xbb};
	uint8_t *b1 = NULL, *b2 = NULL, *b3 = NULL;
	size_t l1, l2, l3;
	uint32_t v = 0;

	wrap_ok(e->h, uid_a, key, sizeof(key), &b1, &l1);
	assert_int_equal(hsm_crk_generate(e->h, 0, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(hsm_crk_active(e->h, &v), 0);
	assert_int_equal(v, 2);
	wrap_ok(e->h, uid_a, key, sizeof(key), &b2, &l2);
	assert_int_equal(hsm_blob_crk_version(b2, l2, &v), 0);
	assert_int_equal(v, 2);
	unwrap_eq(e->h, uid_a, b1, l1, key, sizeof(key)); /* version 1 still unwraps */
	unwrap_eq(e->h, uid_a, b2, l2, key, sizeof(key));
	assert_int_equal(hsm_rewrap(e->h, uid_a, sizeof(uid_a) - 1, b1, l1, &b3, &l3), 0);
	assert_int_equal(hsm_blob_crk_version(b3, l3, &v), 0);
	assert_int_equal(v, 2);
	unwrap_eq(e->h, uid_a, b3, l3, key, sizeof(key));
	/* Retiring version 1: its blobs are refused, version 2 is untouched. */
	assert_int_equal(hsm_crk_destroy(e->h, 1), 0);
	assert_int_equal(unwrap_err(e->h, uid_a, b1, l1), HSM_E_CRK_NOT_FOUND);
	unwrap_eq(e->h, uid_a, b2, l2, key, sizeof(key));
	free(b1);
	free(b2);
	free(b3);
}

/* A second handle (another process or node) sees versions made by the first. */
static void test_versions_found_at_open(void **state)
{
	struct env *e = *state;
	struct hsm_crk_info *list = NULL;
	struct hsm *h2;
	size_t n = 0;
	uint32_t v = 0;

	assert_int_equal(hsm_crk_generate(e->h, HSM_CRK_EXTRACTABLE, &v), 0);
	h2 = fixture_open(e->f, HSM_WRAP_GCM);
	assert_int_equal(hsm_crk_list(h2, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].version, 1);
	assert_false(list[0].extractable);
	assert_false(list[0].active);
	assert_int_equal(list[1].version, 2);
	assert_true(list[1].extractable);
	assert_true(list[1].active);
	assert_int_equal(strlen(list[0].created), 20);
	assert_int_equal(list[0].created[19], 'Z');
	assert_true(list[0].has_kcv);
	free(list);
	hsm_close(h2);
}

static void test_no_crk(void **state)
{
	struct env *e = *state;
	const uint8_t key[4] = {1};
	uint8_t *blob = NULL;
	size_t len = 0;
	uint32_t v;

	assert_int_equal(hsm_crk_destroy(e->h, 1), 0);
	assert_int_equal(hsm_crk_active(e->h, &v), HSM_E_CRK_NOT_FOUND);
	assert_int_equal(hsm_wrap(e->h, uid_a, 3, key, sizeof(key), &blob, &len),
			 HSM_E_CRK_NOT_FOUND);
	assert_null(blob);
	assert_int_equal(hsm_crk_destroy(e->h, 1), HSM_E_CRK_NOT_FOUND);
}

static void test_info(void **state)
{
	struct env *e = *state;
	struct hsm_info info;

	assert_int_equal(hsm_get_info(e->h, &info), 0);
	assert_string_equal(info.token_label, FIXTURE_LABEL);
	assert_string_equal(info.module_vendor, "SoftHSM");
	assert_true(strstr(info.module_path, "softhsm2") != NULL);
	assert_int_equal(info.state, HSM_STATE_READY);
	assert_true(info.token_present);
	assert_int_equal(info.active_crk, 1);
	assert_int_equal(info.pool_size, 4);
	assert_int_equal(info.pool_in_use, 0);
	assert_true(info.token_serial[0] != '\0');
}

static void test_random(void **state)
{
	struct env *e = *state;
	uint8_t a[64] = {0}, b[64] = {0};

	assert_int_equal(hsm_random(e->h, a, sizeof(a)), 0);
	assert_int_equal(hsm_random(e->h, b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(hsm_random(e->h, a, 0), HSM_E_INVAL);
}

#define WRAP_TESTS(setup)                                                                          \
	cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),                         \
	    cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),                          \
	    cmocka_unit_test_setup_teardown(test_aad_mismatch, setup, teardown),                   \
	    cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),                       \
	    cmocka_unit_test_setup_teardown(test_wrong_crk_version, setup, teardown),              \
	    cmocka_unit_test_setup_teardown(test_rotation, setup, teardown)

int main(void)
{
	const struct CMUnitTest gcm[] = {
	    WRAP_TESTS(setup_gcm),
	    cmocka_unit_test_setup_teardown(test_versions_found_at_open, setup_gcm, teardown),
	    cmocka_unit_test_setup_teardown(test_no_crk, setup_gcm, teardown),
	    cmocka_unit_test_setup_teardown(test_info, setup_gcm, teardown),
	    cmocka_unit_test_setup_teardown(test_random, setup_gcm, teardown),
	};
	const struct CMUnitTest kwp[] = {WRAP_TESTS(setup_kwp)};
	int failed = cmocka_run_group_tests_name("hsm_wrap_gcm", gcm, NULL, NULL);

	return failed + cmocka_run_group_tests_name("hsm_wrap_kwp", kwp, NULL, NULL);
}
