/*
 * Wrapping managed-object key material under the active CRK, inside the token.
 *
 * GCM blob (format 1, algorithm 1): header | IV | ciphertext | tag, where the
 * header is u8 format | u8 algorithm | u32 CRK version and the AAD is
 * header | u32 uid_len | uid. The AAD binds a blob to its object and its CRK
 * version, so a blob copied to another record, or relabelled to another
 * version, fails authentication (ARCHITECTURE.md, "Key hierarchy"). The IV is
 * 96 random bits from the token (NIST SP 800-38D §8.2.2); rotate the CRK well
 * before 2^32 wraps under one version.
 */
#include "hsm_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GCM_OVERHEAD (HSM_BLOB_HEADER_LEN + HSM_GCM_IV_LEN + HSM_GCM_TAG_LEN)
#define AAD_MAX	     (HSM_BLOB_HEADER_LEN + 4 + HSM_MAX_UID_LEN)

void hsm_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t hsm_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void header_put(uint8_t out[static HSM_BLOB_HEADER_LEN], uint8_t alg, uint32_t version)
{
	out[0] = HSM_BLOB_FORMAT;
	out[1] = alg;
	hsm_put_u32(out + 2, version);
}

static int header_get(const uint8_t *blob, size_t blob_len, uint8_t *out_alg, uint32_t *out_version)
{
	if (blob == NULL || blob_len < HSM_BLOB_HEADER_LEN || blob[0] != HSM_BLOB_FORMAT ||
	    (blob[1] != HSM_ALG_GCM && blob[1] != HSM_ALG_KWP)) {
		return HSM_E_BLOB_FORMAT;
	}
	*out_alg = blob[1];
	*out_version = hsm_get_u32(blob + 2);
	return 0;
}

/* AAD = header | u32 uid_len | uid; aad has AAD_MAX bytes. Returns its length. */
static size_t aad_build(uint8_t *aad, const uint8_t *header, const uint8_t *uid, size_t uid_len)
{
	memcpy(aad, header, HSM_BLOB_HEADER_LEN);
	hsm_put_u32(aad + HSM_BLOB_HEADER_LEN, (uint32_t)uid_len);
	memcpy(aad + HSM_BLOB_HEADER_LEN + 4, uid, uid_len);
	return HSM_BLOB_HEADER_LEN + 4 + uid_len;
}

static void gcm_params(CK_GCM_PARAMS *gp, const uint8_t *iv, const uint8_t *aad, size_t aad_len)
{
	*gp = (CK_GCM_PARAMS){
	    .pIv = (CK_BYTE_PTR)iv,
	    .ulIvLen = HSM_GCM_IV_LEN,
	    .ulIvBits = (CK_ULONG)HSM_GCM_IV_LEN * 8,
	    .pAAD = (CK_BYTE_PTR)aad,
	    .ulAADLen = aad_len,
	    .ulTagBits = (CK_ULONG)HSM_GCM_TAG_LEN * 8,
	};
}

/* out = IV | ciphertext | tag: in_len + HSM_GCM_IV_LEN + HSM_GCM_TAG_LEN bytes. */
int hsm_gcm_encrypt(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const uint8_t *aad,
		    size_t aad_len, const uint8_t *in, size_t in_len,
		    uint8_t out[static HSM_GCM_IV_LEN], CK_RV *out_rv)
{
	CK_GCM_PARAMS gp;
	CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_ULONG len = in_len + HSM_GCM_TAG_LEN;

	if ((*out_rv = h->p11->C_GenerateRandom(s, out, HSM_GCM_IV_LEN)) != CKR_OK) {
		return hsm_ck_fail(h, "C_GenerateRandom", *out_rv);
	}
	gcm_params(&gp, out, aad, aad_len);
	if ((*out_rv = h->p11->C_EncryptInit(s, &mech, key)) != CKR_OK) {
		return hsm_ck_fail(h, "C_EncryptInit(AES-GCM)", *out_rv);
	}
	*out_rv = h->p11->C_Encrypt(s, (CK_BYTE_PTR)in, in_len, out + HSM_GCM_IV_LEN, &len);
	if (*out_rv != CKR_OK) {
		return hsm_ck_fail(h, "C_Encrypt(AES-GCM)", *out_rv);
	}
	return len == in_len + HSM_GCM_TAG_LEN ? 0 : HSM_E_DEVICE;
}

/*
 * Decrypts IV | ciphertext | tag into out, which has room for in_len - IV
 * bytes: SoftHSM 2.6 wants room for the tag too. A tag
 * mismatch is HSM_E_AUTH; SoftHSM reports it as CKR_GENERAL_ERROR, so that
 * code is read as "does not authenticate" here, not as a device fault.
 */
static int gcm_decrypt(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const uint8_t *aad,
		       size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out,
		       CK_RV *out_rv)
{
	const size_t out_len = in_len - HSM_GCM_IV_LEN - HSM_GCM_TAG_LEN;
	CK_GCM_PARAMS gp;
	CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_ULONG len = in_len - HSM_GCM_IV_LEN;

	gcm_params(&gp, in, aad, aad_len);
	if ((*out_rv = h->p11->C_DecryptInit(s, &mech, key)) != CKR_OK) {
		return hsm_ck_fail(h, "C_DecryptInit(AES-GCM)", *out_rv);
	}
	*out_rv = h->p11->C_Decrypt(s, (CK_BYTE_PTR)in + HSM_GCM_IV_LEN, in_len - HSM_GCM_IV_LEN,
				    out, &len);
	if (*out_rv == CKR_GENERAL_ERROR || *out_rv == CKR_ENCRYPTED_DATA_INVALID) {
		hsm_log(h, HSM_LOG_WARNING, "AES-GCM unwrap: blob does not authenticate (%s)",
			hsm_rv_name(*out_rv));
		return HSM_E_AUTH;
	}
	if (*out_rv != CKR_OK) {
		return hsm_ck_fail(h, "C_Decrypt(AES-GCM)", *out_rv);
	}
	return len == out_len ? 0 : HSM_E_AUTH;
}

static int gcm_wrap(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_crk *crk,
		    const uint8_t *uid, size_t uid_len, const uint8_t *key, size_t key_len,
		    uint8_t **out_blob, size_t *out_blob_len, CK_RV *out_rv)
{
	uint8_t aad[AAD_MAX];
	const size_t blob_len = key_len + GCM_OVERHEAD;
	uint8_t *blob = malloc(blob_len);
	size_t aad_len;
	int r;

	if (blob == NULL) {
		return HSM_E_NOMEM;
	}
	header_put(blob, HSM_ALG_GCM, crk->version);
	aad_len = aad_build(aad, blob, uid, uid_len);
	if ((r = hsm_gcm_encrypt(h, s, crk->obj, aad, aad_len, key, key_len,
				 blob + HSM_BLOB_HEADER_LEN, out_rv)) != 0) {
		free(blob);
		return r;
	}
	*out_blob = blob;
	*out_blob_len = blob_len;
	return 0;
}

static int gcm_unwrap(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_crk *crk,
		      const uint8_t *uid, size_t uid_len, const uint8_t *blob, size_t blob_len,
		      struct hsm_secret **out_key, CK_RV *out_rv)
{
	uint8_t aad[AAD_MAX];
	struct hsm_secret *key = NULL;
	size_t aad_len;
	int r;

	if (blob_len <= GCM_OVERHEAD || blob_len - GCM_OVERHEAD > HSM_MAX_KEY_LEN) {
		return HSM_E_BLOB_FORMAT;
	}
	if ((r = hsm_secret_new(blob_len - GCM_OVERHEAD + HSM_GCM_TAG_LEN, &key)) != 0) {
		return r;
	}
	aad_len = aad_build(aad, blob, uid, uid_len);
	if ((r = gcm_decrypt(h, s, crk->obj, aad, aad_len, blob + HSM_BLOB_HEADER_LEN,
			     blob_len - HSM_BLOB_HEADER_LEN, hsm_secret_data(key), out_rv)) != 0) {
		hsm_secret_free(key);
		return r;
	}
	hsm_secret_shrink(key, blob_len - GCM_OVERHEAD);
	*out_key = key;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Reports a token call's duration to the caller's metrics, if it asked. */
static void observe_since(struct hsm *h, uint64_t start)
{
	if (h->observe != NULL) {
		h->observe(h->observe_arg, now_ns() - start);
	}
}

static bool uid_ok(const uint8_t *uid, size_t uid_len)
{
	return uid != NULL && uid_len > 0 && uid_len <= HSM_MAX_UID_LEN;
}

/*
 * A wrap or an unwrap as a call (call.c): its own copies of the UID and the
 * input, since the request may stop waiting while a runner still reads them.
 */
struct wrap_call {
	struct hsm_call call; /* first: call.c hands back &call */
	uint8_t uid[HSM_MAX_UID_LEN];
	size_t uid_len;
	struct hsm_secret *key; /* wrap's input, unwrap's result */
	uint8_t *blob;		/* unwrap's input, wrap's result */
	size_t blob_len;
	uint32_t version; /* unwrap: the blob's CRK version and algorithm */
	uint8_t alg;
};

static void wrap_call_free(struct hsm_call *c)
{
	struct wrap_call *w = (struct wrap_call *)c;

	hsm_secret_free(w->key);
	free(w->blob);
	free(w);
}

static int wrap_call_new(const uint8_t *uid, size_t uid_len, struct wrap_call **out)
{
	struct wrap_call *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		return HSM_E_NOMEM;
	}
	memcpy(w->uid, uid, uid_len);
	w->uid_len = uid_len;
	w->call.drop = wrap_call_free;
	*out = w;
	return 0;
}

static int wrap_fn(struct hsm *h, CK_SESSION_HANDLE s, struct hsm_call *c, CK_RV *out_rv)
{
	struct wrap_call *w = (struct wrap_call *)c;
	const struct hsm_crk *crk = hsm_crk_newest(h);
	const uint8_t *key = hsm_secret_data(w->key);
	size_t key_len = hsm_secret_len(w->key);

	if (crk == NULL) {
		return HSM_E_CRK_NOT_FOUND;
	}
	if (h->wrap_mode == HSM_WRAP_KWP) {
		return hsm_kwp_wrap(h, s, crk, w->uid, w->uid_len, key, key_len, &w->blob,
				    &w->blob_len, out_rv);
	}
	return gcm_wrap(h, s, crk, w->uid, w->uid_len, key, key_len, &w->blob, &w->blob_len,
			out_rv);
}

static int unwrap_fn(struct hsm *h, CK_SESSION_HANDLE s, struct hsm_call *c, CK_RV *out_rv)
{
	struct wrap_call *w = (struct wrap_call *)c;
	const struct hsm_crk *crk = hsm_crk_find(h, w->version);

	if (crk == NULL) {
		hsm_log(h, HSM_LOG_ERROR, "unwrap: blob names CRK version %u, not in the token",
			(unsigned)w->version);
		return HSM_E_CRK_NOT_FOUND;
	}
	if (w->alg == HSM_ALG_KWP) {
		return hsm_kwp_unwrap(h, s, crk, w->uid, w->uid_len, w->blob, w->blob_len, &w->key,
				      out_rv);
	}
	return gcm_unwrap(h, s, crk, w->uid, w->uid_len, w->blob, w->blob_len, &w->key, out_rv);
}

int hsm_wrap(struct hsm *h, const uint8_t *uid, size_t uid_len, const uint8_t *key, size_t key_len,
	     uint8_t **out_blob, size_t *out_blob_len)
{
	struct wrap_call *w = NULL;
	uint64_t start = now_ns();
	int r;

	if (h == NULL || !uid_ok(uid, uid_len) || key == NULL || key_len == 0 ||
	    key_len > HSM_MAX_KEY_LEN || out_blob == NULL || out_blob_len == NULL) {
		return HSM_E_INVAL;
	}
	*out_blob = NULL;
	*out_blob_len = 0;
	if ((r = wrap_call_new(uid, uid_len, &w)) != 0 ||
	    (r = hsm_secret_new(key_len, &w->key)) != 0) {
		goto out;
	}
	memcpy(hsm_secret_data(w->key), key, key_len);
	w->call.fn = wrap_fn;
	if ((r = hsm_call_run(h, &w->call)) == HSM_E_TIMEOUT) {
		return r; /* w is the runner's now */
	}
	if (r == 0) {
		*out_blob = w->blob;
		*out_blob_len = w->blob_len;
		w->blob = NULL;
	}
	observe_since(h, start);
out:
	if (w != NULL) {
		wrap_call_free(&w->call);
	}
	return r;
}

int hsm_unwrap(struct hsm *h, const uint8_t *uid, size_t uid_len, const uint8_t *blob,
	       size_t blob_len, struct hsm_secret **out_key)
{
	struct wrap_call *w = NULL;
	uint64_t start = now_ns();
	int r;

	if (h == NULL || !uid_ok(uid, uid_len) || out_key == NULL) {
		return HSM_E_INVAL;
	}
	*out_key = NULL;
	if ((r = wrap_call_new(uid, uid_len, &w)) != 0 ||
	    (r = header_get(blob, blob_len, &w->alg, &w->version)) != 0) {
		goto out;
	}
	if ((w->blob = malloc(blob_len)) == NULL) {
		r = HSM_E_NOMEM;
		goto out;
	}
	memcpy(w->blob, blob, blob_len);
	w->blob_len = blob_len;
	w->call.fn = unwrap_fn;
	if ((r = hsm_call_run(h, &w->call)) == HSM_E_TIMEOUT) {
		return r; /* w is the runner's now */
	}
	if (r == 0) {
		*out_key = w->key;
		w->key = NULL;
	}
	observe_since(h, start);
out:
	if (w != NULL) {
		wrap_call_free(&w->call);
	}
	return r;
}

int hsm_blob_crk_version(const uint8_t *blob, size_t blob_len, uint32_t *out_version)
{
	uint8_t alg;

	if (out_version == NULL) {
		return HSM_E_INVAL;
	}
	return header_get(blob, blob_len, &alg, out_version);
}

int hsm_rewrap(struct hsm *h, const uint8_t *uid, size_t uid_len, const uint8_t *blob,
	       size_t blob_len, uint8_t **out_blob, size_t *out_blob_len)
{
	struct hsm_secret *key = NULL;
	int r;

	if ((r = hsm_unwrap(h, uid, uid_len, blob, blob_len, &key)) == 0) {
		r = hsm_wrap(h, uid, uid_len, hsm_secret_data(key), hsm_secret_len(key), out_blob,
			     out_blob_len);
	}
	hsm_secret_free(key);
	return r;
}

static int raw_loop(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_crk *crk,
		    const uint8_t *uid, size_t uid_len, const uint8_t *blob, size_t blob_len,
		    uint64_t iterations, CK_RV *out_rv)
{
	uint8_t aad[AAD_MAX];
	struct hsm_secret *out = NULL;
	size_t aad_len = aad_build(aad, blob, uid, uid_len);
	int r;

	if ((r = hsm_secret_new(blob_len - GCM_OVERHEAD + HSM_GCM_TAG_LEN, &out)) != 0) {
		return r;
	}
	for (uint64_t i = 0; i < iterations && r == 0; i++) {
		r = gcm_decrypt(h, s, crk->obj, aad, aad_len, blob + HSM_BLOB_HEADER_LEN,
				blob_len - HSM_BLOB_HEADER_LEN, hsm_secret_data(out), out_rv);
	}
	hsm_secret_free(out);
	return r;
}

int hsm_diag_raw_decrypt(struct hsm *h, const uint8_t *uid, size_t uid_len, const uint8_t *blob,
			 size_t blob_len, uint64_t iterations)
{
	const struct hsm_crk *crk;
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	uint32_t version;
	uint8_t alg;
	int r;

	if (h == NULL || !uid_ok(uid, uid_len)) {
		return HSM_E_INVAL;
	}
	if ((r = header_get(blob, blob_len, &alg, &version)) != 0) {
		return r;
	}
	if (alg != HSM_ALG_GCM || blob_len <= GCM_OVERHEAD ||
	    blob_len - GCM_OVERHEAD > HSM_MAX_KEY_LEN) {
		return HSM_E_BLOB_FORMAT;
	}
	if ((r = hsm_op_begin(h, &s)) != 0) {
		return r;
	}
	if ((crk = hsm_crk_find(h, version)) == NULL) {
		r = HSM_E_CRK_NOT_FOUND;
	} else {
		r = raw_loop(h, s, crk, uid, uid_len, blob, blob_len, iterations, &rv);
	}
	hsm_op_end(h, s, rv);
	return r;
}
