/*
 * Registrations from files (keel/clients.h): the echo server's snapshot, and
 * keeld's one-time import of clients.certificates_dir, clients.ca_file and
 * admin.certificates_dir into the store's registry.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "clients_int.h"
#include "log.h"
#include "store.h"

/* |role|: "kmip" or "admin" for a pinned leaf, "ca" for a trusted CA. */
typedef int (*cert_fn)(void *ctx, const char *path, X509 *cert, const char *role);

static bool is_pem_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 &&
	       (strcmp(name + n - 4, ".pem") == 0 || strcmp(name + n - 4, ".crt") == 0);
}

/* Every certificate in |path| (a CA file may hold several; a leaf file one). */
static int each_in_file(const char *path, const char *role, cert_fn fn, void *ctx)
{
	FILE *f = fopen(path, "re");
	X509 *cert;
	int r = 0, n = 0;

	if (f == NULL) {
		keel_err("clients: cannot open %s", path);
		return -1;
	}
	while (r == 0 && (cert = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		r = fn(ctx, path, cert, role);
		X509_free(cert);
		n++;
	}
	ERR_clear_error();
	fclose(f);
	if (r == 0 && n == 0) {
		keel_err("clients: %s: not a readable PEM certificate", path);
		return -1;
	}
	return r;
}

/* Every leaf certificate file in |dir| (NULL: none), pinned with |role|. */
static int each_in_dir(const char *dir, const char *role, cert_fn fn, void *ctx)
{
	DIR *d = dir != NULL ? opendir(dir) : NULL;
	struct dirent *e;
	char path[4096];
	int r = 0;

	if (dir != NULL && d == NULL) {
		keel_err("clients: cannot open directory %s", dir);
		return -1;
	}
	while (d != NULL && r == 0 && (e = readdir(d)) != NULL) {
		if (!is_pem_name(e->d_name)) {
			continue;
		}
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path)) {
			r = -1;
			break;
		}
		r = each_in_file(path, role, fn, ctx);
	}
	if (d != NULL) {
		closedir(d);
	}
	return r;
}

static int each_cert(const char *dir, const char *ca_file, cert_fn fn, void *ctx)
{
	int r = each_in_dir(dir, "kmip", fn, ctx);

	return r == 0 && ca_file != NULL ? each_in_file(ca_file, "ca", fn, ctx) : r;
}

static int add_to_snapshot(void *ctx, const char *path, X509 *cert, const char *role)
{
	return strcmp(role, "ca") == 0 ? clients_snap_add_ca(ctx, cert)
				       : clients_snap_add_pin(ctx, cert, KEEL_ROLE_KMIP);
}

int keel_clients_from_files(const char *certificates_dir, const char *ca_file,
			    struct keel_clients **out)
{
	struct snapshot *s = calloc(1, sizeof(*s));

	if (s == NULL || each_cert(certificates_dir, ca_file, add_to_snapshot, s) != 0) {
		clients_snap_free(s);
		return -1;
	}
	clients_snap_sort(s);
	return clients_holder_new(NULL, s, out);
}

char *keel_cert_pem(X509 *cert)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (b != NULL && PEM_write_bio_X509(b, cert) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0) {
		out = strndup(data, (size_t)len);
	}
	BIO_free(b);
	return out;
}

/* Registers one certificate named after its file (a CA after its fingerprint). */
static int import_one(void *ctx, const char *path, X509 *cert, const char *role)
{
	struct keel_store_client c = {.added = (int64_t)time(NULL)};
	uint8_t fp[KEEL_FINGERPRINT_LEN];
	const char *base = strrchr(path, '/');
	int r;

	if (keel_cert_fingerprint(cert, fp, c.fingerprint) != 0 ||
	    (c.pem = keel_cert_pem(cert)) == NULL) {
		return -1;
	}
	snprintf(c.role, sizeof(c.role), "%s", role);
	if (strcmp(role, "ca") == 0) {
		snprintf(c.name, sizeof(c.name), "ca-%.16s", c.fingerprint);
	} else {
		snprintf(c.name, sizeof(c.name), "%.*s", (int)strcspn(base + 1, "."), base + 1);
	}
	r = keel_store_client_put(ctx, &c);
	if (r == KEEL_STORE_E_EXISTS) {
		r = 0; /* the same certificate twice: once is enough */
	} else if (r == 0) {
		keel_info("clients: registered %s from %s (%s)", c.name, path, c.role);
	}
	free(c.pem);
	return r;
}

int keel_clients_import(struct keel_store *store, const char *certificates_dir, const char *ca_file,
			const char *admins_dir)
{
	struct keel_store_client *rows = NULL;
	struct keel_store_txn *t = NULL;
	size_t num = 0;
	int r;

	if ((r = keel_store_begin(store, &t)) != 0 ||
	    (r = keel_store_client_list(t, &rows, &num)) != 0) {
		keel_err("clients: cannot read the registry: %s", keel_store_strerror(r));
		keel_store_rollback(t);
		return -1;
	}
	keel_store_clients_free(rows, num);
	if (num > 0 || (certificates_dir == NULL && ca_file == NULL && admins_dir == NULL)) {
		keel_store_rollback(t);
		return 0;
	}
	if (each_cert(certificates_dir, ca_file, import_one, t) != 0 ||
	    each_in_dir(admins_dir, "admin", import_one, t) != 0) {
		keel_store_rollback(t);
		return -1;
	}
	return keel_store_commit(t) == 0 ? 0 : -1;
}
