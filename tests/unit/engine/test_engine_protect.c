/*
 * Sensitive, Extractable and their histories (KMIP 1.4 §3.47-§3.50) and the
 * Random Number Generator attribute (§3.46): what a new key gets, what Get
 * then refuses, and how a change ends Always Sensitive or Never Extractable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "engine_req.h"
#include "keel/hsm.h"

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

static void attr_bool(struct kmip_writer *w, const char *name, bool b)
{
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	kmip_write_bool(w, KMIP_TAG_ATTRIBUTE_VALUE, b);
	kmip_write_end(w);
}

static void sensitive(struct kmip_writer *w)
{
	attr_bool(w, "Sensitive", true);
}

static void not_extractable(struct kmip_writer *w)
{
	attr_bool(w, "Extractable", false);
}

/* An Active AES-256 key of alice's with Encrypt|Decrypt and |attrs|. */
static void create_key(struct engine_fx *f, void (*attrs)(struct kmip_writer *w),
		       char uid[static 129])
{
	const struct req_sym_spec spec = {.algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_AES,
					  .bits = 256,
					  .mask = 12,
					  .active = true,
					  .attrs = attrs};

	req_create_sym(f, &spec, uid);
}

/* The Boolean attribute |name| of |uid|; fails the test when absent. */
static bool get_bool(struct engine_fx *f, const char *uid, const char *name)
{
	const struct kmip_get_attributes_response *p = req_get_attributes(f, uid);

	for (size_t i = 0; i < p->num_attribute; i++) {
		const struct kmip_attribute *a = &p->attribute[i];

		if (a->attribute_name_len == strlen(name) &&
		    memcmp(a->attribute_name, name, a->attribute_name_len) == 0) {
			assert_int_equal(a->attribute_value->type, KMIP_TYPE_BOOLEAN);
			return a->attribute_value->v.b;
		}
	}
	fail_msg("%s has no %s", uid, name);
	return false;
}

static bool has_attr(struct engine_fx *f, const char *uid, const char *name)
{
	const struct kmip_get_attributes_response *p = req_get_attributes(f, uid);

	for (size_t i = 0; i < p->num_attribute; i++) {
		if (p->attribute[i].attribute_name_len == strlen(name) &&
		    memcmp(p->attribute[i].attribute_name, name, strlen(name)) == 0) {
			return true;
		}
	}
	return false;
}

/* Get of alice's |uid|, plain or wrapped under |kek|. */
static void send_get(struct engine_fx *f, const char *uid, const char *kek)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, uid);
	if (kek != NULL) {
		kmip_write_begin(&w, KMIP_TAG_KEY_WRAPPING_SPECIFICATION);
		kmip_write_enum(&w, KMIP_TAG_WRAPPING_METHOD, KMIP_WRAPPING_METHOD_ENCRYPT);
		kmip_write_begin(&w, KMIP_TAG_ENCRYPTION_KEY_INFORMATION);
		req_uid(&w, kek);
		kmip_write_end(&w);
		kmip_write_end(&w);
	}
	req_item_end(&w);
	req_send(f, &f->alice, &w);
}

/* Modify Attribute of a Boolean on alice's |uid|. */
static void modify_bool(struct engine_fx *f, const char *uid, const char *name, bool b)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_MODIFY_ATTRIBUTE);
	req_uid(&w, uid);
	attr_bool(&w, name, b);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
}

static void test_defaults(void **state)
{
	struct engine_fx *f = *state;
	char uid[129];
	uint8_t key[64];

	create_key(f, NULL, uid);
	assert_false(get_bool(f, uid, "Sensitive"));
	assert_true(get_bool(f, uid, "Extractable"));
	assert_false(get_bool(f, uid, "Always Sensitive"));
	assert_false(get_bool(f, uid, "Never Extractable"));
	assert_true(has_attr(f, uid, "Random Number Generator")); /* the server made it */
	assert_int_equal(req_get_key(f, uid, key), 32);
}

static void test_sensitive(void **state)
{
	struct engine_fx *f = *state;
	char uid[129], kek[129];
	uint8_t key[64];

	create_key(f, sensitive, uid);
	req_create_aes(f, 256, KMIP_CRYPTOGRAPHIC_USAGE_MASK_WRAP_KEY, true, kek);
	assert_true(get_bool(f, uid, "Always Sensitive"));
	send_get(f, uid, NULL);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	send_get(f, uid, kek); /* wrapped, it may leave */
	req_expect_ok(f, 0);
	modify_bool(f, uid, "Sensitive", false);
	assert_false(get_bool(f, uid, "Always Sensitive"));
	assert_int_equal(req_get_key(f, uid, key), 32);
	modify_bool(f, uid, "Sensitive", true); /* the history does not come back */
	assert_false(get_bool(f, uid, "Always Sensitive"));
}

static void test_not_extractable(void **state)
{
	struct engine_fx *f = *state;
	char uid[129], kek[129];

	create_key(f, not_extractable, uid);
	req_create_aes(f, 256, KMIP_CRYPTOGRAPHIC_USAGE_MASK_WRAP_KEY, true, kek);
	assert_true(get_bool(f, uid, "Never Extractable"));
	send_get(f, uid, NULL);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	send_get(f, uid, kek); /* not in any form */
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	modify_bool(f, uid, "Extractable", true);
	assert_false(get_bool(f, uid, "Never Extractable"));
	send_get(f, uid, NULL);
	req_expect_ok(f, 0);
}

/* The mirror's export of |uid| into |*s|, decoded (the message points into |*s|):
 * its items are Get and Get Attributes. */
static const struct kmip_response_message *export(struct engine_fx *f, const char *uid,
						  struct hsm_secret **s)
{
	struct kmip_response_message *m = NULL;
	struct kmip_decode_error de;

	assert_int_equal(keel_engine_export(f->e, uid, s), 0);
	assert_int_equal(kmip_response_decode(hsm_secret_data(*s), hsm_secret_len(*s),
					      &kmip_default_limits, &f->arena, &m, &de),
			 0);
	assert_int_equal(m->num_batch_items, 2);
	assert_int_equal(m->batch_items[0].operation, KMIP_OPERATION_GET);
	assert_int_equal(m->batch_items[1].operation, KMIP_OPERATION_GET_ATTRIBUTES);
	return m;
}

/* The mirror escrows even what a client may not Get, and changes nothing doing so. */
static void test_export(void **state)
{
	struct engine_fx *f = *state;
	const struct kmip_get_response *g;
	const struct kmip_get_attributes_response *a;
	struct hsm_secret *s = NULL, *none = NULL;
	char plain[129], locked[129];
	uint8_t got[64], exported[64];
	size_t len;

	create_key(f, NULL, plain);
	g = export(f, plain, &s)->batch_items[0].response_payload;
	len = g->symmetric_key->key_block->key_value->key_material_len;
	assert_int_equal(len, 32);
	memcpy(exported, g->symmetric_key->key_block->key_value->key_material, len);
	hsm_secret_free(s);
	assert_true(get_bool(f, plain, "Fresh")); /* the export is no Get */
	assert_int_equal(req_get_key(f, plain, got), 32);
	assert_memory_equal(got, exported, 32);

	create_key(f, not_extractable, locked);
	a = export(f, locked, &s)->batch_items[1].response_payload;
	assert_memory_equal(a->unique_identifier, locked, strlen(locked));
	hsm_secret_free(s);
	assert_false(get_bool(f, locked, "Extractable"));

	assert_int_equal(keel_engine_export(f->e, "no-such-uid", &none),
			 KEEL_ENGINE_EXPORT_E_NOT_FOUND);
	assert_null(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sensitive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_extractable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_export, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
