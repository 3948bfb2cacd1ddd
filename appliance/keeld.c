/*
 * keeld: the KMIP server vCenter and ESXi use as their key provider.
 * This file is the process: options, hardening, then the daemon loop
 * (daemon.c) with the KMIP engine as request handler.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "config.h"
#include "daemon.h"
#include "engine/engine.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: keeld [--config FILE] [--log-level LEVEL]\n"
		   "  -c, --config FILE      configuration (default " KEEL_CONFIG_DEFAULT_PATH ")\n"
		   "  -l, --log-level LEVEL  error, warning, notice, info or debug; overrides\n"
		   "                         the file's log_level\n"
		   "  -h, --help             this text\n"
		   "  -V, --version          print the version\n"
		   "Signals: SIGHUP reloads certificates and client registrations;\n"
		   "SIGTERM stops accepting, answers in-flight requests and exits 0.\n");
}

/* Key material passes through this process: it must never reach a core
 * file or another process's ptrace. Many connections need many descriptors. */
static int harden(void)
{
	struct rlimit core = {0, 0}, nofile;

	if (setrlimit(RLIMIT_CORE, &core) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		keel_err("cannot disable core dumps");
		return -1;
	}
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
			keel_warn("cannot raise the open file limit");
		}
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct keel_daemon_opts *opts)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	enum keel_log_level level;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:l:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opts->config_path = optarg;
			break;
		case 'l':
			if (keel_log_level_parse(optarg, &level) != 0) {
				fprintf(stderr, "keeld: unknown log level %s\n", optarg);
				return 2;
			}
			keel_log_set_level(level);
			opts->log_level_forced = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("keeld %s\n", KEEL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct keel_daemon_opts opts = {
	    .config_path = KEEL_CONFIG_DEFAULT_PATH,
	    .handler = keel_engine_handle,
	};
	int r;

	keel_log_init(KEEL_LOG_INFO);
	if ((r = parse_args(argc, argv, &opts)) >= 0) {
		return r;
	}
	if (harden() != 0) {
		return 1;
	}
	keel_info("keeld %s starting with %s", KEEL_VERSION, opts.config_path);
	return keel_daemon_run(&opts);
}
