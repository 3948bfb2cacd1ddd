/*
 * mirror_enable: a real SoftHSM2 token's CRK mirrored into the Key Protect
 * emulator. SoftHSM 2.6 cannot wrap with RSA-OAEP-SHA-256 (hsm/src/export.c),
 * so an extractable CRK there falls back to a generated root key just as a
 * non-extractable one does; a token that can is imported (BYOK).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <keel/mirror.h>

#include "kpemu_fixture.h"
#include "log.h"
#include "softhsm_fixture.h"

struct fixture {
	struct kpemu emu;
	struct softhsm_fixture *token;
	struct hsm *h;
	struct mirror *m;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(getenv("KEEL_KPEMU"));
	assert_int_equal(kpemu_start(&f->emu), 0);
	struct mirror_config cfg = kpemu_mirror_config(&f->emu);
	assert_int_equal(mirror_new(&cfg, &f->m), 0);
	assert_non_null(f->token = fixture_new());
	f->h = fixture_open(f->token, HSM_WRAP_GCM);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mirror_free(f->m);
	hsm_close(f->h);
	fixture_free(f->token);
	kpemu_stop(&f->emu);
	free(f);
	return 0;
}

/* Whether this token wraps with RSA-OAEP-SHA-256 at all (any RSA key will do). */
static bool token_has_oaep_sha256(struct hsm *h, uint32_t version)
{
	static const uint8_t e[] = {1, 0, 1};
	uint8_t n[256], *w = NULL;
	size_t w_len = 0;
	int r;

	memset(n, 0xc5, sizeof(n)); /* odd, full length: a valid-looking modulus */
	r = hsm_crk_export(h, version, n, sizeof(n), e, sizeof(e), HSM_OAEP_SHA256, &w, &w_len);
	free(w);
	return r == 0;
}

static void test_extractable_crk(void **state)
{
	struct fixture *f = *state;
	struct mirror_root root;
	uint32_t v;

	assert_int_equal(hsm_crk_generate(f->h, HSM_CRK_EXTRACTABLE, &v), 0);
	assert_int_equal(mirror_enable(f->m, f->h, "crk-appliance-1", &root), 0);
	assert_int_equal(root.crk_version, v);
	assert_false(root.key.extractable);
	assert_string_equal(root.key.name, "crk-appliance-1");
	if (token_has_oaep_sha256(f->h, v)) {
		assert_int_equal(root.mode, MIRROR_ROOT_IMPORTED);
		assert_true(root.key.imported);
	} else {
		print_message(
		    "note: this token cannot wrap with RSA-OAEP-SHA-256: generated root\n");
		assert_int_equal(root.mode, MIRROR_ROOT_GENERATED);
		assert_false(root.key.imported);
	}
}

static void test_non_extractable_crk(void **state)
{
	struct fixture *f = *state;
	struct mirror_root root;
	struct mirror_key k;
	uint32_t v;

	assert_int_equal(hsm_crk_generate(f->h, 0, &v), 0);
	assert_int_equal(mirror_enable(f->m, f->h, "crk-appliance-2", &root), 0);
	assert_int_equal(root.mode, MIRROR_ROOT_GENERATED);
	assert_false(root.key.imported);
	/* It is a working root key in Key Protect. */
	assert_int_equal(mirror_get_key(f->m, root.key.id, &k, NULL), 0);
	assert_int_equal(k.state, 1);
}

static void test_no_crk(void **state)
{
	struct fixture *f = *state;
	struct mirror_root root;

	assert_int_equal(mirror_enable(f->m, f->h, "crk-appliance-3", &root), MIRROR_E_INVAL);
	assert_int_equal(mirror_enable(f->m, NULL, "crk-appliance-3", &root), MIRROR_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_extractable_crk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_extractable_crk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_crk, setup, teardown),
	};

	keel_log_init(KEEL_LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
