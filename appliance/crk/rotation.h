/*
 * CRK rotation (keelctl crk rotate, issue 5). Starting one makes CRK version
 * N+1 in the token; libhsm wraps every new object under the newest version at
 * once. A background thread then rewraps every stored blob under it, in
 * batches of one store transaction each, and finally destroys in the token
 * each older version no object refers to any more.
 *
 * Progress is persisted in the store after every batch: a keeld killed
 * half-way resumes where the last committed batch left off. Each rewrap is a
 * compare-and-set on the blob it read, so a concurrent KMIP Re-key, Destroy
 * or state change is never overwritten; whatever changed the object wrapped
 * it under the new version already (or removed its material).
 *
 * Errors: 0 or a negative KEEL_ROT_E_*. Threads: every function but
 * keel_rotation_free may be called from any thread.
 */
#ifndef KEEL_ROTATION_H
#define KEEL_ROTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/hsm.h"
#include "store.h"

#define KEEL_ROT_WUR __attribute__((warn_unused_result))

enum keel_rot_err {
	KEEL_ROT_E_RUNNING = -1, /* a rotation (or a restore holding it) is in progress */
	KEEL_ROT_E_HSM = -2,	 /* the token failed; details logged */
	KEEL_ROT_E_STORE = -3,	 /* the store failed; details logged */
	KEEL_ROT_E_NOMEM = -4,
	KEEL_ROT_E_NO_CRK = -5, /* the token has no CRK to rotate from */
	KEEL_ROT_E_MIRROR = -6, /* the Key Protect mirror did not take the new version (logged) */
};

const char *keel_rotation_strerror(int err);

struct keel_rotation_config {
	struct hsm *hsm;	  /* outlives the rotation */
	struct keel_store *store; /* outlives the rotation */
	unsigned batch;		  /* objects per store transaction; 0 means 200 */
	unsigned pause_ms;	  /* between batches, leaving the token to KMIP; 0: none */
	/* Makes the new version instead of hsm_crk_generate: the Key Protect
	 * mirror's mirror_service_new_crk, which keeps an imported root key in
	 * step. 0 with *out_version; 1 to leave it to hsm_crk_generate; a
	 * negative value fails the start with KEEL_ROT_E_MIRROR. NULL: generate. */
	int (*new_version_fn)(void *arg, uint32_t *out_version);
	void *new_version_arg;
};

struct keel_rotation; /* opaque */

/*
 * Starts the background thread. If the store holds an unfinished rotation, or
 * blobs under another version than the active one (keeld stopped between
 * making the version and recording it), the thread resumes it at once.
 */
int keel_rotation_new(const struct keel_rotation_config *cfg,
		      struct keel_rotation **out_rotation) KEEL_ROT_WUR;

/* Stops the thread after its current batch (progress is kept). Accepts NULL. */
void keel_rotation_free(struct keel_rotation *r);

/* Makes CRK version N+1, records the rotation and wakes the thread. */
int keel_rotation_start(struct keel_rotation *r, uint32_t *out_version) KEEL_ROT_WUR;

/* Blocks until no rotation is running or pending (tests; keelctl crk rotate --wait). */
void keel_rotation_wait(struct keel_rotation *r);

/*
 * Keeps rotations from starting until keel_rotation_release (a restore
 * replacing the store must not race a sweep or a retirement).
 * KEEL_ROT_E_RUNNING while one runs.
 */
int keel_rotation_hold(struct keel_rotation *r) KEEL_ROT_WUR;
void keel_rotation_release(struct keel_rotation *r);

struct keel_rotation_version {
	uint32_t version;
	bool in_token; /* false: objects refer to a version the token lacks */
	bool active;
	char created[HSM_CRK_CREATED_LEN];
	uint8_t kcv[HSM_KCV_LEN];
	bool has_kcv;
	int64_t objects; /* blobs wrapped under it */
};

struct keel_rotation_status {
	uint32_t active; /* 0: the token has no CRK */
	bool running;
	bool has_progress; /* false if no rotation ever ran */
	struct keel_store_rotation progress;
	int64_t skipped; /* objects the last sweep could not rewrap (logged) */
	struct keel_rotation_version *versions; /* ascending; keel_rotation_status_cleanup */
	size_t num_versions;
};

int keel_rotation_status(struct keel_rotation *r, struct keel_rotation_status *out) KEEL_ROT_WUR;
void keel_rotation_status_cleanup(struct keel_rotation_status *st);

#endif
