/* XML encoding: every type, names, masks, placeholders, escaping, and malformed input. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "keel/kmip.h"
#include "text_util.h"

static const struct kmip_limits limits = {.max_message_len = 4096, .max_depth = 4};

static int decode(struct tu_fixture *f, const char *xml, struct kmip_node **out)
{
	return kmip_xml_decode(xml, strlen(xml), &limits, &f->arena, out);
}

/* Wraps one item in a request message and decodes it; returns the item. */
static struct kmip_node *decode_item(struct tu_fixture *f, const char *item)
{
	char xml[1024];
	struct kmip_node *msg;

	snprintf(xml, sizeof(xml), "<RequestMessage>%s</RequestMessage>", item);
	assert_int_equal(decode(f, xml, &msg), 0);
	assert_non_null(msg->v.child);
	return msg->v.child;
}

static int item_error(struct tu_fixture *f, const char *item)
{
	char xml[1024];
	struct kmip_node *msg;

	snprintf(xml, sizeof(xml), "<RequestMessage>%s</RequestMessage>", item);
	return decode(f, xml, &msg);
}

/* Encodes |n| alone and returns the text (valid until the next call). */
static const char *encode(struct tu_fixture *f, const struct kmip_node *n)
{
	kmip_text_buf_reset(&f->out);
	assert_int_equal(kmip_xml_encode(&f->out, n), 0);
	return f->out.data;
}

static void assert_xml_round_trip(struct tu_fixture *f, const struct kmip_node *n)
{
	const char *text = encode(f, n);
	struct kmip_node *back;
	char why[256];

	assert_int_equal(decode(f, text, &back), 0);
	if (!tu_tree_equal(n, back, why, sizeof(why))) {
		fail_msg("%s\n%s", why, text);
	}
}

static void test_every_type(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;

	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"Integer\" value=\"-5\"/>");
	assert_int_equal(n->tag, 0x540001);
	assert_int_equal(n->v.i32, -5);
	n = decode_item(
	    f, "<TTLV tag=\"0x540001\" type=\"LongInteger\" value=\"-9223372036854775808\"/>");
	assert_true(n->v.i64 == INT64_MIN);
	n = decode_item(f,
			"<TTLV tag=\"0x540001\" type=\"BigInteger\" value=\"00000000000000FF\"/>");
	assert_int_equal(n->len, 8);
	assert_int_equal(n->v.bytes[7], 0xFF);
	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"Enumeration\" value=\"0x80000001\"/>");
	assert_int_equal(n->v.u32, 0x80000001u);
	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"Boolean\" value=\"true\"/>");
	assert_true(n->v.b);
	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"TextString\" value=\"h\xC3\xA9\"/>");
	assert_int_equal(n->len, 3);
	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"ByteString\" value=\"0aFf\"/>");
	assert_int_equal(n->len, 2);
	assert_memory_equal(n->v.bytes, "\x0A\xFF", 2);
	n = decode_item(
	    f, "<TTLV tag=\"0x540001\" type=\"DateTime\" value=\"2012-04-27T08:12:24+00:00\"/>");
	assert_true(n->v.i64 == 1335514344);
	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"Interval\" value=\"4294967295\"/>");
	assert_int_equal(n->v.u32, UINT32_MAX);
	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"DateTimeExtended\" "
			   "value=\"1970-01-01T00:00:01.5Z\"/>");
	assert_true(n->v.i64 == 1500000);
	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"Structure\"/>");
	assert_int_equal(n->type, KMIP_TYPE_STRUCTURE);
	assert_null(n->v.child);
}

static void test_canonical_output(void **state)
{
	struct tu_fixture *f = *state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"<BatchCount type=\"Integer\" value=\"0x0000000A\"/>",
	     "<BatchCount type=\"Integer\" value=\"10\"/>\n"},
	    {"<TTLV tag=\"0x540001\" type=\"ByteString\" value=\"0aff\"/>",
	     "<TTLV tag=\"0x540001\" type=\"ByteString\" value=\"0AFF\"/>\n"},
	    {"<TimeStamp type=\"DateTime\" value=\"2012-04-27T10:12:24+02:00\"/>",
	     "<TimeStamp type=\"DateTime\" value=\"2012-04-27T08:12:24+00:00\"/>\n"},
	    {"<TimeStamp type=\"DateTime\" value=\"0x7FFFFFFFFFFFFFFF\"/>",
	     "<TimeStamp type=\"DateTime\" value=\"0x7FFFFFFFFFFFFFFF\"/>\n"},
	    {"<TimeStamp type=\"DateTime\" value=\"1969-12-31T23:59:59Z\"/>",
	     "<TimeStamp type=\"DateTime\" value=\"1969-12-31T23:59:59+00:00\"/>\n"},
	    {"<TTLV tag=\"0x540001\" type=\"DateTimeExtended\" value=\"1969-12-31T23:59:59.25Z\"/>",
	     "<TTLV tag=\"0x540001\" type=\"DateTimeExtended\" "
	     "value=\"1969-12-31T23:59:59.250000+00:00\"/>\n"},
	    {"<TTLV tag=\"0x540001\" type=\"Boolean\" value=\"0x0000000000000000\"/>",
	     "<TTLV tag=\"0x540001\" type=\"Boolean\" value=\"false\"/>\n"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(encode(f, decode_item(f, cases[i].in)), cases[i].out);
	}
}

static void test_enumerations(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;

	n = decode_item(f, "<Operation type=\"Enumeration\" value=\"Create\"/>");
	assert_int_equal(n->v.u32, 1);
	n = decode_item(f, "<Operation type=\"Enumeration\" value=\"0x0000000A\"/>");
	assert_int_equal(n->v.u32, 10);
	assert_string_equal(encode(f, n), "<Operation type=\"Enumeration\" value=\"Get\"/>\n");
	/* A value without a name stays hex, in and out (AME 1.0 §6.1.5). */
	n = decode_item(f, "<Operation type=\"Enumeration\" value=\"0x80000001\"/>");
	assert_string_equal(encode(f, n),
			    "<Operation type=\"Enumeration\" value=\"0x80000001\"/>\n");
	assert_int_equal(item_error(f, "<Operation type=\"Enumeration\" value=\"Frobnicate\"/>"),
			 KMIP_E_UNKNOWN_NAME);
	assert_int_equal(item_error(f, "<Operation type=\"Enumeration\" value=\"1\"/>"),
			 KMIP_E_UNKNOWN_NAME);
	assert_int_equal(item_error(f, "<Operation type=\"Enumeration\" value=\"0x100000000\"/>"),
			 KMIP_E_RANGE);
}

static void test_masks(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;

	n = decode_item(f,
			"<CryptographicUsageMask type=\"Integer\" value=\"Decrypt   Encrypt\"/>");
	assert_int_equal(n->v.i32, 0x0C);
	assert_string_equal(encode(f, n), "<CryptographicUsageMask type=\"Integer\" "
					  "value=\"Encrypt Decrypt\"/>\n");
	n = decode_item(f, "<CryptographicUsageMask type=\"Integer\" value=\"Sign 0x80000000\"/>");
	assert_int_equal((uint32_t)n->v.i32, 0x80000001u);
	assert_string_equal(encode(f, n), "<CryptographicUsageMask type=\"Integer\" "
					  "value=\"Sign 0x80000000\"/>\n");
	n = decode_item(f, "<CryptographicUsageMask type=\"Integer\" value=\"0\"/>");
	assert_string_equal(encode(f, n),
			    "<CryptographicUsageMask type=\"Integer\" value=\"0\"/>\n");
	assert_int_equal(item_error(f, "<CryptographicUsageMask type=\"Integer\" value=\"Sing\"/>"),
			 KMIP_E_UNKNOWN_NAME);
	assert_int_equal(item_error(f, "<CryptographicUsageMask type=\"Integer\" value=\" \"/>"),
			 KMIP_E_SYNTAX);
}

/* Attribute Values take their names from the sibling Attribute Name (KMIP 1.4 §2.1.1). */
static void test_attribute_values(void **state)
{
	struct tu_fixture *f = *state;
	const char *attrs =
	    "<Attribute>"
	    "<AttributeName type=\"TextString\" value=\"Cryptographic Usage Mask\"/>"
	    "<AttributeValue type=\"Integer\" value=\"Verify Sign\"/>"
	    "</Attribute>";
	const char *object_type = "<Attribute>"
				  "<AttributeName type=\"TextString\" value=\"Object Type\"/>"
				  "<AttributeValue type=\"Enumeration\" value=\"SymmetricKey\"/>"
				  "</Attribute>";
	struct kmip_node *n;

	n = decode_item(f, attrs);
	assert_int_equal(n->v.child->next->v.i32, 0x03);
	assert_non_null(strstr(encode(f, n), "value=\"Sign Verify\""));
	n = decode_item(f, object_type);
	assert_int_equal(n->v.child->next->v.u32, 2);
	assert_non_null(strstr(encode(f, n), "value=\"SymmetricKey\""));
	assert_xml_round_trip(f, n);
	/* A name that names no tag leaves values as numbers. */
	assert_int_equal(item_error(f,
				    "<Attribute>"
				    "<AttributeName type=\"TextString\" value=\"x-Custom\"/>"
				    "<AttributeValue type=\"Enumeration\" value=\"SymmetricKey\"/>"
				    "</Attribute>"),
			 KMIP_E_UNKNOWN_NAME);
}

static void test_placeholders(void **state)
{
	struct tu_fixture *f = *state;
	const char *msg = "<RequestMessage>"
			  "<TimeStamp type=\"DateTime\" value=\"$NOW-3600\"/>"
			  "<UniqueIdentifier type=\"TextString\" value=\"$UNIQUE_IDENTIFIER_0\"/>"
			  "<TTLV tag=\"0x540002\" type=\"ByteString\" value=\"$DATA_0\"/>"
			  "</RequestMessage>";
	struct kmip_node *root, *n;
	struct kmip_writer w;
	const uint8_t *bytes;
	size_t len;

	assert_int_equal(decode(f, msg, &root), 0);
	n = root->v.child;
	assert_string_equal(n->placeholder, "$NOW-3600");
	assert_true(n->v.i64 == 0);
	/* A Text String's text is a value, whatever it looks like. */
	assert_null(n->next->placeholder);
	assert_int_equal(n->next->len, 20);
	assert_string_equal(n->next->next->placeholder, "$DATA_0");
	assert_non_null(strstr(encode(f, root), "value=\"$NOW-3600\""));
	assert_xml_round_trip(f, root);
	/* Placeholders have no TTLV form. */
	kmip_writer_init(&w, 4096);
	kmip_encode_tree(&w, root);
	assert_int_equal(kmip_writer_finish(&w, &bytes, &len), KMIP_E_PLACEHOLDER);
	kmip_writer_cleanup(&w);
}

static void test_escaping(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;
	struct kmip_node bad = {.tag = 0x540001, .type = KMIP_TYPE_TEXT_STRING};

	n = decode_item(f, "<TTLV tag=\"0x540001\" type=\"TextString\" "
			   "value=\"&lt;a&gt; &amp; &quot;b&quot; &#x9;&#xA;&#xD;'\"/>");
	assert_int_equal(n->len, 14);
	assert_memory_equal(n->v.text, "<a> & \"b\" \t\n\r'", 14);
	assert_string_equal(encode(f, n),
			    "<TTLV tag=\"0x540001\" type=\"TextString\" "
			    "value=\"&lt;a&gt; &amp; &quot;b&quot; &#x9;&#xA;&#xD;'\"/>\n");
	assert_xml_round_trip(f, n);
	/* XML 1.0 has no way to carry other control characters. */
	bad.v.text = "a\x01";
	bad.len = 2;
	assert_int_equal(kmip_xml_encode(&f->out, &bad), KMIP_E_RANGE);
}

static void test_malformed(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;
	static const struct {
		const char *item;
		int err;
	} cases[] = {
	    {"<Frobnicate type=\"Integer\" value=\"1\"/>", KMIP_E_UNKNOWN_NAME},
	    {"<BatchCount type=\"Integre\" value=\"1\"/>", KMIP_E_UNKNOWN_NAME},
	    {"<BatchCount type=\"TextString\" value=\"1\"/>", KMIP_E_TYPE},
	    {"<BatchCount type=\"Integer\" value=\"2147483648\"/>", KMIP_E_RANGE},
	    {"<BatchCount type=\"Integer\" value=\"-2147483649\"/>", KMIP_E_RANGE},
	    {"<BatchCount type=\"Integer\" value=\"1x\"/>", KMIP_E_SYNTAX},
	    {"<BatchCount type=\"Integer\" value=\"\"/>", KMIP_E_SYNTAX},
	    {"<BatchCount type=\"Integer\"/>", KMIP_E_SYNTAX},
	    {"<BatchCount type=\"Integer\" value=\"1\" extra=\"1\"/>", KMIP_E_SYNTAX},
	    {"<BatchCount type=\"Integer\" value=\"1\">text</BatchCount>", KMIP_E_SYNTAX},
	    {"<BatchCount type=\"Integer\" value=\"1\"><BatchCount/></BatchCount>", KMIP_E_SYNTAX},
	    {"<TTLV tag=\"0x540001\" type=\"Interval\" value=\"-1\"/>", KMIP_E_RANGE},
	    {"<TTLV tag=\"0x540001\" type=\"Interval\" value=\"4294967296\"/>", KMIP_E_RANGE},
	    {"<TTLV tag=\"0x540001\" type=\"LongInteger\" value=\"9223372036854775808\"/>",
	     KMIP_E_RANGE},
	    {"<TTLV tag=\"0x540001\" type=\"BigInteger\" value=\"00FF\"/>", KMIP_E_LENGTH},
	    {"<TTLV tag=\"0x540001\" type=\"ByteString\" value=\"ABC\"/>", KMIP_E_SYNTAX},
	    {"<TTLV tag=\"0x540001\" type=\"ByteString\" value=\"GG\"/>", KMIP_E_SYNTAX},
	    {"<TTLV tag=\"0x540001\" type=\"Boolean\" value=\"yes\"/>", KMIP_E_SYNTAX},
	    {"<TTLV tag=\"0x540001\" type=\"DateTime\" value=\"2012-02-30T00:00:00Z\"/>",
	     KMIP_E_RANGE},
	    {"<TTLV tag=\"0x540001\" type=\"DateTime\" value=\"2012-04-27 08:12:24Z\"/>",
	     KMIP_E_SYNTAX},
	    {"<TTLV tag=\"0x540001\" type=\"DateTime\" value=\"2012-04-27T08:12:24.5Z\"/>",
	     KMIP_E_SYNTAX},
	    {"<TTLV tag=\"0x430001\" type=\"Integer\" value=\"1\"/>", KMIP_E_TAG},
	    {"<TTLV type=\"Integer\" value=\"1\"/>", KMIP_E_SYNTAX},
	    {"<BatchCount tag=\"0x540001\" type=\"Integer\" value=\"1\"/>", KMIP_E_SYNTAX},
	    {"<RequestPayload value=\"1\"/>", KMIP_E_SYNTAX},
	    {"<x:BatchCount xmlns:x=\"urn:x\" type=\"Integer\" value=\"1\"/>", KMIP_E_SYNTAX},
	    {"<![CDATA[x]]>", KMIP_E_SYNTAX},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = item_error(f, cases[i].item);

		if (err != cases[i].err) {
			fail_msg("%s: %d, expected %d", cases[i].item, err, cases[i].err);
		}
	}
	assert_int_equal(decode(f, "<RequestMessage>", &n), KMIP_E_SYNTAX);
	assert_int_equal(decode(f, "", &n), KMIP_E_SYNTAX);
	assert_int_equal(decode(f, "<RequestMessage/><RequestMessage/>", &n), KMIP_E_SYNTAX);
}

/* Entities cannot be declared, so none can expand (billion laughs, XXE). */
static void test_no_entities(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;
	const char *laughs = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaa\">"
			     "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
			     "<RequestMessage><TTLV tag=\"0x540001\" type=\"TextString\" "
			     "value=\"&b;\"/></RequestMessage>";
	const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM "
			  "\"file:///etc/passwd\">]><RequestMessage>&x;</RequestMessage>";

	assert_int_equal(decode(f, laughs, &n), KMIP_E_SYNTAX);
	assert_int_equal(decode(f, xxe, &n), KMIP_E_SYNTAX);
}

static void test_limits(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_node *n;
	char big[9000];

	/* Depth 4 is the limit: the message, then three structures. */
	assert_int_equal(decode(f,
				"<RequestMessage><RequestHeader><ProtocolVersion>"
				"<ProtocolVersionMajor type=\"Integer\" value=\"1\"/>"
				"</ProtocolVersion></RequestHeader></RequestMessage>",
				&n),
			 0);
	assert_int_equal(item_error(f, "<BatchItem><RequestPayload><Attribute>"
				       "<AttributeName type=\"TextString\" value=\"x\"/>"
				       "</Attribute></RequestPayload></BatchItem>"),
			 KMIP_E_DEPTH);
	/* 4096 bytes as TTLV, whatever the text's length. */
	snprintf(big, sizeof(big),
		 "<RequestMessage><TTLV tag=\"0x540001\" type=\"ByteString\" value=\"%0*d\"/>"
		 "</RequestMessage>",
		 2 * 4096, 0);
	assert_int_equal(decode(f, big, &n), KMIP_E_TOO_BIG);
}

static void test_decode_all(void **state)
{
	struct tu_fixture *f = *state;
	const char *file =
	    "<?xml version=\"1.0\"?>\n<!-- a test case -->\n<KMIP>\n# TIME 0\n"
	    "<RequestMessage><BatchCount type=\"Integer\" value=\"1\"/></RequestMessage>\n"
	    "<!-- comment -->\n<ResponseMessage/>\n# TIME 1\n</KMIP>\n";
	struct kmip_node *msgs;
	size_t num;

	assert_int_equal(kmip_xml_decode_all(file, strlen(file), &limits, &f->arena, &msgs, &num),
			 0);
	assert_int_equal(num, 2);
	assert_int_equal(msgs->v.child->v.i32, 1);
	assert_non_null(msgs->next);
	assert_null(msgs->next->next);
	assert_null(msgs->next->v.child);
}

static void test_text_buf_limit(void **state)
{
	struct tu_fixture *f = *state;
	struct kmip_text_buf small;
	struct kmip_node *n = decode_item(f, "<BatchCount type=\"Integer\" value=\"1\"/>");

	kmip_text_buf_init(&small, 8);
	assert_int_equal(kmip_xml_encode(&small, n), KMIP_E_TOO_BIG);
	kmip_text_buf_cleanup(&small);
}

/* A name the text forms can carry: no separators, and not a number or a placeholder. */
static bool is_token(const char *s, bool xml_name)
{
	if (s[0] == '\0' || s[0] == '$' || strncmp(s, "0x", 2) == 0 ||
	    (xml_name && !isalpha((unsigned char)s[0]) && s[0] != '_')) {
		return false;
	}
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL) {
			return false;
		}
	}
	return true;
}

/* The tables are the other half of the text forms' contract (AME 1.0 §4.1.3, §6.1.3). */
static void test_table_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < kmip_num_tag_defs; i++) {
		const struct kmip_tag_def *t = &kmip_tag_defs[i];
		const struct kmip_enum_def *e = t->enum_def;

		if (!is_token(t->name, true) || strcmp(t->name, "TTLV") == 0 ||
		    kmip_tag_by_name(t->name, strlen(t->name)) != t) {
			fail_msg("tag name %s", t->name);
		}
		for (size_t j = 0; e != NULL && j < e->num_values; j++) {
			const char *name = e->values[j].name;
			const struct kmip_enum_value *v = kmip_enum_by_name(e, name, strlen(name));

			if (!is_token(name, false) || v == NULL || v->value != e->values[j].value) {
				fail_msg("%s value %s", t->name, name);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_every_type, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_canonical_output, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_enumerations, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_masks, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_attribute_values, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_placeholders, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_escaping, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_no_entities, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_limits, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_decode_all, tu_setup, tu_teardown),
	    cmocka_unit_test_setup_teardown(test_text_buf_limit, tu_setup, tu_teardown),
	    cmocka_unit_test(test_table_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
