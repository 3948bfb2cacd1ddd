/*
 * Locate with Object Group Member (KMIP 1.4 §4.9): Group Member Fresh finds
 * only fresh objects of the group, Group Member Default the oldest fresh one,
 * else the oldest; Get clears Fresh (§3.34), so serving them goes round.
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

/* Creates an AES-128 key in Object Group |group|. */
static void create_in(struct engine_fx *f, const char *group, char uid[static 129])
{
	struct kmip_writer w;
	const struct kmip_create_response *p;

	req_begin(&w, 1, 1, 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Algorithm", true, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	req_attr_int(&w, "Cryptographic Length", false, 128);
	req_attr_int(&w, "Cryptographic Usage Mask", false, 12);
	req_attr_text(&w, "Object Group", group);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_true(p->unique_identifier_len < 129);
	req_copy_uid(uid, p->unique_identifier, p->unique_identifier_len);
}

/* Locates one member of |group| by |member|; "" when none. */
static void locate(struct engine_fx *f, uint32_t member, char uid[static 129])
{
	struct kmip_writer w;
	const struct kmip_locate_response *p;

	req_begin(&w, 1, 1, 1);
	req_item_begin(&w, KMIP_OPERATION_LOCATE);
	kmip_write_int(&w, KMIP_TAG_MAXIMUM_ITEMS, 1);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_GROUP_MEMBER, member);
	req_attr_text(&w, "Object Group", "pool");
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	uid[0] = '\0';
	if (p->num_unique_identifiers > 0) {
		assert_int_equal(p->num_unique_identifiers, 1);
		memcpy(uid, p->unique_identifiers[0].s, p->unique_identifiers[0].len);
		uid[p->unique_identifiers[0].len] = '\0';
	}
}

static void test_round_robin(void **state)
{
	struct engine_fx *f = *state;
	char k1[129], k2[129], other[129], got[129];
	uint8_t key[64];

	create_in(f, "pool", k1);
	create_in(f, "elsewhere", other);
	create_in(f, "pool", k2);
	locate(f, KMIP_OBJECT_GROUP_MEMBER_GROUP_MEMBER_DEFAULT, got);
	assert_string_equal(got, k1);
	assert_int_equal(req_get_key(f, got, key), 16);
	locate(f, KMIP_OBJECT_GROUP_MEMBER_GROUP_MEMBER_FRESH, got);
	assert_string_equal(got, k2);
	assert_int_equal(req_get_key(f, got, key), 16);
	/* Nothing fresh is left: Fresh finds nothing, Default the oldest. */
	locate(f, KMIP_OBJECT_GROUP_MEMBER_GROUP_MEMBER_FRESH, got);
	assert_string_equal(got, "");
	locate(f, KMIP_OBJECT_GROUP_MEMBER_GROUP_MEMBER_DEFAULT, got);
	assert_string_equal(got, k1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_robin, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
