/*
 * keel_crypto: the appliance's OpenSSL 3 code, one header. Key objects:
 * key-pair generation (keygen.c), key format conversions (keyfmt.c),
 * certificate facts (cert.c) and AES Key Wrap (keywrap.c). Cryptographic
 * operations with managed keys (KMIP 1.4 §4.29-§4.37): block ciphers
 * (cipher.c), MACs (mac.c), digests (digest.c), signatures (sign.c).
 * Formats and algorithms are named with KMIP enumerations so callers need no
 * OpenSSL header; OpenSSL errors end here (STYLE.md: foreign errors at the
 * boundary).
 *
 * Every buffer that may hold key material is a kc_buf: freed with
 * kc_buf_free, which wipes it first. The operations take key bytes from the
 * caller and copy them nowhere beyond OpenSSL's own contexts, which are
 * freed (and cleansed by OpenSSL) before returning.
 */
#ifndef KEEL_CRYPTO_H
#define KEEL_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KC_WUR __attribute__((warn_unused_result))

/* Errors of the key-object functions; the operations return kc_err values (below). */
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
 * |format| (PKCS#1, PKCS#8 / X.509 SubjectPublicKeyInfo, SEC 1 EC Private Key)
 * and writes it in the
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

/*
 * Transparent EC Private/Public Key (KMIP 1.4 §2.1.7.9, §2.1.7.10): the
 * Recommended Curve and D (a KMIP Big Integer) or Q String (the encoded point).
 */
struct kc_ec_parts {
	uint32_t curve; /* KMIP Recommended Curve */
	struct kc_buf value;
};

/* The parts of a stored EC key; KC_KEY_E_UNSUPPORTED for other keys and unnamed curves. */
int kc_ec_parts_get(bool is_private, const uint8_t *der, size_t der_len,
		    struct kc_ec_parts *out) KC_WUR;
void kc_ec_parts_cleanup(struct kc_ec_parts *p);

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

/* ---- cipher.c, mac.c, digest.c: operations with managed keys ------------ */

enum kc_err {
	KC_OK = 0,
	KC_E_UNSUPPORTED = -1, /* a mode, algorithm or size we do not serve */
	KC_E_INVALID = -2,     /* bad input: IV length, data not a whole block, bad padding */
	KC_E_AUTH = -3,	       /* an authentication tag that does not match */
	KC_E_FAILED = -4,      /* OpenSSL failed; logged */
};

enum kc_mode { KC_MODE_ECB, KC_MODE_CBC, KC_MODE_CTR, KC_MODE_GCM };

enum kc_hash {
	KC_SHA1,
	KC_SHA224,
	KC_SHA256,
	KC_SHA384,
	KC_SHA512,
	KC_SHA3_224,
	KC_SHA3_256,
	KC_SHA3_384,
	KC_SHA3_512,
};

#define KC_BLOCK      16 /* AES */
#define KC_MAX_DIGEST 64

/* One AES operation: |iv| and |aad| are inputs; |tag| is written on encrypt, read on decrypt. */
struct kc_cipher {
	enum kc_mode mode;
	bool pad; /* PKCS#5 padding (ECB, CBC) */
	const uint8_t *iv;
	size_t iv_len;
	const uint8_t *aad;
	size_t aad_len;
	uint8_t *tag;
	size_t tag_len;
};

/* The IV length |mode| needs; 0 for ECB. GCM's recommended 96 bits (SP 800-38D §8.2). */
size_t kc_cipher_iv_len(enum kc_mode mode);

/*
 * Encrypts or decrypts |in| with AES under |key| (16, 24 or 32 bytes) into
 * |out|, which has room for in_len + KC_BLOCK bytes; *out_len is what was
 * written. A GCM tag that does not verify gives KC_E_AUTH and no output.
 */
int kc_cipher_run(const struct kc_cipher *c, bool encrypt, const uint8_t *key, size_t key_len,
		  const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len) KC_WUR;

/* HMAC with |hash| under |key| into |out| (KC_MAX_DIGEST bytes). */
int kc_hmac(enum kc_hash hash, const uint8_t *key, size_t key_len, const uint8_t *data,
	    size_t data_len, uint8_t *out, size_t *out_len) KC_WUR;
/* AES-CMAC (SP 800-38B) under |key| into |out| (KC_BLOCK bytes). */
int kc_cmac(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len, uint8_t *out,
	    size_t *out_len) KC_WUR;
/* Constant-time equality of two MACs; different lengths are unequal. */
bool kc_mac_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len);

/* The digest of |data| with |hash| into |out| (KC_MAX_DIGEST bytes). */
int kc_digest(enum kc_hash hash, const uint8_t *data, size_t data_len, uint8_t *out,
	      size_t *out_len) KC_WUR;

/* ---- sign.c: Sign, Signature Verify (KMIP 1.4 §4.31, §4.32) ------------ */

#define KC_MAX_SIGNATURE 1024 /* RSA-8192 */

/* How to sign: RSA padding, or KC_SIG_ECDSA for an EC key. */
enum kc_sig_padding { KC_SIG_PKCS1, KC_SIG_PSS, KC_SIG_ECDSA };

/* One signature over |data|, or over |digest| (already hashed with |hash|) when |data| is NULL. */
struct kc_sig {
	enum kc_hash hash;
	enum kc_sig_padding padding;
	int salt_len; /* PSS salt in bytes; negative: the digest's length to sign, any to verify */
	const uint8_t *data, *digest;
	size_t data_len, digest_len;
};

/*
 * Signs with a stored private key (PKCS#8 DER) into |out| (KC_MAX_SIGNATURE
 * bytes): the RSA signature, or ECDSA's DER Ecdsa-Sig-Value. KC_E_INVALID
 * when the padding does not fit the key or the digest is not the hash's size.
 */
int kc_sign(const struct kc_sig *s, const uint8_t *pkcs8, size_t pkcs8_len, uint8_t *out,
	    size_t *out_len) KC_WUR;
/* Verifies |sig| with a stored public key (SubjectPublicKeyInfo DER); a bad
 * signature is *out_valid false and a 0 return. */
int kc_verify(const struct kc_sig *s, const uint8_t *spki, size_t spki_len, const uint8_t *sig,
	      size_t sig_len, bool *out_valid) KC_WUR;

/* ---- rsacrypt.c: RSA Encrypt, Decrypt (KMIP 1.4 §4.29, §4.30) ---------- */

#define KC_MAX_RSA 1024 /* RSA-8192 */

/*
 * RSAES-OAEP with |oaep_hash| and MGF1 over |mgf1_hash| (RFC 8017 §7.1).
 * RSAES-PKCS1-v1_5 is not served: its decryption errors are a padding oracle
 * (Bleichenbacher), and OpenSSL 3.0 has no implicit rejection.
 */
struct kc_rsa_cipher {
	enum kc_hash oaep_hash, mgf1_hash;
};

/* Encrypts |in| with a stored public key (SubjectPublicKeyInfo DER) into |out| (KC_MAX_RSA
 * bytes); KC_E_INVALID when |in| is too long for the key and padding. */
int kc_rsa_encrypt(const struct kc_rsa_cipher *c, const uint8_t *spki, size_t spki_len,
		   const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len) KC_WUR;
/* Decrypts |in| with a stored private key (PKCS#8 DER) into |out| (KC_MAX_RSA bytes);
 * KC_E_INVALID when |in| is not a ciphertext of this key and padding. */
int kc_rsa_decrypt(const struct kc_rsa_cipher *c, const uint8_t *pkcs8, size_t pkcs8_len,
		   const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len) KC_WUR;

#endif
