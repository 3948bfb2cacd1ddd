/*
 * Get with a Key Wrapping Specification (KMIP 1.4 §2.1.5, §4.11): the key
 * comes back wrapped with another of the client's keys by AES Key Wrap
 * (RFC 3394), and OpenSSL unwraps it to the same bytes a plain Get gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>

#include "engine_req.h"

#define WRAP_KEY KMIP_CRYPTOGRAPHIC_USAGE_MASK_WRAP_KEY

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

/* Get |uid| wrapped by |kek| with Block Cipher Mode NIST Key Wrap and |encoding|. */
static void get_wrapped(struct engine_fx *f, const struct keel_client_identity *who,
			const char *uid, const char *kek, uint32_t encoding)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_KEY_WRAPPING_SPECIFICATION);
	kmip_write_enum(&w, KMIP_TAG_WRAPPING_METHOD, KMIP_WRAPPING_METHOD_ENCRYPT);
	kmip_write_begin(&w, KMIP_TAG_ENCRYPTION_KEY_INFORMATION);
	req_uid(&w, kek);
	kmip_write_begin(&w, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
	kmip_write_enum(&w, KMIP_TAG_BLOCK_CIPHER_MODE, KMIP_BLOCK_CIPHER_MODE_NIST_KEY_WRAP);
	kmip_write_end(&w);
	kmip_write_end(&w);
	kmip_write_enum(&w, KMIP_TAG_ENCODING_OPTION, encoding);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, who, &w);
}

/* RFC 3394 unwrap with OpenSSL; returns the plaintext length. */
static int kw_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
		     uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *c = kek_len == 32 ? EVP_aes_256_wrap() : EVP_aes_128_wrap();
	int n = 0, fin = 0;

	assert_non_null(ctx);
	assert_int_equal(EVP_DecryptInit_ex(ctx, c, NULL, kek, NULL), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, out, &n, in, (int)in_len), 1);
	assert_int_equal(EVP_DecryptFinal_ex(ctx, out + n, &fin), 1);
	EVP_CIPHER_CTX_free(ctx);
	return n + fin;
}

static void test_wrap_aes_key(void **state)
{
	struct engine_fx *f = *state;
	char kek[129], key[129];
	uint8_t kek_bytes[64], key_bytes[64], out[64];
	size_t kek_len, key_len;
	const struct kmip_get_response *g;
	const struct kmip_key_block *kb;

	req_create_aes(f, 256, WRAP_KEY, true, kek);
	req_create_aes(f, 128, 12, false, key);
	kek_len = req_get_key(f, kek, kek_bytes);
	key_len = req_get_key(f, key, key_bytes);
	get_wrapped(f, &f->alice, key, kek, KMIP_ENCODING_OPTION_NO_ENCODING);
	req_expect_ok(f, 0);
	g = req_item(f, 0)->response_payload;
	kb = g->symmetric_key->key_block;
	assert_int_equal(kb->key_format_type, KMIP_KEY_FORMAT_TYPE_RAW);
	assert_null(kb->key_value);
	assert_int_equal(kb->wrapped_key_value_len, key_len + 8);
	assert_non_null(kb->key_wrapping_data);
	assert_int_equal(kb->key_wrapping_data->wrapping_method, KMIP_WRAPPING_METHOD_ENCRYPT);
	assert_int_equal(kb->key_wrapping_data->encoding_option, KMIP_ENCODING_OPTION_NO_ENCODING);
	assert_memory_equal(kb->key_wrapping_data->encryption_key_information->unique_identifier,
			    kek, strlen(kek));
	assert_int_equal(
	    kw_unwrap(kek_bytes, kek_len, kb->wrapped_key_value, kb->wrapped_key_value_len, out),
	    (int)key_len);
	assert_memory_equal(out, key_bytes, key_len);
}

static void test_wrap_refusals(void **state)
{
	struct engine_fx *f = *state;
	char kek[129], plain[129], idle[129], key[129];

	req_create_aes(f, 256, WRAP_KEY, true, kek);
	req_create_aes(f, 256, 12, true, plain);
	req_create_aes(f, 256, WRAP_KEY, false, idle);
	req_create_aes(f, 128, 12, false, key);
	/* A wrapping key without Wrap Key usage (§3.19). */
	get_wrapped(f, &f->alice, key, plain, KMIP_ENCODING_OPTION_NO_ENCODING);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	/* A Pre-Active wrapping key protects nothing (§3.22). */
	get_wrapped(f, &f->alice, key, idle, KMIP_ENCODING_OPTION_NO_ENCODING);
	assert_int_equal(req_item(f, 0)->result_status, KMIP_RESULT_STATUS_OPERATION_FAILED);
	/* TTLV encoding is not offered. */
	get_wrapped(f, &f->alice, key, kek, KMIP_ENCODING_OPTION_TTLV_ENCODING);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_FEATURE_NOT_SUPPORTED);
	/* Another client's key is not found, whichever side it is on. */
	get_wrapped(f, &f->bob, key, kek, KMIP_ENCODING_OPTION_NO_ENCODING);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
	get_wrapped(f, &f->alice, key, "no-such-key", KMIP_ENCODING_OPTION_NO_ENCODING);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_wrap_aes_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrap_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
