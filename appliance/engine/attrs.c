/*
 * Attribute rules (KMIP 1.4 §3, "Rules for KMIP Objects" rows of each
 * attribute): which a client may set at creation, which it may add, modify
 * or delete, which are multi-instance, which live in the object row. Custom
 * attributes "x-" belong to clients, "y-" to the server (§3.39).
 *
 * Values are stored as the TTLV of the value item tagged Attribute Value,
 * so any type round-trips; Names and text custom attributes also carry a
 * text form that the store indexes for Locate.
 */
#include "engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const struct attr_rule rules[] = {
    {"Unique Identifier", KMIP_TAG_UNIQUE_IDENTIFIER, KMIP_TYPE_TEXT_STRING, ATTR_OBJECT},
    {"Name", KMIP_TAG_NAME, KMIP_TYPE_STRUCTURE, ATTR_CREATE | ATTR_MODIFY | ATTR_MULTI},
    {"Object Type", KMIP_TAG_OBJECT_TYPE, KMIP_TYPE_ENUMERATION, ATTR_OBJECT},
    {"Cryptographic Algorithm", KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_TYPE_ENUMERATION,
     ATTR_CREATE},
    {"Cryptographic Length", KMIP_TAG_CRYPTOGRAPHIC_LENGTH, KMIP_TYPE_INTEGER, ATTR_CREATE},
    {"Cryptographic Usage Mask", KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, KMIP_TYPE_INTEGER, ATTR_CREATE},
    {"State", KMIP_TAG_STATE, KMIP_TYPE_ENUMERATION, ATTR_OBJECT},
    {"Initial Date", KMIP_TAG_INITIAL_DATE, KMIP_TYPE_DATE_TIME, ATTR_OBJECT},
    {"Activation Date", KMIP_TAG_ACTIVATION_DATE, KMIP_TYPE_DATE_TIME, ATTR_OBJECT | ATTR_CREATE},
    /* A client may schedule deactivation at creation (§3.27). */
    {"Deactivation Date", KMIP_TAG_DEACTIVATION_DATE, KMIP_TYPE_DATE_TIME,
     ATTR_OBJECT | ATTR_CREATE},
    {"Destroy Date", KMIP_TAG_DESTROY_DATE, KMIP_TYPE_DATE_TIME, ATTR_OBJECT},
    {"Compromise Occurrence Date", KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, KMIP_TYPE_DATE_TIME,
     ATTR_OBJECT},
    {"Compromise Date", KMIP_TAG_COMPROMISE_DATE, KMIP_TYPE_DATE_TIME, ATTR_OBJECT},
    {"Revocation Reason", KMIP_TAG_REVOCATION_REASON, KMIP_TYPE_STRUCTURE, 0},
    {"Object Group", KMIP_TAG_OBJECT_GROUP, KMIP_TYPE_TEXT_STRING,
     ATTR_CREATE | ATTR_MODIFY | ATTR_MULTI},
    {"Contact Information", KMIP_TAG_CONTACT_INFORMATION, KMIP_TYPE_TEXT_STRING,
     ATTR_CREATE | ATTR_MODIFY},
    {"Last Change Date", KMIP_TAG_LAST_CHANGE_DATE, KMIP_TYPE_DATE_TIME, ATTR_OBJECT},
    /* Set by client or server, changeable, several instances (§3.35). */
    {"Link", KMIP_TAG_LINK, KMIP_TYPE_STRUCTURE, ATTR_CREATE | ATTR_MODIFY | ATTR_MULTI},
    /* Derived by the server from a registered certificate (§3.8-3.11, §3.17). */
    {"Certificate Type", KMIP_TAG_CERTIFICATE_TYPE, KMIP_TYPE_ENUMERATION, 0},
    {"Certificate Length", KMIP_TAG_CERTIFICATE_LENGTH, KMIP_TYPE_INTEGER, 0},
    {"Certificate Identifier", KMIP_TAG_CERTIFICATE_IDENTIFIER, KMIP_TYPE_STRUCTURE, 0},
    {"Certificate Subject", KMIP_TAG_CERTIFICATE_SUBJECT, KMIP_TYPE_STRUCTURE, 0},
    {"Certificate Issuer", KMIP_TAG_CERTIFICATE_ISSUER, KMIP_TYPE_STRUCTURE, 0},
    {"Digest", KMIP_TAG_DIGEST, KMIP_TYPE_STRUCTURE, ATTR_MULTI},
    /* Usage Limits (§3.21): a client may set them; Get Usage Allocation spends them. */
    {"Usage Limits", KMIP_TAG_USAGE_LIMITS, KMIP_TYPE_STRUCTURE, ATTR_CREATE | ATTR_MODIFY},
    {"Archive Date", KMIP_TAG_ARCHIVE_DATE, KMIP_TYPE_DATE_TIME, 0},
    /* Set by the client at creation, some changeable later (§3.6, §3.7, §3.18, §3.25,
     * §3.26, §3.36, §3.40, §3.42, §3.44, §3.45, §3.48-§3.51, §3.53). Operation Policy
     * Name is kept as given: Keel has no policy engine, ownership decides access. */
    {"Cryptographic Parameters", KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS, KMIP_TYPE_STRUCTURE,
     ATTR_CREATE | ATTR_MODIFY | ATTR_MULTI},
    {"Cryptographic Domain Parameters", KMIP_TAG_CRYPTOGRAPHIC_DOMAIN_PARAMETERS,
     KMIP_TYPE_STRUCTURE, ATTR_CREATE},
    {"Operation Policy Name", KMIP_TAG_OPERATION_POLICY_NAME, KMIP_TYPE_TEXT_STRING,
     ATTR_CREATE | ATTR_MODIFY},
    {"Process Start Date", KMIP_TAG_PROCESS_START_DATE, KMIP_TYPE_DATE_TIME,
     ATTR_CREATE | ATTR_MODIFY},
    {"Protect Stop Date", KMIP_TAG_PROTECT_STOP_DATE, KMIP_TYPE_DATE_TIME,
     ATTR_CREATE | ATTR_MODIFY},
    {"Application Specific Information", KMIP_TAG_APPLICATION_SPECIFIC_INFORMATION,
     KMIP_TYPE_STRUCTURE, ATTR_CREATE | ATTR_MODIFY | ATTR_MULTI},
    {"Alternative Name", KMIP_TAG_ALTERNATIVE_NAME, KMIP_TYPE_STRUCTURE,
     ATTR_CREATE | ATTR_MODIFY | ATTR_MULTI},
    {"Key Value Location", KMIP_TAG_KEY_VALUE_LOCATION, KMIP_TYPE_STRUCTURE,
     ATTR_CREATE | ATTR_MULTI},
    {"Original Creation Date", KMIP_TAG_ORIGINAL_CREATION_DATE, KMIP_TYPE_DATE_TIME, ATTR_CREATE},
    {"Random Number Generator", KMIP_TAG_RANDOM_NUMBER_GENERATOR, KMIP_TYPE_STRUCTURE, ATTR_CREATE},
    {"PKCS#12 Friendly Name", KMIP_TAG_PKCS_12_FRIENDLY_NAME, KMIP_TYPE_TEXT_STRING,
     ATTR_CREATE | ATTR_MODIFY},
    {"Description", KMIP_TAG_DESCRIPTION, KMIP_TYPE_TEXT_STRING, ATTR_CREATE | ATTR_MODIFY},
    {"Comment", KMIP_TAG_COMMENT, KMIP_TYPE_TEXT_STRING, ATTR_CREATE | ATTR_MODIFY},
    {"Sensitive", KMIP_TAG_SENSITIVE, KMIP_TYPE_BOOLEAN, ATTR_CREATE | ATTR_MODIFY},
    {"Extractable", KMIP_TAG_EXTRACTABLE, KMIP_TYPE_BOOLEAN, ATTR_CREATE | ATTR_MODIFY},
    /* Fresh may come from the client at creation (§3.34); the rest are the server's. */
    {"Fresh", KMIP_TAG_FRESH, KMIP_TYPE_BOOLEAN, ATTR_CREATE},
    {"Lease Time", KMIP_TAG_LEASE_TIME, KMIP_TYPE_INTERVAL, ATTR_OBJECT},
    {"Key Value Present", KMIP_TAG_KEY_VALUE_PRESENT, KMIP_TYPE_BOOLEAN, 0},
    {"Always Sensitive", KMIP_TAG_ALWAYS_SENSITIVE, KMIP_TYPE_BOOLEAN, 0},
    {"Never Extractable", KMIP_TAG_NEVER_EXTRACTABLE, KMIP_TYPE_BOOLEAN, 0},
};
#define NUM_RULES (sizeof(rules) / sizeof(rules[0]))

static const struct attr_rule custom_client = {
    "x-", 0, 0, ATTR_CREATE | ATTR_MODIFY | ATTR_MULTI | ATTR_CUSTOM};
static const struct attr_rule custom_server = {"y-", 0, 0, ATTR_MULTI | ATTR_CUSTOM};

const struct attr_rule *attr_rule_by_name(const char *name, size_t len)
{
	if (len > 2 && name[1] == '-' && (name[0] == 'x' || name[0] == 'y')) {
		return name[0] == 'x' ? &custom_client : &custom_server;
	}
	for (size_t i = 0; i < NUM_RULES; i++) {
		if (strlen(rules[i].name) == len && memcmp(rules[i].name, name, len) == 0) {
			return &rules[i];
		}
	}
	return NULL;
}

const struct attr_rule *attr_rule_by_tag(uint32_t tag)
{
	for (size_t i = 0; i < NUM_RULES; i++) {
		if (rules[i].tag == tag) {
			return &rules[i];
		}
	}
	return NULL;
}

char *eng_strdup(struct eng_req *r, const char *s, size_t len)
{
	return kmip_arena_strndup(r->arena, s, len);
}

struct kmip_node *eng_node(struct eng_req *r, uint32_t tag, uint8_t type)
{
	struct kmip_node *n = kmip_arena_alloc(r->arena, sizeof(*n));

	if (n != NULL) {
		memset(n, 0, sizeof(*n));
		n->tag = tag;
		n->type = type;
	}
	return n;
}

void *eng_alloc(struct eng_req *r, size_t size)
{
	void *p = kmip_arena_alloc(r->arena, size);

	if (p != NULL) {
		memset(p, 0, size);
	}
	return p;
}

/* Checks a value against its rule: a known attribute's type is fixed (§3). */
static int attr_check(struct eng_req *r, const char *name, const struct attr_rule *rule,
		      const struct kmip_node *value)
{
	if (rule == NULL) {
		keel_debug("engine: unsupported attribute \"%s\"", name);
		return eng_fail(r, ENG_E_INVALID_FIELD, "unsupported attribute");
	}
	if (value == NULL || (rule->type != 0 && value->type != rule->type) ||
	    (rule->type == 0 && value->type == KMIP_TYPE_STRUCTURE)) {
		return eng_fail(r, ENG_E_INVALID_FIELD, "attribute value of the wrong type");
	}
	return 0;
}

int attr_from_v1(struct eng_req *r, const struct kmip_attribute *a, struct eng_attr *out)
{
	memset(out, 0, sizeof(*out));
	if ((out->name = eng_strdup(r, a->attribute_name, a->attribute_name_len)) == NULL) {
		return ENG_E_INTERNAL;
	}
	out->rule = attr_rule_by_name(a->attribute_name, a->attribute_name_len);
	out->has_index = a->has_attribute_index;
	out->index = a->attribute_index;
	out->value = a->attribute_value;
	return attr_check(r, out->name, out->rule, out->value);
}

/* A 2.x custom attribute: Attribute {Vendor Identification, Attribute Name, Value}. */
static int attr_from_vendor(struct eng_req *r, const struct kmip_node *n, struct eng_attr *out)
{
	const struct kmip_node *vid = kmip_node_find(n, KMIP_TAG_VENDOR_IDENTIFICATION);
	const struct kmip_node *an = kmip_node_find(n, KMIP_TAG_ATTRIBUTE_NAME);
	char buf[256];
	int len;

	if (vid == NULL || an == NULL || vid->type != KMIP_TYPE_TEXT_STRING ||
	    an->type != KMIP_TYPE_TEXT_STRING) {
		return eng_fail(r, ENG_E_INVALID_FIELD, "Attribute Name missing");
	}
	len = snprintf(buf, sizeof(buf), "%.*s-%.*s", (int)vid->len, vid->v.text, (int)an->len,
		       an->v.text);
	if (len < 0 || (size_t)len >= sizeof(buf) ||
	    (out->name = eng_strdup(r, buf, (size_t)len)) == NULL) {
		return eng_fail(r, ENG_E_INVALID_FIELD, "Attribute Name too long");
	}
	out->rule = attr_rule_by_name(buf, (size_t)len);
	out->value = kmip_node_find(n, KMIP_TAG_ATTRIBUTE_VALUE);
	return attr_check(r, out->name, out->rule, out->value);
}

int attr_from_v2(struct eng_req *r, const struct kmip_node *n, struct eng_attr *out)
{
	const struct kmip_tag_def *def;

	memset(out, 0, sizeof(*out));
	if (n->tag == KMIP_TAG_ATTRIBUTE) {
		return attr_from_vendor(r, n, out);
	}
	out->rule = attr_rule_by_tag(n->tag);
	def = kmip_tag_def(n->tag);
	out->name = out->rule != NULL ? out->rule->name : def != NULL ? def->title : "unknown";
	out->value = n;
	return attr_check(r, out->name, out->rule, out->value);
}

int attr_collect(struct eng_req *r, const struct kmip_template_attribute *ta,
		 const struct kmip_attributes *as, struct eng_attr **out, size_t *out_num)
{
	size_t n = ta != NULL ? ta->num_attribute : as != NULL ? as->num_attributes : 0;
	struct eng_attr *arr = eng_alloc(r, (n != 0 ? n : 1) * sizeof(*arr));
	int err = 0;

	if (arr == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < n && err == 0; i++) {
		err = ta != NULL ? attr_from_v1(r, &ta->attribute[i], &arr[i])
				 : attr_from_v2(r, as->attributes[i], &arr[i]);
	}
	if (err == 0 && ta != NULL && ta->num_names != 0) {
		return eng_template_expand(r, ta->names, ta->num_names, arr, n, out, out_num);
	}
	*out = arr;
	*out_num = n;
	return err;
}

/* The searchable text of a value: a text string, or a Name's Name Value. */
static const char *value_text(struct eng_req *r, const struct kmip_node *v)
{
	const struct kmip_node *nv = v;

	if (v->type == KMIP_TYPE_STRUCTURE) {
		nv = kmip_node_find(v, KMIP_TAG_NAME_VALUE);
	}
	if (nv == NULL || nv->type != KMIP_TYPE_TEXT_STRING) {
		return NULL;
	}
	return eng_strdup(r, nv->v.text, nv->len);
}

int attr_encode_value(struct eng_req *r, const struct kmip_node *value, uint8_t **out,
		      size_t *out_len, const char **out_text)
{
	struct kmip_node copy = *value;
	struct kmip_writer w;
	const uint8_t *p;
	size_t n;
	int err = 0;

	copy.tag = KMIP_TAG_ATTRIBUTE_VALUE;
	copy.next = NULL;
	kmip_writer_init(&w, r->e->lim.max_message_len);
	kmip_encode_tree(&w, &copy);
	if (kmip_writer_finish(&w, &p, &n) != 0 || (*out = malloc(n)) == NULL) {
		err = eng_fail(r, ENG_E_INVALID_FIELD, "attribute value not encodable");
		goto out;
	}
	memcpy(*out, p, n);
	*out_len = n;
	*out_text = value_text(r, value);
out:
	kmip_writer_cleanup(&w);
	return err;
}

/* Takes |sa| (and its value) into r->batch. */
static int batch_push(struct eng_req *r, struct keel_store_attr *sa)
{
	struct eng_attr_batch *b = r->batch;

	if (b->num == b->cap) {
		size_t ncap = b->cap != 0 ? b->cap * 2 : 16;
		struct keel_store_attr *n = realloc(b->attrs, ncap * sizeof(*n));

		if (n == NULL) {
			free(sa->value);
			return ENG_E_INTERNAL;
		}
		b->attrs = n;
		b->cap = ncap;
	}
	b->attrs[b->num++] = *sa;
	return 0;
}

/* The engine's error for a store error while writing attributes. */
static int attr_store_err(struct eng_req *r, int err)
{
	if (err == KEEL_STORE_E_NOT_FOUND) {
		return eng_fail(r, ENG_E_ATTR_NOT_FOUND, NULL);
	}
	if (err == KEEL_STORE_E_EXISTS) {
		return eng_fail(r, ENG_E_SINGLE_VALUED, NULL);
	}
	return err != 0 ? eng_store_err(r, err, "saving attribute") : 0;
}

int attr_save(struct eng_req *r, const char *uid, const struct eng_attr *a, int32_t index,
	      bool update)
{
	struct keel_store_attr sa = {.name = (char *)a->name, .index = index};
	const char *text = NULL;
	int err;

	if ((err = attr_encode_value(r, a->value, &sa.value, &sa.value_len, &text)) != 0) {
		return err;
	}
	sa.text = (char *)text;
	if (!update && r->batch != NULL) {
		return batch_push(r, &sa);
	}
	err = update ? keel_store_attr_update(r->txn, uid, &sa)
		     : keel_store_attr_add(r->txn, uid, &sa, 1);
	free(sa.value);
	return attr_store_err(r, err);
}

int attr_batch_end(struct eng_req *r, const char *uid, int err)
{
	struct eng_attr_batch *b = r->batch;

	r->batch = NULL;
	if (err == 0 && b->num != 0) {
		err = attr_store_err(r, keel_store_attr_add(r->txn, uid, b->attrs, b->num));
	}
	for (size_t i = 0; i < b->num; i++) {
		free(b->attrs[i].value);
	}
	free(b->attrs);
	*b = (struct eng_attr_batch){0};
	return err;
}

int attr_load_value(struct eng_req *r, const struct keel_store_attr *sa,
		    const struct kmip_node **out)
{
	uint8_t *copy = kmip_arena_alloc(r->arena, sa->value_len != 0 ? sa->value_len : 1);
	struct kmip_node *n;

	if (copy == NULL) {
		return ENG_E_INTERNAL;
	}
	memcpy(copy, sa->value, sa->value_len);
	if (kmip_decode_tree(copy, sa->value_len, &r->e->lim, r->arena, &n) != 0) {
		keel_err("engine: stored attribute \"%s\" does not decode", sa->name);
		return ENG_E_INTERNAL;
	}
	*out = n;
	return 0;
}

static int out_grow(struct eng_req *r, struct eng_attr_out *out)
{
	size_t ncap = out->cap != 0 ? out->cap * 2 : 16;
	void *n1 = eng_alloc(r, ncap * sizeof(*out->v1));
	void *n2 = eng_alloc(r, ncap * sizeof(*out->v2));

	if (n1 == NULL || n2 == NULL) {
		return ENG_E_INTERNAL;
	}
	if (out->num != 0) {
		memcpy(n1, out->v1, out->num * sizeof(*out->v1));
		memcpy(n2, out->v2, out->num * sizeof(*out->v2));
	}
	out->v1 = n1;
	out->v2 = n2;
	out->cap = ncap;
	return 0;
}

/* 2.x form of a custom attribute: Attribute {Vendor Identification, Name, Value}. */
static const struct kmip_node *vendor_node(struct eng_req *r, const char *name,
					   struct kmip_node *value)
{
	struct kmip_node *a = eng_node(r, KMIP_TAG_ATTRIBUTE, KMIP_TYPE_STRUCTURE);
	struct kmip_node *vid = eng_node(r, KMIP_TAG_VENDOR_IDENTIFICATION, KMIP_TYPE_TEXT_STRING);
	struct kmip_node *an = eng_node(r, KMIP_TAG_ATTRIBUTE_NAME, KMIP_TYPE_TEXT_STRING);

	if (a == NULL || vid == NULL || an == NULL) {
		return NULL;
	}
	vid->v.text = name;
	vid->len = 1;
	an->v.text = name + 2;
	an->len = (uint32_t)strlen(name + 2);
	value->tag = KMIP_TAG_ATTRIBUTE_VALUE;
	a->v.child = vid;
	vid->next = an;
	an->next = value;
	a->len = 3;
	return a;
}

/* KMIP 1.0's Digest has no Key Format Type (added in 1.1, KMIP 1.4 §3.17): a copy without. */
static int digest_for_v10(struct eng_req *r, struct kmip_node *v)
{
	struct kmip_node *head = NULL, **tail = &head;

	v->len = 0;
	for (const struct kmip_node *c = v->v.child; c != NULL; c = c->next) {
		struct kmip_node *n;

		if (c->tag == KMIP_TAG_KEY_FORMAT_TYPE) {
			continue;
		}
		if ((n = eng_node(r, 0, 0)) == NULL) {
			return ENG_E_INTERNAL;
		}
		*n = *c;
		n->next = NULL;
		*tail = n;
		tail = &n->next;
		v->len++;
	}
	v->v.child = head;
	return 0;
}

int attr_emit(struct eng_req *r, struct eng_attr_out *out, const char *name, int32_t index,
	      const struct kmip_node *value)
{
	const struct attr_rule *rule = attr_rule_by_name(name, strlen(name));
	struct kmip_node *v = eng_node(r, 0, 0);
	const struct kmip_tag_def *def;
	int err;

	if (rule != NULL && rule->tag != 0 && (def = kmip_tag_def(rule->tag)) != NULL &&
	    (def->versions & r->version) == 0) {
		return 0; /* an attribute the response's version does not have (Fresh in 1.0) */
	}
	if (v == NULL || (out->num == out->cap && (err = out_grow(r, out)) != 0)) {
		return ENG_E_INTERNAL;
	}
	*v = *value;
	v->next = NULL;
	if (r->version == KMIP_V1_0 && rule != NULL && rule->tag == KMIP_TAG_DIGEST &&
	    v->type == KMIP_TYPE_STRUCTURE && (err = digest_for_v10(r, v)) != 0) {
		return err;
	}
	if (!r->v2) {
		struct kmip_attribute *a = &out->v1[out->num];

		v->tag = KMIP_TAG_ATTRIBUTE_VALUE;
		a->attribute_name = name;
		a->attribute_name_len = strlen(name);
		a->has_attribute_index = index != 0;
		a->attribute_index = index;
		a->attribute_value = v;
	} else if (rule != NULL && (rule->flags & ATTR_CUSTOM) != 0) {
		if ((out->v2[out->num] = vendor_node(r, name, v)) == NULL) {
			return ENG_E_INTERNAL;
		}
	} else {
		v->tag = rule != NULL ? rule->tag : KMIP_TAG_ATTRIBUTE_VALUE;
		out->v2[out->num] = v;
	}
	out->num++;
	return 0;
}

static int emit_scalar(struct eng_req *r, struct eng_attr_out *out, const struct attr_rule *rule,
		       int64_t i64, const char *text)
{
	struct kmip_node *v = eng_node(r, KMIP_TAG_ATTRIBUTE_VALUE, rule->type);

	if (v == NULL) {
		return ENG_E_INTERNAL;
	}
	if (rule->type == KMIP_TYPE_TEXT_STRING) {
		/* The response is encoded after the object is gone: copy the text. */
		size_t len = strlen(text);

		if ((v->v.text = kmip_arena_strndup(r->arena, text, len)) == NULL) {
			return ENG_E_INTERNAL;
		}
		v->len = (uint32_t)len;
	} else if (rule->type == KMIP_TYPE_ENUMERATION || rule->type == KMIP_TYPE_INTERVAL) {
		v->v.u32 = (uint32_t)i64;
	} else {
		v->v.i64 = i64;
	}
	return attr_emit(r, out, rule->name, 0, v);
}

int attr_emit_object(struct eng_req *r, struct eng_attr_out *out, const struct keel_store_object *o,
		     const char *name)
{
	const int64_t vals[] = {0,
				o->object_type,
				o->state,
				o->initial_date,
				o->activation_date,
				o->deactivation_date,
				o->destroy_date,
				o->compromise_occurrence_date,
				o->compromise_date,
				o->last_change_date,
				ENG_LEASE_SECONDS};
	const uint32_t tags[] = {KMIP_TAG_UNIQUE_IDENTIFIER,
				 KMIP_TAG_OBJECT_TYPE,
				 KMIP_TAG_STATE,
				 KMIP_TAG_INITIAL_DATE,
				 KMIP_TAG_ACTIVATION_DATE,
				 KMIP_TAG_DEACTIVATION_DATE,
				 KMIP_TAG_DESTROY_DATE,
				 KMIP_TAG_COMPROMISE_OCCURRENCE_DATE,
				 KMIP_TAG_COMPROMISE_DATE,
				 KMIP_TAG_LAST_CHANGE_DATE,
				 KMIP_TAG_LEASE_TIME};
	int err = 0;

	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]) && err == 0; i++) {
		const struct attr_rule *rule = attr_rule_by_tag(tags[i]);
		bool is_date = rule->type == KMIP_TYPE_DATE_TIME;

		if ((name != NULL && strcmp(name, rule->name) != 0) || (is_date && vals[i] == 0)) {
			continue;
		}
		/* State is a cryptographic object's (KMIP 1.4 §3.22); a Template has none. */
		if (tags[i] == KMIP_TAG_STATE && o->object_type == KMIP_OBJECT_TYPE_TEMPLATE) {
			continue;
		}
		err = emit_scalar(r, out, rule, vals[i], o->uid);
	}
	return err;
}

int attr_emit_stored(struct eng_req *r, struct eng_attr_out *out, const char *uid, const char *name)
{
	struct keel_store_attr *sa = NULL;
	const struct kmip_node *v;
	size_t n = 0;
	int err;

	if ((err = keel_store_attr_list(r->txn, uid, name, &sa, &n)) != 0) {
		return eng_store_err(r, err, "listing attributes");
	}
	for (size_t i = 0; i < n && err == 0; i++) {
		if (sa[i].name[0] == '_') {
			continue; /* the engine's own bookkeeping, not a KMIP attribute */
		}
		const char *nm = eng_strdup(r, sa[i].name, strlen(sa[i].name));

		if (nm == NULL || (err = attr_load_value(r, &sa[i], &v)) != 0) {
			err = ENG_E_INTERNAL;
			break;
		}
		err = attr_emit(r, out, nm, sa[i].index, v);
	}
	keel_store_attrs_free(sa, n);
	return err;
}
