/*
 * The keys that cryptographic operations use (KMIP 1.4 §4.29-§4.34): the
 * object must be the requester's, hold key material, allow the operation in
 * its Cryptographic Usage Mask (§3.19) and be in a state that permits it
 * (§3.22: only an Active key protects; Deactivated and Compromised keys may
 * still decrypt and verify what they protected) and its dates (§3.25, §3.26:
 * Process Start Date, Protect Stop Date). The material is unwrapped
 * into locked memory for the length of one operation.
 */
#include "engine_int.h"

#include <string.h>

#include "log.h"

/* §3.22 with §4.29-§4.34: protecting needs Active; processing also Deactivated/Compromised. */
static int check_state(struct eng_req *r, const struct keel_store_object *o, bool protect)
{
	if (o->blob == NULL) {
		return eng_fail(r, ENG_E_DESTROYED, NULL);
	}
	if (o->state == KMIP_STATE_ACTIVE) {
		return 0;
	}
	if (!protect &&
	    (o->state == KMIP_STATE_DEACTIVATED || o->state == KMIP_STATE_COMPROMISED)) {
		return 0;
	}
	return eng_fail(r, ENG_E_WRONG_STATE,
			protect ? "key is not Active"
				: "key is not Active, Deactivated or Compromised");
}

/* A stored Date-Time attribute of |uid|; 0 if absent. */
static int64_t stored_date(struct eng_req *r, const char *uid, const char *name)
{
	struct keel_store_attr *sa = NULL;
	const struct kmip_node *v = NULL;
	size_t n = 0;
	int64_t t = 0;

	if (keel_store_attr_list(r->txn, uid, name, &sa, &n) == 0 && n > 0 &&
	    attr_load_value(r, &sa[0], &v) == 0 && v->type == KMIP_TYPE_DATE_TIME) {
		t = v->v.i64;
	}
	keel_store_attrs_free(sa, n);
	return t;
}

/* §3.25, §3.26: no protecting from the Protect Stop Date on, no processing before the Process
 * Start Date (the OASIS CS-AC-M-8 and CS-BC-M-14 cases). */
static int check_dates(struct eng_req *r, const struct keel_store_object *o, bool protect)
{
	int64_t t = stored_date(r, o->uid, protect ? "Protect Stop Date" : "Process Start Date");

	if (t != 0 && (protect ? r->now >= t : r->now < t)) {
		return eng_fail(r, ENG_E_WRONG_STATE,
				protect ? "past the key's Protect Stop Date"
					: "before the key's Process Start Date");
	}
	return 0;
}

/* §3.19: the operation's bit must be set; a key without a mask allows nothing. */
static int check_mask(struct eng_req *r, const struct keel_store_object *o, uint32_t need)
{
	uint32_t mask = (uint32_t)eng_stored_int(r, o->uid, "Cryptographic Usage Mask");

	if ((mask & need) != need) {
		keel_debug("engine: %s: usage mask 0x%x lacks 0x%x", o->uid, mask, need);
		return eng_fail(r, ENG_E_USAGE_MASK,
				"Cryptographic Usage Mask does not allow this");
	}
	return 0;
}

int eng_key_open(struct eng_req *r, const char *uid, size_t uid_len, const struct eng_key_use *use,
		 struct eng_key *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	if ((err = eng_load(r, uid, uid_len, &out->o)) != 0) {
		goto out;
	}
	if (out->o.object_type != use->object_type &&
	    (use->alt_type == 0 || out->o.object_type != use->alt_type)) {
		err = eng_fail(r, ENG_E_OBJECT_TYPE, NULL);
		goto out;
	}
	if ((err = check_state(r, &out->o, use->protect)) != 0 ||
	    (err = check_dates(r, &out->o, use->protect)) != 0 ||
	    (err = check_mask(r, &out->o, use->mask)) != 0) {
		goto out;
	}
	out->algorithm = (uint32_t)eng_stored_int(r, out->o.uid, "Cryptographic Algorithm");
	if ((err = hsm_unwrap(r->e->hsm, (const uint8_t *)out->o.uid, strlen(out->o.uid),
			      out->o.blob, out->o.blob_len, &out->secret)) != 0) {
		keel_err("engine: unwrapping %s: %s", out->o.uid, hsm_strerror(err));
		err = eng_hsm_fail(r, err);
	}
out:
	if (err != 0) {
		eng_key_close(out);
	}
	return err;
}

void eng_key_close(struct eng_key *k)
{
	hsm_secret_free(k->secret);
	k->secret = NULL;
	keel_store_object_cleanup(&k->o);
}

int eng_key_params(struct eng_req *r, const struct eng_key *k,
		   const struct kmip_cryptographic_parameters *given,
		   const struct kmip_cryptographic_parameters **out)
{
	struct kmip_cryptographic_parameters *cp = NULL;
	struct keel_store_attr *sa = NULL;
	const struct kmip_node *v = NULL;
	size_t n = 0;
	int err;

	*out = given;
	if (given != NULL) {
		return 0;
	}
	if ((err = keel_store_attr_list(r->txn, k->o.uid, "Cryptographic Parameters", &sa, &n)) !=
	    0) {
		return eng_store_err(r, err, "listing attributes");
	}
	if (n > 0 && (err = attr_load_value(r, &sa[0], &v)) == 0) {
		if ((cp = eng_alloc(r, sizeof(*cp))) == NULL) {
			err = ENG_E_INTERNAL;
		} else if (kmip_struct_decode(&kmip_cryptographic_parameters_desc, v, 0, r->arena,
					      cp, NULL) != 0) {
			keel_err("engine: %s: stored Cryptographic Parameters do not decode",
				 k->o.uid);
			err = eng_fail(r, ENG_E_INTERNAL, NULL);
		}
	}
	keel_store_attrs_free(sa, n);
	*out = err == 0 ? cp : NULL;
	return err;
}

/* Streaming (Correlation Value, Init/Final Indicator, §4.29) is not served: single shot only. */
int eng_single_shot(struct eng_req *r, size_t correlation_len, bool has_init, bool init,
		    bool has_final, bool final)
{
	bool streaming = correlation_len > 0 || (has_init && !(init && has_final && final)) ||
			 (has_final && !final);

	return streaming ? eng_fail(r, ENG_E_FEATURE, "streaming operations are not supported") : 0;
}
