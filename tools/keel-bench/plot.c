/*
 * --plot: two PNG files drawn by gnuplot, which reads the script and the data
 * (inline data blocks) on a pipe, so no temporary file is left behind.
 *   PREFIX-time.png  ops/s, mean and max latency per 100 ms slot
 *   PREFIX-cdf.png   fraction of operations at or below each latency
 */
#include <stdio.h>
#include <sys/wait.h>

#include "bench_int.h"

#define NS_PER_MS    1e6
#define SLOTS_PER_S  (1e9 / (double)KBENCH_SLOT_NS)
#define GNUPLOT	     "gnuplot"
#define PNG_TERMINAL "set terminal pngcairo size 900,500 font ',10'\n"

static void write_series(FILE *gp, const struct kbench_series *s)
{
	fputs("$series << EOD\n", gp);
	for (size_t i = 0; i < s->num; i++) {
		const struct kbench_slot *slot = &s->slots[i];
		double mean = slot->ops != 0 ? (double)slot->sum_ns / (double)slot->ops : 0;

		fprintf(gp, "%.1f %.0f %.4f %.4f\n", (double)i / SLOTS_PER_S,
			(double)slot->ops * SLOTS_PER_S, mean / NS_PER_MS,
			(double)slot->max_ns / NS_PER_MS);
	}
	fputs("EOD\n", gp);
}

/* One point per non-empty bucket: its highest value and the fraction at or below. */
static void write_cdf(FILE *gp, const struct kbench_hist *h)
{
	uint64_t seen = 0;

	fputs("$cdf << EOD\n", gp);
	for (unsigned i = 0; i < KBENCH_HIST_BUCKETS && h->total != 0; i++) {
		if (h->counts[i] != 0) {
			seen += h->counts[i];
			fprintf(gp, "%.6f %.6f\n", (double)kbench_hist_highest(i) / NS_PER_MS,
				(double)seen / (double)h->total);
		}
	}
	fputs("EOD\n", gp);
}

static void write_script(FILE *gp, const struct kbench_opts *o, const struct kbench_totals *t)
{
	const char *name = kbench_scenario_name(o->scenario);

	write_series(gp, &t->series);
	write_cdf(gp, &t->hist);
	fputs(PNG_TERMINAL "set grid\nset key top left\n", gp);
	fprintf(gp, "set output '%s-time.png'\n", o->plot);
	fprintf(gp, "set title '%s, %u connection(s): per 100 ms%s'\n", name, o->concurrency,
		t->series.incomplete ? " (incomplete: out of memory)" : "");
	fputs("set xlabel 'seconds'\nset ylabel 'latency ms'\nset y2label 'ops/s'\n"
	      "set ytics nomirror\nset y2tics\n"
	      "plot $series using 1:3 with lines title 'mean latency',"
	      " '' using 1:4 with lines title 'max latency',"
	      " '' using 1:2 axes x1y2 with lines title 'ops/s'\n",
	      gp);
	fprintf(gp, "set output '%s-cdf.png'\n", o->plot);
	fprintf(gp, "set title '%s, %u connection(s): latency distribution'\n", name,
		o->concurrency);
	fputs("unset y2label\nunset y2tics\nset ytics mirror\nset logscale x\n"
	      "set xlabel 'latency ms (log)'\nset ylabel 'fraction of operations'\n"
	      "set yrange [0:1]\nset key bottom right\n"
	      "plot $cdf using 1:2 with steps title 'CDF'\n",
	      gp);
}

int kbench_plot(const struct kbench_opts *o, const struct kbench_totals *t)
{
	FILE *gp = popen(GNUPLOT, "w");
	int status;

	if (gp == NULL) {
		fprintf(stderr, "keel-bench: cannot run %s\n", GNUPLOT);
		return -1;
	}
	write_script(gp, o, t);
	status = pclose(gp);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "keel-bench: %s failed drawing %s-*.png\n", GNUPLOT, o->plot);
		return -1;
	}
	fprintf(stderr, "keel-bench: wrote %s-time.png and %s-cdf.png\n", o->plot, o->plot);
	return 0;
}
