/*
 * Mirroring the CRK as a Key Protect root key (issue 6, "Set-up"): secure
 * import (KEYPROTECT.md §2), with hsm/ wrapping the CRK under the import
 * token's RSA key and sealing its nonce, so the CRK is never plaintext
 * outside the token or Key Protect. A CRK that cannot leave the token gets a
 * root key Key Protect generates instead, and the mode says so.
 */
#include "mirror_int.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define IMPORT_TOKEN_S 600
#define RSA_MAX	       1024 /* bytes of modulus: 8192 bits */

struct rsa_parts {
	uint8_t n[RSA_MAX], e[8];
	size_t n_len, e_len;
};

/* Modulus and exponent (big-endian) of the import token's SPKI PEM. */
static int rsa_parts(const char *pem, struct rsa_parts *out)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIGNUM *n = NULL, *e = NULL;
	int r = MIRROR_E_PROTOCOL;

	if (pkey != NULL && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1 &&
	    (size_t)BN_num_bytes(n) <= sizeof(out->n) &&
	    (size_t)BN_num_bytes(e) <= sizeof(out->e)) {
		out->n_len = (size_t)BN_bn2bin(n, out->n);
		out->e_len = (size_t)BN_bn2bin(e, out->e);
		r = 0;
	} else {
		keel_err("mirror: the import token's public key is not an RSA key we can use");
	}
	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return r;
}

/* What secure import sends, and the buffers that hold it. */
struct secure {
	struct mirror_import_token tok;
	uint8_t *wrapped, *sealed, iv[HSM_GCM_IV_LEN];
	struct mirror_secure_payload sp;
};

static void secure_cleanup(struct secure *x)
{
	free(x->wrapped);
	free(x->sealed);
	mirror_import_token_cleanup(&x->tok);
}

/*
 * A fresh import token, and the material wrapped under its RSA key with its
 * nonce sealed under the material, into x->sp. MIRROR_E_REFUSED with
 * *out_local set when the material cannot be exported so (not extractable,
 * or no SHA-256 OAEP wrapping).
 */
static int secure_payload(struct mirror *m, const struct mirror_material *mat, struct secure *x,
			  bool *out_local)
{
	struct rsa_parts rsa;
	size_t wrapped_len = 0, sealed_len = 0;
	int r, hr;

	memset(x, 0, sizeof(*x));
	*out_local = false;
	if ((r = mirror_import_token(m, IMPORT_TOKEN_S, &x->tok)) != 0 ||
	    (r = rsa_parts(x->tok.public_key_pem, &rsa)) != 0) {
		return r;
	}
	hr = mat->wrap(mat->arg, rsa.n, rsa.n_len, rsa.e, rsa.e_len, &x->wrapped, &wrapped_len);
	if (hr == HSM_E_NOT_EXTRACTABLE || hr == HSM_E_MECHANISM) {
		keel_notice("mirror: the CRK cannot be exported for secure import (%s)",
			    hsm_strerror(hr));
		*out_local = true;
		return MIRROR_E_REFUSED;
	}
	if (hr != 0 || (hr = mat->seal(mat->arg, x->tok.nonce, sizeof(x->tok.nonce), x->iv,
				       &x->sealed, &sealed_len)) != 0) {
		keel_err("mirror: CRK export for secure import: %s", hsm_strerror(hr));
		return MIRROR_E_INVAL;
	}
	x->sp = (struct mirror_secure_payload){x->wrapped, wrapped_len, x->sealed,
					       sealed_len, x->iv,	sizeof(x->iv)};
	return 0;
}

/* ---- the token's CRK as material -------------------------------------------- */

struct token_crk {
	struct hsm *h;
	uint32_t version;
};

static int token_wrap(void *arg, const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len,
		      uint8_t **out, size_t *out_len)
{
	const struct token_crk *t = arg;

	return hsm_crk_export(t->h, t->version, n, n_len, e, e_len, HSM_OAEP_SHA256, out, out_len);
}

static int token_seal(void *arg, const uint8_t *nonce, size_t nonce_len, uint8_t iv[HSM_GCM_IV_LEN],
		      uint8_t **out, size_t *out_len)
{
	const struct token_crk *t = arg;

	return hsm_crk_encrypt_nonce(t->h, t->version, nonce, nonce_len, iv, out, out_len);
}

static struct mirror_material token_material(struct token_crk *t)
{
	return (struct mirror_material){.wrap = token_wrap, .seal = token_seal, .arg = t};
}

/* Secure import of the material as root key `name`; *out_local as secure_payload. */
static int secure_import(struct mirror *m, const struct mirror_material *mat, const char *name,
			 struct mirror_key *out, bool *out_local)
{
	struct secure x;
	int r = secure_payload(m, mat, &x, out_local);

	if (r == 0) {
		r = mirror_import_root(m, name, &x.sp, out);
	}
	secure_cleanup(&x);
	return r;
}

int mirror_rotate_secure(struct mirror *m, const char *id, const struct mirror_material *mat,
			 struct mirror_key *out_key)
{
	struct secure x;
	bool local = false;
	int r = secure_payload(m, mat, &x, &local);

	if (r == 0 && (r = mirror_rotate(m, id, &x.sp)) == 0) {
		r = mirror_get_key(m, id, out_key, NULL);
	}
	secure_cleanup(&x);
	return r;
}

int mirror_enable(struct mirror *m, struct hsm *h, const char *name, struct mirror_root *out)
{
	bool local = false;
	int r;

	memset(out, 0, sizeof(*out));
	if (h == NULL || hsm_crk_active(h, &out->crk_version) != 0) {
		keel_err("mirror: the token has no CRK to mirror");
		return MIRROR_E_INVAL;
	}
	struct token_crk crk = {h, out->crk_version};
	const struct mirror_material mat = token_material(&crk);

	r = secure_import(m, &mat, name, &out->key, &local);
	if (r == 0) {
		out->mode = MIRROR_ROOT_IMPORTED;
		keel_notice("mirror: CRK version %u imported into Key Protect as root key %s",
			    (unsigned)out->crk_version, out->key.id);
		return 0;
	}
	if (!local) {
		return r;
	}
	if ((r = mirror_create_root(m, name, &out->key)) == 0) {
		out->mode = MIRROR_ROOT_GENERATED;
		keel_notice("mirror: root key %s generated by Key Protect (the CRK stays in the "
			    "token; recovery from Key Protect needs this root key, not the CRK)",
			    out->key.id);
	}
	return r;
}

int mirror_rotate_staged(struct mirror *m, struct hsm *h, const char *id,
			 struct mirror_key *out_key)
{
	struct token_crk crk = {h, HSM_CRK_STAGED};
	const struct mirror_material mat = token_material(&crk);

	return mirror_rotate_secure(m, id, &mat, out_key);
}
