/*
 * Grants and administrators' key operations (engine/manage.h): bob sees
 * nothing of alice's until granted; a use grant reads and uses but changes
 * nothing, a manage grant changes attributes and state, neither destroys;
 * revoking takes it away; owner-wide grants cover later keys; administrators
 * search by vCenter's attributes, show without key material, and revoke and
 * destroy under the KMIP state rules, each change audited under their name
 * in an intact chain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine/manage.h"
#include "engine_req.h"
#include "store.h"

#define MASK_ED (KMIP_CRYPTOGRAPHIC_USAGE_MASK_ENCRYPT | KMIP_CRYPTOGRAPHIC_USAGE_MASK_DECRYPT)

static int setup(void **state)
{
	*state = engine_fx_new();
	return 0;
}

static int teardown(void **state)
{
	engine_fx_free(*state);
	return 0;
}

/* Sends one |op| on |uid| as |who|. */
static void uid_op(struct engine_fx *f, const struct keel_client_identity *who, uint32_t op,
		   const char *uid)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, op);
	req_uid(&w, uid);
	req_item_end(&w);
	req_send(f, who, &w);
}

static void add_text_attr(struct engine_fx *f, const struct keel_client_identity *who,
			  const char *uid, const char *name, const char *value)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_ADD_ATTRIBUTE);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_VALUE, value, strlen(value));
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, who, &w);
}

/* How many objects a Locate with no attributes finds for |who|. */
static size_t locate_all(struct engine_fx *f, const struct keel_client_identity *who)
{
	const struct kmip_locate_response *p;
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_LOCATE);
	req_item_end(&w);
	req_send(f, who, &w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	return p->num_unique_identifiers;
}

static void grant(struct engine_fx *f, const char *owner, const char *uid, uint32_t level)
{
	struct keel_manage_ctx c = {.actor = "admin:test"};

	assert_int_equal(keel_manage_grant(f->e, &c, owner, uid, f->bob.fingerprint_hex, level), 0);
}

static void test_object_grant_levels(void **state)
{
	struct engine_fx *f = *state;
	struct keel_manage_ctx c = {.actor = "admin:test"};
	char uid[129];

	req_create_aes(f, 256, MASK_ED, true, uid);
	uid_op(f, &f->bob, KMIP_OPERATION_GET, uid);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
	assert_int_equal(locate_all(f, &f->bob), 0);

	grant(f, NULL, uid, KEEL_GRANT_USE);
	uid_op(f, &f->bob, KMIP_OPERATION_GET, uid);
	req_expect_ok(f, 0);
	uid_op(f, &f->bob, KMIP_OPERATION_GET_ATTRIBUTES, uid);
	req_expect_ok(f, 0);
	assert_int_equal(locate_all(f, &f->bob), 1);
	add_text_attr(f, &f->bob, uid, "x-Name", "vm-1");
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);
	uid_op(f, &f->bob, KMIP_OPERATION_DESTROY, uid);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);

	grant(f, NULL, uid, KEEL_GRANT_MANAGE);
	add_text_attr(f, &f->bob, uid, "x-Name", "vm-1");
	req_expect_ok(f, 0);
	req_revoke(f, uid, KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION);
	uid_op(f, &f->bob, KMIP_OPERATION_DESTROY, uid);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED);

	assert_int_equal(keel_manage_revoke_grant(f->e, &c, NULL, uid, f->bob.fingerprint_hex), 0);
	uid_op(f, &f->bob, KMIP_OPERATION_GET_ATTRIBUTES, uid);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_ITEM_NOT_FOUND);
	assert_int_equal(locate_all(f, &f->bob), 0);
	assert_int_equal(keel_manage_revoke_grant(f->e, &c, NULL, uid, f->bob.fingerprint_hex),
			 KEEL_MANAGE_E_NOT_FOUND);
}

static void test_owner_wide_grant(void **state)
{
	struct engine_fx *f = *state;
	struct keel_manage_ctx c = {.actor = "admin:test"};
	char u1[129], u2[129];

	req_create_aes(f, 128, MASK_ED, false, u1);
	grant(f, f->alice.fingerprint_hex, NULL, KEEL_GRANT_USE);
	req_create_aes(f, 128, MASK_ED, false, u2); /* made after the grant: covered too */
	assert_int_equal(locate_all(f, &f->bob), 2);
	uid_op(f, &f->bob, KMIP_OPERATION_GET, u2);
	req_expect_ok(f, 0);
	/* Grants do not flow back: alice sees nothing of bob's. */
	assert_int_equal(locate_all(f, &f->alice), 2);
	/* Bad identities and levels are refused and change nothing. */
	assert_int_equal(keel_manage_grant(f->e, &c, "not-hex", NULL, f->bob.fingerprint_hex, 1),
			 KEEL_MANAGE_E_INVALID);
	assert_int_equal(keel_manage_grant(f->e, &c, NULL, u1, f->alice.fingerprint_hex, 1),
			 KEEL_MANAGE_E_INVALID);
	assert_int_equal(keel_manage_grant(f->e, &c, NULL, u1, f->bob.fingerprint_hex, 7),
			 KEEL_MANAGE_E_INVALID);
	assert_int_equal(keel_manage_grant(f->e, &c, NULL, "nope", f->bob.fingerprint_hex, 1),
			 KEEL_MANAGE_E_NOT_FOUND);
	assert_int_equal(keel_manage_revoke_grant(f->e, &c, f->alice.fingerprint_hex, NULL,
						  f->bob.fingerprint_hex),
			 0);
	assert_int_equal(locate_all(f, &f->bob), 0);
}

struct found {
	int n;
	char uid[129];
	char vm[64];
	int attrs;
	bool key_material;
	bool saw_vm_attr;
};

static int on_key(void *ctx, const struct keel_key_summary *k)
{
	struct found *fd = ctx;

	fd->n++;
	snprintf(fd->uid, sizeof(fd->uid), "%s", k->uid);
	snprintf(fd->vm, sizeof(fd->vm), "%s", k->vm_name != NULL ? k->vm_name : "");
	return 0;
}

static int on_attr(void *ctx, const struct keel_key_attr *a)
{
	struct found *fd = ctx;

	fd->attrs++;
	fd->key_material |= strstr(a->json, "KeyMaterial") != NULL;
	fd->saw_vm_attr |= strcmp(a->name, "x-Name") == 0 && strstr(a->json, "\"test01\"") != NULL;
	return 0;
}

static void test_admin_search_and_show(void **state)
{
	struct engine_fx *f = *state;
	struct keel_manage_ctx c = {.actor = "admin:test"};
	struct keel_key_match m[] = {{"x-Name", "test01"}, {"x-Component", "Virtual Machine"}};
	struct keel_key_filter flt = {.matches = m, .num_matches = 2};
	struct found fd = {0};
	char u1[129], u2[129];

	req_create_aes(f, 256, MASK_ED, true, u1);
	req_create_aes(f, 256, MASK_ED, true, u2);
	add_text_attr(f, &f->alice, u2, "x-Name", "test01");
	add_text_attr(f, &f->alice, u2, "x-Component", "Virtual Machine");
	assert_int_equal(keel_manage_keys_find(f->e, &c, &flt, on_key, &fd), 0);
	assert_int_equal(fd.n, 1);
	assert_string_equal(fd.uid, u2);
	assert_string_equal(fd.vm, "test01");
	fd = (struct found){0};
	flt = (struct keel_key_filter){.owner = f->bob.fingerprint_hex};
	assert_int_equal(keel_manage_keys_find(f->e, &c, &flt, on_key, &fd), 0);
	assert_int_equal(fd.n, 0);
	flt = (struct keel_key_filter){.has_state = true, .state = KMIP_STATE_ACTIVE};
	assert_int_equal(keel_manage_keys_find(f->e, &c, &flt, on_key, &fd), 0);
	assert_int_equal(fd.n, 2);
	fd = (struct found){0};
	assert_int_equal(keel_manage_key_show(f->e, &c, u2, on_key, on_attr, &fd), 0);
	assert_int_equal(fd.n, 1);
	assert_true(fd.attrs >= 6);
	assert_true(fd.saw_vm_attr);
	assert_false(fd.key_material);
	assert_int_equal(keel_manage_key_show(f->e, &c, "nope", on_key, on_attr, &fd),
			 KEEL_MANAGE_E_NOT_FOUND);
}

struct audit_seen {
	int n, failed;
	bool detail;
};

static int on_row(void *ctx, const struct keel_store_audit *row)
{
	struct audit_seen *s = ctx;

	s->n++;
	s->failed += row->result_status != KMIP_RESULT_STATUS_SUCCESS;
	s->detail |= row->detail != NULL && strstr(row->detail, "reason=KeyCompromise") != NULL;
	return 0;
}

static void test_admin_lifecycle_audited(void **state)
{
	struct engine_fx *f = *state;
	struct keel_manage_ctx c = {.actor = "admin:carol"};
	struct keel_store_audit_filter flt = {.client = "admin:carol"};
	struct keel_store_audit_check chk;
	struct audit_seen seen = {0};
	char uid[129];

	req_create_aes(f, 256, MASK_ED, false, uid);
	assert_int_equal(keel_manage_key_activate(f->e, &c, uid), 0);
	assert_int_equal(keel_manage_key_activate(f->e, &c, uid), KEEL_MANAGE_E_STATE);
	/* The KMIP rule holds for administrators too: an Active key is not destroyed. */
	assert_int_equal(keel_manage_key_destroy(f->e, &c, uid), KEEL_MANAGE_E_STATE);
	assert_string_equal(c.msg, "object is Active");
	assert_int_equal(keel_manage_key_revoke(f->e, &c, uid, 99, NULL), KEEL_MANAGE_E_INVALID);
	assert_int_equal(keel_manage_key_revoke(f->e, &c, uid,
						KMIP_REVOCATION_REASON_CODE_KEY_COMPROMISE,
						"laptop stolen"),
			 0);
	assert_int_equal(keel_manage_key_destroy(f->e, &c, uid), 0);
	uid_op(f, &f->alice, KMIP_OPERATION_GET, uid);
	req_expect_fail(f, 0, KMIP_RESULT_REASON_PERMISSION_DENIED); /* destroyed (1.4) */
	assert_int_equal(keel_manage_key_destroy(f->e, &c, "nope"), KEEL_MANAGE_E_NOT_FOUND);
	assert_int_equal(keel_manage_audit_show(f->e, &c, &flt, on_row, &seen), 0);
	assert_int_equal(seen.n, 6); /* the invalid reason changed nothing and is not audited */
	assert_int_equal(seen.failed, 3);
	assert_true(seen.detail);
	assert_int_equal(keel_manage_audit_verify(f->e, &c, NULL, &chk), 0);
	assert_int_equal(chk.fault, KEEL_AUDIT_INTACT);
	assert_true(chk.num_rows >= 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_object_grant_levels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owner_wide_grant, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_admin_search_and_show, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_admin_lifecycle_audited, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
