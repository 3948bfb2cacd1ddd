/*
 * XML as the KMIP XML profile writes it (KMIP Additional Message Encodings
 * 1.0 §6.1) and the OASIS test cases use it. libxml2 parses, with no network,
 * no DTD and no entity expansion; the writer is a few escaping rules.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <string.h>

#include "keel/kmip.h"
#include "kmip_int.h"
#include "textval_int.h"

/* ---- decoding ----------------------------------------------------------- */

/* The three attributes an element may carry (AME 1.0 §6.1.6). */
struct xml_attrs {
	const char *tag;
	const char *type;
	const char *value;
};

static const char *str(const xmlChar *s)
{
	return (const char *)s;
}

/* An attribute's text; entity references were refused with the DTD, so it is one text node. */
static int attr_text(const xmlAttr *a, const char **out)
{
	const xmlNode *t = a->children;

	if (t == NULL) {
		*out = "";
		return 0;
	}
	if (t->type != XML_TEXT_NODE || t->next != NULL || t->content == NULL) {
		return KMIP_E_SYNTAX;
	}
	*out = str(t->content);
	return 0;
}

/* Where attribute |name| goes in |at|, or NULL when an element may not carry it. */
static const char **attr_slot(struct xml_attrs *at, const char *name)
{
	if (strcmp(name, "tag") == 0) {
		return &at->tag;
	}
	if (strcmp(name, "type") == 0) {
		return &at->type;
	}
	return strcmp(name, "value") == 0 ? &at->value : NULL;
}

static int read_attrs(const xmlNode *el, struct xml_attrs *out)
{
	memset(out, 0, sizeof(*out));
	for (const xmlAttr *a = el->properties; a != NULL; a = a->next) {
		const char **slot = attr_slot(out, str(a->name));
		int err;

		if (a->ns != NULL || slot == NULL) {
			return KMIP_E_SYNTAX;
		}
		if ((err = attr_text(a, slot)) != 0) {
			return err;
		}
	}
	return 0;
}

/* <Name ...> by name, or <TTLV tag="0x540001" ...> for a tag without one. */
static int element_tag(const xmlNode *el, const struct xml_attrs *at, uint32_t *out)
{
	const char *name = str(el->name);

	if (el->ns != NULL) {
		return KMIP_E_SYNTAX;
	}
	if (strcmp(name, "TTLV") == 0) {
		if (at->tag == NULL) {
			return KMIP_E_SYNTAX;
		}
		return kmip_tv_tag_parse(at->tag, strlen(at->tag), out);
	}
	if (at->tag != NULL) {
		return KMIP_E_SYNTAX;
	}
	return kmip_tv_tag_parse(name, strlen(name), out);
}

static bool is_blank(const xmlChar *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
			return false;
		}
	}
	return true;
}

/* Whether |n| is layout or commentary between elements, which carries nothing. */
static int skippable(const xmlNode *n, bool *out)
{
	switch (n->type) {
	case XML_ELEMENT_NODE:
		*out = false;
		return 0;
	case XML_COMMENT_NODE:
	case XML_PI_NODE:
		*out = true;
		return 0;
	case XML_TEXT_NODE:
		*out = true;
		return is_blank(n->content) ? 0 : KMIP_E_SYNTAX;
	default: /* CDATA, entity references */
		return KMIP_E_SYNTAX;
	}
}

static int decode_element(struct kmip_tv_dec *d, const xmlNode *el, unsigned depth,
			  const struct kmip_tag_def *attr, struct kmip_node **out);

static int decode_children(struct kmip_tv_dec *d, const xmlNode *el, unsigned depth,
			   struct kmip_node *parent)
{
	const struct kmip_tag_def *attr = NULL;
	struct kmip_node **link = &parent->v.child;

	for (const xmlNode *c = el->children; c != NULL; c = c->next) {
		struct kmip_node *child;
		bool skip;
		int err;

		if ((err = skippable(c, &skip)) != 0) {
			return err;
		}
		if (skip) {
			continue;
		}
		if ((err = decode_element(d, c, depth + 1, attr, &child)) != 0) {
			return err;
		}
		kmip_tv_add_child(parent, &link, child);
		kmip_tv_track_attr(child, &attr);
	}
	return 0;
}

/* A primitive item: value= and nothing inside but layout. */
static int decode_value(struct kmip_tv_dec *d, const xmlNode *el, const struct xml_attrs *at,
			const struct kmip_tag_def *attr, struct kmip_node *n)
{
	for (const xmlNode *c = el->children; c != NULL; c = c->next) {
		bool skip;
		int err;

		if ((err = skippable(c, &skip)) != 0 || !skip) {
			return err != 0 ? err : KMIP_E_SYNTAX;
		}
	}
	if (at->value == NULL) {
		return KMIP_E_SYNTAX;
	}
	return kmip_tv_set_text(d, n, at->value, strlen(at->value),
				kmip_tv_enum_def(n->tag, n->type, attr));
}

static int decode_element(struct kmip_tv_dec *d, const xmlNode *el, unsigned depth,
			  const struct kmip_tag_def *attr, struct kmip_node **out)
{
	struct xml_attrs at;
	uint8_t type = KMIP_TYPE_STRUCTURE;
	uint32_t tag;
	int err;

	if ((err = read_attrs(el, &at)) != 0 || (err = element_tag(el, &at, &tag)) != 0) {
		return err;
	}
	if (at.type != NULL && (err = kmip_type_by_name(at.type, strlen(at.type), &type)) != 0) {
		return err;
	}
	if ((err = kmip_tv_new_node(d, tag, type, depth, out)) != 0) {
		return err;
	}
	if (type != KMIP_TYPE_STRUCTURE) {
		return decode_value(d, el, &at, attr, *out);
	}
	if (at.value != NULL) {
		return KMIP_E_SYNTAX;
	}
	return decode_children(d, el, depth, *out);
}

/*
 * Parses |text| into a document. No network, no DTD loading, no entity
 * substitution; and a document with a DTD at all is refused, so no entity
 * can be declared (billion laughs, external entities).
 */
static int parse_doc(const char *text, size_t len, xmlDoc **out)
{
	const int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
	xmlDoc *doc;

	if (len > INT_MAX) {
		return KMIP_E_TOO_BIG;
	}
	if ((doc = xmlReadMemory(text, (int)len, NULL, NULL, opts)) == NULL) {
		return KMIP_E_SYNTAX;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL || xmlDocGetRootElement(doc) == NULL) {
		xmlFreeDoc(doc);
		return KMIP_E_SYNTAX;
	}
	*out = doc;
	return 0;
}

static int decode_message(const xmlNode *el, const struct kmip_limits *lim,
			  struct kmip_arena *arena, struct kmip_node **out)
{
	struct kmip_tv_dec d;

	kmip_tv_dec_init(&d, lim, arena);
	return decode_element(&d, el, 1, NULL, out);
}

int kmip_xml_decode(const char *text, size_t len, const struct kmip_limits *lim,
		    struct kmip_arena *arena, struct kmip_node **out)
{
	xmlDoc *doc;
	int err;

	if ((err = parse_doc(text, len, &doc)) != 0) {
		return err;
	}
	err = decode_message(xmlDocGetRootElement(doc), lim, arena, out);
	xmlFreeDoc(doc);
	return err;
}

static int decode_messages(const xmlNode *root, const struct kmip_limits *lim,
			   struct kmip_arena *arena, struct kmip_node **out, size_t *out_num)
{
	struct kmip_node **link = out;

	*out = NULL;
	*out_num = 0;
	if (strcmp(str(root->name), "KMIP") != 0) {
		*out_num = 1;
		return decode_message(root, lim, arena, out);
	}
	for (const xmlNode *c = root->children; c != NULL; c = c->next) {
		int err;

		/* Text here is the test cases' "# TIME 0" notes, not data. */
		if (c->type != XML_ELEMENT_NODE) {
			continue;
		}
		if ((err = decode_message(c, lim, arena, link)) != 0) {
			return err;
		}
		link = &(*link)->next;
		(*out_num)++;
	}
	return 0;
}

int kmip_xml_decode_all(const char *text, size_t len, const struct kmip_limits *lim,
			struct kmip_arena *arena, struct kmip_node **out, size_t *out_num_msgs)
{
	xmlDoc *doc;
	int err;

	if ((err = parse_doc(text, len, &doc)) != 0) {
		return err;
	}
	err = decode_messages(xmlDocGetRootElement(doc), lim, arena, out, out_num_msgs);
	xmlFreeDoc(doc);
	return err;
}

/* ---- encoding ----------------------------------------------------------- */

/*
 * Escapes text for a double-quoted attribute. Tabs and line ends become
 * character references, which attribute normalisation keeps; other control
 * characters cannot appear in XML 1.0 at all.
 */
static int put_escaped(struct kmip_text_buf *b, const char *s, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *rep;

		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\t':
			rep = "&#x9;";
			break;
		case '\n':
			rep = "&#xA;";
			break;
		case '\r':
			rep = "&#xD;";
			break;
		default:
			if (c < 0x20) {
				return KMIP_E_RANGE;
			}
			continue;
		}
		kmip_text_append(b, s + start, i - start);
		kmip_text_append(b, rep, strlen(rep));
		start = i + 1;
	}
	kmip_text_append(b, s + start, len - start);
	return 0;
}

static void put_indent(struct kmip_text_buf *b, unsigned depth)
{
	static const char tabs[] = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";

	for (; depth > 16; depth -= 16) {
		kmip_text_append(b, tabs, 16);
	}
	kmip_text_append(b, tabs, depth);
}

/* "<Name" or "<TTLV tag="0x540001"", and the name to close with. */
static const char *open_element(struct kmip_text_buf *b, uint32_t tag)
{
	const char *name = kmip_tv_tag_name(tag);

	if (name == NULL) {
		kmip_text_appendf(b, "<TTLV tag=\"0x%06X\"", (unsigned)tag);
		return "TTLV";
	}
	kmip_text_appendf(b, "<%s", name);
	return name;
}

static int put_value(struct kmip_text_buf *b, const struct kmip_node *n,
		     const struct kmip_tag_def *attr)
{
	if (n->placeholder != NULL) {
		return put_escaped(b, n->placeholder, strlen(n->placeholder));
	}
	if (n->type == KMIP_TYPE_TEXT_STRING) {
		if (!kmip_utf8_valid((const uint8_t *)n->v.text, n->len)) {
			return KMIP_E_UTF8;
		}
		return put_escaped(b, n->v.text, n->len);
	}
	kmip_tv_format(b, n, kmip_tv_enum_def(n->tag, n->type, attr), KMIP_TV_XML);
	return 0;
}

static int encode_node(struct kmip_text_buf *b, const struct kmip_node *n, unsigned depth,
		       const struct kmip_tag_def *attr)
{
	const char *type = kmip_type_name(n->type);
	const char *name;
	int err;

	if (type == NULL) {
		return KMIP_E_TYPE;
	}
	put_indent(b, depth);
	name = open_element(b, n->tag);
	if (n->type != KMIP_TYPE_STRUCTURE) {
		kmip_text_appendf(b, " type=\"%s\" value=\"", type);
		if ((err = put_value(b, n, attr)) != 0) {
			return err;
		}
		kmip_text_append(b, "\"/>\n", 4);
		return 0;
	}
	if (n->v.child == NULL) {
		kmip_text_append(b, "/>\n", 3);
		return 0;
	}
	kmip_text_append(b, ">\n", 2);
	attr = NULL;
	for (const struct kmip_node *c = n->v.child; c != NULL; c = c->next) {
		if ((err = encode_node(b, c, depth + 1, attr)) != 0) {
			return err;
		}
		kmip_tv_track_attr(c, &attr);
	}
	put_indent(b, depth);
	kmip_text_appendf(b, "</%s>\n", name);
	return 0;
}

int kmip_xml_encode(struct kmip_text_buf *b, const struct kmip_node *node)
{
	int err = encode_node(b, node, 0, NULL);

	return err != 0 ? err : b->err;
}
