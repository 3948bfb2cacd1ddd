/*
 * N threads wrapping and unwrapping at once through a pool smaller than N,
 * while the main thread rotates the CRK: every result must be correct
 * (issue 3). Built a second time under ThreadSanitizer with -DKEEL_HSM_TSAN=ON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "softhsm_fixture.h"

#define THREADS 8
#define ROUNDS	150

struct worker {
	struct hsm *h;
	pthread_barrier_t *start;
	int id;
	int failures;
	uint32_t versions_seen; /* bit v set when a blob was made under CRK v */
};

static int round_trip(struct worker *w, int i)
{
	uint8_t uid[32], key[48], *blob = NULL;
	struct hsm_secret *s = NULL;
	size_t uid_len, len = 0;
	uint32_t v = 0;
	int bad;

	uid_len = (size_t)snprintf((char *)uid, sizeof(uid), "t%d-obj%d", w->id, i);
	if (hsm_random(w->h, key, sizeof(key)) != 0 ||
	    hsm_wrap(w->h, uid, uid_len, key, sizeof(key), &blob, &len) != 0) {
		return 1;
	}
	bad = hsm_blob_crk_version(blob, len, &v) != 0 ||
	      hsm_unwrap(w->h, uid, uid_len, blob, len, &s) != 0 ||
	      hsm_secret_len(s) != sizeof(key) || memcmp(hsm_secret_data(s), key, sizeof(key)) != 0;
	/* Another thread's uid must not unwrap this blob. */
	uid[1] = (uint8_t)('a' + w->id);
	hsm_secret_free(s);
	s = NULL;
	bad |= hsm_unwrap(w->h, uid, uid_len, blob, len, &s) != HSM_E_AUTH;
	w->versions_seen |= 1u << (v & 31);
	free(blob);
	return bad;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(w->start);
	for (int i = 0; i < ROUNDS; i++) {
		w->failures += round_trip(w, i);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct softhsm_fixture *f = fixture_new();
	struct hsm *h = fixture_open(f, HSM_WRAP_GCM);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	pthread_barrier_t start;
	struct hsm_info info;
	uint32_t v = 0;

	assert_int_equal(hsm_crk_generate(h, 0, NULL), 0);
	assert_int_equal(pthread_barrier_init(&start, NULL, THREADS + 1), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.h = h, .start = &start, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	pthread_barrier_wait(&start);
	assert_int_equal(hsm_crk_generate(h, 0, &v), 0); /* rotation under load */
	assert_int_equal(v, 2);
	assert_int_equal(hsm_get_info(h, &info), 0);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
		assert_true((w[i].versions_seen & ~0x6u) == 0);
	}
	assert_int_equal(hsm_get_info(h, &info), 0);
	assert_int_equal(info.pool_in_use, 0);
	assert_int_equal(info.faults, 0);
	pthread_barrier_destroy(&start);
	hsm_close(h);
	fixture_free(f);
}

/*
 * The token disappears and comes back while the pool is in use. Phases are
 * separated by barriers, not sleeps: all succeed; token hidden: every unwrap
 * fails with HSM_E_TOKEN_UNAVAILABLE (never a wrong answer); token restored:
 * all succeed again.
 */
struct fault_worker {
	struct hsm *h;
	pthread_barrier_t *phase;
	const uint8_t *blob;
	size_t blob_len;
	int wrong[3]; /* per phase: results other than the one expected */
};

static const uint8_t fault_uid[] = "shared-object";
static const uint8_t fault_key[32] = "fault-test-key-material-32-bytes";

static int fault_unwrap(struct fault_worker *w)
{
	struct hsm_secret *s = NULL;
	int r = hsm_unwrap(w->h, fault_uid, sizeof(fault_uid) - 1, w->blob, w->blob_len, &s);

	if (r == 0 && memcmp(hsm_secret_data(s), fault_key, sizeof(fault_key)) != 0) {
		r = -1000; /* a wrong answer is the one result never allowed */
	}
	hsm_secret_free(s);
	return r;
}

static void *fault_main(void *arg)
{
	struct fault_worker *w = arg;
	static const int expect[3] = {0, HSM_E_TOKEN_UNAVAILABLE, 0};

	for (int phase = 0; phase < 3; phase++) {
		pthread_barrier_wait(w->phase); /* main changes the token here */
		pthread_barrier_wait(w->phase);
		for (int i = 0; i < 20; i++) {
			w->wrong[phase] += fault_unwrap(w) != expect[phase];
		}
	}
	return NULL;
}

static void test_token_fault_under_load(void **state)
{
	struct softhsm_fixture *f = fixture_new();
	struct hsm *h = fixture_open(f, HSM_WRAP_GCM);
	struct fault_worker w[THREADS];
	pthread_t t[THREADS];
	pthread_barrier_t phase;
	uint8_t *blob = NULL;
	size_t len = 0;

	assert_int_equal(hsm_crk_generate(h, 0, NULL), 0);
	assert_int_equal(hsm_wrap(h, fault_uid, sizeof(fault_uid) - 1, fault_key, sizeof(fault_key),
				  &blob, &len),
			 0);
	assert_int_equal(pthread_barrier_init(&phase, NULL, THREADS + 1), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] =
		    (struct fault_worker){.h = h, .phase = &phase, .blob = blob, .blob_len = len};
		assert_int_equal(pthread_create(&t[i], NULL, fault_main, &w[i]), 0);
	}
	for (int p = 0; p < 3; p++) {
		pthread_barrier_wait(&phase); /* the previous phase's requests are done */
		if (p == 1) {
			fixture_token_hide(f);
		} else if (p == 2) {
			fixture_token_restore(f);
		}
		pthread_barrier_wait(&phase);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].wrong[0], 0);
		assert_int_equal(w[i].wrong[1], 0);
		assert_int_equal(w[i].wrong[2], 0);
	}
	free(blob);
	pthread_barrier_destroy(&phase);
	hsm_close(h);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_token_fault_under_load),
	};

	return cmocka_run_group_tests_name("hsm_concurrency", tests, NULL, NULL);
}
