/*
 * libkmip: the KMIP protocol as data.
 *
 * TTLV reader and writer, a generic item tree, the KMIP tables (tags, types,
 * enumerations of KMIP 1.0-2.1), typed messages, and the XML and JSON
 * encodings. No sockets, files, clocks, threads, SQL or PKCS#11: time and
 * randomness are passed in by the caller.
 *
 * Errors: every fallible function returns 0 or a negative KMIP_E_* value.
 */
#ifndef KEEL_KMIP_H
#define KEEL_KMIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/kmip_spec.h" /* generated: tag, enumeration and mask constants */

#define KMIP_WUR __attribute__((warn_unused_result))

/* Errors. Each names the rule that was broken so a caller can log it. */
enum kmip_err {
	KMIP_OK = 0,
	KMIP_E_TRUNCATED = -1,	   /* fewer bytes than the header or length says */
	KMIP_E_TAG = -2,	   /* tag outside 0x420000-0x42FFFF and 0x540000-0x54FFFF */
	KMIP_E_TYPE = -3,	   /* unknown item type, or not the type expected */
	KMIP_E_LENGTH = -4,	   /* length wrong for a fixed-length type */
	KMIP_E_PADDING = -5,	   /* padding bytes not zero */
	KMIP_E_BOOLEAN = -6,	   /* Boolean other than 0 or 1 */
	KMIP_E_UTF8 = -7,	   /* Text String that is not valid UTF-8 */
	KMIP_E_DEPTH = -8,	   /* structures nested deeper than the limit */
	KMIP_E_TOO_BIG = -9,	   /* message larger than the limit */
	KMIP_E_TRAILING = -10,	   /* bytes left over after a complete item or structure */
	KMIP_E_UNEXPECTED = -11,   /* a tag where another was required */
	KMIP_E_MISSING = -12,	   /* a required field is absent */
	KMIP_E_NOMEM = -13,	   /* allocation failed or arena exhausted */
	KMIP_E_SYNTAX = -14,	   /* XML or JSON text that does not parse */
	KMIP_E_UNKNOWN_NAME = -15, /* a tag, type or enumeration name not in the tables */
	KMIP_E_RANGE = -16,	   /* a number out of range for its type */
	KMIP_E_STATE = -17,	   /* API misuse: unbalanced structures, writer already failed */
	KMIP_E_PLACEHOLDER = -18,  /* a test-case placeholder ("$NOW") where bytes are needed */
};

/* A short, constant description of a KMIP_E_* value. */
const char *kmip_strerror(int err);

/* KMIP item types (KMIP 1.4 §9.1.1.2). */
enum kmip_type {
	KMIP_TYPE_STRUCTURE = 0x01,
	KMIP_TYPE_INTEGER = 0x02,
	KMIP_TYPE_LONG_INTEGER = 0x03,
	KMIP_TYPE_BIG_INTEGER = 0x04,
	KMIP_TYPE_ENUMERATION = 0x05,
	KMIP_TYPE_BOOLEAN = 0x06,
	KMIP_TYPE_TEXT_STRING = 0x07,
	KMIP_TYPE_BYTE_STRING = 0x08,
	KMIP_TYPE_DATE_TIME = 0x09,
	KMIP_TYPE_INTERVAL = 0x0A,
	KMIP_TYPE_DATE_TIME_EXTENDED = 0x0B, /* KMIP 2.0 §9.1.1.2 */
};

/* The XML/JSON name of a type ("TextString"), or NULL if unknown. */
const char *kmip_type_name(uint8_t type);
/* Parses a type name; 0 or KMIP_E_UNKNOWN_NAME. */
int kmip_type_by_name(const char *name, size_t name_len, uint8_t *out_type) KMIP_WUR;

/* Limits the caller sets for everything it decodes. */
struct kmip_limits {
	size_t max_message_len; /* whole TTLV message, header included */
	unsigned max_depth;	/* structures inside structures; the message itself is depth 1 */
};

#define KMIP_MAX_DEPTH 32 /* hard ceiling on max_depth: the writer's stack size */

/* Defaults suited to a server: 1 MiB and 16 levels. */
extern const struct kmip_limits kmip_default_limits;

/* ---- TTLV reader: a non-owning view over bytes ------------------------- */

/*
 * A reader walks the items of one TTLV sequence (a message or the value of a
 * structure). Reads validate every TTLV rule; a failed read leaves the
 * reader unmoved.
 */
struct kmip_reader {
	const uint8_t *data;
	size_t len;
	unsigned depth;	    /* depth of the items this reader yields */
	unsigned max_depth; /* from the limits */
};

/* One item as read: for a structure, |value| is its undecoded contents. */
struct kmip_item {
	uint32_t tag;
	uint8_t type;
	const uint8_t *value;
	uint32_t value_len; /* unpadded length, as on the wire */
};

/*
 * Starts a reader over a whole message of |len| bytes. Fails with
 * KMIP_E_TOO_BIG when |len| exceeds the limit.
 */
int kmip_reader_init(struct kmip_reader *r, const uint8_t *data, size_t len,
		     const struct kmip_limits *lim) KMIP_WUR;

/* True when no bytes remain. */
bool kmip_reader_empty(const struct kmip_reader *r);

/* Reads the tag and type of the next item without moving. */
int kmip_reader_peek(const struct kmip_reader *r, uint32_t *out_tag, uint8_t *out_type) KMIP_WUR;

/* Reads the next item of any type, validating it (but not a structure's contents). */
int kmip_read_item(struct kmip_reader *r, struct kmip_item *out) KMIP_WUR;

/*
 * Reads a structure with |tag| and returns a reader over its contents, one
 * level deeper. The caller must consume the child exactly (see
 * kmip_reader_finish).
 */
int kmip_read_struct(struct kmip_reader *r, uint32_t tag, struct kmip_reader *out_child) KMIP_WUR;

/* Typed reads of the next item, which must carry |tag|. */
int kmip_read_int(struct kmip_reader *r, uint32_t tag, int32_t *out) KMIP_WUR;
int kmip_read_long(struct kmip_reader *r, uint32_t tag, int64_t *out) KMIP_WUR;
int kmip_read_enum(struct kmip_reader *r, uint32_t tag, uint32_t *out) KMIP_WUR;
int kmip_read_bool(struct kmip_reader *r, uint32_t tag, bool *out) KMIP_WUR;
int kmip_read_datetime(struct kmip_reader *r, uint32_t tag, int64_t *out) KMIP_WUR;
int kmip_read_interval(struct kmip_reader *r, uint32_t tag, uint32_t *out) KMIP_WUR;
/* Text, Byte and Big Integer values: a view into the reader's bytes, not a copy. */
int kmip_read_text(struct kmip_reader *r, uint32_t tag, const char **out, size_t *out_len) KMIP_WUR;
int kmip_read_bytes(struct kmip_reader *r, uint32_t tag, const uint8_t **out,
		    size_t *out_len) KMIP_WUR;

/* 0 if the reader is used up, KMIP_E_TRAILING otherwise. */
int kmip_reader_finish(const struct kmip_reader *r) KMIP_WUR;

/* ---- TTLV writer: a builder with pending lengths and a sticky error ----- */

/*
 * The writer appends items to a growable buffer (or to caller storage).
 * Structure lengths are left pending and filled in when the structure ends.
 * The first failure is remembered and every later call does nothing, so a
 * caller writes a whole message and checks once, at kmip_writer_finish.
 */
struct kmip_writer {
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t max_len;
	int err;
	bool fixed; /* caller storage: never reallocated or freed */
	unsigned depth;
	size_t open[KMIP_MAX_DEPTH]; /* offsets of pending structure headers */
};

/* A heap-backed writer that refuses to grow past |max_len| bytes. */
void kmip_writer_init(struct kmip_writer *w, size_t max_len);
/* A writer over caller storage of |cap| bytes. */
void kmip_writer_init_fixed(struct kmip_writer *w, uint8_t *buf, size_t cap);
/* Wipes and (for heap writers) frees the buffer. Accepts a zeroed writer. */
void kmip_writer_cleanup(struct kmip_writer *w);

void kmip_write_begin(struct kmip_writer *w, uint32_t tag); /* opens a structure */
void kmip_write_end(struct kmip_writer *w);		    /* closes the innermost one */
void kmip_write_int(struct kmip_writer *w, uint32_t tag, int32_t v);
void kmip_write_long(struct kmip_writer *w, uint32_t tag, int64_t v);
void kmip_write_enum(struct kmip_writer *w, uint32_t tag, uint32_t v);
void kmip_write_bool(struct kmip_writer *w, uint32_t tag, bool v);
void kmip_write_datetime(struct kmip_writer *w, uint32_t tag, int64_t v);
void kmip_write_datetime_ext(struct kmip_writer *w, uint32_t tag, int64_t v);
void kmip_write_interval(struct kmip_writer *w, uint32_t tag, uint32_t v);
/* Text must be valid UTF-8; anything else sets KMIP_E_UTF8. */
void kmip_write_text(struct kmip_writer *w, uint32_t tag, const char *s, size_t len);
void kmip_write_bytes(struct kmip_writer *w, uint32_t tag, const uint8_t *p, size_t len);
/* Big Integer: |len| must be a multiple of 8 (two's complement, big-endian). */
void kmip_write_bigint(struct kmip_writer *w, uint32_t tag, const uint8_t *p, size_t len);

/*
 * Ends writing: fails with the sticky error, or KMIP_E_STATE if a structure
 * is still open. On success |*out| points at the writer's buffer (still
 * owned by the writer) and |*out_len| is the message length.
 */
int kmip_writer_finish(struct kmip_writer *w, const uint8_t **out, size_t *out_len) KMIP_WUR;

/* ---- Arena: one allocation per decoded message -------------------------- */

/*
 * A bump allocator. It starts in caller storage when given some, and takes
 * heap blocks only when that runs out. Everything is wiped when cleaned up,
 * since decoded messages hold key material.
 */
struct kmip_arena_block;
struct kmip_arena {
	uint8_t *storage; /* caller storage, wiped but not freed */
	size_t storage_len;
	size_t storage_used; /* high-water mark in storage once heap blocks took over */
	uint8_t *base;
	size_t used;
	size_t cap;
	struct kmip_arena_block *blocks; /* heap blocks, newest first */
	size_t num_allocs;		 /* heap allocations made: measured by benchmarks */
};

void kmip_arena_init(struct kmip_arena *a, void *storage, size_t storage_len);
void kmip_arena_cleanup(struct kmip_arena *a);
/* |n| bytes aligned for any item type, or NULL. */
void *kmip_arena_alloc(struct kmip_arena *a, size_t n);
/*
 * Makes sure the next |n| bytes can be allocated without another heap
 * allocation, starting a block of that size now if needed. 0 or KMIP_E_NOMEM.
 */
int kmip_arena_reserve(struct kmip_arena *a, size_t n) KMIP_WUR;
/* A copy of |len| bytes followed by a NUL, or NULL. */
char *kmip_arena_strndup(struct kmip_arena *a, const char *s, size_t len);

/* ---- The item tree: every encoding's common form ------------------------ */

/*
 * One TTLV item. Text, Byte String and Big Integer values point either into
 * the decoded input or into the arena. Children of a structure form a list.
 */
struct kmip_node {
	uint32_t tag;
	uint8_t type;
	uint32_t len; /* bytes of text/bytes/bigint; number of children of a structure */
	union {
		int32_t i32;		 /* Integer */
		int64_t i64;		 /* Long Integer, Date-Time, Date-Time Extended */
		uint32_t u32;		 /* Enumeration, Interval */
		bool b;			 /* Boolean */
		const uint8_t *bytes;	 /* Byte String, Big Integer */
		const char *text;	 /* Text String (not NUL-terminated) */
		struct kmip_node *child; /* Structure: first child */
	} v;
	struct kmip_node *next; /* next sibling */
	/*
	 * XML placeholders such as "$NOW" or "$UNIQUE_IDENTIFIER_0" stand where
	 * a value would be; the tree carries them through unchanged.
	 */
	const char *placeholder;
};

/*
 * Decodes one whole TTLV message into a tree allocated from |arena|. The
 * tree points into |data|, which must outlive it. Exactly one item must fill
 * |len| bytes.
 */
int kmip_decode_tree(const uint8_t *data, size_t len, const struct kmip_limits *lim,
		     struct kmip_arena *arena, struct kmip_node **out) KMIP_WUR;

/* Appends |node| (and its subtree) to |w| as TTLV. Placeholders fail with KMIP_E_TYPE. */
void kmip_encode_tree(struct kmip_writer *w, const struct kmip_node *node);

/* First child of |parent| with |tag|, or NULL. */
const struct kmip_node *kmip_node_find(const struct kmip_node *parent, uint32_t tag);

/* ---- Tables (generated from kmip/spec/) --------------------------------- */

/* Bit set of protocol versions in which a tag or value exists. */
enum kmip_version_bit {
	KMIP_V1_0 = 1u << 0,
	KMIP_V1_1 = 1u << 1,
	KMIP_V1_2 = 1u << 2,
	KMIP_V1_3 = 1u << 3,
	KMIP_V1_4 = 1u << 4,
	KMIP_V2_0 = 1u << 5,
	KMIP_V2_1 = 1u << 6,
};

struct kmip_enum_value {
	uint32_t value;
	const char *name;  /* XML/JSON form: "SymmetricKey" */
	const char *title; /* the spec's words: "Symmetric Key" */
	uint16_t versions; /* KMIP_V* bits */
};

struct kmip_enum_def {
	const char *name; /* "ObjectType" */
	bool is_mask;	  /* values are bits of an Integer mask */
	const char *section;
	size_t num_values;
	const struct kmip_enum_value *values; /* sorted by value */
};

struct kmip_tag_def {
	uint32_t tag;
	uint8_t type;	   /* the type the spec gives; 0 where it varies (Attribute Value) */
	const char *name;  /* XML/JSON form: "ActivationDate" */
	const char *title; /* the spec's words, also the 1.x attribute name: "Activation Date" */
	const char *section;
	uint16_t versions;
	const struct kmip_enum_def *enum_def; /* values of an Enumeration, or bits of a mask */
};

/* Lookups over the generated tables; NULL when absent. Names are exact. */
const struct kmip_tag_def *kmip_tag_def(uint32_t tag);
const struct kmip_tag_def *kmip_tag_by_name(const char *name, size_t name_len);
const struct kmip_tag_def *kmip_tag_by_title(const char *title, size_t title_len);
const struct kmip_enum_value *kmip_enum_value(const struct kmip_enum_def *def, uint32_t value);
const struct kmip_enum_value *kmip_enum_by_name(const struct kmip_enum_def *def, const char *name,
						size_t name_len);
/* Every tag, sorted by tag number. */
extern const struct kmip_tag_def kmip_tag_defs[];
extern const size_t kmip_num_tag_defs;

/* ---- Typed structures and messages (kmip/src/msg.c, kmip/spec/structs) --- */
/* BEGIN typed messages: this section is owned by the typed-messages work. */

/*
 * Typed structures are driven by descriptors generated from
 * kmip/spec/structs.txt: one descriptor per structure, used by both
 * kmip_struct_decode and kmip_struct_encode so the two cannot drift.
 */

/* An element of a repeated Text String or Byte String/Big Integer field. */
struct kmip_text {
	const char *s; /* not NUL-terminated */
	size_t len;
};
struct kmip_bytes {
	const uint8_t *p;
	size_t len;
};

/* Field kinds beyond the TTLV types (KMIP_TYPE_*). */
enum kmip_field_kind {
	KMIP_KIND_ANY = 0x80,	  /* kept as a const struct kmip_node * */
	KMIP_KIND_PAYLOAD = 0x81, /* batch item payload: node, then typed by operation */
};

/* How often a field occurs (kmip/spec/structs.txt). */
enum kmip_occurs {
	KMIP_REQUIRED = 0,
	KMIP_OPTIONAL = 1,
	KMIP_REPEATED = 2,	 /* zero or more, consecutive */
	KMIP_AT_LEAST_ONE = 3,	 /* one or more, consecutive */
	KMIP_ONEOF = 4,		 /* a run of ONEOF fields: exactly one is present */
	KMIP_ONEOF_OPTIONAL = 5, /* a run of these: at most one is present */
};

struct kmip_struct_desc;

/* Facts about a field the walkers would otherwise work out from kind and occurs. */
enum kmip_field_flags {
	KMIP_FIELD_HAS = 1u << 0,      /* a has_ flag at |aux| (optional or oneof scalar) */
	KMIP_FIELD_LEN = 1u << 1,      /* a _len at |aux| (text, bytes, big integer) */
	KMIP_FIELD_REPEATED = 1u << 2, /* an array at |offset|, its num_ at |aux| */
	KMIP_FIELD_PTR = 1u << 3,      /* present when the pointer at |offset| is set */
	KMIP_FIELD_REQUIRED = 1u << 4, /* required, at-least-one, or in a required oneof */
};

/*
 * One field. |offset| locates the value (or the array of a repeated field);
 * |aux| locates its companion: the _len of text/bytes, the has_ flag of an
 * optional or oneof scalar, the num_ count of a repeated field, or the node
 * of a payload.
 */
struct kmip_field_desc {
	uint32_t tag;	   /* 0 matches any tag */
	uint8_t kind;	   /* KMIP_TYPE_* or KMIP_KIND_* */
	uint8_t occurs;	   /* enum kmip_occurs */
	uint16_t versions; /* KMIP_V* bits */
	uint16_t offset;
	uint16_t aux;
	uint8_t flags; /* enum kmip_field_flags */
	uint8_t group; /* fields in the oneof group this field starts; 1 outside groups */
	const struct kmip_struct_desc *sub; /* kind KMIP_TYPE_STRUCTURE */
};

struct kmip_struct_desc {
	const char *name;    /* "GetRequest" */
	const char *section; /* "1.4 §4.11, 2.0 §6.1" */
	uint32_t tag;	     /* written by kmip_struct_encode at the top level */
	uint16_t size;	     /* sizeof the C struct */
	uint16_t num_fields;
	const struct kmip_field_desc *fields;
};

/* The payloads of one operation; NULL where a payload stays undecoded. */
struct kmip_operation_desc {
	uint32_t operation; /* KMIP_OPERATION_*; 0 marks an unused slot */
	uint16_t versions;
	const struct kmip_struct_desc *request;
	const struct kmip_struct_desc *response;
};

#include "keel/kmip_structs.h" /* generated: the C structs and their descriptors */

/* The descriptors of |operation|, or NULL if it has none (not supported). */
const struct kmip_operation_desc *kmip_operation_desc(uint32_t operation);

/* The KMIP_V* bit of a protocol version, or 0 for a version not in the tables. */
uint16_t kmip_version_bit(int32_t major, int32_t minor);

/*
 * Where a decode failed, so a server can answer Invalid Field / Invalid
 * Message with a precise Result Message. |tag| is the field at fault (the
 * unexpected item, or the missing field); |batch_index| is the batch item
 * (from 0), or -1 outside the batch items.
 */
struct kmip_decode_error {
	int err;
	uint32_t tag;
	int batch_index;
};

/*
 * Decodes the children of the structure |node| into |out|, a zeroed struct of
 * desc->size bytes, checking order, types, occurrence and, unless |version|
 * is 0, that each field exists in that KMIP_V* version. Sub-structures and
 * arrays come from |arena|; values point into the tree. On failure
 * |out_err| (if not NULL) says where. Errors: KMIP_E_TYPE, KMIP_E_UNEXPECTED
 * (unknown, misplaced or wrong-version tag), KMIP_E_MISSING, KMIP_E_NOMEM,
 * KMIP_E_PLACEHOLDER.
 */
int kmip_struct_decode(const struct kmip_struct_desc *desc, const struct kmip_node *node,
		       uint16_t version, struct kmip_arena *arena, void *out,
		       struct kmip_decode_error *out_err) KMIP_WUR;

/*
 * Writes |in| as the structure desc->tag, fields in descriptor order. A
 * missing required field fails with KMIP_E_MISSING and a field absent from
 * |version| (unless 0) with KMIP_E_UNEXPECTED; the error is also left sticky
 * in |w|.
 */
int kmip_struct_encode(struct kmip_writer *w, const struct kmip_struct_desc *desc, const void *in,
		       uint16_t version) KMIP_WUR;

/*
 * Decodes a whole Request Message into typed header and batch items, reading
 * the TTLV once with the same validating reader as kmip_decode_tree. Each
 * payload is typed by its operation's descriptor (item->request_payload);
 * an operation without one leaves it NULL and keeps the payload as a tree
 * (item->request_payload_node), so a server can answer Operation Not
 * Supported. Batch Count must match the items. All memory comes from
 * |arena|: when it has no storage yet, its first block is sized from |len| so
 * one heap allocation serves the whole message. |data| must outlive |*out|.
 */
int kmip_request_decode(const uint8_t *data, size_t len, const struct kmip_limits *lim,
			struct kmip_arena *arena, struct kmip_request_message **out,
			struct kmip_decode_error *out_err) KMIP_WUR;

/* The same for a Response Message (Operation may be absent from an item). */
int kmip_response_decode(const uint8_t *data, size_t len, const struct kmip_limits *lim,
			 struct kmip_arena *arena, struct kmip_response_message **out,
			 struct kmip_decode_error *out_err) KMIP_WUR;

/*
 * Appends |msg| to |w| in the header's protocol version. Each payload is
 * written from its typed form when set, else from its node.
 */
int kmip_request_encode(struct kmip_writer *w, const struct kmip_request_message *msg) KMIP_WUR;
int kmip_response_encode(struct kmip_writer *w, const struct kmip_response_message *msg) KMIP_WUR;

/* END typed messages */

/* ---- Text encodings: XML, JSON, pretty text (kmip/src/xml.c, json.c, print.c) */
/* BEGIN text encodings: this section is owned by the text-encodings work. */
/*
 * A growable text buffer with a ceiling and a sticky error, for the text
 * encodings' output. It may hold key material, so it is wiped whenever it is
 * freed or reset. Appends after a failure do nothing; check once at the end.
 */
struct kmip_text_buf {
	char *data; /* NUL-terminated while err == 0; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max_len; /* refuses to hold more than this many bytes */
	int err;	/* first failure: KMIP_E_TOO_BIG or KMIP_E_NOMEM */
};

void kmip_text_buf_init(struct kmip_text_buf *b, size_t max_len);
/* Wipes and frees the contents. Accepts a zeroed buffer. */
void kmip_text_buf_cleanup(struct kmip_text_buf *b);
/* Wipes the contents and clears the error, keeping the memory for reuse. */
void kmip_text_buf_reset(struct kmip_text_buf *b);
void kmip_text_append(struct kmip_text_buf *b, const char *s, size_t len);
void kmip_text_appendf(struct kmip_text_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * XML, as the KMIP XML profile and the OASIS test cases write it
 * (KMIP Additional Message Encodings 1.0 §6): <Tag type="Integer" value="1"/>,
 * structures without type=, enumerations and masks by name, unknown tags as
 * <TTLV tag="0x540001" ...>.
 *
 * Decoding copies every string into |arena|, so the tree outlives |text|. A
 * value that starts with '$' where text is not allowed ("$NOW",
 * "$UNIQUE_IDENTIFIER_0" as a Byte String) is a test-case placeholder: it is
 * kept in node->placeholder and the value is zero. Text Strings are always
 * text, placeholder-looking or not. |lim| bounds depth and the size the
 * message would have as TTLV. DTDs and entity declarations are refused.
 * Errors: KMIP_E_SYNTAX (not well-formed, unexpected attribute or text),
 * KMIP_E_UNKNOWN_NAME (tag, type or enumeration name), KMIP_E_TYPE (type not
 * the tag's), KMIP_E_RANGE, KMIP_E_LENGTH (Big Integer not whole 8-byte
 * words), KMIP_E_UTF8, KMIP_E_DEPTH, KMIP_E_TOO_BIG, KMIP_E_NOMEM.
 *
 * The caller bounds |len|: libxml2 builds the whole document before the
 * limits apply. libxml2 and jansson free their copies of the text without
 * wiping them; a process that decodes keys from text should install wiping
 * allocators (xmlMemSetup, json_set_alloc_funcs) at start-up.
 */
int kmip_xml_decode(const char *text, size_t len, const struct kmip_limits *lim,
		    struct kmip_arena *arena, struct kmip_node **out) KMIP_WUR;

/*
 * Decodes an OASIS test-case file: every element under the <KMIP> root (or
 * the root itself when it is not <KMIP>), in document order, as a list of
 * messages linked through node->next. Text and comments between them
 * ("# TIME 0") are skipped. |lim| applies to each message.
 */
int kmip_xml_decode_all(const char *text, size_t len, const struct kmip_limits *lim,
			struct kmip_arena *arena, struct kmip_node **out,
			size_t *out_num_msgs) KMIP_WUR;

/*
 * Appends |node| and its subtree as indented XML (tabs, one element a line).
 * Fails with KMIP_E_RANGE for text XML 1.0 cannot carry (control
 * characters), KMIP_E_TYPE for an unknown item type, or the buffer's error.
 */
int kmip_xml_encode(struct kmip_text_buf *b, const struct kmip_node *node) KMIP_WUR;

/*
 * JSON, as the KMIP JSON profile writes it (KMIP Additional Message Encodings
 * 1.0 §4): {"tag":"BatchCount","type":"Integer","value":1}, structures as
 * {"tag":...,"value":[...]}, masks as "Encrypt|Decrypt", Long Integers as
 * numbers up to 2^52 and "0x..." beyond, Big Integers as "0x..." hex.
 * Decoding accepts what encoding writes, plus numbers where the profile
 * allows them and strings in the XML forms. Placeholders, limits and errors
 * as for XML.
 */
int kmip_json_decode(const char *text, size_t len, const struct kmip_limits *lim,
		     struct kmip_arena *arena, struct kmip_node **out) KMIP_WUR;
/* Appends |node| as one line of JSON. Errors as kmip_xml_encode, without the XML limits. */
int kmip_json_encode(struct kmip_text_buf *b, const struct kmip_node *node) KMIP_WUR;

/*
 * Appends a text form for people reading a capture, one item a line:
 * "  BatchCount (Integer): 1", enumerations by name, bytes in hex, dates in
 * ISO 8601. Output only: there is no parser for it. Byte Strings are printed
 * in full, key material included: keep it away from logs.
 */
int kmip_print(struct kmip_text_buf *b, const struct kmip_node *node) KMIP_WUR;
/* END text encodings */

#endif /* KEEL_KMIP_H */
