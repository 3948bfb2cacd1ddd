/*
 * keelctl's client of keeld's admin API (appliance/admin). Commands that
 * talk to keeld parse the shared options below, then call keelctl_api_call.
 * By default the request goes over the local UNIX socket named in keeld.conf
 * (root only); with --cert/--key it goes over HTTPS with that admin identity.
 */
#ifndef KEELCTL_API_H
#define KEELCTL_API_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

/* getopt_long codes of the shared options; a command's own start after them. */
enum {
	KEELCTL_OPT_CONFIG = 0x100,
	KEELCTL_OPT_CERT,
	KEELCTL_OPT_KEY,
	KEELCTL_OPT_CACERT,
	KEELCTL_OPT_URL,
	KEELCTL_OPT_JSON,
	KEELCTL_OPT_FIRST_OWN, /* first free code for a command's own options */
};

/* The shared options, to put at the head of a command's longopts table. */
/* clang-format off */
#define KEELCTL_API_LONGOPTS                                            \
	{"config", required_argument, NULL, KEELCTL_OPT_CONFIG},        \
	{"cert", required_argument, NULL, KEELCTL_OPT_CERT},            \
	{"key", required_argument, NULL, KEELCTL_OPT_KEY},              \
	{"admin-cert", required_argument, NULL, KEELCTL_OPT_CERT},      \
	{"admin-key", required_argument, NULL, KEELCTL_OPT_KEY},        \
	{"cacert", required_argument, NULL, KEELCTL_OPT_CACERT},        \
	{"url", required_argument, NULL, KEELCTL_OPT_URL},              \
	{"json", no_argument, NULL, KEELCTL_OPT_JSON}
/* clang-format on */

/* The shared options' help lines, for a command's usage text. */
#define KEELCTL_API_USAGE                                                                          \
	"  --config FILE    keeld.conf naming the admin socket and URL\n"                          \
	"                   (default /etc/keel/keeld.conf)\n"                                      \
	"  --cert F --key F an admin client certificate: use HTTPS, not the local socket\n"        \
	"                   (--admin-cert/--admin-key where --cert names another file)\n"          \
	"  --cacert FILE    CA of keeld's certificate (default: tls.certificate of keeld.conf)\n"  \
	"  --url URL        https://HOST:PORT of the admin API (default: admin.listen[0])\n"       \
	"  --json           machine output: the API's JSON, one line\n"

struct keelctl_api {
	const char *config;
	const char *cert, *key, *cacert, *url;
	bool json;
};

/* 1 when |ch| was a shared option (stored in |api|), 0 otherwise. */
int keelctl_api_option(struct keelctl_api *api, int ch, const char *arg);

/* For commands with only the shared options and --help: parses them into
 * |api|; -1 to go on (operands from optind), else the exit status, after
 * usage() on stdout (--help) or stderr. */
int keelctl_api_options_only(int argc, char **argv, struct keelctl_api *api,
			     void (*usage)(FILE *f));

/*
 * Sends METHOD PATH with |body| (may be NULL; not consumed) and stores the
 * answer's JSON in *out (json_decref; may be NULL on failure). Returns 0 for a
 * 2xx answer, else a sysexits code after printing the API's error message:
 * EX_DATAERR 400, EX_NOPERM 401/403, EX_NOINPUT 404, EX_CANTCREAT 409,
 * EX_UNAVAILABLE when keeld cannot be reached or answers 503, EX_SOFTWARE
 * otherwise; EX_CONFIG when keeld.conf cannot be read.
 */
int keelctl_api_call(const struct keelctl_api *api, const char *method, const char *path,
		     json_t *body, json_t **out);

/* Appends "?key=value" or "&key=value" (value URL-encoded; NULL: nothing) to |buf|. */
int keelctl_query_add(char *buf, size_t cap, const char *key, const char *value);
/* Appends |segment| URL-encoded (a path component such as a UID) to |buf|. */
int keelctl_path_add(char *buf, size_t cap, const char *segment);
/* POSIX seconds, or an ISO 8601 UTC date ("2026-11-24T01:00:00Z", "2026-11-24"). */
int keelctl_parse_time(const char *s, long long *out);
/* ISO 8601 UTC of |t|, or "-" for 0. */
const char *keelctl_format_time(long long t, char buf[static 24]);
/*
 * As keelctl_api_call with raw bytes both ways (a backup file): sends |body|
 * (body_len bytes, none if NULL) as |content_type|, and stores a 2xx answer's
 * bytes in *out (malloc'd, freed with free()) and their length in *out_len.
 */
int keelctl_api_send(const struct keelctl_api *api, const char *method, const char *path,
		     const void *body, size_t body_len, const char *content_type, char **out,
		     size_t *out_len);

/* GET |path| and print the answer: print(answer), or its JSON with --json. */
int keelctl_api_show(const struct keelctl_api *api, const char *path,
		     void (*print)(const json_t *answer));

/*
 * Follows a background job (a CRK rotation, a recovery): GET |path| every
 * half second until progress(answer, &done, &total) says it no longer runs,
 * drawing a bar on stderr when it is a terminal, else (with |count_lines|)
 * a "done/total" line whenever done moves. *out gets the last answer.
 */
int keelctl_api_follow(const struct keelctl_api *api, const char *path,
		       bool (*progress)(const json_t *answer, long long *done, long long *total),
		       bool count_lines, json_t **out);

/* An answer's field for a table: its string, "-" when absent or empty; its
 * integer, 0 when absent. */
const char *keelctl_field_str(const json_t *o, const char *key);
long long keelctl_field_num(const json_t *o, const char *key);

/* Prints |j| as one line of JSON (the --json output of every command). */
void keelctl_print_json(const json_t *j);

/* The whole of a text file (a PEM), NUL-terminated, malloc'd; EX_NOINPUT if unreadable. */
int keelctl_read_text(const char *path, char **out);

/* Writes |text| to |path| with |mode| (0600 for keys), replacing it; EX_CANTCREAT. */
int keelctl_write_text(const char *path, const char *text, unsigned mode);

/* Parses a command's options: the shared ones into |api|, the rest handed to
 * |own| (may be NULL) with |ctx|; --help prints |usage|. Returns -1 to go on,
 * or the exit status (0 after --help, EX_USAGE). */
int keelctl_api_getopt(int argc, char **argv, const struct option *opts, struct keelctl_api *api,
		       int (*own)(void *ctx, int ch, const char *arg), void *ctx,
		       void (*usage)(FILE *f));

#endif
