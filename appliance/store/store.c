/* store.h's functions: argument checks, then the backend's table (store_int.h). */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#include "keel/metrics.h"

const char *keel_store_strerror(int err)
{
	static const char *const msgs[] = {
	    [0] = "success",
	    [-KEEL_STORE_E_NOT_FOUND] = "not found",
	    [-KEEL_STORE_E_EXISTS] = "already exists",
	    [-KEEL_STORE_E_BUSY] = "database busy",
	    [-KEEL_STORE_E_IO] = "database I/O error",
	    [-KEEL_STORE_E_NOMEM] = "out of memory",
	    [-KEEL_STORE_E_SCHEMA] = "database schema unknown or damaged",
	    [-KEEL_STORE_E_INVAL] = "invalid argument",
	};

	if (err > 0 || (size_t)-err >= sizeof(msgs) / sizeof(msgs[0])) {
		return "unknown store error";
	}
	return msgs[-err];
}

void keel_store_object_cleanup(struct keel_store_object *o)
{
	if (o != NULL) {
		free(o->blob);
		o->blob = NULL;
		o->blob_len = 0;
	}
}

void keel_store_attrs_free(struct keel_store_attr *attrs, size_t num)
{
	for (size_t i = 0; attrs != NULL && i < num; i++) {
		free(attrs[i].name);
		free(attrs[i].value);
		free(attrs[i].text);
	}
	free(attrs);
}

void keel_store_uids_free(char **uids, size_t num)
{
	for (size_t i = 0; uids != NULL && i < num; i++) {
		free(uids[i]);
	}
	free(uids);
}

int keel_store_schema_version(struct keel_store *s, int *out_version)
{
	return s->ops->schema_version(s, out_version);
}

void keel_store_close(struct keel_store *s)
{
	if (s != NULL) {
		s->ops->close(s);
	}
}

int keel_store_begin(struct keel_store *s, struct keel_store_txn **out_txn)
{
	return s->ops->begin(s, false, out_txn);
}

int keel_store_begin_read(struct keel_store *s, struct keel_store_txn **out_txn)
{
	return s->ops->begin(s, true, out_txn);
}

int keel_store_commit(struct keel_store_txn *t)
{
	uint64_t start = keel_metrics_now_ns();
	int r = t->store->ops->commit(t);

	keel_metrics_store_commit(keel_metrics_now_ns() - start);
	return r;
}

void keel_store_rollback(struct keel_store_txn *t)
{
	if (t != NULL) {
		t->store->ops->rollback(t);
	}
}

int keel_store_end(struct keel_store_txn *t, int err)
{
	if (err != 0) {
		keel_store_rollback(t);
		return err;
	}
	return keel_store_commit(t);
}

/* Its time, as a commit's, is from the call to durability: the wait for the
 * turn and |fn|'s work are in it (a commit's caller did those before). */
int keel_store_run(struct keel_store *s, keel_store_member_fn fn, void *arg)
{
	uint64_t start = keel_metrics_now_ns();
	int r = s->ops->run(s, fn, arg);

	keel_metrics_store_commit(keel_metrics_now_ns() - start);
	return r;
}

int keel_store_submit(struct keel_store *s, keel_store_member_fn fn, const void *arg,
		      size_t arg_len)
{
	return s->ops->submit(s, fn, arg, arg_len);
}

int keel_store_savepoint(struct keel_store_txn *t)
{
	return t->store->ops->savepoint(t, KEEL_SP_BEGIN);
}

int keel_store_savepoint_release(struct keel_store_txn *t)
{
	return t->store->ops->savepoint(t, KEEL_SP_RELEASE);
}

int keel_store_savepoint_rollback(struct keel_store_txn *t)
{
	return t->store->ops->savepoint(t, KEEL_SP_ROLLBACK);
}

int keel_store_object_put(struct keel_store_txn *t, const struct keel_store_object *o)
{
	if (o->uid[0] == '\0' || o->owner[0] == '\0') {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->object_put(t, o);
}

int keel_store_object_get(struct keel_store_txn *t, const char *uid, const char *owner,
			  struct keel_store_object *out)
{
	if (uid == NULL || strlen(uid) > KEEL_STORE_UID_MAX) {
		return KEEL_STORE_E_NOT_FOUND;
	}
	return t->store->ops->object_get(t, uid, owner, out);
}

int keel_store_object_update(struct keel_store_txn *t, const struct keel_store_object *o)
{
	return t->store->ops->object_update(t, o);
}

int keel_store_object_delete(struct keel_store_txn *t, const char *uid)
{
	return t->store->ops->object_delete(t, uid);
}

int keel_store_attr_list(struct keel_store_txn *t, const char *uid, const char *name,
			 struct keel_store_attr **out_attrs, size_t *out_num)
{
	return t->store->ops->attr_list(t, uid, name, out_attrs, out_num);
}

int keel_store_attr_add(struct keel_store_txn *t, const char *uid,
			const struct keel_store_attr *attrs, size_t num)
{
	return t->store->ops->attr_add(t, uid, attrs, num);
}

int keel_store_attr_update(struct keel_store_txn *t, const char *uid,
			   const struct keel_store_attr *a)
{
	return t->store->ops->attr_update(t, uid, a);
}

int keel_store_attr_delete(struct keel_store_txn *t, const char *uid, const char *name,
			   int32_t index)
{
	return t->store->ops->attr_delete(t, uid, name, index);
}

int keel_store_locate(struct keel_store_txn *t, const struct keel_store_query *q, char ***out_uids,
		      size_t *out_num)
{
	if (q->owner == NULL && !q->any_owner) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->locate(t, q, out_uids, out_num);
}

int keel_store_audit_append(struct keel_store_txn *t, const struct keel_store_audit *a)
{
	return t->store->ops->audit_append(t, a);
}

int keel_store_audit_count(struct keel_store_txn *t, int64_t *out_count)
{
	return t->store->ops->audit_count(t, out_count);
}

int keel_store_crk_counts(struct keel_store_txn *t, struct keel_store_crk_count **out_counts,
			  size_t *out_num)
{
	return t->store->ops->crk_counts(t, out_counts, out_num);
}

int keel_store_crk_stale(struct keel_store_txn *t, uint32_t version, int64_t after, size_t max,
			 struct keel_store_stale **out_stale, size_t *out_num)
{
	if (max == 0) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->crk_stale(t, version, after, max, out_stale, out_num);
}

void keel_store_stale_free(struct keel_store_stale *stale, size_t num)
{
	for (size_t i = 0; stale != NULL && i < num; i++) {
		free(stale[i].blob);
	}
	free(stale);
}

int keel_store_object_rewrap(struct keel_store_txn *t, const char *uid, const uint8_t *old,
			     size_t old_len, uint32_t version, const uint8_t *blob, size_t blob_len)
{
	if (uid == NULL || old == NULL || old_len == 0 || blob == NULL || blob_len == 0) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->object_rewrap(t, uid, old, old_len, version, blob, blob_len);
}

int keel_store_rotation_get(struct keel_store_txn *t, struct keel_store_rotation *out)
{
	return t->store->ops->rotation_get(t, out);
}

int keel_store_rotation_put(struct keel_store_txn *t, const struct keel_store_rotation *r)
{
	return t->store->ops->rotation_put(t, r);
}

int keel_store_snapshot(struct keel_store *s, uint8_t **out_image, size_t *out_len)
{
	return s->ops->snapshot(s, out_image, out_len);
}

int keel_store_restore(struct keel_store *s, const uint8_t *image, size_t len, bool only_if_empty)
{
	if (image == NULL || len == 0) {
		return KEEL_STORE_E_INVAL;
	}
	return s->ops->restore(s, image, len, only_if_empty);
}

int keel_store_audit_scan(struct keel_store_txn *t, const struct keel_store_audit_filter *f,
			  keel_store_audit_fn fn, void *ctx)
{
	return t->store->ops->audit_scan(t, f, fn, ctx);
}

int keel_store_audit_verify(struct keel_store_txn *t, const struct keel_store_audit_anchor *anchor,
			    struct keel_store_audit_check *out)
{
	memset(out, 0, sizeof(*out));
	if (anchor != NULL && anchor->id <= 0) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->audit_verify(t, anchor, out);
}

/* Both halves of a grant's key are needed; |uid| "" is the owner-wide grant. */
static bool grant_key_ok(const char *owner, const char *uid, const char *grantee)
{
	return owner != NULL && owner[0] != '\0' && uid != NULL &&
	       strlen(uid) <= KEEL_STORE_UID_MAX && grantee != NULL && grantee[0] != '\0';
}

int keel_store_grant_put(struct keel_store_txn *t, const struct keel_store_grant *g)
{
	if (!grant_key_ok(g->owner, g->uid, g->grantee) || g->level == 0 ||
	    strcmp(g->owner, g->grantee) == 0) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->grant_put(t, g);
}

int keel_store_grant_delete(struct keel_store_txn *t, const char *owner, const char *uid,
			    const char *grantee)
{
	if (!grant_key_ok(owner, uid, grantee)) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->grant_delete(t, owner, uid, grantee);
}

int keel_store_grant_level(struct keel_store_txn *t, const char *owner, const char *uid,
			   const char *grantee, uint32_t *out_level)
{
	*out_level = 0;
	if (!grant_key_ok(owner, uid, grantee)) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->grant_level(t, owner, uid, grantee, out_level);
}

int keel_store_grant_forget(struct keel_store_txn *t, const char *identity, size_t *out_num)
{
	*out_num = 0;
	if (identity == NULL || identity[0] == '\0') {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->grant_forget(t, identity, out_num);
}

int keel_store_grant_list(struct keel_store_txn *t, const char *owner, const char *grantee,
			  struct keel_store_grant **out_grants, size_t *out_num)
{
	return t->store->ops->grant_list(t, owner, grantee, out_grants, out_num);
}

int keel_store_object_count(struct keel_store_txn *t, int64_t *out_count)
{
	return t->store->ops->object_count(t, out_count);
}

int keel_store_mirror_set(struct keel_store_txn *t, bool on)
{
	return t->store->ops->mirror_set(t, on);
}

int keel_store_mirror_next(struct keel_store_txn *t, int64_t after_seq, size_t max,
			   struct keel_store_mirror_entry *out, size_t *out_num)
{
	*out_num = 0;
	if (out == NULL || max == 0) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->mirror_next(t, after_seq, max, out, out_num);
}

int keel_store_mirror_settle(struct keel_store_txn *t, const struct keel_store_mirror_entry *e,
			     bool done)
{
	return t->store->ops->mirror_settle(t, e, done);
}

int keel_store_mirror_backlog(struct keel_store_txn *t, int64_t *out_count)
{
	return t->store->ops->mirror_backlog(t, out_count);
}

int keel_store_mirror_rewraps(struct keel_store_txn *t, int64_t *out_count)
{
	return t->store->ops->mirror_rewraps(t, out_count);
}

int keel_store_mirror_rotated(struct keel_store_txn *t, uint32_t crk_version,
			      const char *version_id, int64_t *out_queued)
{
	int64_t queued = 0;
	int r;

	if (version_id == NULL || version_id[0] == '\0' ||
	    strlen(version_id) > KEEL_STORE_MIRROR_ID_MAX) {
		return KEEL_STORE_E_INVAL;
	}
	r = t->store->ops->mirror_rotated(t, crk_version, version_id, &queued);
	if (out_queued != NULL) {
		*out_queued = queued;
	}
	return r;
}

int keel_store_mirror_root_get(struct keel_store_txn *t, struct keel_store_mirror_root *out)
{
	memset(out, 0, sizeof(*out));
	return t->store->ops->mirror_root_get(t, out);
}

int keel_store_mirror_shred(struct keel_store_txn *t, int64_t when)
{
	return when > 0 ? t->store->ops->mirror_shred(t, when) : KEEL_STORE_E_INVAL;
}

int keel_store_mirror_root_set(struct keel_store_txn *t, const struct keel_store_mirror_root *root)
{
	if (root == NULL || root->key_id[0] == '\0' ||
	    memchr(root->key_id, '\0', sizeof(root->key_id)) == NULL ||
	    memchr(root->version_id, '\0', sizeof(root->version_id)) == NULL) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->mirror_root_set(t, root);
}

void keel_store_client_cleanup(struct keel_store_client *c)
{
	if (c != NULL) {
		free(c->pem);
		c->pem = NULL;
	}
}

void keel_store_clients_free(struct keel_store_client *clients, size_t num)
{
	for (size_t i = 0; clients != NULL && i < num; i++) {
		keel_store_client_cleanup(&clients[i]);
	}
	free(clients);
}

static bool client_ok(const struct keel_store_client *c)
{
	static const char *const roles[] = {"kmip", "admin", "auditor", "ca"};

	if (strlen(c->fingerprint) != 2 * 32 || c->name[0] == '\0' || c->pem == NULL) {
		return false;
	}
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(c->role, roles[i]) == 0) {
			return true;
		}
	}
	return false;
}

int keel_store_client_put(struct keel_store_txn *t, const struct keel_store_client *c)
{
	return client_ok(c) ? t->store->ops->client_put(t, c) : KEEL_STORE_E_INVAL;
}

int keel_store_client_get(struct keel_store_txn *t, const char *id, struct keel_store_client *out)
{
	return id != NULL ? t->store->ops->client_get(t, id, out) : KEEL_STORE_E_INVAL;
}

int keel_store_client_list(struct keel_store_txn *t, struct keel_store_client **out,
			   size_t *out_num)
{
	return t->store->ops->client_list(t, out, out_num);
}

int keel_store_client_rename(struct keel_store_txn *t, const char *fingerprint, const char *name)
{
	if (fingerprint == NULL || name == NULL || name[0] == '\0' ||
	    strlen(name) > KEEL_STORE_NAME_MAX) {
		return KEEL_STORE_E_INVAL;
	}
	return t->store->ops->client_rename(t, fingerprint, name);
}

int keel_store_client_delete(struct keel_store_txn *t, const char *fingerprint)
{
	return fingerprint != NULL ? t->store->ops->client_delete(t, fingerprint)
				   : KEEL_STORE_E_INVAL;
}

static bool verifier_ok(const char *verifier)
{
	return verifier != NULL && verifier[0] != '\0' &&
	       strlen(verifier) <= KEEL_STORE_VERIFIER_MAX;
}

int keel_store_enrolment_offer(struct keel_store_txn *t, const char *verifier, int64_t expires)
{
	return verifier_ok(verifier) ? t->store->ops->enrolment_offer(t, verifier, expires)
				     : KEEL_STORE_E_INVAL;
}

int keel_store_enrolment_pending(struct keel_store_txn *t, struct keel_store_enrolment *out)
{
	return t->store->ops->enrolment_pending(t, out);
}

int keel_store_enrolment_fail(struct keel_store_txn *t, const char *verifier)
{
	return verifier_ok(verifier) ? t->store->ops->enrolment_fail(t, verifier)
				     : KEEL_STORE_E_INVAL;
}

int keel_store_enrolment_use(struct keel_store_txn *t, const char *verifier)
{
	return verifier_ok(verifier) ? t->store->ops->enrolment_use(t, verifier)
				     : KEEL_STORE_E_INVAL;
}
