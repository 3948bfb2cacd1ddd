/*
 * keelctl audit show|verify: the hash-chained audit trail (store.h), read and
 * checked through the admin API's /v1/audit.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "keelctl.h"

enum {
	OPT_CLIENT = KEELCTL_OPT_FIRST_OWN,
	OPT_OP,
	OPT_UID,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_LIMIT,
	OPT_ANCHOR,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keelctl audit show [filters] [options]\n"
		"       keelctl audit verify [options]\n\n"
		"show: the newest records first. Filters:\n"
		"  --client ID      who acted: a client's name or fingerprint, or an\n"
		"                   administrator (a name, cert:FP, local:uid=N)\n"
		"  --op NAME        the operation: Create, Get, Destroy, Grant, RevokeGrant, ...\n"
		"  --uid UID        the object\n"
		"  --since TIME, --until TIME   POSIX seconds or 2026-11-24T01:00:00Z\n"
		"  --limit N        at most N records (default 100)\n"
		"verify: recomputes every record's hash; exits 0 when the trail is intact,\n"
		"  1 naming the first altered, missing or inserted record.\n\n"
		"options:\n" KEELCTL_API_USAGE);
}

/* One filter option into the query string |path|. */
static int add_filter(char *path, size_t cap, int c, const char *arg)
{
	static const char *const keys[] = {"client", "op",    "uid",   "since",
					   "until",  "limit", "anchor"};
	char num[24];
	long long t;

	if (c == OPT_SINCE || c == OPT_UNTIL) {
		if (keelctl_parse_time(arg, &t) != 0) {
			keelctl_err("bad time '%s': POSIX seconds or YYYY-MM-DDTHH:MM:SSZ", arg);
			return EX_USAGE;
		}
		snprintf(num, sizeof(num), "%lld", t);
		arg = num;
	}
	return keelctl_query_add(path, cap, keys[c - OPT_CLIENT], arg) == 0 ? 0 : EX_USAGE;
}

static void print_record(const json_t *rec)
{
	const char *reason = json_string_value(json_object_get(rec, "reason"));
	const char *detail = json_string_value(json_object_get(rec, "detail"));
	const char *uid = json_string_value(json_object_get(rec, "uid"));
	char t[24];

	printf("%6lld %s %-20.20s %-16s %-36s %s%s%s%s%s\n",
	       (long long)json_integer_value(json_object_get(rec, "id")),
	       keelctl_format_time(json_integer_value(json_object_get(rec, "time")), t),
	       json_string_value(json_object_get(rec, "client")),
	       json_string_value(json_object_get(rec, "operation")), uid != NULL ? uid : "-",
	       json_string_value(json_object_get(rec, "result")), reason != NULL ? " " : "",
	       reason != NULL ? reason : "", detail != NULL ? "  " : "",
	       detail != NULL ? detail : "");
}

static int show(struct keelctl_api *api, const char *path)
{
	json_t *out = NULL, *rec;
	size_t i;
	int r = keelctl_api_call(api, "GET", path, NULL, &out);

	if (r == 0 && api->json) {
		keelctl_print_json(out);
	} else if (r == 0) {
		json_array_foreach(json_object_get(out, "records"), i, rec)
		{
			print_record(rec);
		}
	}
	json_decref(out);
	return r;
}

/* The API's fault, said of a record. */
static const char *fault_words(const char *fault)
{
	static const char *const words[][2] = {
	    {"altered", "is altered"},
	    {"missing", "is missing (deleted)"},
	    {"truncated", "and every later one are missing (deleted)"},
	    {"anchor mismatch", "does not carry the anchored hash (the chain was rewritten)"},
	};

	for (size_t i = 0; fault != NULL && i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(fault, words[i][0]) == 0) {
			return words[i][1];
		}
	}
	return "is bad";
}

static int verify(struct keelctl_api *api, const char *path)
{
	json_t *out = NULL;
	int r = keelctl_api_call(api, "GET", path, NULL, &out);
	long long records = json_integer_value(json_object_get(out, "records"));
	long long bad = json_integer_value(json_object_get(out, "first_bad_record"));

	if (r != 0) {
		json_decref(out);
		return r;
	}
	r = json_is_true(json_object_get(out, "intact")) ? 0 : 1;
	if (api->json) {
		keelctl_print_json(out);
	} else if (r == 0) {
		printf("audit trail intact: %lld records\n"
		       "anchor to keep for a later --anchor: %s\n",
		       records, json_string_value(json_object_get(out, "head")));
	} else {
		printf("audit trail BROKEN: record %lld %s (%lld bad of %lld records read)\n", bad,
		       fault_words(json_string_value(json_object_get(out, "fault"))),
		       (long long)json_integer_value(json_object_get(out, "bad_records")), records);
	}
	json_decref(out);
	return r;
}

int keelctl_audit(int argc, char **argv)
{
	static const struct option opts[] = {KEELCTL_API_LONGOPTS,
					     {"client", required_argument, NULL, OPT_CLIENT},
					     {"op", required_argument, NULL, OPT_OP},
					     {"uid", required_argument, NULL, OPT_UID},
					     {"since", required_argument, NULL, OPT_SINCE},
					     {"until", required_argument, NULL, OPT_UNTIL},
					     {"limit", required_argument, NULL, OPT_LIMIT},
					     {"anchor", required_argument, NULL, OPT_ANCHOR},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct keelctl_api api = {0};
	char path[2048];
	const char *sub = argc > 1 ? argv[1] : "";
	int c, r, filters = 0, anchors = 0;

	if (strcmp(sub, "show") != 0 && strcmp(sub, "verify") != 0) {
		bool help = strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0;

		usage(help ? stdout : stderr);
		return help ? 0 : EX_USAGE;
	}
	snprintf(path, sizeof(path), "%s", sub[0] == 's' ? "/v1/audit" : "/v1/audit/verify");
	while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		if (keelctl_api_option(&api, c, optarg)) {
			continue;
		}
		if (c >= OPT_CLIENT && c <= OPT_ANCHOR) {
			if ((r = add_filter(path, sizeof(path), c, optarg)) != 0) {
				return r;
			}
			filters += c != OPT_ANCHOR;
			anchors += c == OPT_ANCHOR;
			continue;
		}
		usage(c == 'h' ? stdout : stderr);
		return c == 'h' ? 0 : EX_USAGE;
	}
	if (optind != argc - 1 || (sub[0] == 'v' && filters > 0) ||
	    (sub[0] == 's' && anchors > 0)) {
		usage(stderr);
		return EX_USAGE;
	}
	if (sub[0] == 's') {
		return show(&api, path);
	}
	return verify(&api, path);
}
