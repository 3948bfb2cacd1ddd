/*
 * What keeld and the integration tests' server share: load the config, build
 * the server, reload on SIGHUP, run until drained. Only the request handler
 * differs between them.
 */
#ifndef KEEL_DAEMON_H
#define KEEL_DAEMON_H

#include "config.h"
#include "keel/server.h"

struct keel_daemon_opts {
	const char *config_path;
	bool log_level_forced; /* --log-level wins over the file's log_level */
	/* One "address:port" that replaces the file's listen list (keeld --listen). */
	const char *listen_override;
	keel_request_fn handler;
	void *handler_ctx;
	bool handler_forwards; /* see struct keel_server_config */
	/*
	 * Called once the configuration is loaded, before the server starts (may
	 * be NULL): opens what the handler needs and may replace handler_ctx
	 * through *io_handler_ctx. Returns 0, or the process exit status to stop
	 * with. What it opened is the caller's to close after keel_daemon_run.
	 */
	int (*on_config)(const struct keel_config *cfg, void *arg, void **io_handler_ctx);
	void *on_config_arg;
	/*
	 * Who may connect, at start and on each SIGHUP (may be NULL: then the
	 * files of the clients section, as the tests' echo server wants). Fills
	 * *out (owned by the server afterwards); 0 or -1.
	 */
	int (*registry)(const struct keel_config *cfg, void *arg, struct keel_registry *out);
	void *registry_arg;
	/*
	 * The privilege-separated network process (may be NULL): registrations
	 * and the TLS chain, key and CRLs come from the key process, at start
	 * and on each SIGHUP, which then re-reads no file. Fills *out_reg
	 * (owned by the server afterwards) and the parts of |io_tls|, which
	 * point into *out_buf (malloc'd, wiped and freed here once loaded).
	 * 0, 1 when nothing new came (the running settings stay), or -1.
	 */
	int (*pushed)(void *arg, struct keel_registry *out_reg, struct keel_server_tls *io_tls,
		      uint8_t **out_buf, size_t *out_buf_len);
	/* Called with pushed_arg once what pushed gave serves every new
	 * handshake, at start and after each reload (may be NULL). */
	void (*pushed_loaded)(void *arg);
	void *pushed_arg;
	/* Called once every listener is bound, before the server's loop threads
	 * start (may be NULL): where keeld drops privileges, while the process
	 * has one thread. Returns 0, or the exit status to stop with. */
	int (*on_listening)(const struct keel_config *cfg, void *arg);
	void *on_listening_arg;
	/* Called once the server's loop threads are started, before they run
	 * (may be NULL): where keeld's network process installs its seccomp
	 * filter, which covers every thread (TSYNC). */
	void (*on_ready)(struct keel_server *srv, const struct keel_config *cfg, void *arg);
	void *on_ready_arg;
};

/* The configuration as keel_daemon_run reads it (--listen and --log-level
 * applied), errors logged with their file and line. 0 or -1. */
__attribute__((warn_unused_result)) int keel_daemon_load(const struct keel_daemon_opts *opts,
							 struct keel_config **out_cfg);

/* Returns the process exit status: 0 after a clean drain, 1 when the
 * configuration or start-up failed or the drain timed out, or on_config's. */
int keel_daemon_run(const struct keel_daemon_opts *opts);

#endif
