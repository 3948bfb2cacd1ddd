/*
 * keel_clients: the registry's snapshot. Roles of pinned certificates, what
 * the KMIP handshake accepts (a pinned kmip leaf, a leaf chaining to a
 * trusted CA; never an admin's certificate or an unknown one), a reload after
 * a removal, and the one-time import of the config's files.
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
#include <time.h>
#include <unistd.h>

#include <openssl/x509_vfy.h>

#include "keel/clients.h"
#include "keel/pki.h"
#include "store.h"

struct ca {
	X509 *cert;
	EVP_PKEY *key;
};

struct leaf {
	X509 *cert;
	uint8_t fp[KEEL_FINGERPRINT_LEN];
	char hex[2 * KEEL_FINGERPRINT_LEN + 1];
};

struct fx {
	char dir[64];
	struct keel_store *s;
	struct ca trusted, other;
	struct leaf pinned, admin, via_ca, unknown;
};

static void make_ca(struct ca *ca, const char *cn)
{
	assert_int_equal(keel_pki_rsa_key(KEEL_PKI_LEAF_BITS, &ca->key), 0);
	assert_int_equal(keel_pki_ca_new(ca->key, cn, 30, &ca->cert), 0);
}

static void make_leaf(struct leaf *l, const struct ca *ca, const char *cn)
{
	struct keel_pki_leaf p = {
	    .ca = ca->cert, .ca_key = ca->key, .cn = cn, .usage = KEEL_PKI_CLIENT, .days = 30};

	assert_int_equal(keel_pki_rsa_key(KEEL_PKI_LEAF_BITS, &p.pub), 0);
	assert_int_equal(keel_pki_issue(&p, &l->cert), 0);
	EVP_PKEY_free(p.pub);
	assert_int_equal(keel_cert_fingerprint(l->cert, l->fp, l->hex), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[128];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/keel-clients-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/keel.db", f->dir);
	assert_int_equal(keel_store_open_sqlite(path, 2, &f->s), 0);
	make_ca(&f->trusted, "vCenter root");
	make_ca(&f->other, "elsewhere");
	make_leaf(&f->pinned, &f->other, "vcenter-a");
	make_leaf(&f->admin, &f->other, "ops");
	make_leaf(&f->via_ca, &f->trusted, "vcenter-b");
	make_leaf(&f->unknown, &f->other, "stranger");
	*state = f;
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct leaf *leaves[] = {&f->pinned, &f->admin, &f->via_ca, &f->unknown};

	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		X509_free(leaves[i]->cert);
	}
	X509_free(f->trusted.cert);
	EVP_PKEY_free(f->trusted.key);
	X509_free(f->other.cert);
	EVP_PKEY_free(f->other.key);
	keel_store_close(f->s);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void put(struct fx *f, X509 *cert, const char *name, const char *role)
{
	struct keel_store_client c = {.added = 1};
	struct keel_store_txn *t = NULL;
	uint8_t fp[KEEL_FINGERPRINT_LEN];

	assert_int_equal(keel_cert_fingerprint(cert, fp, c.fingerprint), 0);
	snprintf(c.name, sizeof(c.name), "%s", name);
	snprintf(c.role, sizeof(c.role), "%s", role);
	assert_non_null(c.pem = keel_cert_pem(cert));
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_client_put(t, &c), 0);
	assert_int_equal(keel_store_commit(t), 0);
	free(c.pem);
}

/* What the KMIP handshake decides for |leaf|, sent without a chain. */
static bool handshake_ok(const struct keel_registry *reg, const struct leaf *leaf)
{
	X509_STORE *empty = X509_STORE_new();
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	bool ok;

	assert_int_equal(X509_STORE_CTX_init(xs, empty, leaf->cert, NULL), 1);
	ok = reg->is_registered(reg->ctx, leaf->fp, xs);
	X509_STORE_CTX_free(xs);
	X509_STORE_free(empty);
	return ok;
}

static void test_roles_and_handshakes(void **state)
{
	struct fx *f = *state;
	struct keel_clients *c = NULL;
	struct keel_registry reg;
	struct keel_store_txn *t = NULL;

	put(f, f->pinned.cert, "vcenter-a", "kmip");
	put(f, f->admin.cert, "ops", "admin");
	put(f, f->trusted.cert, "vcenter-root", "ca");
	assert_int_equal(keel_clients_new(f->s, &c), 0);
	assert_int_equal(keel_clients_count(c), 3);
	assert_int_equal(keel_clients_role(c, f->pinned.fp), KEEL_ROLE_KMIP);
	assert_int_equal(keel_clients_role(c, f->admin.fp), KEEL_ROLE_ADMIN);
	assert_int_equal(keel_clients_role(c, f->via_ca.fp), KEEL_ROLE_NONE); /* not pinned */
	assert_int_equal(keel_clients_role(c, f->unknown.fp), KEEL_ROLE_NONE);

	assert_int_equal(keel_clients_identify(c, f->via_ca.cert, NULL, f->via_ca.fp),
			 KEEL_ROLE_KMIP);
	assert_int_equal(keel_clients_identify(c, f->admin.cert, NULL, f->admin.fp),
			 KEEL_ROLE_ADMIN);
	assert_int_equal(keel_clients_identify(c, f->unknown.cert, NULL, f->unknown.fp),
			 KEEL_ROLE_NONE);

	keel_clients_registry(c, &reg);
	assert_true(handshake_ok(&reg, &f->pinned));
	assert_true(handshake_ok(&reg, &f->via_ca));
	assert_false(handshake_ok(&reg, &f->admin)); /* admin API only */
	assert_false(handshake_ok(&reg, &f->unknown));

	/* Removed from the store: refused once the snapshot is rebuilt. */
	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_client_delete(t, f->pinned.hex), 0);
	assert_int_equal(keel_store_commit(t), 0);
	assert_true(handshake_ok(&reg, &f->pinned));
	assert_int_equal(keel_clients_reload(c), 0);
	assert_false(handshake_ok(&reg, &f->pinned));
	assert_int_equal(keel_clients_count(c), 2);

	keel_clients_free(c); /* the registry still holds a reference */
	assert_true(handshake_ok(&reg, &f->via_ca));
	reg.free(reg.ctx);
}

/* What the key process sends the network process decides handshakes as
 * the snapshot itself does, without the admin's pin; damaged bytes are refused. */
static void test_wire(void **state)
{
	struct fx *f = *state;
	struct keel_clients *c = NULL, *w = NULL;
	struct keel_registry reg;
	uint8_t *buf = NULL;
	size_t len = 0;

	put(f, f->pinned.cert, "vcenter-a", "kmip");
	put(f, f->admin.cert, "ops", "admin");
	put(f, f->trusted.cert, "vcenter-root", "ca");
	assert_int_equal(keel_clients_new(f->s, &c), 0);
	assert_int_equal(keel_clients_export(c, &buf, &len), 0);
	assert_int_equal(keel_clients_import_wire(buf, len, &w), 0);
	assert_int_equal(keel_clients_count(w), 2); /* the kmip pin and the CA */
	assert_int_equal(keel_clients_role(w, f->admin.fp), KEEL_ROLE_NONE);
	keel_clients_registry(w, &reg);
	assert_true(handshake_ok(&reg, &f->pinned));
	assert_true(handshake_ok(&reg, &f->via_ca));
	assert_false(handshake_ok(&reg, &f->admin));
	assert_false(handshake_ok(&reg, &f->unknown));
	reg.free(reg.ctx);
	keel_clients_free(w);

	/* The key process's check: a kmip pin, or anyone while CAs are trusted,
	 * but never an admin's certificate. */
	assert_true(keel_clients_may_kmip(c, f->pinned.fp));
	assert_true(keel_clients_may_kmip(c, f->via_ca.fp));
	assert_false(keel_clients_may_kmip(c, f->admin.fp));

	for (size_t cut = 0; cut < len; cut += 7) {
		w = NULL;
		assert_int_not_equal(keel_clients_import_wire(buf, cut, &w), 0);
		assert_null(w);
	}
	buf = realloc(buf, len + 1);
	assert_non_null(buf);
	buf[len] = 0;
	assert_int_not_equal(keel_clients_import_wire(buf, len + 1, &w), 0); /* trailing */
	buf[3] = 0xff; /* a count beyond the bytes */
	assert_int_not_equal(keel_clients_import_wire(buf, len, &w), 0);
	free(buf);
	keel_clients_free(c);
}

static void write_pem(const char *path, X509 *cert)
{
	assert_int_equal(keel_pki_write_cert(path, cert), 0);
}

static size_t registered(struct fx *f)
{
	struct keel_store_client *rows = NULL;
	struct keel_store_txn *t = NULL;
	size_t num = 0;

	assert_int_equal(keel_store_begin(f->s, &t), 0);
	assert_int_equal(keel_store_client_list(t, &rows, &num), 0);
	keel_store_rollback(t);
	keel_store_clients_free(rows, num);
	return num;
}

static void test_import_once(void **state)
{
	struct fx *f = *state;
	struct keel_clients *c = NULL;
	char dir[128], path[192], ca[128];

	snprintf(dir, sizeof(dir), "%s/clients", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/vcenter-a.crt", dir);
	write_pem(path, f->pinned.cert);
	snprintf(path, sizeof(path), "%s/notes.txt", dir); /* not a certificate name: ignored */
	write_pem(path, f->unknown.cert);
	snprintf(ca, sizeof(ca), "%s/ca.pem", f->dir);
	write_pem(ca, f->trusted.cert);

	assert_int_equal(keel_clients_import(f->s, dir, ca, NULL), 0);
	assert_int_equal(registered(f), 2);
	assert_int_equal(keel_clients_new(f->s, &c), 0);
	assert_int_equal(keel_clients_role(c, f->pinned.fp), KEEL_ROLE_KMIP);
	assert_int_equal(keel_clients_role(c, f->unknown.fp), KEEL_ROLE_NONE);
	keel_clients_free(c);

	/* A registry that has entries is the admin API's: files are not read again. */
	snprintf(path, sizeof(path), "%s/stranger.pem", dir);
	write_pem(path, f->unknown.cert);
	assert_int_equal(keel_clients_import(f->s, dir, ca, NULL), 0);
	assert_int_equal(registered(f), 2);
}

static void test_role_names(void **state)
{
	enum keel_role r;

	assert_int_equal(keel_role_parse("auditor", &r), 0);
	assert_int_equal(r, KEEL_ROLE_AUDITOR);
	assert_int_equal(keel_role_parse("ca", &r), -1);
	assert_int_equal(keel_role_parse("none", &r), -1);
	assert_string_equal(keel_role_name(KEEL_ROLE_ADMIN), "admin");
	assert_null(keel_cert_from_pem("not a certificate"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_roles_and_handshakes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wire, setup, teardown),
	    cmocka_unit_test(test_role_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
