/*
 * The admin API's transport: libevent's evhttp on a thread of its own, one
 * evhttp over OpenSSL bufferevents for the HTTPS listeners and one plain
 * evhttp for the local UNIX socket. Every request goes through dispatch():
 * who is asking (client certificate or SO_PEERCRED), which route, may this
 * role use it, then the handler, then one JSON (or text) answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "admin_int.h"
#include "keel/hsm.h"
#include "keel/pki.h"
#include "log.h"
#include "store.h"
#include "wipe.h"

struct keel_admin {
	struct admin_ctx ctx;
	struct event_base *base;
	struct evhttp *https, *local;
	SSL_CTX *ssl_ctx;
	struct event *stop_ev;
	pthread_t thread;
	bool running;
	int tcp_fds[KEEL_LISTEN_MAX];
	size_t num_tcp;
	char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* ---- answers ---------------------------------------------------------- */

int admin_ok(struct admin_req *rq, int status, json_t *body)
{
	json_decref(rq->out);
	rq->out = body;
	return body != NULL ? status : admin_fail(rq, 500, "out of memory");
}

int admin_fail(struct admin_req *rq, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start above */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(rq->out);
	if ((rq->out = json_pack("{s:s}", "error", msg)) == NULL) {
		/* Not UTF-8: the message quotes the request (a path segment may be any
		 * bytes) or was cut inside a character. Still say why, in ASCII. */
		for (char *p = msg; *p != '\0'; p++) {
			*p = (unsigned char)*p < 0x80 ? *p : '?';
		}
		rq->out = json_pack("{s:s}", "error", msg);
	}
	return status;
}

int admin_body(struct admin_req *rq, json_t **out)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(rq->http);
	size_t len = evbuffer_get_length(in);
	json_error_t err;
	json_t *body;

	*out = NULL;
	if (len > ADMIN_MAX_BODY) {
		return admin_fail(rq, 413, "request body over %u bytes", ADMIN_MAX_BODY);
	}
	body = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &err);
	if (body == NULL) {
		return admin_fail(rq, 400, "malformed JSON at line %d column %d: %s", err.line,
				  err.column, err.text);
	}
	if (!json_is_object(body)) {
		json_decref(body);
		return admin_fail(rq, 400, "the request body must be a JSON object");
	}
	*out = body;
	return 0;
}

int admin_body_bytes(struct admin_req *rq, const uint8_t **out, size_t *out_len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(rq->http);
	size_t len = evbuffer_get_length(in);

	if (len == 0) {
		return admin_fail(rq, 400, "the request has no body");
	}
	*out = evbuffer_pullup(in, -1);
	*out_len = len;
	return *out != NULL ? 0 : admin_fail(rq, 500, "out of memory");
}

void admin_audit(struct admin_req *rq, uint32_t operation, const char *detail)
{
	const struct keel_store_audit row = {
	    .time = (int64_t)time(NULL),
	    .client = rq->who,
	    .operation = operation,
	    .detail = detail,
	};
	struct keel_store_txn *t = NULL;
	int r;

	if ((r = keel_store_begin(rq->ctx->store, &t)) == 0) {
		if ((r = keel_store_audit_append(t, &row)) == 0) {
			r = keel_store_commit(t);
		} else {
			keel_store_rollback(t);
		}
	}
	if (r != 0) {
		keel_err("admin: cannot audit %s's action: %s", rq->who, keel_store_strerror(r));
	}
}

int admin_field_string(struct admin_req *rq, json_t *obj, const char *name, bool required,
		       const char **out)
{
	json_t *v = json_object_get(obj, name);

	*out = NULL;
	if (v == NULL && !required) {
		return 0;
	}
	if (v == NULL) {
		return admin_fail(rq, 400, "field \"%s\" is required", name);
	}
	if (!json_is_string(v)) {
		return admin_fail(rq, 400, "field \"%s\" must be a string", name);
	}
	*out = json_string_value(v);
	return 0;
}

char *admin_query(struct admin_req *rq, const char *name)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(rq->http));
	struct evkeyvalq kv;
	const char *v;
	char *copy = NULL;

	if (q == NULL || evhttp_parse_query_str(q, &kv) != 0) {
		return NULL;
	}
	if ((v = evhttp_find_header(&kv, name)) != NULL) {
		copy = strdup(v);
	}
	evhttp_clear_headers(&kv);
	return copy;
}

static void send_answer(struct admin_req *rq, int status)
{
	struct evbuffer *buf = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(rq->http);
	char *json = NULL;

	if (buf == NULL) {
		evhttp_send_error(rq->http, 500, NULL);
		return;
	}
	if (rq->text != NULL) {
		evbuffer_add(buf, rq->text, rq->text_len);
		evhttp_add_header(h, "Content-Type", rq->content_type);
	} else {
		json =
		    rq->out != NULL ? json_dumps(rq->out, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		evbuffer_add_printf(buf, "%s\n", json != NULL ? json : "{\"error\": \"internal\"}");
		evhttp_add_header(h, "Content-Type", "application/json");
		status = json != NULL ? status : 500;
	}
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(rq->http, status, NULL, buf);
	evbuffer_free(buf);
	free(json);
}

/* ---- who is asking ------------------------------------------------------ */

/* HTTPS: the registry's role for the client certificate, or a 401 answer. */
static int identify_cert(struct admin_req *rq, struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *peer = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	uint8_t fp[KEEL_FINGERPRINT_LEN];
	char hex[2 * KEEL_FINGERPRINT_LEN + 1];

	if (peer == NULL) {
		return admin_fail(rq, 401, "a registered admin client certificate is required");
	}
	if (keel_cert_fingerprint(peer, fp, hex) != 0) {
		return admin_fail(rq, 500, "cannot fingerprint the client certificate");
	}
	snprintf(rq->who, sizeof(rq->who), "cert:%s", hex);
	rq->role = keel_clients_identify(rq->ctx->clients, peer, SSL_get_peer_cert_chain(ssl), fp);
	if (rq->role == KEEL_ROLE_NONE) {
		return admin_fail(rq, 401, "client certificate %s is not registered", hex);
	}
	return 0;
}

/* The UNIX socket: root, or keeld's own user, acts as admin. */
static int identify_local(struct admin_req *rq, struct bufferevent *bev)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		return admin_fail(rq, 401, "cannot tell who is on the admin socket");
	}
	snprintf(rq->who, sizeof(rq->who), "local:uid=%u", (unsigned)cred.uid);
	if (cred.uid != 0 && cred.uid != geteuid()) {
		return admin_fail(rq, 401, "the admin socket serves root only");
	}
	rq->role = KEEL_ROLE_ADMIN;
	return 0;
}

/* ---- routing ------------------------------------------------------------ */

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "?";
	}
}

#define MAX_SEGMENTS 8

struct segments {
	char *seg[MAX_SEGMENTS];
	size_t num;
};

static void segments_free(struct segments *sg)
{
	for (size_t i = 0; i < sg->num; i++) {
		free(sg->seg[i]);
	}
	sg->num = 0;
}

/* "/a/b%20c" -> {"a", "b c"}: split first, then decode each segment, so an
 * encoded '/' stays inside its segment. -1 when malformed or too deep. */
static int segments_split(const char *path, bool decode, struct segments *out)
{
	out->num = 0;
	if (path == NULL || path[0] != '/') {
		return -1;
	}
	while (*path == '/') {
		const char *end = strchrnul(path + 1, '/');
		char *raw;

		if (out->num == MAX_SEGMENTS ||
		    (raw = strndup(path + 1, (size_t)(end - path - 1))) == NULL) {
			segments_free(out);
			return -1;
		}
		out->seg[out->num] = decode ? evhttp_uridecode(raw, 0, NULL) : raw;
		if (decode) {
			free(raw);
		}
		if (out->seg[out->num++] == NULL) {
			out->num--;
			segments_free(out);
			return -1;
		}
		path = end;
	}
	return *path == '\0' ? 0 : -1;
}

/* Does |path| fit |route|'s pattern? The {placeholder} segments go to |params|. */
static bool route_match(const struct admin_route *route, const struct segments *path,
			const char **params)
{
	struct segments pat;
	size_t n = 0;
	bool ok;

	if (segments_split(route->path, false, &pat) != 0) {
		return false;
	}
	ok = pat.num == path->num;
	for (size_t i = 0; ok && i < pat.num; i++) {
		if (pat.seg[i][0] == '{') {
			ok = path->seg[i][0] != '\0' && n < ADMIN_MAX_PARAMS;
			if (ok) {
				params[n++] = path->seg[i];
			}
		} else {
			ok = strcmp(pat.seg[i], path->seg[i]) == 0;
		}
	}
	segments_free(&pat);
	return ok;
}

/* The route for this method and path; 404 or 405 answers when there is none. */
static int find_route(struct admin_req *rq, const struct segments *path,
		      const struct admin_route **out)
{
	const char *method = method_name(evhttp_request_get_command(rq->http));
	bool path_known = false;

	for (size_t i = 0; i < admin_num_routes; i++) {
		if (route_match(&admin_routes[i], path, rq->params)) {
			path_known = true;
			if (strcmp(admin_routes[i].method, method) == 0) {
				*out = &admin_routes[i];
				return 0;
			}
		}
	}
	memset(rq->params, 0, sizeof(rq->params));
	if (path_known) {
		return admin_fail(rq, 405, "method %s is not allowed here", method);
	}
	return admin_fail(rq, 404, "no such resource");
}

/* 401/403 unless the asker's role reaches the route's. */
static int authorise(struct admin_req *rq, const struct admin_route *route, bool local)
{
	struct bufferevent *bev =
	    evhttp_connection_get_bufferevent(evhttp_request_get_connection(rq->http));
	int status;

	if (route->min_role == KEEL_ROLE_NONE) {
		return 0;
	}
	if ((status = local ? identify_local(rq, bev) : identify_cert(rq, bev)) != 0) {
		return status;
	}
	if (rq->role == KEEL_ROLE_KMIP) {
		return admin_fail(rq, 403, "a KMIP client certificate cannot use the admin API");
	}
	if (rq->role < route->min_role) {
		return admin_fail(rq, 403, "the auditor role is read-only");
	}
	return 0;
}

/* Changes and refusals are worth a line; routine reads (scrapes) are not. */
static enum keel_log_level log_level(int status, const struct admin_route *route)
{
	if (status >= 500) {
		return KEEL_LOG_ERROR;
	}
	if (status >= 400 || route == NULL || strcmp(route->method, "GET") != 0) {
		return KEEL_LOG_INFO;
	}
	return KEEL_LOG_DEBUG;
}

static void dispatch(struct keel_admin *a, struct evhttp_request *req, bool local)
{
	struct admin_req rq = {.ctx = &a->ctx, .http = req};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const struct admin_route *route = NULL;
	struct segments path = {0};
	int status;

	if (segments_split(evhttp_uri_get_path(uri), true, &path) != 0) {
		status = admin_fail(&rq, 400, "malformed path");
	} else if ((status = find_route(&rq, &path, &route)) == 0 &&
		   (status = authorise(&rq, route, local)) == 0) {
		status = route->handler(&rq);
	}
	keel_log(log_level(status, route), "admin: %s %s %s -> %d",
		 rq.who[0] != '\0' ? rq.who : "-", method_name(evhttp_request_get_command(req)),
		 evhttp_uri_get_path(uri), status);
	send_answer(&rq, status);
	json_decref(rq.out);
	free(rq.text);
	segments_free(&path);
}

static void on_https(struct evhttp_request *req, void *arg)
{
	dispatch(arg, req, false);
}

static void on_local(struct evhttp_request *req, void *arg)
{
	dispatch(arg, req, true);
}

/* ---- setup -------------------------------------------------------------- */

/* The registry decides per request (a 401 must be an HTTP answer, not a
 * failed handshake), so the handshake accepts any client certificate and
 * the absence of one; its proof of the private key still holds. */
static int accept_any_cert(X509_STORE_CTX *xs, void *arg)
{
	return 1;
}

/* A TLS context with keeld's certificate, replacing the admin API's own (the
 * SSL objects of open connections keep a reference to the old one). */
static int tls_ctx(struct keel_admin *a, const char *certificate, const char *private_key)
{
	static const unsigned char sid_ctx[] = "keeld-admin";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = NULL;

	/* keel_pki_read_key, not SSL_CTX_use_PrivateKey_file: its stdio buffer,
	 * which holds the key's PEM text, is wiped rather than freed as it is. */
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1 ||
	    keel_pki_read_key(private_key, &key) != 0 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		keel_err("admin: cannot set up TLS with %s", certificate);
		ERR_clear_error();
		EVP_PKEY_free(key);
		SSL_CTX_free(ctx);
		return -1;
	}
	EVP_PKEY_free(key); /* the context holds its own reference */
	SSL_CTX_set_security_level(ctx, 2);
	SSL_CTX_set_options(ctx,
			    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, accept_any_cert, NULL);
	SSL_CTX_free(a->ssl_ctx);
	a->ssl_ctx = ctx;
	return 0;
}

int admin_reload_tls(const struct admin_ctx *ctx)
{
	/* |ctx| is the first member of its keel_admin; handlers run on the admin
	 * thread, the only one that touches ssl_ctx. */
	struct keel_admin *a = (struct keel_admin *)ctx;

	return tls_ctx(a, ctx->tls_certificate, ctx->tls_private_key);
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	struct keel_admin *a = arg;
	SSL *ssl = SSL_new(a->ssl_ctx);
	struct bufferevent *bev;

	if (ssl == NULL) {
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
	}
	return bev;
}

static int listen_fd(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		return -1;
	}
	/* [::]:8443 beside 0.0.0.0:8443 needs v6-only sockets. Accepted sockets
	 * inherit TCP_NODELAY (Linux): evhttp writes headers and body apart, and
	 * Nagle would hold the body for the client's delayed ACK (40 ms). */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) != 0 ||
	    (sa->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){1}, sizeof(int)) != 0) ||
	    bind(fd, sa, len) != 0 || listen(fd, 64) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int bind_https(struct keel_admin *a, const struct keel_config *cfg)
{
	for (size_t i = 0; i < cfg->num_admin_listen; i++) {
		const struct keel_listen_addr *l = &cfg->admin_listen[i];
		int fd = listen_fd((const struct sockaddr *)&l->addr, l->addr_len);

		if (fd < 0 || evhttp_accept_socket(a->https, fd) != 0) {
			keel_err("admin: cannot listen on %s: %s", l->text, strerror(errno));
			if (fd >= 0) {
				close(fd);
			}
			return -1;
		}
		a->tcp_fds[a->num_tcp++] = fd;
	}
	return 0;
}

/* The socket is made 0600 before anyone can connect (umask around bind). */
static int bind_local(struct keel_admin *a, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, r;

	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >= (int)sizeof(sun.sun_path)) {
		keel_err("admin: admin.socket %s: path too long", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		return -1;
	}
	(void)unlink(path); /* a stale socket of a previous run */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r != 0 || listen(fd, 16) != 0 || evhttp_accept_socket(a->local, fd) != 0) {
		keel_err("admin: cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	snprintf(a->socket_path, sizeof(a->socket_path), "%s", path);
	return 0;
}

static void *run(void *arg)
{
	struct keel_admin *a = arg;

	event_base_dispatch(a->base);
	return NULL;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_ok = -1;

static void evthread_init(void)
{
	evthread_ok = evthread_use_pthreads();
	/* jansson's copies of what handlers put in answers (an issued private
	 * key) are wiped when freed, as kmip.h asks of processes that handle
	 * secrets. */
	json_set_alloc_funcs(malloc, keel_wipe_free);
}

static int setup(struct keel_admin *a, const struct keel_config *cfg)
{
	pthread_once(&evthread_once, evthread_init);
	if (evthread_ok != 0 || (a->base = event_base_new()) == NULL ||
	    (a->https = evhttp_new(a->base)) == NULL || (a->local = evhttp_new(a->base)) == NULL ||
	    (a->stop_ev = event_new(a->base, -1, 0, stop_cb, a->base)) == NULL) {
		keel_err("admin: cannot set up the event loop");
		return -1;
	}
	if (tls_ctx(a, cfg->tls_certificate, cfg->tls_private_key) != 0) {
		return -1;
	}
	evhttp_set_bevcb(a->https, tls_bev, a);
	evhttp_set_gencb(a->https, on_https, a);
	evhttp_set_gencb(a->local, on_local, a);
	evhttp_set_allowed_methods(a->https, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						 EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
	evhttp_set_allowed_methods(a->local, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						 EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
	evhttp_set_max_body_size(a->https, ADMIN_MAX_BODY);
	evhttp_set_max_body_size(a->local, ADMIN_MAX_UPLOAD);
	evhttp_set_timeout(a->https, 30);
	if (bind_https(a, cfg) != 0 || bind_local(a, cfg->admin_socket) != 0) {
		return -1;
	}
	return 0;
}

/* What handlers need of the config, copied: SIGHUP frees the config. */
static void copy_settings(struct admin_ctx *c, const struct keel_config *cfg)
{
	snprintf(c->token_label, sizeof(c->token_label), "%s",
		 cfg->hsm_token_label != NULL ? cfg->hsm_token_label : "");
	snprintf(c->tls_certificate, sizeof(c->tls_certificate), "%s", cfg->tls_certificate);
	snprintf(c->tls_private_key, sizeof(c->tls_private_key), "%s", cfg->tls_private_key);
	snprintf(c->ca_certificate, sizeof(c->ca_certificate), "%s",
		 cfg->pki_ca_certificate != NULL ? cfg->pki_ca_certificate : "");
	snprintf(c->ca_key, sizeof(c->ca_key), "%s",
		 cfg->pki_ca_key != NULL ? cfg->pki_ca_key : "");
}

int keel_admin_start(const struct keel_admin_config *cfg, struct keel_admin **out_admin)
{
	struct keel_admin *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		return -1;
	}
	a->ctx = (struct admin_ctx){
	    .store = cfg->store,
	    .engine = cfg->engine,
	    .hsm = cfg->hsm,
	    .clients = cfg->clients,
	    .version = cfg->version,
	    .started = time(NULL),
	    .rotation = cfg->rotation,
	    .config_path = cfg->config_path,
	    .mirror = cfg->mirror,
	    .recovery = cfg->recovery,
	    .registry_changed = cfg->registry_changed,
	    .registry_changed_arg = cfg->registry_changed_arg,
	};
	copy_settings(&a->ctx, cfg->cfg);
	if (setup(a, cfg->cfg) != 0 || pthread_create(&a->thread, NULL, run, a) != 0) {
		keel_admin_stop(a);
		return -1;
	}
	a->running = true;
	for (size_t i = 0; i < cfg->cfg->num_admin_listen; i++) {
		keel_info("admin: listening on %s", cfg->cfg->admin_listen[i].text);
	}
	keel_info("admin: local socket %s", a->socket_path);
	*out_admin = a;
	return 0;
}

int keel_admin_port(const struct keel_admin *a, size_t i, uint16_t *out_port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (i >= a->num_tcp || getsockname(a->tcp_fds[i], (struct sockaddr *)&ss, &len) != 0) {
		return -1;
	}
	*out_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

void keel_admin_stop(struct keel_admin *a)
{
	if (a == NULL) {
		return;
	}
	if (a->running) {
		event_active(a->stop_ev, 0, 0);
		pthread_join(a->thread, NULL);
	}
	if (a->https != NULL) {
		evhttp_free(a->https); /* closes the listeners it accepted on */
	}
	if (a->local != NULL) {
		evhttp_free(a->local);
	}
	if (a->socket_path[0] != '\0') {
		(void)unlink(a->socket_path);
	}
	if (a->stop_ev != NULL) {
		event_free(a->stop_ev);
	}
	if (a->base != NULL) {
		event_base_free(a->base);
	}
	SSL_CTX_free(a->ssl_ctx);
	free(a);
}
