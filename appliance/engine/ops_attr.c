/*
 * Attribute operations: Get Attributes (KMIP 1.4 §4.12), Get Attribute List
 * (§4.13), Add/Modify/Delete Attribute (§4.14-§4.16), and Locate (§4.9),
 * which searches attributes. An attribute the object lacks is omitted from
 * Get Attributes: vCenter needs Success with the UID alone (VCENTER.md §5.11).
 */
#include "engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Emits every instance of |name| (computed or stored) of object |o|. */
static int emit_named(struct eng_req *r, struct eng_attr_out *out,
		      const struct keel_store_object *o, const char *name)
{
	const struct attr_rule *rule = attr_rule_by_name(name, strlen(name));

	if (rule != NULL && (rule->flags & ATTR_OBJECT) != 0) {
		return attr_emit_object(r, out, o, name);
	}
	return attr_emit_stored(r, out, o->uid, name);
}

/* The name a 2.x Attribute Reference designates (2.0 §7.4): a tag, or vendor + name. */
const char *eng_reference_name(struct eng_req *r, const struct kmip_node *ref)
{
	const struct kmip_tag_def *def;

	if (ref->type == KMIP_TYPE_ENUMERATION) {
		const struct attr_rule *rule = attr_rule_by_tag(ref->v.u32);

		def = kmip_tag_def(ref->v.u32);
		return rule != NULL ? rule->name : def != NULL ? def->title : "";
	}
	const struct kmip_node *vid = kmip_node_find(ref, KMIP_TAG_VENDOR_IDENTIFICATION);
	const struct kmip_node *an = kmip_node_find(ref, KMIP_TAG_ATTRIBUTE_NAME);
	char *s;

	if (vid == NULL || an == NULL || (s = eng_alloc(r, vid->len + an->len + 2)) == NULL) {
		return "";
	}
	memcpy(s, vid->v.text, vid->len);
	s[vid->len] = '-';
	memcpy(s + vid->len + 1, an->v.text, an->len);
	return s;
}

static void finish_attrs_v2(struct eng_req *r, struct eng_attr_out *out,
			    struct kmip_attributes **dst)
{
	struct kmip_attributes *as = eng_alloc(r, sizeof(*as));

	if (as != NULL) {
		as->attributes = out->v2;
		as->num_attributes = out->num;
	}
	*dst = as;
}

int op_get_attributes(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_get_attributes_request *q = req;
	struct kmip_get_attributes_response *p = eng_alloc(r, sizeof(*p));
	struct keel_store_object o = {0};
	struct eng_attr_out ao = {0};
	size_t num = r->v2 ? q->num_attribute_references : q->num_attribute_names;
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0) {
		goto out;
	}
	if (num == 0 && (err = attr_emit_object(r, &ao, &o, NULL)) == 0) {
		err = attr_emit_stored(r, &ao, o.uid, NULL);
	}
	for (size_t i = 0; i < num && err == 0; i++) {
		const char *name =
		    r->v2 ? eng_reference_name(r, q->attribute_references[i])
			  : eng_strdup(r, q->attribute_names[i].s, q->attribute_names[i].len);

		err = name != NULL ? emit_named(r, &ao, &o, name) : ENG_E_INTERNAL;
	}
	if (err != 0) {
		goto out;
	}
	p->unique_identifier = eng_strdup(r, o.uid, strlen(o.uid));
	p->unique_identifier_len = strlen(o.uid);
	if (r->v2) {
		finish_attrs_v2(r, &ao, &p->attributes);
	} else {
		p->attribute = ao.v1;
		p->num_attribute = ao.num;
	}
	*out = p;
out:
	keel_store_object_cleanup(&o);
	return err;
}

/* 1.x answers Attribute Names, once each though an attribute may have several instances. */
static int list_names(struct eng_req *r, const struct eng_attr_out *ao,
		      struct kmip_get_attribute_list_response *p)
{
	p->attribute_names = eng_alloc(r, (ao->num + 1) * sizeof(*p->attribute_names));
	if (p->attribute_names == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < ao->num; i++) {
		if (i > 0 && strcmp(ao->v1[i].attribute_name, ao->v1[i - 1].attribute_name) == 0) {
			continue;
		}
		p->attribute_names[p->num_attribute_names].s = ao->v1[i].attribute_name;
		p->attribute_names[p->num_attribute_names++].len = ao->v1[i].attribute_name_len;
	}
	return 0;
}

/* Whether two emitted 2.x attributes are instances of the same attribute. */
static bool same_attribute(const struct kmip_node *a, const struct kmip_node *b)
{
	const struct kmip_node *an, *bn;

	if (a->tag != b->tag) {
		return false;
	}
	if (a->tag != KMIP_TAG_ATTRIBUTE) {
		return true;
	}
	an = kmip_node_find(a, KMIP_TAG_ATTRIBUTE_NAME);
	bn = kmip_node_find(b, KMIP_TAG_ATTRIBUTE_NAME);
	return an != NULL && bn != NULL && an->len == bn->len &&
	       memcmp(an->v.text, bn->v.text, an->len) == 0;
}

/* The Attribute Reference of an emitted 2.x attribute (2.0 §7.4): its tag, or vendor + name. */
static const struct kmip_node *reference_of(struct eng_req *r, const struct kmip_node *a)
{
	struct kmip_node *ref, *vid, *an;

	if (a->tag != KMIP_TAG_ATTRIBUTE) {
		if ((ref = eng_node(r, KMIP_TAG_ATTRIBUTE_REFERENCE, KMIP_TYPE_ENUMERATION)) !=
		    NULL) {
			ref->v.u32 = a->tag;
		}
		return ref;
	}
	ref = eng_node(r, KMIP_TAG_ATTRIBUTE_REFERENCE, KMIP_TYPE_STRUCTURE);
	vid = eng_node(r, 0, 0);
	an = eng_node(r, 0, 0);
	if (ref == NULL || vid == NULL || an == NULL) {
		return NULL;
	}
	*vid = *kmip_node_find(a, KMIP_TAG_VENDOR_IDENTIFICATION);
	*an = *kmip_node_find(a, KMIP_TAG_ATTRIBUTE_NAME);
	vid->next = an;
	an->next = NULL;
	ref->v.child = vid;
	ref->len = 2;
	return ref;
}

/* 2.x answers Attribute References (2.0 §6.1.20), once per attribute. */
static int list_references(struct eng_req *r, const struct eng_attr_out *ao,
			   struct kmip_get_attribute_list_response *p)
{
	p->attribute_references = eng_alloc(r, (ao->num + 1) * sizeof(*p->attribute_references));
	if (p->attribute_references == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < ao->num; i++) {
		const struct kmip_node *ref;

		if (i > 0 && same_attribute(ao->v2[i], ao->v2[i - 1])) {
			continue;
		}
		if ((ref = reference_of(r, ao->v2[i])) == NULL) {
			return ENG_E_INTERNAL;
		}
		p->attribute_references[p->num_attribute_references++] = ref;
	}
	return 0;
}

int op_get_attribute_list(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_get_attribute_list_request *q = req;
	struct kmip_get_attribute_list_response *p = eng_alloc(r, sizeof(*p));
	struct keel_store_object o = {0};
	struct eng_attr_out ao = {0};
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0 ||
	    (err = attr_emit_object(r, &ao, &o, NULL)) != 0 ||
	    (err = attr_emit_stored(r, &ao, o.uid, NULL)) != 0) {
		goto out;
	}
	if ((err = r->v2 ? list_references(r, &ao, p) : list_names(r, &ao, p)) != 0) {
		goto out;
	}
	p->unique_identifier = eng_strdup(r, o.uid, strlen(o.uid));
	p->unique_identifier_len = strlen(o.uid);
	*out = p;
out:
	keel_store_object_cleanup(&o);
	return err;
}

/* The next free index of |name| on |uid| (§2.1.1: instances numbered from 0). */
static int next_index(struct eng_req *r, const char *uid, const char *name, int32_t *out)
{
	struct keel_store_attr *sa = NULL;
	size_t n = 0;
	int err;

	*out = 0;
	if ((err = keel_store_attr_list(r->txn, uid, name, &sa, &n)) != 0) {
		return eng_store_err(r, err, "listing attributes");
	}
	for (size_t i = 0; i < n; i++) {
		if (sa[i].index >= *out) {
			*out = sa[i].index + 1;
		}
	}
	keel_store_attrs_free(sa, n);
	return 0;
}

/* The attribute of a 1.x request, or of a 2.x Attribute Holder. */
static int request_attr(struct eng_req *r, const struct kmip_attribute *v1,
			const struct kmip_attribute_holder *v2, struct eng_attr *out)
{
	if (!r->v2 && v1 != NULL) {
		return attr_from_v1(r, v1, out);
	}
	if (r->v2 && v2 != NULL && v2->attribute != NULL) {
		return attr_from_v2(r, v2->attribute, out);
	}
	return eng_fail(r, ENG_E_MISSING_DATA, "Attribute missing");
}

static int client_may_change(struct eng_req *r, const struct eng_attr *a)
{
	if ((a->rule->flags & ATTR_MODIFY) == 0) {
		keel_debug("engine: client %s may not change \"%s\"", r->who->subject, a->name);
		return eng_fail(r, ENG_E_READ_ONLY, NULL);
	}
	return 0;
}

/*
 * The row dates a client may set after creation: Activation Date while the
 * object is Pre-Active (KMIP 1.4 §3.24), Deactivation Date while Pre-Active
 * or Active (§3.27). A date not in the future moves the state on (§3.22).
 * |adding|: Add Attribute, which needs the date unset (single-valued).
 */
static int set_row_date(struct eng_req *r, struct keel_store_object *o, const struct eng_attr *a,
			bool adding)
{
	bool act = a->rule->tag == KMIP_TAG_ACTIVATION_DATE;
	int64_t *date = act ? &o->activation_date : &o->deactivation_date;
	int64_t v = a->value->v.i64;

	if (o->state != KMIP_STATE_PRE_ACTIVE && (act || o->state != KMIP_STATE_ACTIVE)) {
		return eng_fail(r, ENG_E_WRONG_STATE, "date may not change in this state");
	}
	if (adding && *date != 0) {
		return eng_fail(r, ENG_E_SINGLE_VALUED, NULL);
	}
	if (!adding && *date == 0) {
		return eng_fail(r, ENG_E_ATTR_NOT_FOUND, NULL);
	}
	*date = v;
	if (act && v <= r->now) {
		o->state = KMIP_STATE_ACTIVE;
	} else if (!act && v <= r->now) {
		o->state = KMIP_STATE_DEACTIVATED;
	}
	return eng_save(r, o);
}

static bool is_row_date(const struct eng_attr *a)
{
	return a->rule->tag == KMIP_TAG_ACTIVATION_DATE ||
	       a->rule->tag == KMIP_TAG_DEACTIVATION_DATE;
}

/* The 1.x response echoes the attribute as stored, index included. */
static int attr_response(struct eng_req *r, const struct keel_store_object *o,
			 const struct eng_attr *a, int32_t index, void **out)
{
	struct kmip_add_attribute_response *p = eng_alloc(r, sizeof(*p));
	struct eng_attr_out ao = {0};
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	p->unique_identifier = eng_strdup(r, o->uid, strlen(o->uid));
	p->unique_identifier_len = strlen(o->uid);
	if (!r->v2) {
		if ((err = attr_emit(r, &ao, a->name, index, a->value)) != 0) {
			return err;
		}
		p->attribute = ao.v1;
	}
	*out = p;
	return 0;
}

/* Writes a client's change of |a| and what follows from it (protect.c). */
static int save_client_attr(struct eng_req *r, const char *uid, const struct eng_attr *a,
			    int32_t index, bool update)
{
	int err = attr_save(r, uid, a, index, update);

	return err != 0 ? err : eng_protect_changed(r, uid, a);
}

int op_add_attribute(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_add_attribute_request *q = req;
	struct keel_store_object o = {0};
	struct eng_attr a;
	int32_t index = 0;
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0 ||
	    (err = request_attr(r, q->attribute, q->new_attribute, &a)) != 0 ||
	    (err = eng_usage_limits_init(r, &a)) != 0) {
		goto out;
	}
	if (is_row_date(&a)) {
		if ((err = set_row_date(r, &o, &a, true)) == 0) {
			err = attr_response(r, &o, &a, 0, out);
		}
		goto out;
	}
	if ((err = client_may_change(r, &a)) != 0) {
		goto out;
	}
	if ((a.rule->flags & ATTR_MULTI) != 0 &&
	    (err = next_index(r, o.uid, a.name, &index)) != 0) {
		goto out;
	}
	if ((err = save_client_attr(r, o.uid, &a, index, false)) == 0 &&
	    (err = eng_save(r, &o)) == 0) {
		err = attr_response(r, &o, &a, index, out);
	}
out:
	keel_store_object_cleanup(&o);
	return err;
}

int op_modify_attribute(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_modify_attribute_request *q = req;
	struct keel_store_object o = {0};
	struct eng_attr a;
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0 ||
	    (err = request_attr(r, q->attribute, q->new_attribute, &a)) != 0 ||
	    (err = eng_usage_limits_init(r, &a)) != 0) {
		goto out;
	}
	if (is_row_date(&a)) {
		if ((err = set_row_date(r, &o, &a, false)) == 0) {
			err = attr_response(r, &o, &a, 0, out);
		}
		goto out;
	}
	if ((err = client_may_change(r, &a)) != 0) {
		goto out;
	}
	if ((err = save_client_attr(r, o.uid, &a, a.has_index ? a.index : 0, true)) == 0 &&
	    (err = eng_save(r, &o)) == 0) {
		err = attr_response(r, &o, &a, a.has_index ? a.index : 0, out);
	}
out:
	keel_store_object_cleanup(&o);
	return err;
}

/* The index of the stored instance of |a->name| whose value is |a->value|, or -1. */
static int find_instance(struct eng_req *r, const char *uid, const struct eng_attr *a,
			 int32_t *out_index)
{
	struct keel_store_attr *sa = NULL;
	const char *text;
	uint8_t *want = NULL;
	size_t n = 0, want_len = 0;
	int err;

	*out_index = -1;
	if ((err = attr_encode_value(r, a->value, &want, &want_len, &text)) != 0) {
		return err;
	}
	if ((err = keel_store_attr_list(r->txn, uid, a->name, &sa, &n)) != 0) {
		err = eng_store_err(r, err, "listing attributes");
	}
	for (size_t i = 0; i < n && *out_index < 0; i++) {
		if (sa[i].value_len == want_len && memcmp(sa[i].value, want, want_len) == 0) {
			*out_index = sa[i].index;
		}
	}
	free(want);
	keel_store_attrs_free(sa, n);
	return err;
}

/*
 * 2.x Delete Attribute (2.0 §6.1.13): Current Attribute names one instance by
 * its value; an Attribute Reference alone deletes every instance.
 */
static int delete_v2(struct eng_req *r, const struct kmip_delete_attribute_request *q,
		     struct keel_store_object *o, void **out)
{
	struct eng_attr a = {0};
	int32_t index = -1;
	int err;

	if (q->current_attribute != NULL && q->current_attribute->attribute != NULL) {
		if ((err = attr_from_v2(r, q->current_attribute->attribute, &a)) != 0 ||
		    (err = client_may_change(r, &a)) != 0 ||
		    (err = find_instance(r, o->uid, &a, &index)) != 0) {
			return err;
		}
		if (index < 0) {
			return eng_fail(r, ENG_E_ATTR_NOT_FOUND, NULL);
		}
	} else if (q->attribute_reference != NULL) {
		a.name = eng_reference_name(r, q->attribute_reference);
		if ((a.rule = attr_rule_by_name(a.name, strlen(a.name))) == NULL) {
			return eng_fail(r, ENG_E_ATTR_NOT_FOUND, NULL);
		}
		if ((err = client_may_change(r, &a)) != 0) {
			return err;
		}
	} else {
		return eng_fail(r, ENG_E_MISSING_DATA, "Current Attribute or Attribute Reference");
	}
	err = keel_store_attr_delete(r->txn, o->uid, a.name, index);
	if (err != 0) {
		return err == KEEL_STORE_E_NOT_FOUND ? eng_fail(r, ENG_E_ATTR_NOT_FOUND, NULL)
						     : eng_store_err(r, err, "deleting attribute");
	}
	if ((err = eng_save(r, o)) != 0) {
		return err;
	}
	return attr_response(r, o, &a, 0, out);
}

int op_delete_attribute(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_delete_attribute_request *q = req;
	struct keel_store_object o = {0};
	struct keel_store_attr *sa = NULL;
	struct eng_attr a = {0};
	size_t n = 0;
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0) {
		goto out;
	}
	if (r->v2) {
		err = delete_v2(r, q, &o, out);
		goto out;
	}
	if (q->attribute_name == NULL) {
		err = eng_fail(r, ENG_E_MISSING_DATA, "Attribute Name missing");
		goto out;
	}
	a.name = eng_strdup(r, q->attribute_name, q->attribute_name_len);
	a.rule = attr_rule_by_name(q->attribute_name, q->attribute_name_len);
	if (a.rule == NULL || (err = client_may_change(r, &a)) != 0) {
		err = a.rule == NULL ? eng_fail(r, ENG_E_ATTR_NOT_FOUND, NULL) : err;
		goto out;
	}
	a.index = q->has_attribute_index ? q->attribute_index : 0;
	/* The response carries the deleted attribute (§4.16), so read it first. */
	if ((err = keel_store_attr_list(r->txn, o.uid, a.name, &sa, &n)) != 0) {
		err = eng_store_err(r, err, "listing attributes");
		goto out;
	}
	for (size_t i = 0; i < n && a.value == NULL; i++) {
		if (sa[i].index == a.index && (err = attr_load_value(r, &sa[i], &a.value)) != 0) {
			goto out;
		}
	}
	if (a.value == NULL) {
		err = eng_fail(r, ENG_E_ATTR_NOT_FOUND, NULL);
		goto out;
	}
	if ((err = keel_store_attr_delete(r->txn, o.uid, a.name, a.index)) != 0) {
		err = eng_store_err(r, err, "deleting attribute");
	} else if ((err = eng_save(r, &o)) == 0) {
		err = attr_response(r, &o, &a, a.index, out);
	}
out:
	keel_store_attrs_free(sa, n);
	keel_store_object_cleanup(&o);
	return err;
}

/* Set Attribute answers the Unique Identifier alone. */
static int uid_only(struct eng_req *r, const struct keel_store_object *o, void **out)
{
	struct kmip_unique_identifier_response *p = eng_alloc(r, sizeof(*p));

	if (p == NULL || (p->unique_identifier = eng_strdup(r, o->uid, strlen(o->uid))) == NULL) {
		return ENG_E_INTERNAL;
	}
	p->unique_identifier_len = strlen(o->uid);
	*out = p;
	return 0;
}

/*
 * Set Attribute (KMIP 2.0 §6.1.52): adds the attribute if the object has no
 * instance, replaces it if it has one; several instances are an error, and
 * read-only attributes are refused as in Add and Modify.
 */
int op_set_attribute(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_set_attribute_request *q = req;
	struct keel_store_object o = {0};
	struct keel_store_attr *sa = NULL;
	struct eng_attr a;
	size_t n = 0;
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0 ||
	    (err = request_attr(r, NULL, q->new_attribute, &a)) != 0 ||
	    (err = client_may_change(r, &a)) != 0) {
		goto out;
	}
	if ((err = keel_store_attr_list(r->txn, o.uid, a.name, &sa, &n)) != 0) {
		err = eng_store_err(r, err, "listing attributes");
		goto out;
	}
	if (n > 1) {
		err = eng_fail(r, ENG_E_MULTI_VALUED, NULL);
		goto out;
	}
	if ((err = save_client_attr(r, o.uid, &a, n == 1 ? sa[0].index : 0, n == 1)) == 0 &&
	    (err = eng_save(r, &o)) == 0) {
		err = uid_only(r, &o, out);
	}
out:
	keel_store_attrs_free(sa, n);
	keel_store_object_cleanup(&o);
	return err;
}
