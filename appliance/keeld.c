/*
 * keeld: the KMIP server vCenter and ESXi use as their key provider.
 * This file is the process: options, hardening, then two processes in the
 * OpenSSH manner (appliance/privsep, docs/hardening.md): the network process
 * runs the daemon loop (daemon.c) and forwards each request to the key
 * process, which answers it with the KMIP engine.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "crk/rotation.h"
#include "daemon.h"
#include "dev/dev.h"
#include "engine/engine.h"
#include "engine/manage.h"
#include "keel/admin.h"
#include "keel/clients.h"
#include "keel/hsm.h"
#include "keel/metrics.h"
#include "keel/mirror.h"
#include "keel/sandbox.h"
#include "log.h"
#include "privsep/privsep.h"
#include "wipe.h"

/* Exit statuses, for scripts and systemd (RestartPreventExitStatus=2 3). */
enum {
	EXIT_FAILED = 1,  /* configuration, start-up, or a drain that timed out */
	EXIT_USAGE = 2,	  /* bad command line */
	EXIT_HSM_PIN = 3, /* the token refused the PIN, or the PIN file is unusable */
	EXIT_HSM = 4,	  /* PKCS#11 module or token not found or not answering */
	EXIT_STORE = 5,	  /* the store could not be opened */
};

/* What keeld opens besides the server: the token and the engine over it. */
struct backends {
	const char *config_path;
	const char *dev_dir_arg; /* --dev DIR; NULL otherwise */
	struct keel_dev dev_dir;
	struct hsm *hsm;
	struct keel_engine *engine;
	struct keel_rotation *rotation;
	struct keel_admin *admin;
	struct keel_clients *clients;  /* the registry's snapshot */
	struct mirror_service *mirror; /* NULL without a mirror section */
	struct mirror_recovery *recovery;
	struct keel_config *cfg; /* as first read: the process model */
	struct ps_key *psk;	 /* the key process's side */
	struct ps_key_config psk_cfg;
	int *psk_fds; /* its ends of the socket pairs */
};

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: keeld [--config FILE | --dev DIR] [--listen ADDR:PORT] [--log-level LEVEL]\n"
	       "       keeld --print-routes\n"
	       "  -c, --config FILE      configuration (default " KEEL_CONFIG_DEFAULT_PATH ")\n"
	       "  -d, --dev DIR          a self-contained development appliance in DIR: made\n"
	       "                         on the first start (SoftHSM2 token, CRK, CA, server\n"
	       "                         and client certificates, DIR/keeld.conf), reused later\n"
	       "      --listen ADDR:PORT listen there instead of the file's addresses\n"
	       "  -l, --log-level LEVEL  error, warning, notice, info or debug; overrides\n"
	       "                         the file's log_level\n"
	       "      --print-routes     print the admin API's routes (method, path, least\n"
	       "                         role) and exit\n"
	       "  -h, --help             this text\n"
	       "  -V, --version          print the version\n"
	       "Signals: SIGHUP reloads certificates and client registrations;\n"
	       "SIGTERM stops accepting, answers in-flight requests and exits 0.\n"
	       "Exit status: 1 configuration or start-up failure, 2 usage, 3 the HSM refused\n"
	       "the PIN (or the PIN file is unusable), 4 HSM module or token unavailable,\n"
	       "5 the store could not be opened.\n");
}

/* Key material passes through this process: it must never reach a core
 * file or another process's ptrace. Many connections need many descriptors. */
static int harden(void)
{
	struct rlimit core = {0, 0}, nofile;

	if (setrlimit(RLIMIT_CORE, &core) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		keel_err("cannot disable core dumps");
		return -1;
	}
	/* Past a file size limit (RLIMIT_FSIZE) a write must fail with EFBIG,
	 * which the store reports like a full disk, not kill the process. */
	signal(SIGXFSZ, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
			keel_warn("cannot raise the open file limit");
		}
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct keel_daemon_opts *opts, struct backends *b)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"dev", required_argument, NULL, 'd'},
	    {"listen", required_argument, NULL, 'L'}, {"log-level", required_argument, NULL, 'l'},
	    {"print-routes", no_argument, NULL, 'R'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	enum keel_log_level level;
	bool config_given = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:d:l:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opts->config_path = optarg;
			config_given = true;
			break;
		case 'd':
			b->dev_dir_arg = optarg;
			break;
		case 'L':
			opts->listen_override = optarg;
			break;
		case 'l':
			if (keel_log_level_parse(optarg, &level) != 0) {
				fprintf(stderr, "keeld: unknown log level %s\n", optarg);
				return EXIT_USAGE;
			}
			keel_log_set_level(level);
			opts->log_level_forced = true;
			break;
		case 'R':
			keel_admin_print_routes(stdout);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("keeld %s\n", KEEL_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (config_given && b->dev_dir_arg != NULL)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}

/* libhsm's diagnostics, in keeld's log. They never carry the PIN or keys. */
static void hsm_log(void *arg, enum hsm_log_level level, const char *msg)
{
	static const enum keel_log_level map[] = {
	    [HSM_LOG_ERROR] = KEEL_LOG_ERROR,
	    [HSM_LOG_WARNING] = KEEL_LOG_WARNING,
	    [HSM_LOG_INFO] = KEEL_LOG_INFO,
	    [HSM_LOG_DEBUG] = KEEL_LOG_DEBUG,
	};

	keel_log((unsigned)level < sizeof(map) / sizeof(map[0]) ? map[level] : KEEL_LOG_ERROR,
		 "hsm: %s", msg);
}

static void hsm_observe(void *arg, uint64_t ns)
{
	keel_metrics_hsm_call(ns);
}

/* Opens the token; a refused PIN is final (never retried, so restarts cannot
 * lock the token) and has its own exit status. */
static int open_hsm(const struct keel_config *cfg, struct backends *b)
{
	const struct hsm_config hc = {
	    .module = cfg->hsm_module,
	    .token_label = cfg->hsm_token_label,
	    .pin_file = cfg->hsm_pin_file,
	    .pool_size = cfg->hsm_pool_size,
	    .timeout_ms = cfg->hsm_timeout_ms,
	    .wrap_mode = cfg->hsm_wrap == KEEL_CONFIG_WRAP_KWP ? HSM_WRAP_KWP : HSM_WRAP_GCM,
	    .log = hsm_log,
	    .observe = hsm_observe,
	};
	int r = hsm_open(&hc, &b->hsm);

	if (r == 0) {
		return 0;
	}
	keel_err("hsm: cannot open token \"%s\" through %s: %s", cfg->hsm_token_label,
		 cfg->hsm_module, hsm_strerror(r));
	switch (r) {
	case HSM_E_PIN_INCORRECT:
		keel_err("hsm: the token refused the PIN in %s; keeld tries a PIN once, fix "
			 "the file and start again",
			 cfg->hsm_pin_file);
		return EXIT_HSM_PIN;
	case HSM_E_PIN_LOCKED:
	case HSM_E_PIN_FILE:
		return EXIT_HSM_PIN;
	default:
		return EXIT_HSM;
	}
}

/* The CRK wraps every key. A development token gets one on its first start;
 * a production token gets one from the operator (keelctl hsm init-crk). */
static int check_crk(struct backends *b)
{
	uint32_t version = 0;
	int r = hsm_crk_active(b->hsm, &version);

	if (r == HSM_E_CRK_NOT_FOUND && b->dev_dir_arg != NULL) {
		keel_info("dev: creating the CRK");
		r = hsm_crk_generate(b->hsm, 0, &version);
	}
	if (r == HSM_E_CRK_NOT_FOUND) {
		keel_warn("hsm: the token has no CRK yet: create one with keelctl hsm init-crk");
		return 0;
	}
	if (r != 0) {
		keel_err("hsm: CRK: %s", hsm_strerror(r));
		return EXIT_HSM;
	}
	keel_info("hsm: CRK version %u is active", version);
	return 0;
}

/* A new CRK version: the mirror's when it mirrors the CRK itself (imported mode). */
static int new_crk_version(void *arg, uint32_t *out_version)
{
	struct backends *b = arg;

	return b->mirror != NULL ? mirror_service_new_crk(b->mirror, out_version) : 1;
}

/*
 * CRK rotation, resuming one a previous run left. It shares the engine's
 * store, so its batches queue with KMIP writers on the store's writer mutex
 * and share their group commits instead of meeting them in SQLite's busy
 * handler.
 */
static int start_crk(const struct keel_config *cfg, struct backends *b)
{
	const struct keel_rotation_config rc = {
	    .hsm = b->hsm,
	    .store = keel_engine_store(b->engine),
	    .batch = cfg->crk_rotation_batch,
	    .pause_ms = cfg->crk_rotation_pause_ms,
	    .new_version_fn = new_crk_version,
	    .new_version_arg = b,
	};
	int r;

	if ((r = keel_rotation_new(&rc, &b->rotation)) != 0) {
		keel_err("crk: %s", keel_rotation_strerror(r));
		return EXIT_FAILED;
	}
	return 0;
}

/* The client registry: the config's files on the first start, then the
 * store's, as a snapshot the handshakes and the admin API read; and the
 * first administrator's enrolment code, if the config names one. */
static int open_clients(const struct keel_config *cfg, struct backends *b)
{
	struct keel_store *store = keel_engine_store(b->engine);

	if (keel_clients_import(store, cfg->clients_certificates_dir, cfg->clients_ca_file,
				cfg->admin_certificates_dir) != 0 ||
	    keel_admin_enrolment_offer(store, cfg->admin_enrolment_file) != 0 ||
	    keel_clients_new(store, &b->clients) != 0) {
		return EXIT_STORE;
	}
	return 0;
}

/* The mirror's worker asks the engine for what it escrows. */
static int export_object(void *arg, const char *uid, struct hsm_secret **out)
{
	int r = keel_engine_export(arg, uid, out);

	return r == 0				     ? 0
	       : r == KEEL_ENGINE_EXPORT_E_NOT_FOUND ? MIRROR_E_NOT_FOUND
						     : MIRROR_E_INVAL;
}

/* The mirror's revocation polling stops and resumes key serving. */
static void refuse_keys(void *arg, const char *why)
{
	keel_engine_refuse(arg, why);
}

/* An escrow key deleted in Key Protect: that one object is revoked and destroyed. */
static void withdraw_object(void *arg, const char *uid)
{
	struct keel_manage_ctx c = {.actor = "mirror"};
	bool done = false;

	if (keel_manage_key_withdraw(arg, &c, uid, "escrow deleted in Key Protect", &done) != 0) {
		keel_warn("mirror: withdrawing %s: %s", uid, c.msg);
	} else if (done) {
		keel_notice("mirror: %s revoked and destroyed: its escrow key was deleted in Key "
			    "Protect",
			    uid);
	}
}

/* A recovery's restore of one escrowed object (mirror.h, mirror_import_fn). */
static int import_object(void *arg, const char *uid, struct hsm_secret *plain, const char **why)
{
	bool identical = false;
	int r =
	    keel_engine_import(arg, uid, hsm_secret_data(plain), hsm_secret_len(plain), &identical);

	*why = keel_engine_import_strerror(r);
	return r == 0 && identical ? 1 : r;
}

static int adopt_root(void *arg, const struct mirror_key *root, bool start)
{
	return mirror_service_adopt(arg, root, start);
}

/* The Key Protect mirror, when configured: its worker runs once it is enabled. */
static int open_mirror(const struct keel_config *cfg, struct backends *b)
{
	const struct mirror_service_config mc = {
	    .client = {.endpoint = cfg->mirror_endpoint,
		       .iam_url = cfg->mirror_iam_url,
		       .instance_id = cfg->mirror_instance_id,
		       .api_key_file = cfg->mirror_api_key_file,
		       .ca_bundle = cfg->mirror_ca_bundle},
	    .store = keel_engine_store(b->engine),
	    .hsm = b->hsm,
	    .export_fn = export_object,
	    .export_arg = b->engine,
	    .poll_ms = cfg->mirror_poll_interval_s * 1000,
	    .refuse_fn = refuse_keys,
	    .refuse_arg = b->engine,
	    .withdraw_fn = withdraw_object,
	    .withdraw_arg = b->engine,
	};

	struct mirror_recovery_config rc = {
	    .client = mc.client,
	    .store = mc.store,
	    .import_fn = import_object,
	    .import_arg = b->engine,
	    .adopt_fn = adopt_root,
	};

	if (cfg->mirror_instance_id == NULL) {
		return 0;
	}
	if (mirror_service_open(&mc, &b->mirror) != 0) {
		return EXIT_FAILED;
	}
	rc.adopt_arg = b->mirror;
	return mirror_recovery_new(&rc, &b->recovery) == 0 ? 0 : EXIT_FAILED;
}

/* An administrator's change reaches the network process before the answer. */
static void push_registry(void *arg)
{
	if (ps_key_push(arg) != 0) {
		keel_warn("admin: KMIP takes the change at the next SIGHUP");
	}
}

/* The management API, on its own thread over the engine's store and token. */
static int start_admin(const struct keel_config *cfg, struct backends *b)
{
	const struct keel_admin_config ac = {
	    .cfg = cfg,
	    .store = keel_engine_store(b->engine),
	    .engine = b->engine,
	    .hsm = b->hsm,
	    .clients = b->clients,
	    .version = KEEL_VERSION,
	    .rotation = b->rotation,
	    .config_path = b->config_path,
	    .mirror = b->mirror,
	    .recovery = b->recovery,
	    .registry_changed = b->psk != NULL ? push_registry : NULL,
	    .registry_changed_arg = b->psk,
	};

	return keel_admin_start(&ac, &b->admin) == 0 ? 0 : EXIT_FAILED;
}

static int open_backends(const struct keel_config *cfg, void *arg, void **io_handler_ctx)
{
	struct backends *b = arg;
	struct keel_engine_config ec = {
	    .store_path = cfg->store_path,
	    .max_message_len = cfg->max_message_size,
	    .max_batch_items = cfg->max_batch_items,
	    .max_locate_items = cfg->max_locate_items,
	};
	int r;

	if (cfg->hsm_module == NULL || cfg->store_path == NULL) {
		keel_err("%s: keeld needs the hsm and store sections (see keeld.conf.example)",
			 b->config_path);
		return EXIT_FAILED;
	}
	if ((r = open_hsm(cfg, b)) != 0 || (r = check_crk(b)) != 0) {
		return r;
	}
	ec.hsm = b->hsm;
	if (keel_engine_open(&ec, &b->engine) != 0) {
		keel_err("cannot open the store %s", cfg->store_path);
		return EXIT_STORE;
	}
	*io_handler_ctx = b->engine;
	if ((r = open_clients(cfg, b)) != 0 || (r = start_crk(cfg, b)) != 0 ||
	    (r = open_mirror(cfg, b)) != 0) {
		return r;
	}
	return start_admin(cfg, b);
}

/* Drops every capability: a keeld whose unit gives it CAP_SETUID and
 * CAP_SETGID (to start its network process as another user) keeps none once
 * started. Clearing the permitted set clears the ambient one too. */
static int drop_capabilities(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
	bool any = false;

	/* Zeroed first: valgrind marks only the first of the two words written. */
	memset(caps, 0, sizeof(caps));
	if (syscall(SYS_capget, &hdr, caps) != 0) {
		return -1;
	}
	for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		any |= (caps[i].permitted | caps[i].inheritable) != 0;
	}
	/* Without any, no capset: the unit's filter may refuse it (@privileged). */
	memset(caps, 0, sizeof(caps));
	return !any || syscall(SYS_capset, &hdr, caps) == 0 ? 0 : -1;
}

/* Switches to |user| (NULL: stays who it is): the sockets are bound (and,
 * in the key process, the token and store open), so nothing left needs
 * root or a capability. No way back, and no new privileges through exec. A
 * root keeld without a user stays root: the configuration's choice. */
static int become(const char *user)
{
	struct passwd pw, *found = NULL;
	char buf[4096];

	if (user != NULL) {
		if (getpwnam_r(user, &pw, buf, sizeof(buf), &found) != 0 || found == NULL) {
			keel_err("user %s: no such user", user);
			return EXIT_FAILED;
		}
		if ((geteuid() != pw.pw_uid || getegid() != pw.pw_gid) &&
		    (setgroups(1, &pw.pw_gid) != 0 || setgid(pw.pw_gid) != 0 ||
		     setuid(pw.pw_uid) != 0)) {
			keel_err(
			    "cannot switch to user %s: %s (keeld needs root, or CAP_SETUID and "
			    "CAP_SETGID)",
			    user, strerror(errno));
			return EXIT_FAILED;
		}
	}
	/* The way back must be closed for this thread: the raw call, as glibc's
	 * setuid() aborts when threads disagree (a sanitizer's own thread keeps
	 * the capabilities capset() took from this one). */
	if ((geteuid() != 0 && drop_capabilities() != 0) ||
	    (user != NULL && syscall(SYS_setuid, 0) == 0) ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		keel_err("cannot drop privileges: %s", strerror(errno));
		return EXIT_FAILED;
	}
	if (user != NULL) {
		keel_info("running as user %s (uid %u, gid %u)", user, (unsigned)pw.pw_uid,
			  (unsigned)pw.pw_gid);
	}
	return 0;
}

/* The seccomp allow-list of the process's |roles| (sandbox.c). */
static int sandbox(const struct keel_config *cfg, unsigned roles)
{
	return keel_sandbox_apply(roles, (enum keel_sandbox_mode)cfg->seccomp) == 0 ? 0
										    : EXIT_FAILED;
}

/* Once listening: the user switch, then the seccomp allow-list of the
 * process's |roles|, so that neither the network nor a library bug can make
 * it do anything else. */
static int confine_as(const struct keel_config *cfg, const char *user, unsigned roles)
{
	int r = become(user);

	return r == 0 ? sandbox(cfg, roles) : r;
}

/* --dev: where everything is, then "READY <port>" for scripts and tests. */
static void dev_print(struct backends *b, const struct keel_config *cfg, uint16_t kmip_port)
{
	char host[64];
	char *colon;
	uint16_t port = 0;

	snprintf(host, sizeof(host), "%s", cfg->listen[0].text);
	colon = strrchr(host, ':');
	if (colon != NULL) {
		*colon = '\0';
	}
	keel_dev_print(&b->dev_dir, host, kmip_port);
	if (keel_admin_port(b->admin, 0, &port) == 0) {
		printf("  admin API             https://%s:%u and %s (keelctl --config %s)\n", host,
		       port, cfg->admin_socket, b->dev_dir.config_path);
	}
	printf("READY %u\n", kmip_port);
	fflush(stdout);
}

/* ---- privilege separation (appliance/privsep) ----------------------------- */

/* The network process runs as privsep.user, "nobody" by default, never as
 * the user that owns the token and the store. */
static int net_drop(const struct keel_config *cfg, void *arg)
{
	const char *user = cfg->privsep_user != NULL ? cfg->privsep_user : "nobody";
	int r;

	if (cfg->user != NULL && strcmp(user, cfg->user) == 0) {
		keel_err("privsep.user %s: must differ from user, which owns the token and the "
			 "store",
			 user);
		return EXIT_FAILED;
	}
	/* Not root and no privsep.user: one uid for both processes, which still
	 * keeps their address spaces apart (neither is dumpable: no ptrace). */
	r = become(geteuid() == 0 || cfg->privsep_user != NULL ? user : NULL);
	/* After the switch, which clears it: the key process gone, this one goes. */
	if (r == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() == 1)) {
		r = EXIT_FAILED;
	}
	/* The seccomp filter comes once the loops' threads are started (net_ready):
	 * it has no clone. */
	return r;
}

static int net_pushed(void *arg, struct keel_registry *out_reg, struct keel_server_tls *io_tls,
		      uint8_t **out_buf, size_t *out_buf_len)
{
	struct keel_clients *c = NULL;
	int r;

	if ((r = ps_net_setup(arg, &c, io_tls, out_buf, out_buf_len)) != 0) {
		return r;
	}
	keel_clients_registry(c, out_reg);
	keel_clients_free(c);
	return 0;
}

static void net_loaded(void *arg)
{
	ps_net_setup_loaded(arg);
}

static void net_ready(struct keel_server *srv, const struct keel_config *cfg, void *arg)
{
	uint16_t ports[KEEL_LISTEN_MAX];

	if (sandbox(cfg, KEEL_SANDBOX_NET) != 0) {
		_exit(EXIT_FAILED);
	}
	for (size_t i = 0; i < cfg->num_listen; i++) {
		if (keel_server_port(srv, i, &ports[i]) != 0) {
			ports[i] = 0;
		}
	}
	if (ps_net_ready(arg, srv, ports, cfg->num_listen) != 0) {
		keel_err("privsep: cannot reach the key process");
		_exit(EXIT_FAILED);
	}
}

/* The child: TLS, framing and nothing else. It never held the token, the
 * store, the PIN or a key: it was forked before any of them was opened. */
static int net_main(struct keel_daemon_opts *opts, const int *fds, size_t num_fds)
{
	struct ps_net *net = NULL;
	int r;

	if (ps_net_new(fds, num_fds, &net) != 0) {
		return EXIT_FAILED;
	}
	opts->handler = ps_net_handle;
	opts->handler_ctx = net;
	opts->handler_forwards = true;
	keel_metrics_forward(ps_net_metric, net);
	opts->pushed = net_pushed;
	opts->pushed_loaded = net_loaded;
	opts->pushed_arg = net;
	opts->on_listening = net_drop;
	opts->on_ready = net_ready;
	opts->on_ready_arg = net;
	r = keel_daemon_run(opts);
	keel_metrics_forward(NULL, NULL);
	ps_net_free(net);
	return r;
}

static void key_ready(void *arg, const uint16_t *ports, size_t num_ports)
{
	struct backends *b = arg;

	if (b->dev_dir_arg != NULL && num_ports > 0) {
		dev_print(b, b->cfg, ports[0]);
	}
}

/* Started as root, the key process opens token and store as root, then
 * switches; otherwise it switched already (key_main). */
static int key_drop(void *arg)
{
	const struct backends *b = arg;

	return geteuid() == 0 ? confine_as(b->cfg, b->cfg->user, KEEL_SANDBOX_KEYS)
			      : sandbox(b->cfg, KEEL_SANDBOX_KEYS);
}

/* The parent (systemd's main process): token, store, engine, admin API and
 * mirror; answers what the network process forwards. */
static int key_main(struct backends *b, size_t num_fds, pid_t net)
{
	const struct keel_config *cfg = b->cfg;
	struct ps_key_config *kc = &b->psk_cfg;
	int r;

	*kc = (struct ps_key_config){
	    .fds = b->psk_fds,
	    .num_fds = num_fds,
	    .net_pid = net,
	    .handler = keel_engine_handle,
	    .max_message_size = cfg->max_message_size,
	    .tls_certificate_file = cfg->tls_certificate,
	    .tls_private_key_file = cfg->tls_private_key,
	    .tls_crl_file = cfg->tls_crl_file,
	    .on_setup_sent = key_drop,
	    .on_setup_sent_arg = b,
	    .on_ready = key_ready,
	    .on_ready_arg = b,
	};
	/* Not root, it needs no capability (those the unit gives are for the
	 * network process's switch): dropped now, while this is the only thread,
	 * as capabilities belong to each thread. */
	r = geteuid() != 0 ? become(cfg->user) : 0;
	if (r == 0 && ps_key_new(kc, &b->psk) != 0) {
		r = EXIT_FAILED;
	}
	if (r == 0 && (r = open_backends(cfg, b, &kc->handler_ctx)) == 0) {
		kc->clients = b->clients;
		return ps_key_run(b->psk);
	}
	/* Not started: the network process, waiting for its setup, goes too. */
	for (size_t i = 0; i < num_fds; i++) {
		(void)shutdown(b->psk_fds[i], SHUT_RDWR);
	}
	(void)waitpid(net, NULL, 0);
	return r;
}

/* One socket pair per key worker (privsep.h): fds[0..n) the key process's
 * ends, fds[n..2n) the network process's. */
static int run_privsep(struct keel_daemon_opts *opts, struct backends *b)
{
	size_t n = b->cfg->worker_threads;
	int *fds, sv[2];
	pid_t pid;

	fds = calloc(2 * n, sizeof(int));
	for (size_t i = 0; fds != NULL && i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
			free(fds);
			fds = NULL;
			break;
		}
		fds[i] = sv[0];
		fds[n + i] = sv[1];
	}
	if (fds == NULL || (pid = fork()) < 0) {
		keel_err("privsep: cannot start the network process: %s", strerror(errno));
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < n; i++) {
		close(fds[pid == 0 ? i : n + i]);
	}
	if (pid == 0) {
		int r = net_main(opts, fds + n, n);

		free(fds);
		exit(r);
	}
	b->psk_fds = fds;
	keel_info("privsep: network process %d", (int)pid);
	return key_main(b, n, pid);
}

static int run(struct keel_daemon_opts *opts, struct backends *b)
{
	if (b->dev_dir_arg != NULL) {
		if (keel_dev_prepare(b->dev_dir_arg, &b->dev_dir) != 0) {
			return EXIT_FAILED;
		}
		opts->config_path = b->dev_dir.config_path;
	}
	b->config_path = opts->config_path;
	keel_info("keeld %s starting with %s", KEEL_VERSION, opts->config_path);
	/* For the key process; the network process, forked first, reads it again. */
	if (keel_daemon_load(opts, &b->cfg) != 0) {
		return EXIT_FAILED;
	}
	return run_privsep(opts, b);
}

int main(int argc, char **argv)
{
	static struct backends b;
	struct keel_daemon_opts opts = {.config_path = KEEL_CONFIG_DEFAULT_PATH};
	int r;

	keel_log_init(KEEL_LOG_INFO);
	/* First, before OpenSSL allocates anything: its decoders copy the TLS
	 * key's DER into blocks they free unwiped (docs/hardening.md). */
	if (keel_wipe_openssl() != 0) {
		keel_err("cannot make OpenSSL wipe what it frees");
		return EXIT_FAILED;
	}
	if ((r = parse_args(argc, argv, &opts, &b)) >= 0) {
		return r;
	}
	if (harden() != 0) {
		return EXIT_FAILED;
	}
	/* The admin API (started before the server) raises SIGHUP after a
	 * change; until the server's loop handles it, it must not end keeld. */
	signal(SIGHUP, SIG_IGN);
	r = run(&opts, &b);
	keel_admin_stop(b.admin);
	mirror_recovery_free(b.recovery);
	ps_key_free(b.psk);
	free(b.psk_fds);
	mirror_service_close(b.mirror);
	keel_clients_free(b.clients);
	keel_rotation_free(b.rotation);
	keel_engine_close(b.engine);
	hsm_close(b.hsm);
	keel_config_free(b.cfg);
	return r;
}
