/*
 * appliance/privsep, the network process's side on a real keel_server loop:
 * the test plays the key process (a forked child on the other ends of the
 * socket pairs). Answers that arrive many to a read, in any order, each
 * reach their own request; requests far larger than the socket buffers are
 * queued, never blocking the loop, and arrive whole; the key process's end
 * ends the network process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "keel/clients.h"
#include "keel/metrics.h"
#include "keel/pki.h"
#include "keel/server.h"
#include "privsep/privsep.h"
#include "wipe.h"

#define NUM_CH 2

struct rig {
	int key[NUM_CH], net[NUM_CH]; /* the key process's ends, the network process's */
	struct ps_net *n;
	struct keel_server *srv;
	char dir[32];
	pid_t child;
};

/* What came back for one request. */
struct slot {
	struct rig *rig;
	unsigned *done, total;
	uint8_t req[PS_READ_BUF + 100]; /* a TTLV-sized body: its first byte says whose */
	size_t req_len;
	uint8_t *got;
	size_t got_len;
	int replies;
};

static bool refuse_all(void *ctx, const uint8_t fp[KEEL_FINGERPRINT_LEN], X509_STORE_CTX *chain)
{
	return false;
}

/* A server on 127.0.0.1:0 with a throw-away certificate, forwarding to |n|. */
static void server_new(struct rig *r)
{
	struct keel_server_listen l = {.addr_len = sizeof(struct sockaddr_in)};
	struct keel_server_config cfg = {
	    .listen = &l,
	    .num_listen = 1,
	    .max_connections = 8,
	    .max_connections_per_client = 8,
	    .max_message_size = 1 << 20,
	    .handshake_timeout_ms = 5000,
	    .idle_timeout_ms = 5000,
	    .frame_timeout_ms = 5000,
	    .drain_timeout_ms = 5000,
	    .worker_threads = 1,
	    .handler = ps_net_handle,
	    .handler_ctx = r->n,
	    .handler_forwards = true,
	};
	char cert[64], key[64];
	struct keel_server_tls tls = {.certificate_file = cert, .private_key_file = key};
	struct keel_registry reg = {.is_registered = refuse_all};
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *c = NULL;

	((struct sockaddr_in *)&l.addr)->sin_family = AF_INET;
	((struct sockaddr_in *)&l.addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	strcpy(r->dir, "/tmp/privsep-net-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(cert, sizeof(cert), "%s/c.pem", r->dir);
	snprintf(key, sizeof(key), "%s/k.pem", r->dir);
	assert_non_null(k);
	assert_int_equal(keel_pki_ca_new(k, "test", 1, &c), 0);
	assert_int_equal(keel_pki_write_cert(cert, c), 0);
	assert_int_equal(keel_pki_write_key(key, k), 0);
	X509_free(c);
	EVP_PKEY_free(k);
	assert_int_equal(keel_server_new(&r->srv, &cfg, &tls, &reg), 0);
	unlink(cert);
	unlink(key);
	rmdir(r->dir);
}

/* The network process's half, up to ready (the key process's setup sent first). */
static void net_start(struct rig *r)
{
	struct ps_reader in;
	struct ps_frame f;
	uint16_t port = 0;

	assert_int_equal(ps_write(r->key[0], PS_SETUP, 0, "reg", 3, "pem", 3), 0);
	assert_int_equal(ps_net_new(r->net, NUM_CH, &r->n), 0);
	server_new(r);
	assert_int_equal(keel_server_port(r->srv, 0, &port), 0);
	assert_int_equal(ps_net_ready(r->n, r->srv, &port, 1), 0);
	ps_reader_init(&in, r->key[0]);
	assert_int_equal(ps_read(&in, 64, &f), 0);
	assert_int_equal(f.type, PS_READY);
	ps_frame_cleanup(&f);
	ps_reader_cleanup(&in);
}

static void rig_open(struct rig *r)
{
	int sv[2];

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < NUM_CH; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		r->key[i] = sv[0];
		r->net[i] = sv[1];
	}
	alarm(60); /* a deadlock fails the test instead of hanging it */
}

/* The network process's half ends; the key process's child must exit 0. */
static void rig_close(struct rig *r)
{
	int st = -1;

	keel_server_free(r->srv);
	ps_net_free(r->n);
	for (size_t i = 0; i < NUM_CH; i++) {
		close(r->net[i]);
	}
	assert_int_equal(waitpid(r->child, &st, 0), r->child);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	alarm(0);
}

static void on_reply(void *ctx, const uint8_t *resp, size_t resp_len)
{
	struct slot *s = ctx;

	s->replies++;
	s->got_len = resp_len;
	if ((s->got = malloc(resp_len > 0 ? resp_len : 1)) != NULL && resp_len > 0) {
		memcpy(s->got, resp, resp_len);
	}
	if (++*s->done == s->total) {
		keel_server_drain(s->rig->srv);
	}
}

static void submit(struct rig *r, struct slot *slots, unsigned num, size_t len, unsigned *done)
{
	struct keel_client_identity who = {.subject = "CN=test"};

	for (unsigned i = 0; i < num; i++) {
		slots[i] = (struct slot){.rig = r, .done = done, .total = num, .req_len = len};
		memset(slots[i].req, (int)(i + 1), len);
		ps_net_handle(r->n, &who, slots[i].req, len, on_reply, &slots[i]);
	}
}

/* Runs the loop until every request has its answer: the answer to a
 * request is its own body (the key child echoes). */
static void run_and_check(struct rig *r, struct slot *slots, unsigned num)
{
	assert_int_equal(keel_server_run(r->srv), 0);
	for (unsigned i = 0; i < num; i++) {
		assert_int_equal(slots[i].replies, 1);
		assert_int_equal(slots[i].got_len, slots[i].req_len);
		assert_memory_equal(slots[i].got, slots[i].req, slots[i].req_len);
		free(slots[i].got);
	}
}

/* The key child's end: waits until the network side closes, then exits 0. */
static _Noreturn void child_wait_end(struct rig *r)
{
	uint8_t b;

	for (size_t i = 0; i < NUM_CH; i++) {
		while (read(r->key[i], &b, 1) > 0) {
		}
	}
	_exit(0);
}

/* Appends one PS_RESPONSE frame echoing |f| to |buf|. */
static size_t put_answer(uint8_t *buf, const struct ps_frame *f)
{
	uint8_t h[PS_HEADER_LEN] = {PS_RESPONSE};

	for (int i = 0; i < 4; i++) {
		h[4 + i] = (uint8_t)(f->id >> (24 - 8 * i));
		h[12 + i] = (uint8_t)(f->b_len >> (24 - 8 * i));
	}
	memcpy(buf, h, sizeof(h));
	memcpy(buf + sizeof(h), f->b, f->b_len);
	return sizeof(h) + f->b_len;
}

/* Key child: calls |fn| for each of |num| requests, from either channel,
 * as they come (blocking reads; frames a reader holds count as readable). */
static void each_request(struct rig *r, unsigned num,
			 void (*fn)(struct rig *r, size_t ch, struct ps_frame *f))
{
	static struct ps_reader in[NUM_CH];
	struct pollfd pfd[NUM_CH];
	struct ps_frame f;
	bool held;

	/* A failed test must not leave this child holding ctest's output. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (size_t i = 0; i < NUM_CH; i++) {
		close(r->net[i]); /* the parent's ends: its close must reach us */
		ps_reader_init(&in[i], r->key[i]);
	}
	while (num > 0) {
		held = false;
		for (size_t i = 0; i < NUM_CH; i++) {
			pfd[i] = (struct pollfd){.fd = r->key[i], .events = POLLIN};
			held = held || in[i].start != in[i].end || in[i].part.a != NULL;
		}
		if (poll(pfd, NUM_CH, held ? 0 : -1) < 0) {
			_exit(4);
		}
		for (size_t i = 0; i < NUM_CH && num > 0; i++) {
			if (!(pfd[i].revents & POLLIN) && in[i].start == in[i].end &&
			    in[i].part.a == NULL) {
				continue;
			}
			if (ps_read(&in[i], 1 << 20, &f) != 0 || f.type != PS_REQUEST) {
				_exit(5);
			}
			fn(r, i, &f);
			num--;
		}
	}
}

static struct ps_frame held_frames[NUM_CH][256];
static unsigned num_held[NUM_CH];

static void hold(struct rig *r, size_t ch, struct ps_frame *f)
{
	held_frames[ch][num_held[ch]++] = *f;
}

/* Key child: reads |num| requests, then answers each channel's in one write,
 * last first. */
static _Noreturn void child_batch(struct rig *r, unsigned num)
{
	static uint8_t out[256 * 64];

	each_request(r, num, hold);
	for (size_t i = 0; i < NUM_CH; i++) {
		size_t len = 0;

		for (unsigned j = num_held[i]; j-- > 0;) {
			len += put_answer(out + len, &held_frames[i][j]);
		}
		if (write(r->key[i], out, len) != (ssize_t)len) {
			_exit(2);
		}
	}
	child_wait_end(r);
}

/* Many answers in one read, in reverse order on two channels: each reaches
 * its own request, exactly once. */
static void test_answers_batched(void **state)
{
	enum { NUM = 200, LEN = 40 };
	static struct slot slots[NUM];
	static struct rig r;
	unsigned done = 0;

	rig_open(&r);
	net_start(&r);
	if ((r.child = fork()) == 0) {
		child_batch(&r, NUM);
	}
	submit(&r, slots, NUM, LEN, &done);
	run_and_check(&r, slots, NUM);
	rig_close(&r);
}

/* Answers at once with a blocking write, as the real key process does. */
static void echo(struct rig *r, size_t ch, struct ps_frame *f)
{
	if (ps_write(r->key[ch], PS_RESPONSE, f->id, NULL, 0, f->b, f->b_len) != 0) {
		_exit(2);
	}
	ps_frame_cleanup(f);
}

/* Key child: waits for the go, then answers each request as it comes. */
static _Noreturn void child_echo(struct rig *r, unsigned num, int go)
{
	uint8_t b;

	if (read(go, &b, 1) != 1) {
		_exit(3);
	}
	each_request(r, num, echo);
	child_wait_end(r);
}

/* Requests far beyond what the socket buffers hold, while the key process
 * reads nothing: forwarding them does not block; once it reads, every one
 * arrives whole and its answer (longer than the reader's buffer) returns. */
static void test_requests_queued(void **state)
{
	enum { NUM = 64, LEN = PS_READ_BUF + 100 };
	static struct slot slots[NUM];
	static struct rig r;
	unsigned done = 0;
	int go[2];

	rig_open(&r);
	assert_int_equal(pipe(go), 0);
	net_start(&r);
	if ((r.child = fork()) == 0) {
		child_echo(&r, NUM, go[0]);
	}
	submit(&r, slots, NUM, LEN, &done); /* 4 MB: blocking here would deadlock */
	assert_int_equal(write(go[1], "g", 1), 1);
	run_and_check(&r, slots, NUM);
	rig_close(&r);
	close(go[0]);
	close(go[1]);
}

/* Reads the next frame of |in|: a PS_METRIC whose a is exactly |want|. */
static void child_expect_metric(struct ps_reader *in, const uint8_t *want, size_t want_len)
{
	struct ps_frame f;

	if (ps_read(in, 1 << 20, &f) != 0 || f.type != PS_METRIC || f.id != 0 || f.b_len != 0 ||
	    f.a_len != want_len || memcmp(f.a, want, want_len) != 0) {
		_exit(6);
	}
	ps_frame_cleanup(&f);
}

/* Reads the next frame of |in|, a request, and echoes it. */
static void child_echo_one(struct rig *r, struct ps_reader *in, size_t ch)
{
	struct ps_frame f;

	if (ps_read(in, 1 << 20, &f) != 0 || f.type != PS_REQUEST) {
		_exit(5);
	}
	echo(r, ch, &f);
}

/* Key child: the first request's answer makes the counter changes
 * (on_reply_counting), which must come in the two frames below and nothing
 * else; then the second request, whose answer ends the loop. */
static _Noreturn void child_counts(struct rig *r)
{
	static const uint8_t first[] = {1, 0, 0, 0, 3, 2, 0x7f, 0xff, 0xff, 0xff, 3, 0, 0, 0, 1};
	static const uint8_t second[] = {2, 0, 0, 0, 1};
	static struct ps_reader in[NUM_CH];
	struct ps_frame f;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (size_t i = 0; i < NUM_CH; i++) {
		close(r->net[i]);
		ps_reader_init(&in[i], r->key[i]);
	}
	child_echo_one(r, &in[0], 0);
	child_expect_metric(&in[0], first, sizeof(first));
	child_expect_metric(&in[0], second, sizeof(second));
	child_echo_one(r, &in[1], 1);
	if (ps_read(&in[0], 1 << 20, &f) != 1) {
		_exit(7); /* a frame more, where the end of the stream was due */
	}
	_exit(0);
}

/* On the loop thread, in one callback: changes that sum to connections +3,
 * handshakes completed INT32_MAX (then 1 more: past the wire's i32) and
 * failed 1, and a connection opened and closed. */
static void on_reply_counting(void *ctx, const uint8_t *resp, size_t resp_len)
{
	struct slot *s = ctx;

	for (int i = 0; i < 5; i++) {
		keel_metrics_connections(1);
	}
	keel_metrics_connections(-1);
	keel_metrics_handshake(true);
	keel_metrics_handshake(false);
	keel_metrics_connections(-1);
	ps_net_metric(s->rig->n, KEEL_METRICS_HANDSHAKES_OK, INT32_MAX - 1);
	ps_net_metric(s->rig->n, KEEL_METRICS_HANDSHAKES_OK, 1);
	keel_metrics_connections(1);
	keel_metrics_connections(-1);
	on_reply(ctx, resp, resp_len);
}

/* The network process's counter changes within one loop iteration reach the
 * key process in one PS_METRIC, summed exactly, after the iteration's
 * callbacks; a sum that would not fit the wire's i32 sends what came before
 * it first. Nothing more follows: a change undone (+1, -1) sends nothing. */
static void test_metrics_batched(void **state)
{
	static struct slot slots[2];
	static struct rig r;
	struct keel_client_identity who = {.subject = "CN=test"};
	unsigned done = 0;

	rig_open(&r);
	net_start(&r);
	keel_metrics_forward(ps_net_metric, r.n);
	if ((r.child = fork()) == 0) {
		child_counts(&r);
	}
	for (unsigned i = 0; i < 2; i++) {
		slots[i] = (struct slot){.rig = &r, .done = &done, .total = 2, .req_len = 8};
		memset(slots[i].req, (int)(i + 1), 8);
		/* Both idle: the first goes to channel 0, the second to channel 1. */
		ps_net_handle(r.n, &who, slots[i].req, 8, i == 0 ? on_reply_counting : on_reply,
			      &slots[i]);
	}
	run_and_check(&r, slots, 2);
	keel_metrics_forward(NULL, NULL);
	rig_close(&r);
}

/* Nothing readable on |fd| now. */
static void assert_quiet(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 0), 0);
}

/* A pushed setup is acknowledged once the server has loaded it, not when it
 * is taken: with several loops, another could take a handshake with the old
 * registry in between, after the administrator was told it was done. */
static void test_setup_acknowledged_once_loaded(void **state)
{
	static struct rig r;
	const struct ps_tls_parts parts = {.chain = (const uint8_t *)"chain",
					   .chain_len = 5,
					   .key = (const uint8_t *)"key",
					   .key_len = 3};
	struct keel_clients *sent = NULL, *got = NULL;
	struct keel_server_tls tls = {0};
	uint8_t *reg = NULL, *tls_b = NULL, *buf = NULL;
	size_t reg_len = 0, tls_len = 0, buf_len = 0;
	struct ps_reader in;
	struct ps_frame f;

	rig_open(&r);
	assert_int_equal(keel_clients_from_files(NULL, NULL, &sent), 0);
	assert_int_equal(keel_clients_export(sent, &reg, &reg_len), 0);
	keel_clients_free(sent);
	assert_int_equal(ps_tls_parts_encode(&parts, &tls_b, &tls_len), 0);
	assert_int_equal(ps_write(r.key[0], PS_SETUP, 5, reg, reg_len, tls_b, tls_len), 0);
	free(reg);
	keel_wipe_free(tls_b); /* holds the key, as the key process's does */
	assert_int_equal(ps_net_new(r.net, NUM_CH, &r.n), 0); /* reads setup 5 */
	assert_int_equal(ps_net_setup(r.n, &got, &tls, &buf, &buf_len), 0);
	assert_memory_equal(tls.chain_pem, "chain", 5);
	assert_quiet(r.key[0]); /* taken, not yet acknowledged */
	ps_net_setup_loaded(r.n);
	ps_reader_init(&in, r.key[0]);
	assert_int_equal(ps_read(&in, 64, &f), 0);
	assert_int_equal(f.type, PS_SETUP);
	assert_int_equal(f.id, 5);
	assert_int_equal(f.a_len + f.b_len, 0);
	ps_frame_cleanup(&f);
	ps_reader_cleanup(&in);
	ps_net_setup_loaded(r.n); /* once */
	assert_quiet(r.key[0]);
	keel_clients_free(got);
	keel_wipe_free(buf);
	ps_net_free(r.n);
	for (size_t i = 0; i < NUM_CH; i++) {
		close(r.key[i]);
		close(r.net[i]);
	}
	alarm(0);
}

/* The key process ends: the network process exits 1 at once. */
static void test_key_end_ends_net(void **state)
{
	static struct rig r;
	struct ps_reader in;
	struct ps_frame f;
	pid_t net;
	int st = -1;

	rig_open(&r);
	assert_int_equal(ps_write(r.key[0], PS_SETUP, 0, "reg", 3, "pem", 3), 0);
	if ((net = fork()) == 0) {
		uint16_t port = 0;

		for (size_t i = 0; i < NUM_CH; i++) {
			close(r.key[i]); /* the parent's ends: its close must reach us */
		}
		if (ps_net_new(r.net, NUM_CH, &r.n) != 0) {
			_exit(3);
		}
		server_new(&r);
		if (keel_server_port(r.srv, 0, &port) != 0 ||
		    ps_net_ready(r.n, r.srv, &port, 1) != 0) {
			_exit(4);
		}
		_exit(keel_server_run(r.srv) == 0 ? 0 : 5);
	}
	ps_reader_init(&in, r.key[0]);
	assert_int_equal(ps_read(&in, 64, &f), 0); /* it is up */
	assert_int_equal(f.type, PS_READY);
	ps_frame_cleanup(&f);
	ps_reader_cleanup(&in);
	for (size_t i = 0; i < NUM_CH; i++) {
		close(r.key[i]);
		close(r.net[i]);
	}
	assert_int_equal(waitpid(net, &st, 0), net);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	alarm(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_answers_batched),
	    cmocka_unit_test(test_requests_queued),
	    cmocka_unit_test(test_key_end_ends_net),
	    cmocka_unit_test(test_metrics_batched),
	    cmocka_unit_test(test_setup_acknowledged_once_loaded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
