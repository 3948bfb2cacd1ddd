/*
 * Grants and the audit hash chain in the SQLite store: grants widen what a
 * query and a read see and go with their object; the chain verifies intact
 * after appends, savepoint rollbacks, concurrent writers and reopening, rows
 * written before the chain existed are chained by the migration, and a row
 * altered, deleted or added with the sqlite3 library is named. A scan by
 * object finds rows before and after the batches of audit_by_uid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

struct fx {
	char dir[64];
	char path[128];
	struct keel_store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/keel-chain-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/keel.db", f->dir);
	assert_int_equal(keel_store_open_sqlite(f->path, 3, &f->s), 0);
	*state = f;
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	keel_store_close(f->s);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void put_object(struct keel_store_txn *t, const char *uid, const char *owner)
{
	struct keel_store_object o = {.object_type = 2, .state = 1};

	snprintf(o.uid, sizeof(o.uid), "%s", uid);
	snprintf(o.owner, sizeof(o.owner), "%s", owner);
	assert_int_equal(keel_store_object_put(t, &o), 0);
}

static void grant(struct keel_store_txn *t, const char *owner, const char *uid, const char *grantee,
		  uint32_t level)
{
	struct keel_store_grant g = {.level = level, .time = 7};

	snprintf(g.owner, sizeof(g.owner), "%s", owner);
	snprintf(g.uid, sizeof(g.uid), "%s", uid);
	snprintf(g.grantee, sizeof(g.grantee), "%s", grantee);
	snprintf(g.granted_by, sizeof(g.granted_by), "admin:test");
	assert_int_equal(keel_store_grant_put(t, &g), 0);
}

/* How many objects bb sees: its own and those granted to it. */
static size_t visible_to_bb(struct keel_store_txn *t)
{
	struct keel_store_query q = {.owner = "bb", .grantee = "bb"};
	char **uids;
	size_t n;

	assert_int_equal(keel_store_locate(t, &q, &uids, &n), 0);
	keel_store_uids_free(uids, n);
	return n;
}

static uint32_t level(struct keel_store_txn *t, const char *uid)
{
	uint32_t l = 99;

	assert_int_equal(keel_store_grant_level(t, "aa", uid, "bb", &l), 0);
	return l;
}

static void test_grants(void **state)
{
	struct fx *f = *state;
	struct keel_store_query all = {.any_owner = true};
	struct keel_store_object o;
	struct keel_store_grant *gs;
	struct keel_store_txn *t;
	char **uids;
	size_t n;

	assert_int_equal(keel_store_begin(f->s, &t), 0);
	put_object(t, "a1", "aa");
	put_object(t, "a2", "aa");
	put_object(t, "b1", "bb");
	assert_int_equal(visible_to_bb(t), 1);
	assert_int_equal(level(t, "a1"), 0);
	grant(t, "aa", "a1", "bb", 1);
	assert_int_equal(visible_to_bb(t), 2);
	assert_int_equal(level(t, "a1"), 1);
	assert_int_equal(level(t, "a2"), 0);
	/* Re-granting replaces the level; an owner-wide grant covers every object. */
	grant(t, "aa", "a1", "bb", 2);
	assert_int_equal(level(t, "a1"), 2);
	grant(t, "aa", "", "bb", 1);
	assert_int_equal(visible_to_bb(t), 3);
	assert_int_equal(level(t, "a2"), 1);
	assert_int_equal(level(t, "a1"), 2); /* the highest that applies */
	assert_int_equal(keel_store_grant_list(t, "aa", NULL, &gs, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(gs[0].granted_by, "admin:test");
	free(gs);
	/* Nobody grants to themselves; an administrator's query sees all. */
	struct keel_store_grant self = {.owner = "aa", .grantee = "aa", .level = 1};
	assert_int_equal(keel_store_grant_put(t, &self), KEEL_STORE_E_INVAL);
	assert_int_equal(keel_store_locate(t, &all, &uids, &n), 0);
	assert_int_equal(n, 3);
	keel_store_uids_free(uids, n);
	assert_int_equal(keel_store_locate(t, &(struct keel_store_query){0}, &uids, &n),
			 KEEL_STORE_E_INVAL);
	assert_int_equal(keel_store_object_get(t, "a1", NULL, &o), 0);
	assert_string_equal(o.owner, "aa");
	keel_store_object_cleanup(&o);
	/* Revoking, and deleting the object, take grants away. */
	assert_int_equal(keel_store_grant_delete(t, "aa", "", "bb"), 0);
	assert_int_equal(keel_store_grant_delete(t, "aa", "", "bb"), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(visible_to_bb(t), 2);
	assert_int_equal(keel_store_object_delete(t, "a1"), 0);
	assert_int_equal(keel_store_grant_list(t, NULL, "bb", &gs, &n), 0);
	assert_int_equal(n, 0);
	free(gs);
	assert_int_equal(keel_store_commit(t), 0);
}

static void append(struct keel_store_txn *t, const char *client, const char *uid)
{
	struct keel_store_audit a = {
	    .time = 100, .client = client, .operation = 10, .uid = uid, .result_status = 0};

	assert_int_equal(keel_store_audit_append(t, &a), 0);
}

static void append_committed(struct keel_store *s, int n)
{
	struct keel_store_txn *t;

	for (int i = 0; i < n; i++) {
		assert_int_equal(keel_store_begin(s, &t), 0);
		append(t, "aa", "u");
		assert_int_equal(keel_store_commit(t), 0);
	}
}

static struct keel_store_audit_check verify(struct keel_store *s)
{
	struct keel_store_audit_check c;
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin_read(s, &t), 0);
	assert_int_equal(keel_store_audit_verify(t, NULL, &c), 0);
	keel_store_rollback(t);
	return c;
}

static void sql(const char *path, const char *stmt)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_chain_intact(void **state)
{
	struct fx *f = *state;
	struct keel_store_txn *t;
	struct keel_store_audit_check c;

	append_committed(f->s, 3);
	/* A rolled-back transaction and a rolled-back savepoint leave no link behind. */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	append(t, "aa", "gone");
	keel_store_rollback(t);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	append(t, "aa", "kept");
	assert_int_equal(keel_store_savepoint(t), 0);
	append(t, "aa", "undone");
	assert_int_equal(keel_store_savepoint_rollback(t), 0);
	append(t, "aa", "kept too");
	assert_int_equal(keel_store_commit(t), 0);
	keel_store_close(f->s);
	assert_int_equal(keel_store_open_sqlite(f->path, 3, &f->s), 0);
	append_committed(f->s, 1);
	c = verify(f->s);
	assert_int_equal(c.fault, KEEL_AUDIT_INTACT);
	assert_int_equal(c.num_rows, 6);
	assert_int_equal(c.num_bad, 0);
}

struct scan_ctx {
	int n;
	int64_t first_id;
};

static int count_row(void *ctx, const struct keel_store_audit *row)
{
	struct scan_ctx *sc = ctx;

	if (sc->n++ == 0) {
		sc->first_id = row->id;
	}
	return 0;
}

static void test_scan_filters(void **state)
{
	struct fx *f = *state;
	struct keel_store_audit_filter flt = {.client = "bb"};
	struct scan_ctx sc = {0};
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin(f->s, &t), 0);
	append(t, "aa", "u1");
	append(t, "bb", "u2");
	append(t, "bb", "u3");
	assert_int_equal(keel_store_audit_scan(t, &flt, count_row, &sc), 0);
	assert_int_equal(sc.n, 2);
	assert_int_equal(sc.first_id, 3); /* newest first */
	flt = (struct keel_store_audit_filter){.uid = "u1", .has_operation = true, .operation = 10};
	sc = (struct scan_ctx){0};
	assert_int_equal(keel_store_audit_scan(t, &flt, count_row, &sc), 0);
	assert_int_equal(sc.n, 1);
	flt = (struct keel_store_audit_filter){.since = 101};
	sc = (struct scan_ctx){0};
	assert_int_equal(keel_store_audit_scan(t, &flt, count_row, &sc), 0);
	assert_int_equal(sc.n, 0);
	flt = (struct keel_store_audit_filter){.since = 100, .until = 100};
	assert_int_equal(keel_store_audit_scan(t, &flt, count_row, &sc), 0);
	assert_int_equal(sc.n, 3);
	flt = (struct keel_store_audit_filter){.until = 99};
	sc = (struct scan_ctx){0};
	assert_int_equal(keel_store_audit_scan(t, &flt, count_row, &sc), 0);
	assert_int_equal(sc.n, 0);
	flt = (struct keel_store_audit_filter){.limit = 1};
	assert_int_equal(keel_store_audit_scan(t, &flt, count_row, &sc), 0);
	assert_int_equal(sc.n, 1);
	keel_store_rollback(t);
}

/* audit_uid_mark.upto: the newest row that audit_by_uid holds. */
static int64_t uid_mark(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t upto;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT upto FROM audit_uid_mark", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	upto = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return upto;
}

/* Commits |n| rows in one transaction: odd ids for u1, even ones for u2 or no object. */
static void append_ids(struct keel_store *s, int64_t first, int n)
{
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin(s, &t), 0);
	for (int64_t id = first; id < first + n; id++) {
		append(t, "aa", id % 2 != 0 ? "u1" : id % 4 == 0 ? "u2" : NULL);
	}
	assert_int_equal(keel_store_commit(t), 0);
}

struct ids_ctx {
	size_t n;
	int64_t ids[8];
};

static int collect_id(void *ctx, const struct keel_store_audit *row)
{
	struct ids_ctx *c = ctx;

	assert_string_equal(row->uid, "u1");
	if (c->n < sizeof(c->ids) / sizeof(c->ids[0])) {
		c->ids[c->n] = row->id;
	}
	c->n++;
	return 0;
}

/*
 * The rows of one object are found whether audit_by_uid holds them yet or
 * not: it is filled by the commit that passes a multiple of 256 rows, and a
 * rolled-back transaction leaves the mark where it was.
 */
static void test_scan_by_uid_batches(void **state)
{
	struct fx *f = *state;
	const int64_t newest[] = {309, 307, 305, 303, 301, 299, 297, 295};
	struct keel_store_audit_filter flt = {.uid = "u1"};
	struct ids_ctx c = {0};
	struct keel_store_txn *t;

	append_ids(f->s, 1, 200);
	assert_int_equal(uid_mark(f->path), 0);
	append_ids(f->s, 201, 100);
	assert_int_equal(uid_mark(f->path), 300);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	for (int i = 0; i < 300; i++) {
		append(t, "aa", "gone");
	}
	keel_store_rollback(t);
	append_ids(f->s, 301, 10);
	assert_int_equal(uid_mark(f->path), 300);
	assert_int_equal(keel_store_begin_read(f->s, &t), 0);
	assert_int_equal(keel_store_audit_scan(t, &flt, collect_id, &c), 0);
	assert_int_equal(c.n, 155);
	c = (struct ids_ctx){0};
	flt.limit = 8; /* five after the mark, three before it */
	assert_int_equal(keel_store_audit_scan(t, &flt, collect_id, &c), 0);
	assert_int_equal(c.n, 8);
	assert_memory_equal(c.ids, newest, sizeof(newest));
	keel_store_rollback(t);
	assert_int_equal(verify(f->s).fault, KEEL_AUDIT_INTACT);
}

static void test_chain_tampering(void **state)
{
	struct fx *f = *state;
	struct keel_store_audit_check c;

	append_committed(f->s, 10);
	sql(f->path, "UPDATE audit SET result_status = 0, uid = 'other' WHERE id = 7");
	sql(f->path, "DELETE FROM audit WHERE id = 4");
	c = verify(f->s);
	assert_int_equal(c.fault, KEEL_AUDIT_MISSING);
	assert_int_equal(c.first_bad_id, 4);
	assert_int_equal(c.num_bad, 2);
	assert_int_equal(c.num_rows, 9);
}

static void test_chain_altered_and_inserted(void **state)
{
	struct fx *f = *state;
	struct keel_store_audit_check c;

	append_committed(f->s, 5);
	sql(f->path, "UPDATE audit SET time = time + 1 WHERE id = 3");
	c = verify(f->s);
	assert_int_equal(c.fault, KEEL_AUDIT_ALTERED);
	assert_int_equal(c.first_bad_id, 3);
	sql(f->path, "UPDATE audit SET time = time - 1 WHERE id = 3");
	assert_int_equal(verify(f->s).fault, KEEL_AUDIT_INTACT);
	/* A forged row after the head, and a truncated tail. */
	sql(f->path, "INSERT INTO audit (id, time, client, operation, result_status, result_reason,"
		     " hash) VALUES (6, 1, 'x', 1, 0, 0, zeroblob(32))");
	c = verify(f->s);
	assert_int_equal(c.fault, KEEL_AUDIT_ALTERED);
	assert_int_equal(c.first_bad_id, 6);
	sql(f->path, "DELETE FROM audit WHERE id >= 5");
	c = verify(f->s);
	assert_int_equal(c.fault, KEEL_AUDIT_TRUNCATED);
	assert_int_equal(c.first_bad_id, 5);
}

static void *writer(void *arg)
{
	append_committed(arg, 40);
	return NULL;
}

/* Writers on several connections chain in commit order: the cached head never goes stale. */
static void test_chain_concurrent(void **state)
{
	struct fx *f = *state;
	pthread_t th[3];

	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, writer, f->s), 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
	}
	struct keel_store_audit_check c = verify(f->s);
	assert_int_equal(c.fault, KEEL_AUDIT_INTACT);
	assert_int_equal(c.num_rows, 120);
}

/* Rewrites every hash from record |from| on, as someone with the file could. */
static void rechain(const char *path, int64_t from)
{
	struct keel_store_audit a = {0};
	uint8_t prev[KEEL_STORE_HASH_LEN];
	sqlite3_stmt *st, *up;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
			       "SELECT id, time, client, operation, uid, result_status,"
			       " result_reason, detail, hash FROM audit ORDER BY id",
			       -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "UPDATE audit SET hash = ?2 WHERE id = ?1", -1, &up, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		a.id = sqlite3_column_int64(st, 0);
		a.time = sqlite3_column_int64(st, 1);
		a.client = (const char *)sqlite3_column_text(st, 2);
		a.operation = (uint32_t)sqlite3_column_int64(st, 3);
		a.uid = (const char *)sqlite3_column_text(st, 4);
		a.result_status = (uint32_t)sqlite3_column_int64(st, 5);
		a.result_reason = (uint32_t)sqlite3_column_int64(st, 6);
		a.detail = (const char *)sqlite3_column_text(st, 7);
		if (a.id < from) {
			memcpy(prev, sqlite3_column_blob(st, 8), sizeof(prev));
			continue;
		}
		assert_int_equal(keel_store_audit_hash(prev, &a, prev), 0);
		sqlite3_bind_int64(up, 1, a.id);
		sqlite3_bind_blob(up, 2, prev, sizeof(prev), SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(up), SQLITE_DONE);
		sqlite3_reset(up);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	sqlite3_close(db);
}

/* A chain recomputed after an alteration passes, except against an anchor kept before. */
static void test_anchor(void **state)
{
	struct fx *f = *state;
	struct keel_store_audit_anchor anchor, far = {.id = 99};
	struct keel_store_audit_check c;
	struct keel_store_txn *t;

	append_committed(f->s, 6);
	anchor = verify(f->s).head;
	assert_int_equal(anchor.id, 6);
	sql(f->path, "UPDATE audit SET uid = 'forged' WHERE id = 2");
	rechain(f->path, 2);
	assert_int_equal(verify(f->s).fault, KEEL_AUDIT_INTACT); /* the limit of an unkeyed chain */
	assert_int_equal(keel_store_begin_read(f->s, &t), 0);
	assert_int_equal(keel_store_audit_verify(t, &anchor, &c), 0);
	assert_int_equal(c.fault, KEEL_AUDIT_ANCHOR);
	assert_int_equal(c.first_bad_id, 6);
	assert_int_equal(keel_store_audit_verify(t, &far, &c), 0);
	assert_int_equal(c.fault, KEEL_AUDIT_ANCHOR); /* an anchor past the end: rows deleted */
	assert_int_equal(c.first_bad_id, 99);
	anchor.id = 0;
	assert_int_equal(keel_store_audit_verify(t, &anchor, &c), KEEL_STORE_E_INVAL);
	keel_store_rollback(t);
}

/* A version 1 database with audit rows: the migration chains them. */
static void test_migration_chains_old_rows(void **state)
{
	struct fx *f = *state;
	char old[160];
	struct keel_store *s;
	int v = 0;

	snprintf(old, sizeof(old), "%s/old.db", f->dir);
	sql(old, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY NOT NULL,"
		 " applied INTEGER NOT NULL DEFAULT 0);"
		 "INSERT INTO schema_version(version) VALUES (1);"
		 "CREATE TABLE objects (uid TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL,"
		 " crk_version INTEGER NOT NULL DEFAULT 0, blob BLOB);"
		 /* later migrations put triggers on attributes and objects (5, 9, 11) */
		 "CREATE TABLE attributes (uid TEXT NOT NULL, name TEXT NOT NULL,"
		 " idx INTEGER NOT NULL, value BLOB NOT NULL, text_value TEXT);"
		 "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
		 " client TEXT NOT NULL, operation INTEGER NOT NULL, uid TEXT,"
		 " result_status INTEGER NOT NULL, result_reason INTEGER NOT NULL);"
		 "INSERT INTO audit (time, client, operation, uid, result_status, result_reason)"
		 " VALUES (1, 'aa', 1, 'u1', 0, 0), (2, 'aa', 10, NULL, 1, 8);");
	assert_int_equal(keel_store_open_sqlite(old, 1, &s), 0);
	assert_int_equal(keel_store_schema_version(s, &v), 0);
	assert_true(v >= 3);
	append_committed(s, 1);
	struct keel_store_audit_check c = verify(s);
	assert_int_equal(c.fault, KEEL_AUDIT_INTACT);
	assert_int_equal(c.num_rows, 3);
	keel_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_grants, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_intact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_by_uid_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_tampering, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_altered_and_inserted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_anchor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migration_chains_old_rows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
