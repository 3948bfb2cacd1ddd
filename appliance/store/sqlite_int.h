/*
 * Inside the SQLite backend: the connection pool's handles and the helpers
 * that translate SQLite's result codes, shared by sqlite.c (objects,
 * attributes, Locate), sqlite_audit.c (the audit chain) and sqlite_grants.c.
 */
#ifndef KEEL_SQLITE_INT_H
#define KEEL_SQLITE_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>

#include "store_int.h"

/* The audit chain's newest row, as far as one holder knows it. */
struct sq_head {
	bool valid;
	int64_t id;
	uint8_t hash[KEEL_STORE_HASH_LEN];
};

/*
 * A connection's prepared statements, kept for its life: preparing them anew
 * on every call was a quarter of keeld's CPU (issue 7). SQLite re-prepares a
 * kept statement by itself after a schema change (a migration, a restore).
 */
#define SQ_CACHE_MAX 64
struct sq_cached {
	sqlite3_stmt *st;
	uint32_t hash; /* of its SQL text */
	bool busy;     /* handed out by sq_stmt, not yet back */
	uint64_t used; /* when last handed out: the least recent goes first */
};

/*
 * One object's attributes as a transaction last read them: a Get asks for
 * eight of them one at a time, and each lookup scanned all of the object's
 * rows anyway (issue 7). Valid while the connection has changed no row since
 * (|changes|, sqlite3_total_changes64) and no savepoint was rolled back.
 */
struct sq_attr_cache {
	char *uid; /* NULL: nothing cached */
	struct keel_store_attr *attrs;
	size_t num;
	int64_t changes;
};

struct sq_txn {
	struct keel_store_txn base; /* first: store.c sees only this */
	sqlite3 *db;
	struct sq_attr_cache attrs;
	unsigned depth;	    /* open savepoints */
	bool busy;	    /* a reader's, handed out */
	bool writer;	    /* the writers' connection, held as sq_batch.held */
	bool grouped;	    /* inside a group transaction: no statement may run outside it */
	bool appended;	    /* audit rows written: commit publishes |head| */
	int64_t chain_from; /* the head's id before its first row: what its commit passes */
	struct sq_head head;
	struct sq_cached cache[SQ_CACHE_MAX]; /* see sq_stmt */
	unsigned num_cached;
	uint64_t uses; /* clock of cache[].used */
};

/*
 * Group commit (sqlite.c): COMMIT writes the WAL without fsync; commits are
 * numbered, and a commit is durable once an fsync that began after it was
 * numbered has succeeded.
 */
struct sq_waiter {
	uint64_t n;  /* the commit it waits for */
	sem_t woken; /* posted: covered, failed, or to lead the next fsync */
	struct sq_waiter *next;
};

struct sq_group {
	pthread_mutex_t lock;
	struct sq_waiter *waiters; /* for a running fsync's end */
	struct sq_waiter **tail;
	uint64_t commits; /* writing transactions committed */
	uint64_t covered; /* of those, how many the last good fsync covers */
	bool running;	  /* an fsync is under way */
	bool failed;	  /* sticky: nothing is acknowledged after a failed fsync */
};

/*
 * A thread queued for the writers' turn (sqlite.c, "Flat combining"): a
 * keel_store_run member (|fn|), which the turn's holder runs for it, or a
 * keel_store_begin caller or a restore (no |fn|), handed the turn itself.
 * Once its part is kept in the open group, it is one of the group's members,
 * waiting for the COMMIT and the fsync. A detached member (keel_store_submit)
 * has no thread: it is heap-allocated with a copy of its argument, queued
 * for a holder (or the flusher) to run, and freed at its outcome, which
 * nobody waits for.
 */
struct sq_member {
	struct sq_member *next; /* in the queue, then in the group's members */
	keel_store_member_fn fn;
	void *arg;
	bool alone;    /* a restore: takes the turn with no group open */
	bool detached; /* keel_store_submit's: no thread waits, its outcome frees it */
	bool turn;     /* posted with the turn, not with its outcome */
	sem_t done;    /* posted once: the turn, or the outcome */
	int result;    /* 0: committed and durable; else fn's or the store's error */
};

/*
 * Group transactions (sqlite.c): writers take turns on conns[0]; the turn's
 * holder runs the queued members in one transaction and commits it for all.
 */
struct sq_batch {
	pthread_mutex_t lock;
	bool held;		 /* a thread has the turn, and conns[0] */
	struct sq_member *queue; /* threads waiting for it, first come first */
	struct sq_member **tail; /* &queue, or the last one's &next */
	/* The flusher (sqlite.c): detached members queued while the turn was free. */
	pthread_cond_t pending;	    /* on CLOCK_MONOTONIC: such work, a new delay, closing */
	uint64_t since_ns;	    /* when the first of them was queued */
	uint64_t arrivals;	    /* how often work was queued so: the flusher's activity */
	uint64_t flush_ns;	    /* how long it may wait for a holder: FLUSH_NS */
	void (*flushed)(void *arg); /* tests: called after each of its flushes */
	void *flushed_arg;
	uint64_t group_ns;   /* how long a group takes more parts: GROUP_MAX_NS */
	bool flusher_asleep; /* in an untimed wait: arrivals signal |pending| */
	bool closing;	     /* keel_store_close: run what is queued, then end */
	/* Only the turn's holder reads or changes these. */
	bool open;		   /* a group transaction is open on conns[0] */
	unsigned size;		   /* parts that have ended in it so far */
	uint64_t first_ns;	   /* when its first part ended */
	struct sq_member *members; /* those that kept their part, still waiting */
};

struct sq_store {
	struct keel_store base;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct sq_batch batch; /* one writing transaction at a time, on conns[0] (sqlite.c) */
	struct sq_group group;
	pthread_t flusher;    /* runs detached work that no holder took in time */
	bool flusher_started; /* to join at close */
	unsigned num_conns;   /* readers: conns[1..num_conns] */
	struct sq_txn *conns; /* conns[0]: every writing transaction's */
	sqlite3 *sync_db;     /* only the group commit's leader uses it: its WAL handle */
	/*
	 * The chain head as of the last commit that appended to it. Held across
	 * such a commit and its publication, so a writer that begins next (it
	 * can only begin once that commit released SQLite's write lock) reads
	 * the head that commit left, never an older one.
	 */
	pthread_mutex_t head_lock;
	struct sq_head head;
};

/* The one translation of SQLite's result codes; logs |what| on failure. */
int sq_err(sqlite3 *db, int rc, const char *what);
int sq_exec(sqlite3 *db, const char *sql);
/* An uncached statement, for |db|s outside the pool; sqlite3_finalize it. */
int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out);
/*
 * |sql|'s statement on |t|'s connection, ready to bind: from the cache, or
 * prepared and cached. Hand it back with sq_stmt_done, which resets it and
 * clears its bindings (finalizes it if the cache had no room). A statement
 * already handed out is not handed out twice: nested use gets another.
 */
int sq_stmt(struct sq_txn *t, const char *sql, sqlite3_stmt **out);
void sq_stmt_done(struct sq_txn *t, sqlite3_stmt *st);
/* Steps a statement that returns no rows, then sq_stmt_done. */
int sq_step_done(struct sq_txn *t, sqlite3_stmt *st, const char *what);
/* One statement without parameters or rows (BEGIN, COMMIT, ...), cached. */
int sq_run(struct sq_txn *t, const char *sql);
/* Copies column |col| (a blob) to a malloc'd buffer; NULL for SQL NULL. */
int sq_copy_blob(sqlite3_stmt *st, int col, uint8_t **out, size_t *out_len);
/* Runs a "SELECT COUNT(*) ..." without parameters. */
int sq_count_rows(struct keel_store_txn *t, const char *sql, int64_t *out_count);

/* sqlite_audit.c */
int sq_audit_append(struct keel_store_txn *t, const struct keel_store_audit *a);
int sq_audit_count(struct keel_store_txn *t, int64_t *out_count);
int sq_audit_scan(struct keel_store_txn *t, const struct keel_store_audit_filter *f,
		  keel_store_audit_fn fn, void *ctx);
int sq_audit_verify(struct keel_store_txn *t, const struct keel_store_audit_anchor *anchor,
		    struct keel_store_audit_check *out);
/* Migration step: chains the rows written before the chain existed. */
int sq_audit_chain_existing(sqlite3 *db);
/* Commits |t|, publishing its chain head if it appended (see struct sq_store). */
int sq_audit_commit(struct sq_txn *t);

/* sqlite_grants.c */
int sq_grant_put(struct keel_store_txn *t, const struct keel_store_grant *g);
int sq_grant_delete(struct keel_store_txn *t, const char *owner, const char *uid,
		    const char *grantee);
int sq_grant_level(struct keel_store_txn *t, const char *owner, const char *uid,
		   const char *grantee, uint32_t *out_level);
int sq_grant_forget(struct keel_store_txn *t, const char *identity, size_t *out_num);
int sq_grant_list(struct keel_store_txn *t, const char *owner, const char *grantee,
		  struct keel_store_grant **out_grants, size_t *out_num);
/* Whether |grantee| holds any grant: Locate takes its plain, owner-only plan if not. */
int sq_grantee_has_grants(struct sq_txn *t, const char *grantee, bool *out);

/* The Key Protect mirror's outbox (sqlite_mirror.c; migration 5 has its triggers). */
int sq_mirror_set(struct keel_store_txn *t, bool on);
int sq_mirror_next(struct keel_store_txn *t, int64_t after_seq, size_t max,
		   struct keel_store_mirror_entry *out, size_t *out_num);
int sq_mirror_settle(struct keel_store_txn *t, const struct keel_store_mirror_entry *e, bool done);
int sq_mirror_backlog(struct keel_store_txn *t, int64_t *out_count);
int sq_mirror_rewraps(struct keel_store_txn *t, int64_t *out_count);
int sq_mirror_rotated(struct keel_store_txn *t, uint32_t crk_version, const char *version_id,
		      int64_t *out_queued);
int sq_mirror_root_get(struct keel_store_txn *t, struct keel_store_mirror_root *out);
int sq_mirror_root_set(struct keel_store_txn *t, const struct keel_store_mirror_root *root);
int sq_mirror_shred(struct keel_store_txn *t, int64_t when);

/* sqlite_clients.c */
int sq_client_put(struct keel_store_txn *t, const struct keel_store_client *c);
int sq_client_get(struct keel_store_txn *t, const char *id, struct keel_store_client *out);
int sq_client_list(struct keel_store_txn *t, struct keel_store_client **out, size_t *out_num);
int sq_client_rename(struct keel_store_txn *t, const char *fingerprint, const char *name);
int sq_client_delete(struct keel_store_txn *t, const char *fingerprint);
int sq_enrolment_offer(struct keel_store_txn *t, const char *verifier, int64_t expires);
int sq_enrolment_pending(struct keel_store_txn *t, struct keel_store_enrolment *out);
int sq_enrolment_fail(struct keel_store_txn *t, const char *verifier);
int sq_enrolment_use(struct keel_store_txn *t, const char *verifier);

#endif
