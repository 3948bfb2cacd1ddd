/*
 * keelctl enrol: become a fresh appliance's first administrator with the
 * one-time enrolment code its console showed. Makes a key and a CSR here
 * (the key never leaves this machine), sends the CSR with the code to
 * POST /v1/enrol over TLS without a client certificate, and stores the key
 * and the certificate Keel's CA signed with role admin.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "api.h"
#include "keelctl.h"

#define CODE_MAX 256

struct enrol_opts {
	const char *server, *code, *name, *out;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: keelctl enrol --server HOST[:PORT] --cacert FILE --code CODE|-\n"
	    "                     [--name NAME] [--out PREFIX]\n\n"
	    "Become the first administrator of a fresh appliance with the one-time\n"
	    "enrolment code its console showed. A new key (RSA 2048) and a CSR are made\n"
	    "here; the appliance's CA signs the CSR with role admin. The code works once.\n\n"
	    "  --server HOST[:PORT]  the appliance's admin API (port 8443 by default)\n"
	    "  --cacert FILE    the appliance's CA certificate, or its server certificate\n"
	    "                   (console menu 4): the code goes to no one else\n"
	    "  --code CODE|-    the code; - reads it from the terminal (no echo) or stdin\n"
	    "  --name NAME      the administrator's name in the registry (default: admin)\n"
	    "  --out PREFIX     writes PREFIX.key (mode 0600) and PREFIX.crt (default: admin)\n\n"
	    "Afterwards: keelctl --url https://HOST:8443 --cacert FILE --cert PREFIX.crt\n"
	    "            --key PREFIX.key status\n");
}

/* One line from the terminal without echo, else from stdin, into |buf|. */
static int read_code(char *buf, size_t cap)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	bool ok;

	if (tty) {
		fprintf(stderr, "Enrolment code: ");
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	ok = fgets(buf, (int)cap, stdin) != NULL;
	if (tty) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return ok && buf[0] != '\0' ? 0 : -1;
}

/* A new RSA key and a CSR for it (CN |name|), the CSR in PEM (malloc'd). */
static int make_csr(const char *name, EVP_PKEY **out_key, char **out_pem)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509_REQ *req = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int r = -1;

	if (key != NULL && req != NULL && b != NULL && X509_REQ_set_version(req, 0) == 1 &&
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
				       (const unsigned char *)name, -1, -1, 0) == 1 &&
	    X509_REQ_set_pubkey(req, key) == 1 && X509_REQ_sign(req, key, EVP_sha256()) > 0 &&
	    PEM_write_bio_X509_REQ(b, req) == 1 && (len = BIO_get_mem_data(b, &data)) > 0 &&
	    (*out_pem = strndup(data, (size_t)len)) != NULL) {
		*out_key = key;
		key = NULL;
		r = 0;
	}
	EVP_PKEY_free(key);
	X509_REQ_free(req);
	BIO_free(b);
	return r;
}

/* The key in PEM (PKCS#8), malloc'd; the BIO's copy wiped. */
static char *key_pem(EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *data, *out = NULL;
	long len;

	if (b != NULL && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0) {
		out = strndup(data, (size_t)len);
		OPENSSL_cleanse(data, (size_t)len);
	}
	BIO_free(b);
	return out;
}

static int own_option(void *ctx, int ch, const char *arg)
{
	struct enrol_opts *o = ctx;

	switch (ch) {
	case 's':
		o->server = arg;
		return 0;
	case 'c':
		o->code = arg;
		return 0;
	case 'n':
		o->name = arg;
		return 0;
	case 'o':
		o->out = arg;
		return 0;
	default:
		return EX_USAGE;
	}
}

/* Sends the code and CSR; stores the key and certificate under |o->out|. */
static int enrol(const struct keelctl_api *api, const struct enrol_opts *o, const char *code)
{
	char key_path[4096], crt_path[4096], *csr = NULL, *kp = NULL;
	EVP_PKEY *key = NULL;
	json_t *body, *answer = NULL;
	const char *crt;
	int r;

	if (snprintf(key_path, sizeof(key_path), "%s.key", o->out) >= (int)sizeof(key_path) ||
	    snprintf(crt_path, sizeof(crt_path), "%s.crt", o->out) >= (int)sizeof(crt_path)) {
		return EX_USAGE;
	}
	if (access(key_path, F_OK) == 0 || access(crt_path, F_OK) == 0) {
		keelctl_err("%s or %s exists: choose another --out", key_path, crt_path);
		return EX_CANTCREAT;
	}
	if (make_csr(o->name, &key, &csr) != 0 || (kp = key_pem(key)) == NULL) {
		keelctl_err("cannot make a key and a CSR");
		EVP_PKEY_free(key);
		free(csr);
		return EX_SOFTWARE;
	}
	body = json_pack("{s:s, s:s, s:s}", "code", code, "csr", csr, "name", o->name);
	r = body != NULL ? keelctl_api_call(api, "POST", "/v1/enrol", body, &answer) : EX_OSERR;
	if (r == 0 && (crt = json_string_value(json_object_get(answer, "certificate"))) == NULL) {
		keelctl_err("keeld's answer has no certificate");
		r = EX_PROTOCOL;
	}
	if (r == 0 && (r = keelctl_write_text(key_path, kp, 0600)) == 0 &&
	    (r = keelctl_write_text(crt_path, crt, 0644)) == 0) {
		if (api->json) {
			keelctl_print_json(answer);
		} else {
			printf("enrolled as administrator %s: %s, %s\n", o->name, crt_path,
			       key_path);
		}
	}
	OPENSSL_clear_free(kp, strlen(kp));
	json_decref(body);
	json_decref(answer);
	EVP_PKEY_free(key);
	free(csr);
	return r;
}

int keelctl_enrol(int argc, char **argv)
{
	static const struct option opts[] = {
	    KEELCTL_API_LONGOPTS,
	    {"server", required_argument, NULL, 's'},
	    {"code", required_argument, NULL, 'c'},
	    {"name", required_argument, NULL, 'n'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct enrol_opts o = {.name = "admin", .out = "admin"};
	struct keelctl_api api = {0};
	char url[512], code[CODE_MAX + 2];
	bool has_port;
	int r = keelctl_api_getopt(argc, argv, opts, &api, own_option, &o, usage);

	if (r >= 0) {
		return r;
	}
	if (optind != argc || o.server == NULL || o.code == NULL || api.cacert == NULL ||
	    api.cert != NULL || api.url != NULL) {
		keelctl_err("--server, --cacert and --code are required (and no --cert or --url)");
		usage(stderr);
		return EX_USAGE;
	}
	/* "host", "host:port", "[v6]" or "[v6]:port" */
	has_port =
	    o.server[0] == '[' ? strstr(o.server, "]:") != NULL : strchr(o.server, ':') != NULL;
	if (snprintf(url, sizeof(url), "https://%s%s", o.server, has_port ? "" : ":8443") >=
	    (int)sizeof(url)) {
		return EX_USAGE;
	}
	api.url = url;
	if (strcmp(o.code, "-") == 0) {
		if (read_code(code, sizeof(code)) != 0) {
			keelctl_err("no enrolment code on the terminal or stdin");
			return EX_NOINPUT;
		}
	} else if (snprintf(code, sizeof(code), "%s", o.code) > CODE_MAX) {
		keelctl_err("the enrolment code is too long");
		return EX_USAGE;
	}
	r = enrol(&api, &o, code);
	OPENSSL_cleanse(code, sizeof(code));
	return r;
}
