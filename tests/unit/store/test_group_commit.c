/*
 * Group commit (sqlite.c): a commit is acknowledged only once it is durable.
 *
 * Durability is checked against a simulated power loss (crash_vfs.c: each
 * file as of its last fsync). Threads commit transactions concurrently, half
 * of them with keel_store_begin/commit, half with keel_store_run (the turn's
 * holder runs those: flat combining); then the copies are written out as a
 * fresh database, reopened, and every acknowledged object must be there, and
 * nothing rolled back may be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_vfs.h"
#include "store.h"

#define THREADS	   8
#define PER_THREAD 40
#define CONNS	   4
#define OWNER	   "0123abcd"

/* ---- The test ------------------------------------------------------------ */

struct worker {
	struct keel_store *s;
	unsigned index;
	bool acked[PER_THREAD];
	bool rolled_back[PER_THREAD];
};

static void uid_of(unsigned thread, unsigned i, char out[KEEL_STORE_UID_MAX + 1])
{
	snprintf(out, KEEL_STORE_UID_MAX + 1, "t%u-%u", thread, i);
}

struct job {
	struct worker *w;
	unsigned i;
};

#define UNDONE 1 /* what |work| returns when it undoes its transaction */

/*
 * One transaction's work: the object, an attribute added in a savepoint that
 * is rolled back, and an audit row; every fifth transaction is undone whole.
 */
static int work(struct keel_store_txn *t, void *arg)
{
	const struct job *j = arg;
	const struct keel_store_attr attr = {
	    .name = "Name", .index = 0, .value = (uint8_t *)"v", .value_len = 1, .text = "gone"};
	struct keel_store_object o = {.object_type = 2, .state = 1};
	struct keel_store_audit a = {.time = 1, .client = OWNER, .operation = 1};

	snprintf(o.owner, sizeof(o.owner), OWNER);
	uid_of(j->w->index, j->i, o.uid);
	a.uid = o.uid;
	if (keel_store_object_put(t, &o) != 0 || keel_store_savepoint(t) != 0 ||
	    keel_store_attr_add(t, o.uid, &attr, 1) != 0 || keel_store_savepoint_rollback(t) != 0 ||
	    keel_store_audit_append(t, &a) != 0 || j->i % 5 == 4) {
		return UNDONE;
	}
	return 0;
}

/* Odd threads: keel_store_run; even ones: keel_store_begin, |work|, commit. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct keel_store_txn *t;
	int r;

	for (unsigned i = 0; i < PER_THREAD; i++) {
		struct job j = {.w = w, .i = i};

		if (w->index % 2 == 1) {
			r = keel_store_run(w->s, work, &j);
		} else if ((r = keel_store_begin(w->s, &t)) == 0) {
			if ((r = work(t, &j)) == 0) {
				r = keel_store_commit(t);
			} else {
				keel_store_rollback(t);
			}
		}
		w->acked[i] = r == 0;
		w->rolled_back[i] = r == UNDONE;
	}
	return NULL;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Every acknowledged object is found after the crash; nothing rolled back is. */
static void check_after_crash(const char *path, struct worker *ws)
{
	struct keel_store *s;
	struct keel_store_txn *t;
	struct keel_store_object o;
	struct keel_store_attr *attrs = NULL;
	size_t num_attrs = 0;
	struct keel_store_audit_check check;
	char uid[KEEL_STORE_UID_MAX + 1];
	unsigned acked = 0;

	assert_int_equal(keel_store_open_sqlite(path, 1, &s), 0);
	assert_int_equal(keel_store_begin(s, &t), 0);
	for (unsigned w = 0; w < THREADS; w++) {
		for (unsigned i = 0; i < PER_THREAD; i++) {
			uid_of(w, i, uid);
			if (ws[w].acked[i]) {
				acked++;
				assert_int_equal(keel_store_object_get(t, uid, OWNER, &o), 0);
				keel_store_object_cleanup(&o);
				assert_int_equal(
				    keel_store_attr_list(t, uid, "Name", &attrs, &num_attrs), 0);
				assert_int_equal(num_attrs, 0); /* its savepoint was rolled back */
				keel_store_attrs_free(attrs, num_attrs);
			} else if (ws[w].rolled_back[i]) {
				assert_int_equal(keel_store_object_get(t, uid, OWNER, &o),
						 KEEL_STORE_E_NOT_FOUND);
			}
		}
	}
	/* Commits shared transactions (group transactions): the chain is whole. */
	assert_int_equal(keel_store_audit_verify(t, NULL, &check), 0);
	assert_int_equal(check.fault, KEEL_AUDIT_INTACT);
	assert_int_equal(check.num_rows, acked);
	keel_store_rollback(t);
	keel_store_close(s);
	/* Four in five transactions commit; every one of those must have been acknowledged. */
	assert_int_equal(acked, THREADS * PER_THREAD * 4 / 5);
}

static void test_acked_commits_survive_power_loss(void **state)
{
	char dir[] = "/tmp/keel-group-XXXXXX", db[64], crashed[64];
	static struct worker ws[THREADS];
	pthread_t threads[THREADS];
	struct keel_store *s;
	unsigned wal_syncs;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/keel.db", dir);
	snprintf(crashed, sizeof(crashed), "%s/crashed.db", dir);
	crash_vfs_install();
	assert_int_equal(keel_store_open_sqlite(db, CONNS, &s), 0);
	for (unsigned i = 0; i < THREADS; i++) {
		ws[i] = (struct worker){.s = s, .index = i};
		assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &ws[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	}
	/* The power fails here, before keel_store_close could checkpoint or sync. */
	wal_syncs = crash_vfs_power_loss(db, crashed);
	print_message("%u commits shared %u fsyncs of the WAL\n", THREADS * PER_THREAD * 4 / 5,
		      wal_syncs);
	check_after_crash(crashed, ws);
	keel_store_close(s);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_acked_commits_survive_power_loss),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
