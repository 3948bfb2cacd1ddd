/*
 * keeld's configuration: one libconfig file (/etc/keel/keeld.conf by default).
 * Every setting is checked at load time; the first bad one is reported with
 * its file, line and reason, and nothing is started. appliance/keeld.conf.example
 * documents each setting.
 */
#ifndef KEEL_CONFIG_H
#define KEEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log.h"

#define KEEL_CONFIG_DEFAULT_PATH  "/etc/keel/keeld.conf"
#define KEEL_LISTEN_MAX		  16
#define KEEL_ADMIN_SOCKET_DEFAULT "/run/keel/admin.sock"
#define KEEL_ADMIN_LISTEN_DEFAULT "0.0.0.0:8443"

/* network_threads: the most a file may set, and the most the default takes
 * (the online CPUs) without being asked. */
#define KEEL_NETWORK_THREADS_MAX      64
#define KEEL_NETWORK_THREADS_AUTO_MAX 16

struct keel_listen_addr {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char text[64]; /* as written, for logs */
};

/* How the HSM wraps key material (hsm.wrap): enum hsm_wrap_mode's values. */
enum keel_config_wrap {
	KEEL_CONFIG_WRAP_GCM = 0,
	KEEL_CONFIG_WRAP_KWP = 1,
};

/* keeld's seccomp filter (seccomp): enum keel_sandbox_mode's values. */
enum keel_config_seccomp {
	KEEL_CONFIG_SECCOMP_KILL = 0,
	KEEL_CONFIG_SECCOMP_LOG = 1,
	KEEL_CONFIG_SECCOMP_OFF = 2,
};

struct keel_config {
	struct keel_listen_addr listen[KEEL_LISTEN_MAX];
	size_t num_listen;
	/* Paths are absolute: relative ones are resolved against the file's directory. */
	char *tls_certificate; /* PEM: leaf first, then the chain sent to clients */
	char *tls_private_key;
	uint32_t tls_session_lifetime_s;
	char *tls_crl_file;		/* PEM CRLs of client certificates; NULL: none */
	char *clients_certificates_dir; /* registered client leaf certificates, PEM */
	char *clients_ca_file;		/* CAs whose clients are registered, PEM */
	uint32_t max_connections;
	uint32_t max_connections_per_client;
	uint32_t max_message_size;
	uint32_t handshake_timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t frame_timeout_ms;
	uint32_t drain_timeout_ms;
	uint32_t worker_threads;
	/* Network event loops, each on its own thread (appliance/server/src/
	 * listener.c); at most worker_threads. Unset: the online CPUs, at most
	 * KEEL_NETWORK_THREADS_AUTO_MAX. */
	uint32_t network_threads;
	enum keel_log_level log_level;
	/* Started as root, keeld runs as this user once its sockets are bound
	 * and its token and store are open (NULL: it keeps its user). */
	char *user;
	/* keeld runs as two processes (docs/hardening.md, "Privilege
	 * separation"); the network process runs as privsep_user (NULL:
	 * "nobody" when started as root, else keeld's own user). */
	char *privsep_user;
	/* After start-up keeld installs its seccomp allow-list: a call off the
	 * list kills it ("kill", the default), or is logged ("log", to debug
	 * the list); "off" (the default in sanitizer builds) installs none. */
	enum keel_config_seccomp seccomp;
	/* hsm section: all NULL when absent (keeld requires it, the tests' echo
	 * server does not). Present, it needs module, token_label and pin_file. */
	char *hsm_module; /* p11-kit module name, or a path if it contains '/' */
	char *hsm_token_label;
	char *hsm_pin_file;
	uint32_t hsm_pool_size;
	uint32_t hsm_timeout_ms; /* a key-serving token call's bound; 0: none */
	enum keel_config_wrap hsm_wrap;
	/* store section: NULL when absent. The file may not exist yet; its
	 * directory must. */
	char *store_path;
	/* crk section: how a CRK rotation paces its rewraps (appliance/crk). */
	uint32_t crk_rotation_batch;	/* objects per store transaction */
	uint32_t crk_rotation_pause_ms; /* between batches */
	/* admin section: the management API (appliance/admin). */
	struct keel_listen_addr admin_listen[KEEL_LISTEN_MAX]; /* HTTPS, mutual TLS */
	size_t num_admin_listen;
	char *admin_socket;	      /* UNIX socket, local root (or keeld's user) only */
	char *admin_certificates_dir; /* administrators registered on the first start */
	char *admin_enrolment_file;   /* a one-time enrolment code's verifier */
	/* mirror section: IBM Key Protect (appliance/mirror); all NULL when absent.
	 * Present, it needs instance_id and api_key_file; a NULL endpoint or
	 * iam_token_url means IBM's public us-south endpoints (mirror.h). */
	char *mirror_endpoint;	   /* https://<region>.kms.cloud.ibm.com */
	char *mirror_iam_url;	   /* https://iam.cloud.ibm.com/identity/token */
	char *mirror_instance_id;  /* Bluemix-Instance GUID */
	char *mirror_api_key_file; /* 0600, keeld's user; checked when it is read */
	char *mirror_ca_bundle;	   /* PEM CAs to trust; NULL: the system's */
	uint32_t mirror_poll_interval_s;
	/* pki section: Keel's CA, which signs client CSRs, issues client and
	 * server certificates (keelctl client sign-csr|issue, server-cert renew). */
	char *pki_ca_certificate;
	char *pki_ca_key;
	/* The engine's limits (limits section). */
	uint32_t max_batch_items;
	uint32_t max_locate_items;
};

struct keel_config_error {
	char file[256];
	int line; /* 0 when the problem has no line (missing file, missing setting) */
	char reason[256];
};

/* Loads and checks |path|. On success *out_cfg is the caller's (keel_config_free).
 * On failure returns -1 and fills |err|. */
__attribute__((warn_unused_result)) int
keel_config_load(const char *path, struct keel_config **out_cfg, struct keel_config_error *err);

/* As keel_config_load, from text; |name| stands for the file name in errors
 * and |base_dir| resolves relative paths. */
__attribute__((warn_unused_result)) int keel_config_load_string(const char *text, const char *name,
								const char *base_dir,
								struct keel_config **out_cfg,
								struct keel_config_error *err);

void keel_config_free(struct keel_config *cfg);

/* Parses "1.2.3.4:port" or "[v6]:port" (port 0 = any free port). 0 or -1. */
__attribute__((warn_unused_result)) int keel_listen_addr_parse(const char *text,
							       struct keel_listen_addr *out);

#endif
