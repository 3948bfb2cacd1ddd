/* keelctl_api_call: libcurl to keeld's admin API, over its UNIX socket or HTTPS. */
#include "api.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "keelctl.h"

int keelctl_api_options_only(int argc, char **argv, struct keelctl_api *api, void (*usage)(FILE *f))
{
	static const struct option opts[] = {
	    KEELCTL_API_LONGOPTS, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (!keelctl_api_option(api, c, optarg)) {
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : EX_USAGE;
		}
	}
	return -1;
}

int keelctl_api_option(struct keelctl_api *api, int ch, const char *arg)
{
	switch (ch) {
	case KEELCTL_OPT_CONFIG:
		api->config = arg;
		return 1;
	case KEELCTL_OPT_CERT:
		api->cert = arg;
		return 1;
	case KEELCTL_OPT_KEY:
		api->key = arg;
		return 1;
	case KEELCTL_OPT_CACERT:
		api->cacert = arg;
		return 1;
	case KEELCTL_OPT_URL:
		api->url = arg;
		return 1;
	case KEELCTL_OPT_JSON:
		api->json = true;
		return 1;
	default:
		return 0;
	}
}

const char *keelctl_field_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL && s[0] != '\0' ? s : "-";
}

long long keelctl_field_num(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

void keelctl_print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT);
	putchar('\n');
}

/* Where keeld is: its socket, its HTTPS URL and certificate, from keeld.conf. */
struct target {
	char socket[4096];
	char base_url[128];
	char server_cert[4096];
};

/* "0.0.0.0:8443" -> "https://127.0.0.1:8443": a wildcard listener is reached
 * on loopback; other addresses as written. */
static void url_of(const struct keel_listen_addr *l, char *out, size_t out_len)
{
	const char *colon = strrchr(l->text, ':');
	int host_len = colon != NULL ? (int)(colon - l->text) : 0;

	if (strncmp(l->text, "0.0.0.0:", 8) == 0) {
		snprintf(out, out_len, "https://127.0.0.1%s", colon);
	} else if (strncmp(l->text, "[::]:", 5) == 0) {
		snprintf(out, out_len, "https://[::1]%s", colon);
	} else {
		snprintf(out, out_len, "https://%.*s%s", host_len, l->text,
			 colon != NULL ? colon : "");
	}
}

static int find_target(const struct keelctl_api *api, struct target *t)
{
	const char *path = api->config != NULL ? api->config : KEEL_CONFIG_DEFAULT_PATH;
	struct keel_config *cfg = NULL;
	struct keel_config_error err;

	keel_log_set_level(KEEL_LOG_ERROR);
	if (keel_config_load(path, &cfg, &err) != 0) {
		keelctl_err("%s%s%.0d: %s (is --config right?)", err.file, err.line > 0 ? ":" : "",
			    err.line, err.reason);
		return EX_CONFIG;
	}
	snprintf(t->socket, sizeof(t->socket), "%s", cfg->admin_socket);
	snprintf(t->server_cert, sizeof(t->server_cert), "%s", cfg->tls_certificate);
	url_of(&cfg->admin_listen[0], t->base_url, sizeof(t->base_url));
	keel_config_free(cfg);
	return 0;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	FILE *f = arg;

	return fwrite(data, size, n, f) * size;
}

static int exit_for_status(long status)
{
	switch (status) {
	case 400:
	case 413:
		return EX_DATAERR;
	case 401:
	case 403:
		return EX_NOPERM;
	case 404:
		return EX_NOINPUT;
	case 409:
		return EX_CANTCREAT;
	case 503:
		return EX_UNAVAILABLE;
	default:
		return status >= 200 && status < 300 ? 0 : EX_SOFTWARE;
	}
}

static void set_transport(CURL *c, const struct keelctl_api *api, const struct target *t,
			  const char *path, char *url, size_t url_len)
{
	if (api->cert != NULL || api->url != NULL) {
		snprintf(url, url_len, "%s%s", api->url != NULL ? api->url : t->base_url, path);
		curl_easy_setopt(c, CURLOPT_SSLCERT, api->cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, api->key != NULL ? api->key : api->cert);
		/* keeld's own certificate as trust anchor: curl accepts a partial chain. */
		curl_easy_setopt(c, CURLOPT_CAINFO,
				 api->cacert != NULL ? api->cacert : t->server_cert);
	} else {
		snprintf(url, url_len, "http://keeld%s", path);
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, t->socket);
	}
}

/* A request body and its type; data NULL for none. */
struct body {
	const void *data;
	size_t len;
	const char *type;
};

/* Performs the request; the answer goes to |resp|. EX_UNAVAILABLE when unreachable. */
static int perform(const struct keelctl_api *api, const char *method, const char *path,
		   const struct body *body, FILE *resp, long *out_status)
{
	struct target t = {0};
	struct curl_slist *hdrs = NULL;
	char url[4352], errbuf[CURL_ERROR_SIZE] = "", type[128];
	bool https = api->cert != NULL || api->url != NULL;
	CURL *c;
	CURLcode rc;
	int r = 0;

	/* --url and --cacert say all there is to know: no keeld.conf needed (an
	 * administrator's own machine, keelctl enrol). */
	if ((api->url == NULL || api->cacert == NULL) && (r = find_target(api, &t)) != 0) {
		return r;
	}
	if ((c = curl_easy_init()) == NULL) {
		return EX_SOFTWARE;
	}
	set_transport(c, api, &t, path, url, sizeof(url));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
	if (body->data != NULL) {
		snprintf(type, sizeof(type), "Content-Type: %s", body->type);
		hdrs = curl_slist_append(hdrs, type);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
	}
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		keelctl_err("cannot reach keeld at %s: %s", https ? url : t.socket,
			    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		r = EX_UNAVAILABLE;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, out_status);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return r;
}

/* Sends the request and collects the answer; prints the API's error message for a non-2xx. */
static int exchange(const struct keelctl_api *api, const char *method, const char *path,
		    const struct body *body, char **out, size_t *out_len)
{
	char *text = NULL;
	size_t len = 0;
	FILE *resp = open_memstream(&text, &len);
	long status = 0;
	json_t *j;
	int r;

	if (resp == NULL) {
		return EX_OSERR;
	}
	r = perform(api, method, path, body, resp, &status);
	if (fclose(resp) != 0) {
		r = r != 0 ? r : EX_OSERR;
	}
	if (r == 0 && (r = exit_for_status(status)) != 0) {
		j = json_loadb(text != NULL ? text : "", len, 0, NULL);
		keelctl_err("keeld: %ld: %s", status,
			    json_string_value(json_object_get(j, "error")) != NULL
				? json_string_value(json_object_get(j, "error"))
				: "(no message)");
		json_decref(j);
	}
	if (r != 0) {
		free(text);
		return r;
	}
	*out = text;
	*out_len = len;
	return 0;
}

int keelctl_api_send(const struct keelctl_api *api, const char *method, const char *path,
		     const void *body, size_t body_len, const char *content_type, char **out,
		     size_t *out_len)
{
	const struct body b = {body, body_len, content_type};

	*out = NULL;
	*out_len = 0;
	return exchange(api, method, path, &b, out, out_len);
}

int keelctl_api_call(const struct keelctl_api *api, const char *method, const char *path,
		     json_t *body, json_t **out)
{
	char *text = NULL, *req = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	const struct body b = {req, req != NULL ? strlen(req) : 0, "application/json"};
	size_t len = 0;
	int r;

	*out = NULL;
	if (body != NULL && req == NULL) {
		return EX_OSERR;
	}
	if ((r = exchange(api, method, path, &b, &text, &len)) == 0 &&
	    (*out = json_loadb(text != NULL ? text : "", len, 0, NULL)) == NULL) {
		keelctl_err("keeld answered something that is not JSON");
		r = EX_PROTOCOL;
	}
	free(text);
	free(req);
	return r;
}

int keelctl_api_show(const struct keelctl_api *api, const char *path,
		     void (*print)(const json_t *answer))
{
	json_t *out = NULL;
	int r = keelctl_api_call(api, "GET", path, NULL, &out);

	if (r == 0) {
		if (api->json) {
			keelctl_print_json(out);
		} else {
			print(out);
		}
	}
	json_decref(out);
	return r;
}

int keelctl_read_text(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL) {
		keelctl_err("cannot read %s: %m", path);
		return EX_NOINPUT;
	}
	do {
		char *grown = realloc(text, cap + 4097);

		if (grown == NULL) {
			free(text);
			fclose(f);
			return EX_OSERR;
		}
		text = grown;
		cap += 4096;
		len += n = fread(text + len, 1, cap - len, f);
	} while (n > 0 && len < 1u << 20);
	text[len] = '\0';
	fclose(f);
	*out = text;
	return 0;
}

int keelctl_write_text(const char *path, const char *text, unsigned mode)
{
	size_t n = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	bool ok = fd >= 0 && fchmod(fd, (mode_t)mode) == 0 && write(fd, text, n) == (ssize_t)n;

	if (fd >= 0 && close(fd) != 0) {
		ok = false;
	}
	if (!ok) {
		keelctl_err("cannot write %s: %m", path);
		return EX_CANTCREAT;
	}
	return 0;
}

int keelctl_api_getopt(int argc, char **argv, const struct option *opts, struct keelctl_api *api,
		       int (*own)(void *ctx, int ch, const char *arg), void *ctx,
		       void (*usage)(FILE *f))
{
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (keelctl_api_option(api, c, optarg) ||
		    (own != NULL && own(ctx, c, optarg) == 0)) {
			continue;
		}
		usage(c == 'h' ? stdout : stderr);
		return c == 'h' ? 0 : EX_USAGE;
	}
	return -1;
}
