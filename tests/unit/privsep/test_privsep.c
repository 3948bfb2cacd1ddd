/*
 * appliance/privsep: frames cross a real socket pair whole; the key process's
 * checker accepts exactly a request with a well-formed identity block and one
 * well-framed TTLV message within the limit, and refuses what a compromised
 * network process could send instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privsep/privsep.h"

#define MAX_MESSAGE 1024

/* An empty Request Message (tag 0x420078, Structure, length 8) and 8 bytes. */
static const uint8_t ttlv[16] = {0x42, 0x00, 0x78, 0x01, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};

struct pair {
	int net, key;
	struct ps_reader in; /* the key side's */
};

static void open_pair(struct pair *p)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->net = sv[0];
	p->key = sv[1];
	ps_reader_init(&p->in, p->key);
}

static void close_pair(struct pair *p)
{
	close(p->net);
	close(p->key);
}

static void identity(uint8_t out[PS_IDENTITY_LEN])
{
	struct keel_client_identity who = {.subject = "CN=vcenter"};

	memset(who.fingerprint, 0xab, sizeof(who.fingerprint));
	ps_identity_encode(&who, out);
}

/* Sends one frame from the network side and checks it on the key side. */
static enum ps_verdict send_and_check(uint8_t type, uint32_t id, const uint8_t *a, size_t a_len,
				      const uint8_t *b, size_t b_len,
				      struct keel_client_identity *who)
{
	static struct pair p;
	struct ps_frame f;
	enum ps_verdict v;

	open_pair(&p);
	assert_int_equal(ps_write(p.net, type, id, a, a_len, b, b_len), 0);
	assert_int_equal(ps_read(&p.in, PS_IDENTITY_LEN + MAX_MESSAGE, &f), 0);
	v = ps_check_request(&f, MAX_MESSAGE, who);
	ps_frame_cleanup(&f);
	close_pair(&p);
	return v;
}

static void test_request_accepted(void **state)
{
	struct keel_client_identity who;
	uint8_t a[PS_IDENTITY_LEN];

	identity(a);
	assert_int_equal(send_and_check(PS_REQUEST, 7, a, sizeof(a), ttlv, sizeof(ttlv), &who),
			 PS_OK);
	assert_string_equal(who.subject, "CN=vcenter");
	/* The hex is the key process's own, from the bytes. */
	assert_string_equal(who.fingerprint_hex,
			    "abababababababababababababababababababababababababababababababab");
}

static void test_wrong_type_or_id(void **state)
{
	struct keel_client_identity who;
	uint8_t a[PS_IDENTITY_LEN];

	identity(a);
	assert_int_equal(send_and_check(PS_RESPONSE, 7, a, sizeof(a), ttlv, sizeof(ttlv), &who),
			 PS_E_TYPE);
	assert_int_equal(send_and_check(PS_SETUP, 7, a, sizeof(a), ttlv, sizeof(ttlv), &who),
			 PS_E_TYPE);
	assert_int_equal(send_and_check(99, 7, a, sizeof(a), ttlv, sizeof(ttlv), &who), PS_E_TYPE);
	assert_int_equal(send_and_check(PS_REQUEST, 0, a, sizeof(a), ttlv, sizeof(ttlv), &who),
			 PS_E_TYPE);
}

static void test_bad_identity(void **state)
{
	struct keel_client_identity who;
	uint8_t a[PS_IDENTITY_LEN + 1];

	identity(a);
	/* One byte short, one byte long. */
	assert_int_equal(
	    send_and_check(PS_REQUEST, 1, a, PS_IDENTITY_LEN - 1, ttlv, sizeof(ttlv), &who),
	    PS_E_IDENTITY);
	a[PS_IDENTITY_LEN] = 0;
	assert_int_equal(
	    send_and_check(PS_REQUEST, 1, a, PS_IDENTITY_LEN + 1, ttlv, sizeof(ttlv), &who),
	    PS_E_IDENTITY);
	/* A subject filling its field: no terminating NUL. */
	memset(a + KEEL_FINGERPRINT_LEN, 'x', KEEL_SUBJECT_MAX);
	assert_int_equal(
	    send_and_check(PS_REQUEST, 1, a, PS_IDENTITY_LEN, ttlv, sizeof(ttlv), &who),
	    PS_E_IDENTITY);
	/* Bytes hidden after the NUL. */
	identity(a);
	a[PS_IDENTITY_LEN - 1] = 'x';
	assert_int_equal(
	    send_and_check(PS_REQUEST, 1, a, PS_IDENTITY_LEN, ttlv, sizeof(ttlv), &who),
	    PS_E_IDENTITY);
}

static void test_bad_message(void **state)
{
	struct keel_client_identity who;
	uint8_t a[PS_IDENTITY_LEN], m[sizeof(ttlv) + 8];

	identity(a);
	/* Shorter than a TTLV header; empty. */
	assert_int_equal(send_and_check(PS_REQUEST, 1, a, sizeof(a), ttlv, 7, &who), PS_E_MESSAGE);
	assert_int_equal(send_and_check(PS_REQUEST, 1, a, sizeof(a), NULL, 0, &who), PS_E_MESSAGE);
	/* The TTLV length says 8, the frame carries 8 more or 1 less. */
	memcpy(m, ttlv, sizeof(ttlv));
	memset(m + sizeof(ttlv), 0, 8);
	assert_int_equal(send_and_check(PS_REQUEST, 1, a, sizeof(a), m, sizeof(m), &who),
			 PS_E_MESSAGE);
	assert_int_equal(send_and_check(PS_REQUEST, 1, a, sizeof(a), m, sizeof(ttlv) - 1, &who),
			 PS_E_MESSAGE);
	/* Not a Structure. */
	m[3] = 0x02;
	assert_int_equal(send_and_check(PS_REQUEST, 1, a, sizeof(a), m, sizeof(ttlv), &who),
			 PS_E_MESSAGE);
	/* Over the key process's own limit, whatever the network process allowed. */
	memcpy(m, ttlv, sizeof(ttlv));
	m[6] = 0x04; /* 1032 bytes of value */
	assert_int_equal(send_and_check(PS_REQUEST, 1, a, sizeof(a), m, sizeof(ttlv), &who),
			 PS_E_MESSAGE);
}

/* ps_read: a header with non-zero reserved bytes, a length over the limit or a
 * frame cut short is an error; the end of the stream between frames is not. */
static void test_read_refuses(void **state)
{
	uint8_t h[PS_HEADER_LEN] = {PS_REQUEST, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
	struct ps_frame f;
	static struct pair p;

	open_pair(&p);
	assert_int_equal(write(p.net, h, sizeof(h)), sizeof(h));
	assert_int_equal(ps_read(&p.in, 64, &f), -1);
	close_pair(&p);

	open_pair(&p);
	assert_int_equal(ps_write(p.net, PS_REQUEST, 1, NULL, 0, ttlv, sizeof(ttlv)), 0);
	assert_int_equal(ps_read(&p.in, sizeof(ttlv) - 1, &f), -1);
	close_pair(&p);

	open_pair(&p);
	assert_int_equal(ps_write(p.net, PS_REQUEST, 1, NULL, 0, ttlv, sizeof(ttlv)), 0);
	assert_int_equal(shutdown(p.net, SHUT_WR), 0);
	assert_int_equal(ps_read(&p.in, 64, &f), 0);
	assert_int_equal(f.b_len, sizeof(ttlv));
	assert_memory_equal(f.b, ttlv, sizeof(ttlv));
	ps_frame_cleanup(&f);
	assert_int_equal(ps_read(&p.in, 64, &f), 1);
	close_pair(&p);

	open_pair(&p);
	assert_int_equal(write(p.net, h, 5), 5); /* cut inside the header */
	assert_int_equal(shutdown(p.net, SHUT_WR), 0);
	assert_int_equal(ps_read(&p.in, 64, &f), -1);
	close_pair(&p);
}

/* Frames back to back, one larger than the reader's buffer, come out whole
 * and in order, whatever pieces the reads bring. */
static void test_read_buffered(void **state)
{
	static struct pair p;
	static uint8_t big[PS_READ_BUF + 4321];
	struct ps_frame f;
	pid_t writer;
	int st = -1;

	for (size_t i = 0; i < sizeof(big); i++) {
		big[i] = (uint8_t)(i * 7);
	}
	open_pair(&p);
	assert_int_equal(ps_write(p.net, PS_RESPONSE, 1, NULL, 0, ttlv, sizeof(ttlv)), 0);
	assert_int_equal(ps_write(p.net, PS_RESPONSE, 2, NULL, 0, ttlv, 3), 0);
	if ((writer = fork()) == 0) { /* the big one needs a reader while it is written */
		_exit(ps_write(p.net, PS_RESPONSE, 3, ttlv, 5, big, sizeof(big)) == 0 ? 0 : 1);
	}
	for (uint32_t id = 1; id <= 3; id++) {
		assert_int_equal(ps_read(&p.in, sizeof(big) + 5, &f), 0);
		assert_int_equal(f.id, id);
		if (id == 3) {
			assert_int_equal(f.a_len, 5);
			assert_memory_equal(f.b, big, sizeof(big));
		}
		ps_frame_cleanup(&f);
	}
	assert_int_equal(waitpid(writer, &st, 0), writer);
	assert_int_equal(st, 0);
	close_pair(&p);
	ps_reader_cleanup(&p.in);
}

/* PS_SETUP's TLS parts: what is encoded decodes to the same three parts,
 * in place; an empty chain or key is refused both ways. */
static void test_tls_parts_round_trip(void **state)
{
	static const uint8_t chain[] = "-----BEGIN CERTIFICATE-----", key[] = {0x30, 0x82, 1, 2};
	struct ps_tls_parts in = {chain, sizeof(chain), key, sizeof(key), NULL, 0}, out;
	uint8_t *b = NULL;
	size_t len = 0;

	assert_int_equal(ps_tls_parts_encode(&in, &b, &len), 0);
	assert_int_equal(len, 12 + sizeof(chain) + sizeof(key));
	assert_int_equal(ps_tls_parts_decode(b, len, &out), 0);
	assert_int_equal(out.chain_len, sizeof(chain));
	assert_ptr_equal(out.chain, b + 4);
	assert_memory_equal(out.chain, chain, sizeof(chain));
	assert_int_equal(out.key_len, sizeof(key));
	assert_memory_equal(out.key, key, sizeof(key));
	assert_int_equal(out.crls_len, 0);
	free(b);

	in.crls = chain;
	in.crls_len = 5;
	assert_int_equal(ps_tls_parts_encode(&in, &b, &len), 0);
	assert_int_equal(ps_tls_parts_decode(b, len, &out), 0);
	assert_int_equal(out.crls_len, 5);
	assert_memory_equal(out.crls, chain, 5);
	free(b);

	in.key_len = 0;
	assert_int_equal(ps_tls_parts_encode(&in, &b, &len), -1);
	in.key_len = sizeof(key);
	in.chain_len = 0;
	assert_int_equal(ps_tls_parts_encode(&in, &b, &len), -1);
}

/* A network process must refuse parts that do not fit their frame exactly:
 * every truncation, a trailing byte, a length one too long, an empty key. */
static void test_tls_parts_refused(void **state)
{
	/* chain "ab", key "k", crls "c" */
	uint8_t good[] = {0, 0, 0, 2, 'a', 'b', 0, 0, 0, 1, 'k', 0, 0, 0, 1, 'c', 'x'};
	const size_t len = sizeof(good) - 1; /* without the trailing 'x' */
	struct ps_tls_parts out;

	assert_int_equal(ps_tls_parts_decode(good, len, &out), 0);
	assert_int_equal(out.key_len, 1);
	assert_int_equal(out.key[0], 'k');
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(ps_tls_parts_decode(good, cut, &out), -1);
		assert_null(out.key);
	}
	assert_int_equal(ps_tls_parts_decode(good, len + 1, &out), -1);
	assert_int_equal(ps_tls_parts_decode(NULL, 0, &out), -1);
	good[9] = 2; /* the key's length runs into the CRLs' header */
	assert_int_equal(ps_tls_parts_decode(good, len, &out), -1);
	good[9] = 0xff;
	good[6] = 0xff; /* and far past the end */
	assert_int_equal(ps_tls_parts_decode(good, len, &out), -1);
	{
		const uint8_t no_key[] = {0, 0, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0};

		assert_int_equal(ps_tls_parts_decode(no_key, sizeof(no_key), &out), -1);
	}
}

/* PS_METRIC's a for |m|, decoded again from a frame holding it. */
static int metric_again(const uint8_t *a, size_t a_len, struct ps_metric *out)
{
	struct ps_frame f = {.type = PS_METRIC, .a = (uint8_t *)a, .a_len = (uint32_t)a_len};

	return ps_metric_decode(&f, out);
}

/* Counter changes: only the events that changed go out, in order, and
 * decode to the same values (the extremes of a sum too); nothing changed is
 * nothing to send. */
static void test_metric_round_trip(void **state)
{
	struct ps_metric in = {{0}}, out;
	uint8_t a[PS_METRIC_MAX];
	const uint8_t two[] = {1, 0xff, 0xff, 0xff, 0xfd, 3, 0, 0, 0, 7};

	assert_int_equal(ps_metric_encode(&in, a), 0);
	in.value[KEEL_METRICS_CONNECTIONS - 1] = -3;
	in.value[KEEL_METRICS_HANDSHAKES_FAILED - 1] = 7;
	assert_int_equal(ps_metric_encode(&in, a), sizeof(two));
	assert_memory_equal(a, two, sizeof(two));
	assert_int_equal(metric_again(a, sizeof(two), &out), 0);
	assert_memory_equal(&out, &in, sizeof(in));

	in.value[0] = -INT32_MAX;
	in.value[1] = INT32_MAX;
	in.value[2] = 1;
	assert_int_equal(ps_metric_encode(&in, a), PS_METRIC_MAX);
	assert_int_equal(metric_again(a, PS_METRIC_MAX, &out), 0);
	assert_memory_equal(&out, &in, sizeof(in));
}

/* What a compromised network process could send instead: each refused whole. */
static void test_metric_refused(void **state)
{
	static const struct {
		uint8_t a[PS_METRIC_MAX + PS_METRIC_PAIR_LEN];
		size_t len;
	} bad[] = {
	    {{0}, 0},				  /* no pair */
	    {{1, 0, 0, 0, 1}, 4},		  /* a pair cut short */
	    {{1, 0, 0, 0, 1, 2}, 6},		  /* a byte after it */
	    {{0, 0, 0, 0, 1}, 5},		  /* event 0 */
	    {{4, 0, 0, 0, 1}, 5},		  /* an event past the last */
	    {{1, 0, 0, 0, 0}, 5},		  /* no change */
	    {{2, 0, 0, 0, 0}, 5},		  /* no handshake */
	    {{3, 0xff, 0xff, 0xff, 0xff}, 5},	  /* a count below zero */
	    {{1, 0, 0, 0, 1, 1, 0, 0, 0, 1}, 10}, /* an event twice */
	    {{2, 0, 0, 0, 1, 1, 0, 0, 0, 1}, 10}, /* out of order */
	    {{1, 0, 0, 0, 1, 2, 0, 0, 0, 1, 3, 0, 0, 0, 1, 3, 0, 0, 0, 1}, 20}, /* too long */
	};
	struct ps_frame f = {.type = PS_METRIC};
	struct ps_metric out;
	uint8_t good[] = {2, 0, 0, 0, 1, 0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&out, 0xa5, sizeof(out));
		assert_int_equal(metric_again(bad[i].a, bad[i].len, &out), -1);
		assert_int_equal(out.value[0] | out.value[1] | out.value[2], 0);
	}
	f.a = good;
	f.a_len = 5;
	assert_int_equal(ps_metric_decode(&f, &out), 0);
	f.id = 1; /* not id 0 */
	assert_int_equal(ps_metric_decode(&f, &out), -1);
	f.id = 0;
	f.b = good + 5; /* b not empty */
	f.b_len = 1;
	assert_int_equal(ps_metric_decode(&f, &out), -1);
}

/* The writer never waits: frames the socket does not take are queued, then
 * flushed as the reader makes room; a reader on a non-blocking descriptor
 * takes every frame whole (those longer than its buffer too) and in order. */
static void test_writer_queues(void **state)
{
	enum { NUM = 24, LEN = PS_READ_BUF + 1000 };
	static uint8_t body[LEN];
	static struct pair p;
	struct ps_writer w;
	struct ps_frame f;
	uint32_t next = 1;
	bool queued = false;
	int r;

	open_pair(&p);
	assert_int_equal(setsockopt(p.net, SOL_SOCKET, SO_SNDBUF, &(int){LEN}, sizeof(int)), 0);
	assert_int_equal(fcntl(p.key, F_SETFL, O_NONBLOCK), 0);
	ps_writer_init(&w, p.net);
	for (uint32_t id = 1; id <= NUM; id++) {
		memset(body, (int)id, sizeof(body));
		assert_int_equal(ps_writer_put(&w, PS_RESPONSE, id, NULL, 0, body, sizeof(body)),
				 0);
		queued = queued || ps_writer_pending(&w);
	}
	assert_true(queued); /* far more than the socket holds, and nothing blocked */
	while (next <= NUM) {
		assert_int_equal(ps_writer_flush(&w), 0);
		assert_true(ps_reader_fill(&p.in) > 0 || errno == EAGAIN);
		while ((r = ps_next(&p.in, LEN, &f)) == 0) {
			assert_int_equal(f.id, next);
			assert_int_equal(f.b_len, LEN);
			assert_int_equal(f.b[0], (uint8_t)next);
			assert_int_equal(f.b[LEN - 1], (uint8_t)next);
			ps_frame_cleanup(&f);
			next++;
		}
		assert_int_equal(r, PS_AGAIN);
	}
	assert_false(ps_writer_pending(&w));
	/* The peer gone: an error, not SIGPIPE. */
	close(p.key);
	assert_int_equal(ps_writer_put(&w, PS_RESPONSE, 1, NULL, 0, ttlv, sizeof(ttlv)), -1);
	ps_writer_cleanup(&w);
	close(p.net);
	ps_reader_cleanup(&p.in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_accepted),	 cmocka_unit_test(test_wrong_type_or_id),
	    cmocka_unit_test(test_bad_identity),	 cmocka_unit_test(test_bad_message),
	    cmocka_unit_test(test_read_refuses),	 cmocka_unit_test(test_read_buffered),
	    cmocka_unit_test(test_tls_parts_round_trip), cmocka_unit_test(test_tls_parts_refused),
	    cmocka_unit_test(test_writer_queues),	 cmocka_unit_test(test_metric_round_trip),
	    cmocka_unit_test(test_metric_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
