/*
 * A store that schema version 10 made, with objects, attributes and a
 * mirror backlog in it, opened by this keeld: migration 11 (attributes
 * WITHOUT ROWID, the mirror's triggers) keeps every object and attribute,
 * their order, Locate by Name, the cascade on delete and the mirror's
 * triggers; migration 12 (audit_by_uid) finds every audit row of an object.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* `sqlite3 keel.db .schema` of a store keeld made at schema version 10. */
static const char schema_v10[] =
    "CREATE TABLE schema_version ( version INTEGER PRIMARY KEY NOT NULL, applied INTEGER NOT NULL"
    " DEFAULT (strftime('%s','now')));"
    "CREATE TABLE objects ( uid TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, object_type"
    " INTEGER NOT NULL, state INTEGER NOT NULL, crk_version INTEGER NOT NULL DEFAULT 0, blob BLOB,"
    " initial_date INTEGER NOT NULL DEFAULT 0, activation_date INTEGER NOT NULL DEFAULT 0,"
    " deactivation_date INTEGER NOT NULL DEFAULT 0, destroy_date INTEGER NOT NULL DEFAULT 0,"
    " compromise_date INTEGER NOT NULL DEFAULT 0, compromise_occurrence_date INTEGER NOT NULL"
    " DEFAULT 0, last_change_date INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX objects_owner ON objects(owner, object_type, state);"
    "CREATE INDEX objects_crk ON objects(crk_version);"
    "CREATE TABLE attributes ( uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE, name"
    " TEXT NOT NULL, idx INTEGER NOT NULL, value BLOB NOT NULL, text_value TEXT, PRIMARY KEY (uid,"
    " name, idx));"
    "CREATE INDEX attributes_by_text ON attributes(name, text_value) WHERE text_value IS NOT NULL;"
    "CREATE TABLE audit ( id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, client TEXT"
    " NOT NULL, operation INTEGER NOT NULL, uid TEXT, result_status INTEGER NOT NULL,"
    " result_reason INTEGER NOT NULL, detail TEXT, hash BLOB);"
    "CREATE INDEX audit_uid ON audit(uid);"
    "CREATE TABLE crk_rotation ( id INTEGER PRIMARY KEY CHECK (id = 1), target INTEGER NOT NULL,"
    " started INTEGER NOT NULL, finished INTEGER NOT NULL, total INTEGER NOT NULL, done INTEGER"
    " NOT NULL, cursor INTEGER NOT NULL);"
    "CREATE TABLE grants ( owner TEXT NOT NULL, uid TEXT NOT NULL, grantee TEXT NOT NULL, level"
    " INTEGER NOT NULL, granted_by TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY (grantee,"
    " owner, uid));"
    "CREATE INDEX grants_by_owner ON grants(owner, uid);"
    "CREATE TRIGGER grants_follow_objects AFTER DELETE ON objects BEGIN DELETE FROM grants WHERE"
    " uid = old.uid; END;"
    "CREATE INDEX audit_time ON audit(time);"
    "CREATE TABLE mirror_state ( id INTEGER PRIMARY KEY CHECK (id = 1), enabled INTEGER NOT NULL,"
    " next_seq INTEGER NOT NULL, root_key_id TEXT NOT NULL DEFAULT '', root_version TEXT NOT NULL"
    " DEFAULT '', root_mode INTEGER NOT NULL DEFAULT 0, crk_version INTEGER NOT NULL DEFAULT 0,"
    " shredded INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE mirror_outbox ( uid TEXT PRIMARY KEY NOT NULL, op INTEGER NOT NULL, seq INTEGER"
    " NOT NULL UNIQUE, time INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE VIEW mirror_enqueue AS SELECT uid, op FROM mirror_outbox WHERE 0;"
    "CREATE TRIGGER mirror_enqueue_row INSTEAD OF INSERT ON mirror_enqueue WHEN (SELECT enabled"
    " FROM mirror_state) = 1 BEGIN  INSERT INTO mirror_outbox (uid, op, seq, time)   SELECT"
    " new.uid, new.op, next_seq, CAST(strftime('%s', 'now') AS INTEGER)   FROM mirror_state WHERE"
    " id = 1   ON CONFLICT (uid) DO UPDATE SET op = excluded.op, seq = excluded.seq,    time ="
    " excluded.time, attempts = 0;  UPDATE mirror_state SET next_seq = next_seq + 1; END;"
    "CREATE TRIGGER mirror_object_insert AFTER INSERT ON objects BEGIN INSERT INTO mirror_enqueue"
    " VALUES (new.uid, 1); END;"
    "CREATE TRIGGER mirror_object_delete AFTER DELETE ON objects BEGIN INSERT INTO mirror_enqueue"
    " VALUES (old.uid, 2); END;"
    "CREATE TRIGGER mirror_attribute_insert AFTER INSERT ON attributes BEGIN INSERT INTO"
    " mirror_enqueue VALUES (new.uid, 1); END;"
    "CREATE TRIGGER mirror_attribute_update AFTER UPDATE ON attributes BEGIN INSERT INTO"
    " mirror_enqueue VALUES (new.uid, 1); END;"
    "CREATE TRIGGER mirror_attribute_delete AFTER DELETE ON attributes WHEN EXISTS (SELECT 1 FROM"
    " objects WHERE uid = old.uid) BEGIN INSERT INTO mirror_enqueue VALUES (old.uid, 1); END;"
    "CREATE TABLE clients ( fingerprint TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE, role"
    " TEXT NOT NULL CHECK (role IN ('kmip', 'admin', 'auditor', 'ca')), pem TEXT NOT NULL, added"
    " INTEGER NOT NULL);"
    "CREATE TRIGGER mirror_object_update AFTER UPDATE ON objects WHEN new.crk_version ="
    " old.crk_version OR new.blob IS NULL BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1);"
    " END;"
    "CREATE TABLE enrolment ( verifier TEXT PRIMARY KEY NOT NULL, expires INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, used INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO schema_version(version) VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10);";

/*
 * The data: two objects; u1's attributes added out of name order (the order
 * an answer lists them in), two Names among them; the mirror on, with u1
 * escrowed (settled) and u2 still in the outbox; four audit rows, one of
 * them of no object.
 */
static const char data_v10[] =
    "INSERT INTO mirror_state (id, enabled, next_seq) VALUES (1, 1, 1);"
    "INSERT INTO objects (uid, owner, object_type, state, crk_version, blob, initial_date)"
    " VALUES ('u1', 'alice', 2, 2, 1, x'0102', 100), ('u2', 'bob', 7, 1, 1, x'03', 200);"
    "INSERT INTO attributes (uid, name, idx, value, text_value) VALUES"
    " ('u1', 'Name', 0, x'a0', 'first key'),"
    " ('u2', 'Name', 0, x'b0', 'other key'),"
    " ('u1', 'Cryptographic Algorithm', 0, x'a1', NULL),"
    " ('u1', 'Name', 1, x'a2', 'second name'),"
    " ('u1', 'Fresh', 0, x'a3', NULL);"
    "DELETE FROM mirror_outbox WHERE uid = 'u1';"
    "INSERT INTO audit (id, time, client, operation, uid, result_status, result_reason) VALUES"
    " (1, 100, 'alice', 1, 'u1', 0, 0), (2, 101, 'alice', 24, NULL, 0, 0),"
    " (3, 102, 'bob', 10, 'u2', 0, 0), (4, 103, 'alice', 10, 'u1', 0, 0);";

struct want {
	const char *name;
	int32_t index;
	uint8_t value;
	const char *text;
};

static void sql(const char *path, const char *stmt)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void check_attrs(struct keel_store_txn *t, const char *uid, const struct want *w, size_t num)
{
	struct keel_store_attr *a = NULL;
	size_t n = 0;

	assert_int_equal(keel_store_attr_list(t, uid, NULL, &a, &n), 0);
	assert_int_equal(n, num);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(a[i].name, w[i].name);
		assert_int_equal(a[i].index, w[i].index);
		assert_int_equal(a[i].value_len, 1);
		assert_int_equal(a[i].value[0], w[i].value);
		if (w[i].text == NULL) {
			assert_null(a[i].text);
		} else {
			assert_string_equal(a[i].text, w[i].text);
		}
	}
	keel_store_attrs_free(a, n);
}

/* The one object of |owner| whose Name is |name|, or NULL (the caller frees). */
static char *locate_name(struct keel_store_txn *t, const char *owner, const char *name)
{
	struct keel_store_filter f = {
	    .name = "Name", .match = KEEL_STORE_MATCH_EQUAL, .text = name};
	struct keel_store_query q = {.owner = owner, .filters = &f, .num_filters = 1};
	char **uids = NULL, *uid = NULL;
	size_t n = 0;

	assert_int_equal(keel_store_locate(t, &q, &uids, &n), 0);
	assert_true(n <= 1);
	if (n == 1) {
		uid = strdup(uids[0]);
	}
	keel_store_uids_free(uids, n);
	return uid;
}

static int add_id(void *ctx, const struct keel_store_audit *row)
{
	int64_t *sum = ctx;

	*sum = *sum * 10 + row->id;
	return 0;
}

/* The ids of |uid|'s audit rows, newest first, as the digits of one number. */
static int64_t audit_ids(struct keel_store_txn *t, const char *uid)
{
	struct keel_store_audit_filter f = {.uid = uid};
	int64_t ids = 0;

	assert_int_equal(keel_store_audit_scan(t, &f, add_id, &ids), 0);
	return ids;
}

static void check_objects(struct keel_store_txn *t)
{
	struct keel_store_object o;
	char *uid;

	assert_int_equal(keel_store_object_get(t, "u1", "alice", &o), 0);
	assert_int_equal(o.object_type, 2);
	assert_int_equal(o.state, 2);
	assert_int_equal(o.initial_date, 100);
	assert_int_equal(o.blob_len, 2);
	assert_int_equal(o.blob[1], 2);
	keel_store_object_cleanup(&o);
	assert_int_equal(keel_store_object_get(t, "u2", "bob", &o), 0);
	assert_int_equal(o.object_type, 7);
	keel_store_object_cleanup(&o);
	assert_non_null(uid = locate_name(t, "alice", "second name"));
	assert_string_equal(uid, "u1");
	free(uid);
	assert_null(locate_name(t, "alice", "other key"));
}

static void test_v10_store_migrates(void **state)
{
	const struct want u1[] = {{"Name", 0, 0xa0, "first key"},
				  {"Cryptographic Algorithm", 0, 0xa1, NULL},
				  {"Name", 1, 0xa2, "second name"},
				  {"Fresh", 0, 0xa3, NULL},
				  {"Digest", 0, 0xa4, NULL}};
	const struct want u2 = {"Name", 0, 0xb0, "other key"};
	struct keel_store_attr add = {.name = "Digest", .value = (uint8_t[]){0xa4}, .value_len = 1};
	char dir[] = "/tmp/keel-migrate-XXXXXX", path[64];
	struct keel_store_mirror_entry e[8];
	struct keel_store *s;
	struct keel_store_txn *t;
	size_t n = 0;
	int v = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/keel.db", dir);
	sql(path, schema_v10);
	sql(path, data_v10);
	assert_int_equal(keel_store_open_sqlite(path, 2, &s), 0);
	assert_int_equal(keel_store_schema_version(s, &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(keel_store_begin(s, &t), 0);
	check_objects(t);
	assert_int_equal(audit_ids(t, "u1"), 41);
	assert_int_equal(audit_ids(t, "u2"), 3);
	check_attrs(t, "u1", u1, 4);
	check_attrs(t, "u2", &u2, 1);
	/* A row added now comes after the migrated ones, and is still escrowed. */
	assert_int_equal(keel_store_attr_add(t, "u1", &add, 1), 0);
	check_attrs(t, "u1", u1, 5);
	assert_int_equal(keel_store_mirror_next(t, 0, 8, e, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(e[0].uid, "u2");
	assert_string_equal(e[1].uid, "u1");
	/* The cascade still takes an object's attributes with it. */
	assert_int_equal(keel_store_object_delete(t, "u2"), 0);
	check_attrs(t, "u2", NULL, 0);
	assert_int_equal(keel_store_commit(t), 0);
	keel_store_close(s);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v10_store_migrates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
