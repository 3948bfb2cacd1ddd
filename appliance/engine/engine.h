/*
 * The KMIP engine: decodes a request, runs each batch item against the store
 * and the HSM, and encodes the response. Its entry point is shaped as a
 * keel_request_fn so that the server calls it on a worker thread today and,
 * once keeld is split in two processes, a stub can forward the same call over
 * a socket pair. The engine never touches sockets or SQL directly.
 */
#ifndef KEEL_ENGINE_H
#define KEEL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/request.h"

struct hsm;
struct keel_store;
struct keel_engine; /* opaque */

struct keel_engine_config {
	const char *store_path;	    /* SQLite database file; created on first open */
	struct hsm *hsm;	    /* opened by the caller, outlives the engine */
	size_t max_message_len;	    /* largest request and response, bytes */
	unsigned max_batch_items;   /* more items in one request: the whole request is refused */
	unsigned max_locate_items;  /* ceiling on Locate results whatever the client asks */
	unsigned store_connections; /* pooled store connections; 0 means 4 */
	/* Tests: called by each request between its preparation (the token work done
	 * before it takes the writers' turn) and its transaction; NULL otherwise. */
	void (*after_prepare)(void *arg);
	void *after_prepare_arg;
};

/* Batch items whose token work was prepared before the writers' turn, and of
 * those, how many the turn used (the rest were stale, or their item failed). */
struct keel_engine_prep_stats {
	uint64_t prepared;
	uint64_t used;
};
void keel_engine_prep_stats(struct keel_engine *e, struct keel_engine_prep_stats *out);

/*
 * Opens the store (running its migrations) and prepares the engine. On
 * success *out_engine is owned by the caller (keel_engine_close).
 */
int keel_engine_open(const struct keel_engine_config *cfg, struct keel_engine **out_engine)
    __attribute__((warn_unused_result));

/* Closes the store. Accepts NULL. */
void keel_engine_close(struct keel_engine *e);

/* The engine's store, for the admin API (same process, same pool). */
struct keel_store *keel_engine_store(struct keel_engine *e);

/*
 * The managed object |uid| as the Key Protect mirror escrows it (issue 6):
 * a KMIP 1.4 Response Message in TTLV whose items are a Get (the object in
 * the format it was registered in; absent once its material is destroyed)
 * and a Get Attributes (every attribute), so that a recovery decodes it with
 * kmip_response_decode. Unlike a client's Get it ignores Sensitive and
 * Extractable (the escrow is wrapped under Key Protect's root key) and
 * changes nothing, Fresh included. *out is in locked memory, the caller's to
 * hsm_secret_free; nothing of it is logged.
 */
enum {
	KEEL_ENGINE_EXPORT_E_NOT_FOUND = -1, /* no such object (any more) */
	KEEL_ENGINE_EXPORT_E_FAILED = -2,    /* store, HSM or memory: try again later */
};
struct hsm_secret;
int keel_engine_export(struct keel_engine *e, const char *uid, struct hsm_secret **out)
    __attribute__((warn_unused_result));

/* The server attribute that carries an object's owner in an export (nothing else has it). */
#define KEEL_ENGINE_OWNER_ATTR "y-keel-owner"

/*
 * The inverse of keel_engine_export, for a recovery from Key Protect: restores
 * the object |uid| from its export |in| with the same unique identifier, owner,
 * state, dates and every attribute, its material wrapped under the token's
 * active CRK, and an audit row (Recover) in the same transaction. Everything
 * is checked, the payload comes from the cloud: it must decode, name |uid|,
 * hold only attributes Keel keeps, and its material must agree with its
 * attributes. When |uid| exists already, *out_identical tells whether it
 * exports to exactly |in| (then nothing is written: a repeated recovery is a
 * no-op); a different object under that uid is KEEL_ENGINE_IMPORT_E_EXISTS.
 * Nothing of |in| is logged.
 */
enum {
	KEEL_ENGINE_IMPORT_E_INVALID = -1, /* does not decode, or not a Keel export of |uid| */
	KEEL_ENGINE_IMPORT_E_EXISTS = -2,  /* |uid| holds a different object */
	KEEL_ENGINE_IMPORT_E_FAILED = -3,  /* store, HSM or memory */
};
int keel_engine_import(struct keel_engine *e, const char *uid, const uint8_t *in, size_t in_len,
		       bool *out_identical) __attribute__((warn_unused_result));
/* A short constant description of a KEEL_ENGINE_IMPORT_E_* value. */
const char *keel_engine_import_strerror(int err);

/*
 * Stops serving keys (|why| not NULL, a static string) or serves again
 * (NULL): every batch item but Discover Versions and Query then fails with
 * Permission Denied and |why| as its Result Message. The Key Protect
 * mirror's revocation (a deleted or disabled root key). Thread-safe.
 */
void keel_engine_refuse(struct keel_engine *e, const char *why);

/*
 * Answers one framed KMIP request from |who| through |reply|. |ctx| is the
 * struct keel_engine. Thread-safe: the server calls it from several workers.
 */
void keel_engine_handle(void *ctx, const struct keel_client_identity *who, const uint8_t *req,
			size_t req_len, keel_reply_fn reply, void *reply_ctx);

#endif
