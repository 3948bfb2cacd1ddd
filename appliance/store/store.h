/*
 * The store: Keel's persistence behind one interface (ARCHITECTURE.md,
 * "store/"). Objects, their attributes and the audit trail. The handle is
 * opaque and dispatches through a table of functions, so a PostgreSQL backend
 * can follow the SQLite one without touching the engine.
 *
 * Transactions: every read and write happens inside a keel_store_txn. The
 * engine runs one transaction per KMIP request, appends the audit rows in it,
 * and commits before the response leaves: keel_store_commit returns only
 * once the change is durable (SQLite: WAL fsynced, one fsync shared by the
 * transactions that commit together: group commit, sqlite.c).
 *
 * Errors: 0 or a negative KEEL_STORE_E_*; backend error codes never leave
 * store/. Threads: any number of threads may hold transactions at once.
 * Nothing secret passes through here in plaintext: key material arrives
 * wrapped by the CRK.
 */
#ifndef KEEL_STORE_H
#define KEEL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEEL_STORE_WUR __attribute__((warn_unused_result))

enum keel_store_err {
	KEEL_STORE_OK = 0,
	KEEL_STORE_E_NOT_FOUND = -1, /* no such object or attribute (for this owner) */
	KEEL_STORE_E_EXISTS = -2,    /* the key is already taken */
	KEEL_STORE_E_BUSY = -3,	     /* lock not obtained within the busy timeout */
	KEEL_STORE_E_IO = -4,	     /* disk, file or any other backend failure */
	KEEL_STORE_E_NOMEM = -5,
	KEEL_STORE_E_SCHEMA = -6, /* the database is newer than this program, or damaged */
	KEEL_STORE_E_INVAL = -7,  /* bad argument */
};

const char *keel_store_strerror(int err);

#define KEEL_STORE_UID_MAX   128 /* longest Unique Identifier kept */
#define KEEL_STORE_OWNER_MAX 65	 /* SHA-256 hex and NUL */
#define KEEL_STORE_ACTOR_MAX 129 /* who acted: a client fingerprint or an admin's name, and NUL */
#define KEEL_STORE_HASH_LEN  32	 /* SHA-256, the audit chain's hash */

/* One managed object's row. Dates are POSIX seconds, 0 when not set. */
struct keel_store_object {
	char uid[KEEL_STORE_UID_MAX + 1];
	char owner[KEEL_STORE_OWNER_MAX];
	uint32_t object_type; /* KMIP_OBJECT_TYPE_* */
	uint32_t state;	      /* KMIP_STATE_* */
	uint32_t crk_version; /* of the blob; 0 when there is none */
	uint8_t *blob;	      /* hsm_wrap output, malloc'd; NULL once destroyed */
	size_t blob_len;
	int64_t initial_date, activation_date, deactivation_date, destroy_date;
	int64_t compromise_date, compromise_occurrence_date, last_change_date;
};

/* Frees the blob of |o| (not |o| itself). Accepts NULL. */
void keel_store_object_cleanup(struct keel_store_object *o);

/*
 * One attribute instance. |value| is the TTLV encoding of the value item;
 * |text| (may be NULL) is a searchable text form: the Name Value of a Name,
 * the string of a text custom attribute.
 */
struct keel_store_attr {
	char *name;
	int32_t index;
	uint8_t *value;
	size_t value_len;
	char *text;
};

/* Frees an array from keel_store_attr_list. Accepts NULL. */
void keel_store_attrs_free(struct keel_store_attr *attrs, size_t num);

/* How a Locate filter matches attribute |name| (KMIP 1.4 §4.9). */
enum keel_store_match {
	KEEL_STORE_MATCH_EQUAL,	  /* text equals |text|, or (text NULL) value equals |value| */
	KEEL_STORE_MATCH_RANGE,	  /* value in [value, value_hi]: same-length encodings as bytes */
	KEEL_STORE_MATCH_PRESENT, /* any instance */
	KEEL_STORE_MATCH_ABSENT,  /* no instance */
};

struct keel_store_filter {
	const char *name;
	enum keel_store_match match;
	const char *text;
	const uint8_t *value;
	size_t value_len;
	const uint8_t *value_hi;
	size_t value_hi_len;
};

/* The object row's dates, for ranges in a Locate. */
enum keel_store_date {
	KEEL_STORE_DATE_INITIAL,
	KEEL_STORE_DATE_ACTIVATION,
	KEEL_STORE_DATE_DEACTIVATION,
	KEEL_STORE_DATE_DESTROY,
	KEEL_STORE_DATE_COMPROMISE,
	KEEL_STORE_DATE_COMPROMISE_OCCURRENCE,
	KEEL_STORE_DATE_LAST_CHANGE,
};

/* Objects whose |date| lies in [lo, hi] (an unset date, 0 in the row, never does),
 * or, with |unset|, objects whose |date| is not set. */
struct keel_store_date_range {
	enum keel_store_date date;
	int64_t lo, hi;
	bool unset;
};

/*
 * Whose objects a query sees: those of |owner|, plus, when |grantee| is set,
 * those granted to |grantee| (keel_store_grant_put). With |any_owner| (an
 * administrator's search) every object; |owner| then narrows it if not NULL.
 * Neither |owner| nor |any_owner|: KEEL_STORE_E_INVAL, never "everything".
 */
struct keel_store_query {
	const char *owner;
	const char *grantee;
	bool any_owner;
	const char *uid; /* NULL: any */
	bool has_object_type, has_state;
	uint32_t object_type, state;
	const struct keel_store_filter *filters;
	size_t num_filters;
	const struct keel_store_date_range *dates;
	size_t num_dates;
	size_t offset;	  /* Offset Items */
	size_t max_items; /* 0: no limit */
};

/*
 * An audit row: who did what to which object, and how it ended. No secrets.
 * |id| and |hash| are the store's: set when a row is read, ignored on append.
 * Administrators' actions carry their name in |client| and their arguments
 * (grantee, revocation reason) in |detail|.
 */
struct keel_store_audit {
	int64_t id;
	int64_t time;
	const char *client; /* fingerprint hex, or an administrator */
	uint32_t operation; /* KMIP_OPERATION_*, or KEEL_AUDIT_OP_* for admin-only actions */
	const char *uid;    /* may be NULL */
	uint32_t result_status;
	uint32_t result_reason; /* 0 on success */
	const char *detail;	/* may be NULL */
	uint8_t hash[KEEL_STORE_HASH_LEN];
};

/* Operations only administrators perform, in KMIP's extension range (KMIP 1.4 §9.1.3.2.27). */
enum {
	KEEL_AUDIT_OP_GRANT = 0x8000a001,
	KEEL_AUDIT_OP_REVOKE_GRANT = 0x8000a002,
	KEEL_AUDIT_OP_ROTATE_CRK = 0x8000a003,
	KEEL_AUDIT_OP_BACKUP = 0x8000a004,
	KEEL_AUDIT_OP_RESTORE = 0x8000a005,
	KEEL_AUDIT_OP_ENABLE_MIRROR = 0x8000a006,
	KEEL_AUDIT_OP_CRYPTO_SHRED = 0x8000a007, /* the mirror's root key was deleted */
	KEEL_AUDIT_OP_RECOVER = 0x8000a008,	 /* an object restored from Key Protect */
};

/* Which audit rows keel_store_audit_scan visits; zero fields do not filter. */
struct keel_store_audit_filter {
	const char *client;
	const char *uid;
	bool has_operation;
	uint32_t operation;
	int64_t since, until; /* time in [since, until]; 0: open */
	size_t limit;	      /* 0: no limit */
};

/* Called per row, newest first; the row's strings live until it returns. Non-zero stops. */
typedef int (*keel_store_audit_fn)(void *ctx, const struct keel_store_audit *row);

/* What keel_store_audit_verify found. */
enum keel_store_audit_fault {
	KEEL_AUDIT_INTACT = 0,
	KEEL_AUDIT_ALTERED,   /* the row's hash is not SHA-256(previous hash || the row) */
	KEEL_AUDIT_MISSING,   /* rows between two present ones were deleted */
	KEEL_AUDIT_TRUNCATED, /* the newest rows were deleted */
	KEEL_AUDIT_ANCHOR,    /* the anchored record does not carry the anchored hash, or is gone */
};

/*
 * A record's id and hash kept outside the store (keeld logs one every
 * KEEL_AUDIT_ANCHOR_EVERY records; an operator may save any). Whoever rewrites
 * the store can recompute an unkeyed chain, but not make it pass an anchor.
 */
struct keel_store_audit_anchor {
	int64_t id;
	uint8_t hash[KEEL_STORE_HASH_LEN];
};

#define KEEL_AUDIT_ANCHOR_EVERY 1000

struct keel_store_audit_check {
	int64_t num_rows;		   /* rows read */
	int64_t num_bad;		   /* rows found altered, plus gaps */
	enum keel_store_audit_fault fault; /* of the first bad record */
	int64_t first_bad_id; /* the first bad record's id (a missing one's, if deleted) */
	struct keel_store_audit_anchor head; /* the newest record: an anchor for next time */
};

/*
 * A grant (ARCHITECTURE.md "Clients and certificates"): |grantee| may use
 * object |uid| of |owner|, or, with |uid| "", every object |owner| has or will
 * have. |level| is the engine's to interpret (engine/manage.h); the store only
 * keeps the highest one that applies.
 */
struct keel_store_grant {
	char owner[KEEL_STORE_OWNER_MAX];
	char uid[KEEL_STORE_UID_MAX + 1];
	char grantee[KEEL_STORE_OWNER_MAX];
	uint32_t level;
	char granted_by[KEEL_STORE_ACTOR_MAX];
	int64_t time;
};

struct keel_store;     /* opaque */
struct keel_store_txn; /* opaque: one open transaction on one connection */

/*
 * Opens (creating if needed) the SQLite database at |path| and runs its
 * migrations. |num_conns| connections are pooled (0 means 4).
 */
int keel_store_open_sqlite(const char *path, unsigned num_conns,
			   struct keel_store **out_store) KEEL_STORE_WUR;
/*
 * For tests: how long keel_store_submit's work may wait for the next writer
 * before the store's flusher thread commits it (sqlite.c, "The flusher";
 * FLUSH_NS, 20 ms, by default): an hour holds the flusher off, 0 lets it
 * run what waits at once; and |flushed| (NULL: none), called on the
 * flusher's thread once a flush it made is committed and durable.
 */
void keel_store_sqlite_flusher(struct keel_store *s, uint64_t after_ns, void (*flushed)(void *arg),
			       void *arg);
/*
 * For tests: how long, after its first part ended, a group takes queued
 * parts before it commits (sqlite.c, GROUP_MAX_NS, 5 ms, by default). Set it
 * before the store is used: a test that asserts which thread ran which part
 * must not see its group cut by a slow machine.
 */
void keel_store_sqlite_group_for(struct keel_store *s, uint64_t ns);

/* The schema version the database is at. */
int keel_store_schema_version(struct keel_store *s, int *out_version) KEEL_STORE_WUR;

/*
 * Commits what keel_store_submit queued and is still waiting, then closes
 * every connection. Accepts NULL. No transaction may be open nor any call
 * running.
 */
void keel_store_close(struct keel_store *s);

/*
 * Takes a connection (waiting for one if all are busy) and begins a write
 * transaction. Ends with exactly one of keel_store_commit or
 * keel_store_rollback, which both hand the connection back (and may commit
 * other transactions that share it: a rollback after a failed commit is an
 * error). Several writers may share one SQL transaction; each is durable, or
 * has failed, when its own keel_store_commit returns.
 */
int keel_store_begin(struct keel_store *s, struct keel_store_txn **out_txn) KEEL_STORE_WUR;
/*
 * Begins a read-only transaction on a snapshot: it never blocks writers, so
 * long scans (audit verification, an administrator's search) use it. Writes in
 * it fail. Ends like any other.
 */
int keel_store_begin_read(struct keel_store *s, struct keel_store_txn **out_txn) KEEL_STORE_WUR;
/* Commits durably. On failure the transaction is rolled back. */
int keel_store_commit(struct keel_store_txn *t) KEEL_STORE_WUR;
void keel_store_rollback(struct keel_store_txn *t);
/* Ends |t|: keel_store_commit if |err| is 0 (its result), else keel_store_rollback (|err|). */
int keel_store_end(struct keel_store_txn *t, int err) KEEL_STORE_WUR;

/*
 * A write transaction's work for keel_store_run: 0 keeps it, anything else
 * undoes it. It may run on another thread than its caller's (whichever holds
 * the writers' turn), so it must not depend on the calling thread; it must
 * not end |t| nor begin another write transaction.
 */
typedef int (*keel_store_member_fn)(struct keel_store_txn *t, void *arg);
/*
 * Runs |fn| in a write transaction shared with other callers' and returns
 * once its outcome is known: 0 once |fn| returned 0 and its work is durable;
 * |fn|'s own non-zero result when it failed (its work undone, the others'
 * kept); a KEEL_STORE_E_* when the transaction could not begin or commit
 * (its work lost). Unlike keel_store_begin, the caller's thread need not
 * wait for the writers' turn to run |fn|: the holder runs it (sqlite.c,
 * "Flat combining").
 */
int keel_store_run(struct keel_store *s, keel_store_member_fn fn, void *arg) KEEL_STORE_WUR;
/*
 * keel_store_run without the wait: |fn| runs on a copy of the |arg_len|
 * bytes at |arg| (so it must hold no pointer into its caller's memory), in
 * the same group transactions, and its work is committed with its group:
 * the holder's of the writers' turn, or the next writer's, first in it; if
 * no writer comes within a few milliseconds, the store's flusher thread
 * commits it and waits for its fsync. This thread runs no transaction.
 * Nobody learns its outcome: a failure is logged. 0 once queued;
 * KEEL_STORE_E_NOMEM. Only for work whose caller may go on before it is
 * durable (engine.c: a protocol-only request's audit rows).
 */
int keel_store_submit(struct keel_store *s, keel_store_member_fn fn, const void *arg,
		      size_t arg_len) KEEL_STORE_WUR;

/* A nested savepoint: one batch item's changes, undone alone on its failure. */
int keel_store_savepoint(struct keel_store_txn *t) KEEL_STORE_WUR;
int keel_store_savepoint_release(struct keel_store_txn *t) KEEL_STORE_WUR;
int keel_store_savepoint_rollback(struct keel_store_txn *t) KEEL_STORE_WUR;

/* Inserts a new object; KEEL_STORE_E_EXISTS if the UID is taken. */
int keel_store_object_put(struct keel_store_txn *t,
			  const struct keel_store_object *o) KEEL_STORE_WUR;
/*
 * Reads the object |uid| of |owner| into *out (cleanup with
 * keel_store_object_cleanup). Another owner's object is KEEL_STORE_E_NOT_FOUND.
 * A NULL |owner| reads whoever owns it: for the engine's own authorisation
 * (grants) and administrators.
 */
int keel_store_object_get(struct keel_store_txn *t, const char *uid, const char *owner,
			  struct keel_store_object *out) KEEL_STORE_WUR;
/* Rewrites state, CRK version, blob and dates of an existing object. */
int keel_store_object_update(struct keel_store_txn *t,
			     const struct keel_store_object *o) KEEL_STORE_WUR;
/* Deletes an object and its attributes. */
int keel_store_object_delete(struct keel_store_txn *t, const char *uid) KEEL_STORE_WUR;

/* The attributes of |uid| (all, or those named |name|), in the order they were added. */
int keel_store_attr_list(struct keel_store_txn *t, const char *uid, const char *name,
			 struct keel_store_attr **out_attrs, size_t *out_num) KEEL_STORE_WUR;
/*
 * Adds |num| instances after those |uid| has, in one statement per 16 (a new
 * object's attributes); KEEL_STORE_E_EXISTS if an (uid, name, index) is taken.
 * On failure the caller's savepoint or transaction undoes any added so far.
 */
int keel_store_attr_add(struct keel_store_txn *t, const char *uid,
			const struct keel_store_attr *attrs, size_t num) KEEL_STORE_WUR;
/* Replaces the value of instance (uid, a->name, a->index); NOT_FOUND if absent. */
int keel_store_attr_update(struct keel_store_txn *t, const char *uid,
			   const struct keel_store_attr *a) KEEL_STORE_WUR;
/* Deletes instance |index| of |name|, or every instance when index < 0; NOT_FOUND if none. */
int keel_store_attr_delete(struct keel_store_txn *t, const char *uid, const char *name,
			   int32_t index) KEEL_STORE_WUR;

/* UIDs matching |q|, oldest first; *out_uids is freed with keel_store_uids_free. */
int keel_store_locate(struct keel_store_txn *t, const struct keel_store_query *q, char ***out_uids,
		      size_t *out_num) KEEL_STORE_WUR;
void keel_store_uids_free(char **uids, size_t num);

/*
 * Appends an audit row in the transaction, so it commits or vanishes with the
 * change, and chains it: hash = SHA-256(previous row's hash || canonical row)
 * (keel_store_audit_hash). The chain head is cached, so an append costs one
 * INSERT; the cache is read only under the write lock every transaction
 * takes, and republished as its transaction commits, so concurrent
 * transactions (which the store serialises as writers) chain in commit order.
 */
int keel_store_audit_append(struct keel_store_txn *t,
			    const struct keel_store_audit *a) KEEL_STORE_WUR;
/* Visits the rows |f| selects, newest first, until |fn| returns non-zero. */
int keel_store_audit_scan(struct keel_store_txn *t, const struct keel_store_audit_filter *f,
			  keel_store_audit_fn fn, void *ctx) KEEL_STORE_WUR;
/*
 * Recomputes the whole chain, oldest first, into *out, and checks |anchor|
 * (may be NULL). Returns 0 whether or not the chain is intact (out->fault
 * says); an error only when it could not be read. The chain is unkeyed:
 * whoever can rewrite the store file can recompute every hash after the rows
 * they change, which only an anchor kept elsewhere detects.
 */
int keel_store_audit_verify(struct keel_store_txn *t, const struct keel_store_audit_anchor *anchor,
			    struct keel_store_audit_check *out) KEEL_STORE_WUR;
/*
 * The chain's hash of row |a| after |prev| (KEEL_STORE_HASH_LEN zero bytes
 * before the first row). The canonical row, in this order: id, time as
 * 8-byte big-endian; client; operation as 4 bytes; uid; result status and
 * reason as 4 bytes each; detail; each string as a 4-byte big-endian length
 * and its bytes, a NULL one as the length 0xffffffff alone.
 */
int keel_store_audit_hash(const uint8_t prev[KEEL_STORE_HASH_LEN], const struct keel_store_audit *a,
			  uint8_t out[KEEL_STORE_HASH_LEN]) KEEL_STORE_WUR;
/* Number of audit rows (for tests and metrics). */
int keel_store_audit_count(struct keel_store_txn *t, int64_t *out_count) KEEL_STORE_WUR;
/* Number of managed objects, every owner's (status screens, metrics). */
int keel_store_object_count(struct keel_store_txn *t, int64_t *out_count) KEEL_STORE_WUR;

/* ---- CRK rotation (keelctl crk rotate) ------------------------------------ */

/* How many objects hold a blob under one CRK version. */
struct keel_store_crk_count {
	uint32_t version;
	int64_t objects;
};

/* Objects per CRK version, ascending; *out_counts is freed with free(). */
int keel_store_crk_counts(struct keel_store_txn *t, struct keel_store_crk_count **out_counts,
			  size_t *out_num) KEEL_STORE_WUR;

/* One object a rotation still has to rewrap: its row id orders the sweep. */
struct keel_store_stale {
	int64_t rowid;
	char uid[KEEL_STORE_UID_MAX + 1];
	uint8_t *blob; /* malloc'd */
	size_t blob_len;
};

/*
 * Up to |max| objects with a blob not under CRK |version| and a row id above
 * |after|, by row id. *out_stale is freed with keel_store_stale_free.
 */
int keel_store_crk_stale(struct keel_store_txn *t, uint32_t version, int64_t after, size_t max,
			 struct keel_store_stale **out_stale, size_t *out_num) KEEL_STORE_WUR;
void keel_store_stale_free(struct keel_store_stale *stale, size_t num);

/*
 * Compare-and-set: replaces the blob of |uid| with |blob| (under CRK
 * |version|) only if the stored blob still equals |old|. KEEL_STORE_E_NOT_FOUND
 * when the object changed or went meanwhile: the caller leaves it alone.
 */
int keel_store_object_rewrap(struct keel_store_txn *t, const char *uid, const uint8_t *old,
			     size_t old_len, uint32_t version, const uint8_t *blob,
			     size_t blob_len) KEEL_STORE_WUR;

/* The last (or running) rotation, persisted so that a restart resumes it. */
struct keel_store_rotation {
	uint32_t target;  /* the CRK version every blob moves to */
	int64_t started;  /* POSIX seconds */
	int64_t finished; /* 0 while running */
	int64_t total;	  /* objects to rewrap when it started */
	int64_t done;	  /* rewrapped so far */
	int64_t cursor;	  /* row id the sweep has reached */
};

/* KEEL_STORE_E_NOT_FOUND if there never was a rotation. */
int keel_store_rotation_get(struct keel_store_txn *t,
			    struct keel_store_rotation *out) KEEL_STORE_WUR;
int keel_store_rotation_put(struct keel_store_txn *t,
			    const struct keel_store_rotation *r) KEEL_STORE_WUR;

/* ---- Backup and restore (keelctl backup) ---------------------------------- */

/*
 * A consistent image of the whole database (one read transaction), in
 * memory: *out_image is malloc'd and freed with free(). It holds only what
 * the store holds: key material stays CRK-wrapped.
 */
int keel_store_snapshot(struct keel_store *s, uint8_t **out_image, size_t *out_len) KEEL_STORE_WUR;

/* What an image holds, read without touching the live store. */
struct keel_store_image_info {
	int schema_version;
	int64_t objects;
	struct keel_store_crk_count *counts; /* objects per CRK version, malloc'd */
	size_t num_counts;
};

/* Checks an image (integrity, schema not newer than ours) and describes it;
 * free out->counts with free(). KEEL_STORE_E_SCHEMA for a damaged image. */
int keel_store_image_inspect(const uint8_t *image, size_t len,
			     struct keel_store_image_info *out) KEEL_STORE_WUR;

/*
 * Replaces the whole live database with |image| in one transaction (brought
 * to the current schema first): other connections see either the old or the
 * new content, never a mix. With |only_if_empty|, KEEL_STORE_E_EXISTS (and
 * nothing changed) if the store holds key material, checked with writers
 * held off so that none can add any before the image replaces it.
 */
int keel_store_restore(struct keel_store *s, const uint8_t *image, size_t len,
		       bool only_if_empty) KEEL_STORE_WUR;

/*
 * Grants. put adds |g| or, when (owner, uid, grantee) is already granted,
 * replaces its level, granter and time. delete removes one;
 * KEEL_STORE_E_NOT_FOUND if there is none. A grant on an object goes with
 * the object's row (keel_store_object_delete).
 */
int keel_store_grant_put(struct keel_store_txn *t, const struct keel_store_grant *g) KEEL_STORE_WUR;
int keel_store_grant_delete(struct keel_store_txn *t, const char *owner, const char *uid,
			    const char *grantee) KEEL_STORE_WUR;
/* The highest level granted to |grantee| on |uid| of |owner|, directly or owner-wide; 0: none. */
int keel_store_grant_level(struct keel_store_txn *t, const char *owner, const char *uid,
			   const char *grantee, uint32_t *out_level) KEEL_STORE_WUR;
/* Deletes every grant of or to |identity| (a client being removed); *out_num says how many. */
int keel_store_grant_forget(struct keel_store_txn *t, const char *identity,
			    size_t *out_num) KEEL_STORE_WUR;
/* Grants of |owner| and to |grantee| (NULL: any), oldest first; free() the array. */
int keel_store_grant_list(struct keel_store_txn *t, const char *owner, const char *grantee,
			  struct keel_store_grant **out_grants, size_t *out_num) KEEL_STORE_WUR;

/* ---- The Key Protect mirror's outbox (appliance/mirror, issue 6) ----------
 * While the mirror is on, every change to an object (its row or one of its
 * attributes) leaves an entry in the same transaction as the change: a KMIP
 * request never waits for Key Protect, and a crash loses nothing. One entry
 * per object holds the latest wish: ESCROW while the object exists, DELETE
 * once it is gone; a later change replaces it with a higher seq, so the
 * worker, taking entries oldest first, sends each object's changes in order. */
enum keel_store_mirror_op {
	KEEL_STORE_MIRROR_ESCROW = 1,
	KEEL_STORE_MIRROR_DELETE = 2,
	KEEL_STORE_MIRROR_REWRAP = 3, /* the escrow rewrapped under the root key's newest version */
};

struct keel_store_mirror_entry {
	char uid[KEEL_STORE_UID_MAX + 1];
	enum keel_store_mirror_op op;
	int64_t seq;
	int64_t time;	   /* when it was queued, POSIX seconds */
	uint32_t attempts; /* failed tries so far */
};

/* Turns the outbox on (every existing object is queued for escrow) or off
 * (the queue is emptied). Turning it on twice queues nothing new. */
int keel_store_mirror_set(struct keel_store_txn *t, bool on) KEEL_STORE_WUR;
/* Up to max entries with seq > after_seq, oldest first. */
int keel_store_mirror_next(struct keel_store_txn *t, int64_t after_seq, size_t max,
			   struct keel_store_mirror_entry *out, size_t *out_num) KEEL_STORE_WUR;
/* After the worker's try at e: done removes it, else its attempts count up.
 * Either way only if it is still e (same seq); KEEL_STORE_E_NOT_FOUND when a
 * newer change replaced it meanwhile (that one stays queued). */
int keel_store_mirror_settle(struct keel_store_txn *t, const struct keel_store_mirror_entry *e,
			     bool done) KEEL_STORE_WUR;
/* Entries queued. */
int keel_store_mirror_backlog(struct keel_store_txn *t, int64_t *out_count) KEEL_STORE_WUR;
/* REWRAP entries queued: what is left of a root key rotation's rewrap. */
int keel_store_mirror_rewraps(struct keel_store_txn *t, int64_t *out_count) KEEL_STORE_WUR;

/* The Key Protect root key that mirrors the CRK (mirror.h, mirror_enable). */
#define KEEL_STORE_MIRROR_ID_MAX 63
struct keel_store_mirror_root {
	bool enabled;	      /* the outbox is on */
	uint32_t mode;	      /* enum mirror_root_mode: 1 imported, 2 generated; 0 never enabled */
	uint32_t crk_version; /* the token's CRK version it mirrors */
	char key_id[KEEL_STORE_MIRROR_ID_MAX + 1];     /* "" when never enabled */
	char version_id[KEEL_STORE_MIRROR_ID_MAX + 1]; /* Key Protect's keyVersion.id */
	int64_t shredded; /* POSIX seconds the root key's deletion crypto-shredded us; 0 never */
};
/* What was recorded; all zero (enabled false, key_id "") before the first enable. */
int keel_store_mirror_root_get(struct keel_store_txn *t,
			       struct keel_store_mirror_root *out) KEEL_STORE_WUR;
/* Records that the root key's deletion crypto-shredded the appliance, at |when|
 * (the first time only: it is irreversible). */
int keel_store_mirror_shred(struct keel_store_txn *t, int64_t when) KEEL_STORE_WUR;
/* Records root (key_id required) and turns the outbox on, as keel_store_mirror_set. */
int keel_store_mirror_root_set(struct keel_store_txn *t,
			       const struct keel_store_mirror_root *root) KEEL_STORE_WUR;
/*
 * The root key rotated: records its new version_id (at most
 * KEEL_STORE_MIRROR_ID_MAX characters) as mirroring CRK crk_version, and
 * queues a REWRAP for every object that has no entry queued (a queued
 * ESCROW wraps under the new version anyway; a later change replaces a
 * REWRAP as it replaces any entry). *out_queued (may be NULL) says how many.
 */
int keel_store_mirror_rotated(struct keel_store_txn *t, uint32_t crk_version,
			      const char *version_id, int64_t *out_queued) KEEL_STORE_WUR;
/*
 * The client registry: certificates pinned by fingerprint with a role, and
 * trusted CAs (role "ca": any certificate chaining to one is a KMIP client).
 * The daemon keeps an in-memory snapshot for handshakes (appliance/clients).
 */
#define KEEL_STORE_NAME_MAX 128

struct keel_store_client {
	char fingerprint[KEEL_STORE_OWNER_MAX]; /* SHA-256 of the DER, lowercase hex */
	char name[KEEL_STORE_NAME_MAX + 1];	/* unique */
	char role[8];				/* "kmip", "admin", "auditor" or "ca" */
	char *pem;				/* the certificate; malloc'd */
	int64_t added;
};

/* Frees c->pem (not |c|). Accepts NULL. */
void keel_store_client_cleanup(struct keel_store_client *c);
void keel_store_clients_free(struct keel_store_client *clients, size_t num);

/* Registers |c|; KEEL_STORE_E_EXISTS when its fingerprint or name is taken. */
int keel_store_client_put(struct keel_store_txn *t,
			  const struct keel_store_client *c) KEEL_STORE_WUR;
/* The client whose fingerprint or name is |id|; cleanup with keel_store_client_cleanup. */
int keel_store_client_get(struct keel_store_txn *t, const char *id,
			  struct keel_store_client *out) KEEL_STORE_WUR;
/* Every registration, by name; keel_store_clients_free. */
int keel_store_client_list(struct keel_store_txn *t, struct keel_store_client **out,
			   size_t *out_num) KEEL_STORE_WUR;
int keel_store_client_rename(struct keel_store_txn *t, const char *fingerprint,
			     const char *name) KEEL_STORE_WUR;
int keel_store_client_delete(struct keel_store_txn *t, const char *fingerprint) KEEL_STORE_WUR;

/*
 * The first administrator's one-time enrolment codes (admin/enrol.h): each
 * kept as its verifier (a salted, slow hash; never the code itself) with its
 * expiry, the wrong attempts made against it, and when it was used (0: not
 * yet). A code is used once: keel_store_enrolment_use is a compare-and-set.
 */
#define KEEL_STORE_VERIFIER_MAX 192

struct keel_store_enrolment {
	char verifier[KEEL_STORE_VERIFIER_MAX + 1];
	int64_t expires; /* POSIX seconds */
	int64_t attempts;
	int64_t used; /* POSIX seconds; 0: not used */
};

/* Offers |verifier| until |expires|. One offered before stays as it is (used,
 * or with its attempts), so offering the same code at every start is harmless. */
int keel_store_enrolment_offer(struct keel_store_txn *t, const char *verifier,
			       int64_t expires) KEEL_STORE_WUR;
/* The newest code not used yet (expired or not); KEEL_STORE_E_NOT_FOUND when none. */
int keel_store_enrolment_pending(struct keel_store_txn *t,
				 struct keel_store_enrolment *out) KEEL_STORE_WUR;
/* Counts one more wrong attempt against |verifier|. */
int keel_store_enrolment_fail(struct keel_store_txn *t, const char *verifier) KEEL_STORE_WUR;
/* Marks |verifier| used now; KEEL_STORE_E_NOT_FOUND when it already was (or is unknown). */
int keel_store_enrolment_use(struct keel_store_txn *t, const char *verifier) KEEL_STORE_WUR;

#endif
