/*
 * Sign and Signature Verify (KMIP 1.4 §4.31, §4.32): RSA with PKCS#1 v1.5
 * or PSS padding (RFC 8017 §8.2, §8.1) and ECDSA (FIPS 186-4 §6), over a
 * digest this module computes from Data or one the client gives as
 * Digested Data. Keys come in the stored forms: PKCS#8 for private keys,
 * SubjectPublicKeyInfo for public keys. The EVP_PKEY holding a private key
 * is freed (OpenSSL clears its numbers) before returning.
 */
#include "keel/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto_int.h"
#include "log.h"

/* The digest to sign: |s->digest| checked against the hash's size, or the hash of |s->data|. */
static int sig_digest(const struct kc_sig *s, const EVP_MD *md, uint8_t *out, size_t *out_len)
{
	if (s->data != NULL) {
		return kc_digest(s->hash, s->data, s->data_len, out, out_len);
	}
	if (s->digest == NULL || s->digest_len != (size_t)EVP_MD_get_size(md)) {
		return KC_E_INVALID;
	}
	memcpy(out, s->digest, s->digest_len);
	*out_len = s->digest_len;
	return 0;
}

/* Padding and digest of one signature context; RSA keys only take padding. */
static int sig_setup(EVP_PKEY_CTX *ctx, EVP_PKEY *pk, bool sign, const struct kc_sig *s,
		     const EVP_MD *md)
{
	bool rsa = EVP_PKEY_is_a(pk, "RSA");
	/* A salt as long as the digest when signing; Verify reads the salt's length from the
	 * signature, so other signers' choices verify too (RFC 8017 §9.1.2). */
	int salt = s->salt_len >= 0 ? s->salt_len
		   : sign	    ? RSA_PSS_SALTLEN_DIGEST
				    : RSA_PSS_SALTLEN_AUTO;

	if (EVP_PKEY_CTX_set_signature_md(ctx, md) != 1) {
		return KC_E_FAILED;
	}
	if (!rsa) {
		return s->padding == KC_SIG_PKCS1 || s->padding == KC_SIG_PSS ? KC_E_INVALID : 0;
	}
	if (s->padding == KC_SIG_PKCS1) {
		return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 ? 0 : KC_E_FAILED;
	}
	if (s->padding != KC_SIG_PSS) {
		return KC_E_INVALID;
	}
	/* PSS with MGF1 over the same hash (RFC 8017 §9.1). */
	if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) != 1) {
		return KC_E_FAILED;
	}
	return 0;
}

EVP_PKEY *kc_load_key(bool priv, const uint8_t *der, size_t der_len)
{
	const unsigned char *p = der;
	EVP_PKEY *pk;

	if (der_len > LONG_MAX) {
		return NULL;
	}
	pk = priv ? d2i_AutoPrivateKey(NULL, &p, (long)der_len)
		  : d2i_PUBKEY(NULL, &p, (long)der_len);
	if (pk != NULL && p != der + der_len) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	if (pk == NULL) {
		keel_err("crypto: a stored %s key does not parse", priv ? "private" : "public");
	}
	return pk;
}

/* Opens |pk| for signing or verifying |s| and computes the digest into |dg|. */
static int sig_open(EVP_PKEY *pk, bool sign, const struct kc_sig *s, EVP_PKEY_CTX **out_ctx,
		    uint8_t *dg, size_t *dg_len)
{
	const EVP_MD *md = kc_md(s->hash);
	EVP_PKEY_CTX *ctx = NULL;
	int err;

	*out_ctx = NULL;
	if (md == NULL) {
		return KC_E_UNSUPPORTED;
	}
	if ((err = sig_digest(s, md, dg, dg_len)) != 0) {
		return err;
	}
	if ((ctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL ||
	    (sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) != 1) {
		err = KC_E_FAILED;
	} else {
		err = sig_setup(ctx, pk, sign, s, md);
	}
	if (err != 0) {
		EVP_PKEY_CTX_free(ctx);
		return err;
	}
	*out_ctx = ctx;
	return 0;
}

int kc_sign(const struct kc_sig *s, const uint8_t *pkcs8, size_t pkcs8_len, uint8_t *out,
	    size_t *out_len)
{
	EVP_PKEY *pk = kc_load_key(true, pkcs8, pkcs8_len);
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t dg[KC_MAX_DIGEST];
	size_t dg_len = 0;
	int err = KC_E_FAILED;

	*out_len = KC_MAX_SIGNATURE;
	if (pk != NULL && (err = sig_open(pk, true, s, &ctx, dg, &dg_len)) == 0 &&
	    EVP_PKEY_sign(ctx, out, out_len, dg, dg_len) != 1) {
		keel_err("crypto: signing failed in OpenSSL");
		err = KC_E_FAILED;
	}
	if (err != 0) {
		*out_len = 0;
		ERR_clear_error();
	}
	OPENSSL_cleanse(dg, sizeof(dg));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return err;
}

int kc_verify(const struct kc_sig *s, const uint8_t *spki, size_t spki_len, const uint8_t *sig,
	      size_t sig_len, bool *out_valid)
{
	EVP_PKEY *pk = kc_load_key(false, spki, spki_len);
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t dg[KC_MAX_DIGEST];
	size_t dg_len = 0;
	int err = KC_E_FAILED;

	*out_valid = false;
	if (pk != NULL && (err = sig_open(pk, false, s, &ctx, dg, &dg_len)) == 0) {
		/* 1 is a good signature; 0 or a negative value a bad or malformed one. */
		*out_valid = EVP_PKEY_verify(ctx, sig, sig_len, dg, dg_len) == 1;
	}
	/* A bad signature is an answer, not a fault: leave no error for the next OpenSSL caller. */
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return err;
}
