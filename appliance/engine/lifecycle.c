/*
 * The lifecycle of managed objects (KMIP 1.4 §3.22, Figure 1):
 *   Pre-Active -> Active            Activate, or Activation Date reached
 *   Pre-Active, Active -> Deactivated   Revoke (reason other than compromise)
 *   any but Destroyed* -> Compromised   Revoke with Key/CA Compromise
 *   Pre-Active, Deactivated -> Destroyed, Compromised -> Destroyed Compromised
 * Dates follow each transition (§3.23-§3.32); Last Change Date every change.
 * Access is checked here: the owner, a grantee as far as its grant goes
 * (manage.h), or an administrator; to anyone else the object does not exist.
 */
#include "engine_int.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/* Whether the requester may run the current item on |o| (engine_int.h, eng_load). */
static int authorise(struct eng_req *r, const struct keel_store_object *o)
{
	uint32_t level = 0;
	int err;

	if (r->admin || strcmp(o->owner, r->who->fingerprint_hex) == 0) {
		return 0;
	}
	if ((err = keel_store_grant_level(r->txn, o->owner, o->uid, r->who->fingerprint_hex,
					  &level)) != 0) {
		return eng_store_err(r, err, "reading grants");
	}
	if (level == 0) {
		return ENG_E_ITEM_NOT_FOUND;
	}
	if (r->grant_needed == 0 || level < r->grant_needed) {
		keel_info("engine: client %s: %s is granted, but not for this operation",
			  r->who->subject, o->uid);
		return ENG_E_PERMISSION;
	}
	return 0;
}

int eng_load_object(struct eng_req *r, const char *uid, struct keel_store_object *out)
{
	int err = keel_store_object_get(r->txn, uid, NULL, out);

	if (err != 0) {
		return eng_store_err(r, err, "loading object");
	}
	if ((err = authorise(r, out)) != 0) {
		keel_store_object_cleanup(out);
	}
	return err;
}

int eng_load(struct eng_req *r, const char *uid, size_t uid_len, struct keel_store_object *out)
{
	char buf[KEEL_STORE_UID_MAX + 1];
	int err;

	if (uid == NULL) {
		/* ID Placeholder: the UID the previous item produced (1.4 §6.19.1). */
		if (r->placeholder[0] == '\0') {
			return eng_fail(r, ENG_E_MISSING_DATA, "Unique Identifier missing");
		}
		snprintf(buf, sizeof(buf), "%s", r->placeholder);
	} else if (uid_len == 0 || uid_len > KEEL_STORE_UID_MAX || memchr(uid, 0, uid_len)) {
		return eng_fail(r, ENG_E_ITEM_NOT_FOUND, NULL);
	} else {
		memcpy(buf, uid, uid_len);
		buf[uid_len] = '\0';
	}
	snprintf(r->uid, sizeof(r->uid), "%s", buf);
	if ((err = eng_load_object(r, buf, out)) != 0) {
		return eng_fail(r, err, NULL);
	}
	snprintf(r->placeholder, sizeof(r->placeholder), "%s", buf);
	return 0;
}

int eng_save(struct eng_req *r, struct keel_store_object *o)
{
	int err;

	o->last_change_date = r->now;
	if ((err = keel_store_object_update(r->txn, o)) != 0) {
		return eng_store_err(r, err, "updating object");
	}
	return 0;
}

int eng_activate(struct eng_req *r, struct keel_store_object *o)
{
	if (o->state != KMIP_STATE_PRE_ACTIVE) {
		return eng_fail(r, ENG_E_WRONG_STATE, "object is not Pre-Active");
	}
	o->state = KMIP_STATE_ACTIVE;
	o->activation_date = r->now;
	return eng_save(r, o);
}

static bool is_destroyed(uint32_t state)
{
	return state == KMIP_STATE_DESTROYED || state == KMIP_STATE_DESTROYED_COMPROMISED;
}

int eng_revoke(struct eng_req *r, struct keel_store_object *o, uint32_t reason, int64_t occurrence)
{
	bool compromise = reason == KMIP_REVOCATION_REASON_CODE_KEY_COMPROMISE ||
			  reason == KMIP_REVOCATION_REASON_CODE_CA_COMPROMISE;

	if (is_destroyed(o->state) || o->state == KMIP_STATE_COMPROMISED) {
		return eng_fail(r, ENG_E_WRONG_STATE, "object already revoked or destroyed");
	}
	if (compromise) {
		/* §3.30: Compromise Date is when the server learnt of it. */
		o->state = KMIP_STATE_COMPROMISED;
		o->compromise_date = r->now;
		o->compromise_occurrence_date = occurrence != 0 ? occurrence : r->now;
	} else if (o->state == KMIP_STATE_DEACTIVATED) {
		return eng_fail(r, ENG_E_WRONG_STATE, "object already deactivated");
	} else {
		o->state = KMIP_STATE_DEACTIVATED;
		o->deactivation_date = r->now;
	}
	return eng_save(r, o);
}

int eng_destroy(struct eng_req *r, struct keel_store_object *o)
{
	/* §4.21: an Active object is not destroyed; revoke it first. */
	if (o->state == KMIP_STATE_ACTIVE) {
		return eng_fail(r, ENG_E_WRONG_STATE, "object is Active");
	}
	if (is_destroyed(o->state)) {
		return eng_fail(r, ENG_E_WRONG_STATE, "object already destroyed");
	}
	o->state = o->state == KMIP_STATE_COMPROMISED ? KMIP_STATE_DESTROYED_COMPROMISED
						      : KMIP_STATE_DESTROYED;
	o->destroy_date = r->now;
	/* The wrapped material goes; the object and its attributes stay (§3.22). */
	keel_store_object_cleanup(o);
	o->crk_version = 0;
	return eng_save(r, o);
}
