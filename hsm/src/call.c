/*
 * Calls a request can stop waiting for: the answer to an HSM that hangs.
 *
 * No PKCS#11 call can be interrupted, so a request that must not wait
 * forever does not make the call itself. With a timeout configured, pool_size
 * runner threads make the calls; the request queues its call and waits for
 * its result until the deadline. Past it the request fails with
 * HSM_E_TIMEOUT and leaves the call behind: still queued, it is dropped at
 * once; already running, its runner finishes it in the background, returns
 * the session to the pool and frees it (c->drop). A hung token thus holds at
 * most the runners, never the threads that answer clients, and service
 * resumes by itself as soon as the token answers again.
 *
 * While a call that outlived its deadline is still running (h->overdue), a
 * new call fails at once instead of waiting a timeout of its own: a request
 * holds the store's writer while it waits, so every request behind it, those
 * that need no token included, would wait too. The first call to find the
 * token hung waits; the next ones do not, until the token answers again.
 *
 * Without a timeout (0) a call runs on the caller's thread, as before.
 */
#include "hsm_int.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* The call on this thread: a pooled session for the length of fn. */
static int run_here(struct hsm *h, struct hsm_call *c)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	int r;

	if ((r = hsm_op_begin(h, &s)) != 0) {
		return r;
	}
	r = c->fn(h, s, c, &rv);
	hsm_op_end(h, s, rv);
	return r;
}

/* Takes the next call off the queue; NULL once stopping with nothing left. */
static struct hsm_call *next_call(struct hsm *h)
{
	struct hsm_call *c;

	while (h->queue_head == NULL && !h->stopping) {
		pthread_cond_wait(&h->call_cv, &h->call_mu);
	}
	if ((c = h->queue_head) != NULL) {
		h->queue_head = c->next;
		if (h->queue_head == NULL) {
			h->queue_tail = NULL;
		}
		c->started = true;
	}
	return c;
}

static void *runner(void *arg)
{
	struct hsm *h = arg;
	struct hsm_call *c;
	int r;

	pthread_mutex_lock(&h->call_mu);
	while ((c = next_call(h)) != NULL) {
		pthread_mutex_unlock(&h->call_mu);
		r = run_here(h, c);
		pthread_mutex_lock(&h->call_mu);
		if (c->abandoned) {
			c->drop(c); /* the caller gave up: its result is ours to wipe */
			if (--h->overdue == 0) {
				hsm_log(h, HSM_LOG_INFO, "the token answers again");
			}
		} else {
			c->r = r;
			c->done = true;
			pthread_cond_signal(c->done_cv); /* its caller only: no herd */
		}
	}
	pthread_mutex_unlock(&h->call_mu);
	return NULL;
}

static void deadline_after(unsigned ms, struct timespec *out)
{
	clock_gettime(CLOCK_MONOTONIC, out);
	out->tv_sec += ms / 1000;
	out->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}

/* Takes c, not yet started, off the queue. */
static void unqueue(struct hsm *h, struct hsm_call *c)
{
	struct hsm_call **p = &h->queue_head, *prev = NULL;

	while (*p != c) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = c->next;
	if (h->queue_tail == c) {
		h->queue_tail = prev;
	}
}

/* Past the deadline: c is dropped now if no runner has it, else left to it. */
static int give_up(struct hsm *h, struct hsm_call *c)
{
	bool started = c->started;

	if (!started) {
		unqueue(h, c);
	} else {
		h->overdue++;
	}
	c->abandoned = true;
	pthread_mutex_unlock(&h->call_mu);
	if (!started) {
		c->drop(c);
	}
	atomic_fetch_add(&h->timeouts, 1);
	hsm_log(h, HSM_LOG_WARNING, "the token did not answer within %u ms (%s)", h->timeout_ms,
		started ? "the call goes on in the background" : "no session came free");
	return HSM_E_TIMEOUT;
}

/* With runners: queues c and waits for it until the deadline. */
static int queue_and_wait(struct hsm *h, struct hsm_call *c)
{
	struct timespec deadline;
	int r = 0;

	deadline_after(h->timeout_ms, &deadline);
	c->next = NULL;
	c->started = c->done = c->abandoned = false;
	pthread_mutex_lock(&h->call_mu);
	if (h->overdue > 0) {
		pthread_mutex_unlock(&h->call_mu);
		c->drop(c);
		atomic_fetch_add(&h->timeouts, 1);
		return HSM_E_TIMEOUT;
	}
	if (h->queue_tail != NULL) {
		h->queue_tail->next = c;
	} else {
		h->queue_head = c;
	}
	h->queue_tail = c;
	pthread_cond_signal(&h->call_cv);
	while (!c->done && r != ETIMEDOUT) {
		r = pthread_cond_timedwait(c->done_cv, &h->call_mu, &deadline);
	}
	if (!c->done) {
		return give_up(h, c); /* abandoned: the runner signals no more */
	}
	pthread_mutex_unlock(&h->call_mu);
	return c->r;
}

int hsm_call_run(struct hsm *h, struct hsm_call *c)
{
	pthread_condattr_t ca;
	pthread_cond_t done;
	int r;

	if (h->num_runners == 0) {
		return run_here(h, c);
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = pthread_cond_init(&done, &ca);
	pthread_condattr_destroy(&ca);
	if (r != 0) {
		return HSM_E_NOMEM; /* c is still the caller's */
	}
	c->done_cv = &done;
	r = queue_and_wait(h, c);
	pthread_cond_destroy(&done);
	return r;
}

int hsm_runners_start(struct hsm *h, unsigned timeout_ms)
{
	if (pthread_mutex_init(&h->call_mu, NULL) != 0 ||
	    pthread_cond_init(&h->call_cv, NULL) != 0) {
		return HSM_E_NOMEM;
	}
	h->calls_ready = true;
	h->timeout_ms = timeout_ms;
	if (timeout_ms == 0) {
		return 0;
	}
	if ((h->runners = calloc(h->pool_size, sizeof(*h->runners))) == NULL) {
		return HSM_E_NOMEM;
	}
	while (h->num_runners < h->pool_size) {
		if (pthread_create(&h->runners[h->num_runners], NULL, runner, h) != 0) {
			return HSM_E_NOMEM;
		}
		h->num_runners++;
	}
	return 0;
}

/*
 * Stops the runners once the queue is empty. A runner still inside a hung
 * call is given the timeout once more, then left: *out_stuck says so, and
 * the caller must then not finalize the module under it.
 */
void hsm_runners_stop(struct hsm *h, bool *out_stuck)
{
	struct timespec deadline;

	*out_stuck = false;
	if (!h->calls_ready) {
		return;
	}
	pthread_mutex_lock(&h->call_mu);
	h->stopping = true;
	pthread_cond_broadcast(&h->call_cv);
	pthread_mutex_unlock(&h->call_mu);
	clock_gettime(CLOCK_REALTIME, &deadline); /* pthread_timedjoin_np's clock */
	deadline.tv_sec += h->timeout_ms / 1000 + 1;
	for (unsigned i = 0; i < h->num_runners; i++) {
		if (pthread_timedjoin_np(h->runners[i], NULL, &deadline) != 0) {
			*out_stuck = true;
		}
	}
	free(h->runners);
	if (!*out_stuck) {
		pthread_mutex_destroy(&h->call_mu);
		pthread_cond_destroy(&h->call_cv);
	}
}
