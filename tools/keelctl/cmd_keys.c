/*
 * keelctl keys: find a VM's key, read its attributes (never its material),
 * activate, revoke or destroy it, through the admin API's /v1/keys.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "keelctl.h"

enum { OPT_CLIENT = KEELCTL_OPT_FIRST_OWN, OPT_STATE, OPT_NAME, OPT_ATTR, OPT_LIMIT, OPT_OFFSET };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keelctl keys list [filters] [options]\n"
		"       keelctl keys search FILTER... [options]\n"
		"       keelctl keys show UID [options]\n"
		"       keelctl keys activate UID [options]\n"
		"       keelctl keys revoke UID --reason REASON [--message TEXT] [options]\n"
		"       keelctl keys destroy UID [--yes] [options]\n\n"
		"Managed keys of every client. Filters:\n"
		"  --client CLIENT  owned by CLIENT (a name, or a certificate fingerprint)\n"
		"  --state STATE    PreActive, Active, Deactivated, Compromised, Destroyed, ...\n"
		"  --name NAME      with this Name\n"
		"  --attr N=VALUE   with attribute N equal to VALUE, e.g. x-Name=vm01 or\n"
		"                   x-Component='Virtual Machine' (vCenter's; repeatable)\n"
		"  --limit N, --offset N   a page of the results\n"
		"revoke reasons: Unspecified, KeyCompromise, CACompromise, AffiliationChanged,\n"
		"  Superseded, CessationOfOperation, PrivilegeWithdrawn.\n"
		"destroy: vCenter locks the VM whose key is gone; keelctl says which VM the key\n"
		"  protects and asks for confirmation on a terminal, or needs --yes.\n\n"
		"options:\n" KEELCTL_API_USAGE "  --yes            destroy without asking\n");
}

struct keys_args {
	struct keelctl_api api;
	char path[2048];
	int num_filters;
	const char *reason, *message;
	bool yes;
};

/* Options of every keys command; filters go into the query string of a->path. */
static int parse(int argc, char **argv, struct keys_args *a)
{
	static const struct option opts[] = {KEELCTL_API_LONGOPTS,
					     {"client", required_argument, NULL, OPT_CLIENT},
					     {"state", required_argument, NULL, OPT_STATE},
					     {"name", required_argument, NULL, OPT_NAME},
					     {"attr", required_argument, NULL, OPT_ATTR},
					     {"limit", required_argument, NULL, OPT_LIMIT},
					     {"offset", required_argument, NULL, OPT_OFFSET},
					     {"reason", required_argument, NULL, 'r'},
					     {"message", required_argument, NULL, 'm'},
					     {"yes", no_argument, NULL, 'y'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	static const char *const keys[] = {"client", "state", "name", "attr", "limit", "offset"};
	int c;

	while ((c = getopt_long(argc, argv, "hy", opts, NULL)) != -1) {
		if (keelctl_api_option(&a->api, c, optarg)) {
			continue;
		}
		if (c >= OPT_CLIENT && c <= OPT_OFFSET) {
			if (keelctl_query_add(a->path, sizeof(a->path), keys[c - OPT_CLIENT],
					      optarg) != 0) {
				keelctl_err("filters too long");
				return EX_USAGE;
			}
			a->num_filters += c <= OPT_ATTR;
		} else if (c == 'r' || c == 'm') {
			*(c == 'r' ? &a->reason : &a->message) = optarg;
		} else if (c == 'y') {
			a->yes = true;
		} else {
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? -1 : EX_USAGE;
		}
	}
	return 0;
}

static const char *str(const json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s != NULL ? s : "-";
}

/* "VM test01 (Virtual Machine, 4226f566-...)" when vCenter's attributes say. */
static void print_owner_hint(const json_t *k)
{
	if (json_object_get(k, "vm_name") == NULL || json_is_null(json_object_get(k, "vm_name"))) {
		printf("  protects     nothing vCenter named (no x-Name attribute)\n");
		return;
	}
	printf("  protects     %s \"%s\"", str(k, "component"), str(k, "vm_name"));
	if (json_is_string(json_object_get(k, "identifier"))) {
		printf(" (%s)", str(k, "identifier"));
	}
	printf("\n");
}

static void print_key(const json_t *k)
{
	char t[24];

	printf("%s\n", str(k, "uid"));
	printf("  type         %s\n  state        %s\n  owner        %s\n", str(k, "object_type"),
	       str(k, "state"), str(k, "owner"));
	printf("  name         %s\n", str(k, "name"));
	printf("  created      %s\n",
	       keelctl_format_time(json_integer_value(json_object_get(k, "initial_date")), t));
	print_owner_hint(k);
}

static int list(struct keys_args *a)
{
	json_t *out = NULL, *k;
	size_t i;
	int r = keelctl_api_call(&a->api, "GET", a->path, NULL, &out);

	if (r == 0 && a->api.json) {
		keelctl_print_json(out);
	} else if (r == 0) {
		printf("%-40s %-12s %-24s %s\n", "UID", "STATE", "VM (x-Name)", "OWNER");
		json_array_foreach(json_object_get(out, "keys"), i, k)
		{
			printf("%-40s %-12s %-24s %.16s...\n", str(k, "uid"), str(k, "state"),
			       str(k, "vm_name"), str(k, "owner"));
		}
	}
	json_decref(out);
	return r;
}

static int show(struct keys_args *a)
{
	json_t *out = NULL, *attr;
	size_t i;
	int r = keelctl_api_call(&a->api, "GET", a->path, NULL, &out);

	if (r == 0 && a->api.json) {
		keelctl_print_json(out);
	} else if (r == 0) {
		print_key(json_object_get(out, "key"));
		printf("  attributes\n");
		json_array_foreach(json_object_get(out, "attributes"), i, attr)
		{
			char *v =
			    json_dumps(json_object_get(json_object_get(attr, "value"), "value"),
				       JSON_COMPACT | JSON_ENCODE_ANY);

			printf("    %-30s %s\n", str(attr, "name"), v != NULL ? v : "?");
			free(v);
		}
	}
	json_decref(out);
	return r;
}

/* Shows what the key protects, then asks on a terminal; 0 to go on. */
static int confirm_destroy(struct keys_args *a, const char *key_path)
{
	json_t *out = NULL;
	char line[16];
	int r = keelctl_api_call(&a->api, "GET", key_path, NULL, &out);

	if (r != 0) {
		return r;
	}
	if (!a->api.json || !a->yes) {
		print_key(json_object_get(out, "key"));
	}
	json_decref(out);
	if (a->yes) {
		return 0;
	}
	if (!isatty(STDIN_FILENO)) {
		keelctl_err(
		    "not destroying without confirmation: stdin is not a terminal, pass --yes");
		return EX_USAGE;
	}
	printf("Destroy it? vCenter locks what it protects, for good. Type 'yes': ");
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL || strcmp(line, "yes\n") != 0) {
		keelctl_err("not destroyed");
		return EX_TEMPFAIL;
	}
	return 0;
}

static int change(struct keys_args *a, const char *action, const char *uid)
{
	char key_path[1024];
	json_t *body = NULL, *out = NULL;
	int r = 0;

	snprintf(key_path, sizeof(key_path), "/v1/keys/");
	if (keelctl_path_add(key_path, sizeof(key_path), uid) != 0) {
		keelctl_err("UID too long");
		return EX_USAGE;
	}
	snprintf(a->path, sizeof(a->path), "%s/%s", key_path, action);
	if (strcmp(action, "revoke") == 0) {
		if (a->reason == NULL) {
			keelctl_err("revoke needs --reason");
			return EX_USAGE;
		}
		body = json_pack("{s:s, s:s*}", "reason", a->reason, "message", a->message);
	}
	if (strcmp(action, "destroy") == 0) {
		r = confirm_destroy(a, key_path);
	}
	if (r == 0 && (r = keelctl_api_call(&a->api, "POST", a->path, body, &out)) == 0) {
		if (a->api.json) {
			keelctl_print_json(out);
		} else {
			printf("%s: %s\n", uid, str(json_object_get(out, "key"), "state"));
		}
	}
	json_decref(body);
	json_decref(out);
	return r;
}

int keelctl_keys(int argc, char **argv)
{
	struct keys_args a = {.path = "/v1/keys"};
	const char *sub = argc > 1 ? argv[1] : "";
	int r;

	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return EX_USAGE;
	}
	if ((r = parse(argc - 1, argv + 1, &a)) != 0) {
		return r < 0 ? 0 : r;
	}
	if (strcmp(sub, "list") == 0 || strcmp(sub, "search") == 0) {
		if (optind + 1 != argc || (sub[0] == 's' && a.num_filters == 0)) {
			keelctl_err("keys %s takes filters only%s", sub,
				    sub[0] == 's' ? ", at least one" : "");
			return EX_USAGE;
		}
		return list(&a);
	}
	if (optind + 2 != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(sub, "show") == 0) {
		snprintf(a.path, sizeof(a.path), "/v1/keys/");
		return keelctl_path_add(a.path, sizeof(a.path), argv[optind + 1]) == 0 ? show(&a)
										       : EX_USAGE;
	}
	if (strcmp(sub, "activate") == 0 || strcmp(sub, "revoke") == 0 ||
	    strcmp(sub, "destroy") == 0) {
		return change(&a, sub, argv[optind + 1]);
	}
	usage(stderr);
	return EX_USAGE;
}
