/* Private to appliance/server. */
#ifndef KEEL_SERVER_INT_H
#define KEEL_SERVER_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "keel/server.h"

/* tls.c: the SSL_CTX carries its registry, so a reload can swap both at once
 * while handshakes already started keep theirs. Takes ownership of |*reg|. */
__attribute__((warn_unused_result)) int
tls_ctx_new(SSL_CTX **out_ctx, const struct keel_server_tls *tls, struct keel_registry *reg);
__attribute__((warn_unused_result)) int tls_identity(SSL *ssl,
						     struct keel_client_identity *out_who);
/* Whether the client of a resumed session may still connect. */
bool tls_resumed_allowed(SSL *ssl);
/* The OpenSSL error queue as one line (and cleared), for debug logs. */
void tls_errors(char *out, size_t out_len);

/* workers.c: a bounded queue of jobs, N threads running the handler, and a
 * completion list per loop, drained on that loop's thread. */
struct job {
	struct job *next;
	void *owner; /* the connection; only the loop thread looks at it */
	const struct keel_client_identity *who;
	uint8_t *req;
	size_t req_len;
	uint8_t *resp; /* NULL: no answer (close) */
	size_t resp_len;
	struct pool_back *back;
};

typedef void (*pool_done_fn)(struct job *job, void *arg);

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job **ring;
	size_t cap, head, count;
	bool stopping;
	pthread_t *threads;
	size_t num_threads;
	keel_request_fn handler;
	void *handler_ctx;
	bool inline_handler; /* no threads: pool_submit calls the handler */
};

/* Where the answers to one loop's jobs go: its completion list and wake-up. */
struct pool_back {
	bool submitting; /* the loop thread is in the inline handler */
	pthread_t loop;	 /* the loop's thread, set before it hands out any job */
	pthread_mutex_t done_mu;
	struct job *done_head, *done_tail;
	struct event *done_ev;
	pool_done_fn done;
	void *done_arg;
};

__attribute__((warn_unused_result)) int pool_start(struct pool *p, size_t num_threads, size_t cap,
						   keel_request_fn handler, void *handler_ctx);
/* |done| runs on |base|'s thread for each job submitted with |b|. 0 or -1;
 * pool_back_cleanup either way. */
__attribute__((warn_unused_result)) int pool_back_init(struct pool_back *b, struct event_base *base,
						       pool_done_fn done, void *done_arg);
void pool_back_cleanup(struct pool_back *b);
/* A loop thread, whose answers go to |back|. -1 when the queue is full. With
 * num_threads 0, pool_submit calls the handler itself (a handler that never
 * blocks). */
__attribute__((warn_unused_result)) int pool_submit(struct pool *p, struct pool_back *back,
						    struct job *job);
/* Joins the threads when |wait|; otherwise leaves them (a handler may be
 * stuck after a drain timeout and the process is about to exit). */
void pool_stop(struct pool *p, bool wait);

/* Wipes then frees: requests and responses may carry key material. */
void wipe_free(void *buf, size_t len);
/* Makes libevent wipe what it frees; before any other libevent call. */
void wipe_libevent_memory(void);

#endif
