/*
 * The network process's side: requests go to the key process with an id;
 * one reader thread takes the answers, in whatever order they come, back to
 * their connections (reply functions may be called from any thread). Many
 * requests are in flight at once, so no worker waits on the key process.
 */
#include "privsep.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/clients.h"
#include "keel/server.h"
#include "log.h"

#define BUCKETS 1024u

struct channel {
	int fd;
	pthread_mutex_t write_mu; /* one frame at a time on fd */
	struct ps_reader in;	  /* its reader thread's (channel 0's: the setup at start) */
	atomic_uint in_flight;	  /* requests sent, not yet answered */
	struct ps_net *n;
	pthread_t reader;
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
	pthread_mutex_t mu; /* the table and the setup below */
	uint32_t next_id;
	struct pending *table[BUCKETS];
	struct ps_frame setup; /* the latest PS_SETUP */
	uint32_t acked;	       /* the last setup id acknowledged */
};

static void take_setup(struct ps_net *n, struct ps_frame *f)
{
	pthread_mutex_lock(&n->mu);
	ps_frame_cleanup(&n->setup);
	n->setup = *f;
	pthread_mutex_unlock(&n->mu);
	memset(f, 0, sizeof(*f));
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
		n->ch[i].fd = fds[i];
		n->ch[i].n = n;
		ps_reader_init(&n->ch[i].in, fds[i]);
		pthread_mutex_init(&n->ch[i].write_mu, NULL);
	}
	pthread_mutex_init(&n->mu, NULL);
	if (ps_read(&n->ch[0].in, PS_SETUP_MAX, &f) != 0 || f.type != PS_SETUP) {
		keel_err("privsep: no setup from the key process");
		ps_frame_cleanup(&f);
		free(n->ch);
		free(n);
		return -1;
	}
	take_setup(n, &f);
	*out = n;
	return 0;
}

/* Writes one frame on |ch|. 0 or -1. */
static int send_on(struct channel *ch, enum ps_type type, uint32_t id, const void *a, size_t a_len,
		   const void *b, size_t b_len)
{
	int r;

	pthread_mutex_lock(&ch->write_mu);
	r = ps_write(ch->fd, type, id, a, a_len, b, b_len);
	pthread_mutex_unlock(&ch->write_mu);
	return r;
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
	pthread_mutex_lock(&n->mu);
	f = n->setup;
	memset(&n->setup, 0, sizeof(n->setup));
	pthread_mutex_unlock(&n->mu);
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
		/* A failed write: the key process is gone, and a reader ends us. */
		(void)!send_on(&n->ch[0], PS_SETUP, f.id, NULL, 0, NULL, 0);
	}
	return 0;
}

static void pending_put(struct ps_net *n, struct pending *p)
{
	pthread_mutex_lock(&n->mu);
	if (++n->next_id == 0) {
		n->next_id = 1;
	}
	p->id = n->next_id;
	p->next = n->table[p->id % BUCKETS];
	n->table[p->id % BUCKETS] = p;
	pthread_mutex_unlock(&n->mu);
}

static struct pending *pending_take(struct ps_net *n, uint32_t id)
{
	struct pending **pp, *p = NULL;

	pthread_mutex_lock(&n->mu);
	for (pp = &n->table[id % BUCKETS]; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			p = *pp;
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&n->mu);
	return p;
}

static struct channel *least_busy(struct ps_net *n)
{
	struct channel *best = &n->ch[0];

	for (size_t i = 1; i < n->num_ch; i++) {
		if (atomic_load_explicit(&n->ch[i].in_flight, memory_order_relaxed) <
		    atomic_load_explicit(&best->in_flight, memory_order_relaxed)) {
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
	atomic_fetch_add_explicit(&p->ch->in_flight, 1, memory_order_relaxed);
	pending_put(n, p);
	ps_identity_encode(who, identity);
	/* A failed write: the key process is gone and the reader ends us. */
	if (send_on(p->ch, PS_REQUEST, p->id, identity, sizeof(identity), req, req_len) != 0 &&
	    (p = pending_take(n, p->id)) != NULL) {
		keel_err("privsep: cannot reach the key process");
		p->reply(p->reply_ctx, NULL, 0);
		free(p);
	}
}

static void answer(struct ps_net *n, struct ps_frame *f)
{
	struct pending *p = pending_take(n, f->id);

	if (p == NULL || f->a_len != 0) {
		keel_err("privsep: unexpected answer %u from the key process", (unsigned)f->id);
		_exit(1);
	}
	atomic_fetch_sub_explicit(&p->ch->in_flight, 1, memory_order_relaxed);
	p->reply(p->reply_ctx, f->b_len > 0 ? f->b : NULL, f->b_len);
	free(p);
}

/* The key process is this process's reason to live: when it ends, so does
 * this one (systemd restarts keeld), answering nothing more. */
static void *reader_main(void *arg)
{
	struct channel *ch = arg;
	struct ps_net *n = ch->n;
	struct ps_frame f;
	int r;

	while ((r = ps_read(&ch->in, PS_SETUP_MAX, &f)) == 0) {
		if (f.type == PS_RESPONSE) {
			answer(n, &f);
		} else if (f.type == PS_STOP && f.a_len == 0 && f.b_len == 0) {
			(void)kill(getpid(), SIGTERM); /* the server's loop drains */
		} else if (f.type == PS_SETUP) {
			take_setup(n, &f);
			(void)kill(getpid(), SIGHUP);
		} else {
			keel_err("privsep: unexpected frame type %u from the key process", f.type);
			_exit(1);
		}
		ps_frame_cleanup(&f);
	}
	keel_err("privsep: the key process %s; exiting", r == 1 ? "ended" : "sent a bad frame");
	_exit(1);
}

void ps_net_metric(void *arg, enum keel_metrics_event ev, int value)
{
	struct ps_net *n = arg;
	uint8_t a[5] = {(uint8_t)ev, (uint8_t)((uint32_t)value >> 24),
			(uint8_t)((uint32_t)value >> 16), (uint8_t)((uint32_t)value >> 8),
			(uint8_t)value};

	/* A failed write: the key process is gone, and a reader ends us. */
	(void)!send_on(&n->ch[0], PS_METRIC, 0, a, sizeof(a), NULL, 0);
}

int ps_net_ready(struct ps_net *n, const uint16_t *ports, size_t num_ports)
{
	uint8_t buf[2 * 64];
	sigset_t all, old;
	int r;

	if (num_ports > sizeof(buf) / 2) {
		return -1;
	}
	for (size_t i = 0; i < num_ports; i++) {
		buf[2 * i] = (uint8_t)(ports[i] >> 8);
		buf[2 * i + 1] = (uint8_t)ports[i];
	}
	if (send_on(&n->ch[0], PS_READY, 0, buf, 2 * num_ports, NULL, 0) != 0) {
		return -1;
	}
	/* Signals stay with the server's loop thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = 0;
	for (size_t i = 0; i < n->num_ch && r == 0; i++) {
		r = pthread_create(&n->ch[i].reader, NULL, reader_main, &n->ch[i]) == 0 ? 0 : -1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}
