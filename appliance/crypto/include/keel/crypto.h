/*
 * keel_crypto, key objects: the appliance's OpenSSL 3 code for key objects. Key-pair
 * generation (keygen.c), key format conversions (keyfmt.c), certificate
 * facts (cert.c) and AES Key Wrap (keywrap.c). Formats and algorithms are
 * named with KMIP enumerations so callers need no OpenSSL header.
 *
 * Every buffer that may hold key material is a kc_buf: freed with
 * kc_buf_free, which wipes it first.
 */
#ifndef KEEL_CRYPTO_H
#define KEEL_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef KC_WUR
#define KC_WUR __attribute__((warn_unused_result))
#endif

/* Errors of the key-object functions, apart from the operations' kc_err values. */
enum kc_key_err {
	KC_KEY_E_INVALID = -10,	    /* input does not parse, or does not match its format */
	KC_KEY_E_UNSUPPORTED = -11, /* a valid request this module cannot serve */
	KC_KEY_E_NOMEM = -12,
	KC_KEY_E_OPENSSL = -13, /* an OpenSSL call failed */
};

/* A malloc'd byte string; kc_buf_free wipes it and accepts a zeroed buf. */
struct kc_buf {
	uint8_t *data;
	size_t len;
};

void kc_buf_free(struct kc_buf *b);

/* What a key is: a KMIP Cryptographic Algorithm and its Cryptographic Length. */
struct kc_key_info {
	uint32_t algorithm; /* KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA or _EC */
	int32_t bits;	    /* RSA modulus bits, EC field bits */
};

/* ---- keygen.c ------------------------------------------------------------ */

/*
 * A new key pair from OpenSSL's default DRBG: |algorithm| RSA with |bits|
 * 2048, 3072 or 4096, or EC (or ECDSA) with |bits| 256 (P-256) or 384 (P-384).
 * The private key comes out as PKCS#8 DER, the public one as
 * SubjectPublicKeyInfo DER. KC_KEY_E_UNSUPPORTED for anything else.
 */
int kc_keypair_generate(uint32_t algorithm, int32_t bits, struct kc_buf *out_private,
			struct kc_buf *out_public) KC_WUR;

/* ---- keyfmt.c ------------------------------------------------------------ */

/*
 * Reads a private (|is_private|) or public key given in KMIP Key Format Type
 * |format| (PKCS#1, PKCS#8 / X.509 SubjectPublicKeyInfo) and writes it in the
 * stored form: PKCS#8 DER for private keys, SubjectPublicKeyInfo DER for
 * public ones. |out_info| says what the key is.
 */
int kc_key_import(bool is_private, uint32_t format, const uint8_t *in, size_t in_len,
		  struct kc_buf *out, struct kc_key_info *out_info) KC_WUR;

/* Converts a stored key (see kc_key_import) to |format|; KC_KEY_E_UNSUPPORTED when it cannot. */
int kc_key_export(bool is_private, const uint8_t *der, size_t der_len, uint32_t format,
		  struct kc_buf *out) KC_WUR;

/*
 * The integers of a Transparent RSA key (KMIP 1.4 §2.1.7.6, §2.1.7.7) as KMIP
 * Big Integers: big-endian two's complement, padded to a multiple of 8 bytes.
 */
enum {
	KC_RSA_N,
	KC_RSA_E,
	KC_RSA_D,
	KC_RSA_P,
	KC_RSA_Q,
	KC_RSA_DP,
	KC_RSA_DQ,
	KC_RSA_QINV,
	KC_RSA_NUM
};

struct kc_rsa_parts {
	struct kc_buf v[KC_RSA_NUM]; /* a public key fills N and E only */
};

/* The components of a stored RSA key; KC_KEY_E_UNSUPPORTED for other algorithms. */
int kc_rsa_parts_get(bool is_private, const uint8_t *der, size_t der_len,
		     struct kc_rsa_parts *out) KC_WUR;
/* A stored-form key built from components (N, E; and D, P, Q... for a private key). */
int kc_rsa_parts_import(bool is_private, const struct kc_rsa_parts *parts, struct kc_buf *out,
			struct kc_key_info *out_info) KC_WUR;
void kc_rsa_parts_cleanup(struct kc_rsa_parts *p);

/* ---- cert.c -------------------------------------------------------------- */

struct kc_cert_info {
	uint8_t sha256[32]; /* of the DER: the Digest attribute (KMIP 1.4 §3.17) */
	char *subject;	    /* RFC 2253 text, malloc'd */
	char *issuer;
	struct kc_buf serial; /* big-endian serial number */
	struct kc_key_info key;
};

/* Parses an X.509 certificate (DER); trailing bytes are an error. */
int kc_cert_parse(const uint8_t *der, size_t der_len, struct kc_cert_info *out) KC_WUR;
void kc_cert_info_cleanup(struct kc_cert_info *c);

/* ---- keywrap.c ----------------------------------------------------------- */

/*
 * AES Key Wrap (RFC 3394, NIST SP 800-38F KW) of |in| (a multiple of 8
 * bytes, at least 16) under |kek| (16, 24 or 32 bytes).
 */
int kc_aes_key_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
		    struct kc_buf *out) KC_WUR;

#endif
