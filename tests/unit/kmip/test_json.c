/* JSON encoding: every type in its JSON form, names, masks, placeholders, escaping, malformed
 * input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "keel/kmip.h"
#include "text_util.h"

static const struct kmip_limits limits = {.max_message_len = 4096, .max_depth = 4};

static int decode(struct tu_fixture *f, const char *json, struct kmip_node **out)
{
	return kmip_json_decode(json, strlen(json), &limits, &f->arena, out);
}

static struct kmip_node *decode_ok(struct tu_fixture *f, const char *json)
{
	struct kmip_node *n;
	int err = decode(f, json, &n);

	if (err != 0) {
		fail_msg("%s: %s", json, kmip_strerror(err));
	}
	return n;
}

static const char *encode(struct tu_fixture *f, const struct kmip_node *n)
{
	kmip_text_buf_reset(&f->out);
	assert_int_equal(kmip_json_encode(&f->out, n), 0);
	return f->out.data;
}

/* Decodes |in|, checks it encodes as |out|, and that |out| decodes to the same tree. */
static void assert_json(struct tu_fixture *f, const char *in, const char *out)
{
	struct kmip_node *n = decode_ok(f, in);
	struct kmip_node *back;
	char why[256];

	assert_string_equal(encode(f, n), out);
	back = decode_ok(f, out);
	if (!tu_tree_equal(n, back, why, sizeof(why))) {
		fail_msg("%s: %s", out, why);
	}
}

static void test_every_type(void **state)
{
	struct tu_fixture *f = *state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":-5}",
	     "{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":-5}"},
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":\"0x0000000A\"}",
	     "{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":10}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"LongInteger\",\"value\":4503599627370495}",
	     "{\"tag\":\"0x540001\",\"type\":\"LongInteger\",\"value\":4503599627370495}"},
	    /* Beyond 2^52 a number is not exact in every reader: hex (AME 1.0 §4.1.5). */
	    {"{\"tag\":\"0x540001\",\"type\":\"LongInteger\",\"value\":4503599627370496}",
	     "{\"tag\":\"0x540001\",\"type\":\"LongInteger\",\"value\":\"0x0010000000000000\"}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"BigInteger\",\"value\":255}",
	     "{\"tag\":\"0x540001\",\"type\":\"BigInteger\",\"value\":\"0x00000000000000FF\"}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"BigInteger\",\"value\":\"0xFFFFFFFFFFFFFFFF\"}",
	     "{\"tag\":\"0x540001\",\"type\":\"BigInteger\",\"value\":\"0xFFFFFFFFFFFFFFFF\"}"},
	    {"{\"tag\":\"Operation\",\"type\":\"Enumeration\",\"value\":10}",
	     "{\"tag\":\"Operation\",\"type\":\"Enumeration\",\"value\":\"Get\"}"},
	    {"{\"tag\":\"Operation\",\"type\":\"Enumeration\",\"value\":\"0x80000001\"}",
	     "{\"tag\":\"Operation\",\"type\":\"Enumeration\",\"value\":\"0x80000001\"}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"Boolean\",\"value\":true}",
	     "{\"tag\":\"0x540001\",\"type\":\"Boolean\",\"value\":true}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"Boolean\",\"value\":\"0x0000000000000000\"}",
	     "{\"tag\":\"0x540001\",\"type\":\"Boolean\",\"value\":false}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"TextString\",\"value\":\"h\\u00e9\"}",
	     "{\"tag\":\"0x540001\",\"type\":\"TextString\",\"value\":\"h\xC3\xA9\"}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"ByteString\",\"value\":\"0aff\"}",
	     "{\"tag\":\"0x540001\",\"type\":\"ByteString\",\"value\":\"0AFF\"}"},
	    {"{\"tag\":\"TimeStamp\",\"type\":\"DateTime\",\"value\":\"2012-04-27T08:12:24Z\"}",
	     "{\"tag\":\"TimeStamp\",\"type\":\"DateTime\",\"value\":\"2012-04-27T08:12:24+00:"
	     "00\"}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"Interval\",\"value\":86400}",
	     "{\"tag\":\"0x540001\",\"type\":\"Interval\",\"value\":86400}"},
	    {"{\"tag\":\"0x540001\",\"type\":\"DateTimeExtended\",\"value\":"
	     "\"0x0000000000000001\"}",
	     "{\"tag\":\"0x540001\",\"type\":\"DateTimeExtended\","
	     "\"value\":\"1970-01-01T00:00:00.000001+00:00\"}"},
	    {"{\"tag\":\"RequestMessage\",\"type\":\"Structure\",\"value\":[]}",
	     "{\"tag\":\"RequestMessage\",\"value\":[]}"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_json(f, cases[i].in, cases[i].out);
	}
}

static void test_masks_and_attributes(void **state)
{
	struct tu_fixture *f = *state;

	assert_json(f, "{\"tag\":\"CryptographicUsageMask\",\"type\":\"Integer\",\"value\":12}",
		    "{\"tag\":\"CryptographicUsageMask\",\"type\":\"Integer\","
		    "\"value\":\"Encrypt|Decrypt\"}");
	/* The XML form of a mask is accepted too. */
	assert_json(f,
		    "{\"tag\":\"CryptographicUsageMask\",\"type\":\"Integer\","
		    "\"value\":\"Decrypt Encrypt\"}",
		    "{\"tag\":\"CryptographicUsageMask\",\"type\":\"Integer\","
		    "\"value\":\"Encrypt|Decrypt\"}");
	assert_json(f,
		    "{\"tag\":\"Attribute\",\"value\":["
		    "{\"tag\":\"AttributeName\",\"type\":\"TextString\",\"value\":\"Object Type\"},"
		    "{\"tag\":\"AttributeValue\",\"type\":\"Enumeration\",\"value\":2}]}",
		    "{\"tag\":\"Attribute\",\"value\":["
		    "{\"tag\":\"AttributeName\",\"type\":\"TextString\",\"value\":\"Object Type\"},"
		    "{\"tag\":\"AttributeValue\",\"type\":\"Enumeration\","
		    "\"value\":\"SymmetricKey\"}]}");
}

static void test_placeholders_and_escaping(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;

	n = decode_ok(f, "{\"tag\":\"TimeStamp\",\"type\":\"DateTime\",\"value\":\"$NOW+60\"}");
	assert_string_equal(n->placeholder, "$NOW+60");
	assert_json(f, "{\"tag\":\"TimeStamp\",\"type\":\"DateTime\",\"value\":\"$NOW+60\"}",
		    "{\"tag\":\"TimeStamp\",\"type\":\"DateTime\",\"value\":\"$NOW+60\"}");
	assert_json(
	    f, "{\"tag\":\"0x540001\",\"type\":\"TextString\",\"value\":\"a\\\"\\\\\\n\\u0001/\"}",
	    "{\"tag\":\"0x540001\",\"type\":\"TextString\",\"value\":\"a\\\"\\\\\\u000a\\u0001/"
	    "\"}");
}

static void test_malformed(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;
	static const struct {
		const char *json;
		int err;
	} cases[] = {
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":1", KMIP_E_SYNTAX},
	    {"[]", KMIP_E_SYNTAX},
	    {"{\"type\":\"Integer\",\"value\":1}", KMIP_E_SYNTAX},
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integer\"}", KMIP_E_SYNTAX},
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":1,\"x\":1}", KMIP_E_SYNTAX},
	    {"{\"tag\":\"BatchCount\",\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":1}",
	     KMIP_E_SYNTAX},
	    {"{\"tag\":1,\"type\":\"Integer\",\"value\":1}", KMIP_E_SYNTAX},
	    {"{\"tag\":\"Frobnicate\",\"type\":\"Integer\",\"value\":1}", KMIP_E_UNKNOWN_NAME},
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integre\",\"value\":1}", KMIP_E_UNKNOWN_NAME},
	    {"{\"tag\":\"BatchCount\",\"type\":\"TextString\",\"value\":\"1\"}", KMIP_E_TYPE},
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":2147483648}", KMIP_E_RANGE},
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":1.5}", KMIP_E_SYNTAX},
	    {"{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":true}", KMIP_E_TYPE},
	    {"{\"tag\":\"0x540001\",\"type\":\"TextString\",\"value\":1}", KMIP_E_TYPE},
	    {"{\"tag\":\"0x540001\",\"type\":\"Interval\",\"value\":-1}", KMIP_E_RANGE},
	    {"{\"tag\":\"0x540001\",\"type\":\"TextString\",\"value\":null}", KMIP_E_SYNTAX},
	    {"{\"tag\":\"Operation\",\"type\":\"Enumeration\",\"value\":\"Frobnicate\"}",
	     KMIP_E_UNKNOWN_NAME},
	    {"{\"tag\":\"RequestMessage\",\"value\":{}}", KMIP_E_SYNTAX},
	    {"{\"tag\":\"RequestMessage\",\"value\":[1]}", KMIP_E_SYNTAX},
	    {"{\"tag\":\"0x420000FF\",\"value\":[]}", KMIP_E_RANGE},
	    {"{\"tag\":\"RequestMessage\",\"value\":[{\"tag\":\"RequestHeader\",\"value\":["
	     "{\"tag\":\"ProtocolVersion\",\"value\":[{\"tag\":\"ProtocolVersion\",\"value\":["
	     "{\"tag\":\"BatchCount\",\"type\":\"Integer\",\"value\":1}]}]}]}]}",
	     KMIP_E_DEPTH},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = decode(f, cases[i].json, &n);

		if (err != cases[i].err) {
			fail_msg("%s: %d, expected %d", cases[i].json, err, cases[i].err);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_every_type, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_masks_and_attributes, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_placeholders_and_escaping, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
