/*
 * Faults (issue 3): the token's directory removed and restored while the pool
 * is open, a wrong PIN, PIN files that are too open, a module path that does
 * not exist, files that are not PKCS#11 modules, an unknown token. Each gives
 * a clear error; the token fault recovers by itself once the token is back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "softhsm_fixture.h"

static const uint8_t uid[] = "obj-1";
static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";

static int setup(void **state)
{
	*state = fixture_new();
	return 0;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

static int open_with(struct softhsm_fixture *f, void (*edit)(struct hsm_config *),
		     struct hsm **out_h)
{
	struct hsm_config cfg;

	fixture_config(f, &cfg);
	if (edit != NULL) {
		edit(&cfg);
	}
	return hsm_open(&cfg, out_h);
}

static void unwrap_eq(struct hsm *h, const uint8_t *blob, size_t len)
{
	struct hsm_secret *s = NULL;

	assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s), 0);
	assert_memory_equal(hsm_secret_data(s), key, sizeof(key));
	hsm_secret_free(s);
}

static void removed_and_restored(struct softhsm_fixture *f, void (*hide)(struct softhsm_fixture *),
				 void (*restore)(struct softhsm_fixture *))
{
	struct hsm *h = fixture_open(f, HSM_WRAP_GCM);
	struct hsm_secret *s = NULL;
	struct hsm_info info;
	uint8_t *blob = NULL;
	size_t len = 0;
	int r;

	assert_int_equal(hsm_crk_generate(h, 0, NULL), 0);
	assert_int_equal(hsm_wrap(h, uid, sizeof(uid) - 1, key, sizeof(key), &blob, &len), 0);
	hide(f);
	for (int i = 0; i < 3; i++) {
		r = hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s);
		print_message("token gone, attempt %d: %s\n", i, hsm_strerror(r));
		assert_int_equal(r, HSM_E_TOKEN_UNAVAILABLE);
		assert_null(s);
	}
	/* Without its token directory SoftHSM is not even initialized: no info. */
	if (hide == fixture_token_hide) {
		assert_int_equal(hsm_get_info(h, &info), 0);
		assert_int_equal(info.state, HSM_STATE_RECOVERING);
		assert_false(info.token_present);
		assert_string_equal(info.module_vendor, "SoftHSM");
		assert_true(info.faults >= 1);
	}
	restore(f);
	unwrap_eq(h, blob, len); /* recovers by itself: no backoff in tests */
	assert_int_equal(hsm_get_info(h, &info), 0);
	assert_int_equal(info.state, HSM_STATE_READY);
	assert_true(info.recoveries >= 1);
	free(blob);
	hsm_close(h);
}

static void test_token_removed_and_restored(void **state)
{
	removed_and_restored(*state, fixture_token_hide, fixture_token_restore);
}

/* A re-initialization that failed (no token directory) is tried again. */
static void test_token_directory_removed_and_restored(void **state)
{
	removed_and_restored(*state, fixture_tokens_hide, fixture_tokens_restore);
}

static void faulty_module(struct hsm_config *cfg)
{
	cfg->module = KEEL_FAULTY_MODULE;
}

/* Puts the faulty module into a mode ("device", "pin", "hang") or, with NULL, heals it. */
static void set_fault(struct softhsm_fixture *f, const char *mode)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/fault", f->dir);
	assert_int_equal(setenv("KEEL_FAULTY_CONTROL", path, 1), 0);
	if (mode != NULL) {
		fixture_write_file(path, mode, 0600);
	} else {
		remove(path);
	}
}

static void faulty_module_bounded(struct hsm_config *cfg)
{
	cfg->module = KEEL_FAULTY_MODULE;
	cfg->pool_size = 2;
	cfg->timeout_ms = 300;
}

/*
 * A token that hangs instead of failing: the first call gives up after the
 * timeout, and while it is still hung the next ones fail at once; once the
 * token answers again the hung call ends in the background and calls
 * succeed again.
 */
static void test_token_hangs(void **state)
{
	struct softhsm_fixture *f = *state;
	struct hsm_secret *s = NULL;
	struct hsm *h = NULL;
	uint8_t *blob = NULL, rnd[16];
	const struct timespec tick = {0, 10 * 1000 * 1000};
	size_t len = 0;
	int r = HSM_E_TIMEOUT;

	set_fault(f, NULL);
	assert_int_equal(open_with(f, faulty_module_bounded, &h), 0);
	assert_int_equal(hsm_crk_generate(h, 0, NULL), 0);
	assert_int_equal(hsm_wrap(h, uid, sizeof(uid) - 1, key, sizeof(key), &blob, &len), 0);
	unwrap_eq(h, blob, len);
	set_fault(f, "hang");
	for (int i = 0; i < 4; i++) {
		assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s), HSM_E_TIMEOUT);
		assert_null(s);
	}
	assert_int_equal(hsm_random(h, rnd, sizeof(rnd)), HSM_E_TIMEOUT);
	assert_true(fixture_logged(f, "did not answer within 300 ms (the call goes on"));
	set_fault(f, NULL);
	/* The hung call ends within a tick of the fault module's: polled. */
	for (int i = 0; i < 500 && r == HSM_E_TIMEOUT; i++) {
		if ((r = hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s)) == HSM_E_TIMEOUT) {
			nanosleep(&tick, NULL);
		}
	}
	assert_true(fixture_logged(f, "the token answers again"));
	assert_int_equal(r, 0);
	assert_memory_equal(hsm_secret_data(s), key, sizeof(key));
	hsm_secret_free(s);
	unwrap_eq(h, blob, len);
	free(blob);
	hsm_close(h);
}

/* A module that answers CKR_DEVICE_ERROR: clear error now, recovery later. */
static void test_device_error(void **state)
{
	struct softhsm_fixture *f = *state;
	struct hsm_secret *s = NULL;
	struct hsm_info info;
	struct hsm *h = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;

	set_fault(f, NULL);
	assert_int_equal(open_with(f, faulty_module, &h), 0);
	assert_int_equal(hsm_crk_generate(h, 0, NULL), 0);
	assert_int_equal(hsm_wrap(h, uid, sizeof(uid) - 1, key, sizeof(key), &blob, &len), 0);
	set_fault(f, "device");
	assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s),
			 HSM_E_TOKEN_UNAVAILABLE);
	assert_true(fixture_logged(f, "CKR_DEVICE_ERROR"));
	assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s),
			 HSM_E_TOKEN_UNAVAILABLE);
	set_fault(f, NULL);
	unwrap_eq(h, blob, len);
	assert_int_equal(hsm_get_info(h, &info), 0);
	assert_int_equal(info.faults, 1);
	assert_int_equal(info.recoveries, 1);
	free(blob);
	hsm_close(h);
}

/* The PIN is refused while logging in again after a fault: tried once, never again. */
static void test_pin_refused_on_recovery(void **state)
{
	struct softhsm_fixture *f = *state;
	struct hsm_secret *s = NULL;
	struct hsm_info info;
	struct hsm *h = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;
	const char *p;
	int logins = 0;

	set_fault(f, NULL);
	assert_int_equal(open_with(f, faulty_module, &h), 0);
	assert_int_equal(hsm_crk_generate(h, 0, NULL), 0);
	assert_int_equal(hsm_wrap(h, uid, sizeof(uid) - 1, key, sizeof(key), &blob, &len), 0);
	set_fault(f, "pin");
	assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s),
			 HSM_E_TOKEN_UNAVAILABLE); /* the fault */
	assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s),
			 HSM_E_PIN_INCORRECT); /* recovery: C_Login refused */
	set_fault(f, NULL); /* the device is fine again, but the PIN was refused */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s),
				 HSM_E_PIN_INCORRECT);
	}
	assert_int_equal(hsm_recover(h), HSM_E_PIN_INCORRECT);
	for (p = f->log; (p = strstr(p, "refused the user PIN")) != NULL; p++) {
		logins++;
	}
	assert_int_equal(logins, 1);
	assert_int_equal(hsm_get_info(h, &info), 0);
	assert_int_equal(info.state, HSM_STATE_PIN_REJECTED);
	assert_false(fixture_logged(f, FIXTURE_PIN));
	free(blob);
	hsm_close(h);
}

static void with_backoff(struct hsm_config *cfg)
{
	cfg->backoff_initial_ms = 60000; /* far longer than the test: only hsm_recover helps */
}

/* With a backoff in force, requests fail fast; hsm_recover retries at once. */
static void test_backoff_and_forced_recover(void **state)
{
	struct softhsm_fixture *f = *state;
	struct hsm_secret *s = NULL;
	struct hsm *h = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;

	assert_int_equal(open_with(f, with_backoff, &h), 0);
	assert_int_equal(hsm_crk_generate(h, 0, NULL), 0);
	assert_int_equal(hsm_wrap(h, uid, sizeof(uid) - 1, key, sizeof(key), &blob, &len), 0);
	fixture_token_hide(f);
	assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s),
			 HSM_E_TOKEN_UNAVAILABLE); /* the fault is seen here */
	assert_int_equal(hsm_recover(h), HSM_E_TOKEN_UNAVAILABLE);
	fixture_token_restore(f);
	/* Within the backoff window: refused without touching the token. */
	assert_int_equal(hsm_random(h, (uint8_t[4]){0}, 4), HSM_E_TOKEN_UNAVAILABLE);
	assert_int_equal(hsm_unwrap(h, uid, sizeof(uid) - 1, blob, len, &s),
			 HSM_E_TOKEN_UNAVAILABLE);
	assert_int_equal(hsm_recover(h), 0);
	unwrap_eq(h, blob, len);
	free(blob);
	hsm_close(h);
}

static void test_wrong_pin(void **state)
{
	struct softhsm_fixture *f = *state;
	struct hsm *h = NULL;

	fixture_write_file(f->pin_file, "wrong-pin-5931\n", 0600);
	assert_int_equal(open_with(f, NULL, &h), HSM_E_PIN_INCORRECT);
	assert_null(h);
	assert_true(fixture_logged(f, "refused the user PIN"));
	/* The PIN is never echoed: not in the log, not in the error string. */
	assert_false(fixture_logged(f, "wrong-pin-5931"));
	assert_null(strstr(hsm_strerror(HSM_E_PIN_INCORRECT), "wrong-pin"));
	/* The right PIN still works: the token was not locked by retries. */
	fixture_write_file(f->pin_file, FIXTURE_PIN, 0400);
	assert_int_equal(open_with(f, NULL, &h), 0);
	assert_false(fixture_logged(f, FIXTURE_PIN));
	hsm_close(h);
}

static void test_pin_file_checks(void **state)
{
	struct softhsm_fixture *f = *state;
	struct hsm *h = NULL;

	fixture_write_file(f->pin_file, FIXTURE_PIN, 0640);
	assert_int_equal(open_with(f, NULL, &h), HSM_E_PIN_FILE);
	assert_true(fixture_logged(f, "must be 0600 or stricter"));
	fixture_write_file(f->pin_file, FIXTURE_PIN, 0604);
	assert_int_equal(open_with(f, NULL, &h), HSM_E_PIN_FILE);
	fixture_write_file(f->pin_file, "\n", 0600);
	assert_int_equal(open_with(f, NULL, &h), HSM_E_PIN_FILE);
	assert_int_equal(remove(f->pin_file), 0);
	assert_int_equal(open_with(f, NULL, &h), HSM_E_PIN_FILE);
	assert_null(h);
	assert_false(fixture_logged(f, FIXTURE_PIN));
}

static void missing_module(struct hsm_config *cfg)
{
	cfg->module = "/nonexistent/libpkcs11-missing.so";
}

static void not_pkcs11_module(struct hsm_config *cfg)
{
	cfg->module = KEEL_NOT_PKCS11_MODULE; /* a real shared object without C_GetFunctionList */
}

static void text_file_module(struct hsm_config *cfg)
{
	cfg->module = KEEL_TEXT_FILE; /* not even an ELF file */
}

static void unknown_name(struct hsm_config *cfg)
{
	cfg->module = "no-such-p11-kit-module";
}

static void by_p11kit_name(struct hsm_config *cfg)
{
	cfg->module = "softhsm2";
}

static void unknown_token(struct hsm_config *cfg)
{
	cfg->token_label = "no-such-token";
}

static void by_serial(struct hsm_config *cfg)
{
	static char serial[17];
	struct hsm_info info;
	struct hsm *h = NULL;

	assert_int_equal(hsm_open(cfg, &h), 0);
	assert_int_equal(hsm_get_info(h, &info), 0);
	hsm_close(h);
	snprintf(serial, sizeof(serial), "%s", info.token_serial);
	cfg->token_label = NULL;
	cfg->token_serial = serial;
}

static void test_modules(void **state)
{
	struct softhsm_fixture *f = *state;
	struct hsm *h = NULL;

	assert_int_equal(open_with(f, missing_module, &h), HSM_E_MODULE_NOT_FOUND);
	assert_true(fixture_logged(f, "libpkcs11-missing.so"));
	assert_int_equal(open_with(f, not_pkcs11_module, &h), HSM_E_MODULE_INVALID);
	assert_true(fixture_logged(f, "is not a PKCS#11 module"));
	assert_int_equal(open_with(f, text_file_module, &h), HSM_E_MODULE_INVALID);
	assert_int_equal(open_with(f, unknown_name, &h), HSM_E_MODULE_NOT_FOUND);
	assert_int_equal(open_with(f, unknown_token, &h), HSM_E_TOKEN_NOT_FOUND);
	assert_null(h);
	assert_int_equal(open_with(f, by_p11kit_name, &h), 0);
	hsm_close(h);
	assert_int_equal(open_with(f, by_serial, &h), 0);
	hsm_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_removed_and_restored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_directory_removed_and_restored, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backoff_and_forced_recover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_hangs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_refused_on_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_pin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_file_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modules, setup, teardown),
	};

	return cmocka_run_group_tests_name("hsm_faults", tests, NULL, NULL);
}
