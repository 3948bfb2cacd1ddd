/*
 * The network loop: accept, TLS handshake, framing, handoff, reply, close.
 *
 * Why libevent: it is well kept (in Debian and every distribution, used by
 * tmux, Tor, memcached), it has OpenSSL bufferevents that run non-blocking
 * handshakes and record I/O for us, and one loop thread serves thousands of
 * connections, none with a thread of its own. A hand-written epoll loop would
 * have to re-solve SSL_ERROR_WANT_READ/WRITE juggling that libevent already
 * tests.
 *
 * Threads: one loop per network_threads (each with its own listening
 * sockets, bound with SO_REUSEPORT to one port so that the kernel spreads new
 * connections over them, and its own connections, timers and watches) plus
 * the worker pool (workers.c), shared by every loop, that runs the request
 * handler. One loop thread caps TLS at one core: a run of handshakes left
 * every other request waiting for it (docs/benchmarks.md, "What bounds the
 * resumed vcenter-task"). A connection stays on the loop that accepted it;
 * only its thread touches it. Shared by the loops, under the server's lock:
 * the TLS context (one, and so one session cache: a session resumes
 * whichever loop takes it) and the connections per client; the connection
 * count is atomic. Signals reach the first loop, and a drain reaches every
 * loop through an event of its own. The loop threads are created by
 * keel_server_start, after the caller's privilege drop (credentials and
 * capabilities are per thread) and before its seccomp filter (which allows
 * no clone in the network process), and wait for keel_server_run.
 *
 * A connection has at most one request with the workers; while it does, we
 * stop reading from it, so replies come back in order and a client cannot
 * queue unbounded work.
 *
 * Connection states:
 *   HANDSHAKE -(TLS ok, registered)-> IDLE -(first byte)-> FRAME
 *   FRAME -(whole frame)-> BUSY -(reply)-> IDLE, or CLOSING when draining
 * One timer per connection: the handshake deadline, the idle timeout, or the
 * deadline of the frame being read (from its first byte, so a slow trickle
 * cannot hold a connection open).
 *
 * The handshake deadline restarts whenever the handshake moves on (a whole
 * handshake message read or written), up to HANDSHAKE_ROUNDS times its length
 * in all. With a fixed deadline from accept, a boot storm failed half its
 * hosts: with two thousand handshakes in flight this loop advances each in
 * turn, so most finish late together although none was idle. A client that
 * stalls or trickles one message makes no move and is closed on time.
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "keel/metrics.h"
#include "log.h"
#include "server_int.h"

enum conn_state { C_HANDSHAKE, C_IDLE, C_FRAME, C_BUSY, C_CLOSING };

/* A handshake may last this many handshake_timeout_ms in all (see above);
 * TLS 1.3 with a client certificate has two client flights. */
#define HANDSHAKE_ROUNDS 3

/* How long after a handshake or a close the freed heap goes back to the
 * system (see trim_cb); at most once per this period under steady load. */
#define TRIM_DELAY_MS 1000

/* Connections per client identity, for max_connections_per_client. */
struct ident {
	struct ident *next;
	uint8_t fp[KEEL_FINGERPRINT_LEN];
	uint32_t count;
};

struct conn {
	struct keel_server *srv;
	struct loop *loop;
	struct conn *prev, *next;
	struct bufferevent *bev;
	struct event *timer;
	struct ident *ident;
	struct keel_client_identity who;
	enum conn_state state;
	bool dead;		   /* socket closed while a job was out; freed when it returns */
	bool write_wait;	   /* reading paused until the client takes our answers */
	uint64_t handshake_end_ms; /* CLOCK_MONOTONIC: the handshake's last moment */
	size_t frame_len;	   /* 0 until the current frame's header is in */
	unsigned long requests;
	char peer[64];
	struct job job;
};

/* A descriptor of the caller's on the loop (keel_server_watch). */
struct keel_watch {
	struct keel_watch *next;
	struct event *rd, *wr;
	keel_watch_fn cb;
	void *arg;
};

/* A callback of the caller's, deferred within an iteration (keel_server_defer). */
struct keel_defer {
	struct keel_defer *next;
	struct event *ev;
	void (*cb)(void *arg);
	void *arg;
};

/* One event loop: only its thread touches what is here (see above). */
struct loop {
	struct keel_server *srv;
	size_t index;
	struct event_base *base;
	struct evconnlistener **listeners; /* one per listen address */
	size_t num_listeners;
	struct pool_back back;
	bool back_ready;
	struct conn *conns;
	uint32_t num_conns;
	struct event *drain_ev, *drain_timer, *accept_retry, *trim_timer;
	struct keel_watch *watches;
	struct keel_defer *defers;
	bool draining;
	bool drained; /* the loop was asked to stop (drain_check) */
	bool failed;  /* its event_base_dispatch failed */
	pthread_t thread;
	bool thread_started;
};

struct keel_server {
	struct keel_server_config cfg;
	pthread_mutex_t mu; /* ssl_ctx and idents */
	SSL_CTX *ssl_ctx;
	struct ident *idents[256];
	atomic_uint num_conns; /* every loop's, for max_connections */
	struct loop *loops;
	size_t num_loops;
	struct pool pool;
	bool pool_started;
	struct event *sig_hup, *sig_term, *sig_int; /* on the first loop */
	atomic_bool draining, drain_timed_out;
	/* The loop threads, once keel_server_start made them, wait for
	 * keel_server_run (1) or keel_server_free (-1). */
	bool loops_started;
	pthread_mutex_t start_mu;
	pthread_cond_t start_cv; /* start or num_waiting changed */
	int start;
	size_t num_waiting; /* loop threads at the start */
};

/* The index of the loop this thread runs (keel_server_loop_self). */
static _Thread_local size_t loop_self;

static void conn_process(struct conn *c);

static struct timeval ms_tv(uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

static void arm(struct conn *c, uint32_t ms)
{
	struct timeval tv = ms_tv(ms);

	evtimer_add(c->timer, &tv);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* OpenSSL calls this at each move of the handshake's state machine. */
static void handshake_progress(const SSL *ssl, int where, int ret)
{
	struct conn *c = SSL_get_app_data(ssl);
	uint64_t now, left;

	if (c == NULL || c->state != C_HANDSHAKE || !(where & SSL_CB_LOOP)) {
		return;
	}
	now = now_ms();
	left = c->handshake_end_ms > now ? c->handshake_end_ms - now : 0;
	arm(c,
	    (uint32_t)(left < c->srv->cfg.handshake_timeout_ms ? left
							       : c->srv->cfg.handshake_timeout_ms));
}

/* Under srv->mu. */
static struct ident *ident_get(struct keel_server *srv, const uint8_t fp[KEEL_FINGERPRINT_LEN])
{
	struct ident **bucket = &srv->idents[fp[0]], *id;

	/* SHA-256 bytes are uniform, so the first one is a fair bucket index. */
	for (id = *bucket; id != NULL; id = id->next) {
		if (memcmp(id->fp, fp, KEEL_FINGERPRINT_LEN) == 0) {
			return id;
		}
	}
	if ((id = calloc(1, sizeof(*id))) == NULL) {
		return NULL;
	}
	memcpy(id->fp, fp, KEEL_FINGERPRINT_LEN);
	id->next = *bucket;
	*bucket = id;
	return id;
}

/* Counts |c| against its client's max_connections_per_client, over every
 * loop: 0, 1 when the client is at the limit, or -1. */
static int ident_take(struct conn *c)
{
	struct keel_server *srv = c->srv;
	struct ident *id;
	int r = -1;

	pthread_mutex_lock(&srv->mu);
	if ((id = ident_get(srv, c->who.fingerprint)) != NULL) {
		r = id->count >= srv->cfg.max_connections_per_client ? 1 : 0;
	}
	if (r == 0) {
		id->count++;
		c->ident = id;
	}
	pthread_mutex_unlock(&srv->mu);
	return r;
}

static void ident_put(struct keel_server *srv, struct ident *id)
{
	struct ident **p;

	if (id == NULL) {
		return;
	}
	pthread_mutex_lock(&srv->mu);
	if (--id->count == 0) {
		for (p = &srv->idents[id->fp[0]]; *p != id; p = &(*p)->next) {
		}
		*p = id->next;
		free(id);
	}
	pthread_mutex_unlock(&srv->mu);
}

/*
 * A burst of handshakes (a boot storm) grows the heap by their transient
 * record and handshake buffers, and glibc gives back only the free space at
 * the top of the heap: a long-lived allocation above the holes keeps the rest
 * resident. After 1,000 hosts had come and gone keeld kept 61 MB of RSS for
 * 4.7 MB of heap in use; malloc_trim(0) returns the free pages inside the
 * heap too (issue 7: RSS with idle connections).
 */
static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
	malloc_trim(0);
}

static void trim_soon(struct loop *l)
{
	struct timeval tv = ms_tv(TRIM_DELAY_MS);

	if (l->trim_timer != NULL && !evtimer_pending(l->trim_timer, NULL)) {
		evtimer_add(l->trim_timer, &tv);
	}
}

/* A drained loop ends its pass before it stops, not at once: libevent
 * closes a freed connection's socket in a callback of its own, queued
 * behind the close. With event_base_loopbreak a client whose connection
 * ended without a close_notify (mid-handshake) kept an open socket until
 * every other loop was done, up to limits.drain_timeout_ms. */
static void drain_check(struct loop *l)
{
	if (!l->draining || l->drained || l->num_conns > 0) {
		return;
	}
	l->drained = true;
	if (event_base_loopexit(l->base, NULL) != 0) {
		event_base_loopbreak(l->base);
	}
}

/*
 * A session whose connection ended without our close_notify (a protocol
 * error, a cut mid-frame) must not resume: SSL_free drops it from the
 * cache, as ssl_clear_bad_session does. But libevent frees the SSL in a
 * callback of its own, later, and meanwhile another loop could resume the
 * session: drop it now.
 */
static void drop_unclean_session(SSL *ssl)
{
	SSL_SESSION *sess = SSL_get0_session(ssl);

	if (sess != NULL && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) && !SSL_in_init(ssl) &&
	    !SSL_in_before(ssl)) {
		SSL_CTX_remove_session(SSL_get_SSL_CTX(ssl), sess);
	}
}

/* libevent frees the SSL later, in a callback of its own: nothing of it
 * may point at c by then, nor may its session stay resumable. */
static void conn_free_bev(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	SSL_set_app_data(ssl, NULL);
	drop_unclean_session(ssl);
	bufferevent_free(c->bev);
	c->bev = NULL;
}

static void conn_free(struct conn *c)
{
	struct loop *l = c->loop;

	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		l->conns = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	l->num_conns--;
	atomic_fetch_sub(&c->srv->num_conns, 1);
	keel_metrics_connections(-1);
	ident_put(c->srv, c->ident);
	if (c->bev != NULL) {
		conn_free_bev(c);
	}
	if (c->timer != NULL) {
		event_free(c->timer);
	}
	free(c);
	trim_soon(l);
	drain_check(l);
}

/* Closes now. With a job out, the socket goes but the connection waits for
 * the reply: the worker still points at it. */
static void conn_close(struct conn *c)
{
	if (c->state != C_BUSY) {
		conn_free(c);
		return;
	}
	c->dead = true;
	conn_free_bev(c);
	event_del(c->timer);
}

/* Closes, with a close_notify first when the end is clean: between requests
 * (client EOF, idle timeout, drain). OpenSSL drops the session of a
 * connection closed without one, so a TLS 1.2 client without tickets could
 * never resume; after a protocol error or mid-frame it must not. One-way and
 * non-blocking: the client's close_notify is not awaited. An answer still
 * queued (a client not reading) must not be overtaken by it: just close. */
static void conn_end(struct conn *c)
{
	if ((c->state == C_IDLE || c->state == C_CLOSING) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		(void)SSL_shutdown(bufferevent_openssl_get_ssl(c->bev));
		ERR_clear_error();
	}
	conn_close(c);
}

static void conn_dispatch(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if ((c->job.req = malloc(c->frame_len)) == NULL ||
	    evbuffer_remove(in, c->job.req, c->frame_len) != (int)c->frame_len) {
		keel_warn("%s: out of memory for a request", c->peer);
		free(c->job.req);
		c->job.req = NULL;
		conn_close(c);
		return;
	}
	c->job.req_len = c->frame_len;
	c->job.owner = c;
	c->job.who = &c->who;
	c->frame_len = 0;
	c->state = C_BUSY;
	event_del(c->timer);
	bufferevent_disable(c->bev, EV_READ);
	if (pool_submit(&c->srv->pool, &c->loop->back, &c->job) != 0) {
		keel_warn("%s: work queue full, closing", c->peer);
		wipe_free(c->job.req, c->job.req_len);
		c->job.req = NULL;
		c->state = C_IDLE;
		conn_close(c);
	}
}

static const char *verdict_text(enum keel_frame_verdict v)
{
	switch (v) {
	case KEEL_FRAME_NOT_STRUCTURE:
		return "message is not a TTLV Structure";
	case KEEL_FRAME_TOO_LARGE:
		return "message length over limits.max_message_size";
	case KEEL_FRAME_BAD_TAG:
		return "not a TTLV header";
	case KEEL_FRAME_OK:
		break;
	}
	return "ok";
}

/* Takes at most one complete frame from the input; the rest waits until the
 * reply to this one is written. */
static void conn_process(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);
	uint8_t hdr[KEEL_TTLV_HEADER_LEN];
	enum keel_frame_verdict v;

	if ((c->state != C_IDLE && c->state != C_FRAME) || n == 0) {
		return;
	}
	if (c->state == C_IDLE) {
		c->state = C_FRAME;
		arm(c, c->srv->cfg.frame_timeout_ms);
	}
	if (c->frame_len == 0) {
		if (n < sizeof(hdr)) {
			return;
		}
		evbuffer_copyout(in, hdr, sizeof(hdr));
		v = keel_frame_check(hdr, c->srv->cfg.max_message_size, &c->frame_len);
		if (v != KEEL_FRAME_OK) {
			keel_debug("%s: %s: closing", c->peer, verdict_text(v));
			conn_close(c);
			return;
		}
	}
	if (n >= c->frame_len) {
		conn_dispatch(c);
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	conn_process(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == C_CLOSING) {
		conn_end(c);
		return;
	}
	if (c->write_wait) {
		c->write_wait = false;
		bufferevent_enable(c->bev, EV_READ);
		conn_process(c);
	}
}

static void handshake_done(struct conn *c)
{
	struct keel_server *srv = c->srv;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	int r = -1;

	if (tls_identity(ssl, &c->who) != 0 ||
	    (SSL_session_reused(ssl) && !tls_resumed_allowed(ssl)) || (r = ident_take(c)) < 0) {
		keel_debug("%s: no client identity after the handshake", c->peer);
		conn_free(c);
		return;
	}
	if (r > 0) {
		keel_notice("%s: client %s (%s) is at limits.max_connections_per_client, closing",
			    c->peer, c->who.subject, c->who.fingerprint_hex);
		conn_free(c);
		return;
	}
	keel_metrics_handshake(true);
	keel_debug("%s: client %s (%s) connected on loop %zu%s", c->peer, c->who.subject,
		   c->who.fingerprint_hex, c->loop->index,
		   SSL_session_reused(ssl) ? ", resumed" : "");
	c->state = C_IDLE;
	arm(c, srv->cfg.idle_timeout_ms);
	trim_soon(c->loop);
	conn_process(c);
}

/* bufferevent_openssl keeps the errors of its own SSL calls. */
static void bev_errors(struct bufferevent *bev, char *out, size_t out_len)
{
	unsigned long e;
	size_t used = 0;

	out[0] = '\0';
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (used + 2 < out_len) {
			if (used > 0) {
				out[used++] = ';';
			}
			ERR_error_string_n(e, out + used, out_len - used);
			used += strlen(out + used);
		}
	}
	ERR_clear_error();
}

static void log_close(struct conn *c, short events)
{
	char errs[256];

	bev_errors(c->bev, errs, sizeof(errs));
	if (c->state == C_HANDSHAKE) {
		keel_metrics_handshake(false);
		keel_debug("%s: handshake failed: %s", c->peer,
			   errs[0] ? errs : "connection closed");
	} else if (events & BEV_EVENT_EOF) {
		keel_debug("%s: closed by client after %lu requests%s", c->peer, c->requests,
			   c->state == C_FRAME ? ", mid-frame" : "");
	} else {
		keel_debug("%s: connection %s: %s", c->peer,
			   (events & BEV_EVENT_TIMEOUT) ? "write timeout" : "error",
			   errs[0] ? errs : strerror(errno));
	}
}

static void event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct conn *c = arg;

	if (events & BEV_EVENT_CONNECTED) {
		handshake_done(c);
		return;
	}
	log_close(c, events);
	/* EOF between requests is the client done (vCenter often skips its
	 * close_notify); an error is not. */
	if (events & BEV_EVENT_EOF) {
		conn_end(c);
	} else {
		conn_close(c);
	}
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	static const char *const why[] = {
	    [C_HANDSHAKE] = "handshake timeout",
	    [C_IDLE] = "idle timeout",
	    [C_FRAME] = "frame timeout (incomplete message)",
	    [C_BUSY] = "?",
	    [C_CLOSING] = "?",
	};

	keel_debug("%s: %s, closing", c->peer, why[c->state]);
	conn_end(c);
}

static void free_resp(const void *data, size_t len, void *arg)
{
	wipe_free((void *)data, len);
}

/* Loop thread: a worker answered. */
static void job_done(struct job *job, void *arg)
{
	struct conn *c = job->owner;
	struct keel_server *srv = c->srv;

	wipe_free(job->req, job->req_len);
	job->req = NULL;
	if (c->dead || job->resp == NULL) {
		if (!c->dead) {
			keel_debug("%s: the handler gave no answer, closing", c->peer);
		}
		wipe_free(job->resp, job->resp_len);
		conn_free(c);
		return;
	}
	/* By reference: the plaintext answer is wiped once TLS has consumed it,
	 * instead of lingering in libevent's freed buffers. */
	if (evbuffer_add_reference(bufferevent_get_output(c->bev), job->resp, job->resp_len,
				   free_resp, NULL) != 0) {
		wipe_free(job->resp, job->resp_len);
		conn_free(c);
		return;
	}
	job->resp = NULL;
	c->requests++;
	if (c->loop->draining) {
		c->state = C_CLOSING;
		return;
	}
	c->state = C_IDLE;
	arm(c, srv->cfg.idle_timeout_ms);
	/* A client that pipelines requests but does not read the answers would
	 * make us buffer them without end: wait for the output to drain first. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > srv->cfg.max_message_size) {
		c->write_wait = true;
		return;
	}
	bufferevent_enable(c->bev, EV_READ);
	conn_process(c);
}

static void peer_text(const struct sockaddr *sa, char *out, size_t out_len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, out_len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, out_len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

/* The context a reload swaps in serves every loop's next handshake. */
static SSL *ssl_new(struct keel_server *srv)
{
	SSL *ssl;

	pthread_mutex_lock(&srv->mu);
	ssl = SSL_new(srv->ssl_ctx);
	pthread_mutex_unlock(&srv->mu);
	return ssl;
}

static int conn_start(struct conn *c, evutil_socket_t fd)
{
	struct keel_server *srv = c->srv;
	struct timeval write_tv = ms_tv(srv->cfg.idle_timeout_ms);
	SSL *ssl = ssl_new(srv);

	if (ssl == NULL) {
		return -1;
	}
	SSL_set_app_data(ssl, c);
	SSL_set_info_callback(ssl, handshake_progress);
	c->bev = bufferevent_openssl_socket_new(c->loop->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	if ((c->timer = evtimer_new(c->loop->base, timer_cb, c)) == NULL) {
		return -1;
	}
	/* vCenter and others often just close the socket after their last
	 * answer; that is an ordinary end, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	/* A client that stops reading our answers is cut off like an idle one. */
	bufferevent_set_timeouts(c->bev, NULL, &write_tv);
	c->handshake_end_ms = now_ms() + (uint64_t)HANDSHAKE_ROUNDS * srv->cfg.handshake_timeout_ms;
	arm(c, srv->cfg.handshake_timeout_ms);
	return bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sa_len,
		      void *arg)
{
	struct loop *lp = arg;
	struct keel_server *srv = lp->srv;
	struct conn *c;

	/* Counted at once, so that loops accepting together cannot pass the limit. */
	if (atomic_fetch_add(&srv->num_conns, 1) >= srv->cfg.max_connections ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		atomic_fetch_sub(&srv->num_conns, 1);
		keel_debug("refusing a connection: limits.max_connections reached");
		evutil_closesocket(fd);
		return;
	}
	c->srv = srv;
	c->loop = lp;
	peer_text(sa, c->peer, sizeof(c->peer));
	/*
	 * Replies are whole messages written at once: waiting to coalesce them
	 * only adds a delayed-ACK round (40 ms on Linux) when TLS 1.3 sends its
	 * session tickets just before the first reply.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) != 0) {
		keel_debug("%s: cannot set TCP_NODELAY: %s", c->peer, strerror(errno));
	}
	c->next = lp->conns;
	if (lp->conns != NULL) {
		lp->conns->prev = c;
	}
	lp->conns = c;
	lp->num_conns++;
	keel_metrics_connections(1);
	if (conn_start(c, fd) != 0) {
		keel_warn("%s: cannot set up a connection", c->peer);
		if (c->bev == NULL) {
			evutil_closesocket(fd);
		}
		conn_free(c);
	}
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;

	for (size_t i = 0; i < l->num_listeners && !l->draining; i++) {
		evconnlistener_enable(l->listeners[i]);
	}
}

/* EMFILE and friends: the listening socket stays readable, so pause
 * accepting for a moment instead of spinning on it. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct loop *lp = arg;
	struct timeval tv = {.tv_sec = 1};

	keel_warn("accept: %s; pausing new connections for 1 s", strerror(errno));
	for (size_t i = 0; i < lp->num_listeners; i++) {
		evconnlistener_disable(lp->listeners[i]);
	}
	evtimer_add(lp->accept_retry, &tv);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;

	keel_warn("drain: %u connections still busy after limits.drain_timeout_ms", l->num_conns);
	atomic_store(&l->srv->drain_timed_out, true);
	event_base_loopbreak(l->base);
}

/* On the loop's thread, once keel_server_drain made its drain_ev active. */
static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;
	struct timeval tv = ms_tv(l->srv->cfg.drain_timeout_ms);
	struct conn *c, *next;

	l->draining = true;
	for (size_t i = 0; i < l->num_listeners; i++) {
		evconnlistener_free(l->listeners[i]);
	}
	l->num_listeners = 0;
	/* Nothing asked yet: close. A frame being read or a request being
	 * answered: finish it, then close (frame_timeout bounds the first). */
	for (c = l->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_IDLE && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
			/* An answer still going out: close once it is sent. */
			c->state = C_CLOSING;
			event_del(c->timer);
		} else if (c->state == C_HANDSHAKE || c->state == C_IDLE) {
			conn_end(c);
		}
	}
	keel_info("draining loop %zu: %u connections with requests in flight", l->index,
		  l->num_conns);
	evtimer_add(l->drain_timer, &tv);
	drain_check(l);
}

void keel_server_drain(struct keel_server *srv)
{
	if (atomic_exchange(&srv->draining, true)) {
		return;
	}
	for (size_t i = 0; i < srv->num_loops; i++) {
		event_active(srv->loops[i].drain_ev, EV_TIMEOUT, 0);
	}
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct keel_server *srv = arg;

	if (sig == SIGHUP) {
		keel_info("SIGHUP: reloading");
		if (srv->cfg.on_sighup != NULL) {
			srv->cfg.on_sighup(srv, srv->cfg.on_sighup_arg);
		}
		return;
	}
	keel_info("%s: stop accepting, finish in-flight requests",
		  sig == SIGTERM ? "SIGTERM" : "SIGINT");
	keel_server_drain(srv);
}

static int listen_one(struct loop *lp, const struct sockaddr *addr, socklen_t addr_len)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	struct evconnlistener *el;

	/* v6 sockets only take v6, so "[::]:5696" and "0.0.0.0:5696" can both be listed. */
	if (addr->sa_family == AF_INET6) {
		flags |= LEV_OPT_BIND_IPV6ONLY;
	}
	/* Only with several loops: another process of the same user could
	 * otherwise join the port (Linux lets only the same uid share it). */
	if (lp->srv->num_loops > 1) {
		flags |= LEV_OPT_REUSEABLE_PORT;
	}
	el = evconnlistener_new_bind(lp->base, accept_cb, lp, flags, 1024, addr, (int)addr_len);
	if (el == NULL) {
		return -1;
	}
	evconnlistener_set_error_cb(el, accept_error_cb);
	lp->listeners[lp->num_listeners++] = el;
	return 0;
}

static int listener_port(struct evconnlistener *el, uint16_t *out_port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(evconnlistener_get_fd(el), (struct sockaddr *)&ss, &len) != 0) {
		return -1;
	}
	if (ss.ss_family == AF_INET6) {
		*out_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else {
		*out_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	return 0;
}

/* Listen address |i| on every loop: the first binds the configured port
 * (0: any), the others the port it got. */
static int listen_all(struct keel_server *srv, const struct keel_server_listen *l)
{
	struct sockaddr_storage addr = l->addr;
	uint16_t port;

	if (listen_one(&srv->loops[0], (const struct sockaddr *)&addr, l->addr_len) != 0 ||
	    listener_port(srv->loops[0].listeners[srv->loops[0].num_listeners - 1], &port) != 0) {
		return -1;
	}
	if (addr.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&addr)->sin6_port = htons(port);
	} else {
		((struct sockaddr_in *)&addr)->sin_port = htons(port);
	}
	for (size_t i = 1; i < srv->num_loops; i++) {
		if (listen_one(&srv->loops[i], (const struct sockaddr *)&addr, l->addr_len) != 0) {
			return -1;
		}
	}
	return 0;
}

static int make_signals(struct keel_server *srv)
{
	struct event_base *b = srv->loops[0].base;

	srv->sig_hup = evsignal_new(b, SIGHUP, signal_cb, srv);
	srv->sig_term = evsignal_new(b, SIGTERM, signal_cb, srv);
	srv->sig_int = evsignal_new(b, SIGINT, signal_cb, srv);
	if (srv->sig_hup == NULL || srv->sig_term == NULL || srv->sig_int == NULL) {
		return -1;
	}
	if (evsignal_add(srv->sig_hup, NULL) != 0 || evsignal_add(srv->sig_term, NULL) != 0 ||
	    evsignal_add(srv->sig_int, NULL) != 0) {
		return -1;
	}
	return 0;
}

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_ok = -1;

static void evthread_init(void)
{
	/* Must precede every event_base: it makes event_active() safe to call
	 * from worker threads. The memory functions precede everything. */
	wipe_libevent_memory();
	evthread_ok = evthread_use_pthreads();
}

/* The epoll changes of one loop pass go to the kernel together, at its
 * next epoll_wait: an answer enables both the reads and the writes of its
 * connection (one epoll_ctl instead of two), and a change undone in the
 * same pass costs none (issue 7, docs/benchmarks.md "The network process
 * per request"). libevent's caveat, descriptors shared by dup(), does not
 * arise: each socket is registered once. */
static struct event_base *new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base = NULL;

	if (cfg == NULL) {
		return NULL;
	}
	if (event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0) {
		base = event_base_new_with_config(cfg);
	}
	event_config_free(cfg); /* not NULL-safe */
	return base;
}

/* On the loop's own thread. 0 or -1. */
static int loop_run(struct loop *l)
{
	loop_self = l->index;
	/* Before the loop hands out any job, so every worker sees it. */
	l->back.loop = pthread_self();
	if (event_base_dispatch(l->base) != 0) {
		l->failed = true;
		return -1;
	}
	return 0;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct keel_server *srv = l->srv;
	int start;

	pthread_mutex_lock(&srv->start_mu);
	srv->num_waiting++;
	pthread_cond_broadcast(&srv->start_cv);
	while ((start = srv->start) == 0) {
		pthread_cond_wait(&srv->start_cv, &srv->start_mu);
	}
	pthread_mutex_unlock(&srv->start_mu);
	if (start > 0 && loop_run(l) != 0) {
		/* The others would wait for a drain that this loop never joins. */
		keel_server_drain(srv);
	}
	return NULL;
}

static void loops_go(struct keel_server *srv, int start)
{
	pthread_mutex_lock(&srv->start_mu);
	srv->start = start;
	pthread_cond_broadcast(&srv->start_cv);
	pthread_mutex_unlock(&srv->start_mu);
}

static void loops_join(struct keel_server *srv)
{
	for (size_t i = 1; i < srv->num_loops; i++) {
		if (srv->loops[i].thread_started) {
			pthread_join(srv->loops[i].thread, NULL);
			srv->loops[i].thread_started = false;
		}
	}
}

/* Returns once every thread that started waits for the start: a new
 * thread's own first calls (set_robust_list, rseq) are made on it, after
 * pthread_create returned, and the network process's seccomp filter that
 * follows would kill it for them. */
static void loops_wait_started(struct keel_server *srv, size_t num_started)
{
	pthread_mutex_lock(&srv->start_mu);
	while (srv->num_waiting < num_started) {
		pthread_cond_wait(&srv->start_cv, &srv->start_mu);
	}
	pthread_mutex_unlock(&srv->start_mu);
}

/* Every loop but the first, which keel_server_run's caller runs. */
int keel_server_start(struct keel_server *srv)
{
	sigset_t all, old;
	size_t num_started = 0;
	int r = 0;

	if (srv->loops_started) {
		return 0;
	}
	srv->loops_started = true;
	/* Signals belong to the first loop's thread (libevent's signal events). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (size_t i = 1; i < srv->num_loops && r == 0; i++) {
		if (pthread_create(&srv->loops[i].thread, NULL, loop_main, &srv->loops[i]) != 0) {
			keel_err("cannot start network loop %zu", i);
			r = -1;
		} else {
			srv->loops[i].thread_started = true;
			num_started++;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	loops_wait_started(srv, num_started);
	return r;
}

static int loop_init(struct keel_server *srv, size_t i)
{
	struct loop *l = &srv->loops[i];
	struct event_base *b;

	l->srv = srv;
	l->index = i;
	if ((l->base = b = new_base()) == NULL ||
	    (l->listeners = calloc(srv->cfg.num_listen, sizeof(struct evconnlistener *))) == NULL) {
		return -1;
	}
	l->back_ready = true;
	if (pool_back_init(&l->back, b, job_done, l) != 0) {
		return -1;
	}
	l->drain_ev = event_new(b, -1, 0, drain_cb, l);
	l->drain_timer = evtimer_new(b, drain_timeout_cb, l);
	l->accept_retry = evtimer_new(b, accept_retry_cb, l);
	l->trim_timer = evtimer_new(b, trim_cb, l);
	if (l->drain_ev == NULL || l->drain_timer == NULL || l->accept_retry == NULL ||
	    l->trim_timer == NULL) {
		return -1;
	}
	return 0;
}

static int server_setup(struct keel_server *srv, const struct keel_server_config *cfg)
{
	for (size_t i = 0; i < srv->num_loops; i++) {
		if (loop_init(srv, i) != 0) {
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->num_listen; i++) {
		if (listen_all(srv, &cfg->listen[i]) != 0) {
			char text[64];
			peer_text((const struct sockaddr *)&cfg->listen[i].addr, text,
				  sizeof(text));
			keel_err("cannot listen on %s: %s", text, strerror(errno));
			return -1;
		}
	}
	if (make_signals(srv) != 0) {
		return -1;
	}
	/* Every connection has at most one job out, so this ring cannot fill. */
	srv->pool_started = true;
	if (pool_start(&srv->pool, cfg->handler_forwards ? 0 : cfg->worker_threads,
		       cfg->max_connections, cfg->handler, cfg->handler_ctx) != 0) {
		keel_err("cannot start %u worker threads", cfg->worker_threads);
		return -1;
	}
	return 0;
}

int keel_server_new(struct keel_server **out_srv, const struct keel_server_config *cfg,
		    const struct keel_server_tls *tls, struct keel_registry *reg)
{
	struct keel_server *srv = calloc(1, sizeof(*srv));
	int r = -1;

	if (srv == NULL || cfg->num_listen == 0 || cfg->worker_threads == 0 ||
	    cfg->max_connections == 0 || cfg->handler == NULL) {
		if (reg->free != NULL) {
			reg->free(reg->ctx);
		}
		free(srv);
		return -1;
	}
	pthread_mutex_init(&srv->mu, NULL);
	pthread_mutex_init(&srv->start_mu, NULL);
	pthread_cond_init(&srv->start_cv, NULL);
	srv->cfg = *cfg;
	srv->cfg.listen = NULL;
	srv->num_loops = cfg->network_threads > 0 ? cfg->network_threads : 1;
	/* A peer that vanished must cost an EPIPE, not the process. */
	signal(SIGPIPE, SIG_IGN);
	pthread_once(&evthread_once, evthread_init);
	if (tls_ctx_new(&srv->ssl_ctx, tls, reg) != 0) {
		goto out;
	}
	if (evthread_ok != 0 ||
	    (srv->loops = calloc(srv->num_loops, sizeof(*srv->loops))) == NULL) {
		goto out;
	}
	if (server_setup(srv, cfg) != 0) {
		goto out;
	}
	*out_srv = srv;
	srv = NULL;
	r = 0;
out:
	keel_server_free(srv);
	return r;
}

int keel_server_port(const struct keel_server *srv, size_t i, uint16_t *out_port)
{
	if (i >= srv->loops[0].num_listeners) {
		return -1;
	}
	return listener_port(srv->loops[0].listeners[i], out_port);
}

size_t keel_server_loops(const struct keel_server *srv)
{
	return srv->num_loops;
}

size_t keel_server_loop_self(void)
{
	return loop_self;
}

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct keel_watch *w = arg;

	w->cb(w->arg, (what & EV_WRITE) != 0);
}

int keel_server_watch(struct keel_server *srv, size_t loop, int fd, keel_watch_fn cb, void *arg,
		      struct keel_watch **out_watch)
{
	struct loop *l;
	struct keel_watch *w;

	if (loop >= srv->num_loops || (w = calloc(1, sizeof(*w))) == NULL) {
		return -1;
	}
	l = &srv->loops[loop];
	w->cb = cb;
	w->arg = arg;
	/* Listed at once, so that keel_server_free frees it on every path. */
	w->next = l->watches;
	l->watches = w;
	if ((w->rd = event_new(l->base, fd, EV_READ | EV_PERSIST, watch_cb, w)) == NULL ||
	    (w->wr = event_new(l->base, fd, EV_WRITE | EV_PERSIST, watch_cb, w)) == NULL ||
	    event_add(w->rd, NULL) != 0) {
		return -1;
	}
	*out_watch = w;
	return 0;
}

int keel_watch_write(struct keel_watch *w, bool on)
{
	return on ? event_add(w->wr, NULL) : event_del(w->wr);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct keel_defer *d = arg;

	d->cb(d->arg);
}

int keel_server_defer(struct keel_server *srv, size_t loop, void (*cb)(void *arg), void *arg,
		      struct keel_defer **out_defer)
{
	struct loop *l;
	struct keel_defer *d;

	if (loop >= srv->num_loops || (d = calloc(1, sizeof(*d))) == NULL) {
		return -1;
	}
	l = &srv->loops[loop];
	d->cb = cb;
	d->arg = arg;
	d->next = l->defers;
	l->defers = d;
	if ((d->ev = event_new(l->base, -1, 0, defer_cb, d)) == NULL) {
		return -1;
	}
	*out_defer = d;
	return 0;
}

/* At the priority of every other event, not a lower one: libevent runs a
 * lower priority only in an iteration where no higher one has work, which
 * a loaded loop may never have. An event made active joins the tail of its
 * priority's queue, which the iteration runs to the end: after every
 * callback ready at the poll, in the same iteration. An active event made
 * active again stays queued once. */
void keel_defer_arm(struct keel_defer *d)
{
	event_active(d->ev, EV_TIMEOUT, 0);
}

int keel_server_run(struct keel_server *srv)
{
	bool failed;

	if (keel_server_start(srv) != 0) {
		return -1;
	}
	loops_go(srv, 1);
	if (loop_run(&srv->loops[0]) != 0) {
		keel_server_drain(srv);
	}
	loops_join(srv);
	failed = atomic_load(&srv->drain_timed_out);
	for (size_t i = 0; i < srv->num_loops; i++) {
		failed = failed || srv->loops[i].failed;
	}
	return failed ? -1 : 0;
}

int keel_server_reload(struct keel_server *srv, const struct keel_server_tls *tls,
		       struct keel_registry *reg)
{
	SSL_CTX *ctx = NULL;

	if (tls_ctx_new(&ctx, tls, reg) != 0) {
		return -1;
	}
	/* Connections hold references to the old context; it goes with the last. */
	pthread_mutex_lock(&srv->mu);
	SSL_CTX *old = srv->ssl_ctx;
	srv->ssl_ctx = ctx;
	pthread_mutex_unlock(&srv->mu);
	SSL_CTX_free(old);
	return 0;
}

static void free_event(struct event *ev)
{
	if (ev != NULL) {
		event_free(ev);
	}
}

static void loop_free(struct loop *l)
{
	struct conn *c, *next;

	for (c = l->conns; c != NULL; c = next) {
		next = c->next;
		conn_free(c);
	}
	for (size_t i = 0; l->listeners != NULL && i < l->num_listeners; i++) {
		evconnlistener_free(l->listeners[i]);
	}
	free(l->listeners);
	free_event(l->drain_ev);
	free_event(l->drain_timer);
	free_event(l->accept_retry);
	free_event(l->trim_timer);
	while (l->watches != NULL) {
		struct keel_watch *w = l->watches;

		l->watches = w->next;
		free_event(w->rd);
		free_event(w->wr);
		free(w);
	}
	while (l->defers != NULL) {
		struct keel_defer *d = l->defers;

		l->defers = d->next;
		free_event(d->ev);
		free(d);
	}
	if (l->back_ready) {
		pool_back_cleanup(&l->back);
	}
	if (l->base != NULL) {
		/* The connections freed above (after a drain timeout), and a loop
		 * stopped by one, leave callbacks of libevent's own queued, such as
		 * a freed bufferevent's, which holds its socket and SSL (and through
		 * it the TLS context) until they run; event_base_free drops them
		 * unrun. Nothing of ours is left on the base, so one pass that does
		 * not wait runs only those. */
		(void)event_base_loop(l->base, EVLOOP_NONBLOCK);
		event_base_free(l->base);
	}
}

void keel_server_free(struct keel_server *srv)
{
	if (srv == NULL) {
		return;
	}
	/* Threads that never ran a loop (keel_server_run was not called). */
	loops_go(srv, -1);
	loops_join(srv);
	/* After a drain timeout a handler may still hold a job: leave the
	 * workers and the connections they point at; the process is exiting. */
	if (srv->pool_started) {
		pool_stop(&srv->pool, !atomic_load(&srv->drain_timed_out));
	}
	if (atomic_load(&srv->drain_timed_out)) {
		return;
	}
	free_event(srv->sig_hup);
	free_event(srv->sig_term);
	free_event(srv->sig_int);
	for (size_t i = 0; srv->loops != NULL && i < srv->num_loops; i++) {
		loop_free(&srv->loops[i]);
	}
	free(srv->loops);
	SSL_CTX_free(srv->ssl_ctx);
	pthread_mutex_destroy(&srv->mu);
	pthread_mutex_destroy(&srv->start_mu);
	pthread_cond_destroy(&srv->start_cv);
	free(srv);
}
