/*
 * Bucket layout: for value < 2 * SUB the index is the value. Otherwise let
 * s be the shift that brings value into [SUB, 2 * SUB): the index is
 * SUB * s + (value >> s), so each power of two above 2 * SUB gets SUB
 * buckets of width 2^s, a relative width of at most 1/SUB.
 */
#include "histogram.h"

#include <stdlib.h>
#include <string.h>

void kbench_hist_init(struct kbench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static unsigned shift_of(uint64_t value)
{
	unsigned msb = 63u - (unsigned)__builtin_clzll(value);

	return msb - KBENCH_HIST_SUB_BITS;
}

unsigned kbench_hist_index(uint64_t value)
{
	unsigned s;

	if (value < 2 * KBENCH_HIST_SUB) {
		return (unsigned)value;
	}
	s = shift_of(value);
	return KBENCH_HIST_SUB * s + (unsigned)(value >> s);
}

uint64_t kbench_hist_lowest(unsigned index)
{
	unsigned s;

	if (index < 2 * KBENCH_HIST_SUB) {
		return index;
	}
	s = index / KBENCH_HIST_SUB - 1;
	return (uint64_t)(index - KBENCH_HIST_SUB * s) << s;
}

uint64_t kbench_hist_highest(unsigned index)
{
	unsigned s = index < 2 * KBENCH_HIST_SUB ? 0 : index / KBENCH_HIST_SUB - 1;

	return kbench_hist_lowest(index) + ((uint64_t)1 << s) - 1;
}

void kbench_hist_record(struct kbench_hist *h, uint64_t value)
{
	h->counts[kbench_hist_index(value)]++;
	h->total++;
	h->min = value < h->min ? value : h->min;
	h->max = value > h->max ? value : h->max;
}

void kbench_hist_merge(struct kbench_hist *dst, const struct kbench_hist *src)
{
	for (unsigned i = 0; i < KBENCH_HIST_BUCKETS; i++) {
		dst->counts[i] += src->counts[i];
	}
	dst->total += src->total;
	dst->min = src->min < dst->min ? src->min : dst->min;
	dst->max = src->max > dst->max ? src->max : dst->max;
}

uint64_t kbench_hist_percentile(const struct kbench_hist *h, double p)
{
	double exact = p / 100.0 * (double)h->total;
	uint64_t rank = (uint64_t)exact, seen = 0, v;

	if (h->total == 0) {
		return 0;
	}
	/* The rank of the value in a sorted array: ceil(p/100 * n), at least 1. */
	rank += (double)rank < exact;
	rank = rank < 1 ? 1 : rank > h->total ? h->total : rank;
	for (unsigned i = 0; i < KBENCH_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			v = kbench_hist_highest(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

double kbench_hist_mean(const struct kbench_hist *h)
{
	double sum = 0;

	if (h->total == 0) {
		return 0;
	}
	for (unsigned i = 0; i < KBENCH_HIST_BUCKETS; i++) {
		if (h->counts[i] != 0) {
			sum += (double)h->counts[i] *
			       ((double)kbench_hist_lowest(i) + (double)kbench_hist_highest(i)) / 2;
		}
	}
	return sum / (double)h->total;
}

/* Makes room for slot |index|; false when memory runs out. */
static bool series_reserve(struct kbench_series *s, size_t index)
{
	size_t cap = s->cap != 0 ? s->cap : 64;
	struct kbench_slot *slots;

	while (cap <= index) {
		if (cap > SIZE_MAX / 2 / sizeof(*slots)) {
			return false;
		}
		cap *= 2;
	}
	if (cap != s->cap) {
		if ((slots = realloc(s->slots, cap * sizeof(*slots))) == NULL) {
			return false;
		}
		memset(slots + s->cap, 0, (cap - s->cap) * sizeof(*slots));
		s->slots = slots;
		s->cap = cap;
	}
	s->num = index + 1 > s->num ? index + 1 : s->num;
	return true;
}

void kbench_series_record(struct kbench_series *s, uint64_t at_ns, uint64_t latency_ns)
{
	uint64_t index = at_ns / KBENCH_SLOT_NS;
	struct kbench_slot *slot;

	if (index >= SIZE_MAX || !series_reserve(s, (size_t)index)) {
		s->incomplete = true;
		return;
	}
	slot = &s->slots[index];
	slot->ops++;
	slot->sum_ns += latency_ns;
	slot->max_ns = latency_ns > slot->max_ns ? latency_ns : slot->max_ns;
}

void kbench_series_merge(struct kbench_series *dst, const struct kbench_series *src)
{
	dst->incomplete |= src->incomplete;
	if (src->num == 0) {
		return;
	}
	if (!series_reserve(dst, src->num - 1)) {
		dst->incomplete = true;
		return;
	}
	for (size_t i = 0; i < src->num; i++) {
		struct kbench_slot *d = &dst->slots[i];
		const struct kbench_slot *o = &src->slots[i];

		d->ops += o->ops;
		d->sum_ns += o->sum_ns;
		d->max_ns = o->max_ns > d->max_ns ? o->max_ns : d->max_ns;
	}
}

void kbench_series_cleanup(struct kbench_series *s)
{
	free(s->slots);
	*s = (struct kbench_series){0};
}
