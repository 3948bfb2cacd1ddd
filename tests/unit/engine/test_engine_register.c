/*
 * Register (KMIP 1.4 §4.3) through keel_engine_handle: every object type the
 * engine keeps, in 1.x (Template-Attribute) and 2.x (Attributes), the
 * attributes the server derives, and Get in each Key Format Type (§4.11),
 * checked against OpenSSL's own encodings of the same keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "engine_req.h"
#include "keel/pki.h"

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

/* ---- request pieces ------------------------------------------------------ */

/* Ends the Register, sends it as alice and expects it refused with |reason|. */
static void register_end_fails(struct engine_fx *f, struct kmip_writer *w, uint32_t reason)
{
	req_item_end(w);
	req_send(f, &f->alice, w);
	req_expect_fail(f, 0, reason);
}

/* Registers a private or public key that must be refused with |reason|. */
static void register_key_fails(struct engine_fx *f, uint32_t type, uint32_t format,
			       const uint8_t *m, size_t len, uint32_t reason)
{
	struct kmip_writer w;

	req_register_begin(&w, 1, type);
	kmip_write_begin(&w, type == KMIP_OBJECT_TYPE_PRIVATE_KEY ? KMIP_TAG_PRIVATE_KEY
								  : KMIP_TAG_PUBLIC_KEY);
	req_key_block(&w, format, 0, m, len);
	kmip_write_end(&w);
	register_end_fails(f, &w, reason);
}

/* Get in |format| (0: the default); returns the payload. */
static const struct kmip_get_response *get(struct engine_fx *f, const char *uid, uint32_t format)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, uid);
	if (format != 0) {
		kmip_write_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE, format);
	}
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	if (req_item(f, 0)->result_status != KMIP_RESULT_STATUS_SUCCESS) {
		print_message("get: reason %u: %.*s\n", req_item(f, 0)->result_reason,
			      (int)req_item(f, 0)->result_message_len,
			      req_item(f, 0)->result_message);
		return NULL;
	}
	return req_item(f, 0)->response_payload;
}

/* The first value of attribute |name| of |uid| in 1.4, or NULL. */
static const struct kmip_node *attr_value(struct engine_fx *f, const char *uid, const char *name)
{
	struct kmip_writer w;
	const struct kmip_get_attributes_response *p;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	return p->num_attribute > 0 ? p->attribute[0].attribute_value : NULL;
}

static const struct kmip_key_value *key_value_of(const struct kmip_get_response *g)
{
	const struct kmip_key_block *kb = g->symmetric_key ? g->symmetric_key->key_block
					  : g->private_key ? g->private_key->key_block
					  : g->public_key  ? g->public_key->key_block
					  : g->secret_data ? g->secret_data->key_block
					  : g->pgp_key	   ? g->pgp_key->key_block
					  : g->split_key   ? g->split_key->key_block
							   : NULL;

	assert_non_null(kb);
	return kb->key_value;
}

static void expect_material(const struct kmip_get_response *g, const uint8_t *m, size_t len)
{
	const struct kmip_key_value *kv;

	assert_non_null(g);
	kv = key_value_of(g);
	assert_int_equal(kv->key_material_len, len);
	assert_memory_equal(kv->key_material, m, len);
}

/* ---- OpenSSL encodings of a test key -------------------------------------- */

struct der {
	uint8_t *p;
	int len;
};

static struct der der_pkcs8(EVP_PKEY *pk)
{
	struct der d = {0};
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);

	assert_non_null(p8);
	d.len = i2d_PKCS8_PRIV_KEY_INFO(p8, &d.p);
	PKCS8_PRIV_KEY_INFO_free(p8);
	assert_true(d.len > 0);
	return d;
}

static struct der der_of(int (*i2d)(const EVP_PKEY *, unsigned char **), EVP_PKEY *pk)
{
	struct der d = {0};

	d.len = i2d(pk, &d.p);
	assert_true(d.len > 0);
	return d;
}

static int i2d_pubkey(const EVP_PKEY *pk, unsigned char **out)
{
	return i2d_PUBKEY(pk, out);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_symmetric_v1(void **state)
{
	struct engine_fx *f = *state;
	uint8_t key[32];
	char uid[129];
	const struct kmip_get_response *g;
	const struct kmip_node *v, *k;

	for (size_t i = 0; i < sizeof(key); i++) {
		key[i] = (uint8_t)(i * 7 + 1);
	}
	req_register_key(f, 1, KMIP_OBJECT_TYPE_SYMMETRIC_KEY, KMIP_KEY_FORMAT_TYPE_RAW, key,
			 sizeof(key), uid);
	expect_material(get(f, uid, 0), key, sizeof(key));
	/* Derived from the key: AES, 256 bits; the client's attributes kept. */
	assert_non_null(v = attr_value(f, uid, "Cryptographic Length"));
	assert_int_equal(v->v.i32, 256);
	assert_non_null(v = attr_value(f, uid, "Cryptographic Algorithm"));
	assert_int_equal(v->v.u32, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	assert_non_null(v = attr_value(f, uid, "x-owner"));
	assert_memory_equal(v->v.text, "tests", 5);
	assert_non_null(attr_value(f, uid, "Name"));
	/* Transparent Symmetric Key: {Key} (§2.1.7.1). */
	g = get(f, uid, KMIP_KEY_FORMAT_TYPE_TRANSPARENT_SYMMETRIC_KEY);
	assert_non_null(g);
	assert_non_null(k = kmip_node_find(key_value_of(g)->key_material_structure, KMIP_TAG_KEY));
	assert_int_equal(k->len, sizeof(key));
	assert_memory_equal(k->v.bytes, key, sizeof(key));
	/* A format a symmetric key does not have. */
	assert_null(get(f, uid, KMIP_KEY_FORMAT_TYPE_PKCS_1));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
}

/* KMIP 2.0: Attributes, and a key given as Transparent Symmetric Key. */
static void test_symmetric_v2_transparent(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	char uid[129];
	const struct kmip_node *v;

	req_register_begin(&w, 2, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_KEY_BLOCK);
	kmip_write_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE,
			KMIP_KEY_FORMAT_TYPE_TRANSPARENT_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_KEY_VALUE);
	kmip_write_begin(&w, KMIP_TAG_KEY_MATERIAL);
	kmip_write_bytes(&w, KMIP_TAG_KEY, key, sizeof(key));
	kmip_write_end(&w);
	kmip_write_end(&w);
	kmip_write_enum(&w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	kmip_write_int(&w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 128);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_register_end(f, &w, uid);
	expect_material(get(f, uid, KMIP_KEY_FORMAT_TYPE_RAW), key, sizeof(key));
	assert_non_null(v = attr_value(f, uid, "Cryptographic Usage Mask"));
	assert_int_equal(v->v.i32, 12);
	assert_non_null(v = attr_value(f, uid, "Cryptographic Length"));
	assert_int_equal(v->v.i32, 128);
}

static void test_secret_data_and_opaque(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	static const uint8_t pw[] = "correct horse battery staple";
	static const uint8_t blob[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
	char sd_uid[129], op_uid[129];
	const struct kmip_get_response *g;

	req_register_begin(&w, 1, KMIP_OBJECT_TYPE_SECRET_DATA);
	kmip_write_begin(&w, KMIP_TAG_SECRET_DATA);
	kmip_write_enum(&w, KMIP_TAG_SECRET_DATA_TYPE, KMIP_SECRET_DATA_TYPE_PASSWORD);
	req_key_block(&w, KMIP_KEY_FORMAT_TYPE_OPAQUE, 0, pw, sizeof(pw) - 1);
	kmip_write_end(&w);
	req_register_end(f, &w, sd_uid);
	g = get(f, sd_uid, 0);
	expect_material(g, pw, sizeof(pw) - 1);
	assert_int_equal(g->secret_data->secret_data_type, KMIP_SECRET_DATA_TYPE_PASSWORD);
	assert_int_equal(g->secret_data->key_block->key_format_type, KMIP_KEY_FORMAT_TYPE_OPAQUE);
	assert_null(get(f, sd_uid, KMIP_KEY_FORMAT_TYPE_RAW));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);

	req_register_begin(&w, 2, KMIP_OBJECT_TYPE_OPAQUE_OBJECT);
	kmip_write_begin(&w, KMIP_TAG_OPAQUE_OBJECT);
	kmip_write_enum(&w, KMIP_TAG_OPAQUE_DATA_TYPE, 0x80000001u);
	kmip_write_bytes(&w, KMIP_TAG_OPAQUE_DATA_VALUE, blob, sizeof(blob));
	kmip_write_end(&w);
	req_register_end(f, &w, op_uid);
	g = get(f, op_uid, 0);
	assert_non_null(g);
	assert_non_null(g->opaque_object);
	assert_int_equal(g->opaque_object->opaque_data_type, 0x80000001u);
	assert_int_equal(g->opaque_object->opaque_data_value_len, sizeof(blob));
	assert_memory_equal(g->opaque_object->opaque_data_value, blob, sizeof(blob));
	assert_null(get(f, op_uid, KMIP_KEY_FORMAT_TYPE_RAW));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
}

/* A PGP Key (§2.2.9) comes back with its version, bytes, format and algorithm. */
static void test_pgp_key(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	static const uint8_t pgp[] = {0x99, 0x01, 0x0d, 0x04, 0x5a, 0x1b, 0x2c, 0x3d};
	char uid[129];
	const struct kmip_get_response *g;
	const struct kmip_node *v;

	req_register_begin(&w, 1, KMIP_OBJECT_TYPE_PGP_KEY);
	kmip_write_begin(&w, KMIP_TAG_PGP_KEY);
	kmip_write_int(&w, KMIP_TAG_PGP_KEY_VERSION, 4);
	req_key_block(&w, KMIP_KEY_FORMAT_TYPE_OPAQUE, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, pgp,
		      sizeof(pgp));
	kmip_write_end(&w);
	req_register_end(f, &w, uid);
	g = get(f, uid, 0);
	expect_material(g, pgp, sizeof(pgp));
	assert_int_equal(g->object_type, KMIP_OBJECT_TYPE_PGP_KEY);
	assert_int_equal(g->pgp_key->pgp_key_version, 4);
	assert_int_equal(g->pgp_key->key_block->key_format_type, KMIP_KEY_FORMAT_TYPE_OPAQUE);
	assert_non_null(v = attr_value(f, uid, "Cryptographic Algorithm"));
	assert_int_equal(v->v.u32, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA);
	assert_null(get(f, uid, KMIP_KEY_FORMAT_TYPE_RAW));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
}

/* A Register of part |id| of a 3-part, threshold |threshold| Split Key (§2.2.5). */
static void split_key_request(struct kmip_writer *w, int32_t id, int32_t threshold, uint32_t method,
			      const uint8_t *prime, size_t prime_len, const uint8_t *m, size_t len)
{
	req_register_begin(w, 1, KMIP_OBJECT_TYPE_SPLIT_KEY);
	kmip_write_begin(w, KMIP_TAG_SPLIT_KEY);
	kmip_write_int(w, KMIP_TAG_SPLIT_KEY_PARTS, 3);
	kmip_write_int(w, KMIP_TAG_KEY_PART_IDENTIFIER, id);
	kmip_write_int(w, KMIP_TAG_SPLIT_KEY_THRESHOLD, threshold);
	kmip_write_enum(w, KMIP_TAG_SPLIT_KEY_METHOD, method);
	if (prime_len != 0) {
		kmip_write_bigint(w, KMIP_TAG_PRIME_FIELD_SIZE, prime, prime_len);
	}
	req_key_block(w, KMIP_KEY_FORMAT_TYPE_RAW, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, m, len);
	kmip_write_end(w);
}

/* A Split Key part comes back with its fields; fields that disagree are refused. */
static void test_split_key(void **state)
{
	struct engine_fx *f = *state;
	static const uint8_t part[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
	static const uint8_t prime[8] = {0, 0, 0, 0, 0, 0x01, 0x00, 0x01};
	struct kmip_writer w;
	const struct kmip_split_key *sk;
	const struct kmip_get_response *g;
	char uid[129];

	split_key_request(&w, 2, 2, KMIP_SPLIT_KEY_METHOD_POLYNOMIAL_SHARING_PRIME_FIELD, prime,
			  sizeof(prime), part, sizeof(part));
	req_register_end(f, &w, uid);
	g = get(f, uid, 0);
	expect_material(g, part, sizeof(part));
	sk = g->split_key;
	assert_int_equal(sk->split_key_parts, 3);
	assert_int_equal(sk->key_part_identifier, 2);
	assert_int_equal(sk->split_key_threshold, 2);
	assert_int_equal(sk->split_key_method,
			 KMIP_SPLIT_KEY_METHOD_POLYNOMIAL_SHARING_PRIME_FIELD);
	assert_int_equal(sk->prime_field_size_len, sizeof(prime));
	assert_memory_equal(sk->prime_field_size, prime, sizeof(prime));
	assert_null(get(f, uid, KMIP_KEY_FORMAT_TYPE_OPAQUE));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
	/* Threshold above the parts; part 4 of 3; a prime field without its size. */
	split_key_request(&w, 1, 4, KMIP_SPLIT_KEY_METHOD_XOR, NULL, 0, part, sizeof(part));
	register_end_fails(f, &w, KMIP_RESULT_REASON_INVALID_FIELD);
	split_key_request(&w, 4, 2, KMIP_SPLIT_KEY_METHOD_XOR, NULL, 0, part, sizeof(part));
	register_end_fails(f, &w, KMIP_RESULT_REASON_INVALID_FIELD);
	split_key_request(&w, 1, 2, KMIP_SPLIT_KEY_METHOD_POLYNOMIAL_SHARING_PRIME_FIELD, NULL, 0,
			  part, sizeof(part));
	register_end_fails(f, &w, KMIP_RESULT_REASON_INVALID_FIELD);
}

static void register_cert(struct engine_fx *f, int major, const struct der *d, char uid[static 129])
{
	struct kmip_writer w;

	req_register_begin(&w, major, KMIP_OBJECT_TYPE_CERTIFICATE);
	kmip_write_begin(&w, KMIP_TAG_CERTIFICATE);
	kmip_write_enum(&w, KMIP_TAG_CERTIFICATE_TYPE, KMIP_CERTIFICATE_TYPE_X_509);
	kmip_write_bytes(&w, KMIP_TAG_CERTIFICATE_VALUE, d->p, (size_t)d->len);
	kmip_write_end(&w);
	req_register_end(f, &w, uid);
}

static void test_certificate(void **state)
{
	struct engine_fx *f = *state;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	struct der d = {0};
	uint8_t sha[32];
	char uid[129], uid2[129];
	const struct kmip_get_response *g;
	const struct kmip_node *v, *dn;

	assert_int_equal(keel_pki_rsa_key(2048, &pk), 0);
	assert_int_equal(keel_pki_ca_new(pk, "keel-register-test", 30, &x), 0);
	d.len = i2d_X509(x, &d.p);
	assert_true(d.len > 0);
	register_cert(f, 1, &d, uid);
	g = get(f, uid, 0);
	assert_non_null(g);
	assert_non_null(g->certificate);
	assert_int_equal(g->certificate->certificate_type, KMIP_CERTIFICATE_TYPE_X_509);
	assert_int_equal(g->certificate->certificate_value_len, d.len);
	assert_memory_equal(g->certificate->certificate_value, d.p, (size_t)d.len);
	/* Derived: Certificate Type, Digest (SHA-256 of the DER), 1.x subject and issuer. */
	assert_non_null(v = attr_value(f, uid, "Certificate Type"));
	assert_int_equal(v->v.u32, KMIP_CERTIFICATE_TYPE_X_509);
	assert_non_null(v = attr_value(f, uid, "Digest"));
	SHA256(d.p, (size_t)d.len, sha);
	assert_non_null(dn = kmip_node_find(v, KMIP_TAG_DIGEST_VALUE));
	assert_int_equal(dn->len, 32);
	assert_memory_equal(dn->v.bytes, sha, 32);
	assert_non_null(v = attr_value(f, uid, "Certificate Subject"));
	assert_non_null(dn = kmip_node_find(v, KMIP_TAG_CERTIFICATE_SUBJECT_DISTINGUISHED_NAME));
	assert_non_null(memmem(dn->v.text, dn->len, "CN=keel-register-test", 21));
	assert_non_null(attr_value(f, uid, "Certificate Issuer"));
	assert_non_null(attr_value(f, uid, "Certificate Identifier"));
	assert_non_null(v = attr_value(f, uid, "Cryptographic Algorithm"));
	assert_int_equal(v->v.u32, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA);
	/* 2.0 has no Certificate Subject attribute: not derived there. */
	register_cert(f, 2, &d, uid2);
	assert_null(attr_value(f, uid2, "Certificate Subject"));
	assert_non_null(attr_value(f, uid2, "Digest"));
	OPENSSL_free(d.p);
	X509_free(x);
	EVP_PKEY_free(pk);
}

/* An RSA key registered in each format comes back identical in every other. */
static void test_rsa_formats(void **state)
{
	struct engine_fx *f = *state;
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct der p1, p8, spki, pub1;
	char priv[129], priv8[129], pub[129];
	const struct kmip_node *v, *n;
	const struct kmip_get_response *g;

	assert_non_null(pk);
	p1 = der_of(i2d_PrivateKey, pk);
	p8 = der_pkcs8(pk);
	spki = der_of(i2d_pubkey, pk);
	pub1 = der_of(i2d_PublicKey, pk);
	req_register_key(f, 1, KMIP_OBJECT_TYPE_PRIVATE_KEY, KMIP_KEY_FORMAT_TYPE_PKCS_1, p1.p,
			 (size_t)p1.len, priv);
	req_register_key(f, 2, KMIP_OBJECT_TYPE_PRIVATE_KEY, KMIP_KEY_FORMAT_TYPE_PKCS_8, p8.p,
			 (size_t)p8.len, priv8);
	req_register_key(f, 1, KMIP_OBJECT_TYPE_PUBLIC_KEY, KMIP_KEY_FORMAT_TYPE_X_509, spki.p,
			 (size_t)spki.len, pub);
	/* Default: the registered format; others on request. */
	expect_material(get(f, priv, 0), p1.p, (size_t)p1.len);
	expect_material(get(f, priv, KMIP_KEY_FORMAT_TYPE_PKCS_8), p8.p, (size_t)p8.len);
	expect_material(get(f, priv8, KMIP_KEY_FORMAT_TYPE_PKCS_1), p1.p, (size_t)p1.len);
	expect_material(get(f, pub, 0), spki.p, (size_t)spki.len);
	expect_material(get(f, pub, KMIP_KEY_FORMAT_TYPE_PKCS_1), pub1.p, (size_t)pub1.len);
	assert_null(get(f, pub, KMIP_KEY_FORMAT_TYPE_PKCS_8));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
	assert_null(get(f, priv, KMIP_KEY_FORMAT_TYPE_RAW));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
	assert_null(get(f, pub, KMIP_KEY_FORMAT_TYPE_TRANSPARENT_EC_PUBLIC_KEY));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
	assert_non_null(v = attr_value(f, priv, "Cryptographic Length"));
	assert_int_equal(v->v.i32, 2048);
	assert_non_null(v = attr_value(f, pub, "Cryptographic Algorithm"));
	assert_int_equal(v->v.u32, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA);
	/* Transparent RSA Private Key: the modulus is the key's (§2.1.7.7). */
	g = get(f, priv, KMIP_KEY_FORMAT_TYPE_TRANSPARENT_RSA_PRIVATE_KEY);
	assert_non_null(g);
	/* 2048 bits and a sign bit: 264 bytes, a multiple of 8 (§9.1.1.4). */
	BIGNUM *bn = NULL;
	uint8_t mod[264];
	assert_true(EVP_PKEY_get_bn_param(pk, "n", &bn));
	assert_int_equal(BN_bn2binpad(bn, mod, sizeof(mod)), sizeof(mod));
	BN_free(bn);
	assert_non_null(
	    n = kmip_node_find(key_value_of(g)->key_material_structure, KMIP_TAG_MODULUS));
	assert_int_equal(n->len, sizeof(mod));
	assert_memory_equal(n->v.bytes, mod, sizeof(mod));
	assert_non_null(kmip_node_find(key_value_of(g)->key_material_structure, KMIP_TAG_P));
	g = get(f, pub, KMIP_KEY_FORMAT_TYPE_TRANSPARENT_RSA_PUBLIC_KEY);
	assert_non_null(g);
	assert_null(
	    kmip_node_find(key_value_of(g)->key_material_structure, KMIP_TAG_PRIVATE_EXPONENT));
	OPENSSL_free(p1.p);
	OPENSSL_clear_free(p8.p, (size_t)p8.len);
	OPENSSL_free(spki.p);
	OPENSSL_free(pub1.p);
	EVP_PKEY_free(pk);
}

/* Transparent EC Private/Public Key (§2.1.7.9, §2.1.7.10): P-256 and D or Q String. */
static void expect_transparent_ec(struct engine_fx *f, EVP_PKEY *pk, const char *priv,
				  const char *pub)
{
	const struct kmip_get_response *g;
	const struct kmip_node *km, *n;
	uint8_t want[65], d[40];
	size_t want_len = 0, d_len;
	BIGNUM *bn = NULL;

	assert_non_null(g = get(f, priv, KMIP_KEY_FORMAT_TYPE_TRANSPARENT_EC_PRIVATE_KEY));
	km = key_value_of(g)->key_material_structure;
	assert_non_null(n = kmip_node_find(km, KMIP_TAG_RECOMMENDED_CURVE));
	assert_int_equal(n->v.u32, KMIP_RECOMMENDED_CURVE_P_256);
	/* Its bits and a sign bit, padded to a multiple of 8 bytes (§9.1.1.4): 40 for most. */
	assert_true(EVP_PKEY_get_bn_param(pk, "priv", &bn));
	d_len = ((size_t)BN_num_bits(bn) / 8 + 1 + 7) / 8 * 8;
	assert_int_equal(BN_bn2binpad(bn, d, (int)d_len), d_len);
	BN_clear_free(bn);
	assert_non_null(n = kmip_node_find(km, KMIP_TAG_D));
	assert_int_equal(n->len, d_len);
	assert_memory_equal(n->v.bytes, d, d_len);
	OPENSSL_cleanse(d, sizeof(d));
	assert_non_null(g = get(f, pub, KMIP_KEY_FORMAT_TYPE_TRANSPARENT_EC_PUBLIC_KEY));
	km = key_value_of(g)->key_material_structure;
	assert_true(EVP_PKEY_get_octet_string_param(pk, "pub", want, sizeof(want), &want_len));
	assert_non_null(n = kmip_node_find(km, KMIP_TAG_Q_STRING));
	assert_int_equal(n->len, want_len);
	assert_memory_equal(n->v.bytes, want, want_len);
	assert_null(kmip_node_find(km, KMIP_TAG_D));
	/* The private form of a public key is not there to give. */
	assert_null(get(f, pub, KMIP_KEY_FORMAT_TYPE_TRANSPARENT_EC_PRIVATE_KEY));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
}

/* A SEC 1 EC Private Key (KMIP 1.4 §9.1.3.2.3, RFC 5915) registered and got back in each form. */
static void test_ec_private_key_format(void **state)
{
	struct engine_fx *f = *state;
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct der sec1, p8, spki;
	char priv[129], pub[129];
	const struct kmip_node *v;

	assert_non_null(pk);
	sec1 = der_of(i2d_PrivateKey, pk);
	p8 = der_pkcs8(pk);
	spki = der_of(i2d_pubkey, pk);
	req_register_key(f, 1, KMIP_OBJECT_TYPE_PRIVATE_KEY, KMIP_KEY_FORMAT_TYPE_EC_PRIVATE_KEY,
			 sec1.p, (size_t)sec1.len, priv);
	req_register_key(f, 1, KMIP_OBJECT_TYPE_PUBLIC_KEY, KMIP_KEY_FORMAT_TYPE_X_509, spki.p,
			 (size_t)spki.len, pub);
	expect_material(get(f, priv, 0), sec1.p, (size_t)sec1.len);
	expect_material(get(f, priv, KMIP_KEY_FORMAT_TYPE_PKCS_8), p8.p, (size_t)p8.len);
	assert_null(get(f, priv, KMIP_KEY_FORMAT_TYPE_PKCS_1));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
	/* EC Private Key names a private key only. */
	assert_null(get(f, pub, KMIP_KEY_FORMAT_TYPE_EC_PRIVATE_KEY));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
	assert_non_null(v = attr_value(f, priv, "Cryptographic Algorithm"));
	assert_int_equal(v->v.u32, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC);
	assert_non_null(v = attr_value(f, priv, "Cryptographic Length"));
	assert_int_equal(v->v.i32, 256);
	expect_transparent_ec(f, pk, priv, pub);
	/* A public key in EC Private Key format; a SEC 1 key cut short. */
	register_key_fails(f, KMIP_OBJECT_TYPE_PUBLIC_KEY, KMIP_KEY_FORMAT_TYPE_EC_PRIVATE_KEY,
			   sec1.p, (size_t)sec1.len,
			   KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);
	register_key_fails(f, KMIP_OBJECT_TYPE_PRIVATE_KEY, KMIP_KEY_FORMAT_TYPE_EC_PRIVATE_KEY,
			   sec1.p, (size_t)sec1.len - 1, KMIP_RESULT_REASON_INVALID_FIELD);
	OPENSSL_clear_free(sec1.p, (size_t)sec1.len);
	OPENSSL_clear_free(p8.p, (size_t)p8.len);
	OPENSSL_free(spki.p);
	EVP_PKEY_free(pk);
}

/* A Transparent RSA Public Key registered from its components (§2.1.7.6). */
static void test_rsa_transparent_register(void **state)
{
	struct engine_fx *f = *state;
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct kmip_writer w;
	struct der spki;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t nb[264], eb[8];
	char uid[129];

	assert_non_null(pk);
	assert_true(EVP_PKEY_get_bn_param(pk, "n", &n) && EVP_PKEY_get_bn_param(pk, "e", &e));
	/* Big Integers padded to 8 bytes with the sign bit clear (§9.1.1.4). */
	assert_int_equal(BN_bn2binpad(n, nb, sizeof(nb)), sizeof(nb));
	assert_int_equal(BN_bn2binpad(e, eb, sizeof(eb)), sizeof(eb));
	req_register_begin(&w, 1, KMIP_OBJECT_TYPE_PUBLIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_PUBLIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_KEY_BLOCK);
	kmip_write_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE,
			KMIP_KEY_FORMAT_TYPE_TRANSPARENT_RSA_PUBLIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_KEY_VALUE);
	kmip_write_begin(&w, KMIP_TAG_KEY_MATERIAL);
	kmip_write_bigint(&w, KMIP_TAG_MODULUS, nb, sizeof(nb));
	kmip_write_bigint(&w, KMIP_TAG_PUBLIC_EXPONENT, eb, sizeof(eb));
	kmip_write_end(&w);
	kmip_write_end(&w);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_register_end(f, &w, uid);
	spki = der_of(i2d_pubkey, pk);
	expect_material(get(f, uid, KMIP_KEY_FORMAT_TYPE_X_509), spki.p, (size_t)spki.len);
	OPENSSL_free(spki.p);
	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(pk);
}

static void test_register_refusals(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x05, 0xff};

	/* Key material that does not parse in its format. */
	register_key_fails(f, KMIP_OBJECT_TYPE_PRIVATE_KEY, KMIP_KEY_FORMAT_TYPE_PKCS_8, junk,
			   sizeof(junk), KMIP_RESULT_REASON_INVALID_FIELD);
	/* A certificate that is not one. */
	req_register_begin(&w, 1, KMIP_OBJECT_TYPE_CERTIFICATE);
	kmip_write_begin(&w, KMIP_TAG_CERTIFICATE);
	kmip_write_enum(&w, KMIP_TAG_CERTIFICATE_TYPE, KMIP_CERTIFICATE_TYPE_X_509);
	kmip_write_bytes(&w, KMIP_TAG_CERTIFICATE_VALUE, junk, sizeof(junk));
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	/* A server-derived attribute from the client. */
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_REGISTER);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Certificate Type", true, KMIP_CERTIFICATE_TYPE_X_509);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_SYMMETRIC_KEY);
	req_key_block(&w, KMIP_KEY_FORMAT_TYPE_RAW, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, junk, 6);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_symmetric_v1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symmetric_v2_transparent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secret_data_and_opaque, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pgp_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_split_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_certificate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rsa_formats, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ec_private_key_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rsa_transparent_register, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_register_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
