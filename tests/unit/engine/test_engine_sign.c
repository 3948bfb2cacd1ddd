/*
 * Sign (KMIP 1.4 §4.31) and Signature Verify (§4.32) through
 * keel_engine_handle, checked against OpenSSL with the keys Get returns:
 * RSA-2048 with PKCS#1 v1.5 and PSS, ECDSA P-256 and P-384; Data and Digested Data;
 * bad signatures (Validity Indicator Invalid), usage masks (§3.19), states
 * (§3.22) and streaming (Feature Not Supported). Also RSA Encrypt and
 * Decrypt (§4.29, §4.30) with OAEP, which share the key pairs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "engine_req.h"

static const uint8_t msg[] = "the quick brown fox signs the lazy dog";

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

/* Copies a response's Unique Identifier into |out|. */
static void copy_uid(char out[static 129], const char *uid, size_t len)
{
	assert_true(len < 129);
	memcpy(out, uid, len);
	out[len] = '\0';
}

struct params;
static void write_params(struct kmip_writer *w, const struct params *cp);

/* Create Key Pair (2.0) with the usage masks given and, unless NULL, Cryptographic Parameters
 * for both halves; then Activate both. */
static void create_pair(struct engine_fx *f, const struct params *cp, uint32_t alg, int32_t bits,
			int32_t priv_mask, int32_t pub_mask, struct pair *out)
{
	const struct kmip_create_key_pair_response *p;
	struct kmip_writer w;

	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE_KEY_PAIR);
	kmip_write_begin(&w, KMIP_TAG_COMMON_ATTRIBUTES);
	kmip_write_enum(&w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, alg);
	kmip_write_int(&w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, bits);
	write_params(&w, cp);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_PRIVATE_KEY_ATTRIBUTES);
	kmip_write_int(&w, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, priv_mask);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_PUBLIC_KEY_ATTRIBUTES);
	kmip_write_int(&w, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, pub_mask);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	copy_uid(out->priv, p->private_key_unique_identifier, p->private_key_unique_identifier_len);
	copy_uid(out->pub, p->public_key_unique_identifier, p->public_key_unique_identifier_len);
	req_begin(&w, 2, 0, 2);
	req_item_begin(&w, KMIP_OPERATION_ACTIVATE);
	req_uid(&w, out->priv);
	req_item_end(&w);
	req_item_begin(&w, KMIP_OPERATION_ACTIVATE);
	req_uid(&w, out->pub);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	req_expect_ok(f, 1);
}

/* Get |uid| (PKCS#8 or SubjectPublicKeyInfo) as an OpenSSL key. */
static EVP_PKEY *get_key(struct engine_fx *f, const char *uid, bool priv)
{
	const struct kmip_get_response *g;
	const struct kmip_key_value *kv;
	const unsigned char *p;
	struct kmip_writer w;
	EVP_PKEY *pk;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, uid);
	kmip_write_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE,
			priv ? KMIP_KEY_FORMAT_TYPE_PKCS_8 : KMIP_KEY_FORMAT_TYPE_X_509);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	g = req_item(f, 0)->response_payload;
	kv = priv ? g->private_key->key_block->key_value : g->public_key->key_block->key_value;
	p = kv->key_material;
	pk = priv ? d2i_AutoPrivateKey(NULL, &p, (long)kv->key_material_len)
		  : d2i_PUBKEY(NULL, &p, (long)kv->key_material_len);
	assert_non_null(pk);
	return pk;
}

/* Cryptographic Parameters (§3.6) of a test; 0 leaves a field out. */
struct params {
	uint32_t dsa, padding, hash;
};

static void write_params(struct kmip_writer *w, const struct params *cp)
{
	if (cp == NULL) {
		return;
	}
	kmip_write_begin(w, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
	if (cp->padding != 0) {
		kmip_write_enum(w, KMIP_TAG_PADDING_METHOD, cp->padding);
	}
	if (cp->hash != 0) {
		kmip_write_enum(w, KMIP_TAG_HASHING_ALGORITHM, cp->hash);
	}
	if (cp->dsa != 0) {
		kmip_write_enum(w, KMIP_TAG_DIGITAL_SIGNATURE_ALGORITHM, cp->dsa);
	}
	kmip_write_end(w);
}

/* Sends Sign (|digested|: |in| is the digest) or, with |sig|, Signature Verify. */
static void send_sig(struct engine_fx *f, int major, const char *uid, const struct params *cp,
		     const uint8_t *in, size_t in_len, bool digested, const uint8_t *sig,
		     size_t sig_len)
{
	struct kmip_writer w;

	req_begin(&w, major, major == 1 ? 4 : 0, 1);
	req_item_begin(&w, sig != NULL ? KMIP_OPERATION_SIGNATURE_VERIFY : KMIP_OPERATION_SIGN);
	req_uid(&w, uid);
	write_params(&w, cp);
	kmip_write_bytes(&w, digested ? KMIP_TAG_DIGESTED_DATA : KMIP_TAG_DATA, in, in_len);
	if (sig != NULL) {
		kmip_write_bytes(&w, KMIP_TAG_SIGNATURE_DATA, sig, sig_len);
	}
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

/* Signs |msg| through the engine into |out| (KC_MAX_SIGNATURE bytes); returns its length. */
static size_t engine_sign(struct engine_fx *f, const char *uid, const struct params *cp,
			  uint8_t *out)
{
	const struct kmip_sign_response *p;

	send_sig(f, 1, uid, cp, msg, sizeof(msg), false, NULL, 0);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_int_equal(p->unique_identifier_len, strlen(uid));
	assert_true(p->signature_data_len > 0 && p->signature_data_len <= 1024);
	memcpy(out, p->signature_data, p->signature_data_len);
	return p->signature_data_len;
}

/* Signature Verify of |sig| over |msg|: the Validity Indicator. */
static uint32_t engine_verify(struct engine_fx *f, int major, const char *uid,
			      const struct params *cp, const uint8_t *sig, size_t sig_len)
{
	const struct kmip_signature_verify_response *p;

	send_sig(f, major, uid, cp, msg, sizeof(msg), false, sig, sig_len);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	return p->validity_indicator;
}

/* OpenSSL's EVP_DigestSign/Verify context with SHA-256 and |pss| padding for RSA keys. */
static EVP_MD_CTX *ossl_ctx(EVP_PKEY *pk, bool sign, bool pss)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;

	assert_non_null(md);
	assert_int_equal(sign ? EVP_DigestSignInit(md, &pc, EVP_sha256(), NULL, pk)
			      : EVP_DigestVerifyInit(md, &pc, EVP_sha256(), NULL, pk),
			 1);
	if (pss) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_AUTO), 1);
	}
	return md;
}

static bool ossl_verify(EVP_PKEY *pk, bool pss, const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *md = ossl_ctx(pk, false, pss);
	int ok = EVP_DigestVerify(md, sig, sig_len, msg, sizeof(msg));

	EVP_MD_CTX_free(md);
	return ok == 1;
}

static size_t ossl_sign(EVP_PKEY *pk, bool pss, uint8_t *out)
{
	EVP_MD_CTX *md = ossl_ctx(pk, true, pss);
	size_t len = 1024;

	assert_int_equal(EVP_DigestSign(md, out, &len, msg, sizeof(msg)), 1);
	EVP_MD_CTX_free(md);
	return len;
}

/* Both directions with OpenSSL, and a flipped bit that does not verify. */
static void round_trip(struct engine_fx *f, const struct pair *kp, const struct params *cp,
		       bool pss)
{
	EVP_PKEY *priv = get_key(f, kp->priv, true), *pub = get_key(f, kp->pub, false);
	uint8_t sig[1024];
	size_t len = engine_sign(f, kp->priv, cp, sig);

	assert_true(ossl_verify(pub, pss, sig, len));
	assert_int_equal(engine_verify(f, 2, kp->pub, cp, sig, len), KMIP_VALIDITY_INDICATOR_VALID);
	sig[len / 2] ^= 0x01;
	assert_int_equal(engine_verify(f, 1, kp->pub, cp, sig, len),
			 KMIP_VALIDITY_INDICATOR_INVALID);
	len = ossl_sign(priv, pss, sig);
	assert_int_equal(engine_verify(f, 2, kp->pub, cp, sig, len), KMIP_VALIDITY_INDICATOR_VALID);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
}

static void test_rsa_pkcs1(void **state)
{
	struct engine_fx *f = *state;
	const struct params dsa = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA_256_WITH_RSA_ENCRYPTION, 0,
				   0};
	const struct params pad = {0, KMIP_PADDING_METHOD_PKCS1_V1_5,
				   KMIP_HASHING_ALGORITHM_SHA_256};
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	round_trip(f, &kp, &dsa, false);
	round_trip(f, &kp, &pad, false);
}

static void test_rsa_pss(void **state)
{
	struct engine_fx *f = *state;
	const struct params dsa = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_RSASSA_PSS, 0,
				   KMIP_HASHING_ALGORITHM_SHA_256};
	const struct params pad = {0, KMIP_PADDING_METHOD_PSS, KMIP_HASHING_ALGORITHM_SHA_256};
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	round_trip(f, &kp, &dsa, true);
	round_trip(f, &kp, &pad, true);
	/* RSASSA-PSS names no hash: the parameters must. */
	const struct params nohash = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_RSASSA_PSS, 0, 0};
	send_sig(f, 1, kp.priv, &nohash, msg, sizeof(msg), false, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_MISSING_DATA);
}

/* Digested Data (§4.31, 1.4): the client hashed; OpenSSL verifies it as a signature over msg. */
static void test_digested(void **state)
{
	struct engine_fx *f = *state;
	const struct params cp = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA256, 0, 0};
	const struct kmip_sign_response *p;
	uint8_t dg[32], sig[128];
	unsigned dg_len = 0;
	size_t sig_len;
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 256,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	assert_int_equal(EVP_Digest(msg, sizeof(msg), dg, &dg_len, EVP_sha256(), NULL), 1);
	send_sig(f, 1, kp.priv, &cp, dg, dg_len, true, NULL, 0);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_true(p->signature_data_len <= sizeof(sig));
	memcpy(sig, p->signature_data, p->signature_data_len);
	sig_len = p->signature_data_len;
	/* Get replaces the response |p| points into. */
	EVP_PKEY *pub = get_key(f, kp.pub, false);
	assert_true(ossl_verify(pub, false, sig, sig_len));
	EVP_PKEY_free(pub);
	/* A digest that is not SHA-256's size. */
	send_sig(f, 1, kp.priv, &cp, dg, 20, true, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
}

static void test_ecdsa(void **state)
{
	struct engine_fx *f = *state;
	const struct params dsa = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA256, 0, 0};
	const struct params hash = {0, 0, KMIP_HASHING_ALGORITHM_SHA_256};
	const struct params rsa = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA_256_WITH_RSA_ENCRYPTION, 0,
				   0};
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 256,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	round_trip(f, &kp, &dsa, false);
	round_trip(f, &kp, &hash, false);
	/* P-384, with OpenSSL (SHA-256) and with SHA-384 engine to engine. */
	const struct params sha384 = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA384, 0, 0};
	struct pair p384;
	uint8_t sig[1024];
	size_t len;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 384,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY,
		    &p384);
	round_trip(f, &p384, &dsa, false);
	len = engine_sign(f, p384.priv, &sha384, sig);
	assert_int_equal(engine_verify(f, 2, p384.pub, &sha384, sig, len),
			 KMIP_VALIDITY_INDICATOR_VALID);
	assert_int_equal(engine_verify(f, 2, p384.pub, &dsa, sig, len),
			 KMIP_VALIDITY_INDICATOR_INVALID);
	/* An RSA algorithm with an EC key. */
	send_sig(f, 2, kp.priv, &rsa, msg, sizeof(msg), false, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_BAD_CRYPTOGRAPHIC_PARAMETERS);
}

/* §3.19: each half signs or verifies only as its mask allows; a public key never signs. */
static void test_usage_mask(void **state)
{
	struct engine_fx *f = *state;
	const struct params cp = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA256, 0, 0};
	uint8_t sig[8] = {0};
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 256,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_DECRYPT, KMIP_CRYPTOGRAPHIC_USAGE_MASK_ENCRYPT,
		    &kp);
	send_sig(f, 2, kp.priv, &cp, msg, sizeof(msg), false, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK);
	send_sig(f, 2, kp.pub, &cp, msg, sizeof(msg), false, sig, sizeof(sig));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK);
	send_sig(f, 2, kp.pub, &cp, msg, sizeof(msg), false, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_OBJECT_TYPE);
}

/* §3.22: a Deactivated private key cannot sign, a Deactivated public key still verifies. */
static void test_deactivated(void **state)
{
	struct engine_fx *f = *state;
	const struct params cp = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA_256_WITH_RSA_ENCRYPTION, 0,
				  0};
	uint8_t sig[1024];
	size_t len;
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	len = engine_sign(f, kp.priv, &cp, sig);
	req_revoke(f, kp.priv, KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION);
	req_revoke(f, kp.pub, KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION);
	send_sig(f, 2, kp.priv, &cp, msg, sizeof(msg), false, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_WRONG_KEY_LIFECYCLE_STATE);
	assert_int_equal(engine_verify(f, 2, kp.pub, &cp, sig, len), KMIP_VALIDITY_INDICATOR_VALID);
}

/* Without parameters in the request, the key's Cryptographic Parameters attribute (§3.6). */
static void test_stored_params(void **state)
{
	struct engine_fx *f = *state;
	const struct params pss = {0, KMIP_PADDING_METHOD_PSS, KMIP_HASHING_ALGORITHM_SHA_256};
	uint8_t sig[1024];
	size_t len;
	struct pair kp;

	create_pair(f, &pss, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	len = engine_sign(f, kp.priv, NULL, sig);
	EVP_PKEY *pub = get_key(f, kp.pub, false);
	assert_true(ossl_verify(pub, true, sig, len));
	EVP_PKEY_free(pub);
	assert_int_equal(engine_verify(f, 1, kp.pub, NULL, sig, len),
			 KMIP_VALIDITY_INDICATOR_VALID);
	/* A key without the attribute needs them in the request. */
	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	send_sig(f, 1, kp.priv, NULL, msg, sizeof(msg), false, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_MISSING_DATA);
}

/* Set Attribute (2.0 §6.1.52) of a Date-Time attribute |tag| of |uid| to |t|. */
static void set_date(struct engine_fx *f, const char *uid, uint32_t tag, int64_t t)
{
	struct kmip_writer w;

	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_SET_ATTRIBUTE);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_NEW_ATTRIBUTE);
	kmip_write_datetime(&w, tag, t);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
}

/* §3.26: no Sign from the Protect Stop Date on; §3.25: no Verify before the Process Start Date. */
static void test_dates(void **state)
{
	struct engine_fx *f = *state;
	const struct params cp = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA256, 0, 0};
	const int64_t now = (int64_t)time(NULL);
	uint8_t sig[1024];
	size_t len;
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 256,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	/* Before its Protect Stop Date the private key signs. */
	set_date(f, kp.priv, KMIP_TAG_PROTECT_STOP_DATE, now + 3600);
	len = engine_sign(f, kp.priv, &cp, sig);
	set_date(f, kp.priv, KMIP_TAG_PROTECT_STOP_DATE, now - 3600);
	send_sig(f, 2, kp.priv, &cp, msg, sizeof(msg), false, NULL, 0);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_WRONG_KEY_LIFECYCLE_STATE);
	/* Processing is not protecting: the public key still verifies... */
	assert_int_equal(engine_verify(f, 2, kp.pub, &cp, sig, len), KMIP_VALIDITY_INDICATOR_VALID);
	set_date(f, kp.pub, KMIP_TAG_PROCESS_START_DATE, now - 3600);
	assert_int_equal(engine_verify(f, 2, kp.pub, &cp, sig, len), KMIP_VALIDITY_INDICATOR_VALID);
	/* ...until its Process Start Date is in the future. */
	set_date(f, kp.pub, KMIP_TAG_PROCESS_START_DATE, now + 3600);
	send_sig(f, 2, kp.pub, &cp, msg, sizeof(msg), false, sig, len);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_WRONG_KEY_LIFECYCLE_STATE);
}

/* Streaming (§4.31 Correlation Value, Init Indicator) and missing inputs. */
static void test_refused(void **state)
{
	struct engine_fx *f = *state;
	const struct params cp = {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA256, 0, 0};
	struct kmip_writer w;
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_EC, 256,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN, KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, &kp);
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_SIGN);
	req_uid(&w, kp.priv);
	write_params(&w, &cp);
	kmip_write_bytes(&w, KMIP_TAG_DATA, msg, sizeof(msg));
	kmip_write_bool(&w, KMIP_TAG_INIT_INDICATOR, true);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_FEATURE_NOT_SUPPORTED);
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_SIGN);
	req_uid(&w, kp.priv);
	write_params(&w, &cp);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_MISSING_DATA);
	/* Another client's key is not found. */
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_SIGN);
	req_uid(&w, kp.priv);
	write_params(&w, &cp);
	kmip_write_bytes(&w, KMIP_TAG_DATA, msg, sizeof(msg));
	req_item_end(&w);
	req_send(f, &f->bob, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

/* Encrypt with the public key (|encrypt|) or Decrypt with the private key, OAEP SHA-256. */
static void send_rsa(struct engine_fx *f, bool encrypt, const char *uid, uint32_t padding,
		     const uint8_t *in, size_t in_len)
{
	const struct params cp = {0, padding, KMIP_HASHING_ALGORITHM_SHA_256};
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, encrypt ? KMIP_OPERATION_ENCRYPT : KMIP_OPERATION_DECRYPT);
	req_uid(&w, uid);
	write_params(&w, &cp);
	kmip_write_bytes(&w, KMIP_TAG_DATA, in, in_len);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

/* OpenSSL's OAEP context as the engine's default: SHA-256, MGF1 over SHA-1 (§3.6). */
static EVP_PKEY_CTX *ossl_oaep(EVP_PKEY *pk, bool encrypt)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);

	assert_non_null(ctx);
	assert_int_equal(encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha1()), 1);
	return ctx;
}

static void test_rsa_oaep(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_encrypt_response *er;
	const struct kmip_decrypt_response *dr;
	uint8_t ct[512], pt[512];
	size_t ct_len = sizeof(ct), pt_len = sizeof(pt);
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pk;
	struct pair kp;

	create_pair(f, NULL, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048,
		    KMIP_CRYPTOGRAPHIC_USAGE_MASK_DECRYPT, KMIP_CRYPTOGRAPHIC_USAGE_MASK_ENCRYPT,
		    &kp);
	/* The engine encrypts, OpenSSL decrypts with the private key Get returns. */
	send_rsa(f, true, kp.pub, KMIP_PADDING_METHOD_OAEP, msg, sizeof(msg));
	req_expect_ok(f, 0);
	er = req_item(f, 0)->response_payload;
	assert_int_equal(er->data_len, 256);
	memcpy(ct, er->data, er->data_len);
	pk = get_key(f, kp.priv, true);
	ctx = ossl_oaep(pk, false);
	assert_int_equal(EVP_PKEY_decrypt(ctx, pt, &pt_len, ct, 256), 1);
	assert_int_equal(pt_len, sizeof(msg));
	assert_memory_equal(pt, msg, sizeof(msg));
	EVP_PKEY_CTX_free(ctx);
	/* OpenSSL encrypts, the engine decrypts. */
	ctx = ossl_oaep(pk, true);
	assert_int_equal(EVP_PKEY_encrypt(ctx, ct, &ct_len, msg, sizeof(msg)), 1);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	send_rsa(f, false, kp.priv, KMIP_PADDING_METHOD_OAEP, ct, ct_len);
	req_expect_ok(f, 0);
	dr = req_item(f, 0)->response_payload;
	assert_int_equal(dr->data_len, sizeof(msg));
	assert_memory_equal(dr->data, msg, sizeof(msg));
	/* A damaged ciphertext, PKCS#1 v1.5 (a padding oracle) and the wrong halves: refused. */
	ct[10] ^= 1;
	send_rsa(f, false, kp.priv, KMIP_PADDING_METHOD_OAEP, ct, ct_len);
	assert_int_equal(req_item(f, 0)->result_status, KMIP_RESULT_STATUS_OPERATION_FAILED);
	send_rsa(f, false, kp.priv, KMIP_PADDING_METHOD_PKCS1_V1_5, ct, ct_len);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	send_rsa(f, true, kp.priv, KMIP_PADDING_METHOD_OAEP, msg, sizeof(msg));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ILLEGAL_OPERATION);
	send_rsa(f, false, kp.pub, KMIP_PADDING_METHOD_OAEP, ct, ct_len);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ILLEGAL_OPERATION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rsa_pkcs1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rsa_pss, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_digested, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ecdsa, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_usage_mask, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deactivated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stored_params, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rsa_oaep, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
