/*
 * Re-key (KMIP 1.4 §4.4) through keel_engine_handle: a new symmetric key
 * with the existing key's attributes, the Names moved over, the two keys
 * linked both ways, and the Activation Date from Offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

/* Adds Name "|name|" and x-tag "kept" to |uid|. */
static void add_name(struct engine_fx *f, const char *uid, const char *name)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 2);
	req_item_begin(&w, KMIP_OPERATION_ADD_ATTRIBUTE);
	req_uid(&w, uid);
	req_attr_name(&w, name);
	req_item_end(&w);
	req_item_begin(&w, KMIP_OPERATION_ADD_ATTRIBUTE);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "x-tag", 5);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_VALUE, "kept", 4);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	req_expect_ok(f, 1);
}

/* Re-key |uid| as |who|, with |offset| seconds when >= 0; the new UID on success. */
static bool rekey(struct engine_fx *f, const struct keel_client_identity *who, const char *uid,
		  int64_t offset, char out[static 129])
{
	struct kmip_writer w;
	const struct kmip_re_key_response *p;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_RE_KEY);
	req_uid(&w, uid);
	if (offset >= 0) {
		kmip_write_interval(&w, KMIP_TAG_OFFSET, (uint32_t)offset);
	}
	req_item_end(&w);
	req_send(f, who, &w);
	if (req_item(f, 0)->result_status != KMIP_RESULT_STATUS_SUCCESS) {
		return false;
	}
	p = req_item(f, 0)->response_payload;
	assert_true(p->unique_identifier_len < 129);
	req_copy_uid(out, p->unique_identifier, p->unique_identifier_len);
	return true;
}

/* The attributes named |name| of |uid|; their count. */
static size_t attrs(struct engine_fx *f, const char *uid, const char *name,
		    const struct kmip_node **first)
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
	*first = p->num_attribute > 0 ? p->attribute[0].attribute_value : NULL;
	return p->num_attribute;
}

static void expect_link(struct engine_fx *f, const char *uid, uint32_t type, const char *other)
{
	const struct kmip_node *v, *n;

	assert_int_equal(attrs(f, uid, "Link", &v), 1);
	assert_non_null(n = kmip_node_find(v, KMIP_TAG_LINK_TYPE));
	assert_int_equal(n->v.u32, type);
	assert_non_null(n = kmip_node_find(v, KMIP_TAG_LINKED_OBJECT_IDENTIFIER));
	assert_int_equal(n->len, strlen(other));
	assert_memory_equal(n->v.text, other, n->len);
}

static void test_rekey_offset(void **state)
{
	struct engine_fx *f = *state;
	char old[129], new_uid[129];
	uint8_t a[64], b[64];
	const struct kmip_node *v;
	int64_t initial;

	req_create_aes(f, 256, 12, true, old);
	add_name(f, old, "vm-key");
	assert_true(rekey(f, &f->alice, old, 3600, new_uid));
	assert_string_not_equal(old, new_uid);
	/* New material of the same length. */
	assert_int_equal(req_get_key(f, old, a), 32);
	assert_int_equal(req_get_key(f, new_uid, b), 32);
	assert_memory_not_equal(a, b, 32);
	/* Names moved; other attributes copied. */
	assert_int_equal(attrs(f, old, "Name", &v), 0);
	assert_int_equal(attrs(f, new_uid, "Name", &v), 1);
	assert_int_equal(attrs(f, new_uid, "x-tag", &v), 1);
	assert_int_equal(attrs(f, new_uid, "Cryptographic Usage Mask", &v), 1);
	assert_int_equal(v->v.i32, 12);
	/* Linked both ways (§4.4). */
	expect_link(f, old, KMIP_LINK_TYPE_REPLACEMENT_OBJECT_LINK, new_uid);
	expect_link(f, new_uid, KMIP_LINK_TYPE_REPLACED_OBJECT_LINK, old);
	/* Activation Date = Initial Date + Offset: still in the future, so Pre-Active. */
	assert_int_equal(attrs(f, new_uid, "Initial Date", &v), 1);
	initial = v->v.i64; /* |v| lives until the next request */
	assert_int_equal(attrs(f, new_uid, "Activation Date", &v), 1);
	assert_true(v->v.i64 == initial + 3600);
	assert_int_equal(attrs(f, new_uid, "State", &v), 1);
	assert_int_equal(v->v.u32, KMIP_STATE_PRE_ACTIVE);
	/* The old key is unchanged otherwise. */
	assert_int_equal(attrs(f, old, "State", &v), 1);
	assert_int_equal(v->v.u32, KMIP_STATE_ACTIVE);
}

/* Without Offset the dates are copied: an Active key's replacement is Active. */
static void test_rekey_no_offset(void **state)
{
	struct engine_fx *f = *state;
	char old[129], new_uid[129], again[129];
	const struct kmip_node *v;
	int64_t activated;

	req_create_aes(f, 128, 12, true, old);
	assert_true(rekey(f, &f->alice, old, -1, new_uid));
	assert_int_equal(attrs(f, new_uid, "State", &v), 1);
	assert_int_equal(v->v.u32, KMIP_STATE_ACTIVE);
	assert_int_equal(attrs(f, old, "Activation Date", &v), 1);
	activated = v->v.i64; /* |v| lives until the next request */
	assert_int_equal(attrs(f, new_uid, "Activation Date", &v), 1);
	assert_true(v->v.i64 == activated);
	assert_int_equal(attrs(f, new_uid, "Cryptographic Length", &v), 1);
	assert_int_equal(v->v.i32, 128);
	/* Re-keying the old key again adds a second Replacement link. */
	assert_true(rekey(f, &f->alice, old, -1, again));
	assert_int_equal(attrs(f, old, "Link", &v), 2);
}

static void test_rekey_refused(void **state)
{
	struct engine_fx *f = *state;
	char old[129], out[129];

	req_create_aes(f, 256, 12, false, old);
	assert_false(rekey(f, &f->bob, old, -1, out));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
	assert_false(rekey(f, &f->alice, "no-such-key", -1, out));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
	/* A destroyed key has no material to replace. */
	struct kmip_writer w;
	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_DESTROY);
	req_uid(&w, old);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	assert_false(rekey(f, &f->alice, old, -1, out));
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rekey_offset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rekey_no_offset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rekey_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
