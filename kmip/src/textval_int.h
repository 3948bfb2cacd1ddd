/*
 * Private to libkmip: what the text encodings (xml.c, json.c, print.c) share,
 * so that a value has one text form whichever encoding carries it: tag
 * names, enumeration and mask names, hex, ISO 8601 dates, placeholders, and
 * the limits a decoded message must respect.
 */
#ifndef KEEL_TEXTVAL_INT_H
#define KEEL_TEXTVAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/kmip.h"

/* KMIP 1.4 §2.1.1: an Attribute's name names the tag its value would carry. */
#define KMIP_TV_TAG_ATTRIBUTE_NAME  0x42000Au
#define KMIP_TV_TAG_ATTRIBUTE_VALUE 0x42000Bu

/* Where a value's text goes: the forms differ in small ways (AME 1.0 §4.1.5, §6.1.5). */
enum kmip_tv_style {
	KMIP_TV_XML,   /* masks "Encrypt Decrypt", Big Integers as bare hex */
	KMIP_TV_JSON,  /* masks "Encrypt|Decrypt", Big and large Long Integers as "0x..." */
	KMIP_TV_PRINT, /* as XML */
};

/* State of one message being decoded from text. */
struct kmip_tv_dec {
	struct kmip_arena *arena;
	unsigned max_depth; /* the limits' depth, capped at KMIP_MAX_DEPTH */
	size_t max_len;	    /* the limits' message size */
	size_t ttlv_len;    /* size the message has so far as TTLV */
};

void kmip_tv_dec_init(struct kmip_tv_dec *d, const struct kmip_limits *lim,
		      struct kmip_arena *arena);

/* Parses a tag name ("BatchCount") or hex tag ("0x540001"). */
int kmip_tv_tag_parse(const char *name, size_t name_len, uint32_t *out_tag) KMIP_WUR;

/* The tag's name, or NULL when the tables have none (write it as hex). */
const char *kmip_tv_tag_name(uint32_t tag);

/* Keeps |*attr| as the tag named by the latest Attribute Name among siblings. */
void kmip_tv_track_attr(const struct kmip_node *sibling, const struct kmip_tag_def **attr);

/*
 * The enumeration whose names a value of |type| with |tag| is written with:
 * the tag's own, or for an Attribute Value the one of the tag |attr| named.
 * NULL when values are numbers.
 */
const struct kmip_enum_def *kmip_tv_enum_def(uint32_t tag, uint8_t type,
					     const struct kmip_tag_def *attr);

/*
 * Allocates a node for an item at |depth| (the message is depth 1), checking
 * the depth, the type against the tag's, and the size as TTLV.
 */
int kmip_tv_new_node(struct kmip_tv_dec *d, uint32_t tag, uint8_t type, unsigned depth,
		     struct kmip_node **out) KMIP_WUR;

/* Appends |child| to structure |parent|; |*link| starts at &parent->v.child. */
void kmip_tv_add_child(struct kmip_node *parent, struct kmip_node ***link, struct kmip_node *child);

/* Sets |n|'s value from its text form (|def| from kmip_tv_enum_def). */
int kmip_tv_set_text(struct kmip_tv_dec *d, struct kmip_node *n, const char *s, size_t len,
		     const struct kmip_enum_def *def) KMIP_WUR;

/* Sets |n|'s value from a JSON number, for the numeric types. */
int kmip_tv_set_number(struct kmip_tv_dec *d, struct kmip_node *n, int64_t v) KMIP_WUR;

/*
 * Appends the text of |n|'s value, which is not a Text String, a Structure
 * or a placeholder.
 */
void kmip_tv_format(struct kmip_text_buf *b, const struct kmip_node *n,
		    const struct kmip_enum_def *def, enum kmip_tv_style style);

/* Whether JSON writes |n|'s value as a bare number or literal rather than a string. */
bool kmip_tv_json_bare(const struct kmip_node *n, const struct kmip_enum_def *def);

#endif
