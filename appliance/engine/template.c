/*
 * Templates (KMIP 1.4 §2.2.6; removed in 2.0): a named list of attributes
 * that a Create, Create Key Pair, Register or Re-key names in its
 * Template-Attribute (§2.1.8) instead of repeating them.
 *
 * A Template is kept like any other object: its Name instances are its
 * attributes, so Locate, Get Attributes and Destroy treat it as usual, and
 * its attribute list, TTLV-encoded, is its material, wrapped by the CRK like
 * every other. Get returns the list as registered.
 */
#include "engine_int.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/* Longest Name Value looked up; longer names cannot name a stored template. */
#define TEMPLATE_NAME_MAX 256

/* The encoding kept: an Attribute is the same in every 1.x version, and Templates are 1.x only. */
#define TEMPLATE_VERSION KMIP_V1_4

int eng_template_take(struct eng_req *r, const struct kmip_template *t, const uint8_t **material,
		      size_t *material_len, struct eng_attr **io_attrs, size_t *io_num)
{
	struct eng_attr *all = eng_alloc(r, (*io_num + t->num_attributes + 1) * sizeof(*all));
	struct eng_attr a;
	struct kmip_writer w;
	const uint8_t *p;
	uint8_t *copy;
	size_t n = *io_num, len;
	int err = 0;

	if (all == NULL) {
		return ENG_E_INTERNAL;
	}
	memcpy(all, *io_attrs, n * sizeof(*all));
	/* Every attribute must be one a client may give; only the Names are the template's own. */
	for (size_t i = 0; i < t->num_attributes; i++) {
		if ((err = attr_from_v1(r, &t->attributes[i], &a)) != 0) {
			return err;
		}
		if (strcmp(a.name, "Name") == 0) {
			all[n++] = a;
		}
	}
	kmip_writer_init(&w, r->e->lim.max_message_len);
	if (kmip_struct_encode(&w, &kmip_template_desc, t, TEMPLATE_VERSION) != 0 ||
	    kmip_writer_finish(&w, &p, &len) != 0 ||
	    (copy = kmip_arena_alloc(r->arena, len)) == NULL) {
		err = eng_fail(r, ENG_E_INVALID_FIELD, "Template not encodable");
	} else {
		memcpy(copy, p, len);
		*material = copy;
		*material_len = len;
		*io_attrs = all;
		*io_num = n;
	}
	kmip_writer_cleanup(&w);
	return err;
}

int eng_template_decode(struct eng_req *r, struct hsm_secret *material, struct kmip_template **out)
{
	struct kmip_template *t = eng_alloc(r, sizeof(*t));
	struct kmip_node *node;

	if (t == NULL) {
		return ENG_E_INTERNAL;
	}
	if (kmip_decode_tree(hsm_secret_data(material), hsm_secret_len(material), &r->e->lim,
			     r->arena, &node) != 0 ||
	    kmip_struct_decode(&kmip_template_desc, node, TEMPLATE_VERSION, r->arena, t, NULL) !=
		0) {
		keel_err("engine: a stored Template does not decode");
		return eng_fail(r, ENG_E_INTERNAL, "stored Template damaged");
	}
	*out = t;
	return 0;
}

/* The requester's Template named |name|, its attribute list unwrapped. */
static int load_template(struct eng_req *r, const struct kmip_name *name,
			 struct kmip_template **out)
{
	char text[TEMPLATE_NAME_MAX + 1];
	struct keel_store_filter f = {
	    .name = "Name", .match = KEEL_STORE_MATCH_EQUAL, .text = text};
	struct keel_store_query q = {.owner = r->who->fingerprint_hex,
				     .has_object_type = true,
				     .object_type = KMIP_OBJECT_TYPE_TEMPLATE,
				     .filters = &f,
				     .num_filters = 1,
				     .max_items = 1};
	struct keel_store_object o = {0};
	struct hsm_secret *material = NULL;
	char **uids = NULL;
	size_t num = 0;
	int err;

	if (name->name_value_len > TEMPLATE_NAME_MAX) {
		return eng_fail(r, ENG_E_ITEM_NOT_FOUND, "Template not found");
	}
	snprintf(text, sizeof(text), "%.*s", (int)name->name_value_len, name->name_value);
	if ((err = keel_store_locate(r->txn, &q, &uids, &num)) != 0) {
		return eng_store_err(r, err, "finding a Template");
	}
	if (num == 0) {
		err = eng_fail(r, ENG_E_ITEM_NOT_FOUND, "Template not found");
	} else if ((err = keel_store_object_get(r->txn, uids[0], q.owner, &o)) != 0) {
		err = eng_store_err(r, err, "loading a Template");
	} else if (o.blob == NULL) {
		err = eng_fail(r, ENG_E_ITEM_NOT_FOUND, "Template destroyed");
	} else if (hsm_unwrap(r->e->hsm, (const uint8_t *)o.uid, strlen(o.uid), o.blob, o.blob_len,
			      &material) != 0) {
		err = eng_fail(r, ENG_E_CRYPTO, NULL);
	} else if ((err = eng_track_secret(r, material)) == 0) {
		err = eng_template_decode(r, material, out);
	}
	keel_store_object_cleanup(&o);
	keel_store_uids_free(uids, num);
	return err;
}

static bool collected(const struct eng_attr *attrs, size_t num, const char *name)
{
	for (size_t i = 0; i < num; i++) {
		if (strcmp(attrs[i].name, name) == 0) {
			return true;
		}
	}
	return false;
}

/*
 * Whether a Template's |a| is passed on (§2.1.8): never its own Name; a
 * single-valued attribute only when neither the request nor an earlier
 * Template gave it; the instances of a multi-valued one always, before the
 * request's (the OASIS case TC-312-12 numbers them so).
 */
static bool inherits(const struct eng_attr *a, const struct eng_attr *explicit, size_t num_explicit,
		     const struct eng_attr *taken, size_t num_taken)
{
	if (strcmp(a->name, "Name") == 0) {
		return false;
	}
	if ((a->rule->flags & ATTR_MULTI) != 0) {
		return true;
	}
	return !collected(explicit, num_explicit, a->name) && !collected(taken, num_taken, a->name);
}

/* The attributes of the Templates |names| designate, then |explicit|. */
int eng_template_expand(struct eng_req *r, const struct kmip_name *names, size_t num_names,
			struct eng_attr *explicit, size_t num_explicit, struct eng_attr **out,
			size_t *out_num)
{
	struct kmip_template **ts = eng_alloc(r, num_names * sizeof(*ts) + 1);
	struct eng_attr *all;
	size_t cap = num_explicit, n;
	int err;

	if (ts == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < num_names; i++) {
		if ((err = load_template(r, &names[i], &ts[i])) != 0) {
			return err;
		}
		cap += ts[i]->num_attributes;
	}
	if ((all = eng_alloc(r, cap * sizeof(*all) + 1)) == NULL) {
		return ENG_E_INTERNAL;
	}
	n = 0;
	for (size_t i = 0; i < num_names; i++) {
		size_t before = n; /* instances within one Template all pass */

		for (size_t j = 0; j < ts[i]->num_attributes; j++) {
			struct eng_attr a;

			if ((err = attr_from_v1(r, &ts[i]->attributes[j], &a)) != 0) {
				return err;
			}
			if (inherits(&a, explicit, num_explicit, all, before)) {
				all[n++] = a;
			}
		}
	}
	memcpy(all + n, explicit, num_explicit * sizeof(*all));
	n += num_explicit;
	*out = all;
	*out_num = n;
	return 0;
}
