/* AES Key Wrap, RFC 3394 (NIST SP 800-38F KW), for Get with a Key Wrapping
 * Specification (KMIP 1.4 §2.1.5, Block Cipher Mode NIST Key Wrap). */
#include "keel/crypto.h"

#include <stdlib.h>

#include <openssl/evp.h>

static const EVP_CIPHER *kw_cipher(size_t kek_len)
{
	switch (kek_len) {
	case 16:
		return EVP_aes_128_wrap();
	case 24:
		return EVP_aes_192_wrap();
	case 32:
		return EVP_aes_256_wrap();
	default:
		return NULL;
	}
}

int kc_aes_key_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
		    struct kc_buf *out)
{
	const EVP_CIPHER *c = kw_cipher(kek_len);
	EVP_CIPHER_CTX *ctx = NULL;
	int n = 0, fin = 0;
	int r = KC_KEY_E_OPENSSL;

	/* RFC 3394 §2: at least two 64-bit blocks; the result is one block longer. */
	if (c == NULL || in_len < 16 || in_len % 8 != 0 || in_len > (size_t)INT32_MAX - 8) {
		return KC_KEY_E_UNSUPPORTED;
	}
	if ((out->data = malloc(in_len + 8)) == NULL) {
		return KC_KEY_E_NOMEM;
	}
	if ((ctx = EVP_CIPHER_CTX_new()) != NULL &&
	    EVP_EncryptInit_ex(ctx, c, NULL, kek, NULL) == 1 &&
	    EVP_EncryptUpdate(ctx, out->data, &n, in, (int)in_len) == 1 &&
	    EVP_EncryptFinal_ex(ctx, out->data + n, &fin) == 1) {
		out->len = (size_t)n + (size_t)fin;
		r = 0;
	}
	EVP_CIPHER_CTX_free(ctx);
	if (r != 0) {
		free(out->data);
		out->data = NULL;
	}
	return r;
}
