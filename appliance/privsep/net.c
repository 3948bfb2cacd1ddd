/*
 * The network process's side: requests go to the key process with an id;
 * the answers come back, in whatever order, on the server's loop thread
 * (keel_server_watch), which hands each to its connection. Many requests are
 * in flight at once, so nothing waits on the key process.
 *
 * The loop is this process's only thread: neither the table nor the
 * channels need a lock. It reads and writes the channels without blocking:
 * a request the socket does not take at once is queued and sent when the
 * socket is writable. A blocking write could deadlock the two processes:
 * this loop stuck writing a request to a key worker that is itself stuck
 * writing an answer this loop no longer reads.
 */
#include "privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/clients.h"
#include "keel/server.h"
#include "log.h"

#define BUCKETS 1024u

struct channel {
	struct ps_writer out;
	struct ps_reader in;	  /* channel 0's also reads the setup at start */
	unsigned in_flight;	  /* requests sent, not yet answered */
	struct keel_watch *watch; /* NULL until ps_net_ready */
	struct ps_net *n;
};

struct pending {
	struct pending *next;
	uint32_t id;
	struct channel *ch;
	keel_reply_fn reply;
	void *reply_ctx;
};

/* One channel per key worker: a request goes to the least busy one. */
struct ps_net {
	struct channel *ch;
	size_t num_ch;
	uint32_t next_id;
	struct pending *table[BUCKETS];
	struct ps_frame setup; /* the latest PS_SETUP */
	uint32_t acked;	       /* the last setup id acknowledged */
	/* Counter changes not yet sent, and the flush at the end of the
	 * iteration (NULL until ps_net_ready: then each is sent at once). */
	struct ps_metric metric;
	struct keel_defer *metric_flush;
	bool metric_armed;
};

static void take_setup(struct ps_net *n, struct ps_frame *f)
{
	ps_frame_cleanup(&n->setup);
	n->setup = *f;
	memset(f, 0, sizeof(*f));
}

void ps_net_free(struct ps_net *n)
{
	struct pending *p;

	if (n == NULL) {
		return;
	}
	for (size_t i = 0; i < BUCKETS; i++) {
		while ((p = n->table[i]) != NULL) {
			n->table[i] = p->next;
			free(p);
		}
	}
	for (size_t i = 0; i < n->num_ch; i++) {
		ps_reader_cleanup(&n->ch[i].in);
		ps_writer_cleanup(&n->ch[i].out);
	}
	ps_frame_cleanup(&n->setup);
	free(n->ch);
	free(n);
}

int ps_net_new(const int *fds, size_t num_fds, struct ps_net **out)
{
	struct ps_net *n = calloc(1, sizeof(*n));
	struct ps_frame f;

	if (n == NULL || num_fds == 0 || (n->ch = calloc(num_fds, sizeof(*n->ch))) == NULL) {
		free(n);
		return -1;
	}
	n->num_ch = num_fds;
	for (size_t i = 0; i < num_fds; i++) {
		n->ch[i].n = n;
		ps_reader_init(&n->ch[i].in, fds[i]);
		ps_writer_init(&n->ch[i].out, fds[i]);
	}
	if (ps_read(&n->ch[0].in, PS_SETUP_MAX, &f) != 0 || f.type != PS_SETUP) {
		keel_err("privsep: no setup from the key process");
		ps_frame_cleanup(&f);
		ps_net_free(n);
		return -1;
	}
	take_setup(n, &f);
	*out = n;
	return 0;
}

/* The key process is this process's reason to live: when it ends, so does
 * this one (systemd restarts keeld), answering nothing more. */
static _Noreturn void key_gone(const char *why)
{
	keel_err("privsep: the key process %s; exiting", why);
	_exit(1);
}

/* Sends one frame on |ch|, or queues it until the socket is writable. 0 or -1. */
static int send_on(struct channel *ch, enum ps_type type, uint32_t id, const void *a, size_t a_len,
		   const void *b, size_t b_len)
{
	if (ps_writer_put(&ch->out, type, id, a, a_len, b, b_len) != 0) {
		return -1;
	}
	if (ps_writer_pending(&ch->out) && ch->watch != NULL &&
	    keel_watch_write(ch->watch, true) != 0) {
		key_gone("cannot be written to");
	}
	return 0;
}

/* The registry and the TLS parts of |f|; 0 or -1 (logged). */
static int parse_setup(const struct ps_frame *f, struct keel_clients **out_clients,
		       struct keel_server_tls *io_tls)
{
	struct ps_tls_parts p;

	if (ps_tls_parts_decode(f->b, f->b_len, &p) != 0) {
		keel_err("privsep: the key process sent TLS parts that do not fit their frame");
		return -1;
	}
	if (keel_clients_import_wire(f->a, f->a_len, out_clients) != 0) {
		keel_err("privsep: the key process sent a registry that does not parse");
		return -1;
	}
	io_tls->chain_pem = p.chain;
	io_tls->chain_pem_len = p.chain_len;
	io_tls->key_der = p.key;
	io_tls->key_der_len = p.key_len;
	io_tls->crls_pem = p.crls;
	io_tls->crls_pem_len = p.crls_len;
	return 0;
}

int ps_net_setup(struct ps_net *n, struct keel_clients **out_clients,
		 struct keel_server_tls *io_tls, uint8_t **out_buf, size_t *out_buf_len)
{
	struct ps_frame f;

	*out_buf = NULL;
	/* Taken, not copied: the key's only copy here goes to the caller, who
	 * wipes it once the server has loaded it. */
	f = n->setup;
	memset(&n->setup, 0, sizeof(n->setup));
	if (f.a == NULL) {
		return 1;
	}
	if (parse_setup(&f, out_clients, io_tls) != 0) {
		ps_frame_cleanup(&f);
		return -1;
	}
	*out_buf = f.a;
	*out_buf_len = (size_t)f.a_len + f.b_len;
	/* Taken on the server's loop, which swaps it in before it handles any
	 * new handshake: the key process may now tell the administrator so. */
	if (f.id != 0 && f.id != n->acked) {
		n->acked = f.id;
		/* A failed write: the key process is gone, and reading ends us. */
		(void)!send_on(&n->ch[0], PS_SETUP, f.id, NULL, 0, NULL, 0);
	}
	return 0;
}

static void pending_put(struct ps_net *n, struct pending *p)
{
	if (++n->next_id == 0) {
		n->next_id = 1;
	}
	p->id = n->next_id;
	p->next = n->table[p->id % BUCKETS];
	n->table[p->id % BUCKETS] = p;
}

static struct pending *pending_take(struct ps_net *n, uint32_t id)
{
	struct pending **pp, *p;

	for (pp = &n->table[id % BUCKETS]; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			p = *pp;
			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

static struct channel *least_busy(struct ps_net *n)
{
	struct channel *best = &n->ch[0];

	for (size_t i = 1; i < n->num_ch; i++) {
		if (n->ch[i].in_flight < best->in_flight) {
			best = &n->ch[i];
		}
	}
	return best;
}

void ps_net_handle(void *ctx, const struct keel_client_identity *who, const uint8_t *req,
		   size_t req_len, keel_reply_fn reply, void *reply_ctx)
{
	struct ps_net *n = ctx;
	struct pending *p = malloc(sizeof(*p));
	uint8_t identity[PS_IDENTITY_LEN];

	if (p == NULL) {
		reply(reply_ctx, NULL, 0);
		return;
	}
	p->reply = reply;
	p->reply_ctx = reply_ctx;
	p->ch = least_busy(n);
	pending_put(n, p);
	ps_identity_encode(who, identity);
	/* A failed write: the key process is gone, and reading ends us. */
	if (send_on(p->ch, PS_REQUEST, p->id, identity, sizeof(identity), req, req_len) != 0) {
		keel_err("privsep: cannot reach the key process");
		(void)pending_take(n, p->id);
		free(p);
		reply(reply_ctx, NULL, 0);
		return;
	}
	p->ch->in_flight++;
}

static void answer(struct ps_net *n, struct ps_frame *f)
{
	struct pending *p = pending_take(n, f->id);

	if (p == NULL || f->a_len != 0) {
		keel_err("privsep: unexpected answer %u from the key process", (unsigned)f->id);
		_exit(1);
	}
	p->ch->in_flight--;
	p->reply(p->reply_ctx, f->b_len > 0 ? f->b : NULL, f->b_len);
	free(p);
}

static void take_frame(struct ps_net *n, struct ps_frame *f)
{
	if (f->type == PS_RESPONSE) {
		answer(n, f);
	} else if (f->type == PS_STOP && f->a_len == 0 && f->b_len == 0) {
		(void)kill(getpid(), SIGTERM); /* the server's loop drains */
	} else if (f->type == PS_SETUP) {
		take_setup(n, f);
		(void)kill(getpid(), SIGHUP);
	} else {
		keel_err("privsep: unexpected frame type %u from the key process", f->type);
		_exit(1);
	}
}

/* The loop thread, |ch| readable or writable: one read, then every frame it
 * completed (under load, several answers per read); or the queue sent. */
static void channel_cb(void *arg, bool writable)
{
	struct channel *ch = arg;
	struct ps_frame f;
	ssize_t got;
	int r;

	if (writable) {
		if (ps_writer_flush(&ch->out) != 0) {
			key_gone("ended");
		}
		if (!ps_writer_pending(&ch->out) && keel_watch_write(ch->watch, false) != 0) {
			key_gone("cannot be written to");
		}
		return;
	}
	if ((got = ps_reader_fill(&ch->in)) == 0 || (got < 0 && errno != EAGAIN)) {
		key_gone("ended");
	}
	while ((r = ps_next(&ch->in, PS_SETUP_MAX, &f)) == 0) {
		take_frame(ch->n, &f);
		ps_frame_cleanup(&f);
	}
	if (r != PS_AGAIN) {
		key_gone("sent a bad frame");
	}
}

/* The changes so far in one PS_METRIC, rather than one frame per change: a
 * task's connection, handshake and close cost the key process one wake-up
 * per loop iteration they fall in, not three (issue 7). */
static void metric_flush(void *arg)
{
	struct ps_net *n = arg;
	uint8_t a[PS_METRIC_MAX];
	size_t len = ps_metric_encode(&n->metric, a);

	memset(&n->metric, 0, sizeof(n->metric));
	n->metric_armed = false;
	/* A failed write: the key process is gone, and reading ends us. */
	if (len > 0) {
		(void)!send_on(&n->ch[0], PS_METRIC, 0, a, len, NULL, 0);
	}
}

void ps_net_metric(void *arg, enum keel_metrics_event ev, int value)
{
	struct ps_net *n = arg;
	int64_t sum;

	/* The key process would end on it: metrics.c sends no such thing. */
	if (!keel_metrics_event_ok(ev, value)) {
		return;
	}
	sum = (int64_t)n->metric.value[ev - 1] + value;
	if (sum > INT32_MAX || sum < -INT32_MAX) {
		metric_flush(n); /* every value stays exact: the sum so far goes first */
		sum = value;
	}
	n->metric.value[ev - 1] = (int32_t)sum;
	if (n->metric_flush == NULL) {
		metric_flush(n);
	} else if (!n->metric_armed) {
		keel_defer_arm(n->metric_flush);
		n->metric_armed = true;
	}
}

int ps_net_ready(struct ps_net *n, struct keel_server *srv, const uint16_t *ports, size_t num_ports)
{
	uint8_t buf[2 * 64];

	if (num_ports > sizeof(buf) / 2) {
		return -1;
	}
	for (size_t i = 0; i < num_ports; i++) {
		buf[2 * i] = (uint8_t)(ports[i] >> 8);
		buf[2 * i + 1] = (uint8_t)ports[i];
	}
	for (size_t i = 0; i < n->num_ch; i++) {
		int fd = n->ch[i].in.fd, fl = fcntl(fd, F_GETFL);

		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
		    keel_server_watch(srv, fd, channel_cb, &n->ch[i], &n->ch[i].watch) != 0) {
			return -1;
		}
	}
	if (keel_server_defer(srv, metric_flush, n, &n->metric_flush) != 0) {
		return -1;
	}
	return send_on(&n->ch[0], PS_READY, 0, buf, 2 * num_ports, NULL, 0);
}
