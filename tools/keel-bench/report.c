/*
 * The report: ops/s, errors by KMIP Result Reason (or local failure), and
 * latency percentiles, as text or as one JSON object on stdout.
 */
#include <stdio.h>

#include <jansson.h>
#include <openssl/tls1.h>

#include "bench_int.h"
#include "keel/kmip.h"

#define NS_PER_MS 1e6

struct percentile {
	const char *key; /* JSON */
	const char *label;
	double p;
};

static const struct percentile percentiles[] = {
    {"p50_ms", "p50", 50.0},
    {"p90_ms", "p90", 90.0},
    {"p99_ms", "p99", 99.0},
    {"p999_ms", "p99.9", 99.9},
};
#define NUM_PERCENTILES (sizeof(percentiles) / sizeof(percentiles[0]))

/* Calls |fn| for each error kind that occurred, with its name and count. */
static void each_error(const struct kbench_errors *e,
		       void (*fn)(void *arg, const char *name, uint64_t n), void *arg)
{
	for (unsigned r = 0; r < KBENCH_REASONS; r++) {
		const struct kmip_enum_value *v = kmip_enum_value(&kmip_enum_result_reason, r);

		if (e->kmip[r] != 0) {
			fn(arg, v != NULL ? v->title : "Result Reason absent or unknown",
			   e->kmip[r]);
		}
	}
	for (unsigned i = 1; i < KBENCH_LOCAL_ERRORS; i++) {
		if (e->local[i] != 0) {
			fn(arg, kmipc_strerror(-(int)i), e->local[i]);
		}
	}
}

static double ms(uint64_t ns)
{
	return (double)ns / NS_PER_MS;
}

static double rate(const struct kbench_totals *t)
{
	return t->elapsed_s > 0 ? (double)t->ops / t->elapsed_s : 0.0;
}

static const char *tls_name(int v)
{
	return v == TLS1_2_VERSION ? "1.2" : v == TLS1_3_VERSION ? "1.3" : "1.2-1.3";
}

/* Names in the report, text and JSON, in enum kbench_phase's order. */
static const char *const phase_names[KBENCH_NUM_PHASES] = {"connect", "discover_versions", "get",
							   "get_attributes", "close"};

/* The mean of phase |p| in ms; the run had at least one (ph->n[p] != 0). */
static double phase_ms(const struct kbench_phases *ph, enum kbench_phase p)
{
	return ms(ph->ns[p]) / (double)ph->n[p];
}

static void print_error(void *arg, const char *name, uint64_t n)
{
	fprintf(arg, "  %-30s %llu\n", name, (unsigned long long)n);
}

static void report_text(const struct kbench_opts *o, const struct kbench_totals *t,
			const char *name_prefix)
{
	printf("keel-bench %s: %u connection(s), %.2f s, TLS %s, KMIP %d.%d, resumption %s\n",
	       kbench_scenario_name(o->scenario), o->concurrency, t->elapsed_s,
	       tls_name(o->tls_version), o->kmip_major, o->kmip_minor,
	       o->resumption ? "on" : "off");
	printf("  ops        %llu (%.1f/s)\n", (unsigned long long)t->ops, rate(t));
	printf("  handshakes %llu (%llu resumed)\n", (unsigned long long)t->handshakes,
	       (unsigned long long)t->resumed);
	if (o->scenario == KBENCH_BOOT_STORM) {
		printf("  time to last key %.3f s (%u hosts x %u keys)\n", t->elapsed_s, o->hosts,
		       o->keys);
	}
	if (name_prefix != NULL) {
		printf("  objects    %u named %s-0 .. %s-%u\n", o->objects, name_prefix,
		       name_prefix, o->objects - 1);
	}
	printf("  errors     %llu\n", (unsigned long long)t->failed);
	each_error(&t->errors, print_error, stdout);
	printf("  latency ms");
	for (size_t i = 0; i < NUM_PERCENTILES; i++) {
		printf("  %s %.3f", percentiles[i].label,
		       ms(kbench_hist_percentile(&t->hist, percentiles[i].p)));
	}
	printf("  max %.3f\n", ms(t->hist.max * (t->hist.total != 0)));
	if (t->phases.n[KBENCH_PHASE_CLOSE] != 0) {
		printf("  mean ms   ");
		for (unsigned p = 0; p < KBENCH_NUM_PHASES; p++) {
			if (t->phases.n[p] != 0) {
				printf("  %s %.3f", phase_names[p], phase_ms(&t->phases, p));
			}
		}
		putchar('\n');
	}
}

static void json_error(void *arg, const char *name, uint64_t n)
{
	json_object_set_new(arg, name, json_integer((json_int_t)n));
}

/* {"connect": ms, ...}: a phase the run never completed is left out. */
static json_t *phases_json(const struct kbench_phases *ph)
{
	json_t *o = json_object();

	for (unsigned p = 0; o != NULL && p < KBENCH_NUM_PHASES; p++) {
		if (ph->n[p] != 0) {
			json_object_set_new(o, phase_names[p], json_real(phase_ms(ph, p)));
		}
	}
	return o;
}

static json_t *report_json(const struct kbench_opts *o, const struct kbench_totals *t,
			   const char *name_prefix)
{
	json_t *errors = json_object(), *j;
	char version[8];

	snprintf(version, sizeof(version), "%d.%d", o->kmip_major, o->kmip_minor);
	j = json_pack("{s:s, s:I, s:f, s:I, s:f, s:I, s:I, s:s, s:s, s:b}", "scenario",
		      kbench_scenario_name(o->scenario), "concurrency", (json_int_t)o->concurrency,
		      "elapsed_s", t->elapsed_s, "ops", (json_int_t)t->ops, "ops_per_sec", rate(t),
		      "errors", (json_int_t)t->failed, "handshakes", (json_int_t)t->handshakes,
		      "tls", tls_name(o->tls_version), "kmip_version", version, "resumption",
		      o->resumption);

	if (j == NULL || errors == NULL) {
		json_decref(errors);
		return j;
	}
	for (size_t i = 0; i < NUM_PERCENTILES; i++) {
		json_object_set_new(
		    j, percentiles[i].key,
		    json_real(ms(kbench_hist_percentile(&t->hist, percentiles[i].p))));
	}
	json_object_set_new(j, "max_ms", json_real(ms(t->hist.max * (t->hist.total != 0))));
	json_object_set_new(j, "resumed", json_integer((json_int_t)t->resumed));
	if (o->scenario == KBENCH_BOOT_STORM) {
		/* Every host starts at once: the run ends with the last host's last key. */
		json_object_set_new(j, "time_to_last_key_s", json_real(t->elapsed_s));
	}
	if (name_prefix != NULL) { /* for a later run's --names */
		json_object_set_new(j, "name_prefix", json_string(name_prefix));
	}
	each_error(&t->errors, json_error, errors);
	json_object_set_new(j, "errors_by_reason", errors);
	if (t->phases.n[KBENCH_PHASE_CLOSE] != 0) {
		json_object_set_new(j, "phases_mean_ms", phases_json(&t->phases));
	}
	return j;
}

void kbench_report(const struct kbench_opts *o, const struct kbench_totals *t,
		   const char *name_prefix)
{
	json_t *j;

	if (!o->json) {
		report_text(o, t, name_prefix);
		return;
	}
	if ((j = report_json(o, t, name_prefix)) == NULL ||
	    json_dumpf(j, stdout, JSON_COMPACT) != 0) {
		fprintf(stderr, "keel-bench: cannot write the JSON report\n");
	}
	putchar('\n');
	json_decref(j);
}
