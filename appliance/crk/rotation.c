/*
 * CRK rotation: see rotation.h. One thread sweeps the objects table by row id;
 * each batch is read in a read-only snapshot (never blocking KMIP writers), rewrapped in the token
 * with no transaction open (so KMIP requests are not held behind token work), then written back in
 * one transaction together with the progress row.
 */
#include "rotation.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/metrics.h"
#include "log.h"

#define DEFAULT_BATCH 200
#define MAX_SWEEPS    3 /* another sweep only finds objects restored meanwhile */

struct keel_rotation {
	struct hsm *hsm;
	struct keel_store *store;
	unsigned batch, pause_ms;
	int (*new_version_fn)(void *arg, uint32_t *out_version);
	void *new_version_arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool wanted, running, held, stop;
	int64_t skipped;
};

const char *keel_rotation_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case KEEL_ROT_E_RUNNING:
		return "a CRK rotation or a restore is in progress";
	case KEEL_ROT_E_HSM:
		return "the token failed";
	case KEEL_ROT_E_STORE:
		return "the store failed";
	case KEEL_ROT_E_NOMEM:
		return "out of memory";
	case KEEL_ROT_E_NO_CRK:
		return "the token has no CRK";
	case KEEL_ROT_E_MIRROR:
		return "Key Protect did not take the new CRK version; the CRK is unchanged";
	default:
		return "unknown rotation error";
	}
}

static bool stopping(struct keel_rotation *r)
{
	bool stop;

	pthread_mutex_lock(&r->lock);
	stop = r->stop;
	pthread_mutex_unlock(&r->lock);
	return stop;
}

/* Waits pause_ms between batches, or less if keeld is stopping. */
static void pause_between(struct keel_rotation *r)
{
	struct timespec until;

	if (r->pause_ms == 0) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += r->pause_ms / 1000;
	until.tv_nsec += (long)(r->pause_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &until) != ETIMEDOUT) {
	}
	pthread_mutex_unlock(&r->lock);
}

static int store_err(int err, const char *what)
{
	keel_err("crk: %s: %s", what, keel_store_strerror(err));
	return KEEL_ROT_E_STORE;
}

/* Objects whose blob is under another version than |target|. */
static int count_stale(struct keel_store_txn *t, uint32_t target, int64_t *out_num)
{
	struct keel_store_crk_count *counts = NULL;
	size_t num = 0;
	int err = keel_store_crk_counts(t, &counts, &num);

	*out_num = 0;
	for (size_t i = 0; err == 0 && i < num; i++) {
		*out_num += counts[i].version != target ? counts[i].objects : 0;
	}
	free(counts);
	return err;
}

/*
 * Resumes the recorded rotation to |target|, or records a new one when blobs
 * under older versions exist. *out_todo is false when there is nothing to do.
 */
static int load_or_begin(struct keel_rotation *r, uint32_t target, struct keel_store_rotation *p,
			 bool *out_todo)
{
	struct keel_store_txn *t;
	int64_t stale = 0;
	int err, found;

	if ((err = keel_store_begin(r->store, &t)) != 0) {
		return store_err(err, "reading the rotation");
	}
	found = keel_store_rotation_get(t, p);
	if ((found != 0 && found != KEEL_STORE_E_NOT_FOUND) ||
	    (err = count_stale(t, target, &stale)) != 0) {
		keel_store_rollback(t);
		return store_err(found != 0 ? found : err, "reading the rotation");
	}
	*out_todo = stale > 0 || (found == 0 && p->target == target && p->finished == 0);
	if (found == 0 && p->target == target && p->finished == 0) {
		keel_info("crk: resuming the rotation to version %u at %lld of %lld objects",
			  target, (long long)p->done, (long long)p->total);
		keel_store_rollback(t);
		return 0;
	}
	if (!*out_todo) {
		keel_store_rollback(t);
		return 0;
	}
	*p = (struct keel_store_rotation){
	    .target = target, .started = (int64_t)time(NULL), .total = stale};
	if ((err = keel_store_end(t, keel_store_rotation_put(t, p))) != 0) {
		return store_err(err, "recording the rotation");
	}
	keel_info("crk: rotating %lld objects to version %u", (long long)stale, target);
	return 0;
}

/* Adds |add| to the sweep's skipped objects (or resets them); returns the count.
 * keel_rotation_status reads it from other threads, hence the lock. */
static int64_t count_skipped(struct keel_rotation *r, int64_t add, bool reset)
{
	int64_t n;

	pthread_mutex_lock(&r->lock);
	r->skipped = reset ? 0 : r->skipped + add;
	n = r->skipped;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Rewraps what it can; a failed object keeps its blob (NULL in out_blobs). */
static void rewrap_all(struct keel_rotation *r, const struct keel_store_stale *stale, size_t num,
		       uint8_t **out_blobs, size_t *out_lens)
{
	for (size_t i = 0; i < num; i++) {
		int err = hsm_rewrap(r->hsm, (const uint8_t *)stale[i].uid, strlen(stale[i].uid),
				     stale[i].blob, stale[i].blob_len, &out_blobs[i], &out_lens[i]);

		if (err != 0) {
			keel_err("crk: cannot rewrap object %s: %s", stale[i].uid,
				 hsm_strerror(err));
			out_blobs[i] = NULL;
			(void)count_skipped(r, 1, false);
		}
	}
}

/* Writes one batch back with its progress, in one transaction. */
static int write_batch(struct keel_rotation *r, struct keel_store_rotation *p,
		       const struct keel_store_stale *stale, size_t num, uint8_t **blobs,
		       const size_t *lens)
{
	struct keel_store_rotation next = *p;
	struct keel_store_txn *t;
	int err = 0;

	if ((err = keel_store_begin(r->store, &t)) != 0) {
		return store_err(err, "writing a batch");
	}
	for (size_t i = 0; i < num && err == 0; i++) {
		if (blobs[i] == NULL) {
			continue;
		}
		err = keel_store_object_rewrap(t, stale[i].uid, stale[i].blob, stale[i].blob_len,
					       p->target, blobs[i], lens[i]);
		if (err == KEEL_STORE_E_NOT_FOUND) {
			/* Changed or destroyed by a KMIP request since we read it. */
			keel_debug("crk: object %s changed meanwhile, left as it is", stale[i].uid);
			err = 0;
			continue;
		}
		next.done += err == 0;
	}
	next.cursor = stale[num - 1].rowid;
	if (err == 0) {
		err = keel_store_rotation_put(t, &next);
	}
	if ((err = keel_store_end(t, err)) != 0) {
		return store_err(err, "writing a batch");
	}
	*p = next;
	keel_metrics_crk_remaining(p->total - p->done);
	return 0;
}

/* One batch from p->cursor on; *out_more is false once the sweep is over. */
static int batch(struct keel_rotation *r, struct keel_store_rotation *p, bool *out_more)
{
	struct keel_store_stale *stale = NULL;
	struct keel_store_txn *t;
	uint8_t **blobs = NULL;
	size_t num = 0, *lens = NULL;
	int err;

	if ((err = keel_store_begin_read(r->store, &t)) != 0) {
		return store_err(err, "reading a batch");
	}
	err = keel_store_crk_stale(t, p->target, p->cursor, r->batch, &stale, &num);
	keel_store_rollback(t);
	if (err != 0) {
		return store_err(err, "reading a batch");
	}
	*out_more = num == r->batch;
	if (num == 0) {
		goto out;
	}
	blobs = calloc(num, sizeof(*blobs));
	lens = calloc(num, sizeof(*lens));
	if (blobs == NULL || lens == NULL) {
		err = KEEL_ROT_E_NOMEM;
		goto out;
	}
	rewrap_all(r, stale, num, blobs, lens);
	if ((err = write_batch(r, p, stale, num, blobs, lens)) == 0) {
		keel_debug("crk: rotation to version %u: %lld of %lld objects", p->target,
			   (long long)p->done, (long long)p->total);
	}
out:
	for (size_t i = 0; blobs != NULL && i < num; i++) {
		free(blobs[i]);
	}
	free(blobs);
	free(lens);
	keel_store_stale_free(stale, num);
	return err;
}

/* Destroys every version but |target| that no object refers to any more. */
static int retire(struct keel_rotation *r, uint32_t target)
{
	struct keel_store_crk_count *counts = NULL;
	struct hsm_crk_info *crks = NULL;
	struct keel_store_txn *t;
	size_t num_counts = 0, num_crks = 0;
	int err;

	if ((err = keel_store_begin_read(r->store, &t)) != 0) {
		return store_err(err, "counting objects per version");
	}
	err = keel_store_crk_counts(t, &counts, &num_counts);
	keel_store_rollback(t);
	if (err != 0) {
		return store_err(err, "counting objects per version");
	}
	if ((err = hsm_crk_list(r->hsm, &crks, &num_crks)) != 0) {
		keel_err("crk: listing the token's versions: %s", hsm_strerror(err));
		free(counts);
		return KEEL_ROT_E_HSM;
	}
	for (size_t i = 0; i < num_crks && err == 0; i++) {
		bool used = crks[i].version == target;

		for (size_t k = 0; k < num_counts; k++) {
			used = used || (counts[k].version == crks[i].version && counts[k].objects);
		}
		if (!used && crks[i].version < target) {
			if ((err = hsm_crk_destroy(r->hsm, crks[i].version)) == 0) {
				keel_info("crk: destroyed version %u: no object refers to it",
					  crks[i].version);
			} else {
				keel_err("crk: destroying version %u: %s", crks[i].version,
					 hsm_strerror(err));
			}
		}
	}
	free(crks);
	free(counts);
	return err != 0 ? KEEL_ROT_E_HSM : 0;
}

static int finish(struct keel_rotation *r, struct keel_store_rotation *p)
{
	struct keel_store_txn *t;
	int err;

	p->finished = (int64_t)time(NULL);
	keel_metrics_crk_remaining(0);
	if ((err = keel_store_begin(r->store, &t)) != 0 ||
	    (err = keel_store_end(t, keel_store_rotation_put(t, p))) != 0) {
		return store_err(err, "finishing the rotation");
	}
	keel_info("crk: rotation to version %u complete: %lld objects rewrapped", p->target,
		  (long long)p->done);
	return 0;
}

/* Sweeps until no blob is left under an older version, then retires them. */
static int run(struct keel_rotation *r)
{
	struct keel_store_rotation p;
	uint32_t target;
	int64_t skipped;
	bool todo = false, more = true;
	int err;

	if (hsm_crk_active(r->hsm, &target) != 0) {
		return KEEL_ROT_E_NO_CRK;
	}
	for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
		if ((err = load_or_begin(r, target, &p, &todo)) != 0 || !todo) {
			return err;
		}
		keel_metrics_crk_remaining(p.total - p.done);
		(void)count_skipped(r, 0, true);
		for (more = true; more && !stopping(r);) {
			if ((err = batch(r, &p, &more)) != 0) {
				return err;
			}
			pause_between(r);
		}
		if (stopping(r)) {
			return 0;
		}
		if ((skipped = count_skipped(r, 0, false)) != 0) {
			keel_err(
			    "crk: %lld objects could not be rewrapped; older versions are kept",
			    (long long)skipped);
			return KEEL_ROT_E_HSM;
		}
		if ((err = retire(r, target)) != 0 || (err = finish(r, &p)) != 0) {
			return err;
		}
	}
	return 0;
}

/*
 * Whether the store holds work for the thread: a rotation recorded but not
 * finished, or blobs under another version than the active one. Errors say
 * yes, so that the thread runs and logs them.
 */
static bool pending(struct keel_rotation *r)
{
	struct keel_store_rotation p;
	struct keel_store_txn *t;
	uint32_t target;
	int64_t stale = 0;
	int got;

	if (hsm_crk_active(r->hsm, &target) != 0) {
		return false;
	}
	if (keel_store_begin_read(r->store, &t) != 0) {
		return true;
	}
	got = keel_store_rotation_get(t, &p);
	if ((got != 0 && got != KEEL_STORE_E_NOT_FOUND) || count_stale(t, target, &stale) != 0) {
		stale = 1;
	}
	keel_store_rollback(t);
	return stale > 0 || (got == 0 && p.target == target && p.finished == 0);
}

static void *worker(void *arg)
{
	struct keel_rotation *r = arg;
	int err;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->stop && !r->wanted) {
			pthread_cond_wait(&r->cond, &r->lock);
		}
		if (r->stop) {
			break;
		}
		r->wanted = false;
		r->running = true;
		pthread_mutex_unlock(&r->lock);
		if ((err = run(r)) != 0 && err != KEEL_ROT_E_NO_CRK) {
			keel_err("crk: rotation stopped: %s", keel_rotation_strerror(err));
		}
		pthread_mutex_lock(&r->lock);
		r->running = false;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int keel_rotation_new(const struct keel_rotation_config *cfg, struct keel_rotation **out_rotation)
{
	struct keel_rotation *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		return KEEL_ROT_E_NOMEM;
	}
	r->hsm = cfg->hsm;
	r->store = cfg->store;
	r->batch = cfg->batch != 0 ? cfg->batch : DEFAULT_BATCH;
	r->pause_ms = cfg->pause_ms;
	r->new_version_fn = cfg->new_version_fn;
	r->new_version_arg = cfg->new_version_arg;
	r->wanted = pending(r); /* resume whatever a previous run left */
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (pthread_create(&r->thread, NULL, worker, r) != 0) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		free(r);
		return KEEL_ROT_E_NOMEM;
	}
	*out_rotation = r;
	return 0;
}

void keel_rotation_free(struct keel_rotation *r)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

/* Records the rotation before the thread starts it, so that a crash resumes it. */
static int record_start(struct keel_rotation *r, uint32_t version)
{
	struct keel_store_rotation p = {.target = version, .started = (int64_t)time(NULL)};
	struct keel_store_txn *t;
	int err;

	if ((err = keel_store_begin(r->store, &t)) != 0) {
		return store_err(err, "recording the rotation");
	}
	if ((err = count_stale(t, version, &p.total)) == 0) {
		err = keel_store_rotation_put(t, &p);
	}
	if ((err = keel_store_end(t, err)) != 0) {
		return store_err(err, "recording the rotation");
	}
	keel_info("crk: version %u is active; rotating %lld objects to it", version,
		  (long long)p.total);
	return 0;
}

int keel_rotation_start(struct keel_rotation *r, uint32_t *out_version)
{
	uint32_t version = 0;
	int err;

	pthread_mutex_lock(&r->lock);
	if (r->running || r->wanted || r->held) {
		pthread_mutex_unlock(&r->lock);
		return KEEL_ROT_E_RUNNING;
	}
	/* Versions made meanwhile by another process (keelctl hsm init-crk) count:
	 * the new one must come after them. */
	if ((err = hsm_crk_rescan(r->hsm)) != 0 || (err = hsm_crk_active(r->hsm, &version)) != 0) {
		pthread_mutex_unlock(&r->lock);
		keel_err("crk: making a new version: %s", hsm_strerror(err));
		return err == HSM_E_CRK_NOT_FOUND ? KEEL_ROT_E_NO_CRK : KEEL_ROT_E_HSM;
	}
	err = r->new_version_fn != NULL ? r->new_version_fn(r->new_version_arg, &version) : 1;
	if (err < 0) {
		pthread_mutex_unlock(&r->lock);
		return KEEL_ROT_E_MIRROR;
	}
	if (err > 0 && (err = hsm_crk_generate(r->hsm, 0, &version)) != 0) {
		pthread_mutex_unlock(&r->lock);
		keel_err("crk: making a new version: %s", hsm_strerror(err));
		return KEEL_ROT_E_HSM;
	}
	/* If recording fails (logged), the thread finds the blobs under older versions
	 * and records the rotation itself: it has started all the same. */
	(void)record_start(r, version);
	r->wanted = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (out_version != NULL) {
		*out_version = version;
	}
	return 0;
}

void keel_rotation_wait(struct keel_rotation *r)
{
	pthread_mutex_lock(&r->lock);
	while (!r->stop && (r->running || r->wanted)) {
		pthread_cond_wait(&r->cond, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
}

int keel_rotation_hold(struct keel_rotation *r)
{
	int err = 0;

	pthread_mutex_lock(&r->lock);
	if (r->running || r->wanted || r->held) {
		err = KEEL_ROT_E_RUNNING;
	} else {
		r->held = true;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

void keel_rotation_release(struct keel_rotation *r)
{
	/* A restored store may hold blobs under an older version: sweep them. */
	bool sweep = pending(r);

	pthread_mutex_lock(&r->lock);
	r->held = false;
	r->wanted = sweep;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void keel_rotation_status_cleanup(struct keel_rotation_status *st)
{
	if (st != NULL) {
		free(st->versions);
		st->versions = NULL;
		st->num_versions = 0;
	}
}

/* The version entry for |version|, appended if absent (kept ascending by the caller). */
static struct keel_rotation_version *version_slot(struct keel_rotation_status *st, uint32_t version)
{
	struct keel_rotation_version *grown;

	for (size_t i = 0; i < st->num_versions; i++) {
		if (st->versions[i].version == version) {
			return &st->versions[i];
		}
	}
	grown = realloc(st->versions, (st->num_versions + 1) * sizeof(*grown));
	if (grown == NULL) {
		return NULL;
	}
	st->versions = grown;
	grown = &st->versions[st->num_versions++];
	memset(grown, 0, sizeof(*grown));
	grown->version = version;
	return grown;
}

static int cmp_version(const void *a, const void *b)
{
	uint32_t x = ((const struct keel_rotation_version *)a)->version;
	uint32_t y = ((const struct keel_rotation_version *)b)->version;

	return (x > y) - (x < y);
}

/* The token's versions, then the store's counts (which may name versions the token lacks). */
static int merge_versions(struct keel_rotation_status *st, const struct hsm_crk_info *crks,
			  size_t num_crks, const struct keel_store_crk_count *counts,
			  size_t num_counts)
{
	struct keel_rotation_version *v;

	for (size_t i = 0; i < num_crks; i++) {
		if ((v = version_slot(st, crks[i].version)) == NULL) {
			return KEEL_ROT_E_NOMEM;
		}
		v->in_token = true;
		v->active = crks[i].version == st->active;
		memcpy(v->created, crks[i].created, sizeof(v->created));
		memcpy(v->kcv, crks[i].kcv, sizeof(v->kcv));
		v->has_kcv = crks[i].has_kcv;
	}
	for (size_t i = 0; i < num_counts; i++) {
		if ((v = version_slot(st, counts[i].version)) == NULL) {
			return KEEL_ROT_E_NOMEM;
		}
		v->objects = counts[i].objects;
	}
	qsort(st->versions, st->num_versions, sizeof(*st->versions), cmp_version);
	return 0;
}

int keel_rotation_status(struct keel_rotation *r, struct keel_rotation_status *out)
{
	struct keel_store_crk_count *counts = NULL;
	struct hsm_crk_info *crks = NULL;
	struct keel_store_txn *t = NULL;
	size_t num_counts = 0, num_crks = 0;
	int err, got;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&r->lock);
	out->running = r->running || r->wanted;
	out->skipped = r->skipped;
	pthread_mutex_unlock(&r->lock);
	if (hsm_crk_active(r->hsm, &out->active) != 0) {
		out->active = 0;
	}
	if ((err = hsm_crk_list(r->hsm, &crks, &num_crks)) != 0) {
		keel_err("crk: listing the token's versions: %s", hsm_strerror(err));
		return KEEL_ROT_E_HSM;
	}
	if ((err = keel_store_begin_read(r->store, &t)) == 0) {
		got = keel_store_rotation_get(t, &out->progress);
		out->has_progress = got == 0;
		err = got == KEEL_STORE_E_NOT_FOUND ? 0 : got;
		err = err != 0 ? err : keel_store_crk_counts(t, &counts, &num_counts);
		keel_store_rollback(t);
	}
	if (err != 0) {
		free(crks);
		return store_err(err, "reading the rotation status");
	}
	err = merge_versions(out, crks, num_crks, counts, num_counts);
	free(crks);
	free(counts);
	if (err != 0) {
		keel_rotation_status_cleanup(out);
	}
	return err;
}
