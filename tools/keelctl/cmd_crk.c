/* keelctl crk status | rotate [--wait]: the CRK's versions and its rotation, through keeld. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "keelctl.h"

enum { OPT_WAIT = KEELCTL_OPT_FIRST_OWN };

static void usage(FILE *f)
{
	fprintf(f, "usage: keelctl crk status [options]\n"
		   "       keelctl crk rotate [--wait] [options]\n\n"
		   "status: the CRK versions in the token, the active one, the objects wrapped\n"
		   "by each, and the progress of the last rotation.\n"
		   "rotate: makes CRK version N+1, the one every new key is wrapped with, and\n"
		   "rewraps every stored key under it in the background while KMIP keeps\n"
		   "serving; older versions leave the token once no key refers to them.\n"
		   "  --wait           follow the rotation to its end (a progress bar on a\n"
		   "                   terminal, one line otherwise)\n" KEELCTL_API_USAGE);
}

static void print_status(const json_t *s)
{
	const json_t *rot = json_object_get(s, "rotation"), *v;
	size_t i;

	printf("active CRK version %lld\n", keelctl_field_num(s, "active"));
	printf("%-8s %-9s %-7s %-7s %-21s %s\n", "VERSION", "IN TOKEN", "ACTIVE", "KCV", "CREATED",
	       "OBJECTS");
	json_array_foreach(json_object_get(s, "versions"), i, v)
	{
		printf("%-8lld %-9s %-7s %-7s %-21s %lld\n", keelctl_field_num(v, "version"),
		       json_is_true(json_object_get(v, "in_token")) ? "yes" : "NO",
		       json_is_true(json_object_get(v, "active")) ? "yes" : "no",
		       keelctl_field_str(v, "kcv"), keelctl_field_str(v, "created"),
		       keelctl_field_num(v, "objects"));
	}
	printf("rotation: %s", keelctl_field_str(rot, "state"));
	if (strcmp(keelctl_field_str(rot, "state"), "none") != 0) {
		printf(", to version %lld: %lld of %lld objects rewrapped",
		       keelctl_field_num(rot, "target"), keelctl_field_num(rot, "done"),
		       keelctl_field_num(rot, "total"));
	}
	if (keelctl_field_num(rot, "skipped") != 0) {
		printf(", %lld could not be (see keeld's log)", keelctl_field_num(rot, "skipped"));
	}
	putchar('\n');
}

/* The rotation's progress, for keelctl_api_follow; true while it runs. */
static bool rotation_progress(const json_t *answer, long long *done, long long *total)
{
	const json_t *rot = json_object_get(answer, "rotation");

	*done = keelctl_field_num(rot, "done");
	*total = keelctl_field_num(rot, "total");
	return strcmp(keelctl_field_str(rot, "state"), "running") == 0;
}

static int rotate(const struct keelctl_api *api, bool wait)
{
	json_t *out = NULL, *st = NULL;
	const json_t *rot;
	int r;

	if ((r = keelctl_api_call(api, "POST", "/v1/crk/rotate", NULL, &out)) != 0 ||
	    (wait &&
	     (r = keelctl_api_follow(api, "/v1/crk", rotation_progress, false, &st)) != 0)) {
		goto out;
	}
	rot = json_object_get(st, "rotation");
	if (api->json) {
		keelctl_print_json(st != NULL ? st : out);
	} else if (!wait) {
		printf("CRK version %lld is active; the keys are being rewrapped in the background "
		       "(keelctl crk status)\n",
		       keelctl_field_num(out, "version"));
	} else {
		printf("rotation to CRK version %lld %s: %lld of %lld objects rewrapped\n",
		       keelctl_field_num(out, "version"), keelctl_field_str(rot, "state"),
		       keelctl_field_num(rot, "done"), keelctl_field_num(rot, "total"));
	}
	if (wait && strcmp(keelctl_field_str(rot, "state"), "complete") != 0) {
		keelctl_err(
		    "the rotation did not complete; see keelctl crk status and keeld's log");
		r = EX_SOFTWARE;
	}
out:
	json_decref(out);
	json_decref(st);
	return r;
}

int keelctl_crk(int argc, char **argv)
{
	static const struct option opts[] = {KEELCTL_API_LONGOPTS,
					     {"wait", no_argument, NULL, OPT_WAIT},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct keelctl_api api = {0};
	bool wait = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (keelctl_api_option(&api, c, optarg)) {
			continue;
		}
		if (c == OPT_WAIT) {
			wait = true;
			continue;
		}
		usage(c == 'h' ? stdout : stderr);
		return c == 'h' ? 0 : EX_USAGE;
	}
	if (optind + 1 == argc && strcmp(argv[optind], "rotate") == 0) {
		return rotate(&api, wait);
	}
	if (optind + 1 != argc || strcmp(argv[optind], "status") != 0 || wait) {
		usage(stderr);
		return EX_USAGE;
	}
	return keelctl_api_show(&api, "/v1/crk", print_status);
}
