/*
 * Group transactions (sqlite.c): a writer that ends while another waits
 * leaves the transaction open for it, and the last one commits for both.
 *
 * Each test makes one group of two, deterministically: A writes and holds
 * its transaction open until B is seen blocked waiting for the writers'
 * turn (in futex(2), from /proc), then ends; B runs inside A's transaction.
 * What must hold: B sees A's work, a reader does not (it is not committed);
 * B's rollback spares A; a failed COMMIT fails both, and no one's work
 * survives a power loss unless acknowledged (crash_vfs.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crash_vfs.h"
#include "store.h"

#define OWNER "0123abcd"

enum ending { KEEP, UNDO, FAIL };

struct member {
	struct keel_store *s;
	const char *uid;
	enum ending how;
	int result;	   /* keel_store_commit's (UNDO: 1) */
	bool sees_first;   /* B: A's object, inside the shared transaction */
	bool reader_first; /* B: A's object, from a read-only transaction */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t moved = PTHREAD_COND_INITIALIZER;
static bool first_in, first_go;
static pid_t second_tid;

static void wait_for(bool *flag)
{
	pthread_mutex_lock(&lock);
	while (!*flag) {
		pthread_cond_wait(&moved, &lock);
	}
	pthread_mutex_unlock(&lock);
}

static void set(bool *flag)
{
	pthread_mutex_lock(&lock);
	*flag = true;
	pthread_cond_broadcast(&moved);
	pthread_mutex_unlock(&lock);
}

static int write_one(struct keel_store_txn *t, const char *uid)
{
	struct keel_store_object o = {.object_type = 2, .state = 1};
	struct keel_store_audit a = {.time = 1, .client = OWNER, .operation = 1, .uid = uid};
	int r;

	snprintf(o.uid, sizeof(o.uid), "%s", uid);
	snprintf(o.owner, sizeof(o.owner), OWNER);
	if ((r = keel_store_object_put(t, &o)) != 0) {
		return r;
	}
	return keel_store_audit_append(t, &a);
}

static bool found(struct keel_store_txn *t, const char *uid)
{
	struct keel_store_object o = {.blob = NULL};
	int r = keel_store_object_get(t, uid, OWNER, &o);

	assert_true(r == 0 || r == KEEL_STORE_E_NOT_FOUND);
	keel_store_object_cleanup(&o);
	return r == 0;
}

static bool committed(struct keel_store *s, const char *uid)
{
	struct keel_store_txn *t;
	bool f;

	assert_int_equal(keel_store_begin_read(s, &t), 0);
	f = found(t, uid);
	keel_store_rollback(t);
	return f;
}

static void *first_main(void *arg)
{
	struct member *m = arg;
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin(m->s, &t), 0);
	assert_int_equal(write_one(t, m->uid), 0);
	set(&first_in);
	wait_for(&first_go);
	m->result = keel_store_commit(t);
	return NULL;
}

static void *second_main(void *arg)
{
	struct member *m = arg;
	struct keel_store_txn *t;

	pthread_mutex_lock(&lock);
	second_tid = (pid_t)syscall(SYS_gettid);
	pthread_cond_broadcast(&moved);
	pthread_mutex_unlock(&lock);
	assert_int_equal(keel_store_begin(m->s, &t), 0);
	m->sees_first = found(t, "a");
	m->reader_first = committed(m->s, "a");
	assert_int_equal(write_one(t, m->uid), 0);
	if (m->how == UNDO) {
		keel_store_rollback(t);
		m->result = 1;
		return NULL;
	}
	if (m->how == FAIL) {
		crash_vfs_fail_next_wal_write(); /* the group's COMMIT, B's to run */
	}
	m->result = keel_store_commit(t);
	return NULL;
}

/* Whether thread |tid| sleeps in futex(2): for B, waiting for the writers' turn. */
static bool in_futex(pid_t tid)
{
	char path[64], line[256] = "", want[16];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	snprintf(want, sizeof(want), "%ld ", (long)SYS_futex);
	if ((f = fopen(path, "r")) == NULL) {
		return false;
	}
	if (fgets(line, sizeof(line), f) == NULL) {
		line[0] = '\0';
	}
	fclose(f);
	return strncmp(line, want, strlen(want)) == 0;
}

/* A ("a", kept) and B ("b", ending |how|) in one group. */
static void run_group(struct keel_store *s, enum ending how, struct member *a, struct member *b)
{
	pthread_t ta, tb;

	first_in = first_go = false;
	second_tid = 0;
	*a = (struct member){.s = s, .uid = "a", .how = KEEP};
	*b = (struct member){.s = s, .uid = "b", .how = how};
	assert_int_equal(pthread_create(&ta, NULL, first_main, a), 0);
	wait_for(&first_in);
	assert_int_equal(pthread_create(&tb, NULL, second_main, b), 0);
	pthread_mutex_lock(&lock);
	while (second_tid == 0) {
		pthread_cond_wait(&moved, &lock);
	}
	pthread_mutex_unlock(&lock);
	/* A holds the turn, so B can only block there: a state, polled, not a delay. */
	while (!in_futex(second_tid)) {
		sched_yield();
	}
	set(&first_go);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(pthread_join(tb, NULL), 0);
	assert_true(b->sees_first);
	assert_false(b->reader_first);
}

static void assert_chain_intact(struct keel_store *s, int64_t rows)
{
	struct keel_store_audit_check c;
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin_read(s, &t), 0);
	assert_int_equal(keel_store_audit_verify(t, NULL, &c), 0);
	keel_store_rollback(t);
	assert_int_equal(c.fault, KEEL_AUDIT_INTACT);
	assert_int_equal(c.num_rows, rows);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

struct fixture {
	char dir[32];
	char db[64];
	char crashed[64];
	struct keel_store *s;
};

static int setup(void **state)
{
	static struct fixture f;

	snprintf(f.dir, sizeof(f.dir), "/tmp/keel-gtxn-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.db, sizeof(f.db), "%s/keel.db", f.dir);
	snprintf(f.crashed, sizeof(f.crashed), "%s/crashed.db", f.dir);
	crash_vfs_install();
	assert_int_equal(keel_store_open_sqlite(f.db, 2, &f.s), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	keel_store_close(f->s);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* The power fails now: what is on disk, reopened. */
static struct keel_store *after_power_loss(struct fixture *f)
{
	struct keel_store *s;

	(void)crash_vfs_power_loss(f->db, f->crashed);
	assert_int_equal(keel_store_open_sqlite(f->crashed, 1, &s), 0);
	return s;
}

static void test_member_rollback_spares_the_group(void **state)
{
	struct fixture *f = *state;
	struct member a, b;
	struct keel_store *crashed;

	run_group(f->s, UNDO, &a, &b);
	assert_int_equal(a.result, 0);
	assert_true(committed(f->s, "a"));
	assert_false(committed(f->s, "b"));
	assert_chain_intact(f->s, 1); /* A's row; B's went with its savepoint */
	crashed = after_power_loss(f);
	assert_true(committed(crashed, "a"));
	assert_false(committed(crashed, "b"));
	assert_chain_intact(crashed, 1);
	keel_store_close(crashed);
}

static void test_both_kept_both_durable(void **state)
{
	struct fixture *f = *state;
	struct member a, b;
	struct keel_store *crashed;

	run_group(f->s, KEEP, &a, &b);
	assert_int_equal(a.result, 0);
	assert_int_equal(b.result, 0);
	crashed = after_power_loss(f);
	assert_true(committed(crashed, "a"));
	assert_true(committed(crashed, "b"));
	assert_chain_intact(crashed, 2); /* A's row, then B's: commit order */
	keel_store_close(crashed);
}

/* The group's COMMIT fails: neither member is acknowledged, nor is its work there. */
static void test_failed_commit_fails_every_member(void **state)
{
	struct fixture *f = *state;
	struct member a, b;
	struct keel_store_txn *t;
	struct keel_store *crashed;

	run_group(f->s, FAIL, &a, &b);
	assert_int_not_equal(a.result, 0);
	assert_int_not_equal(b.result, 0);
	assert_false(committed(f->s, "a"));
	assert_false(committed(f->s, "b"));
	/* The store goes on: a later writer commits, and the chain has only it. */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(write_one(t, "c"), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_chain_intact(f->s, 1);
	crashed = after_power_loss(f);
	assert_false(committed(crashed, "a"));
	assert_false(committed(crashed, "b"));
	assert_true(committed(crashed, "c"));
	assert_chain_intact(crashed, 1);
	keel_store_close(crashed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_member_rollback_spares_the_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_both_kept_both_durable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_commit_fails_every_member, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
