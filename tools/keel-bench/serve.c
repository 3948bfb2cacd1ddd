/*
 * keel-bench serve: the transport ceiling of issue 7 ("TLS echo"). A server
 * with keeld's mutual-TLS set-up (TLS 1.2-1.3, the same suites and groups,
 * a session cache whose ids are the tickets, TCP_NODELAY) that reads each request frame
 * and answers it with a fixed response the size of keeld's: no decoding, no
 * HSM, no store. What keel-bench reaches against it is
 * the rate of TLS, framing and keel-bench itself on this machine.
 *
 * It answers each operation keel-bench sends with a response made once at
 * start-up (a Get's carries a 256-bit AES key), picked by a byte scan for
 * the request's Operation.
 *
 * One thread per connection, as the scenarios open them; "READY <port>" on
 * stdout once listening; runs until it is killed.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_int.h"
#include "keel/kmip.h"

#define HEADER_LEN   8
#define MAX_REQUEST  65536
#define MAX_RESPONSE 1024
#define BACKLOG	     4096
#define CONN_STACK   (128 * 1024)

/* As keeld's (appliance/server/src/tls.c), so that handshakes cost the same. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
				    "AES256-SHA256:AES128-SHA256";
static const char tls13_suites[] =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
static const char groups[] = "X25519:P-256:P-384";

static const char uid[] = "6f0a3c2e-1b7d-4e59-9a84-2c5d7e8f9b10";

typedef void payload_fn(struct kmip_writer *w);

static void uid_payload(struct kmip_writer *w)
{
	kmip_write_text(w, KMIP_TAG_UNIQUE_IDENTIFIER, uid, sizeof(uid) - 1);
}

static void create_payload(struct kmip_writer *w)
{
	kmip_write_enum(w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	uid_payload(w);
}

/* A 256-bit AES key in Raw format, as keeld answers vCenter (VCENTER.md §3). */
static void get_payload(struct kmip_writer *w)
{
	static const uint8_t key[32];

	create_payload(w);
	kmip_write_begin(w, KMIP_TAG_SYMMETRIC_KEY);
	kmip_write_begin(w, KMIP_TAG_KEY_BLOCK);
	kmip_write_enum(w, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_TYPE_RAW);
	kmip_write_begin(w, KMIP_TAG_KEY_VALUE);
	kmip_write_bytes(w, KMIP_TAG_KEY_MATERIAL, key, sizeof(key));
	kmip_write_end(w);
	kmip_write_enum(w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	kmip_write_int(w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 256);
	kmip_write_end(w);
	kmip_write_end(w);
}

static void state_payload(struct kmip_writer *w)
{
	static const char state[] = "State";

	uid_payload(w);
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, state, sizeof(state) - 1);
	kmip_write_enum(w, KMIP_TAG_ATTRIBUTE_VALUE, KMIP_STATE_ACTIVE);
	kmip_write_end(w);
}

static void protocol_version(struct kmip_writer *w, int32_t major, int32_t minor)
{
	kmip_write_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, major);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MINOR, minor);
	kmip_write_end(w);
}

/* Every version keeld lists (engine/ops_meta.c), newest first: the answer
 * is as long as keeld's (it was one version, 240 bytes shorter). */
static void discover_payload(struct kmip_writer *w)
{
	static const int32_t versions[][2] = {{2, 1}, {2, 0}, {1, 4}, {1, 3},
					      {1, 2}, {1, 1}, {1, 0}};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		protocol_version(w, versions[i][0], versions[i][1]);
	}
}

/* The fixed answers, made once; an operation not listed gets the Get response. */
static struct canned {
	uint32_t operation;
	payload_fn *payload;
	uint8_t bytes[MAX_RESPONSE];
	size_t len;
} canned[] = {
    {KMIP_OPERATION_GET, get_payload, {0}, 0},
    {KMIP_OPERATION_CREATE, create_payload, {0}, 0},
    {KMIP_OPERATION_GET_ATTRIBUTES, state_payload, {0}, 0},
    {KMIP_OPERATION_LOCATE, uid_payload, {0}, 0},
    {KMIP_OPERATION_ACTIVATE, uid_payload, {0}, 0},
    {KMIP_OPERATION_DISCOVER_VERSIONS, discover_payload, {0}, 0},
};
#define NUM_CANNED (sizeof(canned) / sizeof(canned[0]))

/* A KMIP 1.1 response of one successful batch item. */
static int build_response(struct canned *r)
{
	struct kmip_writer w;
	const uint8_t *p;
	int err;

	kmip_writer_init(&w, sizeof(r->bytes));
	kmip_write_begin(&w, KMIP_TAG_RESPONSE_MESSAGE);
	kmip_write_begin(&w, KMIP_TAG_RESPONSE_HEADER);
	protocol_version(&w, 1, 1);
	kmip_write_datetime(&w, KMIP_TAG_TIME_STAMP, (int64_t)time(NULL));
	kmip_write_int(&w, KMIP_TAG_BATCH_COUNT, 1);
	kmip_write_end(&w);
	kmip_write_begin(&w, KMIP_TAG_BATCH_ITEM);
	kmip_write_enum(&w, KMIP_TAG_OPERATION, r->operation);
	kmip_write_enum(&w, KMIP_TAG_RESULT_STATUS, KMIP_RESULT_STATUS_SUCCESS);
	kmip_write_begin(&w, KMIP_TAG_RESPONSE_PAYLOAD);
	r->payload(&w);
	kmip_write_end(&w);
	kmip_write_end(&w);
	kmip_write_end(&w);
	if ((err = kmip_writer_finish(&w, &p, &r->len)) == 0) {
		memcpy(r->bytes, p, r->len); /* the writer wipes its buffer on cleanup */
	}
	kmip_writer_cleanup(&w);
	return err;
}

/*
 * The response for the request in |req|: found by the first Operation item
 * (tag 42005C, type Enumeration, length 4), a byte scan rather than a decode,
 * since the point is to do no KMIP work.
 */
static const struct canned *answer_for(const uint8_t *req, size_t len)
{
	static const uint8_t op_item[] = {0x42, 0x00, 0x5C, 0x05, 0, 0, 0, 4};
	uint32_t op;

	for (size_t i = 0; i + sizeof(op_item) + 4 <= len; i += 8) {
		if (memcmp(req + i, op_item, sizeof(op_item)) == 0) {
			op = (uint32_t)req[i + 8] << 24 | (uint32_t)req[i + 9] << 16 |
			     (uint32_t)req[i + 10] << 8 | req[i + 11];
			for (size_t k = 0; k < NUM_CANNED; k++) {
				if (canned[k].operation == op) {
					return &canned[k];
				}
			}
			break;
		}
	}
	return &canned[0];
}

static SSL_CTX *server_ctx(const struct kbench_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	static const unsigned char sid_ctx[] = "keel-bench";

	if (ctx == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, o->tls_version ? o->tls_version : TLS1_2_VERSION) !=
		1 ||
	    SSL_CTX_set_max_proto_version(ctx, o->tls_version) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, groups) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/* As keeld (server/tls.c): sessions resume from the server's cache,
	 * TLS 1.3 tickets being their ids, not encrypted sessions. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx,
				       o->resumption ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
	return ctx;
}

static int read_all(SSL *ssl, uint8_t *p, size_t len)
{
	size_t got;

	while (len > 0) {
		if (SSL_read_ex(ssl, p, len, &got) != 1) {
			return -1;
		}
		p += got;
		len -= got;
	}
	return 0;
}

/* One request frame, whose length is checked against the buffer. */
static int read_frame(SSL *ssl, uint8_t buf[static MAX_REQUEST], size_t *out_len)
{
	uint32_t len;

	if (read_all(ssl, buf, HEADER_LEN) != 0) {
		return -1;
	}
	len = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
	*out_len = HEADER_LEN + len;
	return len <= MAX_REQUEST - HEADER_LEN ? read_all(ssl, buf + HEADER_LEN, len) : -1;
}

static void *serve_conn(void *arg)
{
	SSL *ssl = arg;
	uint8_t buf[MAX_REQUEST];
	const struct canned *r;
	size_t len, done;
	int fd = SSL_get_fd(ssl);

	if (SSL_accept(ssl) == 1) {
		while (read_frame(ssl, buf, &len) == 0 && (r = answer_for(buf, len)) != NULL &&
		       SSL_write_ex(ssl, r->bytes, r->len, &done) == 1) {
		}
		(void)SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return NULL;
}

static int listen_on(const struct kbench_opts *o, int *out_fd)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
	int fd, one = 1, r;

	if (getaddrinfo(o->host, o->port, &hints, &ai) != 0) {
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	r = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, BACKLOG) == 0
		? 0
		: -1;
	freeaddrinfo(ai);
	if (r != 0) {
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	*out_fd = fd;
	return 0;
}

static void print_ready(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char port[16] = "?";

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		(void)getnameinfo((struct sockaddr *)&ss, len, NULL, 0, port, sizeof(port),
				  NI_NUMERICSERV);
	}
	printf("READY %s\n", port);
	fflush(stdout);
}

/* Hands each accepted connection to a detached thread of its own. */
static void accept_loop(SSL_CTX *ctx, int lfd)
{
	pthread_attr_t attr;
	pthread_t t;
	SSL *ssl;
	int fd, one = 1;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CONN_STACK + MAX_REQUEST);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
		    pthread_create(&t, &attr, serve_conn, ssl) != 0) {
			SSL_free(ssl);
			close(fd);
		}
	}
}

int kbench_serve(const struct kbench_opts *o)
{
	SSL_CTX *ctx;
	int lfd;

	for (size_t k = 0; k < NUM_CANNED; k++) {
		if (build_response(&canned[k]) != 0) {
			fprintf(stderr, "keel-bench serve: cannot build the responses\n");
			return -1;
		}
	}
	if ((ctx = server_ctx(o)) == NULL) {
		fprintf(
		    stderr,
		    "keel-bench serve: unusable TLS configuration (--ca %s --cert %s --key %s)\n",
		    o->ca, o->cert, o->key);
		return -1;
	}
	if (listen_on(o, &lfd) != 0) {
		fprintf(stderr, "keel-bench serve: cannot listen on %s:%s\n", o->host, o->port);
		SSL_CTX_free(ctx);
		return -1;
	}
	print_ready(lfd);
	accept_loop(ctx, lfd);
	return 0;
}
