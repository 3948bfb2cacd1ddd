/*
 * kmip_client: a small blocking KMIP client over mutual TLS (OpenSSL), one
 * request and one response at a time. Written for keel-bench and meant to be
 * shared by other tools and tests: it knows nothing about benchmarks.
 *
 * Errors: every fallible function returns 0 or a negative KMIPC_E_* value.
 * A KMIP failure (Result Status other than Success) is KMIPC_E_KMIP with the
 * Result Reason in the caller's struct kmipc_result.
 */
#ifndef KEEL_KMIP_CLIENT_H
#define KEEL_KMIP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMIPC_WUR __attribute__((warn_unused_result))

enum kmipc_err {
	KMIPC_E_CONFIG = -1,   /* certificate, key or CA file unusable; bad version */
	KMIPC_E_CONNECT = -2,  /* name resolution or TCP connect failed */
	KMIPC_E_TLS = -3,      /* handshake, read or write failed; peer closed */
	KMIPC_E_PROTOCOL = -4, /* response not a well-formed KMIP response to the request */
	KMIPC_E_KMIP = -5,     /* the server answered with a failure: see kmipc_result */
	KMIPC_E_NOMEM = -6,
	KMIPC_E_UNEXPECTED = -7, /* well formed, successful, but not the answer expected */
};

/* A short, constant description of a KMIPC_E_* value. */
const char *kmipc_strerror(int err);

struct kmipc_config {
	const char *host; /* name or address */
	const char *port;
	const char *ca_file; /* PEM: the CA that signs the server certificate */
	const char *cert_file;
	const char *key_file;
	int tls_version; /* TLS1_2_VERSION or TLS1_3_VERSION pins one; 0 allows both */
	bool resumption; /* offer session tickets (the caller keeps the session) */
	int kmip_major;	 /* protocol version of every request: 1.x or 2.x */
	int kmip_minor;
};

/* What the server said about one batch item. */
struct kmipc_result {
	uint32_t status; /* KMIP_RESULT_STATUS_* */
	uint32_t reason; /* KMIP_RESULT_REASON_*; 0 when absent */
};

#define KMIPC_UID_MAX 128 /* longest Unique Identifier kept, NUL included */

struct kmipc_ctx;  /* TLS context and configuration: shared by threads, read-only */
struct kmipc_conn; /* one TLS connection: one thread at a time */

/*
 * Loads the CA, certificate and key of |cfg| (strings copied) into a new
 * context. KMIPC_E_CONFIG names nothing: the caller reports the files.
 */
int kmipc_ctx_new(const struct kmipc_config *cfg, struct kmipc_ctx **out) KMIPC_WUR;
void kmipc_ctx_free(struct kmipc_ctx *ctx);

/*
 * Connects and completes the TLS handshake, offering |session| (an
 * SSL_SESSION *, may be NULL) for resumption. The server certificate must
 * chain to the CA and name the host.
 */
int kmipc_connect(struct kmipc_ctx *ctx, void *session, struct kmipc_conn **out) KMIPC_WUR;
/* True when the handshake of |c| resumed a session. */
bool kmipc_resumed(const struct kmipc_conn *c);
/*
 * Closes |c| (accepts NULL). When |out_session| is not NULL it receives the
 * connection's session (an SSL_SESSION * the caller frees), or NULL.
 */
void kmipc_close(struct kmipc_conn *c, void **out_session);

/* Discover Versions with an empty payload (KMIP 1.4 §4.26), as vCenter opens. */
int kmipc_discover_versions(struct kmipc_conn *c, struct kmipc_result *res) KMIPC_WUR;

/*
 * Create: an AES-256 key, usage Encrypt|Decrypt (VCENTER.md §2.2), named
 * |name| when not NULL. The new Unique Identifier goes to |out_uid|.
 */
int kmipc_create_aes256(struct kmipc_conn *c, const char *name, char out_uid[KMIPC_UID_MAX],
			struct kmipc_result *res) KMIPC_WUR;

/* Get |uid| with no format or wrapping asked (KMIP 1.4 §4.11). */
int kmipc_get(struct kmipc_conn *c, const char *uid, struct kmipc_result *res) KMIPC_WUR;

/* Get Attributes of |uid| for State alone (KMIP 1.4 §4.12; 2.0 by Attribute Reference). */
int kmipc_get_state(struct kmipc_conn *c, const char *uid, struct kmipc_result *res) KMIPC_WUR;

/* Activate |uid| (KMIP 1.4 §4.19). */
int kmipc_activate(struct kmipc_conn *c, const char *uid, struct kmipc_result *res) KMIPC_WUR;

/*
 * Locate by Name (KMIP 1.4 §4.9): |out_num| receives how many identifiers
 * the server returned, and |out_uid| the first (empty when none).
 */
int kmipc_locate_name(struct kmipc_conn *c, const char *name, char out_uid[KMIPC_UID_MAX],
		      size_t *out_num, struct kmipc_result *res) KMIPC_WUR;

#endif /* KEEL_KMIP_CLIENT_H */
