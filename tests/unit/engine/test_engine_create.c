/*
 * Create and Register with the attributes KMIP 1.4 §3 lets a client set at
 * creation, symmetric keys of the algorithms Keel generates (§3.4, §3.5), and
 * Locate by those attributes (§4.9); a response over the client's Maximum
 * Response Size (§6.3); the Digest of a new key (§3.17), its Lease Time
 * (§3.20), Fresh (§3.34), Original Creation Date (§3.44), and Activation
 * Date added later (§3.24).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/sha.h>
#include <string.h>

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

/* Opens a 1.x Attribute named |name|; the caller writes the value and closes it. */
static void attr_begin(struct kmip_writer *w, const char *name)
{
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
}

/* The attributes of §3 a client may give at creation, beyond algorithm and length. */
static void client_attrs(struct kmip_writer *w)
{
	attr_begin(w, "Operation Policy Name");
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_VALUE, "default", 7);
	kmip_write_end(w);
	attr_begin(w, "Sensitive");
	kmip_write_bool(w, KMIP_TAG_ATTRIBUTE_VALUE, true);
	kmip_write_end(w);
	attr_begin(w, "Deactivation Date");
	kmip_write_datetime(w, KMIP_TAG_ATTRIBUTE_VALUE, 4102444800); /* 2100-01-01 */
	kmip_write_end(w);
	attr_begin(w, "Cryptographic Parameters");
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE_VALUE);
	kmip_write_enum(w, KMIP_TAG_BLOCK_CIPHER_MODE, KMIP_BLOCK_CIPHER_MODE_CBC);
	kmip_write_end(w);
	kmip_write_end(w);
	attr_begin(w, "Application Specific Information");
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE_VALUE);
	kmip_write_text(w, KMIP_TAG_APPLICATION_NAMESPACE, "ssl", 3);
	kmip_write_text(w, KMIP_TAG_APPLICATION_DATA, "www.example.com", 15);
	kmip_write_end(w);
	kmip_write_end(w);
}

/* Sends Create of a symmetric key |alg|/|bits|, with client_attrs() when |extra|. */
static void create_sym(struct engine_fx *f, uint32_t alg, int32_t bits, bool extra)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Algorithm", true, (int32_t)alg);
	req_attr_int(&w, "Cryptographic Length", false, bits);
	req_attr_int(&w, "Cryptographic Usage Mask", false, 12);
	if (extra) {
		client_attrs(&w);
	}
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

static void take_uid(struct engine_fx *f, char uid[static 129])
{
	const struct kmip_create_response *p = req_item(f, 0)->response_payload;

	assert_true(p->unique_identifier_len < 129);
	req_copy_uid(uid, p->unique_identifier, p->unique_identifier_len);
}

/* The value of |uid|'s attribute |name| as Get Attributes returns it, or NULL. */
static const struct kmip_node *get_attr(struct engine_fx *f, const char *uid, const char *name)
{
	const struct kmip_get_attributes_response *p;
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	return p->num_attribute != 0 ? p->attribute[0].attribute_value : NULL;
}

/* KMIP 1.4 §3: every attribute a client may set at creation is accepted and kept. */
static void test_create_client_attributes(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_node *v;
	char uid[129];

	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 256, true);
	req_expect_ok(f, 0);
	take_uid(f, uid);
	v = get_attr(f, uid, "Operation Policy Name");
	assert_non_null(v);
	assert_int_equal(v->len, 7);
	assert_memory_equal(v->v.text, "default", 7);
	v = get_attr(f, uid, "Sensitive");
	assert_non_null(v);
	assert_true(v->v.b);
	v = get_attr(f, uid, "Deactivation Date");
	assert_non_null(v);
	assert_int_equal(v->v.i64, 4102444800);
	v = get_attr(f, uid, "Cryptographic Parameters");
	assert_non_null(v);
	v = kmip_node_find(v, KMIP_TAG_BLOCK_CIPHER_MODE);
	assert_non_null(v);
	assert_int_equal(v->v.u32, KMIP_BLOCK_CIPHER_MODE_CBC);
	assert_non_null(get_attr(f, uid, "Application Specific Information"));
}

/* Attributes only the server sets are still refused at creation (§3.41). */
static void test_create_server_attribute_refused(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	req_attr_int(&w, "Cryptographic Length", false, 128);
	attr_begin(&w, "Key Value Present");
	kmip_write_bool(&w, KMIP_TAG_ATTRIBUTE_VALUE, true);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
}

/* Creates |alg|/|bits| and returns the length of the key Get gives back. */
static size_t created_len(struct engine_fx *f, uint32_t alg, int32_t bits, uint8_t key[static 64])
{
	char uid[129];

	create_sym(f, alg, bits, false);
	req_expect_ok(f, 0);
	take_uid(f, uid);
	return req_get_key(f, uid, key);
}

/* KMIP 1.4 §3.4, §3.5: the symmetric algorithms and their key sizes. */
static void test_create_algorithms(void **state)
{
	struct engine_fx *f = *state;
	uint8_t key[64];

	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_DES3, 112, key), 16);
	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_DES3, 192, key), 24);
	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_DES, 56, key), 8);
	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_SKIPJACK, 80, key), 10);
	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_CAMELLIA, 192, key), 24);
	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_BLOWFISH, 40, key), 5);
	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_CHA_CHA20, 256, key), 32);
	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_HMAC_SHA256, 256, key), 32);
	/* DES keys carry odd parity in every byte (FIPS 46-3). */
	assert_int_equal(created_len(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_DES3, 168, key), 24);
	for (size_t i = 0; i < 24; i++) {
		assert_int_equal(__builtin_popcount(key[i]) % 2, 1);
	}
}

/* A length the algorithm does not have, or an algorithm that is not symmetric. */
static void test_create_bad_lengths(void **state)
{
	struct engine_fx *f = *state;

	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 100, false);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_DES3, 128 + 8, false);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_SKIPJACK, 128, false);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_RSA, 2048, false);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_INVALID_FIELD);
}

/* Creates an AES key with Activation Date |act| (in the future: Pre-Active). */
static void create_dated(struct engine_fx *f, int64_t act, char uid[static 129])
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	req_attr_int(&w, "Cryptographic Length", false, 128);
	attr_begin(&w, "Activation Date");
	kmip_write_datetime(&w, KMIP_TAG_ATTRIBUTE_VALUE, act);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	take_uid(f, uid);
}

/* A Locate: Activation Date range [lo, hi] (both 0: none), |uid| (may be NULL),
 * State, Maximum Items, Offset Items, Storage Status Mask (0: none). */
struct loc_req {
	int64_t lo, hi;
	const char *uid;
	uint32_t state;
	int32_t max, offset, mask;
};

/* Sends |l| as alice; returns how many objects it found. */
static size_t locate(struct engine_fx *f, const struct loc_req *l)
{
	const struct kmip_locate_response *p;
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_LOCATE);
	if (l->max != 0) {
		kmip_write_int(&w, KMIP_TAG_MAXIMUM_ITEMS, l->max);
	}
	if (l->offset != 0) {
		kmip_write_int(&w, KMIP_TAG_OFFSET_ITEMS, l->offset);
	}
	if (l->mask != 0) {
		kmip_write_int(&w, KMIP_TAG_STORAGE_STATUS_MASK, l->mask);
	}
	for (int i = 0; i < 2 && l->lo != 0; i++) {
		attr_begin(&w, "Activation Date");
		kmip_write_datetime(&w, KMIP_TAG_ATTRIBUTE_VALUE, i == 0 ? l->hi : l->lo);
		kmip_write_end(&w);
	}
	if (l->uid != NULL) {
		attr_begin(&w, "Unique Identifier");
		kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_VALUE, l->uid, strlen(l->uid));
		kmip_write_end(&w);
	}
	if (l->state != 0) {
		req_attr_int(&w, "State", true, (int32_t)l->state);
	}
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	return p->num_unique_identifiers;
}

/* §4.9: two dates are a range; Unique Identifier, State, Maximum and Offset Items;
 * a destroyed object is found only when asked for by State. */
static void test_locate_ranges(void **state)
{
	struct engine_fx *f = *state;
	const int64_t t0 = 4102444800; /* 2100-01-01 */
	char uid[3][129];
	struct kmip_writer w;

	for (int i = 0; i < 3; i++) {
		create_dated(f, t0 + i * 86400, uid[i]);
	}
	assert_int_equal(locate(f, &(struct loc_req){.lo = t0, .hi = t0 + 86400}), 2);
	assert_int_equal(locate(f, &(struct loc_req){.lo = t0 + 1, .hi = t0 + 3 * 86400}), 2);
	assert_int_equal(locate(f, &(struct loc_req){.lo = t0 - 10, .hi = t0 - 1}), 0);
	assert_int_equal(locate(f, &(struct loc_req){.uid = uid[1]}), 1);
	assert_int_equal(locate(f, &(struct loc_req){.max = 2}), 2);
	assert_int_equal(locate(f, &(struct loc_req){.offset = 2}), 1);
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_DESTROY);
	req_uid(&w, uid[0]);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	assert_int_equal(locate(f, &(struct loc_req){.uid = uid[0]}), 0);
	assert_int_equal(locate(f, &(struct loc_req){0}), 2);
	assert_int_equal(locate(f, &(struct loc_req){.state = KMIP_STATE_DESTROYED}), 1);
	/* Archived objects only when the Storage Status Mask asks (§9.1.3.3.2). */
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_ARCHIVE);
	req_uid(&w, uid[1]);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	assert_int_equal(locate(f, &(struct loc_req){0}), 1);
	assert_int_equal(locate(f, &(struct loc_req){.mask = 2}), 1);
	assert_int_equal(locate(f, &(struct loc_req){.mask = 3}), 2);
}

/* Query Operations with Maximum Response Size |max| in the header (KMIP 1.4 §6.3). */
static void query_limited(struct engine_fx *f, int32_t max)
{
	struct kmip_writer w;

	kmip_writer_init(&w, 1u << 20);
	kmip_write_begin(&w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(&w, KMIP_TAG_REQUEST_HEADER);
	kmip_write_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	kmip_write_int(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, 4);
	kmip_write_end(&w);
	kmip_write_int(&w, KMIP_TAG_MAXIMUM_RESPONSE_SIZE, max);
	kmip_write_int(&w, KMIP_TAG_BATCH_COUNT, 1);
	kmip_write_end(&w);
	req_item_begin(&w, KMIP_OPERATION_QUERY);
	kmip_write_enum(&w, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_FUNCTION_QUERY_OPERATIONS);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

/* §6.3: a response larger than Maximum Response Size answers Response Too Large. */
static void test_response_too_large(void **state)
{
	struct engine_fx *f = *state;

	query_limited(f, 256);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_RESPONSE_TOO_LARGE);
	query_limited(f, 1 << 16);
	req_expect_ok(f, 0);
}

/* §3.17: a new key's Digest is SHA-256 of its Raw key material; 1.0 has no Key Format Type. */
static void test_digest_of_created_key(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_node *d, *c;
	uint8_t key[64], sum[SHA256_DIGEST_LENGTH];
	char uid[129];
	size_t len;

	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 256, false);
	req_expect_ok(f, 0);
	take_uid(f, uid);
	len = req_get_key(f, uid, key);
	SHA256(key, len, sum);
	d = get_attr(f, uid, "Digest");
	assert_non_null(d);
	c = kmip_node_find(d, KMIP_TAG_HASHING_ALGORITHM);
	assert_non_null(c);
	assert_int_equal(c->v.u32, KMIP_HASHING_ALGORITHM_SHA_256);
	c = kmip_node_find(d, KMIP_TAG_DIGEST_VALUE);
	assert_non_null(c);
	assert_int_equal(c->len, sizeof(sum));
	assert_memory_equal(c->v.bytes, sum, sizeof(sum));
	c = kmip_node_find(d, KMIP_TAG_KEY_FORMAT_TYPE);
	assert_non_null(c);
	assert_int_equal(c->v.u32, KMIP_KEY_FORMAT_TYPE_RAW);
}

/* The same Digest read in KMIP 1.0, whose Digest has no Key Format Type. */
static void test_digest_v10(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_get_attributes_response *p;
	const struct kmip_node *d;
	struct kmip_writer w;
	char uid[129];

	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 128, false);
	req_expect_ok(f, 0);
	take_uid(f, uid);
	req_begin(&w, 1, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Digest", 6);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_int_equal(p->num_attribute, 1);
	d = p->attribute[0].attribute_value;
	assert_non_null(kmip_node_find(d, KMIP_TAG_DIGEST_VALUE));
	assert_null(kmip_node_find(d, KMIP_TAG_KEY_FORMAT_TYPE));
}

/* §3.24, §3.20: a client adds the Activation Date of a Pre-Active key, which
 * makes it Active when the date has come; every object shows its Lease Time. */
static void test_add_activation_date(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_node *v;
	struct kmip_writer w;
	char uid[129];

	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 128, false);
	req_expect_ok(f, 0);
	take_uid(f, uid);
	v = get_attr(f, uid, "Lease Time");
	assert_non_null(v);
	assert_int_equal(v->type, KMIP_TYPE_INTERVAL);
	assert_true(v->v.u32 > 0);
	for (int i = 0; i < 2; i++) {
		req_begin(&w, 1, 4, 1);
		req_item_begin(&w, KMIP_OPERATION_ADD_ATTRIBUTE);
		req_uid(&w, uid);
		attr_begin(&w, "Activation Date");
		kmip_write_datetime(&w, KMIP_TAG_ATTRIBUTE_VALUE, 1000000000);
		kmip_write_end(&w);
		req_item_end(&w);
		req_send(f, &f->alice, &w);
		if (i == 0) {
			req_expect_ok(f, 0);
		} else {
			/* Active now: the date may no longer change. */
			req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
		}
	}
	v = get_attr(f, uid, "State");
	assert_non_null(v);
	assert_int_equal(v->v.u32, KMIP_STATE_ACTIVE);
	v = get_attr(f, uid, "Activation Date");
	assert_non_null(v);
	assert_int_equal(v->v.i64, 1000000000);
}

/* §3.34: Fresh until first served by Get; KMIP 1.0, which has no Fresh, does not show it. */
static void test_fresh(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_get_attributes_response *p;
	const struct kmip_node *v;
	struct kmip_writer w;
	uint8_t key[64];
	char uid[129];

	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 128, false);
	req_expect_ok(f, 0);
	take_uid(f, uid);
	v = get_attr(f, uid, "Fresh");
	assert_non_null(v);
	assert_true(v->v.b);
	req_begin(&w, 1, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Fresh", 5);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_int_equal(p->num_attribute, 0);
	assert_int_equal(req_get_key(f, uid, key), 16);
	v = get_attr(f, uid, "Fresh");
	assert_non_null(v);
	assert_false(v->v.b);
}

/* §3.44: a key the server generates was originally created at its Initial Date. */
static void test_original_creation_date(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_node *v;
	int64_t initial;
	char uid[129];

	create_sym(f, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 128, false);
	req_expect_ok(f, 0);
	take_uid(f, uid);
	v = get_attr(f, uid, "Initial Date");
	assert_non_null(v);
	initial = v->v.i64;
	v = get_attr(f, uid, "Original Creation Date");
	assert_non_null(v);
	assert_int_equal(v->v.i64, initial);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_client_attributes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_server_attribute_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_algorithms, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_bad_lengths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_locate_ranges, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_response_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_digest_of_created_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_digest_v10, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_activation_date, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fresh, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_original_creation_date, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
