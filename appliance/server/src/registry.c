/*
 * Client registrations from files, until the store provides them: a
 * directory of registered client certificates (pinned by fingerprint) and a
 * file of CAs whose clients are all registered. Loaded once per start or
 * SIGHUP; lookups are from memory, as the handshake needs.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "server_int.h"

struct file_registry {
	uint8_t (*fps)[KEEL_FINGERPRINT_LEN]; /* sorted, for bsearch */
	size_t num_fps;
	X509_STORE *cas; /* NULL: no CA registered */
};

static int fp_cmp(const void *a, const void *b)
{
	return memcmp(a, b, KEEL_FINGERPRINT_LEN);
}

static void file_registry_free(void *ctx)
{
	struct file_registry *fr = ctx;

	if (fr == NULL) {
		return;
	}
	free(fr->fps);
	X509_STORE_free(fr->cas);
	free(fr);
}

static bool chains_to_ca(struct file_registry *fr, X509_STORE_CTX *chain)
{
	X509_STORE_CTX *v = X509_STORE_CTX_new();
	bool ok = false;

	if (v == NULL || X509_STORE_CTX_init(v, fr->cas, X509_STORE_CTX_get0_cert(chain),
					     X509_STORE_CTX_get0_untrusted(chain)) != 1) {
		goto out;
	}
	/* Client purpose: an EKU, when present, must allow clientAuth.
	 * Certificates without EKU (plain openssl CLI ones) still pass. */
	X509_STORE_CTX_set_purpose(v, X509_PURPOSE_SSL_CLIENT);
	ok = X509_verify_cert(v) == 1;
	if (!ok) {
		keel_debug("handshake: client chain: %s",
			   X509_verify_cert_error_string(X509_STORE_CTX_get_error(v)));
	}
out:
	X509_STORE_CTX_free(v);
	return ok;
}

static bool file_registry_check(void *ctx, const uint8_t fingerprint[KEEL_FINGERPRINT_LEN],
				X509_STORE_CTX *chain)
{
	struct file_registry *fr = ctx;
	X509 *leaf = X509_STORE_CTX_get0_cert(chain);

	if (fr->num_fps > 0 &&
	    bsearch(fingerprint, fr->fps, fr->num_fps, sizeof(fr->fps[0]), fp_cmp) != NULL) {
		/* A pinned certificate is trusted as itself, but not past its dates. */
		if (X509_cmp_current_time(X509_get0_notAfter(leaf)) > 0 &&
		    X509_cmp_current_time(X509_get0_notBefore(leaf)) < 0) {
			return true;
		}
		keel_debug("handshake: registered client certificate is outside its validity");
		return false;
	}
	return fr->cas != NULL && chains_to_ca(fr, chain);
}

static bool is_pem_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 &&
	       (strcmp(name + n - 4, ".pem") == 0 || strcmp(name + n - 4, ".crt") == 0);
}

static int add_cert_file(struct file_registry *fr, const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *cert = NULL;
	void *grown;
	unsigned int len = 0;
	int r = -1;

	if (f == NULL || (cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
		keel_err("clients: %s: not a readable PEM certificate", path);
		goto out;
	}
	grown = realloc(fr->fps, (fr->num_fps + 1) * sizeof(fr->fps[0]));
	if (grown == NULL) {
		goto out;
	}
	fr->fps = grown;
	if (X509_digest(cert, EVP_sha256(), fr->fps[fr->num_fps], &len) != 1) {
		goto out;
	}
	fr->num_fps++;
	r = 0;
out:
	X509_free(cert);
	if (f != NULL) {
		fclose(f);
	}
	return r;
}

static int load_dir(struct file_registry *fr, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	int r = 0;

	if (d == NULL) {
		keel_err("clients: cannot open directory %s", dir);
		return -1;
	}
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (!is_pem_name(e->d_name)) {
			continue;
		}
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path)) {
			r = -1;
			break;
		}
		r = add_cert_file(fr, path);
	}
	closedir(d);
	if (r == 0 && fr->num_fps > 1) {
		qsort(fr->fps, fr->num_fps, sizeof(fr->fps[0]), fp_cmp);
	}
	return r;
}

static int load_cas(struct file_registry *fr, const char *ca_file)
{
	if ((fr->cas = X509_STORE_new()) == NULL || X509_STORE_load_file(fr->cas, ca_file) != 1) {
		keel_err("clients: cannot load CA file %s", ca_file);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int keel_file_registry_new(struct keel_registry *out_reg, const char *certificates_dir,
			   const char *ca_file)
{
	struct file_registry *fr = calloc(1, sizeof(*fr));
	int r = -1;

	if (fr == NULL) {
		goto out;
	}
	if (certificates_dir != NULL && load_dir(fr, certificates_dir) != 0) {
		goto out;
	}
	if (ca_file != NULL && load_cas(fr, ca_file) != 0) {
		goto out;
	}
	keel_debug("clients: %zu registered certificates, %s", fr->num_fps,
		   fr->cas != NULL ? "registered CAs" : "no registered CA");
	out_reg->is_registered = file_registry_check;
	out_reg->ctx = fr;
	out_reg->free = file_registry_free;
	fr = NULL;
	r = 0;
out:
	file_registry_free(fr);
	return r;
}
