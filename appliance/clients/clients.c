/*
 * See keel/clients.h. A snapshot is immutable once built: a reload builds a
 * new one and swaps the pointer under a write lock, so a handshake holding
 * the read lock sees one whole registry, old or new.
 */
#include "clients_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "store.h"

struct keel_clients {
	atomic_int refs;
	pthread_rwlock_t lock;
	struct snapshot *snap;
	struct keel_store *store; /* NULL: a snapshot of files, never reloaded */
};

static const char *const role_names[] = {
    [KEEL_ROLE_NONE] = "none",
    [KEEL_ROLE_KMIP] = "kmip",
    [KEEL_ROLE_AUDITOR] = "auditor",
    [KEEL_ROLE_ADMIN] = "admin",
};

const char *keel_role_name(enum keel_role role)
{
	return (size_t)role < sizeof(role_names) / sizeof(role_names[0]) ? role_names[role]
									 : "none";
}

int keel_role_parse(const char *name, enum keel_role *out)
{
	for (size_t i = KEEL_ROLE_KMIP; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (name != NULL && strcmp(name, role_names[i]) == 0) {
			*out = (enum keel_role)i;
			return 0;
		}
	}
	return -1;
}

int keel_cert_fingerprint(X509 *cert, uint8_t out[KEEL_FINGERPRINT_LEN],
			  char out_hex[2 * KEEL_FINGERPRINT_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned int len = 0;

	if (X509_digest(cert, EVP_sha256(), out, &len) != 1 || len != KEEL_FINGERPRINT_LEN) {
		return -1;
	}
	for (size_t i = 0; i < KEEL_FINGERPRINT_LEN; i++) {
		out_hex[2 * i] = hex[out[i] >> 4];
		out_hex[2 * i + 1] = hex[out[i] & 0xf];
	}
	out_hex[2 * KEEL_FINGERPRINT_LEN] = '\0';
	return 0;
}

/* ---- snapshots ---------------------------------------------------------- */

void clients_snap_free(struct snapshot *s)
{
	if (s != NULL) {
		free(s->pins);
		X509_STORE_free(s->cas);
		free(s);
	}
}

static int pin_cmp(const void *a, const void *b)
{
	return memcmp(((const struct pin *)a)->fp, ((const struct pin *)b)->fp,
		      KEEL_FINGERPRINT_LEN);
}

int clients_snap_add_pin(struct snapshot *s, X509 *cert, enum keel_role role)
{
	char hex[2 * KEEL_FINGERPRINT_LEN + 1];
	struct pin *grown = realloc(s->pins, (s->num_pins + 1) * sizeof(*s->pins));

	if (grown == NULL) {
		return -1;
	}
	s->pins = grown;
	s->pins[s->num_pins].role = role;
	if (keel_cert_fingerprint(cert, s->pins[s->num_pins].fp, hex) != 0) {
		return -1;
	}
	s->num_pins++;
	return 0;
}

int clients_snap_add_ca(struct snapshot *s, X509 *cert)
{
	if (s->cas == NULL && (s->cas = X509_STORE_new()) == NULL) {
		return -1;
	}
	if (X509_STORE_add_cert(s->cas, cert) != 1) {
		ERR_clear_error();
		return -1;
	}
	s->num_cas++;
	return 0;
}

X509 *keel_cert_from_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *cert = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	ERR_clear_error();
	return cert;
}

/* One registry row into the snapshot; a row that does not parse is skipped. */
static int snap_add_row(struct snapshot *s, const struct keel_store_client *row)
{
	X509 *cert = keel_cert_from_pem(row->pem);
	enum keel_role role;
	int r = 0;

	if (cert == NULL) {
		keel_err("clients: %s (%s): the stored certificate does not parse, skipped",
			 row->name, row->fingerprint);
		return 0;
	}
	if (strcmp(row->role, "ca") == 0) {
		r = clients_snap_add_ca(s, cert);
	} else if (keel_role_parse(row->role, &role) == 0) {
		r = clients_snap_add_pin(s, cert, role);
	}
	X509_free(cert);
	return r;
}

static int snap_from_store(struct keel_store *store, struct snapshot **out)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	struct keel_store_client *rows = NULL;
	struct keel_store_txn *t = NULL;
	size_t num = 0;
	int r = -1;

	if (s == NULL || (store != NULL && (keel_store_begin(store, &t) != 0 ||
					    keel_store_client_list(t, &rows, &num) != 0))) {
		keel_err("clients: cannot read the registry");
		goto out;
	}
	r = 0;
	for (size_t i = 0; r == 0 && i < num; i++) {
		r = snap_add_row(s, &rows[i]);
	}
out:
	keel_store_rollback(t);
	keel_store_clients_free(rows, num);
	if (r == 0) {
		clients_snap_sort(s);
	}
	if (r != 0) {
		clients_snap_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void clients_snap_sort(struct snapshot *s)
{
	if (s->num_pins > 1) {
		qsort(s->pins, s->num_pins, sizeof(*s->pins), pin_cmp);
	}
}

/* ---- the holder ----------------------------------------------------------- */

int clients_holder_new(struct keel_store *store, struct snapshot *snap, struct keel_clients **out)
{
	struct keel_clients *c = calloc(1, sizeof(*c));

	if (c == NULL || pthread_rwlock_init(&c->lock, NULL) != 0) {
		free(c);
		clients_snap_free(snap);
		return -1;
	}
	atomic_init(&c->refs, 1);
	c->snap = snap;
	c->store = store;
	*out = c;
	return 0;
}

pthread_rwlock_t *clients_lock(struct keel_clients *c)
{
	return &c->lock;
}

const struct snapshot *clients_snap(struct keel_clients *c)
{
	return c->snap;
}

int keel_clients_new(struct keel_store *store, struct keel_clients **out)
{
	struct snapshot *snap = NULL;

	if (snap_from_store(store, &snap) != 0) {
		return -1;
	}
	return clients_holder_new(store, snap, out);
}

int keel_clients_reload(struct keel_clients *c)
{
	struct snapshot *snap = NULL, *old;

	if (c->store == NULL) {
		return 0;
	}
	if (snap_from_store(c->store, &snap) != 0) {
		return -1;
	}
	pthread_rwlock_wrlock(&c->lock);
	old = c->snap;
	c->snap = snap;
	pthread_rwlock_unlock(&c->lock);
	clients_snap_free(old);
	keel_debug("clients: %zu registered certificates, %zu trusted CAs", snap->num_pins,
		   snap->num_cas);
	return 0;
}

void keel_clients_free(struct keel_clients *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1) {
		return;
	}
	clients_snap_free(c->snap);
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

static bool chains_to_ca(X509_STORE *cas, X509 *leaf, STACK_OF(X509) * untrusted);

static const struct pin *find_pin(const struct snapshot *s,
				  const uint8_t fingerprint[KEEL_FINGERPRINT_LEN])
{
	struct pin key;

	memcpy(key.fp, fingerprint, KEEL_FINGERPRINT_LEN);
	return s->num_pins > 0 ? bsearch(&key, s->pins, s->num_pins, sizeof(key), pin_cmp) : NULL;
}

enum keel_role keel_clients_role(struct keel_clients *c,
				 const uint8_t fingerprint[KEEL_FINGERPRINT_LEN])
{
	const struct pin *p;
	enum keel_role role;

	pthread_rwlock_rdlock(&c->lock);
	p = find_pin(c->snap, fingerprint);
	role = p != NULL ? p->role : KEEL_ROLE_NONE;
	pthread_rwlock_unlock(&c->lock);
	return role;
}

enum keel_role keel_clients_identify(struct keel_clients *c, X509 *leaf, STACK_OF(X509) * untrusted,
				     const uint8_t fingerprint[KEEL_FINGERPRINT_LEN])
{
	const struct pin *p;
	enum keel_role role = KEEL_ROLE_NONE;

	pthread_rwlock_rdlock(&c->lock);
	if ((p = find_pin(c->snap, fingerprint)) != NULL) {
		role = p->role;
	} else if (c->snap->cas != NULL && chains_to_ca(c->snap->cas, leaf, untrusted)) {
		role = KEEL_ROLE_KMIP;
	}
	pthread_rwlock_unlock(&c->lock);
	return role;
}

bool keel_clients_may_kmip(struct keel_clients *c, const uint8_t fingerprint[KEEL_FINGERPRINT_LEN])
{
	const struct pin *p;
	bool ok;

	pthread_rwlock_rdlock(&c->lock);
	p = find_pin(c->snap, fingerprint);
	ok = p != NULL ? p->role == KEEL_ROLE_KMIP : c->snap->cas != NULL;
	pthread_rwlock_unlock(&c->lock);
	return ok;
}

size_t keel_clients_count(struct keel_clients *c)
{
	size_t n;

	pthread_rwlock_rdlock(&c->lock);
	n = c->snap->num_pins + c->snap->num_cas;
	pthread_rwlock_unlock(&c->lock);
	return n;
}

/* ---- the KMIP handshake ------------------------------------------------- */

static bool chains_to_ca(X509_STORE *cas, X509 *leaf, STACK_OF(X509) * untrusted)
{
	X509_STORE_CTX *v = X509_STORE_CTX_new();
	bool ok = false;

	if (v == NULL || X509_STORE_CTX_init(v, cas, leaf, untrusted) != 1) {
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
	ERR_clear_error();
	return ok;
}

/* A pinned certificate is trusted as itself, but not past its dates. */
static bool within_dates(X509 *leaf)
{
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) > 0 &&
	    X509_cmp_current_time(X509_get0_notBefore(leaf)) < 0) {
		return true;
	}
	keel_debug("handshake: registered client certificate is outside its validity");
	return false;
}

static bool kmip_allowed(void *ctx, const uint8_t fingerprint[KEEL_FINGERPRINT_LEN],
			 X509_STORE_CTX *chain)
{
	struct keel_clients *c = ctx;
	const struct pin *p;
	bool ok;

	pthread_rwlock_rdlock(&c->lock);
	p = find_pin(c->snap, fingerprint);
	if (p != NULL) {
		/* An admin or auditor certificate is for the admin API only. */
		ok = p->role == KEEL_ROLE_KMIP && within_dates(X509_STORE_CTX_get0_cert(chain));
	} else {
		ok = c->snap->cas != NULL &&
		     chains_to_ca(c->snap->cas, X509_STORE_CTX_get0_cert(chain),
				  X509_STORE_CTX_get0_untrusted(chain));
	}
	pthread_rwlock_unlock(&c->lock);
	return ok;
}

static void registry_unref(void *ctx)
{
	keel_clients_free(ctx);
}

void keel_clients_registry(struct keel_clients *c, struct keel_registry *out)
{
	atomic_fetch_add(&c->refs, 1);
	out->is_registered = kmip_allowed;
	out->ctx = c;
	out->free = registry_unref;
}
