/*
 * keel-bench internals: the state shared by the client threads, each
 * thread's own counters, and the scenario table.
 */
#ifndef KEEL_BENCH_INT_H
#define KEEL_BENCH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "histogram.h"
#include "kmip_client.h"
#include "options.h"

#define KBENCH_REASONS	    128		 /* KMIP Result Reasons counted one by one */
#define KBENCH_LOCAL_ERRORS 8		 /* -KMIPC_E_* */
#define KBENCH_SETUP_KEYS   16		 /* keys made for get, vcenter-task and mixed */
#define KBENCH_LOCATE_CONNS 16		 /* connections that make locate's objects */
#define KBENCH_PROGRESS_NS  200000000ull /* how often a progress line is redrawn */

_Static_assert(-KMIPC_E_UNEXPECTED < KBENCH_LOCAL_ERRORS, "each local error has its count");

/*
 * The parts of a task that opens its own connection (vcenter-task,
 * boot-storm), timed one after another, so that a slow task shows where its
 * time went: the handshake (TCP and TLS), each request's round trip, the
 * close. Kept as sums; the report gives the mean of each (boot-storm's
 * get: per Get).
 */
enum kbench_phase {
	KBENCH_PHASE_CONNECT,
	KBENCH_PHASE_DISCOVER,
	KBENCH_PHASE_GET,
	KBENCH_PHASE_STATE,
	KBENCH_PHASE_CLOSE,
	KBENCH_NUM_PHASES
};

struct kbench_phases {
	uint64_t ns[KBENCH_NUM_PHASES];
	uint64_t n[KBENCH_NUM_PHASES];
};

/* Read-only once the threads start, but for |finished|. */
struct kbench_shared {
	const struct kbench_opts *opts;
	struct kmipc_ctx *ctx;
	char (*uids)[KMIPC_UID_MAX]; /* keys made by setup */
	size_t num_uids;
	char name_prefix[KBENCH_NAME_MAX]; /* locate: objects are PREFIX-<i> */
	uint64_t start_ns;
	uint64_t deadline_ns; /* duration mode; 0 with --count */
	pthread_barrier_t start;
	pthread_barrier_t held, release; /* idle: all connected; time to close */
	_Atomic unsigned finished;	 /* threads done: the progress line stops at all */
};

/* Errors of one thread: by KMIP Result Reason, or by local failure. */
struct kbench_errors {
	uint64_t kmip[KBENCH_REASONS]; /* reason 0: the server gave none */
	uint64_t local[KBENCH_LOCAL_ERRORS];
};

struct kbench_worker {
	struct kbench_shared *sh;
	unsigned index;
	uint64_t quota;		 /* operations to run with --count */
	struct kmipc_conn *conn; /* persistent connection, or NULL */
	void *session;		 /* SSL_SESSION kept for resumption */
	uint64_t rng;
	uint64_t seq; /* operations started */
	uint64_t handshakes, resumed;
	uint64_t end_ns;
	uint64_t mark_ns; /* when the phase being timed began */
	struct kbench_phases phases;
	_Atomic uint64_t done, failed; /* read by the progress line */
	struct kbench_errors errors;
	struct kbench_hist hist; /* latency of successful operations, ns */
	struct kbench_series series;
	pthread_t thread;
};

struct kbench_scenario_def {
	/* Makes what the operations need, on one connection; may be NULL. */
	int (*setup)(struct kbench_shared *sh, struct kmipc_conn *c, struct kmipc_result *res)
	    __attribute__((warn_unused_result));
	/* One timed operation. 0, or a KMIPC_E_* with |res| set for KMIPC_E_KMIP. */
	int (*op)(struct kbench_worker *w, struct kmipc_result *res)
	    __attribute__((warn_unused_result));
	bool persistent; /* w->conn is open before op runs */
};

const struct kbench_scenario_def *kbench_scenario_def(enum kbench_scenario s);

/* Opens a connection for |w|, offering and then keeping its TLS session. */
int kbench_connect(struct kbench_worker *w, struct kmipc_conn **out)
    __attribute__((warn_unused_result));
/* Closes |c|, keeping its session in |w| when resumption is on. */
void kbench_disconnect(struct kbench_worker *w, struct kmipc_conn *c);
/* Passes |err| through; when 0, counts the time since the last phase (or the
 * connect's start) as phase |p| of |w|. */
int kbench_phase_end(struct kbench_worker *w, enum kbench_phase p, int err)
    __attribute__((warn_unused_result));

uint64_t kbench_now_ns(void);

/* Prints the report of the merged results; text or JSON per the options. */
struct kbench_totals {
	struct kbench_hist hist;
	struct kbench_errors errors;
	struct kbench_series series;
	struct kbench_phases phases;
	uint64_t ops, failed, handshakes, resumed;
	double elapsed_s;
};
/* |name_prefix|: locate's objects are PREFIX-<i>; NULL for other scenarios. */
void kbench_report(const struct kbench_opts *o, const struct kbench_totals *t,
		   const char *name_prefix);

/* keel-bench serve: listens on --target until killed; returns only on failure. */
int kbench_serve(const struct kbench_opts *o) __attribute__((warn_unused_result));

/*
 * With --plot PREFIX, draws PREFIX-time.png (throughput and latency per
 * 100 ms) and PREFIX-cdf.png (latency distribution) through gnuplot.
 */
int kbench_plot(const struct kbench_opts *o, const struct kbench_totals *t)
    __attribute__((warn_unused_result));

#endif /* KEEL_BENCH_INT_H */
