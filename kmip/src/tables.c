/*
 * Lookups over the generated KMIP tables (kmip/gen/kmip_tables.c, made by
 * kmip/spec/gen.py). Every lookup is a binary search over a sorted array: no
 * allocation, no locale, names compared byte by byte.
 */
#include <string.h>

#include "keel/kmip.h"
#include "kmip_tables_int.h"

/* Compares |len| bytes at |s| with the NUL-terminated |z|, as strcmp would. */
static int name_cmp(const char *s, size_t len, const char *z)
{
	size_t zlen = strlen(z);
	int c = memcmp(s, z, len < zlen ? len : zlen);

	if (c != 0) {
		return c;
	}
	return len < zlen ? -1 : len > zlen;
}

const struct kmip_tag_def *kmip_tag_def(uint32_t tag)
{
	size_t lo = 0;
	size_t hi = kmip_num_tag_defs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (kmip_tag_defs[mid].tag == tag) {
			return &kmip_tag_defs[mid];
		}
		if (kmip_tag_defs[mid].tag < tag) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}

/* Searches the tags through |index| (positions sorted by name or title). */
static const struct kmip_tag_def *tag_search(const uint16_t *index, bool by_title, const char *s,
					     size_t len)
{
	size_t lo = 0;
	size_t hi = kmip_num_tag_defs;

	if (s == NULL) {
		return NULL;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kmip_tag_def *def = &kmip_tag_defs[index[mid]];
		int c = name_cmp(s, len, by_title ? def->title : def->name);

		if (c == 0) {
			return def;
		}
		if (c > 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}

const struct kmip_tag_def *kmip_tag_by_name(const char *name, size_t name_len)
{
	return tag_search(kmip_tag_name_index, false, name, name_len);
}

const struct kmip_tag_def *kmip_tag_by_title(const char *title, size_t title_len)
{
	return tag_search(kmip_tag_title_index, true, title, title_len);
}

const struct kmip_enum_value *kmip_enum_value(const struct kmip_enum_def *def, uint32_t value)
{
	size_t lo = 0;
	size_t hi;

	if (def == NULL) {
		return NULL;
	}
	hi = def->num_values;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (def->values[mid].value == value) {
			return &def->values[mid];
		}
		if (def->values[mid].value < value) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}

/* The positions of |def|'s values sorted by name, found by the enumeration's name. */
static const uint16_t *enum_name_index(const struct kmip_enum_def *def)
{
	size_t lo = 0;
	size_t hi = kmip_num_enum_indexes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kmip_enum_def *d = kmip_enum_indexes[mid].def;
		int c = strcmp(def->name, d->name);

		if (c == 0) {
			/* A caller's own descriptor shares no index with ours. */
			return d == def ? kmip_enum_indexes[mid].by_name : NULL;
		}
		if (c > 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}

const struct kmip_enum_value *kmip_enum_by_name(const struct kmip_enum_def *def, const char *name,
						size_t name_len)
{
	const uint16_t *index;
	size_t lo = 0;
	size_t hi;

	if (def == NULL || name == NULL || (index = enum_name_index(def)) == NULL) {
		return NULL;
	}
	hi = def->num_values;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kmip_enum_value *v = &def->values[index[mid]];
		int c = name_cmp(name, name_len, v->name);

		if (c == 0) {
			return v;
		}
		if (c > 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}
