/*
 * Cryptographic operations with managed keys (KMIP 1.4 §4.29-§4.37): block
 * ciphers, MACs and digests over OpenSSL 3. The engine maps KMIP enumerations
 * to these; OpenSSL errors end here (STYLE.md: foreign errors at the boundary).
 * Key bytes are the caller's; nothing here copies them beyond OpenSSL's own
 * contexts, which are freed (and cleansed by OpenSSL) before returning.
 */
#ifndef KEEL_CRYPTO_OPS_H
#define KEEL_CRYPTO_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KC_WUR __attribute__((warn_unused_result))

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

#endif
