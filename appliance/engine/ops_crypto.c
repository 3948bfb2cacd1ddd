/*
 * Cryptographic operations with managed keys: Encrypt (KMIP 1.4 §4.29),
 * Decrypt (§4.30), MAC (§4.33), MAC Verify (§4.34), RNG Retrieve (§4.35)
 * and Hash (§4.37); the same in 2.x (2.0 §6.1). Single-shot only: streaming
 * with a Correlation Value answers Feature Not Supported. The key is
 * unwrapped for one operation and wiped before the handler returns.
 */
#include "engine_int.h"

#include <string.h>

#include "keel/crypto.h"
#include "log.h"

/* RNG Retrieve's ceiling per request: a client wanting more asks again. */
#define RNG_MAX_BYTES 4096

/* One row per hash: its Hashing Algorithm (§9.1.3.2.16) and HMAC algorithm (§9.1.3.2.13). */
static const struct {
	uint32_t hash;
	uint32_t hmac;
	enum kc_hash kc;
} hashes[] = {
    {KMIP_HASHING_ALGORITHM_SHA_1, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA1, KC_SHA1},
    {KMIP_HASHING_ALGORITHM_SHA_224, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA224, KC_SHA224},
    {KMIP_HASHING_ALGORITHM_SHA_256, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA256, KC_SHA256},
    {KMIP_HASHING_ALGORITHM_SHA_384, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA384, KC_SHA384},
    {KMIP_HASHING_ALGORITHM_SHA_512, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA512, KC_SHA512},
    {KMIP_HASHING_ALGORITHM_SHA3_224, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_224, KC_SHA3_224},
    {KMIP_HASHING_ALGORITHM_SHA3_256, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_256, KC_SHA3_256},
    {KMIP_HASHING_ALGORITHM_SHA3_384, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_384, KC_SHA3_384},
    {KMIP_HASHING_ALGORITHM_SHA3_512, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_512, KC_SHA3_512},
};
#define NUM_HASHES (sizeof(hashes) / sizeof(hashes[0]))

/* The hash of a Hashing Algorithm (|hmac| false) or an HMAC algorithm (|hmac| true). */
int eng_find_hash(uint32_t value, bool hmac, enum kc_hash *out)
{
	for (size_t i = 0; i < NUM_HASHES; i++) {
		if ((hmac ? hashes[i].hmac : hashes[i].hash) == value) {
			*out = hashes[i].kc;
			return 0;
		}
	}
	return -1;
}

/* keel_crypto's errors as KMIP results; the detail was logged there. */
int eng_crypto_err(struct eng_req *r, int err)
{
	switch (err) {
	case KC_OK:
		return 0;
	case KC_E_UNSUPPORTED:
		return eng_fail(r, ENG_E_UNSUPPORTED_PARAMS, NULL);
	case KC_E_INVALID:
		return eng_fail(r, ENG_E_BAD_PARAMS, "data, IV or tag do not fit the parameters");
	case KC_E_AUTH:
		return eng_fail(r, ENG_E_CRYPTO, "authentication failed");
	default:
		return eng_fail(r, ENG_E_CRYPTO, NULL);
	}
}

/* ---- Encrypt, Decrypt ------------------------------------------------------ */

/* Encrypt and Decrypt requests, seen alike. */
struct cipher_req {
	const char *uid;
	size_t uid_len;
	const struct kmip_cryptographic_parameters *cp;
	const uint8_t *data, *iv, *aad, *tag;
	size_t data_len, iv_len, aad_len, tag_len;
};

/* What Encrypt and Decrypt answer: the output, and the IV and tag Encrypt made. */
struct cipher_out {
	char *uid;
	uint8_t *data, *iv, *tag;
	size_t data_len, iv_len, tag_len;
};

static int block_mode(struct eng_req *r, uint32_t mode, enum kc_mode *out)
{
	switch (mode) {
	case KMIP_BLOCK_CIPHER_MODE_ECB:
		*out = KC_MODE_ECB;
		return 0;
	case KMIP_BLOCK_CIPHER_MODE_CBC:
		*out = KC_MODE_CBC;
		return 0;
	case KMIP_BLOCK_CIPHER_MODE_CTR:
		*out = KC_MODE_CTR;
		return 0;
	case KMIP_BLOCK_CIPHER_MODE_GCM:
		*out = KC_MODE_GCM;
		return 0;
	default:
		return eng_fail(r, ENG_E_UNSUPPORTED_PARAMS, "Block Cipher Mode not supported");
	}
}

/*
 * Cryptographic Parameters (§3.6) for AES: a mode, PKCS#5 padding for ECB
 * and CBC only, a GCM tag of Tag Length bytes (16 when absent). |cp| is the
 * request's parameters, else the key's own attribute (eng_key_params).
 */
static int cipher_params(struct eng_req *r, const struct kmip_cryptographic_parameters *cp,
			 struct kc_cipher *c)
{
	int err;

	if (cp == NULL || !cp->has_block_cipher_mode) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Block Cipher Mode required");
	}
	if ((err = block_mode(r, cp->block_cipher_mode, &c->mode)) != 0) {
		return err;
	}
	if (cp->has_cryptographic_algorithm &&
	    cp->cryptographic_algorithm != KMIP_CRYPTOGRAPHIC_ALGORITHM_AES) {
		return eng_fail(r, ENG_E_BAD_PARAMS, "Cryptographic Algorithm: AES only");
	}
	c->pad = cp->has_padding_method && cp->padding_method == KMIP_PADDING_METHOD_PKCS5;
	if ((cp->has_padding_method && !c->pad && cp->padding_method != KMIP_PADDING_METHOD_NONE) ||
	    (c->pad && c->mode != KC_MODE_ECB && c->mode != KC_MODE_CBC)) {
		return eng_fail(r, ENG_E_BAD_PARAMS, "Padding Method not valid for the mode");
	}
	c->tag_len = 0;
	if (c->mode == KC_MODE_GCM) {
		c->tag_len = cp->has_tag_length ? (size_t)cp->tag_length : KC_BLOCK;
	}
	return 0;
}

/* §4.29: without an IV from the client, the server makes one (token RNG) and returns it. */
static int encrypt_iv(struct eng_req *r, const struct kmip_cryptographic_parameters *cp,
		      struct kc_cipher *c, struct cipher_out *out)
{
	size_t len = kc_cipher_iv_len(c->mode);

	if (c->iv_len > 0 || len == 0) {
		return 0;
	}
	/* IV Length is in bits (§3.6); GCM may ask for another length than 96. */
	if (c->mode == KC_MODE_GCM && cp->has_iv_length) {
		if (cp->iv_length <= 0 || cp->iv_length % 8 != 0 || cp->iv_length > 1024) {
			return eng_fail(r, ENG_E_BAD_PARAMS, "IV Length");
		}
		len = (size_t)cp->iv_length / 8;
	}
	if ((out->iv = eng_alloc(r, len)) == NULL) {
		return ENG_E_INTERNAL;
	}
	if (hsm_random(r->e->hsm, out->iv, len) != 0) {
		keel_err("engine: no random bytes for an IV");
		return eng_fail(r, ENG_E_CRYPTO, NULL);
	}
	c->iv = out->iv;
	c->iv_len = out->iv_len = len;
	return 0;
}

/*
 * What Decrypt needs beyond the data: the IV the mode uses, whose absence the
 * CS-BC profile's cases (KMIP Profiles 1.4, CS-BC-M-11..13) answer with
 * Invalid Message, and the GCM tag, which Decrypt reads rather than writes.
 */
static int decrypt_inputs(struct eng_req *r, const struct cipher_req *q, struct kc_cipher *c)
{
	if (q->iv == NULL && kc_cipher_iv_len(c->mode) > 0) {
		return eng_fail(r, ENG_E_INVALID_MESSAGE, "IV/Counter/Nonce required");
	}
	if (c->mode == KC_MODE_GCM && q->tag == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Authenticated Encryption Tag required");
	}
	c->tag = (uint8_t *)q->tag;
	c->tag_len = q->tag_len;
	return 0;
}

/* AES with a symmetric key (§4.29, §4.30). */
static int aes_cipher(struct eng_req *r, const struct cipher_req *q, bool encrypt,
		      const struct eng_key *k, const struct kmip_cryptographic_parameters *cp,
		      struct cipher_out *out)
{
	struct kc_cipher c = {
	    .iv = q->iv, .iv_len = q->iv_len, .aad = q->aad, .aad_len = q->aad_len};
	int err;

	if ((err = cipher_params(r, cp, &c)) != 0) {
		return err;
	}
	if (k->algorithm != KMIP_CRYPTOGRAPHIC_ALGORITHM_AES) {
		return eng_fail(r, ENG_E_BAD_PARAMS, "key is not an AES key");
	}
	if ((out->data = eng_alloc(r, q->data_len + KC_BLOCK)) == NULL ||
	    (encrypt && (c.tag = out->tag = eng_alloc(r, KC_BLOCK)) == NULL)) {
		return ENG_E_INTERNAL;
	}
	if ((err = encrypt ? encrypt_iv(r, cp, &c, out) : decrypt_inputs(r, q, &c)) != 0) {
		return err;
	}
	err = eng_crypto_err(r, kc_cipher_run(&c, encrypt, hsm_secret_data(k->secret),
					      hsm_secret_len(k->secret), q->data, q->data_len,
					      out->data, &out->data_len));
	out->tag_len = encrypt && c.mode == KC_MODE_GCM ? c.tag_len : 0;
	return err;
}

/*
 * Cryptographic Parameters (§3.6) for RSA: OAEP only (see kc_rsa_cipher),
 * with the Hashing Algorithm and MGF1 over the Mask Generator Hashing
 * Algorithm, each SHA-1 when absent (§3.6, RFC 8017 §7.1).
 */
static int rsa_params(struct eng_req *r, const struct kmip_cryptographic_parameters *cp,
		      struct kc_rsa_cipher *c)
{
	c->oaep_hash = c->mgf1_hash = KC_SHA1;
	if (cp == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Padding Method required");
	}
	if (cp->has_cryptographic_algorithm &&
	    cp->cryptographic_algorithm != KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA) {
		return eng_fail(r, ENG_E_BAD_PARAMS, "Cryptographic Algorithm: RSA only");
	}
	if (!cp->has_padding_method || cp->padding_method != KMIP_PADDING_METHOD_OAEP) {
		return eng_fail(r, ENG_E_UNSUPPORTED_PARAMS, "Padding Method: OAEP only");
	}
	if ((cp->has_hashing_algorithm &&
	     eng_find_hash(cp->hashing_algorithm, false, &c->oaep_hash) != 0) ||
	    (cp->has_mask_generator && cp->mask_generator != KMIP_MASK_GENERATOR_MGF1) ||
	    (cp->has_mask_generator_hashing_algorithm &&
	     eng_find_hash(cp->mask_generator_hashing_algorithm, false, &c->mgf1_hash) != 0)) {
		return eng_fail(r, ENG_E_UNSUPPORTED_PARAMS, "OAEP hash or mask generator");
	}
	return 0;
}

/* RSA with a Public Key to encrypt, a Private Key to decrypt (§4.29, §4.30). */
static int rsa_cipher(struct eng_req *r, const struct cipher_req *q, bool encrypt,
		      const struct eng_key *k, const struct kmip_cryptographic_parameters *cp,
		      struct cipher_out *out)
{
	struct kc_rsa_cipher c;
	int err;

	if ((err = rsa_params(r, cp, &c)) != 0) {
		return err;
	}
	if ((out->data = eng_alloc(r, KC_MAX_RSA)) == NULL) {
		return ENG_E_INTERNAL;
	}
	err = (encrypt ? kc_rsa_encrypt : kc_rsa_decrypt)(&c, hsm_secret_data(k->secret),
							  hsm_secret_len(k->secret), q->data,
							  q->data_len, out->data, &out->data_len);
	return eng_crypto_err(r, err);
}

static int run_cipher(struct eng_req *r, const struct cipher_req *q, bool encrypt,
		      struct cipher_out *out)
{
	const struct eng_key_use use = {
	    encrypt ? KMIP_CRYPTOGRAPHIC_USAGE_MASK_ENCRYPT : KMIP_CRYPTOGRAPHIC_USAGE_MASK_DECRYPT,
	    encrypt, KMIP_OBJECT_TYPE_SYMMETRIC_KEY,
	    encrypt ? KMIP_OBJECT_TYPE_PUBLIC_KEY : KMIP_OBJECT_TYPE_PRIVATE_KEY};
	const struct kmip_cryptographic_parameters *cp = NULL;
	struct eng_key k;
	int err;

	if (q->data == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Data required");
	}
	if ((err = eng_key_open(r, q->uid, q->uid_len, &use, &k)) != 0) {
		return err;
	}
	if ((err = eng_key_params(r, &k, q->cp, &cp)) != 0) {
		goto out;
	}
	if ((out->uid = eng_strdup(r, k.o.uid, strlen(k.o.uid))) == NULL) {
		err = ENG_E_INTERNAL;
		goto out;
	}
	err = k.o.object_type == KMIP_OBJECT_TYPE_SYMMETRIC_KEY
		  ? aes_cipher(r, q, encrypt, &k, cp, out)
		  : rsa_cipher(r, q, encrypt, &k, cp, out);
	if (err == 0) {
		err = eng_usage_spend(r, k.o.uid, q->data_len);
	}
out:
	eng_key_close(&k);
	return err;
}

int op_encrypt(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_encrypt_request *q = req;
	const struct cipher_req cq = {q->unique_identifier,
				      q->unique_identifier_len,
				      q->cryptographic_parameters,
				      q->data,
				      q->iv_counter_nonce,
				      q->authenticated_encryption_additional_data,
				      NULL,
				      q->data_len,
				      q->iv_counter_nonce_len,
				      q->authenticated_encryption_additional_data_len,
				      0};
	struct kmip_encrypt_response *p = eng_alloc(r, sizeof(*p));
	struct cipher_out co = {0};
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_single_shot(r, q->correlation_value_len, q->has_init_indicator,
				   q->init_indicator, q->has_final_indicator,
				   q->final_indicator)) != 0 ||
	    (err = run_cipher(r, &cq, true, &co)) != 0) {
		return err;
	}
	p->unique_identifier = co.uid;
	p->unique_identifier_len = strlen(co.uid);
	p->data = co.data;
	p->data_len = co.data_len;
	p->iv_counter_nonce = co.iv;
	p->iv_counter_nonce_len = co.iv_len;
	p->authenticated_encryption_tag = co.tag_len > 0 ? co.tag : NULL;
	p->authenticated_encryption_tag_len = co.tag_len;
	*out = p;
	return 0;
}

int op_decrypt(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_decrypt_request *q = req;
	const struct cipher_req cq = {q->unique_identifier,
				      q->unique_identifier_len,
				      q->cryptographic_parameters,
				      q->data,
				      q->iv_counter_nonce,
				      q->authenticated_encryption_additional_data,
				      q->authenticated_encryption_tag,
				      q->data_len,
				      q->iv_counter_nonce_len,
				      q->authenticated_encryption_additional_data_len,
				      q->authenticated_encryption_tag_len};
	struct kmip_decrypt_response *p = eng_alloc(r, sizeof(*p));
	struct cipher_out co = {0};
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_single_shot(r, q->correlation_value_len, q->has_init_indicator,
				   q->init_indicator, q->has_final_indicator,
				   q->final_indicator)) != 0 ||
	    (err = run_cipher(r, &cq, false, &co)) != 0) {
		return err;
	}
	p->unique_identifier = co.uid;
	p->unique_identifier_len = strlen(co.uid);
	p->data = co.data;
	p->data_len = co.data_len;
	*out = p;
	return 0;
}

/* ---- MAC, MAC Verify ---------------------------------------------------------- */

/* MAC and MAC Verify requests, seen alike. */
struct mac_req {
	const char *uid;
	size_t uid_len;
	const struct kmip_cryptographic_parameters *cp;
	const uint8_t *data;
	size_t data_len;
};

/*
 * §4.33: the MAC algorithm is the Cryptographic Parameters' Cryptographic
 * Algorithm (the request's, else the key's attribute), else the key's own:
 * HMAC with the hash an HMAC algorithm names over the key bytes, whatever
 * the key's algorithm (the OASIS CS-AC cases MAC with an AES key so), or
 * AES-CMAC.
 */
static int key_mac(struct eng_req *r, const struct eng_key *k, const struct mac_req *q,
		   uint8_t *out, size_t *out_len)
{
	const uint8_t *key = hsm_secret_data(k->secret);
	size_t key_len = hsm_secret_len(k->secret);
	const struct kmip_cryptographic_parameters *cp = NULL;
	uint32_t alg = k->algorithm;
	enum kc_hash h;
	int err;

	if ((err = eng_key_params(r, k, q->cp, &cp)) != 0) {
		return err;
	}
	if (cp != NULL && cp->has_cryptographic_algorithm) {
		alg = cp->cryptographic_algorithm;
	}
	if (alg == KMIP_CRYPTOGRAPHIC_ALGORITHM_AES &&
	    k->algorithm == KMIP_CRYPTOGRAPHIC_ALGORITHM_AES) {
		return eng_crypto_err(r, kc_cmac(key, key_len, q->data, q->data_len, out, out_len));
	}
	if (eng_find_hash(alg, true, &h) != 0) {
		return eng_fail(r, ENG_E_BAD_PARAMS, "not a MAC algorithm for this key");
	}
	return eng_crypto_err(r, kc_hmac(h, key, key_len, q->data, q->data_len, out, out_len));
}

/* Computes the MAC of |q| into |out| (KC_MAX_DIGEST bytes) for MAC or MAC Verify. */
static int run_mac(struct eng_req *r, const struct mac_req *q, bool verify, char **out_uid,
		   uint8_t *out, size_t *out_len)
{
	const struct eng_key_use use = {verify ? KMIP_CRYPTOGRAPHIC_USAGE_MASK_MAC_VERIFY
					       : KMIP_CRYPTOGRAPHIC_USAGE_MASK_MAC_GENERATE,
					!verify, KMIP_OBJECT_TYPE_SYMMETRIC_KEY, 0};
	struct eng_key k;
	int err;

	if (q->data == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Data required");
	}
	if ((err = eng_key_open(r, q->uid, q->uid_len, &use, &k)) != 0) {
		return err;
	}
	if ((*out_uid = eng_strdup(r, k.o.uid, strlen(k.o.uid))) == NULL) {
		err = ENG_E_INTERNAL;
	} else {
		err = key_mac(r, &k, q, out, out_len);
	}
	eng_key_close(&k);
	return err;
}

int op_mac(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_mac_request *q = req;
	const struct mac_req mq = {q->unique_identifier, q->unique_identifier_len,
				   q->cryptographic_parameters, q->data, q->data_len};
	struct kmip_mac_response *p = eng_alloc(r, sizeof(*p));
	uint8_t *mac = eng_alloc(r, KC_MAX_DIGEST);
	char *uid = NULL;
	int err;

	if (p == NULL || mac == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_single_shot(r, q->correlation_value_len, q->has_init_indicator,
				   q->init_indicator, q->has_final_indicator,
				   q->final_indicator)) != 0 ||
	    (err = run_mac(r, &mq, false, &uid, mac, &p->mac_data_len)) != 0) {
		return err;
	}
	p->unique_identifier = uid;
	p->unique_identifier_len = strlen(uid);
	p->mac_data = mac;
	*out = p;
	return 0;
}

/* §4.34: a MAC that does not match is a successful answer with Validity Indicator Invalid. */
int op_mac_verify(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_mac_verify_request *q = req;
	const struct mac_req mq = {q->unique_identifier, q->unique_identifier_len,
				   q->cryptographic_parameters, q->data, q->data_len};
	struct kmip_mac_verify_response *p = eng_alloc(r, sizeof(*p));
	uint8_t mac[KC_MAX_DIGEST];
	size_t mac_len = 0;
	char *uid = NULL;
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if (q->mac_data == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "MAC Data required");
	}
	if ((err = eng_single_shot(r, q->correlation_value_len, q->has_init_indicator,
				   q->init_indicator, q->has_final_indicator,
				   q->final_indicator)) != 0 ||
	    (err = run_mac(r, &mq, true, &uid, mac, &mac_len)) != 0) {
		return err;
	}
	p->unique_identifier = uid;
	p->unique_identifier_len = strlen(uid);
	p->validity_indicator = kc_mac_equal(mac, mac_len, q->mac_data, q->mac_data_len)
				    ? KMIP_VALIDITY_INDICATOR_VALID
				    : KMIP_VALIDITY_INDICATOR_INVALID;
	*out = p;
	return 0;
}

/* ---- RNG Retrieve, Hash ------------------------------------------------------- */

/* §4.35: bytes from the token's RNG, the same source as key material. */
int op_rng_retrieve(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_rng_retrieve_request *q = req;
	struct kmip_rng_retrieve_response *p = eng_alloc(r, sizeof(*p));
	uint8_t *data;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if (q->data_length <= 0 || q->data_length > RNG_MAX_BYTES) {
		return eng_fail(r, ENG_E_INVALID_FIELD, "Data Length: 1 to 4096 bytes");
	}
	if ((data = eng_alloc(r, (size_t)q->data_length)) == NULL) {
		return ENG_E_INTERNAL;
	}
	if (hsm_random(r->e->hsm, data, (size_t)q->data_length) != 0) {
		keel_err("engine: RNG Retrieve: the token gave no random bytes");
		return eng_fail(r, ENG_E_CRYPTO, NULL);
	}
	p->data = data;
	p->data_len = (size_t)q->data_length;
	*out = p;
	return 0;
}

/* §4.37: the Hashing Algorithm of the Cryptographic Parameters over Data; no key. */
int op_hash(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_hash_request *q = req;
	const struct kmip_cryptographic_parameters *cp = q->cryptographic_parameters;
	struct kmip_hash_response *p = eng_alloc(r, sizeof(*p));
	uint8_t *digest = eng_alloc(r, KC_MAX_DIGEST);
	enum kc_hash h;
	int err;

	if (p == NULL || digest == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_single_shot(r, q->correlation_value_len, q->has_init_indicator,
				   q->init_indicator, q->has_final_indicator,
				   q->final_indicator)) != 0) {
		return err;
	}
	if (cp == NULL || !cp->has_hashing_algorithm || q->data == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Hashing Algorithm and Data required");
	}
	if (eng_find_hash(cp->hashing_algorithm, false, &h) != 0) {
		return eng_fail(r, ENG_E_UNSUPPORTED_PARAMS, "Hashing Algorithm not supported");
	}
	err = eng_crypto_err(r, kc_digest(h, q->data, q->data_len, digest, &p->data_len));
	if (err != 0) {
		return err;
	}
	p->data = digest;
	*out = p;
	return 0;
}
