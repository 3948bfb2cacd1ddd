/*
 * Templates (KMIP 1.4 §2.2.6, §2.1.8): Register keeps one, Get returns it as
 * registered, and a Create naming it in its Template-Attribute inherits its
 * attributes, the request's own winning for single-valued ones; a Template
 * is its owner's alone and a destroyed one names nothing.
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

static void name_value(struct kmip_writer *w, uint32_t tag, const char *name)
{
	kmip_write_begin(w, tag);
	kmip_write_text(w, KMIP_TAG_NAME_VALUE, name, strlen(name));
	kmip_write_enum(w, KMIP_TAG_NAME_TYPE, KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);
	kmip_write_end(w);
}

/* Sends alice's |operation| on |uid| alone, in 1.1. */
static void on_uid(struct engine_fx *f, uint32_t operation, const char *uid)
{
	struct kmip_writer w;

	req_begin(&w, 1, 1, 1);
	req_item_begin(&w, operation);
	req_uid(&w, uid);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

/* Registers, as |who|, Template |name|: AES-256, Encrypt|Decrypt, x-team "from-template". */
static void register_template(struct engine_fx *f, const struct keel_client_identity *who,
			      const char *name, char uid[static 129])
{
	struct kmip_writer w;
	const struct kmip_register_response *p;

	req_begin(&w, 1, 1, 1);
	req_item_begin(&w, KMIP_OPERATION_REGISTER);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_TEMPLATE);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE);
	req_attr_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	req_attr_int(&w, "Cryptographic Length", false, 256);
	req_attr_int(&w, "Cryptographic Usage Mask", false, 12);
	req_attr_text(&w, "x-team", "from-template");
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Name", 4);
	name_value(&w, KMIP_TAG_ATTRIBUTE_VALUE, name);
	kmip_write_end(&w);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, who, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	req_copy_uid(uid, p->unique_identifier, p->unique_identifier_len);
}

/* Sends, as |who|, a Create of a symmetric key naming Template |name|, 128 bits, x-team "own". */
static void create_from(struct engine_fx *f, const struct keel_client_identity *who,
			const char *name)
{
	struct kmip_writer w;

	req_begin(&w, 1, 1, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	name_value(&w, KMIP_TAG_NAME, name);
	req_attr_int(&w, "Cryptographic Length", false, 128);
	req_attr_text(&w, "x-team", "own");
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, who, &w);
}

/* The instances of |name| in |p|, in order; their values' first node kept in |out|. */
static size_t find_attr(const struct kmip_get_attributes_response *p, const char *name,
			const struct kmip_node *out[static 4])
{
	size_t n = 0;

	for (size_t i = 0; i < p->num_attribute && n < 4; i++) {
		if (p->attribute[i].attribute_name_len == strlen(name) &&
		    memcmp(p->attribute[i].attribute_name, name, strlen(name)) == 0) {
			out[n++] = p->attribute[i].attribute_value;
		}
	}
	return n;
}

static void test_create_inherits(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_get_attributes_response *ga;
	const struct kmip_create_response *cr;
	const struct kmip_node *v[4];
	struct keel_engine_prep_stats before, after;
	char tuid[129], kuid[129];
	uint8_t key[64];

	register_template(f, &f->alice, "T1", tuid);
	keel_engine_prep_stats(f->e, &before);
	create_from(f, &f->alice, "T1");
	req_expect_ok(f, 0);
	/* The Template is read from the store: the Create prepared nothing before its turn. */
	keel_engine_prep_stats(f->e, &after);
	assert_int_equal(after.prepared, before.prepared);
	cr = req_item(f, 0)->response_payload;
	req_copy_uid(kuid, cr->unique_identifier, cr->unique_identifier_len);

	ga = req_get_attributes(f, kuid);
	assert_int_equal(find_attr(ga, "Cryptographic Algorithm", v), 1);
	assert_int_equal(v[0]->v.u32, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	assert_int_equal(find_attr(ga, "Cryptographic Length", v), 1); /* the request's wins */
	assert_int_equal(v[0]->v.i32, 128);
	assert_int_equal(find_attr(ga, "Cryptographic Usage Mask", v), 1);
	assert_int_equal(v[0]->v.i32, 12);
	assert_int_equal(find_attr(ga, "x-team", v), 2); /* multi-valued: both, Template first */
	assert_memory_equal(v[0]->v.text, "from-template", 13);
	assert_memory_equal(v[1]->v.text, "own", 3);
	assert_int_equal(find_attr(ga, "Name", v), 0); /* a Template's Name is its own */
	assert_int_equal(req_get_key(f, kuid, key), 16);
}

static void test_get_and_attributes(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_get_attributes_response *ga;
	const struct kmip_get_response *g;
	const struct kmip_node *v[4];
	char tuid[129];

	register_template(f, &f->alice, "T2", tuid);
	on_uid(f, KMIP_OPERATION_GET, tuid);
	req_expect_ok(f, 0);
	g = req_item(f, 0)->response_payload;
	assert_int_equal(g->object_type, KMIP_OBJECT_TYPE_TEMPLATE);
	assert_non_null(g->template);
	assert_int_equal(g->template->num_attributes, 5);
	assert_memory_equal(g->template->attributes[3].attribute_name, "x-team", 6);

	ga = req_get_attributes(f, tuid);
	assert_int_equal(find_attr(ga, "Name", v), 1);
	assert_int_equal(find_attr(ga, "State", v), 0); /* not a cryptographic object */
	assert_int_equal(find_attr(ga, "Fresh", v), 0);
	assert_int_equal(find_attr(ga, "x-team", v), 0); /* the contents are not its attributes */
}

static void test_unknown_foreign_destroyed(void **state)
{
	struct engine_fx *f = *state;
	char tuid[129];

	create_from(f, &f->alice, "nope");
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);

	register_template(f, &f->bob, "T3", tuid);
	create_from(f, &f->alice, "T3"); /* bob's Template names nothing for alice */
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);

	register_template(f, &f->alice, "T4", tuid);
	on_uid(f, KMIP_OPERATION_DESTROY, tuid);
	req_expect_ok(f, 0);
	create_from(f, &f->alice, "T4");
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
}

static void test_bad_template_refused(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;

	req_begin(&w, 1, 1, 1);
	req_item_begin(&w, KMIP_OPERATION_REGISTER);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_TEMPLATE);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE);
	req_attr_text(&w, "No Such Attribute", "x");
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	assert_int_equal(req_item(f, 0)->result_status, KMIP_RESULT_STATUS_OPERATION_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_inherits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_and_attributes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_foreign_destroyed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_template_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
