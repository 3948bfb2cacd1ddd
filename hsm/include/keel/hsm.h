/*
 * libhsm: the only code in Keel that talks PKCS#11 (issue 3).
 *
 * It loads a module (by p11-kit name or by path), finds one token, logs in with
 * a PIN read from a file, keeps a pool of sessions, owns the customer root key
 * (CRK) versions "keel-crk-v<N>" and wraps/unwraps managed-object key material
 * inside the token. Faults of the token are reported per request and repaired
 * in the background of the next requests (reopen, log in again, with backoff).
 *
 * Errors: every fallible function returns 0 or a negative HSM_E_* value. No
 * function prints; diagnostics go to the log callback of struct hsm_config.
 * Neither the PIN nor key material ever reaches a log line or an error string.
 *
 * Threads: every function taking a struct hsm may be called from any number of
 * threads at once, except hsm_close.
 */
#ifndef KEEL_HSM_H
#define KEEL_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HSM_WUR __attribute__((warn_unused_result))

enum hsm_err {
	HSM_OK = 0,
	HSM_E_INVAL = -1,	       /* bad argument (NULL, zero length, out of range) */
	HSM_E_NOMEM = -2,	       /* allocation or mlock failed */
	HSM_E_MODULE_NOT_FOUND = -3,   /* no such p11-kit module name or file */
	HSM_E_MODULE_INVALID = -4,     /* the file is not a PKCS#11 module */
	HSM_E_MODULE_INIT = -5,	       /* C_Initialize or C_GetInfo failed */
	HSM_E_TOKEN_NOT_FOUND = -6,    /* no token with that label or serial */
	HSM_E_PIN_FILE = -7,	       /* PIN file missing, unreadable, too open, wrong owner */
	HSM_E_PIN_INCORRECT = -8,      /* the token refused the PIN; not retried */
	HSM_E_PIN_LOCKED = -9,	       /* the token locked the user PIN */
	HSM_E_TOKEN_UNAVAILABLE = -10, /* token or session lost; recovery pending */
	HSM_E_CRK_NOT_FOUND = -11,     /* no CRK (of that version) in the token */
	HSM_E_BLOB_FORMAT = -12,       /* wrapped blob truncated or of an unknown format */
	HSM_E_AUTH = -13,	       /* blob does not authenticate: tampered, moved, wrong key */
	HSM_E_MECHANISM = -14,	       /* the token does not offer the mechanism or parameters */
	HSM_E_NOT_EXTRACTABLE = -15,   /* export of a CRK the token keeps non-extractable */
	HSM_E_DEVICE = -16,	       /* any other error the module reported */
	HSM_E_RANGE = -17,	       /* a size beyond what this layer accepts */
	HSM_E_CRK_EXISTS = -18,	       /* a CRK with that version already exists */
	HSM_E_BUFFER = -19,	       /* caller's output buffer too small */
	HSM_E_TIMEOUT = -20,	       /* the token did not answer within timeout_ms */
};

/* A short, constant description of an HSM_E_* value. Never contains a secret. */
const char *hsm_strerror(int err);

enum hsm_log_level {
	HSM_LOG_ERROR = 0,
	HSM_LOG_WARNING = 1,
	HSM_LOG_INFO = 2,
	HSM_LOG_DEBUG = 3,
};

/* How hsm_wrap protects key material; both are unwrapped whatever the setting. */
enum hsm_wrap_mode {
	HSM_WRAP_GCM = 0, /* AES-256-GCM via C_Encrypt, AAD binds UID and CRK version */
	HSM_WRAP_KWP = 1, /* AES-KWP (RFC 5649) via C_WrapKey, UID and version inside */
};

struct hsm_config {
	/* A p11-kit module name ("softhsm2") or, if it contains '/', a file path. */
	const char *module;
	/* The token: by label, or by serial when token_label is NULL. */
	const char *token_label;
	const char *token_serial;
	/* File holding the user PIN: regular, owned by us, mode 0600 or stricter. */
	const char *pin_file;
	/* Sessions in the pool; 0 means 8. One session serves one call at a time. */
	unsigned pool_size;
	enum hsm_wrap_mode wrap_mode;
	/*
	 * How long hsm_wrap, hsm_unwrap (and so hsm_rewrap) and hsm_random wait
	 * for a token that does not answer before they fail with HSM_E_TIMEOUT,
	 * in ms. Their PKCS#11 calls then run on pool_size threads of libhsm's
	 * own; one that hangs finishes in the background, and until it does the
	 * next calls fail at once. 0: no bound, the calls run on the caller's
	 * thread.
	 */
	unsigned timeout_ms;
	/*
	 * Recovery backoff after a token fault: first delay and cap, in ms.
	 * 0 means the defaults (200 ms, 2 s); a negative initial delay disables
	 * the backoff so that every request retries (for tests).
	 */
	int backoff_initial_ms;
	int backoff_max_ms;
	/*
	 * Optional log sink; msg is a complete line without newline. Called from
	 * whichever thread hit the event, possibly from several at once.
	 */
	void (*log)(void *log_arg, enum hsm_log_level level, const char *msg);
	void *log_arg;
	/* Optional, for metrics: called after each hsm_wrap and hsm_unwrap with
	 * how long it took (monotonic nanoseconds), from the calling thread. */
	void (*observe)(void *observe_arg, uint64_t ns);
	void *observe_arg;
};

struct hsm; /* opaque */

/*
 * Loads the module, finds the token, reads the PIN, logs in, opens the pool and
 * finds the CRK versions. On success *out_hsm is owned by the caller (hsm_close).
 * HSM_E_PIN_INCORRECT is final: the PIN is tried once.
 */
int hsm_open(const struct hsm_config *cfg, struct hsm **out_hsm) HSM_WUR;

/* Closes every session, finalizes the module if unused, wipes the PIN. NULL ok. */
void hsm_close(struct hsm *h);

/* ---- Status (keelctl hsm status) --------------------------------------- */

enum hsm_state {
	HSM_STATE_READY = 0,	    /* sessions open and logged in */
	HSM_STATE_RECOVERING = 1,   /* a fault was seen; next requests reopen */
	HSM_STATE_PIN_REJECTED = 2, /* login refused; needs a new PIN and hsm_open */
};

struct hsm_info {
	char module_path[256];	/* the file that was loaded */
	char module_desc[33];	/* CK_INFO libraryDescription, trimmed */
	char module_vendor[33]; /* CK_INFO manufacturerID */
	unsigned module_version_major, module_version_minor;
	unsigned long slot; /* PKCS#11 slot id */
	char slot_desc[65];
	char token_label[33];
	char token_vendor[33];
	char token_model[17];
	char token_serial[17];
	bool token_present; /* false: token fields are empty, the token did not answer */
	bool pin_count_low, pin_final_try, pin_locked; /* CKF_USER_PIN_* */
	unsigned pool_size;
	unsigned pool_in_use;
	enum hsm_state state;
	uint64_t faults;     /* token faults seen since hsm_open */
	uint64_t recoveries; /* successful reopen + login since hsm_open */
	uint32_t active_crk; /* 0 if there is none */
	enum hsm_wrap_mode wrap_mode;
};

/*
 * Fills *out_info. Module and token fields are read live; if the token does not
 * answer, token_present is false and the call still succeeds, so an operator
 * sees the state and fault counters of a token that went away.
 */
int hsm_get_info(struct hsm *h, struct hsm_info *out_info) HSM_WUR;

/*
 * Tries to reopen sessions and log in now, ignoring the backoff. 0 if the
 * token is usable afterwards (or already was).
 */
int hsm_recover(struct hsm *h) HSM_WUR;

/* ---- CRK versions (keelctl hsm init-crk | import-crk | list) ----------- */

#define HSM_CRK_KEY_LEN 32 /* AES-256 */
#define HSM_KCV_LEN	3  /* key check value: AES-ECB(key, 0^16)[0..3] */

/* Flags for hsm_crk_generate and hsm_crk_import. */
#define HSM_CRK_EXTRACTABLE 0x1u /* may leave the token wrapped (RSA-OAEP export) */

#define HSM_CRK_CREATED_LEN 21 /* "YYYY-MM-DDTHH:MM:SSZ" and NUL */

struct hsm_crk_info {
	uint32_t version;
	char created[HSM_CRK_CREATED_LEN]; /* UTC; "" if the key was not made by libhsm */
	bool extractable;
	bool active; /* the newest version: hsm_wrap uses it */
	uint8_t kcv[HSM_KCV_LEN];
	bool has_kcv; /* false if the token refused the check computation */
};

/*
 * Generates CRK version N+1 (N the newest, 0 if none) as a sensitive AES-256
 * token key; it becomes the active version. *out_version is optional.
 */
int hsm_crk_generate(struct hsm *h, unsigned flags, uint32_t *out_version) HSM_WUR;

/*
 * Imports 32 bytes of existing key material (BYOK) as CRK version N+1. The
 * caller wipes its copy; pass HSM_CRK_EXTRACTABLE to allow hsm_crk_export.
 */
int hsm_crk_import(struct hsm *h, const uint8_t key[static HSM_CRK_KEY_LEN], unsigned flags,
		   uint32_t *out_version) HSM_WUR;

/* The versions found in the token, oldest first; *out_list is freed with free(). */
int hsm_crk_list(struct hsm *h, struct hsm_crk_info **out_list, size_t *out_num) HSM_WUR;

/* The active (newest) version; HSM_E_CRK_NOT_FOUND if the token has none. */
int hsm_crk_active(struct hsm *h, uint32_t *out_version) HSM_WUR;

/* Key check value of one version (to compare with the copy held elsewhere). */
int hsm_crk_kcv(struct hsm *h, uint32_t version, uint8_t out_kcv[static HSM_KCV_LEN]) HSM_WUR;

/* Destroys one version in the token (retirement or crypto-shredding). */
int hsm_crk_destroy(struct hsm *h, uint32_t version) HSM_WUR;

/* Searches the token again for versions made elsewhere (another node, keelctl). */
int hsm_crk_rescan(struct hsm *h) HSM_WUR;

/*
 * A staged version: the next CRK made in the token ("keel-crk-staged") but
 * not yet a version, so nothing wraps under it, until hsm_crk_promote makes
 * it version N+1 (the newest, active). A mirror whose root key is the CRK
 * (Key Protect BYOK) imports it first, so that the token's active CRK never
 * runs ahead of the root key. HSM_CRK_STAGED names it to hsm_crk_export,
 * hsm_crk_encrypt_nonce, hsm_crk_kcv and hsm_crk_destroy (which discards it).
 */
#define HSM_CRK_STAGED 0u
/* Generates the staged key (flags as hsm_crk_generate); HSM_E_CRK_EXISTS if one is. */
int hsm_crk_stage(struct hsm *h, unsigned flags) HSM_WUR;
/* The staged key becomes version N+1; HSM_E_CRK_NOT_FOUND if none is staged. */
int hsm_crk_promote(struct hsm *h, uint32_t *out_version) HSM_WUR;
/* Whether a staged key is in the token (as of the last scan). */
bool hsm_crk_has_staged(struct hsm *h);

/*
 * Changes the token's user PIN (C_SetPIN in the logged-in session) to the one
 * in |new_pin_file| (the pin_file rules); later logins of |h| use it. The
 * old PIN stays in effect when the token refuses the new one (HSM_E_INVAL:
 * out of its length range, or characters it does not take).
 */
int hsm_set_pin(struct hsm *h, const char *new_pin_file) HSM_WUR;

/* ---- Wrapping managed-object key material ------------------------------ */

/*
 * Blob, version 1 (all integers big-endian):
 *   u8 format (1) | u8 algorithm (1 GCM, 2 KWP) | u32 CRK version |
 *   GCM: 12-byte IV | ciphertext | 16-byte tag
 *   KWP: RFC 5649 output over (u16 uid_len | uid | key material)
 * GCM AAD = the 6 header bytes | u32 uid_len | uid.
 */
#define HSM_BLOB_FORMAT	    1
#define HSM_BLOB_HEADER_LEN 6
#define HSM_GCM_IV_LEN	    12
#define HSM_GCM_TAG_LEN	    16
#define HSM_MAX_KEY_LEN	    8192 /* largest material accepted (an RSA-4096 key in DER fits) */
#define HSM_MAX_UID_LEN	    1024

/* Key material in locked, non-dumpable memory; wiped on hsm_secret_free. */
struct hsm_secret; /* opaque */

/* A zeroed secret of len bytes (1..HSM_MAX_KEY_LEN). */
int hsm_secret_new(size_t len, struct hsm_secret **out_secret) HSM_WUR;
uint8_t *hsm_secret_data(struct hsm_secret *s);
size_t hsm_secret_len(const struct hsm_secret *s);
void hsm_secret_free(struct hsm_secret *s);

/*
 * Reads a secret file (the PIN, an API key) into a secret of its length: a
 * regular file owned by the effective user, mode 0600 or stricter, 1 to
 * max_len (< HSM_MAX_KEY_LEN) bytes once trailing newlines are dropped.
 * HSM_E_PIN_FILE when the file is refused; |why| then says why, never with
 * any of its content.
 */
int hsm_secret_read_file(const char *path, size_t max_len, struct hsm_secret **out_secret,
			 char *why, size_t why_len) HSM_WUR;

/*
 * Wraps key material for object uid under the active CRK with the configured
 * mode. *out_blob is malloc'd (not secret) and freed with free().
 */
int hsm_wrap(struct hsm *h, const uint8_t *uid, size_t uid_len, const uint8_t *key, size_t key_len,
	     uint8_t **out_blob, size_t *out_blob_len) HSM_WUR;

/*
 * Unwraps a blob made for uid. HSM_E_AUTH if it was made for another uid or
 * altered; HSM_E_CRK_NOT_FOUND if its CRK version is not in the token.
 */
int hsm_unwrap(struct hsm *h, const uint8_t *uid, size_t uid_len, const uint8_t *blob,
	       size_t blob_len, struct hsm_secret **out_key) HSM_WUR;

/* The CRK version a blob is wrapped under (parses the header only). */
int hsm_blob_crk_version(const uint8_t *blob, size_t blob_len, uint32_t *out_version) HSM_WUR;

/* Unwraps and wraps again under the active CRK (rotation); plaintext stays locked. */
int hsm_rewrap(struct hsm *h, const uint8_t *uid, size_t uid_len, const uint8_t *blob,
	       size_t blob_len, uint8_t **out_blob, size_t *out_blob_len) HSM_WUR;

/* ---- Mirroring the CRK to a cloud KMS (Key Protect secure import) ------ */

enum hsm_oaep_hash {
	HSM_OAEP_SHA256 = 0, /* what Key Protect's import token asks for */
	HSM_OAEP_SHA1 = 1,   /* for tokens without SHA-256 OAEP wrapping */
};

/*
 * Wraps CRK `version` under the RSA public key (big-endian modulus and public
 * exponent) with RSA-OAEP + MGF1 of the same hash, via C_WrapKey: the CRK is
 * never plaintext outside the token. HSM_E_NOT_EXTRACTABLE for a generated CRK.
 * *out_wrapped is malloc'd and freed with free().
 */
int hsm_crk_export(struct hsm *h, uint32_t version, const uint8_t *modulus, size_t modulus_len,
		   const uint8_t *exponent, size_t exponent_len, enum hsm_oaep_hash hash,
		   uint8_t **out_wrapped, size_t *out_wrapped_len) HSM_WUR;

/*
 * AES-256-GCM encryption of nonce under CRK `version`, no AAD, fresh IV from
 * the token: *out_ct = ciphertext | 16-byte tag, malloc'd, freed with free().
 */
int hsm_crk_encrypt_nonce(struct hsm *h, uint32_t version, const uint8_t *nonce, size_t nonce_len,
			  uint8_t out_iv[static HSM_GCM_IV_LEN], uint8_t **out_ct,
			  size_t *out_ct_len) HSM_WUR;

/* ---- Randomness ---------------------------------------------------------- */

/* len bytes from the token's RNG (C_GenerateRandom). */
int hsm_random(struct hsm *h, uint8_t *out, size_t len) HSM_WUR;

/* ---- Diagnostics (hsm-bench) --------------------------------------------- */

/*
 * The ceiling for hsm_unwrap: takes one pooled session and runs `iterations`
 * bare C_DecryptInit + C_Decrypt pairs over a GCM blob (made by hsm_wrap for
 * uid), with no pool round trip, parsing or allocation per call.
 */
int hsm_diag_raw_decrypt(struct hsm *h, const uint8_t *uid, size_t uid_len, const uint8_t *blob,
			 size_t blob_len, uint64_t iterations) HSM_WUR;

#endif /* KEEL_HSM_H */
