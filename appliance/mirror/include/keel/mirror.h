/*
 * The IBM Key Protect client (API v2 and IAM tokens), for the mirror of
 * ARCHITECTURE.md "Key Protect mirror" and issue 6. Reference:
 * ../shared/KEYPROTECT.md. HTTP through libcurl, JSON through jansson.
 *
 * A struct mirror is one connection's worth of state (curl handle, IAM
 * token): use it from one thread at a time. Every call refreshes the IAM token
 * before it expires, retries 429, 5xx (but 501) and connection failures with
 * exponential backoff that honours Retry-After, keeps one Correlation-Id across
 * the retries of one call, and maps the answer to enum mirror_err. Neither the
 * API key nor any plaintext ever reaches a log or an error; plaintext comes
 * back in locked memory (struct hsm_secret).
 */
#ifndef KEEL_MIRROR_H
#define KEEL_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/hsm.h>

#define MIRROR_WUR __attribute__((warn_unused_result))

#define MIRROR_DEFAULT_ENDPOINT "https://us-south.kms.cloud.ibm.com"
#define MIRROR_DEFAULT_IAM_URL	"https://iam.cloud.ibm.com/identity/token"
#define MIRROR_ID_LEN		64   /* room for a UUID and its NUL */
#define MIRROR_NAME_LEN		96   /* Key Protect names are 2..90 characters */
#define MIRROR_WRAP_MAX		3072 /* plaintext bytes: 4096 base64 characters */
#define MIRROR_STANDARD_MAX	7500 /* payload bytes of a standard key */
#define MIRROR_NONCE_LEN	12

enum mirror_err {
	MIRROR_OK = 0,
	MIRROR_E_INVAL = -1,	    /* bad argument or configuration */
	MIRROR_E_NOMEM = -2,	    /* allocation or locked memory */
	MIRROR_E_AUTH = -3,	    /* IAM refused the API key, or 401/403 with a fresh token */
	MIRROR_E_NOT_FOUND = -4,    /* 404: no such key (never was, or purged) */
	MIRROR_E_GONE = -5,	    /* 410: the key is deleted (state 5) */
	MIRROR_E_CONFLICT = -6,	    /* 409: its state, a timer or a policy forbids it now */
	MIRROR_E_REFUSED = -7,	    /* 400 or 422: request or ciphertext refused */
	MIRROR_E_UNAVAILABLE = -8,  /* 429, 5xx or no connection, after every retry */
	MIRROR_E_PROTOCOL = -9,	    /* an answer unlike what the API documents */
	MIRROR_E_API_KEY_FILE = -10 /* API-key file missing, too open, wrong owner or empty */
};

/* A short constant description of a MIRROR_E_* value. */
const char *mirror_strerror(int err);

/* Sleeps ms milliseconds between retries; tests replace it to see the waits. */
typedef void (*mirror_sleep_fn)(void *arg, uint32_t ms);

struct mirror_config {
	const char *endpoint;	     /* NULL: MIRROR_DEFAULT_ENDPOINT (no trailing /api/v2) */
	const char *iam_url;	     /* NULL: MIRROR_DEFAULT_IAM_URL */
	const char *instance_id;     /* required: the Bluemix-Instance GUID */
	const char *api_key_file;    /* required: 0600, owned by us; read into locked memory */
	const char *ca_bundle;	     /* NULL: the system's trust store */
	uint32_t timeout_ms;	     /* each HTTP exchange; 0: 30000 */
	uint32_t max_retries;	     /* retries after the first attempt; 0: 4 (IBM's Go client) */
	uint32_t backoff_initial_ms; /* 0: 1000, doubling per retry */
	uint32_t backoff_max_ms;     /* 0: 30000 */
	mirror_sleep_fn sleep;	     /* NULL: nanosleep */
	void *sleep_arg;
};

struct mirror; /* opaque */

/* Reads the API key and sets up curl; no network traffic yet. */
int mirror_new(const struct mirror_config *cfg, struct mirror **out_m) MIRROR_WUR;
/* Wipes the API key and the token. NULL is fine. */
void mirror_free(struct mirror *m);

/* What Key Protect says about one key (metadata; never material). */
struct mirror_key {
	char id[MIRROR_ID_LEN];
	char name[MIRROR_NAME_LEN];
	char version_id[MIRROR_ID_LEN]; /* keyVersion.id, "" when absent */
	int state;			/* 1 active, 2 suspended, 3 deactivated, 5 destroyed */
	bool extractable;		/* true: standard key, false: root key */
	bool imported;
};

/* ---- keys ---------------------------------------------------------------- */

/* A root key whose material Key Protect generates (the CRK is not extractable). */
int mirror_create_root(struct mirror *m, const char *name, struct mirror_key *out_key) MIRROR_WUR;

/* A standard key holding payload (1..MIRROR_STANDARD_MAX bytes), e.g. an escrow blob. */
int mirror_create_standard(struct mirror *m, const char *name, const uint8_t *payload,
			   size_t payload_len, struct mirror_key *out_key) MIRROR_WUR;

/* Metadata of a key by id or alias; *out_payload (may be NULL) gets a
 * standard key's payload in locked memory, NULL for a root key. */
int mirror_get_key(struct mirror *m, const char *id, struct mirror_key *out_key,
		   struct hsm_secret **out_payload) MIRROR_WUR;

/* Called per key by the walks below; a non-zero return stops the walk and is returned. */
typedef int (*mirror_list_fn)(void *arg, const struct mirror_key *key);

/* The live (state 1-3) key named exactly name: MIRROR_E_NOT_FOUND when none,
 * so that a retried create can first look for what an earlier attempt made. */
int mirror_find_by_name(struct mirror *m, const char *name, struct mirror_key *out_key) MIRROR_WUR;

/* Calls fn for every live key named exactly name (there may be several:
 * Key Protect does not keep names unique); fn's non-zero return stops it. */
int mirror_find_all(struct mirror *m, const char *name, mirror_list_fn fn, void *arg) MIRROR_WUR;

/* Calls fn for every key whose name starts with prefix ("" for all), in
 * states 1-3 (and 5 with with_deleted), page by page; a non-zero return from
 * fn stops the walk and is returned. */
int mirror_list(struct mirror *m, const char *prefix, bool with_deleted, mirror_list_fn fn,
		void *arg) MIRROR_WUR;

/* Deletes a key (state 5). MIRROR_E_GONE when it already was. */
int mirror_delete(struct mirror *m, const char *id) MIRROR_WUR;

/* ---- root-key actions ------------------------------------------------------ */

/* Wraps pt (1..MIRROR_WRAP_MAX bytes) under root key id with AAD aad (a
 * string, or NULL). *out_ciphertext is Key Protect's opaque ciphertext,
 * malloc'd; out_version gets the key version that wrapped it. */
int mirror_wrap(struct mirror *m, const char *id, const uint8_t *pt, size_t pt_len, const char *aad,
		char **out_ciphertext, char out_version[MIRROR_ID_LEN]) MIRROR_WUR;

/* Unwraps a ciphertext (same aad) into locked memory. When an older version
 * made it, *out_rewrapped (if not NULL) gets the copy under the newest
 * version, else NULL. */
int mirror_unwrap(struct mirror *m, const char *id, const char *ciphertext, const char *aad,
		  struct hsm_secret **out_pt, char **out_rewrapped) MIRROR_WUR;

/* The ciphertext rewrapped under the newest version (no plaintext returned). */
int mirror_rewrap(struct mirror *m, const char *id, const char *ciphertext, const char *aad,
		  char **out_ciphertext) MIRROR_WUR;

/* ---- secure import (KEYPROTECT.md §2 "Secure import") ---------------------- */

struct mirror_import_token {
	char *public_key_pem; /* SPKI PEM of the RSA-4096 key, NUL-terminated, malloc'd */
	uint8_t nonce[MIRROR_NONCE_LEN];
};

/* Creates the instance's import token (replacing any) and retrieves it once. */
int mirror_import_token(struct mirror *m, uint32_t expiration_s,
			struct mirror_import_token *out_token) MIRROR_WUR;
void mirror_import_token_cleanup(struct mirror_import_token *t);

/* Key material as hsm_crk_export and hsm_crk_encrypt_nonce make it:
 * RSA-OAEP-SHA-256 under the token's key; the token's nonce AES-GCM-sealed
 * (ciphertext | tag) under the material with a 12-byte IV. */
struct mirror_secure_payload {
	const uint8_t *wrapped;
	size_t wrapped_len;
	const uint8_t *encrypted_nonce;
	size_t encrypted_nonce_len;
	const uint8_t *iv;
	size_t iv_len;
};

/* A root key from securely imported material. */
int mirror_import_root(struct mirror *m, const char *name, const struct mirror_secure_payload *sp,
		       struct mirror_key *out_key) MIRROR_WUR;

/* A new version of root key id: generated by Key Protect when sp is NULL,
 * else the securely imported material (an imported key needs it). */
int mirror_rotate(struct mirror *m, const char *id,
		  const struct mirror_secure_payload *sp) MIRROR_WUR;

/* Key material that secure import can send: wrap is RSA-OAEP-SHA-256 of it
 * under the import token's key (big-endian modulus and exponent), seal the
 * nonce AES-GCM-sealed under it; both return 0 or an HSM_E_* and malloc their
 * output, as hsm_crk_export and hsm_crk_encrypt_nonce do for the token's CRK
 * (tests stand in for the token with OpenSSL). */
struct mirror_material {
	int (*wrap)(void *arg, const uint8_t *modulus, size_t modulus_len, const uint8_t *exponent,
		    size_t exponent_len, uint8_t **out, size_t *out_len);
	int (*seal)(void *arg, const uint8_t *nonce, size_t nonce_len, uint8_t iv[HSM_GCM_IV_LEN],
		    uint8_t **out, size_t *out_len);
	void *arg;
};

/*
 * Rotates root key id with mat by secure import (a fresh import token), then
 * reads the key back: out_key->version_id is the new version. The material
 * leaves its holder only wrapped. MIRROR_E_REFUSED when mat cannot be
 * exported so (HSM_E_NOT_EXTRACTABLE or HSM_E_MECHANISM); whatever Key
 * Protect refuses (409: one rotation an hour) leaves the root key as it was.
 */
int mirror_rotate_secure(struct mirror *m, const char *id, const struct mirror_material *mat,
			 struct mirror_key *out_key) MIRROR_WUR;
/* mirror_rotate_secure with the token's staged CRK (hsm_crk_stage). */
int mirror_rotate_staged(struct mirror *m, struct hsm *h, const char *id,
			 struct mirror_key *out_key) MIRROR_WUR;

/* ---- enabling: the CRK as a root key (issue 6, "Set-up") ---------------------- */

enum mirror_root_mode {
	MIRROR_ROOT_IMPORTED = 1,  /* the CRK itself, by secure import (BYOK) */
	MIRROR_ROOT_GENERATED = 2, /* Key Protect's own material: the CRK cannot leave the token */
	MIRROR_ROOT_ADOPTED = 3,   /* the root key a recovery restored from (mirror_recovery_*) */
};

struct mirror_root {
	struct mirror_key key;
	enum mirror_root_mode mode;
	uint32_t crk_version; /* the token's active CRK when it was mirrored */
};

/*
 * Mirrors the token's active CRK as root key `name`: secure import when the
 * token can wrap it under the import token's key with RSA-OAEP-SHA-256;
 * otherwise (not extractable, or a token without SHA-256 OAEP wrapping, as
 * SoftHSM 2.6) a root key Key Protect generates, and out->mode says which.
 */
int mirror_enable(struct mirror *m, struct hsm *h, const char *name,
		  struct mirror_root *out) MIRROR_WUR;

/* ---- counters, for status and metrics -------------------------------------- */

struct mirror_stats {
	uint64_t requests;	/* HTTP exchanges attempted, IAM included */
	uint64_t retries;	/* of which repeated after 429/5xx/connection failure */
	uint64_t token_fetches; /* IAM token requests that succeeded */
	int last_error;		/* MIRROR_E_* of the last failed call, 0 if none */
	long last_status;	/* HTTP status of the last answer, 0 if none */
};
void mirror_get_stats(const struct mirror *m, struct mirror_stats *out);

/* ---- the worker: drains the store's outbox into Key Protect ---------------- */

struct keel_store;
struct mirror_worker; /* opaque */

/* The plaintext to escrow for object uid (its managed object as TTLV), in
 * locked memory. MIRROR_E_NOT_FOUND when the object is gone (its entry is
 * then done); any other error is retried later. */
typedef int (*mirror_export_fn)(void *arg, const char *uid, struct hsm_secret **out_plain);

#define MIRROR_ESCROW_PREFIX "keel-" /* escrow keys are named keel-<uid> */
#define MIRROR_NAME_MAX	     90	     /* Key Protect refuses longer names (2..90 characters) */
/* 85: the longest uid keel-<uid> holds */
#define MIRROR_ESCROW_UID_MAX (MIRROR_NAME_MAX - (sizeof(MIRROR_ESCROW_PREFIX) - 1))

/*
 * The escrow key's name for uid, keel-<uid>, into out (MIRROR_NAME_LEN bytes).
 * Keel's own uids are 36-character UUIDs (41-character names); a uid that
 * cannot be named so (empty, over MIRROR_ESCROW_UID_MAX, or a character other
 * than [A-Za-z0-9._-]) is refused with MIRROR_E_INVAL, never truncated or
 * mapped: a recovery reads the uid back from the name. The inverse, for a
 * name listed in Key Protect, is mirror_escrow_uid.
 */
int mirror_escrow_name(const char *uid, char out[MIRROR_NAME_LEN]) MIRROR_WUR;
/* The uid in escrow key name `name`, or NULL when it is not an escrow's name. */
const char *mirror_escrow_uid(const char *name);

struct mirror_worker_config {
	struct keel_store *store;
	struct mirror *client;	 /* used by the worker's thread only; the caller frees it */
	const char *root_key_id; /* the mirrored root key that wraps every escrow */
	mirror_export_fn export_fn;
	void *export_arg;
	uint32_t idle_ms;  /* between looks at an empty outbox; 0: 1000 */
	uint32_t pause_ms; /* after Key Protect was unavailable; 0: 5000 */
	/* Revocation polling (may be NULL): called on the worker's thread with
	 * its client before a pass, every poll_ms (0: 300000) and after a kick. */
	void (*poll_fn)(void *arg, struct mirror *client);
	void *poll_arg;
	uint32_t poll_ms;
};

struct mirror_worker_status {
	int64_t backlog;      /* entries queued at the last look */
	int64_t rewraps;      /* of which REWRAP entries (a root key rotation's) */
	uint64_t escrowed;    /* escrow keys written */
	uint64_t deleted;     /* objects whose escrow was removed */
	uint64_t refused;     /* entries settled unescrowed: the uid makes no name (logged) */
	uint64_t rewrapped;   /* escrows rewrapped after a root key rotation */
	int64_t last_success; /* POSIX seconds, 0 before the first */
	int last_error;	      /* MIRROR_E_* of the last failure, 0 if none since a success */
};

/*
 * Each outbox entry, oldest first: ESCROW exports the object, wraps it under
 * the root key with AAD = uid (an object over MIRROR_WRAP_MAX bytes is sealed
 * with a fresh AES-256-GCM key, and that key is wrapped), writes it as the
 * standard key keel-<uid> and then deletes every older keel-<uid> (so retries
 * and lost answers leave exactly one); DELETE removes every keel-<uid>;
 * REWRAP (after the root key rotated) rewraps keel-<uid>'s ciphertext under
 * the newest version with Key Protect's rewrap action and replaces the key
 * the same way. An entry is settled only if no newer change replaced it
 * meanwhile.
 */
int mirror_worker_drain(const struct mirror_worker_config *cfg,
			struct mirror_worker_status *status) MIRROR_WUR;

/* mirror_worker_drain in a thread, again and again, until mirror_worker_stop. */
int mirror_worker_start(const struct mirror_worker_config *cfg,
			struct mirror_worker **out_w) MIRROR_WUR;
/* Wakes the worker now (after a change, or `keelctl mirror sync`). */
void mirror_worker_kick(struct mirror_worker *w);
void mirror_worker_get_status(struct mirror_worker *w, struct mirror_worker_status *out);
/* Stops and joins the thread. NULL is fine. */
void mirror_worker_stop(struct mirror_worker *w);

/* ---- the service: keeld's mirror (its root key in the store, its worker) ---- */

struct mirror_service; /* opaque */

struct mirror_service_config {
	struct mirror_config client; /* strings must outlive the service */
	struct keel_store *store;    /* keel_store_mirror_root_* and the outbox */
	struct hsm *hsm;	     /* the token whose CRK mirror_enable mirrors */
	mirror_export_fn export_fn;  /* the engine's export, for the worker */
	void *export_arg;
	const char *root_name;		     /* the root key's name; NULL: MIRROR_ROOT_NAME */
	uint32_t idle_ms, pause_ms, poll_ms; /* the worker's (mirror_worker_config) */
	/* Stops key serving (why, a static string) or resumes it (NULL): the
	 * revocation polling's verdict, from the worker's thread. */
	void (*refuse_fn)(void *arg, const char *why);
	void *refuse_arg;
	/* Revokes and destroys object uid, whose every keel-<uid> was deleted in
	 * Key Protect (from the worker's thread). */
	void (*withdraw_fn)(void *arg, const char *uid);
	void *withdraw_arg;
};

/* Not under MIRROR_ESCROW_PREFIX: a recovery lists keel-* as escrows. */
#define MIRROR_ROOT_NAME "crk-keel"

/*
 * Reads the API key (for the worker's client and the enabling one) and the
 * recorded root key; when the mirror is enabled, starts the worker. No
 * network traffic yet. Once a crypto-shred was recorded, refuses key serving
 * at once and destroys any CRK version the token holds again.
 *
 * Revocation polling (with each worker pass that is due, and on sync): the
 * root key deleted in Key Protect (state 5, 404 or 410) crypto-shreds the
 * appliance, irreversibly: refuse_fn stops key serving, a critical audit
 * row (CryptoShred) and the time are recorded, every CRK version in the
 * token is destroyed. The root key disabled (state 2) suspends key serving
 * until it is enabled again. An object whose keel-<uid> keys are all deleted
 * (none live) is withdrawn through withdraw_fn; the others are unaffected.
 */
int mirror_service_open(const struct mirror_service_config *cfg,
			struct mirror_service **out_s) MIRROR_WUR;
/* Stops the worker and wipes both clients. NULL is fine. */
void mirror_service_close(struct mirror_service *s);

/*
 * `keelctl mirror enable`: mirror_enable, the root key recorded in the store
 * together with the outbox turned on (every existing object is queued), then
 * the worker started. Once enabled, answers the recorded root key again with
 * *out_already true. Thread-safe.
 */
int mirror_service_enable(struct mirror_service *s, struct mirror_root *out,
			  bool *out_already) MIRROR_WUR;

/*
 * `keelctl crk rotate`'s new CRK version (keel_rotation_config.new_version_fn).
 * Imported mode keeps the token's CRK and the root key in step: the token
 * stages the next CRK (extractable, so only by wrapping), Key Protect rotates
 * the root key with it by secure import, and only then is it promoted to the
 * token's active version (*out_version); the new root key version is recorded
 * and every escrow queued for rewrap. If Key Protect does not take it, the
 * staged key is discarded and nothing changed (a MIRROR_E_*). A rotation cut
 * short after Key Protect took it is finished by the next poll (or rotation).
 * Otherwise (not enabled, generated mode) returns 1: the caller generates the
 * version as without the mirror, and generated mode's root key follows at the
 * worker's next poll. Thread-safe.
 */
int mirror_service_new_crk(struct mirror_service *s, uint32_t *out_version) MIRROR_WUR;

/* `keelctl mirror sync`: wakes the worker now. false when the mirror is off. */
bool mirror_service_sync(struct mirror_service *s);

struct mirror_service_status {
	bool enabled;
	enum mirror_root_mode mode; /* 0 when not enabled */
	uint32_t crk_version;	    /* the CRK version the root key last rotated with */
	uint32_t token_crk_version; /* the token's active CRK (newer: a rotation to follow) */
	char root_key_id[MIRROR_ID_LEN];
	char root_version[MIRROR_ID_LEN]; /* the root key's Key Protect version, as recorded */
	int64_t backlog;		  /* outbox entries now; -1 when the store could not say */
	int64_t rewraps;      /* of which escrows still to rewrap after a root key rotation */
	uint64_t escrowed;    /* escrow keys written since keeld started */
	int64_t last_success; /* POSIX seconds, 0 before the first */
	int last_error;	      /* MIRROR_E_* of the last failure, 0 if none since a success */
	int64_t shredded;     /* POSIX seconds of the crypto-shred, 0 none */
	bool suspended;	      /* the root key is disabled: key serving suspended */
};
/* Thread-safe. */
void mirror_service_status(struct mirror_service *s, struct mirror_service_status *out);

/*
 * Adopts root key root->id as the mirror's root (mode MIRROR_ROOT_ADOPTED,
 * with the token's active CRK version): a recovery's, so that escrows go on
 * under the key they were restored from. Recorded with the outbox on; the
 * worker starts when start is true. Adopting the recorded root key again is
 * fine; another one, while enabled, is MIRROR_E_CONFLICT. Thread-safe.
 */
int mirror_service_adopt(struct mirror_service *s, const struct mirror_key *root,
			 bool start) MIRROR_WUR;

/* ---- recovery: `keelctl recover --from-keyprotect` (recover.c) -------------- */

/* Restores object uid from the plaintext of its escrow (the engine's import):
 * 0 restored, 1 already there and identical, else negative with *out_why a
 * static reason. */
typedef int (*mirror_import_fn)(void *arg, const char *uid, struct hsm_secret *plain,
				const char **out_why);
/* mirror_service_adopt's shape. */
typedef int (*mirror_adopt_fn)(void *arg, const struct mirror_key *root, bool start);

struct mirror_recovery_config {
	struct mirror_config client; /* strings must outlive the recovery */
	struct keel_store *store;    /* its object count, mirror root and audit trail */
	const char *root_name;	     /* NULL: MIRROR_ROOT_NAME */
	mirror_import_fn import_fn;
	void *import_arg;
	mirror_adopt_fn adopt_fn;
	void *adopt_arg;
};

enum mirror_recovery_state {
	MIRROR_RECOVERY_IDLE = 0,
	MIRROR_RECOVERY_RUNNING = 1,
	MIRROR_RECOVERY_DONE = 2,   /* every escrow tried: see failed */
	MIRROR_RECOVERY_FAILED = 3, /* stopped: error says why (the list could not be read) */
};

#define MIRROR_RECOVERY_FAILURES_MAX 64 /* named in the status; more are counted and logged */

struct mirror_recovery_failure {
	char uid[MIRROR_NAME_LEN];
	const char *why; /* static */
};

struct mirror_recovery_status {
	enum mirror_recovery_state state;
	int error; /* MIRROR_E_* when FAILED */
	char root_key_id[MIRROR_ID_LEN];
	uint64_t total;	    /* uids escrowed (copies of one uid count once) */
	uint64_t processed; /* of which tried so far */
	uint64_t restored, present, failed;
	int64_t started, finished; /* POSIX seconds; finished 0 while running */
	struct mirror_recovery_failure failures[MIRROR_RECOVERY_FAILURES_MAX];
	size_t num_failures;
};

struct mirror_recovery; /* opaque */

/* Reads the API key for the recovery's own client; no network traffic yet. */
int mirror_recovery_new(const struct mirror_recovery_config *cfg,
			struct mirror_recovery **out) MIRROR_WUR;
/* Waits for a running walk to end. NULL is fine. */
void mirror_recovery_free(struct mirror_recovery *rc);

/*
 * Starts (or resumes) a recovery: finds Keel's root key by name, refuses a
 * store that holds objects unless force or it already adopted that root key
 * (a run cut short, or a second run), a store that mirrors to another root
 * key or was crypto-shredded, and a second concurrent run (MIRROR_E_CONFLICT,
 * *out_why a static reason). Then adopts the root key without escrowing yet,
 * and walks every keel-* escrow on a thread: fetch, open through Key Protect,
 * import; the worker starts once the walk ends. Not thread-safe (the admin
 * thread's).
 */
int mirror_recovery_start(struct mirror_recovery *rc, bool force, const char **out_why) MIRROR_WUR;
/* A snapshot of the current or last run. Thread-safe. */
void mirror_recovery_status(struct mirror_recovery *rc, struct mirror_recovery_status *out);

#endif
