/*
 * X.509 certificate facts for the attributes a server derives at Register
 * (KMIP 1.4 §3.8-3.10 Certificate Identifier/Subject/Issuer, §3.17 Digest).
 */
#include "keel/crypto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyobj_int.h"

void kc_cert_info_cleanup(struct kc_cert_info *c)
{
	if (c == NULL) {
		return;
	}
	free(c->subject);
	free(c->issuer);
	kc_buf_free(&c->serial);
	memset(c, 0, sizeof(*c));
}

/* A name in RFC 2253 form, malloc'd. */
static char *name_text(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *text = NULL;
	char *p;
	long n;

	if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(b, &p)) >= 0 && (text = malloc((size_t)n + 1)) != NULL) {
		memcpy(text, p, (size_t)n);
		text[n] = '\0';
	}
	BIO_free(b);
	return text;
}

static int serial_out(const X509 *x, struct kc_buf *out)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	int r = KC_KEY_E_OPENSSL;

	if (bn != NULL && (out->data = malloc((size_t)BN_num_bytes(bn) + 1)) != NULL) {
		out->len = (size_t)BN_bn2bin(bn, out->data);
		r = 0;
	}
	BN_free(bn);
	return r;
}

static int facts(X509 *x, const uint8_t *der, size_t der_len, struct kc_cert_info *out)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);

	if (EVP_Digest(der, der_len, out->sha256, NULL, EVP_sha256(), NULL) != 1 ||
	    (out->subject = name_text(X509_get_subject_name(x))) == NULL ||
	    (out->issuer = name_text(X509_get_issuer_name(x))) == NULL) {
		return KC_KEY_E_OPENSSL;
	}
	/* A key we cannot name leaves the algorithm out rather than failing (§3.4). */
	if (pk == NULL || kc_pkey_info(pk, &out->key) != 0) {
		memset(&out->key, 0, sizeof(out->key));
	}
	return serial_out(x, &out->serial);
}

int kc_cert_parse(const uint8_t *der, size_t der_len, struct kc_cert_info *out)
{
	const unsigned char *p = der;
	X509 *x;
	int r;

	memset(out, 0, sizeof(*out));
	if (der_len > (size_t)INT32_MAX || (x = d2i_X509(NULL, &p, (long)der_len)) == NULL) {
		return KC_KEY_E_INVALID;
	}
	r = p == der + der_len ? facts(x, der, der_len, out) : KC_KEY_E_INVALID;
	X509_free(x);
	if (r != 0) {
		kc_cert_info_cleanup(out);
	}
	return r;
}
