/* Inside keel_crypto's operations: what cipher.c, mac.c and digest.c share. */
#ifndef KEEL_CRYPTO_INT_H
#define KEEL_CRYPTO_INT_H

#include <openssl/evp.h>

#include "keel/crypto.h"

/* The OpenSSL digest of |hash|; NULL if unknown. */
const EVP_MD *kc_md(enum kc_hash hash);

#endif
