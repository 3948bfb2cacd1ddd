/* The printed form: indentation, names, hex, quoting that keeps the terminal safe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keel/kmip.h"

static const struct kmip_limits limits = {.max_message_len = 4096, .max_depth = 8};

static void test_print(void **state)
{
	const char *xml = "<RequestMessage>"
			  "<BatchCount type=\"Integer\" value=\"1\"/>"
			  "<BatchItem>"
			  "<Operation type=\"Enumeration\" value=\"Get\"/>"
			  "<Attribute>"
			  "<AttributeName type=\"TextString\" value=\"Cryptographic Usage Mask\"/>"
			  "<AttributeValue type=\"Integer\" value=\"Encrypt Decrypt\"/>"
			  "</Attribute>"
			  "<TTLV tag=\"0x540001\" type=\"TextString\" value=\"x\"/>"
			  "<TTLV tag=\"0x540002\" type=\"ByteString\" value=\"00ff\"/>"
			  "<TimeStamp type=\"DateTime\" value=\"$NOW\"/>"
			  "</BatchItem>"
			  "</RequestMessage>";
	const char *expect = "RequestMessage (Structure)\n"
			     "  BatchCount (Integer): 1\n"
			     "  BatchItem (Structure)\n"
			     "    Operation (Enumeration): Get\n"
			     "    Attribute (Structure)\n"
			     "      AttributeName (TextString): \"Cryptographic Usage Mask\"\n"
			     "      AttributeValue (Integer): Encrypt Decrypt\n"
			     "    0x540001 (TextString): \"a\\\"\\x1B[2J\"\n"
			     "    0x540002 (ByteString): 00FF\n"
			     "    TimeStamp (DateTime): \"$NOW\"\n";
	struct kmip_arena arena;
	struct kmip_text_buf out;
	struct kmip_node *msg, *text;

	(void)state;
	kmip_arena_init(&arena, NULL, 0);
	kmip_text_buf_init(&out, 4096);
	assert_int_equal(kmip_xml_decode(xml, strlen(xml), &limits, &arena, &msg), 0);
	/* An escape sequence, which XML cannot carry but TTLV can. */
	text = msg->v.child->next->v.child->next->next;
	text->v.text = "a\"\x1B[2J";
	text->len = 6;
	assert_int_equal(kmip_print(&out, msg), 0);
	assert_string_equal(out.data, expect);
	kmip_text_buf_cleanup(&out);
	kmip_arena_cleanup(&arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_print),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
