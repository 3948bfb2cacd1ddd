/* Inside keel_crypto's operations: what cipher.c, mac.c, digest.c, sign.c and rsacrypt.c share. */
#ifndef KEEL_CRYPTO_INT_H
#define KEEL_CRYPTO_INT_H

#include <openssl/evp.h>

#include "keel/crypto.h"

/* The OpenSSL digest of |hash|; NULL if unknown. */
const EVP_MD *kc_md(enum kc_hash hash);

/* Reads a stored key: PKCS#8 DER if |priv|, else SubjectPublicKeyInfo DER; NULL (logged) if bad. */
EVP_PKEY *kc_load_key(bool priv, const uint8_t *der, size_t der_len);

#endif
