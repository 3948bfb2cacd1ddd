/* Frame header decisions (KMIP 1.4 §9.1.1): what closes a connection before
 * the body is read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keel/server.h"

static void header(uint8_t out[8], uint32_t tag, uint8_t type, uint32_t len)
{
	out[0] = (uint8_t)(tag >> 16);
	out[1] = (uint8_t)(tag >> 8);
	out[2] = (uint8_t)tag;
	out[3] = type;
	out[4] = (uint8_t)(len >> 24);
	out[5] = (uint8_t)(len >> 16);
	out[6] = (uint8_t)(len >> 8);
	out[7] = (uint8_t)len;
}

static void test_request_message_ok(void **state)
{
	uint8_t h[8];
	size_t len = 0;

	header(h, 0x420078, 0x01, 0x120);
	assert_int_equal(keel_frame_check(h, 4096, &len), KEEL_FRAME_OK);
	assert_int_equal(len, 0x128);
}

static void test_extension_tag_ok(void **state)
{
	uint8_t h[8];
	size_t len = 0;

	/* Valid TTLV that is not a request is the engine's to refuse, with a KMIP error. */
	header(h, 0x540001, 0x01, 0);
	assert_int_equal(keel_frame_check(h, 4096, &len), KEEL_FRAME_OK);
	assert_int_equal(len, 8);
}

static void test_exactly_max_ok(void **state)
{
	uint8_t h[8];
	size_t len = 0;

	header(h, 0x420078, 0x01, 4096 - 8);
	assert_int_equal(keel_frame_check(h, 4096, &len), KEEL_FRAME_OK);
	assert_int_equal(len, 4096);
}

static void test_one_over_max(void **state)
{
	uint8_t h[8];
	size_t len = 0;

	header(h, 0x420078, 0x01, 4096 - 7);
	assert_int_equal(keel_frame_check(h, 4096, &len), KEEL_FRAME_TOO_LARGE);
}

static void test_huge_length_no_overflow(void **state)
{
	uint8_t h[8];
	size_t len = 0;

	header(h, 0x420078, 0x01, 0xffffffffu);
	assert_int_equal(keel_frame_check(h, 0xffffffffu, &len), KEEL_FRAME_TOO_LARGE);
	header(h, 0x420078, 0x01, 0xfffffff8u);
	assert_int_equal(keel_frame_check(h, 0xffffffffu, &len), KEEL_FRAME_TOO_LARGE);
}

static void test_not_structure(void **state)
{
	static const uint8_t types[] = {0x00, 0x02, 0x05, 0x07, 0x08, 0x0a, 0xff};
	uint8_t h[8];
	size_t len = 0;

	for (size_t i = 0; i < sizeof(types); i++) {
		header(h, 0x420078, types[i], 8);
		assert_int_equal(keel_frame_check(h, 4096, &len), KEEL_FRAME_NOT_STRUCTURE);
	}
}

static void test_not_ttlv(void **state)
{
	static const uint8_t http[8] = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'};
	static const uint8_t tls_hello[8] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01};
	size_t len = 0;

	assert_int_equal(keel_frame_check(http, 4096, &len), KEEL_FRAME_BAD_TAG);
	assert_int_equal(keel_frame_check(tls_hello, 4096, &len), KEEL_FRAME_BAD_TAG);
}

static void test_max_below_header(void **state)
{
	uint8_t h[8];
	size_t len = 0;

	header(h, 0x420078, 0x01, 0);
	assert_int_equal(keel_frame_check(h, 4, &len), KEEL_FRAME_TOO_LARGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_message_ok),
	    cmocka_unit_test(test_extension_tag_ok),
	    cmocka_unit_test(test_exactly_max_ok),
	    cmocka_unit_test(test_one_over_max),
	    cmocka_unit_test(test_huge_length_no_overflow),
	    cmocka_unit_test(test_not_structure),
	    cmocka_unit_test(test_not_ttlv),
	    cmocka_unit_test(test_max_below_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
