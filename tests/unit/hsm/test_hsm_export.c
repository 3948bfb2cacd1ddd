/*
 * Imported (BYOK) CRK: known-answer checks against OpenSSL holding the same
 * material, RSA-OAEP export that OpenSSL decrypts back to the CRK, and the
 * nonce encryption Key Protect's secure import asks for (issue 3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "softhsm_fixture.h"

struct env {
	struct softhsm_fixture *f;
	struct hsm *h;
	uint8_t crk[HSM_CRK_KEY_LEN];
};

static const uint8_t uid[] = "kek-0001";

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	uint32_t v = 0;

	assert_non_null(e);
	for (size_t i = 0; i < sizeof(e->crk); i++) {
		e->crk[i] = (uint8_t)(0x40 + i * 7);
	}
	e->f = fixture_new();
	e->h = fixture_open(e->f, HSM_WRAP_GCM);
	assert_int_equal(hsm_crk_import(e->h, e->crk, HSM_CRK_EXTRACTABLE, &v), 0);
	assert_int_equal(v, 1);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	hsm_close(e->h);
	fixture_free(e->f);
	free(e);
	return 0;
}

/* OpenSSL AES-256-GCM; returns 0 on success, -1 if the tag does not verify. */
static int ossl_gcm(bool enc, const uint8_t *key, const uint8_t *iv, const uint8_t *aad,
		    size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc) == 1 &&
	     (aad_len == 0 || EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) == 1) &&
	     EVP_CipherUpdate(c, out, &n, in, (int)in_len) == 1 &&
	     (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1) &&
	     EVP_CipherFinal_ex(c, out + n, &n) == 1 &&
	     (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

/* The AAD as hsm.h documents it: header | u32 uid_len | uid. */
static size_t aad_of(const uint8_t *blob, uint8_t *aad)
{
	size_t ul = sizeof(uid) - 1;

	memcpy(aad, blob, HSM_BLOB_HEADER_LEN);
	aad[6] = 0;
	aad[7] = 0;
	aad[8] = 0;
	aad[9] = (uint8_t)ul;
	memcpy(aad + 10, uid, ul);
	return 10 + ul;
}

static void test_kcv(void **state)
{
	struct env *e = *state;
	uint8_t kcv[HSM_KCV_LEN], zero[16] = {0}, block[32];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0;

	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, e->crk, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(c, block, &n, zero, 16), 1);
	EVP_CIPHER_CTX_free(c);
	assert_int_equal(hsm_crk_kcv(e->h, 1, kcv), 0);
	assert_memory_equal(kcv, block, HSM_KCV_LEN);
	assert_int_equal(hsm_crk_kcv(e->h, 2, kcv), HSM_E_CRK_NOT_FOUND);
}

/* A blob made by OpenSSL with the same material unwraps in the token, and back. */
static void test_known_answer(void **state)
{
	struct env *e = *state;
	const uint8_t key[32] = "known-answer-key-material-32byte";
	uint8_t blob[6 + 12 + 32 + 16] = {1, 1, 0, 0, 0, 1}, aad[64], out[32];
	uint8_t *hblob = NULL;
	struct hsm_secret *s = NULL;
	size_t aad_len = aad_of(blob, aad), hlen = 0;

	memset(blob + 6, 0x5a, 12);
	assert_int_equal(
	    ossl_gcm(true, e->crk, blob + 6, aad, aad_len, key, 32, blob + 18, blob + 50), 0);
	assert_int_equal(hsm_unwrap(e->h, uid, sizeof(uid) - 1, blob, sizeof(blob), &s), 0);
	assert_memory_equal(hsm_secret_data(s), key, 32);
	hsm_secret_free(s);

	assert_int_equal(hsm_wrap(e->h, uid, sizeof(uid) - 1, key, 32, &hblob, &hlen), 0);
	assert_int_equal(hlen, sizeof(blob));
	assert_int_equal(ossl_gcm(false, e->crk, hblob + 6, aad, aad_of(hblob, aad), hblob + 18, 32,
				  out, hblob + 50),
			 0);
	assert_memory_equal(out, key, 32);
	free(hblob);
}

static EVP_PKEY *rsa_new(uint8_t *n, size_t *n_len, uint8_t *e, size_t *e_len)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	BIGNUM *bn = NULL, *be = NULL;

	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &be), 1);
	*n_len = (size_t)BN_bn2bin(bn, n);
	*e_len = (size_t)BN_bn2bin(be, e);
	BN_free(bn);
	BN_free(be);
	return pk;
}

static void oaep_decrypt_eq(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *in, size_t in_len,
			    const uint8_t *want)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
	uint8_t out[256];
	size_t out_len = sizeof(out);

	assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(c, md), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(c, md), 1);
	assert_int_equal(EVP_PKEY_decrypt(c, out, &out_len, in, in_len), 1);
	assert_int_equal(out_len, HSM_CRK_KEY_LEN);
	assert_memory_equal(out, want, HSM_CRK_KEY_LEN);
	EVP_PKEY_CTX_free(c);
}

static void test_export_oaep(void **state)
{
	struct env *e = *state;
	uint8_t n[512], ex[8], *w = NULL;
	size_t n_len, e_len, w_len = 0;
	EVP_PKEY *pk = rsa_new(n, &n_len, ex, &e_len);
	int r;

	assert_int_equal(hsm_crk_export(e->h, 1, n, n_len, ex, e_len, HSM_OAEP_SHA1, &w, &w_len),
			 0);
	assert_int_equal(w_len, 256);
	oaep_decrypt_eq(pk, EVP_sha1(), w, w_len, e->crk);
	free(w);
	w = NULL;
	/* SHA-256 OAEP: decrypts to the CRK where the token offers it (not SoftHSM 2.6). */
	r = hsm_crk_export(e->h, 1, n, n_len, ex, e_len, HSM_OAEP_SHA256, &w, &w_len);
	if (r == 0) {
		oaep_decrypt_eq(pk, EVP_sha256(), w, w_len, e->crk);
	} else {
		assert_int_equal(r, HSM_E_MECHANISM);
		assert_null(w);
		print_message("note: this token refuses RSA-OAEP-SHA256 wrapping\n");
	}
	free(w);
	EVP_PKEY_free(pk);
}

static void test_export_refused(void **state)
{
	struct env *e = *state;
	uint8_t n[512], ex[8], *w = NULL;
	size_t n_len, e_len, w_len = 0;
	EVP_PKEY *pk = rsa_new(n, &n_len, ex, &e_len);
	uint32_t v = 0;

	assert_int_equal(hsm_crk_generate(e->h, 0, &v), 0);
	assert_int_equal(hsm_crk_export(e->h, v, n, n_len, ex, e_len, HSM_OAEP_SHA1, &w, &w_len),
			 HSM_E_NOT_EXTRACTABLE);
	assert_int_equal(hsm_crk_export(e->h, 9, n, n_len, ex, e_len, HSM_OAEP_SHA1, &w, &w_len),
			 HSM_E_CRK_NOT_FOUND);
	assert_int_equal(hsm_crk_export(e->h, 1, n, 16, ex, e_len, HSM_OAEP_SHA1, &w, &w_len),
			 HSM_E_INVAL);
	assert_null(w);
	EVP_PKEY_free(pk);
}

static void test_encrypt_nonce(void **state)
{
	struct env *e = *state;
	const uint8_t nonce[] = "kp-import-nonce-0123456789";
	uint8_t iv[HSM_GCM_IV_LEN], out[sizeof(nonce)], *ct = NULL;
	size_t ct_len = 0;

	assert_int_equal(hsm_crk_encrypt_nonce(e->h, 1, nonce, sizeof(nonce), iv, &ct, &ct_len), 0);
	assert_int_equal(ct_len, sizeof(nonce) + HSM_GCM_TAG_LEN);
	assert_int_equal(
	    ossl_gcm(false, e->crk, iv, NULL, 0, ct, sizeof(nonce), out, ct + sizeof(nonce)), 0);
	assert_memory_equal(out, nonce, sizeof(nonce));
	free(ct);
}

/* A staged CRK: exportable as HSM_CRK_STAGED, not a version (nothing wraps
 * under it) until promoted, when it becomes the active version with the same
 * material; discarded by hsm_crk_destroy. */
static void test_staged_crk(void **state)
{
	struct env *e = *state;
	uint8_t n[512], ex[8], *w = NULL, kcv[HSM_KCV_LEN], staged_kcv[HSM_KCV_LEN], *blob = NULL;
	size_t n_len, e_len, w_len = 0, blob_len = 0;
	EVP_PKEY *pk = rsa_new(n, &n_len, ex, &e_len);
	struct hsm_crk_info *list = NULL;
	size_t num = 0;
	uint32_t v = 0, active = 0;

	assert_false(hsm_crk_has_staged(e->h));
	assert_int_equal(hsm_crk_promote(e->h, &v), HSM_E_CRK_NOT_FOUND);
	assert_int_equal(hsm_crk_stage(e->h, HSM_CRK_EXTRACTABLE), 0);
	assert_true(hsm_crk_has_staged(e->h));
	assert_int_equal(hsm_crk_stage(e->h, HSM_CRK_EXTRACTABLE), HSM_E_CRK_EXISTS);
	/* Not a version: version 1 stays active, and wraps. */
	assert_int_equal(hsm_crk_list(e->h, &list, &num), 0);
	assert_int_equal(num, 1);
	free(list);
	assert_int_equal(hsm_wrap(e->h, uid, sizeof(uid) - 1, e->crk, 16, &blob, &blob_len), 0);
	assert_int_equal(hsm_blob_crk_version(blob, blob_len, &v), 0);
	assert_int_equal(v, 1);
	free(blob);
	/* Its material leaves only wrapped, and differs from version 1's. */
	assert_int_equal(
	    hsm_crk_export(e->h, HSM_CRK_STAGED, n, n_len, ex, e_len, HSM_OAEP_SHA1, &w, &w_len),
	    0);
	assert_int_equal(w_len, 256);
	free(w);
	assert_int_equal(hsm_crk_kcv(e->h, HSM_CRK_STAGED, staged_kcv), 0);
	assert_int_equal(hsm_crk_kcv(e->h, 1, kcv), 0);
	assert_memory_not_equal(kcv, staged_kcv, HSM_KCV_LEN);
	/* Promoted: version 2, active, the same material, still extractable. */
	assert_int_equal(hsm_crk_promote(e->h, &v), 0);
	assert_int_equal(v, 2);
	assert_false(hsm_crk_has_staged(e->h));
	assert_int_equal(hsm_crk_active(e->h, &active), 0);
	assert_int_equal(active, 2);
	assert_int_equal(hsm_crk_kcv(e->h, 2, kcv), 0);
	assert_memory_equal(kcv, staged_kcv, HSM_KCV_LEN);
	assert_int_equal(hsm_crk_list(e->h, &list, &num), 0);
	assert_int_equal(num, 2);
	assert_true(list[1].extractable && list[1].active && list[1].created[0] != '\0');
	free(list);
	/* Staged again, then discarded: nothing else changes. */
	assert_int_equal(hsm_crk_stage(e->h, 0), 0);
	assert_int_equal(hsm_crk_destroy(e->h, HSM_CRK_STAGED), 0);
	assert_false(hsm_crk_has_staged(e->h));
	assert_int_equal(hsm_crk_destroy(e->h, HSM_CRK_STAGED), HSM_E_CRK_NOT_FOUND);
	assert_int_equal(hsm_crk_active(e->h, &active), 0);
	assert_int_equal(active, 2);
	EVP_PKEY_free(pk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kcv, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_known_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_export_oaep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_export_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_encrypt_nonce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_staged_crk, setup, teardown),
	};

	return cmocka_run_group_tests_name("hsm_export", tests, NULL, NULL);
}
