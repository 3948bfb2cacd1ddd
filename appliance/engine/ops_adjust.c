/*
 * Adjust Attribute (KMIP 2.0/2.1 §6.1.3): increments, decrements or negates
 * the one instance of an attribute a client may change, in place. Keel
 * adjusts Integer, Long Integer, Interval and Date-Time values by an
 * Integer, Long Integer or Interval Adjustment Value; a result that does not
 * fit the attribute's type is refused, nothing is wrapped around.
 */
#include "engine_int.h"

#include <string.h>

/* The Adjustment Value as a signed 64-bit step; it is required unless negating. */
static int adjustment(struct eng_req *r, uint32_t type, const struct kmip_node *v, int64_t *out)
{
	*out = 0;
	if (type == KMIP_ADJUSTMENT_TYPE_NEGATE) {
		return 0;
	}
	if (type != KMIP_ADJUSTMENT_TYPE_INCREMENT && type != KMIP_ADJUSTMENT_TYPE_DECREMENT) {
		return eng_fail(r, ENG_E_INVALID_FIELD, "Adjustment Type");
	}
	if (v == NULL) {
		return eng_fail(r, ENG_E_MISSING_DATA, "Adjustment Value required");
	}
	switch (v->type) {
	case KMIP_TYPE_INTEGER:
		*out = v->v.i32;
		return 0;
	case KMIP_TYPE_LONG_INTEGER:
		*out = v->v.i64;
		return 0;
	case KMIP_TYPE_INTERVAL:
		*out = (int64_t)v->v.u32;
		return 0;
	default:
		return eng_fail(r, ENG_E_INVALID_FIELD,
				"Adjustment Value: Integer, Long Integer or Interval");
	}
}

/* |cur| adjusted by |step| (Increment, Decrement) or negated, as a 64-bit value. */
static int adjusted(struct eng_req *r, const struct kmip_node *cur, uint32_t type, int64_t step,
		    int64_t *out)
{
	int64_t v = cur->type == KMIP_TYPE_INTEGER    ? cur->v.i32
		    : cur->type == KMIP_TYPE_INTERVAL ? (int64_t)cur->v.u32
						      : cur->v.i64;
	bool overflow;

	if (type == KMIP_ADJUSTMENT_TYPE_NEGATE) {
		/* An Interval or a Date-Time has no meaningful negative. */
		if (cur->type != KMIP_TYPE_INTEGER && cur->type != KMIP_TYPE_LONG_INTEGER) {
			return eng_fail(r, ENG_E_INVALID_FIELD, "Negate: Integer or Long Integer");
		}
		overflow = __builtin_sub_overflow((int64_t)0, v, out);
	} else if (type == KMIP_ADJUSTMENT_TYPE_INCREMENT) {
		overflow = __builtin_add_overflow(v, step, out);
	} else {
		overflow = __builtin_sub_overflow(v, step, out);
	}
	return overflow ? eng_fail(r, ENG_E_INVALID_FIELD, "adjusted value out of range") : 0;
}

/* The new value node: |cur|'s tag and type holding |v|, if |v| fits that type. */
static int new_value(struct eng_req *r, const struct kmip_node *cur, int64_t v,
		     const struct kmip_node **out)
{
	struct kmip_node *n;

	if ((cur->type == KMIP_TYPE_INTEGER && (v < INT32_MIN || v > INT32_MAX)) ||
	    (cur->type == KMIP_TYPE_INTERVAL && (v < 0 || v > UINT32_MAX))) {
		return eng_fail(r, ENG_E_INVALID_FIELD, "adjusted value out of range");
	}
	if ((n = eng_node(r, cur->tag, cur->type)) == NULL) {
		return ENG_E_INTERNAL;
	}
	if (cur->type == KMIP_TYPE_INTEGER) {
		n->v.i32 = (int32_t)v;
	} else if (cur->type == KMIP_TYPE_INTERVAL) {
		n->v.u32 = (uint32_t)v;
	} else {
		n->v.i64 = v;
	}
	*out = n;
	return 0;
}

/* Computes the adjusted value of |cur| for request |q| into |out|. */
static int adjust_value(struct eng_req *r, const struct kmip_adjust_attribute_request *q,
			const struct kmip_node *cur, const struct kmip_node **out)
{
	int64_t step = 0, v = 0;
	int err;

	if (cur->type != KMIP_TYPE_INTEGER && cur->type != KMIP_TYPE_LONG_INTEGER &&
	    cur->type != KMIP_TYPE_INTERVAL && cur->type != KMIP_TYPE_DATE_TIME) {
		return eng_fail(r, ENG_E_INVALID_FIELD,
				"attribute is not an Integer, Long Integer, Interval or Date-Time");
	}
	if ((err = adjustment(r, q->adjustment_type, q->adjustment_value, &step)) != 0 ||
	    (err = adjusted(r, cur, q->adjustment_type, step, &v)) != 0) {
		return err;
	}
	return new_value(r, cur, v, out);
}

/* The attribute the reference names: stored, single, and one a client may change. */
static int adjustable(struct eng_req *r, const struct kmip_node *ref, struct eng_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->name = eng_reference_name(r, ref);
	if ((out->rule = attr_rule_by_name(out->name, strlen(out->name))) == NULL) {
		return eng_fail(r, ENG_E_ATTR_NOT_FOUND, NULL);
	}
	/* Object-row attributes (dates of the state machine, §3.22) change by operation only. */
	if ((out->rule->flags & ATTR_MODIFY) == 0 || (out->rule->flags & ATTR_OBJECT) != 0) {
		return eng_fail(r, ENG_E_READ_ONLY, NULL);
	}
	return 0;
}

int op_adjust_attribute(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_adjust_attribute_request *q = req;
	struct keel_store_object o = {0};
	struct keel_store_attr *sa = NULL;
	const struct kmip_node *cur = NULL;
	struct eng_attr a;
	size_t n = 0;
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0 ||
	    (err = adjustable(r, q->attribute_reference, &a)) != 0) {
		goto out;
	}
	if ((err = keel_store_attr_list(r->txn, o.uid, a.name, &sa, &n)) != 0) {
		err = eng_store_err(r, err, "listing attributes");
		goto out;
	}
	if (n != 1) {
		err = eng_fail(r, n == 0 ? ENG_E_ATTR_NOT_FOUND : ENG_E_MULTI_VALUED, NULL);
		goto out;
	}
	if ((err = attr_load_value(r, &sa[0], &cur)) != 0 ||
	    (err = adjust_value(r, q, cur, &a.value)) != 0) {
		goto out;
	}
	if ((err = attr_save(r, o.uid, &a, sa[0].index, true)) == 0 &&
	    (err = eng_save(r, &o)) == 0) {
		err = eng_uid_response(r, &o, out);
	}
out:
	keel_store_attrs_free(sa, n);
	keel_store_object_cleanup(&o);
	return err;
}
