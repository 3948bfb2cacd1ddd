/*
 * keel_pki: the certificates an appliance needs, made with OpenSSL 3's EVP and
 * X509 APIs (no openssl CLI): a CA, server and client certificates it issues,
 * and certificates for CSRs a client (vCenter) generated.
 *
 * The CA key is RSA-3072: vCenter's KMIP client negotiates the static-RSA
 * TLS 1.2 suites (VCENTER.md §1), and an RSA-signed chain is what every such
 * client accepts, while 3072 bits match the 128-bit strength a 10-year CA
 * should keep. Leaf keys are RSA-2048, as VCENTER.md recommends.
 *
 * Every certificate: X.509 v3, SHA-256 signature, a random positive 128-bit
 * serial, subject and authority key identifiers. Errors: 0 or -1, with the
 * OpenSSL reason logged (never key material).
 */
#ifndef KEEL_PKI_H
#define KEEL_PKI_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define KEEL_PKI_WUR __attribute__((warn_unused_result))

#define KEEL_PKI_CA_BITS   3072
#define KEEL_PKI_LEAF_BITS 2048
#define KEEL_PKI_CA_DAYS   3650 /* 10 years */
#define KEEL_PKI_LEAF_DAYS 730

/* What a leaf certificate is for: its extendedKeyUsage. */
enum keel_pki_usage {
	KEEL_PKI_SERVER = 1, /* serverAuth and clientAuth (VCENTER.md §1, #717) */
	KEEL_PKI_CLIENT = 2, /* clientAuth */
};

/* A new RSA key of |bits| bits. *out_key is the caller's (EVP_PKEY_free). */
int keel_pki_rsa_key(unsigned bits, EVP_PKEY **out_key) KEEL_PKI_WUR;

/*
 * A self-signed CA certificate for |key|: CN |cn|, |days| valid,
 * basicConstraints critical CA:TRUE, keyUsage critical keyCertSign|cRLSign.
 */
int keel_pki_ca_new(EVP_PKEY *key, const char *cn, unsigned days, X509 **out_cert) KEEL_PKI_WUR;

struct keel_pki_leaf {
	X509 *ca;	       /* issuer certificate */
	EVP_PKEY *ca_key;      /* issuer private key */
	EVP_PKEY *pub;	       /* the subject's (public) key */
	const X509_NAME *name; /* the subject; NULL: CN |cn| */
	const char *cn;	       /* used when name is NULL */
	enum keel_pki_usage usage;
	unsigned days;
	/* subjectAltName entries beyond the defaults, in OpenSSL's form
	 * ("DNS:kms.example", "IP:10.0.0.5"). A server always gets DNS:localhost,
	 * IP:127.0.0.1 and IP:::1. */
	const char *const *sans;
	size_t num_sans;
};

/* Issues a leaf certificate: basicConstraints CA:FALSE, keyUsage
 * digitalSignature|keyEncipherment, the EKU of |usage|, the SANs. */
int keel_pki_issue(const struct keel_pki_leaf *leaf, X509 **out_cert) KEEL_PKI_WUR;

/*
 * Issues a client certificate for a CSR (vCenter's "sign a CSR" trust setup):
 * the CSR's signature must verify; its subject and key are taken, its
 * requested extensions are not (the CA decides them: EKU clientAuth).
 */
int keel_pki_sign_csr(X509_REQ *csr, X509 *ca, EVP_PKEY *ca_key, unsigned days,
		      X509 **out_cert) KEEL_PKI_WUR;

/* PEM files. Keys are written mode 0600 (to a temporary file renamed into
 * place, so a reader never sees half a key); certificates 0644. */
int keel_pki_write_key(const char *path, EVP_PKEY *key) KEEL_PKI_WUR;
int keel_pki_write_cert(const char *path, X509 *cert) KEEL_PKI_WUR;
int keel_pki_read_key(const char *path, EVP_PKEY **out_key) KEEL_PKI_WUR;
int keel_pki_read_cert(const char *path, X509 **out_cert) KEEL_PKI_WUR;
int keel_pki_read_csr(const char *path, X509_REQ **out_csr) KEEL_PKI_WUR;

#endif
