/*
 * kmip_client: see kmip_client.h. Requests are written with the TTLV writer
 * (the payloads differ between 1.x and 2.x); responses are read with the
 * typed decoder, so a malformed answer is a protocol error, not a guess.
 */
#include "kmip_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "keel/kmip.h"

#define MAX_MESSAGE (1u << 20) /* largest response accepted */
#define HEADER_LEN  8	       /* TTLV tag, type and length */
#define ARENA_BYTES 16384      /* typical responses decode without a heap block */
#define AES_BITS    256
#define USAGE_MASK  12 /* Encrypt | Decrypt, as vCenter asks (VCENTER.md §2.2) */

struct kmipc_ctx {
	SSL_CTX *ssl;
	char *host;
	char *port;
	int major, minor;
	bool v2;
};

struct kmipc_conn {
	struct kmipc_ctx *ctx;
	SSL *ssl;
	int fd;
	uint8_t *buf; /* the last response, MAX_MESSAGE bytes */
	uint8_t arena_storage[ARENA_BYTES];
};

/* Writes one request payload; |arg| is the operation's argument. */
typedef void payload_fn(struct kmip_writer *w, bool v2, const void *arg);

const char *kmipc_strerror(int err)
{
	switch (err) {
	case KMIPC_E_CONFIG:
		return "unusable TLS configuration";
	case KMIPC_E_CONNECT:
		return "cannot connect";
	case KMIPC_E_TLS:
		return "TLS failure or connection closed";
	case KMIPC_E_PROTOCOL:
		return "malformed KMIP response";
	case KMIPC_E_KMIP:
		return "KMIP operation failed";
	case KMIPC_E_NOMEM:
		return "out of memory";
	case KMIPC_E_UNEXPECTED:
		return "unexpected answer";
	default:
		return "unknown error";
	}
}

static int load_credentials(SSL_CTX *ssl, const struct kmipc_config *cfg)
{
	if (SSL_CTX_load_verify_locations(ssl, cfg->ca_file, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ssl, cfg->cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ssl, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ssl) != 1) {
		return KMIPC_E_CONFIG;
	}
	return 0;
}

static int make_ssl_ctx(const struct kmipc_config *cfg, SSL_CTX **out)
{
	SSL_CTX *ssl = SSL_CTX_new(TLS_client_method());
	int min = cfg->tls_version != 0 ? cfg->tls_version : TLS1_2_VERSION;

	if (ssl == NULL) {
		return KMIPC_E_NOMEM;
	}
	if (SSL_CTX_set_min_proto_version(ssl, min) != 1 ||
	    SSL_CTX_set_max_proto_version(ssl, cfg->tls_version) != 1 ||
	    load_credentials(ssl, cfg) != 0) {
		SSL_CTX_free(ssl);
		return KMIPC_E_CONFIG;
	}
	SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	/* Sessions are kept by the caller (SSL_get1_session), not in a shared cache. */
	SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
	if (!cfg->resumption) {
		SSL_CTX_set_options(ssl, SSL_OP_NO_TICKET);
	}
	*out = ssl;
	return 0;
}

int kmipc_ctx_new(const struct kmipc_config *cfg, struct kmipc_ctx **out)
{
	struct kmipc_ctx *ctx = calloc(1, sizeof(*ctx));
	int err;

	if (ctx == NULL) {
		return KMIPC_E_NOMEM;
	}
	ctx->major = cfg->kmip_major;
	ctx->minor = cfg->kmip_minor;
	ctx->v2 = cfg->kmip_major >= 2;
	if (kmip_version_bit(cfg->kmip_major, cfg->kmip_minor) == 0) {
		err = KMIPC_E_CONFIG;
	} else if ((ctx->host = strdup(cfg->host)) == NULL ||
		   (ctx->port = strdup(cfg->port)) == NULL) {
		err = KMIPC_E_NOMEM;
	} else {
		err = make_ssl_ctx(cfg, &ctx->ssl);
	}
	if (err != 0) {
		kmipc_ctx_free(ctx);
		return err;
	}
	*out = ctx;
	return 0;
}

void kmipc_ctx_free(struct kmipc_ctx *ctx)
{
	if (ctx == NULL) {
		return;
	}
	SSL_CTX_free(ctx->ssl);
	free(ctx->host);
	free(ctx->port);
	free(ctx);
}

static int tcp_connect(const char *host, const char *port, int *out_fd)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd = -1, one = 1;

	if (getaddrinfo(host, port, &hints, &res) != 0) {
		return KMIPC_E_CONNECT;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		return KMIPC_E_CONNECT;
	}
	/* One small request at a time: do not let Nagle hold it back. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*out_fd = fd;
	return 0;
}

/* The server certificate must name |host|: as an IP address or as a DNS name. */
static int expect_identity(SSL *ssl, const char *host)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

	if (X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1) {
		return 0;
	}
	return SSL_set1_host(ssl, host) == 1 && SSL_set_tlsext_host_name(ssl, host) == 1
		   ? 0
		   : KMIPC_E_CONFIG;
}

static int tls_start(struct kmipc_conn *c, void *session)
{
	if ((c->ssl = SSL_new(c->ctx->ssl)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		return KMIPC_E_NOMEM;
	}
	if (expect_identity(c->ssl, c->ctx->host) != 0) {
		return KMIPC_E_CONFIG;
	}
	if (session != NULL && SSL_set_session(c->ssl, session) != 1) {
		return KMIPC_E_TLS;
	}
	return SSL_connect(c->ssl) == 1 ? 0 : KMIPC_E_TLS;
}

int kmipc_connect(struct kmipc_ctx *ctx, void *session, struct kmipc_conn **out)
{
	struct kmipc_conn *c = calloc(1, sizeof(*c));
	int err;

	if (c == NULL) {
		return KMIPC_E_NOMEM;
	}
	c->ctx = ctx;
	c->fd = -1;
	if ((c->buf = malloc(MAX_MESSAGE)) == NULL) {
		err = KMIPC_E_NOMEM;
	} else if ((err = tcp_connect(ctx->host, ctx->port, &c->fd)) == 0) {
		err = tls_start(c, session);
	}
	if (err != 0) {
		kmipc_close(c, NULL);
		return err;
	}
	*out = c;
	return 0;
}

bool kmipc_resumed(const struct kmipc_conn *c)
{
	return SSL_session_reused(c->ssl) == 1;
}

void kmipc_close(struct kmipc_conn *c, void **out_session)
{
	if (out_session != NULL) {
		*out_session = c != NULL && c->ssl != NULL ? SSL_get1_session(c->ssl) : NULL;
	}
	if (c == NULL) {
		return;
	}
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl); /* send close_notify; do not wait for the peer's */
		SSL_free(c->ssl);
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	if (c->buf != NULL) {
		OPENSSL_cleanse(c->buf, MAX_MESSAGE); /* responses to Get hold key material */
		free(c->buf);
	}
	free(c);
}

/* ---- Messages ------------------------------------------------------------ */

static void write_request(struct kmip_writer *w, const struct kmipc_ctx *ctx, uint32_t op,
			  payload_fn *payload, const void *arg)
{
	kmip_write_begin(w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(w, KMIP_TAG_REQUEST_HEADER);
	kmip_write_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, ctx->major);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MINOR, ctx->minor);
	kmip_write_end(w);
	kmip_write_int(w, KMIP_TAG_BATCH_COUNT, 1);
	kmip_write_end(w);
	kmip_write_begin(w, KMIP_TAG_BATCH_ITEM);
	kmip_write_enum(w, KMIP_TAG_OPERATION, op);
	kmip_write_begin(w, KMIP_TAG_REQUEST_PAYLOAD);
	payload(w, ctx->v2, arg);
	kmip_write_end(w);
	kmip_write_end(w);
	kmip_write_end(w);
}

static int ssl_write_all(SSL *ssl, const uint8_t *p, size_t len)
{
	size_t done;

	return SSL_write_ex(ssl, p, len, &done) == 1 && done == len ? 0 : KMIPC_E_TLS;
}

static int ssl_read_all(SSL *ssl, uint8_t *p, size_t len)
{
	size_t got;

	while (len > 0) {
		if (SSL_read_ex(ssl, p, len, &got) != 1) {
			return KMIPC_E_TLS;
		}
		p += got;
		len -= got;
	}
	return 0;
}

/* Reads one whole TTLV message into c->buf. */
static int read_message(struct kmipc_conn *c, size_t *out_len)
{
	const uint8_t *h = c->buf;
	uint32_t len;
	int err;

	if ((err = ssl_read_all(c->ssl, c->buf, HEADER_LEN)) != 0) {
		return err;
	}
	len = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	if (len > MAX_MESSAGE - HEADER_LEN) {
		return KMIPC_E_PROTOCOL;
	}
	*out_len = HEADER_LEN + len;
	return ssl_read_all(c->ssl, c->buf + HEADER_LEN, len);
}

/* The one batch item of a response to |op|, with its result copied to |res|. */
static int check_item(const struct kmip_response_message *msg, uint32_t op,
		      struct kmipc_result *res, const struct kmip_response_batch_item **out)
{
	const struct kmip_response_batch_item *it = msg->batch_items;

	if (msg->num_batch_items != 1 || (it->has_operation && it->operation != op)) {
		return KMIPC_E_PROTOCOL;
	}
	res->status = it->result_status;
	res->reason = it->has_result_reason ? it->result_reason : 0;
	if (it->result_status != KMIP_RESULT_STATUS_SUCCESS) {
		return KMIPC_E_KMIP;
	}
	*out = it;
	return 0;
}

/*
 * Sends one request and decodes its response into |arena|, which the caller
 * cleans up. |*out| is the successful batch item.
 */
static int round_trip(struct kmipc_conn *c, uint32_t op, payload_fn *payload, const void *arg,
		      struct kmip_arena *arena, struct kmipc_result *res,
		      const struct kmip_response_batch_item **out)
{
	struct kmip_writer w;
	struct kmip_response_message *msg;
	const uint8_t *req;
	size_t req_len, resp_len;
	int err;

	*res = (struct kmipc_result){0};
	kmip_writer_init(&w, MAX_MESSAGE);
	write_request(&w, c->ctx, op, payload, arg);
	if (kmip_writer_finish(&w, &req, &req_len) != 0) {
		err = KMIPC_E_NOMEM;
	} else if ((err = ssl_write_all(c->ssl, req, req_len)) == 0 &&
		   (err = read_message(c, &resp_len)) == 0) {
		err = kmip_response_decode(c->buf, resp_len, &kmip_default_limits, arena, &msg,
					   NULL) != 0
			  ? KMIPC_E_PROTOCOL
			  : check_item(msg, op, res, out);
	}
	kmip_writer_cleanup(&w);
	return err;
}

/* A round trip whose response payload the caller does not need. */
static int simple_op(struct kmipc_conn *c, uint32_t op, payload_fn *payload, const void *arg,
		     struct kmipc_result *res)
{
	struct kmip_arena arena;
	const struct kmip_response_batch_item *it;
	int err;

	kmip_arena_init(&arena, c->arena_storage, sizeof(c->arena_storage));
	err = round_trip(c, op, payload, arg, &arena, res, &it);
	kmip_arena_cleanup(&arena);
	return err;
}

static int copy_uid(char out[KMIPC_UID_MAX], const char *s, size_t len)
{
	if (s == NULL || len >= KMIPC_UID_MAX) {
		return KMIPC_E_PROTOCOL;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* ---- Payloads ------------------------------------------------------------ */

/*
 * One attribute: in 1.x an Attribute {Name, Value} named by the tag's title
 * ("Cryptographic Length"); in 2.x the tag itself inside Attributes.
 */
static uint32_t attr_begin(struct kmip_writer *w, bool v2, uint32_t tag)
{
	const struct kmip_tag_def *def = kmip_tag_def(tag);

	if (v2) {
		return tag;
	}
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, def->title, strlen(def->title));
	return KMIP_TAG_ATTRIBUTE_VALUE;
}

static void attr_end(struct kmip_writer *w, bool v2)
{
	if (!v2) {
		kmip_write_end(w);
	}
}

static void write_name_attr(struct kmip_writer *w, bool v2, const char *name)
{
	kmip_write_begin(w, attr_begin(w, v2, KMIP_TAG_NAME));
	kmip_write_text(w, KMIP_TAG_NAME_VALUE, name, strlen(name));
	kmip_write_enum(w, KMIP_TAG_NAME_TYPE, KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);
	kmip_write_end(w);
	attr_end(w, v2);
}

static void empty_payload(struct kmip_writer *w, bool v2, const void *arg)
{
	(void)w;
	(void)v2;
	(void)arg;
}

static void create_payload(struct kmip_writer *w, bool v2, const void *arg)
{
	kmip_write_enum(w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(w, v2 ? KMIP_TAG_ATTRIBUTES : KMIP_TAG_TEMPLATE_ATTRIBUTE);
	kmip_write_enum(w, attr_begin(w, v2, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM),
			KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	attr_end(w, v2);
	kmip_write_int(w, attr_begin(w, v2, KMIP_TAG_CRYPTOGRAPHIC_LENGTH), AES_BITS);
	attr_end(w, v2);
	kmip_write_int(w, attr_begin(w, v2, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK), USAGE_MASK);
	attr_end(w, v2);
	if (arg != NULL) {
		write_name_attr(w, v2, arg);
	}
	kmip_write_end(w);
}

static void uid_payload(struct kmip_writer *w, bool v2, const void *arg)
{
	(void)v2;
	kmip_write_text(w, KMIP_TAG_UNIQUE_IDENTIFIER, arg, strlen(arg));
}

/* 1.x names the attribute; 2.0 §7.4 refers to it by tag (an Enumeration). */
static void get_state_payload(struct kmip_writer *w, bool v2, const void *arg)
{
	static const char state[] = "State";

	uid_payload(w, v2, arg);
	if (v2) {
		kmip_write_enum(w, KMIP_TAG_ATTRIBUTE_REFERENCE, KMIP_TAG_STATE);
	} else {
		kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, state, sizeof(state) - 1);
	}
}

static void locate_payload(struct kmip_writer *w, bool v2, const void *arg)
{
	if (v2) {
		kmip_write_begin(w, KMIP_TAG_ATTRIBUTES);
	}
	write_name_attr(w, v2, arg);
	if (v2) {
		kmip_write_end(w);
	}
}

/* ---- Operations ---------------------------------------------------------- */

int kmipc_discover_versions(struct kmipc_conn *c, struct kmipc_result *res)
{
	return simple_op(c, KMIP_OPERATION_DISCOVER_VERSIONS, empty_payload, NULL, res);
}

int kmipc_create_aes256(struct kmipc_conn *c, const char *name, char out_uid[KMIPC_UID_MAX],
			struct kmipc_result *res)
{
	struct kmip_arena arena;
	const struct kmip_response_batch_item *it;
	const struct kmip_create_response *p;
	int err;

	kmip_arena_init(&arena, c->arena_storage, sizeof(c->arena_storage));
	if ((err = round_trip(c, KMIP_OPERATION_CREATE, create_payload, name, &arena, res, &it)) ==
	    0) {
		p = it->response_payload;
		err = p == NULL ? KMIPC_E_PROTOCOL
				: copy_uid(out_uid, p->unique_identifier, p->unique_identifier_len);
	}
	kmip_arena_cleanup(&arena);
	return err;
}

int kmipc_get(struct kmipc_conn *c, const char *uid, struct kmipc_result *res)
{
	return simple_op(c, KMIP_OPERATION_GET, uid_payload, uid, res);
}

int kmipc_get_state(struct kmipc_conn *c, const char *uid, struct kmipc_result *res)
{
	return simple_op(c, KMIP_OPERATION_GET_ATTRIBUTES, get_state_payload, uid, res);
}

int kmipc_activate(struct kmipc_conn *c, const char *uid, struct kmipc_result *res)
{
	return simple_op(c, KMIP_OPERATION_ACTIVATE, uid_payload, uid, res);
}

int kmipc_locate_name(struct kmipc_conn *c, const char *name, char out_uid[KMIPC_UID_MAX],
		      size_t *out_num, struct kmipc_result *res)
{
	struct kmip_arena arena;
	const struct kmip_response_batch_item *it;
	const struct kmip_locate_response *p;
	int err;

	kmip_arena_init(&arena, c->arena_storage, sizeof(c->arena_storage));
	out_uid[0] = '\0';
	*out_num = 0;
	if ((err = round_trip(c, KMIP_OPERATION_LOCATE, locate_payload, name, &arena, res, &it)) ==
	    0) {
		p = it->response_payload;
		if (p == NULL) {
			err = KMIPC_E_PROTOCOL;
		} else if ((*out_num = p->num_unique_identifiers) > 0) {
			err = copy_uid(out_uid, p->unique_identifiers[0].s,
				       p->unique_identifiers[0].len);
		}
	}
	kmip_arena_cleanup(&arena);
	return err;
}
