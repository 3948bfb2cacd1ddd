/*
 * keelctl: the operator's command line. One file per subcommand, each
 * registered in the const table of main.c.
 *
 * Exit codes follow sysexits(3): 0 success, EX_USAGE for a bad command line,
 * EX_DATAERR for input that does not parse, EX_NOINPUT for a file that cannot
 * be read, EX_IOERR for output that cannot be written, EX_SOFTWARE for an
 * internal failure.
 */
#ifndef KEELCTL_H
#define KEELCTL_H

#include <stdio.h>
#include <sysexits.h>

struct keelctl_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
};

int keelctl_backup(int argc, char **argv);
int keelctl_crk(int argc, char **argv);
int keelctl_enrol(int argc, char **argv);
int keelctl_mirror(int argc, char **argv);
int keelctl_recover(int argc, char **argv);
int keelctl_hsm(int argc, char **argv);
int keelctl_status(int argc, char **argv);
int keelctl_keys(int argc, char **argv);
int keelctl_grant(int argc, char **argv);
int keelctl_revoke_grant(int argc, char **argv);
int keelctl_grants(int argc, char **argv);
int keelctl_audit(int argc, char **argv);
int keelctl_client(int argc, char **argv);
int keelctl_server_cert(int argc, char **argv);
int keelctl_ca(int argc, char **argv);
int keelctl_ttlv(int argc, char **argv);

/* Prints "keelctl: " and a formatted message to stderr. */
void keelctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
