/*
 * The backend interface behind store.h: each backend fills one const table
 * of functions and embeds struct keel_store / struct keel_store_txn first in
 * its own handles. store.c dispatches; only backends include this header.
 */
#ifndef KEEL_STORE_INT_H
#define KEEL_STORE_INT_H

#include "store.h"

struct keel_store_ops {
	void (*close)(struct keel_store *s);
	int (*schema_version)(struct keel_store *s, int *out_version);
	int (*begin)(struct keel_store *s, bool read_only, struct keel_store_txn **out_txn);
	int (*commit)(struct keel_store_txn *t);
	void (*rollback)(struct keel_store_txn *t);
	int (*run)(struct keel_store *s, keel_store_member_fn fn, void *arg);
	int (*submit)(struct keel_store *s, keel_store_member_fn fn, const void *arg,
		      size_t arg_len);
	int (*savepoint)(struct keel_store_txn *t, int what);
	int (*object_put)(struct keel_store_txn *t, const struct keel_store_object *o);
	int (*object_get)(struct keel_store_txn *t, const char *uid, const char *owner,
			  struct keel_store_object *out);
	int (*object_update)(struct keel_store_txn *t, const struct keel_store_object *o);
	int (*object_delete)(struct keel_store_txn *t, const char *uid);
	int (*attr_list)(struct keel_store_txn *t, const char *uid, const char *name,
			 struct keel_store_attr **out_attrs, size_t *out_num);
	int (*attr_add)(struct keel_store_txn *t, const char *uid,
			const struct keel_store_attr *attrs, size_t num);
	int (*attr_update)(struct keel_store_txn *t, const char *uid,
			   const struct keel_store_attr *a);
	int (*attr_delete)(struct keel_store_txn *t, const char *uid, const char *name,
			   int32_t index);
	int (*locate)(struct keel_store_txn *t, const struct keel_store_query *q, char ***out_uids,
		      size_t *out_num);
	int (*audit_append)(struct keel_store_txn *t, const struct keel_store_audit *a);
	int (*audit_count)(struct keel_store_txn *t, int64_t *out_count);
	int (*crk_counts)(struct keel_store_txn *t, struct keel_store_crk_count **out_counts,
			  size_t *out_num);
	int (*crk_stale)(struct keel_store_txn *t, uint32_t version, int64_t after, size_t max,
			 struct keel_store_stale **out_stale, size_t *out_num);
	int (*object_rewrap)(struct keel_store_txn *t, const char *uid, const uint8_t *old,
			     size_t old_len, uint32_t version, const uint8_t *blob,
			     size_t blob_len);
	int (*rotation_get)(struct keel_store_txn *t, struct keel_store_rotation *out);
	int (*rotation_put)(struct keel_store_txn *t, const struct keel_store_rotation *r);
	int (*snapshot)(struct keel_store *s, uint8_t **out_image, size_t *out_len);
	int (*restore)(struct keel_store *s, const uint8_t *image, size_t len, bool only_if_empty);
	int (*audit_scan)(struct keel_store_txn *t, const struct keel_store_audit_filter *f,
			  keel_store_audit_fn fn, void *ctx);
	int (*audit_verify)(struct keel_store_txn *t, const struct keel_store_audit_anchor *anchor,
			    struct keel_store_audit_check *out);
	int (*grant_put)(struct keel_store_txn *t, const struct keel_store_grant *g);
	int (*grant_delete)(struct keel_store_txn *t, const char *owner, const char *uid,
			    const char *grantee);
	int (*grant_level)(struct keel_store_txn *t, const char *owner, const char *uid,
			   const char *grantee, uint32_t *out_level);
	int (*grant_forget)(struct keel_store_txn *t, const char *identity, size_t *out_num);
	int (*grant_list)(struct keel_store_txn *t, const char *owner, const char *grantee,
			  struct keel_store_grant **out_grants, size_t *out_num);
	int (*object_count)(struct keel_store_txn *t, int64_t *out_count);
	int (*mirror_set)(struct keel_store_txn *t, bool on);
	int (*mirror_next)(struct keel_store_txn *t, int64_t after_seq, size_t max,
			   struct keel_store_mirror_entry *out, size_t *out_num);
	int (*mirror_settle)(struct keel_store_txn *t, const struct keel_store_mirror_entry *e,
			     bool done);
	int (*mirror_backlog)(struct keel_store_txn *t, int64_t *out_count);
	int (*mirror_rewraps)(struct keel_store_txn *t, int64_t *out_count);
	int (*mirror_rotated)(struct keel_store_txn *t, uint32_t crk_version,
			      const char *version_id, int64_t *out_queued);
	int (*mirror_root_get)(struct keel_store_txn *t, struct keel_store_mirror_root *out);
	int (*mirror_root_set)(struct keel_store_txn *t, const struct keel_store_mirror_root *root);
	int (*mirror_shred)(struct keel_store_txn *t, int64_t when);
	int (*client_put)(struct keel_store_txn *t, const struct keel_store_client *c);
	int (*client_get)(struct keel_store_txn *t, const char *id, struct keel_store_client *out);
	int (*client_list)(struct keel_store_txn *t, struct keel_store_client **out,
			   size_t *out_num);
	int (*client_rename)(struct keel_store_txn *t, const char *fingerprint, const char *name);
	int (*client_delete)(struct keel_store_txn *t, const char *fingerprint);
	int (*enrolment_offer)(struct keel_store_txn *t, const char *verifier, int64_t expires);
	int (*enrolment_pending)(struct keel_store_txn *t, struct keel_store_enrolment *out);
	int (*enrolment_fail)(struct keel_store_txn *t, const char *verifier);
	int (*enrolment_use)(struct keel_store_txn *t, const char *verifier);
};

/* What keel_store_savepoint* ask of the backend. */
enum { KEEL_SP_BEGIN = 0, KEEL_SP_RELEASE = 1, KEEL_SP_ROLLBACK = 2 };

struct keel_store {
	const struct keel_store_ops *ops;
};

struct keel_store_txn {
	struct keel_store *store;
};

#endif
