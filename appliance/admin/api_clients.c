/*
 * /v1/clients and /v1/cas: the client registry, and the four ways vCenter
 * establishes trust (VCENTER.md §4): pin its self-signed certificate, trust
 * its root CA, sign its CSR, or issue it a certificate and key. Every change
 * reloads the registry's snapshot before answering, so the next handshake
 * sees it, then asks keeld for a SIGHUP, which also ends resumable TLS
 * sessions of a removed client.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "admin_int.h"
#include "engine/manage.h"
#include "keel/kmip.h"
#include "keel/pki.h"
#include "log.h"
#include "store.h"

/* ---- helpers shared by the routes below ----------------------------------- */

static void iso_time(const ASN1_TIME *t, char out[32])
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		snprintf(out, 32, "-");
	}
}

static json_t *name_json(const X509_NAME *name)
{
	char *text = X509_NAME_oneline(name, NULL, 0);
	json_t *j = json_string(text != NULL ? text : "");

	OPENSSL_free(text);
	return j;
}

/* What a certificate says, for lists and show. */
json_t *admin_cert_json(X509 *cert)
{
	char not_before[32], not_after[32];

	iso_time(X509_get0_notBefore(cert), not_before);
	iso_time(X509_get0_notAfter(cert), not_after);
	return json_pack("{s:o, s:o, s:s, s:s}", "subject", name_json(X509_get_subject_name(cert)),
			 "issuer", name_json(X509_get_issuer_name(cert)), "not_before", not_before,
			 "not_after", not_after);
}

static json_t *client_json(const struct keel_store_client *c)
{
	X509 *cert = keel_cert_from_pem(c->pem);
	json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "fingerprint", c->fingerprint, "name",
			      c->name, "role", c->role, "added", (json_int_t)c->added);

	if (j != NULL && cert != NULL) {
		json_object_update_new(j, admin_cert_json(cert));
	}
	X509_free(cert);
	return j;
}

/* After a change: the snapshot now, the server's TLS contexts soon (or, in
 * the privilege-separated network process, before the answer). */
void admin_registry_changed(struct admin_req *rq)
{
	if (keel_clients_reload(rq->ctx->clients) != 0) {
		keel_err("admin: the registry changed but its snapshot could not be rebuilt");
	}
	if (rq->ctx->registry_changed != NULL) {
		rq->ctx->registry_changed(rq->ctx->registry_changed_arg);
		return;
	}
	(void)kill(getpid(), SIGHUP);
}

static int lookup(struct admin_req *rq, const char *id, struct keel_store_client *out)
{
	struct keel_store_txn *t = NULL;
	int r;

	if ((r = keel_store_begin_read(rq->ctx->store, &t)) == 0) {
		r = keel_store_client_get(t, id, out);
		keel_store_rollback(t);
	}
	if (r == KEEL_STORE_E_NOT_FOUND) {
		return admin_fail(rq, 404, "no client %s", id);
	}
	return r != 0 ? admin_fail(rq, 500, "store: %s", keel_store_strerror(r)) : 0;
}

/* The registry row for |cert|: name given, else its CN, else its fingerprint. */
static int new_row(struct admin_req *rq, X509 *cert, const char *name, const char *role,
		   struct keel_store_client *out)
{
	uint8_t fp[KEEL_FINGERPRINT_LEN];
	char cn[KEEL_STORE_NAME_MAX + 1] = "";

	memset(out, 0, sizeof(*out));
	if (keel_cert_fingerprint(cert, fp, out->fingerprint) != 0 ||
	    (out->pem = keel_cert_pem(cert)) == NULL) {
		return admin_fail(rq, 500, "cannot encode the certificate");
	}
	if (name == NULL && X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
						      cn, sizeof(cn)) > 0) {
		name = cn;
	}
	if (name != NULL && (name[0] == '\0' || strlen(name) > KEEL_STORE_NAME_MAX)) {
		return admin_fail(rq, 400, "field \"name\" must have 1 to %d characters",
				  KEEL_STORE_NAME_MAX);
	}
	snprintf(out->name, sizeof(out->name), "%s", name != NULL ? name : out->fingerprint);
	snprintf(out->role, sizeof(out->role), "%s", role);
	out->added = (int64_t)time(NULL);
	return 0;
}

/* Registers |cert|; 201 with the client (and |extra| merged in, stolen), or 409. */
int admin_register_cert(struct admin_req *rq, X509 *cert, const char *name, const char *role,
			json_t *extra)
{
	return admin_register_cert_in(rq, cert, name, role, extra, NULL, NULL);
}

int admin_register_cert_in(struct admin_req *rq, X509 *cert, const char *name, const char *role,
			   json_t *extra, admin_txn_step_fn step, void *step_arg)
{
	struct keel_store_client row;
	struct keel_store_txn *t = NULL;
	int status, r;

	if ((status = new_row(rq, cert, name, role, &row)) != 0) {
		keel_store_client_cleanup(&row);
		json_decref(extra);
		return status;
	}
	if ((r = keel_store_begin(rq->ctx->store, &t)) == 0 &&
	    (status = step != NULL ? step(rq, t, step_arg) : 0) == 0 &&
	    (r = keel_store_client_put(t, &row)) == 0) {
		r = keel_store_commit(t);
	} else if (t != NULL) {
		keel_store_rollback(t);
	}
	if (status != 0) {
		/* the step refused: its answer stands */
	} else if (r == KEEL_STORE_E_EXISTS) {
		status = admin_fail(
		    rq, 409, "this certificate or the name %s is already registered", row.name);
	} else if (r != 0) {
		status = admin_fail(rq, 500, "store: %s", keel_store_strerror(r));
	} else {
		keel_notice("admin: %s registered %s %s (%s)", rq->who, row.role, row.name,
			    row.fingerprint);
		admin_registry_changed(rq);
		status = admin_ok(rq, 201, client_json(&row));
		if (extra != NULL && rq->out != NULL) {
			json_object_update(rq->out, extra);
		}
	}
	json_decref(extra);
	keel_store_client_cleanup(&row);
	return status;
}

/* The "role" field: kmip (default), admin or auditor. */
int admin_role_field(struct admin_req *rq, json_t *body, const char **out)
{
	enum keel_role role;
	int status;

	if ((status = admin_field_string(rq, body, "role", false, out)) != 0) {
		return status;
	}
	if (*out == NULL) {
		*out = "kmip";
	} else if (keel_role_parse(*out, &role) != 0) {
		return admin_fail(rq, 400, "field \"role\" must be kmip, admin or auditor");
	}
	return 0;
}

/* A PEM field holding one certificate. */
static int cert_field(struct admin_req *rq, json_t *body, X509 **out)
{
	const char *pem;
	int status;

	if ((status = admin_field_string(rq, body, "certificate", true, &pem)) != 0) {
		return status;
	}
	if ((*out = keel_cert_from_pem(pem)) == NULL) {
		return admin_fail(rq, 400, "field \"certificate\" is not a PEM certificate");
	}
	return 0;
}

/* ---- routes --------------------------------------------------------------- */

int admin_list_clients(struct admin_req *rq)
{
	struct keel_store_client *rows = NULL;
	struct keel_store_txn *t = NULL;
	json_t *arr = json_array();
	size_t num = 0;
	int r;

	if ((r = keel_store_begin_read(rq->ctx->store, &t)) == 0) {
		r = keel_store_client_list(t, &rows, &num);
		keel_store_rollback(t);
	}
	for (size_t i = 0; r == 0 && i < num; i++) {
		json_array_append_new(arr, client_json(&rows[i]));
	}
	keel_store_clients_free(rows, num);
	if (r != 0) {
		json_decref(arr);
		return admin_fail(rq, 500, "store: %s", keel_store_strerror(r));
	}
	return admin_ok(rq, 200, json_pack("{s:o}", "clients", arr));
}

int admin_add_client(struct admin_req *rq)
{
	json_t *body = NULL;
	const char *name, *role;
	X509 *cert = NULL;
	int status;

	if ((status = admin_body(rq, &body)) == 0 &&
	    (status = admin_field_string(rq, body, "name", false, &name)) == 0 &&
	    (status = admin_role_field(rq, body, &role)) == 0 &&
	    (status = cert_field(rq, body, &cert)) == 0) {
		status = admin_register_cert(rq, cert, name, role, NULL);
	}
	X509_free(cert);
	json_decref(body);
	return status;
}

int admin_trust_ca(struct admin_req *rq)
{
	json_t *body = NULL;
	const char *name;
	X509 *cert = NULL;
	int status;

	if ((status = admin_body(rq, &body)) == 0 &&
	    (status = admin_field_string(rq, body, "name", false, &name)) == 0 &&
	    (status = cert_field(rq, body, &cert)) == 0) {
		/* X509_check_ca: 1 for a CA by basicConstraints (or an old v1 root). */
		status =
		    X509_check_ca(cert) == 1
			? admin_register_cert(rq, cert, name, "ca", NULL)
			: admin_fail(rq, 400, "the certificate is not a CA (basicConstraints)");
	}
	X509_free(cert);
	json_decref(body);
	return status;
}

/* The keys a client still owns (not destroyed), collected for show and remove. */
struct owned {
	char **uids;
	size_t num;
	size_t seen; /* every key found, destroyed ones too: the next page's offset */
};

static int collect_owned(void *ctx, const struct keel_key_summary *k)
{
	struct owned *o = ctx;
	char **grown;

	o->seen++;
	if (k->state == KMIP_STATE_DESTROYED || k->state == KMIP_STATE_DESTROYED_COMPROMISED) {
		return 0;
	}
	if ((grown = realloc(o->uids, (o->num + 1) * sizeof(*grown))) == NULL) {
		return -1;
	}
	o->uids = grown;
	if ((o->uids[o->num] = strdup(k->uid)) == NULL) {
		return -1;
	}
	o->num++;
	return 0;
}

static void owned_free(struct owned *o)
{
	for (size_t i = 0; i < o->num; i++) {
		free(o->uids[i]);
	}
	free(o->uids);
}

/* Pages through the owner's keys (the engine caps one search at its Locate limit). */
static int find_owned(struct admin_req *rq, const char *owner, struct owned *out)
{
	struct keel_manage_ctx mc = {.actor = rq->who};
	struct keel_key_filter f = {.owner = owner};
	size_t before;

	memset(out, 0, sizeof(*out));
	do {
		before = out->seen;
		f.offset = out->seen;
		if (keel_manage_keys_find(rq->ctx->engine, &mc, &f, collect_owned, out) != 0) {
			owned_free(out);
			return admin_fail(rq, 500, "cannot list the client's keys: %s", mc.msg);
		}
	} while (out->seen > before);
	return 0;
}

int admin_show_client(struct admin_req *rq)
{
	struct keel_store_client c;
	struct owned o = {0};
	int status;

	if ((status = lookup(rq, rq->params[0], &c)) != 0) {
		return status;
	}
	if ((status = find_owned(rq, c.fingerprint, &o)) == 0) {
		status = admin_ok(rq, 200, client_json(&c));
		json_object_set_new(rq->out, "keys", json_integer((json_int_t)o.num));
		json_object_set_new(rq->out, "certificate", json_string(c.pem));
	}
	owned_free(&o);
	keel_store_client_cleanup(&c);
	return status;
}

int admin_rename_client(struct admin_req *rq)
{
	struct keel_store_client c = {0};
	struct keel_store_txn *t = NULL;
	json_t *body = NULL;
	const char *name;
	int status, r;

	if ((status = admin_body(rq, &body)) != 0 ||
	    (status = admin_field_string(rq, body, "name", true, &name)) != 0 ||
	    (status = lookup(rq, rq->params[0], &c)) != 0) {
		goto out;
	}
	if ((r = keel_store_begin(rq->ctx->store, &t)) == 0 &&
	    (r = keel_store_client_rename(t, c.fingerprint, name)) == 0) {
		r = keel_store_commit(t);
	} else if (t != NULL) {
		keel_store_rollback(t);
	}
	if (r == KEEL_STORE_E_EXISTS || r == KEEL_STORE_E_INVAL) {
		status = admin_fail(
		    rq, r == KEEL_STORE_E_EXISTS ? 409 : 400,
		    r == KEEL_STORE_E_EXISTS ? "the name %s is taken" : "bad name \"%s\"", name);
	} else if (r != 0) {
		status = admin_fail(rq, 500, "store: %s", keel_store_strerror(r));
	} else {
		snprintf(c.name, sizeof(c.name), "%s", name);
		status = admin_ok(rq, 200, client_json(&c));
	}
out:
	keel_store_client_cleanup(&c);
	json_decref(body);
	return status;
}

/* Revokes (if Active) and destroys each key, as the KMIP operations would. */
static int destroy_owned(struct admin_req *rq, const struct owned *o)
{
	struct keel_manage_ctx mc = {.actor = rq->who};
	int r;

	for (size_t i = 0; i < o->num; i++) {
		r = keel_manage_key_destroy(rq->ctx->engine, &mc, o->uids[i]);
		if (r == KEEL_MANAGE_E_STATE) {
			r = keel_manage_key_revoke(
			    rq->ctx->engine, &mc, o->uids[i],
			    KMIP_REVOCATION_REASON_CODE_CESSATION_OF_OPERATION, "client removed");
			r = r != 0 ? r : keel_manage_key_destroy(rq->ctx->engine, &mc, o->uids[i]);
		}
		if (r != 0) {
			return admin_fail(rq, 500, "destroying %s: %s", o->uids[i], mc.msg);
		}
	}
	return 0;
}

/* Forgets the client's grants (a certificate registered again must not find
 * them), then its registration. */
static int unregister(struct admin_req *rq, const struct keel_store_client *c, size_t destroyed)
{
	struct keel_manage_ctx mc = {.actor = rq->who};
	struct keel_store_txn *t = NULL;
	size_t grants = 0;
	int r;

	if ((r = keel_manage_forget_grants(rq->ctx->engine, &mc, c->fingerprint, &grants)) != 0) {
		return admin_manage_status(rq, r, &mc);
	}
	if ((r = keel_store_begin(rq->ctx->store, &t)) == 0 &&
	    (r = keel_store_client_delete(t, c->fingerprint)) == 0) {
		r = keel_store_commit(t);
	} else if (t != NULL) {
		keel_store_rollback(t);
	}
	if (r != 0) {
		return admin_fail(rq, 500, "store: %s", keel_store_strerror(r));
	}
	keel_notice("admin: %s removed %s %s (%s), %zu keys destroyed, %zu grants revoked", rq->who,
		    c->role, c->name, c->fingerprint, destroyed, grants);
	admin_registry_changed(rq);
	return admin_ok(rq, 200,
			json_pack("{s:s, s:s, s:I}", "removed", c->fingerprint, "name", c->name,
				  "keys_destroyed", (json_int_t)destroyed));
}

int admin_remove_client(struct admin_req *rq)
{
	char *destroy = admin_query(rq, "destroy_keys");
	bool destroy_keys = destroy != NULL && strcmp(destroy, "true") == 0;
	struct keel_store_client c = {0};
	struct owned o = {0};
	int status;

	if ((status = lookup(rq, rq->params[0], &c)) != 0 ||
	    (status = find_owned(rq, c.fingerprint, &o)) != 0) {
		goto out;
	}
	if (o.num > 0 && !destroy_keys) {
		status = admin_fail(rq, 409,
				    "client %s owns %zu keys: remove it with destroy_keys=true to "
				    "destroy them (VMs they protect can no longer start)",
				    c.name, o.num);
	} else if ((status = destroy_owned(rq, &o)) == 0) {
		status = unregister(rq, &c, o.num);
	}
out:
	owned_free(&o);
	keel_store_client_cleanup(&c);
	free(destroy);
	return status;
}
