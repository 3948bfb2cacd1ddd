/*
 * The network process's side: requests go to the key process with an id;
 * the answers come back, in whatever order, on the server's loop thread
 * (keel_server_watch), which hands each to its connection. Many requests are
 * in flight at once, so nothing waits on the key process.
 *
 * The server runs one loop per network thread. Each loop owns some of the
 * channels (channel j is loop j mod the number of loops), its table of pending requests and
 * its counters: a request goes out on a channel of the loop that holds its
 * connection, and its answer comes back on that channel, to that loop. So
 * no channel and no table is touched by two threads, and none needs a lock.
 * Channel 0 is the first loop's, which also takes the setups (SIGHUP runs
 * there) and PS_STOP. A loop reads and writes its channels without blocking:
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
	struct ps_loop *loop; /* the loop that owns it (NULL until ps_net_ready) */
};

struct pending {
	struct pending *next;
	uint32_t id;
	struct channel *ch;
	keel_reply_fn reply;
	void *reply_ctx;
};

/* What one server loop owns; only its thread touches it. Its channels are
 * ch[first], ch[first + step], ...: a request goes to the least busy. */
struct ps_loop {
	struct ps_net *n;
	size_t first, step;
	uint32_t next_id;
	struct pending *table[BUCKETS];
	/* Counter changes not yet sent, and the flush at the end of the
	 * iteration. */
	struct ps_metric metric;
	struct keel_defer *metric_flush;
	bool metric_armed;
};

/* One channel per key worker. */
struct ps_net {
	struct channel *ch;
	size_t num_ch;
	struct ps_loop *loops; /* NULL until ps_net_ready: one thread, no loop yet */
	size_t num_loops;
	struct ps_frame setup; /* the latest PS_SETUP */
	uint32_t taken;	       /* the id of a setup handed out, not yet acknowledged */
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
	for (size_t l = 0; n->loops != NULL && l < n->num_loops; l++) {
		for (size_t i = 0; i < BUCKETS; i++) {
			while ((p = n->loops[l].table[i]) != NULL) {
				n->loops[l].table[i] = p->next;
				free(p);
			}
		}
	}
	free(n->loops);
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
	n->taken = f.id;
	return 0;
}

void ps_net_setup_loaded(struct ps_net *n)
{
	if (n->taken != 0) {
		/* A failed write: the key process is gone, and reading ends us. */
		(void)!send_on(&n->ch[0], PS_SETUP, n->taken, NULL, 0, NULL, 0);
		n->taken = 0;
	}
}

/* Ids are per loop: an answer comes back on its request's channel, which
 * only that loop reads. */
static void pending_put(struct ps_loop *l, struct pending *p)
{
	if (++l->next_id == 0) {
		l->next_id = 1;
	}
	p->id = l->next_id;
	p->next = l->table[p->id % BUCKETS];
	l->table[p->id % BUCKETS] = p;
}

static struct pending *pending_take(struct ps_loop *l, uint32_t id)
{
	struct pending **pp, *p;

	for (pp = &l->table[id % BUCKETS]; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			p = *pp;
			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

static struct channel *least_busy(struct ps_loop *l)
{
	struct ps_net *n = l->n;
	struct channel *best = &n->ch[l->first];

	for (size_t i = l->first + l->step; i < n->num_ch; i += l->step) {
		if (n->ch[i].in_flight < best->in_flight) {
			best = &n->ch[i];
		}
	}
	return best;
}

/* The calling loop's part (ps_net_ready made one per loop). */
static struct ps_loop *this_loop(struct ps_net *n)
{
	return &n->loops[keel_server_loop_self()];
}

void ps_net_handle(void *ctx, const struct keel_client_identity *who, const uint8_t *req,
		   size_t req_len, keel_reply_fn reply, void *reply_ctx)
{
	struct ps_net *n = ctx;
	struct ps_loop *l = this_loop(n);
	struct pending *p = malloc(sizeof(*p));
	uint8_t identity[PS_IDENTITY_LEN];

	if (p == NULL) {
		reply(reply_ctx, NULL, 0);
		return;
	}
	p->reply = reply;
	p->reply_ctx = reply_ctx;
	p->ch = least_busy(l);
	pending_put(l, p);
	ps_identity_encode(who, identity);
	/* A failed write: the key process is gone, and reading ends us. */
	if (send_on(p->ch, PS_REQUEST, p->id, identity, sizeof(identity), req, req_len) != 0) {
		keel_err("privsep: cannot reach the key process");
		(void)pending_take(l, p->id);
		free(p);
		reply(reply_ctx, NULL, 0);
		return;
	}
	p->ch->in_flight++;
}

static void answer(struct ps_loop *l, struct ps_frame *f)
{
	struct pending *p = pending_take(l, f->id);

	if (p == NULL || f->a_len != 0) {
		keel_err("privsep: unexpected answer %u from the key process", (unsigned)f->id);
		_exit(1);
	}
	p->ch->in_flight--;
	p->reply(p->reply_ctx, f->b_len > 0 ? f->b : NULL, f->b_len);
	free(p);
}

/* Setups and PS_STOP come on channel 0 only (key.c), the first loop's. */
static void take_frame(struct channel *ch, struct ps_frame *f)
{
	bool first = ch == &ch->n->ch[0];

	if (f->type == PS_RESPONSE) {
		answer(ch->loop, f);
	} else if (first && f->type == PS_STOP && f->a_len == 0 && f->b_len == 0) {
		(void)kill(getpid(), SIGTERM); /* the server's loops drain */
	} else if (first && f->type == PS_SETUP) {
		take_setup(ch->n, f);
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
		take_frame(ch, &f);
		ps_frame_cleanup(&f);
	}
	if (r != PS_AGAIN) {
		key_gone("sent a bad frame");
	}
}

/* The changes so far in one PS_METRIC, rather than one frame per change: a
 * task's connection, handshake and close cost the key process one wake-up
 * per loop iteration they fall in, not three (issue 7). */
/* |m| on channel |ch|, then zeroed: the key process takes counters on any. */
static void metric_send(struct ps_net *n, size_t ch, struct ps_metric *m)
{
	uint8_t a[PS_METRIC_MAX];
	size_t len = ps_metric_encode(m, a);

	memset(m, 0, sizeof(*m));
	/* A failed write: the key process is gone, and reading ends us. */
	if (len > 0) {
		(void)!send_on(&n->ch[ch], PS_METRIC, 0, a, len, NULL, 0);
	}
}

static void metric_flush(void *arg)
{
	struct ps_loop *l = arg;

	l->metric_armed = false;
	metric_send(l->n, l->first, &l->metric);
}

void ps_net_metric(void *arg, enum keel_metrics_event ev, int value)
{
	struct ps_net *n = arg;
	struct ps_loop *l;
	int64_t sum;

	/* The key process would end on it: metrics.c sends no such thing. */
	if (!keel_metrics_event_ok(ev, value)) {
		return;
	}
	if (n->loops == NULL) {
		/* Before ps_net_ready (one thread, no loop yet): sent at once. */
		struct ps_metric m = {0};

		m.value[ev - 1] = value;
		metric_send(n, 0, &m);
		return;
	}
	l = this_loop(n);
	sum = (int64_t)l->metric.value[ev - 1] + value;
	if (sum > INT32_MAX || sum < -INT32_MAX) {
		metric_flush(l); /* every value stays exact: the sum so far goes first */
		sum = value;
	}
	l->metric.value[ev - 1] = (int32_t)sum;
	if (!l->metric_armed) {
		keel_defer_arm(l->metric_flush);
		l->metric_armed = true;
	}
}

/* Deals the channels out to the server's loops: channel j to loop j % loops.
 * Every loop needs one, so there are no more loops than channels (the
 * configuration checks it). */
static int ready_loops(struct ps_net *n, struct keel_server *srv)
{
	size_t num_loops = keel_server_loops(srv);

	if (num_loops > n->num_ch || (n->loops = calloc(num_loops, sizeof(*n->loops))) == NULL) {
		keel_err("privsep: %zu network loops for %zu channels", num_loops, n->num_ch);
		return -1;
	}
	n->num_loops = num_loops;
	for (size_t i = 0; i < num_loops; i++) {
		n->loops[i] = (struct ps_loop){.n = n, .first = i, .step = num_loops};
		if (keel_server_defer(srv, i, metric_flush, &n->loops[i],
				      &n->loops[i].metric_flush) != 0) {
			return -1;
		}
	}
	for (size_t i = 0; i < n->num_ch; i++) {
		int fd = n->ch[i].in.fd, fl = fcntl(fd, F_GETFL);

		n->ch[i].loop = &n->loops[i % num_loops];
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
		    keel_server_watch(srv, i % num_loops, fd, channel_cb, &n->ch[i],
				      &n->ch[i].watch) != 0) {
			return -1;
		}
	}
	return 0;
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
	if (ready_loops(n, srv) != 0) {
		return -1;
	}
	return send_on(&n->ch[0], PS_READY, 0, buf, 2 * num_ports, NULL, 0);
}
