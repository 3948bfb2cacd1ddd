/*
 * Register (KMIP 1.4 §4.3) and Create Key Pair (§4.2). Both end in the
 * storing path Create uses (eng_store_new): material wrapped by the CRK with
 * the UID as AAD. Keys are kept in one form per type (raw bytes; PKCS#8 for
 * private keys, SubjectPublicKeyInfo for public ones) and converted per Get;
 * the registered Key Format Type is kept as the Get default (_key_format).
 * What the server derives from the material (algorithm, length, certificate
 * facts) replaces what a client claimed.
 */
#include "engine_int.h"

#include <stdio.h>
#include <string.h>

#include "keel/crypto.h"
#include "log.h"

#define MAX_DERIVED 12

const struct attr_rule eng_internal_rule = {"_", 0, 0, 0};

/* A new object being put together: its material and the attributes the server derives. */
struct reg {
	struct eng_req *r;
	uint32_t object_type;
	const uint8_t *material;
	size_t material_len;
	struct kc_buf converted; /* when the stored form differs from the request's */
	struct eng_attr derived[MAX_DERIVED];
	size_t num_derived;
};

/* Adds a derived attribute; returns its value node for the caller to fill. */
static struct kmip_node *derive(struct reg *g, const char *name, uint32_t tag, uint8_t type)
{
	struct kmip_node *v = eng_node(g->r, tag, type);
	const struct attr_rule *rule =
	    name[0] == '_' ? &eng_internal_rule : attr_rule_by_name(name, strlen(name));

	if (v == NULL || rule == NULL || g->num_derived == MAX_DERIVED) {
		return NULL;
	}
	g->derived[g->num_derived++] = (struct eng_attr){.rule = rule, .name = name, .value = v};
	return v;
}

static int derive_int(struct reg *g, const char *name, uint32_t tag, uint8_t type, int64_t val)
{
	struct kmip_node *v = derive(g, name, tag, type);

	if (v == NULL) {
		return ENG_E_INTERNAL;
	}
	if (type == KMIP_TYPE_ENUMERATION) {
		v->v.u32 = (uint32_t)val;
	} else {
		v->v.i32 = (int32_t)val;
	}
	return 0;
}

/* Cryptographic Algorithm and Length as the key says (§3.4, §3.5). */
static int derive_key_info(struct reg *g, uint32_t algorithm, int32_t bits)
{
	int err = 0;

	if (algorithm != 0) {
		err = derive_int(g, "Cryptographic Algorithm", KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM,
				 KMIP_TYPE_ENUMERATION, algorithm);
	}
	if (err == 0 && bits != 0) {
		err = derive_int(g, "Cryptographic Length", KMIP_TAG_CRYPTOGRAPHIC_LENGTH,
				 KMIP_TYPE_INTEGER, bits);
	}
	return err;
}

/* A child structure node {tag: text} with |n| text children. */
static struct kmip_node *text_node(struct eng_req *r, uint32_t tag, const char *text,
				   struct kmip_node *next)
{
	struct kmip_node *n = eng_node(r, tag, KMIP_TYPE_TEXT_STRING);

	if (n != NULL && (n->v.text = eng_strdup(r, text, strlen(text))) != NULL) {
		n->len = (uint32_t)strlen(text);
		n->next = next;
		return n;
	}
	return NULL;
}

/* Links |parent| (a new derived structure) to a list of children. */
static int set_children(struct kmip_node *parent, struct kmip_node *first)
{
	if (parent == NULL || first == NULL) {
		return ENG_E_INTERNAL;
	}
	parent->v.child = first;
	for (const struct kmip_node *c = first; c != NULL; c = c->next) {
		parent->len++;
	}
	return 0;
}

/* Digest (§3.17): SHA-256 of the certificate's DER. */
static int derive_digest(struct reg *g, const uint8_t sha256[static 32])
{
	struct kmip_node *d = derive(g, "Digest", KMIP_TAG_DIGEST, KMIP_TYPE_STRUCTURE);
	struct kmip_node *alg = eng_node(g->r, KMIP_TAG_HASHING_ALGORITHM, KMIP_TYPE_ENUMERATION);
	struct kmip_node *val = eng_node(g->r, KMIP_TAG_DIGEST_VALUE, KMIP_TYPE_BYTE_STRING);
	uint8_t *copy = kmip_arena_alloc(g->r->arena, 32);

	if (alg == NULL || val == NULL || copy == NULL) {
		return ENG_E_INTERNAL;
	}
	memcpy(copy, sha256, 32);
	alg->v.u32 = KMIP_HASHING_ALGORITHM_SHA_256;
	val->v.bytes = copy;
	val->len = 32;
	alg->next = val;
	return set_children(d, alg);
}

/* 1.x Certificate Identifier, Subject and Issuer (§3.13-3.15; gone in 2.0). */
static int derive_cert_names(struct reg *g, const struct kc_cert_info *ci)
{
	struct eng_req *r = g->r;
	char serial[2 * 64 + 1] = "";
	int err;

	for (size_t i = 0; i < ci->serial.len && i < 64; i++) {
		snprintf(serial + 2 * i, 3, "%02x", ci->serial.data[i]);
	}
	if ((err = set_children(derive(g, "Certificate Identifier", KMIP_TAG_CERTIFICATE_IDENTIFIER,
				       KMIP_TYPE_STRUCTURE),
				text_node(r, KMIP_TAG_ISSUER, ci->issuer,
					  text_node(r, KMIP_TAG_SERIAL_NUMBER, serial, NULL)))) !=
	    0) {
		return err;
	}
	if ((err = set_children(derive(g, "Certificate Subject", KMIP_TAG_CERTIFICATE_SUBJECT,
				       KMIP_TYPE_STRUCTURE),
				text_node(r, KMIP_TAG_CERTIFICATE_SUBJECT_DISTINGUISHED_NAME,
					  ci->subject, NULL))) != 0) {
		return err;
	}
	return set_children(
	    derive(g, "Certificate Issuer", KMIP_TAG_CERTIFICATE_ISSUER, KMIP_TYPE_STRUCTURE),
	    text_node(r, KMIP_TAG_CERTIFICATE_ISSUER_DISTINGUISHED_NAME, ci->issuer, NULL));
}

/* A Certificate (§2.2.1): X.509 only; its facts become attributes. */
static int take_certificate(struct reg *g, const struct kmip_certificate *c)
{
	struct kc_cert_info ci = {0};
	int err;

	if (c->certificate_type != KMIP_CERTIFICATE_TYPE_X_509) {
		return eng_fail(g->r, ENG_E_FEATURE, "Certificate Type X.509 only");
	}
	if (kc_cert_parse(c->certificate_value, c->certificate_value_len, &ci) != 0) {
		return eng_fail(g->r, ENG_E_INVALID_FIELD, "certificate does not parse");
	}
	g->material = c->certificate_value;
	g->material_len = c->certificate_value_len;
	if ((err = derive_int(g, "_data_type", 0, KMIP_TYPE_ENUMERATION, c->certificate_type)) !=
		0 ||
	    (err = derive_int(g, "Certificate Type", KMIP_TAG_CERTIFICATE_TYPE,
			      KMIP_TYPE_ENUMERATION, c->certificate_type)) != 0 ||
	    (err = derive_int(g, "Certificate Length", KMIP_TAG_CERTIFICATE_LENGTH,
			      KMIP_TYPE_INTEGER, (int64_t)c->certificate_value_len)) != 0 ||
	    (err = derive_digest(g, ci.sha256)) != 0 ||
	    (err = derive_key_info(g, ci.key.algorithm, ci.key.bits)) != 0) {
		goto out;
	}
	if (!g->r->v2) {
		err = derive_cert_names(g, &ci);
	}
out:
	kc_cert_info_cleanup(&ci);
	return err;
}

/* The Key Value of a registered key; wrapped key material is not accepted. */
static int plain_value(struct reg *g, const struct kmip_key_block *kb,
		       const struct kmip_key_value **out)
{
	if (kb == NULL || kb->key_value == NULL || kb->key_wrapping_data != NULL) {
		return eng_fail(g->r, ENG_E_FEATURE, "only unwrapped key material is registered");
	}
	if (kb->has_key_compression_type) {
		return eng_fail(g->r, ENG_E_KEY_COMPRESSION, NULL);
	}
	*out = kb->key_value;
	return 0;
}

/* Symmetric Key (§2.2.2): Raw or Transparent Symmetric Key (§2.1.7.1). */
static int take_symmetric(struct reg *g, const struct kmip_key_block *kb)
{
	const struct kmip_key_value *kv;
	const struct kmip_node *k;
	int err;

	if ((err = plain_value(g, kb, &kv)) != 0) {
		return err;
	}
	if (kb->key_format_type == KMIP_KEY_FORMAT_TYPE_RAW) {
		g->material = kv->key_material;
		g->material_len = kv->key_material_len;
	} else if (kb->key_format_type == KMIP_KEY_FORMAT_TYPE_TRANSPARENT_SYMMETRIC_KEY &&
		   (k = kmip_node_find(kv->key_material_structure, KMIP_TAG_KEY)) != NULL &&
		   k->type == KMIP_TYPE_BYTE_STRING) {
		g->material = k->v.bytes;
		g->material_len = k->len;
	} else {
		return eng_fail(g->r, ENG_E_KEY_FORMAT, NULL);
	}
	if (g->material == NULL || g->material_len == 0 || g->material_len > 512) {
		return eng_fail(g->r, ENG_E_INVALID_FIELD, "Key Material missing");
	}
	return derive_key_info(g, kb->has_cryptographic_algorithm ? kb->cryptographic_algorithm : 0,
			       (int32_t)(g->material_len * 8));
}

/* Secret Data (§2.2.7): the bytes, in their own format, with their Secret Data Type. */
static int take_secret_data(struct reg *g, const struct kmip_secret_data *sd)
{
	const struct kmip_key_value *kv;
	int err;

	if ((err = plain_value(g, sd->key_block, &kv)) != 0) {
		return err;
	}
	if (kv->key_material == NULL) {
		return eng_fail(g->r, ENG_E_KEY_FORMAT, NULL);
	}
	g->material = kv->key_material;
	g->material_len = kv->key_material_len;
	if ((err = derive_int(g, "_data_type", 0, KMIP_TYPE_ENUMERATION, sd->secret_data_type)) !=
	    0) {
		return err;
	}
	return derive_int(g, "_key_format", 0, KMIP_TYPE_ENUMERATION,
			  sd->key_block->key_format_type);
}

/*
 * PGP Key (KMIP 1.4 §2.2.9, 1.2+): the Key Block's bytes as registered, kept
 * with its PGP Key Version; the algorithm and length are the client's.
 */
static int take_pgp_key(struct reg *g, const struct kmip_pgp_key *pk)
{
	const struct kmip_key_block *kb = pk->key_block;
	const struct kmip_key_value *kv;
	int err;

	if ((err = plain_value(g, kb, &kv)) != 0) {
		return err;
	}
	if (kv->key_material == NULL || kv->key_material_len == 0) {
		return eng_fail(g->r, ENG_E_KEY_FORMAT, NULL);
	}
	g->material = kv->key_material;
	g->material_len = kv->key_material_len;
	if ((err = derive_int(g, "_data_type", 0, KMIP_TYPE_ENUMERATION, pk->pgp_key_version)) !=
		0 ||
	    (err = derive_int(g, "_key_format", 0, KMIP_TYPE_ENUMERATION, kb->key_format_type)) !=
		0) {
		return err;
	}
	return derive_key_info(g, kb->has_cryptographic_algorithm ? kb->cryptographic_algorithm : 0,
			       kb->has_cryptographic_length ? kb->cryptographic_length : 0);
}

/* Split Key Parts, Key Part Identifier and Split Key Threshold agree (§2.2.5). */
static bool split_counts_ok(const struct kmip_split_key *sk)
{
	return sk->split_key_parts >= 1 && sk->split_key_threshold >= 1 &&
	       sk->split_key_threshold <= sk->split_key_parts && sk->key_part_identifier >= 1 &&
	       sk->key_part_identifier <= sk->split_key_parts;
}

/* The Split Key's own fields as internal attributes; Prime Field Size when it has one. */
static int derive_split(struct reg *g, const struct kmip_split_key *sk)
{
	struct kmip_node *prime;
	int err;

	if ((err = derive_int(g, "_split_parts", 0, KMIP_TYPE_INTEGER, sk->split_key_parts)) != 0 ||
	    (err = derive_int(g, "_split_id", 0, KMIP_TYPE_INTEGER, sk->key_part_identifier)) !=
		0 ||
	    (err = derive_int(g, "_split_threshold", 0, KMIP_TYPE_INTEGER,
			      sk->split_key_threshold)) != 0 ||
	    (err = derive_int(g, "_data_type", 0, KMIP_TYPE_ENUMERATION, sk->split_key_method)) !=
		0) {
		return err;
	}
	if (sk->prime_field_size_len == 0) {
		return 0;
	}
	if ((prime = derive(g, "_split_prime", 0, KMIP_TYPE_BIG_INTEGER)) == NULL) {
		return ENG_E_INTERNAL;
	}
	prime->v.bytes = sk->prime_field_size;
	prime->len = (uint32_t)sk->prime_field_size_len;
	return 0;
}

/*
 * Split Key (KMIP 1.4 §2.2.5): one part's Key Block bytes as registered, with
 * its parts, identifier, threshold, method and, for Polynomial Sharing Prime
 * Field, Prime Field Size. Parts are not joined here.
 */
static int take_split_key(struct reg *g, const struct kmip_split_key *sk)
{
	const struct kmip_key_block *kb = sk->key_block;
	const struct kmip_key_value *kv;
	int err;

	if (!split_counts_ok(sk) ||
	    (sk->split_key_method == KMIP_SPLIT_KEY_METHOD_POLYNOMIAL_SHARING_PRIME_FIELD &&
	     sk->prime_field_size_len == 0)) {
		return eng_fail(g->r, ENG_E_INVALID_FIELD, "Split Key fields do not agree");
	}
	if ((err = plain_value(g, kb, &kv)) != 0) {
		return err;
	}
	if (kv->key_material == NULL || kv->key_material_len == 0) {
		return eng_fail(g->r, ENG_E_KEY_FORMAT, NULL);
	}
	g->material = kv->key_material;
	g->material_len = kv->key_material_len;
	if ((err = derive_split(g, sk)) != 0 ||
	    (err = derive_int(g, "_key_format", 0, KMIP_TYPE_ENUMERATION, kb->key_format_type)) !=
		0) {
		return err;
	}
	return derive_key_info(g, kb->has_cryptographic_algorithm ? kb->cryptographic_algorithm : 0,
			       kb->has_cryptographic_length ? kb->cryptographic_length : 0);
}

/* A Transparent RSA key's components, read in place (§2.1.7.6, §2.1.7.7). */
static int rsa_parts_from(struct reg *g, bool priv, const struct kmip_node *km,
			  struct kc_rsa_parts *parts)
{
	for (size_t i = 0; i < (priv ? KC_RSA_NUM : 2); i++) {
		const struct kmip_node *n = kmip_node_find(km, eng_rsa_tags[i]);

		if (n == NULL || n->type != KMIP_TYPE_BIG_INTEGER) {
			return eng_fail(g->r, ENG_E_INVALID_FIELD, "RSA key component missing");
		}
		/* Not owned: kc_rsa_parts_import only reads them; never cleaned up. */
		parts->v[i].data = (uint8_t *)n->v.bytes;
		parts->v[i].len = n->len;
	}
	return 0;
}

/* Private Key (§2.2.4) or Public Key (§2.2.3) into the stored form. */
static int take_asymmetric(struct reg *g, bool priv, const struct kmip_key_block *kb)
{
	const struct kmip_key_value *kv;
	struct kc_key_info info = {0};
	struct kc_rsa_parts parts = {0};
	int err;

	if ((err = plain_value(g, kb, &kv)) != 0) {
		return err;
	}
	if (kb->key_format_type == (priv ? KMIP_KEY_FORMAT_TYPE_TRANSPARENT_RSA_PRIVATE_KEY
					 : KMIP_KEY_FORMAT_TYPE_TRANSPARENT_RSA_PUBLIC_KEY)) {
		if ((err = rsa_parts_from(g, priv, kv->key_material_structure, &parts)) != 0) {
			return err;
		}
		err = kc_rsa_parts_import(priv, &parts, &g->converted, &info);
	} else {
		err = kv->key_material == NULL
			  ? KC_KEY_E_INVALID
			  : kc_key_import(priv, kb->key_format_type, kv->key_material,
					  kv->key_material_len, &g->converted, &info);
	}
	if (err != 0) {
		return eng_fail(
		    g->r, err == KC_KEY_E_UNSUPPORTED ? ENG_E_KEY_FORMAT : ENG_E_INVALID_FIELD,
		    "key material does not parse in its Key Format Type");
	}
	g->material = g->converted.data;
	g->material_len = g->converted.len;
	if ((err = derive_key_info(g, info.algorithm, info.bits)) != 0) {
		return err;
	}
	return derive_int(g, "_key_format", 0, KMIP_TYPE_ENUMERATION, kb->key_format_type);
}

/* The material of a Register request's object, by Object Type (§4.3). */
static int take_object(struct reg *g, const struct kmip_register_request *q)
{
	switch (q->object_type) {
	case KMIP_OBJECT_TYPE_SYMMETRIC_KEY:
		return q->symmetric_key != NULL ? take_symmetric(g, q->symmetric_key->key_block)
						: ENG_E_MISSING_DATA;
	case KMIP_OBJECT_TYPE_SECRET_DATA:
		return q->secret_data != NULL ? take_secret_data(g, q->secret_data)
					      : ENG_E_MISSING_DATA;
	case KMIP_OBJECT_TYPE_CERTIFICATE:
		return q->certificate != NULL ? take_certificate(g, q->certificate)
					      : ENG_E_MISSING_DATA;
	case KMIP_OBJECT_TYPE_PRIVATE_KEY:
		return q->private_key != NULL ? take_asymmetric(g, true, q->private_key->key_block)
					      : ENG_E_MISSING_DATA;
	case KMIP_OBJECT_TYPE_PUBLIC_KEY:
		return q->public_key != NULL ? take_asymmetric(g, false, q->public_key->key_block)
					     : ENG_E_MISSING_DATA;
	case KMIP_OBJECT_TYPE_SPLIT_KEY:
		return q->split_key != NULL ? take_split_key(g, q->split_key) : ENG_E_MISSING_DATA;
	case KMIP_OBJECT_TYPE_PGP_KEY:
		return q->pgp_key != NULL ? take_pgp_key(g, q->pgp_key) : ENG_E_MISSING_DATA;
	case KMIP_OBJECT_TYPE_OPAQUE_OBJECT:
		if (q->opaque_object == NULL) {
			return ENG_E_MISSING_DATA;
		}
		g->material = q->opaque_object->opaque_data_value;
		g->material_len = q->opaque_object->opaque_data_value_len;
		return derive_int(g, "_data_type", 0, KMIP_TYPE_ENUMERATION,
				  q->opaque_object->opaque_data_type);
	default:
		return eng_fail(g->r, ENG_E_OBJECT_TYPE, "Object Type not registrable");
	}
}

/* A Template (§2.2.6): its Names become the object's, its attribute list the material. */
static int take_template(struct reg *g, const struct kmip_register_request *q,
			 struct eng_new_object *no)
{
	if (q->template == NULL) {
		return ENG_E_MISSING_DATA;
	}
	return eng_template_take(g->r, q->template, &g->material, &g->material_len, &no->attrs,
				 &no->num_attrs);
}

static bool derived_has(const struct reg *g, const char *name)
{
	for (size_t i = 0; i < g->num_derived; i++) {
		if (strcmp(g->derived[i].name, name) == 0) {
			return true;
		}
	}
	return false;
}

/* Client attributes (checked) followed by the derived ones, which replace a client's claim. */
static int merge_attrs(struct reg *g, struct eng_new_object *no)
{
	struct eng_attr *all = eng_alloc(g->r, (no->num_attrs + g->num_derived) * sizeof(*all) + 1);
	size_t n = 0;
	int err;

	if (all == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_check_create_attrs(g->r, no)) != 0) {
		return err;
	}
	for (size_t i = 0; i < no->num_attrs; i++) {
		if (!derived_has(g, no->attrs[i].name)) {
			all[n++] = no->attrs[i];
		}
	}
	memcpy(all + n, g->derived, g->num_derived * sizeof(*all));
	no->attrs = all;
	no->num_attrs = n + g->num_derived;
	return 0;
}

int eng_take_object(struct eng_req *r, const struct kmip_register_request *q,
		    struct kc_buf *converted, struct eng_new_object *out)
{
	struct reg g = {.r = r, .object_type = q->object_type};
	struct eng_attr *all;
	int err;

	out->object_type = q->object_type;
	out->num_attrs = 0;
	err = q->object_type == KMIP_OBJECT_TYPE_TEMPLATE ? take_template(&g, q, out)
							  : take_object(&g, q);
	*converted = g.converted; /* g.material may point into it */
	if (err != 0) {
		return err;
	}
	if ((all = eng_alloc(r, (out->num_attrs + g.num_derived + 1) * sizeof(*all))) == NULL) {
		return ENG_E_INTERNAL;
	}
	if (out->num_attrs != 0) {
		memcpy(all, out->attrs, out->num_attrs * sizeof(*all));
	}
	memcpy(all + out->num_attrs, g.derived, g.num_derived * sizeof(*all));
	out->attrs = all;
	out->num_attrs += g.num_derived;
	out->material = g.material;
	out->material_len = g.material_len;
	return 0;
}

int op_register(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_register_request *q = req;
	struct kmip_register_response *p = eng_alloc(r, sizeof(*p));
	struct reg g = {.r = r, .object_type = q->object_type};
	struct eng_new_object no = {.object_type = q->object_type};
	char *uid = eng_alloc(r, KEEL_STORE_UID_MAX + 1);
	int err;

	if (p == NULL || uid == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = attr_collect(r, q->template_attribute, q->attributes, &no.attrs,
				&no.num_attrs)) != 0 ||
	    (err = q->object_type == KMIP_OBJECT_TYPE_TEMPLATE ? take_template(&g, q, &no)
							       : take_object(&g, q)) != 0 ||
	    (err = merge_attrs(&g, &no)) != 0) {
		goto out;
	}
	no.material = g.material;
	no.material_len = g.material_len;
	if ((err = eng_store_new(r, &no, uid)) != 0) {
		goto out;
	}
	p->unique_identifier = uid;
	p->unique_identifier_len = strlen(uid);
	*out = p;
out:
	kc_buf_free(&g.converted);
	return err == ENG_E_MISSING_DATA ? eng_fail(r, err, "the object is missing") : err;
}

/* Register's token work before the turn: the material as the turn will read it, sealed. */
void prepare_register(struct eng_req *r, const void *req, struct eng_prep *p)
{
	struct eng_new_object no = {.attrs = eng_alloc(r, sizeof(*no.attrs))};
	struct kc_buf converted = {0};
	struct hsm_secret *copy = NULL;

	if (no.attrs != NULL && eng_take_object(r, req, &converted, &no) == 0 &&
	    hsm_secret_new(no.material_len, &copy) == 0) {
		memcpy(hsm_secret_data(copy), no.material, no.material_len);
		eng_prepare_seal(r, copy, p);
	}
	kc_buf_free(&converted);
}

/* ---- Create Key Pair (§4.2) ---------------------------------------------- */

/* One half of the pair: its attributes, material and derived attributes. */
struct half {
	struct eng_new_object no;
	struct reg g;
	char uid[KEEL_STORE_UID_MAX + 1];
};

/* Common attributes, then the half's own, which win for single-valued names (§4.2). */
static int pair_attrs(struct eng_req *r, const struct eng_attr *common, size_t num_common,
		      const struct kmip_template_attribute *ta, const struct kmip_attributes *as,
		      struct eng_new_object *no)
{
	struct eng_attr *own, *all;
	size_t num_own, n = 0;
	int err;

	if ((err = attr_collect(r, ta, as, &own, &num_own)) != 0) {
		return err;
	}
	if ((all = eng_alloc(r, (num_common + num_own + 1) * sizeof(*all))) == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < num_common; i++) {
		bool overridden = false;

		for (size_t k = 0; k < num_own && (common[i].rule->flags & ATTR_MULTI) == 0; k++) {
			overridden |= strcmp(own[k].name, common[i].name) == 0;
		}
		if (!overridden) {
			all[n++] = common[i];
		}
	}
	memcpy(all + n, own, num_own * sizeof(*all));
	no->attrs = all;
	no->num_attrs = n + num_own;
	return 0;
}

/* Cryptographic Algorithm and Length asked for, from either half's attributes. */
static void pair_params(const struct eng_new_object *no, uint32_t *alg, int32_t *bits)
{
	for (size_t i = 0; i < no->num_attrs; i++) {
		uint32_t tag = no->attrs[i].rule->tag;

		if (tag == KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM) {
			*alg = no->attrs[i].value->v.u32;
		} else if (tag == KMIP_TAG_CRYPTOGRAPHIC_LENGTH) {
			*bits = no->attrs[i].value->v.i32;
		}
	}
}

struct kmip_node *eng_link_value(struct eng_req *r, uint32_t type, const char *uid)
{
	struct kmip_node *l = eng_node(r, KMIP_TAG_LINK, KMIP_TYPE_STRUCTURE);
	struct kmip_node *lt = eng_node(r, KMIP_TAG_LINK_TYPE, KMIP_TYPE_ENUMERATION);

	if (l == NULL || lt == NULL ||
	    (lt->next = text_node(r, KMIP_TAG_LINKED_OBJECT_IDENTIFIER, uid, NULL)) == NULL) {
		return NULL;
	}
	lt->v.u32 = type;
	return set_children(l, lt) == 0 ? l : NULL;
}

int eng_add_link(struct eng_req *r, const char *uid, uint32_t type, const char *other)
{
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_LINK), .name = "Link"};
	struct keel_store_attr *sa = NULL;
	size_t n = 0;
	int32_t index = 0;
	int err;

	if ((a.value = eng_link_value(r, type, other)) == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = keel_store_attr_list(r->txn, uid, "Link", &sa, &n)) != 0) {
		return eng_store_err(r, err, "listing links");
	}
	/* The next free instance index (§2.1.1). */
	for (size_t i = 0; i < n; i++) {
		index = sa[i].index >= index ? sa[i].index + 1 : index;
	}
	keel_store_attrs_free(sa, n);
	return attr_save(r, uid, &a, index, false);
}

/* A Link to |uid| among the derived attributes. */
static int derive_link(struct reg *g, uint32_t type, const char *uid)
{
	struct kmip_node *v = eng_link_value(g->r, type, uid);

	if (v == NULL || g->num_derived == MAX_DERIVED) {
		return ENG_E_INTERNAL;
	}
	g->derived[g->num_derived++] =
	    (struct eng_attr){.rule = attr_rule_by_tag(KMIP_TAG_LINK), .name = "Link", .value = v};
	return 0;
}

/* Derived attributes of one half: algorithm, length, default Get format. */
static int pair_derive(struct half *h, uint32_t alg, int32_t bits, uint32_t format)
{
	int err;

	if ((err = derive_key_info(&h->g, alg, bits)) != 0 ||
	    (err = derive_int(&h->g, "_key_format", 0, KMIP_TYPE_ENUMERATION, format)) != 0) {
		return err;
	}
	h->no.material = h->g.converted.data;
	h->no.material_len = h->g.converted.len;
	return merge_attrs(&h->g, &h->no);
}

/* Collects the three attribute sets, in the version's form (1.x templates, 2.x Attributes). */
static int pair_collect(struct eng_req *r, const struct kmip_create_key_pair_request *q,
			struct half *priv, struct half *pub)
{
	struct eng_attr *common;
	size_t num_common;
	int err;

	if ((err = attr_collect(r, q->common_template_attribute, q->common_attributes, &common,
				&num_common)) != 0 ||
	    (err = pair_attrs(r, common, num_common, q->private_key_template_attribute,
			      q->private_key_attributes, &priv->no)) != 0) {
		return err;
	}
	return pair_attrs(r, common, num_common, q->public_key_template_attribute,
			  q->public_key_attributes, &pub->no);
}

/* Generates the pair and stores private then public, each linked to the other (§4.2). */
static int pair_make(struct eng_req *r, struct half *priv, struct half *pub)
{
	uint32_t alg = 0, format;
	int32_t bits = 0;
	int err;

	pair_params(&priv->no, &alg, &bits);
	pair_params(&pub->no, &alg, &bits);
	err = kc_keypair_generate(alg, bits, &priv->g.converted, &pub->g.converted);
	if (err != 0) {
		return eng_fail(r, err == KC_KEY_E_UNSUPPORTED ? ENG_E_INVALID_FIELD : ENG_E_CRYPTO,
				"RSA 2048-4096 or EC P-256/P-384 only");
	}
	alg = alg == KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA ? alg : KMIP_CRYPTOGRAPHIC_ALGORITHM_EC;
	/* RSA keys answer in PKCS#1 by default; EC keys in PKCS#8 / SubjectPublicKeyInfo. */
	format = alg == KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA ? KMIP_KEY_FORMAT_TYPE_PKCS_1 : 0;
	if ((err = pair_derive(priv, alg, bits, format ? format : KMIP_KEY_FORMAT_TYPE_PKCS_8)) !=
		0 ||
	    (err = eng_store_new(r, &priv->no, priv->uid)) != 0 ||
	    (err = derive_link(&pub->g, KMIP_LINK_TYPE_PRIVATE_KEY_LINK, priv->uid)) != 0 ||
	    (err = pair_derive(pub, alg, bits, format ? format : KMIP_KEY_FORMAT_TYPE_X_509)) !=
		0 ||
	    (err = eng_store_new(r, &pub->no, pub->uid)) != 0) {
		return err;
	}
	/* The private key's Link names the public key, known only now. */
	return eng_add_link(r, priv->uid, KMIP_LINK_TYPE_PUBLIC_KEY_LINK, pub->uid);
}

int op_create_key_pair(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_create_key_pair_request *q = req;
	struct kmip_create_key_pair_response *p = eng_alloc(r, sizeof(*p));
	struct half *priv = eng_alloc(r, sizeof(*priv));
	struct half *pub = eng_alloc(r, sizeof(*pub));
	int err;

	if (p == NULL || priv == NULL || pub == NULL) {
		return ENG_E_INTERNAL;
	}
	priv->g.r = pub->g.r = r;
	priv->no.object_type = priv->g.object_type = KMIP_OBJECT_TYPE_PRIVATE_KEY;
	pub->no.object_type = pub->g.object_type = KMIP_OBJECT_TYPE_PUBLIC_KEY;
	priv->no.generated = pub->no.generated = true;
	if ((err = pair_collect(r, q, priv, pub)) != 0 || (err = pair_make(r, priv, pub)) != 0) {
		goto out;
	}
	/* ID Placeholder: the private key's UID (KMIP 1.4 §4.2). */
	snprintf(r->placeholder, sizeof(r->placeholder), "%s", priv->uid);
	snprintf(r->uid, sizeof(r->uid), "%s", priv->uid);
	p->private_key_unique_identifier = eng_strdup(r, priv->uid, strlen(priv->uid));
	p->private_key_unique_identifier_len = strlen(priv->uid);
	p->public_key_unique_identifier = eng_strdup(r, pub->uid, strlen(pub->uid));
	p->public_key_unique_identifier_len = strlen(pub->uid);
	*out = p;
out:
	kc_buf_free(&priv->g.converted);
	kc_buf_free(&pub->g.converted);
	return err;
}
