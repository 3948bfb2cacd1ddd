/*
 * Archive (KMIP 1.4 §4.22) and Recover (§4.23), Obtain Lease (§4.17) and
 * Get Usage Allocation (§4.18). Archiving keeps the object where it is (one
 * store, nothing to move) and records the Archive Date (§3.32); the state
 * is untouched.
 */
#include "engine_int.h"

#include <stdint.h>

#include <string.h>

/* Removes every instance of |name|; absent is fine. */
static int drop_attr(struct eng_req *r, const char *uid, const char *name)
{
	int err = keel_store_attr_delete(r->txn, uid, name, -1);

	return err == 0 || err == KEEL_STORE_E_NOT_FOUND ? 0 : eng_store_err(r, err, name);
}

int op_archive(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_unique_identifier_request *q = req;
	struct keel_store_object o = {0};
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_ARCHIVE_DATE),
			     .name = "Archive Date"};
	struct kmip_node *v = eng_node(r, KMIP_TAG_ARCHIVE_DATE, KMIP_TYPE_DATE_TIME);
	int err;

	if (v == NULL) {
		return ENG_E_INTERNAL;
	}
	v->v.i64 = r->now;
	a.value = v;
	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) == 0 &&
	    (err = drop_attr(r, o.uid, "Archive Date")) == 0 &&
	    (err = attr_save(r, o.uid, &a, 0, false)) == 0) {
		err = eng_uid_response(r, &o, out);
	}
	keel_store_object_cleanup(&o);
	return err;
}

int op_recover(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_unique_identifier_request *q = req;
	struct keel_store_object o = {0};
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) == 0 &&
	    (err = drop_attr(r, o.uid, "Archive Date")) == 0) {
		err = eng_uid_response(r, &o, out);
	}
	keel_store_object_cleanup(&o);
	return err;
}

/* A lease only for an object that still has its key material (§4.17). */
int op_obtain_lease(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_unique_identifier_request *q = req;
	struct kmip_obtain_lease_response *p = eng_alloc(r, sizeof(*p));
	struct keel_store_object o = {0};
	int err;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0) {
		goto out;
	}
	if (o.blob == NULL) {
		err = eng_fail(r, ENG_E_WRONG_STATE, "object destroyed");
		goto out;
	}
	if ((p->unique_identifier = eng_strdup(r, o.uid, strlen(o.uid))) == NULL) {
		err = ENG_E_INTERNAL;
		goto out;
	}
	p->unique_identifier_len = strlen(o.uid);
	p->lease_time = ENG_LEASE_SECONDS;
	p->last_change_date = o.last_change_date;
	*out = p;
out:
	keel_store_object_cleanup(&o);
	return err;
}

/* The object's Usage Limits (§3.21) and what is left of them. */
static int load_limits(struct eng_req *r, const char *uid, const struct kmip_node **out,
		       int64_t *out_left)
{
	struct keel_store_attr *sa = NULL;
	const struct kmip_node *total, *count;
	size_t n = 0;
	int err;

	if ((err = keel_store_attr_list(r->txn, uid, "Usage Limits", &sa, &n)) != 0) {
		return eng_store_err(r, err, "loading Usage Limits");
	}
	err = n == 0 ? eng_fail(r, ENG_E_WRONG_STATE, "object has no Usage Limits")
		     : attr_load_value(r, &sa[0], out);
	keel_store_attrs_free(sa, n);
	if (err != 0) {
		return err;
	}
	total = kmip_node_find(*out, KMIP_TAG_USAGE_LIMITS_TOTAL);
	count = kmip_node_find(*out, KMIP_TAG_USAGE_LIMITS_COUNT);
	*out_left = count != NULL ? count->v.i64 : total != NULL ? total->v.i64 : 0;
	return 0;
}

/* Appends a copy of |n| (or |n| itself when |own|) at |*link|; the new link. */
static struct kmip_node **append(struct eng_req *r, struct kmip_node **link,
				 const struct kmip_node *n, bool own)
{
	struct kmip_node *copy = own ? (struct kmip_node *)n : eng_node(r, 0, 0);

	if (link == NULL || copy == NULL) {
		return NULL;
	}
	if (!own) {
		*copy = *n;
	}
	copy->next = NULL;
	*link = copy;
	return &copy->next;
}

/* Usage Limits with Usage Limits Count set to |left|, in the order Total, Count, Unit. */
static struct kmip_node *limits_with(struct eng_req *r, const struct kmip_node *old, int64_t left)
{
	struct kmip_node *s = eng_node(r, KMIP_TAG_USAGE_LIMITS, KMIP_TYPE_STRUCTURE);
	struct kmip_node *count = eng_node(r, KMIP_TAG_USAGE_LIMITS_COUNT, KMIP_TYPE_LONG_INTEGER);
	struct kmip_node **link = s != NULL ? &s->v.child : NULL;

	if (s == NULL || count == NULL) {
		return NULL;
	}
	count->v.i64 = left;
	for (const struct kmip_node *c = old->v.child; c != NULL && link != NULL; c = c->next) {
		if (c->tag == KMIP_TAG_USAGE_LIMITS_COUNT) {
			continue;
		}
		link = append(r, link, c, false);
		if (c->tag == KMIP_TAG_USAGE_LIMITS_TOTAL) {
			link = append(r, link, count, true);
		}
	}
	for (const struct kmip_node *c = s->v.child; c != NULL; c = c->next) {
		s->len++;
	}
	return link != NULL ? s : NULL;
}

/*
 * Usage Limits a client sets get their Usage Limits Count from the server,
 * starting at the Total (KMIP 1.4 §3.21); other attributes pass unchanged.
 */
int eng_usage_limits_init(struct eng_req *r, struct eng_attr *a)
{
	const struct kmip_node *total;

	if (a->rule->tag != KMIP_TAG_USAGE_LIMITS ||
	    kmip_node_find(a->value, KMIP_TAG_USAGE_LIMITS_COUNT) != NULL ||
	    (total = kmip_node_find(a->value, KMIP_TAG_USAGE_LIMITS_TOTAL)) == NULL) {
		return 0;
	}
	return (a->value = limits_with(r, a->value, total->v.i64)) != NULL ? 0 : ENG_E_INTERNAL;
}

/*
 * A cryptographic operation on |uid| spends its Usage Limits (KMIP 1.4 §3.21):
 * Byte limits by |bytes|, Object limits by one. Without Usage Limits nothing is
 * spent; an operation over what is left is denied.
 */
int eng_usage_spend(struct eng_req *r, const char *uid, size_t bytes)
{
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_USAGE_LIMITS),
			     .name = "Usage Limits"};
	struct keel_store_attr *sa = NULL;
	const struct kmip_node *limits, *unit;
	int64_t left = 0, spend;
	size_t n = 0;
	int err;

	if ((err = keel_store_attr_list(r->txn, uid, "Usage Limits", &sa, &n)) != 0) {
		return eng_store_err(r, err, "loading Usage Limits");
	}
	keel_store_attrs_free(sa, n);
	if (n == 0 || (err = load_limits(r, uid, &limits, &left)) != 0) {
		return err;
	}
	unit = kmip_node_find(limits, KMIP_TAG_USAGE_LIMITS_UNIT);
	spend = unit != NULL && unit->v.u32 == KMIP_USAGE_LIMITS_UNIT_OBJECT ? 1 : (int64_t)bytes;
	if (bytes > INT64_MAX || spend > left) {
		return eng_fail(r, ENG_E_WRONG_STATE, "usage limits exhausted");
	}
	if ((a.value = limits_with(r, limits, left - spend)) == NULL) {
		return ENG_E_INTERNAL;
	}
	return attr_save(r, uid, &a, 0, true);
}

/* Get Usage Allocation (§4.18): spends |count| of the object's Usage Limits. */
int op_get_usage_allocation(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_get_usage_allocation_request *q = req;
	struct keel_store_object o = {0};
	const struct kmip_node *limits;
	struct eng_attr a = {.rule = attr_rule_by_tag(KMIP_TAG_USAGE_LIMITS),
			     .name = "Usage Limits"};
	int64_t left = 0;
	int err;

	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &o)) != 0 ||
	    (err = load_limits(r, o.uid, &limits, &left)) != 0) {
		goto out;
	}
	if (q->usage_limits_count <= 0 || q->usage_limits_count > left) {
		err = eng_fail(r, ENG_E_WRONG_STATE, "usage limits exhausted");
		goto out;
	}
	if ((a.value = limits_with(r, limits, left - q->usage_limits_count)) == NULL) {
		err = ENG_E_INTERNAL;
		goto out;
	}
	if ((err = attr_save(r, o.uid, &a, 0, true)) == 0) {
		err = eng_uid_response(r, &o, out);
	}
out:
	keel_store_object_cleanup(&o);
	return err;
}
