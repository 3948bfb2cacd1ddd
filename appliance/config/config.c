#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum kind { K_U32, K_FILE, K_DIR, K_NEWFILE, K_SOCKET, K_STRING, K_LEVEL, K_LISTEN, K_CHOICE };

/* One row per setting: what it is, where it goes, what it may be. The same
 * table rejects unknown names, so a typo is an error and not a silent default. */
struct setting {
	const char *path;
	enum kind kind;
	size_t offset;
	uint32_t min, max;
	size_t num_offset;	    /* K_LISTEN: where the number of addresses goes */
	const char *const *choices; /* K_CHOICE: the names, NULL-terminated; the
				     * setting (an enum) is the index of its name */
};

/* clang-format off */
#define U32(p, f, lo, hi) {p, K_U32, offsetof(struct keel_config, f), lo, hi, 0, NULL}
#define FILE_(p, f)       {p, K_FILE, offsetof(struct keel_config, f), 0, 0, 0, NULL}
#define DIR_(p, f)        {p, K_DIR, offsetof(struct keel_config, f), 0, 0, 0, NULL}
#define NEWFILE(p, f)     {p, K_NEWFILE, offsetof(struct keel_config, f), 0, 0, 0, NULL}
#define SOCKET(p, f)      {p, K_SOCKET, offsetof(struct keel_config, f), 0, 0, 0, NULL}
#define STRING(p, f, max) {p, K_STRING, offsetof(struct keel_config, f), 1, max, 0, NULL}
#define LISTEN(p, f, n)   {p, K_LISTEN, offsetof(struct keel_config, f), 0, 0, offsetof(struct keel_config, n), NULL}
#define CHOICE(p, f, c)   {p, K_CHOICE, offsetof(struct keel_config, f), 0, 0, 0, c}
/* clang-format on */

/* Names in the order of their enum's values. */
static const char *const wrap_names[] = {"gcm", "kwp", NULL};
static const char *const seccomp_names[] = {"kill", "log", "off", NULL};

static const struct setting settings[] = {
    LISTEN("listen", listen, num_listen),
    {"log_level", K_LEVEL, offsetof(struct keel_config, log_level), 0, 0, 0, NULL},
    U32("worker_threads", worker_threads, 1, 256),
    U32("network_threads", network_threads, 1, KEEL_NETWORK_THREADS_MAX),
    STRING("user", user, 32),
    CHOICE("seccomp", seccomp, seccomp_names),
    FILE_("tls.certificate", tls_certificate),
    FILE_("tls.private_key", tls_private_key),
    U32("tls.session_lifetime", tls_session_lifetime_s, 0, 86400),
    FILE_("tls.crl_file", tls_crl_file),
    DIR_("clients.certificates_dir", clients_certificates_dir),
    FILE_("clients.ca_file", clients_ca_file),
    U32("limits.max_connections", max_connections, 1, 1000000),
    U32("limits.max_connections_per_client", max_connections_per_client, 1, 1000000),
    /* 16 bytes is the smallest message (an empty structure after the header);
     * 64 MiB is far beyond any KMIP message and keeps sizes in 32 bits. */
    U32("limits.max_message_size", max_message_size, 16, 64u << 20),
    U32("limits.handshake_timeout_ms", handshake_timeout_ms, 1, 3600000),
    U32("limits.idle_timeout_ms", idle_timeout_ms, 1, 86400000),
    U32("limits.frame_timeout_ms", frame_timeout_ms, 1, 3600000),
    U32("limits.drain_timeout_ms", drain_timeout_ms, 1, 3600000),
    /* vCenter sends at most 3 items (VCENTER.md §1); a batch is decoded whole. */
    U32("limits.max_batch_items", max_batch_items, 1, 4096),
    U32("limits.max_locate_items", max_locate_items, 1, 1000000),
    STRING("hsm.module", hsm_module, 4095),
    /* PKCS#11 token labels are 32 bytes (CK_TOKEN_INFO.label). */
    STRING("hsm.token_label", hsm_token_label, 32),
    FILE_("hsm.pin_file", hsm_pin_file),
    U32("hsm.pool_size", hsm_pool_size, 1, 256),
    U32("hsm.timeout_ms", hsm_timeout_ms, 0, 600000),
    CHOICE("hsm.wrap", hsm_wrap, wrap_names),
    NEWFILE("store.path", store_path),
    U32("crk.rotation_batch", crk_rotation_batch, 1, 10000),
    U32("crk.rotation_pause_ms", crk_rotation_pause_ms, 0, 60000),
    LISTEN("admin.listen", admin_listen, num_admin_listen),
    SOCKET("admin.socket", admin_socket),
    DIR_("admin.certificates_dir", admin_certificates_dir),
    FILE_("admin.enrolment_file", admin_enrolment_file),
    STRING("mirror.endpoint", mirror_endpoint, 2048),
    STRING("mirror.iam_token_url", mirror_iam_url, 2048),
    /* Instance ids are GUIDs (36 characters); a little room for other forms. */
    STRING("mirror.instance_id", mirror_instance_id, 64),
    FILE_("mirror.api_key_file", mirror_api_key_file),
    FILE_("mirror.ca_bundle", mirror_ca_bundle),
    U32("mirror.poll_interval", mirror_poll_interval_s, 10, 86400),
    FILE_("pki.ca_certificate", pki_ca_certificate),
    FILE_("pki.ca_key", pki_ca_key),
    STRING("privsep.user", privsep_user, 32),
};

static const char *const groups[] = {"tls", "clients", "limits", "hsm", "store",
				     "crk", "admin",   "mirror", "pki", "privsep"};

struct parse {
	struct keel_config *cfg;
	struct keel_config_error *err;
	const char *name;
	const char *base_dir;
};

__attribute__((format(printf, 3, 4))) static int fail(struct parse *p, int line, const char *fmt,
						      ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* clang 14's analyzer reports ap as uninitialised when a caller passes
	 * no variadic arguments; va_start just above initialises it. */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vsnprintf(p->err->reason, sizeof(p->err->reason), fmt, ap);
	va_end(ap);
	snprintf(p->err->file, sizeof(p->err->file), "%s", p->name);
	p->err->line = line;
	return -1;
}

static void set_defaults(struct keel_config *cfg)
{
	cfg->tls_session_lifetime_s = 3600;
	cfg->max_connections = 4096;
	cfg->max_connections_per_client = 0; /* unset: max_connections (below) */
	cfg->max_message_size = 1u << 20;
	cfg->handshake_timeout_ms = 10000;
	cfg->idle_timeout_ms = 60000;
	cfg->frame_timeout_ms = 10000;
	cfg->drain_timeout_ms = 30000;
	cfg->worker_threads = 16; /* docs/benchmarks.md, "worker_threads" */
	cfg->log_level = KEEL_LOG_INFO;
	cfg->max_batch_items = 64;
	cfg->max_locate_items = 1000;
	cfg->hsm_pool_size = 8;
	cfg->hsm_timeout_ms = 0; /* off: the hand-off costs Get throughput (hardening.md) */
	cfg->hsm_wrap = KEEL_CONFIG_WRAP_GCM;
#ifdef KEEL_SANITIZE_BUILD
	/* LeakSanitizer ptraces the process at exit (docs/hardening.md). */
	cfg->seccomp = KEEL_CONFIG_SECCOMP_OFF;
#else
	cfg->seccomp = KEEL_CONFIG_SECCOMP_KILL;
#endif
	cfg->crk_rotation_batch = 200;
	cfg->mirror_poll_interval_s = 300;
}

int keel_listen_addr_parse(const char *text, struct keel_listen_addr *out)
{
	char host[64];
	const char *colon, *h = text;
	size_t hlen;
	char *end;
	unsigned long port;

	memset(out, 0, sizeof(*out));
	colon = strrchr(text, ':');
	if (colon == NULL || strlen(text) >= sizeof(out->text)) {
		return -1;
	}
	hlen = (size_t)(colon - text);
	if (text[0] == '[') {
		if (hlen < 2 || text[hlen - 1] != ']') {
			return -1;
		}
		h = text + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host) || colon[1] < '0' || colon[1] > '9') {
		return -1;
	}
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port > 65535) {
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (text[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->addr;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		out->addr_len = sizeof(*s6);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
			return -1;
		}
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&out->addr;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		out->addr_len = sizeof(*s4);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
			return -1;
		}
	}
	snprintf(out->text, sizeof(out->text), "%s", text);
	return 0;
}

static int get_u32(struct parse *p, const config_setting_t *s, const struct setting *d)
{
	int line = config_setting_source_line(s);
	long long v;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		return fail(p, line, "%s must be an integer", d->path);
	}
	v = config_setting_get_int64(s);
	if (v < d->min || v > d->max) {
		return fail(p, line, "%s = %lld is out of range [%u, %u]", d->path, v, d->min,
			    d->max);
	}
	*(uint32_t *)((char *)p->cfg + d->offset) = (uint32_t)v;
	return 0;
}

/* A file that may not exist yet (created on first open): its directory must,
 * and if the file exists it must be a regular file. */
static int check_new_file(struct parse *p, int line, const struct setting *d, const char *path)
{
	char *dir = strdup(path), *slash;
	struct stat st;
	int r = 0;

	if (dir == NULL) {
		return fail(p, line, "out of memory");
	}
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
	}
	if (slash != NULL && dir[0] != '\0' && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
		r = fail(p, line, "%s: directory %s does not exist", d->path, dir);
	} else if (stat(path, &st) == 0 && d->kind == K_SOCKET && !S_ISSOCK(st.st_mode)) {
		r = fail(p, line, "%s: %s exists and is not a socket", d->path, path);
	} else if (stat(path, &st) == 0 && d->kind == K_NEWFILE && !S_ISREG(st.st_mode)) {
		r = fail(p, line, "%s: %s is not a file", d->path, path);
	}
	free(dir);
	return r;
}

static int get_string(struct parse *p, const config_setting_t *s, const struct setting *d)
{
	int line = config_setting_source_line(s);
	const char *v = config_setting_get_string(s);
	char **dst = (char **)((char *)p->cfg + d->offset);

	if (v == NULL) {
		return fail(p, line, "%s must be a string", d->path);
	}
	if (strlen(v) < d->min || strlen(v) > d->max) {
		return fail(p, line, "%s must have %u to %u characters", d->path, d->min, d->max);
	}
	free(*dst);
	if ((*dst = strdup(v)) == NULL) {
		return fail(p, line, "out of memory");
	}
	return 0;
}

/* One of d->choices, stored as its index in the enum at d->offset. */
static int get_choice(struct parse *p, const config_setting_t *s, const struct setting *d)
{
	const char *v = config_setting_get_string(s);
	char names[128] = "";
	int n;

	for (n = 0; d->choices[n] != NULL; n++) {
		if (v != NULL && strcmp(v, d->choices[n]) == 0) {
			*(int *)((char *)p->cfg + d->offset) = n;
			return 0;
		}
	}
	for (int i = 0; i < n; i++) { /* "a", "b" or "c" */
		const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
		size_t used = strlen(names);

		snprintf(names + used, sizeof(names) - used, "%s\"%s\"", sep, d->choices[i]);
	}
	return fail(p, config_setting_source_line(s), "%s must be %s", d->path, names);
}

static int get_path(struct parse *p, const config_setting_t *s, const struct setting *d)
{
	int line = config_setting_source_line(s);
	const char *v = config_setting_get_string(s);
	char **dst = (char **)((char *)p->cfg + d->offset);
	struct stat st;

	if (v == NULL) {
		return fail(p, line, "%s must be a string", d->path);
	}
	if (v[0] == '\0') {
		return fail(p, line, "%s must not be empty", d->path);
	}
	free(*dst);
	*dst = NULL;
	if (v[0] == '/' || p->base_dir == NULL) {
		*dst = strdup(v);
	} else if (asprintf(dst, "%s/%s", p->base_dir, v) < 0) {
		*dst = NULL;
	}
	if (*dst == NULL) {
		return fail(p, line, "out of memory");
	}
	/* Checked now, so that a wrong path is reported with its line. */
	if (d->kind == K_NEWFILE || d->kind == K_SOCKET) {
		return check_new_file(p, line, d, *dst);
	}
	if (stat(*dst, &st) != 0) {
		return fail(p, line, "%s: %s: %s", d->path, *dst, strerror(errno));
	}
	if (d->kind == K_DIR && !S_ISDIR(st.st_mode)) {
		return fail(p, line, "%s: %s is not a directory", d->path, *dst);
	}
	if (d->kind == K_FILE && !S_ISREG(st.st_mode)) {
		return fail(p, line, "%s: %s is not a file", d->path, *dst);
	}
	return 0;
}

static int get_level(struct parse *p, const config_setting_t *s, const struct setting *d)
{
	int line = config_setting_source_line(s);
	const char *v = config_setting_get_string(s);

	if (v == NULL || keel_log_level_parse(v, &p->cfg->log_level) != 0) {
		return fail(p, line, "%s must be one of error, warning, notice, info, debug",
			    d->path);
	}
	return 0;
}

static int get_listen(struct parse *p, const config_setting_t *s, const struct setting *d)
{
	int line = config_setting_source_line(s);
	int n = config_setting_length(s);

	struct keel_listen_addr *addrs = (struct keel_listen_addr *)((char *)p->cfg + d->offset);

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		return fail(p, line, "%s must be a list of \"address:port\" strings", d->path);
	}
	if (n < 1 || n > KEEL_LISTEN_MAX) {
		return fail(p, line, "%s needs 1 to %d addresses", d->path, KEEL_LISTEN_MAX);
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL || keel_listen_addr_parse(v, &addrs[i]) != 0) {
			return fail(p, line, "%s[%d]: expected \"1.2.3.4:port\" or \"[v6]:port\"",
				    d->path, i);
		}
	}
	*(size_t *)((char *)p->cfg + d->num_offset) = (size_t)n;
	return 0;
}

static const struct setting *find_setting(const char *path)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		if (strcmp(settings[i].path, path) == 0) {
			return &settings[i];
		}
	}
	return NULL;
}

static bool is_group_name(const char *name)
{
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (strcmp(groups[i], name) == 0) {
			return true;
		}
	}
	return false;
}

static int apply(struct parse *p, const config_setting_t *s, const char *path)
{
	const struct setting *d = find_setting(path);

	if (d == NULL) {
		return fail(p, config_setting_source_line(s), "unknown setting %s", path);
	}
	switch (d->kind) {
	case K_U32:
		return get_u32(p, s, d);
	case K_FILE:
	case K_DIR:
	case K_NEWFILE:
	case K_SOCKET:
		return get_path(p, s, d);
	case K_STRING:
		return get_string(p, s, d);
	case K_CHOICE:
		return get_choice(p, s, d);
	case K_LEVEL:
		return get_level(p, s, d);
	case K_LISTEN:
		return get_listen(p, s, d);
	}
	return -1;
}

/* Walks the file rather than looking settings up, so that every name in it
 * is accounted for: known ones are checked, unknown ones rejected. */
static int walk(struct parse *p, const config_setting_t *root)
{
	char path[128];
	int n = config_setting_length(root);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		int line = config_setting_source_line(s);

		if (!config_setting_is_group(s)) {
			if (apply(p, s, name) != 0) {
				return -1;
			}
			continue;
		}
		if (!is_group_name(name)) {
			return fail(p, line, "unknown section %s", name);
		}
		for (int j = 0; j < config_setting_length(s); j++) {
			const config_setting_t *c = config_setting_get_elem(s, (unsigned)j);

			snprintf(path, sizeof(path), "%s.%s", name, config_setting_name(c));
			if (apply(p, c, path) != 0) {
				return -1;
			}
		}
	}
	return 0;
}

static int line_of(const config_t *lc, const char *path)
{
	const config_setting_t *s = config_lookup(lc, path);

	return s == NULL ? 0 : config_setting_source_line(s);
}

/* The API key travels to these URLs: TLS only. */
static int check_https(struct parse *p, const config_t *lc, const char *path, const char *url)
{
	if (url != NULL && strncmp(url, "https://", 8) != 0) {
		return fail(p, line_of(lc, path), "%s must be an https:// URL", path);
	}
	return 0;
}

static int check_mirror(struct parse *p, const config_t *lc)
{
	const struct keel_config *c = p->cfg;

	if (config_lookup(lc, "mirror") == NULL) {
		return 0;
	}
	if (c->mirror_instance_id == NULL || c->mirror_api_key_file == NULL) {
		return fail(p, line_of(lc, "mirror"), "mirror needs instance_id and api_key_file");
	}
	if (check_https(p, lc, "mirror.endpoint", c->mirror_endpoint) != 0 ||
	    check_https(p, lc, "mirror.iam_token_url", c->mirror_iam_url) != 0) {
		return -1;
	}
	return 0;
}

/* Each network loop needs a channel of its own to the key process, which
 * has one per worker thread. Unset: one loop per online CPU, within both. */
static int check_threads(struct parse *p, const config_t *lc)
{
	struct keel_config *c = p->cfg;
	long n;

	if (c->network_threads > c->worker_threads) {
		return fail(p, line_of(lc, "network_threads"),
			    "network_threads = %u exceeds worker_threads (%u)", c->network_threads,
			    c->worker_threads);
	}
	if (c->network_threads == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		n = n < KEEL_NETWORK_THREADS_AUTO_MAX ? n : KEEL_NETWORK_THREADS_AUTO_MAX;
		n = n < (long)c->worker_threads ? n : (long)c->worker_threads;
		c->network_threads = n > 0 ? (uint32_t)n : 1;
	}
	return 0;
}

static int check_whole(struct parse *p, const config_t *lc)
{
	struct keel_config *c = p->cfg;

	if (c->tls_certificate == NULL || c->tls_private_key == NULL) {
		return fail(p, line_of(lc, "tls"),
			    "tls.certificate and tls.private_key are required");
	}
	if (config_lookup(lc, "hsm") != NULL &&
	    (c->hsm_module == NULL || c->hsm_token_label == NULL || c->hsm_pin_file == NULL)) {
		return fail(p, line_of(lc, "hsm"), "hsm needs module, token_label and pin_file");
	}
	if (config_lookup(lc, "store") != NULL && c->store_path == NULL) {
		return fail(p, line_of(lc, "store"), "store needs path");
	}
	if (check_mirror(p, lc) != 0) {
		return -1;
	}
	if (c->max_connections_per_client == 0) {
		c->max_connections_per_client = c->max_connections;
	}
	if (c->max_connections_per_client > c->max_connections) {
		return fail(p, line_of(lc, "limits.max_connections_per_client"),
			    "limits.max_connections_per_client exceeds limits.max_connections");
	}
	if (check_threads(p, lc) != 0) {
		return -1;
	}
	if (c->num_listen == 0) {
		c->num_listen = 1;
		if (keel_listen_addr_parse("127.0.0.1:5696", &c->listen[0]) != 0) {
			return fail(p, 0, "internal: default listen address");
		}
	}
	if (c->num_admin_listen == 0) {
		c->num_admin_listen = 1;
		if (keel_listen_addr_parse(KEEL_ADMIN_LISTEN_DEFAULT, &c->admin_listen[0]) != 0) {
			return fail(p, 0, "internal: default admin listen address");
		}
	}
	if (c->admin_socket == NULL &&
	    (c->admin_socket = strdup(KEEL_ADMIN_SOCKET_DEFAULT)) == NULL) {
		return fail(p, 0, "out of memory");
	}
	return 0;
}

static int load(config_t *lc, bool read_ok, struct parse *p, struct keel_config **out_cfg)
{
	int r = -1;

	memset(p->err, 0, sizeof(*p->err));
	if (!read_ok) {
		if (config_error_type(lc) == CONFIG_ERR_FILE_IO) {
			return fail(p, 0, "cannot read the file");
		}
		return fail(p, config_error_line(lc), "%s", config_error_text(lc));
	}
	if ((p->cfg = calloc(1, sizeof(*p->cfg))) == NULL) {
		return fail(p, 0, "out of memory");
	}
	set_defaults(p->cfg);
	if (walk(p, config_root_setting(lc)) != 0 || check_whole(p, lc) != 0) {
		goto out;
	}
	*out_cfg = p->cfg;
	p->cfg = NULL;
	r = 0;
out:
	keel_config_free(p->cfg);
	return r;
}

int keel_config_load_string(const char *text, const char *name, const char *base_dir,
			    struct keel_config **out_cfg, struct keel_config_error *err)
{
	struct parse p = {.err = err, .name = name, .base_dir = base_dir};
	config_t lc;
	int r;

	config_init(&lc);
	r = load(&lc, config_read_string(&lc, text) == CONFIG_TRUE, &p, out_cfg);
	config_destroy(&lc);
	return r;
}

int keel_config_load(const char *path, struct keel_config **out_cfg, struct keel_config_error *err)
{
	struct parse p = {.err = err, .name = path};
	char *dir = strdup(path), *slash;
	config_t lc;
	int r;

	if (dir == NULL) {
		memset(err, 0, sizeof(*err));
		return fail(&p, 0, "out of memory");
	}
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		p.base_dir = ".";
	} else {
		*slash = '\0';
		p.base_dir = slash == dir ? "/" : dir;
	}
	config_init(&lc);
	r = load(&lc, config_read_file(&lc, path) == CONFIG_TRUE, &p, out_cfg);
	config_destroy(&lc);
	free(dir);
	return r;
}

void keel_config_free(struct keel_config *cfg)
{
	if (cfg == NULL) {
		return;
	}
	free(cfg->user);
	free(cfg->privsep_user);
	free(cfg->tls_crl_file);
	free(cfg->tls_certificate);
	free(cfg->tls_private_key);
	free(cfg->clients_certificates_dir);
	free(cfg->clients_ca_file);
	free(cfg->hsm_module);
	free(cfg->hsm_token_label);
	free(cfg->hsm_pin_file);
	free(cfg->store_path);
	free(cfg->admin_socket);
	free(cfg->admin_certificates_dir);
	free(cfg->admin_enrolment_file);
	free(cfg->mirror_endpoint);
	free(cfg->mirror_iam_url);
	free(cfg->mirror_instance_id);
	free(cfg->mirror_api_key_file);
	free(cfg->mirror_ca_bundle);
	free(cfg->pki_ca_certificate);
	free(cfg->pki_ca_key);
	free(cfg);
}
