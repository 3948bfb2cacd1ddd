/*
 * keel_clients: who may connect, as an in-memory snapshot of the client
 * registry that handshakes read without touching SQL. The registry itself is
 * in the store (store.h, keel_store_client_*): certificates pinned by their
 * SHA-256 fingerprint with a role, and trusted CAs whose certificates are
 * all KMIP clients (identity: the leaf's fingerprint). keeld rebuilds the
 * snapshot at start, on SIGHUP and after each change through the admin API.
 *
 * Threads: lookups may run on any thread while another reloads.
 */
#ifndef KEEL_CLIENTS_H
#define KEEL_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "keel/server.h"

struct keel_store;
struct keel_clients; /* opaque, reference-counted */

/* A registered certificate's role. */
enum keel_role {
	KEEL_ROLE_NONE = 0, /* unknown certificate */
	KEEL_ROLE_KMIP,	    /* a KMIP client (also: chains to a trusted CA) */
	KEEL_ROLE_AUDITOR,  /* admin API, reads only */
	KEEL_ROLE_ADMIN,    /* admin API, everything */
};

/* "kmip", "auditor", "admin"; "none" for KEEL_ROLE_NONE. */
const char *keel_role_name(enum keel_role role);
/* The role named |name| (not "ca"); -1 for anything else. */
__attribute__((warn_unused_result)) int keel_role_parse(const char *name, enum keel_role *out);

/* A snapshot of |store|'s registry (NULL |store|: an empty one); the caller
 * holds one reference (keel_clients_free). 0 or -1 with the reason logged. */
__attribute__((warn_unused_result)) int keel_clients_new(struct keel_store *store,
							 struct keel_clients **out);

/* A snapshot of files, for servers without a store (the tests' echo server):
 * every .pem or .crt file in |certificates_dir| pinned as a KMIP client, every CA in
 * |ca_file| trusted. Either may be NULL. */
__attribute__((warn_unused_result)) int keel_clients_from_files(const char *certificates_dir,
								const char *ca_file,
								struct keel_clients **out);

/*
 * What a KMIP handshake needs of |c| (kmip pins and trusted CAs, no admin or
 * auditor pins) as bytes, for the privilege-separated network process.
 * *out is malloc'd. 0 or -1.
 */
__attribute__((warn_unused_result)) int keel_clients_export(struct keel_clients *c, uint8_t **out,
							    size_t *out_len);

/* A snapshot (never reloaded) from keel_clients_export's bytes; anything
 * malformed or trailing is refused. 0 or -1. */
__attribute__((warn_unused_result)) int keel_clients_import_wire(const uint8_t *buf, size_t len,
								 struct keel_clients **out);

/* Re-reads the store; on failure the old snapshot stays. 0 or -1. */
__attribute__((warn_unused_result)) int keel_clients_reload(struct keel_clients *c);

/* Drops one reference. Accepts NULL. */
void keel_clients_free(struct keel_clients *c);

/* The role pinned for |fingerprint| (CA-chained clients are not pinned). */
enum keel_role keel_clients_role(struct keel_clients *c,
				 const uint8_t fingerprint[KEEL_FINGERPRINT_LEN]);

/* The role of a certificate a peer presented with |untrusted| (its chain,
 * may be NULL): the pinned role, or KEEL_ROLE_KMIP when it chains to a
 * trusted CA. The admin API tells a CA's KMIP client (403) from a stranger. */
enum keel_role keel_clients_identify(struct keel_clients *c, X509 *leaf, STACK_OF(X509) * untrusted,
				     const uint8_t fingerprint[KEEL_FINGERPRINT_LEN]);

/* Whether a KMIP client known only by |fingerprint| may still be one: pinned
 * with the kmip role, or not pinned while CAs are trusted (a CA's client is
 * known by its chain, which only the handshake saw). The key process's
 * check of what the network process forwards. */
bool keel_clients_may_kmip(struct keel_clients *c, const uint8_t fingerprint[KEEL_FINGERPRINT_LEN]);

/* Registered certificates and trusted CAs in the snapshot. */
size_t keel_clients_count(struct keel_clients *c);

/* A keel_registry for the KMIP server over |c| (takes a reference): a pinned
 * kmip certificate within its dates, or one chaining to a trusted CA. */
void keel_clients_registry(struct keel_clients *c, struct keel_registry *out);

/*
 * On a store with no registration yet, registers the files the config names
 * (clients.certificates_dir leaves as kmip clients, clients.ca_file CAs,
 * admin.certificates_dir leaves as administrators: the appliance's first
 * one), so that configurations and dev directories made before the registry
 * keep their clients. Later starts leave the registry to the admin API.
 * Any of the three may be NULL.
 */
__attribute__((warn_unused_result)) int keel_clients_import(struct keel_store *store,
							    const char *certificates_dir,
							    const char *ca_file,
							    const char *admins_dir);

/* SHA-256 of |cert|'s DER as bytes and lowercase hex. 0 or -1. */
__attribute__((warn_unused_result)) int
keel_cert_fingerprint(X509 *cert, uint8_t out[KEEL_FINGERPRINT_LEN],
		      char out_hex[2 * KEEL_FINGERPRINT_LEN + 1]);

/* The PEM text of |cert|, malloc'd; NULL when out of memory. */
char *keel_cert_pem(X509 *cert);

/* The first certificate of PEM |text|; NULL when there is none. */
X509 *keel_cert_from_pem(const char *text);

#endif
