/*
 * The seam between the network side (server/) and whatever answers KMIP
 * (engine/ today as a function call; later a privilege-separated key process
 * reached over a socket pair). Nothing here knows TLS or sockets, so the engine
 * can include it without depending on the server.
 */
#ifndef KEEL_REQUEST_H
#define KEEL_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define KEEL_FINGERPRINT_LEN 32
#define KEEL_SUBJECT_MAX     256

/* Who is asking: the SHA-256 of the client's leaf certificate (DER) is the
 * identity; the subject is only for logs and must not be used to authorise. */
struct keel_client_identity {
	uint8_t fingerprint[KEEL_FINGERPRINT_LEN];
	char fingerprint_hex[2 * KEEL_FINGERPRINT_LEN + 1];
	char subject[KEEL_SUBJECT_MAX];
};

/*
 * Answers one request. Must be called exactly once per request, from any
 * thread. |resp| is copied before the call returns. resp == NULL means "no
 * answer is possible": the server closes the connection (use it only when the
 * framing itself cannot be answered; a bad message deserves a KMIP error).
 */
typedef void (*keel_reply_fn)(void *reply_ctx, const uint8_t *resp, size_t resp_len);

/*
 * Handles one well-framed request (the whole TTLV message, header included).
 * Runs on a server worker thread, never on the network loop, so it may block
 * on the HSM or the store; except a handler that only forwards the request
 * (keel_server_config.handler_forwards: the privilege-separated network
 * process), which runs on the loop and must not block. |who| and |req|
 * stay valid until |reply| is called. Requests of one connection are handed
 * over one at a time, in order.
 */
typedef void (*keel_request_fn)(void *ctx, const struct keel_client_identity *who,
				const uint8_t *req, size_t req_len, keel_reply_fn reply,
				void *reply_ctx);

#endif
