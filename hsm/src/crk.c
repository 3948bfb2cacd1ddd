/*
 * Customer root key versions. Version N is the AES-256 secret key object
 * labelled "keel-crk-v<N>" (ARCHITECTURE.md, "Key hierarchy"); the newest is
 * active. The table in struct hsm is rebuilt from the token at open, after a
 * recovery and on hsm_crk_rescan, so versions made elsewhere are found.
 */
#include "hsm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CRK_LABEL_PREFIX "keel-crk-v"
#define CRK_STAGED_LABEL "keel-crk-staged"
#define CRK_FIND_BATCH	 32

/* "keel-crk-v<N>", N decimal without leading zero, 1..UINT32_MAX; the
 * staged key's label is HSM_CRK_STAGED. */
static bool crk_label_parse(const char *label, size_t len, uint32_t *out_version)
{
	const size_t plen = sizeof(CRK_LABEL_PREFIX) - 1;
	uint64_t v = 0;

	if (len == sizeof(CRK_STAGED_LABEL) - 1 && memcmp(label, CRK_STAGED_LABEL, len) == 0) {
		*out_version = HSM_CRK_STAGED;
		return true;
	}
	if (len <= plen || len > plen + 10 || memcmp(label, CRK_LABEL_PREFIX, plen) != 0 ||
	    label[plen] == '0') {
		return false;
	}
	for (size_t i = plen; i < len; i++) {
		if (label[i] < '0' || label[i] > '9') {
			return false;
		}
		v = v * 10 + (uint64_t)(label[i] - '0');
	}
	if (v > UINT32_MAX) {
		return false;
	}
	*out_version = (uint32_t)v;
	return true;
}

/*
 * The creation time lives in CKA_ID as "keel-crk-v<N>@YYYY-MM-DDTHH:MM:SSZ".
 * Not CKA_START_DATE: SoftHSM 2.6 stores that one unencrypted on private
 * objects and then fails C_GetAttributeValue trying to decrypt it.
 */
static void crk_created(const char *id, size_t len, char out[static HSM_CRK_CREATED_LEN])
{
	const char *at = memchr(id, '@', len);
	size_t n;

	out[0] = '\0';
	if (at == NULL) {
		return;
	}
	n = len - (size_t)(at + 1 - id);
	if (n == HSM_CRK_CREATED_LEN - 1) {
		memcpy(out, at + 1, n);
		out[n] = '\0';
	}
}

/* Reads label, id and extractability of one key; false if not a CRK. */
static bool crk_read(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, struct hsm_crk *out)
{
	char label[64], id[64];
	CK_BBOOL extractable = CK_FALSE;
	CK_ATTRIBUTE attrs[] = {
	    {CKA_LABEL, label, sizeof(label)},
	    {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
	    {CKA_ID, id, sizeof(id)},
	};
	CK_RV rv = h->p11->C_GetAttributeValue(s, obj, attrs, 3);

	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
		hsm_ck_fail(h, "C_GetAttributeValue(CRK)", rv);
		return false;
	}
	if (attrs[0].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
	    !crk_label_parse(label, attrs[0].ulValueLen, &out->version)) {
		return false;
	}
	out->obj = obj;
	out->extractable = extractable == CK_TRUE;
	if (attrs[2].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
		crk_created(id, attrs[2].ulValueLen, out->created);
	}
	return true;
}

static int crk_cmp(const void *a, const void *b)
{
	const struct hsm_crk *x = a, *y = b;

	return x->version < y->version ? -1 : x->version > y->version;
}

static int crk_append(struct hsm *h, const struct hsm_crk *c, size_t *cap)
{
	struct hsm_crk *n;

	if (h->num_crks == *cap) {
		*cap = *cap != 0 ? *cap * 2 : 4;
		if ((n = reallocarray(h->crks, *cap, sizeof(*n))) == NULL) {
			return HSM_E_NOMEM;
		}
		h->crks = n;
	}
	h->crks[h->num_crks++] = *c;
	return 0;
}

/* Drops a second object claiming a version already seen: ambiguity is logged. */
static void crk_dedup(struct hsm *h)
{
	size_t j = 0;

	for (size_t i = 0; i < h->num_crks; i++) {
		if (j > 0 && h->crks[j - 1].version == h->crks[i].version) {
			hsm_log(h, HSM_LOG_ERROR, "two keys labelled keel-crk-v%u; using the first",
				(unsigned)h->crks[i].version);
			continue;
		}
		h->crks[j++] = h->crks[i];
	}
	h->num_crks = j;
}

static int crk_find_all(struct hsm *h, CK_SESSION_HANDLE s, size_t *cap)
{
	CK_OBJECT_HANDLE objs[CRK_FIND_BATCH];
	CK_ULONG n = 0;
	struct hsm_crk c;
	CK_RV rv;
	int r = 0;

	do {
		if ((rv = h->p11->C_FindObjects(s, objs, CRK_FIND_BATCH, &n)) != CKR_OK) {
			return hsm_ck_fail(h, "C_FindObjects", rv);
		}
		for (CK_ULONG i = 0; i < n && r == 0; i++) {
			memset(&c, 0, sizeof(c));
			if (!crk_read(h, s, objs[i], &c)) {
				continue;
			}
			if (c.version != HSM_CRK_STAGED) {
				r = crk_append(h, &c, cap);
			} else if (!h->has_staged) {
				h->staged = c;
				h->has_staged = true;
			} else {
				hsm_log(h, HSM_LOG_ERROR, "two staged CRK keys; using the first");
			}
		}
	} while (n == CRK_FIND_BATCH && r == 0);
	return r;
}

int hsm_crk_scan(struct hsm *h, CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_TOKEN, &yes, sizeof(yes)},
	};
	size_t cap = 0;
	CK_RV rv;
	int r;

	free(h->crks);
	h->crks = NULL;
	h->num_crks = 0;
	h->has_staged = false;
	if ((rv = h->p11->C_FindObjectsInit(s, tmpl, 3)) != CKR_OK) {
		return hsm_ck_fail(h, "C_FindObjectsInit", rv);
	}
	r = crk_find_all(h, s, &cap);
	(void)h->p11->C_FindObjectsFinal(s);
	if (r == 0 && h->num_crks > 0) {
		qsort(h->crks, h->num_crks, sizeof(*h->crks), crk_cmp);
		crk_dedup(h);
	}
	return r;
}

const struct hsm_crk *hsm_crk_find(const struct hsm *h, uint32_t version)
{
	size_t lo = 0, hi = h->num_crks, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (h->crks[mid].version == version) {
			return &h->crks[mid];
		}
		if (h->crks[mid].version < version) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}

const struct hsm_crk *hsm_crk_lookup(const struct hsm *h, uint32_t version)
{
	if (version == HSM_CRK_STAGED) {
		return h->has_staged ? &h->staged : NULL;
	}
	return hsm_crk_find(h, version);
}

const struct hsm_crk *hsm_crk_newest(const struct hsm *h)
{
	return h->num_crks > 0 ? &h->crks[h->num_crks - 1] : NULL;
}

/* CKA_LABEL of a version (HSM_CRK_STAGED: the staged key). Returns its length. */
static int crk_label(char *out, size_t out_len, uint32_t version)
{
	if (version == HSM_CRK_STAGED) {
		return snprintf(out, out_len, CRK_STAGED_LABEL);
	}
	return snprintf(out, out_len, CRK_LABEL_PREFIX "%u", (unsigned)version);
}

/* CKA_ID of a new version: label@creation time (UTC). Returns its length. */
static int crk_id(char *out, size_t out_len, uint32_t version)
{
	char when[HSM_CRK_CREATED_LEN] = "", label[32];
	struct tm tm;
	time_t now = time(NULL);

	if (gmtime_r(&now, &tm) != NULL) {
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	(void)crk_label(label, sizeof(label), version);
	return snprintf(out, out_len, "%s@%s", label, when);
}

/*
 * Creates the next version: C_GenerateKey when key is NULL, else C_CreateObject
 * with the given material. Runs under the write lock with a fresh scan, so two
 * callers in this process cannot pick the same number.
 */
static int crk_create(struct hsm *h, CK_SESSION_HANDLE s, const uint8_t *key, bool extractable,
		      uint32_t version, CK_RV *out_rv)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG klen = HSM_CRK_KEY_LEN;
	CK_BBOOL yes = CK_TRUE, ext = extractable ? CK_TRUE : CK_FALSE;
	CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE obj;
	char label[32], id[64];
	int llen = crk_label(label, sizeof(label), version);
	int idlen = crk_id(id, sizeof(id), version);
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, &ext, sizeof(ext)},
	    {CKA_ENCRYPT, &yes, sizeof(yes)},
	    {CKA_DECRYPT, &yes, sizeof(yes)},
	    {CKA_WRAP, &yes, sizeof(yes)},
	    {CKA_UNWRAP, &yes, sizeof(yes)},
	    {CKA_LABEL, label, (CK_ULONG)llen},
	    {CKA_ID, id, (CK_ULONG)idlen},
	    /* last: the value when importing, the length when generating */
	    {CKA_VALUE_LEN, &klen, sizeof(klen)},
	};
	const CK_ULONG n = sizeof(t) / sizeof(t[0]);

	if (key == NULL) {
		*out_rv = h->p11->C_GenerateKey(s, &mech, t, n, &obj);
		return *out_rv == CKR_OK ? 0 : hsm_ck_fail(h, "C_GenerateKey", *out_rv);
	}
	t[n - 1] = (CK_ATTRIBUTE){CKA_VALUE, (void *)key, HSM_CRK_KEY_LEN};
	*out_rv = h->p11->C_CreateObject(s, t, n, &obj);
	return *out_rv == CKR_OK ? 0 : hsm_ck_fail(h, "C_CreateObject", *out_rv);
}

/* The number after the newest version, after a fresh scan under the write lock. */
static int crk_next_number(struct hsm *h, CK_SESSION_HANDLE s, uint32_t *out_v)
{
	const struct hsm_crk *newest;
	int r;

	if ((r = hsm_crk_scan(h, s)) != 0) {
		return r;
	}
	newest = hsm_crk_newest(h);
	if (newest != NULL && newest->version == UINT32_MAX) {
		return HSM_E_RANGE;
	}
	*out_v = newest != NULL ? newest->version + 1 : 1;
	return 0;
}

static int crk_next(struct hsm *h, const uint8_t *key, unsigned flags, uint32_t *out_version)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	uint32_t v = 0;
	int r;

	if (h == NULL || (flags & ~HSM_CRK_EXTRACTABLE) != 0) {
		return HSM_E_INVAL;
	}
	if ((r = hsm_excl_begin(h, &s)) != 0) {
		return r;
	}
	if ((r = crk_next_number(h, s, &v)) != 0) {
		goto out;
	}
	if ((r = crk_create(h, s, key, (flags & HSM_CRK_EXTRACTABLE) != 0, v, &rv)) != 0 ||
	    (r = hsm_crk_scan(h, s)) != 0) {
		goto out;
	}
	hsm_log(h, HSM_LOG_INFO, "CRK version %u %s", (unsigned)v,
		key != NULL ? "imported" : "generated");
	if (out_version != NULL) {
		*out_version = v;
	}
out:
	hsm_excl_end(h, rv);
	return r;
}

int hsm_crk_generate(struct hsm *h, unsigned flags, uint32_t *out_version)
{
	return crk_next(h, NULL, flags, out_version);
}

int hsm_crk_import(struct hsm *h, const uint8_t key[static HSM_CRK_KEY_LEN], unsigned flags,
		   uint32_t *out_version)
{
	if (key == NULL) {
		return HSM_E_INVAL;
	}
	return crk_next(h, key, flags, out_version);
}

int hsm_crk_active(struct hsm *h, uint32_t *out_version)
{
	const struct hsm_crk *c;
	int r = HSM_E_CRK_NOT_FOUND;

	if (h == NULL || out_version == NULL) {
		return HSM_E_INVAL;
	}
	pthread_rwlock_rdlock(&h->lock);
	if ((c = hsm_crk_newest(h)) != NULL) {
		*out_version = c->version;
		r = 0;
	}
	pthread_rwlock_unlock(&h->lock);
	return r;
}

int hsm_crk_rescan(struct hsm *h)
{
	CK_SESSION_HANDLE s;
	int r;

	if (h == NULL) {
		return HSM_E_INVAL;
	}
	if ((r = hsm_excl_begin(h, &s)) != 0) {
		return r;
	}
	r = hsm_crk_scan(h, s);
	hsm_excl_end(h, CKR_OK);
	return r;
}

int hsm_crk_destroy(struct hsm *h, uint32_t version)
{
	const struct hsm_crk *c;
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	int r;

	if (h == NULL) {
		return HSM_E_INVAL;
	}
	if ((r = hsm_excl_begin(h, &s)) != 0) {
		return r;
	}
	if ((c = hsm_crk_lookup(h, version)) == NULL) {
		r = HSM_E_CRK_NOT_FOUND;
		goto out;
	}
	if ((rv = h->p11->C_DestroyObject(s, c->obj)) != CKR_OK) {
		r = hsm_ck_fail(h, "C_DestroyObject", rv);
		goto out;
	}
	if (version == HSM_CRK_STAGED) {
		hsm_log(h, HSM_LOG_INFO, "staged CRK discarded");
	} else {
		hsm_log(h, HSM_LOG_WARNING, "CRK version %u destroyed", (unsigned)version);
	}
	r = hsm_crk_scan(h, s);
out:
	hsm_excl_end(h, rv);
	return r;
}

int hsm_crk_stage(struct hsm *h, unsigned flags)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	int r;

	if (h == NULL || (flags & ~HSM_CRK_EXTRACTABLE) != 0) {
		return HSM_E_INVAL;
	}
	if ((r = hsm_excl_begin(h, &s)) != 0) {
		return r;
	}
	if ((r = hsm_crk_scan(h, s)) == 0 && h->has_staged) {
		r = HSM_E_CRK_EXISTS;
	}
	if (r == 0 &&
	    (r = crk_create(h, s, NULL, (flags & HSM_CRK_EXTRACTABLE) != 0, HSM_CRK_STAGED, &rv)) ==
		0 &&
	    (r = hsm_crk_scan(h, s)) == 0) {
		hsm_log(h, HSM_LOG_INFO, "CRK staged (not yet a version)");
	}
	hsm_excl_end(h, rv);
	return r;
}

/* Relabels the staged key as version v (label and CKA_ID with the time now). */
static int crk_relabel(struct hsm *h, CK_SESSION_HANDLE s, uint32_t v, CK_RV *out_rv)
{
	char label[32], id[64];
	int llen = crk_label(label, sizeof(label), v), idlen = crk_id(id, sizeof(id), v);
	CK_ATTRIBUTE t[] = {
	    {CKA_LABEL, label, (CK_ULONG)llen},
	    {CKA_ID, id, (CK_ULONG)idlen},
	};

	*out_rv = h->p11->C_SetAttributeValue(s, h->staged.obj, t, 2);
	return *out_rv == CKR_OK ? 0 : hsm_ck_fail(h, "C_SetAttributeValue(CRK label)", *out_rv);
}

int hsm_crk_promote(struct hsm *h, uint32_t *out_version)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	uint32_t v = 0;
	int r;

	if (h == NULL) {
		return HSM_E_INVAL;
	}
	if ((r = hsm_excl_begin(h, &s)) != 0) {
		return r;
	}
	if ((r = crk_next_number(h, s, &v)) == 0) {
		r = h->has_staged ? crk_relabel(h, s, v, &rv) : HSM_E_CRK_NOT_FOUND;
	}
	if (r == 0 && (r = hsm_crk_scan(h, s)) == 0) {
		hsm_log(h, HSM_LOG_INFO, "CRK version %u promoted from the staged key",
			(unsigned)v);
		if (out_version != NULL) {
			*out_version = v;
		}
	}
	hsm_excl_end(h, rv);
	return r;
}

bool hsm_crk_has_staged(struct hsm *h)
{
	bool staged;

	if (h == NULL) {
		return false;
	}
	pthread_rwlock_rdlock(&h->lock);
	staged = h->has_staged;
	pthread_rwlock_unlock(&h->lock);
	return staged;
}
