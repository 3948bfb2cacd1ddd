/* keelctl recover --from-keyprotect [--force] [--no-wait]: a fresh appliance's
 * objects back from their Key Protect escrows, through keeld. */
#include <getopt.h>
#include <string.h>

#include "api.h"
#include "keelctl.h"

enum { OPT_FROM_KP = KEELCTL_OPT_FIRST_OWN, OPT_FORCE, OPT_NO_WAIT, OPT_STATUS };

struct opts {
	bool from_kp, force, no_wait, status;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: keelctl recover --from-keyprotect [--force] [--no-wait] [options]\n"
		   "       keelctl recover --status [options]\n\n"
		   "Restores every object escrowed in Key Protect (the keel-<uid> keys of the\n"
		   "instance keeld.conf's mirror section names) into this appliance: each is\n"
		   "unwrapped through Key Protect under Keel's root key (crk-keel), wrapped under\n"
		   "this token's CRK, and stored with its unique identifier, owner, state, dates\n"
		   "and attributes. For a fresh appliance (new token, empty store); the\n"
		   "appliance then adopts that root key, so escrowing goes on under it (keelctl\n"
		   "mirror status shows mode \"adopted\") and each object is escrowed again.\n"
		   "Resumable: a second run, or one after keeld restarted, restores what is\n"
		   "missing and counts the rest as already present. Prints a progress bar on a\n"
		   "terminal (a count otherwise), then the count, which must match the number\n"
		   "of escrows, and each object that was not restored, with why.\n"
		   "  --from-keyprotect  the source (required; Key Protect is the only one)\n"
		   "  --force            recover into a store that already holds objects (they\n"
		   "                     stay; an escrow whose uid holds another object fails)\n"
		   "  --no-wait          start it and return (keelctl recover --status follows)\n"
		   "  --status           the progress of the current or last recovery\n"
		   "exit status: 0 every escrow restored or present; 65 (EX_DATAERR) some\n"
		   "were refused; 69 (EX_UNAVAILABLE) Key Protect could not be read to the end;\n"
		   "73 (EX_CANTCREAT) refused to start (a non-empty store, no root "
		   "key).\n" KEELCTL_API_USAGE);
}

/* For keelctl_api_follow: true while the recovery runs. */
static bool progress(const json_t *answer, long long *done, long long *total)
{
	*done = keelctl_field_num(answer, "processed");
	*total = keelctl_field_num(answer, "total");
	return strcmp(keelctl_field_str(answer, "state"), "running") == 0;
}

/* The summary, and the exit status it means. */
static int report(const json_t *st)
{
	long long total = keelctl_field_num(st, "total"), failed = keelctl_field_num(st, "failed");
	long long counted =
	    keelctl_field_num(st, "restored") + keelctl_field_num(st, "present") + failed;
	const json_t *f;
	size_t i;

	if (strcmp(keelctl_field_str(st, "state"), "running") == 0) {
		printf("recovery running: %lld of %lld escrows tried\n",
		       keelctl_field_num(st, "processed"), total);
		return 0;
	}
	printf("recovery from Key Protect root key %s %s: %lld escrows, %lld restored, "
	       "%lld already present, %lld failed\n",
	       keelctl_field_str(st, "root_key_id"), keelctl_field_str(st, "state"), total,
	       keelctl_field_num(st, "restored"), keelctl_field_num(st, "present"), failed);
	json_array_foreach(json_object_get(st, "failures"), i, f)
	{
		printf("  %s: %s\n", keelctl_field_str(f, "uid"), keelctl_field_str(f, "why"));
	}
	if ((long long)i < failed) {
		printf("  and %lld more (see keeld's log)\n", failed - (long long)i);
	}
	if (strcmp(keelctl_field_str(st, "state"), "failed") == 0) {
		keelctl_err("the recovery stopped: %s; run it again to resume",
			    keelctl_field_str(st, "error"));
		return EX_UNAVAILABLE;
	}
	if (counted != total) {
		keelctl_err("the count does not match: %lld of %lld escrows accounted for", counted,
			    total);
		return EX_SOFTWARE;
	}
	return failed != 0 ? EX_DATAERR : 0;
}

static int recover(const struct keelctl_api *api, const struct opts *o)
{
	json_t *out = NULL;
	int r;

	r = keelctl_api_call(api, "POST", o->force ? "/v1/recover?force=true" : "/v1/recover", NULL,
			     &out);
	if (r == 0 && !o->no_wait) {
		json_decref(out);
		out = NULL;
		r = keelctl_api_follow(api, "/v1/recover", progress, true, &out);
	}
	if (r == 0) {
		if (api->json) {
			keelctl_print_json(out);
		}
		r = api->json ? 0 : report(out);
	}
	json_decref(out);
	return r;
}

static int own_option(void *ctx, int ch, const char *arg)
{
	struct opts *o = ctx;

	(void)arg;
	switch (ch) {
	case OPT_FROM_KP:
		o->from_kp = true;
		return 0;
	case OPT_FORCE:
		o->force = true;
		return 0;
	case OPT_NO_WAIT:
		o->no_wait = true;
		return 0;
	case OPT_STATUS:
		o->status = true;
		return 0;
	default:
		return -1;
	}
}

static void print_status(const json_t *st)
{
	(void)report(st);
}

int keelctl_recover(int argc, char **argv)
{
	static const struct option longopts[] = {
	    KEELCTL_API_LONGOPTS,
	    {"from-keyprotect", no_argument, NULL, OPT_FROM_KP},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
	    {"status", no_argument, NULL, OPT_STATUS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct keelctl_api api = {0};
	struct opts o = {0};
	int r = keelctl_api_getopt(argc, argv, longopts, &api, own_option, &o, usage);

	if (r >= 0) {
		return r;
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (o.status) {
		return keelctl_api_show(&api, "/v1/recover", print_status);
	}
	if (!o.from_kp) {
		keelctl_err("recover: say where from: --from-keyprotect");
		return EX_USAGE;
	}
	return recover(&api, &o);
}
