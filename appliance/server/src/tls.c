/*
 * TLS policy and client identity. The cipher lists follow VCENTER.md §1:
 * vCenter 7 offers TLS 1.3 and, in TLS 1.2, the KMIP profile suites
 * TLS_RSA_WITH_AES_{128,256}_CBC_SHA256; we add ECDHE with AES-GCM and prefer
 * it, so that vCenter's static-RSA suites are only used when nothing better
 * is offered. No SHA-1 MACs, no 3DES/RC4, no CBC outside those two.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "server_int.h"

static const char tls12_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
				    "AES256-SHA256:AES128-SHA256";
static const char tls13_suites[] =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
static const char groups[] = "X25519:P-256:P-384";

/* Sessions in the server cache at most (see set_policy). */
#define SESSION_CACHE_SIZE 4096

static int registry_index = -1;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void registry_free(struct keel_registry *reg)
{
	if (reg != NULL && reg->free != NULL) {
		reg->free(reg->ctx);
	}
	OPENSSL_free(reg);
}

/* Runs when the SSL_CTX goes: after a reload, once the last connection
 * that was accepted under the old settings is gone. */
static void registry_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			     void *argp)
{
	registry_free(ptr);
}

static void registry_index_init(void)
{
	registry_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, registry_ex_free);
}

void tls_errors(char *out, size_t out_len)
{
	unsigned long e;
	size_t used = 0;

	out[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		if (used + 2 < out_len) {
			if (used > 0) {
				out[used++] = ';';
			}
			ERR_error_string_n(e, out + used, out_len - used);
			used += strlen(out + used);
		}
	}
}

static int fingerprint(X509 *cert, uint8_t out[KEEL_FINGERPRINT_LEN])
{
	unsigned int len = 0;

	if (X509_digest(cert, EVP_sha256(), out, &len) != 1 || len != KEEL_FINGERPRINT_LEN) {
		return -1;
	}
	return 0;
}

/* Replaces OpenSSL's chain verification: the registry decides, because a
 * pinned client leaf (vCenter's self-signed kmipClient certificates) need not
 * chain to anything. Proof of the private key is still the handshake's own
 * CertificateVerify, which this does not touch. */
/* Whether a CRL of the leaf's issuer (tls.crl_file, in the SSL_CTX's store)
 * lists it. */
static bool revoked(X509_STORE_CTX *xs, X509 *leaf)
{
	STACK_OF(X509_CRL) *crls = X509_STORE_CTX_get1_crls(xs, X509_get_issuer_name(leaf));
	X509_REVOKED *entry;
	bool found = false;

	for (int i = 0; crls != NULL && i < sk_X509_CRL_num(crls) && !found; i++) {
		found = X509_CRL_get0_by_cert(sk_X509_CRL_value(crls, i), &entry, leaf) == 1;
	}
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return found;
}

static int verify_client(X509_STORE_CTX *xs, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct keel_registry *reg = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), registry_index);
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	uint8_t fp[KEEL_FINGERPRINT_LEN];
	char subject[KEEL_SUBJECT_MAX];
	bool listed = false;

	if (leaf != NULL && reg != NULL && fingerprint(leaf, fp) == 0 &&
	    reg->is_registered(reg->ctx, fp, xs)) {
		if (!(listed = revoked(xs, leaf))) {
			return 1;
		}
	}
	if (leaf != NULL) {
		X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof(subject));
		keel_log(listed ? KEEL_LOG_NOTICE : KEEL_LOG_DEBUG,
			 "handshake: client certificate %s %s", subject,
			 listed ? "is revoked (tls.crl_file)" : "is not registered");
	}
	X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
	return 0;
}

/* A resumed handshake skips verify_client, so ask again with the session's
 * certificate and chain (the cache keeps both). A reload ends the old
 * sessions with the old SSL_CTX, but the registry's snapshot changes first
 * (the reload follows by SIGHUP, and a failed one keeps the old context),
 * and a pinned certificate may have expired since. */
bool tls_resumed_allowed(SSL *ssl)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	bool ok = false;

	if (xs != NULL && leaf != NULL &&
	    X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)), leaf,
				SSL_get_peer_cert_chain(ssl)) == 1 &&
	    X509_STORE_CTX_set_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx(), ssl) == 1) {
		ok = verify_client(xs, NULL) == 1;
	}
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	return ok;
}

static int set_policy(SSL_CTX *ctx, uint32_t session_lifetime_s)
{
	static const unsigned char sid_ctx[] = "keeld";

	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, groups) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
		return -1;
	}
	SSL_CTX_set_security_level(ctx, 2);
	/* CLEANSE_PLAINTEXT: a decrypted record (a Register's key material) is
	 * wiped from OpenSSL's read buffer once handed over, not left there
	 * until the next record overwrites it. IGNORE_UNEXPECTED_EOF: a bare
	 * TCP close (vCenter's usual end) reads as an end, not an error, so the
	 * listener can tell it from one (KMIP frames carry their length: a
	 * truncated message is still caught, as EOF mid-frame). */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_NO_COMPRESSION | SSL_OP_CLEANSE_PLAINTEXT |
				     SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* RELEASE_BUFFERS: an idle connection gives back its 16 KiB read and
	 * write record buffers (issue 7: 10,000 idle connections in < 64 MB). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_client, NULL);
	/* Resumption: sessions live in this SSL_CTX's cache, so a reload (new
	 * SSL_CTX) ends every old one and a client removed from the registry
	 * cannot resume its way back in. NO_TICKET: no encrypted sessions
	 * (stateless tickets); a TLS 1.3 ticket is then a cache entry's id.
	 * Decoding a stateless ticket parses the client's certificate again,
	 * and OpenSSL 3.0 builds a decoder chain for its public key each time:
	 * 35% of the network process's CPU per resumed vcenter-task (issue 7,
	 * docs/benchmarks.md). A cached session also keeps the chain the
	 * client sent, which a ticket does not, so a client of an intermediate
	 * CA resumes too. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (session_lifetime_s == 0) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		return SSL_CTX_set_num_tickets(ctx, 0) == 1 ? 0 : -1;
	}
	/* Bounded: a cached session holds the client's certificate and chain,
	 * ~10 KB a session as measured (a TLS 1.3 handshake leaves two, one per
	 * ticket, sharing them), and OpenSSL's default of 20,480 sessions would
	 * be ~200 MB. vCenter opens a connection per task, so 4,096 covers a
	 * boot storm of 2,048 TLS 1.3 hosts within one tls.session_lifetime for
	 * ~41 MB. When full, OpenSSL evicts the oldest session: its client
	 * merely makes a full handshake. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, SESSION_CACHE_SIZE);
	SSL_CTX_set_timeout(ctx, (long)session_lifetime_s);
	return 0;
}

/* The chain (leaf first) from its PEM part; the key from its DER part
 * alone, so that no PEM reader passes over it (OpenSSL's copies its blocks
 * into buffers it frees unwiped) and every byte of the part must be key. */
static int load_identity_parts(SSL_CTX *ctx, const struct keel_server_tls *tls)
{
	const unsigned char *p = tls->key_der;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	BIO *b = NULL;
	int r = -1;

	if (tls->chain_pem_len > INT32_MAX || tls->key_der_len > INT32_MAX ||
	    (b = BIO_new_mem_buf(tls->chain_pem, (int)tls->chain_pem_len)) == NULL ||
	    (cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_certificate(ctx, cert) != 1) {
		goto out;
	}
	X509_free(cert); /* the context holds its own reference */
	while ((cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, cert) != 1) {
			goto out;
		}
	}
	ERR_clear_error();
	if ((key = d2i_AutoPrivateKey(NULL, &p, (long)tls->key_der_len)) == NULL ||
	    p != tls->key_der + tls->key_der_len || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		goto out;
	}
	r = 0;
out:
	if (r != 0) {
		X509_free(cert);
		keel_err("tls: the certificate chain and key received do not load or match");
	}
	EVP_PKEY_free(key);
	BIO_free(b);
	return r;
}

static int load_identity(SSL_CTX *ctx, const struct keel_server_tls *tls)
{
	if (tls->chain_pem != NULL) {
		return load_identity_parts(ctx, tls);
	}
	/* The chain file's extra certificates are sent after the leaf: vCenter
	 * may trust only the CA, so it must see the whole path. */
	if (SSL_CTX_use_certificate_chain_file(ctx, tls->certificate_file) != 1) {
		keel_err("tls: cannot load certificate chain %s", tls->certificate_file);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, tls->private_key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		keel_err("tls: cannot load private key %s or it does not match the certificate",
			 tls->private_key_file);
		return -1;
	}
	return 0;
}

/* Every CRL of tls.crl_file, into the SSL_CTX's store: read from the file,
 * or (pushed to the network process, which reads no files) from their own
 * part. One without any CRL is an error (a wrong file must not silently
 * revoke nothing). */
static int load_crls(SSL_CTX *ctx, const struct keel_server_tls *tls)
{
	const char *path = tls->crl_file;
	BIO *bio = NULL;
	X509_CRL *crl;
	int n = 0, r = 0;

	if (tls->chain_pem == NULL) {
		bio = BIO_new_file(path, "r");
	} else if (tls->crls_pem_len <= INT32_MAX) {
		bio = BIO_new_mem_buf(tls->crls_pem, (int)tls->crls_pem_len);
	}
	if (bio == NULL) {
		keel_err("tls: cannot read CRL file %s", path);
		return -1;
	}
	while (r == 0 && (crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		r = X509_STORE_add_crl(SSL_CTX_get_cert_store(ctx), crl) == 1 ? 0 : -1;
		X509_CRL_free(crl);
		n++;
	}
	ERR_clear_error(); /* the end of the file reads as an error */
	BIO_free(bio);
	if (r != 0 || n == 0) {
		keel_err("tls: %s: %s", path, n == 0 ? "no CRL in the file" : "cannot use a CRL");
		return -1;
	}
	keel_info("tls: %d CRL%s from %s", n, n == 1 ? "" : "s", path);
	return 0;
}

int tls_ctx_new(SSL_CTX **out_ctx, const struct keel_server_tls *tls, struct keel_registry *reg)
{
	struct keel_registry *owned = OPENSSL_malloc(sizeof(*owned));
	SSL_CTX *ctx = NULL;
	char errs[512];
	int r = -1;

	if (owned == NULL) {
		if (reg->free != NULL) {
			reg->free(reg->ctx);
		}
		return -1;
	}
	*owned = *reg;
	pthread_once(&registry_once, registry_index_init);
	if (registry_index < 0 || (ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		goto out;
	}
	if (set_policy(ctx, tls->session_lifetime_s) != 0) {
		keel_err("tls: cannot apply the TLS policy");
		goto out;
	}
	if (load_identity(ctx, tls) != 0 || (tls->crl_file != NULL && load_crls(ctx, tls) != 0)) {
		goto out;
	}
	if (SSL_CTX_set_ex_data(ctx, registry_index, owned) != 1) {
		goto out;
	}
	owned = NULL;
	*out_ctx = ctx;
	ctx = NULL;
	r = 0;
out:
	if (r != 0) {
		tls_errors(errs, sizeof(errs));
		keel_debug("tls: %s", errs);
	}
	registry_free(owned);
	SSL_CTX_free(ctx);
	return r;
}

int tls_identity(SSL *ssl, struct keel_client_identity *out_who)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	static const char hex[] = "0123456789abcdef";

	memset(out_who, 0, sizeof(*out_who));
	if (peer == NULL || fingerprint(peer, out_who->fingerprint) != 0) {
		return -1;
	}
	for (size_t i = 0; i < KEEL_FINGERPRINT_LEN; i++) {
		out_who->fingerprint_hex[2 * i] = hex[out_who->fingerprint[i] >> 4];
		out_who->fingerprint_hex[2 * i + 1] = hex[out_who->fingerprint[i] & 0xf];
	}
	X509_NAME_oneline(X509_get_subject_name(peer), out_who->subject, sizeof(out_who->subject));
	return 0;
}
