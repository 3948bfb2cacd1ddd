/*
 * Query's capability functions per version (KMIP 1.4 §4.25, 2.0 §6.1.37):
 * each is answered only in the versions that define it, and an unknown
 * function is answered with nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

/* Sends Query with |function| in |major|.|minor| and returns its payload. */
static const struct kmip_query_response *query(struct engine_fx *f, int major, int minor,
					       uint32_t function)
{
	struct kmip_writer w;

	req_begin(&w, major, minor, 1);
	req_item_begin(&w, KMIP_OPERATION_QUERY);
	kmip_write_enum(&w, KMIP_TAG_QUERY_FUNCTION, function);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	return req_item(f, 0)->response_payload;
}

static void test_rngs(void **state)
{
	const struct kmip_query_response *p = query(*state, 1, 3, KMIP_QUERY_FUNCTION_QUERY_RNGS);
	const struct kmip_node *alg;

	assert_int_equal(p->num_rng_parameters, 1);
	alg = kmip_node_find(p->rng_parameters[0], KMIP_TAG_RNG_ALGORITHM);
	assert_non_null(alg);
	assert_int_equal(alg->v.u32, KMIP_RNG_ALGORITHM_UNSPECIFIED);
	p = query(*state, 2, 1, KMIP_QUERY_FUNCTION_QUERY_RNGS);
	assert_int_equal(p->num_rng_parameters, 1);
	/* Query RNGs is 1.3+. */
	p = query(*state, 1, 2, KMIP_QUERY_FUNCTION_QUERY_RNGS);
	assert_int_equal(p->num_rng_parameters, 0);
}

static bool has_profile(const struct kmip_query_response *p, uint32_t name)
{
	for (size_t i = 0; i < p->num_profile_information; i++) {
		const struct kmip_node *n =
		    kmip_node_find(p->profile_information[i], KMIP_TAG_PROFILE_NAME);

		assert_non_null(n);
		assert_null(kmip_node_find(p->profile_information[i], KMIP_TAG_SERVER_URI));
		if (n->v.u32 == name) {
			return true;
		}
	}
	return false;
}

static void test_profiles(void **state)
{
	const struct kmip_query_response *p =
	    query(*state, 1, 3, KMIP_QUERY_FUNCTION_QUERY_PROFILES);

	assert_int_equal(p->num_profile_information, 5);
	assert_true(has_profile(p, KMIP_PROFILE_NAME_SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIPV1_3));
	assert_false(has_profile(p, KMIP_PROFILE_NAME_SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIPV1_4));
	p = query(*state, 1, 4, KMIP_QUERY_FUNCTION_QUERY_PROFILES);
	assert_int_equal(p->num_profile_information, 3);
	assert_true(has_profile(p, KMIP_PROFILE_NAME_SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIPV1_4));
	p = query(*state, 1, 1, KMIP_QUERY_FUNCTION_QUERY_PROFILES);
	assert_int_equal(p->num_profile_information, 0);
	/* No 2.x profile is claimed yet. */
	p = query(*state, 2, 0, KMIP_QUERY_FUNCTION_QUERY_PROFILES);
	assert_int_equal(p->num_profile_information, 0);
}

static void expect_child(const struct kmip_node *s, uint32_t tag, uint32_t value)
{
	const struct kmip_node *n = kmip_node_find(s, tag);

	assert_non_null(n);
	if (n->type == KMIP_TYPE_BOOLEAN) {
		assert_int_equal(n->v.b, value != 0);
	} else {
		assert_int_equal(n->v.u32, value);
	}
}

static void test_capabilities(void **state)
{
	const struct kmip_query_response *p =
	    query(*state, 1, 4, KMIP_QUERY_FUNCTION_QUERY_CAPABILITIES);
	const struct kmip_node *c;

	assert_int_equal(p->num_capability_information, 1);
	c = p->capability_information[0];
	expect_child(c, KMIP_TAG_STREAMING_CAPABILITY, 0);
	expect_child(c, KMIP_TAG_ASYNCHRONOUS_CAPABILITY, 0);
	expect_child(c, KMIP_TAG_ATTESTATION_CAPABILITY, 0);
	expect_child(c, KMIP_TAG_BATCH_UNDO_CAPABILITY, 1);
	expect_child(c, KMIP_TAG_BATCH_CONTINUE_CAPABILITY, 1);
	expect_child(c, KMIP_TAG_UNWRAP_MODE, KMIP_UNWRAP_MODE_UNSPECIFIED);
	expect_child(c, KMIP_TAG_DESTROY_ACTION, KMIP_DESTROY_ACTION_KEY_MATERIAL_DELETED);
	expect_child(c, KMIP_TAG_SHREDDING_ALGORITHM, KMIP_SHREDDING_ALGORITHM_UNSPECIFIED);
	expect_child(c, KMIP_TAG_RNG_MODE, KMIP_RNG_MODE_SHARED_INSTANTIATION);
	/* The batch capabilities are 1.4+. */
	p = query(*state, 1, 3, KMIP_QUERY_FUNCTION_QUERY_CAPABILITIES);
	assert_int_equal(p->num_capability_information, 1);
	c = p->capability_information[0];
	assert_null(kmip_node_find(c, KMIP_TAG_BATCH_UNDO_CAPABILITY));
	expect_child(c, KMIP_TAG_RNG_MODE, KMIP_RNG_MODE_SHARED_INSTANTIATION);
	p = query(*state, 1, 2, KMIP_QUERY_FUNCTION_QUERY_CAPABILITIES);
	assert_int_equal(p->num_capability_information, 0);
}

static void test_registration_methods(void **state)
{
	const struct kmip_query_response *p =
	    query(*state, 2, 0, KMIP_QUERY_FUNCTION_QUERY_CLIENT_REGISTRATION_METHODS);

	assert_int_equal(p->num_client_registration_methods, 2);
	assert_int_equal(p->client_registration_methods[1],
			 KMIP_CLIENT_REGISTRATION_METHOD_CLIENT_GENERATED);
	p = query(*state, 1, 2, KMIP_QUERY_FUNCTION_QUERY_CLIENT_REGISTRATION_METHODS);
	assert_int_equal(p->num_client_registration_methods, 0);
}

static bool has_type(const struct kmip_query_response *p, uint32_t type)
{
	for (size_t i = 0; i < p->num_object_types; i++) {
		if (p->object_types[i] == type) {
			return true;
		}
	}
	return false;
}

/* Split Key is in every version, PGP Key from 1.2, Template until 2.0. */
static void test_objects(void **state)
{
	const struct kmip_query_response *p =
	    query(*state, 1, 1, KMIP_QUERY_FUNCTION_QUERY_OBJECTS);

	assert_int_equal(p->num_object_types, 8);
	assert_true(has_type(p, KMIP_OBJECT_TYPE_SPLIT_KEY));
	assert_true(has_type(p, KMIP_OBJECT_TYPE_TEMPLATE));
	assert_false(has_type(p, KMIP_OBJECT_TYPE_PGP_KEY));
	p = query(*state, 1, 2, KMIP_QUERY_FUNCTION_QUERY_OBJECTS);
	assert_int_equal(p->num_object_types, 9);
	assert_true(has_type(p, KMIP_OBJECT_TYPE_PGP_KEY));
	p = query(*state, 2, 0, KMIP_QUERY_FUNCTION_QUERY_OBJECTS);
	assert_false(has_type(p, KMIP_OBJECT_TYPE_TEMPLATE));
}

/* Functions with nothing to list, and functions the version or KMIP lacks. */
static void test_empty_answers(void **state)
{
	static const struct {
		int major, minor;
		uint32_t function;
	} cases[] = {
	    {1, 1, KMIP_QUERY_FUNCTION_QUERY_EXTENSION_LIST},
	    {1, 4, KMIP_QUERY_FUNCTION_QUERY_EXTENSION_MAP},
	    {1, 2, KMIP_QUERY_FUNCTION_QUERY_ATTESTATION_TYPES},
	    {1, 3, KMIP_QUERY_FUNCTION_QUERY_VALIDATIONS},
	    {1, 0, KMIP_QUERY_FUNCTION_QUERY_CAPABILITIES},
	    {1, 4, KMIP_QUERY_FUNCTION_QUERY_STORAGE_PROTECTION_MASKS},
	    {2, 1, 0x7F},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct kmip_query_response *p =
		    query(*state, cases[i].major, cases[i].minor, cases[i].function);

		assert_int_equal(p->num_operations + p->num_object_types, 0);
		assert_int_equal(p->num_extension_information + p->num_attestation_types, 0);
		assert_int_equal(p->num_rng_parameters + p->num_profile_information, 0);
		assert_int_equal(p->num_validation_information + p->num_capability_information, 0);
		assert_int_equal(p->num_client_registration_methods, 0);
		assert_null(p->vendor_identification);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rngs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registration_methods, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_answers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
