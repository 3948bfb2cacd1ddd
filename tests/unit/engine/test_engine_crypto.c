/*
 * Encrypt, Decrypt (KMIP 1.4 §4.29, §4.30), MAC, MAC Verify (§4.33, §4.34),
 * RNG Retrieve (§4.35) and Hash (§4.37) through keel_engine_handle, with the
 * usage mask (§3.19) and the lifecycle (§3.22) enforced. Every result is
 * checked against OpenSSL computing the same thing here with the key Get
 * returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#include "engine_req.h"

#define MASK_ENC_DEC (KMIP_CRYPTOGRAPHIC_USAGE_MASK_ENCRYPT | KMIP_CRYPTOGRAPHIC_USAGE_MASK_DECRYPT)
#define MASK_MAC                                                                                   \
	(KMIP_CRYPTOGRAPHIC_USAGE_MASK_MAC_GENERATE | KMIP_CRYPTOGRAPHIC_USAGE_MASK_MAC_VERIFY)

static const uint8_t plain[] = "Keel: a KMIP key manager for VMware, 47 bytes.";

static int setup(void **state)
{
	*state = engine_fx_new();
	return 0;
}

static int teardown(void **state)
{
	engine_fx_free(*state);
	return 0;
}

/* ---- requests ----------------------------------------------------------------- */

struct cipher_args {
	uint32_t mode;
	uint32_t padding; /* 0: none given */
	int32_t tag_len;  /* 0: none given */
	const uint8_t *iv, *aad, *tag;
	size_t iv_len, aad_len, tag_bytes;
	const uint8_t *corr; /* a Correlation Value: streaming */
	bool key_params;     /* the request names no parameters: the key's own apply */
};

static void write_params(struct kmip_writer *w, const struct cipher_args *a)
{
	if (a->key_params) {
		return;
	}
	kmip_write_begin(w, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
	kmip_write_enum(w, KMIP_TAG_BLOCK_CIPHER_MODE, a->mode);
	if (a->padding != 0) {
		kmip_write_enum(w, KMIP_TAG_PADDING_METHOD, a->padding);
	}
	if (a->tag_len != 0) {
		kmip_write_int(w, KMIP_TAG_TAG_LENGTH, a->tag_len);
	}
	kmip_write_end(w);
}

/* Sends Encrypt or Decrypt of |data| under |uid| in KMIP 1.4 or 2.0. */
static void cipher_op(struct engine_fx *f, bool v2, uint32_t op, const char *uid,
		      const struct cipher_args *a, const uint8_t *data, size_t len)
{
	struct kmip_writer w;

	req_begin(&w, v2 ? 2 : 1, v2 ? 0 : 4, 1);
	req_item_begin(&w, op);
	req_uid(&w, uid);
	write_params(&w, a);
	kmip_write_bytes(&w, KMIP_TAG_DATA, data, len);
	if (a->iv != NULL) {
		kmip_write_bytes(&w, KMIP_TAG_IV_COUNTER_NONCE, a->iv, a->iv_len);
	}
	if (a->corr != NULL) {
		kmip_write_bytes(&w, KMIP_TAG_CORRELATION_VALUE, a->corr, 4);
	}
	if (a->aad != NULL) {
		kmip_write_bytes(&w, KMIP_TAG_AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, a->aad,
				 a->aad_len);
	}
	if (a->tag != NULL) {
		kmip_write_bytes(&w, KMIP_TAG_AUTHENTICATED_ENCRYPTION_TAG, a->tag, a->tag_bytes);
	}
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

/* ---- OpenSSL, the reference ----------------------------------------------------- */

/* Encrypts |in| with |cipher| as the engine should have; returns the length. */
static size_t ref_encrypt(const EVP_CIPHER *cipher, const uint8_t *key, const struct cipher_args *a,
			  const uint8_t *in, size_t in_len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0, len;
	bool gcm = a->mode == KMIP_BLOCK_CIPHER_MODE_GCM;

	assert_non_null(ctx);
	assert_int_equal(EVP_EncryptInit_ex(ctx, cipher, NULL, NULL, NULL), 1);
	if (gcm) {
		assert_int_equal(
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)a->iv_len, NULL), 1);
	}
	assert_int_equal(EVP_EncryptInit_ex(ctx, NULL, NULL, key, a->iv), 1);
	EVP_CIPHER_CTX_set_padding(ctx, a->padding == KMIP_PADDING_METHOD_PKCS5);
	if (a->aad != NULL) {
		assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &len, a->aad, (int)a->aad_len), 1);
	}
	assert_int_equal(EVP_EncryptUpdate(ctx, out, &n, in, (int)in_len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, out + n, &fin), 1);
	if (gcm) {
		assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, a->tag_len, tag),
				 1);
	}
	EVP_CIPHER_CTX_free(ctx);
	return (size_t)(n + fin);
}

static size_t ref_mac(const char *name, const char *param, const char *value, const uint8_t *key,
		      size_t key_len, const uint8_t *data, size_t len, uint8_t *out)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, name, NULL);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(param, (char *)value, 0),
			       OSSL_PARAM_construct_end()};
	size_t n = 0;

	assert_int_equal(EVP_MAC_init(ctx, key, key_len, params), 1);
	assert_int_equal(EVP_MAC_update(ctx, data, len), 1);
	assert_int_equal(EVP_MAC_final(ctx, out, &n, 64), 1);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return n;
}

/* ---- usage mask and lifecycle ------------------------------------------------------- */

/* §3.19: an operation the usage mask lacks is refused; 2.x names the reason. */
static void test_usage_mask(void **state)
{
	struct engine_fx *f = *state;
	const struct cipher_args ecb = {.mode = KMIP_BLOCK_CIPHER_MODE_ECB};
	char uid[129];

	req_create_aes(f, 128, KMIP_CRYPTOGRAPHIC_USAGE_MASK_ENCRYPT, true, uid);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &ecb, plain, 32);
	req_expect_ok(f, 0);
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, uid, &ecb, plain, 32);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	cipher_op(f, true, KMIP_OPERATION_DECRYPT, uid, &ecb, plain, 32);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK);
}

/* §3.22: Pre-Active keys do nothing; Deactivated and Compromised ones only decrypt. */
static void test_lifecycle(void **state)
{
	struct engine_fx *f = *state;
	const struct cipher_args ecb = {.mode = KMIP_BLOCK_CIPHER_MODE_ECB};
	char pre[129], uid[129], bad[129];
	uint8_t ct[32];

	req_create_aes(f, 256, MASK_ENC_DEC, false, pre);
	cipher_op(f, true, KMIP_OPERATION_ENCRYPT, pre, &ecb, plain, 32);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_WRONG_KEY_LIFECYCLE_STATE);
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, pre, &ecb, plain, 32);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);

	req_create_aes(f, 256, MASK_ENC_DEC, true, uid);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &ecb, plain, 32);
	req_expect_ok(f, 0);
	memcpy(ct, ((const struct kmip_encrypt_response *)req_item(f, 0)->response_payload)->data,
	       32);
	req_revoke(f, uid, KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION);
	cipher_op(f, true, KMIP_OPERATION_ENCRYPT, uid, &ecb, plain, 32);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_WRONG_KEY_LIFECYCLE_STATE);
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, uid, &ecb, ct, 32);
	req_expect_ok(f, 0);
	assert_memory_equal(
	    ((const struct kmip_decrypt_response *)req_item(f, 0)->response_payload)->data, plain,
	    32);

	req_create_aes(f, 128, MASK_ENC_DEC, true, bad);
	req_revoke(f, bad, KMIP_REVOCATION_REASON_CODE_KEY_COMPROMISE);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, bad, &ecb, plain, 32);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, bad, &ecb, ct, 32);
	req_expect_ok(f, 0);

	/* Another client's key does not exist for bob. */
	struct kmip_writer w;
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_DECRYPT);
	req_uid(&w, uid);
	write_params(&w, &ecb);
	kmip_write_bytes(&w, KMIP_TAG_DATA, ct, 32);
	req_item_end(&w);
	req_send(f, &f->bob, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

/* ---- Encrypt, Decrypt ------------------------------------------------------------------ */

/* Encrypts with the engine, compares with OpenSSL, and decrypts back. */
static void round_trip(struct engine_fx *f, const char *uid, const EVP_CIPHER *cipher,
		       struct cipher_args a, size_t len)
{
	const struct kmip_encrypt_response *e;
	const struct kmip_decrypt_response *d;
	uint8_t key[64], want[128], want_tag[16], got[128], ivbuf[128];
	size_t n, got_len;

	(void)req_get_key(f, uid, key);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &a, plain, len);
	req_expect_ok(f, 0);
	e = req_item(f, 0)->response_payload;
	assert_int_equal(e->unique_identifier_len, strlen(uid));
	if (a.iv == NULL && a.mode != KMIP_BLOCK_CIPHER_MODE_ECB) {
		/* The server made the IV and returned it (§4.29). */
		assert_non_null(e->iv_counter_nonce);
		a.iv = memcpy(ivbuf, e->iv_counter_nonce, e->iv_counter_nonce_len);
		a.iv_len = e->iv_counter_nonce_len;
	}
	got_len = e->data_len;
	memcpy(got, e->data, got_len);
	n = ref_encrypt(cipher, key, &a, plain, len, want, want_tag);
	assert_int_equal(got_len, n);
	assert_memory_equal(got, want, n);
	if (a.mode == KMIP_BLOCK_CIPHER_MODE_GCM) {
		assert_int_equal(e->authenticated_encryption_tag_len, (size_t)a.tag_len);
		assert_memory_equal(e->authenticated_encryption_tag, want_tag, (size_t)a.tag_len);
		a.tag = want_tag;
		a.tag_bytes = (size_t)a.tag_len;
	}
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, uid, &a, got, got_len);
	req_expect_ok(f, 0);
	d = req_item(f, 0)->response_payload;
	assert_int_equal(d->data_len, len);
	assert_memory_equal(d->data, plain, len);
}

static void test_aes_modes(void **state)
{
	struct engine_fx *f = *state;
	static const uint8_t iv[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	char k128[129], k256[129];

	req_create_aes(f, 128, MASK_ENC_DEC, true, k128);
	req_create_aes(f, 256, MASK_ENC_DEC, true, k256);
	round_trip(f, k128, EVP_aes_128_ecb(),
		   (struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_ECB}, 32);
	round_trip(f, k256, EVP_aes_256_ecb(),
		   (struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_ECB,
					.padding = KMIP_PADDING_METHOD_PKCS5},
		   sizeof(plain));
	round_trip(f, k256, EVP_aes_256_cbc(),
		   (struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_CBC,
					.padding = KMIP_PADDING_METHOD_PKCS5,
					.iv = iv,
					.iv_len = 16},
		   sizeof(plain));
	/* No IV: the server draws one from the token. */
	round_trip(f, k128, EVP_aes_128_cbc(),
		   (struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_CBC,
					.padding = KMIP_PADDING_METHOD_PKCS5},
		   20);
	round_trip(f, k256, EVP_aes_256_ctr(),
		   (struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_CTR, .iv = iv, .iv_len = 16},
		   sizeof(plain));
}

static void cbc_pkcs5(struct kmip_writer *w)
{
	kmip_write_enum(w, KMIP_TAG_BLOCK_CIPHER_MODE, KMIP_BLOCK_CIPHER_MODE_CBC);
	kmip_write_enum(w, KMIP_TAG_PADDING_METHOD, KMIP_PADDING_METHOD_PKCS5);
}

/* Without Cryptographic Parameters in the request, the key's own apply (KMIP 1.4 §3.6). */
static void test_key_parameters(void **state)
{
	struct engine_fx *f = *state;
	static const uint8_t iv[16] = {15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
	char uid[129];

	req_create_sym(f,
		       &(struct req_sym_spec){.algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_AES,
					      .bits = 256,
					      .mask = MASK_ENC_DEC,
					      .active = true,
					      .params = cbc_pkcs5},
		       uid);
	round_trip(f, uid, EVP_aes_256_cbc(),
		   (struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_CBC,
					.padding = KMIP_PADDING_METHOD_PKCS5,
					.iv = iv,
					.iv_len = 16,
					.key_params = true},
		   sizeof(plain));
}

static void test_gcm(void **state)
{
	struct engine_fx *f = *state;
	static const uint8_t aad[] = "vCenter VM 42";
	static const uint8_t iv[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
	struct cipher_args a = {.mode = KMIP_BLOCK_CIPHER_MODE_GCM, .tag_len = 16};
	const struct kmip_encrypt_response *e;
	uint8_t ct[64], tag[16];
	char uid[129];

	req_create_aes(f, 256, MASK_ENC_DEC, true, uid);
	/* IV generated (96 bits), AAD, default and short tags. */
	a.aad = aad;
	a.aad_len = sizeof(aad);
	round_trip(f, uid, EVP_aes_256_gcm(), a, sizeof(plain));
	a.tag_len = 12;
	a.iv = iv;
	a.iv_len = sizeof(iv);
	round_trip(f, uid, EVP_aes_256_gcm(), a, 5);

	/* A changed tag or AAD fails to authenticate, and no plaintext comes back. */
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &a, plain, 40);
	req_expect_ok(f, 0);
	e = req_item(f, 0)->response_payload;
	memcpy(ct, e->data, 40);
	memcpy(tag, e->authenticated_encryption_tag, 12);
	tag[0] ^= 1;
	a.tag = tag;
	a.tag_bytes = 12;
	cipher_op(f, true, KMIP_OPERATION_DECRYPT, uid, &a, ct, 40);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_CRYPTOGRAPHIC_FAILURE);
	tag[0] ^= 1;
	a.aad_len--;
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, uid, &a, ct, 40);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_CRYPTOGRAPHIC_FAILURE);
	/* No tag at all. */
	a.tag = NULL;
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, uid, &a, ct, 40);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_MISSING_DATA);
}

static void test_cipher_errors(void **state)
{
	struct engine_fx *f = *state;
	static const uint8_t corr[4] = {1, 2, 3, 4};
	char uid[129];
	struct kmip_writer w;

	req_create_aes(f, 128, MASK_ENC_DEC, true, uid);
	/* ECB without padding takes whole blocks only. */
	cipher_op(f, true, KMIP_OPERATION_ENCRYPT, uid,
		  &(struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_ECB}, plain, 17);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_BAD_CRYPTOGRAPHIC_PARAMETERS);
	/* CBC with a short IV. */
	cipher_op(
	    f, true, KMIP_OPERATION_ENCRYPT, uid,
	    &(struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_CBC, .iv = plain, .iv_len = 8},
	    plain, 16);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_BAD_CRYPTOGRAPHIC_PARAMETERS);
	/* Decrypt in CBC without the IV: Invalid Message, as CS-BC-M-11..13 expect. */
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, uid,
		  &(struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_CBC}, plain, 16);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_MESSAGE);
	/* A mode we do not serve. */
	cipher_op(f, true, KMIP_OPERATION_ENCRYPT, uid,
		  &(struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_CMAC}, plain, 16);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
	/* Streaming: Feature Not Supported. */
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid,
		  &(struct cipher_args){.mode = KMIP_BLOCK_CIPHER_MODE_ECB, .corr = corr}, plain,
		  16);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_FEATURE_NOT_SUPPORTED);
	/* No Cryptographic Parameters: the mode is missing. */
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_ENCRYPT);
	req_uid(&w, uid);
	kmip_write_bytes(&w, KMIP_TAG_DATA, plain, 16);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_MISSING_DATA);
}

/* An Active AES-128 key with Usage Limits of |total| in |unit| (KMIP 1.4 §3.21). */
static void create_limited(struct engine_fx *f, int64_t total, uint32_t unit, char uid[static 129])
{
	struct kmip_writer w;
	const struct kmip_create_response *p;
	static const char name[] = "Usage Limits";

	req_begin(&w, 1, 4, 2);
	req_item_begin(&w, KMIP_OPERATION_CREATE);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	req_attr_int(&w, "Cryptographic Length", false, 128);
	req_attr_int(&w, "Cryptographic Usage Mask", false, MASK_ENC_DEC);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, name, sizeof(name) - 1);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE_VALUE);
	kmip_write_long(&w, KMIP_TAG_USAGE_LIMITS_TOTAL, total);
	kmip_write_enum(&w, KMIP_TAG_USAGE_LIMITS_UNIT, unit);
	kmip_write_end(&w);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_item_end(&w);
	req_item_begin(&w, KMIP_OPERATION_ACTIVATE);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	req_expect_ok(f, 1);
	p = req_item(f, 0)->response_payload;
	req_copy_uid(uid, p->unique_identifier, p->unique_identifier_len);
}

/* Modify Attribute sets Usage Limits of |total| bytes; the server starts the Count at it. */
static void modify_limits(struct engine_fx *f, const char *uid, int64_t total)
{
	struct kmip_writer w;
	const struct kmip_modify_attribute_response *p;
	const struct kmip_node *count;
	static const char name[] = "Usage Limits";

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_MODIFY_ATTRIBUTE);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, name, sizeof(name) - 1);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE_VALUE);
	kmip_write_long(&w, KMIP_TAG_USAGE_LIMITS_TOTAL, total);
	kmip_write_enum(&w, KMIP_TAG_USAGE_LIMITS_UNIT, KMIP_USAGE_LIMITS_UNIT_BYTE);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_non_null(p->attribute);
	count = kmip_node_find(p->attribute->attribute_value, KMIP_TAG_USAGE_LIMITS_COUNT);
	assert_non_null(count);
	assert_int_equal(count->v.i64, total);
}

/* Encrypt and Decrypt spend Usage Limits; past them they are denied (CS-BC-M-7). */
static void test_usage_limits(void **state)
{
	struct engine_fx *f = *state;
	const struct cipher_args ecb = {.mode = KMIP_BLOCK_CIPHER_MODE_ECB};
	char uid[129];

	create_limited(f, 32, KMIP_USAGE_LIMITS_UNIT_BYTE, uid);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &ecb, plain, 16);
	req_expect_ok(f, 0);
	cipher_op(f, false, KMIP_OPERATION_DECRYPT, uid, &ecb, plain, 16);
	req_expect_ok(f, 0);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &ecb, plain, 16);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	modify_limits(f, uid, 48);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &ecb, plain, 16);
	req_expect_ok(f, 0);
	/* Object limits count operations, whatever their length. */
	create_limited(f, 1, KMIP_USAGE_LIMITS_UNIT_OBJECT, uid);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &ecb, plain, 32);
	req_expect_ok(f, 0);
	cipher_op(f, false, KMIP_OPERATION_ENCRYPT, uid, &ecb, plain, 16);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
}

/* ---- MAC, MAC Verify -------------------------------------------------------------------- */

/* Sends MAC (|mac| NULL) or MAC Verify of |mac|. */
static void mac_op(struct engine_fx *f, bool v2, const char *uid, const uint8_t *mac,
		   size_t mac_len)
{
	struct kmip_writer w;

	req_begin(&w, v2 ? 2 : 1, v2 ? 0 : 4, 1);
	req_item_begin(&w, mac != NULL ? KMIP_OPERATION_MAC_VERIFY : KMIP_OPERATION_MAC);
	req_uid(&w, uid);
	kmip_write_bytes(&w, KMIP_TAG_DATA, plain, sizeof(plain));
	if (mac != NULL) {
		kmip_write_bytes(&w, KMIP_TAG_MAC_DATA, mac, mac_len);
	}
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

static void test_cmac(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_mac_response *m;
	const struct kmip_mac_verify_response *v;
	uint8_t key[64], want[64], got[64];
	size_t key_len, n;
	char uid[129], enc[129];

	req_create_aes(f, 256, MASK_MAC, true, uid);
	key_len = req_get_key(f, uid, key);
	mac_op(f, false, uid, NULL, 0);
	req_expect_ok(f, 0);
	m = req_item(f, 0)->response_payload;
	n = ref_mac("CMAC", OSSL_MAC_PARAM_CIPHER, "AES-256-CBC", key, key_len, plain,
		    sizeof(plain), want);
	assert_int_equal(m->mac_data_len, n);
	assert_memory_equal(m->mac_data, want, n);
	memcpy(got, m->mac_data, n);
	mac_op(f, false, uid, got, n);
	req_expect_ok(f, 0);
	v = req_item(f, 0)->response_payload;
	assert_int_equal(v->validity_indicator, KMIP_VALIDITY_INDICATOR_VALID);
	got[3] ^= 0x80;
	mac_op(f, false, uid, got, n);
	req_expect_ok(f, 0);
	v = req_item(f, 0)->response_payload;
	assert_int_equal(v->validity_indicator, KMIP_VALIDITY_INDICATOR_INVALID);
	/* A truncated MAC does not verify either. */
	mac_op(f, false, uid, want, n - 1);
	v = req_item(f, 0)->response_payload;
	assert_int_equal(v->validity_indicator, KMIP_VALIDITY_INDICATOR_INVALID);
	/* An encryption key may not MAC. */
	req_create_aes(f, 128, MASK_ENC_DEC, true, enc);
	mac_op(f, true, enc, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK);
	/* Deactivated: no new MACs, but old ones still verify (§3.22). */
	req_revoke(f, uid, KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION);
	mac_op(f, true, uid, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_WRONG_KEY_LIFECYCLE_STATE);
	mac_op(f, true, uid, want, n);
	req_expect_ok(f, 0);
	v = req_item(f, 0)->response_payload;
	assert_int_equal(v->validity_indicator, KMIP_VALIDITY_INDICATOR_VALID);
}

/* Registers (2.0) an HMAC key of |alg| with |key| as its Raw material, then Activates it. */
static void register_hmac(struct engine_fx *f, uint32_t alg, const uint8_t *key, size_t len,
			  char uid[static 129])
{
	const struct kmip_register_response *p;
	struct kmip_writer w;

	req_begin(&w, 2, 0, 2);
	req_item_begin(&w, KMIP_OPERATION_REGISTER);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTES);
	kmip_write_int(&w, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, MASK_MAC);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_KEY_BLOCK);
	kmip_write_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_TYPE_RAW);
	kmip_write_begin(&w, KMIP_TAG_KEY_VALUE);
	kmip_write_bytes(&w, KMIP_TAG_KEY_MATERIAL, key, len);
	kmip_write_end(&w);
	kmip_write_enum(&w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, alg);
	kmip_write_int(&w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, (int32_t)len * 8);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_item_end(&w);
	/* ID Placeholder: the key just registered (2.0 §6.1.1). */
	req_item_begin(&w, KMIP_OPERATION_ACTIVATE);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	req_expect_ok(f, 1);
	p = req_item(f, 0)->response_payload;
	assert_true(p->unique_identifier_len < 129);
	req_copy_uid(uid, p->unique_identifier, p->unique_identifier_len);
}

/* MAC of |plain| under |uid| equals OpenSSL's HMAC with |digest|; MAC Verify agrees. */
static void check_hmac(struct engine_fx *f, const char *uid, const char *digest, const uint8_t *key,
		       size_t key_len)
{
	const struct kmip_mac_response *m;
	const struct kmip_mac_verify_response *v;
	uint8_t want[64];
	size_t n = ref_mac("HMAC", OSSL_MAC_PARAM_DIGEST, digest, key, key_len, plain,
			   sizeof(plain), want);

	mac_op(f, false, uid, NULL, 0);
	req_expect_ok(f, 0);
	m = req_item(f, 0)->response_payload;
	assert_int_equal(m->mac_data_len, n);
	assert_memory_equal(m->mac_data, want, n);
	mac_op(f, true, uid, want, n);
	req_expect_ok(f, 0);
	v = req_item(f, 0)->response_payload;
	assert_int_equal(v->validity_indicator, KMIP_VALIDITY_INDICATOR_VALID);
	want[n - 1] ^= 0x01;
	mac_op(f, false, uid, want, n);
	req_expect_ok(f, 0);
	v = req_item(f, 0)->response_payload;
	assert_int_equal(v->validity_indicator, KMIP_VALIDITY_INDICATOR_INVALID);
}

static void hmac_sha256(struct kmip_writer *w)
{
	kmip_write_enum(w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM,
			KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA256);
}

/* HMAC end to end (§4.33, §4.34): a registered HMAC-SHA256 key, created HMAC-SHA512/384 ones. */
static void test_hmac(void **state)
{
	struct engine_fx *f = *state;
	uint8_t key[64];
	size_t key_len;
	char uid[129];
	const struct kmip_get_response *g;

	for (size_t i = 0; i < 32; i++) {
		key[i] = (uint8_t)(0xa0 + i);
	}
	register_hmac(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA256, key, 32, uid);
	check_hmac(f, uid, "SHA256", key, 32);
	req_create_sym(f,
		       &(struct req_sym_spec){.algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA512,
					      .bits = 512,
					      .mask = MASK_MAC,
					      .active = true},
		       uid);
	key_len = req_get_key(f, uid, key);
	assert_int_equal(key_len, 64);
	check_hmac(f, uid, "SHA512", key, key_len);
	/* Without a Cryptographic Length, an HMAC key is as long as the hash's output. */
	req_create_sym(f,
		       &(struct req_sym_spec){.algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA384,
					      .mask = MASK_MAC,
					      .active = true},
		       uid);
	key_len = req_get_key(f, uid, key);
	assert_int_equal(key_len, 48);
	g = req_item(f, 0)->response_payload;
	assert_int_equal(g->symmetric_key->key_block->cryptographic_length, 384);
	check_hmac(f, uid, "SHA384", key, key_len);
	/* An AES key whose Cryptographic Parameters name HMAC-SHA256 MACs with HMAC (the OASIS
	 * CS-AC-M-4 case). */
	req_create_sym(f,
		       &(struct req_sym_spec){.algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_AES,
					      .bits = 128,
					      .mask = MASK_MAC,
					      .active = true,
					      .params = hmac_sha256},
		       uid);
	key_len = req_get_key(f, uid, key);
	assert_int_equal(key_len, 16);
	check_hmac(f, uid, "SHA256", key, key_len);
}

/* ---- RNG Retrieve, Hash ------------------------------------------------------------------ */

static void rng(struct engine_fx *f, int32_t len)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_RNG_RETRIEVE);
	kmip_write_int(&w, KMIP_TAG_DATA_LENGTH, len);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

static void test_rng_retrieve(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_rng_retrieve_response *p;
	uint8_t first[32];

	rng(f, 32);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_int_equal(p->data_len, 32);
	memcpy(first, p->data, 32);
	rng(f, 32);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_memory_not_equal(p->data, first, 32);
	rng(f, 4096);
	req_expect_ok(f, 0);
	rng(f, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	rng(f, 4097);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
}

static void hash_op(struct engine_fx *f, bool with_alg, uint32_t alg)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_HASH);
	kmip_write_begin(&w, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
	if (with_alg) {
		kmip_write_enum(&w, KMIP_TAG_HASHING_ALGORITHM, alg);
	}
	kmip_write_end(&w);
	kmip_write_bytes(&w, KMIP_TAG_DATA, plain, sizeof(plain));
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

static void test_hash(void **state)
{
	struct engine_fx *f = *state;
	static const struct {
		uint32_t alg;
		const char *name;
	} cases[] = {
	    {KMIP_HASHING_ALGORITHM_SHA_1, "SHA1"},
	    {KMIP_HASHING_ALGORITHM_SHA_256, "SHA256"},
	    {KMIP_HASHING_ALGORITHM_SHA_384, "SHA384"},
	    {KMIP_HASHING_ALGORITHM_SHA_512, "SHA512"},
	    {KMIP_HASHING_ALGORITHM_SHA3_256, "SHA3-256"},
	};
	const struct kmip_hash_response *p;
	uint8_t want[64];
	unsigned n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hash_op(f, true, cases[i].alg);
		req_expect_ok(f, 0);
		p = req_item(f, 0)->response_payload;
		assert_int_equal(EVP_Digest(plain, sizeof(plain), want, &n,
					    EVP_get_digestbyname(cases[i].name), NULL),
				 1);
		assert_int_equal(p->data_len, n);
		assert_memory_equal(p->data, want, n);
	}
	hash_op(f, false, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_MISSING_DATA);
	hash_op(f, true, KMIP_HASHING_ALGORITHM_MD5);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_usage_mask, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aes_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_parameters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gcm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cipher_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_usage_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmac, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hmac, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rng_retrieve, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hash, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
