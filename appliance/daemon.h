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
	keel_request_fn handler;
	void *handler_ctx;
	/* Called once every listener is bound (may be NULL). */
	void (*on_ready)(struct keel_server *srv, const struct keel_config *cfg, void *arg);
	void *on_ready_arg;
};

/* Returns the process exit status: 0 after a clean drain, 1 when the
 * configuration or start-up failed or the drain timed out. */
int keel_daemon_run(const struct keel_daemon_opts *opts);

#endif
