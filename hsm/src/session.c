/*
 * The session pool and fault recovery.
 *
 * PKCS#11 sessions must not be used by two threads at once (v2.40 §6.6.2), so
 * a request takes one session from the pool and gives it back. Login state is
 * per application and slot, so one C_Login serves the whole pool.
 *
 * A fault (token gone, session or object handle invalid, device error) fails
 * the request that saw it and marks the handle RECOVERING. The next request
 * (or hsm_recover) closes the pool, finds the token again, logs in and
 * rescans the CRKs, under the write lock so no session is in use meanwhile;
 * if the token is not found, it re-initializes the module and tries again.
 * Failed attempts back off exponentially. A refused PIN is never retried.
 */
#include "hsm_int.h"

#include <stdlib.h>
#include <string.h>

/* A PKCS#11 text field is padded with spaces (v2.40 §3.2). */
static bool field_eq(const unsigned char *field, size_t field_len, const char *s)
{
	size_t n = strlen(s);

	if (n > field_len || memcmp(field, s, n) != 0) {
		return false;
	}
	for (size_t i = n; i < field_len; i++) {
		if (field[i] != ' ' && field[i] != '\0') {
			return false;
		}
	}
	return true;
}

static bool token_matches(const struct hsm *h, const CK_TOKEN_INFO *ti)
{
	if (h->token_label != NULL) {
		return field_eq(ti->label, sizeof(ti->label), h->token_label);
	}
	return field_eq(ti->serialNumber, sizeof(ti->serialNumber), h->token_serial);
}

static int find_slot(struct hsm *h)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = sizeof(slots) / sizeof(slots[0]);
	CK_TOKEN_INFO ti;
	CK_RV rv;

	if ((rv = h->p11->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		return hsm_ck_fail(h, "C_GetSlotList", rv);
	}
	for (CK_ULONG i = 0; i < n; i++) {
		if (h->p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK && token_matches(h, &ti)) {
			h->slot = slots[i];
			return 0;
		}
	}
	hsm_log(h, HSM_LOG_ERROR, "no token with %s \"%s\" among %lu slots",
		h->token_label != NULL ? "label" : "serial",
		h->token_label != NULL ? h->token_label : h->token_serial, (unsigned long)n);
	return HSM_E_TOKEN_NOT_FOUND;
}

static int login(struct hsm *h, CK_SESSION_HANDLE s)
{
	CK_RV rv =
	    h->p11->C_Login(s, CKU_USER, hsm_secret_data(h->pin), (CK_ULONG)hsm_secret_len(h->pin));

	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		return 0;
	}
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID ||
	    rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_EXPIRED) {
		/* Final: retrying a wrong PIN would count down the token's lockout. */
		atomic_store(&h->state, HSM_STATE_PIN_REJECTED);
		hsm_log(h, HSM_LOG_ERROR, "C_Login: token refused the user PIN (%s); not retrying",
			hsm_rv_name(rv));
		return hsm_rv_err(rv);
	}
	return hsm_ck_fail(h, "C_Login", rv);
}

int hsm_token_open(struct hsm *h)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int r;

	if ((r = find_slot(h)) != 0) {
		return r;
	}
	while (h->pool_open < h->pool_size) {
		rv = h->p11->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					   &s);
		if (rv != CKR_OK) {
			return hsm_ck_fail(h, "C_OpenSession", rv);
		}
		h->free_sessions[h->num_free++] = s;
		h->pool_open++;
	}
	if ((r = login(h, h->free_sessions[0])) != 0) {
		return r;
	}
	return hsm_crk_scan(h, h->free_sessions[0]);
}

/* Closes every pooled session; with the write lock held, all are idle. */
void hsm_token_close(struct hsm *h)
{
	while (h->num_free > 0) {
		/* The session may already be gone with the token; that is fine. */
		(void)h->p11->C_CloseSession(h->free_sessions[--h->num_free]);
	}
	h->pool_open = 0;
	free(h->crks);
	h->crks = NULL;
	h->num_crks = 0;
}

static void mark_fault(struct hsm *h, CK_RV rv)
{
	int ready = HSM_STATE_READY;

	if (atomic_compare_exchange_strong(&h->state, &ready, HSM_STATE_RECOVERING)) {
		atomic_fetch_add(&h->faults, 1);
		hsm_log(h, HSM_LOG_WARNING, "token fault (%s): sessions will be reopened",
			hsm_rv_name(rv));
		pthread_mutex_lock(&h->state_mu);
		clock_gettime(CLOCK_MONOTONIC, &h->next_attempt); /* first retry: at once */
		pthread_mutex_unlock(&h->state_mu);
	}
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Claims a recovery attempt unless the backoff says wait; pushes the next one out. */
static bool backoff_claim(struct hsm *h, bool force)
{
	struct timespec now;
	bool ok = true;
	long ms;

	pthread_mutex_lock(&h->state_mu);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (h->backoff_ms >= 0) {
		if (!force && ts_before(&now, &h->next_attempt)) {
			ok = false;
		} else {
			ms = h->backoff_ms;
			h->next_attempt.tv_sec = now.tv_sec + ms / 1000;
			h->next_attempt.tv_nsec = now.tv_nsec + (ms % 1000) * 1000000L;
			if (h->next_attempt.tv_nsec >= 1000000000L) {
				h->next_attempt.tv_sec++;
				h->next_attempt.tv_nsec -= 1000000000L;
			}
			h->backoff_ms =
			    ms * 2 > h->backoff_max_ms ? h->backoff_max_ms : (int)(ms * 2);
		}
	}
	pthread_mutex_unlock(&h->state_mu);
	return ok;
}

static int recover_locked(struct hsm *h)
{
	int r;

	hsm_token_close(h);
	r = hsm_token_open(h);
	if (r != 0 && atomic_load(&h->state) != HSM_STATE_PIN_REJECTED) {
		/* Second stage: the module may only see the token after a restart. */
		hsm_token_close(h);
		if ((r = hsm_module_reinit(h, h->mod, &h->mod_gen)) == 0) {
			r = hsm_token_open(h);
		}
	}
	if (r != 0) {
		hsm_token_close(h);
		if (atomic_load(&h->state) == HSM_STATE_PIN_REJECTED) {
			return r;
		}
		hsm_log(h, HSM_LOG_WARNING, "token still unavailable: %s", hsm_strerror(r));
		return HSM_E_TOKEN_UNAVAILABLE;
	}
	pthread_mutex_lock(&h->state_mu);
	h->backoff_ms = h->backoff_initial_ms;
	pthread_mutex_unlock(&h->state_mu);
	atomic_fetch_add(&h->recoveries, 1);
	atomic_store(&h->state, HSM_STATE_READY);
	hsm_log(h, HSM_LOG_INFO, "token recovered: %u sessions, logged in, %zu CRK versions",
		h->pool_open, h->num_crks);
	return 0;
}

static int recover(struct hsm *h, bool force)
{
	int r;

	if (atomic_load(&h->state) == HSM_STATE_PIN_REJECTED) {
		return HSM_E_PIN_INCORRECT;
	}
	if (atomic_load(&h->state) == HSM_STATE_READY) {
		return 0;
	}
	if (!backoff_claim(h, force)) {
		return HSM_E_TOKEN_UNAVAILABLE;
	}
	pthread_rwlock_wrlock(&h->lock);
	switch (atomic_load(&h->state)) {
	case HSM_STATE_READY:
		r = 0; /* another thread got there first */
		break;
	case HSM_STATE_PIN_REJECTED:
		r = HSM_E_PIN_INCORRECT;
		break;
	default:
		r = recover_locked(h);
		break;
	}
	pthread_rwlock_unlock(&h->lock);
	return r;
}

int hsm_recover(struct hsm *h)
{
	if (h == NULL) {
		return HSM_E_INVAL;
	}
	return recover(h, true);
}

static int state_err(struct hsm *h)
{
	return atomic_load(&h->state) == HSM_STATE_PIN_REJECTED ? HSM_E_PIN_INCORRECT
								: HSM_E_TOKEN_UNAVAILABLE;
}

int hsm_op_begin(struct hsm *h, CK_SESSION_HANDLE *out_s)
{
	int r;

	if ((r = recover(h, false)) != 0) {
		return r;
	}
	pthread_rwlock_rdlock(&h->lock);
	if (atomic_load(&h->state) != HSM_STATE_READY) {
		pthread_rwlock_unlock(&h->lock);
		return state_err(h);
	}
	pthread_mutex_lock(&h->pool_mu);
	while (h->num_free == 0) {
		pthread_cond_wait(&h->pool_cv, &h->pool_mu);
	}
	*out_s = h->free_sessions[--h->num_free];
	pthread_mutex_unlock(&h->pool_mu);
	return 0;
}

void hsm_op_end(struct hsm *h, CK_SESSION_HANDLE s, CK_RV rv)
{
	pthread_mutex_lock(&h->pool_mu);
	h->free_sessions[h->num_free++] = s;
	pthread_cond_signal(&h->pool_cv);
	pthread_mutex_unlock(&h->pool_mu);
	if (hsm_rv_is_fault(rv)) {
		mark_fault(h, rv);
	}
	pthread_rwlock_unlock(&h->lock);
}

int hsm_excl_begin(struct hsm *h, CK_SESSION_HANDLE *out_s)
{
	int r;

	if ((r = recover(h, false)) != 0) {
		return r;
	}
	pthread_rwlock_wrlock(&h->lock);
	if (atomic_load(&h->state) != HSM_STATE_READY) {
		pthread_rwlock_unlock(&h->lock);
		return state_err(h);
	}
	*out_s = h->free_sessions[0]; /* all sessions are idle under the write lock */
	return 0;
}

void hsm_excl_end(struct hsm *h, CK_RV rv)
{
	if (hsm_rv_is_fault(rv)) {
		mark_fault(h, rv);
	}
	pthread_rwlock_unlock(&h->lock);
}
