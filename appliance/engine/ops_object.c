/*
 * Operations on whole objects: Create (KMIP 1.4 §4.1), Activate (§4.19),
 * Revoke (§4.20), Destroy (§4.21), Check (§4.10), and the storing path that
 * Register and Create Key Pair share (ops_register.c); Get is in ops_get.c.
 * Key material is drawn from the token's RNG, stored only wrapped by the CRK
 * with the UID as AAD.
 */
#include "engine_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "keel/crypto.h"
#include "log.h"

/*
 * A version-7 UUID (RFC 9562 §5.7): the time in milliseconds, then 74 random
 * bits from the token's RNG. Time-ordered, so the B-trees keyed by UID
 * (objects, attributes, the audit's uid index) grow at their right edge: a
 * group of Creates shares those pages rather than dirtying one random leaf
 * each (issue 7). The UID tells no more than the object's Initial Date.
 */
static int new_uid(struct eng_req *r, char *out, size_t out_len)
{
	struct timespec ts;
	uint64_t ms;
	uint8_t b[16];
	int err;

	if ((err = hsm_random(r->e->hsm, b, sizeof(b))) != 0) {
		keel_err("engine: no random bytes for a UID: %s", hsm_strerror(err));
		return ENG_E_CRYPTO;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	for (int i = 0; i < 6; i++) {
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x70);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, out_len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
	return 0;
}

/* Client attributes: only those a client may set at creation (KMIP 1.4 §3). */
int eng_check_create_attrs(struct eng_req *r, struct eng_new_object *no)
{
	for (size_t i = 0; i < no->num_attrs; i++) {
		const struct eng_attr *a = &no->attrs[i];

		if ((a->rule->flags & ATTR_CREATE) == 0) {
			return eng_fail(r, ENG_E_READ_ONLY, "attribute may not be set by a client");
		}
		if (a->rule->tag == KMIP_TAG_ACTIVATION_DATE) {
			no->activation_date = a->value->v.i64;
		}
	}
	return 0;
}

/* Stores the attributes, each name's instances indexed from 0 (§2.1.1). */
static int save_attrs(struct eng_req *r, const char *uid, const struct eng_new_object *no)
{
	int err = 0;

	for (size_t i = 0; i < no->num_attrs && err == 0; i++) {
		int32_t index = 0;

		if ((no->attrs[i].rule->flags & ATTR_OBJECT) != 0) {
			continue;
		}
		for (size_t k = 0; k < i; k++) {
			index += strcmp(no->attrs[k].name, no->attrs[i].name) == 0;
		}
		err = attr_save(r, uid, &no->attrs[i], index, false);
	}
	return err;
}

/* The client's value of an object-row date given at creation (§3.27), 0 if none. */
static int64_t create_date(const struct eng_new_object *no, uint32_t tag)
{
	for (size_t i = 0; i < no->num_attrs; i++) {
		if (no->attrs[i].rule->tag == tag) {
			return no->attrs[i].value->v.i64;
		}
	}
	return 0;
}

/*
 * The Key Format Type a new key's Digest is computed over (KMIP 1.4 §3.17):
 * Raw for symmetric keys and secret data, an asymmetric key's default Get
 * format. 0: no Digest (other object types, or one the request already has).
 */
static uint32_t digest_format(const struct eng_new_object *no)
{
	uint32_t format = 0;

	for (size_t i = 0; i < no->num_attrs; i++) {
		if (no->attrs[i].rule->tag == KMIP_TAG_DIGEST) {
			return 0; /* a certificate's, derived at Register */
		}
		if (strcmp(no->attrs[i].name, "_key_format") == 0) {
			format = no->attrs[i].value->v.u32;
		}
	}
	switch (no->object_type) {
	case KMIP_OBJECT_TYPE_SYMMETRIC_KEY:
	case KMIP_OBJECT_TYPE_SECRET_DATA:
		return KMIP_KEY_FORMAT_TYPE_RAW;
	case KMIP_OBJECT_TYPE_PRIVATE_KEY:
	case KMIP_OBJECT_TYPE_PUBLIC_KEY:
		return format;
	default:
		return 0;
	}
}

/* SHA-256 of the material in |format|; the converted copy is wiped. */
static int material_sha256(const struct eng_new_object *no, uint32_t format,
			   uint8_t out[static KC_MAX_DIGEST])
{
	struct kc_buf conv = {0};
	size_t len;
	int err = 0;

	if (format != KMIP_KEY_FORMAT_TYPE_RAW) {
		err = kc_key_export(no->object_type == KMIP_OBJECT_TYPE_PRIVATE_KEY, no->material,
				    no->material_len, format, &conv);
	}
	if (err == 0) {
		err = format == KMIP_KEY_FORMAT_TYPE_RAW
			  ? kc_digest(KC_SHA256, no->material, no->material_len, out, &len)
			  : kc_digest(KC_SHA256, conv.data, conv.len, out, &len);
	}
	kc_buf_free(&conv);
	return err;
}

/* Digest {SHA-256, value, Key Format Type} of a new key (§3.17), stored as instance 0. */
static int save_digest(struct eng_req *r, const char *uid, const struct eng_new_object *no)
{
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_DIGEST), .name = "Digest"};
	struct kmip_node *d = eng_node(r, KMIP_TAG_DIGEST, KMIP_TYPE_STRUCTURE);
	struct kmip_node *alg = eng_node(r, KMIP_TAG_HASHING_ALGORITHM, KMIP_TYPE_ENUMERATION);
	struct kmip_node *val = eng_node(r, KMIP_TAG_DIGEST_VALUE, KMIP_TYPE_BYTE_STRING);
	struct kmip_node *kft = eng_node(r, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_TYPE_ENUMERATION);
	uint8_t *sum = eng_alloc(r, KC_MAX_DIGEST);
	uint32_t format = digest_format(no);

	if (format == 0) {
		return 0;
	}
	if (d == NULL || alg == NULL || val == NULL || kft == NULL || sum == NULL) {
		return ENG_E_INTERNAL;
	}
	if (material_sha256(no, format, sum) != 0) {
		keel_info("engine: no Digest for a key in Key Format Type %u", format);
		return 0; /* a key we cannot convert keeps no Digest rather than a wrong one */
	}
	alg->v.u32 = KMIP_HASHING_ALGORITHM_SHA_256;
	val->v.bytes = sum;
	val->len = 32;
	kft->v.u32 = format;
	alg->next = val;
	val->next = kft;
	d->v.child = alg;
	d->len = 3;
	a.value = d;
	return attr_save(r, uid, &a, 0, false);
}

/* Whether the client gave attribute |tag| at creation. */
static bool given(const struct eng_new_object *no, uint32_t tag)
{
	for (size_t i = 0; i < no->num_attrs; i++) {
		if (no->attrs[i].rule->tag == tag) {
			return true;
		}
	}
	return false;
}

/* An object the server generates was originally created now (KMIP 1.4 §3.44); a
 * registered one has an Original Creation Date only if its client gave one. */
static int save_original_date(struct eng_req *r, const char *uid, const struct eng_new_object *no)
{
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_ORIGINAL_CREATION_DATE),
			     .name = "Original Creation Date"};
	struct kmip_node *v;

	if (!no->generated || given(no, KMIP_TAG_ORIGINAL_CREATION_DATE)) {
		return 0;
	}
	if ((v = eng_node(r, KMIP_TAG_ORIGINAL_CREATION_DATE, KMIP_TYPE_DATE_TIME)) == NULL) {
		return ENG_E_INTERNAL;
	}
	v->v.i64 = r->now;
	a.value = v;
	return attr_save(r, uid, &a, 0, false);
}

/* A new object is Fresh (KMIP 1.4 §3.34) until it is first served, unless the client said. */
static int save_fresh(struct eng_req *r, const char *uid, const struct eng_new_object *no)
{
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_FRESH), .name = "Fresh"};
	struct kmip_node *v = eng_node(r, KMIP_TAG_FRESH, KMIP_TYPE_BOOLEAN);

	/* Fresh is a cryptographic object's (KMIP 1.4 §3.34); a Template has none. */
	if (given(no, KMIP_TAG_FRESH) || no->object_type == KMIP_OBJECT_TYPE_TEMPLATE) {
		return 0;
	}
	if (v == NULL) {
		return ENG_E_INTERNAL;
	}
	v->v.b = true;
	a.value = v;
	return attr_save(r, uid, &a, 0, false);
}

bool eng_has_key_block(uint32_t type)
{
	return type == KMIP_OBJECT_TYPE_SYMMETRIC_KEY || type == KMIP_OBJECT_TYPE_PRIVATE_KEY ||
	       type == KMIP_OBJECT_TYPE_PUBLIC_KEY || type == KMIP_OBJECT_TYPE_SECRET_DATA ||
	       type == KMIP_OBJECT_TYPE_PGP_KEY || type == KMIP_OBJECT_TYPE_SPLIT_KEY;
}

int eng_seal(struct hsm *h, const uint8_t *material, size_t len, struct keel_store_object *o)
{
	int err;

	if ((err = hsm_wrap(h, (const uint8_t *)o->uid, strlen(o->uid), material, len, &o->blob,
			    &o->blob_len)) != 0 ||
	    (err = hsm_blob_crk_version(o->blob, o->blob_len, &o->crk_version)) != 0) {
		keel_err("engine: wrapping key material for %s: %s", o->uid, hsm_strerror(err));
		free(o->blob);
		o->blob = NULL;
	}
	return err;
}

bool eng_seal_current(struct hsm *h, uint32_t crk_version)
{
	uint32_t active;

	return hsm_crk_active(h, &active) == 0 && active == crk_version;
}

void eng_prepare_seal(struct eng_req *r, struct hsm_secret *material, struct eng_prep *p)
{
	struct keel_store_object o = {0};

	if (eng_track_secret(r, material) != 0 || new_uid(r, o.uid, sizeof(o.uid)) != 0 ||
	    eng_seal(r->e->hsm, hsm_secret_data(material), hsm_secret_len(material), &o) != 0) {
		return;
	}
	if ((p->blob = kmip_arena_alloc(r->arena, o.blob_len)) != NULL) {
		memcpy(p->blob, o.blob, o.blob_len);
		memcpy(p->uid, o.uid, sizeof(p->uid));
		p->blob_len = o.blob_len;
		p->crk_version = o.crk_version;
		p->material = material;
	}
	keel_store_object_cleanup(&o);
}

/*
 * A new object's UID and blob: those the item prepared (eng_prepare_seal) if
 * it prepared this very material, the blob only while its CRK version is the
 * active one; else made now, in the turn. A preparation serves one object.
 */
static int seal_new(struct eng_req *r, const struct eng_new_object *no, struct keel_store_object *o)
{
	struct eng_prep *p = r->prep;
	int err;

	if (p == NULL || p->uid[0] == '\0' || hsm_secret_len(p->material) != no->material_len ||
	    CRYPTO_memcmp(hsm_secret_data(p->material), no->material, no->material_len) != 0) {
		if ((err = new_uid(r, o->uid, sizeof(o->uid))) != 0) {
			return err;
		}
	} else {
		memcpy(o->uid, p->uid, sizeof(o->uid));
		p->uid[0] = '\0';
		if (eng_seal_current(r->e->hsm, p->crk_version) &&
		    (o->blob = malloc(p->blob_len)) != NULL) {
			memcpy(o->blob, p->blob, p->blob_len);
			o->blob_len = p->blob_len;
			o->crk_version = p->crk_version;
			atomic_fetch_add(&r->e->num_prepared_used, 1);
			return 0;
		}
	}
	if ((err = eng_seal(r->e->hsm, no->material, no->material_len, o)) != 0) {
		return eng_hsm_fail(r, err);
	}
	return 0;
}

/* Wraps the material under the active CRK and writes the object and its attributes. */
int eng_store_new(struct eng_req *r, const struct eng_new_object *no, char *out_uid)
{
	struct keel_store_object o = {
	    .object_type = no->object_type, .initial_date = r->now, .last_change_date = r->now};
	struct eng_attr_batch batch = {0};
	int err;

	if ((err = seal_new(r, no, &o)) != 0) {
		return err;
	}
	snprintf(o.owner, sizeof(o.owner), "%s", r->who->fingerprint_hex);
	/* §3.24: an Activation Date not in the future makes the object Active at once. */
	o.state = KMIP_STATE_PRE_ACTIVE;
	if (no->activation_date != 0 && no->activation_date <= r->now) {
		o.state = KMIP_STATE_ACTIVE;
	}
	o.activation_date = no->activation_date;
	o.deactivation_date = create_date(no, KMIP_TAG_DEACTIVATION_DATE);
	err = keel_store_object_put(r->txn, &o);
	keel_store_object_cleanup(&o);
	if (err != 0) {
		return eng_store_err(r, err, "storing object");
	}
	snprintf(r->uid, sizeof(r->uid), "%s", o.uid);
	snprintf(r->placeholder, sizeof(r->placeholder), "%s", o.uid);
	memcpy(out_uid, o.uid, sizeof(o.uid));
	/* Gathered, then written in one INSERT: ~10 rows per Create. */
	r->batch = &batch;
	if ((err = save_attrs(r, o.uid, no)) == 0 && (err = save_fresh(r, o.uid, no)) == 0 &&
	    (err = save_original_date(r, o.uid, no)) == 0 &&
	    (err = eng_protect_init(r, o.uid, no)) == 0) {
		err = save_digest(r, o.uid, no);
	}
	return attr_batch_end(r, o.uid, err);
}

/*
 * The symmetric algorithms Create generates (KMIP 1.4 §3.4, §9.1.3.2.13), with
 * the Cryptographic Lengths (§3.5) each allows: min..max in steps of |step| bits.
 * Key bytes are bits / 8, except where the length does not count every key bit:
 * DES keys carry a parity bit per byte (FIPS 46-3), so DES 56 and 3DES 112/168
 * are 8, 16 and 24 bytes; a length counted with the parity bits (DES 64,
 * 3DES 128/192) names the same key.
 */
struct sym_alg {
	uint32_t algorithm;
	int16_t min_bits, max_bits, step;
	bool des_parity;
};

static const struct sym_alg sym_algs[] = {
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 128, 256, 64, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_DES, 56, 56, 56, true},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_DES3, 112, 168, 56, true},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_SKIPJACK, 80, 80, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_BLOWFISH, 32, 448, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_CAMELLIA, 128, 256, 64, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_RC4, 40, 2048, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_CHA_CHA20, 256, 256, 8, false},
    /* HMAC keys: any whole number of bytes (RFC 2104 §3), at least 64 bits. */
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA1, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA224, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA256, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA384, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA512, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_MD5, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_224, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_256, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_384, 64, 4096, 8, false},
    {KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_512, 64, 4096, 8, false},
};

/* Key bytes for |bits| of |a|, or 0 when the length does not fit the algorithm. */
static size_t sym_key_len(const struct sym_alg *a, int32_t bits)
{
	int32_t key_bits = bits;

	if (a->des_parity && bits % 64 == 0) {
		key_bits = bits / 8 * 7; /* counted with parity */
	}
	if (key_bits < a->min_bits || key_bits > a->max_bits ||
	    (key_bits - a->min_bits) % a->step != 0) {
		return 0;
	}
	return a->des_parity ? (size_t)key_bits / 7 : (size_t)bits / 8;
}

/* Odd parity in the low bit of every byte, as DES keys carry it (FIPS 46-3 §1). */
static void des_set_parity(uint8_t *key, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t b = key[i] & 0xfe;
		uint8_t ones = (uint8_t)__builtin_popcount(b);

		key[i] = (uint8_t)(b | ((ones & 1) == 0));
	}
}

/* An HMAC key without a Cryptographic Length is as long as its hash's output
 * (RFC 2104 §3, SP 800-107 §5.3.4); other algorithms have no default. */
static int32_t default_bits(uint32_t alg)
{
	switch (alg) {
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_MD5:
		return 128;
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA1:
		return 160;
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA224:
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_224:
		return 224;
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA256:
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_256:
		return 256;
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA384:
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_384:
		return 384;
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA512:
	case KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA3_512:
		return 512;
	default:
		return 0;
	}
}

/* Appends the Cryptographic Length the server chose (§3.5) to |no|'s attributes. */
static int add_length(struct eng_req *r, struct eng_new_object *no, int32_t bits)
{
	struct eng_attr *a = eng_alloc(r, (no->num_attrs + 1) * sizeof(*a));
	struct kmip_node *v = eng_node(r, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, KMIP_TYPE_INTEGER);

	if (a == NULL || v == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < no->num_attrs; i++) {
		a[i] = no->attrs[i];
	}
	v->v.i32 = bits;
	a[no->num_attrs].rule = attr_rule_by_tag(KMIP_TAG_CRYPTOGRAPHIC_LENGTH);
	a[no->num_attrs].name = a[no->num_attrs].rule->name;
	a[no->num_attrs].value = v;
	no->attrs = a;
	no->num_attrs++;
	return 0;
}

/* Cryptographic Algorithm and Length of a new symmetric key (§3.4, §3.5). */
static int key_params(struct eng_req *r, struct eng_new_object *no, const struct sym_alg **out_alg,
		      size_t *out_len)
{
	uint32_t alg = 0;
	int32_t bits = 0;

	for (size_t i = 0; i < no->num_attrs; i++) {
		uint32_t tag = no->attrs[i].rule->tag;

		if (tag == KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM) {
			alg = no->attrs[i].value->v.u32;
		} else if (tag == KMIP_TAG_CRYPTOGRAPHIC_LENGTH) {
			bits = no->attrs[i].value->v.i32;
		}
	}
	*out_alg = NULL;
	for (size_t i = 0; i < sizeof(sym_algs) / sizeof(sym_algs[0]); i++) {
		if (sym_algs[i].algorithm == alg) {
			*out_alg = &sym_algs[i];
		}
	}
	if (*out_alg == NULL) {
		return eng_fail(
		    r, ENG_E_INVALID_FIELD,
		    "Cryptographic Algorithm: not a symmetric algorithm Keel generates");
	}
	if (bits == 0 && (bits = default_bits(alg)) != 0 && add_length(r, no, bits) != 0) {
		return ENG_E_INTERNAL;
	}
	if ((*out_len = sym_key_len(*out_alg, bits)) == 0) {
		return eng_fail(r, ENG_E_INVALID_FIELD,
				"Cryptographic Length: not a length of this algorithm");
	}
	return 0;
}

/* What Create makes of its request: the attributes, checked, and the key's algorithm and
 * length. */
static int create_params(struct eng_req *r, const struct kmip_create_request *q,
			 struct eng_new_object *no, const struct sym_alg **out_alg, size_t *out_len)
{
	int err;

	if (q->object_type != KMIP_OBJECT_TYPE_SYMMETRIC_KEY) {
		return eng_fail(r, ENG_E_INVALID_FIELD, "Object Type: Symmetric Key only");
	}
	if ((err = attr_collect(r, q->template_attribute, q->attributes, &no->attrs,
				&no->num_attrs)) != 0 ||
	    (err = eng_check_create_attrs(r, no)) != 0) {
		return err;
	}
	return key_params(r, no, out_alg, out_len);
}

/* |len| bytes of key material for |alg| from the token's RNG (DES keys with their parity). */
static int new_key(struct eng_req *r, const struct sym_alg *alg, size_t len,
		   struct hsm_secret **out)
{
	if (hsm_secret_new(len, out) != 0 ||
	    hsm_random(r->e->hsm, hsm_secret_data(*out), hsm_secret_len(*out)) != 0) {
		keel_err("engine: no key material from the token");
		hsm_secret_free(*out);
		*out = NULL;
		return eng_fail(r, ENG_E_CRYPTO, NULL);
	}
	if (alg->des_parity) {
		des_set_parity(hsm_secret_data(*out), len);
	}
	return 0;
}

/*
 * Create's token work before the turn: a UID, the key, and the key sealed
 * for that UID. A Template named in the request is read from the store, so
 * such a Create prepares nothing; a request that would fail prepares nothing
 * either (it fails in the turn, as it would have).
 */
void prepare_create(struct eng_req *r, const void *req, struct eng_prep *p)
{
	const struct kmip_create_request *q = req;
	const struct kmip_template_attribute *ta = q->template_attribute;
	struct hsm_secret *key = NULL;
	const struct sym_alg *alg;
	size_t len;

	p->request = (struct eng_new_object){.object_type = q->object_type, .generated = true};
	if ((ta == NULL || ta->num_names == 0) &&
	    create_params(r, q, &p->request, &alg, &len) == 0 && new_key(r, alg, len, &key) == 0) {
		eng_prepare_seal(r, key, p);
	}
}

/*
 * Create's checked attributes and its key: those it prepared before the
 * turn (the same request, checked by the same code, which reads no store),
 * else checked and made now, the key into |*made| for the caller to free.
 */
static int create_key(struct eng_req *r, const struct kmip_create_request *q,
		      struct eng_new_object *no, struct hsm_secret **made)
{
	const struct eng_prep *prep = r->prep;
	struct hsm_secret *key;
	const struct sym_alg *alg;
	size_t len;
	int err;

	if (prep != NULL && prep->material != NULL) {
		*no = prep->request;
		key = prep->material; /* the request's, wiped with its secrets */
	} else if ((err = create_params(r, q, no, &alg, &len)) != 0 ||
		   (err = new_key(r, alg, len, made)) != 0) {
		return err;
	} else {
		key = *made;
	}
	no->material = hsm_secret_data(key);
	no->material_len = hsm_secret_len(key);
	return 0;
}

int op_create(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_create_request *q = req;
	struct kmip_create_response *p = eng_alloc(r, sizeof(*p));
	struct eng_new_object no = {.object_type = q->object_type, .generated = true};
	struct hsm_secret *made = NULL;
	char *uid = eng_alloc(r, KEEL_STORE_UID_MAX + 1);
	int err;

	if (p == NULL || uid == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = create_key(r, q, &no, &made)) == 0 && (err = eng_store_new(r, &no, uid)) == 0) {
		p->object_type = q->object_type;
		p->unique_identifier = uid;
		p->unique_identifier_len = strlen(uid);
		*out = p;
	}
	hsm_secret_free(made);
	return err;
}

/* Reads a stored attribute's first instance into the arena; NULL if absent. */
const struct kmip_node *eng_stored_value(struct eng_req *r, const char *uid, const char *name)
{
	struct keel_store_attr *sa = NULL;
	const struct kmip_node *v = NULL;
	size_t n = 0;

	if (keel_store_attr_list(r->txn, uid, name, &sa, &n) != 0 || n == 0 ||
	    attr_load_value(r, &sa[0], &v) != 0) {
		v = NULL;
	}
	keel_store_attrs_free(sa, n);
	return v;
}

/* Reads a stored Integer or Enumeration attribute; 0 if absent. */
int32_t eng_stored_int(struct eng_req *r, const char *uid, const char *name)
{
	const struct kmip_node *v = eng_stored_value(r, uid, name);

	if (v == NULL) {
		return 0;
	}
	return v->type == KMIP_TYPE_ENUMERATION ? (int32_t)v->v.u32 : v->v.i32;
}

/* Answers the operations whose response is the Unique Identifier alone. */
int eng_uid_response(struct eng_req *r, const struct keel_store_object *o, void **out)
{
	struct kmip_unique_identifier_response *p = eng_alloc(r, sizeof(*p));

	if (p == NULL || (p->unique_identifier = eng_strdup(r, o->uid, strlen(o->uid))) == NULL) {
		return ENG_E_INTERNAL;
	}
	p->unique_identifier_len = strlen(o->uid);
	*out = p;
	return 0;
}

int op_activate(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_unique_identifier_request *q = req;
	struct keel_store_object o = {0};
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) == 0 &&
	    (err = eng_activate(r, &o)) == 0) {
		err = eng_uid_response(r, &o, out);
	}
	keel_store_object_cleanup(&o);
	return err;
}

/* Keeps the Revocation Reason as an attribute (§3.31). */
static int save_reason(struct eng_req *r, const char *uid, const struct kmip_revocation_reason *rr)
{
	struct kmip_node *s = eng_node(r, KMIP_TAG_REVOCATION_REASON, KMIP_TYPE_STRUCTURE);
	struct kmip_node *code =
	    eng_node(r, KMIP_TAG_REVOCATION_REASON_CODE, KMIP_TYPE_ENUMERATION);
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_REVOCATION_REASON),
			     .name = "Revocation Reason",
			     .value = s};
	int err;

	if (s == NULL || code == NULL) {
		return ENG_E_INTERNAL;
	}
	code->v.u32 = rr->revocation_reason_code;
	s->v.child = code;
	s->len = 1;
	err = keel_store_attr_delete(r->txn, uid, "Revocation Reason", -1);
	if (err != 0 && err != KEEL_STORE_E_NOT_FOUND) {
		return eng_store_err(r, err, "replacing Revocation Reason");
	}
	return attr_save(r, uid, &a, 0, false);
}

int op_revoke(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_revoke_request *q = req;
	struct keel_store_object o = {0};
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) == 0 &&
	    (err = eng_revoke(r, &o, q->revocation_reason->revocation_reason_code,
			      q->has_compromise_occurrence_date ? q->compromise_occurrence_date
								: 0)) == 0 &&
	    (err = save_reason(r, o.uid, q->revocation_reason)) == 0) {
		err = eng_uid_response(r, &o, out);
	}
	keel_store_object_cleanup(&o);
	return err;
}

int op_destroy(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_unique_identifier_request *q = req;
	struct keel_store_object o = {0};
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) == 0 &&
	    (err = eng_destroy(r, &o)) == 0) {
		err = eng_uid_response(r, &o, out);
	}
	keel_store_object_cleanup(&o);
	return err;
}

/* Check (§4.10): the object exists for this client and allows the usage asked. */
int op_check(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_check_request *q = req;
	struct kmip_check_response *p = eng_alloc(r, sizeof(*p));
	struct keel_store_object o = {0};
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0) {
		goto out;
	}
	if (q->has_cryptographic_usage_mask &&
	    (q->cryptographic_usage_mask & ~eng_stored_int(r, o.uid, "Cryptographic Usage Mask")) !=
		0) {
		p->has_cryptographic_usage_mask = true;
		p->cryptographic_usage_mask = q->cryptographic_usage_mask;
		err = eng_fail(r, ENG_E_INVALID_FIELD, "usage not permitted by the usage mask");
		goto out;
	}
	p->unique_identifier = eng_strdup(r, o.uid, strlen(o.uid));
	p->unique_identifier_len = strlen(o.uid);
	*out = p;
out:
	keel_store_object_cleanup(&o);
	return err;
}
