/*
 * The SQLite store: migrations (fresh and already migrated), objects,
 * attributes and their search, audit rows bound to their transaction, and
 * everything still there after a reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

struct fx {
	char dir[64];
	char path[128];
	struct keel_store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/keel-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/keel.db", f->dir);
	assert_int_equal(keel_store_open_sqlite(f->path, 2, &f->s), 0);
	*state = f;
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	keel_store_close(f->s);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void reopen(struct fx *f)
{
	keel_store_close(f->s);
	assert_int_equal(keel_store_open_sqlite(f->path, 2, &f->s), 0);
}

static void put_object(struct keel_store *s, const char *uid, const char *owner)
{
	struct keel_store_object o = {
	    .object_type = 2, .state = 1, .crk_version = 1, .initial_date = 1000};
	uint8_t blob[] = {1, 2, 3, 4};
	struct keel_store_txn *t;

	snprintf(o.uid, sizeof(o.uid), "%s", uid);
	snprintf(o.owner, sizeof(o.owner), "%s", owner);
	o.blob = blob;
	o.blob_len = sizeof(blob);
	assert_int_equal(keel_store_begin(s, &t), 0);
	assert_int_equal(keel_store_object_put(t, &o), 0);
	assert_int_equal(keel_store_commit(t), 0);
}

static void test_migrations(void **state)
{
	struct fx *f = *state;
	int v = 0;

	assert_int_equal(keel_store_schema_version(f->s, &v), 0);
	assert_int_equal(v, 12);
	reopen(f); /* already migrated: nothing to do, same version */
	assert_int_equal(keel_store_schema_version(f->s, &v), 0);
	assert_int_equal(v, 12);
}

static void test_object_crud(void **state)
{
	struct fx *f = *state;
	struct keel_store_object o;
	struct keel_store_txn *t;

	put_object(f->s, "u1", "aa");
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_object_get(t, "u1", "aa", &o), 0);
	assert_int_equal(o.object_type, 2);
	assert_int_equal(o.blob_len, 4);
	assert_int_equal(o.blob[3], 4);
	/* Another owner sees nothing. */
	assert_int_equal(keel_store_object_get(t, "u1", "bb", &(struct keel_store_object){0}),
			 KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_object_put(t, &o), KEEL_STORE_E_EXISTS);
	keel_store_object_cleanup(&o);
	assert_int_equal(keel_store_object_get(t, "u1", "aa", &o), 0);
	o.state = 2;
	o.activation_date = 2000;
	keel_store_object_cleanup(&o);
	assert_int_equal(keel_store_object_update(t, &o), 0);
	assert_int_equal(keel_store_object_get(t, "u1", "aa", &o), 0);
	assert_int_equal(o.state, 2);
	assert_null(o.blob);
	assert_int_equal(o.activation_date, 2000);
	assert_int_equal(keel_store_object_delete(t, "u1"), 0);
	assert_int_equal(keel_store_object_delete(t, "u1"), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_commit(t), 0);
}

static void add_attr(struct keel_store_txn *t, const char *uid, const char *name, int idx,
		     const char *text)
{
	struct keel_store_attr a = {.name = (char *)name,
				    .index = idx,
				    .value = (uint8_t *)text,
				    .value_len = strlen(text),
				    .text = (char *)text};

	assert_int_equal(keel_store_attr_add(t, uid, &a, 1), 0);
}

static void test_attributes_and_locate(void **state)
{
	struct fx *f = *state;
	struct keel_store_txn *t;
	struct keel_store_attr *attrs;
	struct keel_store_filter flt = {.name = "Name", .text = "k2"};
	struct keel_store_query q = {.owner = "aa", .filters = &flt, .num_filters = 1};
	char **uids;
	size_t n;

	put_object(f->s, "u1", "aa");
	put_object(f->s, "u2", "aa");
	put_object(f->s, "u3", "bb");
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	add_attr(t, "u1", "Name", 0, "k1");
	add_attr(t, "u1", "x-Vendor", 0, "VMware");
	add_attr(t, "u2", "Name", 0, "k2");
	add_attr(t, "u3", "Name", 0, "k2");
	assert_int_equal(keel_store_attr_list(t, "u1", NULL, &attrs, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(attrs[1].name, "x-Vendor");
	assert_string_equal(attrs[1].text, "VMware");
	keel_store_attrs_free(attrs, n);
	assert_int_equal(keel_store_locate(t, &q, &uids, &n), 0);
	assert_int_equal(n, 1); /* u3 has the name too, but belongs to bb */
	assert_string_equal(uids[0], "u2");
	keel_store_uids_free(uids, n);
	q.num_filters = 0;
	q.max_items = 1;
	q.offset = 1;
	assert_int_equal(keel_store_locate(t, &q, &uids, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(uids[0], "u2");
	keel_store_uids_free(uids, n);
	struct keel_store_attr upd = {
	    .name = "Name", .index = 0, .value = (uint8_t *)"k9", .value_len = 2, .text = "k9"};
	assert_int_equal(keel_store_attr_update(t, "u1", &upd), 0);
	upd.index = 5;
	assert_int_equal(keel_store_attr_update(t, "u1", &upd), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_attr_delete(t, "u1", "x-Vendor", -1), 0);
	assert_int_equal(keel_store_attr_delete(t, "u1", "x-Vendor", -1), KEEL_STORE_E_NOT_FOUND);
	/* Deleting the object takes its attributes with it (foreign key cascade). */
	assert_int_equal(keel_store_object_delete(t, "u2"), 0);
	assert_int_equal(keel_store_attr_list(t, "u2", NULL, &attrs, &n), 0);
	assert_int_equal(n, 0);
	keel_store_attrs_free(attrs, n);
	assert_int_equal(keel_store_commit(t), 0);
}

/* The text of |uid|'s only |name|, read through keel_store_attr_list; "" if none. */
static const char *attr_text(struct keel_store_txn *t, const char *uid, const char *name)
{
	static char text[16];
	struct keel_store_attr *attrs;
	size_t n;

	assert_int_equal(keel_store_attr_list(t, uid, name, &attrs, &n), 0);
	assert_true(n <= 1);
	snprintf(text, sizeof(text), "%s", n == 1 ? attrs[0].text : "");
	keel_store_attrs_free(attrs, n);
	return text;
}

/*
 * A transaction keeps the attributes it read of one object (sqlite.c, struct
 * sq_attr_cache): every change, a savepoint rolled back and the next
 * transaction on the same connection show through it.
 */
static void test_attribute_reads_see_changes(void **state)
{
	struct fx *f = *state;
	struct keel_store_attr upd = {
	    .name = "Name", .index = 0, .value = (uint8_t *)"k2", .value_len = 2, .text = "k2"};
	struct keel_store_txn *t;

	put_object(f->s, "u1", "aa");
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	add_attr(t, "u1", "Name", 0, "k1");
	assert_string_equal(attr_text(t, "u1", "Name"), "k1");
	assert_string_equal(attr_text(t, "u1", "x-Vendor"), "");
	add_attr(t, "u1", "x-Vendor", 0, "VMware");
	assert_string_equal(attr_text(t, "u1", "x-Vendor"), "VMware");
	assert_int_equal(keel_store_attr_update(t, "u1", &upd), 0);
	assert_string_equal(attr_text(t, "u1", "Name"), "k2");
	assert_int_equal(keel_store_savepoint(t), 0);
	assert_int_equal(keel_store_attr_delete(t, "u1", "x-Vendor", -1), 0);
	assert_string_equal(attr_text(t, "u1", "x-Vendor"), "");
	assert_int_equal(keel_store_savepoint_rollback(t), 0);
	assert_string_equal(attr_text(t, "u1", "x-Vendor"), "VMware");
	keel_store_rollback(t);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_string_equal(attr_text(t, "u1", "Name"), ""); /* the add was rolled back */
	add_attr(t, "u1", "Name", 0, "k3");
	assert_string_equal(attr_text(t, "u1", "Name"), "k3");
	assert_int_equal(keel_store_object_delete(t, "u1"), 0); /* a cascade */
	assert_string_equal(attr_text(t, "u1", "Name"), "");
	keel_store_rollback(t);
}

static void test_audit_in_transaction(void **state)
{
	struct fx *f = *state;
	struct keel_store_audit a = {.time = 1, .client = "aa", .operation = 1, .uid = "u9"};
	struct keel_store_object o = {.uid = "u9", .owner = "aa", .object_type = 2, .state = 1};
	struct keel_store_txn *t;
	int64_t n = -1;

	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_object_put(t, &o), 0);
	assert_int_equal(keel_store_audit_append(t, &a), 0);
	keel_store_rollback(t);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_audit_count(t, &n), 0);
	assert_int_equal(n, 0); /* the rolled-back change left no audit row */
	assert_int_equal(keel_store_object_get(t, "u9", "aa", &o), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_object_put(t, &o), 0);
	assert_int_equal(keel_store_audit_append(t, &a), 0);
	/* A savepoint rolled back undoes only the item's part. */
	assert_int_equal(keel_store_savepoint(t), 0);
	assert_int_equal(keel_store_audit_append(t, &a), 0);
	assert_int_equal(keel_store_savepoint_rollback(t), 0);
	assert_int_equal(keel_store_commit(t), 0);
	reopen(f);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_audit_count(t, &n), 0);
	assert_int_equal(n, 1);
	keel_store_rollback(t);
}

static void test_reopen_keeps_everything(void **state)
{
	struct fx *f = *state;
	struct keel_store_txn *t;
	struct keel_store_object o;
	struct keel_store_attr *attrs;
	size_t n;

	put_object(f->s, "k", "aa");
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	add_attr(t, "k", "x-Product", 0, "VMware vSphere");
	assert_int_equal(keel_store_commit(t), 0);
	reopen(f);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_object_get(t, "k", "aa", &o), 0);
	assert_int_equal(o.blob_len, 4);
	keel_store_object_cleanup(&o);
	assert_int_equal(keel_store_attr_list(t, "k", "x-Product", &attrs, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(attrs[0].text, "VMware vSphere");
	keel_store_attrs_free(attrs, n);
	keel_store_rollback(t);
}

static size_t outbox(struct keel_store *s, struct keel_store_mirror_entry *out, size_t max)
{
	struct keel_store_txn *t;
	size_t n = 0;

	assert_int_equal(keel_store_begin_read(s, &t), 0);
	assert_int_equal(keel_store_mirror_next(t, 0, max, out, &n), 0);
	keel_store_rollback(t);
	return n;
}

/* The outbox is written by the changing transaction itself, holds one entry
 * per object (its latest wish, in change order) and settles only the entry the
 * worker saw. */
static void test_mirror_outbox(void **state)
{
	struct fx *f = *state;
	struct keel_store_mirror_entry e[8], seen;
	struct keel_store_object o;
	struct keel_store_txn *t;
	uint8_t blob[] = {9, 9};
	int64_t n = -1;

	put_object(f->s, "before", "aa"); /* mirror off: nothing queued */
	assert_int_equal(outbox(f->s, e, 8), 0);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_set(t, true), 0);
	assert_int_equal(keel_store_mirror_set(t, true), 0); /* twice: no second entry */
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(outbox(f->s, e, 8), 1); /* what existed is escrowed first */
	assert_string_equal(e[0].uid, "before");
	put_object(f->s, "u1", "aa");
	put_object(f->s, "u2", "aa");
	/* A rolled-back change leaves nothing. */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_object_delete(t, "before"), 0);
	keel_store_rollback(t);
	assert_int_equal(outbox(f->s, e, 8), 3);
	assert_int_equal(e[0].op, KEEL_STORE_MIRROR_ESCROW);
	seen = e[1]; /* u1, as the worker took it */
	/* u1 changes (an attribute) then goes: one entry, now DELETE, now last. */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	add_attr(t, "u1", "Name", 0, "k1");
	assert_int_equal(keel_store_object_delete(t, "u1"), 0);
	/* A CRK rewrap of u2 changes nothing escrowed. */
	assert_int_equal(keel_store_object_get(t, "u2", "aa", &o), 0);
	assert_int_equal(keel_store_object_rewrap(t, "u2", o.blob, o.blob_len, 2, blob, 2), 0);
	keel_store_object_cleanup(&o);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(outbox(f->s, e, 8), 3);
	assert_string_equal(e[1].uid, "u2");
	assert_string_equal(e[2].uid, "u1");
	assert_int_equal(e[2].op, KEEL_STORE_MIRROR_DELETE);
	assert_true(e[2].seq > seen.seq);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	/* The worker's stale view of u1 settles nothing: the newer wish stays. */
	assert_int_equal(keel_store_mirror_settle(t, &seen, true), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_mirror_settle(t, &e[2], false), 0);
	assert_int_equal(keel_store_mirror_settle(t, &e[0], true), 0);
	assert_int_equal(keel_store_mirror_backlog(t, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(keel_store_commit(t), 0);
	reopen(f); /* durable */
	assert_int_equal(outbox(f->s, e, 8), 2);
	assert_int_equal(e[1].attempts, 1);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_set(t, false), 0);
	assert_int_equal(keel_store_mirror_backlog(t, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(keel_store_commit(t), 0);
}

/* The mirrored root key: nothing before the first enable; recorded with the outbox on. */
static void test_mirror_root(void **state)
{
	struct fx *f = *state;
	struct keel_store_mirror_root root = {.mode = 2, .crk_version = 3}, got;
	struct keel_store_mirror_entry e[4];
	struct keel_store_object o, held;
	struct keel_store_txn *t;

	put_object(f->s, "k1", "aa");
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_root_get(t, &got), 0);
	assert_false(got.enabled);
	assert_string_equal(got.key_id, "");
	assert_int_equal(keel_store_mirror_root_set(t, &root), KEEL_STORE_E_INVAL); /* no id */
	snprintf(root.key_id, sizeof(root.key_id), "02fd6835-6001-4482-a892-13bd2085f75d");
	snprintf(root.version_id, sizeof(root.version_id), "v1");
	assert_int_equal(keel_store_mirror_root_set(t, &root), 0);
	assert_int_equal(keel_store_commit(t), 0);
	reopen(f);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_root_get(t, &got), 0);
	keel_store_rollback(t);
	assert_true(got.enabled);
	assert_int_equal(got.mode, 2);
	assert_int_equal(got.crk_version, 3);
	assert_string_equal(got.key_id, root.key_id);
	assert_string_equal(got.version_id, "v1");
	assert_int_equal(got.shredded, 0);
	assert_int_equal(outbox(f->s, e, 4), 1); /* turning it on queued k1 */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_shred(t, 1700000000), 0);
	assert_int_equal(keel_store_mirror_shred(t, 1800000000), 0); /* the first time stays */
	assert_int_equal(keel_store_mirror_root_get(t, &got), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(got.shredded, 1700000000);
	/* A Destroy (no blob, crk_version 0) is escrowed, unlike a rewrap. */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_settle(t, &e[0], true), 0);
	assert_int_equal(keel_store_object_get(t, "k1", "aa", &o), 0);
	held = o;
	o.blob = NULL;
	o.blob_len = 0;
	o.crk_version = 0;
	o.state = 5;
	assert_int_equal(keel_store_object_update(t, &o), 0);
	assert_int_equal(keel_store_commit(t), 0);
	keel_store_object_cleanup(&held);
	assert_int_equal(outbox(f->s, e, 4), 1);
	assert_string_equal(e[0].uid, "k1");
}

static void client(struct keel_store_client *c, char fp_char, const char *name, const char *role)
{
	memset(c, 0, sizeof(*c));
	memset(c->fingerprint, fp_char, 64);
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->role, sizeof(c->role), "%s", role);
	c->pem = "-----BEGIN CERTIFICATE-----";
	c->added = 1700000000;
}

/* Registry rows: unique fingerprint and name, lookups by either, rename, delete. */
/* Enrolment codes: offered once, counted, used exactly once. */
static void test_enrolment(void **state)
{
	struct fx *f = *state;
	struct keel_store_txn *t = NULL;
	struct keel_store_enrolment e;

	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_enrolment_pending(t, &e), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_enrolment_offer(t, "v1", 100), 0);
	assert_int_equal(keel_store_enrolment_fail(t, "v1"), 0);
	assert_int_equal(keel_store_enrolment_offer(t, "v1", 999), 0); /* kept as it was */
	assert_int_equal(keel_store_enrolment_pending(t, &e), 0);
	assert_string_equal(e.verifier, "v1");
	assert_int_equal(e.expires, 100);
	assert_int_equal(e.attempts, 1);
	assert_int_equal(keel_store_enrolment_use(t, "v1"), 0);
	assert_int_equal(keel_store_enrolment_use(t, "v1"), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_enrolment_use(t, "v2"), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_enrolment_pending(t, &e), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_enrolment_offer(t, "v1", 999), 0); /* used stays used */
	assert_int_equal(keel_store_enrolment_pending(t, &e), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_enrolment_offer(t, "", 1), KEEL_STORE_E_INVAL);
	assert_int_equal(keel_store_commit(t), 0);
}

static void test_clients(void **state)
{
	struct fx *f = *state;
	struct keel_store_txn *t = NULL;
	struct keel_store_client a, b, got, *list = NULL;
	size_t num = 0;

	client(&a, 'a', "vcenter", "kmip");
	client(&b, 'b', "ops", "admin");
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_client_put(t, &a), 0);
	assert_int_equal(keel_store_client_put(t, &b), 0);
	assert_int_equal(keel_store_client_put(t, &a), KEEL_STORE_E_EXISTS);
	client(&got, 'c', "vcenter", "kmip"); /* the name is taken */
	assert_int_equal(keel_store_client_put(t, &got), KEEL_STORE_E_EXISTS);
	client(&got, 'c', "x", "root");
	assert_int_equal(keel_store_client_put(t, &got), KEEL_STORE_E_INVAL);
	assert_int_equal(keel_store_client_get(t, "vcenter", &got), 0);
	assert_string_equal(got.fingerprint, a.fingerprint);
	assert_string_equal(got.role, "kmip");
	assert_string_equal(got.pem, a.pem);
	keel_store_client_cleanup(&got);
	assert_int_equal(keel_store_client_rename(t, b.fingerprint, "security"), 0);
	assert_int_equal(keel_store_client_rename(t, b.fingerprint, "vcenter"),
			 KEEL_STORE_E_EXISTS);
	assert_int_equal(keel_store_client_get(t, b.fingerprint, &got), 0);
	assert_string_equal(got.name, "security");
	keel_store_client_cleanup(&got);
	assert_int_equal(keel_store_client_delete(t, a.fingerprint), 0);
	assert_int_equal(keel_store_client_delete(t, a.fingerprint), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_client_get(t, "vcenter", &got), KEEL_STORE_E_NOT_FOUND);
	assert_int_equal(keel_store_client_list(t, &list, &num), 0);
	assert_int_equal(num, 1);
	assert_string_equal(list[0].name, "security");
	keel_store_clients_free(list, num);
	assert_int_equal(keel_store_commit(t), 0);
}

/*
 * Statements are kept per connection (sqlite_int.h, sq_stmt). 128 Locate
 * shapes (each subset of the seven date columns is its own SQL text) are
 * more than a connection keeps: every one still answers right, twice over,
 * through evictions.
 */
static void test_statement_cache_evicts(void **state)
{
	struct fx *f = *state;
	struct keel_store_date_range dates[7];
	struct keel_store_query q = {.owner = "aa", .dates = dates};
	struct keel_store_txn *t;
	char **uids;
	size_t n;

	put_object(f->s, "u1", "aa"); /* initial_date 1000, every other date unset */
	assert_int_equal(keel_store_begin_read(f->s, &t), 0);
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned mask = 0; mask < 128; mask++) {
			q.num_dates = 0;
			for (unsigned d = 0; d < 7; d++) {
				if ((mask & (1u << d)) != 0) {
					dates[q.num_dates++] = (struct keel_store_date_range){
					    .date = (enum keel_store_date)d,
					    .lo = 1,
					    .hi = 2000,
					    .unset = d != KEEL_STORE_DATE_INITIAL};
				}
			}
			assert_int_equal(keel_store_locate(t, &q, &uids, &n), 0);
			assert_int_equal(n, 1);
			assert_string_equal(uids[0], "u1");
			keel_store_uids_free(uids, n);
		}
	}
	keel_store_rollback(t);
}

struct nested_scan {
	struct keel_store_txn *t;
	int outer, inner;
};

static int count_row(void *ctx, const struct keel_store_audit *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 0;
}

static int scan_again(void *ctx, const struct keel_store_audit *row)
{
	struct nested_scan *ns = ctx;
	struct keel_store_audit_filter all = {0};

	(void)row;
	if (ns->outer++ == 0 && keel_store_audit_scan(ns->t, &all, count_row, &ns->inner) != 0) {
		return -1;
	}
	return 0;
}

/* A scan inside a scan of the same SQL gets a statement of its own. */
static void test_statement_cache_nested(void **state)
{
	struct fx *f = *state;
	struct keel_store_audit a = {.time = 1, .client = "aa", .operation = 1};
	struct keel_store_audit_filter all = {0};
	struct nested_scan ns = {0};

	assert_int_equal(keel_store_begin(f->s, &ns.t), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(keel_store_audit_append(ns.t, &a), 0);
	}
	assert_int_equal(keel_store_audit_scan(ns.t, &all, scan_again, &ns), 0);
	assert_int_equal(ns.outer, 3);
	assert_int_equal(ns.inner, 3);
	assert_int_equal(keel_store_commit(ns.t), 0);
}

/* A restore changes the database under every connection's kept statements. */
static void test_statement_cache_restore(void **state)
{
	struct fx *f = *state;
	struct keel_store_object o;
	struct keel_store_txn *t[2];
	uint8_t *image;
	size_t len;

	put_object(f->s, "u1", "aa");
	assert_int_equal(keel_store_snapshot(f->s, &image, &len), 0);
	put_object(f->s, "u2", "aa");
	for (int round = 0; round < 2; round++) {
		/* Both connections at once, so both keep (then reuse) the statement. */
		assert_int_equal(keel_store_begin_read(f->s, &t[0]), 0);
		assert_int_equal(keel_store_begin_read(f->s, &t[1]), 0);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(keel_store_object_get(t[i], "u1", "aa", &o), 0);
			keel_store_object_cleanup(&o);
			assert_int_equal(keel_store_object_get(t[i], "u2", "aa", &o),
					 round == 0 ? 0 : KEEL_STORE_E_NOT_FOUND);
			if (round == 0) {
				keel_store_object_cleanup(&o);
			}
		}
		keel_store_rollback(t[0]);
		keel_store_rollback(t[1]);
		if (round == 0) {
			assert_int_equal(keel_store_restore(f->s, image, len, false), 0);
		}
	}
	free(image);
}

/* The root key rotated: its version recorded, a REWRAP queued for every
 * object without an entry (a queued ESCROW or DELETE is not downgraded),
 * numbered after what is queued; a later change replaces a REWRAP. */
static void test_mirror_rotated(void **state)
{
	struct fx *f = *state;
	struct keel_store_mirror_root root = {.mode = 2, .crk_version = 1}, got;
	struct keel_store_mirror_entry e[8];
	struct keel_store_txn *t;
	int64_t queued = -1, n = -1;

	put_object(f->s, "r1", "aa");
	put_object(f->s, "r2", "aa");
	put_object(f->s, "r3", "aa");
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	snprintf(root.key_id, sizeof(root.key_id), "root");
	snprintf(root.version_id, sizeof(root.version_id), "v1");
	assert_int_equal(keel_store_mirror_root_set(t, &root), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(outbox(f->s, e, 8), 3);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_settle(t, &e[0], true), 0); /* r1 escrowed */
	assert_int_equal(keel_store_mirror_settle(t, &e[2], true), 0); /* r3 escrowed */
	assert_int_equal(keel_store_commit(t), 0);
	put_object(f->s, "r4", "aa"); /* queued ESCROW, r2's still queued */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_rotated(t, 2, "", &queued), KEEL_STORE_E_INVAL);
	assert_int_equal(keel_store_mirror_rotated(t, 2, "v2", &queued), 0);
	assert_int_equal(queued, 2);
	assert_int_equal(keel_store_mirror_rewraps(t, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(keel_store_mirror_root_get(t, &got), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(got.crk_version, 2);
	assert_string_equal(got.version_id, "v2");
	assert_string_equal(got.key_id, "root");
	assert_int_equal(outbox(f->s, e, 8), 4);
	assert_string_equal(e[0].uid, "r2");
	assert_int_equal(e[0].op, KEEL_STORE_MIRROR_ESCROW);
	assert_string_equal(e[1].uid, "r4");
	assert_int_equal(e[1].op, KEEL_STORE_MIRROR_ESCROW);
	assert_string_equal(e[2].uid, "r1");
	assert_int_equal(e[2].op, KEEL_STORE_MIRROR_REWRAP);
	assert_string_equal(e[3].uid, "r3");
	assert_int_equal(e[3].op, KEEL_STORE_MIRROR_REWRAP);
	assert_true(e[2].seq > e[1].seq && e[3].seq > e[2].seq);
	/* New changes still number after the rewraps, and replace one. */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_object_delete(t, "r1"), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_int_equal(outbox(f->s, e, 8), 4);
	assert_string_equal(e[3].uid, "r1");
	assert_int_equal(e[3].op, KEEL_STORE_MIRROR_DELETE);
	assert_true(e[3].seq > e[2].seq);
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_mirror_rewraps(t, &n), 0);
	assert_int_equal(n, 1);
	/* Rotated again with every object queued: nothing more. */
	assert_int_equal(keel_store_mirror_rotated(t, 3, "v3", NULL), 0);
	assert_int_equal(keel_store_mirror_backlog(t, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(keel_store_commit(t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_object_crud, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attributes_and_locate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attribute_reads_see_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_in_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mirror_outbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mirror_root, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mirror_rotated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clients, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_statement_cache_evicts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_statement_cache_nested, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_statement_cache_restore, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enrolment, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
