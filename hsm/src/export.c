/*
 * What leaves the token on purpose: the CRK wrapped under a cloud KMS's RSA
 * import key (RSA-OAEP, C_WrapKey, so it is never plaintext outside the
 * token), a nonce encrypted under the CRK (Key Protect's secure import proof),
 * key check values, and random bytes.
 */
#include "hsm_int.h"

#include <stdlib.h>
#include <string.h>

#define RSA_MAX_BYTES 1024 /* 8192-bit modulus */
#define NONCE_MAX     1024
#define RANDOM_MAX    (1u << 20)

static int rsa_public_object(struct hsm *h, CK_SESSION_HANDLE s, const uint8_t *modulus,
			     size_t modulus_len, const uint8_t *exponent, size_t exponent_len,
			     CK_OBJECT_HANDLE *out_obj, CK_RV *out_rv)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = CKK_RSA;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_TOKEN, &no, sizeof(no)},
	    {CKA_WRAP, &yes, sizeof(yes)},
	    {CKA_ENCRYPT, &yes, sizeof(yes)},
	    {CKA_MODULUS, (void *)modulus, modulus_len},
	    {CKA_PUBLIC_EXPONENT, (void *)exponent, exponent_len},
	};

	*out_rv = h->p11->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), out_obj);
	return *out_rv == CKR_OK ? 0 : hsm_ck_fail(h, "C_CreateObject(RSA public key)", *out_rv);
}

static int oaep_wrap(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
		     const struct hsm_crk *crk, enum hsm_oaep_hash hash, uint8_t **out,
		     size_t *out_len, CK_RV *out_rv)
{
	CK_RSA_PKCS_OAEP_PARAMS op = {
	    .hashAlg = hash == HSM_OAEP_SHA1 ? CKM_SHA_1 : CKM_SHA256,
	    .mgf = hash == HSM_OAEP_SHA1 ? CKG_MGF1_SHA1 : CKG_MGF1_SHA256,
	    .source = CKZ_DATA_SPECIFIED,
	};
	CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
	CK_ULONG len = 0;
	uint8_t *buf = NULL;

	*out_rv = h->p11->C_WrapKey(s, &mech, pub, crk->obj, NULL, &len);
	if (*out_rv == CKR_OK && len <= RSA_MAX_BYTES && (buf = malloc(len)) != NULL) {
		*out_rv = h->p11->C_WrapKey(s, &mech, pub, crk->obj, buf, &len);
	}
	if (*out_rv == CKR_ARGUMENTS_BAD || *out_rv == CKR_MECHANISM_PARAM_INVALID) {
		/* SoftHSM 2.6 accepts only SHA-1 OAEP here and says so this way. */
		hsm_log(h, HSM_LOG_ERROR, "C_WrapKey(RSA-OAEP-%s): token refuses the parameters",
			hash == HSM_OAEP_SHA1 ? "SHA1" : "SHA256");
		free(buf);
		return HSM_E_MECHANISM;
	}
	if (*out_rv != CKR_OK || buf == NULL) {
		free(buf);
		return *out_rv != CKR_OK ? hsm_ck_fail(h, "C_WrapKey(RSA-OAEP)", *out_rv)
					 : HSM_E_NOMEM;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

static int export_locked(struct hsm *h, CK_SESSION_HANDLE s, uint32_t version,
			 const uint8_t *modulus, size_t modulus_len, const uint8_t *exponent,
			 size_t exponent_len, enum hsm_oaep_hash hash, uint8_t **out,
			 size_t *out_len, CK_RV *out_rv)
{
	const struct hsm_crk *crk = hsm_crk_lookup(h, version);
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
	int r;

	if (crk == NULL) {
		return HSM_E_CRK_NOT_FOUND;
	}
	if (!crk->extractable) {
		hsm_log(h, HSM_LOG_ERROR, "CRK version %u was made non-extractable; cannot export",
			(unsigned)version);
		return HSM_E_NOT_EXTRACTABLE;
	}
	if ((r = rsa_public_object(h, s, modulus, modulus_len, exponent, exponent_len, &pub,
				   out_rv)) != 0) {
		return r;
	}
	r = oaep_wrap(h, s, pub, crk, hash, out, out_len, out_rv);
	(void)h->p11->C_DestroyObject(s, pub);
	return r;
}

int hsm_crk_export(struct hsm *h, uint32_t version, const uint8_t *modulus, size_t modulus_len,
		   const uint8_t *exponent, size_t exponent_len, enum hsm_oaep_hash hash,
		   uint8_t **out_wrapped, size_t *out_wrapped_len)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	int r;

	if (h == NULL || modulus == NULL || modulus_len < 128 || modulus_len > RSA_MAX_BYTES ||
	    exponent == NULL || exponent_len == 0 || exponent_len > 8 ||
	    (hash != HSM_OAEP_SHA256 && hash != HSM_OAEP_SHA1) || out_wrapped == NULL ||
	    out_wrapped_len == NULL) {
		return HSM_E_INVAL;
	}
	*out_wrapped = NULL;
	*out_wrapped_len = 0;
	if ((r = hsm_op_begin(h, &s)) != 0) {
		return r;
	}
	r = export_locked(h, s, version, modulus, modulus_len, exponent, exponent_len, hash,
			  out_wrapped, out_wrapped_len, &rv);
	hsm_op_end(h, s, rv);
	return r;
}

int hsm_crk_encrypt_nonce(struct hsm *h, uint32_t version, const uint8_t *nonce, size_t nonce_len,
			  uint8_t out_iv[static HSM_GCM_IV_LEN], uint8_t **out_ct,
			  size_t *out_ct_len)
{
	const struct hsm_crk *crk;
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	uint8_t *buf = NULL;
	int r;

	if (h == NULL || nonce == NULL || nonce_len == 0 || nonce_len > NONCE_MAX ||
	    out_iv == NULL || out_ct == NULL || out_ct_len == NULL) {
		return HSM_E_INVAL;
	}
	*out_ct = NULL;
	*out_ct_len = 0;
	if ((buf = malloc(HSM_GCM_IV_LEN + nonce_len + HSM_GCM_TAG_LEN)) == NULL) {
		return HSM_E_NOMEM;
	}
	if ((r = hsm_op_begin(h, &s)) != 0) {
		goto out;
	}
	if ((crk = hsm_crk_lookup(h, version)) == NULL) {
		r = HSM_E_CRK_NOT_FOUND;
	} else {
		r = hsm_gcm_encrypt(h, s, crk->obj, NULL, 0, nonce, nonce_len, buf, &rv);
	}
	hsm_op_end(h, s, rv);
	if (r == 0) {
		/* Hand out IV and ciphertext|tag separately, as Key Protect takes them. */
		memcpy(out_iv, buf, HSM_GCM_IV_LEN);
		memmove(buf, buf + HSM_GCM_IV_LEN, nonce_len + HSM_GCM_TAG_LEN);
		*out_ct = buf;
		*out_ct_len = nonce_len + HSM_GCM_TAG_LEN;
		buf = NULL;
	}
out:
	free(buf);
	return r;
}

/* C_GenerateRandom as a call (call.c): into locked memory of its own. */
struct random_call {
	struct hsm_call call; /* first: call.c hands back &call */
	struct hsm_secret *out;
};

static void random_call_free(struct hsm_call *c)
{
	struct random_call *rc = (struct random_call *)c;

	hsm_secret_free(rc->out);
	free(rc);
}

static int random_fn(struct hsm *h, CK_SESSION_HANDLE s, struct hsm_call *c, CK_RV *out_rv)
{
	struct random_call *rc = (struct random_call *)c;

	*out_rv = h->p11->C_GenerateRandom(s, hsm_secret_data(rc->out),
					   (CK_ULONG)hsm_secret_len(rc->out));
	return *out_rv == CKR_OK ? 0 : hsm_ck_fail(h, "C_GenerateRandom", *out_rv);
}

/* Up to HSM_MAX_KEY_LEN random bytes. */
static int random_chunk(struct hsm *h, uint8_t *out, size_t len)
{
	struct random_call *rc;
	int r;

	if ((rc = calloc(1, sizeof(*rc))) == NULL) {
		return HSM_E_NOMEM;
	}
	rc->call.fn = random_fn;
	rc->call.drop = random_call_free;
	if ((r = hsm_secret_new(len, &rc->out)) == 0 &&
	    (r = hsm_call_run(h, &rc->call)) == HSM_E_TIMEOUT) {
		return r; /* rc is the runner's now */
	}
	if (r == 0) {
		memcpy(out, hsm_secret_data(rc->out), len);
	}
	random_call_free(&rc->call);
	return r;
}

int hsm_random(struct hsm *h, uint8_t *out, size_t len)
{
	size_t n;
	int r = 0;

	if (h == NULL || out == NULL || len == 0 || len > RANDOM_MAX) {
		return HSM_E_INVAL;
	}
	for (size_t off = 0; off < len && r == 0; off += n) {
		n = len - off < HSM_MAX_KEY_LEN ? len - off : HSM_MAX_KEY_LEN;
		r = random_chunk(h, out + off, n);
	}
	return r;
}

/* KCV: the first 3 bytes of AES-ECB(key, 0^16), the usual key check value. */
static int kcv_locked(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
		      uint8_t out[static HSM_KCV_LEN], CK_RV *out_rv)
{
	CK_MECHANISM mech = {CKM_AES_ECB, NULL, 0};
	uint8_t zero[16] = {0}, block[16];
	CK_ULONG len = sizeof(block);

	if ((*out_rv = h->p11->C_EncryptInit(s, &mech, key)) != CKR_OK ||
	    (*out_rv = h->p11->C_Encrypt(s, zero, sizeof(zero), block, &len)) != CKR_OK) {
		return hsm_ck_fail(h, "C_Encrypt(AES-ECB, KCV)", *out_rv);
	}
	memcpy(out, block, HSM_KCV_LEN);
	return 0;
}

int hsm_crk_kcv(struct hsm *h, uint32_t version, uint8_t out_kcv[static HSM_KCV_LEN])
{
	const struct hsm_crk *crk;
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	int r;

	if (h == NULL || out_kcv == NULL) {
		return HSM_E_INVAL;
	}
	if ((r = hsm_op_begin(h, &s)) != 0) {
		return r;
	}
	if ((crk = hsm_crk_lookup(h, version)) == NULL) {
		r = HSM_E_CRK_NOT_FOUND;
	} else {
		r = kcv_locked(h, s, crk->obj, out_kcv, &rv);
	}
	hsm_op_end(h, s, rv);
	return r;
}

static void crk_info_fill(struct hsm *h, CK_SESSION_HANDLE s, struct hsm_crk_info *list,
			  CK_RV *out_rv)
{
	for (size_t i = 0; i < h->num_crks; i++) {
		list[i].version = h->crks[i].version;
		memcpy(list[i].created, h->crks[i].created, HSM_CRK_CREATED_LEN);
		list[i].extractable = h->crks[i].extractable;
		list[i].active = i + 1 == h->num_crks;
		list[i].has_kcv = kcv_locked(h, s, h->crks[i].obj, list[i].kcv, out_rv) == 0;
	}
}

int hsm_crk_list(struct hsm *h, struct hsm_crk_info **out_list, size_t *out_num)
{
	struct hsm_crk_info *list = NULL;
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	int r;

	if (h == NULL || out_list == NULL || out_num == NULL) {
		return HSM_E_INVAL;
	}
	*out_list = NULL;
	*out_num = 0;
	if ((r = hsm_op_begin(h, &s)) != 0) {
		return r;
	}
	/* calloc(0) may return NULL; ask for one element at least. */
	if ((list = calloc(h->num_crks + 1, sizeof(*list))) == NULL) {
		r = HSM_E_NOMEM;
	} else {
		crk_info_fill(h, s, list, &rv);
		*out_list = list;
		*out_num = h->num_crks;
	}
	hsm_op_end(h, s, rv);
	return r;
}
