/*
 * RSA Encrypt and Decrypt (KMIP 1.4 §4.29, §4.30): RSAES-OAEP (RFC 8017
 * §7.1) with the stored key forms, the public key
 * (SubjectPublicKeyInfo) to encrypt and the private key (PKCS#8) to
 * decrypt. The EVP_PKEY holding a private key is freed (OpenSSL clears its
 * numbers) before returning.
 */
#include "keel/crypto.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "crypto_int.h"
#include "log.h"

/* Opens |pk| to encrypt or decrypt with OAEP as |c| says; only RSA keys take it. */
static int rsa_open(EVP_PKEY *pk, bool encrypt, const struct kc_rsa_cipher *c,
		    EVP_PKEY_CTX **out_ctx)
{
	const EVP_MD *md = kc_md(c->oaep_hash), *mgf1 = kc_md(c->mgf1_hash);
	EVP_PKEY_CTX *ctx;

	*out_ctx = NULL;
	if (!EVP_PKEY_is_a(pk, "RSA")) {
		return KC_E_INVALID;
	}
	if (md == NULL || mgf1 == NULL) {
		return KC_E_UNSUPPORTED;
	}
	if ((ctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL ||
	    (encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return KC_E_FAILED;
	}
	*out_ctx = ctx;
	return 0;
}

/* One RSA operation on |pk| (consumed); a failure of the operation itself is bad input. */
static int rsa_run(EVP_PKEY *pk, bool encrypt, const struct kc_rsa_cipher *c, const uint8_t *in,
		   size_t in_len, uint8_t *out, size_t *out_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	size_t need = 0;
	int err = pk == NULL ? KC_E_FAILED : rsa_open(pk, encrypt, c, &ctx);

	*out_len = 0;
	if (err == 0 && (size_t)EVP_PKEY_get_size(pk) > KC_MAX_RSA) {
		err = KC_E_UNSUPPORTED;
	}
	if (err == 0) {
		need = KC_MAX_RSA;
		if ((encrypt ? EVP_PKEY_encrypt(ctx, out, &need, in, in_len)
			     : EVP_PKEY_decrypt(ctx, out, &need, in, in_len)) != 1) {
			err =
			    KC_E_INVALID; /* too long a message, or not a ciphertext of this key */
		} else {
			*out_len = need;
		}
	}
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return err;
}

int kc_rsa_encrypt(const struct kc_rsa_cipher *c, const uint8_t *spki, size_t spki_len,
		   const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
	return rsa_run(kc_load_key(false, spki, spki_len), true, c, in, in_len, out, out_len);
}

int kc_rsa_decrypt(const struct kc_rsa_cipher *c, const uint8_t *pkcs8, size_t pkcs8_len,
		   const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
	return rsa_run(kc_load_key(true, pkcs8, pkcs8_len), false, c, in, in_len, out, out_len);
}
