/*
 * keel-bench's command line: parsed into a struct with every default filled
 * in, or refused with a message naming the option at fault.
 */
#ifndef KEEL_BENCH_OPTIONS_H
#define KEEL_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KBENCH_WUR	__attribute__((warn_unused_result))
#define KBENCH_NAME_MAX 64 /* locate's name prefix, with its NUL */

enum kbench_scenario {
	KBENCH_GET,
	KBENCH_CREATE,
	KBENCH_VCENTER_TASK,
	KBENCH_BOOT_STORM,
	KBENCH_LOCATE,
	KBENCH_MIXED,
	KBENCH_IDLE,
	KBENCH_SERVE, /* not a scenario: the TLS echo server of serve.c */
	KBENCH_NUM_SCENARIOS,
};

/* The command-line name of |s| ("vcenter-task"). */
const char *kbench_scenario_name(enum kbench_scenario s);

struct kbench_opts {
	enum kbench_scenario scenario;
	char host[256];
	char port[8];
	const char *ca, *cert, *key; /* point into argv */
	unsigned concurrency;	     /* client threads; boot-storm: one per host */
	double duration;	     /* seconds, when count is 0 */
	uint64_t count;		     /* operations (tasks, for vcenter-task) in all */
	bool json;
	const char *plot; /* --plot PREFIX: PNG files PREFIX-time.png, PREFIX-cdf.png */
	int tls_version;  /* TLS1_2_VERSION, TLS1_3_VERSION, or 0 for either */
	bool resumption;
	int kmip_major, kmip_minor;
	unsigned hosts, keys;		  /* boot-storm */
	unsigned ratio_get, ratio_create; /* mixed */
	unsigned objects;		  /* locate: objects created first */
	const char *names;		  /* locate: PREFIX of objects made before; none made */
	bool help;			  /* --help: nothing else is checked */
};

#define KBENCH_E_USAGE -1

/*
 * Parses argv[1..argc-1]. On KBENCH_E_USAGE, |err| (|err_len| bytes) says
 * why. With --help alone, out->help is set and 0 returned.
 */
int kbench_opts_parse(int argc, char *const argv[], struct kbench_opts *out, char *err,
		      size_t err_len) KBENCH_WUR;

/* The --help text. */
extern const char kbench_usage[];

#endif /* KEEL_BENCH_OPTIONS_H */
