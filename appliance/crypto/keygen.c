/*
 * Key pairs for Create Key Pair (KMIP 1.4 §4.2). Randomness is OpenSSL's
 * default DRBG (seeded from the OS), not the token's RNG: an accepted
 * trade-off until keys can be generated inside the token.
 */
#include "keel/crypto.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keel/kmip.h"
#include "keyobj_int.h"

/* |algorithm| and |bits| already checked by supported(). */
static EVP_PKEY *generate(uint32_t algorithm, int32_t bits)
{
	if (algorithm == KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA) {
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	}
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", bits == 256 ? "P-256" : "P-384");
}

static bool supported(uint32_t algorithm, int32_t bits)
{
	if (algorithm == KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA) {
		return bits == 2048 || bits == 3072 || bits == 4096;
	}
	return (algorithm == KMIP_CRYPTOGRAPHIC_ALGORITHM_EC ||
		algorithm == KMIP_CRYPTOGRAPHIC_ALGORITHM_ECDSA) &&
	       (bits == 256 || bits == 384);
}

int kc_keypair_generate(uint32_t algorithm, int32_t bits, struct kc_buf *out_private,
			struct kc_buf *out_public)
{
	EVP_PKEY *pk = NULL;
	int r;

	if (!supported(algorithm, bits)) {
		return KC_KEY_E_UNSUPPORTED;
	}
	if ((pk = generate(algorithm, bits)) == NULL) {
		r = KC_KEY_E_OPENSSL;
		goto out;
	}
	if ((r = kc_pkey_to_pkcs8(pk, out_private)) != 0 ||
	    (r = kc_pkey_to_spki(pk, out_public)) != 0) {
		kc_buf_free(out_private);
	}
out:
	EVP_PKEY_free(pk);
	return r;
}
