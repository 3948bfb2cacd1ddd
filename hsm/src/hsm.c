/* Opening and closing a handle, and status for operators. */
#include "hsm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_DEFAULT	   8
#define POOL_MAX	   256
#define BACKOFF_INITIAL_MS 200
#define BACKOFF_MAX_MS	   2000 /* service resumes within seconds of the token's return */

static int locks_init(struct hsm *h)
{
	pthread_rwlockattr_t ra;
	int r;

	/* Writer preference: recovery must not starve behind a stream of requests. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	r = pthread_rwlock_init(&h->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	if (r != 0 || pthread_mutex_init(&h->pool_mu, NULL) != 0 ||
	    pthread_cond_init(&h->pool_cv, NULL) != 0 ||
	    pthread_mutex_init(&h->state_mu, NULL) != 0) {
		return HSM_E_NOMEM;
	}
	return 0;
}

static int config_check(const struct hsm_config *cfg)
{
	if (cfg == NULL || cfg->module == NULL || cfg->pin_file == NULL ||
	    (cfg->token_label == NULL && cfg->token_serial == NULL) || cfg->pool_size > POOL_MAX ||
	    (cfg->wrap_mode != HSM_WRAP_GCM && cfg->wrap_mode != HSM_WRAP_KWP)) {
		return HSM_E_INVAL;
	}
	return 0;
}

static int config_copy(struct hsm *h, const struct hsm_config *cfg)
{
	h->log = cfg->log;
	h->log_arg = cfg->log_arg;
	h->observe = cfg->observe;
	h->observe_arg = cfg->observe_arg;
	h->wrap_mode = cfg->wrap_mode;
	h->pool_size = cfg->pool_size != 0 ? cfg->pool_size : POOL_DEFAULT;
	h->backoff_initial_ms =
	    cfg->backoff_initial_ms != 0 ? cfg->backoff_initial_ms : BACKOFF_INITIAL_MS;
	if (h->backoff_initial_ms < 0) {
		h->backoff_initial_ms = -1;
	}
	h->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : BACKOFF_MAX_MS;
	h->backoff_ms = h->backoff_initial_ms;
	if (cfg->token_label != NULL && (h->token_label = strdup(cfg->token_label)) == NULL) {
		return HSM_E_NOMEM;
	}
	if (cfg->token_serial != NULL && (h->token_serial = strdup(cfg->token_serial)) == NULL) {
		return HSM_E_NOMEM;
	}
	h->free_sessions = calloc(h->pool_size, sizeof(*h->free_sessions));
	return h->free_sessions != NULL ? 0 : HSM_E_NOMEM;
}

int hsm_open(const struct hsm_config *cfg, struct hsm **out_hsm)
{
	struct hsm *h = NULL;
	int r;

	if (out_hsm == NULL || config_check(cfg) != 0) {
		return HSM_E_INVAL;
	}
	*out_hsm = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		return HSM_E_NOMEM;
	}
	if ((r = locks_init(h)) != 0 || (r = config_copy(h, cfg)) != 0 ||
	    (r = hsm_pin_read(h, cfg->pin_file, &h->pin)) != 0 ||
	    (r = hsm_module_load(h, cfg->module, &h->mod)) != 0) {
		goto out;
	}
	h->p11 = hsm_module_functions(h->mod);
	h->mod_gen = hsm_module_gen(h->mod);
	atomic_store(&h->state, HSM_STATE_READY);
	if ((r = hsm_token_open(h)) != 0 || (r = hsm_runners_start(h, cfg->timeout_ms)) != 0) {
		goto out;
	}
	hsm_log(h, HSM_LOG_INFO, "%s: token slot %lu, %u sessions, %zu CRK versions, timeout %u ms",
		hsm_module_path(h->mod), (unsigned long)h->slot, h->pool_size, h->num_crks,
		h->timeout_ms);
	*out_hsm = h;
	h = NULL;
out:
	hsm_close(h);
	return r;
}

void hsm_close(struct hsm *h)
{
	bool stuck;

	if (h == NULL) {
		return;
	}
	hsm_runners_stop(h, &stuck);
	if (stuck) {
		/* A runner is still inside the module: finalizing it, or freeing
		 * what the runner reads, could crash the exit. Left to the exit. */
		hsm_log(h, HSM_LOG_WARNING, "closing with a token call still hung");
		return;
	}
	if (h->mod != NULL) {
		hsm_token_close(h);
		hsm_module_unload(h->mod);
	}
	hsm_secret_free(h->pin);
	free(h->crks);
	free(h->free_sessions);
	free(h->token_label);
	free(h->token_serial);
	pthread_rwlock_destroy(&h->lock);
	pthread_mutex_destroy(&h->pool_mu);
	pthread_cond_destroy(&h->pool_cv);
	pthread_mutex_destroy(&h->state_mu);
	explicit_bzero(h, sizeof(*h));
	free(h);
}

/* Copies a space-padded PKCS#11 field into a C string without the padding. */
static void field_copy(char *dst, size_t dst_len, const unsigned char *src, size_t src_len)
{
	size_t n = src_len < dst_len - 1 ? src_len : dst_len - 1;

	memcpy(dst, src, n);
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0')) {
		n--;
	}
	dst[n] = '\0';
}

static int info_module(struct hsm *h, struct hsm_info *out)
{
	CK_INFO ci;
	CK_RV rv;

	if ((rv = h->p11->C_GetInfo(&ci)) != CKR_OK) {
		return hsm_ck_fail(h, "C_GetInfo", rv);
	}
	snprintf(out->module_path, sizeof(out->module_path), "%s", hsm_module_path(h->mod));
	field_copy(out->module_desc, sizeof(out->module_desc), ci.libraryDescription,
		   sizeof(ci.libraryDescription));
	field_copy(out->module_vendor, sizeof(out->module_vendor), ci.manufacturerID,
		   sizeof(ci.manufacturerID));
	out->module_version_major = ci.libraryVersion.major;
	out->module_version_minor = ci.libraryVersion.minor;
	return 0;
}

static int info_token(struct hsm *h, struct hsm_info *out)
{
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_RV rv;

	out->slot = h->slot;
	if ((rv = h->p11->C_GetSlotInfo(h->slot, &si)) != CKR_OK ||
	    (rv = h->p11->C_GetTokenInfo(h->slot, &ti)) != CKR_OK) {
		return hsm_ck_fail(h, "C_GetTokenInfo", rv);
	}
	field_copy(out->slot_desc, sizeof(out->slot_desc), si.slotDescription,
		   sizeof(si.slotDescription));
	field_copy(out->token_label, sizeof(out->token_label), ti.label, sizeof(ti.label));
	field_copy(out->token_vendor, sizeof(out->token_vendor), ti.manufacturerID,
		   sizeof(ti.manufacturerID));
	field_copy(out->token_model, sizeof(out->token_model), ti.model, sizeof(ti.model));
	field_copy(out->token_serial, sizeof(out->token_serial), ti.serialNumber,
		   sizeof(ti.serialNumber));
	out->pin_count_low = (ti.flags & CKF_USER_PIN_COUNT_LOW) != 0;
	out->pin_final_try = (ti.flags & CKF_USER_PIN_FINAL_TRY) != 0;
	out->pin_locked = (ti.flags & CKF_USER_PIN_LOCKED) != 0;
	return 0;
}

int hsm_get_info(struct hsm *h, struct hsm_info *out_info)
{
	const struct hsm_crk *crk;
	int r;

	if (h == NULL || out_info == NULL) {
		return HSM_E_INVAL;
	}
	memset(out_info, 0, sizeof(*out_info));
	out_info->pool_size = h->pool_size;
	out_info->state = atomic_load(&h->state);
	out_info->faults = atomic_load(&h->faults);
	out_info->recoveries = atomic_load(&h->recoveries);
	out_info->wrap_mode = h->wrap_mode;
	pthread_rwlock_rdlock(&h->lock);
	pthread_mutex_lock(&h->pool_mu);
	out_info->pool_in_use = h->pool_open - h->num_free;
	pthread_mutex_unlock(&h->pool_mu);
	crk = hsm_crk_newest(h);
	out_info->active_crk = crk != NULL ? crk->version : 0;
	if ((r = info_module(h, out_info)) == 0) {
		out_info->token_present = info_token(h, out_info) == 0;
	}
	pthread_rwlock_unlock(&h->lock);
	return r;
}
