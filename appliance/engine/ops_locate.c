/*
 * Locate (KMIP 1.4 §4.9): objects of the requesting client whose attributes
 * match every one given. Object Type and State are columns; Name and text
 * attributes use the store's text index; others compare encoded values.
 */
#include "engine_int.h"

#include <stdlib.h>
#include <string.h>

static int add_filter(struct eng_req *r, const struct eng_attr *a, struct keel_store_query *q,
		      struct keel_store_filter *f, uint8_t **blob)
{
	const char *text = NULL;
	int err;

	if (a->rule->tag == KMIP_TAG_OBJECT_TYPE) {
		q->has_object_type = true;
		q->object_type = a->value->v.u32;
		return 0;
	}
	if (a->rule->tag == KMIP_TAG_STATE) {
		q->has_state = true;
		q->state = a->value->v.u32;
		return 0;
	}
	if ((a->rule->flags & ATTR_OBJECT) != 0) {
		return eng_fail(r, ENG_E_FEATURE, "Locate by this attribute not supported yet");
	}
	if ((err = attr_encode_value(r, a->value, blob, &f->value_len, &text)) != 0) {
		return err;
	}
	f->name = a->name;
	f->text = text;
	f->value = *blob;
	q->num_filters++;
	return 0;
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
	/* Located Items exists from 1.3 (§4.9). */
	if ((r->version & (KMIP_V1_0 | KMIP_V1_1 | KMIP_V1_2)) == 0) {
		p->has_located_items = true;
		p->located_items = (int32_t)n;
	}
	*out = p;
	return 0;
}

int op_locate(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_locate_request *lq = req;
	struct keel_store_query q = {.owner = r->who->fingerprint_hex,
				     .max_items = r->e->max_locate_items};
	struct keel_store_filter *f;
	struct eng_attr *attrs = NULL;
	uint8_t **blobs;
	char **uids = NULL;
	size_t n = 0, num_uids = 0;
	int err;

	struct kmip_template_attribute ta = {.attribute = lq->attribute,
					     .num_attribute = lq->num_attribute};
	if ((err = attr_collect(r, r->v2 ? NULL : &ta, lq->attributes, &attrs, &n)) != 0) {
		return err;
	}
	f = eng_alloc(r, (n + 1) * sizeof(*f));
	blobs = calloc(n + 1, sizeof(*blobs));
	if (f == NULL || blobs == NULL) {
		err = ENG_E_INTERNAL;
		goto out;
	}
	q.filters = f;
	for (size_t i = 0; i < n && err == 0; i++) {
		err = add_filter(r, &attrs[i], &q, &f[q.num_filters], &blobs[i]);
	}
	if (lq->has_maximum_items && lq->maximum_items > 0 &&
	    (size_t)lq->maximum_items < q.max_items) {
		q.max_items = (size_t)lq->maximum_items;
	}
	q.offset = lq->has_offset_items && lq->offset_items > 0 ? (size_t)lq->offset_items : 0;
	if (err == 0 && (err = keel_store_locate(r->txn, &q, &uids, &num_uids)) != 0) {
		err = eng_store_err(r, err, "locate");
	}
	if (err == 0) {
		err = build_response(r, uids, num_uids, out);
	}
out:
	for (size_t i = 0; blobs != NULL && i < n; i++) {
		free(blobs[i]);
	}
	free(blobs);
	keel_store_uids_free(uids, num_uids);
	return err;
}
