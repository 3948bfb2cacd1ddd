/* keelctl: dispatches to the subcommand named on the command line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keelctl.h"

static const struct keelctl_cmd commands[] = {
    {"status", "keeld at a glance: token, CRK, store, clients, objects", keelctl_status},
    {"keys", "find, show, activate, revoke and destroy managed keys", keelctl_keys},
    {"grant", "let a client use another client's key, or all its keys", keelctl_grant},
    {"revoke-grant", "take a grant away", keelctl_revoke_grant},
    {"grants", "list grants", keelctl_grants},
    {"audit", "show and verify the hash-chained audit trail", keelctl_audit},
    {"crk", "the CRK's versions and its rotation, through keeld", keelctl_crk},
    {"mirror", "the IBM Key Protect mirror: enable, status, sync", keelctl_mirror},
    {"recover", "restore a fresh appliance's objects from Key Protect", keelctl_recover},
    {"backup", "encrypted backups of keeld's store and configuration", keelctl_backup},
    {"client", "registered clients, trusted CAs, CSR signing, issued certificates", keelctl_client},
    {"server-cert", "keeld's certificate: show, export, renew", keelctl_server_cert},
    {"ca", "export Keel's CA certificate", keelctl_ca},
    {"enrol", "become a fresh appliance's first administrator with its enrolment code",
     keelctl_enrol},
    {"hsm", "the PKCS#11 token and its customer root key (CRK) versions", keelctl_hsm},
    {"ttlv", "convert and print KMIP messages (TTLV, XML, JSON)", keelctl_ttlv},
};

#define NUM_COMMANDS (sizeof(commands) / sizeof(commands[0]))

void keelctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("keelctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: keelctl [--help] [--version] [--config FILE] [--json] COMMAND "
		   "[ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < NUM_COMMANDS; i++) {
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	}
	fprintf(f, "\nRun 'keelctl COMMAND --help' for a command's options.\n");
}

/* The options keelctl takes before COMMAND: those every command talking to keeld reads. */
static size_t global_option_len(char **argv, int i, int argc)
{
	if (strcmp(argv[i], "--json") == 0 || strncmp(argv[i], "--config=", 9) == 0) {
		return 1;
	}
	if (strcmp(argv[i], "--config") == 0) {
		return i + 1 < argc ? 2 : 0;
	}
	return 0;
}

/*
 * "keelctl --config FILE status" is "keelctl status --config FILE": the
 * global options move behind the command's name, where its own getopt reads
 * them. Returns the new argv (argc unchanged), or NULL when memory ran out.
 */
static char **command_first(int argc, char **argv, int command)
{
	char **out = calloc((size_t)argc + 1, sizeof(*out));
	int n = 0;

	if (out == NULL) {
		return NULL;
	}
	out[n++] = argv[command];
	for (int i = 1; i < command; i++) {
		out[n++] = argv[i];
	}
	for (int i = command + 1; i < argc; i++) {
		out[n++] = argv[i];
	}
	return out;
}

static int run_command(int argc, char **argv, int command)
{
	char **args;
	int r;

	for (size_t i = 0; i < NUM_COMMANDS; i++) {
		if (strcmp(argv[command], commands[i].name) != 0) {
			continue;
		}
		if ((args = command_first(argc, argv, command)) == NULL) {
			keelctl_err("out of memory");
			return EX_OSERR;
		}
		r = commands[i].run(argc - 1, args);
		free(args);
		return r;
	}
	keelctl_err("unknown command '%s'", argv[command]);
	usage(stderr);
	return EX_USAGE;
}

int main(int argc, char **argv)
{
	int command = 1;
	size_t len;

	while (command < argc && (len = global_option_len(argv, command, argc)) > 0) {
		command += (int)len;
	}
	if (command > 1) {
		if (command >= argc) {
			usage(stderr);
			return EX_USAGE;
		}
		return run_command(argc, argv, command);
	}
	if (argc < 2) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("keelctl %s\n", KEEL_VERSION);
		return 0;
	}
	return run_command(argc, argv, 1);
}
