/*
 * The handoff between the network loops and the handler.
 *
 * A loop puts a job on a bounded ring, shared by every loop, and moves on;
 * N worker threads take jobs and call the handler, which may block on the
 * HSM or the store. The handler's reply (from any thread) lands on the
 * completion list of the job's own loop (its pool_back), and one event,
 * activated with event_active() (thread-safe once libevent runs with
 * evthread_use_pthreads), wakes that loop to write the answers. A reply made
 * on the job's loop thread (a forwarding handler's, from a keel_server_watch
 * callback) skips both and is handed back at once. The ring never
 * overflows in practice: a connection has at most one job in flight, and the
 * ring is sized for max_connections.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "server_int.h"
#include "wipe.h"

void wipe_free(void *buf, size_t len)
{
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
}

/* libevent's buffers sit above TLS, so they hold requests and answers in
 * plaintext: every block libevent frees or moves is wiped first. */
void wipe_libevent_memory(void)
{
	event_set_mem_functions(malloc, keel_wipe_realloc, keel_wipe_free);
}

static void job_reply(void *reply_ctx, const uint8_t *resp, size_t resp_len)
{
	struct job *job = reply_ctx;
	struct pool_back *p = job->back;

	job->resp = NULL;
	job->resp_len = 0;
	if (resp != NULL && resp_len > 0 && (job->resp = malloc(resp_len)) != NULL) {
		memcpy(job->resp, resp, resp_len);
		job->resp_len = resp_len;
	}
	/* On the loop thread itself, outside the handler's call (which
	 * conn_dispatch would re-enter): handed back now. */
	if (pthread_equal(pthread_self(), p->loop) && !p->submitting) {
		p->done(job, p->done_arg);
		return;
	}
	job->next = NULL;
	pthread_mutex_lock(&p->done_mu);
	if (p->done_tail != NULL) {
		p->done_tail->next = job;
	} else {
		p->done_head = job;
	}
	p->done_tail = job;
	pthread_mutex_unlock(&p->done_mu);
	event_active(p->done_ev, EV_READ, 0);
}

/* Loop thread: hand every completed job back to the server. */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pool_back *p = arg;
	struct job *job, *next;

	pthread_mutex_lock(&p->done_mu);
	job = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->done_mu);
	for (; job != NULL; job = next) {
		next = job->next;
		p->done(job, p->done_arg);
	}
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;
	struct job *job;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->count == 0 && !p->stopping) {
			pthread_cond_wait(&p->cv, &p->mu);
		}
		if (p->count == 0) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		job = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		pthread_mutex_unlock(&p->mu);
		p->handler(p->handler_ctx, job->who, job->req, job->req_len, job_reply, job);
	}
}

static int start_threads(struct pool *p, size_t num_threads)
{
	sigset_t all, old;
	int r = 0;

	/* Signals belong to the first loop's thread (libevent's signal events). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (p->num_threads = 0; p->num_threads < num_threads; p->num_threads++) {
		if (pthread_create(&p->threads[p->num_threads], NULL, worker_main, p) != 0) {
			r = -1;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

int pool_start(struct pool *p, size_t num_threads, size_t cap, keel_request_fn handler,
	       void *handler_ctx)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->cap = cap;
	p->handler = handler;
	p->handler_ctx = handler_ctx;
	p->inline_handler = num_threads == 0;
	if ((p->ring = calloc(cap, sizeof(struct job *))) == NULL ||
	    (p->threads = calloc(num_threads > 0 ? num_threads : 1, sizeof(*p->threads))) == NULL) {
		return -1;
	}
	return start_threads(p, num_threads);
}

int pool_back_init(struct pool_back *b, struct event_base *base, pool_done_fn done, void *done_arg)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->done_mu, NULL);
	b->done = done;
	b->done_arg = done_arg;
	return (b->done_ev = event_new(base, -1, 0, done_cb, b)) == NULL ? -1 : 0;
}

void pool_back_cleanup(struct pool_back *b)
{
	if (b->done_ev != NULL) {
		event_free(b->done_ev);
		b->done_ev = NULL;
	}
	pthread_mutex_destroy(&b->done_mu);
}

int pool_submit(struct pool *p, struct pool_back *back, struct job *job)
{
	int r = -1;

	job->back = back;
	if (p->inline_handler) {
		back->submitting = true;
		p->handler(p->handler_ctx, job->who, job->req, job->req_len, job_reply, job);
		back->submitting = false;
		return 0;
	}
	pthread_mutex_lock(&p->mu);
	if (p->count < p->cap && !p->stopping) {
		p->ring[(p->head + p->count) % p->cap] = job;
		p->count++;
		pthread_cond_signal(&p->cv);
		r = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return r;
}

void pool_stop(struct pool *p, bool wait)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (!wait) {
		return;
	}
	for (size_t i = 0; i < p->num_threads; i++) {
		pthread_join(p->threads[i], NULL);
	}
	free(p->ring);
	free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}
