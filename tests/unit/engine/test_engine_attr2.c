/*
 * KMIP 2.x attribute operations (2.0 §6.1): Set Attribute, and Get Attribute
 * List and Delete Attribute with Attribute References and Current Attribute.
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

static void text_item(struct kmip_writer *w, uint32_t holder, uint32_t tag, const char *v)
{
	kmip_write_begin(w, holder);
	kmip_write_text(w, tag, v, strlen(v));
	kmip_write_end(w);
}

/* Set, Add (2.x) or Delete with a Current Attribute of text |v| tagged |tag|. */
static void attr_op(struct engine_fx *f, uint32_t op, const char *uid, uint32_t tag, const char *v)
{
	struct kmip_writer w;

	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, op);
	req_uid(&w, uid);
	text_item(&w,
		  op == KMIP_OPERATION_DELETE_ATTRIBUTE ? KMIP_TAG_CURRENT_ATTRIBUTE
							: KMIP_TAG_NEW_ATTRIBUTE,
		  tag, v);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

static void delete_ref(struct engine_fx *f, const char *uid, uint32_t tag)
{
	struct kmip_writer w;

	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_DELETE_ATTRIBUTE);
	req_uid(&w, uid);
	kmip_write_enum(&w, KMIP_TAG_ATTRIBUTE_REFERENCE, tag);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

/* The number of instances of |tag| Get Attributes (2.x) returns; the first's text in |out|. */
static size_t count_attr(struct engine_fx *f, const char *uid, uint32_t tag, char out[static 64])
{
	struct kmip_writer w;
	const struct kmip_get_attributes_response *p;
	size_t n = 0;

	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	kmip_write_enum(&w, KMIP_TAG_ATTRIBUTE_REFERENCE, tag);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	out[0] = '\0';
	for (size_t i = 0; p->attributes != NULL && i < p->attributes->num_attributes; i++) {
		const struct kmip_node *a = p->attributes->attributes[i];

		assert_int_equal(a->tag, tag);
		if (n++ == 0 && a->len < 64) {
			memcpy(out, a->v.text, a->len);
			out[a->len] = '\0';
		}
	}
	return n;
}

static void test_set_attribute(void **state)
{
	struct engine_fx *f = *state;
	char uid[129], v[64];

	req_create_aes(f, 128, 12, false, uid);
	/* No instance: Set adds; one instance: Set replaces. */
	attr_op(f, KMIP_OPERATION_SET_ATTRIBUTE, uid, KMIP_TAG_CONTACT_INFORMATION, "ops@a");
	req_expect_ok(f, 0);
	assert_int_equal(count_attr(f, uid, KMIP_TAG_CONTACT_INFORMATION, v), 1);
	assert_string_equal(v, "ops@a");
	attr_op(f, KMIP_OPERATION_SET_ATTRIBUTE, uid, KMIP_TAG_CONTACT_INFORMATION, "ops@b");
	req_expect_ok(f, 0);
	assert_int_equal(count_attr(f, uid, KMIP_TAG_CONTACT_INFORMATION, v), 1);
	assert_string_equal(v, "ops@b");
	/* Several instances: Set does not choose one. */
	attr_op(f, KMIP_OPERATION_ADD_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g1");
	req_expect_ok(f, 0);
	attr_op(f, KMIP_OPERATION_ADD_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g2");
	req_expect_ok(f, 0);
	attr_op(f, KMIP_OPERATION_SET_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g3");
	req_expect_fail(f, 0, KMIP_RESULT_REASON_MULTI_VALUED_ATTRIBUTE);
	/* A server-managed attribute is read-only. */
	attr_op(f, KMIP_OPERATION_SET_ATTRIBUTE, uid, KMIP_TAG_UNIQUE_IDENTIFIER, "mine");
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ATTRIBUTE_READ_ONLY);
	/* Another client's object does not exist. */
	struct kmip_writer w;
	req_begin(&w, 2, 0, 1);
	req_item_begin(&w, KMIP_OPERATION_SET_ATTRIBUTE);
	req_uid(&w, uid);
	text_item(&w, KMIP_TAG_NEW_ATTRIBUTE, KMIP_TAG_CONTACT_INFORMATION, "bob");
	req_item_end(&w);
	req_send(f, &f->bob, &w);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

static void test_get_attribute_list_v2(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	const struct kmip_get_attribute_list_response *p;
	bool alg = false, group = false, custom = false;
	char uid[129];
	size_t groups = 0;

	req_create_aes(f, 256, 12, false, uid);
	attr_op(f, KMIP_OPERATION_ADD_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g1");
	attr_op(f, KMIP_OPERATION_ADD_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g2");
	req_begin(&w, 2, 0, 2);
	req_item_begin(&w, KMIP_OPERATION_ADD_ATTRIBUTE);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_NEW_ATTRIBUTE);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(&w, KMIP_TAG_VENDOR_IDENTIFICATION, "x", 1);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "vm", 2);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_VALUE, "42", 2);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_item_end(&w);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTE_LIST);
	req_uid(&w, uid);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	req_expect_ok(f, 1);
	p = req_item(f, 1)->response_payload;
	assert_int_equal(p->num_attribute_names, 0);
	for (size_t i = 0; i < p->num_attribute_references; i++) {
		const struct kmip_node *ref = p->attribute_references[i];

		assert_int_equal(ref->tag, KMIP_TAG_ATTRIBUTE_REFERENCE);
		if (ref->type == KMIP_TYPE_STRUCTURE) {
			const struct kmip_node *an = kmip_node_find(ref, KMIP_TAG_ATTRIBUTE_NAME);

			custom = an != NULL && an->len == 2 && memcmp(an->v.text, "vm", 2) == 0;
			continue;
		}
		alg |= ref->v.u32 == KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM;
		group |= ref->v.u32 == KMIP_TAG_OBJECT_GROUP;
		groups += ref->v.u32 == KMIP_TAG_OBJECT_GROUP;
	}
	assert_true(alg && group && custom);
	/* Two instances, one reference. */
	assert_int_equal(groups, 1);
}

static void test_delete_attribute_v2(void **state)
{
	struct engine_fx *f = *state;
	char uid[129], v[64];

	req_create_aes(f, 128, 12, false, uid);
	attr_op(f, KMIP_OPERATION_ADD_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g1");
	attr_op(f, KMIP_OPERATION_ADD_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g2");
	attr_op(f, KMIP_OPERATION_ADD_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g3");
	/* Current Attribute: the instance with that value only. */
	attr_op(f, KMIP_OPERATION_DELETE_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g2");
	req_expect_ok(f, 0);
	assert_int_equal(count_attr(f, uid, KMIP_TAG_OBJECT_GROUP, v), 2);
	attr_op(f, KMIP_OPERATION_DELETE_ATTRIBUTE, uid, KMIP_TAG_OBJECT_GROUP, "g2");
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ATTRIBUTE_NOT_FOUND);
	/* Attribute Reference: every instance. */
	delete_ref(f, uid, KMIP_TAG_OBJECT_GROUP);
	req_expect_ok(f, 0);
	assert_int_equal(count_attr(f, uid, KMIP_TAG_OBJECT_GROUP, v), 0);
	delete_ref(f, uid, KMIP_TAG_OBJECT_GROUP);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ATTRIBUTE_NOT_FOUND);
	/* Read-only attributes stay. */
	delete_ref(f, uid, KMIP_TAG_STATE);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ATTRIBUTE_READ_ONLY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_set_attribute, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_attribute_list_v2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_attribute_v2, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
