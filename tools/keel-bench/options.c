/*
 * Options are a const table of { name, parser }; each parser checks its own
 * value, and check_combination() the rules between options.
 */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/tls1.h>

#define DEFAULT_DURATION 10.0
#define MAX_THREADS	 10000u

const char kbench_usage[] =
    "usage: keel-bench SCENARIO --target HOST:PORT --ca F --cert F --key F\n"
    "                  [--concurrency N] [--duration SECONDS | --count N] [--json]\n"
    "                  [--plot PREFIX]\n"
    "                  [--tls 1.2|1.3] [--no-resumption] [--kmip-version 1.1|1.4|2.0|2.1]\n"
    "                  [--hosts N --keys M] [--ratio GET:CREATE] [--objects N]\n"
    "                  [--names PREFIX]\n"
    "\n"
    "Scenarios:\n"
    "  get           Get over persistent connections, round-robin over 16 keys made first\n"
    "  create        Create (AES-256) over persistent connections\n"
    "  vcenter-task  per task a new TLS connection: Discover Versions, Get,\n"
    "                Get Attributes State, close (VCENTER.md §1)\n"
    "  boot-storm    --hosts N (default 100) connect at once, each Gets --keys M\n"
    "                (default 4) keys, then leaves; one operation is one host\n"
    "  locate        Locate by Name among --objects N (default 1000) made first,\n"
    "                named PREFIX-0 .. PREFIX-<N-1> (the report gives PREFIX); with\n"
    "                --names PREFIX, among those an earlier run made (none made)\n"
    "  mixed         Get and Create on persistent connections, --ratio (default 9:1)\n"
    "  idle          --concurrency N connections, each sends Discover Versions, then\n"
    "                all stay open and idle for --duration seconds; \"IDLE N\" on\n"
    "                stderr once all are open (to measure the server's memory)\n"
    "\n"
    "keel-bench serve --target HOST:PORT --ca F --cert F --key F [--tls V] [--no-resumption]\n"
    "  is the transport ceiling: a TLS server (port 0: any; prints READY <port>)\n"
    "  answering every request with one fixed response the size of a Get's.\n"
    "\n"
    "--plot PREFIX draws PREFIX-time.png (ops/s, mean and max latency per 100 ms)\n"
    "and PREFIX-cdf.png (latency distribution) with gnuplot.\n"
    "boot-storm reports the time from the start to the last host's last key.\n"
    "vcenter-task and boot-storm report the mean time of each part of a task:\n"
    "connect (TCP and TLS), each request's round trip, close (phases_mean_ms).\n"
    "\n"
    "Defaults: --concurrency 1, --duration 10, TLS 1.2 or 1.3, resumption on,\n"
    "KMIP 1.1 (as vCenter sends). --count N is the total over all connections.\n"
    "Exit status: 0 all operations succeeded; 1 some failed (counted by KMIP\n"
    "Result Reason); 2 usage error; 3 setup failed (connection, TLS, first keys);\n"
    "4 the plots could not be drawn.\n";

static const char *const scenario_names[KBENCH_NUM_SCENARIOS] = {
    [KBENCH_GET] = "get",
    [KBENCH_CREATE] = "create",
    [KBENCH_VCENTER_TASK] = "vcenter-task",
    [KBENCH_BOOT_STORM] = "boot-storm",
    [KBENCH_LOCATE] = "locate",
    [KBENCH_MIXED] = "mixed",
    [KBENCH_IDLE] = "idle",
    [KBENCH_SERVE] = "serve",
};

const char *kbench_scenario_name(enum kbench_scenario s)
{
	return s < KBENCH_NUM_SCENARIOS ? scenario_names[s] : "?";
}

__attribute__((format(printf, 3, 4))) static int usage_error(char *err, size_t err_len,
							     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return KBENCH_E_USAGE;
}

/* A decimal integer in [min, max], nothing after it. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (s[0] < '0' || s[0] > '9') {
		return KBENCH_E_USAGE;
	}
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		return KBENCH_E_USAGE;
	}
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	uint64_t v;

	if (parse_u64(s, 1, max, &v) != 0) {
		return KBENCH_E_USAGE;
	}
	*out = (unsigned)v;
	return 0;
}

static int opt_target(struct kbench_opts *o, const char *v)
{
	const char *colon = strrchr(v, ':');
	const char *host = v, *host_end = colon;
	uint64_t port;

	/* Port 0 is for serve alone: check_combination(). */
	if (colon == NULL || parse_u64(colon + 1, 0, 65535, &port) != 0) {
		return KBENCH_E_USAGE;
	}
	if (host[0] == '[' && host_end > host && host_end[-1] == ']') { /* [::1]:5696 */
		host++;
		host_end--;
	}
	if (host_end == host || (size_t)(host_end - host) >= sizeof(o->host)) {
		return KBENCH_E_USAGE;
	}
	memcpy(o->host, host, (size_t)(host_end - host));
	o->host[host_end - host] = '\0';
	snprintf(o->port, sizeof(o->port), "%u", (unsigned)port);
	return 0;
}

static int opt_ca(struct kbench_opts *o, const char *v)
{
	o->ca = v;
	return 0;
}

static int opt_cert(struct kbench_opts *o, const char *v)
{
	o->cert = v;
	return 0;
}

static int opt_key(struct kbench_opts *o, const char *v)
{
	o->key = v;
	return 0;
}

static int opt_concurrency(struct kbench_opts *o, const char *v)
{
	return parse_uint(v, MAX_THREADS, &o->concurrency);
}

static int opt_duration(struct kbench_opts *o, const char *v)
{
	char *end;

	errno = 0;
	o->duration = strtod(v, &end);
	return errno == 0 && end != v && *end == '\0' && o->duration > 0 && o->duration <= 86400
		   ? 0
		   : KBENCH_E_USAGE;
}

static int opt_count(struct kbench_opts *o, const char *v)
{
	return parse_u64(v, 1, UINT64_MAX / 2, &o->count);
}

static int opt_json(struct kbench_opts *o, const char *v)
{
	(void)v;
	o->json = true;
	return 0;
}

static int opt_plot(struct kbench_opts *o, const char *v)
{
	/* The prefix goes into gnuplot's script between single quotes. */
	o->plot = v;
	return v[0] != '\0' && strpbrk(v, "'\n") == NULL ? 0 : KBENCH_E_USAGE;
}

static int opt_tls(struct kbench_opts *o, const char *v)
{
	if (strcmp(v, "1.2") == 0) {
		o->tls_version = TLS1_2_VERSION;
	} else if (strcmp(v, "1.3") == 0) {
		o->tls_version = TLS1_3_VERSION;
	} else {
		return KBENCH_E_USAGE;
	}
	return 0;
}

static int opt_no_resumption(struct kbench_opts *o, const char *v)
{
	(void)v;
	o->resumption = false;
	return 0;
}

static int opt_kmip_version(struct kbench_opts *o, const char *v)
{
	static const char *const versions[] = {"1.1", "1.4", "2.0", "2.1"};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (strcmp(v, versions[i]) == 0) {
			o->kmip_major = v[0] - '0';
			o->kmip_minor = v[2] - '0';
			return 0;
		}
	}
	return KBENCH_E_USAGE;
}

static int opt_hosts(struct kbench_opts *o, const char *v)
{
	return parse_uint(v, MAX_THREADS, &o->hosts);
}

static int opt_keys(struct kbench_opts *o, const char *v)
{
	return parse_uint(v, 1000000, &o->keys);
}

static int opt_objects(struct kbench_opts *o, const char *v)
{
	return parse_uint(v, 100000000, &o->objects);
}

/* A prefix an earlier locate run reported: it must fit, with its numbers, in a Name. */
static int opt_names(struct kbench_opts *o, const char *v)
{
	if (v[0] == '\0' || strlen(v) >= KBENCH_NAME_MAX) {
		return KBENCH_E_USAGE;
	}
	o->names = v;
	return 0;
}

/* GET:CREATE; one side may be 0 (0:1 is create alone), not both. */
static int opt_ratio(struct kbench_opts *o, const char *v)
{
	char get[16];
	const char *colon = strchr(v, ':');
	uint64_t g, c;

	if (colon == NULL || (size_t)(colon - v) >= sizeof(get)) {
		return KBENCH_E_USAGE;
	}
	memcpy(get, v, (size_t)(colon - v));
	get[colon - v] = '\0';
	if (parse_u64(get, 0, 1000000, &g) != 0 || parse_u64(colon + 1, 0, 1000000, &c) != 0 ||
	    g + c == 0) {
		return KBENCH_E_USAGE;
	}
	o->ratio_get = (unsigned)g;
	o->ratio_create = (unsigned)c;
	return 0;
}

struct option_def {
	const char *name;
	bool takes_value;
	int (*parse)(struct kbench_opts *o, const char *value);
};

static const struct option_def options[] = {
    {"--target", true, opt_target},
    {"--ca", true, opt_ca},
    {"--cert", true, opt_cert},
    {"--key", true, opt_key},
    {"--concurrency", true, opt_concurrency},
    {"--duration", true, opt_duration},
    {"--count", true, opt_count},
    {"--json", false, opt_json},
    {"--plot", true, opt_plot},
    {"--tls", true, opt_tls},
    {"--no-resumption", false, opt_no_resumption},
    {"--kmip-version", true, opt_kmip_version},
    {"--hosts", true, opt_hosts},
    {"--keys", true, opt_keys},
    {"--objects", true, opt_objects},
    {"--names", true, opt_names},
    {"--ratio", true, opt_ratio},
};

static const struct option_def *find_option(const char *name)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		if (strcmp(options[i].name, name) == 0) {
			return &options[i];
		}
	}
	return NULL;
}

static int parse_scenario(struct kbench_opts *o, const char *name, char *err, size_t err_len)
{
	for (int s = 0; s < KBENCH_NUM_SCENARIOS; s++) {
		if (strcmp(name, scenario_names[s]) == 0) {
			o->scenario = (enum kbench_scenario)s;
			return 0;
		}
	}
	return usage_error(err, err_len, "unknown scenario '%s'", name);
}

static void set_defaults(struct kbench_opts *o)
{
	*o = (struct kbench_opts){
	    .scenario = KBENCH_NUM_SCENARIOS,
	    .resumption = true,
	    .kmip_major = 1,
	    .kmip_minor = 1,
	    .keys = 4,
	    .ratio_get = 9,
	    .ratio_create = 1,
	    .objects = 1000,
	};
}

/* Rules between options, once all are read. */
static int check_combination(struct kbench_opts *o, char *err, size_t err_len)
{
	if (o->scenario == KBENCH_NUM_SCENARIOS) {
		return usage_error(err, err_len, "no scenario given");
	}
	if (o->host[0] == '\0' || o->ca == NULL || o->cert == NULL || o->key == NULL) {
		return usage_error(err, err_len, "--target, --ca, --cert and --key are required");
	}
	if (strcmp(o->port, "0") == 0 && o->scenario != KBENCH_SERVE) {
		return usage_error(err, err_len, "--target needs a port other than 0");
	}
	if (o->count != 0 && o->duration != 0 && o->scenario != KBENCH_IDLE) {
		return usage_error(err, err_len, "--duration and --count exclude each other");
	}
	if (o->scenario == KBENCH_BOOT_STORM) {
		if (o->count != 0 || o->duration != 0 || o->concurrency != 0) {
			return usage_error(err, err_len, "boot-storm takes --hosts and --keys");
		}
		o->hosts = o->hosts != 0 ? o->hosts : 100;
		o->concurrency = o->hosts;
		o->count = o->hosts;
	} else if (o->hosts != 0) {
		return usage_error(err, err_len, "--hosts is for boot-storm");
	}
	if (o->names != NULL && o->scenario != KBENCH_LOCATE) {
		return usage_error(err, err_len, "--names is for locate");
	}
	if (o->scenario == KBENCH_IDLE) {
		if (o->count != 0) {
			return usage_error(err, err_len, "idle takes --concurrency and --duration");
		}
		/* One Discover Versions per connection; --duration is how long they idle. */
		o->concurrency = o->concurrency != 0 ? o->concurrency : 1;
		o->count = o->concurrency;
		o->duration = o->duration != 0 ? o->duration : DEFAULT_DURATION;
	}
	o->concurrency = o->concurrency != 0 ? o->concurrency : 1;
	o->duration = o->count == 0 && o->duration == 0 ? DEFAULT_DURATION : o->duration;
	return 0;
}

static int parse_one(struct kbench_opts *o, int argc, char *const argv[], int *i, char *err,
		     size_t err_len)
{
	const char *arg = argv[*i];
	const struct option_def *def;

	if (arg[0] != '-') {
		if (o->scenario != KBENCH_NUM_SCENARIOS) {
			return usage_error(err, err_len, "unexpected argument '%s'", arg);
		}
		return parse_scenario(o, arg, err, err_len);
	}
	if ((def = find_option(arg)) == NULL) {
		return usage_error(err, err_len, "unknown option '%s'", arg);
	}
	if (def->takes_value && *i + 1 >= argc) {
		return usage_error(err, err_len, "%s needs a value", arg);
	}
	if (def->parse(o, def->takes_value ? argv[++*i] : NULL) != 0) {
		return usage_error(err, err_len, "bad value '%s' for %s", argv[*i], arg);
	}
	return 0;
}

int kbench_opts_parse(int argc, char *const argv[], struct kbench_opts *out, char *err,
		      size_t err_len)
{
	int r;

	set_defaults(out);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			out->help = true;
			return 0;
		}
	}
	for (int i = 1; i < argc; i++) {
		if ((r = parse_one(out, argc, argv, &i, err, err_len)) != 0) {
			return r;
		}
	}
	return check_combination(out, err, err_len);
}
