/*
 * keelctl client ...: the client registry and vCenter's four ways to trust
 * Keel (VCENTER.md §4): add (pin its self-signed certificate), trust-ca (its
 * root CA), sign-csr (its CSR), issue (a certificate and key for it); list,
 * show, rename, remove.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "keelctl.h"

enum {
	OPT_CERT = KEELCTL_OPT_FIRST_OWN,
	OPT_NAME,
	OPT_ROLE,
	OPT_CSR,
	OPT_OUT,
	OPT_OUT_CERT,
	OPT_OUT_KEY,
	OPT_DESTROY_KEYS,
	OPT_YES,
};

struct opts {
	struct keelctl_api api;
	const char *cert, *name, *role, *csr, *out, *out_cert, *out_key;
	bool destroy_keys, yes;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: keelctl client COMMAND [options]\n\n"
	    "commands:\n"
	    "  add --cert FILE [--name N] [--role kmip|admin|auditor]\n"
	    "                       register a client certificate (vCenter's self-signed one)\n"
	    "  trust-ca --cert FILE [--name N]\n"
	    "                       accept every client certificate chaining to this CA\n"
	    "  sign-csr --csr FILE --out FILE [--name N]\n"
	    "                       sign a CSR (EKU clientAuth) and register the certificate\n"
	    "  issue --name N --out-cert FILE --out-key FILE [--role R]\n"
	    "                       issue a certificate and key (key file mode 0600), registered\n"
	    "  list                 registered clients and trusted CAs\n"
	    "  show ID              one client (ID: name or fingerprint) and its key count\n"
	    "  rename ID NEW-NAME\n"
	    "  remove ID [--destroy-keys [--yes]]\n"
	    "                       unregister; refused while the client owns keys unless\n"
	    "                       --destroy-keys, which destroys them (asks on a terminal,\n"
	    "                       else needs --yes). Its certificate is refused from then on.\n\n"
	    "options:\n" KEELCTL_API_USAGE);
}

static int own_option(void *ctx, int ch, const char *arg)
{
	struct opts *o = ctx;

	switch (ch) {
	case OPT_CERT:
		o->cert = arg;
		return 0;
	case OPT_NAME:
		o->name = arg;
		return 0;
	case OPT_ROLE:
		o->role = arg;
		return 0;
	case OPT_CSR:
		o->csr = arg;
		return 0;
	case OPT_OUT:
		o->out = arg;
		return 0;
	case OPT_OUT_CERT:
		o->out_cert = arg;
		return 0;
	case OPT_OUT_KEY:
		o->out_key = arg;
		return 0;
	case OPT_DESTROY_KEYS:
		o->destroy_keys = true;
		return 0;
	case OPT_YES:
		o->yes = true;
		return 0;
	default:
		return -1;
	}
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "-";
}

static void print_client(const json_t *c)
{
	printf("%-20s %-8s %.16s  %-20s %s\n", str(c, "name"), str(c, "role"),
	       str(c, "fingerprint"), str(c, "not_after"), str(c, "subject"));
}

/* Prints the answer: --json as is, else the client line (and |note|). */
static int report(const struct opts *o, int r, json_t *out, const char *note)
{
	if (r == 0 && o->api.json) {
		keelctl_print_json(out);
	} else if (r == 0) {
		print_client(out);
		if (note != NULL) {
			printf("%s\n", note);
		}
	}
	json_decref(out);
	return r;
}

/* POST |path| with {"certificate": FILE's text, "name", "role"}. */
static int post_cert(struct opts *o, const char *path, bool with_role)
{
	char *pem = NULL;
	json_t *body, *out = NULL;
	int r;

	if (o->cert == NULL) {
		keelctl_err("--cert FILE is required");
		return EX_USAGE;
	}
	if ((r = keelctl_read_text(o->cert, &pem)) != 0) {
		return r;
	}
	body = json_pack("{s:s, s:s*, s:s*}", "certificate", pem, "name", o->name, "role",
			 with_role ? o->role : NULL);
	r = keelctl_api_call(&o->api, "POST", path, body, &out);
	json_decref(body);
	free(pem);
	return report(o, r, out, NULL);
}

static int cmd_add(struct opts *o, char **args)
{
	return post_cert(o, "/v1/clients", true);
}

static int cmd_trust_ca(struct opts *o, char **args)
{
	return post_cert(o, "/v1/cas", false);
}

static int cmd_sign_csr(struct opts *o, char **args)
{
	char *csr = NULL;
	json_t *body, *out = NULL;
	int r;

	if (o->csr == NULL || o->out == NULL) {
		keelctl_err("--csr FILE and --out FILE are required");
		return EX_USAGE;
	}
	if ((r = keelctl_read_text(o->csr, &csr)) != 0) {
		return r;
	}
	body = json_pack("{s:s, s:s*}", "csr", csr, "name", o->name);
	r = keelctl_api_call(&o->api, "POST", "/v1/clients/csr", body, &out);
	if (r == 0) {
		r = keelctl_write_text(o->out, str(out, "certificate"), 0644);
	}
	json_decref(body);
	free(csr);
	return report(o, r, out, NULL);
}

static int cmd_issue(struct opts *o, char **args)
{
	json_t *body, *out = NULL;
	int r;

	if (o->name == NULL || o->out_cert == NULL || o->out_key == NULL) {
		keelctl_err("--name N, --out-cert FILE and --out-key FILE are required");
		return EX_USAGE;
	}
	body = json_pack("{s:s, s:s*}", "name", o->name, "role", o->role);
	r = keelctl_api_call(&o->api, "POST", "/v1/clients/issue", body, &out);
	json_decref(body);
	if (r == 0 && (r = keelctl_write_text(o->out_key, str(out, "private_key"), 0600)) == 0) {
		r = keelctl_write_text(o->out_cert, str(out, "certificate"), 0644);
	}
	/* The key is in the file; --json prints the rest. */
	json_object_del(out, "private_key");
	return report(o, r, out, NULL);
}

static int cmd_list(struct opts *o, char **args)
{
	json_t *out = NULL, *c;
	size_t i;
	int r = keelctl_api_call(&o->api, "GET", "/v1/clients", NULL, &out);

	if (r == 0 && o->api.json) {
		keelctl_print_json(out);
	} else if (r == 0) {
		printf("%-20s %-8s %-17s %-20s %s\n", "NAME", "ROLE", "FINGERPRINT", "NOT AFTER",
		       "SUBJECT");
		json_array_foreach(json_object_get(out, "clients"), i, c)
		{
			print_client(c);
		}
	}
	json_decref(out);
	return r;
}

/* GET or change /v1/clients/ID. */
static int call_id(struct opts *o, const char *method, const char *id, bool destroy_keys,
		   json_t *body, json_t **out)
{
	char path[512] = "/v1/clients/";

	if (keelctl_path_add(path, sizeof(path), id) != 0 ||
	    keelctl_query_add(path, sizeof(path), "destroy_keys", destroy_keys ? "true" : NULL) !=
		0) {
		keelctl_err("client name too long");
		return EX_USAGE;
	}
	return keelctl_api_call(&o->api, method, path, body, out);
}

static int cmd_show(struct opts *o, char **args)
{
	const char *id = args[0];
	json_t *out = NULL;
	int r = call_id(o, "GET", id, false, NULL, &out);

	if (r == 0 && !o->api.json) {
		printf("name         %s\nrole         %s\nfingerprint  %s\nsubject      %s\n"
		       "issuer       %s\nvalid        %s to %s\nkeys owned   %lld\n",
		       str(out, "name"), str(out, "role"), str(out, "fingerprint"),
		       str(out, "subject"), str(out, "issuer"), str(out, "not_before"),
		       str(out, "not_after"),
		       (long long)json_integer_value(json_object_get(out, "keys")));
		json_decref(out);
		return 0;
	}
	return report(o, r, out, NULL);
}

static int cmd_rename(struct opts *o, char **args)
{
	json_t *body = json_pack("{s:s}", "name", args[1]), *out = NULL;
	int r = call_id(o, "PATCH", args[0], false, body, &out);

	json_decref(body);
	return report(o, r, out, NULL);
}

/* --destroy-keys: the operator says yes on a terminal, or with --yes. */
static int confirm(struct opts *o, const char *id)
{
	json_t *out = NULL;
	char line[16];
	int r;

	if (o->yes) {
		return 0;
	}
	if (!isatty(STDIN_FILENO)) {
		keelctl_err("--destroy-keys destroys keys: confirm with --yes");
		return EX_USAGE;
	}
	if ((r = call_id(o, "GET", id, false, NULL, &out)) != 0) {
		return r;
	}
	fprintf(stderr,
		"Destroy the %lld keys of client %s? VMs they protect will no longer start.\n"
		"Type 'yes' to destroy them: ",
		(long long)json_integer_value(json_object_get(out, "keys")), str(out, "name"));
	json_decref(out);
	if (fgets(line, sizeof(line), stdin) == NULL || strcmp(line, "yes\n") != 0) {
		keelctl_err("not confirmed: nothing changed");
		return EX_TEMPFAIL;
	}
	return 0;
}

static int cmd_remove(struct opts *o, char **args)
{
	const char *id = args[0];
	json_t *out = NULL;
	int r;

	if (o->destroy_keys && (r = confirm(o, id)) != 0) {
		return r;
	}
	r = call_id(o, "DELETE", id, o->destroy_keys, NULL, &out);
	if (r == 0 && !o->api.json) {
		printf("removed %s; %lld keys destroyed\n", str(out, "name"),
		       (long long)json_integer_value(json_object_get(out, "keys_destroyed")));
		json_decref(out);
		return 0;
	}
	if (r == EX_CANTCREAT) {
		keelctl_err("to remove it with its keys: keelctl client remove %s --destroy-keys",
			    id);
	}
	return report(o, r, out, NULL);
}

/* Runs |cmd| with the positional arguments it takes. */
static int dispatch(struct opts *o, const char *cmd, int nargs, char **args)
{
	static const struct {
		const char *name;
		int nargs;
		int (*run)(struct opts *o, char **args);
	} cmds[] = {
	    {"add", 0, cmd_add},       {"trust-ca", 0, cmd_trust_ca}, {"sign-csr", 0, cmd_sign_csr},
	    {"issue", 0, cmd_issue},   {"list", 0, cmd_list},	      {"show", 1, cmd_show},
	    {"rename", 2, cmd_rename}, {"remove", 1, cmd_remove},
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmd, cmds[i].name) != 0) {
			continue;
		}
		if (nargs != cmds[i].nargs) {
			usage(stderr);
			return EX_USAGE;
		}
		return cmds[i].run(o, args);
	}
	keelctl_err("unknown client command '%s'", cmd);
	usage(stderr);
	return EX_USAGE;
}

int keelctl_client(int argc, char **argv)
{
	/* --cert here is the certificate to register; the admin identity for
	 * HTTPS is --admin-cert/--admin-key. */
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"role", required_argument, NULL, OPT_ROLE},
	    {"csr", required_argument, NULL, OPT_CSR},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"out-cert", required_argument, NULL, OPT_OUT_CERT},
	    {"out-key", required_argument, NULL, OPT_OUT_KEY},
	    {"destroy-keys", no_argument, NULL, OPT_DESTROY_KEYS},
	    {"yes", no_argument, NULL, OPT_YES},
	    KEELCTL_API_LONGOPTS,
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {0};
	int r = keelctl_api_getopt(argc, argv, opts, &o.api, own_option, &o, usage);

	if (r >= 0) {
		return r;
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	return dispatch(&o, argv[optind], argc - optind - 1, argv + optind + 1);
}
