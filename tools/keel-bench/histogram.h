/*
 * A latency histogram in the manner of HdrHistogram: log-linear buckets,
 * every value counted (no sampling), any value read back within 1/128
 * (0.8%) of what was recorded. Fixed size, no allocation: one per thread,
 * merged at the end.
 */
#ifndef KEEL_BENCH_HISTOGRAM_H
#define KEEL_BENCH_HISTOGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Values below 2 * KBENCH_HIST_SUB are exact; above, each power of two is
 * split into KBENCH_HIST_SUB equal sub-buckets.
 */
#define KBENCH_HIST_SUB_BITS 7
#define KBENCH_HIST_SUB	     (1u << KBENCH_HIST_SUB_BITS)
#define KBENCH_HIST_BUCKETS  ((64 - KBENCH_HIST_SUB_BITS + 1) * KBENCH_HIST_SUB)

struct kbench_hist {
	uint64_t counts[KBENCH_HIST_BUCKETS];
	uint64_t total;
	uint64_t min;
	uint64_t max;
};

void kbench_hist_init(struct kbench_hist *h);
void kbench_hist_record(struct kbench_hist *h, uint64_t value);
/* Adds every count of |src| to |dst|. */
void kbench_hist_merge(struct kbench_hist *dst, const struct kbench_hist *src);
/*
 * The value at percentile |p| (0-100]: the smallest recorded value with at
 * least p% of the values at or below it, as the highest value its bucket
 * holds (never above the maximum recorded). 0 when empty.
 */
uint64_t kbench_hist_percentile(const struct kbench_hist *h, double p);
/* Mean of the recorded values (each as its bucket's midpoint); 0 when empty. */
double kbench_hist_mean(const struct kbench_hist *h);

/* Exposed for the tests: the bucket of |value| and the range a bucket covers. */
unsigned kbench_hist_index(uint64_t value);
uint64_t kbench_hist_lowest(unsigned index);
uint64_t kbench_hist_highest(unsigned index);

#define KBENCH_SLOT_NS 100000000ull /* latency over time: 100 ms slots */

/* Operations that ended in one time slot: enough for ops/s, mean and max. */
struct kbench_slot {
	uint64_t ops, sum_ns, max_ns;
};

/* Latency over time, kept only with --plot; grows as the run goes on. */
struct kbench_series {
	struct kbench_slot *slots;
	size_t num, cap;
	bool incomplete; /* a slot could not be allocated: the plot says so */
};

/* Counts an operation of |latency_ns| that ended |at_ns| after the start. */
void kbench_series_record(struct kbench_series *s, uint64_t at_ns, uint64_t latency_ns);
/* Adds |src| into |dst|, slot by slot. */
void kbench_series_merge(struct kbench_series *dst, const struct kbench_series *src);
void kbench_series_cleanup(struct kbench_series *s);

#endif /* KEEL_BENCH_HISTOGRAM_H */
