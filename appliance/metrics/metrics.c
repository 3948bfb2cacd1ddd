/*
 * See keel/metrics.h. Counters are relaxed atomics: a scrape may see one
 * histogram a request ahead of another, which Prometheus tolerates, and the
 * hot paths pay one uncontended atomic add each.
 */
#include "keel/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "keel/kmip.h"

/* KMIP 2.1 numbers its operations up to 0x3B (Ping); anything past is "other". */
#define NUM_OPS	     0x40
#define NUM_STATUSES 4 /* Success, Operation Failed, Pending, Undone (KMIP 1.4 §9.1.3.2.23) */

/* Upper bounds in seconds; from a fast HSM call to a slow network HSM. */
static const double bucket_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				       0.025,  0.05,	0.1,	0.25,  0.5,    1,     2.5};
#define NUM_BUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct histogram {
	atomic_uint_fast64_t buckets[NUM_BUCKETS]; /* not cumulative; summed when rendered */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_ns;
};

static struct {
	atomic_uint_fast64_t items[NUM_OPS][NUM_STATUSES];
	struct histogram request[NUM_OPS];
	atomic_int_fast64_t connections;
	atomic_uint_fast64_t handshakes_ok, handshakes_failed;
	struct histogram hsm, store_commit;
	atomic_uint_fast64_t store_groups, store_group_requests;
	atomic_int_fast64_t mirror_backlog, mirror_rewraps, mirror_last_success, mirror_last_error;
	atomic_int_fast64_t crk_remaining;
} m;

uint64_t keel_metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void observe(struct histogram *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;

	while (i < NUM_BUCKETS && s > bucket_bounds[i]) {
		i++;
	}
	if (i < NUM_BUCKETS) {
		atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

static size_t op_index(uint32_t operation)
{
	return operation < NUM_OPS ? operation : 0; /* 0 is no operation: "other" */
}

void keel_metrics_kmip_item(uint32_t operation, uint32_t result_status)
{
	if (result_status < NUM_STATUSES) {
		atomic_fetch_add_explicit(&m.items[op_index(operation)][result_status], 1,
					  memory_order_relaxed);
	}
}

void keel_metrics_kmip_request(uint32_t operation, uint64_t ns)
{
	observe(&m.request[op_index(operation)], ns);
}

static void (*forward_fn)(void *arg, enum keel_metrics_event ev, int value);
static void *forward_arg;

void keel_metrics_forward(void (*fn)(void *arg, enum keel_metrics_event ev, int value), void *arg)
{
	forward_fn = fn;
	forward_arg = arg;
}

bool keel_metrics_event_ok(unsigned ev, int64_t value)
{
	switch (ev) {
	case KEEL_METRICS_CONNECTIONS:
		return value != 0;
	case KEEL_METRICS_HANDSHAKES_OK:
	case KEEL_METRICS_HANDSHAKES_FAILED:
		return value > 0;
	default:
		return false;
	}
}

void keel_metrics_add(enum keel_metrics_event ev, int64_t value)
{
	if (!keel_metrics_event_ok(ev, value)) {
		return;
	}
	if (ev == KEEL_METRICS_CONNECTIONS) {
		atomic_fetch_add_explicit(&m.connections, value, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(ev == KEEL_METRICS_HANDSHAKES_OK ? &m.handshakes_ok
									   : &m.handshakes_failed,
					  (uint64_t)value, memory_order_relaxed);
	}
}

static void record(enum keel_metrics_event ev, int value)
{
	if (forward_fn != NULL) {
		forward_fn(forward_arg, ev, value);
	} else {
		keel_metrics_add(ev, value);
	}
}

void keel_metrics_connections(int delta)
{
	record(KEEL_METRICS_CONNECTIONS, delta);
}

void keel_metrics_handshake(bool ok)
{
	record(ok ? KEEL_METRICS_HANDSHAKES_OK : KEEL_METRICS_HANDSHAKES_FAILED, 1);
}

void keel_metrics_hsm_call(uint64_t ns)
{
	observe(&m.hsm, ns);
}

void keel_metrics_store_commit(uint64_t ns)
{
	observe(&m.store_commit, ns);
}

void keel_metrics_store_group(unsigned requests)
{
	atomic_fetch_add_explicit(&m.store_groups, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m.store_group_requests, requests, memory_order_relaxed);
}

void keel_metrics_mirror(int64_t backlog, int64_t rewraps, int64_t last_success, int last_error)
{
	atomic_store_explicit(&m.mirror_backlog, backlog, memory_order_relaxed);
	atomic_store_explicit(&m.mirror_rewraps, rewraps, memory_order_relaxed);
	atomic_store_explicit(&m.mirror_last_success, last_success, memory_order_relaxed);
	atomic_store_explicit(&m.mirror_last_error, last_error, memory_order_relaxed);
}

void keel_metrics_crk_remaining(int64_t objects)
{
	atomic_store_explicit(&m.crk_remaining, objects, memory_order_relaxed);
}

int64_t keel_metrics_open_connections(void)
{
	return atomic_load_explicit(&m.connections, memory_order_relaxed);
}

static uint64_t load(atomic_uint_fast64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/* The Prometheus name of an operation: "Create", "Get", ... or "other". */
static const char *op_name(size_t op)
{
	const struct kmip_tag_def *t = kmip_tag_def(KMIP_TAG_OPERATION);
	const struct kmip_enum_value *v =
	    t != NULL && op != 0 ? kmip_enum_value(t->enum_def, (uint32_t)op) : NULL;

	return v != NULL ? v->name : "other";
}

static void render_histogram(FILE *f, const char *name, const char *labels, struct histogram *h)
{
	uint64_t cumulative = 0;
	const char *sep = labels[0] != '\0' ? "," : "";

	for (size_t i = 0; i < NUM_BUCKETS; i++) {
		cumulative += load(&h->buckets[i]);
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bucket_bounds[i],
			(unsigned long long)cumulative);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		(unsigned long long)load(&h->count));
	fprintf(f, "%s_sum%s%s%s %.9f\n", name, labels[0] != '\0' ? "{" : "", labels,
		labels[0] != '\0' ? "}" : "", (double)load(&h->sum_ns) / 1e9);
	fprintf(f, "%s_count%s%s%s %llu\n", name, labels[0] != '\0' ? "{" : "", labels,
		labels[0] != '\0' ? "}" : "", (unsigned long long)load(&h->count));
}

static void render_kmip(FILE *f)
{
	static const char *const statuses[NUM_STATUSES] = {"success", "failed", "pending",
							   "undone"};
	char labels[96];

	fputs("# HELP keel_kmip_requests_total KMIP batch items answered, by operation and "
	      "result.\n# TYPE keel_kmip_requests_total counter\n",
	      f);
	for (size_t op = 0; op < NUM_OPS; op++) {
		for (size_t s = 0; s < NUM_STATUSES; s++) {
			uint64_t n = load(&m.items[op][s]);

			if (n > 0) {
				fprintf(f,
					"keel_kmip_requests_total{operation=\"%s\",result=\"%s\"} "
					"%llu\n",
					op_name(op), statuses[s], (unsigned long long)n);
			}
		}
	}
	fputs("# HELP keel_kmip_request_duration_seconds KMIP request messages, decode to "
	      "answer, by first operation.\n# TYPE keel_kmip_request_duration_seconds "
	      "histogram\n",
	      f);
	for (size_t op = 0; op < NUM_OPS; op++) {
		if (load(&m.request[op].count) > 0) {
			snprintf(labels, sizeof(labels), "operation=\"%s\"", op_name(op));
			render_histogram(f, "keel_kmip_request_duration_seconds", labels,
					 &m.request[op]);
		}
	}
}

static void render_rest(FILE *f)
{
	fprintf(f,
		"# HELP keel_tls_connections Open KMIP TLS connections.\n"
		"# TYPE keel_tls_connections gauge\nkeel_tls_connections %lld\n"
		"# HELP keel_tls_handshakes_total KMIP TLS handshakes, by outcome.\n"
		"# TYPE keel_tls_handshakes_total counter\n"
		"keel_tls_handshakes_total{result=\"ok\"} %llu\n"
		"keel_tls_handshakes_total{result=\"failed\"} %llu\n",
		(long long)keel_metrics_open_connections(),
		(unsigned long long)load(&m.handshakes_ok),
		(unsigned long long)load(&m.handshakes_failed));
	fputs("# HELP keel_hsm_call_duration_seconds Calls into the PKCS#11 token.\n"
	      "# TYPE keel_hsm_call_duration_seconds histogram\n",
	      f);
	render_histogram(f, "keel_hsm_call_duration_seconds", "", &m.hsm);
	fputs("# HELP keel_store_commit_duration_seconds Durable store commits.\n"
	      "# TYPE keel_store_commit_duration_seconds histogram\n",
	      f);
	render_histogram(f, "keel_store_commit_duration_seconds", "", &m.store_commit);
	fprintf(f,
		"# HELP keel_store_groups_total Store transactions committed, each for a group "
		"of requests.\n"
		"# TYPE keel_store_groups_total counter\nkeel_store_groups_total %llu\n"
		"# HELP keel_store_group_requests_total Requests in those groups (over "
		"keel_store_groups_total: the mean group size).\n"
		"# TYPE keel_store_group_requests_total counter\n"
		"keel_store_group_requests_total %llu\n",
		(unsigned long long)load(&m.store_groups),
		(unsigned long long)load(&m.store_group_requests));
	fprintf(f,
		"# HELP keel_mirror_backlog Key Protect outbox entries not yet mirrored.\n"
		"# TYPE keel_mirror_backlog gauge\nkeel_mirror_backlog %lld\n"
		"# HELP keel_mirror_rewrap_backlog Escrows still to rewrap under the root key's "
		"newest version.\n"
		"# TYPE keel_mirror_rewrap_backlog gauge\nkeel_mirror_rewrap_backlog %lld\n",
		(long long)atomic_load_explicit(&m.mirror_backlog, memory_order_relaxed),
		(long long)atomic_load_explicit(&m.mirror_rewraps, memory_order_relaxed));
	fprintf(f,
		"# HELP keel_mirror_last_success_timestamp_seconds When the mirror last reached "
		"Key Protect (0: never).\n"
		"# TYPE keel_mirror_last_success_timestamp_seconds gauge\n"
		"keel_mirror_last_success_timestamp_seconds %lld\n"
		"# HELP keel_mirror_last_error The mirror's last failure (a MIRROR_E_* code, 0: "
		"none since its last success).\n"
		"# TYPE keel_mirror_last_error gauge\nkeel_mirror_last_error %lld\n",
		(long long)atomic_load_explicit(&m.mirror_last_success, memory_order_relaxed),
		(long long)atomic_load_explicit(&m.mirror_last_error, memory_order_relaxed));
	fprintf(f,
		"# HELP keel_crk_rotation_remaining Keys a CRK rotation has still to rewrap.\n"
		"# TYPE keel_crk_rotation_remaining gauge\nkeel_crk_rotation_remaining %lld\n",
		(long long)atomic_load_explicit(&m.crk_remaining, memory_order_relaxed));
}

int keel_metrics_render(char **out_text, size_t *out_len)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL) {
		return -1;
	}
	render_kmip(f);
	render_rest(f);
	if (fclose(f) != 0) {
		free(text);
		return -1;
	}
	*out_text = text;
	*out_len = len;
	return 0;
}
