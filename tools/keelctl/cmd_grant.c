/*
 * keelctl grant, revoke-grant, grants: let one client identity use another's
 * keys (one key, or all of a client's), through the admin API's /v1/grants.
 * What each level permits is engine/manage.h's policy, repeated in --help.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "keelctl.h"

enum { OPT_UID = KEELCTL_OPT_FIRST_OWN, OPT_CLIENT, OPT_TO, OPT_LEVEL };

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: keelctl grant (--uid UID | --client CLIENT) --to CLIENT [--level use|manage]\n"
	    "       keelctl revoke-grant (--uid UID | --client CLIENT) --to CLIENT\n"
	    "       keelctl grants [--client CLIENT] [--to CLIENT]\n\n"
	    "Shares keys between KMIP clients, each named as keelctl client list shows it,\n"
	    "or by its certificate's SHA-256 fingerprint (a client trusted through a CA).\n"
	    "  --uid UID        one key\n"
	    "  --client CLIENT  every key CLIENT has and will have\n"
	    "  --to CLIENT      the client that may use them (the grantee)\n"
	    "  --level use      (default) find, read and use the keys: Locate, Get, Get\n"
	    "                   Attributes, Check, Encrypt, Decrypt, Sign, MAC, ...\n"
	    "  --level manage   also change their attributes and state (Activate, Revoke,\n"
	    "                   Archive, Recover). No grant permits Destroy or Re-key.\n\n"
	    "options:\n" KEELCTL_API_USAGE);
}

struct grant_args {
	struct keelctl_api api;
	const char *uid, *client, *to, *level;
};

static int parse(int argc, char **argv, struct grant_args *a)
{
	static const struct option opts[] = {KEELCTL_API_LONGOPTS,
					     {"uid", required_argument, NULL, OPT_UID},
					     {"client", required_argument, NULL, OPT_CLIENT},
					     {"to", required_argument, NULL, OPT_TO},
					     {"level", required_argument, NULL, OPT_LEVEL},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (keelctl_api_option(&a->api, c, optarg)) {
			continue;
		}
		switch (c) {
		case OPT_UID:
			a->uid = optarg;
			break;
		case OPT_CLIENT:
			a->client = optarg;
			break;
		case OPT_TO:
			a->to = optarg;
			break;
		case OPT_LEVEL:
			a->level = optarg;
			break;
		default:
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? -1 : EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	return 0;
}

/* grant and revoke-grant: one POST with the grant's key. */
static int change(int argc, char **argv, bool grant)
{
	struct grant_args a = {0};
	json_t *body, *out = NULL;
	int r;

	if ((r = parse(argc, argv, &a)) != 0) {
		return r < 0 ? 0 : r;
	}
	if (a.to == NULL || (a.uid == NULL) == (a.client == NULL) || (!grant && a.level != NULL)) {
		keelctl_err("%s needs --to and exactly one of --uid and --client%s", argv[0],
			    grant ? "" : " (and no --level)");
		return EX_USAGE;
	}
	body = json_pack("{s:s*, s:s*, s:s, s:s*}", "uid", a.uid, "owner", a.client, "grantee",
			 a.to, "level", a.level);
	r = keelctl_api_call(&a.api, "POST", grant ? "/v1/grants" : "/v1/grants/revoke", body,
			     &out);
	if (r == 0 && a.api.json) {
		keelctl_print_json(out);
	} else if (r == 0) {
		printf("%s %s %s: %s\n", grant ? "granted" : "revoked grant of",
		       a.uid != NULL ? "key" : "every key of", a.uid != NULL ? a.uid : a.client,
		       a.to);
	}
	json_decref(body);
	json_decref(out);
	return r;
}

int keelctl_grant(int argc, char **argv)
{
	return change(argc, argv, true);
}

int keelctl_revoke_grant(int argc, char **argv)
{
	return change(argc, argv, false);
}

int keelctl_grants(int argc, char **argv)
{
	struct grant_args a = {0};
	char path[512] = "/v1/grants", t[24];
	json_t *out = NULL, *g;
	size_t i;
	int r;

	if ((r = parse(argc, argv, &a)) != 0) {
		return r < 0 ? 0 : r;
	}
	if (keelctl_query_add(path, sizeof(path), "owner", a.client) != 0 ||
	    keelctl_query_add(path, sizeof(path), "grantee", a.to) != 0) {
		return EX_USAGE;
	}
	if ((r = keelctl_api_call(&a.api, "GET", path, NULL, &out)) == 0 && a.api.json) {
		keelctl_print_json(out);
	} else if (r == 0) {
		json_array_foreach(json_object_get(out, "grants"), i, g)
		{
			const char *uid = json_string_value(json_object_get(g, "uid"));

			printf(
			    "%s  %-6s %s -> %s  by %s\n",
			    keelctl_format_time(json_integer_value(json_object_get(g, "time")), t),
			    json_string_value(json_object_get(g, "level")),
			    uid != NULL ? uid : "(every key)",
			    json_string_value(json_object_get(g, "grantee")),
			    json_string_value(json_object_get(g, "granted_by")));
		}
	}
	json_decref(out);
	return r;
}
