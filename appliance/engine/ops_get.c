/*
 * Get (KMIP 1.4 §4.11): the object's key material unwrapped from the CRK,
 * in the Key Format Type asked for (§9.1.3.2.3), optionally wrapped with
 * another of the client's keys (Key Wrapping Specification, §2.1.5).
 * Every plaintext copy is kept in locked memory and wiped once the response
 * is written (keel_engine_handle).
 */
#include "engine_int.h"

#include <stdio.h>
#include <string.h>

#include "keel/crypto.h"
#include "log.h"

int eng_keep_secret(struct eng_req *r, const uint8_t *data, size_t len, const uint8_t **out)
{
	struct hsm_secret *s = NULL;

	if (hsm_secret_new(len != 0 ? len : 1, &s) != 0) {
		return eng_fail(r, ENG_E_INTERNAL, NULL);
	}
	if (data != NULL) {
		memcpy(hsm_secret_data(s), data, len);
	}
	*out = hsm_secret_data(s);
	return eng_track_secret(r, s);
}

/* Takes a converted key into kept memory and wipes the conversion's buffer. */
static int keep_buf(struct eng_req *r, struct kc_buf *b, const uint8_t **out, size_t *out_len)
{
	int err = eng_keep_secret(r, b->data, b->len, out);

	*out_len = b->len;
	kc_buf_free(b);
	return err;
}

/* The format a Get without Key Format Type answers in: the one registered (§4.11). */
static uint32_t default_format(struct eng_req *r, const struct keel_store_object *o)
{
	uint32_t f = (uint32_t)eng_stored_int(r, o->uid, "_key_format");

	if (f != 0) {
		return f;
	}
	switch (o->object_type) {
	case KMIP_OBJECT_TYPE_PRIVATE_KEY:
		return KMIP_KEY_FORMAT_TYPE_PKCS_8;
	case KMIP_OBJECT_TYPE_PUBLIC_KEY:
		return KMIP_KEY_FORMAT_TYPE_X_509;
	case KMIP_OBJECT_TYPE_SECRET_DATA:
		return KMIP_KEY_FORMAT_TYPE_OPAQUE;
	default:
		return KMIP_KEY_FORMAT_TYPE_RAW;
	}
}

/* A Big Integer node over |len| bytes at |*at|, copied out of |b|; advances |*at|. */
static struct kmip_node *big_int(struct eng_req *r, uint32_t tag, const struct kc_buf *b,
				 uint8_t **at, struct kmip_node *next)
{
	struct kmip_node *n = eng_node(r, tag, KMIP_TYPE_BIG_INTEGER);

	if (n == NULL) {
		return NULL;
	}
	memcpy(*at, b->data, b->len);
	n->v.bytes = *at;
	n->len = (uint32_t)b->len;
	n->next = next;
	*at += b->len;
	return n;
}

const uint32_t eng_rsa_tags[8] = {KMIP_TAG_MODULUS,
				  KMIP_TAG_PUBLIC_EXPONENT,
				  KMIP_TAG_PRIVATE_EXPONENT,
				  KMIP_TAG_P,
				  KMIP_TAG_Q,
				  KMIP_TAG_PRIME_EXPONENT_P,
				  KMIP_TAG_PRIME_EXPONENT_Q,
				  KMIP_TAG_CRT_COEFFICIENT};
_Static_assert(KC_RSA_NUM == 8, "eng_rsa_tags follows KC_RSA_*");

/* Key Material of a Transparent RSA Public/Private Key (§2.1.7.6, §2.1.7.7). */
static int transparent_rsa(struct eng_req *r, bool priv, const struct hsm_secret *stored,
			   struct kmip_key_value *kv)
{
	/* Public: Modulus, Public Exponent; private: N, D, E, P, Q, DP, DQ, QInv. */
	static const uint8_t pub_order[] = {KC_RSA_N, KC_RSA_E};
	static const uint8_t priv_order[] = {KC_RSA_N, KC_RSA_D,  KC_RSA_E,  KC_RSA_P,
					     KC_RSA_Q, KC_RSA_DP, KC_RSA_DQ, KC_RSA_QINV};
	const uint8_t *order = priv ? priv_order : pub_order;
	struct kc_rsa_parts parts = {0};
	struct kmip_node *km = eng_node(r, KMIP_TAG_KEY_MATERIAL, KMIP_TYPE_STRUCTURE);
	struct kmip_node *first = NULL;
	size_t num = priv ? KC_RSA_NUM : 2, total = 0;
	const uint8_t *kept;
	uint8_t *at;
	int err;

	if (km == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = kc_rsa_parts_get(priv, hsm_secret_data((struct hsm_secret *)stored),
				    hsm_secret_len(stored), &parts)) != 0) {
		return eng_fail(r, err == KC_KEY_E_UNSUPPORTED ? ENG_E_KEY_FORMAT : ENG_E_CRYPTO,
				NULL);
	}
	/* All components in one kept buffer: one secret to wipe, not eight. */
	for (size_t i = 0; i < num; i++) {
		total += parts.v[order[i]].len;
	}
	if ((err = eng_keep_secret(r, NULL, total, &kept)) != 0) {
		goto out;
	}
	at = (uint8_t *)kept;
	for (size_t i = num; i-- > 0 && err == 0;) {
		first = big_int(r, eng_rsa_tags[order[i]], &parts.v[order[i]], &at, first);
		err = first == NULL ? ENG_E_INTERNAL : 0;
	}
out:
	kc_rsa_parts_cleanup(&parts);
	km->v.child = first;
	km->len = (uint32_t)num;
	kv->key_material_structure = km;
	return err;
}

/* Key Material of a Transparent EC Private/Public Key (§2.1.7.9, §2.1.7.10, 1.3+). */
static int transparent_ec(struct eng_req *r, bool priv, const struct hsm_secret *stored,
			  struct kmip_key_value *kv)
{
	struct kc_ec_parts parts = {0};
	struct kmip_node *km = eng_node(r, KMIP_TAG_KEY_MATERIAL, KMIP_TYPE_STRUCTURE);
	struct kmip_node *curve = eng_node(r, KMIP_TAG_RECOMMENDED_CURVE, KMIP_TYPE_ENUMERATION);
	struct kmip_node *v = eng_node(r, priv ? KMIP_TAG_D : KMIP_TAG_Q_STRING,
				       priv ? KMIP_TYPE_BIG_INTEGER : KMIP_TYPE_BYTE_STRING);
	const uint8_t *kept;
	size_t len;
	int err;

	if (km == NULL || curve == NULL || v == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = kc_ec_parts_get(priv, hsm_secret_data((struct hsm_secret *)stored),
				   hsm_secret_len(stored), &parts)) != 0) {
		return eng_fail(r, err == KC_KEY_E_UNSUPPORTED ? ENG_E_KEY_FORMAT : ENG_E_CRYPTO,
				NULL);
	}
	curve->v.u32 = parts.curve;
	curve->next = v;
	if ((err = keep_buf(r, &parts.value, &kept, &len)) != 0) {
		return err;
	}
	v->v.bytes = kept;
	v->len = (uint32_t)len;
	km->v.child = curve;
	km->len = 2;
	kv->key_material_structure = km;
	return 0;
}

/* Key Material of a symmetric key: Raw bytes or Transparent Symmetric Key {Key} (§2.1.7.1). */
static int symmetric_value(struct eng_req *r, uint32_t format, struct hsm_secret *key,
			   struct kmip_key_value *kv)
{
	struct kmip_node *km, *k;

	if (format == KMIP_KEY_FORMAT_TYPE_RAW) {
		kv->key_material = hsm_secret_data(key);
		kv->key_material_len = hsm_secret_len(key);
		return 0;
	}
	if (format != KMIP_KEY_FORMAT_TYPE_TRANSPARENT_SYMMETRIC_KEY) {
		return eng_fail(r, ENG_E_KEY_FORMAT, NULL);
	}
	km = eng_node(r, KMIP_TAG_KEY_MATERIAL, KMIP_TYPE_STRUCTURE);
	k = eng_node(r, KMIP_TAG_KEY, KMIP_TYPE_BYTE_STRING);
	if (km == NULL || k == NULL) {
		return ENG_E_INTERNAL;
	}
	k->v.bytes = hsm_secret_data(key);
	k->len = (uint32_t)hsm_secret_len(key);
	km->v.child = k;
	km->len = 1;
	kv->key_material_structure = km;
	return 0;
}

/* Key Material of a private or public key in |format| (PKCS#1, PKCS#8, X.509, EC Private
 * Key, Transparent RSA or EC). */
static int asymmetric_value(struct eng_req *r, bool priv, uint32_t format, struct hsm_secret *key,
			    struct kmip_key_value *kv)
{
	struct kc_buf b = {0};
	int err;

	if (format == (priv ? KMIP_KEY_FORMAT_TYPE_TRANSPARENT_RSA_PRIVATE_KEY
			    : KMIP_KEY_FORMAT_TYPE_TRANSPARENT_RSA_PUBLIC_KEY)) {
		return transparent_rsa(r, priv, key, kv);
	}
	if (format == (priv ? KMIP_KEY_FORMAT_TYPE_TRANSPARENT_EC_PRIVATE_KEY
			    : KMIP_KEY_FORMAT_TYPE_TRANSPARENT_EC_PUBLIC_KEY)) {
		return transparent_ec(r, priv, key, kv);
	}
	err = kc_key_export(priv, hsm_secret_data(key), hsm_secret_len(key), format, &b);
	if (err == KC_KEY_E_UNSUPPORTED) {
		return eng_fail(r, ENG_E_KEY_FORMAT, NULL);
	}
	if (err != 0) {
		keel_err("engine: stored key does not convert (%d)", err);
		return eng_fail(r, ENG_E_CRYPTO, NULL);
	}
	return keep_buf(r, &b, &kv->key_material, &kv->key_material_len);
}

/* The Key Value in |format| for an object that has a Key Block (§2.1.3). */
static int key_value(struct eng_req *r, uint32_t type, uint32_t format, struct hsm_secret *key,
		     struct kmip_key_value *kv)
{
	switch (type) {
	case KMIP_OBJECT_TYPE_SYMMETRIC_KEY:
		return symmetric_value(r, format, key, kv);
	case KMIP_OBJECT_TYPE_PRIVATE_KEY:
	case KMIP_OBJECT_TYPE_PUBLIC_KEY:
		return asymmetric_value(r, type == KMIP_OBJECT_TYPE_PRIVATE_KEY, format, key, kv);
	default:
		/* Secret Data, PGP Key, Split Key: the bytes as registered, in their own format
		 * only. */
		kv->key_material = hsm_secret_data(key);
		kv->key_material_len = hsm_secret_len(key);
		return 0;
	}
}

static int key_block(struct eng_req *r, const struct keel_store_object *o, uint32_t format,
		     struct hsm_secret *key, struct kmip_key_block **out)
{
	struct kmip_key_block *kb = eng_alloc(r, sizeof(*kb));
	struct kmip_key_value *kv = eng_alloc(r, sizeof(*kv));
	int err;

	if (kb == NULL || kv == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = key_value(r, o->object_type, format, key, kv)) != 0) {
		return err;
	}
	kb->key_format_type = format;
	kb->key_value = kv;
	kb->cryptographic_algorithm =
	    (uint32_t)eng_stored_int(r, o->uid, "Cryptographic Algorithm");
	kb->has_cryptographic_algorithm = kb->cryptographic_algorithm != 0;
	kb->cryptographic_length = eng_stored_int(r, o->uid, "Cryptographic Length");
	kb->has_cryptographic_length = kb->cryptographic_length != 0;
	*out = kb;
	return 0;
}

/* The client's wrapping key (§2.1.5): an Active AES key with Wrap Key usage (§3.19) that
 * it owns or may use (a grant of at least use: wrapping is using it). */
static int load_wrapping_key(struct eng_req *r, const struct kmip_encryption_key_information *eki,
			     struct hsm_secret **out)
{
	struct keel_store_object k = {0};
	char uid[KEEL_STORE_UID_MAX + 1];
	int err;

	if (eki->unique_identifier_len == 0 || eki->unique_identifier_len > KEEL_STORE_UID_MAX) {
		return eng_fail(r, ENG_E_ITEM_NOT_FOUND, "wrapping key not found");
	}
	snprintf(uid, sizeof(uid), "%.*s", (int)eki->unique_identifier_len, eki->unique_identifier);
	if ((err = eng_load_object(r, uid, &k)) != 0) {
		return eng_fail(r, err, "wrapping key not found");
	}
	if (k.object_type != KMIP_OBJECT_TYPE_SYMMETRIC_KEY || k.blob == NULL ||
	    (eng_stored_int(r, uid, "Cryptographic Usage Mask") &
	     (int32_t)KMIP_CRYPTOGRAPHIC_USAGE_MASK_WRAP_KEY) == 0) {
		err = eng_fail(r, ENG_E_INVALID_FIELD, "wrapping key: no Wrap Key usage");
	} else if (k.state != KMIP_STATE_ACTIVE) {
		err = eng_fail(r, ENG_E_WRONG_STATE, "wrapping key is not Active");
	} else if ((err = hsm_unwrap(r->e->hsm, (const uint8_t *)k.uid, strlen(k.uid), k.blob,
				     k.blob_len, out)) != 0) {
		keel_err("engine: unwrapping %s: %s", k.uid, hsm_strerror(err));
		err = eng_hsm_fail(r, err);
	}
	keel_store_object_cleanup(&k);
	return err;
}

/*
 * Only Encrypt with AES Key Wrap and No Encoding is served (§2.1.5,
 * §9.1.3.2.32). An absent Encoding Option means No Encoding, as the OASIS
 * cases (TC-142) expect; with No Encoding the Key Value carries no attributes
 * (§2.1.5), so Attribute Names are accepted and have nothing to add.
 */
static int check_wrapping(struct eng_req *r, const struct kmip_key_wrapping_specification *ws)
{
	const struct kmip_encryption_key_information *eki = ws->encryption_key_information;
	const struct kmip_cryptographic_parameters *cp =
	    eki != NULL ? eki->cryptographic_parameters : NULL;

	if (ws->wrapping_method != KMIP_WRAPPING_METHOD_ENCRYPT) {
		return eng_fail(r, ENG_E_FEATURE, "Wrapping Method Encrypt only");
	}
	if (eki == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Encryption Key Information missing");
	}
	if (cp != NULL && cp->has_block_cipher_mode &&
	    cp->block_cipher_mode != KMIP_BLOCK_CIPHER_MODE_NIST_KEY_WRAP) {
		return eng_fail(r, ENG_E_FEATURE, "Block Cipher Mode NIST Key Wrap only");
	}
	if (ws->has_encoding_option && ws->encoding_option != KMIP_ENCODING_OPTION_NO_ENCODING) {
		return eng_fail(r, ENG_E_FEATURE, "Encoding Option No Encoding only");
	}
	return 0;
}

/* Replaces the Key Value by its AES Key Wrap under the wrapping key (RFC 3394). */
static int wrap_block(struct eng_req *r, const struct kmip_key_wrapping_specification *ws,
		      struct kmip_key_block *kb)
{
	struct kmip_key_wrapping_data *wd = eng_alloc(r, sizeof(*wd));
	struct hsm_secret *kek = NULL;
	struct kc_buf w = {0};
	int err;

	if (wd == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = check_wrapping(r, ws)) != 0) {
		return err;
	}
	if (kb->key_value->key_material == NULL) {
		return eng_fail(r, ENG_E_FEATURE, "only byte-string key material is wrapped");
	}
	if ((err = load_wrapping_key(r, ws->encryption_key_information, &kek)) != 0) {
		goto out;
	}
	if (kc_aes_key_wrap(hsm_secret_data(kek), hsm_secret_len(kek), kb->key_value->key_material,
			    kb->key_value->key_material_len, &w) != 0 ||
	    (kb->wrapped_key_value = kmip_arena_alloc(r->arena, w.len)) == NULL) {
		err = eng_fail(r, ENG_E_FEATURE, "key material cannot be wrapped with this key");
		goto out;
	}
	memcpy((uint8_t *)kb->wrapped_key_value, w.data, w.len);
	kb->wrapped_key_value_len = w.len;
	kb->key_value = NULL;
	wd->wrapping_method = KMIP_WRAPPING_METHOD_ENCRYPT;
	wd->encryption_key_information = ws->encryption_key_information;
	wd->has_encoding_option = ws->has_encoding_option; /* echoed as asked */
	wd->encoding_option = KMIP_ENCODING_OPTION_NO_ENCODING;
	kb->key_wrapping_data = wd;
out:
	kc_buf_free(&w);
	hsm_secret_free(kek);
	return err;
}

/* Certificate and Opaque Object: a type and the bytes, no Key Block (§2.2.1, §2.2.8). */
static int plain_body(struct eng_req *r, const struct keel_store_object *o, uint32_t sub,
		      struct hsm_secret *key, struct kmip_get_response *p)
{
	if (o->object_type == KMIP_OBJECT_TYPE_CERTIFICATE) {
		struct kmip_certificate *c = eng_alloc(r, sizeof(*c));

		if (c == NULL) {
			return ENG_E_INTERNAL;
		}
		c->certificate_type = sub;
		c->certificate_value = hsm_secret_data(key);
		c->certificate_value_len = hsm_secret_len(key);
		p->certificate = c;
		return 0;
	}
	struct kmip_opaque_object *op = eng_alloc(r, sizeof(*op));

	if (op == NULL) {
		return ENG_E_INTERNAL;
	}
	op->opaque_data_type = sub;
	op->opaque_data_value = hsm_secret_data(key);
	op->opaque_data_value_len = hsm_secret_len(key);
	p->opaque_object = op;
	return 0;
}

/* Split Key (§2.2.5): the part's fields as registered around |kb|. */
static int split_key_body(struct eng_req *r, const char *uid, uint32_t method,
			  struct kmip_key_block *kb, struct kmip_get_response *p)
{
	struct kmip_split_key *sk = eng_alloc(r, sizeof(*sk));
	const struct kmip_node *prime = eng_stored_value(r, uid, "_split_prime");

	if (sk == NULL) {
		return ENG_E_INTERNAL;
	}
	sk->split_key_parts = eng_stored_int(r, uid, "_split_parts");
	sk->key_part_identifier = eng_stored_int(r, uid, "_split_id");
	sk->split_key_threshold = eng_stored_int(r, uid, "_split_threshold");
	sk->split_key_method = method;
	if (prime != NULL && prime->type == KMIP_TYPE_BIG_INTEGER) {
		sk->prime_field_size = prime->v.bytes;
		sk->prime_field_size_len = prime->len;
	}
	sk->key_block = kb;
	p->split_key = sk;
	return 0;
}

/* Objects with a Key Block: the object member around |kb| (§2.2). */
static int keyed_body(struct eng_req *r, uint32_t type, uint32_t sub, struct kmip_key_block *kb,
		      struct kmip_get_response *p)
{
	if (type == KMIP_OBJECT_TYPE_SECRET_DATA &&
	    (p->secret_data = eng_alloc(r, sizeof(*p->secret_data))) != NULL) {
		p->secret_data->secret_data_type = sub;
		p->secret_data->key_block = kb;
	} else if (type == KMIP_OBJECT_TYPE_SYMMETRIC_KEY &&
		   (p->symmetric_key = eng_alloc(r, sizeof(*p->symmetric_key))) != NULL) {
		p->symmetric_key->key_block = kb;
	} else if (type == KMIP_OBJECT_TYPE_PRIVATE_KEY &&
		   (p->private_key = eng_alloc(r, sizeof(*p->private_key))) != NULL) {
		p->private_key->key_block = kb;
	} else if (type == KMIP_OBJECT_TYPE_PUBLIC_KEY &&
		   (p->public_key = eng_alloc(r, sizeof(*p->public_key))) != NULL) {
		p->public_key->key_block = kb;
	} else if (type == KMIP_OBJECT_TYPE_PGP_KEY &&
		   (p->pgp_key = eng_alloc(r, sizeof(*p->pgp_key))) != NULL) {
		p->pgp_key->pgp_key_version = (int32_t)sub; /* §2.2.9 */
		p->pgp_key->key_block = kb;
	} else {
		return ENG_E_INTERNAL;
	}
	return 0;
}

/* Objects served only in the Key Format Type they were registered in. */
static bool as_registered(uint32_t type)
{
	return type == KMIP_OBJECT_TYPE_SECRET_DATA || type == KMIP_OBJECT_TYPE_PGP_KEY ||
	       type == KMIP_OBJECT_TYPE_SPLIT_KEY;
}

/* The format to answer in; a format asked of an object without Key Block is refused (§4.11). */
static int pick_format(struct eng_req *r, const struct keel_store_object *o,
		       const struct kmip_get_request *q, uint32_t *out)
{
	*out = default_format(r, o);
	if (q->has_key_compression_type) {
		return eng_fail(r, ENG_E_KEY_COMPRESSION, NULL);
	}
	if (q->has_key_wrap_type) {
		return eng_fail(r, ENG_E_FEATURE, "Key Wrap Type is not supported");
	}
	if (!q->has_key_format_type) {
		return 0;
	}
	if (!eng_has_key_block(o->object_type) ||
	    (as_registered(o->object_type) && q->key_format_type != *out)) {
		return eng_fail(r, ENG_E_KEY_FORMAT, NULL);
	}
	*out = q->key_format_type;
	return 0;
}

/* Unwraps |o|'s material from the CRK into memory wiped after the response. */
static int unwrap_object(struct eng_req *r, const struct keel_store_object *o,
			 struct hsm_secret **out)
{
	int err;

	if (o->blob == NULL) {
		return eng_fail(r, ENG_E_DESTROYED, NULL);
	}
	if ((err = hsm_unwrap(r->e->hsm, (const uint8_t *)o->uid, strlen(o->uid), o->blob,
			      o->blob_len, out)) != 0) {
		keel_err("engine: unwrapping %s: %s", o->uid, hsm_strerror(err));
		return eng_hsm_fail(r, err);
	}
	return eng_track_secret(r, *out);
}

/* The object member of the response, wrapped when the request asks (§2.1.5). */
static int get_body(struct eng_req *r, const struct keel_store_object *o,
		    const struct kmip_get_request *q, uint32_t format, struct hsm_secret *key,
		    struct kmip_get_response *p)
{
	uint32_t sub = (uint32_t)eng_stored_int(r, o->uid, "_data_type");
	struct kmip_key_block *kb = NULL;
	int err;

	if (!eng_has_key_block(o->object_type)) {
		if (q->key_wrapping_specification != NULL) {
			return eng_fail(r, ENG_E_OBJECT_TYPE, "object has no Key Block to wrap");
		}
		if (o->object_type == KMIP_OBJECT_TYPE_TEMPLATE) {
			return r->v2 ? eng_fail(r, ENG_E_OBJECT_TYPE, "no Templates in KMIP 2.x")
				     : eng_template_decode(r, key, &p->template);
		}
		return plain_body(r, o, sub, key, p);
	}
	if ((err = key_block(r, o, format, key, &kb)) != 0 ||
	    (q->key_wrapping_specification != NULL &&
	     (err = wrap_block(r, q->key_wrapping_specification, kb)) != 0)) {
		return err;
	}
	if (o->object_type == KMIP_OBJECT_TYPE_SPLIT_KEY) {
		return split_key_body(r, o->uid, sub, kb, p);
	}
	return keyed_body(r, o->object_type, sub, kb, p);
}

/*
 * Fresh becomes false once the object has been served (KMIP 1.4 §3.34): the
 * first Get writes it, later ones find it false and write nothing.
 */
static int mark_served(struct eng_req *r, const char *uid)
{
	const struct kmip_node *fresh = eng_stored_value(r, uid, "Fresh");
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_FRESH), .name = "Fresh"};
	struct kmip_node *v;

	if (fresh == NULL || fresh->type != KMIP_TYPE_BOOLEAN || !fresh->v.b) {
		return 0; /* served before, or stored before Keel kept Fresh */
	}
	if ((v = eng_node(r, KMIP_TAG_FRESH, KMIP_TYPE_BOOLEAN)) == NULL) {
		return ENG_E_INTERNAL;
	}
	v->v.b = false;
	a.value = v;
	return attr_save(r, uid, &a, 0, true);
}

int eng_get_response(struct eng_req *r, const struct keel_store_object *o,
		     const struct kmip_get_request *q, bool client, struct kmip_get_response *p)
{
	struct hsm_secret *key = NULL;
	uint32_t format;
	int err;

	if ((err = pick_format(r, o, q, &format)) != 0 ||
	    (client && (err = eng_protect_check_get(r, o->uid,
						    q->key_wrapping_specification != NULL)) != 0) ||
	    (err = unwrap_object(r, o, &key)) != 0) {
		return err;
	}
	p->object_type = o->object_type;
	p->unique_identifier = eng_strdup(r, o->uid, strlen(o->uid));
	p->unique_identifier_len = strlen(o->uid);
	if ((err = get_body(r, o, q, format, key, p)) != 0) {
		return err;
	}
	return client ? mark_served(r, o->uid) : 0;
}

int op_get(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_get_request *q = req;
	struct kmip_get_response *p = eng_alloc(r, sizeof(*p));
	struct keel_store_object o = {0};
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) == 0 &&
	    (err = eng_get_response(r, &o, q, true, p)) == 0) {
		*out = p;
	}
	keel_store_object_cleanup(&o);
	return err;
}
