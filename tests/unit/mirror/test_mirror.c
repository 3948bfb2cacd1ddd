/*
 * appliance/mirror against the Key Protect emulator, a real HTTPS process
 * (tests/keyprotect-emulator): every operation, the error map, retries with
 * backoff and Retry-After (the waits are recorded, not slept), IAM token
 * refresh, secure import with OpenSSL playing the HSM's part, and no secret
 * in the log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <keel/mirror.h>

#include "kpemu_fixture.h"
#include "log.h"

#define MAX_WAITS 16

struct fixture {
	struct kpemu emu;
	struct mirror *m;
	uint32_t waits[MAX_WAITS]; /* what the client asked to sleep, in order */
	size_t num_waits;
};

static void record_sleep(void *arg, uint32_t ms)
{
	struct fixture *f = arg;

	if (f->num_waits < MAX_WAITS) {
		f->waits[f->num_waits] = ms;
	}
	f->num_waits++;
}

static struct mirror_config config_for(struct fixture *f)
{
	struct mirror_config cfg = kpemu_mirror_config(&f->emu);

	cfg.max_retries = 3;
	cfg.backoff_initial_ms = 100;
	cfg.backoff_max_ms = 250;
	cfg.sleep = record_sleep;
	cfg.sleep_arg = f;
	return cfg;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct mirror_config cfg;

	assert_non_null(f);
	if (getenv("KEEL_KPEMU") == NULL) {
		fail_msg(
		    "KEEL_KPEMU must name tests/keyprotect-emulator/emulator.py (ctest sets it)");
	}
	assert_int_equal(kpemu_start(&f->emu), 0);
	cfg = config_for(f);
	assert_int_equal(mirror_new(&cfg, &f->m), MIRROR_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mirror_free(f->m);
	kpemu_stop(&f->emu);
	free(f);
	return 0;
}

static void fault(struct fixture *f, const char *json)
{
	assert_int_equal(kpemu_control(&f->emu, "POST", "faults", json, NULL), 200);
}

static void test_api_key_file_checked(void **state)
{
	struct fixture *f = *state;
	struct mirror_config cfg = config_for(f);
	struct mirror *m = NULL;
	char path[160];
	int fd;

	assert_int_equal(chmod(f->emu.api_key_file, 0640), 0);
	assert_int_equal(mirror_new(&cfg, &m), MIRROR_E_API_KEY_FILE);
	assert_null(m);
	snprintf(path, sizeof(path), "%s/empty", f->emu.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	cfg.api_key_file = path;
	assert_int_equal(mirror_new(&cfg, &m), MIRROR_E_API_KEY_FILE);
	cfg.api_key_file = "/nonexistent/apikey";
	assert_int_equal(mirror_new(&cfg, &m), MIRROR_E_API_KEY_FILE);
	cfg.instance_id = NULL;
	assert_int_equal(mirror_new(&cfg, &m), MIRROR_E_INVAL);
}

static int count_key(void *arg, const struct mirror_key *key)
{
	(void)key;
	++*(int *)arg;
	return 0;
}

static void test_standard_key_lifecycle(void **state)
{
	struct fixture *f = *state;
	static const uint8_t blob[] = "escrowed managed object, wrapped";
	struct mirror_key k, found, other;
	struct hsm_secret *payload = NULL;
	int n = 0;

	assert_int_equal(mirror_create_standard(f->m, "keel-uid-1", blob, sizeof(blob), &k), 0);
	assert_true(k.extractable && k.imported);
	assert_int_equal(k.state, 1);
	assert_int_equal(mirror_create_standard(f->m, "keel-uid-10", blob, 4, &other), 0);
	assert_int_equal(mirror_create_root(f->m, "crk-appliance", &other), 0);
	/* exact: keel-uid-1 is not keel-uid-10 */
	assert_int_equal(mirror_find_by_name(f->m, "keel-uid-1", &found), 0);
	assert_string_equal(found.id, k.id);
	assert_int_equal(mirror_get_key(f->m, k.id, &found, &payload), 0);
	assert_non_null(payload);
	assert_int_equal(hsm_secret_len(payload), sizeof(blob));
	assert_memory_equal(hsm_secret_data(payload), blob, sizeof(blob));
	hsm_secret_free(payload);
	assert_int_equal(mirror_list(f->m, "keel-", false, count_key, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(mirror_delete(f->m, k.id), 0);
	assert_int_equal(mirror_delete(f->m, k.id), MIRROR_E_GONE);
	assert_int_equal(mirror_find_by_name(f->m, "keel-uid-1", &found), MIRROR_E_NOT_FOUND);
	n = 0;
	assert_int_equal(mirror_list(f->m, "keel-", true, count_key, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(mirror_get_key(f->m, "no-such-key", &found, NULL), MIRROR_E_NOT_FOUND);
	assert_int_equal(mirror_create_standard(f->m, "x", blob, 4, &k), MIRROR_E_INVAL);
}

static void test_list_pages(void **state)
{
	struct fixture *f = *state;
	static const uint8_t blob[] = {1, 2, 3};
	struct mirror_key k;
	char name[32];
	int n = 0;

	for (int i = 0; i < 450; i++) {
		snprintf(name, sizeof(name), "keel-%d", i);
		assert_int_equal(mirror_create_standard(f->m, name, blob, sizeof(blob), &k), 0);
	}
	assert_int_equal(mirror_list(f->m, "keel-", false, count_key, &n), 0);
	assert_int_equal(n, 450);
}

static void test_wrap_unwrap_rotate_rewrap(void **state)
{
	struct fixture *f = *state;
	static const uint8_t dek[32] = "thirty-two bytes of key material";
	char v1[MIRROR_ID_LEN], v2[MIRROR_ID_LEN], *ct = NULL, *newer = NULL, *rw = NULL;
	struct hsm_secret *pt = NULL;
	struct mirror_key root;

	assert_int_equal(mirror_create_root(f->m, "crk", &root), 0);
	assert_false(root.extractable);
	assert_int_equal(mirror_wrap(f->m, root.id, dek, sizeof(dek), "uid-7", &ct, v1), 0);
	assert_string_equal(v1, root.version_id);
	assert_int_equal(mirror_unwrap(f->m, root.id, ct, "uid-8", &pt, &newer), MIRROR_E_REFUSED);
	assert_null(pt);
	assert_int_equal(mirror_unwrap(f->m, root.id, ct, "uid-7", &pt, &newer), 0);
	assert_memory_equal(hsm_secret_data(pt), dek, sizeof(dek));
	assert_null(newer); /* made by the newest version */
	hsm_secret_free(pt);
	assert_int_equal(mirror_rotate(f->m, root.id, NULL), 0);
	assert_int_equal(mirror_rotate(f->m, root.id, NULL), MIRROR_E_CONFLICT); /* 1 per hour */
	assert_int_equal(mirror_unwrap(f->m, root.id, ct, "uid-7", &pt, &newer), 0);
	assert_non_null(newer);
	hsm_secret_free(pt);
	assert_int_equal(mirror_rewrap(f->m, root.id, ct, "uid-7", &rw), 0);
	assert_int_equal(mirror_get_key(f->m, root.id, &root, NULL), 0);
	assert_string_not_equal(root.version_id, v1);
	assert_int_equal(mirror_unwrap(f->m, root.id, rw, "uid-7", &pt, NULL), 0);
	assert_memory_equal(hsm_secret_data(pt), dek, sizeof(dek));
	hsm_secret_free(pt);
	free(ct);
	assert_int_equal(mirror_wrap(f->m, root.id, dek, 1, NULL, &ct, v2), 0);
	assert_string_equal(v2, root.version_id); /* new wraps use the newest version */
	free(ct);
	free(newer);
	free(rw);
}

static void test_states_map_to_errors(void **state)
{
	struct fixture *f = *state;
	char v[MIRROR_ID_LEN], *ct = NULL;
	struct mirror_key root, std;
	struct hsm_secret *pt = NULL;
	static const uint8_t b[4] = {1, 2, 3, 4};

	assert_int_equal(mirror_create_root(f->m, "crk", &root), 0);
	assert_int_equal(mirror_create_standard(f->m, "std", b, sizeof(b), &std), 0);
	assert_int_equal(mirror_wrap(f->m, std.id, b, sizeof(b), NULL, &ct, v), MIRROR_E_REFUSED);
	assert_int_equal(mirror_wrap(f->m, root.id, b, sizeof(b), NULL, &ct, v), 0);
	assert_int_equal(mirror_unwrap(f->m, root.id, "bm90IG91cnM=", NULL, &pt, NULL),
			 MIRROR_E_REFUSED);
	assert_int_equal(mirror_delete(f->m, root.id), 0);
	assert_int_equal(mirror_unwrap(f->m, root.id, ct, NULL, &pt, NULL), MIRROR_E_GONE);
	assert_null(pt);
	free(ct);
	assert_int_equal(mirror_wrap(f->m, root.id, b, 0, NULL, &ct, v), MIRROR_E_INVAL);
}

/* ---- secure import: OpenSSL does what hsm_crk_export/encrypt_nonce do ---- */

static size_t oaep_sha256(const char *pem, const uint8_t *key, size_t key_len, uint8_t *out,
			  size_t cap)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	size_t len = cap;

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_get_bits(pub), 4096);
	assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_encrypt(ctx, out, &len, key, key_len), 1);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pub);
	BIO_free(bio);
	return len;
}

static void gcm_seal(const uint8_t key[32], const uint8_t iv[12], const uint8_t *nonce,
		     size_t nonce_len, uint8_t *out /* nonce_len + 16 */)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;

	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv), 1);
	assert_int_equal(EVP_EncryptUpdate(c, out, &n, nonce, (int)nonce_len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, out + n, &fin), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + nonce_len), 1);
	EVP_CIPHER_CTX_free(c);
}

struct sealed {
	uint8_t wrapped[512], nonce_ct[MIRROR_NONCE_LEN + 16], iv[12];
	struct mirror_secure_payload sp;
};

static void seal(const struct mirror_import_token *t, const uint8_t key[32], const uint8_t *nonce,
		 struct sealed *s)
{
	assert_int_equal(RAND_bytes(s->iv, sizeof(s->iv)), 1);
	s->sp.wrapped = s->wrapped;
	s->sp.wrapped_len = oaep_sha256(t->public_key_pem, key, 32, s->wrapped, sizeof(s->wrapped));
	gcm_seal(key, s->iv, nonce, MIRROR_NONCE_LEN, s->nonce_ct);
	s->sp.encrypted_nonce = s->nonce_ct;
	s->sp.encrypted_nonce_len = sizeof(s->nonce_ct);
	s->sp.iv = s->iv;
	s->sp.iv_len = sizeof(s->iv);
}

static void test_secure_import_and_rotate(void **state)
{
	struct fixture *f = *state;
	struct mirror_import_token t;
	uint8_t crk[32], crk2[32], wrong_nonce[MIRROR_NONCE_LEN] = {0};
	struct sealed s;
	struct mirror_key root;

	assert_int_equal(RAND_bytes(crk, sizeof(crk)), 1);
	assert_int_equal(RAND_bytes(crk2, sizeof(crk2)), 1);
	assert_int_equal(mirror_import_token(f->m, 600, &t), 0);
	seal(&t, crk, wrong_nonce, &s);
	assert_int_equal(mirror_import_root(f->m, "crk-appliance-1", &s.sp, &root),
			 MIRROR_E_REFUSED); /* INCORRECT_NONCE_ERR */
	seal(&t, crk, t.nonce, &s);
	assert_int_equal(mirror_import_root(f->m, "crk-appliance-1", &s.sp, &root), 0);
	assert_true(root.imported);
	assert_false(root.extractable);
	/* An imported root key rotates only with new material (KEY_PAYLOAD_REQ_ERR). */
	assert_int_equal(mirror_rotate(f->m, root.id, NULL), MIRROR_E_REFUSED);
	seal(&t, crk2, t.nonce, &s);
	assert_int_equal(mirror_rotate(f->m, root.id, &s.sp), 0);
	mirror_import_token_cleanup(&t);
	/* One retrieval allowed: the token is spent. */
	assert_int_equal(mirror_import_token(f->m, 100, &t), MIRROR_E_INVAL);
}

/* ---- imported mode's CRK rotation: OpenSSL stands in for the token ------------ */

/* Material the test knows, as struct mirror_material; refuse: the HSM_E_* a
 * token that cannot export it answers (0: none). */
struct ossl_material {
	uint8_t key[32];
	int refuse;
};

static int ossl_wrap(void *arg, const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len,
		     uint8_t **out, size_t *out_len)
{
	const struct ossl_material *mat = arg;
	OSSL_PARAM_BLD *bld;
	BIGNUM *bn, *be;
	EVP_PKEY_CTX *kc, *c = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pub = NULL;

	if (mat->refuse != 0) {
		return mat->refuse;
	}
	bld = OSSL_PARAM_BLD_new();
	bn = BN_bin2bn(n, (int)n_len, NULL);
	be = BN_bin2bn(e, (int)e_len, NULL);
	kc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be), 1);
	assert_non_null(params = OSSL_PARAM_BLD_to_param(bld));
	assert_int_equal(EVP_PKEY_fromdata_init(kc), 1);
	assert_int_equal(EVP_PKEY_fromdata(kc, &pub, EVP_PKEY_PUBLIC_KEY, params), 1);
	assert_non_null(c = EVP_PKEY_CTX_new(pub, NULL));
	assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()), 1);
	*out_len = n_len;
	assert_non_null(*out = malloc(n_len));
	assert_int_equal(EVP_PKEY_encrypt(c, *out, out_len, mat->key, sizeof(mat->key)), 1);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pub);
	EVP_PKEY_CTX_free(kc);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return 0;
}

static int ossl_seal(void *arg, const uint8_t *nonce, size_t nonce_len, uint8_t iv[HSM_GCM_IV_LEN],
		     uint8_t **out, size_t *out_len)
{
	const struct ossl_material *mat = arg;

	assert_int_equal(RAND_bytes(iv, HSM_GCM_IV_LEN), 1);
	*out_len = nonce_len + 16;
	assert_non_null(*out = malloc(*out_len));
	gcm_seal(mat->key, iv, nonce, nonce_len, *out);
	return 0;
}

/* Base64 decoded into out; its length without the padding. */
static int b64d(const char *in, uint8_t *out)
{
	size_t len = strlen(in);
	int n = EVP_DecodeBlock(out, (const uint8_t *)in, (int)len);

	for (; n > 0 && len > 0 && in[len - 1] == '='; len--) {
		n--;
	}
	return n;
}

/* Whether Key Protect's ciphertext (the emulator's format, KEYPROTECT.md
 * §5.2) opens with key under AAD [aad]: the root key version is that key. */
static bool opens_with(const char *ciphertext, const uint8_t key[32], const char *aad)
{
	uint8_t outer[2048] = {0}, iv[16], ct[256], pt[256];
	char aad_json[128];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	json_t *inner;
	int ct_len, n = 0, aad_len, ok;

	assert_true(strlen(ciphertext) < sizeof(outer) * 3 / 4);
	assert_true(b64d(ciphertext, outer) > 0);
	assert_non_null(inner = json_loads((const char *)outer, 0, NULL));
	assert_int_equal(b64d(json_string_value(json_object_get(inner, "iv")), iv), 12);
	ct_len = b64d(json_string_value(json_object_get(inner, "ciphertext")), ct);
	assert_true(ct_len > 16 && ct_len <= (int)sizeof(pt));
	aad_len = snprintf(aad_json, sizeof(aad_json), "[\"%s\"]", aad);
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
	     EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)aad_json, aad_len) == 1 &&
	     EVP_DecryptUpdate(c, pt, &n, ct, ct_len - 16) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, ct + ct_len - 16) == 1 &&
	     EVP_DecryptFinal_ex(c, pt + n, &n) == 1;
	EVP_CIPHER_CTX_free(c);
	json_decref(inner);
	return ok;
}

/*
 * Imported mode: the root key's new version is the new CRK itself, sent
 * wrapped. A holder that cannot export it leaves the root key as it was; so
 * does Key Protect's refusal (one rotation an hour). Older ciphertexts still
 * unwrap, rewrapped under the new version.
 */
static void test_rotate_secure(void **state)
{
	struct fixture *f = *state;
	struct ossl_material crk1 = {.refuse = 0}, crk2 = {.refuse = HSM_E_MECHANISM}, crk3;
	const struct mirror_material m2 = {ossl_wrap, ossl_seal, &crk2};
	const struct mirror_material m3 = {ossl_wrap, ossl_seal, &crk3};
	static const uint8_t dek[32] = "a data key of thirty-two bytes.";
	struct mirror_import_token t;
	struct mirror_key root, now;
	struct hsm_secret *pt = NULL;
	char *ct1 = NULL, *ct2 = NULL, *rewrapped = NULL, v[MIRROR_ID_LEN];
	struct sealed s;

	assert_int_equal(RAND_bytes(crk1.key, 32), 1);
	assert_int_equal(RAND_bytes(crk2.key, 32), 1);
	assert_int_equal(RAND_bytes(crk3.key, 32), 1);
	crk3.refuse = 0;
	assert_int_equal(mirror_import_token(f->m, 600, &t), 0);
	seal(&t, crk1.key, t.nonce, &s);
	assert_int_equal(mirror_import_root(f->m, "crk-appliance-1", &s.sp, &root), 0);
	mirror_import_token_cleanup(&t);
	assert_int_equal(mirror_wrap(f->m, root.id, dek, sizeof(dek), "u1", &ct1, v), 0);
	assert_true(opens_with(ct1, crk1.key, "u1"));
	/* The holder cannot export it: refused locally, nothing sent. */
	assert_int_equal(mirror_rotate_secure(f->m, root.id, &m2, &now), MIRROR_E_REFUSED);
	assert_int_equal(mirror_get_key(f->m, root.id, &now, NULL), 0);
	assert_string_equal(now.version_id, root.version_id);
	/* Rotated with crk2's material (m2 now exports): a new version that is crk2. */
	crk2.refuse = 0;
	assert_int_equal(mirror_rotate_secure(f->m, root.id, &m2, &now), 0);
	assert_string_not_equal(now.version_id, root.version_id);
	assert_int_equal(mirror_wrap(f->m, root.id, dek, sizeof(dek), "u1", &ct2, v), 0);
	assert_string_equal(v, now.version_id);
	assert_true(opens_with(ct2, crk2.key, "u1"));
	assert_false(opens_with(ct2, crk1.key, "u1"));
	assert_int_equal(mirror_unwrap(f->m, root.id, ct1, "u1", &pt, &rewrapped), 0);
	assert_memory_equal(hsm_secret_data(pt), dek, sizeof(dek));
	assert_non_null(rewrapped);
	assert_true(opens_with(rewrapped, crk2.key, "u1"));
	/* Within the hour Key Protect refuses another: the root key stays at crk2. */
	assert_int_equal(mirror_rotate_secure(f->m, root.id, &m3, &root), MIRROR_E_CONFLICT);
	assert_int_equal(mirror_get_key(f->m, root.id, &root, NULL), 0);
	assert_string_equal(root.version_id, now.version_id);
	hsm_secret_free(pt);
	free(rewrapped);
	free(ct1);
	free(ct2);
}

/* ---- faults ------------------------------------------------------------------ */

static void test_retry_after_honoured(void **state)
{
	struct fixture *f = *state;
	struct mirror_key k;
	struct mirror_stats st;

	fault(f, "{\"path\": \"^/api/v2/keys$\", \"status\": 429, \"retryAfter\": 7}");
	fault(f, "{\"path\": \"^/api/v2/keys$\", \"status\": 429}");
	fault(f, "{\"path\": \"^/api/v2/keys$\", \"status\": 503}");
	assert_int_equal(mirror_create_root(f->m, "crk", &k), 0);
	/* 7 s as the server asked; then 100 and 200 ms of exponential backoff. */
	assert_int_equal(f->num_waits, 3);
	assert_int_equal(f->waits[0], 7000);
	assert_int_equal(f->waits[1], 200);
	assert_int_equal(f->waits[2], 250); /* capped at backoff_max_ms */
	mirror_get_stats(f->m, &st);
	assert_int_equal(st.retries, 3);
}

static void test_dropped_connections_and_5xx_retried(void **state)
{
	struct fixture *f = *state;
	struct mirror_config cfg = config_for(f);
	struct mirror *m = NULL;
	struct mirror_key k;
	char *log = NULL;

	/* A fresh client, so that the dropped exchange is on a new connection
	 * (curl itself silently repeats a request once on a reused one). */
	assert_int_equal(mirror_new(&cfg, &m), 0);
	fault(f, "{\"path\": \"^/identity/token$\", \"drop\": true}");
	fault(f, "{\"path\": \"^/api/v2/keys$\", \"status\": 500}");
	assert_int_equal(mirror_create_root(m, "crk", &k), 0);
	assert_int_equal(f->num_waits, 2);
	assert_int_equal(f->waits[0], 100);
	assert_int_equal(f->waits[1], 100); /* each call starts its backoff afresh */
	assert_int_equal(kpemu_control(&f->emu, "GET", "log", NULL, &log), 200);
	assert_non_null(strstr(log, "\"status\": 0")); /* the emulator did drop one */
	free(log);
	/* 501 is not retried: Not Implemented will not change. */
	fault(f, "{\"path\": \"^/api/v2/keys$\", \"status\": 501}");
	assert_int_equal(mirror_create_root(m, "crk2", &k), MIRROR_E_UNAVAILABLE);
	assert_int_equal(f->num_waits, 2);
	mirror_free(m);
}

static void test_retries_exhausted(void **state)
{
	struct fixture *f = *state;
	struct mirror_key k;
	struct mirror_stats st;
	char *log = NULL;

	fault(f, "{\"path\": \"^/api/v2/keys$\", \"status\": 503, \"count\": 10}");
	assert_int_equal(mirror_create_root(f->m, "crk", &k), MIRROR_E_UNAVAILABLE);
	assert_int_equal(f->num_waits, 3); /* max_retries */
	mirror_get_stats(f->m, &st);
	assert_int_equal(st.last_error, MIRROR_E_UNAVAILABLE);
	assert_int_equal(st.last_status, 503);
	assert_int_equal(kpemu_control(&f->emu, "GET", "keys", NULL, &log), 200);
	assert_string_equal(log, "[]"); /* nothing was created */
	free(log);
}

static void test_token_expiry_and_refresh(void **state)
{
	struct fixture *f = *state;
	struct mirror_key k;
	struct mirror_stats st;

	assert_int_equal(mirror_create_root(f->m, "crk", &k), 0);
	assert_int_equal(kpemu_control(&f->emu, "POST", "expire-tokens", NULL, NULL), 200);
	assert_int_equal(mirror_get_key(f->m, k.id, &k, NULL), 0);
	/* The token's lifetime passes on the emulator's clock. */
	assert_int_equal(kpemu_control(&f->emu, "POST", "clock", "{\"advance\": 3600}", NULL), 200);
	assert_int_equal(mirror_get_key(f->m, k.id, &k, NULL), 0);
	mirror_get_stats(f->m, &st);
	assert_int_equal(st.token_fetches, 3);
	/* The IAM endpoint's own 5xx is retried like Key Protect's. */
	assert_int_equal(kpemu_control(&f->emu, "POST", "expire-tokens", NULL, NULL), 200);
	fault(f, "{\"path\": \"^/identity/token$\", \"status\": 500}");
	assert_int_equal(mirror_get_key(f->m, k.id, &k, NULL), 0);
	assert_int_equal(f->num_waits, 1);
}

static void test_wrong_api_key(void **state)
{
	struct fixture *f = *state;
	struct mirror_config cfg = config_for(f);
	struct mirror *m = NULL;
	struct mirror_key k;
	char path[160];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/wrong", f->emu.dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("not-a-key\n", fp);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
	cfg.api_key_file = path;
	assert_int_equal(mirror_new(&cfg, &m), 0);
	assert_int_equal(mirror_create_root(m, "crk", &k), MIRROR_E_AUTH);
	assert_int_equal(f->num_waits, 0); /* a refused key is not retried */
	mirror_free(m);
	cfg = config_for(f);
	cfg.instance_id = "another-instance";
	assert_int_equal(mirror_new(&cfg, &m), 0);
	assert_int_equal(mirror_create_root(m, "crk", &k), MIRROR_E_AUTH);
	mirror_free(m);
}

/* Everything the client logs goes to stderr: run a session with stderr in a
 * file, then look for the API key and the plaintext in it. */
static void test_no_secret_in_log(void **state)
{
	struct fixture *f = *state;
	static const uint8_t dek[] = "PLAINTEXT-CANARY-81c2e0";
	char path[160], v[MIRROR_ID_LEN], *ct = NULL, text[65536];
	struct hsm_secret *pt = NULL;
	struct mirror_key root;
	int saved = dup(STDERR_FILENO), fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/stderr", f->emu.dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	keel_log_init(KEEL_LOG_DEBUG);
	fault(f, "{\"path\": \"^/identity/token$\", \"status\": 503}");
	fault(f, "{\"path\": \"wrap$\", \"status\": 429}");
	assert_int_equal(mirror_create_root(f->m, "crk", &root), 0);
	assert_int_equal(mirror_wrap(f->m, root.id, dek, sizeof(dek), "uid", &ct, v), 0);
	assert_int_equal(mirror_unwrap(f->m, root.id, ct, "uid-x", &pt, NULL), MIRROR_E_REFUSED);
	assert_int_equal(mirror_unwrap(f->m, root.id, ct, "uid", &pt, NULL), 0);
	hsm_secret_free(pt);
	free(ct);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	assert_true(n > 0);
	text[n] = '\0';
	assert_non_null(strstr(text, "retry")); /* the log did record the session */
	assert_null(strstr(text, KPEMU_APIKEY));
	assert_null(strstr(text, "PLAINTEXT-CANARY"));
	assert_null(strstr(text, "UExBSU5URVhU")); /* its base64 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_api_key_file_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_standard_key_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrap_unwrap_rotate_rewrap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_states_map_to_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secure_import_and_rotate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotate_secure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_after_honoured, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dropped_connections_and_5xx_retried, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_retries_exhausted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_expiry_and_refresh, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_api_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_secret_in_log, setup, teardown),
	};

	keel_log_init(KEEL_LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
