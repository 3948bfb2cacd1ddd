/* keelctl mirror status | enable | sync: the Key Protect mirror, through keeld. */
#include <string.h>

#include "api.h"
#include "keelctl.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: keelctl mirror status|enable|sync [options]\n\n"
		   "status: whether the mirror runs, its root key, version and mode (imported:\n"
		   "the CRK itself; generated: Key Protect's, as the CRK cannot leave the\n"
		   "token), how it rotates with the CRK (keelctl crk rotate), the outbox\n"
		   "backlog and its rewraps, the last success and the last error.\n"
		   "enable: mirrors the CRK as a Key Protect root key (keeld.conf's mirror\n"
		   "section says where) and queues every key for escrow; once only.\n"
		   "sync:   drains the outbox and polls Key Protect for revocation now (the\n"
		   "        root key deleted crypto-shreds, disabled suspends key serving; an\n"
		   "        escrow key deleted withdraws its object).\n" KEELCTL_API_USAGE);
}

static void print_status(const json_t *s)
{
	char when[24];
	const char *err = json_string_value(json_object_get(s, "last_error"));

	printf("state         %s\n", json_string_value(json_object_get(s, "state")));
	if (strcmp(json_string_value(json_object_get(s, "mode")), "none") == 0) {
		return;
	}
	printf("mode          %s\n", json_string_value(json_object_get(s, "mode")));
	printf("root key      %s version %s (CRK version %lld)\n",
	       json_string_value(json_object_get(s, "root_key_id")),
	       json_string_value(json_object_get(s, "root_version")),
	       (long long)json_integer_value(json_object_get(s, "crk_version")));
	printf("rotates       %s\n", json_string_value(json_object_get(s, "rotation")));
	if (!json_is_true(json_object_get(s, "in_step"))) {
		printf("              (the token's CRK is version %lld: the root key follows at "
		       "the next poll)\n",
		       (long long)json_integer_value(json_object_get(s, "token_crk_version")));
	}
	printf("backlog       %lld (of which %lld rewraps after a root key rotation)\n",
	       (long long)json_integer_value(json_object_get(s, "backlog")),
	       (long long)json_integer_value(json_object_get(s, "rewraps")));
	printf("escrowed      %lld since keeld started\n",
	       (long long)json_integer_value(json_object_get(s, "escrowed")));
	printf("last success  %s\n",
	       keelctl_format_time(json_integer_value(json_object_get(s, "last_success")), when));
	printf("last error    %s\n", err != NULL && err[0] != '\0' ? err : "-");
}

static int post(const struct keelctl_api *api, const char *path)
{
	json_t *out = NULL;
	int r = keelctl_api_call(api, "POST", path, NULL, &out);

	if (r != 0) {
		return r;
	}
	if (api->json) {
		keelctl_print_json(out);
	} else if (strcmp(path, "/v1/mirror/sync") == 0) {
		printf("the mirror's worker is draining the outbox (keelctl mirror status)\n");
	} else {
		printf("%s root key %s (%s), CRK version %lld; every key is queued for escrow\n",
		       json_is_true(json_object_get(out, "already")) ? "already mirrored as"
								     : "mirrored as",
		       json_string_value(json_object_get(out, "root_key_id")),
		       json_string_value(json_object_get(out, "mode")),
		       (long long)json_integer_value(json_object_get(out, "crk_version")));
	}
	json_decref(out);
	return 0;
}

int keelctl_mirror(int argc, char **argv)
{
	struct keelctl_api api = {0};
	const char *what;
	int r = keelctl_api_options_only(argc, argv, &api, usage);

	if (r >= 0) {
		return r;
	}
	what = optind + 1 == argc ? argv[optind] : "";
	if (strcmp(what, "status") == 0) {
		return keelctl_api_show(&api, "/v1/mirror", print_status);
	}
	if (strcmp(what, "enable") == 0) {
		return post(&api, "/v1/mirror/enable");
	}
	if (strcmp(what, "sync") == 0) {
		return post(&api, "/v1/mirror/sync");
	}
	usage(stderr);
	return EX_USAGE;
}
