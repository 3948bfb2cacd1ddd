/*
 * keel-bench: a KMIP load generator over mutual TLS (issue 7). One thread
 * per client connection; each keeps its own histogram and counters, merged
 * when all are done. See options.c for the command line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "bench_int.h"
#include "keel/kmip.h"

#define EXIT_FAILED_OPS 1
#define EXIT_USAGE	2
#define EXIT_SETUP	3
#define EXIT_PLOT	4
#define THREAD_STACK	(256 * 1024)
#define NS_PER_S	1e9

uint64_t kbench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool more_to_do(const struct kbench_worker *w)
{
	if (w->sh->deadline_ns == 0) {
		return w->seq < w->quota;
	}
	return kbench_now_ns() < w->sh->deadline_ns;
}

static void count_error(struct kbench_worker *w, int err, const struct kmipc_result *res)
{
	if (err == KMIPC_E_KMIP) {
		w->errors.kmip[res->reason < KBENCH_REASONS ? res->reason : 0]++;
	} else {
		w->errors.local[(unsigned)-err % KBENCH_LOCAL_ERRORS]++;
	}
	atomic_fetch_add_explicit(&w->failed, 1, memory_order_relaxed);
	/* After a transport failure the connection is of no further use. */
	if (err != KMIPC_E_KMIP && w->conn != NULL) {
		kbench_disconnect(w, w->conn);
		w->conn = NULL;
	}
}

static int run_one(struct kbench_worker *w, const struct kbench_scenario_def *def,
		   struct kmipc_result *res)
{
	int err;

	if (def->persistent && w->conn == NULL && (err = kbench_connect(w, &w->conn)) != 0) {
		return err;
	}
	return def->op(w, res);
}

static void *worker_main(void *arg)
{
	struct kbench_worker *w = arg;
	const struct kbench_scenario_def *def = kbench_scenario_def(w->sh->opts->scenario);
	struct kmipc_result res;
	uint64_t t0, end;
	int err;

	/* Persistent connections are opened before the clock starts (a failure is retried). */
	if (def->persistent && kbench_connect(w, &w->conn) != 0) {
		w->conn = NULL;
	}
	pthread_barrier_wait(&w->sh->start);
	while (more_to_do(w)) {
		t0 = kbench_now_ns();
		err = run_one(w, def, &res);
		w->seq++;
		if (err != 0) {
			count_error(w, err, &res);
			continue;
		}
		end = kbench_now_ns();
		kbench_hist_record(&w->hist, end - t0);
		if (w->sh->opts->plot != NULL) {
			kbench_series_record(&w->series, end - w->sh->start_ns, end - t0);
		}
		atomic_fetch_add_explicit(&w->done, 1, memory_order_relaxed);
	}
	w->end_ns = kbench_now_ns();
	if (w->sh->opts->scenario == KBENCH_IDLE) {
		pthread_barrier_wait(&w->sh->held);
		pthread_barrier_wait(&w->sh->release);
	}
	kbench_disconnect(w, w->conn);
	w->conn = NULL;
	atomic_fetch_add(&w->sh->finished, 1);
	return NULL;
}

static void start_workers(struct kbench_shared *sh, struct kbench_worker *ws, unsigned n)
{
	pthread_attr_t attr;
	unsigned i;
	int err = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (i = 0; i < n && err == 0; i++) {
		ws[i].sh = sh;
		ws[i].index = i;
		ws[i].quota = sh->opts->count / n + (i < sh->opts->count % n);
		ws[i].rng = 0x9E3779B97F4A7C15ull * (i + 1);
		kbench_hist_init(&ws[i].hist);
		err = pthread_create(&ws[i].thread, &attr, worker_main, &ws[i]);
	}
	pthread_attr_destroy(&attr);
	if (err != 0) {
		fprintf(stderr, "keel-bench: cannot start thread %u: %s\n", i, strerror(err));
		exit(EXIT_SETUP); /* the others wait at the barrier: nothing to unwind */
	}
}

/* One line on the terminal, rewritten in place, while the threads run. */
static void show_progress(const struct kbench_shared *sh, struct kbench_worker *ws, unsigned n)
{
	uint64_t done = 0, failed = 0;
	double t = (double)(kbench_now_ns() - sh->start_ns) / NS_PER_S;

	for (unsigned i = 0; i < n; i++) {
		done += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
		failed += atomic_load_explicit(&ws[i].failed, memory_order_relaxed);
	}
	fprintf(stderr, "\r%s: %6.1f s  %llu ops  %.0f ops/s  %llu errors   ",
		kbench_scenario_name(sh->opts->scenario), t, (unsigned long long)done,
		t > 0 ? (double)done / t : 0.0, (unsigned long long)failed);
}

/* Idle: once every connection is open, says so and keeps them open for --duration. */
static void hold_idle(struct kbench_shared *sh, unsigned n)
{
	double s = sh->opts->duration;
	struct timespec hold = {(time_t)s, (long)((s - (double)(time_t)s) * NS_PER_S)};

	pthread_barrier_wait(&sh->held);
	fprintf(stderr, "IDLE %u\n", n);
	fflush(stderr);
	while (nanosleep(&hold, &hold) != 0) {
	}
	pthread_barrier_wait(&sh->release);
}

static void join_workers(struct kbench_shared *sh, struct kbench_worker *ws, unsigned n)
{
	bool tty = isatty(STDERR_FILENO) == 1 && sh->opts->scenario != KBENCH_IDLE;
	struct timespec tick = {0, (long)KBENCH_PROGRESS_NS};

	if (sh->opts->scenario == KBENCH_IDLE) {
		hold_idle(sh, n);
	}

	while (tty && atomic_load(&sh->finished) < n) {
		show_progress(sh, ws, n);
		nanosleep(&tick, NULL);
	}
	if (tty) {
		show_progress(sh, ws, n);
		fputc('\n', stderr);
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(ws[i].thread, NULL);
	}
}

static void merge(const struct kbench_shared *sh, const struct kbench_worker *ws, unsigned n,
		  struct kbench_totals *t)
{
	uint64_t end = sh->start_ns;

	kbench_hist_init(&t->hist);
	for (unsigned i = 0; i < n; i++) {
		kbench_hist_merge(&t->hist, &ws[i].hist);
		kbench_series_merge(&t->series, &ws[i].series);
		for (unsigned r = 0; r < KBENCH_REASONS; r++) {
			t->errors.kmip[r] += ws[i].errors.kmip[r];
		}
		for (unsigned r = 0; r < KBENCH_LOCAL_ERRORS; r++) {
			t->errors.local[r] += ws[i].errors.local[r];
		}
		for (unsigned p = 0; p < KBENCH_NUM_PHASES; p++) {
			t->phases.ns[p] += ws[i].phases.ns[p];
			t->phases.n[p] += ws[i].phases.n[p];
		}
		t->failed += ws[i].failed;
		t->handshakes += ws[i].handshakes;
		t->resumed += ws[i].resumed;
		end = ws[i].end_ns > end ? ws[i].end_ns : end;
	}
	t->ops = t->hist.total;
	t->elapsed_s = (double)(end - sh->start_ns) / NS_PER_S;
}

/* Makes what the scenario needs on a connection of its own, before the clock starts. */
static int setup(struct kbench_shared *sh)
{
	const struct kbench_scenario_def *def = kbench_scenario_def(sh->opts->scenario);
	struct kmipc_conn *c = NULL;
	struct kmipc_result res = {0};
	int err;

	if (sh->opts->names != NULL) { /* locate among what an earlier run made */
		snprintf(sh->name_prefix, sizeof(sh->name_prefix), "%s", sh->opts->names);
		return 0;
	}
	snprintf(sh->name_prefix, sizeof(sh->name_prefix), "keel-bench-%ld-%llu", (long)getpid(),
		 (unsigned long long)kbench_now_ns());
	if ((err = kmipc_connect(sh->ctx, NULL, &c)) == 0 && def->setup != NULL) {
		err = def->setup(sh, c, &res);
	}
	kmipc_close(c, NULL);
	if (err != 0) {
		fprintf(stderr, "keel-bench: setup failed: %s", kmipc_strerror(err));
		if (err == KMIPC_E_KMIP) {
			const struct kmip_enum_value *v =
			    kmip_enum_value(&kmip_enum_result_reason, res.reason);
			fprintf(stderr, " (%s)", v != NULL ? v->title : "no reason given");
		}
		fputc('\n', stderr);
	}
	return err;
}

static int run(struct kbench_shared *sh, struct kbench_totals *out)
{
	unsigned n = sh->opts->concurrency;
	struct kbench_worker *ws = calloc(n, sizeof(*ws));

	if (ws == NULL || pthread_barrier_init(&sh->start, NULL, n + 1) != 0 ||
	    pthread_barrier_init(&sh->held, NULL, n + 1) != 0 ||
	    pthread_barrier_init(&sh->release, NULL, n + 1) != 0) {
		free(ws);
		return KMIPC_E_NOMEM;
	}
	start_workers(sh, ws, n);
	sh->start_ns = kbench_now_ns();
	sh->deadline_ns =
	    sh->opts->count != 0 ? 0 : sh->start_ns + (uint64_t)(sh->opts->duration * NS_PER_S);
	pthread_barrier_wait(&sh->start);
	join_workers(sh, ws, n);
	merge(sh, ws, n, out);
	for (unsigned i = 0; i < n; i++) {
		SSL_SESSION_free(ws[i].session);
		kbench_series_cleanup(&ws[i].series);
	}
	pthread_barrier_destroy(&sh->start);
	pthread_barrier_destroy(&sh->held);
	pthread_barrier_destroy(&sh->release);
	free(ws);
	return 0;
}

static int open_ctx(const struct kbench_opts *o, struct kmipc_ctx **out)
{
	const struct kmipc_config cfg = {
	    .host = o->host,
	    .port = o->port,
	    .ca_file = o->ca,
	    .cert_file = o->cert,
	    .key_file = o->key,
	    .tls_version = o->tls_version,
	    .resumption = o->resumption,
	    .kmip_major = o->kmip_major,
	    .kmip_minor = o->kmip_minor,
	};
	int err = kmipc_ctx_new(&cfg, out);

	if (err != 0) {
		fprintf(stderr, "keel-bench: %s (--ca %s --cert %s --key %s)\n",
			kmipc_strerror(err), o->ca, o->cert, o->key);
	}
	return err;
}

int main(int argc, char **argv)
{
	struct kbench_opts opts;
	struct kbench_shared sh = {.opts = &opts};
	static struct kbench_totals totals; /* static: the histogram is large */
	char msg[256];
	bool plotted;

	if (kbench_opts_parse(argc, argv, &opts, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "keel-bench: %s\n%s", msg, kbench_usage);
		return EXIT_USAGE;
	}
	if (opts.help) {
		fputs(kbench_usage, stdout);
		return 0;
	}
	/* A server that drops a connection must cost an error, not the process. */
	signal(SIGPIPE, SIG_IGN);
	if (opts.scenario == KBENCH_SERVE) {
		return kbench_serve(&opts) == 0 ? 0 : EXIT_SETUP;
	}
	if (open_ctx(&opts, &sh.ctx) != 0 || setup(&sh) != 0 || run(&sh, &totals) != 0) {
		kmipc_ctx_free(sh.ctx);
		free(sh.uids);
		return EXIT_SETUP;
	}
	kbench_report(&opts, &totals, opts.scenario == KBENCH_LOCATE ? sh.name_prefix : NULL);
	plotted = opts.plot == NULL || kbench_plot(&opts, &totals) == 0;
	kbench_series_cleanup(&totals.series);
	kmipc_ctx_free(sh.ctx);
	free(sh.uids);
	if (totals.failed != 0) {
		return EXIT_FAILED_OPS;
	}
	return plotted ? 0 : EXIT_PLOT;
}
