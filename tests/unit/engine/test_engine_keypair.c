/*
 * Create Key Pair (KMIP 1.4 §4.2) through keel_engine_handle: RSA and EC
 * pairs in 1.x (Common/Private/Public Template-Attribute) and 2.x
 * (Common/Private/Public Attributes), linked to each other, whose halves
 * OpenSSL reads back as one key pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "engine_req.h"

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

struct pair {
	char priv[129], pub[129];
};

/* The three attribute sets: algorithm and length common, a usage mask for each half. */
static void pair_attrs_v1(struct kmip_writer *w, uint32_t alg, int32_t bits)
{
	kmip_write_begin(w, KMIP_TAG_COMMON_TEMPLATE_ATTRIBUTE);
	req_attr_int(w, "Cryptographic Algorithm", true, (int32_t)alg);
	req_attr_int(w, "Cryptographic Length", false, bits);
	kmip_write_end(w);
	kmip_write_begin(w, KMIP_TAG_PRIVATE_KEY_TEMPLATE_ATTRIBUTE);
	req_attr_int(w, "Cryptographic Usage Mask", false, KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN);
	kmip_write_end(w);
	kmip_write_begin(w, KMIP_TAG_PUBLIC_KEY_TEMPLATE_ATTRIBUTE);
	req_attr_int(w, "Cryptographic Usage Mask", false, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY);
	kmip_write_end(w);
}

static void pair_attrs_v2(struct kmip_writer *w, uint32_t alg, int32_t bits)
{
	kmip_write_begin(w, KMIP_TAG_COMMON_ATTRIBUTES);
	kmip_write_enum(w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, alg);
	kmip_write_int(w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, bits);
	kmip_write_end(w);
	kmip_write_begin(w, KMIP_TAG_PRIVATE_KEY_ATTRIBUTES);
	kmip_write_int(w, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN);
	kmip_write_end(w);
	kmip_write_begin(w, KMIP_TAG_PUBLIC_KEY_ATTRIBUTES);
	kmip_write_int(w, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY);
	kmip_write_end(w);
}

/* Sends Create Key Pair in |major|.x; returns the result status. */
static uint32_t create_pair(struct engine_fx *f, int major, uint32_t alg, int32_t bits,
			    struct pair *out)
{
	struct kmip_writer w;
	const struct kmip_create_key_pair_response *p;

	req_begin(&w, major, major == 1 ? 4 : 0, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE_KEY_PAIR);
	if (major == 1) {
		pair_attrs_v1(&w, alg, bits);
	} else {
		pair_attrs_v2(&w, alg, bits);
	}
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	if (req_item(f, 0)->result_status != KMIP_RESULT_STATUS_SUCCESS) {
		return req_item(f, 0)->result_status;
	}
	p = req_item(f, 0)->response_payload;
	assert_true(p->private_key_unique_identifier_len < 129);
	assert_true(p->public_key_unique_identifier_len < 129);
	req_copy_uid(out->priv, p->private_key_unique_identifier,
		     p->private_key_unique_identifier_len);
	req_copy_uid(out->pub, p->public_key_unique_identifier,
		     p->public_key_unique_identifier_len);
	return KMIP_RESULT_STATUS_SUCCESS;
}

/* Get |uid| in |format| and parse it with OpenSSL. */
static EVP_PKEY *get_key(struct engine_fx *f, const char *uid, uint32_t format, bool priv)
{
	struct kmip_writer w;
	const struct kmip_get_response *g;
	const struct kmip_key_block *kb;
	const unsigned char *p;
	EVP_PKEY *pk;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, uid);
	kmip_write_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE, format);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	g = req_item(f, 0)->response_payload;
	assert_non_null(priv ? (const void *)g->private_key : (const void *)g->public_key);
	kb = priv ? g->private_key->key_block : g->public_key->key_block;
	assert_int_equal(kb->key_format_type, format);
	p = kb->key_value->key_material;
	if (format == KMIP_KEY_FORMAT_TYPE_PKCS_1) {
		pk = priv ? d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p,
					   (long)kb->key_value->key_material_len)
			  : d2i_PublicKey(EVP_PKEY_RSA, NULL, &p,
					  (long)kb->key_value->key_material_len);
	} else {
		pk = priv ? d2i_AutoPrivateKey(NULL, &p, (long)kb->key_value->key_material_len)
			  : d2i_PUBKEY(NULL, &p, (long)kb->key_value->key_material_len);
	}
	assert_non_null(pk);
	return pk;
}

/* The Link of |uid| names |other| with |type| (§3.35). */
static void expect_link(struct engine_fx *f, const char *uid, uint32_t type, const char *other)
{
	struct kmip_writer w;
	const struct kmip_get_attributes_response *p;
	const struct kmip_node *lt, *id;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Link", 4);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_int_equal(p->num_attribute, 1);
	assert_non_null(lt = kmip_node_find(p->attribute[0].attribute_value, KMIP_TAG_LINK_TYPE));
	assert_int_equal(lt->v.u32, type);
	assert_non_null(id = kmip_node_find(p->attribute[0].attribute_value,
					    KMIP_TAG_LINKED_OBJECT_IDENTIFIER));
	assert_int_equal(id->len, strlen(other));
	assert_memory_equal(id->v.text, other, id->len);
}

/* Both halves read back, match each other, and are linked. */
static void check_pair(struct engine_fx *f, const struct pair *kp, uint32_t priv_fmt,
		       uint32_t pub_fmt, int bits)
{
	EVP_PKEY *priv = get_key(f, kp->priv, priv_fmt, true);
	EVP_PKEY *pub = get_key(f, kp->pub, pub_fmt, false);

	assert_int_equal(EVP_PKEY_eq(priv, pub), 1);
	assert_int_equal(EVP_PKEY_get_bits(priv), bits);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
	expect_link(f, kp->priv, KMIP_LINK_TYPE_PUBLIC_KEY_LINK, kp->pub);
	expect_link(f, kp->pub, KMIP_LINK_TYPE_PRIVATE_KEY_LINK, kp->priv);
}

static void test_rsa_v1(void **state)
{
	struct engine_fx *f = *state;
	struct pair kp;

	assert_int_equal(create_pair(f, 1, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048, &kp),
			 KMIP_RESULT_STATUS_SUCCESS);
	check_pair(f, &kp, KMIP_KEY_FORMAT_TYPE_PKCS_1, KMIP_KEY_FORMAT_TYPE_PKCS_1, 2048);
	check_pair(f, &kp, KMIP_KEY_FORMAT_TYPE_PKCS_8, KMIP_KEY_FORMAT_TYPE_X_509, 2048);
	/* Each half keeps its own usage mask. */
	struct kmip_writer w;
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_CHECK);
	req_uid(&w, kp.pub);
	kmip_write_int(&w, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
}

static void test_rsa_sizes_v2(void **state)
{
	struct engine_fx *f = *state;
	struct pair kp;

	assert_int_equal(create_pair(f, 2, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 3072, &kp),
			 KMIP_RESULT_STATUS_SUCCESS);
	check_pair(f, &kp, KMIP_KEY_FORMAT_TYPE_PKCS_8, KMIP_KEY_FORMAT_TYPE_X_509, 3072);
	assert_int_equal(create_pair(f, 2, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 4096, &kp),
			 KMIP_RESULT_STATUS_SUCCESS);
	check_pair(f, &kp, KMIP_KEY_FORMAT_TYPE_PKCS_1, KMIP_KEY_FORMAT_TYPE_X_509, 4096);
}

static void test_ec(void **state)
{
	struct engine_fx *f = *state;
	struct pair kp;

	assert_int_equal(create_pair(f, 2, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 256, &kp),
			 KMIP_RESULT_STATUS_SUCCESS);
	check_pair(f, &kp, KMIP_KEY_FORMAT_TYPE_PKCS_8, KMIP_KEY_FORMAT_TYPE_X_509, 256);
	/* PKCS#1 is RSA's alone. */
	struct kmip_writer w;
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, kp.priv);
	kmip_write_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_TYPE_PKCS_1);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
	assert_int_equal(create_pair(f, 1, KMIP_CRYPTOGRAPHIC_ALGORITHM_ECDSA, 384, &kp),
			 KMIP_RESULT_STATUS_SUCCESS);
	check_pair(f, &kp, KMIP_KEY_FORMAT_TYPE_PKCS_8, KMIP_KEY_FORMAT_TYPE_X_509, 384);
}

static void test_refused(void **state)
{
	struct engine_fx *f = *state;
	struct pair kp;

	assert_int_equal(create_pair(f, 1, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 1024, &kp),
			 KMIP_RESULT_STATUS_OPERATION_FAILED);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	assert_int_equal(create_pair(f, 2, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 521, &kp),
			 KMIP_RESULT_STATUS_OPERATION_FAILED);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	/* Another client sees neither half. */
	assert_int_equal(create_pair(f, 1, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 256, &kp),
			 KMIP_RESULT_STATUS_SUCCESS);
	struct kmip_writer w;
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, kp.priv);
	req_item_end(&w);
	req_send(f, &f->bob, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

/*
 * A full batch of Gets whose answers each hold several plaintext buffers
 * (Transparent RSA: the private exponent, primes...): every one of them must
 * be kept until the response is written, however many there are.
 */
static void test_batch_of_transparent_gets(void **state)
{
	struct engine_fx *f = *state;
	struct pair kp;
	struct kmip_writer w;

	assert_int_equal(create_pair(f, 1, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048, &kp),
			 KMIP_RESULT_STATUS_SUCCESS);
	req_begin(&w, 1, 4, 8);
	for (int i = 0; i < 8; i++) {
		req_item_begin(&w, KMIP_OPERATION_GET);
		req_uid(&w, kp.priv);
		kmip_write_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE,
				KMIP_KEY_FORMAT_TYPE_TRANSPARENT_RSA_PRIVATE_KEY);
		req_item_end(&w);
	}
	req_send(f, &f->alice, &w);
	assert_int_equal(f->msg->num_batch_items, 8);
	for (size_t i = 0; i < 8; i++) {
		req_expect_ok(f, i);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rsa_v1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rsa_sizes_v2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ec, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_of_transparent_gets, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
