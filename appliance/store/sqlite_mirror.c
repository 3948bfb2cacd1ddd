/* The Key Protect mirror's outbox in SQLite (store.h, keel_store_mirror_*).
 * The entries themselves are written by migration 5's triggers. */
#include "sqlite_int.h"

#include <string.h>

static int mirror_enabled(sqlite3 *db, bool *out_on)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_prepare(db, "SELECT enabled FROM mirror_state WHERE id = 1", &st)) != 0) {
		return r;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out_on = sqlite3_column_int(st, 0) == 1;
	} else {
		r = rc == SQLITE_DONE ? KEEL_STORE_E_SCHEMA
				      : sq_err(db, rc, "reading mirror state");
	}
	sqlite3_finalize(st);
	return r;
}

int sq_mirror_set(struct keel_store_txn *tb, bool on)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	bool was_on = false;
	int r;

	if ((r = mirror_enabled(db, &was_on)) != 0 || was_on == on) {
		return r;
	}
	if (!on) {
		return sq_exec(db,
			       "UPDATE mirror_state SET enabled = 0; DELETE FROM mirror_outbox;");
	}
	/* Everything already stored is escrowed first, oldest first. */
	return sq_exec(db, "UPDATE mirror_state SET enabled = 1;"
			   "INSERT INTO mirror_enqueue SELECT uid, 1 FROM objects ORDER BY rowid;");
}

static int read_entry(sqlite3_stmt *st, struct keel_store_mirror_entry *e)
{
	const unsigned char *uid = sqlite3_column_text(st, 0);
	int op = sqlite3_column_int(st, 1);

	if (uid == NULL || strlen((const char *)uid) > KEEL_STORE_UID_MAX ||
	    (op != KEEL_STORE_MIRROR_ESCROW && op != KEEL_STORE_MIRROR_DELETE &&
	     op != KEEL_STORE_MIRROR_REWRAP)) {
		return KEEL_STORE_E_SCHEMA;
	}
	memcpy(e->uid, uid, strlen((const char *)uid) + 1);
	e->op = (enum keel_store_mirror_op)op;
	e->seq = sqlite3_column_int64(st, 2);
	e->time = sqlite3_column_int64(st, 3);
	e->attempts = (uint32_t)sqlite3_column_int64(st, 4);
	return 0;
}

int sq_mirror_next(struct keel_store_txn *tb, int64_t after_seq, size_t max,
		   struct keel_store_mirror_entry *out, size_t *out_num)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "SELECT uid, op, seq, time, attempts FROM mirror_outbox"
			 " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
			 &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_int64(st, 1, after_seq);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	while (r == 0 && *out_num < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = read_entry(st, &out[*out_num])) == 0) {
			(*out_num)++;
		}
	}
	if (r == 0 && rc != SQLITE_ROW) {
		r = sq_err(db, rc, "reading the mirror outbox");
	}
	sq_stmt_done(t, st);
	return r;
}

int sq_mirror_settle(struct keel_store_txn *tb, const struct keel_store_mirror_entry *e, bool done)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 done ? "DELETE FROM mirror_outbox WHERE uid = ?1 AND seq = ?2"
			      : "UPDATE mirror_outbox SET attempts = attempts + 1"
				" WHERE uid = ?1 AND seq = ?2",
			 &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_text(st, 1, e->uid, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, e->seq);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, "settling a mirror entry")) == 0 && sqlite3_changes(db) == 0) {
		r = KEEL_STORE_E_NOT_FOUND;
	}
	return r;
}

int sq_mirror_backlog(struct keel_store_txn *tb, int64_t *out_count)
{
	return sq_count_rows(tb, "SELECT COUNT(*) FROM mirror_outbox", out_count);
}

int sq_mirror_rewraps(struct keel_store_txn *tb, int64_t *out_count)
{
	return sq_count_rows(tb, "SELECT COUNT(*) FROM mirror_outbox WHERE op = 3", out_count);
}

int sq_mirror_rotated(struct keel_store_txn *tb, uint32_t crk_version, const char *version_id,
		      int64_t *out_queued)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	/* Numbered from next_seq on, oldest object first, after whatever is queued. */
	if ((r = sq_exec(db,
			 "INSERT INTO mirror_outbox (uid, op, seq, time)"
			 " SELECT o.uid, 3, s.next_seq + ROW_NUMBER() OVER (ORDER BY o.rowid) - 1,"
			 "  CAST(strftime('%s', 'now') AS INTEGER)"
			 " FROM objects o, mirror_state s"
			 " WHERE s.id = 1 AND s.enabled = 1"
			 "  AND o.uid NOT IN (SELECT uid FROM mirror_outbox)")) != 0) {
		return r;
	}
	*out_queued = sqlite3_changes(db);
	if ((r = sq_exec(db, "UPDATE mirror_state SET next_seq ="
			     " (SELECT COALESCE(MAX(seq), 0) + 1 FROM mirror_outbox)"
			     " WHERE id = 1 AND next_seq <= (SELECT COALESCE(MAX(seq), 0)"
			     "  FROM mirror_outbox)")) != 0 ||
	    (r = sq_stmt(t,
			 "UPDATE mirror_state SET root_version = ?1, crk_version = ?2 WHERE id = 1",
			 &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_text(st, 1, version_id, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, crk_version);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	return sq_step_done(t, st, "recording the root key's rotation");
}

/* Copies a text column into dst (KEEL_STORE_MIRROR_ID_MAX + 1 bytes). */
static int id_column(sqlite3_stmt *st, int col, char *dst)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	size_t len = s != NULL ? strlen((const char *)s) : 0;

	if (len > KEEL_STORE_MIRROR_ID_MAX) {
		return KEEL_STORE_E_SCHEMA;
	}
	memcpy(dst, s != NULL ? (const char *)s : "", len + 1);
	return 0;
}

int sq_mirror_root_get(struct keel_store_txn *tb, struct keel_store_mirror_root *out)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "SELECT enabled, root_mode, crk_version, root_key_id, root_version,"
			 " shredded FROM mirror_state WHERE id = 1",
			 &st)) != 0) {
		return r;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		out->enabled = sqlite3_column_int(st, 0) == 1;
		out->mode = (uint32_t)sqlite3_column_int64(st, 1);
		out->crk_version = (uint32_t)sqlite3_column_int64(st, 2);
		out->shredded = sqlite3_column_int64(st, 5);
		if ((r = id_column(st, 3, out->key_id)) == 0) {
			r = id_column(st, 4, out->version_id);
		}
	} else {
		r = rc == SQLITE_DONE ? KEEL_STORE_E_SCHEMA
				      : sq_err(db, rc, "reading mirror state");
	}
	sq_stmt_done(t, st);
	return r;
}

int sq_mirror_root_set(struct keel_store_txn *tb, const struct keel_store_mirror_root *root)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_mirror_set(tb, true)) != 0 ||
	    (r = sq_stmt(t,
			 "UPDATE mirror_state SET root_key_id = ?1, root_version = ?2,"
			 " root_mode = ?3, crk_version = ?4 WHERE id = 1",
			 &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_text(st, 1, root->key_id, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 2, root->version_id, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, root->mode);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 4, root->crk_version);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	return sq_step_done(t, st, "recording the mirror's root key");
}

int sq_mirror_shred(struct keel_store_txn *tb, int64_t when)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t, "UPDATE mirror_state SET shredded = ?1 WHERE id = 1 AND shredded = 0",
			 &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, sqlite3_bind_int64(st, 1, when), "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	return sq_step_done(t, st, "recording the crypto-shred");
}
