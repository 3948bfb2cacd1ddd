/*
 * The mirror worker: a real SQLite store's outbox drained into the Key
 * Protect emulator (a real HTTPS process). Every object ends up as exactly one
 * keel-<uid> whose record unwraps to what was exported, through outages, 429
 * storms, token expiry and a stray duplicate; deletes and changes follow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keel/mirror.h>

#include "kpemu_fixture.h"
#include "log.h"
#include "store.h"

#define BIG_UID "big-object" /* exported over MIRROR_WRAP_MAX: the sealed form */

struct fixture {
	struct kpemu emu;
	struct mirror *m;
	struct keel_store *store;
	char db[192];
	struct mirror_key root;
	struct mirror_worker_config wc;
};

static void no_sleep(void *arg, uint32_t ms)
{
	(void)arg;
	(void)ms;
}

/* What the engine would export: "TTLV of <uid>", or 5000 bytes for BIG_UID. */
static int export_fake(void *arg, const char *uid, struct hsm_secret **out)
{
	size_t len = strcmp(uid, BIG_UID) == 0 ? 5000 : strlen("TTLV of ") + strlen(uid);

	(void)arg;
	if (hsm_secret_new(len, out) != 0) {
		return MIRROR_E_NOMEM;
	}
	memset(hsm_secret_data(*out), 'x', len);
	if (len < 5000) {
		memcpy(hsm_secret_data(*out), "TTLV of ", 8);
		memcpy(hsm_secret_data(*out) + 8, uid, strlen(uid));
	}
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct keel_store_txn *t;

	assert_non_null(f);
	assert_non_null(getenv("KEEL_KPEMU"));
	assert_int_equal(kpemu_start(&f->emu), 0);
	struct mirror_config cfg = kpemu_mirror_config(&f->emu);

	cfg.max_retries = 2;
	cfg.sleep = no_sleep;
	assert_int_equal(mirror_new(&cfg, &f->m), 0);
	assert_int_equal(mirror_create_root(f->m, "crk-appliance", &f->root), 0);
	snprintf(f->db, sizeof(f->db), "%s/keel.db", f->emu.dir);
	assert_int_equal(keel_store_open_sqlite(f->db, 2, &f->store), 0);
	assert_int_equal(keel_store_begin(f->store, &t), 0);
	assert_int_equal(keel_store_mirror_set(t, true), 0);
	assert_int_equal(keel_store_commit(t), 0);
	f->wc = (struct mirror_worker_config){.store = f->store,
					      .client = f->m,
					      .root_key_id = f->root.id,
					      .export_fn = export_fake,
					      .idle_ms = 20,
					      .pause_ms = 20};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	keel_store_close(f->store);
	mirror_free(f->m);
	kpemu_stop(&f->emu);
	free(f);
	return 0;
}

/* n objects named prefix0..prefix<n-1>, or just prefix when n is 0, in one transaction. */
static void put_objects(struct fixture *f, const char *prefix, int n)
{
	struct keel_store_object o = {.object_type = 2, .state = 1, .crk_version = 1};
	uint8_t blob[] = {1, 2, 3};
	struct keel_store_txn *t;

	o.blob = blob;
	o.blob_len = sizeof(blob);
	snprintf(o.owner, sizeof(o.owner), "aa");
	assert_int_equal(keel_store_begin(f->store, &t), 0);
	for (int i = 0; i < (n > 0 ? n : 1); i++) {
		if (n > 0) {
			snprintf(o.uid, sizeof(o.uid), "%s%d", prefix, i);
		} else {
			snprintf(o.uid, sizeof(o.uid), "%s", prefix);
		}
		assert_int_equal(keel_store_object_put(t, &o), 0);
	}
	assert_int_equal(keel_store_commit(t), 0);
}

struct names {
	char name[600][MIRROR_NAME_LEN];
	size_t num;
};

static int collect(void *arg, const struct mirror_key *key)
{
	struct names *n = arg;

	assert_true(n->num < 600);
	memcpy(n->name[n->num++], key->name, MIRROR_NAME_LEN);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The keel-* keys in Key Protect: exactly `expected`, no name twice. */
static void assert_escrow_count(struct fixture *f, size_t expected)
{
	static struct names n;

	n.num = 0;
	assert_int_equal(mirror_list(f->m, MIRROR_ESCROW_PREFIX, false, collect, &n), 0);
	assert_int_equal(n.num, expected);
	qsort(n.name, n.num, sizeof(n.name[0]), by_name);
	for (size_t i = 1; i < n.num; i++) {
		assert_string_not_equal(n.name[i - 1], n.name[i]);
	}
}

static int64_t drain(struct fixture *f, struct mirror_worker_status *st)
{
	assert_int_equal(mirror_worker_drain(&f->wc, st), 0);
	return st->backlog;
}

/* The JSON record that keel-<uid> holds. */
static json_t *record_of(struct fixture *f, const char *uid)
{
	char name[MIRROR_NAME_LEN];
	struct mirror_key k;
	struct hsm_secret *payload = NULL;
	json_t *rec;

	snprintf(name, sizeof(name), "keel-%s", uid);
	assert_int_equal(mirror_find_by_name(f->m, name, &k), 0);
	assert_int_equal(mirror_get_key(f->m, k.id, &k, &payload), 0);
	rec = json_loadb((const char *)hsm_secret_data(payload), hsm_secret_len(payload), 0, NULL);
	assert_non_null(rec);
	hsm_secret_free(payload);
	return rec;
}

/* The record of keel-<uid>, opened with Key Protect's unwrap: the export. */
static void assert_record_opens(struct fixture *f, const char *uid)
{
	struct hsm_secret *plain = NULL, *want = NULL;
	json_t *rec = record_of(f, uid);

	assert_string_equal(json_string_value(json_object_get(rec, "uid")), uid);
	assert_int_equal(export_fake(NULL, uid, &want), 0);
	if (json_object_get(rec, "ct") != NULL) {
		assert_int_equal(mirror_unwrap(f->m, f->root.id,
					       json_string_value(json_object_get(rec, "ct")), uid,
					       &plain, NULL),
				 0);
		assert_int_equal(hsm_secret_len(plain), hsm_secret_len(want));
		assert_memory_equal(hsm_secret_data(plain), hsm_secret_data(want),
				    hsm_secret_len(want));
	} else { /* sealed: the DEK unwraps under the uid; the seal's AAD is the uid */
		assert_int_equal(mirror_unwrap(f->m, f->root.id,
					       json_string_value(json_object_get(rec, "dek")), uid,
					       &plain, NULL),
				 0);
		assert_int_equal(hsm_secret_len(plain), 32);
		assert_non_null(json_object_get(rec, "sealed"));
	}
	json_decref(rec);
	hsm_secret_free(plain);
	hsm_secret_free(want);
}

static void test_escrow_change_delete(void **state)
{
	struct fixture *f = *state;
	struct mirror_worker_status st = {0};
	struct keel_store_attr a = {.name = "Name", .value = (uint8_t *)"n", .value_len = 1};
	struct keel_store_txn *t;

	put_objects(f, "uid-", 40);
	put_objects(f, BIG_UID, 0);
	assert_int_equal(drain(f, &st), 0);
	assert_int_equal(st.escrowed, 41);
	assert_escrow_count(f, 41);
	assert_record_opens(f, "uid-7");
	assert_record_opens(f, BIG_UID);
	/* A change refreshes the one copy; deletes remove theirs. */
	assert_int_equal(keel_store_begin(f->store, &t), 0);
	assert_int_equal(keel_store_attr_add(t, "uid-3", &a, 1), 0);
	for (int i = 30; i < 40; i++) {
		char uid[16];
		snprintf(uid, sizeof(uid), "uid-%d", i);
		assert_int_equal(keel_store_object_delete(t, uid), 0);
	}
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(drain(f, &st), 0);
	assert_int_equal(st.deleted, 10);
	assert_escrow_count(f, 31);
	assert_record_opens(f, "uid-3");
}

/* Outage, 429 storm, token expiry: the backlog waits, then drains; no key
 * lost, none twice. */
static void test_faults_lose_nothing(void **state)
{
	struct fixture *f = *state;
	struct mirror_worker_status st = {0};
	struct mirror_key dup;
	static const uint8_t junk[] = "stale copy";

	put_objects(f, "k", 30);
	assert_int_equal(
	    kpemu_control(&f->emu, "POST", "faults",
			  "{\"path\": \"^/api/v2/\", \"status\": 503, \"count\": 1000}", NULL),
	    200);
	assert_int_equal(mirror_worker_drain(&f->wc, &st), MIRROR_E_UNAVAILABLE);
	assert_int_equal(st.backlog, 30);
	assert_int_equal(st.last_error, MIRROR_E_UNAVAILABLE);
	assert_int_equal(kpemu_control(&f->emu, "DELETE", "faults", NULL, NULL), 200);
	/* A stray copy (an earlier attempt whose answer was lost) must not survive. */
	assert_int_equal(mirror_create_standard(f->m, "keel-k5", junk, sizeof(junk), &dup), 0);
	assert_int_equal(
	    kpemu_control(&f->emu, "POST", "faults",
			  "{\"path\": \"^/api/v2/keys\", \"status\": 429, \"count\": 25}", NULL),
	    200);
	assert_int_equal(kpemu_control(&f->emu, "POST", "expire-tokens", NULL, NULL), 200);
	for (int pass = 0; pass < 40 && (pass == 0 || st.backlog > 0); pass++) {
		int r = mirror_worker_drain(&f->wc, &st);
		assert_true(r == 0 || r == MIRROR_E_UNAVAILABLE);
	}
	assert_int_equal(st.backlog, 0);
	assert_escrow_count(f, 30);
	assert_int_equal(mirror_get_key(f->m, dup.id, &dup, NULL), 0);
	assert_int_equal(dup.state, 5); /* the stray copy was deleted */
	assert_record_opens(f, "k5");
}

/* The record of keel-<uid> is under the root key's newest version: Key
 * Protect's unwrap has nothing newer to rewrap it to. */
static void assert_record_current(struct fixture *f, const char *uid)
{
	struct hsm_secret *plain = NULL;
	char *rewrapped = NULL;
	json_t *rec = record_of(f, uid);
	json_t *ct = json_object_get(rec, "ct") != NULL ? json_object_get(rec, "ct")
							: json_object_get(rec, "dek");

	assert_int_equal(
	    mirror_unwrap(f->m, f->root.id, json_string_value(ct), uid, &plain, &rewrapped), 0);
	assert_null(rewrapped);
	json_decref(rec);
	hsm_secret_free(plain);
}

/* The root key rotated: REWRAP entries move every escrow (sealed form too) to
 * the new version, one copy each; one whose payload is no record is escrowed
 * afresh. */
static void test_rewrap_after_rotation(void **state)
{
	struct fixture *f = *state;
	struct mirror_worker_status st = {0};
	struct mirror_key k, junk_key;
	static const uint8_t junk[] = "not a record";
	struct keel_store_txn *t;
	int64_t queued = 0;

	put_objects(f, "w", 6);
	put_objects(f, BIG_UID, 0);
	assert_int_equal(drain(f, &st), 0);
	assert_int_equal(mirror_rotate(f->m, f->root.id, NULL), 0);
	assert_int_equal(mirror_get_key(f->m, f->root.id, &k, NULL), 0);
	/* w5's escrow replaced behind our back by something that is no record. */
	assert_int_equal(mirror_find_by_name(f->m, "keel-w5", &junk_key), 0);
	assert_int_equal(mirror_delete(f->m, junk_key.id), 0);
	assert_int_equal(mirror_create_standard(f->m, "keel-w5", junk, sizeof(junk), &junk_key), 0);
	assert_int_equal(keel_store_begin(f->store, &t), 0);
	assert_int_equal(keel_store_mirror_rotated(t, 2, k.version_id, &queued), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(queued, 7);
	assert_int_equal(drain(f, &st), 0);
	assert_int_equal(st.rewrapped, 7);
	assert_int_equal(st.rewraps, 0);
	assert_escrow_count(f, 7);
	assert_record_current(f, "w0");
	assert_record_current(f, "w5");
	assert_record_current(f, BIG_UID);
	assert_record_opens(f, "w3");
	assert_record_opens(f, "w5");
}

/* keel-<uid> fits Key Protect's 90 characters: an 85-character uid is the
 * longest escrowed; a longer one (or one with a character a name may not
 * carry) is refused, never truncated, and its entry settled, not retried. */
static void test_uid_names(void **state)
{
	struct fixture *f = *state;
	struct mirror_worker_status st = {0};
	char uid85[MIRROR_ESCROW_UID_MAX + 1], uid86[MIRROR_ESCROW_UID_MAX + 2];
	char name[MIRROR_NAME_LEN];

	memset(uid85, 'u', sizeof(uid85) - 1);
	uid85[sizeof(uid85) - 1] = '\0';
	memset(uid86, 'v', sizeof(uid86) - 1);
	uid86[sizeof(uid86) - 1] = '\0';
	assert_int_equal(mirror_escrow_name("0f8e8a4e-2f4b-4e7a-9c1d-5b6a7c8d9e0f", name), 0);
	assert_string_equal(name, "keel-0f8e8a4e-2f4b-4e7a-9c1d-5b6a7c8d9e0f");
	assert_int_equal(mirror_escrow_name(uid85, name), 0);
	assert_int_equal(strlen(name), MIRROR_NAME_MAX);
	assert_string_equal(mirror_escrow_uid(name), uid85);
	assert_int_equal(mirror_escrow_name(uid86, name), MIRROR_E_INVAL);
	assert_string_equal(name, "");
	assert_int_equal(mirror_escrow_name("", name), MIRROR_E_INVAL);
	assert_int_equal(mirror_escrow_name("a b", name), MIRROR_E_INVAL);
	assert_int_equal(mirror_escrow_name("a/b", name), MIRROR_E_INVAL);
	assert_int_equal(mirror_escrow_name(NULL, name), MIRROR_E_INVAL);
	assert_null(mirror_escrow_uid("crk-keel"));
	assert_null(mirror_escrow_uid("keel-"));
	assert_null(mirror_escrow_uid("keel-a b"));

	put_objects(f, uid85, 0);
	put_objects(f, uid86, 0);
	put_objects(f, "ok", 0);
	assert_int_equal(drain(f, &st), 0);
	assert_int_equal(st.escrowed, 2);
	assert_int_equal(st.refused, 1);
	assert_escrow_count(f, 2);
	assert_record_opens(f, uid85);
}

/* The thread drains what the store queues, woken by kick. */
static void test_worker_thread(void **state)
{
	struct fixture *f = *state;
	struct mirror_worker *w = NULL;
	struct mirror_worker_status st = {0};
	struct timespec tick = {.tv_nsec = 10000000L};

	assert_int_equal(mirror_worker_start(&f->wc, &w), 0);
	put_objects(f, "t", 20);
	mirror_worker_kick(w);
	/* Waits for the outcome (a guard of 60 s fails a stuck worker). */
	for (int i = 0; i < 6000; i++) {
		mirror_worker_get_status(w, &st);
		if (st.escrowed == 20 && st.backlog == 0) {
			break;
		}
		nanosleep(&tick, NULL);
	}
	mirror_worker_stop(w);
	assert_int_equal(st.escrowed, 20);
	assert_int_equal(st.backlog, 0);
	assert_escrow_count(f, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_escrow_change_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_faults_lose_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_worker_thread, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uid_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rewrap_after_rotation, setup, teardown),
	};

	keel_log_init(KEEL_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
