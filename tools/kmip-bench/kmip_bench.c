/*
 * kmip-bench: decode + encode of typed KMIP messages, in ns/message and heap
 * allocations/message, printed as a markdown table (docs/benchmarks.md).
 *
 *   kmip-bench [ITERATIONS [RUNS [get|locate]]]
 *
 * Each run times ITERATIONS messages in thread CPU time; the median run is
 * reported. Heap
 * allocations are counted by wrapping malloc (-Wl,--wrap=malloc), so they
 * include everything libkmip does, not only the arena's blocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/kmip.h"

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

static size_t num_mallocs;

void *__wrap_malloc(size_t n)
{
	num_mallocs++;
	return __real_malloc(n);
}

/* ../shared/VCENTER.md §3, "Get response (lab key, Raw format)". */
static const char get_response_hex[] =
    "42007b010000012042007a0100000048420069010000002042006a02000000040000000100000000"
    "42006b0200000004000000010000000042009209000000080000000067ee614942000d0200000004"
    "000000010000000042000f01000000c842005c05000000040000000a000000004200930800000008"
    "514c4b430100000042007f0500000004000000000000000042007c01000000904200570500000004"
    "000000020000000042009407000000013100000000000000"
    "42008f01000000684200400100000060420042050000000400000001000000004200450100000028"
    "4200430800000020"
    "0a65534a5852d45c27032b575cf2cc902548fc8c94aa8042a0d8858fe637c200"
    "4200280500000004000000030000000042002a02000000040000010000000000";

enum mode { DECODE_ENCODE, DECODE, ENCODE };

struct sample {
	const char *name;
	const uint8_t *bytes;
	size_t len;
};

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; hex[0] != '\0' && hex[1] != '\0' && n < cap; hex += 2) {
		char pair[3] = {hex[0], hex[1], '\0'};
		char *end;
		unsigned long v = strtoul(pair, &end, 16);

		if (*end != '\0') {
			break;
		}
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* A 1.4 Locate response naming 50 objects, encoded from typed structs. */
static int build_locate(uint8_t *out, size_t cap, size_t *out_len)
{
	static char ids[50][40];
	struct kmip_text uids[50];
	struct kmip_locate_response loc = {.has_located_items = true,
					   .located_items = 50,
					   .unique_identifiers = uids,
					   .num_unique_identifiers = 50};
	struct kmip_protocol_version pv = {.protocol_version_major = 1,
					   .protocol_version_minor = 4};
	struct kmip_response_header h = {
	    .protocol_version = &pv, .time_stamp = 1743675721, .batch_count = 1};
	struct kmip_response_batch_item item = {
	    .has_operation = true, .operation = KMIP_OPERATION_LOCATE, .response_payload = &loc};
	struct kmip_response_message m = {
	    .response_header = &h, .batch_items = &item, .num_batch_items = 1};
	struct kmip_writer w;
	const uint8_t *p;
	int err;

	for (int i = 0; i < 50; i++) {
		uids[i].len =
		    (size_t)snprintf(ids[i], sizeof(ids[i]), "8f3c2a10-5b7e-4d2c-9e61-%012d", i);
		uids[i].s = ids[i];
	}
	kmip_writer_init_fixed(&w, out, cap);
	if ((err = kmip_response_encode(&w, &m)) != 0 ||
	    (err = kmip_writer_finish(&w, &p, out_len)) != 0) {
		return err;
	}
	return 0;
}

/*
 * Thread CPU time, not wall time: the build machines run other work, and
 * time spent descheduled is not time spent decoding.
 */
static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One message: decode (arena from the heap, or |storage|) and/or encode. */
static int one(const struct sample *s, enum mode mode, void *storage, size_t storage_len,
	       struct kmip_response_message *keep)
{
	static uint8_t out[1 << 16];
	struct kmip_arena arena;
	struct kmip_response_message *m = keep;
	struct kmip_writer w;
	const uint8_t *p;
	size_t len;
	int err = 0;

	kmip_arena_init(&arena, storage, storage_len);
	if (mode != ENCODE) {
		err =
		    kmip_response_decode(s->bytes, s->len, &kmip_default_limits, &arena, &m, NULL);
	}
	if (err == 0 && mode != DECODE) {
		kmip_writer_init_fixed(&w, out, sizeof(out));
		if ((err = kmip_response_encode(&w, m)) == 0) {
			err = kmip_writer_finish(&w, &p, &len);
		}
	}
	kmip_arena_cleanup(&arena);
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median ns/message over |runs| runs of |iters| messages. */
static double time_mode(const struct sample *s, enum mode mode, struct kmip_response_message *keep,
			long iters, int runs)
{
	double t[64];

	for (int r = 0; r < runs; r++) {
		double t0 = now_ns();

		for (long i = 0; i < iters; i++) {
			if (one(s, mode, NULL, 0, keep) != 0) {
				fprintf(stderr, "kmip-bench: %s failed\n", s->name);
				exit(1);
			}
		}
		t[r] = (now_ns() - t0) / (double)iters;
	}
	qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
	return t[runs / 2];
}

/* Heap allocations per message, with an empty arena and with caller storage. */
static void count_allocs(const struct sample *s, double *heap, double *stack)
{
	static uint8_t storage[1 << 16];
	size_t before = num_mallocs;

	for (int i = 0; i < 1000; i++) {
		(void)one(s, DECODE_ENCODE, NULL, 0, NULL);
	}
	*heap = (double)(num_mallocs - before) / 1000.0;
	before = num_mallocs;
	for (int i = 0; i < 1000; i++) {
		(void)one(s, DECODE_ENCODE, storage, sizeof(storage), NULL);
	}
	*stack = (double)(num_mallocs - before) / 1000.0;
}

static void report(const struct sample *s, long iters, int runs)
{
	static uint8_t storage[1 << 16];
	struct kmip_arena arena;
	struct kmip_response_message *keep;
	double both, dec, enc, heap, stack;

	kmip_arena_init(&arena, storage, sizeof(storage));
	if (kmip_response_decode(s->bytes, s->len, &kmip_default_limits, &arena, &keep, NULL) !=
	    0) {
		fprintf(stderr, "kmip-bench: %s does not decode\n", s->name);
		exit(1);
	}
	both = time_mode(s, DECODE_ENCODE, NULL, iters, runs);
	dec = time_mode(s, DECODE, NULL, iters, runs);
	enc = time_mode(s, ENCODE, keep, iters, runs);
	count_allocs(s, &heap, &stack);
	printf("| %s | %zu | %.0f | %.0f | %.0f | %.2f | %.2f |\n", s->name, s->len, both, dec, enc,
	       heap, stack);
	kmip_arena_cleanup(&arena);
}

int main(int argc, char **argv)
{
	static uint8_t get[512], locate[8192];
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 300000;
	long runs = argc > 2 ? strtol(argv[2], NULL, 10) : 9;
	const char *only = argc > 3 ? argv[3] : ""; /* one sample, for profiling */
	struct sample samples[2] = {{"vCenter Get response", get, 0},
				    {"Locate response, 50 items", locate, 0}};

	if (iters <= 0 || runs <= 0 || runs > 64) {
		fprintf(stderr, "usage: kmip-bench [ITERATIONS [RUNS (1-64)]]\n");
		return 2;
	}
	samples[0].len = unhex(get_response_hex, get, sizeof(get));
	if (build_locate(locate, sizeof(locate), &samples[1].len) != 0) {
		fprintf(stderr, "kmip-bench: cannot build the Locate response\n");
		return 1;
	}
	printf("kmip-bench: %ld messages per run, median of %ld runs\n\n", iters, runs);
	printf("| message | bytes | decode+encode ns | decode ns | encode ns "
	       "| heap allocs/msg (empty arena) | heap allocs/msg (caller storage) |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < 2; i++) {
		if (strcmp(only, "") == 0 || strcmp(only, i == 0 ? "get" : "locate") == 0) {
			report(&samples[i], iters, (int)runs);
		}
	}
	return 0;
}
