/*
 * Re-key (KMIP 1.4 §4.4) of a symmetric key: a new key of the same length
 * from the token's RNG, with the existing key's attributes, its Names moved
 * over, the two linked (Replacement / Replaced Object Link), and the
 * Activation Date shifted by Offset when one is given. Stored through the
 * same path as Create (eng_store_new).
 */
#include "engine_int.h"

#include <string.h>

#include "log.h"

/* Attributes the server sets afresh on the new key (§4.4 table), not copied. */
static bool fresh(const char *name)
{
	return strcmp(name, "Link") == 0 || strcmp(name, "Revocation Reason") == 0 ||
	       strcmp(name, "Digest") == 0;
}

static bool named_in(const struct eng_attr *list, size_t num, const char *name)
{
	for (size_t i = 0; i < num; i++) {
		if (strcmp(list[i].name, name) == 0) {
			return true;
		}
	}
	return false;
}

/* The existing key's attributes, except what the client's template replaces. */
static int copy_attrs(struct eng_req *r, const char *uid, struct eng_new_object *no)
{
	struct keel_store_attr *sa = NULL;
	struct eng_attr *all;
	size_t n = 0, k = 0;
	int err;

	if ((err = keel_store_attr_list(r->txn, uid, NULL, &sa, &n)) != 0) {
		return eng_store_err(r, err, "listing attributes");
	}
	if ((all = eng_alloc(r, (n + no->num_attrs + 2) * sizeof(*all))) == NULL) {
		err = ENG_E_INTERNAL;
		goto out;
	}
	for (size_t i = 0; i < n && err == 0; i++) {
		struct eng_attr *a = &all[k];

		a->rule = sa[i].name[0] == '_' ? &eng_internal_rule
					       : attr_rule_by_name(sa[i].name, strlen(sa[i].name));
		if (a->rule == NULL || fresh(sa[i].name) ||
		    named_in(no->attrs, no->num_attrs, sa[i].name)) {
			continue;
		}
		if ((a->name = eng_strdup(r, sa[i].name, strlen(sa[i].name))) == NULL ||
		    (err = attr_load_value(r, &sa[i], &a->value)) != 0) {
			err = ENG_E_INTERNAL;
			break;
		}
		k++;
	}
	memcpy(all + k, no->attrs, no->num_attrs * sizeof(*all));
	no->attrs = all;
	no->num_attrs += k;
out:
	keel_store_attrs_free(sa, n);
	return err;
}

/* The Replaced Object Link of the new key, appended to its attributes. */
static int link_back(struct eng_req *r, const char *old_uid, struct eng_new_object *no)
{
	struct kmip_node *v = eng_link_value(r, KMIP_LINK_TYPE_REPLACED_OBJECT_LINK, old_uid);

	if (v == NULL) {
		return ENG_E_INTERNAL;
	}
	no->attrs[no->num_attrs++] =
	    (struct eng_attr){.rule = attr_rule_by_tag(KMIP_TAG_LINK), .name = "Link", .value = v};
	return 0;
}

/* Names move from the existing key to its replacement (§4.4). */
static int drop_names(struct eng_req *r, const char *uid)
{
	int err = keel_store_attr_delete(r->txn, uid, "Name", -1);

	return err == 0 || err == KEEL_STORE_E_NOT_FOUND ? 0
							 : eng_store_err(r, err, "moving Names");
}

/* New key material of the existing key's length. */
static int new_material(struct eng_req *r, const char *uid, struct hsm_secret **out)
{
	int32_t bits = eng_stored_int(r, uid, "Cryptographic Length");

	if (bits <= 0 || bits % 8 != 0 || bits > 4096) {
		return eng_fail(r, ENG_E_INVALID_FIELD, "existing key has no usable length");
	}
	if (hsm_secret_new((size_t)bits / 8, out) != 0 ||
	    hsm_random(r->e->hsm, hsm_secret_data(*out), hsm_secret_len(*out)) != 0) {
		keel_err("engine: no key material from the token");
		return eng_fail(r, ENG_E_CRYPTO, NULL);
	}
	return 0;
}

static int rekey_store(struct eng_req *r, const struct kmip_re_key_request *q,
		       const struct keel_store_object *old, char *uid)
{
	struct eng_new_object no = {.object_type = old->object_type, .generated = true};
	struct hsm_secret *key = NULL;
	int err;

	if ((err = attr_collect(r, q->template_attribute, q->attributes, &no.attrs,
				&no.num_attrs)) != 0 ||
	    (err = eng_check_create_attrs(r, &no)) != 0 ||
	    (err = copy_attrs(r, old->uid, &no)) != 0 || (err = link_back(r, old->uid, &no)) != 0 ||
	    (err = new_material(r, old->uid, &key)) != 0) {
		goto out;
	}
	/* Offset: Activation Date = Initial Date + Offset; without it, the old key's (§4.4).
	 * An Activation Date in the client's template wins over both. */
	if (no.activation_date == 0) {
		no.activation_date =
		    q->has_offset ? r->now + (int64_t)q->offset : old->activation_date;
	}
	no.material = hsm_secret_data(key);
	no.material_len = hsm_secret_len(key);
	if ((err = drop_names(r, old->uid)) == 0 && (err = eng_store_new(r, &no, uid)) == 0) {
		err = eng_add_link(r, old->uid, KMIP_LINK_TYPE_REPLACEMENT_OBJECT_LINK, uid);
	}
out:
	hsm_secret_free(key);
	return err;
}

int op_rekey(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_re_key_request *q = req;
	struct kmip_re_key_response *p = eng_alloc(r, sizeof(*p));
	struct keel_store_object old = {0};
	char *uid = eng_alloc(r, KEEL_STORE_UID_MAX + 1);
	int err;

	if (p == NULL || uid == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_load(r, q->unique_identifier, q->unique_identifier_len, &old)) != 0) {
		goto out;
	}
	if (old.object_type != KMIP_OBJECT_TYPE_SYMMETRIC_KEY) {
		err = eng_fail(r, ENG_E_OBJECT_TYPE, "Re-key is for symmetric keys");
		goto out;
	}
	if (old.blob == NULL) {
		err = eng_fail(r, ENG_E_WRONG_STATE, "the existing key is destroyed");
		goto out;
	}
	if ((err = rekey_store(r, q, &old, uid)) != 0) {
		goto out;
	}
	p->unique_identifier = uid;
	p->unique_identifier_len = strlen(uid);
	*out = p;
out:
	keel_store_object_cleanup(&old);
	return err;
}
