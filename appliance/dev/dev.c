/*
 * keeld --dev: see dev.h. Each step looks for its result first and makes it
 * only when absent, so a start after a crash half-way finishes the job.
 */
#include "dev.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "keel/pki.h"
#include "log.h"

#define PIN_BYTES   16
#define PIN_HEX_LEN 32 /* two hex digits a byte */

struct paths {
	const struct keel_dev *dev;
	char buf[PATH_MAX + 64];
};

/* DIR/|name|, in a buffer valid until the next call with the same |p|. */
static const char *at(struct paths *p, const char *name)
{
	snprintf(p->buf, sizeof(p->buf), "%s/%s", p->dev->dir, name);
	return p->buf;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* mkdir -p, the last component with |mode|. */
static int make_dir(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		return -1;
	}
	for (char *s = tmp + 1; *s != '\0'; s++) {
		if (*s == '/') {
			*s = '\0';
			if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
				keel_err("dev: cannot create %s: %m", tmp);
				return -1;
			}
			*s = '/';
		}
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST) {
		keel_err("dev: cannot create %s: %m", tmp);
		return -1;
	}
	return 0;
}

static int make_dirs(struct keel_dev *dev, const char *dir)
{
	static const char *const subdirs[] = {"softhsm", "softhsm/tokens", "secrets",
					      "certs",	 "clients",	   "data"};
	struct paths p = {.dev = dev};

	if (make_dir(dir, 0700) != 0) {
		return -1;
	}
	if (realpath(dir, dev->dir) == NULL) {
		keel_err("dev: %s: %m", dir);
		return -1;
	}
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if (make_dir(at(&p, subdirs[i]), 0700) != 0) {
			return -1;
		}
	}
	return 0;
}

/* Creates |path| with |mode| holding |len| bytes; an existing file is kept. */
static int write_new(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	bool ok;

	if (fd < 0) {
		keel_err("dev: cannot create %s: %m", path);
		return -1;
	}
	ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok) {
		keel_err("dev: cannot write %s", path);
		(void)unlink(path);
		return -1;
	}
	return 0;
}

static int make_pin(const char *path)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[PIN_BYTES];
	char pin[PIN_HEX_LEN + 1];
	int r = -1;

	if (exists(path)) {
		return 0;
	}
	if (RAND_bytes(raw, sizeof(raw)) == 1) {
		for (size_t i = 0; i < sizeof(raw); i++) {
			pin[2 * i] = hex[raw[i] >> 4];
			pin[2 * i + 1] = hex[raw[i] & 0xf];
		}
		pin[PIN_HEX_LEN] = '\n';
		r = write_new(path, pin, sizeof(pin), 0600);
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(pin, sizeof(pin));
	return r;
}

static int softhsm_conf(struct keel_dev *dev)
{
	struct paths p = {.dev = dev};
	char text[PATH_MAX + 200], conf[PATH_MAX + 64];
	int n;

	snprintf(conf, sizeof(conf), "%s", at(&p, "softhsm/softhsm2.conf"));
	n = snprintf(text, sizeof(text),
		     "# SoftHSM2 of keeld --dev; keeld sets SOFTHSM2_CONF to this file.\n"
		     "directories.tokendir = %s/softhsm/tokens\n"
		     "objectstore.backend = file\n"
		     "log.level = ERROR\n",
		     dev->dir);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		return -1;
	}
	if (!exists(conf) && write_new(conf, text, (size_t)n, 0600) != 0) {
		return -1;
	}
	return setenv("SOFTHSM2_CONF", conf, 1);
}

/* The first line of a PIN file we wrote, into |pin| (wiped by the caller). */
static int read_pin(const char *path, char pin[static PIN_HEX_LEN + 1])
{
	FILE *f = fopen(path, "re");
	char line[PIN_HEX_LEN + 2], iobuf[BUFSIZ];
	int r = -1;

	/* Our own stdio buffer, so that the PIN it held can be wiped. */
	if (f != NULL && setvbuf(f, iobuf, _IOFBF, sizeof(iobuf)) == 0 &&
	    fgets(line, sizeof(line), f) != NULL && strlen(line) == PIN_HEX_LEN + 1) {
		memcpy(pin, line, PIN_HEX_LEN);
		pin[PIN_HEX_LEN] = '\0';
		r = 0;
	}
	if (f != NULL) {
		fclose(f);
	}
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	OPENSSL_cleanse(line, sizeof(line));
	if (r != 0) {
		keel_err("dev: %s is not a PIN file made by keeld --dev", path);
	}
	return r;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = false;
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return empty;
}

/* softhsm2-util --init-token, output discarded. The PINs are on its command
 * line for the few milliseconds it runs: acceptable for a development token
 * in the user's own directory, never done for a production token. */
static int run_init_token(char *user_pin, char *so_pin)
{
	char *argv[] = {
	    "softhsm2-util", "--init-token", "--free",	 "--label", KEEL_DEV_TOKEN_LABEL,
	    "--pin",	     user_pin,	     "--so-pin", so_pin,    NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = -1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "softhsm2-util", &fa, NULL, argv, environ) != 0) {
		keel_err("dev: cannot run softhsm2-util (package softhsm2): %m");
	} else if (waitpid(pid, &st, 0) != pid) {
		st = -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		keel_err("dev: softhsm2-util --init-token failed");
		return -1;
	}
	return 0;
}

static int make_token(struct keel_dev *dev)
{
	struct paths p = {.dev = dev};
	char user_pin[PIN_HEX_LEN + 1], so_pin[PIN_HEX_LEN + 1];
	int r = -1;

	if (make_pin(at(&p, "secrets/user.pin")) != 0 || make_pin(at(&p, "secrets/so.pin")) != 0) {
		return -1;
	}
	if (!dir_empty(at(&p, "softhsm/tokens"))) {
		return 0;
	}
	if (read_pin(at(&p, "secrets/user.pin"), user_pin) == 0 &&
	    read_pin(at(&p, "secrets/so.pin"), so_pin) == 0) {
		keel_info("dev: creating SoftHSM2 token %s", KEEL_DEV_TOKEN_LABEL);
		r = run_init_token(user_pin, so_pin);
	}
	OPENSSL_cleanse(user_pin, sizeof(user_pin));
	OPENSSL_cleanse(so_pin, sizeof(so_pin));
	return r;
}

struct ca {
	X509 *cert;
	EVP_PKEY *key;
	bool fresh; /* made now: every leaf must be issued again */
};

static int load_or_make_ca(struct keel_dev *dev, struct ca *ca)
{
	struct paths crt = {.dev = dev}, key = {.dev = dev};

	at(&crt, "certs/ca.crt");
	at(&key, "secrets/ca.key");
	if (exists(crt.buf) && exists(key.buf)) {
		return keel_pki_read_cert(crt.buf, &ca->cert) == 0 &&
			       keel_pki_read_key(key.buf, &ca->key) == 0
			   ? 0
			   : -1;
	}
	keel_info("dev: creating the CA");
	ca->fresh = true;
	if (keel_pki_rsa_key(KEEL_PKI_CA_BITS, &ca->key) != 0 ||
	    keel_pki_ca_new(ca->key, "Keel dev CA", KEEL_PKI_CA_DAYS, &ca->cert) != 0 ||
	    keel_pki_write_key(key.buf, ca->key) != 0 ||
	    keel_pki_write_cert(crt.buf, ca->cert) != 0) {
		return -1;
	}
	return 0;
}

/* certs/|name|.crt and .key, issued by |ca| unless both exist under an old CA.
 * A client certificate is also registered: copied to clients/. */
static int make_leaf(struct keel_dev *dev, struct ca *ca, const char *name,
		     enum keel_pki_usage usage)
{
	struct paths crt = {.dev = dev}, key = {.dev = dev}, reg = {.dev = dev};
	struct keel_pki_leaf leaf = {
	    .ca = ca->cert, .ca_key = ca->key, .usage = usage, .days = KEEL_PKI_LEAF_DAYS};
	char rel[64];
	X509 *cert = NULL;
	int r = -1;

	snprintf(rel, sizeof(rel), "certs/%s.crt", name);
	at(&crt, rel);
	snprintf(rel, sizeof(rel), "certs/%s.key", name);
	at(&key, rel);
	snprintf(rel, sizeof(rel), "clients/%s.crt", name);
	at(&reg, rel);
	if (!ca->fresh && exists(crt.buf) && exists(key.buf) &&
	    (usage == KEEL_PKI_SERVER || exists(reg.buf))) {
		return 0;
	}
	keel_info("dev: creating the %s certificate", name);
	leaf.cn = usage == KEEL_PKI_SERVER ? "localhost" : "keel-dev-client";
	if (keel_pki_rsa_key(KEEL_PKI_LEAF_BITS, &leaf.pub) == 0 &&
	    keel_pki_issue(&leaf, &cert) == 0 && keel_pki_write_key(key.buf, leaf.pub) == 0 &&
	    keel_pki_write_cert(crt.buf, cert) == 0 &&
	    (usage == KEEL_PKI_SERVER || keel_pki_write_cert(reg.buf, cert) == 0)) {
		r = 0;
	}
	X509_free(cert);
	EVP_PKEY_free(leaf.pub);
	return r;
}

static int make_pki(struct keel_dev *dev)
{
	struct ca ca = {0};
	int r = -1;

	if (load_or_make_ca(dev, &ca) == 0 && make_leaf(dev, &ca, "server", KEEL_PKI_SERVER) == 0 &&
	    make_leaf(dev, &ca, "client", KEEL_PKI_CLIENT) == 0) {
		r = 0;
	}
	X509_free(ca.cert);
	EVP_PKEY_free(ca.key);
	return r;
}

/* A loopback port free now, for the admin API: it goes into keeld.conf so
 * that keelctl finds it, and stays the same on later starts. */
static int free_port(uint16_t *out_port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0) {
		*out_port = ntohs(sin.sin_port);
		r = 0;
	}
	if (fd >= 0) {
		close(fd);
	}
	return r;
}

/* Appends |text| to |path|. */
static int append(const char *path, const char *text)
{
	size_t n = strlen(text);
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	bool ok;

	if (fd < 0) {
		keel_err("dev: cannot open %s: %m", path);
		return -1;
	}
	ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok) {
		keel_err("dev: cannot write %s", path);
	}
	return ok ? 0 : -1;
}

static bool has_section(const char *path, const char *name)
{
	FILE *f = fopen(path, "re");
	size_t n = strlen(name);
	char line[512];
	bool found = false;

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL) {
		found = strncmp(line, name, n) == 0 && (line[n] == ':' || line[n] == ' ');
	}
	if (f != NULL) {
		fclose(f);
	}
	return found;
}

/* Sections that came after a dev directory was made are added to its
 * keeld.conf once: the admin API (on a loopback port free now, kept on
 * later starts so that keelctl finds it) and the CA that signs for it. */
static int add_new_sections(const char *path)
{
	char text[160];
	uint16_t port;

	if (!has_section(path, "admin")) {
		if (free_port(&port) != 0) {
			keel_err("dev: no free loopback port for the admin API");
			return -1;
		}
		snprintf(text, sizeof(text),
			 "admin: { listen = [ \"127.0.0.1:%u\" ]; socket = \"admin.sock\"; };\n",
			 port);
		if (append(path, text) != 0) {
			return -1;
		}
	}
	if (!has_section(path, "pki")) {
		return append(path, "pki: { ca_certificate = \"certs/ca.crt\"; "
				    "ca_key = \"secrets/ca.key\"; };\n");
	}
	return 0;
}

static int make_config(struct keel_dev *dev)
{
	static const char text[] =
	    "# Written by keeld --dev on its first start and never rewritten: edit freely.\n"
	    "# Relative paths are relative to this directory. Run outside --dev, keeld\n"
	    "# needs SOFTHSM2_CONF=softhsm/softhsm2.conf (absolute) in its environment.\n"
	    "# Every setting: keeld.conf.example in Keel's sources.\n"
	    "listen = [ \"127.0.0.1:5696\" ];\n"
	    "log_level = \"info\";\n"
	    "tls: { certificate = \"certs/server.crt\"; private_key = \"certs/server.key\"; };\n"
	    "clients: { certificates_dir = \"clients\"; };\n"
	    "hsm: { module = \"softhsm2\"; token_label = \"" KEEL_DEV_TOKEN_LABEL "\";\n"
	    "       pin_file = \"secrets/user.pin\"; };\n"
	    "store: { path = \"data/keel.db\"; };\n";

	snprintf(dev->config_path, sizeof(dev->config_path), "%s/keeld.conf", dev->dir);
	if (!exists(dev->config_path) &&
	    write_new(dev->config_path, text, sizeof(text) - 1, 0600) != 0) {
		return -1;
	}
	return add_new_sections(dev->config_path);
}

/* KMIP 1.1 Discover Versions with an empty payload, as vCenter sends it
 * (VCENTER.md §1): RequestMessage { RequestHeader { ProtocolVersion 1.1,
 * BatchCount 1 }, BatchItem { Operation 0x1E, RequestPayload {} } }. */
static const unsigned char discover_versions[] = {
    0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x60, 0x42, 0x00, 0x77, 0x01, 0x00, 0x00, 0x00,
    0x38, 0x42, 0x00, 0x69, 0x01, 0x00, 0x00, 0x00, 0x20, 0x42, 0x00, 0x6a, 0x02, 0x00, 0x00,
    0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x42, 0x00, 0x6b, 0x02, 0x00,
    0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x42, 0x00, 0x0d, 0x02,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x42, 0x00, 0x0f,
    0x01, 0x00, 0x00, 0x00, 0x18, 0x42, 0x00, 0x5c, 0x05, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
    0x00, 0x1e, 0x00, 0x00, 0x00, 0x00, 0x42, 0x00, 0x79, 0x01, 0x00, 0x00, 0x00, 0x00,
};

int keel_dev_prepare(const char *dir, struct keel_dev *out)
{
	struct paths p = {.dev = out};

	memset(out, 0, sizeof(*out));
	if (make_dirs(out, dir) != 0 || softhsm_conf(out) != 0 || make_token(out) != 0 ||
	    make_pki(out) != 0 || make_config(out) != 0) {
		return -1;
	}
	at(&p, "discover-versions.ttlv");
	if (!exists(p.buf) &&
	    write_new(p.buf, discover_versions, sizeof(discover_versions), 0644) != 0) {
		return -1;
	}
	return 0;
}

/* keelctl next to this keeld (an install or build/stage), else from PATH. */
static void keelctl_path(char *out, size_t out_len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	snprintf(out, out_len, "keelctl");
	if (n <= 0) {
		return;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (snprintf(out, out_len, "%s/keelctl", self) >= (int)out_len ||
		    access(out, X_OK) != 0) {
			snprintf(out, out_len, "keelctl");
		}
	}
}

void keel_dev_print(const struct keel_dev *dev, const char *host, uint16_t port)
{
	const char *d = dev->dir;
	char keelctl[PATH_MAX];

	keelctl_path(keelctl, sizeof(keelctl));
	printf("\nKeel development appliance in %s\n"
	       "  KMIP over mutual TLS  %s:%u\n"
	       "  config                %s/keeld.conf\n"
	       "  CA certificate        %s/certs/ca.crt\n"
	       "  server certificate    %s/certs/server.crt (key server.key)\n"
	       "  client certificate    %s/certs/client.crt (key client.key; registered)\n"
	       "  SoftHSM2 token        %s in %s/softhsm (PINs in %s/secrets)\n"
	       "  store                 %s/data/keel.db\n"
	       "Check it (KMIP Discover Versions, answered as text):\n"
	       "  (cat %s/discover-versions.ttlv; sleep 1) | openssl s_client -quiet -no_ign_eof"
	       " -connect %s:%u -CAfile %s/certs/ca.crt -cert %s/certs/client.crt"
	       " -key %s/certs/client.key 2>/dev/null | %s ttlv convert --from bin\n"
	       "Ctrl-C stops it; starting it again reuses all of the above.\n",
	       d, host, port, d, d, d, d, KEEL_DEV_TOKEN_LABEL, d, d, d, d, host, port, d, d, d,
	       keelctl);
	fflush(stdout);
}
