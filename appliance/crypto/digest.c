/* Digests for Hash (KMIP 1.4 §4.37) and the hash table HMAC shares. */
#include "keel/crypto.h"

#include <openssl/evp.h>

#include "crypto_int.h"
#include "log.h"

const EVP_MD *kc_md(enum kc_hash hash)
{
	switch (hash) {
	case KC_SHA1:
		return EVP_sha1();
	case KC_SHA224:
		return EVP_sha224();
	case KC_SHA256:
		return EVP_sha256();
	case KC_SHA384:
		return EVP_sha384();
	case KC_SHA512:
		return EVP_sha512();
	case KC_SHA3_224:
		return EVP_sha3_224();
	case KC_SHA3_256:
		return EVP_sha3_256();
	case KC_SHA3_384:
		return EVP_sha3_384();
	case KC_SHA3_512:
		return EVP_sha3_512();
	}
	return NULL;
}

int kc_digest(enum kc_hash hash, const uint8_t *data, size_t data_len, uint8_t *out,
	      size_t *out_len)
{
	const EVP_MD *md = kc_md(hash);
	unsigned n = 0;

	*out_len = 0;
	if (md == NULL) {
		return KC_E_UNSUPPORTED;
	}
	if (EVP_Digest(data, data_len, out, &n, md, NULL) != 1) {
		keel_err("crypto: digest failed in OpenSSL");
		return KC_E_FAILED;
	}
	*out_len = n;
	return 0;
}
