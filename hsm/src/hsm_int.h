/*
 * libhsm internals. The only header in Keel that pulls in PKCS#11.
 *
 * Locking: h->lock is a read-write lock. A request holds it for reading while
 * it uses one pooled session and reads the CRK table; recovery and changes to
 * the CRK table hold it for writing, so they never run while a session is in
 * use. h->pool_mu guards the free-session stack, h->state_mu the backoff clock.
 */
#ifndef KEEL_HSM_INT_H
#define KEEL_HSM_INT_H

#include "keel/hsm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

struct hsm_module; /* one loaded PKCS#11 library, shared by hsm_open calls */

struct hsm_crk {
	uint32_t version;
	CK_OBJECT_HANDLE obj;
	bool extractable;
	char created[HSM_CRK_CREATED_LEN];
};

/*
 * call.c: one token call a request may stop waiting for. Embedded first in a
 * struct that holds copies of everything fn reads and what it produces, so
 * that a runner can finish it after the request has given up. hsm_call_run
 * returns fn's result, or HSM_E_TIMEOUT and then the call is no longer the
 * caller's: it has been, or will be, freed with drop.
 */
struct hsm_call {
	int (*fn)(struct hsm *h, CK_SESSION_HANDLE s, struct hsm_call *c, CK_RV *out_rv);
	void (*drop)(struct hsm_call *c);
	/* call.c's, under h->call_mu */
	pthread_cond_t *done_cv; /* the waiting caller's (CLOCK_MONOTONIC) */
	int r;
	bool started, done, abandoned;
	struct hsm_call *next;
};

struct hsm {
	struct hsm_module *mod;
	unsigned mod_gen; /* the module generation our sessions belong to */
	CK_FUNCTION_LIST_PTR p11;
	CK_SLOT_ID slot;
	char *token_label;
	char *token_serial;
	struct hsm_secret *pin;
	enum hsm_wrap_mode wrap_mode;
	void (*log)(void *log_arg, enum hsm_log_level level, const char *msg);
	void *log_arg;
	void (*observe)(void *observe_arg, uint64_t ns);
	void *observe_arg;

	pthread_rwlock_t lock;
	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	CK_SESSION_HANDLE *free_sessions; /* stack of idle sessions */
	unsigned num_free;
	unsigned pool_size;
	unsigned pool_open; /* sessions currently open (<= pool_size) */

	struct hsm_crk *crks; /* sorted by version, oldest first */
	size_t num_crks;
	struct hsm_crk staged; /* hsm_crk_stage's key (version 0), when has_staged */
	bool has_staged;

	_Atomic int state; /* enum hsm_state */
	_Atomic uint64_t faults;
	_Atomic uint64_t recoveries;
	pthread_mutex_t state_mu;
	struct timespec next_attempt;
	int backoff_ms; /* current delay; < 0 means no backoff */
	int backoff_initial_ms;
	int backoff_max_ms;

	/* call.c: the runners and their queue, under call_mu */
	unsigned timeout_ms; /* 0: calls run on the caller's thread */
	bool calls_ready;    /* call_mu and the condition variables exist */
	pthread_mutex_t call_mu;
	pthread_cond_t call_cv; /* runners: work queued, or stopping */
	struct hsm_call *queue_head, *queue_tail;
	pthread_t *runners;
	unsigned num_runners;
	unsigned overdue; /* abandoned calls still running: new ones fail at once */
	bool stopping;
	_Atomic uint64_t timeouts;
};

/* errors.c */
void hsm_log(struct hsm *h, enum hsm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int hsm_rv_err(CK_RV rv);
bool hsm_rv_is_fault(CK_RV rv);
const char *hsm_rv_name(CK_RV rv);
/* Logs a failed call once, where it happened, and translates it. */
int hsm_ck_fail(struct hsm *h, const char *what, CK_RV rv);

/* secmem.c: forgets (and wipes) the bytes beyond len. */
void hsm_secret_shrink(struct hsm_secret *s, size_t len);

/* pin.c */
int hsm_pin_read(struct hsm *h, const char *path, struct hsm_secret **out_pin) HSM_WUR;

/* module.c */
int hsm_module_load(struct hsm *h, const char *name_or_path, struct hsm_module **out_mod) HSM_WUR;
void hsm_module_unload(struct hsm_module *mod);
CK_FUNCTION_LIST_PTR hsm_module_functions(const struct hsm_module *mod);
const char *hsm_module_path(const struct hsm_module *mod);
int hsm_module_reinit(struct hsm *h, struct hsm_module *mod, unsigned *gen) HSM_WUR;
unsigned hsm_module_gen(const struct hsm_module *mod);

/* session.c: a request is op_begin ... op_end (shared), or excl_begin ... excl_end. */
int hsm_op_begin(struct hsm *h, CK_SESSION_HANDLE *out_s) HSM_WUR;
void hsm_op_end(struct hsm *h, CK_SESSION_HANDLE s, CK_RV rv);
int hsm_excl_begin(struct hsm *h, CK_SESSION_HANDLE *out_s) HSM_WUR;
void hsm_excl_end(struct hsm *h, CK_RV rv);
int hsm_token_open(struct hsm *h) HSM_WUR; /* find slot, open pool, log in, scan CRKs */
void hsm_token_close(struct hsm *h);

/* call.c */
int hsm_call_run(struct hsm *h, struct hsm_call *c) HSM_WUR;
int hsm_runners_start(struct hsm *h, unsigned timeout_ms) HSM_WUR;
void hsm_runners_stop(struct hsm *h, bool *out_stuck);

/* crk.c: callers hold h->lock (read for lookups, write for scans). */
int hsm_crk_scan(struct hsm *h, CK_SESSION_HANDLE s) HSM_WUR;
const struct hsm_crk *hsm_crk_find(const struct hsm *h, uint32_t version);
/* hsm_crk_find, or the staged key for HSM_CRK_STAGED: for export, KCV, destroy. */
const struct hsm_crk *hsm_crk_lookup(const struct hsm *h, uint32_t version);
const struct hsm_crk *hsm_crk_newest(const struct hsm *h);

/* wrap.c and kwp.c */
void hsm_put_u32(uint8_t *p, uint32_t v);
uint32_t hsm_get_u32(const uint8_t *p);
int hsm_gcm_encrypt(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const uint8_t *aad,
		    size_t aad_len, const uint8_t *in, size_t in_len,
		    uint8_t out[static HSM_GCM_IV_LEN], CK_RV *out_rv) HSM_WUR;
int hsm_kwp_wrap(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_crk *crk, const uint8_t *uid,
		 size_t uid_len, const uint8_t *key, size_t key_len, uint8_t **out_blob,
		 size_t *out_blob_len, CK_RV *out_rv) HSM_WUR;
int hsm_kwp_unwrap(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_crk *crk,
		   const uint8_t *uid, size_t uid_len, const uint8_t *blob, size_t blob_len,
		   struct hsm_secret **out_key, CK_RV *out_rv) HSM_WUR;

#define HSM_ALG_GCM 1
#define HSM_ALG_KWP 2

#endif /* KEEL_HSM_INT_H */
