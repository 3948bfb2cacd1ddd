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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/mirror.h>

#include "kpemu_fixture.h"
#include "log.h"
#include "softhsm_fixture.h"
#include "store.h"

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

/* ---- imported mode's CRK rotation through the service ------------------------- */

static int export_none(void *arg, const char *uid, struct hsm_secret **out)
{
	(void)arg;
	(void)uid;
	(void)out;
	return MIRROR_E_NOT_FOUND;
}

static void ignore_refuse(void *arg, const char *why)
{
	(void)arg;
	(void)why;
}

static void ignore_withdraw(void *arg, const char *uid)
{
	(void)arg;
	(void)uid;
}

static void read_root(struct keel_store *store, struct keel_store_mirror_root *out)
{
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin_read(store, &t), 0);
	assert_int_equal(keel_store_mirror_root_get(t, out), 0);
	keel_store_rollback(t);
}

/*
 * The token's CRK and the root key stay in step (imported mode): a next CRK
 * that cannot be imported (SoftHSM 2.6 cannot wrap with OAEP-SHA-256) is
 * discarded and nothing changes; a staged CRK that Key Protect took before a
 * stop is promoted and recorded by the next rotation (or poll), with its
 * escrows queued for rewrap.
 */
static void test_imported_rotation_in_step(void **state)
{
	struct fixture *f = *state;
	struct mirror_config cc = kpemu_mirror_config(&f->emu);
	struct keel_store_mirror_root root = {.mode = MIRROR_ROOT_IMPORTED, .crk_version = 1}, got;
	struct keel_store_object o = {.object_type = 2, .state = 1, .crk_version = 1};
	struct mirror_service *svc = NULL;
	struct keel_store *store = NULL;
	struct keel_store_txn *t;
	struct mirror_key k;
	uint8_t blob[] = {1, 2, 3}, staged_kcv[HSM_KCV_LEN], kcv[HSM_KCV_LEN];
	char db[192];
	uint32_t v = 0;
	int64_t n = 0;

	assert_int_equal(hsm_crk_generate(f->h, HSM_CRK_EXTRACTABLE, &v), 0);
	assert_int_equal(mirror_create_root(f->m, "crk-appliance-4", &k), 0);
	snprintf(db, sizeof(db), "%s/keel.db", f->emu.dir);
	assert_int_equal(keel_store_open_sqlite(db, 2, &store), 0);
	snprintf(root.key_id, sizeof(root.key_id), "%s", k.id);
	snprintf(root.version_id, sizeof(root.version_id), "%s", k.version_id);
	o.blob = blob;
	o.blob_len = sizeof(blob);
	snprintf(o.uid, sizeof(o.uid), "obj-1");
	snprintf(o.owner, sizeof(o.owner), "aa");
	assert_int_equal(keel_store_begin(store, &t), 0);
	assert_int_equal(keel_store_object_put(t, &o), 0);
	assert_int_equal(keel_store_mirror_root_set(t, &root), 0);
	assert_int_equal(keel_store_commit(t), 0);
	const struct mirror_service_config sc = {.client = cc,
						 .store = store,
						 .hsm = f->h,
						 .export_fn = export_none,
						 .refuse_fn = ignore_refuse,
						 .withdraw_fn = ignore_withdraw,
						 .idle_ms = 50,
						 .pause_ms = 50};
	assert_int_equal(mirror_service_open(&sc, &svc), 0);

	/* Not importable here: discarded, the CRK and the root key as they were. */
	assert_int_equal(mirror_service_new_crk(svc, &v), MIRROR_E_REFUSED);
	assert_false(hsm_crk_has_staged(f->h));
	assert_int_equal(hsm_crk_active(f->h, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(mirror_get_key(f->m, k.id, &k, NULL), 0);
	assert_string_equal(k.version_id, root.version_id);

	/* A stop after Key Protect took the staged CRK (its version moved on). */
	assert_int_equal(hsm_crk_stage(f->h, HSM_CRK_EXTRACTABLE), 0);
	assert_int_equal(hsm_crk_kcv(f->h, HSM_CRK_STAGED, staged_kcv), 0);
	assert_int_equal(mirror_rotate(f->m, k.id, NULL), 0);
	assert_int_equal(mirror_get_key(f->m, k.id, &k, NULL), 0);
	/* The next rotation promotes and records it first, then fails its own. */
	assert_int_equal(mirror_service_new_crk(svc, &v), MIRROR_E_REFUSED);
	assert_false(hsm_crk_has_staged(f->h));
	assert_int_equal(hsm_crk_active(f->h, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(hsm_crk_kcv(f->h, 2, kcv), 0);
	assert_memory_equal(kcv, staged_kcv, HSM_KCV_LEN);
	read_root(store, &got);
	assert_int_equal(got.crk_version, 2);
	assert_string_equal(got.version_id, k.version_id);
	assert_int_equal(keel_store_begin_read(store, &t), 0);
	assert_int_equal(keel_store_mirror_rewraps(t, &n), 0);
	keel_store_rollback(t);
	assert_true(n <= 1); /* obj-1 queued for rewrap (the worker may have done it) */

	/* A staged CRK Key Protect never took is discarded, nothing else. */
	assert_int_equal(hsm_crk_stage(f->h, HSM_CRK_EXTRACTABLE), 0);
	assert_int_equal(mirror_service_new_crk(svc, &v), MIRROR_E_REFUSED);
	assert_false(hsm_crk_has_staged(f->h));
	assert_int_equal(hsm_crk_active(f->h, &v), 0);
	assert_int_equal(v, 2);
	mirror_service_close(svc);
	keel_store_close(store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_extractable_crk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_extractable_crk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_crk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_imported_rotation_in_step, setup, teardown),
	};

	keel_log_init(KEEL_LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
