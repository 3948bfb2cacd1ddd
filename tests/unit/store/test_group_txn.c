/*
 * Group transactions (sqlite.c): a writer that ends while others wait
 * leaves the transaction open for them, and the last one commits for all;
 * the turn's holder runs queued keel_store_run members itself (flat
 * combining).
 *
 * Each test makes one group deterministically: A writes and holds its
 * transaction open until every other part is seen blocked waiting for the
 * writers' turn (in futex(2), from /proc), queued in order, then ends; the
 * others run inside A's transaction. What must hold: they see A's work, a
 * reader does not (it is not committed); a rollback or a failed member
 * spares the others; a failed COMMIT fails every member, and no one's work
 * survives a power loss unless acknowledged (crash_vfs.c); the audit chain
 * is in the order the parts ran; a member queued behind A runs on A's
 * thread. Work submitted without waiting (keel_store_submit) is queued like
 * a member and returns at once; alone, it is only queued: the next writer
 * runs it first in its group (one COMMIT for both), or, if none comes in
 * time, the store's flusher thread commits it and its fsync; closing the
 * store commits it too. An fsync's end wakes every waiter it covers and one
 * to lead the next; a failed one fails them all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crash_vfs.h"
#include "store.h"
#include "store_check.h"

#define OWNER "0123abcd"

enum ending { KEEP, UNDO, FAIL };
/* keel_store_begin/commit, keel_store_run, or keel_store_submit (from the test's thread) */
enum kind { BEGIN, RUN, SUBMIT };

#define UNDONE 42 /* what an undone part returns: keel_store_run hands it back */

struct part {
	struct keel_store *s;
	enum kind kind;
	const char *uid;
	enum ending how;
	int result;	   /* keel_store_commit's or keel_store_run's (BEGIN, UNDO: UNDONE) */
	pid_t tid;	   /* its own thread */
	pid_t ran_on;	   /* the thread its work ran on */
	bool sees_first;   /* A's object, inside the shared transaction */
	bool reader_first; /* A's object, from a read-only transaction */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t moved = PTHREAD_COND_INITIALIZER;
static bool first_in, first_go;

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

static pid_t tid_now(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void *first_main(void *arg)
{
	struct part *p = arg;
	struct keel_store_txn *t;

	p->tid = tid_now();
	assert_int_equal(keel_store_begin(p->s, &t), 0);
	assert_int_equal(write_one(t, p->uid), 0);
	set(&first_in);
	wait_for(&first_go);
	p->result = keel_store_commit(t);
	return NULL;
}

/* A later part's work, in A's transaction; 0 keeps it. */
static int part_work(struct keel_store_txn *t, void *arg)
{
	struct part *p = arg;

	p->ran_on = tid_now();
	p->sees_first = found(t, "a");
	p->reader_first = committed(p->s, "a");
	assert_int_equal(write_one(t, p->uid), 0);
	if (p->how == UNDO) {
		return UNDONE;
	}
	if (p->how == FAIL) {
		crash_vfs_fail_next_wal_write(); /* the group's COMMIT, this part's to run */
	}
	return 0;
}

/* A submitted part: its argument is a copy of the part's address. */
static int submitted_work(struct keel_store_txn *t, void *arg)
{
	struct part *p;

	memcpy(&p, arg, sizeof(p));
	return part_work(t, p);
}

static void *part_main(void *arg)
{
	struct part *p = arg;
	struct keel_store_txn *t;
	int r;

	pthread_mutex_lock(&lock);
	p->tid = tid_now();
	pthread_cond_broadcast(&moved);
	pthread_mutex_unlock(&lock);
	if (p->kind == SUBMIT) {
		p->result = keel_store_submit(p->s, submitted_work, &p, sizeof(p));
		return NULL;
	}
	if (p->kind == RUN) {
		p->result = keel_store_run(p->s, part_work, p);
		return NULL;
	}
	assert_int_equal(keel_store_begin(p->s, &t), 0);
	if ((r = part_work(t, p)) != 0) {
		keel_store_rollback(t);
		p->result = r;
		return NULL;
	}
	p->result = keel_store_commit(t);
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

/* Starts |p|'s thread and returns once it has its thread id. */
static void start_part(pthread_t *th, struct part *p)
{
	assert_int_equal(pthread_create(th, NULL, part_main, p), 0);
	pthread_mutex_lock(&lock);
	while (p->tid == 0) {
		pthread_cond_wait(&moved, &lock);
	}
	pthread_mutex_unlock(&lock);
}

/*
 * Starts |p|'s thread and returns once it sleeps in futex(2): waiting for
 * the writers' turn while A holds it, or for an fsync while one is held.
 * It can block nowhere else: a state, polled, not a delay.
 */
static void queue_part(pthread_t *th, struct part *p)
{
	start_part(th, p);
	while (!in_futex(p->tid)) {
		sched_yield();
	}
}

/*
 * A ("a", kept, parts[0]) holds the turn while parts[1..num-1] queue, in
 * order; a SUBMIT part is submitted from this thread, and must return while
 * A holds the turn (else this test hangs).
 */
static void run_parts(struct keel_store *s, struct part *parts, size_t num)
{
	pthread_t th[8];

	assert_true(num <= 8);
	first_in = first_go = false;
	parts[0] = (struct part){.kind = BEGIN, .uid = "a", .how = KEEP};
	for (size_t i = 0; i < num; i++) {
		parts[i].s = s;
	}
	assert_int_equal(pthread_create(&th[0], NULL, first_main, &parts[0]), 0);
	wait_for(&first_in);
	for (size_t i = 1; i < num; i++) {
		if (parts[i].kind == SUBMIT) {
			(void)part_main(&parts[i]);
		} else {
			queue_part(&th[i], &parts[i]);
		}
	}
	set(&first_go);
	for (size_t i = 0; i < num; i++) {
		if (parts[i].kind != SUBMIT) {
			assert_int_equal(pthread_join(th[i], NULL), 0);
		}
	}
	for (size_t i = 1; i < num; i++) {
		assert_true(parts[i].sees_first);
		assert_false(parts[i].reader_first);
	}
}

/* A ("a", kept) and B ("b", ending |how|, a keel_store_begin caller) in one group. */
static void run_group(struct keel_store *s, enum ending how, struct part *a, struct part *b)
{
	struct part parts[2] = {{.kind = BEGIN}, {.kind = BEGIN, .uid = "b", .how = how}};

	run_parts(s, parts, 2);
	*a = parts[0];
	*b = parts[1];
}

static void assert_chain_intact(struct keel_store *s, int64_t rows)
{
	assert_int_equal(store_check_chain(s), rows);
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

#define HOUR_NS (3600ull * 1000000000u) /* holds a deadline off for the test */

static int setup(void **state)
{
	static struct fixture f;

	snprintf(f.dir, sizeof(f.dir), "/tmp/keel-gtxn-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.db, sizeof(f.db), "%s/keel.db", f.dir);
	snprintf(f.crashed, sizeof(f.crashed), "%s/crashed.db", f.dir);
	crash_vfs_install();
	assert_int_equal(keel_store_open_sqlite(f.db, 2, &f.s), 0);
	/* which thread runs which part, and in which group, is what these
	 * tests assert: no group cut short by a loaded machine (GROUP_MAX_NS) */
	keel_store_sqlite_group_for(f.s, HOUR_NS);
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
	struct part a, b;
	struct keel_store *crashed;

	run_group(f->s, UNDO, &a, &b);
	assert_int_equal(a.result, 0);
	assert_int_equal(b.result, UNDONE);
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
	struct part a, b;
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
	struct part a, b;
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

static int add_uid(void *ctx, const struct keel_store_audit *row)
{
	char *order = ctx;
	size_t n = strlen(order);

	assert_non_null(row->uid);
	assert_true(n + 1 < 16);
	order[n] = row->uid[0];
	order[n + 1] = '\0';
	return 0;
}

/* The chain is intact and its rows are |want|'s parts, oldest first (one letter each). */
static void assert_audit_order(struct keel_store *s, const char *want)
{
	struct keel_store_audit_filter all = {.limit = 0};
	struct keel_store_txn *t;
	char newest_first[16] = "", oldest_first[16] = "";
	size_t n;

	assert_chain_intact(s, (int64_t)strlen(want));
	assert_int_equal(keel_store_begin_read(s, &t), 0);
	assert_int_equal(keel_store_audit_scan(t, &all, add_uid, newest_first), 0);
	keel_store_rollback(t);
	n = strlen(newest_first);
	for (size_t i = 0; i < n; i++) {
		oldest_first[i] = newest_first[n - 1 - i];
	}
	assert_string_equal(oldest_first, want);
}

/* B, C and D queue with keel_store_run behind A: A's thread runs them, C's failure is its own. */
static void test_members_run_by_the_holder(void **state)
{
	struct fixture *f = *state;
	struct part p[4] = {{.kind = BEGIN},
			    {.kind = RUN, .uid = "b", .how = KEEP},
			    {.kind = RUN, .uid = "c", .how = UNDO},
			    {.kind = RUN, .uid = "d", .how = KEEP}};
	struct keel_store *crashed;

	run_parts(f->s, p, 4);
	assert_int_equal(p[0].result, 0);
	assert_int_equal(p[1].result, 0);
	assert_int_equal(p[2].result, UNDONE);
	assert_int_equal(p[3].result, 0);
	for (size_t i = 1; i < 4; i++) {
		assert_int_equal(p[i].ran_on, p[0].tid);
	}
	assert_false(committed(f->s, "c"));
	assert_audit_order(f->s, "abd");
	crashed = after_power_loss(f);
	assert_true(committed(crashed, "a"));
	assert_true(committed(crashed, "b"));
	assert_false(committed(crashed, "c"));
	assert_true(committed(crashed, "d"));
	assert_audit_order(crashed, "abd");
	keel_store_close(crashed);
}

/* The group's COMMIT fails: every member that kept its part fails, run or begun. */
static void test_failed_commit_fails_every_run_member(void **state)
{
	struct fixture *f = *state;
	struct part p[4] = {{.kind = BEGIN},
			    {.kind = RUN, .uid = "b", .how = KEEP},
			    {.kind = RUN, .uid = "c", .how = UNDO},
			    {.kind = RUN, .uid = "d", .how = FAIL}};
	struct keel_store *crashed;

	run_parts(f->s, p, 4);
	assert_int_equal(p[0].result, KEEL_STORE_E_IO);
	assert_int_equal(p[1].result, KEEL_STORE_E_IO);
	assert_int_equal(p[2].result, UNDONE);
	assert_int_equal(p[3].result, KEEL_STORE_E_IO);
	assert_audit_order(f->s, "");
	crashed = after_power_loss(f);
	for (const char *u = "abcd"; *u != '\0'; u++) {
		char uid[2] = {*u, '\0'};

		assert_false(committed(crashed, uid));
	}
	keel_store_close(crashed);
}

/*
 * A keel_store_begin caller queued between members: the holder runs B, hands
 * E the turn with the group open, and E's thread runs D after its own part.
 */
static void test_begin_between_run_members(void **state)
{
	struct fixture *f = *state;
	struct part p[4] = {{.kind = BEGIN},
			    {.kind = RUN, .uid = "b", .how = KEEP},
			    {.kind = BEGIN, .uid = "e", .how = KEEP},
			    {.kind = RUN, .uid = "d", .how = KEEP}};
	struct keel_store *crashed;

	run_parts(f->s, p, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(p[i].result, 0);
	}
	assert_int_equal(p[1].ran_on, p[0].tid);
	assert_int_equal(p[2].ran_on, p[2].tid);
	assert_int_equal(p[3].ran_on, p[2].tid);
	assert_audit_order(f->s, "abed");
	crashed = after_power_loss(f);
	assert_audit_order(crashed, "abed");
	keel_store_close(crashed);
}

/*
 * Submitted parts queue behind A and return at once; A's thread runs them
 * in order with the waiting members, and an undone one leaves nothing. Its
 * group is waited for (A, D), so all it kept is durable.
 */
static void test_submitted_run_by_the_holder(void **state)
{
	struct fixture *f = *state;
	struct part p[4] = {{.kind = BEGIN},
			    {.kind = SUBMIT, .uid = "s", .how = KEEP},
			    {.kind = SUBMIT, .uid = "u", .how = UNDO},
			    {.kind = RUN, .uid = "d", .how = KEEP}};
	struct keel_store *crashed;

	run_parts(f->s, p, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(p[i].result, 0); /* a submit's: queued */
	}
	assert_int_equal(p[1].ran_on, p[0].tid);
	assert_int_equal(p[2].ran_on, p[0].tid);
	assert_audit_order(f->s, "asd");
	crashed = after_power_loss(f);
	assert_audit_order(crashed, "asd");
	keel_store_close(crashed);
}

/* The group's COMMIT fails: the submitted part is lost (logged) with the rest, nothing leaks. */
static void test_failed_commit_loses_submitted(void **state)
{
	struct fixture *f = *state;
	struct part p[3] = {{.kind = BEGIN},
			    {.kind = SUBMIT, .uid = "s", .how = KEEP},
			    {.kind = RUN, .uid = "d", .how = FAIL}};

	run_parts(f->s, p, 3);
	assert_int_equal(p[0].result, KEEL_STORE_E_IO);
	assert_int_equal(p[1].result, 0); /* queued: its caller had gone on */
	assert_int_equal(p[2].result, KEEL_STORE_E_IO);
	assert_false(committed(f->s, "s"));
	assert_audit_order(f->s, "");
}

static int write_arg(struct keel_store_txn *t, void *arg)
{
	return write_one(t, arg);
}

/*
 * Submitted alone, work is only queued, and the next writer runs it first
 * in its group: one COMMIT for both, durable when that writer is answered.
 */
static void test_submitted_alone_run_by_the_next_writer(void **state)
{
	struct fixture *f = *state;
	struct keel_store_txn *t;
	struct keel_store *crashed;
	uint64_t groups;
	char uid[8] = "s";

	keel_store_sqlite_flusher(f->s, HOUR_NS, NULL, NULL);
	assert_int_equal(keel_store_submit(f->s, write_arg, uid, sizeof(uid)), 0);
	uid[0] = 'x'; /* the store runs a copy */
	assert_false(committed(f->s, "s"));
	groups = store_check_groups();
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_true(found(t, "s")); /* run before this writer's part */
	assert_int_equal(write_one(t, "w"), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(store_check_groups(), groups + 1);
	assert_false(committed(f->s, "x"));
	crashed = after_power_loss(f);
	assert_audit_order(crashed, "sw");
	keel_store_close(crashed);
}

/*
 * With no writer after it, submitted work is committed anyway, in a group of
 * its own, by the store's flusher thread (not this one), which then waits
 * for its fsync: durable once the store is closed, which joins the flusher.
 */
static void test_submitted_alone_committed_by_the_flusher(void **state)
{
	struct fixture *f = *state;
	struct part p = {.s = f->s, .kind = SUBMIT, .uid = "s", .how = KEEP};
	uint64_t groups = store_check_groups();
	struct keel_store *crashed;

	store_check_watch_flusher(f->s);
	(void)part_main(&p);
	assert_int_equal(p.result, 0);
	store_check_wait_flushed();
	assert_int_equal(store_check_chain(f->s), 1);
	assert_int_equal(store_check_groups(), groups + 1);
	keel_store_close(f->s); /* joins the flusher: what it wrote in |p| is seen */
	f->s = NULL;
	assert_int_not_equal(p.ran_on, 0);
	assert_int_not_equal(p.ran_on, p.tid);
	crashed = after_power_loss(f);
	assert_audit_order(crashed, "s");
	keel_store_close(crashed);
}

/* Closing the store commits what is still queued, durably. */
static void test_close_commits_submitted(void **state)
{
	struct fixture *f = *state;
	struct keel_store *crashed;

	keel_store_sqlite_flusher(f->s, HOUR_NS, NULL, NULL);
	assert_int_equal(keel_store_submit(f->s, write_arg, "s", 2), 0);
	assert_false(committed(f->s, "s"));
	keel_store_close(f->s);
	f->s = NULL;
	crashed = after_power_loss(f);
	assert_audit_order(crashed, "s");
	keel_store_close(crashed);
}

#define MANY 40 /* over GROUP_MAX (32): A's group closes with submitted work queued */

/*
 * More submitted parts queue behind A than one group takes: A's thread,
 * its group closed, runs the rest in a group of their own before its
 * commit returns, so that nothing is left queued (nor leaked: the ASan
 * build) when the store closes right after.
 */
static void test_submitted_beyond_one_group(void **state)
{
	struct fixture *f = *state;
	struct part a = {.s = f->s, .kind = BEGIN, .uid = "a", .how = KEEP};
	pthread_t th;
	char uid[8];

	first_in = first_go = false;
	assert_int_equal(pthread_create(&th, NULL, first_main, &a), 0);
	wait_for(&first_in);
	for (int i = 0; i < MANY; i++) {
		snprintf(uid, sizeof(uid), "s%d", i);
		assert_int_equal(keel_store_submit(f->s, write_arg, uid, sizeof(uid)), 0);
	}
	assert_false(committed(f->s, "s0"));
	set(&first_go);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(a.result, 0);
	for (int i = 0; i < MANY; i++) {
		snprintf(uid, sizeof(uid), "s%d", i);
		assert_true(committed(f->s, uid));
	}
	assert_chain_intact(f->s, MANY + 1);
}

struct restore {
	struct keel_store *s;
	uint8_t *image;
	size_t len;
	pid_t tid;
	int result;
};

static void *restore_main(void *arg)
{
	struct restore *r = arg;

	pthread_mutex_lock(&lock);
	r->tid = tid_now();
	pthread_cond_broadcast(&moved);
	pthread_mutex_unlock(&lock);
	r->result = keel_store_restore(r->s, r->image, r->len, false);
	return NULL;
}

/*
 * Work submitted behind a restore queued behind A: A hands the restore the
 * turn, and the restore's thread, its image in, runs the submitted work in
 * a group of its own (nobody else is there to), on the restored chain.
 */
static void test_submitted_behind_a_restore(void **state)
{
	struct fixture *f = *state;
	struct part a = {.s = f->s, .kind = BEGIN, .uid = "a", .how = KEEP};
	struct restore r = {.s = f->s};
	struct keel_store_txn *t;
	pthread_t ta, tr;

	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(write_one(t, "z"), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(keel_store_snapshot(f->s, &r.image, &r.len), 0);
	first_in = first_go = false;
	assert_int_equal(pthread_create(&ta, NULL, first_main, &a), 0);
	wait_for(&first_in);
	assert_int_equal(pthread_create(&tr, NULL, restore_main, &r), 0);
	pthread_mutex_lock(&lock);
	while (r.tid == 0) {
		pthread_cond_wait(&moved, &lock);
	}
	pthread_mutex_unlock(&lock);
	while (!in_futex(r.tid)) { /* queued for the turn: a state, polled */
		sched_yield();
	}
	assert_int_equal(keel_store_submit(f->s, write_arg, "s", 2), 0);
	set(&first_go);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(pthread_join(tr, NULL), 0);
	free(r.image);
	assert_int_equal(a.result, 0);
	assert_int_equal(r.result, 0);
	assert_false(committed(f->s, "a")); /* the image replaced it */
	assert_true(committed(f->s, "s"));
	assert_audit_order(f->s, "zs");
}

/*
 * A's fsync is held while B and C, each a group of its own, commit and wait
 * for it; then it ends with |rc|, and each is acknowledged if |rc| is
 * SQLITE_OK, else fails. The fsync's end wakes the waiters it covers and the
 * first it does not, who leads the next: a waiter no one wakes hangs this.
 */
static void wait_for_held_fsync(struct fixture *f, int rc)
{
	static const char *const uids[3] = {"a", "b", "c"};
	struct part p[3];
	pthread_t th[3];

	crash_vfs_hold_next_wal_sync();
	for (size_t i = 0; i < 3; i++) {
		p[i] = (struct part){.s = f->s, .kind = BEGIN, .uid = uids[i], .how = KEEP};
		if (i == 0) {
			start_part(&th[i], &p[i]);
			crash_vfs_wait_wal_sync_held();
		} else {
			queue_part(&th[i], &p[i]);
		}
	}
	crash_vfs_release_wal_sync(rc);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_true((p[i].result == 0) == (rc == SQLITE_OK));
	}
}

/* B and C, not covered by A's fsync, are acknowledged after the next one. */
static void test_fsync_wakes_the_next_leader(void **state)
{
	struct fixture *f = *state;
	struct keel_store *crashed;

	wait_for_held_fsync(f, SQLITE_OK);
	crashed = after_power_loss(f);
	assert_true(committed(crashed, "a"));
	assert_true(committed(crashed, "b"));
	assert_true(committed(crashed, "c"));
	keel_store_close(crashed);
}

/* A failed fsync fails every waiter, and every commit after it. */
static void test_failed_fsync_fails_every_waiter(void **state)
{
	struct fixture *f = *state;
	struct keel_store_txn *t;

	wait_for_held_fsync(f, SQLITE_IOERR_FSYNC);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(write_one(t, "d"), 0);
	assert_int_not_equal(keel_store_commit(t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_member_rollback_spares_the_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_both_kept_both_durable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_commit_fails_every_member, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_members_run_by_the_holder, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_commit_fails_every_run_member, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_begin_between_run_members, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_submitted_run_by_the_holder, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_commit_loses_submitted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_submitted_alone_run_by_the_next_writer, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_submitted_alone_committed_by_the_flusher, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_close_commits_submitted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_submitted_beyond_one_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_submitted_behind_a_restore, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fsync_wakes_the_next_leader, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_fsync_fails_every_waiter, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
