/* The client registry and enrolment codes in SQLite (store.h, keel_store_client_*,
 * keel_store_enrolment_*). */
#include "sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_COLS "fingerprint, name, role, pem, added"

int sq_client_put(struct keel_store_txn *tb, const struct keel_store_client *c)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t, "INSERT INTO clients (" CLIENT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)",
			 &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_text(st, 1, c->fingerprint, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 3, c->role, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 4, c->pem, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 5, c->added);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	return sq_step_done(t, st, "registering client");
}

/* The current row of a CLIENT_COLS statement into |out|. */
static int read_client(sqlite3_stmt *st, struct keel_store_client *out)
{
	const char *pem = (const char *)sqlite3_column_text(st, 3);

	memset(out, 0, sizeof(*out));
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s",
		 (const char *)sqlite3_column_text(st, 0));
	snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(out->role, sizeof(out->role), "%s", (const char *)sqlite3_column_text(st, 2));
	out->added = sqlite3_column_int64(st, 4);
	if ((out->pem = strdup(pem != NULL ? pem : "")) == NULL) {
		return KEEL_STORE_E_NOMEM;
	}
	return 0;
}

int sq_client_get(struct keel_store_txn *tb, const char *id, struct keel_store_client *out)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "SELECT " CLIENT_COLS " FROM clients WHERE fingerprint = ?1 OR name = ?1"
			 " ORDER BY fingerprint = ?1 DESC LIMIT 1",
			 &st)) != 0) {
		return r;
	}
	if ((r = sq_err(db, sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC), "bind")) == 0) {
		if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			r = read_client(st, out);
		} else {
			r = rc == SQLITE_DONE ? KEEL_STORE_E_NOT_FOUND
					      : sq_err(db, rc, "reading client");
		}
	}
	sq_stmt_done(t, st);
	return r;
}

int sq_client_list(struct keel_store_txn *tb, struct keel_store_client **out, size_t *out_num)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	struct keel_store_client *arr = NULL, *grown;
	size_t num = 0;
	int r, rc = SQLITE_DONE;

	if ((r = sq_stmt(t, "SELECT " CLIENT_COLS " FROM clients ORDER BY name", &st)) != 0) {
		return r;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((grown = realloc(arr, (num + 1) * sizeof(*arr))) == NULL) {
			r = KEEL_STORE_E_NOMEM;
			break;
		}
		arr = grown;
		r = read_client(st, &arr[num++]);
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sq_err(db, rc, "listing clients");
	}
	sq_stmt_done(t, st);
	if (r != 0) {
		keel_store_clients_free(arr, num);
		return r;
	}
	*out = arr;
	*out_num = num;
	return 0;
}

/* Runs |sql| with ?1 = |a| and ?2 = |b| (may be NULL); NOT_FOUND when no row changed. */
static int change(struct sq_txn *t, const char *sql, const char *a, const char *b, const char *what)
{
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t, sql, &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b != NULL && rc == SQLITE_OK) {
		rc = sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	}
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	if ((r = sq_step_done(t, st, what)) == 0 && sqlite3_changes(db) == 0) {
		r = KEEL_STORE_E_NOT_FOUND;
	}
	return r;
}

int sq_client_rename(struct keel_store_txn *tb, const char *fingerprint, const char *name)
{
	return change((struct sq_txn *)tb, "UPDATE clients SET name = ?2 WHERE fingerprint = ?1",
		      fingerprint, name, "renaming client");
}

int sq_client_delete(struct keel_store_txn *tb, const char *fingerprint)
{
	return change((struct sq_txn *)tb, "DELETE FROM clients WHERE fingerprint = ?1",
		      fingerprint, NULL, "removing client");
}

int sq_enrolment_offer(struct keel_store_txn *tb, const char *verifier, int64_t expires)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "INSERT INTO enrolment (verifier, expires) VALUES (?1, ?2)"
			 " ON CONFLICT (verifier) DO NOTHING",
			 &st)) != 0) {
		return r;
	}
	rc = sqlite3_bind_text(st, 1, verifier, -1, SQLITE_STATIC);
	rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, expires);
	if ((r = sq_err(db, rc, "bind")) != 0) {
		sq_stmt_done(t, st);
		return r;
	}
	return sq_step_done(t, st, "offering an enrolment code");
}

int sq_enrolment_pending(struct keel_store_txn *tb, struct keel_store_enrolment *out)
{
	struct sq_txn *t = (struct sq_txn *)tb;
	sqlite3 *db = t->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(t,
			 "SELECT verifier, expires, attempts, used FROM enrolment"
			 " WHERE used = 0 ORDER BY rowid DESC LIMIT 1",
			 &st)) != 0) {
		return r;
	}
	memset(out, 0, sizeof(*out));
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(out->verifier, sizeof(out->verifier), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		out->expires = sqlite3_column_int64(st, 1);
		out->attempts = sqlite3_column_int64(st, 2);
		out->used = sqlite3_column_int64(st, 3);
	} else {
		r = rc == SQLITE_DONE ? KEEL_STORE_E_NOT_FOUND
				      : sq_err(db, rc, "reading the enrolment code");
	}
	sq_stmt_done(t, st);
	return r;
}

int sq_enrolment_fail(struct keel_store_txn *tb, const char *verifier)
{
	return change((struct sq_txn *)tb,
		      "UPDATE enrolment SET attempts = attempts + 1 WHERE verifier = ?1", verifier,
		      NULL, "counting a wrong enrolment code");
}

int sq_enrolment_use(struct keel_store_txn *tb, const char *verifier)
{
	return change((struct sq_txn *)tb,
		      "UPDATE enrolment SET used = unixepoch() WHERE verifier = ?1 AND used = 0",
		      verifier, NULL, "using the enrolment code");
}
