/* TTLV reader, writer, arena and tree: the rules and their negative cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keel/kmip.h"

#define TAG_A 0x420001u
#define TAG_B 0x420002u

static const struct kmip_limits limits = {.max_message_len = 4096, .max_depth = 4};

/* Parses a hex string (whitespace ignored) into |out|; returns its length. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (const char *p = hex; *p != '\0'; p++) {
		int v;

		if (*p >= '0' && *p <= '9') {
			v = *p - '0';
		} else if (*p >= 'a' && *p <= 'f') {
			v = *p - 'a' + 10;
		} else {
			continue;
		}
		if (hi < 0) {
			hi = v;
		} else {
			assert_true(n < cap);
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

/* Reads one item from |hex| with the test limits and returns the error. */
static int read_one(const char *hex)
{
	uint8_t buf[256];
	size_t len = unhex(hex, buf, sizeof(buf));
	struct kmip_reader r;
	struct kmip_item it;
	int err;

	assert_int_equal(kmip_reader_init(&r, buf, len, &limits), 0);
	err = kmip_read_item(&r, &it);
	if (err == 0) {
		err = kmip_reader_finish(&r);
	}
	return err;
}

static void test_valid_items(void **state)
{
	assert_int_equal(read_one("42000102 00000004 0000000a 00000000"), 0);
	assert_int_equal(read_one("42000103 00000008 0000000000000001"), 0);
	assert_int_equal(read_one("42000105 00000004 00000001 00000000"), 0);
	assert_int_equal(read_one("42000106 00000008 0000000000000001"), 0);
	assert_int_equal(read_one("42000107 00000003 616263 0000000000"), 0);
	assert_int_equal(read_one("42000108 00000000"), 0);
	assert_int_equal(read_one("42000104 00000008 ffffffffffffffff"), 0);
	assert_int_equal(read_one("42000109 00000008 0000000047da67f8"), 0);
	assert_int_equal(read_one("4200010a 00000004 0000000d 00000000"), 0);
	assert_int_equal(read_one("4200010b 00000008 0000000047da67f8"), 0);
	assert_int_equal(read_one("54000107 00000000"), 0); /* extension tag range */
}

static void test_truncated(void **state)
{
	assert_int_equal(read_one(""), KMIP_E_TRUNCATED);
	assert_int_equal(read_one("420001 02 000000"), KMIP_E_TRUNCATED);
	assert_int_equal(read_one("42000102 00000004 0000000a"), KMIP_E_TRUNCATED); /* no padding */
	assert_int_equal(read_one("42000107 00000010 6162636465666768"), KMIP_E_TRUNCATED);
}

static void test_length_overflow(void **state)
{
	/* A length near 2^32 must not wrap the padding arithmetic. */
	assert_int_equal(read_one("42000108 fffffffd 00000000"), KMIP_E_TRUNCATED);
	assert_int_equal(read_one("42000108 ffffffff 00000000"), KMIP_E_TRUNCATED);
}

static void test_wrong_fixed_length(void **state)
{
	assert_int_equal(read_one("42000102 00000008 0000000000000001"), KMIP_E_LENGTH);
	assert_int_equal(read_one("42000106 00000004 00000001 00000000"), KMIP_E_LENGTH);
	assert_int_equal(read_one("42000109 00000004 00000001 00000000"), KMIP_E_LENGTH);
	assert_int_equal(read_one("42000104 00000004 00000001 00000000"), KMIP_E_LENGTH);
}

static void test_bad_tag_and_type(void **state)
{
	assert_int_equal(read_one("43000102 00000004 00000001 00000000"), KMIP_E_TAG);
	assert_int_equal(read_one("00000002 00000004 00000001 00000000"), KMIP_E_TAG);
	assert_int_equal(read_one("4200010c 00000000"), KMIP_E_TYPE);
	assert_int_equal(read_one("42000100 00000000"), KMIP_E_TYPE);
}

static void test_nonzero_padding(void **state)
{
	assert_int_equal(read_one("42000102 00000004 0000000a 00000001"), KMIP_E_PADDING);
	assert_int_equal(read_one("42000107 00000003 616263 0000000100"), KMIP_E_PADDING);
}

static void test_bad_boolean(void **state)
{
	assert_int_equal(read_one("42000106 00000008 0000000000000002"), KMIP_E_BOOLEAN);
	assert_int_equal(read_one("42000106 00000008 0100000000000000"), KMIP_E_BOOLEAN);
}

static void test_invalid_utf8(void **state)
{
	assert_int_equal(read_one("42000107 00000001 ff00000000000000"), KMIP_E_UTF8);
	assert_int_equal(read_one("42000107 00000002 c0af000000000000"),
			 KMIP_E_UTF8); /* overlong */
	assert_int_equal(read_one("42000107 00000003 eda080 0000000000"),
			 KMIP_E_UTF8);					     /* surrogate */
	assert_int_equal(read_one("42000107 00000002 c3a9000000000000"), 0); /* é */
	assert_int_equal(read_one("42000107 00000001 c300000000000000"), KMIP_E_UTF8); /* cut */
}

static void test_trailing_bytes(void **state)
{
	assert_int_equal(read_one("42000102 00000004 0000000a 00000000 00"), KMIP_E_TRAILING);
}

/* Nests structures |depth| deep and decodes them as a tree. */
static int decode_nested(unsigned depth)
{
	uint8_t buf[512];
	struct kmip_writer w;
	const uint8_t *msg;
	size_t len;
	struct kmip_arena arena;
	struct kmip_node *root;
	int err;

	kmip_writer_init_fixed(&w, buf, sizeof(buf));
	for (unsigned i = 0; i < depth; i++) {
		kmip_write_begin(&w, TAG_A);
	}
	kmip_write_int(&w, TAG_B, 7);
	for (unsigned i = 0; i < depth; i++) {
		kmip_write_end(&w);
	}
	assert_int_equal(kmip_writer_finish(&w, &msg, &len), 0);
	kmip_arena_init(&arena, NULL, 0);
	err = kmip_decode_tree(msg, len, &limits, &arena, &root);
	kmip_arena_cleanup(&arena);
	return err;
}

static void test_depth_bomb(void **state)
{
	assert_int_equal(decode_nested(3), 0); /* the Integer sits at depth 4 */
	assert_int_equal(decode_nested(4), KMIP_E_DEPTH);
	assert_int_equal(decode_nested(30), KMIP_E_DEPTH);
}

static void test_size_limit(void **state)
{
	static uint8_t big[4104];
	struct kmip_reader r;

	assert_int_equal(kmip_reader_init(&r, big, sizeof(big), &limits), KMIP_E_TOO_BIG);
}

static void test_structure_must_be_consumed(void **state)
{
	uint8_t buf[64];
	size_t len =
	    unhex("42000101 00000010 42000202 00000004 00000007 00000000", buf, sizeof(buf));
	struct kmip_reader r;
	struct kmip_reader child;

	assert_int_equal(kmip_reader_init(&r, buf, len, &limits), 0);
	assert_int_equal(kmip_read_struct(&r, TAG_A, &child), 0);
	assert_int_equal(kmip_reader_finish(&child), KMIP_E_TRAILING);
	assert_int_equal(kmip_reader_finish(&r), 0);
}

static void test_failed_read_leaves_cursor(void **state)
{
	uint8_t buf[64];
	size_t len = unhex("42000102 00000004 0000000a 00000000", buf, sizeof(buf));
	struct kmip_reader r;
	const uint8_t *before;
	int32_t v;
	uint32_t e;

	assert_int_equal(kmip_reader_init(&r, buf, len, &limits), 0);
	before = r.data;
	assert_int_equal(kmip_read_enum(&r, TAG_A, &e), KMIP_E_TYPE);
	assert_int_equal(kmip_read_int(&r, TAG_B, &v), KMIP_E_UNEXPECTED);
	assert_ptr_equal(r.data, before);
	assert_int_equal(r.len, len);
	assert_int_equal(kmip_read_int(&r, TAG_A, &v), 0);
	assert_int_equal(v, 10);
	assert_true(kmip_reader_empty(&r));
}

static void test_writer_round_trip(void **state)
{
	static const uint8_t key[5] = {1, 2, 3, 4, 5};
	struct kmip_writer w;
	const uint8_t *msg;
	size_t len;
	struct kmip_reader r;
	struct kmip_reader child;
	const char *text;
	const uint8_t *bytes;
	size_t n;
	int64_t l;
	bool b;

	kmip_writer_init(&w, 4096);
	kmip_write_begin(&w, TAG_A);
	kmip_write_text(&w, TAG_B, "hello", 5);
	kmip_write_bytes(&w, TAG_B, key, sizeof(key));
	kmip_write_long(&w, TAG_B, -2);
	kmip_write_bool(&w, TAG_B, true);
	kmip_write_end(&w);
	assert_int_equal(kmip_writer_finish(&w, &msg, &len), 0);
	assert_int_equal(len, 8 + 16 + 16 + 16 + 16);

	assert_int_equal(kmip_reader_init(&r, msg, len, &limits), 0);
	assert_int_equal(kmip_read_struct(&r, TAG_A, &child), 0);
	assert_int_equal(kmip_read_text(&child, TAG_B, &text, &n), 0);
	assert_memory_equal(text, "hello", 5);
	assert_int_equal(kmip_read_bytes(&child, TAG_B, &bytes, &n), 0);
	assert_memory_equal(bytes, key, sizeof(key));
	assert_int_equal(kmip_read_long(&child, TAG_B, &l), 0);
	assert_int_equal(l, -2);
	assert_int_equal(kmip_read_bool(&child, TAG_B, &b), 0);
	assert_true(b);
	assert_int_equal(kmip_reader_finish(&child), 0);
	assert_int_equal(kmip_reader_finish(&r), 0);
	kmip_writer_cleanup(&w);
}

static void test_writer_sticky_error(void **state)
{
	uint8_t buf[24];
	struct kmip_writer w;
	const uint8_t *msg;
	size_t len;

	kmip_writer_init_fixed(&w, buf, sizeof(buf));
	kmip_write_int(&w, TAG_A, 1);
	kmip_write_int(&w, TAG_A, 2);  /* 32 bytes: does not fit */
	kmip_write_bool(&w, TAG_A, 0); /* ignored after the failure */
	assert_int_equal(kmip_writer_finish(&w, &msg, &len), KMIP_E_TOO_BIG);

	kmip_writer_init(&w, 1024);
	kmip_write_text(&w, TAG_A, "\xff", 1);
	assert_int_equal(kmip_writer_finish(&w, &msg, &len), KMIP_E_UTF8);
	kmip_writer_cleanup(&w);

	kmip_writer_init(&w, 1024);
	kmip_write_begin(&w, TAG_A);
	assert_int_equal(kmip_writer_finish(&w, &msg, &len), KMIP_E_STATE);
	kmip_writer_cleanup(&w);

	kmip_writer_init(&w, 1024);
	kmip_write_end(&w);
	assert_int_equal(kmip_writer_finish(&w, &msg, &len), KMIP_E_STATE);
	kmip_writer_cleanup(&w);

	kmip_writer_init(&w, 1024);
	kmip_write_int(&w, 0x430000, 1);
	assert_int_equal(kmip_writer_finish(&w, &msg, &len), KMIP_E_TAG);
	kmip_writer_cleanup(&w);
}

/* vCenter 7.0.3's Get response (../shared/VCENTER.md §3), kept here as a unit fixture. */
static const char get_response[] =
    "42007b010000012042007a0100000048420069010000002042006a0200000004000000010000000042006b02"
    "00000004000000010000000042009209000000080000000067ee614942000d02000000040000000100000000"
    "42000f01000000c842005c05000000040000000a000000004200930800000008514c4b430100000042007f05"
    "00000004000000000000000042007c01000000904200570500000004000000020000000042009407000000013"
    "10000000000000042008f0100000068420040010000006042004205000000040000000100000000420045010"
    "000002842004308000000200a65534a5852d45c27032b575cf2cc902548fc8c94aa8042a0d8858fe637c2004"
    "200280500000004000000030000000042002a02000000040000010000000000";

static void test_tree_round_trip(void **state)
{
	uint8_t in[512];
	size_t in_len = unhex(get_response, in, sizeof(in));
	uint8_t storage[4096];
	struct kmip_arena arena;
	struct kmip_node *root;
	struct kmip_writer w;
	const uint8_t *out;
	size_t out_len;

	kmip_arena_init(&arena, storage, sizeof(storage));
	assert_int_equal(kmip_decode_tree(in, in_len, &kmip_default_limits, &arena, &root), 0);
	assert_int_equal(arena.num_allocs, 0);
	assert_int_equal(root->tag, 0x42007b);
	assert_int_equal(root->len, 2);
	assert_non_null(kmip_node_find(root, 0x42000f));

	kmip_writer_init(&w, 4096);
	kmip_encode_tree(&w, root);
	assert_int_equal(kmip_writer_finish(&w, &out, &out_len), 0);
	assert_int_equal(out_len, in_len);
	assert_memory_equal(out, in, in_len);
	kmip_writer_cleanup(&w);
	kmip_arena_cleanup(&arena);
}

static void test_tree_rejects_two_items(void **state)
{
	uint8_t in[64];
	size_t len =
	    unhex("42000102 00000004 0000000a 00000000 42000102 00000004 0000000a 00000000", in,
		  sizeof(in));
	struct kmip_arena arena;
	struct kmip_node *root;

	kmip_arena_init(&arena, NULL, 0);
	assert_int_equal(kmip_decode_tree(in, len, &limits, &arena, &root), KMIP_E_TRAILING);
	kmip_arena_cleanup(&arena);
}

static void test_arena_grows_and_wipes(void **state)
{
	uint8_t storage[64];
	struct kmip_arena arena;
	uint8_t *p;
	char *s;

	kmip_arena_init(&arena, storage, sizeof(storage));
	assert_non_null(p = kmip_arena_alloc(&arena, 40));
	memset(p, 0x5a, 40);
	assert_int_equal(arena.num_allocs, 0);
	assert_non_null(s = kmip_arena_strndup(&arena, "secret-secret-secret-secret", 27));
	assert_int_equal(arena.num_allocs, 1);
	assert_string_equal(s, "secret-secret-secret-secret");
	assert_int_equal(kmip_arena_reserve(&arena, 8), 0); /* room left in the block */
	assert_int_equal(arena.num_allocs, 1);
	assert_int_equal(kmip_arena_reserve(&arena, 1 << 20), 0);
	assert_int_equal(arena.num_allocs, 2);
	kmip_arena_cleanup(&arena);
	for (size_t i = 0; i < 40; i++) {
		assert_int_equal(storage[i], 0); /* what was handed out is wiped */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_items),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_length_overflow),
	    cmocka_unit_test(test_wrong_fixed_length),
	    cmocka_unit_test(test_bad_tag_and_type),
	    cmocka_unit_test(test_nonzero_padding),
	    cmocka_unit_test(test_bad_boolean),
	    cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_trailing_bytes),
	    cmocka_unit_test(test_depth_bomb),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_structure_must_be_consumed),
	    cmocka_unit_test(test_failed_read_leaves_cursor),
	    cmocka_unit_test(test_writer_round_trip),
	    cmocka_unit_test(test_writer_sticky_error),
	    cmocka_unit_test(test_tree_round_trip),
	    cmocka_unit_test(test_tree_rejects_two_items),
	    cmocka_unit_test(test_arena_grows_and_wipes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
