/*
 * keeld's Key Protect mirror (mirror.h, mirror_service_*): the root key that
 * `keelctl mirror enable` made, recorded in the store, and the worker that
 * drains the outbox under it. The admin thread enables and reads status; the
 * worker thread has its own client, as a struct mirror serves one thread.
 */
#include <keel/mirror.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store.h"

struct mirror_service {
	struct mirror_service_config cfg;
	pthread_mutex_t crk_mu;	      /* the admin client, and staging a CRK (taken before mu) */
	pthread_mutex_t mu;	      /* guards what follows */
	struct mirror *admin;	      /* enable's client */
	struct mirror *worker_client; /* the worker's */
	struct mirror_worker *worker; /* NULL until enabled */
	struct keel_store_mirror_root root; /* as recorded */
	bool suspended;			    /* the root key was disabled at the last poll */
};

#define SHRED_MSG                                                                                  \
	"key serving stopped: the Key Protect root key was deleted (crypto-shredded; "             \
	"irreversible)"
#define SUSPEND_MSG "key serving suspended: the Key Protect root key is disabled"

/* Every CRK version in the token destroyed, and a staged one; failures logged
 * (the next poll tries again). */
static void destroy_crks(struct hsm *h)
{
	struct hsm_crk_info *list = NULL;
	size_t num = 0;
	int r;

	if (hsm_crk_has_staged(h) && (r = hsm_crk_destroy(h, HSM_CRK_STAGED)) != 0) {
		keel_err("mirror: crypto-shred: discarding the staged CRK: %s", hsm_strerror(r));
	}
	if ((r = hsm_crk_list(h, &list, &num)) != 0) {
		keel_err("mirror: crypto-shred: listing CRK versions: %s", hsm_strerror(r));
		return;
	}
	for (size_t i = 0; i < num; i++) {
		if ((r = hsm_crk_destroy(h, list[i].version)) != 0) {
			keel_err("mirror: crypto-shred: destroying CRK version %u: %s",
				 (unsigned)list[i].version, hsm_strerror(r));
		} else {
			keel_notice("mirror: crypto-shred: CRK version %u destroyed",
				    (unsigned)list[i].version);
		}
	}
	free(list);
}

/* The shred recorded with its critical audit row, in one transaction. */
static int record_shred(struct mirror_service *s, int64_t now)
{
	char detail[MIRROR_ID_LEN + 48];
	struct keel_store_txn *t = NULL;
	int r;

	snprintf(detail, sizeof(detail), "critical: root key %s deleted in Key Protect",
		 s->root.key_id);
	if ((r = keel_store_begin(s->cfg.store, &t)) != 0) {
		return r;
	}
	if ((r = keel_store_mirror_shred(t, now)) != 0 ||
	    (r = keel_store_audit_append(t, &(struct keel_store_audit){
						.time = now,
						.client = "mirror",
						.operation = KEEL_AUDIT_OP_CRYPTO_SHRED,
						.detail = detail,
					    })) != 0) {
		keel_store_rollback(t);
		return r;
	}
	return keel_store_commit(t);
}

/* The root key is gone: stop serving first, then record, then destroy the CRK. */
static void shred(struct mirror_service *s)
{
	int64_t now = (int64_t)time(NULL);
	int r;

	s->cfg.refuse_fn(s->cfg.refuse_arg, SHRED_MSG);
	pthread_mutex_lock(&s->mu);
	if (s->root.shredded == 0) {
		keel_err("mirror: CRITICAL: root key %s was deleted in Key Protect: "
			 "crypto-shredding (key serving stopped, CRK destroyed)",
			 s->root.key_id);
		if ((r = record_shred(s, now)) != 0) {
			keel_err("mirror: recording the crypto-shred: %s", keel_store_strerror(r));
		}
		s->root.shredded = now;
	}
	pthread_mutex_unlock(&s->mu);
	destroy_crks(s->cfg.hsm);
}

/* The escrow keys' uids seen by one scan: those with a live copy, those with a deleted one. */
struct scan {
	char (*live)[KEEL_STORE_UID_MAX + 1], (*dead)[KEEL_STORE_UID_MAX + 1];
	size_t num_live, num_dead, cap_live, cap_dead;
};

static int add_uid(char (**list)[KEEL_STORE_UID_MAX + 1], size_t *num, size_t *cap, const char *uid)
{
	if (*num == *cap) {
		size_t cap2 = *cap != 0 ? *cap * 2 : 64;
		char(*grown)[KEEL_STORE_UID_MAX + 1] = realloc(*list, cap2 * sizeof(**list));

		if (grown == NULL) {
			return MIRROR_E_NOMEM;
		}
		*list = grown;
		*cap = cap2;
	}
	snprintf((*list)[(*num)++], KEEL_STORE_UID_MAX + 1, "%s", uid);
	return 0;
}

static int scan_key(void *arg, const struct mirror_key *k)
{
	struct scan *sc = arg;
	const char *uid = mirror_escrow_uid(k->name);

	if (uid == NULL || !k->extractable) {
		return 0;
	}
	return k->state == 5 ? add_uid(&sc->dead, &sc->num_dead, &sc->cap_dead, uid)
			     : add_uid(&sc->live, &sc->num_live, &sc->cap_live, uid);
}

static int uid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Withdraws every object whose escrow keys are all deleted. The worker
 * replaces a copy by creating the new one before deleting the old, and
 * polls run between its passes, so a deleted copy without a live one was
 * deleted by someone in Key Protect. */
static void poll_escrows(struct mirror_service *s, struct mirror *client)
{
	struct scan sc = {0};
	int r = mirror_list(client, MIRROR_ESCROW_PREFIX, true, scan_key, &sc);

	if (r != 0) {
		keel_warn("mirror: listing escrow keys: %s", mirror_strerror(r));
	} else {
		if (sc.num_live != 0) {
			qsort(sc.live, sc.num_live, sizeof(*sc.live), uid_cmp);
		}
		for (size_t i = 0; i < sc.num_dead; i++) {
			if (sc.num_live == 0 || bsearch(sc.dead[i], sc.live, sc.num_live,
							sizeof(*sc.live), uid_cmp) == NULL) {
				s->cfg.withdraw_fn(s->cfg.withdraw_arg, sc.dead[i]);
			}
		}
	}
	free(sc.live);
	free(sc.dead);
}

/* Records (taking mu itself) the root key's new version for CRK `active`, and
 * queues every escrow for rewrap, in one transaction. */
static int record_rotation(struct mirror_service *s, uint32_t active, const char *version_id)
{
	char key_id[KEEL_STORE_MIRROR_ID_MAX + 1];
	struct keel_store_txn *t = NULL;
	int64_t queued = 0;
	int r;

	if ((r = keel_store_begin(s->cfg.store, &t)) == 0) {
		if ((r = keel_store_mirror_rotated(t, active, version_id, &queued)) == 0) {
			r = keel_store_commit(t);
		} else {
			keel_store_rollback(t);
		}
	}
	if (r != 0) {
		keel_err("mirror: recording root key version %s: %s (tried again at the next poll)",
			 version_id, keel_store_strerror(r));
		return r;
	}
	pthread_mutex_lock(&s->mu);
	s->root.crk_version = active;
	snprintf(s->root.version_id, sizeof(s->root.version_id), "%s", version_id);
	snprintf(key_id, sizeof(key_id), "%s", s->root.key_id);
	pthread_mutex_unlock(&s->mu);
	keel_notice("mirror: root key %s rotated with CRK version %u (Key Protect version %s); "
		    "%lld escrows queued for rewrap",
		    key_id, (unsigned)active, version_id, (long long)queued);
	return 0;
}

/*
 * Generated mode: the root key follows the CRK, so that the escrows' root of
 * trust rotates with it. Once the token's active CRK is newer than the one
 * the root key was last rotated for, Key Protect rotates it (no payload: it
 * makes the material) and every escrow is queued for rewrap. A rotation
 * whose record a crash lost shows as a root key version other than the
 * recorded one, and is recorded, not made twice (Key Protect allows one an
 * hour). A refusal (that hour, an outage) is tried again at the next poll.
 * Imported mode rotates with the CRK itself (mirror_service_rotate_crk).
 */
static void follow_crk(struct mirror_service *s, struct mirror *client, const struct mirror_key *k)
{
	struct keel_store_mirror_root root;
	struct mirror_key now = *k;
	uint32_t active = 0;
	int r = 0;

	pthread_mutex_lock(&s->mu);
	root = s->root;
	pthread_mutex_unlock(&s->mu);
	/* An adopted root key (a recovery's) follows as a generated one does
	 * when Key Protect made it; imported, its material is another CRK's. */
	if ((root.mode != MIRROR_ROOT_GENERATED &&
	     (root.mode != MIRROR_ROOT_ADOPTED || k->imported)) ||
	    hsm_crk_active(s->cfg.hsm, &active) != 0 || active <= root.crk_version) {
		return;
	}
	if (root.version_id[0] == '\0' || strcmp(now.version_id, root.version_id) == 0) {
		if ((r = mirror_rotate(client, root.key_id, NULL)) == 0) {
			r = mirror_get_key(client, root.key_id, &now, NULL);
		}
	}
	if (r == 0 && now.version_id[0] == '\0') {
		r = MIRROR_E_PROTOCOL;
	}
	if (r != 0) {
		keel_warn("mirror: rotating root key %s with CRK version %u: %s (tried again at "
			  "the next poll)",
			  root.key_id, (unsigned)active, mirror_strerror(r));
		return;
	}
	(void)record_rotation(s, active, now.version_id);
}

/*
 * Imported mode, under crk_mu: a staged CRK that a rotation left half-way
 * (keeld stopped, or the token failed, between Key Protect's rotation and
 * the promotion). Key Protect took it when the root key's version moved on
 * from the recorded one: it is promoted and recorded. Otherwise Key Protect
 * never had it: it is discarded. Either way the two are in step again.
 */
static int settle_staged(struct mirror_service *s, struct mirror *client)
{
	struct keel_store_mirror_root root;
	struct mirror_key k;
	uint32_t version = 0;
	int r, hr = 0;

	if (!hsm_crk_has_staged(s->cfg.hsm)) {
		return 0;
	}
	pthread_mutex_lock(&s->mu);
	root = s->root;
	pthread_mutex_unlock(&s->mu);
	if ((r = mirror_get_key(client, root.key_id, &k, NULL)) != 0) {
		keel_warn("mirror: a staged CRK waits: root key %s: %s", root.key_id,
			  mirror_strerror(r));
		return r;
	}
	if (strcmp(k.version_id, root.version_id) == 0) {
		if ((hr = hsm_crk_destroy(s->cfg.hsm, HSM_CRK_STAGED)) == 0) {
			keel_notice(
			    "mirror: a staged CRK that Key Protect never took was discarded");
		}
	} else if ((hr = hsm_crk_promote(s->cfg.hsm, &version)) == 0) {
		keel_notice("mirror: the staged CRK that Key Protect took is now version %u",
			    (unsigned)version);
		r = record_rotation(s, version, k.version_id) == 0 ? 0 : MIRROR_E_INVAL;
	}
	if (hr != 0) {
		keel_err("mirror: settling the staged CRK: %s", hsm_strerror(hr));
		r = MIRROR_E_INVAL;
	}
	return r;
}

/* The worker's revocation poll: what Key Protect says of the root key now. */
static void poll_root(void *arg, struct mirror *client)
{
	struct mirror_service *s = arg;
	struct mirror_key k;
	int r = mirror_get_key(client, s->root.key_id, &k, NULL);
	bool changed = false, suspended = false;

	if (r == MIRROR_E_NOT_FOUND || r == MIRROR_E_GONE || (r == 0 && k.state == 5)) {
		shred(s);
		return;
	}
	if (r == 0) {
		pthread_mutex_lock(&s->mu);
		suspended = k.state == 2;
		changed = s->root.shredded == 0 && suspended != s->suspended;
		s->suspended = changed ? suspended : s->suspended;
		pthread_mutex_unlock(&s->mu);
	}
	if (changed) {
		keel_notice("mirror: root key %s %s: key serving %s", s->root.key_id,
			    suspended ? "disabled" : "enabled again",
			    suspended ? "suspended" : "resumed");
		s->cfg.refuse_fn(s->cfg.refuse_arg, suspended ? SUSPEND_MSG : NULL);
	} else if (r != 0) {
		keel_warn("mirror: polling root key %s: %s", s->root.key_id, mirror_strerror(r));
	}
	if (r == 0 && k.state == 1) {
		follow_crk(s, client, &k);
		/* A rotation holding crk_mu settles its own staged CRK. */
		if (pthread_mutex_trylock(&s->crk_mu) == 0) {
			(void)settle_staged(s, client);
			pthread_mutex_unlock(&s->crk_mu);
		}
		poll_escrows(s, client);
	}
}

static int read_root(struct keel_store *store, struct keel_store_mirror_root *out)
{
	struct keel_store_txn *t = NULL;
	int r;

	if ((r = keel_store_begin_read(store, &t)) == 0) {
		r = keel_store_mirror_root_get(t, out);
		keel_store_rollback(t);
	}
	if (r != 0) {
		keel_err("mirror: cannot read its state from the store: %s",
			 keel_store_strerror(r));
	}
	return r;
}

/* Under s->mu, once the root key is known. */
static int start_worker(struct mirror_service *s)
{
	const struct mirror_worker_config wc = {
	    .store = s->cfg.store,
	    .client = s->worker_client,
	    .root_key_id = s->root.key_id,
	    .export_fn = s->cfg.export_fn,
	    .export_arg = s->cfg.export_arg,
	    .idle_ms = s->cfg.idle_ms,
	    .pause_ms = s->cfg.pause_ms,
	    .poll_fn = poll_root,
	    .poll_arg = s,
	    .poll_ms = s->cfg.poll_ms,
	};
	int r = mirror_worker_start(&wc, &s->worker);

	if (r != 0) {
		keel_err("mirror: cannot start the worker: %s", mirror_strerror(r));
	} else {
		keel_info("mirror: escrowing under root key %s", s->root.key_id);
	}
	return r;
}

int mirror_service_open(const struct mirror_service_config *cfg, struct mirror_service **out_s)
{
	struct mirror_service *s;
	int r;

	*out_s = NULL;
	if (cfg == NULL || cfg->store == NULL || cfg->hsm == NULL || cfg->export_fn == NULL ||
	    cfg->refuse_fn == NULL || cfg->withdraw_fn == NULL) {
		return MIRROR_E_INVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return MIRROR_E_NOMEM;
	}
	s->cfg = *cfg;
	s->cfg.root_name = cfg->root_name != NULL ? cfg->root_name : MIRROR_ROOT_NAME;
	pthread_mutex_init(&s->crk_mu, NULL);
	pthread_mutex_init(&s->mu, NULL);
	if ((r = mirror_new(&cfg->client, &s->admin)) != 0 ||
	    (r = mirror_new(&cfg->client, &s->worker_client)) != 0) {
		keel_err("mirror: %s", mirror_strerror(r));
	} else if (read_root(cfg->store, &s->root) != 0) {
		r = MIRROR_E_INVAL;
	} else if (s->root.shredded != 0) {
		keel_err("mirror: this appliance was crypto-shredded (root key %s deleted in Key "
			 "Protect): it serves no keys",
			 s->root.key_id);
		cfg->refuse_fn(cfg->refuse_arg, SHRED_MSG);
		destroy_crks(cfg->hsm);
	} else if (s->root.enabled) {
		r = start_worker(s);
	}
	if (r != 0) {
		mirror_service_close(s);
		return r;
	}
	*out_s = s;
	return 0;
}

void mirror_service_close(struct mirror_service *s)
{
	if (s == NULL) {
		return;
	}
	mirror_worker_stop(s->worker);
	mirror_free(s->worker_client);
	mirror_free(s->admin);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->crk_mu);
	free(s);
}

/* The root as recorded, in mirror_enable's shape. */
static void recorded(const struct keel_store_mirror_root *root, struct mirror_root *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->key.id, sizeof(out->key.id), "%s", root->key_id);
	snprintf(out->key.version_id, sizeof(out->key.version_id), "%s", root->version_id);
	out->key.state = 1;
	out->mode = (enum mirror_root_mode)root->mode;
	out->crk_version = root->crk_version;
}

/* Under s->mu: records what mirror_enable made and turns the outbox on. */
static int record(struct mirror_service *s, const struct mirror_root *made)
{
	struct keel_store_mirror_root root = {
	    .enabled = true, .mode = (uint32_t)made->mode, .crk_version = made->crk_version};
	struct keel_store_txn *t = NULL;
	int r;

	snprintf(root.key_id, sizeof(root.key_id), "%s", made->key.id);
	snprintf(root.version_id, sizeof(root.version_id), "%s", made->key.version_id);
	if ((r = keel_store_begin(s->cfg.store, &t)) == 0) {
		if ((r = keel_store_mirror_root_set(t, &root)) == 0) {
			r = keel_store_commit(t);
		} else {
			keel_store_rollback(t);
		}
	}
	if (r != 0) {
		keel_err("mirror: root key %s made but not recorded: %s", made->key.id,
			 keel_store_strerror(r));
		return MIRROR_E_INVAL;
	}
	s->root = root;
	return 0;
}

int mirror_service_enable(struct mirror_service *s, struct mirror_root *out, bool *out_already)
{
	struct mirror_root made;
	int r;

	pthread_mutex_lock(&s->crk_mu);
	pthread_mutex_lock(&s->mu);
	*out_already = s->root.enabled;
	if (s->root.enabled) {
		recorded(&s->root, out);
		r = 0;
	} else if ((r = mirror_enable(s->admin, s->cfg.hsm, s->cfg.root_name, &made)) == 0 &&
		   (r = record(s, &made)) == 0) {
		recorded(&s->root, out);
		r = start_worker(s);
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->crk_mu);
	return r;
}

bool mirror_service_sync(struct mirror_service *s)
{
	bool on;

	pthread_mutex_lock(&s->mu);
	on = s->worker != NULL;
	if (on) {
		mirror_worker_kick(s->worker);
	}
	pthread_mutex_unlock(&s->mu);
	return on;
}

void mirror_service_status(struct mirror_service *s, struct mirror_service_status *out)
{
	struct mirror_worker_status ws = {0};
	struct keel_store_txn *t = NULL;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	out->enabled = s->root.enabled;
	out->shredded = s->root.shredded;
	out->suspended = s->suspended;
	out->mode = (enum mirror_root_mode)s->root.mode;
	out->crk_version = s->root.crk_version;
	snprintf(out->root_key_id, sizeof(out->root_key_id), "%s", s->root.key_id);
	snprintf(out->root_version, sizeof(out->root_version), "%s", s->root.version_id);
	if (s->worker != NULL) {
		mirror_worker_get_status(s->worker, &ws);
	}
	pthread_mutex_unlock(&s->mu);
	out->escrowed = ws.escrowed;
	out->last_success = ws.last_success;
	out->last_error = ws.last_error;
	if (hsm_crk_active(s->cfg.hsm, &out->token_crk_version) != 0) {
		out->token_crk_version = 0;
	}
	out->backlog = out->rewraps = -1;
	if (keel_store_begin_read(s->cfg.store, &t) == 0) {
		if (keel_store_mirror_backlog(t, &out->backlog) != 0) {
			out->backlog = -1;
		}
		if (keel_store_mirror_rewraps(t, &out->rewraps) != 0) {
			out->rewraps = -1;
		}
		keel_store_rollback(t);
	}
}

int mirror_service_adopt(struct mirror_service *s, const struct mirror_key *root, bool start)
{
	struct mirror_root made = {.key = *root, .mode = MIRROR_ROOT_ADOPTED};
	int r = 0;

	pthread_mutex_lock(&s->mu);
	if (s->root.enabled && strcmp(s->root.key_id, root->id) != 0) {
		r = MIRROR_E_CONFLICT;
	} else if (!s->root.enabled) {
		r = hsm_crk_active(s->cfg.hsm, &made.crk_version) != 0 ? MIRROR_E_INVAL
								       : record(s, &made);
	}
	if (r == 0 && start && s->worker == NULL) {
		r = start_worker(s);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Imported mode, under crk_mu: stage, import, promote (see mirror.h). */
static int new_crk_imported(struct mirror_service *s, const char *root_id, uint32_t *out_version)
{
	struct hsm *h = s->cfg.hsm;
	struct mirror_key k;
	int r, hr;

	if ((r = settle_staged(s, s->admin)) != 0) {
		return r;
	}
	if ((hr = hsm_crk_stage(h, HSM_CRK_EXTRACTABLE)) != 0) {
		keel_err("mirror: staging the next CRK: %s", hsm_strerror(hr));
		return MIRROR_E_INVAL;
	}
	if ((r = mirror_rotate_staged(s->admin, h, root_id, &k)) != 0) {
		keel_err("mirror: the next CRK did not become root key %s's new version in Key "
			 "Protect (%s): discarded, the CRK is unchanged",
			 root_id, mirror_strerror(r));
		if ((hr = hsm_crk_destroy(h, HSM_CRK_STAGED)) != 0) {
			keel_err(
			    "mirror: discarding the staged CRK: %s (discarded at the next poll)",
			    hsm_strerror(hr));
		}
		return r;
	}
	if ((hr = hsm_crk_promote(h, out_version)) != 0) {
		keel_err("mirror: promoting the staged CRK: %s (Key Protect has it: promoted at "
			 "the next poll)",
			 hsm_strerror(hr));
		return MIRROR_E_INVAL;
	}
	keel_notice("mirror: CRK version %u imported into Key Protect as root key %s's version %s",
		    (unsigned)*out_version, root_id, k.version_id);
	return record_rotation(s, *out_version, k.version_id) == 0 ? 0 : MIRROR_E_INVAL;
}

int mirror_service_new_crk(struct mirror_service *s, uint32_t *out_version)
{
	struct keel_store_mirror_root root;
	int r;

	pthread_mutex_lock(&s->crk_mu);
	pthread_mutex_lock(&s->mu);
	root = s->root;
	pthread_mutex_unlock(&s->mu);
	if (!root.enabled || root.mode != MIRROR_ROOT_IMPORTED || root.shredded != 0) {
		r = 1;
	} else {
		r = new_crk_imported(s, root.key_id, out_version);
	}
	pthread_mutex_unlock(&s->crk_mu);
	return r;
}
