/*
 * Key management for administrators (issue 5): the engine's side of the
 * admin API's keys, grants and audit routes (appliance/admin/, keelctl keys,
 * grant, revoke-grant, audit). Like keel_engine_handle, these are plain calls
 * that a privilege-separated keeld can forward over its socket pair; they do
 * no I/O beyond the store and never return key material.
 *
 * Every change is made in one store transaction with its audit row, whose
 * client is the administrator's |actor| and whose detail holds the
 * arguments; reads are not audited. Lifecycle changes run the KMIP handlers
 * themselves (Activate, Revoke, Destroy), so an administrator is held to the
 * same state rules as a client (KMIP 1.4 §3.22): an Active key is revoked
 * before it is destroyed.
 *
 * What a grant permits. Every object belongs to the identity that created
 * or registered it. An administrator may grant another identity (the
 * grantee) one object, or every object an owner has and will have, at one of
 * two levels:
 *   use     find it (Locate), read it (Get, Get Attributes, Get Attribute
 *           List, Check, Obtain Lease, Get Usage Allocation), use it
 *           (Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC Verify, and
 *           as the wrapping key of a Get). What a second vCenter or a host
 *           sharing a key needs.
 *   manage  use, plus change its attributes (Add, Modify, Delete, Set,
 *           Adjust Attribute) and its state (Activate, Revoke, Archive,
 *           Recover).
 * No grant permits Destroy or Re-key: destroying a key locks the VMs it
 * protects, and a re-keyed successor would belong to the grantee, so both
 * stay with the owner and administrators. Grants are made, listed and
 * revoked only here (no KMIP operation reads or changes them), do not chain
 * (a grantee cannot pass them on), and a grant on one object goes with it.
 * Without a grant another identity's object does not exist for a client
 * (Item Not Found); a grantee asking for more than its grant gets Permission
 * Denied. Revoking a grant takes effect at the grantee's next request.
 */
#ifndef KEEL_ENGINE_MANAGE_H
#define KEEL_ENGINE_MANAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define KEEL_MANAGE_WUR __attribute__((warn_unused_result))

enum keel_grant_level {
	KEEL_GRANT_USE = 1,
	KEEL_GRANT_MANAGE = 2,
};

/* "use" or "manage"; NULL for another value. */
const char *keel_grant_level_name(uint32_t level);
/* Parses "use" or "manage"; -1 for anything else. */
int keel_grant_level_parse(const char *name, uint32_t *out_level) KEEL_MANAGE_WUR;

/* KMIP enumeration values by their JSON names ("PreActive", "KeyCompromise",
 * "Activate") for |tag| (KMIP_TAG_STATE, ...); NULL / -1 when unknown. */
const char *keel_manage_enum_name(uint32_t tag, uint32_t value);
int keel_manage_enum_parse(uint32_t tag, const char *name, uint32_t *out_value) KEEL_MANAGE_WUR;

/* An audit row's operation by name: KMIP's ("Get"), or "Grant" / "RevokeGrant"
 * (KEEL_AUDIT_OP_*); NULL / -1 when unknown. */
const char *keel_manage_op_name(uint32_t operation);
int keel_manage_op_parse(const char *name, uint32_t *out_operation) KEEL_MANAGE_WUR;

/* Whether |s| has the form of a client identity: 64 lowercase hex digits. */
bool keel_manage_is_fingerprint(const char *s);

enum keel_manage_err {
	KEEL_MANAGE_OK = 0,
	KEEL_MANAGE_E_NOT_FOUND = -1, /* no such object or grant: HTTP 404 */
	KEEL_MANAGE_E_INVALID = -2,   /* a bad argument: 400 */
	KEEL_MANAGE_E_STATE = -3,     /* not permitted in the object's state: 409 */
	KEEL_MANAGE_E_INTERNAL = -4,  /* store or memory: 500 */
};

/* One administrator's call: who acts (audited), and the failure's message. */
struct keel_manage_ctx {
	const char *actor; /* e.g. "admin:<certificate subject>", "root@unix" */
	char msg[160];	   /* set on failure: what to tell the administrator */
};

/* A key as lists show it. Strings live until the callback returns; NULL when absent. */
struct keel_key_summary {
	const char *uid;
	const char *owner; /* fingerprint hex */
	uint32_t object_type, state;
	int64_t initial_date, activation_date, deactivation_date, destroy_date;
	const char *name;	/* first Name */
	const char *vm_name;	/* x-Name: VM or host name as vCenter sets it */
	const char *component;	/* x-Component: "Virtual Machine", "ESXi Server", ... */
	const char *identifier; /* x-Identifier: the VM's or host's UUID */
};

typedef int (*keel_key_fn)(void *ctx, const struct keel_key_summary *k);

/* A custom or standard attribute that must have a text instance equal to |text|. */
struct keel_key_match {
	const char *name; /* "x-Name", "x-Component", "Name", ... */
	const char *text;
};

struct keel_key_filter {
	const char *owner; /* fingerprint hex; NULL: every owner */
	bool has_state;
	uint32_t state;
	const struct keel_key_match *matches;
	size_t num_matches;
	size_t offset, limit; /* limit 0: the engine's Locate ceiling */
};

/* Calls |fn| for each key |f| selects, oldest first; stops when it returns non-zero. */
int keel_manage_keys_find(struct keel_engine *e, struct keel_manage_ctx *c,
			  const struct keel_key_filter *f, keel_key_fn fn,
			  void *ctx) KEEL_MANAGE_WUR;

/* One attribute of a key, its value in KMIP's JSON encoding ({"tag":..,"type":..,"value":..}). */
struct keel_key_attr {
	const char *name;
	int32_t index;
	const char *json;
};

typedef int (*keel_key_attr_fn)(void *ctx, const struct keel_key_attr *a);

/* The summary of |uid|, then each of its attributes; never key material. */
int keel_manage_key_show(struct keel_engine *e, struct keel_manage_ctx *c, const char *uid,
			 keel_key_fn summary, keel_key_attr_fn attr, void *ctx) KEEL_MANAGE_WUR;

/* Activate, Revoke (|reason| a KMIP Revocation Reason Code, |message| may be NULL) and
 * Destroy |uid| as the KMIP operations would for its owner. */
int keel_manage_key_activate(struct keel_engine *e, struct keel_manage_ctx *c,
			     const char *uid) KEEL_MANAGE_WUR;
int keel_manage_key_revoke(struct keel_engine *e, struct keel_manage_ctx *c, const char *uid,
			   uint32_t reason, const char *message) KEEL_MANAGE_WUR;
int keel_manage_key_destroy(struct keel_engine *e, struct keel_manage_ctx *c,
			    const char *uid) KEEL_MANAGE_WUR;
/* Revokes |uid| (Cessation of Operation, |message|) if it is Active, then destroys its
 * material: what the Key Protect mirror does when the object's escrow key was deleted
 * there. *out_done is false when it was destroyed already (nothing is done or audited). */
int keel_manage_key_withdraw(struct keel_engine *e, struct keel_manage_ctx *c, const char *uid,
			     const char *message, bool *out_done) KEEL_MANAGE_WUR;

/*
 * Grants |grantee| |level| on object |uid| or, with |uid| NULL, on every
 * object of |owner| (ignored when |uid| is given: the object's owner is
 * used). Identities are fingerprints (64 lowercase hex); the admin API
 * resolves client names. Granting again changes the level.
 */
int keel_manage_grant(struct keel_engine *e, struct keel_manage_ctx *c, const char *owner,
		      const char *uid, const char *grantee, uint32_t level) KEEL_MANAGE_WUR;
/* Removes the grant keel_manage_grant made with the same arguments. */
int keel_manage_revoke_grant(struct keel_engine *e, struct keel_manage_ctx *c, const char *owner,
			     const char *uid, const char *grantee) KEEL_MANAGE_WUR;

/*
 * Revokes every grant of or to |identity| (a fingerprint), for a client being
 * removed: a certificate registered again later must not find old grants.
 * Audited as one RevokeGrant; *out_num says how many went.
 */
int keel_manage_forget_grants(struct keel_engine *e, struct keel_manage_ctx *c,
			      const char *identity, size_t *out_num) KEEL_MANAGE_WUR;

/* A grant as listed; uid "" is owner-wide. */
struct keel_grant_info {
	const char *owner, *uid, *grantee, *granted_by;
	uint32_t level;
	int64_t time;
};

typedef int (*keel_grant_fn)(void *ctx, const struct keel_grant_info *g);

/* Grants of |owner| to |grantee| (either NULL: any), oldest first. */
int keel_manage_grants_list(struct keel_engine *e, struct keel_manage_ctx *c, const char *owner,
			    const char *grantee, keel_grant_fn fn, void *ctx) KEEL_MANAGE_WUR;

/* Audit rows |f| selects, newest first, on a snapshot (store.h). */
struct keel_store_audit_filter;
struct keel_store_audit;
struct keel_store_audit_check;
int keel_manage_audit_show(struct keel_engine *e, struct keel_manage_ctx *c,
			   const struct keel_store_audit_filter *f,
			   int (*fn)(void *ctx, const struct keel_store_audit *row),
			   void *ctx) KEEL_MANAGE_WUR;
/* Recomputes the audit chain on a snapshot and checks |anchor| (may be NULL; store.h);
 * 0 with out->fault telling whether it holds. */
struct keel_store_audit_anchor;
int keel_manage_audit_verify(struct keel_engine *e, struct keel_manage_ctx *c,
			     const struct keel_store_audit_anchor *anchor,
			     struct keel_store_audit_check *out) KEEL_MANAGE_WUR;

#endif
