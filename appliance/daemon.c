#include "daemon.h"

#include <stdlib.h>
#include <string.h>

#include "keel/clients.h"
#include "log.h"
#include "wipe.h"

/* What the key process pushed: it holds the TLS key. */
struct pushed {
	uint8_t *data;
	size_t len;
};

struct daemon {
	const struct keel_daemon_opts *opts;
	struct keel_config *cfg;
	void *handler_ctx;
};

static void report(const struct keel_config_error *err)
{
	if (err->line > 0) {
		keel_err("%s:%d: %s", err->file, err->line, err->reason);
	} else {
		keel_err("%s: %s", err->file, err->reason);
	}
}

int keel_daemon_load(const struct keel_daemon_opts *opts, struct keel_config **out_cfg)
{
	struct keel_config_error err;

	if (keel_config_load(opts->config_path, out_cfg, &err) != 0) {
		report(&err);
		return -1;
	}
	if (opts->listen_override != NULL) {
		(*out_cfg)->num_listen = 1;
		if (keel_listen_addr_parse(opts->listen_override, &(*out_cfg)->listen[0]) != 0) {
			keel_err("--listen %s: expected \"1.2.3.4:port\" or \"[v6]:port\"",
				 opts->listen_override);
			keel_config_free(*out_cfg);
			*out_cfg = NULL;
			return -1;
		}
	}
	if (!opts->log_level_forced) {
		keel_log_set_level((*out_cfg)->log_level);
	}
	return 0;
}

static int make_registry(const struct daemon *d, const struct keel_config *cfg,
			 struct keel_registry *out)
{
	struct keel_clients *c = NULL;

	if (d->opts->registry != NULL) {
		return d->opts->registry(cfg, d->opts->registry_arg, out);
	}
	if (keel_clients_from_files(cfg->clients_certificates_dir, cfg->clients_ca_file, &c) != 0) {
		return -1;
	}
	keel_clients_registry(c, out);
	keel_clients_free(c);
	return 0;
}

static void tls_settings(const struct keel_config *cfg, struct keel_server_tls *out)
{
	memset(out, 0, sizeof(*out));
	out->certificate_file = cfg->tls_certificate;
	out->private_key_file = cfg->tls_private_key;
	out->session_lifetime_s = cfg->tls_session_lifetime_s;
	out->crl_file = cfg->tls_crl_file;
}

/* What the server needs besides its limits: TLS identity and registrations,
 * from the files or from the key process. Pushed ones are in *buf, which
 * holds the key: the caller wipes it (wipe_pushed) once they are loaded.
 * 0, 1 (nothing new pushed) or -1. */
static int setup(const struct daemon *d, const struct keel_config *cfg, struct keel_server_tls *tls,
		 struct keel_registry *reg, struct pushed *buf)
{
	tls_settings(cfg, tls);
	buf->data = NULL;
	buf->len = 0;
	if (d->opts->pushed == NULL) {
		return make_registry(d, cfg, reg);
	}
	/* The network process reads no files: the CRLs come pushed too. */
	return d->opts->pushed(d->opts->pushed_arg, reg, tls, &buf->data, &buf->len);
}

static void wipe_pushed(struct pushed *buf)
{
	keel_wipe_free(buf->data);
	buf->data = NULL;
}

static void loaded(const struct daemon *d)
{
	if (d->opts->pushed_loaded != NULL) {
		d->opts->pushed_loaded(d->opts->pushed_arg);
	}
}

/* SIGHUP: certificates, key and client registrations are re-read; a broken
 * file keeps the running settings. Listen addresses and limits need a restart. */
static void on_sighup(struct keel_server *srv, void *arg)
{
	struct daemon *d = arg;
	struct keel_config *cfg = NULL;
	struct keel_server_tls tls = {0};
	struct keel_registry reg;
	struct pushed buf = {0};
	int r = -1;

	/* Pushed settings: the configuration stays as it was first read. */
	if (d->opts->pushed == NULL && keel_daemon_load(d->opts, &cfg) != 0) {
		goto out;
	}
	if ((r = setup(d, cfg != NULL ? cfg : d->cfg, &tls, &reg, &buf)) == 0) {
		r = keel_server_reload(srv, &tls, &reg);
	}
out:
	wipe_pushed(&buf);
	if (r == 1) {
		/* A SIGHUP for a setup taken already (two came before the first signal). */
		keel_debug("no new setup from the key process: keeping the running settings");
		return;
	}
	if (r != 0) {
		keel_err("reload failed: keeping the running settings");
		keel_config_free(cfg);
		return;
	}
	if (cfg != NULL) {
		keel_config_free(d->cfg);
		d->cfg = cfg;
	}
	loaded(d);
	keel_info("reloaded certificates and client registrations");
}

static int start(struct daemon *d, struct keel_server **out_srv)
{
	const struct keel_config *cfg = d->cfg;
	struct keel_server_listen listen[KEEL_LISTEN_MAX];
	struct keel_server_config sc = {
	    .listen = listen,
	    .num_listen = cfg->num_listen,
	    .max_connections = cfg->max_connections,
	    .max_connections_per_client = cfg->max_connections_per_client,
	    .max_message_size = cfg->max_message_size,
	    .handshake_timeout_ms = cfg->handshake_timeout_ms,
	    .idle_timeout_ms = cfg->idle_timeout_ms,
	    .frame_timeout_ms = cfg->frame_timeout_ms,
	    .drain_timeout_ms = cfg->drain_timeout_ms,
	    .worker_threads = cfg->worker_threads,
	    .network_threads = cfg->network_threads,
	    .handler = d->opts->handler,
	    .handler_ctx = d->handler_ctx,
	    .handler_forwards = d->opts->handler_forwards,
	    .on_sighup = on_sighup,
	    .on_sighup_arg = d,
	};
	struct keel_server_tls tls;
	struct keel_registry reg;
	struct pushed buf;
	int r;

	for (size_t i = 0; i < cfg->num_listen; i++) {
		listen[i].addr = cfg->listen[i].addr;
		listen[i].addr_len = cfg->listen[i].addr_len;
	}
	if (setup(d, cfg, &tls, &reg, &buf) != 0) {
		wipe_pushed(&buf);
		return -1;
	}
	r = keel_server_new(out_srv, &sc, &tls, &reg);
	wipe_pushed(&buf);
	if (r == 0) {
		loaded(d);
	}
	return r;
}

static void log_listening(struct keel_server *srv, const struct keel_config *cfg)
{
	uint16_t port;

	for (size_t i = 0; i < cfg->num_listen; i++) {
		if (keel_server_port(srv, i, &port) == 0) {
			keel_info("listening on %s (port %u)", cfg->listen[i].text, port);
		}
	}
}

int keel_daemon_run(const struct keel_daemon_opts *opts)
{
	struct daemon d = {.opts = opts, .handler_ctx = opts->handler_ctx};
	struct keel_server *srv = NULL;
	int status = 1;

	if (keel_daemon_load(opts, &d.cfg) != 0) {
		goto out;
	}
	if (opts->on_config != NULL &&
	    (status = opts->on_config(d.cfg, opts->on_config_arg, &d.handler_ctx)) != 0) {
		goto out;
	}
	status = 1;
	if (start(&d, &srv) != 0) {
		goto out;
	}
	log_listening(srv, d.cfg);
	keel_info("%u network threads", d.cfg->network_threads);
	if (opts->on_listening != NULL &&
	    (status = opts->on_listening(d.cfg, opts->on_listening_arg)) != 0) {
		goto out;
	}
	status = 1;
	/* After on_listening's privilege drop, which is per thread (capabilities,
	 * the setuid check), and before on_ready's seccomp filter, which allows
	 * the network process no clone. */
	if (keel_server_start(srv) != 0) {
		goto out;
	}
	if (opts->on_ready != NULL) {
		opts->on_ready(srv, d.cfg, opts->on_ready_arg);
	}
	if (keel_server_run(srv) == 0) {
		keel_info("drained, exiting");
		status = 0;
	}
out:
	keel_server_free(srv);
	keel_config_free(d.cfg);
	return status;
}
