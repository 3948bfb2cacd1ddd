/*
 * CRK rotation and backups against a real SoftHSM2 token and SQLite store:
 * every blob moves to the new version and the old one leaves the token; a
 * rewrap never overwrites a concurrent change; a rotation left half-way is
 * resumed by the next start; a backup restores identical objects, and an
 * altered file or a token without its CRK is refused, changing nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "rotation.h"
#include "softhsm_fixture.h"
#include "store.h"

#define NUM_OBJECTS 300
#define KEY_LEN	    32

struct fx {
	struct softhsm_fixture *hsm_fx;
	struct hsm *h;
	struct keel_store *s;
};

static struct keel_store *fresh_store(struct fx *f, const char *name)
{
	struct keel_store *s = NULL;
	char path[400];

	snprintf(path, sizeof(path), "%s/%s", f->hsm_fx->dir, name);
	assert_int_equal(keel_store_open_sqlite(path, 2, &s), 0);
	return s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(f->hsm_fx = fixture_new());
	f->h = fixture_open(f->hsm_fx, HSM_WRAP_GCM);
	assert_int_equal(hsm_crk_generate(f->h, 0, NULL), 0);
	f->s = fresh_store(f, "keel.db");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	keel_store_close(f->s);
	hsm_close(f->h);
	fixture_free(f->hsm_fx); /* removes its directory, the stores' too */
	free(f);
	return 0;
}

/* Key material of object i: recognisable, distinct. */
static void material(int i, uint8_t out[KEY_LEN])
{
	for (int k = 0; k < KEY_LEN; k++) {
		out[k] = (uint8_t)(i * 7 + k);
	}
}

static void put_objects(struct fx *f, int first, int num)
{
	struct keel_store_txn *t;
	uint8_t key[KEY_LEN];

	assert_int_equal(keel_store_begin(f->s, &t), 0);
	for (int i = first; i < first + num; i++) {
		struct keel_store_object o = {.object_type = 2, .state = 2};

		snprintf(o.uid, sizeof(o.uid), "obj-%d", i);
		snprintf(o.owner, sizeof(o.owner), "owner");
		material(i, key);
		assert_int_equal(hsm_wrap(f->h, (const uint8_t *)o.uid, strlen(o.uid), key, KEY_LEN,
					  &o.blob, &o.blob_len),
				 0);
		assert_int_equal(hsm_blob_crk_version(o.blob, o.blob_len, &o.crk_version), 0);
		assert_int_equal(keel_store_object_put(t, &o), 0);
		keel_store_object_cleanup(&o);
	}
	assert_int_equal(keel_store_commit(t), 0);
}

/* Every object unwraps to its own material and sits under |version|. */
static void check_objects(struct keel_store *s, struct hsm *h, int num, uint32_t version)
{
	struct keel_store_txn *t;
	uint8_t want[KEY_LEN];

	assert_int_equal(keel_store_begin(s, &t), 0);
	for (int i = 0; i < num; i++) {
		struct keel_store_object o;
		struct hsm_secret *key = NULL;
		char uid[32];

		snprintf(uid, sizeof(uid), "obj-%d", i);
		assert_int_equal(keel_store_object_get(t, uid, "owner", &o), 0);
		assert_int_equal(o.crk_version, version);
		assert_int_equal(
		    hsm_unwrap(h, (const uint8_t *)uid, strlen(uid), o.blob, o.blob_len, &key), 0);
		material(i, want);
		assert_memory_equal(hsm_secret_data(key), want, KEY_LEN);
		hsm_secret_free(key);
		keel_store_object_cleanup(&o);
	}
	keel_store_rollback(t);
}

static void assert_token_versions(struct hsm *h, uint32_t only)
{
	struct hsm_crk_info *crks = NULL;
	size_t num = 0;

	assert_int_equal(hsm_crk_list(h, &crks, &num), 0);
	assert_int_equal(num, 1);
	assert_int_equal(crks[0].version, only);
	free(crks);
}

static void test_rotation_moves_every_blob(void **state)
{
	struct fx *f = *state;
	struct keel_rotation_config rc = {.hsm = f->h, .store = f->s, .batch = 64};
	struct keel_rotation_status st;
	struct keel_rotation *r = NULL;
	uint32_t version = 0;

	put_objects(f, 0, NUM_OBJECTS);
	assert_int_equal(keel_rotation_new(&rc, &r), 0);
	keel_rotation_wait(r); /* the start-up pass finds nothing to do */
	assert_int_equal(keel_rotation_start(r, &version), 0);
	assert_int_equal(version, 2);
	keel_rotation_wait(r);
	assert_int_equal(keel_rotation_status(r, &st), 0);
	assert_false(st.running);
	assert_true(st.has_progress);
	assert_int_equal(st.progress.target, 2);
	assert_int_equal(st.progress.total, NUM_OBJECTS);
	assert_int_equal(st.progress.done, NUM_OBJECTS);
	assert_true(st.progress.finished != 0);
	assert_int_equal(st.num_versions, 1);
	assert_int_equal(st.versions[0].objects, NUM_OBJECTS);
	assert_true(st.versions[0].active && st.versions[0].in_token);
	keel_rotation_status_cleanup(&st);
	keel_rotation_free(r);
	check_objects(f->s, f->h, NUM_OBJECTS, 2);
	assert_token_versions(f->h, 2);
}

/* A rewrap of a blob that changed since it was read changes nothing. */
static void test_rewrap_is_compare_and_set(void **state)
{
	struct fx *f = *state;
	struct keel_store_stale *stale = NULL;
	struct keel_store_txn *t;
	struct keel_store_object o;
	uint8_t other[] = {9, 9, 9};
	size_t num = 0;

	put_objects(f, 0, 2);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_crk_stale(t, 2, 0, 10, &stale, &num), 0);
	assert_int_equal(num, 2);
	assert_int_equal(
	    keel_store_object_rewrap(t, "obj-0", other, sizeof(other), 2, other, sizeof(other)),
	    KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_object_rewrap(t, "obj-0", stale[0].blob, stale[0].blob_len, 2,
						  other, sizeof(other)),
			 0);
	assert_int_equal(keel_store_object_get(t, "obj-0", "owner", &o), 0);
	assert_int_equal(o.crk_version, 2);
	assert_memory_equal(o.blob, other, sizeof(other));
	keel_store_object_cleanup(&o);
	keel_store_stale_free(stale, num);
	/* Past the last row id: nothing left in this sweep. */
	assert_int_equal(keel_store_crk_stale(t, 1, 2, 10, &stale, &num), 0);
	assert_int_equal(num, 0);
	keel_store_stale_free(stale, num);
	keel_store_rollback(t);
}

/* keeld stopped after making version 2, before recording or finishing: resumed. */
static void test_start_resumes_half_done_rotation(void **state)
{
	struct fx *f = *state;
	struct keel_rotation_config rc = {.hsm = f->h, .store = f->s, .batch = 50};
	struct keel_store_rotation p = {.target = 2, .started = 1, .total = 100, .done = 40};
	struct keel_rotation *r = NULL;
	struct keel_store_txn *t;

	put_objects(f, 0, 40);
	assert_int_equal(hsm_crk_generate(f->h, 0, NULL), 0);
	put_objects(f, 40, 60); /* made under version 2 already */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_rotation_put(t, &p), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(keel_rotation_new(&rc, &r), 0);
	keel_rotation_wait(r);
	keel_rotation_free(r);
	check_objects(f->s, f->h, 100, 2);
	assert_token_versions(f->h, 2);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_rotation_get(t, &p), 0);
	keel_store_rollback(t);
	assert_int_equal(p.done, 80); /* 40 recorded + the 40 under version 1 */
	assert_true(p.finished != 0);
}

static void test_backup_restores_identical_objects(void **state)
{
	static const char config[] = "store: { path = \"/x\"; };\n";
	struct fx *f = *state;
	struct keel_backup_info info, vinfo;
	struct keel_store *s2 = fresh_store(f, "restored.db");
	uint8_t *file = NULL;
	char *cfg = NULL;
	size_t len = 0;

	put_objects(f, 0, NUM_OBJECTS);
	assert_int_equal(
	    keel_backup_create(f->h, f->s, config, strlen(config), 1700000000, &file, &len, &info),
	    0);
	assert_int_equal(info.objects, NUM_OBJECTS);
	assert_int_equal(info.crk_version, 1);
	assert_int_equal(keel_backup_verify(f->h, file, len, &vinfo), 0);
	assert_int_equal(vinfo.created, 1700000000);
	assert_int_equal(vinfo.objects, NUM_OBJECTS);
	assert_int_equal(vinfo.config_len, strlen(config));
	/* Refused over a store holding keys, unless forced. */
	assert_int_equal(keel_backup_restore(f->h, f->s, file, len, false, NULL, NULL),
			 KEEL_BACKUP_E_NOT_EMPTY);
	assert_int_equal(keel_backup_restore(f->h, s2, file, len, false, &cfg, NULL), 0);
	assert_string_equal(cfg, config);
	free(cfg);
	check_objects(s2, f->h, NUM_OBJECTS, 1);
	keel_store_close(s2);
	free(file);
}

static void test_backup_refuses_altered_file(void **state)
{
	struct fx *f = *state;
	struct keel_store *s2 = fresh_store(f, "restored.db");
	struct keel_store_crk_count *counts = NULL;
	struct keel_store_txn *t;
	uint8_t *file = NULL;
	size_t len = 0, num = 0;
	/* Header fields, the wrapped key, the ciphertext, the tag. */
	const size_t spots[] = {9, 12, 20, 30, 45, 100, 0, 1};

	put_objects(f, 0, 20);
	assert_int_equal(keel_backup_create(f->h, f->s, NULL, 0, 1, &file, &len, NULL), 0);
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		size_t at = spots[i] != 0 && spots[i] != 1 ? spots[i] : len - 1 - spots[i] * 5000;

		file[at] ^= 0x01;
		assert_int_not_equal(keel_backup_verify(f->h, file, len, NULL), 0);
		assert_int_not_equal(keel_backup_restore(f->h, s2, file, len, true, NULL, NULL), 0);
		file[at] ^= 0x01;
	}
	assert_int_equal(keel_backup_verify(f->h, file, len - 1, NULL), KEEL_BACKUP_E_FORMAT);
	assert_int_equal(keel_backup_verify(f->h, file, 10, NULL), KEEL_BACKUP_E_FORMAT);
	file[len / 2] ^= 0x80;
	assert_int_equal(keel_backup_verify(f->h, file, len, NULL), KEEL_BACKUP_E_AUTH);
	file[len / 2] ^= 0x80;
	/* Nothing reached the store. */
	assert_int_equal(keel_store_begin(s2, &t), 0);
	assert_int_equal(keel_store_crk_counts(t, &counts, &num), 0);
	keel_store_rollback(t);
	assert_int_equal(num, 0);
	free(counts);
	/* A token that no longer holds version 1 cannot open it. */
	assert_int_equal(hsm_crk_generate(f->h, 0, NULL), 0);
	assert_int_equal(hsm_crk_destroy(f->h, 1), 0);
	assert_int_equal(keel_backup_verify(f->h, file, len, NULL), KEEL_BACKUP_E_CRK);
	keel_store_close(s2);
	free(file);
}

/* A backup whose objects need a CRK version the token lost: refused by name. */
static void test_backup_needs_every_object_version(void **state)
{
	struct fx *f = *state;
	struct keel_store *s2 = fresh_store(f, "restored.db");
	struct keel_backup_info info;
	uint8_t *file = NULL;
	size_t len = 0;

	put_objects(f, 0, 10);				      /* under version 1 */
	assert_int_equal(hsm_crk_generate(f->h, 0, NULL), 0); /* the data key: version 2 */
	assert_int_equal(keel_backup_create(f->h, f->s, NULL, 0, 1, &file, &len, &info), 0);
	assert_int_equal(info.crk_version, 2);
	assert_int_equal(keel_backup_verify(f->h, file, len, NULL), 0);
	assert_int_equal(hsm_crk_destroy(f->h, 1), 0);
	assert_int_equal(keel_backup_verify(f->h, file, len, NULL), KEEL_BACKUP_E_OBJECT_CRK);
	assert_int_equal(keel_backup_restore(f->h, s2, file, len, false, NULL, NULL),
			 KEEL_BACKUP_E_OBJECT_CRK);
	keel_store_close(s2);
	free(file);
}

/* A restore holds rotations off, and a rotation holds restores off. */
static void test_hold_excludes_rotation(void **state)
{
	struct fx *f = *state;
	struct keel_rotation_config rc = {.hsm = f->h, .store = f->s};
	struct keel_rotation *r = NULL;

	assert_int_equal(keel_rotation_new(&rc, &r), 0);
	assert_int_equal(keel_rotation_hold(r), 0);
	assert_int_equal(keel_rotation_start(r, NULL), KEEL_ROT_E_RUNNING);
	assert_int_equal(keel_rotation_hold(r), KEEL_ROT_E_RUNNING);
	keel_rotation_release(r);
	assert_int_equal(keel_rotation_start(r, NULL), 0);
	keel_rotation_wait(r);
	assert_int_equal(keel_rotation_hold(r), 0);
	keel_rotation_release(r);
	keel_rotation_free(r);
	assert_token_versions(f->h, 2);
}

/* A version made by another process meanwhile is seen: the rotation makes the next. */
static void test_start_after_versions_made_elsewhere(void **state)
{
	struct fx *f = *state;
	struct keel_rotation_config rc = {.hsm = f->h, .store = f->s};
	struct keel_rotation *r = NULL;
	struct hsm *other = fixture_open(f->hsm_fx, HSM_WRAP_GCM);
	uint32_t version = 0;

	assert_int_equal(hsm_crk_generate(other, 0, &version), 0);
	assert_int_equal(version, 2);
	hsm_close(other);
	put_objects(f, 0, 5); /* still under version 1: this handle has not looked yet */
	assert_int_equal(keel_rotation_new(&rc, &r), 0);
	assert_int_equal(keel_rotation_start(r, &version), 0);
	assert_int_equal(version, 3);
	keel_rotation_wait(r);
	keel_rotation_free(r);
	check_objects(f->s, f->h, 5, 3);
	assert_token_versions(f->h, 3);
}

/* An object the token cannot unwrap stops the rotation short of retiring its version. */
static void test_unrewrappable_object_keeps_its_version(void **state)
{
	struct fx *f = *state;
	struct keel_rotation_config rc = {.hsm = f->h, .store = f->s};
	struct keel_rotation_status st;
	struct keel_rotation *r = NULL;
	struct keel_store_object o;
	struct keel_store_txn *t;
	uint8_t *bad;

	put_objects(f, 0, 3);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_object_get(t, "obj-1", "owner", &o), 0);
	assert_non_null(bad = malloc(o.blob_len));
	memcpy(bad, o.blob, o.blob_len);
	bad[o.blob_len - 1] ^= 1; /* its tag no longer authenticates */
	assert_int_equal(
	    keel_store_object_rewrap(t, "obj-1", o.blob, o.blob_len, 1, bad, o.blob_len), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(keel_rotation_new(&rc, &r), 0);
	assert_int_equal(keel_rotation_start(r, NULL), 0);
	keel_rotation_wait(r);
	assert_int_equal(keel_rotation_status(r, &st), 0);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.progress.finished, 0);
	assert_int_equal(st.num_versions, 2); /* version 1 stays for obj-1 */
	assert_true(st.versions[0].in_token);
	assert_int_equal(st.versions[0].objects, 1);
	assert_int_equal(st.versions[1].objects, 2);
	keel_rotation_status_cleanup(&st);
	keel_rotation_free(r);
	keel_store_object_cleanup(&o);
	free(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rotation_moves_every_blob, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rewrap_is_compare_and_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_resumes_half_done_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_restores_identical_objects, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backup_refuses_altered_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_needs_every_object_version, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_hold_excludes_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_after_versions_made_elsewhere, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_unrewrappable_object_keeps_its_version, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
