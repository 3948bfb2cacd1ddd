/*
 * Sign (KMIP 1.4 §4.31) and Signature Verify (§4.32), the same in 2.x
 * (2.0 §6.1): a private key signs, a public key verifies, each with its own
 * usage mask bit (§3.19) and state rule (§3.22: Sign needs an Active key;
 * Verify also takes a Deactivated or Compromised one). RSA with PKCS#1 v1.5
 * or PSS, ECDSA; the hash comes from the Cryptographic Parameters (§3.6):
 * Digital Signature Algorithm, or Hashing Algorithm with Padding Method and
 * Salt Length; the request's parameters, else the key's own attribute.
 * Single-shot only: streaming answers Feature Not Supported.
 */
#include "engine_int.h"

#include <string.h>

#include "keel/crypto.h"

/* Digital Signature Algorithm (§9.1.3.2.7) as a hash and padding; RSASSA-PSS names no hash. */
static const struct {
	uint32_t dsa;
	uint32_t hash; /* Hashing Algorithm; 0: from the parameters */
	enum kc_sig_padding padding;
} dsas[] = {
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA_1_WITH_RSA_ENCRYPTION, KMIP_HASHING_ALGORITHM_SHA_1,
     KC_SIG_PKCS1},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA_224_WITH_RSA_ENCRYPTION, KMIP_HASHING_ALGORITHM_SHA_224,
     KC_SIG_PKCS1},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA_256_WITH_RSA_ENCRYPTION, KMIP_HASHING_ALGORITHM_SHA_256,
     KC_SIG_PKCS1},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA_384_WITH_RSA_ENCRYPTION, KMIP_HASHING_ALGORITHM_SHA_384,
     KC_SIG_PKCS1},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA_512_WITH_RSA_ENCRYPTION, KMIP_HASHING_ALGORITHM_SHA_512,
     KC_SIG_PKCS1},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA3_256_WITH_RSA_ENCRYPTION, KMIP_HASHING_ALGORITHM_SHA3_256,
     KC_SIG_PKCS1},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA3_384_WITH_RSA_ENCRYPTION, KMIP_HASHING_ALGORITHM_SHA3_384,
     KC_SIG_PKCS1},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_SHA3_512_WITH_RSA_ENCRYPTION, KMIP_HASHING_ALGORITHM_SHA3_512,
     KC_SIG_PKCS1},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_RSASSA_PSS, 0, KC_SIG_PSS},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA_1, KMIP_HASHING_ALGORITHM_SHA_1, KC_SIG_ECDSA},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA224, KMIP_HASHING_ALGORITHM_SHA_224,
     KC_SIG_ECDSA},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA256, KMIP_HASHING_ALGORITHM_SHA_256,
     KC_SIG_ECDSA},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA384, KMIP_HASHING_ALGORITHM_SHA_384,
     KC_SIG_ECDSA},
    {KMIP_DIGITAL_SIGNATURE_ALGORITHM_ECDSA_WITH_SHA512, KMIP_HASHING_ALGORITHM_SHA_512,
     KC_SIG_ECDSA},
};
#define NUM_DSAS (sizeof(dsas) / sizeof(dsas[0]))

/* Sign and Signature Verify requests, seen alike. */
struct sig_req {
	const char *uid;
	size_t uid_len;
	const struct kmip_cryptographic_parameters *cp;
	const uint8_t *data, *digest, *sig;
	size_t data_len, digest_len, sig_len;
};

static bool is_ec(uint32_t alg)
{
	return alg == KMIP_CRYPTOGRAPHIC_ALGORITHM_EC || alg == KMIP_CRYPTOGRAPHIC_ALGORITHM_ECDSA;
}

/* The padding from Padding Method (§3.6) for an RSA key; ECDSA for an EC key. */
static int sig_padding(struct eng_req *r, const struct kmip_cryptographic_parameters *cp,
		       uint32_t key_alg, enum kc_sig_padding *out)
{
	if (is_ec(key_alg)) {
		*out = KC_SIG_ECDSA;
		return 0;
	}
	if (key_alg != KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA) {
		return eng_fail(r, ENG_E_BAD_PARAMS, "key is not an RSA or EC key");
	}
	if (!cp->has_padding_method || cp->padding_method == KMIP_PADDING_METHOD_PKCS1_V1_5) {
		*out = KC_SIG_PKCS1;
		return 0;
	}
	if (cp->padding_method == KMIP_PADDING_METHOD_PSS) {
		*out = KC_SIG_PSS;
		return 0;
	}
	return eng_fail(r, ENG_E_UNSUPPORTED_PARAMS, "Padding Method: PKCS1 v1.5 or PSS");
}

/* Hash and padding from the request's Cryptographic Parameters for a key of |key_alg|. */
static int sig_params(struct eng_req *r, const struct kmip_cryptographic_parameters *cp,
		      uint32_t key_alg, struct kc_sig *s)
{
	uint32_t hash = cp != NULL && cp->has_hashing_algorithm ? cp->hashing_algorithm : 0;
	size_t i = 0;
	int err;

	if (cp == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Cryptographic Parameters required");
	}
	if ((err = sig_padding(r, cp, key_alg, &s->padding)) != 0) {
		return err;
	}
	if (cp->has_digital_signature_algorithm) {
		while (i < NUM_DSAS && dsas[i].dsa != cp->digital_signature_algorithm) {
			i++;
		}
		if (i == NUM_DSAS) {
			return eng_fail(r, ENG_E_UNSUPPORTED_PARAMS,
					"Digital Signature Algorithm not supported");
		}
		if ((dsas[i].padding == KC_SIG_ECDSA) != is_ec(key_alg)) {
			return eng_fail(r, ENG_E_BAD_PARAMS,
					"Digital Signature Algorithm does not fit the key");
		}
		s->padding = dsas[i].padding;
		hash = dsas[i].hash != 0 ? dsas[i].hash : hash;
	}
	if (hash == 0) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Hashing Algorithm required");
	}
	/* Salt Length (§3.6) in bytes; without it, the digest's length to sign, any to verify. */
	if (cp->has_salt_length && cp->salt_length < 0) {
		return eng_fail(r, ENG_E_BAD_PARAMS, "Salt Length");
	}
	s->salt_len = cp->has_salt_length ? cp->salt_length : -1;
	if (eng_find_hash(hash, false, &s->hash) != 0) {
		return eng_fail(r, ENG_E_UNSUPPORTED_PARAMS, "Hashing Algorithm not supported");
	}
	return 0;
}

/* Opens the key of |q| for Sign or Verify and fills |s| from its parameters. */
static int sig_open(struct eng_req *r, const struct sig_req *q, bool sign, struct eng_key *k,
		    struct kc_sig *s)
{
	const struct eng_key_use use = {
	    sign ? KMIP_CRYPTOGRAPHIC_USAGE_MASK_SIGN : KMIP_CRYPTOGRAPHIC_USAGE_MASK_VERIFY, sign,
	    sign ? KMIP_OBJECT_TYPE_PRIVATE_KEY : KMIP_OBJECT_TYPE_PUBLIC_KEY, 0};
	const struct kmip_cryptographic_parameters *cp = NULL;
	int err;

	/* §4.31: Data or Digested Data, exactly one. */
	if ((q->data == NULL) == (q->digest == NULL)) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Data or Digested Data required");
	}
	if ((err = eng_key_open(r, q->uid, q->uid_len, &use, k)) != 0) {
		return err;
	}
	s->data = q->data;
	s->data_len = q->data_len;
	s->digest = q->digest;
	s->digest_len = q->digest_len;
	if ((err = eng_key_params(r, k, q->cp, &cp)) != 0 ||
	    (err = sig_params(r, cp, k->algorithm, s)) != 0) {
		eng_key_close(k);
	}
	return err;
}

int op_sign(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_sign_request *q = req;
	const struct sig_req sq = {q->unique_identifier,
				   q->unique_identifier_len,
				   q->cryptographic_parameters,
				   q->data,
				   q->digested_data,
				   NULL,
				   q->data_len,
				   q->digested_data_len,
				   0};
	struct kmip_sign_response *p = eng_alloc(r, sizeof(*p));
	uint8_t *sig = eng_alloc(r, KC_MAX_SIGNATURE);
	struct kc_sig s = {0};
	struct eng_key k;
	int err;

	if (p == NULL || sig == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_single_shot(r, q->correlation_value_len, q->has_init_indicator,
				   q->init_indicator, q->has_final_indicator,
				   q->final_indicator)) != 0 ||
	    (err = sig_open(r, &sq, true, &k, &s)) != 0) {
		return err;
	}
	if ((p->unique_identifier = eng_strdup(r, k.o.uid, strlen(k.o.uid))) == NULL) {
		err = ENG_E_INTERNAL;
	} else {
		err = eng_crypto_err(r, kc_sign(&s, hsm_secret_data(k.secret),
						hsm_secret_len(k.secret), sig,
						&p->signature_data_len));
	}
	eng_key_close(&k);
	if (err != 0) {
		return err;
	}
	p->unique_identifier_len = strlen(p->unique_identifier);
	p->signature_data = sig;
	*out = p;
	return 0;
}

/* §4.32: a signature that does not verify is a success with Validity Indicator Invalid. */
int op_signature_verify(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_signature_verify_request *q = req;
	const struct sig_req sq = {q->unique_identifier,
				   q->unique_identifier_len,
				   q->cryptographic_parameters,
				   q->data,
				   q->digested_data,
				   q->signature_data,
				   q->data_len,
				   q->digested_data_len,
				   q->signature_data_len};
	struct kmip_signature_verify_response *p = eng_alloc(r, sizeof(*p));
	struct kc_sig s = {0};
	struct eng_key k;
	bool valid = false;
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if (q->signature_data == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Signature Data required");
	}
	if ((err = eng_single_shot(r, q->correlation_value_len, q->has_init_indicator,
				   q->init_indicator, q->has_final_indicator,
				   q->final_indicator)) != 0 ||
	    (err = sig_open(r, &sq, false, &k, &s)) != 0) {
		return err;
	}
	if ((p->unique_identifier = eng_strdup(r, k.o.uid, strlen(k.o.uid))) == NULL) {
		err = ENG_E_INTERNAL;
	} else {
		err = eng_crypto_err(r, kc_verify(&s, hsm_secret_data(k.secret),
						  hsm_secret_len(k.secret), q->signature_data,
						  q->signature_data_len, &valid));
	}
	eng_key_close(&k);
	if (err != 0) {
		return err;
	}
	p->unique_identifier_len = strlen(p->unique_identifier);
	p->validity_indicator =
	    valid ? KMIP_VALIDITY_INDICATOR_VALID : KMIP_VALIDITY_INDICATOR_INVALID;
	*out = p;
	return 0;
}
