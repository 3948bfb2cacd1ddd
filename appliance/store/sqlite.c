/*
 * The SQLite backend of store.h.
 *
 * Durability: WAL journal, and keel_store_commit returns only once the WAL
 * holding the transaction is fsynced, so a response sent afterwards survives
 * power loss. The fsyncs are shared between transactions (group commit,
 * below) rather than one per COMMIT (synchronous=FULL).
 *
 * Threads: SQLite lets one writer in at a time; within keeld, writers queue
 * for a turn (struct sq_batch) rather than on SQLite's lock, because a
 * writer SQLite turns away waits in its busy handler by sleeping 1, 2, 5...
 * up to 100 ms and retrying, which under load cost more than the
 * transactions themselves. Every writing transaction runs on one connection
 * (conns[0]), held with the turn: a connection's page cache is dropped whenever another connection
 * has written, so writers spread over a pool re-read their pages on every
 * transaction (issue 7). The turn is passed on at COMMIT, before the wait
 * for the fsync, so the next transaction runs while the previous ones are
 * being made durable. Read-only transactions take a connection from a pool
 * (conns[1..]) and read a WAL snapshot in parallel. The busy timeout remains
 * for other processes (keelctl) opening the same file.
 *
 * Group transactions. A request's COMMIT cost about as much as the request:
 * each wrote the same dozen-odd B-tree pages (audit, its indexes,
 * sqlite_sequence...) to the WAL again. So the writers' turn's holder does
 * not COMMIT while others wait for the turn: each request runs in a
 * savepoint of its own ("member") of one open transaction, RELEASEd when it
 * keeps its work, and the group's last part (no one waiting, or GROUP_MAX
 * parts, or GROUP_MAX_NS since its first ended) COMMITs for everyone,
 * passes the turn on, waits for the fsync (group commit, below) and then
 * wakes the members: a request is answered only once its work is durable,
 * and a keel_store_commit caller's after-commit work (mirror wake-ups,
 * rotation, metrics) still follows durability. A request that fails undoes
 * its savepoint alone. A COMMIT that fails, or a transaction SQLite rolled
 * back by itself (I/O error, full disk: sqlite3_get_autocommit turns true),
 * fails every member; no statement runs on the writers' connection after
 * such a loss (sq_stmt), so nothing of a group can commit piecemeal. One
 * writer alone finds no one waiting and commits at once. Read-only
 * transactions see committed groups only.
 *
 * Flat combining (combine). Handing the turn from thread to thread cost a
 * wake-up per request (~30 µs on a busy 2-core machine, as much as a
 * quarter of a Get). So a keel_store_run request queues its function, and
 * the turn's holder runs the queued ones itself, one after another, on its
 * own thread; it hands the turn to another thread only when the group is
 * closed (one wake-up per group), or to a keel_store_begin caller, whose
 * part runs on its own thread in the open group. Each thread sleeps once,
 * on its own semaphore, from queueing to its outcome (or to its turn). A
 * restore takes the turn with no group open.
 *
 * The flusher. Work submitted without waiting (keel_store_submit: a
 * protocol-only request's audit rows) is only queued, even when no one holds
 * the turn: the next thread to take the turn runs it first in its group, so
 * that a vCenter task's Discover Versions row rides in its Get's COMMIT
 * rather than costing a transaction of its own (docs/benchmarks.md). Should
 * no one take the turn within FLUSH_NS, a thread of the store's own, the
 * flusher, takes it, commits that work and waits for its fsync. It sleeps
 * untimed once a whole FLUSH_NS passed with no such work (an idle keeld is
 * not woken periodically); while work keeps coming it looks every FLUSH_NS
 * rather than being woken for each. keel_store_close has it run what is
 * still queued.
 *
 * Group commit. Connections run with synchronous=NORMAL: COMMIT appends the
 * transaction to the WAL with write() and does not fsync. A writing
 * transaction is numbered once its COMMIT has returned, and its closer waits
 * until an fsync that began after that has succeeded. The first waiter while
 * no fsync runs leads one, through |sync_db|'s WAL handle (a connection only
 * leaders use, one at a time); commits that land meanwhile wait for the next
 * round, which one of them leads. So all the commits that land during one
 * fsync share the next one.
 * - Every connection writes the same WAL file, and fsync flushes a file, not
 *   a descriptor: one fsync covers every COMMIT that returned before it.
 *   |sync_db|'s handle stays that file: SQLite deletes a WAL only when the
 *   last connection to the database closes, and |sync_db| is one of them.
 * - A checkpoint (NORMAL runs it inside COMMIT) syncs the WAL before it
 *   copies pages and the database after: it neither loses frames nor needs
 *   ours.
 * - A writer reads only what earlier writers committed, and those were
 *   numbered before it (by the writers' turn's holder), so its
 *   acknowledgement waits for them too. Read-only transactions (management
 *   reads) do not wait: they may show a change a moment before it is durable.
 * - After a failed fsync the kernel may have dropped the dirty pages, and a
 *   later fsync can succeed without them (PostgreSQL's "fsyncgate"), so no
 *   commit is acknowledged any more once one has failed.
 *
 * SQLITE_* codes are translated here and nowhere else (STYLE.md); the audit
 * trail (sqlite_audit.c) and grants (sqlite_grants.c) share these helpers
 * through sqlite_int.h.
 */
#include "sqlite_int.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/metrics.h"
#include "log.h"

#define BUSY_TIMEOUT_MS 10000
#define GROUP_MAX	32	 /* requests in one group transaction, at most */
#define GROUP_MAX_NS	5000000u /* nor keep its first member waiting over 5 ms */
/*
 * How long submitted work may wait for a writer before the flusher commits
 * it: long enough that under load a writer nearly always comes first. A
 * group's fsync leaves the turn free while its requests wait for it; at 5
 * ms the flusher thread took 5-20 us of CPU per vcenter-task (754-1,695
 * wake-ups per 3,000 tasks, committing rows that the next Get would have),
 * at 20 ms 1.5-2.4 us (214-273: its looks every FLUSH_NS), docs/
 * benchmarks.md. On a quiet appliance the rows are committed 20 ms later.
 */
#define FLUSH_NS 20000000u

/*
 * Migrations, in order; step N brings the schema to version N (KEEL's first
 * release is version 1). Never edit a released step: append a new one.
 */
static const char *const migrations[] = {
    /* 1: objects, attributes, audit. */
    "CREATE TABLE objects ("
    " uid TEXT PRIMARY KEY NOT NULL,"
    " owner TEXT NOT NULL,"
    " object_type INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " crk_version INTEGER NOT NULL DEFAULT 0,"
    " blob BLOB,"
    " initial_date INTEGER NOT NULL DEFAULT 0,"
    " activation_date INTEGER NOT NULL DEFAULT 0,"
    " deactivation_date INTEGER NOT NULL DEFAULT 0,"
    " destroy_date INTEGER NOT NULL DEFAULT 0,"
    " compromise_date INTEGER NOT NULL DEFAULT 0,"
    " compromise_occurrence_date INTEGER NOT NULL DEFAULT 0,"
    " last_change_date INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX objects_owner ON objects(owner, object_type, state);"
    "CREATE INDEX objects_crk ON objects(crk_version);"
    "CREATE TABLE attributes ("
    " uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " idx INTEGER NOT NULL,"
    " value BLOB NOT NULL,"
    " text_value TEXT,"
    " PRIMARY KEY (uid, name, idx));"
    "CREATE INDEX attributes_by_text ON attributes(name, text_value)"
    " WHERE text_value IS NOT NULL;"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time INTEGER NOT NULL,"
    " client TEXT NOT NULL,"
    " operation INTEGER NOT NULL,"
    " uid TEXT,"
    " result_status INTEGER NOT NULL,"
    " result_reason INTEGER NOT NULL);"
    "CREATE INDEX audit_uid ON audit(uid);",
    /* 2: the progress of a CRK rotation, so that a restart resumes it. */
    "CREATE TABLE crk_rotation ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " target INTEGER NOT NULL,"
    " started INTEGER NOT NULL,"
    " finished INTEGER NOT NULL,"
    " total INTEGER NOT NULL,"
    " done INTEGER NOT NULL,"
    " cursor INTEGER NOT NULL);",
    /* 3: grants (engine/manage.h). uid '' grants every object of owner. A
     * grant on one object goes with the object. */
    "CREATE TABLE grants ("
    " owner TEXT NOT NULL,"
    " uid TEXT NOT NULL,"
    " grantee TEXT NOT NULL,"
    " level INTEGER NOT NULL,"
    " granted_by TEXT NOT NULL,"
    " time INTEGER NOT NULL,"
    " PRIMARY KEY (grantee, owner, uid));"
    "CREATE INDEX grants_by_owner ON grants(owner, uid);"
    "CREATE TRIGGER grants_follow_objects AFTER DELETE ON objects"
    " BEGIN DELETE FROM grants WHERE uid = old.uid; END;",
    /* 4: the audit hash chain (store.h, keel_store_audit_append): rows so far
     * are chained by sq_audit_chain_existing as part of this step. */
    "ALTER TABLE audit ADD COLUMN detail TEXT;"
    "ALTER TABLE audit ADD COLUMN hash BLOB;"
    "CREATE INDEX audit_time ON audit(time);",
    /* 5: the Key Protect mirror's outbox (store.h, keel_store_mirror_*). While
     * mirror_state.enabled, triggers leave one entry per changed object in the
     * changing transaction itself: op 1 (escrow) while it exists, 2 (delete)
     * once it is gone; a later change replaces the entry with a higher seq.
     * A CRK rewrap (crk_version changes) changes nothing escrowed. Writes go
     * through the view mirror_enqueue, whose INSTEAD OF trigger numbers them. */
    "CREATE TABLE mirror_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " enabled INTEGER NOT NULL,"
    " next_seq INTEGER NOT NULL);"
    "INSERT INTO mirror_state VALUES (1, 0, 1);"
    "CREATE TABLE mirror_outbox ("
    " uid TEXT PRIMARY KEY NOT NULL,"
    " op INTEGER NOT NULL,"
    " seq INTEGER NOT NULL UNIQUE,"
    " time INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE VIEW mirror_enqueue AS SELECT uid, op FROM mirror_outbox WHERE 0;"
    "CREATE TRIGGER mirror_enqueue_row INSTEAD OF INSERT ON mirror_enqueue"
    " WHEN (SELECT enabled FROM mirror_state) = 1 BEGIN"
    "  INSERT INTO mirror_outbox (uid, op, seq, time)"
    "   SELECT new.uid, new.op, next_seq, CAST(strftime('%s', 'now') AS INTEGER)"
    "   FROM mirror_state WHERE id = 1"
    "   ON CONFLICT (uid) DO UPDATE SET op = excluded.op, seq = excluded.seq,"
    "    time = excluded.time, attempts = 0;"
    "  UPDATE mirror_state SET next_seq = next_seq + 1;"
    " END;"
    "CREATE TRIGGER mirror_object_insert AFTER INSERT ON objects"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;"
    "CREATE TRIGGER mirror_object_update AFTER UPDATE ON objects"
    " WHEN new.crk_version = old.crk_version"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;"
    "CREATE TRIGGER mirror_object_delete AFTER DELETE ON objects"
    " BEGIN INSERT INTO mirror_enqueue VALUES (old.uid, 2); END;"
    "CREATE TRIGGER mirror_attribute_insert AFTER INSERT ON attributes"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;"
    "CREATE TRIGGER mirror_attribute_update AFTER UPDATE ON attributes"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;"
    /* An object's own deletion removes its attributes too: not an escrow. */
    "CREATE TRIGGER mirror_attribute_delete AFTER DELETE ON attributes"
    " WHEN EXISTS (SELECT 1 FROM objects WHERE uid = old.uid)"
    " BEGIN INSERT INTO mirror_enqueue VALUES (old.uid, 1); END;",
    /* 6: the client registry (store.h, keel_store_client_*): pinned client
     * certificates with their role, and trusted CAs (role 'ca'). */
    "CREATE TABLE clients ("
    " fingerprint TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK (role IN ('kmip', 'admin', 'auditor', 'ca')),"
    " pem TEXT NOT NULL,"
    " added INTEGER NOT NULL);",
    /* 7: the mirrored Key Protect root key (store.h, keel_store_mirror_root_*). */
    "ALTER TABLE mirror_state ADD COLUMN root_key_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE mirror_state ADD COLUMN root_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE mirror_state ADD COLUMN root_mode INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE mirror_state ADD COLUMN crk_version INTEGER NOT NULL DEFAULT 0;",
    /* 8: when the root key's deletion crypto-shredded the appliance (0: never). */
    "ALTER TABLE mirror_state ADD COLUMN shredded INTEGER NOT NULL DEFAULT 0;",
    /* 9: a Destroy (blob gone, crk_version 0) is escrowed too: migration 5's
     * update trigger took every crk_version change for a CRK rewrap. */
    "DROP TRIGGER mirror_object_update;"
    "CREATE TRIGGER mirror_object_update AFTER UPDATE ON objects"
    " WHEN new.crk_version = old.crk_version OR new.blob IS NULL"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;",
    /* 10: the first administrator's one-time enrolment codes (store.h,
     * keel_store_enrolment_*): a verifier, never the code. */
    "CREATE TABLE enrolment ("
    " verifier TEXT PRIMARY KEY NOT NULL,"
    " expires INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " used INTEGER NOT NULL DEFAULT 0);",
    /* 11: attributes kept in their primary key's B-tree (WITHOUT ROWID): a
     * row is one B-tree entry, not a row plus an index entry (docs/
     * benchmarks.md, "Index review"). seq keeps the order in which an
     * object's rows were added, which rowid used to give. The mirror's
     * triggers test mirror_state.enabled themselves, so that without a
     * mirror a changed row runs one trigger program, not two. */
    "CREATE TABLE attributes_v11 ("
    " uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " idx INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " value BLOB NOT NULL,"
    " text_value TEXT,"
    " PRIMARY KEY (uid, name, idx)) WITHOUT ROWID;"
    "INSERT INTO attributes_v11 (uid, name, idx, seq, value, text_value)"
    " SELECT uid, name, idx, rowid, value, text_value FROM attributes;"
    "DROP TABLE attributes;"
    "ALTER TABLE attributes_v11 RENAME TO attributes;"
    "CREATE INDEX attributes_by_text ON attributes(name, text_value)"
    " WHERE text_value IS NOT NULL;"
    "CREATE TRIGGER mirror_attribute_insert AFTER INSERT ON attributes"
    " WHEN (SELECT enabled FROM mirror_state) = 1"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;"
    "CREATE TRIGGER mirror_attribute_update AFTER UPDATE ON attributes"
    " WHEN (SELECT enabled FROM mirror_state) = 1"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;"
    "CREATE TRIGGER mirror_attribute_delete AFTER DELETE ON attributes"
    " WHEN (SELECT enabled FROM mirror_state) = 1"
    " AND EXISTS (SELECT 1 FROM objects WHERE uid = old.uid)"
    " BEGIN INSERT INTO mirror_enqueue VALUES (old.uid, 1); END;"
    "DROP TRIGGER mirror_object_insert;"
    "CREATE TRIGGER mirror_object_insert AFTER INSERT ON objects"
    " WHEN (SELECT enabled FROM mirror_state) = 1"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;"
    "DROP TRIGGER mirror_object_update;"
    "CREATE TRIGGER mirror_object_update AFTER UPDATE ON objects"
    " WHEN (SELECT enabled FROM mirror_state) = 1"
    " AND (new.crk_version = old.crk_version OR new.blob IS NULL)"
    " BEGIN INSERT INTO mirror_enqueue VALUES (new.uid, 1); END;"
    "DROP TRIGGER mirror_object_delete;"
    "CREATE TRIGGER mirror_object_delete AFTER DELETE ON objects"
    " WHEN (SELECT enabled FROM mirror_state) = 1"
    " BEGIN INSERT INTO mirror_enqueue VALUES (old.uid, 2); END;",
    /* 12: the audit rows by object, indexed in batches rather than row by
     * row (sqlite_audit.c, "By object"): audit_uid put every Get's entry in
     * its key's leaf, half the pages a group of Gets wrote (docs/
     * benchmarks.md, "The group commit's pages"). Rows up to upto are in
     * audit_by_uid; later ones are found by a scan of the tail. */
    "CREATE TABLE audit_by_uid ("
    " uid TEXT NOT NULL,"
    " id INTEGER NOT NULL,"
    " PRIMARY KEY (uid, id)) WITHOUT ROWID;"
    "INSERT INTO audit_by_uid SELECT uid, id FROM audit WHERE uid IS NOT NULL;"
    "CREATE TABLE audit_uid_mark ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " upto INTEGER NOT NULL);"
    "INSERT INTO audit_uid_mark SELECT 1, COALESCE(MAX(id), 0) FROM audit;"
    "DROP INDEX IF EXISTS audit_uid;",
};

/* Steps that SQL alone cannot do, run in the step's transaction after its SQL. */
static const struct {
	int version;
	int (*fn)(sqlite3 *db);
} migration_code[] = {
    {4, sq_audit_chain_existing},
};
#define NUM_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The one translation of SQLite's result codes. */
int sq_err(sqlite3 *db, int rc, const char *what)
{
	int primary = rc & 0xff;

	if (primary == SQLITE_OK || primary == SQLITE_DONE || primary == SQLITE_ROW) {
		return 0;
	}
	keel_err("store: %s: %s (%d)", what, db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
		 rc);
	switch (primary) {
	case SQLITE_CONSTRAINT:
		return KEEL_STORE_E_EXISTS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return KEEL_STORE_E_BUSY;
	case SQLITE_NOMEM:
		return KEEL_STORE_E_NOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_SCHEMA:
		return KEEL_STORE_E_SCHEMA;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return KEEL_STORE_E_INVAL;
	default:
		return KEEL_STORE_E_IO;
	}
}

int sq_exec(sqlite3 *db, const char *sql)
{
	return sq_err(db, sqlite3_exec(db, sql, NULL, NULL, NULL), sql);
}

int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
	return sq_err(db, sqlite3_prepare_v3(db, sql, -1, 0, out, NULL), sql);
}

/* ---- Statement cache (sqlite_int.h) ------------------------------------- */

/* FNV-1a: tells the cached statements apart before strcmp confirms. */
static uint32_t sql_hash(const char *sql)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++) {
		h = (h ^ *p) * 16777619u;
	}
	return h;
}

/* A slot for a new statement: a free one, else the least recently used idle one. */
static struct sq_cached *cache_slot(struct sq_txn *t)
{
	struct sq_cached *lru = NULL;

	if (t->num_cached < SQ_CACHE_MAX) {
		return &t->cache[t->num_cached++];
	}
	for (unsigned i = 0; i < SQ_CACHE_MAX; i++) {
		if (!t->cache[i].busy && (lru == NULL || t->cache[i].used < lru->used)) {
			lru = &t->cache[i];
		}
	}
	if (lru != NULL) {
		sqlite3_finalize(lru->st);
		memset(lru, 0, sizeof(*lru));
	}
	return lru;
}

int sq_stmt(struct sq_txn *t, const char *sql, sqlite3_stmt **out)
{
	uint32_t h = sql_hash(sql);
	struct sq_cached *c;
	int r;

	/* SQLite rolled the group back (I/O error, full disk): what follows
	 * would commit on its own, outside the group that is to fail. */
	if (t->grouped && sqlite3_get_autocommit(t->db)) {
		keel_err("store: the transaction is gone; refusing %s", sql);
		return KEEL_STORE_E_IO;
	}
	for (unsigned i = 0; i < t->num_cached; i++) {
		c = &t->cache[i];
		if (c->hash == h && !c->busy && strcmp(sqlite3_sql(c->st), sql) == 0) {
			goto found;
		}
	}
	if ((r = sq_err(t->db,
			sqlite3_prepare_v3(t->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL),
			sql)) != 0) {
		return r;
	}
	if (*out == NULL) { /* no statement in |sql| */
		return KEEL_STORE_E_INVAL;
	}
	if ((c = cache_slot(t)) == NULL) {
		return 0; /* every slot in use: sq_stmt_done finalizes this one */
	}
	c->hash = h;
	c->st = *out;
found:
	c->busy = true;
	c->used = ++t->uses;
	*out = c->st;
	return 0;
}

void sq_stmt_done(struct sq_txn *t, sqlite3_stmt *st)
{
	for (unsigned i = 0; st != NULL && i < t->num_cached; i++) {
		if (t->cache[i].st == st) {
			/* Reset ends its read of the snapshot; the bindings point
			 * into the caller's memory, which may be freed next. */
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			t->cache[i].busy = false;
			return;
		}
	}
	sqlite3_finalize(st);
}

static void cache_clear(struct sq_txn *t)
{
	for (unsigned i = 0; i < t->num_cached; i++) {
		sqlite3_finalize(t->cache[i].st);
	}
	memset(t->cache, 0, sizeof(t->cache));
	t->num_cached = 0;
}

int sq_step_done(struct sq_txn *t, sqlite3_stmt *st, const char *what)
{
	int r = sq_err(t->db, sqlite3_step(st), what);

	sq_stmt_done(t, st);
	return r;
}

int sq_run(struct sq_txn *t, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t, sql, &st)) != 0) {
		return r;
	}
	return sq_step_done(t, st, sql);
}

static int read_version(sqlite3 *db, int *out_version)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_prepare(db, "SELECT MAX(version) FROM schema_version", &st)) != 0) {
		goto out;
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = sq_err(db, sqlite3_errcode(db), "reading schema_version");
		r = r != 0 ? r : KEEL_STORE_E_SCHEMA;
		goto out;
	}
	*out_version = sqlite3_column_int(st, 0);
out:
	sqlite3_finalize(st);
	return r;
}

/* One step and its version row, atomically. */
static int migrate_step(sqlite3 *db, int version)
{
	char sql[96];
	int r;

	if ((r = sq_exec(db, "BEGIN IMMEDIATE")) != 0) {
		return r;
	}
	snprintf(sql, sizeof(sql), "INSERT INTO schema_version(version) VALUES (%d)", version);
	r = sq_exec(db, migrations[version - 1]);
	for (size_t i = 0; r == 0 && i < sizeof(migration_code) / sizeof(migration_code[0]); i++) {
		if (migration_code[i].version == version) {
			r = migration_code[i].fn(db);
		}
	}
	if (r != 0 || (r = sq_exec(db, sql)) != 0) {
		(void)sq_exec(db, "ROLLBACK");
		return r;
	}
	if ((r = sq_exec(db, "COMMIT")) == 0) {
		keel_info("store: schema migrated to version %d", version);
	}
	return r;
}

/* Brings the schema up to date; refuses a database newer than this program. */
static int migrate(sqlite3 *db)
{
	int version = 0, r;

	if ((r = sq_exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
			     " version INTEGER PRIMARY KEY NOT NULL,"
			     " applied INTEGER NOT NULL DEFAULT (strftime('%s','now')))")) != 0 ||
	    (r = read_version(db, &version)) != 0) {
		return r;
	}
	if (version > NUM_MIGRATIONS) {
		keel_err("store: database schema version %d is newer than this keeld (%d)", version,
			 NUM_MIGRATIONS);
		return KEEL_STORE_E_SCHEMA;
	}
	/* An upgrade rewrites tables: about 90 s per million objects (docs/
	 * benchmarks.md, migration 11), before keeld answers anything. Say so
	 * first, so that an operator watching the journal does not stop it. */
	if (version > 0 && version < NUM_MIGRATIONS) {
		keel_notice("store: upgrading the schema from version %d to %d; on a large store "
			    "this takes minutes (a stop rolls the step back, nothing is lost)",
			    version, NUM_MIGRATIONS);
	}
	for (int v = version + 1; v <= NUM_MIGRATIONS && r == 0; v++) {
		r = migrate_step(db, v);
	}
	return r;
}

/* PRAGMA quick_check answers one row "ok" for a sound database, else rows
 * naming what is wrong; the first one is logged, for |what|. */
static int quick_check(sqlite3 *db, const char *what)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *row = NULL;
	int r;

	if ((r = sq_prepare(db, "PRAGMA quick_check", &st)) != 0) {
		return KEEL_STORE_E_SCHEMA;
	}
	if (sqlite3_step(st) != SQLITE_ROW || (row = sqlite3_column_text(st, 0)) == NULL ||
	    strcmp((const char *)row, "ok") != 0) {
		keel_err("store: %s fails its integrity check: %s", what,
			 row != NULL ? (const char *)row : sqlite3_errmsg(db));
		r = KEEL_STORE_E_SCHEMA;
	}
	sqlite3_finalize(st);
	return r;
}

/* Opens one connection with the settings every transaction relies on. */
static int open_conn(const char *path, sqlite3 **out_db)
{
	sqlite3 *db = NULL;
	int r;

	r = sq_err(NULL,
		   sqlite3_open_v2(path, &db,
				   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				       SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
				   NULL),
		   path);
	/* SQLite falls back to reading a file it cannot write: keeld must not
	 * start on a store whose every write would fail. */
	if (r == 0 && sqlite3_db_readonly(db, "main") != 0) {
		keel_err("store: %s is read-only (file or file system)", path);
		r = KEEL_STORE_E_IO;
	}
	if (r == 0) {
		r = sq_err(db, sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS), "busy_timeout");
	}
	/* temp_store: SQLite's transient files (statement journals, sorters)
	 * stay in memory rather than in /var/tmp, where a third of Creates made,
	 * unlinked and closed one, and where rows would reach the disk in clear. */
	if (r == 0 && (r = sq_exec(db, "PRAGMA journal_mode=WAL")) == 0 &&
	    (r = sq_exec(db, "PRAGMA synchronous=NORMAL")) == 0 && /* see "Group commit" */
	    (r = sq_exec(db, "PRAGMA temp_store=MEMORY")) == 0) {
		r = sq_exec(db, "PRAGMA foreign_keys=ON");
	}
	if (r != 0) {
		sqlite3_close(db);
		return r;
	}
	*out_db = db;
	return 0;
}

static const struct keel_store_ops sq_ops;
static void attr_cache_clear(struct sq_txn *t);
static int start_flusher(struct sq_store *q);
static void stop_flusher(struct sq_store *q);

/* fsync of the WAL that |db| writes, through SQLite's own handle of it. */
static int sync_wal(sqlite3 *db)
{
	sqlite3_file *wal = NULL;
	int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);

	if (rc != SQLITE_OK || wal == NULL || wal->pMethods == NULL) {
		keel_err("store: no write-ahead log to sync");
		return KEEL_STORE_E_IO;
	}
	/* the error is the file's, not |db|'s: sqlite3_errmsg would say "not an error" */
	return sq_err(NULL, wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL), "fsync of the WAL");
}

/* Numbers a commit whose COMMIT has returned; called by the writers' turn's holder. */
static uint64_t count_commit(struct sq_group *g)
{
	uint64_t n;

	pthread_mutex_lock(&g->lock);
	n = ++g->commits;
	pthread_mutex_unlock(&g->lock);
	return n;
}

/*
 * The waiters an fsync's end wakes: those it covers (all, once one failed)
 * and the first it does not, who leads the next fsync. Waking them all
 * woke the uncovered too, only to sleep again: a third of the group closes
 * of a Get load (docs/benchmarks.md, "The group commit's pages").
 */
static struct sq_waiter *detach_woken(struct sq_group *g)
{
	struct sq_waiter *out = NULL, **p = &g->waiters, *w;
	bool leader = false, covered;

	while ((w = *p) != NULL) {
		covered = g->failed || w->n <= g->covered;
		if (covered || !leader) {
			leader = leader || !covered;
			*p = w->next;
			w->next = out;
			out = w;
		} else {
			p = &w->next;
		}
	}
	g->tail = p;
	return out;
}

/* One fsync of what has committed so far, then its waiters woken; g->lock held. */
static void lead_sync(struct sq_group *g, sqlite3 *db)
{
	uint64_t upto = g->commits; /* every one of them has returned from COMMIT */
	struct sq_waiter *w, *next;
	int r;

	g->running = true;
	pthread_mutex_unlock(&g->lock);
	r = sync_wal(db);
	pthread_mutex_lock(&g->lock);
	g->running = false;
	g->covered = r == 0 ? upto : g->covered;
	if (r != 0 && !g->failed) {
		g->failed = true;
		keel_err("store: fsync failed: no further commit is acknowledged");
	}
	w = detach_woken(g);
	pthread_mutex_unlock(&g->lock);
	for (; w != NULL; w = next) {
		next = w->next; /* |w| may be gone once posted */
		sem_post(&w->woken);
	}
	pthread_mutex_lock(&g->lock);
}

/* Returns once an fsync covering commit number |n| has succeeded; |db| is the caller's. */
static int wait_durable(struct sq_group *g, sqlite3 *db, uint64_t n)
{
	struct sq_waiter w = {.n = n};
	int r;

	(void)sem_init(&w.woken, 0, 0);
	pthread_mutex_lock(&g->lock);
	while (g->covered < n && !g->failed) {
		if (!g->running) {
			lead_sync(g, db);
			continue;
		}
		w.next = NULL;
		*g->tail = &w;
		g->tail = &w.next;
		pthread_mutex_unlock(&g->lock);
		while (sem_wait(&w.woken) != 0) {
			/* EINTR */
		}
		pthread_mutex_lock(&g->lock);
	}
	r = g->covered >= n ? 0 : KEEL_STORE_E_IO;
	pthread_mutex_unlock(&g->lock);
	sem_destroy(&w.woken);
	return r;
}

static void sq_close(struct keel_store *s)
{
	struct sq_store *q = (struct sq_store *)s;

	stop_flusher(q); /* it commits what is still queued */
	for (unsigned i = 0; q->conns != NULL && i <= q->num_conns; i++) {
		cache_clear(&q->conns[i]);
		attr_cache_clear(&q->conns[i]);
		sqlite3_close(q->conns[i].db);
	}
	free(q->conns);
	sqlite3_close(q->sync_db);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->freed);
	pthread_mutex_destroy(&q->head_lock);
	pthread_mutex_destroy(&q->batch.lock);
	pthread_cond_destroy(&q->batch.pending);
	pthread_mutex_destroy(&q->group.lock);
	free(q);
}

int keel_store_open_sqlite(const char *path, unsigned num_conns, struct keel_store **out_store)
{
	struct sq_store *q = calloc(1, sizeof(*q));
	pthread_condattr_t monotonic;
	int r = KEEL_STORE_E_NOMEM;

	if (q == NULL) {
		return r;
	}
	q->base.ops = &sq_ops;
	q->num_conns = num_conns != 0 ? num_conns : 4;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->freed, NULL);
	pthread_mutex_init(&q->head_lock, NULL);
	pthread_mutex_init(&q->batch.lock, NULL);
	/* the flusher's deadlines are keel_metrics_now_ns()'s */
	pthread_condattr_init(&monotonic);
	pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
	pthread_cond_init(&q->batch.pending, &monotonic);
	pthread_condattr_destroy(&monotonic);
	q->batch.tail = &q->batch.queue;
	q->batch.flush_ns = FLUSH_NS;
	q->batch.group_ns = GROUP_MAX_NS;
	pthread_mutex_init(&q->group.lock, NULL);
	q->group.tail = &q->group.waiters;
	if ((q->conns = calloc(q->num_conns + 1, sizeof(*q->conns))) == NULL) {
		goto out;
	}
	for (unsigned i = 0; i <= q->num_conns; i++) {
		q->conns[i].base.store = &q->base;
		if ((r = open_conn(path, &q->conns[i].db)) != 0 ||
		    (i == 0 && (r = quick_check(q->conns[0].db, path)) != 0) ||
		    (i == 0 && (r = migrate(q->conns[0].db)) != 0)) {
			goto out;
		}
	}
	if ((r = open_conn(path, &q->sync_db)) != 0 ||
	    (r = wait_durable(&q->group, q->sync_db, count_commit(&q->group))) != 0 ||
	    (r = start_flusher(q)) != 0) {
		goto out;
	}
	*out_store = &q->base;
	q = NULL;
out:
	if (q != NULL) {
		sq_close(&q->base);
	}
	return r;
}

static int sq_schema_version(struct keel_store *s, int *out_version)
{
	struct keel_store_txn *t;
	int r;

	if ((r = keel_store_begin(s, &t)) != 0) {
		return r;
	}
	r = read_version(((struct sq_txn *)t)->db, out_version);
	keel_store_rollback(t);
	return r;
}

static struct sq_txn *take_conn(struct sq_store *q)
{
	struct sq_txn *t = NULL;

	pthread_mutex_lock(&q->lock);
	while (t == NULL) {
		for (unsigned i = 1; i <= q->num_conns && t == NULL; i++) {
			if (!q->conns[i].busy) {
				t = &q->conns[i];
				t->busy = true;
			}
		}
		if (t == NULL) {
			pthread_cond_wait(&q->freed, &q->lock);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return t;
}

/* Hands back a reader's connection. */
static void give_conn(struct sq_txn *t)
{
	struct sq_store *q = (struct sq_store *)t->base.store;

	pthread_mutex_lock(&q->lock);
	t->busy = false;
	pthread_cond_signal(&q->freed);
	pthread_mutex_unlock(&q->lock);
}

/* ---- Group transactions ------------------------------------------------- */

static void member_init(struct sq_member *m, keel_store_member_fn fn, void *arg, bool alone)
{
	*m = (struct sq_member){.fn = fn, .arg = arg, .alone = alone};
	(void)sem_init(&m->done, 0, 0); /* fails only for a value above SEM_VALUE_MAX */
}

static void member_wait(struct sq_member *m)
{
	while (sem_wait(&m->done) != 0) {
		/* EINTR: a signal handler ran; no other error for a valid semaphore */
	}
}

/* Wakes |m|'s thread with its outcome, or frees a detached |m| (no thread
 * waits for it: a loss is logged here); |m| may be gone on return. */
static void member_post(struct sq_member *m, int result)
{
	if (m->detached) {
		if (result != 0) {
			keel_err("store: work submitted without waiting was lost: %s (%d)",
				 keel_store_strerror(result), result);
		}
		sem_destroy(&m->done);
		free(m);
		return;
	}
	m->result = result;
	sem_post(&m->done);
}

static void run_pending(struct sq_store *q);

/*
 * The writers' turn, and conns[0], for |m|'s thread: at once if no one
 * holds it, else once the holders before have handed it on, in order.
 * False when a holder ran |m| (a keel_store_run member) meanwhile: its
 * outcome is in |m->result|. Taken free, the turn comes with the detached
 * work queued meanwhile (the flusher's), run first in the group but by a
 * restore, which leaves it queued for after its image.
 */
static bool take_turn(struct sq_store *q, struct sq_member *m)
{
	struct sq_batch *b = &q->batch;
	bool held;

	pthread_mutex_lock(&b->lock);
	held = b->held;
	b->held = true;
	if (held) {
		*b->tail = m;
		b->tail = &m->next;
	}
	pthread_mutex_unlock(&b->lock);
	if (held) {
		member_wait(m);
		if (!m->turn) {
			return false;
		}
	}
	q->conns[0].writer = true;
	if (!held && !m->alone) {
		run_pending(q);
	}
	return true;
}

/* Which of the queue's first member dequeue takes. */
enum sq_next {
	SQ_ANY,	     /* any: the turn is free if the queue is empty */
	SQ_JOINER,   /* one that may join the open group (not a restore) */
	SQ_DETACHED, /* detached work */
};

/* The first member queued for the turn, out of the queue, if it is |want|'s. */
static struct sq_member *dequeue(struct sq_batch *b, enum sq_next want)
{
	struct sq_member *m;

	pthread_mutex_lock(&b->lock);
	m = b->queue;
	if (m != NULL && (want == SQ_ANY || (want == SQ_JOINER && !m->alone) ||
			  (want == SQ_DETACHED && m->detached))) {
		b->queue = m->next;
		b->tail = b->queue != NULL ? b->tail : &b->queue;
	} else {
		m = NULL;
	}
	b->held = b->held && (m != NULL || want != SQ_ANY);
	pthread_mutex_unlock(&b->lock);
	return m;
}

/* Gives the turn to |m|'s thread (posted outside b->lock: woken under it, it
 * would go back to sleep on it). */
static void hand_turn(struct sq_member *m)
{
	m->turn = true;
	sem_post(&m->done);
}

/*
 * The turn to the first thread queued for it, or free. A detached member
 * first in the queue has no thread to take it: it is returned, the turn
 * kept, and the caller runs it (combine).
 */
static struct sq_member *pass_turn(struct sq_batch *b)
{
	struct sq_member *next = dequeue(b, SQ_ANY);

	if (next != NULL && !next->detached) {
		hand_turn(next);
		next = NULL;
	}
	return next;
}

/* The writers' connection as the next group finds it. */
static void writer_reset(struct sq_txn *t)
{
	t->depth = 0;
	t->appended = false;
	t->head.valid = false;
	t->grouped = false;
	t->writer = false;
}

/* Opens a group transaction unless one is open, and this part's savepoint in it. */
static int join_group(struct sq_store *q, struct sq_txn *t)
{
	int r;

	attr_cache_clear(t); /* the previous part's */
	if (!q->batch.open) {
		if ((r = sq_run(t, "BEGIN IMMEDIATE")) != 0) {
			return r;
		}
		q->batch.open = true;
		t->grouped = true;
	}
	return sq_run(t, "SAVEPOINT member");
}

static void count_part(struct sq_batch *b)
{
	if (b->size++ == 0) {
		b->first_ns = keel_metrics_now_ns();
	}
}

/*
 * Undoes the holder's part of the group. Should that fail, the whole
 * transaction goes, so that nothing of the part can be committed.
 */
static void undo_part(struct sq_store *q)
{
	struct sq_txn *t = &q->conns[0];

	t->head.valid = false; /* the audit rows it appended are gone */
	attr_cache_clear(t);
	if (!sqlite3_get_autocommit(t->db) &&
	    (sq_run(t, "ROLLBACK TO member") != 0 || sq_run(t, "RELEASE member") != 0)) {
		(void)sq_run(t, "ROLLBACK");
	}
	count_part(&q->batch);
}

/* Keeps the holder's part in the group; |m| waits for the group's outcome. */
static int keep_part(struct sq_store *q, struct sq_member *m)
{
	struct sq_batch *b = &q->batch;
	int r;

	if ((r = sq_run(&q->conns[0], "RELEASE member")) != 0) {
		undo_part(q);
		return r;
	}
	m->next = b->members;
	b->members = m;
	count_part(b);
	return 0;
}

/* A keel_store_run member, run by the turn's holder in a savepoint of its own. */
static void run_member(struct sq_store *q, struct sq_member *m)
{
	struct sq_txn *t = &q->conns[0];
	int r;

	if ((r = join_group(q, t)) == 0) {
		r = m->fn(&t->base, m->arg);
	}
	if (r == 0) {
		r = keep_part(q, m);
	} else {
		undo_part(q);
	}
	if (r != 0) {
		member_post(m, r); /* nothing of it is left to commit */
	}
}

/*
 * The detached work first in the queue, run by a thread that took the turn
 * free: it was queued before that thread came, so its rows come first.
 */
static void run_pending(struct sq_store *q)
{
	struct sq_member *m;

	while (q->batch.size < GROUP_MAX && (m = dequeue(&q->batch, SQ_DETACHED)) != NULL) {
		run_member(q, m);
	}
}

/* Whether a thread waits for one of |members|: a detached one's does not. */
static bool awaited(const struct sq_member *members)
{
	for (const struct sq_member *m = members; m != NULL; m = m->next) {
		if (!m->detached) {
			return true;
		}
	}
	return false;
}

/*
 * Commits the group (rolls it back if no member kept anything), passes the
 * turn on, waits for the fsync, and only then gives every member the
 * outcome. A transaction that SQLite rolled back by itself (an I/O error, a
 * full disk: autocommit again) fails them all: none is acknowledged. A
 * group of detached members only is not waited for: the next fsync, the
 * next waiting group's, covers it. Returns pass_turn's detached member.
 */
static struct sq_member *close_group(struct sq_store *q)
{
	struct sq_batch *b = &q->batch;
	struct sq_txn *t = &q->conns[0];
	struct sq_member *members = b->members, *next;
	unsigned size = b->size;
	bool lost = sqlite3_get_autocommit(t->db);
	uint64_t n = 0;
	int r = lost ? KEEL_STORE_E_IO : 0;

	if (lost && members != NULL) {
		keel_err(
		    "store: a transaction of %u requests was rolled back; none is acknowledged",
		    size);
	}
	if (r == 0 && members != NULL) {
		r = sq_audit_commit(t);
	}
	if (!sqlite3_get_autocommit(t->db)) { /* nothing kept, or COMMIT failed */
		(void)sq_run(t, "ROLLBACK");
	}
	if (r == 0 && members != NULL) {
		n = count_commit(&q->group);
		keel_metrics_store_group(size);
	}
	writer_reset(t);
	b->members = NULL;
	b->open = false;
	b->size = 0;
	/* The next group runs while this one is made durable (one that a
	 * detached member starts: after, on this thread). */
	next = pass_turn(b);
	if (r == 0 && awaited(members)) {
		r = wait_durable(&q->group, q->sync_db, n);
	}
	/* A member returns, and its |m| is gone, as soon as it is posted. */
	for (struct sq_member *m = members, *after; m != NULL; m = after) {
		after = m->next;
		member_post(m, r);
	}
	return next;
}

/* combine's members in the open group; false once it handed the turn to a begin() caller. */
static bool run_queued(struct sq_store *q)
{
	struct sq_batch *b = &q->batch;
	struct sq_member *m;

	while (!sqlite3_get_autocommit(q->conns[0].db) && b->size < GROUP_MAX &&
	       keel_metrics_now_ns() - b->first_ns < b->group_ns &&
	       (m = dequeue(b, SQ_JOINER)) != NULL) {
		if (m->fn == NULL) {
			hand_turn(m); /* it runs its part on its own thread */
			return false;
		}
		run_member(q, m);
	}
	return true;
}

/*
 * Flat combining: the turn's holder, its own part ended, runs the members
 * queued for the turn one after another in the open group, on its own
 * thread, so that a request costs no thread switch to take the turn (issue
 * 7: ~30 µs of 120 per Get). It stops at a keel_store_begin caller, which
 * it hands the turn with the group still open, or closes the group: no one
 * queued, GROUP_MAX parts, GROUP_MAX_NS since the first ended, the
 * transaction lost, or a restore next. A detached member left first in the
 * queue starts the next group on this thread, so that queued work always
 * has a thread that is still in a store call to run it.
 */
static void combine(struct sq_store *q)
{
	struct sq_member *next;

	while (run_queued(q) && (next = close_group(q)) != NULL) {
		run_member(q, next); /* detached: its group runs on this thread */
	}
}

/* A keel_store_begin caller's commit: its part kept, its group's outcome (close_group). */
static int commit_member(struct sq_store *q)
{
	struct sq_member m;
	int r;

	member_init(&m, NULL, NULL, false);
	r = keep_part(q, &m);
	combine(q);
	if (r == 0) {
		member_wait(&m);
		r = m.result;
	}
	sem_destroy(&m.done);
	return r;
}

/* The writers' turn for a thread that runs its own part: a begin() caller, a restore. */
static struct sq_txn *take_writer(struct sq_store *q, bool alone)
{
	struct sq_member m;

	member_init(&m, NULL, NULL, alone);
	(void)take_turn(q, &m); /* no one runs a part without |fn| for its thread */
	sem_destroy(&m.done);
	return &q->conns[0];
}

/*
 * IMMEDIATE: every request writes at least its audit row, so a group takes
 * the write lock up front. A read-only transaction is DEFERRED: under WAL it
 * reads a snapshot of what groups committed, and never holds the write lock.
 */
static int sq_begin(struct keel_store *s, bool read_only, struct keel_store_txn **out_txn)
{
	struct sq_store *q = (struct sq_store *)s;
	struct sq_txn *t;
	int r;

	if (read_only) {
		t = take_conn(q);
		attr_cache_clear(t); /* as of another snapshot */
		if ((r = sq_run(t, "BEGIN")) != 0) {
			give_conn(t);
			return r;
		}
	} else {
		t = take_writer(q, false);
		if ((r = join_group(q, t)) != 0) {
			undo_part(q);
			combine(q);
			return r;
		}
	}
	*out_txn = &t->base;
	return 0;
}

/* Durable on return (0): see "Group commit" and "Group transactions". */
static int sq_commit(struct keel_store_txn *tb)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	int r;

	if (t->writer) {
		return commit_member((struct sq_store *)tb->store);
	}
	if ((r = sq_audit_commit(t)) != 0 && !sqlite3_get_autocommit(t->db)) {
		(void)sq_run(t, "ROLLBACK");
	}
	give_conn(t);
	return r;
}

static void sq_rollback(struct keel_store_txn *tb)
{
	struct sq_txn *t = (struct sq_txn *)tb;

	if (t->writer) {
		undo_part((struct sq_store *)tb->store);
		combine((struct sq_store *)tb->store);
		return;
	}
	if (!sqlite3_get_autocommit(t->db)) {
		(void)sq_run(t, "ROLLBACK");
	}
	give_conn(t);
}

/*
 * Runs |m|, and the members queued meanwhile, once this thread has the turn
 * (true: |m|'s outcome is still to be waited for); false when a holder ran |m|.
 */
static bool enter(struct sq_store *q, struct sq_member *m)
{
	if (!take_turn(q, m)) {
		return false;
	}
	run_member(q, m);
	combine(q);
	return true;
}

/* keel_store_run: |fn| run by the turn's holder, this thread or another. */
static int sq_run_member(struct keel_store *s, keel_store_member_fn fn, void *arg)
{
	struct sq_member m;

	member_init(&m, fn, arg, false);
	if (enter((struct sq_store *)s, &m)) {
		member_wait(&m);
	}
	sem_destroy(&m.done);
	return m.result;
}

/*
 * Queues detached |m| for the turn's holder, or for the next thread to take
 * it; if none does within FLUSH_NS, the flusher will.
 */
static void queue_detached(struct sq_batch *b, struct sq_member *m)
{
	pthread_mutex_lock(&b->lock);
	if (!b->held && b->queue == NULL) {
		b->since_ns = keel_metrics_now_ns();
		b->arrivals++;
		if (b->flusher_asleep) {
			pthread_cond_signal(&b->pending);
		}
	}
	*b->tail = m;
	b->tail = &m->next;
	pthread_mutex_unlock(&b->lock);
}

/* keel_store_submit: a detached member, its argument copied after it. */
static int sq_submit(struct keel_store *s, keel_store_member_fn fn, const void *arg, size_t arg_len)
{
	const size_t align = alignof(max_align_t);
	size_t head = (sizeof(struct sq_member) + align - 1) / align * align;
	struct sq_member *m;

	if (arg_len > SIZE_MAX - head || (m = malloc(head + arg_len)) == NULL) {
		return KEEL_STORE_E_NOMEM;
	}
	memcpy((uint8_t *)m + head, arg, arg_len);
	member_init(m, fn, (uint8_t *)m + head, false);
	m->detached = true;
	queue_detached(&((struct sq_store *)s)->batch, m);
	return 0;
}

/* ---- The flusher ---------------------------------------------------------- */

/* Sleeps on b->pending (b->lock held) until |deadline_ns|, or a signal. */
static void wait_until(struct sq_batch *b, uint64_t deadline_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
			      .tv_nsec = (long)(deadline_ns % 1000000000u)};

	(void)pthread_cond_timedwait(&b->pending, &b->lock, &ts); /* ETIMEDOUT: due */
}

/* The flusher's turn: the queued detached work in a group of its own, then its fsync. */
static void flush(struct sq_store *q)
{
	uint64_t n;

	q->conns[0].writer = true;
	run_pending(q);
	combine(q);
	pthread_mutex_lock(&q->group.lock);
	n = q->group.commits;
	pthread_mutex_unlock(&q->group.lock);
	(void)wait_durable(&q->group, q->sync_db, n); /* a failed fsync is logged there */
}

/*
 * See "The flusher". Detached work waits in the queue with the turn free
 * from |since_ns| on; the flusher takes the turn FLUSH_NS later (at once
 * when the store closes) unless a holder took it first, then runs it.
 */
static void *flusher_main(void *arg)
{
	struct sq_store *q = arg;
	struct sq_batch *b = &q->batch;
	uint64_t seen = 0;
	bool due;

	pthread_mutex_lock(&b->lock);
	for (;;) {
		due = !b->held && b->queue != NULL;
		if (due && (b->closing || keel_metrics_now_ns() - b->since_ns >= b->flush_ns)) {
			b->held = true;
			pthread_mutex_unlock(&b->lock);
			flush(q);
			pthread_mutex_lock(&b->lock);
			if (b->flushed != NULL) {
				b->flushed(b->flushed_arg);
			}
		} else if (due) {
			wait_until(b, b->since_ns + b->flush_ns);
		} else if (b->closing) {
			break;
		} else if (seen != b->arrivals) { /* busy: look again rather than be woken */
			seen = b->arrivals;
			wait_until(b, keel_metrics_now_ns() + b->flush_ns);
		} else {
			b->flusher_asleep = true;
			pthread_cond_wait(&b->pending, &b->lock);
			b->flusher_asleep = false;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static int start_flusher(struct sq_store *q)
{
	if (pthread_create(&q->flusher, NULL, flusher_main, q) != 0) {
		keel_err("store: cannot start the flusher thread");
		return KEEL_STORE_E_NOMEM;
	}
	q->flusher_started = true;
	return 0;
}

/* Once no call is running: what is still queued is committed before it ends. */
static void stop_flusher(struct sq_store *q)
{
	if (!q->flusher_started) {
		return;
	}
	pthread_mutex_lock(&q->batch.lock);
	q->batch.closing = true;
	pthread_cond_signal(&q->batch.pending);
	pthread_mutex_unlock(&q->batch.lock);
	(void)pthread_join(q->flusher, NULL);
	q->flusher_started = false;
}

void keel_store_sqlite_flusher(struct keel_store *s, uint64_t after_ns, void (*flushed)(void *arg),
			       void *arg)
{
	struct sq_batch *b = &((struct sq_store *)s)->batch;

	pthread_mutex_lock(&b->lock);
	b->flush_ns = after_ns;
	b->flushed = flushed;
	b->flushed_arg = arg;
	pthread_cond_signal(&b->pending); /* a deadline it waits for may have moved */
	pthread_mutex_unlock(&b->lock);
}

void keel_store_sqlite_group_for(struct keel_store *s, uint64_t ns)
{
	struct sq_batch *b = &((struct sq_store *)s)->batch;

	pthread_mutex_lock(&b->lock);
	b->group_ns = ns;
	pthread_mutex_unlock(&b->lock);
}

static int sq_savepoint(struct keel_store_txn *tb, int what)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	int r;

	if (what == KEEL_SP_BEGIN) {
		if ((r = sq_run(t, "SAVEPOINT item")) == 0) {
			t->depth++;
		}
		return r;
	}
	if (t->depth == 0) {
		return KEEL_STORE_E_INVAL;
	}
	if (what == KEEL_SP_ROLLBACK) {
		/* Audit rows of the item may be gone: reread the head at the next
		 * append; attribute rows too: reread them. */
		t->head.valid = false;
		attr_cache_clear(t);
		if ((r = sq_run(t, "ROLLBACK TO item")) != 0) {
			return r;
		}
	}
	t->depth--;
	return sq_run(t, "RELEASE item");
}

/* Binds the columns after uid shared by INSERT and UPDATE, from ?2 on. */
static int bind_object(sqlite3_stmt *st, const struct keel_store_object *o)
{
	const int64_t dates[] = {o->initial_date,      o->activation_date,
				 o->deactivation_date, o->destroy_date,
				 o->compromise_date,   o->compromise_occurrence_date,
				 o->last_change_date};
	int rc = sqlite3_bind_text(st, 1, o->uid, -1, SQLITE_STATIC);

	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 2, o->owner, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, o->object_type);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 4, o->state);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 5, o->crk_version);
	if (rc == SQLITE_OK) {
		rc = o->blob != NULL
			 ? sqlite3_bind_blob64(st, 6, o->blob, o->blob_len, SQLITE_STATIC)
			 : sqlite3_bind_null(st, 6);
	}
	for (int i = 0; i < 7 && rc == SQLITE_OK; i++) {
		rc = sqlite3_bind_int64(st, 7 + i, dates[i]);
	}
	return rc;
}

#define OBJECT_COLS                                                                                \
	"uid, owner, object_type, state, crk_version, blob, initial_date, activation_date,"        \
	" deactivation_date, destroy_date, compromise_date, compromise_occurrence_date,"           \
	" last_change_date"

static int sq_object_put(struct keel_store_txn *tb, const struct keel_store_object *o)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t,
			 "INSERT INTO objects (" OBJECT_COLS ") VALUES "
			 "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
			 &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, bind_object(st, o), "binding object")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	return sq_step_done(t, st, "inserting object");
}

static int sq_object_update(struct keel_store_txn *tb, const struct keel_store_object *o)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t,
			 "UPDATE objects SET state = ?4, crk_version = ?5, blob = ?6,"
			 " initial_date = ?7, activation_date = ?8, deactivation_date = ?9,"
			 " destroy_date = ?10, compromise_date = ?11,"
			 " compromise_occurrence_date = ?12, last_change_date = ?13"
			 " WHERE uid = ?1 AND owner = ?2 AND object_type = ?3",
			 &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, bind_object(st, o), "binding object")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, "updating object")) == 0 && sqlite3_changes(db) == 0) {
		r = KEEL_STORE_E_NOT_FOUND;
	}
	return r;
}

int sq_copy_blob(sqlite3_stmt *st, int col, uint8_t **out, size_t *out_len)
{
	const void *p = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	*out = NULL;
	*out_len = 0;
	if (p == NULL) {
		return 0;
	}
	if ((*out = malloc(n != 0 ? n : 1)) == NULL) {
		return KEEL_STORE_E_NOMEM;
	}
	memcpy(*out, p, n);
	*out_len = n;
	return 0;
}

static int row_to_object(sqlite3_stmt *st, struct keel_store_object *o)
{
	int64_t *dates[] = {&o->initial_date,	   &o->activation_date,
			    &o->deactivation_date, &o->destroy_date,
			    &o->compromise_date,   &o->compromise_occurrence_date,
			    &o->last_change_date};

	memset(o, 0, sizeof(*o));
	snprintf(o->uid, sizeof(o->uid), "%s", (const char *)sqlite3_column_text(st, 0));
	snprintf(o->owner, sizeof(o->owner), "%s", (const char *)sqlite3_column_text(st, 1));
	o->object_type = (uint32_t)sqlite3_column_int64(st, 2);
	o->state = (uint32_t)sqlite3_column_int64(st, 3);
	o->crk_version = (uint32_t)sqlite3_column_int64(st, 4);
	for (int i = 0; i < 7; i++) {
		*dates[i] = sqlite3_column_int64(st, 6 + i);
	}
	return sq_copy_blob(st, 5, &o->blob, &o->blob_len);
}

static int sq_object_get(struct keel_store_txn *tb, const char *uid, const char *owner,
			 struct keel_store_object *out)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "SELECT " OBJECT_COLS " FROM objects WHERE uid = ?1"
			 " AND (?2 IS NULL OR owner = ?2)",
			 &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC), "bind")) != 0 ||
	    (r = sq_err(db, sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC), "bind")) != 0) {
		goto out;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = row_to_object(st, out);
	} else {
		r = rc == SQLITE_DONE ? KEEL_STORE_E_NOT_FOUND : sq_err(db, rc, "reading object");
	}
out:
	sq_stmt_done(t, st);
	return r;
}

static int sq_object_delete(struct keel_store_txn *tb, const char *uid)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t, "DELETE FROM objects WHERE uid = ?1", &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC), "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, "deleting object")) == 0 && sqlite3_changes(db) == 0) {
		r = KEEL_STORE_E_NOT_FOUND;
	}
	return r;
}

static char *dup_text(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s != NULL ? strdup((const char *)s) : NULL;
}

/* Appends the current row to a growing attribute array. */
static int push_attr(sqlite3_stmt *st, struct keel_store_attr **arr, size_t *num, size_t *cap)
{
	struct keel_store_attr *a;

	if (*num == *cap) {
		size_t ncap = *cap != 0 ? *cap * 2 : 8;
		struct keel_store_attr *n = realloc(*arr, ncap * sizeof(*n));

		if (n == NULL) {
			return KEEL_STORE_E_NOMEM;
		}
		*arr = n;
		*cap = ncap;
	}
	a = &(*arr)[*num];
	memset(a, 0, sizeof(*a));
	(*num)++;
	a->name = dup_text(st, 0);
	a->index = sqlite3_column_int(st, 1);
	a->text = dup_text(st, 3);
	if (a->name == NULL || (a->text == NULL && sqlite3_column_type(st, 3) != SQLITE_NULL)) {
		return KEEL_STORE_E_NOMEM;
	}
	return sq_copy_blob(st, 2, &a->value, &a->value_len);
}

/* ---- The attribute cache (struct sq_attr_cache) ---------------------- */

static void attr_cache_clear(struct sq_txn *t)
{
	keel_store_attrs_free(t->attrs.attrs, t->attrs.num);
	free(t->attrs.uid);
	memset(&t->attrs, 0, sizeof(t->attrs));
}

/* Every attribute of |uid|, in the order they were added, into the cache. */
static int attr_cache_fill(struct sq_txn *t, const char *uid)
{
	struct sq_attr_cache *c = &t->attrs;
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r, rc;

	attr_cache_clear(t);
	if ((r = sq_stmt(t,
			 "SELECT name, idx, value, text_value FROM attributes WHERE uid = ?1"
			 " ORDER BY seq",
			 &st)) != 0) {
		return r;
	}
	r = sq_err(t->db, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC), "bind");
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = push_attr(st, &c->attrs, &c->num, &cap);
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sq_err(t->db, rc, "listing attributes");
	}
	sq_stmt_done(t, st);
	if (r == 0 && (c->uid = strdup(uid)) == NULL) {
		r = KEEL_STORE_E_NOMEM;
	}
	if (r != 0) {
		attr_cache_clear(t);
		return r;
	}
	c->changes = sqlite3_total_changes64(t->db);
	return 0;
}

/* Whether the cache holds |uid|'s attributes as they are now. */
static bool attr_cache_fresh(const struct sq_txn *t, const char *uid)
{
	return t->attrs.uid != NULL && strcmp(t->attrs.uid, uid) == 0 &&
	       t->attrs.changes == sqlite3_total_changes64(t->db);
}

static int attr_copy(const struct keel_store_attr *a, struct keel_store_attr *out)
{
	out->index = a->index;
	out->value_len = a->value_len;
	out->name = strdup(a->name);
	out->text = a->text != NULL ? strdup(a->text) : NULL;
	out->value = a->value != NULL ? malloc(a->value_len != 0 ? a->value_len : 1) : NULL;
	if (out->name == NULL || (a->text != NULL && out->text == NULL) ||
	    (a->value != NULL && out->value == NULL)) {
		return KEEL_STORE_E_NOMEM;
	}
	if (a->value != NULL) {
		memcpy(out->value, a->value, a->value_len);
	}
	return 0;
}

static bool attr_named(const struct keel_store_attr *a, const char *name)
{
	return name == NULL || strcmp(a->name, name) == 0;
}

static int sq_attr_list(struct keel_store_txn *tb, const char *uid, const char *name,
			struct keel_store_attr **out_attrs, size_t *out_num)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	const struct sq_attr_cache *c = &t->attrs;
	struct keel_store_attr *arr = NULL;
	size_t num = 0, n = 0;
	int r = 0;

	if (uid == NULL) {
		return KEEL_STORE_E_INVAL;
	}
	if (!attr_cache_fresh(t, uid) && (r = attr_cache_fill(t, uid)) != 0) {
		return r;
	}
	for (size_t i = 0; i < c->num; i++) {
		n += attr_named(&c->attrs[i], name);
	}
	if (n != 0 && (arr = calloc(n, sizeof(*arr))) == NULL) {
		return KEEL_STORE_E_NOMEM;
	}
	for (size_t i = 0; i < c->num && num < n && r == 0; i++) {
		if (attr_named(&c->attrs[i], name)) {
			r = attr_copy(&c->attrs[i], &arr[num++]);
		}
	}
	if (r != 0) {
		keel_store_attrs_free(arr, num);
		return r;
	}
	*out_attrs = arr;
	*out_num = num;
	return 0;
}

/* Binds uid to ?1 and |a|'s name, index, value and text from ?|first| on. */
static int bind_attr(sqlite3_stmt *st, const char *uid, int first, const struct keel_store_attr *a)
{
	int rc = sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);

	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, first, a->name, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int(st, first + 1, a->index);
	rc = rc != SQLITE_OK
		 ? rc
		 : sqlite3_bind_blob64(st, first + 2, a->value != NULL ? a->value : (void *)"",
				       a->value_len, SQLITE_STATIC);
	return rc != SQLITE_OK ? rc : sqlite3_bind_text(st, first + 3, a->text, -1, SQLITE_STATIC);
}

/* Runs |st| (bound by the caller on success) and checks it changed |num| rows. */
static int attr_write(struct sq_txn *t, sqlite3_stmt *st, int rc, size_t num)
{
	int r;

	if ((r = sq_err(t->db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, "writing attributes")) == 0 &&
	    (size_t)sqlite3_changes(t->db) != num) {
		r = KEEL_STORE_E_NOT_FOUND;
	}
	return r;
}

#define ATTR_ROWS_MAX 16 /* rows per INSERT (1 + 4 * 16 parameters) */

/*
 * One INSERT of |num| rows (a new object's ~10 attributes in one statement,
 * not ten): row i takes parameters 2 + 4i .. 5 + 4i, and seq follows the
 * object's last row, so its rows keep the order in which they were added.
 */
static int attr_insert(struct sq_txn *t, const char *uid, const struct keel_store_attr *attrs,
		       size_t num)
{
	char sql[1024];
	sqlite3_stmt *st = NULL;
	size_t n = (size_t)snprintf(
	    sql, sizeof(sql),
	    "INSERT INTO attributes (uid, name, idx, seq, value, text_value)"
	    " SELECT ?1, v.column1, v.column2, b.base + v.column3, v.column4, v.column5"
	    " FROM (SELECT COALESCE(MAX(seq) + 1, 0) AS base FROM attributes WHERE uid = ?1) b,"
	    " (VALUES");
	int r, rc = SQLITE_OK;

	for (size_t i = 0; i < num && n < sizeof(sql); i++) {
		int p = 2 + 4 * (int)i;

		n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s (?%d, ?%d, %zu, ?%d, ?%d)",
				      i != 0 ? "," : "", p, p + 1, i, p + 2, p + 3);
	}
	if (n < sizeof(sql)) {
		snprintf(sql + n, sizeof(sql) - n, ") v");
	}
	if ((r = sq_stmt(t, sql, &st)) != 0) {
		return r;
	}
	for (size_t i = 0; i < num && rc == SQLITE_OK; i++) {
		rc = bind_attr(st, uid, 2 + 4 * (int)i, &attrs[i]);
	}
	return attr_write(t, st, rc, num);
}

static int sq_attr_add(struct keel_store_txn *tb, const char *uid,
		       const struct keel_store_attr *attrs, size_t num)
{
	int r = 0;

	for (size_t done = 0; done < num && r == 0; done += ATTR_ROWS_MAX) {
		r = attr_insert((struct sq_txn *)tb, uid, attrs + done,
				num - done < ATTR_ROWS_MAX ? num - done : ATTR_ROWS_MAX);
	}
	return r;
}

static int sq_attr_update(struct keel_store_txn *tb, const char *uid,
			  const struct keel_store_attr *a)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t,
			 "UPDATE attributes SET value = ?4, text_value = ?5"
			 " WHERE uid = ?1 AND name = ?2 AND idx = ?3",
			 &st)) != 0) {
		return r;
	}
	return attr_write(t, st, bind_attr(st, uid, 2, a), 1);
}

static int sq_attr_delete(struct keel_store_txn *tb, const char *uid, const char *name,
			  int32_t index)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "DELETE FROM attributes WHERE uid = ?1 AND name = ?2"
			 " AND (?3 < 0 OR idx = ?3)",
			 &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int(st, 3, index);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, "deleting attribute")) == 0 && sqlite3_changes(db) == 0) {
		r = KEEL_STORE_E_NOT_FOUND;
	}
	return r;
}

/* Object-row date columns, in enum keel_store_date order. */
static const char *const date_columns[] = {"initial_date",	"activation_date",
					   "deactivation_date", "destroy_date",
					   "compromise_date",	"compromise_occurrence_date",
					   "last_change_date"};
#define NUM_DATE_COLUMNS (sizeof(date_columns) / sizeof(date_columns[0]))

static int bind_filter(sqlite3_stmt *st, int *i, const struct keel_store_filter *f)
{
	int rc = sqlite3_bind_text(st, (*i)++, f->name, -1, SQLITE_STATIC);

	if (rc != SQLITE_OK || f->match == KEEL_STORE_MATCH_PRESENT ||
	    f->match == KEEL_STORE_MATCH_ABSENT) {
		return rc;
	}
	if (f->match == KEEL_STORE_MATCH_EQUAL && f->text != NULL) {
		return sqlite3_bind_text(st, (*i)++, f->text, -1, SQLITE_STATIC);
	}
	rc = sqlite3_bind_blob64(st, (*i)++, f->value, f->value_len, SQLITE_STATIC);
	if (rc == SQLITE_OK && f->match == KEEL_STORE_MATCH_RANGE) {
		rc = sqlite3_bind_blob64(st, (*i)++, f->value_hi, f->value_hi_len, SQLITE_STATIC);
	}
	return rc;
}

/* Binds a Locate query's parameters in the order locate_sql wrote them. */
static int bind_query(sqlite3_stmt *st, const struct keel_store_query *q)
{
	int i = 1, rc = SQLITE_OK;

	if (q->owner != NULL) {
		rc = sqlite3_bind_text(st, i++, q->owner, -1, SQLITE_STATIC);
	}
	for (int k = 0; k < 2 && rc == SQLITE_OK && q->owner != NULL && q->grantee != NULL; k++) {
		rc = sqlite3_bind_text(st, i++, q->grantee, -1, SQLITE_STATIC);
	}
	if (rc == SQLITE_OK && q->uid != NULL) {
		rc = sqlite3_bind_text(st, i++, q->uid, -1, SQLITE_STATIC);
	}
	if (rc == SQLITE_OK && q->has_object_type) {
		rc = sqlite3_bind_int64(st, i++, q->object_type);
	}
	if (rc == SQLITE_OK && q->has_state) {
		rc = sqlite3_bind_int64(st, i++, q->state);
	}
	for (size_t k = 0; k < q->num_dates && rc == SQLITE_OK; k++) {
		if (q->dates[k].unset) {
			continue;
		}
		rc = sqlite3_bind_int64(st, i++, q->dates[k].lo);
		rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, i++, q->dates[k].hi);
	}
	for (size_t k = 0; k < q->num_filters && rc == SQLITE_OK; k++) {
		rc = bind_filter(st, &i, &q->filters[k]);
	}
	rc = rc != SQLITE_OK
		 ? rc
		 : sqlite3_bind_int64(st, i++, q->max_items != 0 ? (int64_t)q->max_items : -1);
	return rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, i, (int64_t)q->offset);
}

/* One filter's condition: an indexed EXISTS on attributes (NOT EXISTS for ABSENT). */
static const char *filter_sql(const struct keel_store_filter *f)
{
	switch (f->match) {
	case KEEL_STORE_MATCH_ABSENT:
		return " AND NOT EXISTS (SELECT 1 FROM attributes a WHERE a.uid = o.uid"
		       " AND a.name = ?)";
	case KEEL_STORE_MATCH_PRESENT:
		return " AND EXISTS (SELECT 1 FROM attributes a WHERE a.uid = o.uid"
		       " AND a.name = ?)";
	case KEEL_STORE_MATCH_RANGE:
		return " AND EXISTS (SELECT 1 FROM attributes a WHERE a.uid = o.uid"
		       " AND a.name = ? AND a.value BETWEEN ? AND ?)";
	default:
		break;
	}
	if (f->text != NULL) {
		/* As IN, not EXISTS: the planner can then start from attributes_by_text. */
		return " AND o.uid IN (SELECT a.uid FROM attributes a"
		       " WHERE a.name = ? AND a.text_value = ?)";
	}
	return " AND EXISTS (SELECT 1 FROM attributes a WHERE a.uid = o.uid"
	       " AND a.name = ? AND a.value = ?)";
}

/* A text equality (Locate by Name, vCenter's lookup): a few rows at most. */
static bool has_text_match(const struct keel_store_query *q)
{
	for (size_t k = 0; k < q->num_filters; k++) {
		if (q->filters[k].match == KEEL_STORE_MATCH_EQUAL && q->filters[k].text != NULL) {
			return true;
		}
	}
	return false;
}

/*
 * Whose objects: the owner's, the owner's and those granted, or (admin) all.
 * The granted set is a union of index searches (the owner's, owner-wide
 * grants', object grants'), so that an OR does not turn Locate into a scan.
 * With a text equality, "+" keeps the owner's index from the planner, which
 * would otherwise walk all of the owner's objects (issue 7: Locate by Name
 * among 1,000,000 objects) instead of the few the name index finds.
 */
static const char *locate_owner_sql(const struct keel_store_query *q)
{
	if (q->owner == NULL) {
		return "1";
	}
	if (q->grantee == NULL) {
		return has_text_match(q) ? "+o.owner = ?" : "o.owner = ?";
	}
	if (has_text_match(q)) { /* checked row by row on the few rows found by name */
		return "(+o.owner = ?"
		       " OR EXISTS (SELECT 1 FROM grants g WHERE g.grantee = ?"
		       " AND g.owner = o.owner AND g.uid = '')"
		       " OR EXISTS (SELECT 1 FROM grants g WHERE g.grantee = ?"
		       " AND g.owner = o.owner AND g.uid = o.uid))";
	}
	return "o.rowid IN (SELECT rowid FROM objects WHERE owner = ?"
	       " UNION ALL SELECT x.rowid FROM grants g JOIN objects x ON x.owner = g.owner"
	       " WHERE g.grantee = ? AND g.uid = ''"
	       " UNION ALL SELECT x.rowid FROM grants g JOIN objects x ON x.uid = g.uid"
	       " AND x.owner = g.owner WHERE g.grantee = ? AND g.uid <> '')";
}

/* The Locate statement; column names come from date_columns, values are bound. */
static char *locate_sql(const struct keel_store_query *q)
{
	size_t cap = 512 + q->num_filters * 128 + q->num_dates * 128;
	char *sql = malloc(cap);
	size_t n;

	if (sql == NULL) {
		return NULL;
	}
	n = (size_t)snprintf(sql, cap, "SELECT uid FROM objects o WHERE %s%s%s%s",
			     locate_owner_sql(q), q->uid != NULL ? " AND uid = ?" : "",
			     q->has_object_type ? " AND object_type = ?" : "",
			     q->has_state ? " AND state = ?" : "");
	for (size_t k = 0; k < q->num_dates && n < cap; k++) {
		const char *col = date_columns[q->dates[k].date];

		if (q->dates[k].unset) {
			n += (size_t)snprintf(sql + n, cap - n, " AND o.%s = 0", col);
			continue;
		}
		n += (size_t)snprintf(sql + n, cap - n, " AND o.%s <> 0 AND o.%s BETWEEN ? AND ?",
				      col, col);
	}
	for (size_t k = 0; k < q->num_filters && n < cap; k++) {
		n += (size_t)snprintf(sql + n, cap - n, "%s", filter_sql(&q->filters[k]));
	}
	if (n < cap) {
		snprintf(sql + n, cap - n, " ORDER BY o.rowid LIMIT ? OFFSET ?");
	}
	return sql;
}

static int push_uid(sqlite3_stmt *st, char ***arr, size_t *num, size_t *cap)
{
	if (*num == *cap) {
		size_t ncap = *cap != 0 ? *cap * 2 : 16;
		char **n = realloc(*arr, ncap * sizeof(*n));

		if (n == NULL) {
			return KEEL_STORE_E_NOMEM;
		}
		*arr = n;
		*cap = ncap;
	}
	if (((*arr)[*num] = dup_text(st, 0)) == NULL) {
		return KEEL_STORE_E_NOMEM;
	}
	(*num)++;
	return 0;
}

static int sq_locate(struct keel_store_txn *tb, const struct keel_store_query *q, char ***out_uids,
		     size_t *out_num)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	struct keel_store_query plain;
	sqlite3_stmt *st = NULL;
	char *sql = NULL, **arr = NULL;
	size_t num = 0, cap = 0;
	int r = KEEL_STORE_E_NOMEM, rc = SQLITE_DONE;
	bool granted = false;

	for (size_t k = 0; k < q->num_dates; k++) {
		if ((size_t)q->dates[k].date >= NUM_DATE_COLUMNS) {
			return KEEL_STORE_E_INVAL;
		}
	}
	/* Most clients hold no grant: they keep the owner-only plan. */
	if (q->grantee != NULL && (r = sq_grantee_has_grants(t, q->grantee, &granted)) != 0) {
		return r;
	}
	if (q->grantee != NULL && !granted) {
		plain = *q;
		plain.grantee = NULL;
		q = &plain;
	}
	r = KEEL_STORE_E_NOMEM;
	sql = locate_sql(q);
	if (sql == NULL || (r = sq_stmt(t, sql, &st)) != 0 ||
	    (r = sq_err(db, bind_query(st, q), "bind")) != 0) {
		goto out;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = push_uid(st, &arr, &num, &cap);
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sq_err(db, rc, "locating objects");
	}
out:
	sq_stmt_done(t, st);
	free(sql);
	if (r != 0) {
		keel_store_uids_free(arr, num);
		return r;
	}
	*out_uids = arr;
	*out_num = num;
	return 0;
}

/* Objects per CRK version on any connection (the live store or an image). */
static int crk_counts_db(sqlite3 *db, struct keel_store_crk_count **out_counts, size_t *out_num)
{
	sqlite3_stmt *st = NULL;
	struct keel_store_crk_count *arr = NULL, *grown;
	size_t num = 0;
	int r, rc = SQLITE_DONE;

	if ((r = sq_prepare(db,
			    "SELECT crk_version, COUNT(*) FROM objects WHERE blob IS NOT NULL"
			    " GROUP BY crk_version ORDER BY crk_version",
			    &st)) != 0) {
		return r;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((grown = realloc(arr, (num + 1) * sizeof(*arr))) == NULL) {
			r = KEEL_STORE_E_NOMEM;
			break;
		}
		arr = grown;
		arr[num].version = (uint32_t)sqlite3_column_int64(st, 0);
		arr[num++].objects = sqlite3_column_int64(st, 1);
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sq_err(db, rc, "counting objects per CRK version");
	}
	sqlite3_finalize(st);
	if (r != 0) {
		free(arr);
		return r;
	}
	*out_counts = arr;
	*out_num = num;
	return 0;
}

static int sq_crk_counts(struct keel_store_txn *tb, struct keel_store_crk_count **out_counts,
			 size_t *out_num)
{
	return crk_counts_db(((struct sq_txn *)tb)->db, out_counts, out_num);
}

static int push_stale(sqlite3_stmt *st, struct keel_store_stale *arr, size_t *num)
{
	struct keel_store_stale *x = &arr[*num];

	memset(x, 0, sizeof(*x));
	x->rowid = sqlite3_column_int64(st, 0);
	snprintf(x->uid, sizeof(x->uid), "%s", (const char *)sqlite3_column_text(st, 1));
	(*num)++;
	return sq_copy_blob(st, 2, &x->blob, &x->blob_len);
}

static int sq_crk_stale(struct keel_store_txn *tb, uint32_t version, int64_t after, size_t max,
			struct keel_store_stale **out_stale, size_t *out_num)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	struct keel_store_stale *arr = calloc(max, sizeof(*arr));
	size_t num = 0;
	int r = KEEL_STORE_E_NOMEM, rc = SQLITE_DONE;

	if (arr == NULL ||
	    (r = sq_stmt(t,
			 "SELECT rowid, uid, blob FROM objects WHERE rowid > ?1"
			 " AND blob IS NOT NULL AND crk_version <> ?2 ORDER BY rowid LIMIT ?3",
			 &st)) != 0) {
		goto out;
	}
	rc = sqlite3_bind_int64(st, 1, after);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, version);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, (int64_t)max);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		goto out;
	}
	while (r == 0 && num < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = push_stale(st, arr, &num);
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = sq_err(db, rc, "listing objects to rewrap");
	}
out:
	sq_stmt_done(t, st);
	if (r != 0) {
		keel_store_stale_free(arr, num);
		return r;
	}
	*out_stale = arr;
	*out_num = num;
	return 0;
}

static int sq_object_rewrap(struct keel_store_txn *tb, const char *uid, const uint8_t *old,
			    size_t old_len, uint32_t version, const uint8_t *blob, size_t blob_len)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "UPDATE objects SET crk_version = ?3, blob = ?4"
			 " WHERE uid = ?1 AND blob = ?2",
			 &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_blob64(st, 2, old, old_len, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, version);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_blob64(st, 4, blob, blob_len, SQLITE_STATIC);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, "rewrapping object")) == 0 && sqlite3_changes(db) == 0) {
		r = KEEL_STORE_E_NOT_FOUND;
	}
	return r;
}

static int sq_rotation_get(struct keel_store_txn *tb, struct keel_store_rotation *out)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "SELECT target, started, finished, total, done, cursor"
			 " FROM crk_rotation WHERE id = 1",
			 &st)) != 0) {
		return r;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		out->target = (uint32_t)sqlite3_column_int64(st, 0);
		out->started = sqlite3_column_int64(st, 1);
		out->finished = sqlite3_column_int64(st, 2);
		out->total = sqlite3_column_int64(st, 3);
		out->done = sqlite3_column_int64(st, 4);
		out->cursor = sqlite3_column_int64(st, 5);
	} else {
		r = rc == SQLITE_DONE ? KEEL_STORE_E_NOT_FOUND : sq_err(db, rc, "reading rotation");
	}
	sq_stmt_done(t, st);
	return r;
}

static int sq_rotation_put(struct keel_store_txn *tb, const struct keel_store_rotation *x)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	const int64_t cols[] = {x->target, x->started, x->finished, x->total, x->done, x->cursor};
	sqlite3_stmt *st = NULL;
	int r, rc = SQLITE_OK;

	if ((r = sq_stmt(t,
			 "INSERT OR REPLACE INTO crk_rotation"
			 " (id, target, started, finished, total, done, cursor)"
			 " VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
			 &st)) != 0) {
		return r;
	}
	for (int i = 0; i < 6 && rc == SQLITE_OK; i++) {
		rc = sqlite3_bind_int64(st, i + 1, cols[i]);
	}
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	return sq_step_done(t, st, "writing rotation");
}

/* ---- Images: backup and restore ------------------------------------------ */

#define SQLITE_HEADER_LEN 100

static int open_memory(sqlite3 **out_db)
{
	int r = sq_err(NULL,
		       sqlite3_open_v2(":memory:", out_db,
				       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					   SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
				       NULL),
		       "opening a memory database");

	if (r != 0) {
		sqlite3_close(*out_db);
		*out_db = NULL;
	}
	return r;
}

/* Copies the whole of |src| into |dst| in one step (sqlite3 online backup). */
static int copy_db(sqlite3 *dst, sqlite3 *src, const char *what)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc;

	if (b == NULL) {
		return sq_err(dst, sqlite3_errcode(dst), what);
	}
	rc = sqlite3_backup_step(b, -1);
	if (rc == SQLITE_DONE) {
		rc = sqlite3_backup_finish(b);
	} else {
		(void)sqlite3_backup_finish(b);
	}
	return sq_err(dst, rc, what);
}

static int sq_snapshot(struct keel_store *s, uint8_t **out_image, size_t *out_len)
{
	struct sq_txn *t = take_conn((struct sq_store *)s);
	sqlite3 *mem = NULL;
	unsigned char *img = NULL;
	sqlite3_int64 n = 0;
	int r;

	if ((r = open_memory(&mem)) != 0 || (r = copy_db(mem, t->db, "taking a snapshot")) != 0) {
		goto out;
	}
	r = KEEL_STORE_E_NOMEM;
	if ((img = sqlite3_serialize(mem, "main", &n, 0)) == NULL || n <= 0 ||
	    (*out_image = malloc((size_t)n)) == NULL) {
		goto out;
	}
	memcpy(*out_image, img, (size_t)n);
	*out_len = (size_t)n;
	r = 0;
out:
	sqlite3_free(img);
	sqlite3_close(mem);
	give_conn(t);
	return r;
}

/*
 * A private memory database holding a copy of |image|, checked: an SQLite
 * file, sound, with a schema this keeld knows. Images of WAL databases are
 * marked rollback-journal first, which sqlite3_deserialize requires.
 */
static int image_open(const uint8_t *image, size_t len, sqlite3 **out_db, int *out_version)
{
	static const char magic[] = "SQLite format 3";
	unsigned char *copy;
	sqlite3 *db = NULL;
	int r;

	if (len < SQLITE_HEADER_LEN || memcmp(image, magic, sizeof(magic)) != 0) {
		keel_err("store: the image is not an SQLite database");
		return KEEL_STORE_E_SCHEMA;
	}
	if ((r = open_memory(&db)) != 0) {
		return r;
	}
	if ((copy = sqlite3_malloc64(len)) == NULL) {
		sqlite3_close(db);
		return KEEL_STORE_E_NOMEM;
	}
	memcpy(copy, image, len);
	copy[18] = copy[19] = 1;
	r = sq_err(
	    db,
	    sqlite3_deserialize(db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
				SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
	    "loading the image");
	if (r == 0 && (r = quick_check(db, "the image")) == 0 &&
	    (r = read_version(db, out_version)) == 0 && *out_version > NUM_MIGRATIONS) {
		keel_err("store: the image's schema version %d is newer than this keeld (%d)",
			 *out_version, NUM_MIGRATIONS);
		r = KEEL_STORE_E_SCHEMA;
	}
	if (r != 0) {
		sqlite3_close(db);
		return r;
	}
	*out_db = db;
	return 0;
}

int keel_store_image_inspect(const uint8_t *image, size_t len, struct keel_store_image_info *out)
{
	sqlite3 *db = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = image_open(image, len, &db, &out->schema_version)) != 0) {
		return r;
	}
	if ((r = crk_counts_db(db, &out->counts, &out->num_counts)) == 0) {
		for (size_t i = 0; i < out->num_counts; i++) {
			out->objects += out->counts[i].objects;
		}
	}
	sqlite3_close(db);
	return r;
}

static int sq_restore(struct keel_store *s, const uint8_t *image, size_t len, bool only_if_empty)
{
	struct sq_store *q = (struct sq_store *)s;
	sqlite3 *src = NULL;
	struct sq_txn *t;
	struct sq_member *next;
	uint64_t n = 0;
	int64_t keys = 0;
	int version, r;

	if ((r = image_open(image, len, &src, &version)) != 0 || (r = migrate(src)) != 0) {
		sqlite3_close(src);
		return r;
	}
	t = take_writer(q, true);
	if (only_if_empty &&
	    (r = sq_count_rows(&t->base, "SELECT COUNT(*) FROM objects WHERE blob IS NOT NULL",
			       &keys)) == 0 &&
	    keys != 0) {
		r = KEEL_STORE_E_EXISTS;
	}
	/* The audit chain is the image's now: forget the cached head. */
	pthread_mutex_lock(&q->head_lock);
	if (r == 0) {
		r = copy_db(t->db, src, "restoring the image");
		q->head.valid = false;
	}
	pthread_mutex_unlock(&q->head_lock);
	if (r == 0) {
		n = count_commit(&q->group);
	}
	writer_reset(t);
	next = pass_turn(&q->batch);
	if (r == 0 && (r = wait_durable(&q->group, q->sync_db, n)) == 0) {
		keel_info("store: restored an image of schema version %d", version);
	}
	if (next != NULL) { /* queued behind the restore: its group runs here */
		run_member(q, next);
		combine(q);
	}
	sqlite3_close(src);
	return r;
}

int sq_count_rows(struct keel_store_txn *tb, const char *sql, int64_t *out_count)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t, sql, &st)) != 0) {
		return r;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out_count = sqlite3_column_int64(st, 0);
	} else {
		r = sq_err(db, sqlite3_errcode(db), sql);
	}
	sq_stmt_done(t, st);
	return r;
}

static int sq_object_count(struct keel_store_txn *tb, int64_t *out_count)
{
	return sq_count_rows(tb, "SELECT COUNT(*) FROM objects", out_count);
}

static const struct keel_store_ops sq_ops = {
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .run = sq_run_member,
    .submit = sq_submit,
    .savepoint = sq_savepoint,
    .object_put = sq_object_put,
    .object_get = sq_object_get,
    .object_update = sq_object_update,
    .object_delete = sq_object_delete,
    .attr_list = sq_attr_list,
    .attr_add = sq_attr_add,
    .attr_update = sq_attr_update,
    .attr_delete = sq_attr_delete,
    .locate = sq_locate,
    .audit_append = sq_audit_append,
    .audit_count = sq_audit_count,
    .object_count = sq_object_count,
    .client_put = sq_client_put,
    .client_get = sq_client_get,
    .client_list = sq_client_list,
    .client_rename = sq_client_rename,
    .client_delete = sq_client_delete,
    .enrolment_offer = sq_enrolment_offer,
    .enrolment_pending = sq_enrolment_pending,
    .enrolment_fail = sq_enrolment_fail,
    .enrolment_use = sq_enrolment_use,
    .crk_counts = sq_crk_counts,
    .crk_stale = sq_crk_stale,
    .object_rewrap = sq_object_rewrap,
    .rotation_get = sq_rotation_get,
    .rotation_put = sq_rotation_put,
    .snapshot = sq_snapshot,
    .restore = sq_restore,
    .audit_scan = sq_audit_scan,
    .audit_verify = sq_audit_verify,
    .grant_put = sq_grant_put,
    .grant_delete = sq_grant_delete,
    .grant_level = sq_grant_level,
    .grant_forget = sq_grant_forget,
    .grant_list = sq_grant_list,
    .mirror_set = sq_mirror_set,
    .mirror_next = sq_mirror_next,
    .mirror_settle = sq_mirror_settle,
    .mirror_backlog = sq_mirror_backlog,
    .mirror_rewraps = sq_mirror_rewraps,
    .mirror_rotated = sq_mirror_rotated,
    .mirror_root_get = sq_mirror_root_get,
    .mirror_root_set = sq_mirror_root_set,
    .mirror_shred = sq_mirror_shred,
};
