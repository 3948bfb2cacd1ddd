/*
 * MAC and MAC Verify (KMIP 1.4 §4.33, §4.34): HMAC (RFC 2104) with the SHA-1,
 * SHA-2 and SHA-3 families and AES-CMAC (SP 800-38B), through EVP_MAC.
 */
#include "keel/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto_int.h"
#include "log.h"

/* One EVP_MAC computation; |params| name the digest or cipher. */
static int run_mac(const char *name, OSSL_PARAM *params, const uint8_t *key, size_t key_len,
		   const uint8_t *data, size_t data_len, uint8_t *out, size_t out_cap,
		   size_t *out_len)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, name, NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	int err = KC_E_FAILED;

	*out_len = 0;
	if (ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1 &&
	    EVP_MAC_update(ctx, data, data_len) == 1 &&
	    EVP_MAC_final(ctx, out, out_len, out_cap) == 1) {
		err = 0;
	}
	if (err != 0) {
		keel_err("crypto: %s failed in OpenSSL", name);
	}
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return err;
}

int kc_hmac(enum kc_hash hash, const uint8_t *key, size_t key_len, const uint8_t *data,
	    size_t data_len, uint8_t *out, size_t *out_len)
{
	const EVP_MD *md = kc_md(hash);
	OSSL_PARAM params[2];

	*out_len = 0;
	if (md == NULL || key_len == 0) {
		return md == NULL ? KC_E_UNSUPPORTED : KC_E_INVALID;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_end();
	return run_mac("HMAC", params, key, key_len, data, data_len, out, KC_MAX_DIGEST, out_len);
}

int kc_cmac(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len, uint8_t *out,
	    size_t *out_len)
{
	static char cbc128[] = "AES-128-CBC", cbc192[] = "AES-192-CBC", cbc256[] = "AES-256-CBC";
	char *cipher = key_len == 16 ? cbc128 : key_len == 24 ? cbc192 : cbc256;
	OSSL_PARAM params[2];

	*out_len = 0;
	if (key_len != 16 && key_len != 24 && key_len != 32) {
		return KC_E_UNSUPPORTED;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0);
	params[1] = OSSL_PARAM_construct_end();
	return run_mac("CMAC", params, key, key_len, data, data_len, out, KC_BLOCK, out_len);
}

bool kc_mac_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	return a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0;
}
