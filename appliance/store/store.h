/*
 * The store: Keel's persistence behind one interface (ARCHITECTURE.md,
 * "store/"). Objects, their attributes and the audit trail. The handle is
 * opaque and dispatches through a table of functions, so a PostgreSQL backend
 * can follow the SQLite one without touching the engine.
 *
 * Transactions: every read and write happens inside a keel_store_txn. The
 * engine runs one transaction per KMIP request, appends the audit rows in it,
 * and commits before the response leaves: keel_store_commit returns only
 * once the change is durable (SQLite: WAL with synchronous=FULL).
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

struct keel_store_query {
	const char *owner; /* required: a client only ever finds its own objects */
	const char *uid;   /* NULL: any */
	bool has_object_type, has_state;
	uint32_t object_type, state;
	const struct keel_store_filter *filters;
	size_t num_filters;
	const struct keel_store_date_range *dates;
	size_t num_dates;
	size_t offset;	  /* Offset Items */
	size_t max_items; /* 0: no limit */
};

/* An audit row: who did what to which object, and how it ended. No secrets. */
struct keel_store_audit {
	int64_t time;
	const char *client; /* fingerprint hex */
	uint32_t operation;
	const char *uid; /* may be NULL */
	uint32_t result_status;
	uint32_t result_reason; /* 0 on success */
};

struct keel_store;     /* opaque */
struct keel_store_txn; /* opaque: one open transaction on one connection */

/*
 * Opens (creating if needed) the SQLite database at |path| and runs its
 * migrations. |num_conns| connections are pooled (0 means 4).
 */
int keel_store_open_sqlite(const char *path, unsigned num_conns,
			   struct keel_store **out_store) KEEL_STORE_WUR;

/* The schema version the database is at. */
int keel_store_schema_version(struct keel_store *s, int *out_version) KEEL_STORE_WUR;

/* Closes every connection. Accepts NULL. No transaction may be open. */
void keel_store_close(struct keel_store *s);

/*
 * Takes a connection (waiting for one if all are busy) and begins a write
 * transaction. Ends with exactly one of keel_store_commit or
 * keel_store_rollback, which both hand the connection back.
 */
int keel_store_begin(struct keel_store *s, struct keel_store_txn **out_txn) KEEL_STORE_WUR;
/* Commits durably. On failure the transaction is rolled back. */
int keel_store_commit(struct keel_store_txn *t) KEEL_STORE_WUR;
void keel_store_rollback(struct keel_store_txn *t);

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
 */
int keel_store_object_get(struct keel_store_txn *t, const char *uid, const char *owner,
			  struct keel_store_object *out) KEEL_STORE_WUR;
/* Rewrites state, CRK version, blob and dates of an existing object. */
int keel_store_object_update(struct keel_store_txn *t,
			     const struct keel_store_object *o) KEEL_STORE_WUR;
/* Deletes an object and its attributes. */
int keel_store_object_delete(struct keel_store_txn *t, const char *uid) KEEL_STORE_WUR;

/* The attributes of |uid| (all, or those named |name|), by name then index. */
int keel_store_attr_list(struct keel_store_txn *t, const char *uid, const char *name,
			 struct keel_store_attr **out_attrs, size_t *out_num) KEEL_STORE_WUR;
/* Adds an instance; KEEL_STORE_E_EXISTS if (uid, name, index) is taken. */
int keel_store_attr_add(struct keel_store_txn *t, const char *uid,
			const struct keel_store_attr *a) KEEL_STORE_WUR;
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

/* Appends an audit row in the transaction, so it commits or vanishes with the change. */
int keel_store_audit_append(struct keel_store_txn *t,
			    const struct keel_store_audit *a) KEEL_STORE_WUR;
/* Number of audit rows (for tests and metrics). */
int keel_store_audit_count(struct keel_store_txn *t, int64_t *out_count) KEEL_STORE_WUR;

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
 * new content, never a mix.
 */
int keel_store_restore(struct keel_store *s, const uint8_t *image, size_t len) KEEL_STORE_WUR;

#endif