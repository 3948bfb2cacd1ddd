/*
 * Every request and response of the OASIS KMIP 1.0-1.4 test cases
 * ($KEEL_VECTORS/oasis-xml/v1.x/ *.xml) through every encoding:
 *   XML -> tree -> XML -> tree                 same tree
 *   tree -> TTLV -> tree -> XML                same tree, same canonical XML
 *   tree -> JSON -> tree -> XML                same tree, same canonical XML
 * Placeholders ("$NOW") have no TTLV form: concrete values stand in for them
 * on the way through TTLV and are mapped back after (text_util.c).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keel/kmip.h"
#include "text_util.h"

static const struct kmip_limits limits = {.max_message_len = 4u << 20, .max_depth = 16};

/* Test-case files the specification itself gets wrong, with the reason. */
static const struct {
	const char *file;
	const char *reason;
} exceptions[] = {
    {NULL, NULL},
};

struct counts {
	size_t messages;
	size_t passed;
	size_t files;
	size_t failed_files;
	size_t excused_files;
};

static const char *excuse(const char *file)
{
	for (size_t i = 0; exceptions[i].file != NULL; i++) {
		if (strcmp(exceptions[i].file, file) == 0) {
			return exceptions[i].reason;
		}
	}
	return NULL;
}

/* Encodes |n| as XML into |b| (reset first). */
static int to_xml(struct kmip_text_buf *b, const struct kmip_node *n)
{
	kmip_text_buf_reset(b);
	return kmip_xml_encode(b, n);
}

/* Decodes a copy of the bytes from |a|, so the tree outlives the writer. */
static int decode_copy(const uint8_t *bytes, size_t len, struct kmip_arena *a,
		       struct kmip_node **out)
{
	uint8_t *copy = kmip_arena_alloc(a, len);

	if (copy == NULL) {
		return KMIP_E_NOMEM;
	}
	memcpy(copy, bytes, len);
	return kmip_decode_tree(copy, len, &limits, a, out);
}

/* |orig| -> TTLV -> tree, with placeholders bound on the way and restored after. */
static int via_ttlv(struct kmip_node *orig, struct kmip_arena *a, struct kmip_node **out, char *why,
		    size_t why_len)
{
	struct tu_placeholders map = {0};
	struct kmip_writer w;
	const uint8_t *bytes;
	size_t len;
	int err;

	kmip_writer_init(&w, limits.max_message_len);
	if ((err = tu_bind_placeholders(orig, a, &map)) == 0) {
		kmip_encode_tree(&w, orig);
		err = kmip_writer_finish(&w, &bytes, &len);
		(void)tu_restore_placeholders(orig, &map);
	}
	if (err != 0) {
		snprintf(why, why_len, "TTLV encode: %s", kmip_strerror(err));
	} else if ((err = decode_copy(bytes, len, a, out)) != 0) {
		snprintf(why, why_len, "TTLV decode: %s", kmip_strerror(err));
	} else if ((err = tu_restore_placeholders(*out, &map)) != 0) {
		snprintf(why, why_len, "placeholders did not survive TTLV");
	}
	kmip_writer_cleanup(&w);
	tu_placeholders_free(&map);
	return err;
}

/* |orig| -> JSON -> tree. */
static int via_json(const struct kmip_node *orig, struct kmip_arena *a, struct kmip_node **out,
		    char *why, size_t why_len)
{
	struct kmip_text_buf b;
	int err;

	kmip_text_buf_init(&b, SIZE_MAX);
	if ((err = kmip_json_encode(&b, orig)) != 0) {
		snprintf(why, why_len, "JSON encode: %s", kmip_strerror(err));
	} else if ((err = kmip_json_decode(b.data, b.len, &limits, a, out)) != 0) {
		snprintf(why, why_len, "JSON decode: %s", kmip_strerror(err));
	}
	kmip_text_buf_cleanup(&b);
	return err;
}

/* |orig| -> XML -> tree. */
static int via_xml(const struct kmip_node *orig, struct kmip_arena *a, struct kmip_node **out,
		   char *why, size_t why_len)
{
	struct kmip_text_buf b;
	int err;

	kmip_text_buf_init(&b, SIZE_MAX);
	if ((err = kmip_xml_encode(&b, orig)) != 0) {
		snprintf(why, why_len, "XML encode: %s", kmip_strerror(err));
	} else if ((err = kmip_xml_decode(b.data, b.len, &limits, a, out)) != 0) {
		snprintf(why, why_len, "XML decode of our XML: %s", kmip_strerror(err));
	}
	kmip_text_buf_cleanup(&b);
	return err;
}

/* Same tree, and the same canonical XML text. */
static bool same(const struct kmip_node *orig, const struct kmip_node *back, const char *path,
		 char *why, size_t why_len)
{
	struct kmip_text_buf x1, x2;
	char diff[256];
	bool ok;

	if (!tu_tree_equal(orig, back, diff, sizeof(diff))) {
		snprintf(why, why_len, "%s: %s", path, diff);
		return false;
	}
	kmip_text_buf_init(&x1, SIZE_MAX);
	kmip_text_buf_init(&x2, SIZE_MAX);
	ok = to_xml(&x1, orig) == 0 && to_xml(&x2, back) == 0 && x1.len == x2.len &&
	     memcmp(x1.data, x2.data, x1.len) == 0;
	if (!ok) {
		snprintf(why, why_len, "%s: canonical XML differs", path);
	}
	kmip_text_buf_cleanup(&x1);
	kmip_text_buf_cleanup(&x2);
	return ok;
}

/* One message through every encoding; false with the reason in |why|. */
static bool round_trip(struct kmip_node *msg, char *why, size_t why_len)
{
	struct kmip_arena a;
	struct kmip_node *back;
	bool ok;

	kmip_arena_init(&a, NULL, 0);
	ok = via_xml(msg, &a, &back, why, why_len) == 0 && same(msg, back, "XML", why, why_len) &&
	     via_ttlv(msg, &a, &back, why, why_len) == 0 && same(msg, back, "TTLV", why, why_len) &&
	     via_json(msg, &a, &back, why, why_len) == 0 && same(msg, back, "JSON", why, why_len);
	kmip_arena_cleanup(&a);
	return ok;
}

/* Messages in a file we could not decode, to count them as failed. */
static size_t count_messages(const char *text)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, "</Re")) != NULL; p++) {
		n += strncmp(p, "</RequestMessage>", 17) == 0 ||
		     strncmp(p, "</ResponseMessage>", 18) == 0;
	}
	return n;
}

static void run_file(const char *dir, const char *version, const char *name, struct counts *c)
{
	char path[4096], rel[512], why[600] = "";
	struct kmip_arena a;
	struct kmip_node *msgs = NULL;
	size_t len, num = 0, index = 0, ok = 0;
	char *text;
	int err;

	assert_true(snprintf(path, sizeof(path), "%s/%s/%s", dir, version, name) <
		    (int)sizeof(path));
	assert_true(snprintf(rel, sizeof(rel), "%s/%s", version, name) < (int)sizeof(rel));
	assert_non_null(text = tu_read_file(path, &len));
	kmip_arena_init(&a, NULL, 0);
	if ((err = kmip_xml_decode_all(text, len, &limits, &a, &msgs, &num)) != 0) {
		snprintf(why, sizeof(why), "XML decode: %s", kmip_strerror(err));
		num = count_messages(text);
		msgs = NULL;
	}
	for (struct kmip_node *m = msgs; m != NULL; m = m->next, index++) {
		char one[512];

		if (round_trip(m, one, sizeof(one))) {
			ok++;
		} else if (why[0] == '\0') {
			(void)!snprintf(why, sizeof(why), "message %zu: %s", index, one);
		}
	}
	c->files++;
	c->messages += num;
	c->passed += ok;
	if (ok != num || err != 0) {
		const char *reason = excuse(rel);

		printf("%s %s: %s\n", reason != NULL ? "EXCUSED" : "FAILED", rel, why);
		if (reason != NULL) {
			printf("    (%s)\n", reason);
		}
		*(reason != NULL ? &c->excused_files : &c->failed_files) += 1;
	}
	kmip_arena_cleanup(&a);
	free(text);
}

static int is_xml(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 4 && strcmp(e->d_name + n - 4, ".xml") == 0;
}

static void run_version(const char *dir, const char *version, struct counts *c)
{
	char path[4096];
	struct dirent **names;
	int n;

	assert_true(snprintf(path, sizeof(path), "%s/%s", dir, version) < (int)sizeof(path));
	n = scandir(path, &names, is_xml, alphasort);
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		run_file(dir, version, names[i]->d_name, c);
		free(names[i]);
	}
	free(names);
}

static void test_oasis_vectors(void **state)
{
	static const char *const versions[] = {"v1.0", "v1.1", "v1.2", "v1.3", "v1.4"};
	const char *vectors = getenv("KEEL_VECTORS");
	char dir[4096];
	struct counts c = {0};
	DIR *probe = NULL;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/oasis-xml", vectors != NULL ? vectors : "");
	if (vectors == NULL || (probe = opendir(dir)) == NULL) {
		fprintf(stderr,
			"\n*** SKIPPED: no OASIS vectors (set KEEL_VECTORS; tried '%s') ***\n\n",
			dir);
		skip();
		return;
	}
	closedir(probe);
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		run_version(dir, versions[i], &c);
	}
	printf("%zu of %zu messages round-tripped (%zu files, %zu failed, %zu excused)\n", c.passed,
	       c.messages, c.files, c.failed_files, c.excused_files);
	assert_int_equal(c.failed_files, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_oasis_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
