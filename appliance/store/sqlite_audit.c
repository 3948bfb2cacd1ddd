/*
 * The audit trail in SQLite: appends chained by hash (store.h,
 * keel_store_audit_append), scans for keelctl audit show, and verification.
 *
 * The chain head (newest id and hash) is cached in struct sq_store and
 * copied into a transaction at its first append, so an append costs the
 * hash and one INSERT. Every writing transaction holds SQLite's write lock
 * from BEGIN IMMEDIATE to COMMIT, so writers, and thus appends, are
 * serialised; the head lock held across COMMIT and publication closes the
 * window between one writer's COMMIT and the next writer's read of the
 * cache. A savepoint rolled back, or a commit that failed, leaves the head
 * to be read again from the table.
 *
 * By object. keelctl audit show --uid needs the rows of one object without
 * a scan of the whole trail, but an index on audit(uid) put each row's
 * entry in its object's leaf: a group of Gets wrote one leaf per object it
 * read, half of its pages, on every COMMIT. So audit_by_uid (uid, id) is
 * filled in batches: the COMMIT after which the newest id passed a multiple
 * of AUDIT_UID_EVERY adds every row above audit_uid_mark.upto, in the same
 * transaction, so the mark is never wrong; a query reads audit_by_uid up to
 * the mark and scans the few rows after it.
 */
#include "sqlite_int.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

#define AUDIT_COLS	"id, time, client, operation, uid, result_status, result_reason, detail, hash"
#define AUDIT_UID_EVERY 256 /* rows between two batches of audit_by_uid */

/* The newest row's id and hash, from the table (no rows: id 0, zero hash). */
static int read_head(struct sq_txn *t, struct sq_head *out)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", &st)) != 0) {
		return r;
	}
	memset(out, 0, sizeof(*out));
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == KEEL_STORE_HASH_LEN) {
			memcpy(out->hash, sqlite3_column_blob(st, 1), KEEL_STORE_HASH_LEN);
		}
	} else if (rc != SQLITE_DONE) {
		r = sq_err(t->db, rc, "reading the audit chain head");
	}
	sq_stmt_done(t, st);
	out->valid = r == 0;
	return r;
}

/*
 * The head this transaction appends after: its own, else the store's (only
 * before its own first append: after that the store's is older), else the
 * table's.
 */
static int txn_head(struct sq_txn *t)
{
	struct sq_store *q = (struct sq_store *)t->base.store;

	if (t->head.valid) {
		return 0;
	}
	if (!t->appended) {
		pthread_mutex_lock(&q->head_lock);
		t->head = q->head;
		pthread_mutex_unlock(&q->head_lock);
	}
	return t->head.valid ? 0 : read_head(t, &t->head);
}

static int bind_row(sqlite3_stmt *st, const struct keel_store_audit *a)
{
	int rc = sqlite3_bind_int64(st, 1, a->id);

	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, a->time);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 3, a->client, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 4, a->operation);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 5, a->uid, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 6, a->result_status);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 7, a->result_reason);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 8, a->detail, -1, SQLITE_STATIC);
	return rc != SQLITE_OK
		   ? rc
		   : sqlite3_bind_blob(st, 9, a->hash, KEEL_STORE_HASH_LEN, SQLITE_STATIC);
}

int sq_audit_append(struct keel_store_txn *tb, const struct keel_store_audit *a)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	struct keel_store_audit row = *a;
	sqlite3_stmt *st = NULL;
	int r;

	if (a->client == NULL) {
		return KEEL_STORE_E_INVAL;
	}
	if ((r = txn_head(t)) != 0) {
		return r;
	}
	if (!t->appended) {
		t->chain_from = t->head.id;
	}
	/* The id is chosen here, not by SQLite, because the hash covers it. */
	row.id = t->head.id + 1;
	if ((r = keel_store_audit_hash(t->head.hash, &row, row.hash)) != 0 ||
	    (r = sq_stmt(t,
			 "INSERT INTO audit (" AUDIT_COLS
			 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
			 &st)) != 0) {
		return r;
	}
	if ((r = sq_err(t->db, bind_row(st, &row), "bind")) == 0) {
		r = sq_err(t->db, sqlite3_step(st), "appending audit row");
	}
	sq_stmt_done(t, st); /* the bindings point into |row|: none outlive this call */
	if (r != 0) {
		t->head.valid = false;
		return r;
	}
	t->head.id = row.id;
	memcpy(t->head.hash, row.hash, KEEL_STORE_HASH_LEN);
	t->appended = true;
	return 0;
}

/*
 * An anchor for the journal, every KEEL_AUDIT_ANCHOR_EVERY records: a copy of
 * the chain outside the store that `keelctl audit verify --anchor` checks.
 */
static void log_anchor(const struct sq_head *h)
{
	char hex[2 * KEEL_STORE_HASH_LEN + 1];

	for (size_t i = 0; i < KEEL_STORE_HASH_LEN; i++) {
		snprintf(hex + 2 * i, 3, "%02x", h->hash[i]);
	}
	keel_info("audit: anchor %lld:%s", (long long)h->id, hex);
}

/* True when the chain went past a multiple of |every| from |before| to |h|. */
static bool passed(int64_t before, const struct sq_head *h, int64_t every)
{
	return h->valid && before / every != h->id / every;
}

/* The rows after the mark into audit_by_uid, and the mark to the newest ("By object"). */
static int index_by_uid(struct sq_txn *t)
{
	int r = sq_run(t, "INSERT INTO audit_by_uid (uid, id) SELECT uid, id FROM audit"
			  " WHERE id > (SELECT upto FROM audit_uid_mark) AND uid IS NOT NULL");

	return r != 0 ? r
		      : sq_run(t, "UPDATE audit_uid_mark SET upto = (SELECT MAX(id) FROM audit)");
}

int sq_audit_commit(struct sq_txn *t)
{
	struct sq_store *q = (struct sq_store *)t->base.store;
	int64_t before;
	int r = 0;

	if (!t->appended) {
		return sq_run(t, "COMMIT");
	}
	pthread_mutex_lock(&q->head_lock);
	/* From the transaction's own start, not the store's cached head: that is
	 * unknown after a restart or a failure, and a group (detached Discover
	 * Versions rows: up to GROUP_MAX x 64) can pass an anchor by many rows. */
	before = t->chain_from;
	if (passed(before, &t->head, AUDIT_UID_EVERY)) {
		r = index_by_uid(t);
	}
	r = r != 0 ? r : sq_run(t, "COMMIT");
	if (r == 0 && passed(before, &t->head, KEEL_AUDIT_ANCHOR_EVERY)) {
		log_anchor(&t->head);
	}
	/* On failure the row may or may not be there: let the next writer read it. */
	q->head = t->head;
	q->head.valid = r == 0 && t->head.valid;
	pthread_mutex_unlock(&q->head_lock);
	return r;
}

int sq_audit_count(struct keel_store_txn *tb, int64_t *out_count)
{
	return sq_count_rows(tb, "SELECT COUNT(*) FROM audit", out_count);
}

/* The current row of an AUDIT_COLS statement; strings valid until the next step. */
static void read_row(sqlite3_stmt *st, struct keel_store_audit *a)
{
	memset(a, 0, sizeof(*a));
	a->id = sqlite3_column_int64(st, 0);
	a->time = sqlite3_column_int64(st, 1);
	a->client = (const char *)sqlite3_column_text(st, 2);
	a->operation = (uint32_t)sqlite3_column_int64(st, 3);
	a->uid = (const char *)sqlite3_column_text(st, 4);
	a->result_status = (uint32_t)sqlite3_column_int64(st, 5);
	a->result_reason = (uint32_t)sqlite3_column_int64(st, 6);
	a->detail = (const char *)sqlite3_column_text(st, 7);
	if (sqlite3_column_bytes(st, 8) == KEEL_STORE_HASH_LEN) {
		memcpy(a->hash, sqlite3_column_blob(st, 8), KEEL_STORE_HASH_LEN);
	}
}

static int bind_filter(sqlite3_stmt *st, const struct keel_store_audit_filter *f)
{
	int rc = sqlite3_bind_text(st, 1, f->client, -1, SQLITE_STATIC);

	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 2, f->uid, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, f->operation);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 4, f->since);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 5, f->until);
	return rc != SQLITE_OK ? rc
			       : sqlite3_bind_int64(st, 6, f->limit != 0 ? (int64_t)f->limit : -1);
}

/*
 * Only the conditions asked for, so the planner walks the newest ids first
 * (or the uid or time index when those narrow it) instead of sorting every row.
 */
static void scan_sql(const struct keel_store_audit_filter *f, char *sql, size_t len)
{
	snprintf(sql, len,
		 "SELECT " AUDIT_COLS " FROM audit WHERE 1%s%s%s%s%s"
		 " ORDER BY id DESC LIMIT ?6",
		 f->client != NULL ? " AND client = ?1" : "",
		 f->uid != NULL ? " AND id IN (SELECT id FROM audit_by_uid WHERE uid = ?2"
				  " UNION ALL SELECT id FROM audit WHERE uid = ?2"
				  " AND id > (SELECT upto FROM audit_uid_mark))"
				: "",
		 f->has_operation ? " AND operation = ?3" : "",
		 f->since != 0 ? " AND time >= ?4" : "", f->until != 0 ? " AND time <= ?5" : "");
}

int sq_audit_scan(struct keel_store_txn *tb, const struct keel_store_audit_filter *f,
		  keel_store_audit_fn fn, void *ctx)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	struct keel_store_audit row;
	sqlite3_stmt *st = NULL;
	char sql[512];
	int r, rc;

	scan_sql(f, sql, sizeof(sql));
	if ((r = sq_stmt(t, sql, &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, bind_filter(st, f), "bind")) != 0) {
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, &row);
		if (fn(ctx, &row) != 0) {
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = sq_err(db, rc, "reading audit rows");
	}
out:
	sq_stmt_done(t, st);
	return r;
}

/* Notes a fault; only the first one is named. */
static void fault(struct keel_store_audit_check *out, enum keel_store_audit_fault what, int64_t id)
{
	if (out->fault == KEEL_AUDIT_INTACT) {
		out->fault = what;
		out->first_bad_id = id;
	}
	out->num_bad++;
}

/* Checks one row against the chain so far; |prev| moves on to its stored hash. */
static int check_row(const struct keel_store_audit *a, struct sq_head *prev,
		     struct keel_store_audit_check *out)
{
	uint8_t want[KEEL_STORE_HASH_LEN];
	int r;

	if (a->id != prev->id + 1) {
		fault(out, KEEL_AUDIT_MISSING, prev->id + 1);
	}
	if ((r = keel_store_audit_hash(prev->hash, a, want)) != 0) {
		return r;
	}
	/* A deleted row also breaks its successor's hash: one fault, not two. */
	if (memcmp(want, a->hash, sizeof(want)) != 0 && a->id == prev->id + 1) {
		fault(out, KEEL_AUDIT_ALTERED, a->id);
	}
	prev->id = a->id;
	memcpy(prev->hash, a->hash, sizeof(prev->hash));
	out->num_rows++;
	return 0;
}

/* Rows removed from the end leave AUTOINCREMENT's high-water mark behind. */
static int check_tail(sqlite3 *db, int64_t last_id, struct keel_store_audit_check *out)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_prepare(db, "SELECT seq FROM sqlite_sequence WHERE name = 'audit'", &st)) !=
	    0) {
		return r;
	}
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > last_id) {
		fault(out, KEEL_AUDIT_TRUNCATED, last_id + 1);
	}
	sqlite3_finalize(st);
	return 0;
}

/* The anchored record must be there with the anchored hash. */
static void check_anchor(const struct keel_store_audit *a,
			 const struct keel_store_audit_anchor *anchor, bool *seen,
			 struct keel_store_audit_check *out)
{
	if (anchor == NULL || a->id != anchor->id) {
		return;
	}
	*seen = true;
	if (memcmp(a->hash, anchor->hash, sizeof(anchor->hash)) != 0) {
		fault(out, KEEL_AUDIT_ANCHOR, a->id);
	}
}

int sq_audit_verify(struct keel_store_txn *tb, const struct keel_store_audit_anchor *anchor,
		    struct keel_store_audit_check *out)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	struct sq_head prev = {.valid = true};
	struct keel_store_audit row;
	sqlite3_stmt *st = NULL;
	bool anchor_seen = false;
	int r, rc;

	if ((r = sq_stmt(t, "SELECT " AUDIT_COLS " FROM audit ORDER BY id", &st)) != 0) {
		return r;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, &row);
		if ((r = check_row(&row, &prev, out)) == 0) {
			check_anchor(&row, anchor, &anchor_seen, out);
		}
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sq_err(db, rc, "reading audit rows");
	}
	sq_stmt_done(t, st);
	if (r == 0 && anchor != NULL && !anchor_seen) {
		fault(out, KEEL_AUDIT_ANCHOR, anchor->id);
	}
	out->head.id = prev.id;
	memcpy(out->head.hash, prev.hash, sizeof(out->head.hash));
	return r != 0 ? r : check_tail(db, prev.id, out);
}

int sq_audit_chain_existing(sqlite3 *db)
{
	struct sq_head prev = {.valid = true};
	struct keel_store_audit row;
	sqlite3_stmt *st = NULL, *up = NULL;
	int r, rc;

	if ((r = sq_prepare(db, "SELECT " AUDIT_COLS " FROM audit ORDER BY id", &st)) != 0 ||
	    (r = sq_prepare(db, "UPDATE audit SET hash = ?2 WHERE id = ?1", &up)) != 0) {
		goto out;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, &row);
		if ((r = keel_store_audit_hash(prev.hash, &row, prev.hash)) != 0) {
			break;
		}
		rc = sqlite3_bind_int64(up, 1, row.id);
		rc = rc != SQLITE_OK
			 ? rc
			 : sqlite3_bind_blob(up, 2, prev.hash, sizeof(prev.hash), SQLITE_STATIC);
		rc = rc != SQLITE_OK ? rc : sqlite3_step(up);
		r = sq_err(db, rc, "chaining audit rows");
		sqlite3_reset(up);
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sq_err(db, rc, "reading audit rows");
	}
out:
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	return r;
}
