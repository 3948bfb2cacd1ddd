/*
 * Recovery from Key Protect (mirror.h, mirror_recovery_*; issue 6): on a
 * fresh appliance, every escrow key keel-<uid> is fetched, opened through Key
 * Protect (unwrap under the root key, AAD = uid; the sealed form's data key
 * likewise, then AES-256-GCM here) and handed to the engine's import, which
 * wraps it under the new token's CRK. The walk runs on its own thread with
 * its own client; the admin API reads its progress.
 *
 * Resuming is re-walking: the import answers "already there" for an object
 * restored before, so a second run, or one after keeld restarted, adds
 * nothing and counts the same. The list is read with deleted keys included
 * so that a copy the worker replaces meanwhile does not shift the pages.
 */
#include "mirror_int.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store.h"

#define GCM_IV_LEN  12
#define GCM_TAG_LEN 16
#define DEK_LEN	    32
#define MAX_COPIES  8 /* keel-<uid> copies tried per uid */

struct mirror_recovery {
	struct mirror_recovery_config cfg;
	struct mirror *client; /* the start's, then the thread's: never both at once */
	pthread_t thread;
	bool joinable;
	atomic_bool stop;   /* keeld is stopping: the walk ends after the current uid */
	pthread_mutex_t mu; /* guards st */
	struct mirror_recovery_status st;
};

/* One escrow key as listed. */
struct escrow {
	char uid[MIRROR_NAME_LEN];
	char id[MIRROR_ID_LEN];
};

struct escrows {
	struct escrow *v;
	size_t num, cap;
};

/* ---- opening one escrow record (worker.c writes it) ------------------------- */

/* AES-256-GCM open of b64(ciphertext | tag) under dek, AAD uid, into locked memory. */
static int unseal(const uint8_t *dek, const uint8_t iv[GCM_IV_LEN], const char *uid,
		  const char *sealed_b64, struct hsm_secret **out)
{
	struct hsm_secret *ct = NULL, *pt = NULL;
	EVP_CIPHER_CTX *c = NULL;
	size_t len;
	int n = 0, fin = 0, r = MIRROR_E_REFUSED;

	if (mirror_b64_decode_secret(sealed_b64, &ct) != 0 ||
	    (len = hsm_secret_len(ct)) <= GCM_TAG_LEN || len - GCM_TAG_LEN > INT32_MAX ||
	    hsm_secret_new(len - GCM_TAG_LEN, &pt) != 0 || (c = EVP_CIPHER_CTX_new()) == NULL) {
		goto out;
	}
	len -= GCM_TAG_LEN;
	if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, dek, iv) == 1 &&
	    EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)uid, (int)strlen(uid)) == 1 &&
	    EVP_DecryptUpdate(c, hsm_secret_data(pt), &n, hsm_secret_data(ct), (int)len) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
				(uint8_t *)hsm_secret_data(ct) + len) == 1 &&
	    EVP_DecryptFinal_ex(c, hsm_secret_data(pt) + n, &fin) == 1) {
		*out = pt;
		pt = NULL;
		r = 0;
	}
out:
	EVP_CIPHER_CTX_free(c);
	hsm_secret_free(ct);
	hsm_secret_free(pt);
	return r;
}

/* The sealed form: Key Protect unwraps the data key, which opens the record. */
static int open_sealed(struct mirror *m, const char *root, const char *uid, json_t *rec,
		       struct hsm_secret **out)
{
	const char *dek_ct = json_string_value(json_object_get(rec, "dek"));
	const char *iv_b64 = json_string_value(json_object_get(rec, "iv"));
	const char *sealed = json_string_value(json_object_get(rec, "sealed"));
	struct hsm_secret *dek = NULL;
	uint8_t iv[GCM_IV_LEN];
	int r;

	if (dek_ct == NULL || iv_b64 == NULL || sealed == NULL ||
	    mirror_b64_decoded_len(iv_b64) != GCM_IV_LEN ||
	    mirror_b64_decode(iv_b64, iv, sizeof(iv)) != 0) {
		return MIRROR_E_PROTOCOL;
	}
	if ((r = mirror_unwrap(m, root, dek_ct, uid, &dek, NULL)) == 0) {
		r = hsm_secret_len(dek) == DEK_LEN
			? unseal(hsm_secret_data(dek), iv, uid, sealed, out)
			: MIRROR_E_REFUSED;
	}
	hsm_secret_free(dek);
	return r;
}

/* The plaintext export in escrow record `payload` of uid: {"v":1,"uid":...} and
 * "ct", or "dek", "iv" and "sealed". MIRROR_E_PROTOCOL: not such a record. */
static int open_record(struct mirror *m, const char *root, const char *uid,
		       struct hsm_secret *payload, struct hsm_secret **out)
{
	json_t *rec = json_loadb((const char *)hsm_secret_data(payload), hsm_secret_len(payload),
				 JSON_REJECT_DUPLICATES, NULL);
	const char *ct = json_string_value(json_object_get(rec, "ct"));
	const char *ruid = json_string_value(json_object_get(rec, "uid"));
	int r = MIRROR_E_PROTOCOL;

	if (rec != NULL && json_integer_value(json_object_get(rec, "v")) == 1 && ruid != NULL &&
	    strcmp(ruid, uid) == 0) {
		r = ct != NULL ? mirror_unwrap(m, root, ct, uid, out, NULL)
			       : open_sealed(m, root, uid, rec, out);
	}
	json_decref(rec);
	return r;
}

/* ---- one uid ------------------------------------------------------------------- */

enum outcome { RESTORED, PRESENT, FAILED };

static int collect_id(void *arg, const struct mirror_key *k)
{
	struct escrows *e = arg;

	if (e->num < MAX_COPIES) {
		snprintf(e->v[e->num++].id, MIRROR_ID_LEN, "%s", k->id);
	}
	return 0;
}

/* Tries one copy: MIRROR_E_NOT_FOUND when it is gone (the next copy may do). */
static int try_copy(struct mirror_recovery *rc, const char *root, const char *uid, const char *id,
		    enum outcome *out, const char **why)
{
	struct mirror_key k;
	struct hsm_secret *payload = NULL, *plain = NULL;
	int r = mirror_get_key(rc->client, id, &k, &payload);

	if (r == MIRROR_E_GONE || r == MIRROR_E_NOT_FOUND || (r == 0 && k.state == 5)) {
		r = MIRROR_E_NOT_FOUND;
	} else if (r == 0 && payload == NULL) {
		r = MIRROR_E_PROTOCOL;
	} else if (r == 0) {
		r = open_record(rc->client, root, uid, payload, &plain);
	}
	if (r == MIRROR_E_PROTOCOL || r == MIRROR_E_REFUSED) {
		*why = r == MIRROR_E_PROTOCOL ? "not an escrow record of this uid"
					      : "Key Protect refused to unwrap it (tampered, or "
						"wrapped for another uid or root key)";
	} else if (r != 0 && r != MIRROR_E_NOT_FOUND) {
		*why = mirror_strerror(r);
	} else if (r == 0) {
		int ir = rc->cfg.import_fn(rc->cfg.import_arg, uid, plain, why);

		*out = ir == 1 ? PRESENT : ir == 0 ? RESTORED : FAILED;
	}
	hsm_secret_free(plain);
	hsm_secret_free(payload);
	return r;
}

/* Key Protect out of reach, or refusing us: the walk stops there, to be resumed. */
static bool outage(int r)
{
	return r == MIRROR_E_UNAVAILABLE || r == MIRROR_E_AUTH;
}

/* Copies of uid in turn until one opens (a stray bad copy does not hide a
 * good one); an outage ends it at once. Else a refusal, else NOT_FOUND. */
static int try_copies(struct mirror_recovery *rc, const char *root, const char *uid,
		      const struct escrow *copies, size_t num, enum outcome *res, const char **why)
{
	int r = MIRROR_E_NOT_FOUND;

	for (size_t i = 0; i < num; i++) {
		int ri = try_copy(rc, root, uid, copies[i].id, res, why);

		if (ri == 0 || outage(ri)) {
			return ri;
		}
		r = ri != MIRROR_E_NOT_FOUND ? ri : r;
	}
	return r;
}

/* The copies listed for uid, and, if they all went meanwhile, those there now.
 * *out_stop gets the error of an outage, which leaves uid untried. */
static enum outcome recover_uid(struct mirror_recovery *rc, const char *root, const char *uid,
				const struct escrow *copies, size_t num, const char **why,
				int *out_stop)
{
	struct escrow again[MAX_COPIES];
	struct escrows now = {.v = again, .cap = MAX_COPIES};
	char name[MIRROR_NAME_LEN];
	enum outcome res = FAILED;
	int r = try_copies(rc, root, uid, copies, num, &res, why);

	if (r == MIRROR_E_NOT_FOUND && mirror_escrow_name(uid, name) == 0 &&
	    (r = mirror_find_all(rc->client, name, collect_id, &now)) == 0) {
		r = try_copies(rc, root, uid, now.v, now.num, &res, why);
	}
	if (r == MIRROR_E_NOT_FOUND) {
		*why = "its escrow key was deleted meanwhile";
	} else if (r != 0 && (*why)[0] == '\0') {
		*why = mirror_strerror(r);
	}
	*out_stop = outage(r) ? r : 0;
	return r == 0 ? res : FAILED;
}

/* ---- the walk ------------------------------------------------------------------ */

static int list_escrow(void *arg, const struct mirror_key *k)
{
	struct escrows *e = arg;
	const char *uid = mirror_escrow_uid(k->name);

	/* Deleted (listed only to keep the pages still), or not an escrow: a
	 * name no uid Keel escrows makes (mirror_escrow_name) is none. */
	if (k->state == 5 || !k->extractable || uid == NULL) {
		return 0;
	}
	if (e->num == e->cap) {
		size_t cap = e->cap != 0 ? e->cap * 2 : 256;
		struct escrow *grown = realloc(e->v, cap * sizeof(*grown));

		if (grown == NULL) {
			return MIRROR_E_NOMEM;
		}
		e->v = grown;
		e->cap = cap;
	}
	snprintf(e->v[e->num].uid, MIRROR_NAME_LEN, "%s", uid);
	snprintf(e->v[e->num].id, MIRROR_ID_LEN, "%s", k->id);
	e->num++;
	return 0;
}

static int by_uid(const void *a, const void *b)
{
	return strcmp(((const struct escrow *)a)->uid, ((const struct escrow *)b)->uid);
}

static void count(struct mirror_recovery *rc, const char *uid, enum outcome res, const char *why)
{
	struct mirror_recovery_status *st = &rc->st;

	pthread_mutex_lock(&rc->mu);
	st->processed++;
	if (res == RESTORED) {
		st->restored++;
	} else if (res == PRESENT) {
		st->present++;
	} else {
		st->failed++;
		if (st->num_failures < MIRROR_RECOVERY_FAILURES_MAX) {
			struct mirror_recovery_failure *f = &st->failures[st->num_failures++];

			snprintf(f->uid, sizeof(f->uid), "%s", uid);
			f->why = why;
		}
	}
	pthread_mutex_unlock(&rc->mu);
	if (res == FAILED) {
		keel_warn("recover: %s not restored: %s", uid, why);
	}
}

/* Every escrow, grouped by uid (copies of one uid are alternatives). */
static int walk(struct mirror_recovery *rc, const char *root)
{
	struct escrows e = {0};
	size_t groups = 0;
	int r = mirror_list(rc->client, MIRROR_ESCROW_PREFIX, true, list_escrow, &e);

	if (r == 0 && e.num != 0) {
		qsort(e.v, e.num, sizeof(*e.v), by_uid);
		for (size_t i = 0; i < e.num; i++) {
			groups += i == 0 || strcmp(e.v[i].uid, e.v[i - 1].uid) != 0;
		}
	}
	pthread_mutex_lock(&rc->mu);
	rc->st.total = groups;
	pthread_mutex_unlock(&rc->mu);
	for (size_t i = 0, j; r == 0 && i < e.num; i = j) {
		if (atomic_load(&rc->stop)) {
			r = MIRROR_E_UNAVAILABLE; /* resumed by the next run */
			break;
		}
		const char *why = "";
		enum outcome res;

		for (j = i + 1; j < e.num && strcmp(e.v[j].uid, e.v[i].uid) == 0; j++) {
		}
		res = recover_uid(rc, root, e.v[i].uid, &e.v[i],
				  j - i > MAX_COPIES ? MAX_COPIES : j - i, &why, &r);
		if (r == 0) {
			count(rc, e.v[i].uid, res, why);
		}
	}
	free(e.v);
	return r;
}

/* The end, in the audit trail next to each object's Recover row. */
static void audit_end(struct mirror_recovery *rc, const struct mirror_recovery_status *st)
{
	char detail[160];
	struct keel_store_txn *t = NULL;

	snprintf(detail, sizeof(detail),
		 "%s: %llu escrows, %llu restored, %llu already present, %llu failed",
		 st->state == MIRROR_RECOVERY_DONE ? "finished" : mirror_strerror(st->error),
		 (unsigned long long)st->total, (unsigned long long)st->restored,
		 (unsigned long long)st->present, (unsigned long long)st->failed);
	keel_notice("recover: %s", detail);
	if (keel_store_begin(rc->cfg.store, &t) != 0) {
		return;
	}
	if (keel_store_end(t, keel_store_audit_append(
				  t, &(struct keel_store_audit){.time = st->finished,
								.client = "recover",
								.operation = KEEL_AUDIT_OP_RECOVER,
								.detail = detail})) != 0) {
		keel_err("recover: the audit row of the recovery's end was not written");
	}
}

static void *run(void *arg)
{
	struct mirror_recovery *rc = arg;
	struct mirror_recovery_status snap;
	char root[MIRROR_ID_LEN];
	int r;

	pthread_mutex_lock(&rc->mu);
	memcpy(root, rc->st.root_key_id, sizeof(root));
	pthread_mutex_unlock(&rc->mu);
	r = walk(rc, root);
	if (r == 0) {
		struct mirror_key k = {0};

		/* Escrowing resumes only now: the worker's fresh copies would churn the list. */
		snprintf(k.id, sizeof(k.id), "%s", root);
		r = rc->cfg.adopt_fn(rc->cfg.adopt_arg, &k, true);
	}
	pthread_mutex_lock(&rc->mu);
	rc->st.state = r == 0 ? MIRROR_RECOVERY_DONE : MIRROR_RECOVERY_FAILED;
	rc->st.error = r;
	rc->st.finished = (int64_t)time(NULL);
	snap = rc->st;
	pthread_mutex_unlock(&rc->mu);
	audit_end(rc, &snap);
	return NULL;
}

/* ---- the API ------------------------------------------------------------------- */

int mirror_recovery_new(const struct mirror_recovery_config *cfg, struct mirror_recovery **out)
{
	struct mirror_recovery *rc;
	int r;

	*out = NULL;
	if (cfg == NULL || cfg->store == NULL || cfg->import_fn == NULL || cfg->adopt_fn == NULL) {
		return MIRROR_E_INVAL;
	}
	if ((rc = calloc(1, sizeof(*rc))) == NULL) {
		return MIRROR_E_NOMEM;
	}
	rc->cfg = *cfg;
	rc->cfg.root_name = cfg->root_name != NULL ? cfg->root_name : MIRROR_ROOT_NAME;
	pthread_mutex_init(&rc->mu, NULL);
	if ((r = mirror_new(&cfg->client, &rc->client)) != 0) {
		mirror_recovery_free(rc);
		return r;
	}
	*out = rc;
	return 0;
}

void mirror_recovery_free(struct mirror_recovery *rc)
{
	if (rc == NULL) {
		return;
	}
	atomic_store(&rc->stop, true);
	if (rc->joinable) {
		pthread_join(rc->thread, NULL);
	}
	mirror_free(rc->client);
	pthread_mutex_destroy(&rc->mu);
	free(rc);
}

/* Whether the store may take the recovery: empty, forced, or already adopting root. */
static int check_store(struct mirror_recovery *rc, const char *root, bool force, const char **why)
{
	struct keel_store_mirror_root rec = {0};
	struct keel_store_txn *t = NULL;
	int64_t objects = 0;
	int r;

	if ((r = keel_store_begin_read(rc->cfg.store, &t)) == 0) {
		r = keel_store_object_count(t, &objects);
		r = r != 0 ? r : keel_store_mirror_root_get(t, &rec);
		keel_store_rollback(t);
	}
	if (r != 0) {
		*why = "the store cannot be read";
		return MIRROR_E_INVAL;
	}
	if (rec.shredded != 0 || (rec.enabled && strcmp(rec.key_id, root) != 0)) {
		*why = "this appliance mirrors to another root key, or was crypto-shredded";
		return MIRROR_E_CONFLICT;
	}
	if (objects != 0 && !force && !(rec.enabled && strcmp(rec.key_id, root) == 0)) {
		*why = "the store holds objects (recover into a fresh appliance, or --force)";
		return MIRROR_E_CONFLICT;
	}
	return 0;
}

int mirror_recovery_start(struct mirror_recovery *rc, bool force, const char **out_why)
{
	struct mirror_key root;
	int r;

	*out_why = "";
	pthread_mutex_lock(&rc->mu);
	r = rc->st.state == MIRROR_RECOVERY_RUNNING ? MIRROR_E_CONFLICT : 0;
	pthread_mutex_unlock(&rc->mu);
	if (r != 0) {
		*out_why = "a recovery is running";
		return r;
	}
	if (rc->joinable) {
		pthread_join(rc->thread, NULL); /* the previous run, finished */
		rc->joinable = false;
	}
	if ((r = mirror_find_by_name(rc->client, rc->cfg.root_name, &root)) != 0) {
		*out_why = r == MIRROR_E_NOT_FOUND
			       ? "no live root key of Keel's in this Key Protect "
				 "instance"
			       : mirror_strerror(r);
		return r;
	}
	if ((r = check_store(rc, root.id, force, out_why)) != 0) {
		return r;
	}
	/* Recorded first: a restarted keeld may then resume into the same store. */
	if ((r = rc->cfg.adopt_fn(rc->cfg.adopt_arg, &root, false)) != 0) {
		*out_why = "the root key could not be recorded";
		return r;
	}
	pthread_mutex_lock(&rc->mu);
	memset(&rc->st, 0, sizeof(rc->st));
	rc->st.state = MIRROR_RECOVERY_RUNNING;
	rc->st.started = (int64_t)time(NULL);
	snprintf(rc->st.root_key_id, sizeof(rc->st.root_key_id), "%s", root.id);
	pthread_mutex_unlock(&rc->mu);
	if (pthread_create(&rc->thread, NULL, run, rc) != 0) {
		pthread_mutex_lock(&rc->mu);
		rc->st.state = MIRROR_RECOVERY_FAILED;
		rc->st.error = MIRROR_E_NOMEM;
		pthread_mutex_unlock(&rc->mu);
		*out_why = "no thread";
		return MIRROR_E_NOMEM;
	}
	rc->joinable = true;
	return 0;
}

void mirror_recovery_status(struct mirror_recovery *rc, struct mirror_recovery_status *out)
{
	pthread_mutex_lock(&rc->mu);
	*out = rc->st;
	pthread_mutex_unlock(&rc->mu);
}
