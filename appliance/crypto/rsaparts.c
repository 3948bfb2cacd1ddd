/*
 * Transparent RSA Public/Private Key (KMIP 1.4 §2.1.7.6, §2.1.7.7): a key's
 * components as big-endian integers, out of and into the stored form.
 */
#include "keel/crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include <stdlib.h>

#include "keyobj_int.h"

/* OpenSSL parameter names, in KC_RSA_* order. */
static const char *const names[KC_RSA_NUM] = {
    OSSL_PKEY_PARAM_RSA_N,	   OSSL_PKEY_PARAM_RSA_E,
    OSSL_PKEY_PARAM_RSA_D,	   OSSL_PKEY_PARAM_RSA_FACTOR1,
    OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
};

void kc_rsa_parts_cleanup(struct kc_rsa_parts *p)
{
	for (size_t i = 0; p != NULL && i < KC_RSA_NUM; i++) {
		kc_buf_free(&p->v[i]);
	}
}

/* A KMIP Big Integer (§9.1.1.4): two's complement, big-endian, a multiple of 8 bytes. */
int kc_bn_out(const BIGNUM *bn, struct kc_buf *out)
{
	size_t len = ((size_t)BN_num_bits(bn) / 8 + 1 + 7) / 8 * 8;

	if ((out->data = malloc(len)) == NULL) {
		return KC_KEY_E_NOMEM;
	}
	out->len = len;
	return BN_bn2binpad(bn, out->data, (int)len) == (int)len ? 0 : KC_KEY_E_OPENSSL;
}

static int parts_from_pkey(const EVP_PKEY *pk, size_t num, struct kc_rsa_parts *out)
{
	int r = 0;

	for (size_t i = 0; i < num && r == 0; i++) {
		BIGNUM *bn = NULL;

		if (!EVP_PKEY_get_bn_param(pk, names[i], &bn)) {
			r = KC_KEY_E_OPENSSL;
			break;
		}
		r = kc_bn_out(bn, &out->v[i]);
		BN_clear_free(bn);
	}
	if (r != 0) {
		kc_rsa_parts_cleanup(out);
	}
	return r;
}

int kc_rsa_parts_get(bool is_private, const uint8_t *der, size_t der_len, struct kc_rsa_parts *out)
{
	const unsigned char *p = der;
	EVP_PKEY *pk = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	int r = KC_KEY_E_INVALID;

	if (is_private && (p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der_len)) != NULL) {
		pk = EVP_PKCS82PKEY(p8);
	} else if (!is_private) {
		pk = d2i_PUBKEY(NULL, &p, (long)der_len);
	}
	if (pk == NULL) {
		goto out;
	}
	if (!EVP_PKEY_is_a(pk, "RSA")) {
		r = KC_KEY_E_UNSUPPORTED;
		goto out;
	}
	r = parts_from_pkey(pk, is_private ? KC_RSA_NUM : 2, out);
out:
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(pk);
	return r;
}

/* An OSSL_PARAM list of the components given; BIGNUMs kept in |bns| to free. */
static OSSL_PARAM *build_params(size_t num, const struct kc_rsa_parts *parts, BIGNUM **bns)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	bool ok = bld != NULL;

	for (size_t i = 0; i < num && ok; i++) {
		/* Secure BIGNUMs make the builder put private components in OpenSSL's
		 * secure heap, which OSSL_PARAM_free cleanses (OpenSSL 3.0 has no
		 * OSSL_PARAM_clear_free). */
		ok = parts->v[i].data != NULL && (bns[i] = BN_secure_new()) != NULL &&
		     BN_bin2bn(parts->v[i].data, (int)parts->v[i].len, bns[i]) != NULL &&
		     OSSL_PARAM_BLD_push_BN(bld, names[i], bns[i]);
	}
	if (ok) {
		params = OSSL_PARAM_BLD_to_param(bld);
	}
	OSSL_PARAM_BLD_free(bld);
	return params;
}

int kc_rsa_parts_import(bool is_private, const struct kc_rsa_parts *parts, struct kc_buf *out,
			struct kc_key_info *out_info)
{
	BIGNUM *bns[KC_RSA_NUM] = {0};
	size_t num = is_private ? KC_RSA_NUM : 2;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	OSSL_PARAM *params = build_params(num, parts, bns);
	EVP_PKEY *pk = NULL;
	int r = KC_KEY_E_INVALID;

	if (ctx == NULL || params == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, is_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
			      params) <= 0) {
		goto out;
	}
	if ((r = kc_pkey_info(pk, out_info)) == 0) {
		r = is_private ? kc_pkey_to_pkcs8(pk, out) : kc_pkey_to_spki(pk, out);
	}
out:
	EVP_PKEY_free(pk);
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	for (size_t i = 0; i < num; i++) {
		BN_clear_free(bns[i]);
	}
	return r;
}
