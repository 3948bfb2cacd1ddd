/*
 * Values as text, shared by the XML and JSON encodings and the printer (KMIP
 * Additional Message Encodings 1.0, §4.1 and §6.1): tag and enumeration
 * names, masks, hex, ISO 8601 dates and test-case placeholders. Each value
 * has one parser and one formatter here, so the encodings cannot drift.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"
#include "kmip_int.h"
#include "textval_int.h"

#define TTLV_HEADER_LEN 8

void kmip_tv_dec_init(struct kmip_tv_dec *d, const struct kmip_limits *lim,
		      struct kmip_arena *arena)
{
	d->arena = arena;
	d->max_depth = lim->max_depth < KMIP_MAX_DEPTH ? lim->max_depth : KMIP_MAX_DEPTH;
	d->max_len = lim->max_message_len;
	d->ttlv_len = 0;
}

/* ---- hex ---------------------------------------------------------------- */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Parses "0x" and 1 to |max_digits| hex digits. */
static int parse_hex_number(const char *s, size_t len, unsigned max_digits, uint64_t *out)
{
	uint64_t v = 0;

	if (len < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
		return KMIP_E_SYNTAX;
	}
	if (len - 2 > max_digits) {
		return KMIP_E_RANGE;
	}
	for (size_t i = 2; i < len; i++) {
		int h = hex_digit(s[i]);

		if (h < 0) {
			return KMIP_E_SYNTAX;
		}
		v = v << 4 | (uint64_t)h;
	}
	*out = v;
	return 0;
}

static bool has_hex_prefix(const char *s, size_t len)
{
	return len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

/* Decodes hex digits into a new arena copy of the bytes. */
static int parse_hex_bytes(struct kmip_tv_dec *d, const char *s, size_t len, const uint8_t **out,
			   uint32_t *out_len)
{
	uint8_t *p;

	if (len % 2 != 0) {
		return KMIP_E_SYNTAX;
	}
	if (len / 2 > UINT32_MAX || (p = kmip_arena_alloc(d->arena, len / 2 + 1)) == NULL) {
		return len / 2 > UINT32_MAX ? KMIP_E_TOO_BIG : KMIP_E_NOMEM;
	}
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_digit(s[i]);
		int lo = hex_digit(s[i + 1]);

		if (hi < 0 || lo < 0) {
			return KMIP_E_SYNTAX;
		}
		p[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*out = p;
	*out_len = (uint32_t)(len / 2);
	return 0;
}

static void format_hex_bytes(struct kmip_text_buf *b, const uint8_t *p, size_t len)
{
	static const char digits[] = "0123456789ABCDEF";
	char chunk[64];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		chunk[n++] = digits[p[i] >> 4];
		chunk[n++] = digits[p[i] & 0x0F];
		if (n == sizeof(chunk)) {
			kmip_text_append(b, chunk, n);
			n = 0;
		}
	}
	kmip_text_append(b, chunk, n);
	explicit_bzero(chunk, sizeof(chunk)); /* bytes may be key material */
}

/* ---- decimal ------------------------------------------------------------ */

/* Parses an optionally negative decimal within [min, max]. */
static int parse_decimal(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	bool neg = len > 0 && s[0] == '-';
	uint64_t limit = neg ? (uint64_t)(-(min + 1)) + 1 : (uint64_t)max;
	uint64_t v = 0;
	size_t i = neg ? 1 : 0;

	if (i == len) {
		return KMIP_E_SYNTAX;
	}
	if (neg && min >= 0) {
		return KMIP_E_RANGE;
	}
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return KMIP_E_SYNTAX;
		}
		if (v > (limit - (uint64_t)(s[i] - '0')) / 10) {
			return KMIP_E_RANGE;
		}
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* A decimal in [min, max], or hex of up to |hex_digits| digits read as a bit pattern. */
static int parse_number(const char *s, size_t len, int64_t min, int64_t max, unsigned hex_digits,
			uint64_t *out_bits)
{
	int64_t v;
	int err;

	if (has_hex_prefix(s, len)) {
		return parse_hex_number(s, len, hex_digits, out_bits);
	}
	if ((err = parse_decimal(s, len, min, max, &v)) != 0) {
		return err;
	}
	*out_bits = (uint64_t)v;
	return 0;
}

/* ---- tags --------------------------------------------------------------- */

static bool tag_in_range(uint32_t tag)
{
	/* KMIP 1.4 §9.1.3.1: 0x42xxxx for KMIP, 0x54xxxx for extensions. */
	return (tag >> 16) == 0x42 || (tag >> 16) == 0x54;
}

int kmip_tv_tag_parse(const char *name, size_t name_len, uint32_t *out_tag)
{
	const struct kmip_tag_def *def;
	uint64_t v;
	int err;

	if (has_hex_prefix(name, name_len)) {
		if ((err = parse_hex_number(name, name_len, 6, &v)) != 0) {
			return err;
		}
		if (!tag_in_range((uint32_t)v)) {
			return KMIP_E_TAG;
		}
		*out_tag = (uint32_t)v;
		return 0;
	}
	if ((def = kmip_tag_by_name(name, name_len)) == NULL) {
		return KMIP_E_UNKNOWN_NAME;
	}
	*out_tag = def->tag;
	return 0;
}

const char *kmip_tv_tag_name(uint32_t tag)
{
	const struct kmip_tag_def *def = kmip_tag_def(tag);

	return def != NULL ? def->name : NULL;
}

void kmip_tv_track_attr(const struct kmip_node *sibling, const struct kmip_tag_def **attr)
{
	if (sibling->tag != KMIP_TV_TAG_ATTRIBUTE_NAME) {
		return;
	}
	*attr = NULL;
	if (sibling->type == KMIP_TYPE_TEXT_STRING && sibling->placeholder == NULL) {
		*attr = kmip_tag_by_title(sibling->v.text, sibling->len);
	}
}

const struct kmip_enum_def *kmip_tv_enum_def(uint32_t tag, uint8_t type,
					     const struct kmip_tag_def *attr)
{
	const struct kmip_tag_def *t =
	    tag == KMIP_TV_TAG_ATTRIBUTE_VALUE ? attr : kmip_tag_def(tag);
	const struct kmip_enum_def *def = t != NULL ? t->enum_def : NULL;

	if (def == NULL) {
		return NULL;
	}
	/* Enumerations are named; Integers only when they are masks (AME 1.0 §4.1.5). */
	if (type == KMIP_TYPE_ENUMERATION && !def->is_mask) {
		return def;
	}
	if (type == KMIP_TYPE_INTEGER && def->is_mask) {
		return def;
	}
	return NULL;
}

/* ---- nodes -------------------------------------------------------------- */

static bool is_fixed_size(uint8_t type)
{
	return type != KMIP_TYPE_STRUCTURE && type != KMIP_TYPE_TEXT_STRING &&
	       type != KMIP_TYPE_BYTE_STRING && type != KMIP_TYPE_BIG_INTEGER;
}

/* Counts |n| more bytes of TTLV against the message size limit. */
static int add_ttlv_len(struct kmip_tv_dec *d, size_t n)
{
	size_t padded = n + (8 - n % 8) % 8;

	if (padded < n || padded > d->max_len || d->ttlv_len > d->max_len - padded) {
		return KMIP_E_TOO_BIG;
	}
	d->ttlv_len += padded;
	return 0;
}

int kmip_tv_new_node(struct kmip_tv_dec *d, uint32_t tag, uint8_t type, unsigned depth,
		     struct kmip_node **out)
{
	const struct kmip_tag_def *def = kmip_tag_def(tag);
	struct kmip_node *n;
	int err;

	if (kmip_type_name(type) == NULL) {
		return KMIP_E_TYPE;
	}
	/* Tags whose type varies (Attribute Value) have type 0 in the tables. */
	if (def != NULL && def->type != 0 && def->type != type) {
		return KMIP_E_TYPE;
	}
	if (depth > d->max_depth) {
		return KMIP_E_DEPTH;
	}
	if ((err = add_ttlv_len(d, TTLV_HEADER_LEN + (is_fixed_size(type) ? 8 : 0))) != 0) {
		return err;
	}
	if ((n = kmip_arena_alloc(d->arena, sizeof(*n))) == NULL) {
		return KMIP_E_NOMEM;
	}
	memset(n, 0, sizeof(*n));
	n->tag = tag;
	n->type = type;
	*out = n;
	return 0;
}

void kmip_tv_add_child(struct kmip_node *parent, struct kmip_node ***link, struct kmip_node *child)
{
	**link = child;
	*link = &child->next;
	parent->len++;
}

/* ---- enumerations and masks --------------------------------------------- */

static int parse_enum(const char *s, size_t len, const struct kmip_enum_def *def, uint32_t *out)
{
	const struct kmip_enum_value *ev;
	uint64_t v;
	int err;

	if (has_hex_prefix(s, len)) {
		if ((err = parse_hex_number(s, len, 8, &v)) == 0) {
			*out = (uint32_t)v;
		}
		return err;
	}
	if (def == NULL || (ev = kmip_enum_by_name(def, s, len)) == NULL) {
		return KMIP_E_UNKNOWN_NAME;
	}
	*out = ev->value;
	return 0;
}

static bool is_mask_separator(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '|';
}

/*
 * A mask is names (or numbers) joined by spaces in XML and by '|' in JSON;
 * either separator is accepted, and repeats of it ("Decrypt   Encrypt").
 */
static int parse_mask(const char *s, size_t len, const struct kmip_enum_def *def, int32_t *out)
{
	uint32_t mask = 0;
	size_t i = 0;
	bool any = false;

	while (i < len) {
		size_t start;
		uint64_t v;
		int err;

		if (is_mask_separator(s[i])) {
			i++;
			continue;
		}
		for (start = i; i < len && !is_mask_separator(s[i]); i++) {
		}
		if ((err = parse_number(s + start, i - start, INT32_MIN, UINT32_MAX, 8, &v)) ==
		    KMIP_E_SYNTAX) {
			const struct kmip_enum_value *ev =
			    kmip_enum_by_name(def, s + start, i - start);

			if (ev == NULL) {
				return KMIP_E_UNKNOWN_NAME;
			}
			v = ev->value;
		} else if (err != 0) {
			return err;
		}
		mask |= (uint32_t)v;
		any = true;
	}
	if (!any) {
		return KMIP_E_SYNTAX;
	}
	*out = (int32_t)mask;
	return 0;
}

/* Names of the set bits, then any bits without a name in hex. */
static void format_mask(struct kmip_text_buf *b, uint32_t mask, const struct kmip_enum_def *def,
			char sep)
{
	uint32_t rest = mask;
	bool first = true;

	for (size_t i = 0; i < def->num_values; i++) {
		uint32_t bit = def->values[i].value;

		if (bit != 0 && (rest & bit) == bit) {
			if (!first) {
				kmip_text_append(b, &sep, 1);
			}
			kmip_text_append(b, def->values[i].name, strlen(def->values[i].name));
			rest &= ~bit;
			first = false;
		}
	}
	if (rest != 0) {
		if (!first) {
			kmip_text_append(b, &sep, 1);
		}
		kmip_text_appendf(b, "0x%08" PRIX32, rest);
	}
}

/* ---- ISO 8601 dates ----------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned day)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + day - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Reads exactly |n| digits at |*s|. */
static bool take_digits(const char **s, const char *end, unsigned n, unsigned *out)
{
	unsigned v = 0;

	if (end - *s < (ptrdiff_t)n) {
		return false;
	}
	for (unsigned i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9') {
			return false;
		}
		v = v * 10 + (unsigned)((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	return true;
}

static bool take_char(const char **s, const char *end, char c)
{
	if (*s == end || **s != c) {
		return false;
	}
	(*s)++;
	return true;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned char days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* An optional ".f" of one to six digits, as microseconds: more would be lost. */
static bool take_fraction(const char **s, const char *end, int64_t *micro)
{
	unsigned digits = 0;

	*micro = 0;
	if (!take_char(s, end, '.')) {
		return true;
	}
	while (*s < end && **s >= '0' && **s <= '9') {
		if (++digits > 6) {
			return false;
		}
		*micro = *micro * 10 + (**s - '0');
		(*s)++;
	}
	for (unsigned i = digits; i < 6; i++) {
		*micro *= 10;
	}
	return digits > 0;
}

/* "Z" or "+hh:mm" / "-hh:mm": seconds east of UTC. */
static bool take_zone(const char **s, const char *end, int64_t *out_offset)
{
	unsigned hh, mm;
	int sign;

	if (take_char(s, end, 'Z')) {
		*out_offset = 0;
		return true;
	}
	if (*s == end || (**s != '+' && **s != '-')) {
		return false;
	}
	sign = **s == '-' ? -1 : 1;
	(*s)++;
	if (!take_digits(s, end, 2, &hh) || !take_char(s, end, ':') ||
	    !take_digits(s, end, 2, &mm) || hh > 23 || mm > 59) {
		return false;
	}
	*out_offset = sign * (int64_t)(hh * 3600 + mm * 60);
	return true;
}

/*
 * "2012-04-27T08:12:24+00:00" (ISO 8601, as the test cases write it) into
 * seconds, or microseconds when |extended|. A fraction is allowed only then.
 */
static int parse_iso_date(const char *s, size_t len, bool extended, int64_t *out)
{
	const char *end = s + len;
	unsigned y, mo, d, h, mi, sec;
	int64_t micro = 0, zone;

	if (!take_digits(&s, end, 4, &y) || !take_char(&s, end, '-') ||
	    !take_digits(&s, end, 2, &mo) || !take_char(&s, end, '-') ||
	    !take_digits(&s, end, 2, &d) || !take_char(&s, end, 'T') ||
	    !take_digits(&s, end, 2, &h) || !take_char(&s, end, ':') ||
	    !take_digits(&s, end, 2, &mi) || !take_char(&s, end, ':') ||
	    !take_digits(&s, end, 2, &sec) || (extended && !take_fraction(&s, end, &micro)) ||
	    !take_zone(&s, end, &zone) || s != end) {
		return KMIP_E_SYNTAX;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
	    sec > 59) {
		return KMIP_E_RANGE;
	}
	*out =
	    days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec - zone;
	if (extended) {
		*out = *out * 1000000 + micro;
	}
	return 0;
}

/* Seconds (or microseconds) in years 0000-9999 as ISO 8601; hex beyond (AME 1.0 §4.1.1). */
static void format_date(struct kmip_text_buf *b, int64_t v, bool extended)
{
	/* 0000-01-01 and 10000-01-01, in seconds since 1970. */
	const int64_t min = -62167219200, max = 253402300800;
	int64_t secs = extended ? v / 1000000 : v;
	int64_t micro = extended ? v % 1000000 : 0;
	int64_t y, days, rem;
	unsigned m, d;

	if (micro < 0) {
		secs--;
		micro += 1000000;
	}
	if (secs < min || secs >= max) {
		kmip_text_appendf(b, "0x%016" PRIX64, (uint64_t)v);
		return;
	}
	days = (secs >= 0 ? secs : secs - 86399) / 86400;
	rem = secs - days * 86400;
	civil_from_days(days, &y, &m, &d);
	kmip_text_appendf(b, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u", y, m, d,
			  (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
	if (extended) {
		kmip_text_appendf(b, ".%06u", (unsigned)micro);
	}
	kmip_text_append(b, "+00:00", 6);
}

static int parse_date(const char *s, size_t len, bool extended, int64_t *out)
{
	uint64_t v;
	int err;

	if (has_hex_prefix(s, len)) {
		if ((err = parse_hex_number(s, len, 16, &v)) == 0) {
			*out = (int64_t)v;
		}
		return err;
	}
	return parse_iso_date(s, len, extended, out);
}

/* ---- values ------------------------------------------------------------- */

static int set_placeholder(struct kmip_tv_dec *d, struct kmip_node *n, const char *s, size_t len)
{
	if ((n->placeholder = kmip_arena_strndup(d->arena, s, len)) == NULL) {
		return KMIP_E_NOMEM;
	}
	return 0;
}

static int set_text_string(struct kmip_tv_dec *d, struct kmip_node *n, const char *s, size_t len)
{
	char *copy;

	if (len > UINT32_MAX) {
		return KMIP_E_TOO_BIG;
	}
	if (!kmip_utf8_valid((const uint8_t *)s, len)) {
		return KMIP_E_UTF8;
	}
	if ((copy = kmip_arena_strndup(d->arena, s, len)) == NULL) {
		return KMIP_E_NOMEM;
	}
	n->v.text = copy;
	n->len = (uint32_t)len;
	return add_ttlv_len(d, len);
}

static int set_bytes(struct kmip_tv_dec *d, struct kmip_node *n, const char *s, size_t len)
{
	int err;

	if (n->type == KMIP_TYPE_BIG_INTEGER && has_hex_prefix(s, len)) {
		s += 2, len -= 2;
	}
	if ((err = parse_hex_bytes(d, s, len, &n->v.bytes, &n->len)) != 0) {
		return err;
	}
	/* KMIP 1.4 §9.1.1.4: Big Integers are padded to whole 8-byte words. */
	if (n->type == KMIP_TYPE_BIG_INTEGER && n->len % 8 != 0) {
		return KMIP_E_LENGTH;
	}
	return add_ttlv_len(d, n->len);
}

static int set_bool(struct kmip_node *n, const char *s, size_t len)
{
	static const char zero[] = "0x0000000000000000", one[] = "0x0000000000000001";

	if ((len == 4 && memcmp(s, "true", 4) == 0) || (len == 18 && memcmp(s, one, 18) == 0)) {
		n->v.b = true;
	} else if ((len == 5 && memcmp(s, "false", 5) == 0) ||
		   (len == 18 && memcmp(s, zero, 18) == 0)) {
		n->v.b = false;
	} else {
		return KMIP_E_SYNTAX;
	}
	return 0;
}

/* The fixed-size numeric types from text. */
static int set_scalar(struct kmip_node *n, const char *s, size_t len,
		      const struct kmip_enum_def *def)
{
	uint64_t v = 0;
	int err;

	switch (n->type) {
	case KMIP_TYPE_INTEGER:
		if (def != NULL) {
			return parse_mask(s, len, def, &n->v.i32);
		}
		err = parse_number(s, len, INT32_MIN, INT32_MAX, 8, &v);
		n->v.i32 = (int32_t)(uint32_t)v;
		return err;
	case KMIP_TYPE_LONG_INTEGER:
		err = parse_number(s, len, INT64_MIN, INT64_MAX, 16, &v);
		n->v.i64 = (int64_t)v;
		return err;
	case KMIP_TYPE_INTERVAL:
		err = parse_number(s, len, 0, UINT32_MAX, 8, &v);
		n->v.u32 = (uint32_t)v;
		return err;
	case KMIP_TYPE_ENUMERATION:
		return parse_enum(s, len, def, &n->v.u32);
	case KMIP_TYPE_BOOLEAN:
		return set_bool(n, s, len);
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		return parse_date(s, len, n->type == KMIP_TYPE_DATE_TIME_EXTENDED, &n->v.i64);
	default:
		return KMIP_E_TYPE;
	}
}

int kmip_tv_set_text(struct kmip_tv_dec *d, struct kmip_node *n, const char *s, size_t len,
		     const struct kmip_enum_def *def)
{
	switch (n->type) {
	case KMIP_TYPE_TEXT_STRING:
		return set_text_string(d, n, s, len);
	case KMIP_TYPE_STRUCTURE:
		return KMIP_E_TYPE;
	default:
		break;
	}
	/* No other type's text starts with '$': it can only be a placeholder. */
	if (len > 0 && s[0] == '$') {
		return set_placeholder(d, n, s, len);
	}
	if (n->type == KMIP_TYPE_BYTE_STRING || n->type == KMIP_TYPE_BIG_INTEGER) {
		return set_bytes(d, n, s, len);
	}
	return set_scalar(n, s, len, def);
}

/* A Big Integer's 8-byte two's complement form of |v|. */
static int set_bigint_number(struct kmip_tv_dec *d, struct kmip_node *n, int64_t v)
{
	uint8_t *p = kmip_arena_alloc(d->arena, 8);

	if (p == NULL) {
		return KMIP_E_NOMEM;
	}
	kmip_store_be64(p, (uint64_t)v);
	n->v.bytes = p;
	n->len = 8;
	return add_ttlv_len(d, 8);
}

int kmip_tv_set_number(struct kmip_tv_dec *d, struct kmip_node *n, int64_t v)
{
	switch (n->type) {
	case KMIP_TYPE_INTEGER:
		if (v < INT32_MIN || v > INT32_MAX) {
			return KMIP_E_RANGE;
		}
		n->v.i32 = (int32_t)v;
		return 0;
	case KMIP_TYPE_ENUMERATION:
	case KMIP_TYPE_INTERVAL:
		if (v < 0 || v > UINT32_MAX) {
			return KMIP_E_RANGE;
		}
		n->v.u32 = (uint32_t)v;
		return 0;
	case KMIP_TYPE_LONG_INTEGER:
		n->v.i64 = v;
		return 0;
	case KMIP_TYPE_BIG_INTEGER:
		return set_bigint_number(d, n, v);
	default:
		return KMIP_E_TYPE;
	}
}

/* JSON numbers are doubles to many readers: exact only below 2^52 (AME 1.0 §4.1.5). */
static bool json_safe(int64_t v)
{
	return v > -(INT64_C(1) << 52) && v < (INT64_C(1) << 52);
}

/* A mask with no bits set has no names: it is written as the number 0. */
static bool mask_named(const struct kmip_node *n, const struct kmip_enum_def *def)
{
	return def != NULL && n->v.i32 != 0;
}

bool kmip_tv_json_bare(const struct kmip_node *n, const struct kmip_enum_def *def)
{
	switch (n->type) {
	case KMIP_TYPE_INTEGER:
		return !mask_named(n, def);
	case KMIP_TYPE_LONG_INTEGER:
		return json_safe(n->v.i64);
	case KMIP_TYPE_INTERVAL:
	case KMIP_TYPE_BOOLEAN:
		return true;
	default:
		return false;
	}
}

static void format_integer(struct kmip_text_buf *b, const struct kmip_node *n,
			   const struct kmip_enum_def *def, enum kmip_tv_style style)
{
	if (mask_named(n, def)) {
		format_mask(b, (uint32_t)n->v.i32, def, style == KMIP_TV_JSON ? '|' : ' ');
	} else {
		kmip_text_appendf(b, "%" PRId32, n->v.i32);
	}
}

static void format_enum(struct kmip_text_buf *b, const struct kmip_node *n,
			const struct kmip_enum_def *def)
{
	const struct kmip_enum_value *ev = def != NULL ? kmip_enum_value(def, n->v.u32) : NULL;

	if (ev != NULL) {
		kmip_text_append(b, ev->name, strlen(ev->name));
	} else {
		kmip_text_appendf(b, "0x%08" PRIX32, n->v.u32);
	}
}

static void format_long(struct kmip_text_buf *b, int64_t v, enum kmip_tv_style style)
{
	if (style == KMIP_TV_JSON && !json_safe(v)) {
		kmip_text_appendf(b, "0x%016" PRIX64, (uint64_t)v);
	} else {
		kmip_text_appendf(b, "%" PRId64, v);
	}
}

void kmip_tv_format(struct kmip_text_buf *b, const struct kmip_node *n,
		    const struct kmip_enum_def *def, enum kmip_tv_style style)
{
	switch (n->type) {
	case KMIP_TYPE_INTEGER:
		format_integer(b, n, def, style);
		break;
	case KMIP_TYPE_LONG_INTEGER:
		format_long(b, n->v.i64, style);
		break;
	case KMIP_TYPE_ENUMERATION:
		format_enum(b, n, def);
		break;
	case KMIP_TYPE_INTERVAL:
		kmip_text_appendf(b, "%" PRIu32, n->v.u32);
		break;
	case KMIP_TYPE_BOOLEAN:
		kmip_text_append(b, n->v.b ? "true" : "false", n->v.b ? 4 : 5);
		break;
	case KMIP_TYPE_BIG_INTEGER:
		if (style == KMIP_TV_JSON) {
			kmip_text_append(b, "0x", 2);
		}
		format_hex_bytes(b, n->v.bytes, n->len);
		break;
	case KMIP_TYPE_BYTE_STRING:
		format_hex_bytes(b, n->v.bytes, n->len);
		break;
	case KMIP_TYPE_DATE_TIME:
	case KMIP_TYPE_DATE_TIME_EXTENDED:
		format_date(b, n->v.i64, n->type == KMIP_TYPE_DATE_TIME_EXTENDED);
		break;
	default:
		break;
	}
}
