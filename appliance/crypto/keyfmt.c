/*
 * Key format conversions (KMIP 1.4 §9.1.3.2.3 Key Format Type). Keys are
 * stored in one form per object type, PKCS#8 for private keys and
 * SubjectPublicKeyInfo for public keys, and converted per Get.
 */
#include "keel/crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "keel/kmip.h"
#include "keyobj_int.h"

void kc_buf_free(struct kc_buf *b)
{
	if (b != NULL && b->data != NULL) {
		OPENSSL_cleanse(b->data, b->len);
		free(b->data);
	}
	if (b != NULL) {
		b->data = NULL;
		b->len = 0;
	}
}

int kc_buf_set(struct kc_buf *b, const uint8_t *p, size_t len)
{
	if ((b->data = malloc(len != 0 ? len : 1)) == NULL) {
		return KC_KEY_E_NOMEM;
	}
	memcpy(b->data, p, len);
	b->len = len;
	return 0;
}

/* Takes the i2d output |der| (OpenSSL-allocated) into |out|, wiping the original. */
static int take_der(unsigned char *der, int len, struct kc_buf *out)
{
	int r;

	if (len <= 0 || der == NULL) {
		return KC_KEY_E_OPENSSL;
	}
	r = kc_buf_set(out, der, (size_t)len);
	OPENSSL_clear_free(der, (size_t)len);
	return r;
}

int kc_pkey_to_pkcs8(EVP_PKEY *pk, struct kc_buf *out)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
	unsigned char *der = NULL;
	int len;

	if (p8 == NULL) {
		return KC_KEY_E_OPENSSL;
	}
	len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return take_der(der, len, out);
}

int kc_pkey_to_spki(EVP_PKEY *pk, struct kc_buf *out)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(pk, &der);

	return take_der(der, len, out);
}

int kc_pkey_info(const EVP_PKEY *pk, struct kc_key_info *out)
{
	if (EVP_PKEY_is_a(pk, "RSA")) {
		out->algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA;
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		out->algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_EC;
	} else {
		return KC_KEY_E_UNSUPPORTED;
	}
	out->bits = EVP_PKEY_get_bits(pk);
	return 0;
}

/* Parses a private key; the whole input must be consumed. */
static EVP_PKEY *parse_private(uint32_t format, const uint8_t *in, size_t in_len)
{
	const unsigned char *p = in;
	EVP_PKEY *pk = NULL;
	PKCS8_PRIV_KEY_INFO *p8;

	if (in_len > (size_t)LONG_MAX) {
		return NULL;
	}
	if (format == KMIP_KEY_FORMAT_TYPE_PKCS_1) {
		pk = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, (long)in_len);
	} else if (format == KMIP_KEY_FORMAT_TYPE_EC_PRIVATE_KEY) {
		/* SEC 1 ECPrivateKey (RFC 5915 §3), named curve in its parameters */
		pk = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, (long)in_len);
	} else if (format == KMIP_KEY_FORMAT_TYPE_PKCS_8 &&
		   (p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)in_len)) != NULL) {
		pk = EVP_PKCS82PKEY(p8);
		PKCS8_PRIV_KEY_INFO_free(p8);
	}
	if (pk != NULL && p != in + in_len) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

static EVP_PKEY *parse_public(uint32_t format, const uint8_t *in, size_t in_len)
{
	const unsigned char *p = in;
	EVP_PKEY *pk = NULL;

	if (in_len > (size_t)LONG_MAX) {
		return NULL;
	}
	if (format == KMIP_KEY_FORMAT_TYPE_PKCS_1) {
		pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)in_len);
	} else if (format == KMIP_KEY_FORMAT_TYPE_X_509) {
		pk = d2i_PUBKEY(NULL, &p, (long)in_len);
	}
	if (pk != NULL && p != in + in_len) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

/* KMIP 1.4 §9.1.3.2.3: EC Private Key is the SEC 1 form of a private key only. */
static bool importable(bool is_private, uint32_t format)
{
	return format == KMIP_KEY_FORMAT_TYPE_PKCS_1 ||
	       (is_private && format == KMIP_KEY_FORMAT_TYPE_EC_PRIVATE_KEY) ||
	       format == (is_private ? KMIP_KEY_FORMAT_TYPE_PKCS_8 : KMIP_KEY_FORMAT_TYPE_X_509);
}

/* The stored form of |pk| and what it is. */
static int store_form(bool is_private, EVP_PKEY *pk, struct kc_buf *out,
		      struct kc_key_info *out_info)
{
	int r;

	if ((r = kc_pkey_info(pk, out_info)) != 0) {
		return r;
	}
	return is_private ? kc_pkey_to_pkcs8(pk, out) : kc_pkey_to_spki(pk, out);
}

int kc_key_import(bool is_private, uint32_t format, const uint8_t *in, size_t in_len,
		  struct kc_buf *out, struct kc_key_info *out_info)
{
	EVP_PKEY *pk;
	int r;

	if (!importable(is_private, format)) {
		return KC_KEY_E_UNSUPPORTED;
	}
	pk = is_private ? parse_private(format, in, in_len) : parse_public(format, in, in_len);
	if (pk == NULL) {
		return KC_KEY_E_INVALID;
	}
	r = store_form(is_private, pk, out, out_info);
	EVP_PKEY_free(pk);
	return r;
}

/* Reads a stored key (PKCS#8 or SubjectPublicKeyInfo). */
static EVP_PKEY *load_stored(bool is_private, const uint8_t *der, size_t der_len)
{
	return is_private ? parse_private(KMIP_KEY_FORMAT_TYPE_PKCS_8, der, der_len)
			  : parse_public(KMIP_KEY_FORMAT_TYPE_X_509, der, der_len);
}

/*
 * PKCS#1 RSAPrivateKey / RSAPublicKey (RFC 8017 A.1) for RSA keys, SEC 1
 * ECPrivateKey (RFC 5915 §3) for EC private keys: the key type's own form.
 */
static int export_native(bool is_private, uint32_t format, EVP_PKEY *pk, struct kc_buf *out)
{
	unsigned char *der = NULL;
	int len;

	if (!EVP_PKEY_is_a(pk, format == KMIP_KEY_FORMAT_TYPE_PKCS_1 ? "RSA" : "EC")) {
		return KC_KEY_E_UNSUPPORTED;
	}
	len = is_private ? i2d_PrivateKey(pk, &der) : i2d_PublicKey(pk, &der);
	return take_der(der, len, out);
}

int kc_key_export(bool is_private, const uint8_t *der, size_t der_len, uint32_t format,
		  struct kc_buf *out)
{
	EVP_PKEY *pk = NULL;
	int r;

	if (!importable(is_private, format)) {
		return KC_KEY_E_UNSUPPORTED;
	}
	if (format != KMIP_KEY_FORMAT_TYPE_PKCS_1 &&
	    format != KMIP_KEY_FORMAT_TYPE_EC_PRIVATE_KEY) {
		return kc_buf_set(out, der, der_len); /* the stored form itself */
	}
	if ((pk = load_stored(is_private, der, der_len)) == NULL) {
		return KC_KEY_E_INVALID;
	}
	r = export_native(is_private, format, pk, out);
	EVP_PKEY_free(pk);
	return r;
}

/* KMIP Recommended Curves (§9.1.3.2.5) OpenSSL knows by name. */
static const struct {
	int nid;
	uint32_t curve;
} curves[] = {
    {NID_X9_62_prime192v1, KMIP_RECOMMENDED_CURVE_P_192},
    {NID_secp224r1, KMIP_RECOMMENDED_CURVE_P_224},
    {NID_X9_62_prime256v1, KMIP_RECOMMENDED_CURVE_P_256},
    {NID_secp384r1, KMIP_RECOMMENDED_CURVE_P_384},
    {NID_secp521r1, KMIP_RECOMMENDED_CURVE_P_521},
    {NID_secp256k1, KMIP_RECOMMENDED_CURVE_SECP256_K1},
};

static int curve_of(const EVP_PKEY *pk, uint32_t *out)
{
	char name[64];
	int nid;

	if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
					    NULL)) {
		return KC_KEY_E_UNSUPPORTED;
	}
	nid = OBJ_sn2nid(name);
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		if (curves[i].nid == nid) {
			*out = curves[i].curve;
			return 0;
		}
	}
	return KC_KEY_E_UNSUPPORTED;
}

/* D as a Big Integer, or Q as its encoded point (SEC 1 §2.3.3, uncompressed). */
static int ec_value(bool is_private, const EVP_PKEY *pk, struct kc_buf *out)
{
	BIGNUM *d = NULL;
	size_t len = 0;
	int r;

	if (is_private) {
		if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d)) {
			return KC_KEY_E_OPENSSL;
		}
		r = kc_bn_out(d, out);
		BN_clear_free(d);
		return r;
	}
	if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, NULL, 0, &len) ||
	    (out->data = malloc(len != 0 ? len : 1)) == NULL) {
		return KC_KEY_E_OPENSSL;
	}
	out->len = len;
	return EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, out->data, len, &len)
		   ? 0
		   : KC_KEY_E_OPENSSL;
}

int kc_ec_parts_get(bool is_private, const uint8_t *der, size_t der_len, struct kc_ec_parts *out)
{
	EVP_PKEY *pk = load_stored(is_private, der, der_len);
	int r;

	if (pk == NULL) {
		return KC_KEY_E_INVALID;
	}
	r = EVP_PKEY_is_a(pk, "EC") ? curve_of(pk, &out->curve) : KC_KEY_E_UNSUPPORTED;
	if (r == 0) {
		r = ec_value(is_private, pk, &out->value);
	}
	if (r != 0) {
		kc_ec_parts_cleanup(out);
	}
	EVP_PKEY_free(pk);
	return r;
}

void kc_ec_parts_cleanup(struct kc_ec_parts *p)
{
	if (p != NULL) {
		kc_buf_free(&p->value);
	}
}
