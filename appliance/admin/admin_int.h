/*
 * Private to appliance/admin: the request handed to a route's handler, the
 * route table's row, and the helpers every handler uses to read its input
 * and write its answer. A handler returns the HTTP status; its body is
 * rq->out (JSON) or rq->text (e.g. Prometheus text).
 */
#ifndef KEEL_ADMIN_INT_H
#define KEEL_ADMIN_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "keel/admin.h"
#include "store.h"

struct evhttp_request;

#define ADMIN_MAX_PARAMS 4	    /* {placeholders} in one route's path */
#define ADMIN_MAX_BODY	 (1u << 20) /* largest request body, bytes */
/* Largest upload (a backup to verify or restore) over the local socket. Over
 * HTTPS bodies are read before the caller's role is known, so they keep
 * ADMIN_MAX_BODY; larger backups are restored on the appliance itself. */
#define ADMIN_MAX_UPLOAD (256u << 20)

/* What handlers may use; the rest of struct keel_admin stays in http.c. */
struct admin_ctx {
	struct keel_store *store;
	struct keel_engine *engine;
	struct hsm *hsm;
	struct keel_clients *clients;
	const char *version;
	time_t started;
	char token_label[33];
	struct keel_rotation *rotation;
	const char *config_path;
	struct mirror_service *mirror;	     /* NULL: no mirror section */
	struct mirror_recovery *recovery;    /* NULL: no mirror section */
	void (*registry_changed)(void *arg); /* NULL: SIGHUP */
	void *registry_changed_arg;
	char tls_certificate[PATH_MAX], tls_private_key[PATH_MAX]; /* keeld's, for server-cert */
	char ca_certificate[PATH_MAX], ca_key[PATH_MAX];	   /* "" without a pki section */
};

struct admin_req {
	const struct admin_ctx *ctx;
	struct evhttp_request *http;
	enum keel_role role;
	char who[80]; /* "cert:<fingerprint hex>" or "local:uid=<n>", for logs */
	const char *params[ADMIN_MAX_PARAMS]; /* decoded {placeholders}, in order */
	json_t *out;			      /* JSON answer (owned), or */
	char *text;			      /* a text answer (malloc'd) */
	size_t text_len;
	const char *content_type; /* of |text| */
};

typedef int (*admin_handler_fn)(struct admin_req *rq);

/*
 * One route. |path| is literal segments and {name} placeholders, each
 * matching one non-empty segment, handed to the handler in rq->params.
 * |min_role| is the least role allowed: KEEL_ROLE_NONE lets anyone in (only
 * /healthz), KEEL_ROLE_AUDITOR is for reads, KEEL_ROLE_ADMIN for writes.
 */
struct admin_route {
	const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *path;
	enum keel_role min_role;
	admin_handler_fn handler;
	const char *summary; /* one line, also in docs/admin-api.yaml */
};

extern const struct admin_route admin_routes[];
extern const size_t admin_num_routes;

/* Answers: set rq->out and return |status|. admin_ok steals |body|. */
int admin_ok(struct admin_req *rq, int status, json_t *body);
int admin_fail(struct admin_req *rq, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The request body as a JSON object in *out (json_decref), or a 400 answer
 * (returned, non-zero) saying what is wrong with it. */
__attribute__((warn_unused_result)) int admin_body(struct admin_req *rq, json_t **out);

/* A string field of |obj|: *out is NULL when absent and not |required|.
 * Returns 0, or a 400 answer naming the field. */
__attribute__((warn_unused_result)) int admin_field_string(struct admin_req *rq, json_t *obj,
							   const char *name, bool required,
							   const char **out);

/* The raw request body (e.g. a backup file): *out points into the request. A
 * 400 answer (returned) when it is empty. */
__attribute__((warn_unused_result)) int admin_body_bytes(struct admin_req *rq, const uint8_t **out,
							 size_t *out_len);

/* Appends a successful administrator's action (KEEL_AUDIT_OP_*) by rq->who to
 * the audit trail in a transaction of its own; a failure is logged. */
void admin_audit(struct admin_req *rq, uint32_t operation, const char *detail);

/* Query parameter |name| of the request URI (decoded, malloc'd), or NULL. */
char *admin_query(struct admin_req *rq, const char *name);

/* api_clients.c, for the routes that make certificates (api_pki.c). */
/* Registers |cert| with |role| ("kmip", "admin", "auditor", "ca"); 201 with the
 * client and |extra| (stolen, may be NULL) merged in, 409 when taken. */
int admin_register_cert(struct admin_req *rq, X509 *cert, const char *name, const char *role,
			json_t *extra);
/* A step of another change made in the registration's transaction |t|, before
 * the certificate is added: 0 to go on, else its answer's status (rolled back). */
typedef int (*admin_txn_step_fn)(struct admin_req *rq, struct keel_store_txn *t, void *arg);
/* admin_register_cert with |step| (may be NULL) in the same transaction. */
int admin_register_cert_in(struct admin_req *rq, X509 *cert, const char *name, const char *role,
			   json_t *extra, admin_txn_step_fn step, void *step_arg);
/* The optional "role" field: kmip (default), admin or auditor; 0 or a 400 answer. */
int admin_role_field(struct admin_req *rq, json_t *body, const char **out);
/* Subject, issuer and validity of |cert|. */
json_t *admin_cert_json(X509 *cert);
/* Rebuilds the registry's snapshot now and asks keeld to reload its TLS contexts. */
void admin_registry_changed(struct admin_req *rq);

/* http.c: the HTTPS listeners take keeld's certificate and key anew (after a
 * renewal); connections already open keep theirs. 0 or -1. */
int admin_reload_tls(const struct admin_ctx *ctx);

/* Handlers, one file per group (api_*.c). */
int admin_get_healthz(struct admin_req *rq);
int admin_get_metrics(struct admin_req *rq);
int admin_get_status(struct admin_req *rq);
/* api_keys.c: keys; api_audit.c: grants and the audit trail (engine/manage.h). */
int admin_get_keys(struct admin_req *rq);
int admin_get_key(struct admin_req *rq);
int admin_post_key_activate(struct admin_req *rq);
int admin_post_key_revoke(struct admin_req *rq);
int admin_post_key_destroy(struct admin_req *rq);
int admin_get_grants(struct admin_req *rq);
int admin_post_grant(struct admin_req *rq);
int admin_post_grant_revoke(struct admin_req *rq);
int admin_get_audit(struct admin_req *rq);
int admin_get_audit_verify(struct admin_req *rq);

/*
 * The fingerprint of KMIP client |id| into |out|: a registered client's name
 * or fingerprint, or the fingerprint of a client that is not pinned (it
 * chains to a trusted CA). Admin, auditor and CA registrations own no keys:
 * 400; an unknown name: 404. 0, or the answer's status.
 */
__attribute__((warn_unused_result)) int admin_kmip_identity(struct admin_req *rq, const char *id,
							    char out[KEEL_STORE_OWNER_MAX]);
/* The answer to a failed engine/manage.h call |err|: 404, 400, 409 or 500 with mc->msg. */
struct keel_manage_ctx;
int admin_manage_status(struct admin_req *rq, int err, const struct keel_manage_ctx *mc);
/* A non-negative integer query parameter into *out (unchanged when absent), or a 400 answer. */
__attribute__((warn_unused_result)) int admin_query_int(struct admin_req *rq, const char *name,
							long long *out);
int admin_get_crk(struct admin_req *rq);
int admin_post_crk_rotate(struct admin_req *rq);
/* api_mirror.c: the Key Protect mirror (issue 6). */
int admin_get_mirror(struct admin_req *rq);
int admin_post_mirror_enable(struct admin_req *rq);
int admin_post_mirror_sync(struct admin_req *rq);
/* 409: keeld.conf has no mirror section. */
int admin_mirror_not_configured(struct admin_req *rq);
/* api_recover.c: recovery from Key Protect (issue 6). */
int admin_get_recover(struct admin_req *rq);
int admin_post_recover(struct admin_req *rq);
/* The mirror for /healthz: its fields added to |health|; 0, or -1 out of memory. */
int admin_mirror_health(const struct admin_ctx *c, json_t *health);
int admin_post_backup(struct admin_req *rq);
int admin_post_backup_verify(struct admin_req *rq);
int admin_post_backup_restore(struct admin_req *rq);
int admin_list_clients(struct admin_req *rq);
int admin_add_client(struct admin_req *rq);
int admin_trust_ca(struct admin_req *rq);
int admin_show_client(struct admin_req *rq);
int admin_rename_client(struct admin_req *rq);
int admin_remove_client(struct admin_req *rq);
int admin_sign_csr(struct admin_req *rq);
int admin_issue_client(struct admin_req *rq);
int admin_get_ca(struct admin_req *rq);
int admin_get_server_cert(struct admin_req *rq);
int admin_renew_server_cert(struct admin_req *rq);
/* api_enrol.c: the first administrator's one-time enrolment code. */
int admin_post_enrol(struct admin_req *rq);
/* api_pki.c: Keel's CA signs |csr| as a client certificate; 0 or the answer's status. */
int admin_sign_client_csr(struct admin_req *rq, const char *pem, X509 **out);
/* |cert| in PEM as a JSON string. */
json_t *admin_pem_json(X509 *cert);

#endif
