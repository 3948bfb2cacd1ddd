/*
 * Locate (KMIP 1.4 §4.9): objects of the requesting client whose attributes
 * match every one given. Unique Identifier, Object Type, State and the dates
 * of the object row are columns; Name and text attributes use the store's text
 * index; others compare encoded values. Two instances of one date attribute
 * are a range, both ends included (§4.9).
 */
#include "engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Storage Status Mask bits (KMIP 1.4 §9.1.3.3.2; Destroyed from 2.0 §11.32). */
#define STORAGE_ON_LINE	  1
#define STORAGE_ARCHIVAL  2
#define STORAGE_DESTROYED 4

/* A Locate being put together: the query and the encoded values it points to. */
struct loc {
	struct eng_req *r;
	struct keel_store_query q;
	struct keel_store_filter *filters;
	struct keel_store_date_range *dates;
	uint8_t **blobs; /* malloc'd encodings, freed when the Locate ends */
	size_t num_blobs;
};

static const struct {
	uint32_t tag;
	enum keel_store_date date;
} row_dates[] = {
    {KMIP_TAG_INITIAL_DATE, KEEL_STORE_DATE_INITIAL},
    {KMIP_TAG_ACTIVATION_DATE, KEEL_STORE_DATE_ACTIVATION},
    {KMIP_TAG_DEACTIVATION_DATE, KEEL_STORE_DATE_DEACTIVATION},
    {KMIP_TAG_DESTROY_DATE, KEEL_STORE_DATE_DESTROY},
    {KMIP_TAG_COMPROMISE_DATE, KEEL_STORE_DATE_COMPROMISE},
    {KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, KEEL_STORE_DATE_COMPROMISE_OCCURRENCE},
    {KMIP_TAG_LAST_CHANGE_DATE, KEEL_STORE_DATE_LAST_CHANGE},
};

/* Encodes |v| as the store keeps it; the bytes live until the Locate ends. */
static int encode(struct loc *l, const struct kmip_node *v, const uint8_t **out, size_t *out_len,
		  const char **out_text)
{
	uint8_t **slot = &l->blobs[l->num_blobs];
	int err = attr_encode_value(l->r, v, slot, out_len, out_text);

	if (err == 0) {
		*out = *slot;
		l->num_blobs++;
	}
	return err;
}

/* A date attribute between |lo| and |hi|: a row column or a stored attribute. */
static int add_date(struct loc *l, const struct eng_attr *lo, const struct eng_attr *hi)
{
	struct keel_store_filter *f = &l->filters[l->q.num_filters];
	const char *text;
	int err;

	for (size_t i = 0; i < sizeof(row_dates) / sizeof(row_dates[0]); i++) {
		if (row_dates[i].tag == lo->rule->tag) {
			l->dates[l->q.num_dates++] =
			    (struct keel_store_date_range){.date = row_dates[i].date,
							   .lo = lo->value->v.i64,
							   .hi = hi->value->v.i64};
			return 0;
		}
	}
	if ((lo->rule->flags & ATTR_OBJECT) != 0) {
		return eng_fail(l->r, ENG_E_FEATURE, "Locate by this attribute not supported");
	}
	f->name = lo->name;
	f->match = KEEL_STORE_MATCH_RANGE;
	if ((err = encode(l, lo->value, &f->value, &f->value_len, &text)) != 0 ||
	    (err = encode(l, hi->value, &f->value_hi, &f->value_hi_len, &text)) != 0) {
		return err;
	}
	l->q.num_filters++;
	return 0;
}

/* Attribute |i| of |a| is a date: the range it makes with a second instance, if any. */
static int add_date_attr(struct loc *l, const struct eng_attr *a, size_t n, size_t i)
{
	const struct eng_attr *other = &a[i];

	for (size_t k = 0; k < n; k++) {
		if (k != i && a[k].rule == a[i].rule) {
			if (k < i) {
				return 0; /* the range was added with the first instance */
			}
			other = &a[k];
			break;
		}
	}
	if (other->value->v.i64 < a[i].value->v.i64) {
		return add_date(l, other, &a[i]);
	}
	return add_date(l, &a[i], other);
}

static int add_filter(struct loc *l, const struct eng_attr *a)
{
	struct keel_store_filter *f = &l->filters[l->q.num_filters];
	int err;

	switch (a->rule->tag) {
	case KMIP_TAG_UNIQUE_IDENTIFIER:
		l->q.uid = eng_strdup(l->r, a->value->v.text, a->value->len);
		return l->q.uid != NULL ? 0 : ENG_E_INTERNAL;
	case KMIP_TAG_OBJECT_TYPE:
		l->q.has_object_type = true;
		l->q.object_type = a->value->v.u32;
		return 0;
	case KMIP_TAG_STATE:
		l->q.has_state = true;
		l->q.state = a->value->v.u32;
		return 0;
	default:
		break;
	}
	if ((a->rule->flags & ATTR_OBJECT) != 0) {
		return eng_fail(l->r, ENG_E_FEATURE, "Locate by this attribute not supported");
	}
	if ((err = encode(l, a->value, &f->value, &f->value_len, &f->text)) != 0) {
		return err;
	}
	f->name = a->name;
	l->q.num_filters++;
	return 0;
}

/*
 * Storage Status Mask (§4.9): on-line objects unless the client asks for
 * archived ones. Destroyed objects are found only when asked for: by the mask
 * (2.0 §6.1.27), or by State or Destroy Date in the request.
 */
static void add_storage_mask(struct loc *l, const struct kmip_locate_request *lq)
{
	int32_t mask = lq->has_storage_status_mask ? lq->storage_status_mask : STORAGE_ON_LINE;
	struct keel_store_filter *f = &l->filters[l->q.num_filters];
	bool by_destroy_date = false;

	for (size_t i = 0; i < l->q.num_dates; i++) {
		by_destroy_date |= l->dates[i].date == KEEL_STORE_DATE_DESTROY;
	}
	if ((mask & STORAGE_DESTROYED) == 0 && !l->q.has_state && !by_destroy_date) {
		l->dates[l->q.num_dates++] =
		    (struct keel_store_date_range){.date = KEEL_STORE_DATE_DESTROY, .unset = true};
	}
	if ((mask & (STORAGE_ON_LINE | STORAGE_ARCHIVAL)) == (STORAGE_ON_LINE | STORAGE_ARCHIVAL)) {
		return;
	}
	f->name = "Archive Date";
	f->match =
	    (mask & STORAGE_ARCHIVAL) != 0 ? KEEL_STORE_MATCH_PRESENT : KEEL_STORE_MATCH_ABSENT;
	l->q.num_filters++;
}

static int build_response(struct eng_req *r, char **uids, size_t n, void **out)
{
	struct kmip_locate_response *p = eng_alloc(r, sizeof(*p));

	if (p == NULL ||
	    (p->unique_identifiers = eng_alloc(r, (n + 1) * sizeof(struct kmip_text))) == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < n; i++) {
		p->unique_identifiers[i].s = eng_strdup(r, uids[i], strlen(uids[i]));
		p->unique_identifiers[i].len = strlen(uids[i]);
	}
	p->num_unique_identifiers = n;
	/* One object found becomes the ID Placeholder for the batch's next items (§6.19.1). */
	if (n == 1) {
		snprintf(r->placeholder, sizeof(r->placeholder), "%s", uids[0]);
	}
	/* Located Items exists from 1.3 (§4.9). */
	if ((r->version & (KMIP_V1_0 | KMIP_V1_1 | KMIP_V1_2)) == 0) {
		p->has_located_items = true;
		p->located_items = (int32_t)n;
	}
	*out = p;
	return 0;
}

/* Maximum Items and Offset Items (§4.9); the server's own limit still holds. */
static void add_paging(struct loc *l, const struct kmip_locate_request *lq)
{
	if (lq->has_maximum_items && lq->maximum_items > 0 &&
	    (size_t)lq->maximum_items < l->q.max_items) {
		l->q.max_items = (size_t)lq->maximum_items;
	}
	l->q.offset = lq->has_offset_items && lq->offset_items > 0 ? (size_t)lq->offset_items : 0;
}

/*
 * Object Group Member (KMIP 1.4 §4.9, 1.1+): Group Member Fresh finds only
 * fresh objects (§3.34). Group Member Default finds the group's default object,
 * which is server policy; Keel's is the oldest fresh one, else the oldest, so
 * that serving them in turn goes round the group.
 */
static int add_fresh(struct loc *l)
{
	struct keel_store_filter *f = &l->filters[l->q.num_filters];
	struct kmip_node *v = eng_node(l->r, KMIP_TAG_FRESH, KMIP_TYPE_BOOLEAN);
	int err;

	if (v == NULL) {
		return ENG_E_INTERNAL;
	}
	v->v.b = true;
	if ((err = encode(l, v, &f->value, &f->value_len, &f->text)) != 0) {
		return err;
	}
	f->name = "Fresh";
	l->q.num_filters++;
	return 0;
}

/* Runs the query; Group Member Default without a fresh match drops the Fresh filter. */
static int run_locate(struct loc *l, const struct kmip_locate_request *lq, size_t fresh_at,
		      char ***out_uids, size_t *out_num)
{
	int err = keel_store_locate(l->r->txn, &l->q, out_uids, out_num);

	if (err == 0 && *out_num == 0 && lq->has_object_group_member &&
	    lq->object_group_member == KMIP_OBJECT_GROUP_MEMBER_GROUP_MEMBER_DEFAULT) {
		l->filters[fresh_at] = l->filters[--l->q.num_filters];
		keel_store_uids_free(*out_uids, *out_num);
		*out_uids = NULL;
		err = keel_store_locate(l->r->txn, &l->q, out_uids, out_num);
	}
	return err != 0 ? eng_store_err(l->r, err, "locate") : 0;
}

static int add_attrs(struct loc *l, const struct eng_attr *attrs, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n && err == 0; i++) {
		err = attrs[i].rule->type == KMIP_TYPE_DATE_TIME ? add_date_attr(l, attrs, n, i)
								 : add_filter(l, &attrs[i]);
	}
	return err;
}

int op_locate(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_locate_request *lq = req;
	struct kmip_template_attribute ta = {.attribute = lq->attribute,
					     .num_attribute = lq->num_attribute};
	struct loc l = {
	    .r = r,
	    .q = {.owner = r->who->fingerprint_hex,
		  .grantee = r->who->fingerprint_hex, /* any grant lets it find the object */
		  .max_items = r->e->max_locate_items}};
	struct eng_attr *attrs = NULL;
	char **uids = NULL;
	size_t n = 0, num_uids = 0, fresh_at = 0;
	int err;

	if ((err = attr_collect(r, r->v2 ? NULL : &ta, lq->attributes, &attrs, &n)) != 0) {
		return err;
	}
	/* Room for Fresh (Object Group Member) and the Storage Status Mask. */
	l.filters = eng_alloc(r, (n + 2) * sizeof(*l.filters));
	l.dates = eng_alloc(r, (n + 2) * sizeof(*l.dates));
	l.blobs = calloc(2 * n + 2, sizeof(*l.blobs));
	if (l.filters == NULL || l.dates == NULL || l.blobs == NULL) {
		err = ENG_E_INTERNAL;
		goto out;
	}
	l.q.filters = l.filters;
	l.q.dates = l.dates;
	add_paging(&l, lq);
	if ((err = add_attrs(&l, attrs, n)) == 0 && lq->has_object_group_member) {
		fresh_at = l.q.num_filters;
		err = add_fresh(&l);
	}
	if (err == 0) {
		add_storage_mask(&l, lq);
		err = run_locate(&l, lq, fresh_at, &uids, &num_uids);
	}
	if (err == 0) {
		err = build_response(r, uids, num_uids, out);
	}
out:
	for (size_t i = 0; i < l.num_blobs; i++) {
		free(l.blobs[i]);
	}
	free(l.blobs);
	keel_store_uids_free(uids, num_uids);
	return err;
}
