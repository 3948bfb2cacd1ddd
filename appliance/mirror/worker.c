/*
 * The mirror worker: drains the store's outbox (store.h, keel_store_mirror_*)
 * into Key Protect, oldest entry first, idempotently (see mirror.h).
 */
#include "mirror_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/metrics.h"
#include "log.h"
#include "store.h"

#define BATCH	   32
#define MAX_COPIES 32 /* keel-<uid> keys handled per pass; more go next pass */
#define GCM_IV_LEN 12
#define GCM_TAG	   16

/* ---- the escrow record: the JSON payload of keel-<uid> --------------------- */

/* AES-256-GCM of plain under dek with AAD uid: b64(ciphertext | tag). */
static int seal(const uint8_t *dek, const uint8_t iv[GCM_IV_LEN], const char *uid,
		struct hsm_secret *plain, char **out_b64)
{
	size_t len = hsm_secret_len(plain);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t *ct = malloc(len + GCM_TAG);
	int n = 0, fin = 0, r = MIRROR_E_NOMEM;

	if (c != NULL && ct != NULL && len <= INT32_MAX &&
	    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, dek, iv) == 1 &&
	    EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)uid, (int)strlen(uid)) == 1 &&
	    EVP_EncryptUpdate(c, ct, &n, hsm_secret_data(plain), (int)len) == 1 &&
	    EVP_EncryptFinal_ex(c, ct + n, &fin) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, ct + len) == 1) {
		r = (*out_b64 = mirror_b64_encode(ct, len + GCM_TAG)) != NULL ? 0 : MIRROR_E_NOMEM;
	}
	EVP_CIPHER_CTX_free(c);
	free(ct);
	return r;
}

/* Too large for the wrap action: a fresh key seals it, Key Protect wraps the key. */
static int record_sealed(struct mirror *m, const char *root, const char *uid,
			 struct hsm_secret *plain, json_t *rec)
{
	struct hsm_secret *dek = NULL;
	uint8_t iv[GCM_IV_LEN];
	char *sealed = NULL, *wrapped = NULL, *iv_b64 = NULL, version[MIRROR_ID_LEN];
	int r;

	if (hsm_secret_new(32, &dek) != 0 || RAND_bytes(hsm_secret_data(dek), 32) != 1 ||
	    RAND_bytes(iv, sizeof(iv)) != 1) {
		r = MIRROR_E_NOMEM;
		goto out;
	}
	if ((r = seal(hsm_secret_data(dek), iv, uid, plain, &sealed)) != 0 ||
	    (r = mirror_wrap(m, root, hsm_secret_data(dek), 32, uid, &wrapped, version)) != 0) {
		goto out;
	}
	if ((iv_b64 = mirror_b64_encode(iv, sizeof(iv))) == NULL ||
	    json_object_set_new(rec, "dek", json_string(wrapped)) != 0 ||
	    json_object_set_new(rec, "iv", json_string(iv_b64)) != 0 ||
	    json_object_set_new(rec, "sealed", json_string(sealed)) != 0) {
		r = MIRROR_E_NOMEM;
	}
out:
	hsm_secret_free(dek);
	free(sealed);
	free(wrapped);
	free(iv_b64);
	return r;
}

/* {"v":1,"uid":...,"ct":<wrapped>} or the sealed form; a malloc'd JSON text. */
static int escrow_record(struct mirror *m, const char *root, const char *uid,
			 struct hsm_secret *plain, char **out_text)
{
	json_t *rec = json_pack("{s:i,s:s}", "v", 1, "uid", uid);
	char *ct = NULL, version[MIRROR_ID_LEN];
	int r;

	if (rec == NULL) {
		return MIRROR_E_NOMEM;
	}
	if (hsm_secret_len(plain) > MIRROR_WRAP_MAX) {
		r = record_sealed(m, root, uid, plain, rec);
	} else if ((r = mirror_wrap(m, root, hsm_secret_data(plain), hsm_secret_len(plain), uid,
				    &ct, version)) == 0 &&
		   json_object_set_new(rec, "ct", json_string(ct)) != 0) {
		r = MIRROR_E_NOMEM;
	}
	if (r == 0 && (*out_text = json_dumps(rec, JSON_COMPACT)) == NULL) {
		r = MIRROR_E_NOMEM;
	}
	free(ct);
	json_decref(rec);
	return r;
}

/* ---- one entry ----------------------------------------------------------------- */

struct copies {
	char id[MAX_COPIES][MIRROR_ID_LEN];
	size_t num;
};

static int collect(void *arg, const struct mirror_key *key)
{
	struct copies *c = arg;

	if (c->num < MAX_COPIES) {
		memcpy(c->id[c->num++], key->id, MIRROR_ID_LEN);
	}
	return 0;
}

/* Deletes every keel-<uid> but keep_id (NULL: all). Already gone is fine. */
static int delete_copies(struct mirror *m, const char *name, const char *keep_id)
{
	struct copies c = {.num = 0};
	int r = mirror_find_all(m, name, collect, &c);

	for (size_t i = 0; r == 0 && i < c.num; i++) {
		if (keep_id == NULL || strcmp(c.id[i], keep_id) != 0) {
			r = mirror_delete(m, c.id[i]);
			r = r == MIRROR_E_GONE || r == MIRROR_E_NOT_FOUND ? 0 : r;
		}
	}
	return r;
}

static int escrow(const struct mirror_worker_config *cfg, const char *uid, const char *name)
{
	struct hsm_secret *plain = NULL;
	struct mirror_key created;
	char *text = NULL;
	int r;

	if ((r = cfg->export_fn(cfg->export_arg, uid, &plain)) != 0) {
		/* Gone since it was queued: a DELETE entry replaces this one. */
		return r == MIRROR_E_NOT_FOUND ? 0 : r;
	}
	/* The new copy first, then the old ones go: never a moment without one. */
	if ((r = escrow_record(cfg->client, cfg->root_key_id, uid, plain, &text)) == 0 &&
	    (r = mirror_create_standard(cfg->client, name, (const uint8_t *)text, strlen(text),
					&created)) == 0) {
		r = delete_copies(cfg->client, name, created.id);
	}
	free(text);
	hsm_secret_free(plain);
	return r;
}

/* The record's Key Protect ciphertext ("ct", or the sealed form's "dek")
 * rewrapped under the root key's newest version, in place. */
static int rewrap_record(struct mirror *m, const char *root, const char *uid, json_t *rec)
{
	const char *field = json_object_get(rec, "ct") != NULL ? "ct" : "dek";
	const char *ct = json_string_value(json_object_get(rec, field));
	const char *for_uid = json_string_value(json_object_get(rec, "uid"));
	char *fresh = NULL;
	int r;

	if (ct == NULL || for_uid == NULL || strcmp(for_uid, uid) != 0) {
		return MIRROR_E_PROTOCOL;
	}
	if ((r = mirror_rewrap(m, root, ct, uid, &fresh)) == 0 &&
	    json_object_set_new(rec, field, json_string(fresh)) != 0) {
		r = MIRROR_E_NOMEM;
	}
	free(fresh);
	return r;
}

/*
 * A root key rotation's REWRAP: the escrow's ciphertext rewrapped (Key
 * Protect's rewrap action: no plaintext leaves it), written as a new
 * keel-<uid>, then the older copies deleted, as escrow does. An object with
 * no escrow yet, or whose escrow is not a record we can read or Key Protect
 * cannot rewrap (422), is escrowed afresh: either way it ends under the
 * newest version. Its last escrow was settled (a queued ESCROW is never
 * turned into a REWRAP), so the copy found is the only one, or one of equal
 * copies a lost answer left.
 */
static int rewrap(const struct mirror_worker_config *cfg, const char *uid, const char *name)
{
	struct hsm_secret *payload = NULL;
	struct mirror_key k, created;
	json_t *rec = NULL;
	char *text = NULL;
	int r = mirror_find_by_name(cfg->client, name, &k);

	if (r == MIRROR_E_NOT_FOUND) {
		return escrow(cfg, uid, name);
	}
	if (r != 0 || (r = mirror_get_key(cfg->client, k.id, &k, &payload)) != 0) {
		return r;
	}
	rec = payload != NULL ? json_loadb((const char *)hsm_secret_data(payload),
					   hsm_secret_len(payload), 0, NULL)
			      : NULL;
	if (rec == NULL ||
	    (r = rewrap_record(cfg->client, cfg->root_key_id, uid, rec)) == MIRROR_E_PROTOCOL ||
	    r == MIRROR_E_REFUSED) {
		keel_warn("mirror: the escrow of %s cannot be rewrapped; escrowing it afresh", uid);
		r = escrow(cfg, uid, name);
	} else if (r == 0 && (text = json_dumps(rec, JSON_COMPACT)) == NULL) {
		r = MIRROR_E_NOMEM;
	} else if (r == 0 && (r = mirror_create_standard(cfg->client, name, (const uint8_t *)text,
							 strlen(text), &created)) == 0) {
		r = delete_copies(cfg->client, name, created.id);
	}
	free(text);
	json_decref(rec);
	hsm_secret_free(payload);
	return r;
}

/* process: the entry cannot be escrowed at all; it is settled, not retried. */
#define REFUSED 1

static int process(const struct mirror_worker_config *cfg, const struct keel_store_mirror_entry *e)
{
	char name[MIRROR_NAME_LEN];

	if (mirror_escrow_name(e->uid, name) != 0) {
		keel_err("mirror: %.*s... cannot be escrowed: a uid over %zu characters or outside "
			 "[A-Za-z0-9._-] makes no Key Protect name",
			 40, e->uid, (size_t)MIRROR_ESCROW_UID_MAX);
		return REFUSED;
	}
	switch (e->op) {
	case KEEL_STORE_MIRROR_DELETE:
		return delete_copies(cfg->client, name, NULL);
	case KEEL_STORE_MIRROR_REWRAP:
		return rewrap(cfg, e->uid, name);
	default:
		return escrow(cfg, e->uid, name);
	}
}

/* ---- draining ---------------------------------------------------------------- */

static int next_batch(struct keel_store *s, int64_t after, struct keel_store_mirror_entry *out,
		      size_t *out_num)
{
	struct keel_store_txn *t;
	int r;

	*out_num = 0;
	if (keel_store_begin_read(s, &t) != 0) {
		return MIRROR_E_INVAL;
	}
	r = keel_store_mirror_next(t, after, BATCH, out, out_num);
	keel_store_rollback(t);
	return r == 0 ? 0 : MIRROR_E_INVAL;
}

/* Records the outcome. KEEL_STORE_E_NOT_FOUND: a newer change replaced the
 * entry meanwhile, and that one stays queued. */
static void settle(struct keel_store *s, const struct keel_store_mirror_entry *e, bool done)
{
	struct keel_store_txn *t;
	int r;

	if ((r = keel_store_begin(s, &t)) == 0) {
		r = keel_store_mirror_settle(t, e, done);
		if (r == 0 || r == KEEL_STORE_E_NOT_FOUND) {
			r = keel_store_commit(t);
		} else {
			keel_store_rollback(t);
		}
	}
	if (r != 0) {
		keel_err("mirror: could not record the outcome for %s (it will be sent again)",
			 e->uid);
	}
}

static void backlog(struct keel_store *s, struct mirror_worker_status *st)
{
	struct keel_store_txn *t;

	if (keel_store_begin_read(s, &t) == 0) {
		if (keel_store_mirror_backlog(t, &st->backlog) != 0) {
			st->backlog = -1;
		}
		if (keel_store_mirror_rewraps(t, &st->rewraps) != 0) {
			st->rewraps = -1;
		}
		keel_store_rollback(t);
	}
}

static const char *op_name(enum keel_store_mirror_op op)
{
	return op == KEEL_STORE_MIRROR_DELETE	? "delete"
	       : op == KEEL_STORE_MIRROR_REWRAP ? "rewrap"
						: "escrow";
}

/* Unavailable or refused credentials hold for every entry: stop the pass. */
static bool stops_pass(int r)
{
	return r == MIRROR_E_UNAVAILABLE || r == MIRROR_E_AUTH || r == MIRROR_E_NOMEM;
}

int mirror_worker_drain(const struct mirror_worker_config *cfg, struct mirror_worker_status *st)
{
	struct keel_store_mirror_entry batch[BATCH];
	int64_t after = 0;
	size_t num = 0;
	int r = 0;

	while (!stops_pass(r) && (r = next_batch(cfg->store, after, batch, &num)) == 0 && num > 0) {
		for (size_t i = 0; i < num && !stops_pass(r); i++) {
			r = process(cfg, &batch[i]);
			settle(cfg->store, &batch[i], r == 0 || r == REFUSED);
			after = batch[i].seq;
			if (r == REFUSED) {
				st->refused++;
				r = 0;
			} else if (r == 0) {
				st->escrowed += batch[i].op == KEEL_STORE_MIRROR_ESCROW;
				st->rewrapped += batch[i].op == KEEL_STORE_MIRROR_REWRAP;
				st->deleted += batch[i].op == KEEL_STORE_MIRROR_DELETE;
				st->last_success = (int64_t)time(NULL);
				st->last_error = 0;
			} else {
				keel_warn("mirror: %s of %s: %s", op_name(batch[i].op),
					  batch[i].uid, mirror_strerror(r));
				st->last_error = r;
			}
		}
	}
	backlog(cfg->store, st);
	return stops_pass(r) ? r : 0;
}

/* ---- the thread ---------------------------------------------------------------- */

struct mirror_worker {
	struct mirror_worker_config cfg;
	char *root_key_id;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kicked;
	struct mirror_worker_status status; /* under mu */
};

/* Waits ms or until a kick or stop; true when kicked. */
static bool wait_for(struct mirror_worker *w, uint32_t ms)
{
	bool kicked;
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->stop && !w->kicked &&
	       pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT) {
	}
	kicked = w->kicked;
	w->kicked = false;
	pthread_mutex_unlock(&w->mu);
	return kicked;
}

/* Runs poll_fn when it is due: every poll_ms, and after a kick. */
static void maybe_poll(struct mirror_worker *w, bool kicked, struct timespec *next)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (w->cfg.poll_fn == NULL || (!kicked && now.tv_sec < next->tv_sec)) {
		return;
	}
	w->cfg.poll_fn(w->cfg.poll_arg, w->cfg.client);
	next->tv_sec = now.tv_sec + (time_t)(w->cfg.poll_ms / 1000);
}

static void *run(void *arg)
{
	struct mirror_worker *w = arg;
	struct mirror_worker_status st;
	struct timespec next_poll = {0};
	bool kicked = true; /* poll at once */
	int r;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		st = w->status;
		pthread_mutex_unlock(&w->mu);
		maybe_poll(w, kicked, &next_poll);
		r = mirror_worker_drain(&w->cfg, &st);
		pthread_mutex_lock(&w->mu);
		w->status = st;
		pthread_mutex_unlock(&w->mu);
		keel_metrics_mirror(st.backlog, st.rewraps, st.last_success, st.last_error);
		kicked = wait_for(w, r != 0 ? w->cfg.pause_ms : w->cfg.idle_ms);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void worker_free(struct mirror_worker *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->root_key_id);
	free(w);
}

int mirror_worker_start(const struct mirror_worker_config *cfg, struct mirror_worker **out_w)
{
	struct mirror_worker *w;
	pthread_condattr_t ca;

	*out_w = NULL;
	if (cfg == NULL || cfg->store == NULL || cfg->client == NULL || cfg->root_key_id == NULL ||
	    cfg->export_fn == NULL || (w = calloc(1, sizeof(*w))) == NULL) {
		return cfg == NULL || cfg->store == NULL ? MIRROR_E_INVAL : MIRROR_E_NOMEM;
	}
	w->cfg = *cfg;
	w->cfg.idle_ms = cfg->idle_ms != 0 ? cfg->idle_ms : 1000;
	w->cfg.pause_ms = cfg->pause_ms != 0 ? cfg->pause_ms : 5000;
	w->cfg.poll_ms = cfg->poll_ms != 0 ? cfg->poll_ms : 300000;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((w->root_key_id = strdup(cfg->root_key_id)) == NULL) {
		worker_free(w);
		return MIRROR_E_NOMEM;
	}
	w->cfg.root_key_id = w->root_key_id;
	if (pthread_create(&w->thread, NULL, run, w) != 0) {
		worker_free(w);
		return MIRROR_E_NOMEM;
	}
	*out_w = w;
	return 0;
}

void mirror_worker_kick(struct mirror_worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->kicked = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void mirror_worker_get_status(struct mirror_worker *w, struct mirror_worker_status *out)
{
	pthread_mutex_lock(&w->mu);
	*out = w->status;
	pthread_mutex_unlock(&w->mu);
}

void mirror_worker_stop(struct mirror_worker *w)
{
	if (w == NULL) {
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	worker_free(w);
}
