/*
 * Backups: see backup.h for the file format and the restore design. OpenSSL
 * does the bulk AES-256-GCM here, in keeld, under a data key that exists in
 * plaintext only in locked memory (hsm_secret) and only while in use.
 */
#include "backup.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"

#define MAGIC	     "KEELBKP"
#define MAGIC_LEN    8
#define FIXED_LEN    40 /* magic .. wrapped key length */
#define IV_LEN	     12
#define TAG_LEN	     16
#define DATA_KEY_LEN 32
#define DATA_KEY_UID "keel-backup"

struct parsed {
	struct keel_backup_info info;
	const uint8_t *wrapped_key, *iv, *ct, *tag;
	size_t wrapped_key_len, ct_len, aad_len;
};

const char *keel_backup_strerror(int err)
{
	static const char *const msgs[] = {
	    [0] = "success",
	    [-KEEL_BACKUP_E_FORMAT] = "not a Keel backup, truncated, or of an unknown format",
	    [-KEEL_BACKUP_E_AUTH] = "the backup does not authenticate: it was damaged or altered",
	    [-KEEL_BACKUP_E_CRK] = "this token does not hold the CRK version the backup needs",
	    [-KEEL_BACKUP_E_OBJECT_CRK] =
		"objects in the backup are wrapped by a CRK version this token lacks",
	    [-KEEL_BACKUP_E_NOT_EMPTY] = "the store holds keys; restoring would replace them",
	    [-KEEL_BACKUP_E_HSM] = "the token failed",
	    [-KEEL_BACKUP_E_STORE] = "the store failed, or the database in the backup is unusable",
	    [-KEEL_BACKUP_E_NOMEM] = "out of memory",
	    [-KEEL_BACKUP_E_INVAL] = "invalid argument",
	};

	if (err > 0 || (size_t)-err >= sizeof(msgs) / sizeof(msgs[0])) {
		return "unknown backup error";
	}
	return msgs[-err];
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	}
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		v = v << 8 | (uint64_t)p[i];
	}
	return v;
}

static int hsm_to_backup(int err, const char *what)
{
	keel_err("backup: %s: %s", what, hsm_strerror(err));
	switch (err) {
	case HSM_E_CRK_NOT_FOUND:
		return KEEL_BACKUP_E_CRK;
	case HSM_E_AUTH:
	case HSM_E_BLOB_FORMAT:
		return KEEL_BACKUP_E_AUTH;
	case HSM_E_NOMEM:
		return KEEL_BACKUP_E_NOMEM;
	default:
		return KEEL_BACKUP_E_HSM;
	}
}

/*
 * AES-256-GCM over the concatenation of parts[0..num) into out (same total
 * length). Encrypting writes tag; decrypting checks it (KEEL_BACKUP_E_AUTH).
 */
static int gcm(bool encrypt, const uint8_t *key, const uint8_t *iv, const uint8_t *aad,
	       size_t aad_len, const uint8_t *const *parts, const size_t *lens, size_t num,
	       uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok;

	ok = c != NULL && aad_len <= INT_MAX &&
	     EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, encrypt) == 1 &&
	     EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) == 1;
	for (size_t i = 0; ok && i < num; i++) {
		ok = lens[i] <= INT_MAX &&
		     (lens[i] == 0 || EVP_CipherUpdate(c, out, &n, parts[i], (int)lens[i]) == 1);
		out += lens[i];
	}
	if (ok && !encrypt) {
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
	}
	ok = ok && EVP_CipherFinal_ex(c, out, &n) == 1;
	if (ok && encrypt) {
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
	}
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		return encrypt ? KEEL_BACKUP_E_NOMEM : KEEL_BACKUP_E_AUTH;
	}
	return 0;
}

/* A fresh data key, and its wrapping under the active CRK. */
static int make_data_key(struct hsm *h, struct hsm_secret **out_key, uint8_t **out_wrapped,
			 size_t *out_wrapped_len)
{
	struct hsm_secret *key = NULL;
	int err;

	if ((err = hsm_secret_new(DATA_KEY_LEN, &key)) != 0 ||
	    (err = hsm_random(h, hsm_secret_data(key), DATA_KEY_LEN)) != 0 ||
	    (err = hsm_wrap(h, (const uint8_t *)DATA_KEY_UID, strlen(DATA_KEY_UID),
			    hsm_secret_data(key), DATA_KEY_LEN, out_wrapped, out_wrapped_len)) !=
		0) {
		hsm_secret_free(key);
		return hsm_to_backup(err, "making the data key");
	}
	*out_key = key;
	return 0;
}

/* The header fields (up to the wrapped key) from |info|. */
static void write_fixed(uint8_t *p, const struct keel_backup_info *info, size_t wrapped_len)
{
	memset(p, 0, FIXED_LEN);
	memcpy(p, MAGIC, MAGIC_LEN);
	put_be(p + 8, KEEL_BACKUP_FORMAT, 2);
	put_be(p + 10, info->crk_version, 4);
	memcpy(p + 14, info->kcv, HSM_KCV_LEN);
	put_be(p + 18, (uint64_t)info->created, 8);
	put_be(p + 26, (uint64_t)info->objects, 8);
	put_be(p + 34, (uint32_t)info->schema_version, 4);
	put_be(p + 38, wrapped_len, 2);
}

/* Describes the image to back up: objects, schema, and the CRK wrapping the file. */
static int describe(struct hsm *h, const uint8_t *image, size_t image_len, int64_t now,
		    struct keel_backup_info *info)
{
	struct keel_store_image_info ii;
	int err;

	memset(info, 0, sizeof(*info));
	info->format = KEEL_BACKUP_FORMAT;
	info->created = now;
	if ((err = keel_store_image_inspect(image, image_len, &ii)) != 0) {
		return KEEL_BACKUP_E_STORE;
	}
	info->objects = ii.objects;
	info->schema_version = ii.schema_version;
	free(ii.counts);
	if ((err = hsm_crk_active(h, &info->crk_version)) != 0 ||
	    (err = hsm_crk_kcv(h, info->crk_version, info->kcv)) != 0) {
		return hsm_to_backup(err, "reading the active CRK");
	}
	return 0;
}

/* Lays out header, ciphertext and tag of a file whose pieces are known. */
static int seal(const struct keel_backup_info *info, const uint8_t *key, const uint8_t *wrapped,
		size_t wrapped_len, const uint8_t *iv, const uint8_t *const parts[3],
		const size_t lens[3], uint8_t **out_file, size_t *out_len)
{
	size_t ct_len = lens[0] + lens[1] + lens[2];
	size_t aad_len = FIXED_LEN + wrapped_len + IV_LEN + 8;
	size_t total = aad_len + ct_len + TAG_LEN;
	uint8_t *f;
	int err;

	if (ct_len < lens[2] || total < ct_len || wrapped_len > UINT16_MAX ||
	    (f = malloc(total)) == NULL) {
		return KEEL_BACKUP_E_NOMEM;
	}
	write_fixed(f, info, wrapped_len);
	memcpy(f + FIXED_LEN, wrapped, wrapped_len);
	memcpy(f + FIXED_LEN + wrapped_len, iv, IV_LEN);
	put_be(f + FIXED_LEN + wrapped_len + IV_LEN, ct_len, 8);
	if ((err = gcm(true, key, iv, f, aad_len, parts, lens, 3, f + aad_len,
		       f + aad_len + ct_len)) != 0) {
		free(f);
		return err;
	}
	*out_file = f;
	*out_len = total;
	return 0;
}

int keel_backup_create(struct hsm *h, struct keel_store *store, const char *config,
		       size_t config_len, int64_t now, uint8_t **out_file, size_t *out_len,
		       struct keel_backup_info *out_info)
{
	struct keel_backup_info info;
	struct hsm_secret *key = NULL;
	uint8_t *image = NULL, *wrapped = NULL, iv[IV_LEN], cfg_len[4];
	size_t image_len = 0, wrapped_len = 0;
	int err;

	if (config_len > UINT32_MAX || (config == NULL && config_len != 0)) {
		return KEEL_BACKUP_E_INVAL;
	}
	if ((err = keel_store_snapshot(store, &image, &image_len)) != 0) {
		keel_err("backup: snapshot: %s", keel_store_strerror(err));
		return KEEL_BACKUP_E_STORE;
	}
	if ((err = describe(h, image, image_len, now, &info)) == 0 &&
	    (err = make_data_key(h, &key, &wrapped, &wrapped_len)) == 0) {
		const uint8_t *const parts[3] = {cfg_len, (const uint8_t *)config, image};
		const size_t lens[3] = {4, config_len, image_len};

		put_be(cfg_len, config_len, 4);
		info.config_len = config_len;
		err = hsm_random(h, iv, sizeof(iv));
		err = err != 0 ? hsm_to_backup(err, "drawing the IV")
			       : seal(&info, hsm_secret_data(key), wrapped, wrapped_len, iv, parts,
				      lens, out_file, out_len);
	}
	hsm_secret_free(key);
	free(wrapped);
	free(image);
	if (err == 0 && out_info != NULL) {
		*out_info = info;
	}
	return err;
}

/* Splits a file into its fields; every length is checked against the file's. */
static int parse(const uint8_t *f, size_t len, struct parsed *p)
{
	size_t off;

	memset(p, 0, sizeof(*p));
	if (len < FIXED_LEN || memcmp(f, MAGIC, MAGIC_LEN) != 0) {
		return KEEL_BACKUP_E_FORMAT;
	}
	p->info.format = (uint32_t)get_be(f + 8, 2);
	p->info.crk_version = (uint32_t)get_be(f + 10, 4);
	memcpy(p->info.kcv, f + 14, HSM_KCV_LEN);
	p->info.created = (int64_t)get_be(f + 18, 8);
	p->info.objects = (int64_t)get_be(f + 26, 8);
	p->info.schema_version = (int32_t)get_be(f + 34, 4);
	p->wrapped_key_len = (size_t)get_be(f + 38, 2);
	if (p->info.format != KEEL_BACKUP_FORMAT || f[17] != 0) {
		return KEEL_BACKUP_E_FORMAT;
	}
	off = FIXED_LEN + p->wrapped_key_len;
	if (len - FIXED_LEN < p->wrapped_key_len + IV_LEN + 8 + TAG_LEN) {
		return KEEL_BACKUP_E_FORMAT;
	}
	p->wrapped_key = f + FIXED_LEN;
	p->iv = f + off;
	p->ct_len = (size_t)get_be(f + off + IV_LEN, 8);
	p->aad_len = off + IV_LEN + 8;
	if (p->ct_len != len - p->aad_len - TAG_LEN || p->ct_len < 4) {
		return KEEL_BACKUP_E_FORMAT; /* truncated, or trailing bytes */
	}
	p->ct = f + p->aad_len;
	p->tag = p->ct + p->ct_len;
	return 0;
}

int keel_backup_peek(const uint8_t *file, size_t len, struct keel_backup_info *out_info)
{
	struct parsed p;
	int err = parse(file, len, &p);

	if (err == 0) {
		*out_info = p.info;
	}
	return err;
}

/* The data key, after checking that this token's CRK is the one that wrapped it. */
static int open_data_key(struct hsm *h, const struct parsed *p, struct hsm_secret **out_key)
{
	uint8_t kcv[HSM_KCV_LEN];
	int err;

	if ((err = hsm_crk_kcv(h, p->info.crk_version, kcv)) != 0) {
		return hsm_to_backup(err, "the backup's CRK version");
	}
	if (CRYPTO_memcmp(kcv, p->info.kcv, HSM_KCV_LEN) != 0) {
		keel_err("backup: this token's CRK version %u has another check value than the "
			 "backup's",
			 p->info.crk_version);
		return KEEL_BACKUP_E_CRK;
	}
	if ((err = hsm_unwrap(h, (const uint8_t *)DATA_KEY_UID, strlen(DATA_KEY_UID),
			      p->wrapped_key, p->wrapped_key_len, out_key)) != 0) {
		return hsm_to_backup(err, "unwrapping the data key");
	}
	if (hsm_secret_len(*out_key) != DATA_KEY_LEN) {
		hsm_secret_free(*out_key);
		return KEEL_BACKUP_E_AUTH;
	}
	return 0;
}

/* Every CRK version the image's objects need is in the token. */
static int check_object_crks(struct hsm *h, const uint8_t *image, size_t image_len,
			     const struct keel_backup_info *info)
{
	struct keel_store_image_info ii;
	uint8_t kcv[HSM_KCV_LEN];
	int err = 0;

	if (keel_store_image_inspect(image, image_len, &ii) != 0) {
		return KEEL_BACKUP_E_STORE;
	}
	if (ii.objects != info->objects || ii.schema_version != info->schema_version) {
		err = KEEL_BACKUP_E_FORMAT;
	}
	for (size_t i = 0; err == 0 && i < ii.num_counts; i++) {
		if (ii.counts[i].version != 0 && hsm_crk_kcv(h, ii.counts[i].version, kcv) != 0) {
			keel_err("backup: %lld objects need CRK version %u, which this token lacks",
				 (long long)ii.counts[i].objects, ii.counts[i].version);
			err = KEEL_BACKUP_E_OBJECT_CRK;
		}
	}
	free(ii.counts);
	return err;
}

/*
 * Authenticates |f| and checks what it holds; *out_plain (malloc'd) holds
 * u32 config length | config | image, with *out_image pointing into it.
 */
static int open_file(struct hsm *h, const uint8_t *f, size_t len, struct keel_backup_info *info,
		     uint8_t **out_plain, const uint8_t **out_image, size_t *out_image_len)
{
	struct hsm_secret *key = NULL;
	struct parsed p;
	uint8_t *plain = NULL;
	int err;

	if ((err = parse(f, len, &p)) != 0 || (err = open_data_key(h, &p, &key)) != 0) {
		return err;
	}
	if ((plain = malloc(p.ct_len)) == NULL) {
		hsm_secret_free(key);
		return KEEL_BACKUP_E_NOMEM;
	}
	err = gcm(false, hsm_secret_data(key), p.iv, f, p.aad_len, &p.ct, &p.ct_len, 1, plain,
		  (uint8_t *)(uintptr_t)p.tag);
	hsm_secret_free(key);
	p.info.config_len = err == 0 ? (size_t)get_be(plain, 4) : 0;
	if (err == 0 && p.info.config_len > p.ct_len - 4) {
		err = KEEL_BACKUP_E_FORMAT;
	}
	if (err == 0) {
		*out_image = plain + 4 + p.info.config_len;
		*out_image_len = p.ct_len - 4 - p.info.config_len;
		err = check_object_crks(h, *out_image, *out_image_len, &p.info);
	}
	if (err != 0) {
		free(plain);
		return err;
	}
	*info = p.info;
	*out_plain = plain;
	return 0;
}

int keel_backup_verify(struct hsm *h, const uint8_t *file, size_t len,
		       struct keel_backup_info *out_info)
{
	struct keel_backup_info info;
	const uint8_t *image;
	uint8_t *plain = NULL;
	size_t image_len;
	int err = open_file(h, file, len, &info, &plain, &image, &image_len);

	free(plain);
	if (err == 0 && out_info != NULL) {
		*out_info = info;
	}
	return err;
}

static int copy_config(const uint8_t *plain, size_t len, char **out_config)
{
	if ((*out_config = malloc(len + 1)) == NULL) {
		return KEEL_BACKUP_E_NOMEM;
	}
	memcpy(*out_config, plain + 4, len);
	(*out_config)[len] = '\0';
	return 0;
}

int keel_backup_restore(struct hsm *h, struct keel_store *store, const uint8_t *file, size_t len,
			bool force, char **out_config, struct keel_backup_info *out_info)
{
	struct keel_backup_info info;
	const uint8_t *image;
	uint8_t *plain = NULL;
	size_t image_len;
	int err;

	if ((err = open_file(h, file, len, &info, &plain, &image, &image_len)) != 0) {
		return err;
	}
	if ((err = keel_store_restore(store, image, image_len, !force)) == KEEL_STORE_E_EXISTS) {
		err = KEEL_BACKUP_E_NOT_EMPTY;
	} else if (err != 0) {
		keel_err("backup: restoring the store: %s", keel_store_strerror(err));
		err = KEEL_BACKUP_E_STORE;
	}
	if (err == 0 && out_config != NULL) {
		err = copy_config(plain, info.config_len, out_config);
	}
	free(plain);
	if (err == 0 && out_info != NULL) {
		*out_info = info;
	}
	return err;
}
