/*
 * keelctl server-cert show|export|renew and keelctl ca export: the
 * certificates vCenter is given when it is told to trust Keel (VCENTER.md
 * §4: "upload KMS certificate", "KMS CA certificate").
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "keelctl.h"

#define MAX_SANS 32

enum { OPT_OUT = KEELCTL_OPT_FIRST_OWN, OPT_SAN };

struct opts {
	struct keelctl_api api;
	const char *out;
	const char *sans[MAX_SANS];
	size_t num_sans;
};

static void usage_server(FILE *f)
{
	fprintf(f, "usage: keelctl server-cert COMMAND [options]\n\n"
		   "commands:\n"
		   "  show                       subject, issuer, validity, SANs, fingerprint\n"
		   "  export [--out FILE]        the PEM certificate (stdout without --out)\n"
		   "  renew --san DNS:name|IP:addr [--san ...]\n"
		   "                             a new key and certificate from Keel's CA, which\n"
		   "                             KMIP and the admin API serve from then on\n\n"
		   "options:\n" KEELCTL_API_USAGE);
}

static void usage_ca(FILE *f)
{
	fprintf(f, "usage: keelctl ca export [--out FILE] [options]\n\n"
		   "Keel's CA certificate in PEM, which vCenter trusts to accept keeld.\n\n"
		   "options:\n" KEELCTL_API_USAGE);
}

static int own_option(void *ctx, int ch, const char *arg)
{
	struct opts *o = ctx;

	if (ch == OPT_OUT) {
		o->out = arg;
		return 0;
	}
	if (ch == OPT_SAN && o->num_sans < MAX_SANS) {
		o->sans[o->num_sans++] = arg;
		return 0;
	}
	return -1;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "-";
}

/* The "certificate" of |out| to --out, or stdout. */
static int export_pem(const struct opts *o, const json_t *out)
{
	if (o->out != NULL) {
		return keelctl_write_text(o->out, str(out, "certificate"), 0644);
	}
	fputs(str(out, "certificate"), stdout);
	return 0;
}

static void show(const json_t *c)
{
	const json_t *san;
	size_t i;

	printf("subject      %s\nissuer       %s\nvalid        %s to %s\nfingerprint  %s\nSANs     "
	       "   ",
	       str(c, "subject"), str(c, "issuer"), str(c, "not_before"), str(c, "not_after"),
	       str(c, "fingerprint"));
	json_array_foreach(json_object_get(c, "sans"), i, san)
	{
		printf(" %s", json_string_value(san));
	}
	putchar('\n');
}

static int parse(int argc, char **argv, struct opts *o, void (*usage)(FILE *f))
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, OPT_OUT},
	    {"san", required_argument, NULL, OPT_SAN},
	    KEELCTL_API_LONGOPTS,
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int r = keelctl_api_getopt(argc, argv, opts, &o->api, own_option, o, usage);

	if (r < 0 && optind + 1 != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	return r;
}

/* Prints an answer: --json as is, else |human|. */
static int answer(const struct opts *o, int r, json_t *out,
		  int (*human)(const struct opts *o, const json_t *out))
{
	if (r == 0) {
		if (o->api.json) {
			keelctl_print_json(out);
		} else {
			r = human(o, out);
		}
	}
	json_decref(out);
	return r;
}

static int show_human(const struct opts *o, const json_t *out)
{
	show(out);
	return 0;
}

static int renew(struct opts *o, json_t **out)
{
	json_t *sans = json_array(), *body;
	int r;

	if (o->num_sans == 0) {
		keelctl_err("renew needs at least one --san DNS:name or --san IP:address");
		json_decref(sans);
		return EX_USAGE;
	}
	for (size_t i = 0; i < o->num_sans; i++) {
		json_array_append_new(sans, json_string(o->sans[i]));
	}
	body = json_pack("{s:o}", "sans", sans);
	r = keelctl_api_call(&o->api, "POST", "/v1/server-cert/renew", body, out);
	json_decref(body);
	return r;
}

int keelctl_server_cert(int argc, char **argv)
{
	struct opts o = {0};
	json_t *out = NULL;
	const char *cmd;
	int r;

	if ((r = parse(argc, argv, &o, usage_server)) >= 0) {
		return r;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "show") == 0 || strcmp(cmd, "export") == 0) {
		r = keelctl_api_call(&o.api, "GET", "/v1/server-cert", NULL, &out);
		return answer(&o, r, out, cmd[0] == 's' ? show_human : export_pem);
	}
	if (strcmp(cmd, "renew") == 0) {
		r = renew(&o, &out);
		return answer(&o, r, out, show_human);
	}
	keelctl_err("unknown server-cert command '%s'", cmd);
	usage_server(stderr);
	return EX_USAGE;
}

int keelctl_ca(int argc, char **argv)
{
	struct opts o = {0};
	json_t *out = NULL;
	int r;

	if ((r = parse(argc, argv, &o, usage_ca)) >= 0) {
		return r;
	}
	if (strcmp(argv[optind], "export") != 0) {
		keelctl_err("unknown ca command '%s'", argv[optind]);
		usage_ca(stderr);
		return EX_USAGE;
	}
	r = keelctl_api_call(&o.api, "GET", "/v1/ca", NULL, &out);
	return answer(&o, r, out, export_pem);
}
