/* Grants in SQLite (store.h, keel_store_grant_*): one row per (grantee, owner, uid). */
#include "sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>

/* Binds ?1.. from |texts|, stopping at the first failure. */
static int bind_texts(sqlite3_stmt *st, const char *const *texts, int n)
{
	int rc = SQLITE_OK;

	for (int i = 0; i < n && rc == SQLITE_OK; i++) {
		rc = sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
	}
	return rc;
}

int sq_grant_put(struct keel_store_txn *tb, const struct keel_store_grant *g)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	const char *texts[] = {g->owner, g->uid, g->grantee, g->granted_by};
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "INSERT INTO grants (owner, uid, grantee, granted_by, level, time)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (grantee, owner, uid)"
			 " DO UPDATE SET level = ?5, granted_by = ?4, time = ?6",
			 &st)) != 0) {
		return r;
	}
	rc = bind_texts(st, texts, 4);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 5, g->level);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 6, g->time);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	return sq_step_done(t, st, "writing grant");
}

int sq_grant_delete(struct keel_store_txn *tb, const char *owner, const char *uid,
		    const char *grantee)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	const char *texts[] = {owner, uid, grantee};
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t, "DELETE FROM grants WHERE owner = ?1 AND uid = ?2 AND grantee = ?3",
			 &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, bind_texts(st, texts, 3), "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, "deleting grant")) == 0 && sqlite3_changes(db) == 0) {
		r = KEEL_STORE_E_NOT_FOUND;
	}
	return r;
}

int sq_grant_forget(struct keel_store_txn *tb, const char *identity, size_t *out_num)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(t, "DELETE FROM grants WHERE owner = ?1 OR grantee = ?1", &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, bind_texts(st, &identity, 1), "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, "forgetting grants")) == 0) {
		*out_num = (size_t)sqlite3_changes(db);
	}
	return r;
}

int sq_grant_level(struct keel_store_txn *tb, const char *owner, const char *uid,
		   const char *grantee, uint32_t *out_level)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	const char *texts[] = {owner, uid, grantee};
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "SELECT MAX(level) FROM grants WHERE grantee = ?3 AND owner = ?1"
			 " AND uid IN ('', ?2)",
			 &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, bind_texts(st, texts, 3), "bind")) == 0) {
		if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			*out_level = (uint32_t)sqlite3_column_int64(st, 0); /* NULL: 0 */
		} else {
			r = sq_err(db, rc, "reading grants");
		}
	}
	sq_stmt_done(t, st);
	return r;
}

int sq_grantee_has_grants(struct sq_txn *t, const char *grantee, bool *out)
{
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t, "SELECT EXISTS (SELECT 1 FROM grants WHERE grantee = ?1)", &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, bind_texts(st, &grantee, 1), "bind")) == 0) {
		if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			*out = sqlite3_column_int(st, 0) != 0;
		} else {
			r = sq_err(db, rc, "reading grants");
		}
	}
	sq_stmt_done(t, st);
	return r;
}

static int push_grant(sqlite3_stmt *st, struct keel_store_grant **arr, size_t *num, size_t *cap)
{
	struct keel_store_grant *g;

	if (*num == *cap) {
		size_t ncap = *cap != 0 ? *cap * 2 : 8;
		struct keel_store_grant *n = realloc(*arr, ncap * sizeof(*n));

		if (n == NULL) {
			return KEEL_STORE_E_NOMEM;
		}
		*arr = n;
		*cap = ncap;
	}
	g = &(*arr)[(*num)++];
	snprintf(g->owner, sizeof(g->owner), "%s", (const char *)sqlite3_column_text(st, 0));
	snprintf(g->uid, sizeof(g->uid), "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(g->grantee, sizeof(g->grantee), "%s", (const char *)sqlite3_column_text(st, 2));
	snprintf(g->granted_by, sizeof(g->granted_by), "%s",
		 (const char *)sqlite3_column_text(st, 3));
	g->level = (uint32_t)sqlite3_column_int64(st, 4);
	g->time = sqlite3_column_int64(st, 5);
	return 0;
}

int sq_grant_list(struct keel_store_txn *tb, const char *owner, const char *grantee,
		  struct keel_store_grant **out_grants, size_t *out_num)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	const char *texts[] = {owner, grantee};
	struct keel_store_grant *arr = NULL;
	sqlite3_stmt *st = NULL;
	size_t num = 0, cap = 0;
	int r, rc = SQLITE_DONE;

	if ((r = sq_stmt(t,
			 "SELECT owner, uid, grantee, granted_by, level, time FROM grants"
			 " WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR grantee = ?2)"
			 " ORDER BY time, rowid",
			 &st)) != 0) {
		return r;
	}
	r = sq_err(db, bind_texts(st, texts, 2), "bind");
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = push_grant(st, &arr, &num, &cap);
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sq_err(db, rc, "listing grants");
	}
	sq_stmt_done(t, st);
	if (r != 0) {
		free(arr);
		return r;
	}
	*out_grants = arr;
	*out_num = num;
	return 0;
}
