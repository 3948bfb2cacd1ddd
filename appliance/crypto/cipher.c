/*
 * AES in ECB, CBC (PKCS#5 padding optional), CTR and GCM for Encrypt and
 * Decrypt (KMIP 1.4 §4.29, §4.30). One EVP path serves all four modes; GCM
 * adds the AAD before the data and the tag after it (SP 800-38D).
 */
#include "keel/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"

static const EVP_CIPHER *aes(enum kc_mode mode, size_t key_len)
{
	static const struct {
		enum kc_mode mode;
		size_t key_len;
		const EVP_CIPHER *(*fn)(void);
	} table[] = {
	    {KC_MODE_ECB, 16, EVP_aes_128_ecb}, {KC_MODE_ECB, 24, EVP_aes_192_ecb},
	    {KC_MODE_ECB, 32, EVP_aes_256_ecb}, {KC_MODE_CBC, 16, EVP_aes_128_cbc},
	    {KC_MODE_CBC, 24, EVP_aes_192_cbc}, {KC_MODE_CBC, 32, EVP_aes_256_cbc},
	    {KC_MODE_CTR, 16, EVP_aes_128_ctr}, {KC_MODE_CTR, 24, EVP_aes_192_ctr},
	    {KC_MODE_CTR, 32, EVP_aes_256_ctr}, {KC_MODE_GCM, 16, EVP_aes_128_gcm},
	    {KC_MODE_GCM, 24, EVP_aes_192_gcm}, {KC_MODE_GCM, 32, EVP_aes_256_gcm},
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (table[i].mode == mode && table[i].key_len == key_len) {
			return table[i].fn();
		}
	}
	return NULL;
}

size_t kc_cipher_iv_len(enum kc_mode mode)
{
	return mode == KC_MODE_ECB ? 0 : mode == KC_MODE_GCM ? 12 : KC_BLOCK;
}

/* The IV, tag and length rules of each mode, before OpenSSL sees them. */
static int check_params(const struct kc_cipher *c, size_t in_len)
{
	if (c->mode == KC_MODE_GCM) {
		/* SP 800-38D §5.2.1.2: tags of 4 to 16 bytes; any IV of at least one byte. */
		return c->iv_len > 0 && c->tag_len >= 4 && c->tag_len <= KC_BLOCK ? 0
										  : KC_E_INVALID;
	}
	if (c->iv_len != kc_cipher_iv_len(c->mode)) {
		return KC_E_INVALID;
	}
	/* Without padding, ECB and CBC take whole blocks only. */
	if ((c->mode == KC_MODE_ECB || c->mode == KC_MODE_CBC) && !c->pad && in_len % KC_BLOCK) {
		return KC_E_INVALID;
	}
	return 0;
}

static int set_up(EVP_CIPHER_CTX *ctx, const struct kc_cipher *c, bool encrypt, const uint8_t *key,
		  size_t key_len)
{
	const EVP_CIPHER *cipher = aes(c->mode, key_len);
	int enc = encrypt ? 1 : 0;
	int len;

	if (cipher == NULL) {
		return KC_E_UNSUPPORTED;
	}
	if (EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, enc) != 1 ||
	    (c->mode == KC_MODE_GCM &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)c->iv_len, NULL) != 1) ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, c->iv, enc) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, c->pad ? 1 : 0) != 1) {
		return KC_E_FAILED;
	}
	if (c->mode == KC_MODE_GCM && c->aad_len > 0 &&
	    EVP_CipherUpdate(ctx, NULL, &len, c->aad, (int)c->aad_len) != 1) {
		return KC_E_FAILED;
	}
	/* The expected tag goes in before the final step of a decryption. */
	if (c->mode == KC_MODE_GCM && !encrypt &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, (int)c->tag_len, c->tag) != 1) {
		return KC_E_FAILED;
	}
	return 0;
}

int kc_cipher_run(const struct kc_cipher *c, bool encrypt, const uint8_t *key, size_t key_len,
		  const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = NULL;
	int n = 0, fin = 0, err;

	*out_len = 0;
	if (in_len > (size_t)INT32_MAX - KC_BLOCK || c->aad_len > (size_t)INT32_MAX) {
		return KC_E_INVALID;
	}
	if ((err = check_params(c, in_len)) != 0) {
		return err;
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL) {
		return KC_E_FAILED;
	}
	if ((err = set_up(ctx, c, encrypt, key, key_len)) != 0) {
		goto out;
	}
	if (EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1) {
		err = KC_E_FAILED;
		goto out;
	}
	/* A failed final step is a bad tag (GCM) or bad padding: the client's input. */
	if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1) {
		err = c->mode == KC_MODE_GCM ? KC_E_AUTH : KC_E_INVALID;
		goto out;
	}
	if (c->mode == KC_MODE_GCM && encrypt &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, (int)c->tag_len, c->tag) != 1) {
		err = KC_E_FAILED;
		goto out;
	}
	*out_len = (size_t)n + (size_t)fin;
out:
	if (err == KC_E_FAILED) {
		keel_err("crypto: AES operation failed in OpenSSL");
	}
	if (err != 0) {
		OPENSSL_cleanse(out, (size_t)n);
	}
	EVP_CIPHER_CTX_free(ctx);
	return err;
}
