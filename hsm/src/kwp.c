/*
 * AES-KWP (RFC 5649) through C_WrapKey/C_UnwrapKey, for HSMs that refuse
 * caller-side GCM. KWP takes no AAD, so the binding goes inside: the wrapped
 * value is u16 uid_len | uid | u32 key_len | key, and unwrap checks the uid.
 * The explicit length is there because SoftHSM 2.6 hands back the padded
 * length from C_UnwrapKey; up to 7 zero bytes after the key are accepted. KWP's
 * integrity check (RFC 5649 §3) makes any change to the blob fail; the header
 * (CRK version) is bound because the wrong CRK cannot unwrap.
 *
 * The material passes through a short-lived session object (never a token
 * object), destroyed on every path.
 */
#include "hsm_int.h"

#include <stdlib.h>
#include <string.h>

#define KWP_INNER_MAX (2 + HSM_MAX_UID_LEN + 4 + HSM_MAX_KEY_LEN + 7)

static int kwp_object(struct hsm *h, CK_SESSION_HANDLE s, const uint8_t *val, size_t len,
		      CK_OBJECT_HANDLE *out_obj, CK_RV *out_rv)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},	  {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_TOKEN, &no, sizeof(no)},	  {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_VALUE, (void *)val, len},
	};

	*out_rv = h->p11->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), out_obj);
	return *out_rv == CKR_OK ? 0 : hsm_ck_fail(h, "C_CreateObject(KWP input)", *out_rv);
}

static int kwp_do_wrap(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_crk *crk,
		       CK_OBJECT_HANDLE obj, uint8_t **out_blob, size_t *out_blob_len,
		       CK_RV *out_rv)
{
	CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_ULONG len = 0;
	uint8_t *blob = NULL;

	*out_rv = h->p11->C_WrapKey(s, &mech, crk->obj, obj, NULL, &len);
	if (*out_rv != CKR_OK) {
		return hsm_ck_fail(h, "C_WrapKey(AES-KWP)", *out_rv);
	}
	if ((blob = malloc(HSM_BLOB_HEADER_LEN + len)) == NULL) {
		return HSM_E_NOMEM;
	}
	blob[0] = HSM_BLOB_FORMAT;
	blob[1] = HSM_ALG_KWP;
	hsm_put_u32(blob + 2, crk->version);
	*out_rv = h->p11->C_WrapKey(s, &mech, crk->obj, obj, blob + HSM_BLOB_HEADER_LEN, &len);
	if (*out_rv != CKR_OK) {
		free(blob);
		return hsm_ck_fail(h, "C_WrapKey(AES-KWP)", *out_rv);
	}
	*out_blob = blob;
	*out_blob_len = HSM_BLOB_HEADER_LEN + len;
	return 0;
}

int hsm_kwp_wrap(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_crk *crk, const uint8_t *uid,
		 size_t uid_len, const uint8_t *key, size_t key_len, uint8_t **out_blob,
		 size_t *out_blob_len, CK_RV *out_rv)
{
	struct hsm_secret *inner = NULL;
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	uint8_t *p;
	int r;

	if ((r = hsm_secret_new(2 + uid_len + 4 + key_len, &inner)) != 0) {
		return r;
	}
	p = hsm_secret_data(inner);
	p[0] = (uint8_t)(uid_len >> 8);
	p[1] = (uint8_t)uid_len;
	memcpy(p + 2, uid, uid_len);
	hsm_put_u32(p + 2 + uid_len, (uint32_t)key_len);
	memcpy(p + 2 + uid_len + 4, key, key_len);
	if ((r = kwp_object(h, s, p, hsm_secret_len(inner), &obj, out_rv)) == 0) {
		r = kwp_do_wrap(h, s, crk, obj, out_blob, out_blob_len, out_rv);
		(void)h->p11->C_DestroyObject(s, obj);
	}
	hsm_secret_free(inner);
	return r;
}

/* Reads the unwrapped session object's value into locked memory. */
static int kwp_read(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
		    struct hsm_secret **out_inner, CK_RV *out_rv)
{
	CK_ATTRIBUTE a = {CKA_VALUE, NULL, 0};
	struct hsm_secret *inner = NULL;
	int r;

	if ((*out_rv = h->p11->C_GetAttributeValue(s, obj, &a, 1)) != CKR_OK) {
		return hsm_ck_fail(h, "C_GetAttributeValue(KWP output)", *out_rv);
	}
	if (a.ulValueLen < 3 || a.ulValueLen > KWP_INNER_MAX) {
		return HSM_E_AUTH;
	}
	if ((r = hsm_secret_new(a.ulValueLen, &inner)) != 0) {
		return r;
	}
	a.pValue = hsm_secret_data(inner);
	if ((*out_rv = h->p11->C_GetAttributeValue(s, obj, &a, 1)) != CKR_OK) {
		hsm_secret_free(inner);
		return hsm_ck_fail(h, "C_GetAttributeValue(KWP output)", *out_rv);
	}
	*out_inner = inner;
	return 0;
}

/* Checks u16 uid_len | uid | u32 key_len, then copies the key out. */
static int kwp_split(struct hsm_secret *inner_s, const uint8_t *uid, size_t uid_len,
		     struct hsm_secret **out_key)
{
	const uint8_t *p = hsm_secret_data(inner_s);
	const size_t len = hsm_secret_len(inner_s);
	size_t key_len;
	uint8_t diff = 0;

	if (len < 2 + uid_len + 4 + 1 || ((size_t)p[0] << 8 | p[1]) != uid_len) {
		return HSM_E_AUTH;
	}
	for (size_t i = 0; i < uid_len; i++) {
		diff |= p[2 + i] ^ uid[i];
	}
	key_len = hsm_get_u32(p + 2 + uid_len);
	if (diff != 0 || key_len == 0 || key_len > len - (2 + uid_len + 4) ||
	    len - (2 + uid_len + 4) - key_len > 7) {
		return HSM_E_AUTH;
	}
	for (size_t i = 2 + uid_len + 4 + key_len; i < len; i++) {
		diff |= p[i];
	}
	if (diff != 0 || hsm_secret_new(key_len, out_key) != 0) {
		return diff != 0 ? HSM_E_AUTH : HSM_E_NOMEM;
	}
	memcpy(hsm_secret_data(*out_key), p + 2 + uid_len + 4, key_len);
	return 0;
}

int hsm_kwp_unwrap(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_crk *crk,
		   const uint8_t *uid, size_t uid_len, const uint8_t *blob, size_t blob_len,
		   struct hsm_secret **out_key, CK_RV *out_rv)
{
	CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},	  {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_TOKEN, &no, sizeof(no)},	  {CKA_SENSITIVE, &no, sizeof(no)},
	    {CKA_EXTRACTABLE, &yes, sizeof(yes)},
	};
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	struct hsm_secret *inner = NULL;
	const size_t wlen = blob_len - HSM_BLOB_HEADER_LEN;
	int r;

	if (wlen < 16 || wlen % 8 != 0 || wlen > KWP_INNER_MAX + 16) {
		return HSM_E_BLOB_FORMAT;
	}
	*out_rv = h->p11->C_UnwrapKey(s, &mech, crk->obj, (CK_BYTE_PTR)blob + HSM_BLOB_HEADER_LEN,
				      wlen, t, sizeof(t) / sizeof(t[0]), &obj);
	if (*out_rv == CKR_GENERAL_ERROR || *out_rv == CKR_WRAPPED_KEY_INVALID ||
	    *out_rv == CKR_ENCRYPTED_DATA_INVALID) {
		hsm_log(h, HSM_LOG_WARNING, "AES-KWP unwrap: blob does not authenticate (%s)",
			hsm_rv_name(*out_rv));
		return HSM_E_AUTH;
	}
	if (*out_rv != CKR_OK) {
		return hsm_ck_fail(h, "C_UnwrapKey(AES-KWP)", *out_rv);
	}
	if ((r = kwp_read(h, s, obj, &inner, out_rv)) == 0) {
		r = kwp_split(inner, uid, uid_len, out_key);
	}
	(void)h->p11->C_DestroyObject(s, obj);
	hsm_secret_free(inner);
	return r;
}
