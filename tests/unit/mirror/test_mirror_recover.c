/*
 * The recovery walk (mirror.h, mirror_recovery_*) against the Key Protect
 * emulator: escrows the worker wrote for one store come back, through Key
 * Protect's unwrap, to an import callback for a fresh store, every one once,
 * in both record forms (the sealed one over MIRROR_WRAP_MAX); a rerun
 * counts them as present; Key Protect out of reach stops the walk, and the
 * next run resumes it; an escrow key whose record was altered is named
 * with its reason while the others still arrive; a store holding objects is
 * refused unless forced; the root key is adopted before and after the walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keel/mirror.h>

#include "kpemu_fixture.h"
#include "store.h"

#define NUM_OBJECTS 24	      /* list paging is mirror_list's, tested in test_mirror */
#define BIG_UID	    "big-one" /* exported over MIRROR_WRAP_MAX: the sealed form */

struct fixture {
	struct kpemu emu;
	struct mirror *m;
	struct keel_store *src, *dst;
	struct mirror_key root;
	struct mirror_recovery_config rc;
	/* what the callbacks saw */
	int imported[NUM_OBJECTS + 1];
	int adopted_start, adopted_end;
};

static void no_sleep(void *arg, uint32_t ms)
{
	(void)arg;
	(void)ms;
}

/* The object numbered by uid "o<i>" (BIG_UID: NUM_OBJECTS), or -1. */
static int number(const char *uid)
{
	return strcmp(uid, BIG_UID) == 0 ? NUM_OBJECTS : uid[0] == 'o' ? atoi(uid + 1) : -1;
}

/* What the engine would export for uid: a pattern only that uid makes. */
static int export_fake(void *arg, const char *uid, struct hsm_secret **out)
{
	size_t len = strcmp(uid, BIG_UID) == 0 ? 5000 : 64;

	(void)arg;
	if (hsm_secret_new(len, out) != 0) {
		return MIRROR_E_NOMEM;
	}
	for (size_t i = 0; i < len; i++) {
		hsm_secret_data(*out)[i] = (uint8_t)(uid[i % strlen(uid)] + i);
	}
	return 0;
}

static int import_check(void *arg, const char *uid, struct hsm_secret *plain, const char **why)
{
	struct fixture *f = arg;
	struct hsm_secret *want = NULL;
	int n = number(uid);

	assert_true(n >= 0 && n <= NUM_OBJECTS);
	assert_int_equal(export_fake(NULL, uid, &want), 0);
	assert_int_equal(hsm_secret_len(plain), hsm_secret_len(want));
	assert_memory_equal(hsm_secret_data(plain), hsm_secret_data(want), hsm_secret_len(want));
	hsm_secret_free(want);
	*why = "";
	return f->imported[n]++ == 0 ? 0 : 1; /* restored the first time, then present */
}

static int adopt_note(void *arg, const struct mirror_key *root, bool start)
{
	struct fixture *f = arg;

	assert_string_equal(root->id, f->root.id);
	*(start ? &f->adopted_end : &f->adopted_start) += 1;
	return 0;
}

static struct keel_store *new_store(struct fixture *f, const char *name)
{
	char path[192];
	struct keel_store *s = NULL;

	snprintf(path, sizeof(path), "%s/%s", f->emu.dir, name);
	assert_int_equal(keel_store_open_sqlite(path, 2, &s), 0);
	return s;
}

static void put_object(struct keel_store *s, const char *uid)
{
	struct keel_store_object o = {.object_type = 2, .state = 1, .crk_version = 1};
	uint8_t blob[] = {1, 2, 3};
	struct keel_store_txn *t;

	o.blob = blob;
	o.blob_len = sizeof(blob);
	snprintf(o.owner, sizeof(o.owner), "aa");
	snprintf(o.uid, sizeof(o.uid), "%s", uid);
	assert_int_equal(keel_store_begin(s, &t), 0);
	assert_int_equal(keel_store_object_put(t, &o), 0);
	assert_int_equal(keel_store_commit(t), 0);
}

/* The source appliance: objects o0..o<N-1> and BIG_UID escrowed under crk-keel. */
static void escrow_all(struct fixture *f)
{
	struct mirror_worker_config wc = {
	    .store = f->src, .client = f->m, .root_key_id = f->root.id, .export_fn = export_fake};
	struct mirror_worker_status st;
	struct keel_store_txn *t;
	char uid[16];

	assert_int_equal(keel_store_begin(f->src, &t), 0);
	assert_int_equal(keel_store_mirror_set(t, true), 0);
	assert_int_equal(keel_store_commit(t), 0);
	for (int i = 0; i < NUM_OBJECTS; i++) {
		snprintf(uid, sizeof(uid), "o%d", i);
		put_object(f->src, uid);
	}
	put_object(f->src, BIG_UID);
	do {
		assert_int_equal(mirror_worker_drain(&wc, &st), 0);
	} while (st.backlog != 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(getenv("KEEL_KPEMU"));
	assert_int_equal(kpemu_start(&f->emu), 0);
	struct mirror_config cfg = kpemu_mirror_config(&f->emu);

	cfg.max_retries = 2;
	cfg.sleep = no_sleep;
	assert_int_equal(mirror_new(&cfg, &f->m), 0);
	assert_int_equal(mirror_create_root(f->m, MIRROR_ROOT_NAME, &f->root), 0);
	f->src = new_store(f, "source.db");
	f->dst = new_store(f, "fresh.db");
	escrow_all(f);
	f->rc = (struct mirror_recovery_config){.client = cfg,
						.store = f->dst,
						.import_fn = import_check,
						.import_arg = f,
						.adopt_fn = adopt_note,
						.adopt_arg = f};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	keel_store_close(f->src);
	keel_store_close(f->dst);
	mirror_free(f->m);
	kpemu_stop(&f->emu);
	free(f);
	return 0;
}

/* Runs one recovery to its end (polling its status, as keelctl does). */
static void run(struct fixture *f, bool force, struct mirror_recovery_status *st)
{
	const struct timespec pause = {0, 20 * 1000000L};
	struct mirror_recovery *rc = NULL;
	const char *why = NULL;

	assert_int_equal(mirror_recovery_new(&f->rc, &rc), 0);
	assert_int_equal(mirror_recovery_start(rc, force, &why), 0);
	for (mirror_recovery_status(rc, st); st->state == MIRROR_RECOVERY_RUNNING;
	     mirror_recovery_status(rc, st)) {
		nanosleep(&pause, NULL);
	}
	mirror_recovery_free(rc);
}

static void test_every_escrow_once(void **state)
{
	struct fixture *f = *state;
	static struct mirror_recovery_status st;

	run(f, false, &st);
	assert_int_equal(st.state, MIRROR_RECOVERY_DONE);
	assert_string_equal(st.root_key_id, f->root.id);
	assert_int_equal(st.total, NUM_OBJECTS + 1);
	assert_int_equal(st.processed, NUM_OBJECTS + 1);
	assert_int_equal(st.restored, NUM_OBJECTS + 1);
	assert_int_equal(st.failed + st.present + st.num_failures, 0);
	for (int i = 0; i <= NUM_OBJECTS; i++) {
		assert_int_equal(f->imported[i], 1);
	}
	assert_int_equal(f->adopted_start, 1);
	assert_int_equal(f->adopted_end, 1);

	run(f, false, &st); /* a rerun: the import finds each one there */
	assert_int_equal(st.total, NUM_OBJECTS + 1);
	assert_int_equal(st.present, NUM_OBJECTS + 1);
	assert_int_equal(st.restored + st.failed, 0);
}

/* Every escrow fetch answered 503 (the client's retries too): the walk stops,
 * nothing counted as failed, the root key not yet escrowed under; the next
 * run restores them all. */
static void test_outage_stops_then_resumes(void **state)
{
	struct fixture *f = *state;
	static struct mirror_recovery_status st;

	assert_int_equal(kpemu_control(&f->emu, "POST", "faults",
				       "{\"path\": \"^/api/v2/keys/[^/]+$\", \"method\": \"GET\", "
				       "\"status\": 503, \"count\": 3}",
				       NULL),
			 200);
	run(f, false, &st);
	assert_int_equal(st.state, MIRROR_RECOVERY_FAILED);
	assert_int_equal(st.error, MIRROR_E_UNAVAILABLE);
	assert_int_equal(st.total, NUM_OBJECTS + 1);
	assert_int_equal(st.processed + st.failed, 0);
	assert_int_equal(f->adopted_end, 0);
	run(f, false, &st);
	assert_int_equal(st.state, MIRROR_RECOVERY_DONE);
	assert_int_equal(st.restored, NUM_OBJECTS + 1);
	assert_int_equal(f->adopted_end, 1);
}

/* keel-o7's record altered in Key Protect: named, not imported; the rest
 * arrive, o8 too, beside whose good copy a forged one stands. */
static void test_tampered_escrow_named(void **state)
{
	struct fixture *f = *state;
	static struct mirror_recovery_status st;
	static const char forged[] = "{\"v\":1,\"uid\":\"o7\",\"ct\":\"bm90IGEgY2lwaGVydGV4dA==\"}";
	static const char stray[] = "{\"v\":1,\"uid\":\"o8\",\"ct\":\"bm90IGEgY2lwaGVydGV4dA==\"}";
	struct mirror_key k, made;

	assert_int_equal(mirror_find_by_name(f->m, "keel-o7", &k), 0);
	assert_int_equal(
	    mirror_create_standard(f->m, "keel-o7", (const uint8_t *)forged, strlen(forged), &made),
	    0);
	assert_int_equal(mirror_delete(f->m, k.id), 0);
	assert_int_equal(
	    mirror_create_standard(f->m, "keel-o8", (const uint8_t *)stray, strlen(stray), &made),
	    0);
	run(f, false, &st);
	assert_int_equal(st.total, NUM_OBJECTS + 1);
	assert_int_equal(st.restored, NUM_OBJECTS);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.num_failures, 1);
	assert_string_equal(st.failures[0].uid, "o7");
	assert_non_null(strstr(st.failures[0].why, "Key Protect refused"));
	assert_int_equal(f->imported[7], 0);
	assert_int_equal(f->imported[8], 1);
}

/* A store that holds objects is not recovered into, unless forced. */
static void test_non_empty_store_refused(void **state)
{
	struct fixture *f = *state;
	static struct mirror_recovery_status st;
	struct mirror_recovery *rc = NULL;
	const char *why = NULL;

	put_object(f->dst, "already-here");
	assert_int_equal(mirror_recovery_new(&f->rc, &rc), 0);
	assert_int_equal(mirror_recovery_start(rc, false, &why), MIRROR_E_CONFLICT);
	assert_non_null(strstr(why, "holds objects"));
	mirror_recovery_status(rc, &st);
	assert_int_equal(st.state, MIRROR_RECOVERY_IDLE);
	mirror_recovery_free(rc);
	assert_int_equal(f->adopted_start, 0);
	run(f, true, &st);
	assert_int_equal(st.restored, NUM_OBJECTS + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_every_escrow_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outage_stops_then_resumes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered_escrow_named, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_empty_store_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
