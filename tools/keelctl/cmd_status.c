/* keelctl status: the one screen an on-call operator reads first. */
#include <getopt.h>
#include <stdlib.h>

#include "api.h"
#include "keelctl.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: keelctl status [options]\n\n"
		   "Version, uptime, token and CRK, store, clients, objects and connections of\n"
		   "the running keeld.\n\n" KEELCTL_API_USAGE);
}

static const char *str(const json_t *o, const char *a, const char *b)
{
	const char *s = json_string_value(
	    json_object_get(b != NULL ? json_object_get(o, a) : o, b != NULL ? b : a));

	return s != NULL ? s : "-";
}

static long long num(const json_t *o, const char *a, const char *b)
{
	return (long long)json_integer_value(
	    json_object_get(b != NULL ? json_object_get(o, a) : o, b != NULL ? b : a));
}

static void print_status(const json_t *s)
{
	long long up = num(s, "uptime_seconds", NULL);

	printf("keeld %s, up %lldd %02lld:%02lld:%02lld\n", str(s, "version", NULL), up / 86400,
	       up / 3600 % 24, up / 60 % 60, up % 60);
	printf("  token        %-10s %s, CRK version %lld\n", str(s, "token", "state"),
	       str(s, "token", "label"), num(s, "token", "crk_version"));
	printf("  store        %-10s schema %lld\n", str(s, "store", "state"),
	       num(s, "store", "schema_version"));
	printf("  objects      %lld\n", num(s, "store", "objects"));
	printf("  clients      %lld\n", num(s, "clients", NULL));
	printf("  connections  %lld\n", num(s, "connections", NULL));
}

int keelctl_status(int argc, char **argv)
{
	struct keelctl_api api = {0};
	int r = keelctl_api_options_only(argc, argv, &api, usage);

	if (r >= 0) {
		return r;
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	return keelctl_api_show(&api, "/v1/status", print_status);
}
