/*
 * How a key may leave the server (KMIP 1.4 §3.47-§3.50, 2.0 §4): Sensitive
 * (only wrapped), Extractable (at all), and their histories Always Sensitive
 * and Never Extractable, which the server keeps; and the Random Number
 * Generator attribute (1.4 §3.46) of keys the server makes.
 *
 * Every object with a Key Block gets the four at creation, so Get Attributes
 * shows them and Get can enforce them. The histories only ever turn false:
 * a key that was once retrievable in plaintext stays "not always sensitive".
 */
#include "engine_int.h"

#include <string.h>

/* The Boolean a request gave for |tag|, else |dflt|. */
static bool given_bool(const struct eng_new_object *no, uint32_t tag, bool dflt)
{
	for (size_t i = 0; i < no->num_attrs; i++) {
		if (no->attrs[i].rule->tag == tag &&
		    no->attrs[i].value->type == KMIP_TYPE_BOOLEAN) {
			return no->attrs[i].value->v.b;
		}
	}
	return dflt;
}

static bool was_given(const struct eng_new_object *no, uint32_t tag)
{
	for (size_t i = 0; i < no->num_attrs; i++) {
		if (no->attrs[i].rule->tag == tag) {
			return true;
		}
	}
	return false;
}

/* Writes Boolean |tag| of |uid| (a new instance, or the existing one when |update|). */
static int save_bool(struct eng_req *r, const char *uid, uint32_t tag, bool b, bool update)
{
	const struct attr_rule *rule = attr_rule_by_tag(tag);
	struct kmip_node *v = eng_node(r, tag, KMIP_TYPE_BOOLEAN);
	struct eng_attr a = {.rule = rule, .name = rule != NULL ? rule->name : NULL, .value = v};

	if (v == NULL || rule == NULL) {
		return ENG_E_INTERNAL;
	}
	v->v.b = b;
	return attr_save(r, uid, &a, 0, update);
}

/* RNG Algorithm Unspecified: key material comes from the token's generator, whose
 * algorithm PKCS#11 does not report, or OpenSSL's for key pairs. */
static int save_rng(struct eng_req *r, const char *uid)
{
	const struct attr_rule *rule = attr_rule_by_tag(KMIP_TAG_RANDOM_NUMBER_GENERATOR);
	struct kmip_node *v = eng_node(r, KMIP_TAG_RANDOM_NUMBER_GENERATOR, KMIP_TYPE_STRUCTURE);
	struct kmip_node *alg = eng_node(r, KMIP_TAG_RNG_ALGORITHM, KMIP_TYPE_ENUMERATION);
	struct eng_attr a = {.rule = rule, .name = rule != NULL ? rule->name : NULL, .value = v};

	if (v == NULL || alg == NULL || rule == NULL) {
		return ENG_E_INTERNAL;
	}
	alg->v.u32 = KMIP_RNG_ALGORITHM_UNSPECIFIED;
	v->v.child = alg;
	v->len = 1;
	return attr_save(r, uid, &a, 0, false);
}

int eng_protect_init(struct eng_req *r, const char *uid, const struct eng_new_object *no)
{
	bool sensitive = given_bool(no, KMIP_TAG_SENSITIVE, false);
	bool extractable = given_bool(no, KMIP_TAG_EXTRACTABLE, true);
	int err = 0;

	if (!eng_has_key_block(no->object_type)) {
		return 0;
	}
	if (!was_given(no, KMIP_TAG_SENSITIVE)) {
		err = save_bool(r, uid, KMIP_TAG_SENSITIVE, false, false);
	}
	if (err == 0 && !was_given(no, KMIP_TAG_EXTRACTABLE)) {
		err = save_bool(r, uid, KMIP_TAG_EXTRACTABLE, true, false);
	}
	/* Re-key carries the old key's attributes over, histories included. */
	if (err == 0 && !was_given(no, KMIP_TAG_ALWAYS_SENSITIVE)) {
		err = save_bool(r, uid, KMIP_TAG_ALWAYS_SENSITIVE, sensitive, false);
	}
	if (err == 0 && !was_given(no, KMIP_TAG_NEVER_EXTRACTABLE)) {
		err = save_bool(r, uid, KMIP_TAG_NEVER_EXTRACTABLE, !extractable, false);
	}
	/* From 1.4, where the profiles expect it of a server (SKFF-M-9-14); 1.3's do not. */
	if (err == 0 && no->generated && r->version >= KMIP_V1_4 &&
	    !was_given(no, KMIP_TAG_RANDOM_NUMBER_GENERATOR)) {
		err = save_rng(r, uid);
	}
	return err;
}

int eng_protect_changed(struct eng_req *r, const char *uid, const struct eng_attr *a)
{
	uint32_t history = 0;
	int err;

	if (a->rule == NULL || a->value == NULL || a->value->type != KMIP_TYPE_BOOLEAN) {
		return 0;
	}
	if (a->rule->tag == KMIP_TAG_SENSITIVE && !a->value->v.b) {
		history = KMIP_TAG_ALWAYS_SENSITIVE;
	} else if (a->rule->tag == KMIP_TAG_EXTRACTABLE && a->value->v.b) {
		history = KMIP_TAG_NEVER_EXTRACTABLE;
	} else {
		return 0; /* the change does not end either history */
	}
	err = save_bool(r, uid, history, false, true);
	if (err == ENG_E_ATTR_NOT_FOUND) {
		r->msg = NULL; /* an object without the history: created before Keel kept it */
		return 0;
	}
	return err;
}

int eng_protect_check_get(struct eng_req *r, const char *uid, bool wrapped)
{
	const struct kmip_node *s = eng_stored_value(r, uid, "Sensitive");
	const struct kmip_node *x = eng_stored_value(r, uid, "Extractable");

	if (x != NULL && x->type == KMIP_TYPE_BOOLEAN && !x->v.b) {
		return eng_fail(r, ENG_E_PERMISSION, "object is not Extractable");
	}
	if (!wrapped && s != NULL && s->type == KMIP_TYPE_BOOLEAN && s->v.b) {
		return eng_fail(r, ENG_E_PERMISSION, "object is Sensitive: Get it wrapped");
	}
	return 0;
}
