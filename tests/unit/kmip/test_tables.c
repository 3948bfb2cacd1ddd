/*
 * The generated KMIP tables and their lookups: known values both ways, misses,
 * ordering, and every name used by the OASIS XML test vectors.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "keel/kmip.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_tag_lookups(void **state)
{
	const struct kmip_tag_def *t;

	(void)state;
	t = kmip_tag_def(0x420094);
	assert_non_null(t);
	assert_string_equal(t->name, "UniqueIdentifier");
	assert_string_equal(t->title, "Unique Identifier");
	assert_ptr_equal(kmip_tag_by_name(S("UniqueIdentifier")), t);
	assert_ptr_equal(kmip_tag_by_title(S("Unique Identifier")), t);
	assert_true(t->versions & KMIP_V1_0);
	assert_true(t->versions & KMIP_V2_1);

	t = kmip_tag_by_name(S("ActivationDate"));
	assert_non_null(t);
	assert_int_equal(t->tag, KMIP_TAG_ACTIVATION_DATE);
	assert_int_equal(t->type, KMIP_TYPE_DATE_TIME);
	assert_non_null(t->section);

	t = kmip_tag_by_title(S("Cryptographic Algorithm"));
	assert_non_null(t);
	assert_int_equal(t->tag, 0x420028);
	assert_int_equal(t->type, KMIP_TYPE_ENUMERATION);
	assert_ptr_equal(t->enum_def, &kmip_enum_cryptographic_algorithm);

	/* Attribute Value's type depends on the attribute: 0 in the tables. */
	t = kmip_tag_def(KMIP_TAG_ATTRIBUTE_VALUE);
	assert_non_null(t);
	assert_int_equal(t->type, 0);

	/* Mask Generator Hashing Algorithm takes Hashing Algorithm's values. */
	t = kmip_tag_def(KMIP_TAG_MASK_GENERATOR_HASHING_ALGORITHM);
	assert_non_null(t);
	assert_ptr_equal(t->enum_def, &kmip_enum_hashing_algorithm);

	/* Masks are Integers linked to a mask definition. */
	t = kmip_tag_def(KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK);
	assert_non_null(t);
	assert_int_equal(t->type, KMIP_TYPE_INTEGER);
	assert_true(t->enum_def->is_mask);
}

static void test_tag_versions(void **state)
{
	const struct kmip_tag_def *t;

	(void)state;
	/* KMIP 2.1 only (KMIP 2.1 §11.56). */
	t = kmip_tag_by_name(S("AsynchronousCorrelationValues"));
	assert_non_null(t);
	assert_int_equal(t->tag, 0x420176);
	assert_int_equal(t->tag, KMIP_TAG_ASYNCHRONOUS_CORRELATION_VALUES);
	assert_int_equal(t->versions, KMIP_V2_1);
	/* KMIP 2.0 and later. */
	t = kmip_tag_def(KMIP_TAG_ATTRIBUTES);
	assert_non_null(t);
	assert_int_equal(t->versions, KMIP_V2_0 | KMIP_V2_1);
	/* Removed by KMIP 2.0. */
	t = kmip_tag_by_name(S("TemplateAttribute"));
	assert_non_null(t);
	assert_true(t->versions & KMIP_V1_4);
	assert_false(t->versions & KMIP_V2_0);
}

static void test_tag_misses(void **state)
{
	(void)state;
	assert_null(kmip_tag_def(0));
	assert_null(kmip_tag_def(0x420000));
	assert_null(kmip_tag_def(0x420137)); /* (Reserved) */
	assert_null(kmip_tag_def(0x42FFFF));
	assert_null(kmip_tag_def(0x540001));
	assert_null(kmip_tag_by_name(S("")));
	assert_null(kmip_tag_by_name(S("uniqueidentifier")));
	assert_null(kmip_tag_by_name(S("UniqueIdentifierX")));
	assert_null(kmip_tag_by_name(S("UniqueIdentifie")));
	assert_null(kmip_tag_by_name(NULL, 0));
	assert_null(kmip_tag_by_title(S("UniqueIdentifier")));
	assert_null(kmip_tag_by_title(S("Unique  Identifier")));
	/* Lengths are honoured: a prefix of a longer buffer. */
	assert_non_null(kmip_tag_by_name("NameValueXYZ", 9));
	assert_int_equal(kmip_tag_by_name("NameValueXYZ", 9)->tag, KMIP_TAG_NAME_VALUE);
}

static void test_enum_values(void **state)
{
	const struct kmip_enum_value *v;

	(void)state;
	v = kmip_enum_by_name(&kmip_enum_operation, S("Create"));
	assert_non_null(v);
	assert_int_equal(v->value, 1);
	assert_int_equal(KMIP_OPERATION_CREATE, 1);
	v = kmip_enum_value(&kmip_enum_operation, 0x18);
	assert_non_null(v);
	assert_string_equal(v->name, "Query");
	assert_int_equal(KMIP_OPERATION_QUERY, 0x18);

	v = kmip_enum_by_name(&kmip_enum_object_type, S("SymmetricKey"));
	assert_non_null(v);
	assert_int_equal(v->value, 2);
	assert_string_equal(v->title, "Symmetric Key");
	assert_int_equal(KMIP_OBJECT_TYPE_SYMMETRIC_KEY, 2);

	v = kmip_enum_value(&kmip_enum_cryptographic_algorithm, 3);
	assert_non_null(v);
	assert_string_equal(v->name, "AES");
	assert_int_equal(KMIP_CRYPTOGRAPHIC_ALGORITHM_AES, 3);
	v = kmip_enum_value(&kmip_enum_cryptographic_algorithm, 2);
	assert_non_null(v);
	assert_string_equal(v->name, "DES3");
	assert_string_equal(v->title, "3DES");

	v = kmip_enum_by_name(&kmip_enum_state, S("PreActive"));
	assert_non_null(v);
	assert_string_equal(v->title, "Pre-Active");
	v = kmip_enum_by_name(&kmip_enum_name_type, S("UninterpretedTextString"));
	assert_non_null(v);
	assert_int_equal(v->value, 1);

	assert_int_equal(KMIP_RESULT_REASON_ITEM_NOT_FOUND, 1);
	assert_int_equal(KMIP_RESULT_REASON_GENERAL_FAILURE, 0x100);
	assert_int_equal(KMIP_CRYPTOGRAPHIC_USAGE_MASK_ENCRYPT, 4);
	v = kmip_enum_by_name(&kmip_enum_cryptographic_usage_mask, S("Decrypt"));
	assert_non_null(v);
	assert_int_equal(v->value, 8);
	assert_true(kmip_enum_cryptographic_usage_mask.is_mask);
	assert_false(kmip_enum_operation.is_mask);
}

static void test_enum_versions(void **state)
{
	const struct kmip_enum_value *v;

	(void)state;
	/* KMIP 2.1 only: Ping (KMIP 2.1 §11.36). */
	v = kmip_enum_by_name(&kmip_enum_operation, S("Ping"));
	assert_non_null(v);
	assert_int_equal(v->value, 0x3B);
	assert_int_equal(v->versions, KMIP_V2_1);
	assert_int_equal(KMIP_OPERATION_PING, 0x3B);
	v = kmip_enum_value(&kmip_enum_processing_stage, 2);
	assert_non_null(v);
	assert_string_equal(v->name, "InProcess");
	assert_int_equal(v->versions, KMIP_V2_1);
	/* Template was removed by KMIP 2.0. */
	v = kmip_enum_value(&kmip_enum_object_type, KMIP_OBJECT_TYPE_TEMPLATE);
	assert_non_null(v);
	assert_true(v->versions & KMIP_V1_0);
	assert_false(v->versions & KMIP_V2_0);
}

static void test_enum_misses(void **state)
{
	(void)state;
	assert_null(kmip_enum_value(&kmip_enum_operation, 0));
	assert_null(kmip_enum_value(&kmip_enum_operation, 0x3C));
	assert_null(kmip_enum_value(&kmip_enum_object_type, 0x80000001));
	assert_null(kmip_enum_value(NULL, 1));
	assert_null(kmip_enum_by_name(&kmip_enum_operation, S("create")));
	assert_null(kmip_enum_by_name(&kmip_enum_operation, S("Creat")));
	assert_null(kmip_enum_by_name(&kmip_enum_operation, S("CreateX")));
	assert_null(kmip_enum_by_name(&kmip_enum_operation, S("")));
	assert_null(kmip_enum_by_name(&kmip_enum_operation, NULL, 0));
	assert_null(kmip_enum_by_name(NULL, S("Create")));
	/* Defined without values of its own (KMIP 2.1 §11.35). */
	assert_int_equal(kmip_enum_opaque_data_type.num_values, 0);
	assert_null(kmip_enum_by_name(&kmip_enum_opaque_data_type, S("Create")));
	assert_null(kmip_enum_value(&kmip_enum_opaque_data_type, 1));
}

/* The tables are sorted (binary search relies on it) and every entry is whole. */
static void test_tables_sorted(void **state)
{
	const struct kmip_enum_def *defs[] = {
	    &kmip_enum_operation,	&kmip_enum_result_reason,	&kmip_enum_profile_name,
	    &kmip_enum_key_format_type, &kmip_enum_storage_status_mask,
	};

	(void)state;
	assert_true(kmip_num_tag_defs > 300);
	for (size_t i = 0; i < kmip_num_tag_defs; i++) {
		const struct kmip_tag_def *t = &kmip_tag_defs[i];

		if (i > 0) {
			assert_true(kmip_tag_defs[i - 1].tag < t->tag);
		}
		assert_non_null(t->name);
		assert_non_null(t->title);
		assert_non_null(t->section);
		assert_true(t->versions != 0);
		assert_ptr_equal(kmip_tag_def(t->tag), t);
		assert_ptr_equal(kmip_tag_by_name(t->name, strlen(t->name)), t);
		assert_ptr_equal(kmip_tag_by_title(t->title, strlen(t->title)), t);
		if (t->type == KMIP_TYPE_ENUMERATION) {
			assert_non_null(t->enum_def);
		}
	}
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		for (size_t j = 0; j < defs[i]->num_values; j++) {
			const struct kmip_enum_value *v = &defs[i]->values[j];

			if (j > 0) {
				assert_true(defs[i]->values[j - 1].value < v->value);
			}
			assert_ptr_equal(kmip_enum_value(defs[i], v->value), v);
			assert_ptr_equal(kmip_enum_by_name(defs[i], v->name, strlen(v->name)), v);
		}
	}
}

/* ---- The OASIS XML test vectors ----------------------------------------- */

struct vec_stats {
	size_t files;
	size_t elements;
	size_t enums;
	size_t masks;
	size_t failures;
};

/* Copies attribute |attr| of the element in [s, end) into |out|; false if absent. */
static bool xml_attr(const char *s, const char *end, const char *attr, char *out, size_t cap)
{
	size_t alen = strlen(attr);

	for (const char *p = s; p + alen + 2 <= end; p++) {
		if ((p == s || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n') &&
		    memcmp(p, attr, alen) == 0 && p[alen] == '=' && p[alen + 1] == '"') {
			const char *v = p + alen + 2;
			const char *q = memchr(v, '"', (size_t)(end - v));
			size_t n;

			if (q == NULL || (n = (size_t)(q - v)) >= cap) {
				return false;
			}
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
	}
	return false;
}

static void vec_fail(struct vec_stats *st, const char *path, const char *what, const char *a,
		     const char *b)
{
	if (st->failures++ < 20) {
		print_error("%s: %s %s %s\n", path, what, a, b);
	}
}

/* Checks one value of an Enumeration (or the names of a mask) against |def|. */
static void check_value(struct vec_stats *st, const char *path, const char *el,
			const struct kmip_enum_def *def, char *value, bool mask)
{
	char *save = NULL;

	if (strncmp(value, "0x", 2) == 0 ||
	    (mask && (value[0] == '-' || (value[0] >= '0' && value[0] <= '9')))) {
		return;
	}
	if (def == NULL || def->is_mask != mask) {
		vec_fail(st, path, "no enumeration for", el, value);
		return;
	}
	for (char *w = strtok_r(value, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		if (kmip_enum_by_name(def, w, strlen(w)) == NULL) {
			vec_fail(st, path, "unknown value", el, w);
		}
		if (mask) {
			st->masks++;
		} else {
			st->enums++;
		}
	}
}

static void check_element(struct vec_stats *st, const char *path, const char *s, const char *end,
			  const struct kmip_tag_def **attr)
{
	size_t n = 0;
	char el[128];
	char type[32];
	char value[1024];
	const struct kmip_tag_def *t;

	while (s + n < end && (s[n] == '_' || (s[n] >= 'A' && s[n] <= 'Z') ||
			       (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9'))) {
		n++;
	}
	if (n == 0 || n >= sizeof(el)) {
		return;
	}
	memcpy(el, s, n);
	el[n] = '\0';
	/* The file's wrapper, and the generic element for unknown (extension) tags. */
	if (strcmp(el, "KMIP") == 0 || strcmp(el, "TTLV") == 0) {
		return;
	}
	st->elements++;
	if ((t = kmip_tag_by_name(el, n)) == NULL) {
		vec_fail(st, path, "unknown tag", el, "");
		return;
	}
	if (!xml_attr(s, end, "type", type, sizeof(type)) ||
	    !xml_attr(s, end, "value", value, sizeof(value))) {
		return;
	}
	if (t->tag == KMIP_TAG_ATTRIBUTE_NAME) {
		*attr = kmip_tag_by_title(value, strlen(value));
		return;
	}
	/* An Attribute Value takes the enumeration of the attribute its name gives. */
	if (t->tag == KMIP_TAG_ATTRIBUTE_VALUE) {
		t = *attr;
	}
	if (strcmp(type, "Enumeration") == 0) {
		check_value(st, path, el, t != NULL ? t->enum_def : NULL, value, false);
	} else if (strcmp(type, "Integer") == 0 && t != NULL && t->enum_def != NULL &&
		   t->enum_def->is_mask) {
		check_value(st, path, el, t->enum_def, value, true);
	}
}

static void check_file(struct vec_stats *st, const char *path)
{
	FILE *f = fopen(path, "rb");
	const struct kmip_tag_def *attr = NULL;
	char *buf;
	long len;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	assert_true((len = ftell(f)) >= 0);
	rewind(f);
	assert_non_null(buf = malloc((size_t)len + 1));
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	st->files++;
	/* A line scan is enough: the vectors are plain elements with attributes. */
	for (char *p = strchr(buf, '<'); p != NULL; p = strchr(p + 1, '<')) {
		char *end = strchr(p, '>');

		if (end == NULL) {
			break;
		}
		if (p[1] != '/' && p[1] != '?' && p[1] != '!') {
			check_element(st, path, p + 1, end, &attr);
		}
	}
	free(buf);
}

static void walk(struct vec_stats *st, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		struct stat sb;
		size_t n = strlen(e->d_name);

		if (e->d_name[0] == '.') {
			continue;
		}
		assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) <
			    sizeof(path));
		assert_int_equal(stat(path, &sb), 0);
		if (S_ISDIR(sb.st_mode)) {
			walk(st, path);
		} else if (n > 4 && strcmp(e->d_name + n - 4, ".xml") == 0) {
			check_file(st, path);
		}
	}
	closedir(d);
}

static void test_oasis_xml_names(void **state)
{
	const char *root = getenv("KEEL_VECTORS");
	struct vec_stats st = {0};
	char dir[4096];
	struct stat sb;

	(void)state;
	if (root == NULL || snprintf(dir, sizeof(dir), "%s/oasis-xml", root) >= (int)sizeof(dir) ||
	    stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		print_message("SKIPPED: no OASIS XML vectors ($KEEL_VECTORS/oasis-xml)\n");
		skip();
	}
	walk(&st, dir);
	print_message("oasis-xml: %zu files, %zu elements, %zu enumeration values, "
		      "%zu mask names checked\n",
		      st.files, st.elements, st.enums, st.masks);
	assert_int_equal(st.failures, 0);
	assert_true(st.files > 0);
	assert_true(st.enums > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tag_lookups),	  cmocka_unit_test(test_tag_versions),
	    cmocka_unit_test(test_tag_misses),	  cmocka_unit_test(test_enum_values),
	    cmocka_unit_test(test_enum_versions), cmocka_unit_test(test_enum_misses),
	    cmocka_unit_test(test_tables_sorted), cmocka_unit_test(test_oasis_xml_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
