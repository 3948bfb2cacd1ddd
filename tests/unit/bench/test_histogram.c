/*
 * The histogram against the exact answer: percentiles of a sorted array of
 * the same values must agree within the bucket precision (1/128).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "histogram.h"

#define NUM_VALUES 100000

static const double checked[] = {1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile of sorted |v|: the value of rank ceil(p/100 * n). */
static uint64_t exact_percentile(const uint64_t *v, size_t n, double p)
{
	double want = p / 100.0 * (double)n;
	size_t rank = (size_t)want;

	rank += (double)rank < want;
	return v[(rank < 1 ? 1 : rank) - 1];
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Records |v|, then checks every percentile against the sorted copy. */
static void check_against_sorted(uint64_t *v, size_t n)
{
	static struct kbench_hist h;

	kbench_hist_init(&h);
	for (size_t i = 0; i < n; i++) {
		kbench_hist_record(&h, v[i]);
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	assert_int_equal(h.total, n);
	assert_int_equal(h.min, v[0]);
	assert_int_equal(h.max, v[n - 1]);
	for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]); i++) {
		uint64_t want = exact_percentile(v, n, checked[i]);
		uint64_t got = kbench_hist_percentile(&h, checked[i]);

		assert_true(got >= want);
		assert_true(got - want <= want / KBENCH_HIST_SUB);
	}
}

/* Latency-like: log-uniform from 1 us to 10 s, in nanoseconds. */
static void test_log_uniform(void **state)
{
	static uint64_t v[NUM_VALUES];
	uint64_t s = 88172645463325252ull;

	(void)state;
	for (size_t i = 0; i < NUM_VALUES; i++) {
		unsigned decade = (unsigned)(next(&s) % 7);
		uint64_t base = 1000;

		for (unsigned d = 0; d < decade; d++) {
			base *= 10;
		}
		v[i] = base + next(&s) % (9 * base);
	}
	check_against_sorted(v, NUM_VALUES);
}

/* Small values are exact. */
static void test_small_values_exact(void **state)
{
	static uint64_t v[2 * KBENCH_HIST_SUB];

	(void)state;
	for (size_t i = 0; i < 2 * KBENCH_HIST_SUB; i++) {
		v[i] = 2 * KBENCH_HIST_SUB - 1 - i;
	}
	check_against_sorted(v, 2 * KBENCH_HIST_SUB);
}

/* Every value falls in a bucket whose range holds it, up to UINT64_MAX. */
static void test_bucket_bounds(void **state)
{
	uint64_t s = 1;

	(void)state;
	for (int i = 0; i < 100000; i++) {
		uint64_t v = next(&s) >> (next(&s) % 64);
		unsigned idx = kbench_hist_index(v);

		assert_true(idx < KBENCH_HIST_BUCKETS);
		assert_true(kbench_hist_lowest(idx) <= v && v <= kbench_hist_highest(idx));
	}
	assert_int_equal(kbench_hist_index(UINT64_MAX), KBENCH_HIST_BUCKETS - 1);
	assert_true(kbench_hist_highest(KBENCH_HIST_BUCKETS - 1) == UINT64_MAX);
}

/* Merging two halves gives the histogram of the whole. */
static void test_merge(void **state)
{
	static struct kbench_hist a, b, whole;

	(void)state;
	kbench_hist_init(&a);
	kbench_hist_init(&b);
	kbench_hist_init(&whole);
	for (uint64_t v = 1; v <= 10000; v++) {
		kbench_hist_record(v % 2 ? &a : &b, v * 1000);
		kbench_hist_record(&whole, v * 1000);
	}
	kbench_hist_merge(&a, &b);
	assert_memory_equal(&a, &whole, sizeof(whole));
	assert_int_equal(kbench_hist_percentile(&a, 50), kbench_hist_percentile(&whole, 50));
}

static void test_empty_and_one(void **state)
{
	static struct kbench_hist h;

	(void)state;
	kbench_hist_init(&h);
	assert_int_equal(kbench_hist_percentile(&h, 99), 0);
	assert_true(kbench_hist_mean(&h) == 0);
	kbench_hist_record(&h, 123456789);
	assert_int_equal(kbench_hist_percentile(&h, 0.001), 123456789);
	assert_int_equal(kbench_hist_percentile(&h, 100), 123456789);
}

/* Operations land in the slot of the time they ended; merging adds slot by slot. */
static void test_series(void **state)
{
	struct kbench_series a = {0}, b = {0}, sum = {0};

	(void)state;
	kbench_series_record(&a, 0, 10);
	kbench_series_record(&a, KBENCH_SLOT_NS - 1, 30);
	kbench_series_record(&a, 5 * KBENCH_SLOT_NS, 7);
	kbench_series_record(&b, KBENCH_SLOT_NS, 100);
	kbench_series_record(&b, 1000 * KBENCH_SLOT_NS + 1, 1);
	assert_int_equal(a.num, 6);
	assert_int_equal(a.slots[0].ops, 2);
	assert_int_equal(a.slots[0].sum_ns, 40);
	assert_int_equal(a.slots[0].max_ns, 30);
	assert_int_equal(a.slots[1].ops, 0);
	assert_int_equal(a.slots[5].max_ns, 7);
	assert_int_equal(b.num, 1001);

	kbench_series_merge(&sum, &a);
	kbench_series_merge(&sum, &b);
	assert_int_equal(sum.num, 1001);
	assert_int_equal(sum.slots[0].ops, 2);
	assert_int_equal(sum.slots[1].ops, 1);
	assert_int_equal(sum.slots[1].max_ns, 100);
	assert_int_equal(sum.slots[5].ops, 1);
	assert_int_equal(sum.slots[1000].ops, 1);
	assert_false(sum.incomplete);

	kbench_series_cleanup(&a);
	kbench_series_cleanup(&b);
	kbench_series_cleanup(&sum);
	assert_null(sum.slots);
	assert_int_equal(sum.num, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_uniform),	  cmocka_unit_test(test_small_values_exact),
	    cmocka_unit_test(test_bucket_bounds), cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_empty_and_one), cmocka_unit_test(test_series),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
