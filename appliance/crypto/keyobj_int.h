/* Inside keel_crypto's key-object half: EVP_PKEY to and from the stored DER forms. */
#ifndef KEEL_KEYOBJ_INT_H
#define KEEL_KEYOBJ_INT_H

#include <openssl/evp.h>

#include "keel/crypto.h"

/* Private key as PKCS#8 PrivateKeyInfo DER (RFC 5208), public as SubjectPublicKeyInfo. */
int kc_pkey_to_pkcs8(EVP_PKEY *pk, struct kc_buf *out) KC_WUR;
int kc_pkey_to_spki(EVP_PKEY *pk, struct kc_buf *out) KC_WUR;
/* Algorithm and length of |pk|; KC_KEY_E_UNSUPPORTED for anything but RSA and EC. */
int kc_pkey_info(const EVP_PKEY *pk, struct kc_key_info *out) KC_WUR;
/* |bn| as a KMIP Big Integer (§9.1.1.4) in a new kc_buf. */
int kc_bn_out(const BIGNUM *bn, struct kc_buf *out) KC_WUR;
/* Copies |len| bytes into a new kc_buf. */
int kc_buf_set(struct kc_buf *b, const uint8_t *p, size_t len) KC_WUR;

#endif
