/*
 * The key process's side: one loop reads the network process's requests,
 * checks each (ps_check_request, then the registry), and queues it for a
 * pool of workers that run the engine; each answer goes back with its id.
 * A request that breaks the protocol means the network process is not the
 * one we started: the key process stops (OpenSSH's monitor does the same),
 * systemd restarts both.
 */
#include "privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "keel/clients.h"
#include "keel/pki.h"
#include "log.h"
#include "wipe.h"

/* The TLS files sent to the network process; far above any real chain. */
#define PEM_FILE_MAX (1u << 20)

/* One socket pair per worker: an idle worker waits in read() on its own, so
 * a request wakes exactly the worker it was sent to. Channel 0 also carries
 * the setup, acknowledgements, counters and the stop. */
struct channel {
	int fd;
	pthread_mutex_t write_mu; /* one frame at a time out */
	struct ps_reader in;	  /* its worker's */
	struct ps_key *k;
	pthread_t thread;
	bool started;
};

struct job {
	struct channel *ch;
	struct ps_frame f;
	struct keel_client_identity who;
};

struct ps_key {
	const struct ps_key_config *cfg;
	struct channel *ch;
	size_t num_ch;
	pthread_mutex_t mu; /* what follows */
	int end;	    /* 0 while serving; then 1 (end of stream) or -1 (breach) */
	/* Setup generations: pushed (under push_mu) and acknowledged (under mu). */
	pthread_mutex_t push_mu;
	uint32_t pushed, acked;
	bool started; /* the first setup is sent: later ones are pushes */
	pthread_cond_t acked_cv;
};

/* ---- signals, through a pipe into the loop ------------------------------ */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	uint8_t b = (uint8_t)sig;

	(void)!write(sig_pipe[1], &b, 1);
	errno = saved;
}

static int catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		return -1;
	}
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	return sigaction(SIGHUP, &sa, NULL) == 0 && sigaction(SIGTERM, &sa, NULL) == 0 &&
		       sigaction(SIGINT, &sa, NULL) == 0
		   ? 0
		   : -1;
}

/* ---- setup: registry and TLS identity ----------------------------------- */

/* File |path| whole, into *out (malloc'd). 0 or -1 (logged). */
static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = NULL;
	struct stat st;
	ssize_t n = -1;

	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= 0 && st.st_size <= PEM_FILE_MAX &&
	    (buf = malloc((size_t)st.st_size + 1)) != NULL) {
		n = read(fd, buf, (size_t)st.st_size);
	}
	if (fd >= 0) {
		close(fd);
	}
	if (buf == NULL || n != st.st_size) {
		free(buf); /* a chain or CRLs: nothing secret */
		keel_err("privsep: cannot read %s", path);
		return -1;
	}
	*out = buf;
	*out_len = (size_t)n;
	return 0;
}

/* The TLS key as PKCS#8 DER, in *out (OPENSSL_malloc'd: the caller
 * clear-frees it). keel_pki_read_key reads the file through a stdio buffer
 * it wipes; the network process then parses no PEM. 0 or -1 (logged). */
static int read_key_der(const char *path, uint8_t **out, size_t *out_len)
{
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *der = NULL;
	EVP_PKEY *key = NULL;
	int len = -1;

	if (keel_pki_read_key(path, &key) == 0 && (p8 = EVP_PKEY2PKCS8(key)) != NULL) {
		len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	}
	PKCS8_PRIV_KEY_INFO_free(p8); /* wipes the key octets */
	EVP_PKEY_free(key);
	if (len <= 0) {
		keel_err("privsep: cannot read the private key %s", path);
		return -1;
	}
	*out = der;
	*out_len = (size_t)len;
	return 0;
}

/* PS_SETUP's b, read from the TLS files now (privsep.h): *out holds the
 * key, for the caller to wipe and free. 0 or -1 (logged). */
static int tls_parts(const struct ps_key_config *c, uint8_t **out, size_t *out_len)
{
	uint8_t *chain = NULL, *key = NULL, *crls = NULL;
	size_t chain_len = 0, key_len = 0, crls_len = 0;
	struct ps_tls_parts p;
	int r = -1;

	/* Each at most PEM_FILE_MAX bytes (the key's DER is shorter than its PEM). */
	if (read_file(c->tls_certificate_file, &chain, &chain_len) == 0 &&
	    read_key_der(c->tls_private_key_file, &key, &key_len) == 0 &&
	    (c->tls_crl_file == NULL || read_file(c->tls_crl_file, &crls, &crls_len) == 0)) {
		p = (struct ps_tls_parts){chain, (uint32_t)chain_len, key, (uint32_t)key_len,
					  crls,	 (uint32_t)crls_len};
		if ((r = ps_tls_parts_encode(&p, out, out_len)) != 0) {
			keel_err("privsep: the TLS chain, key and CRLs do not fit a setup");
		}
	}
	free(chain);
	OPENSSL_clear_free(key, key_len);
	free(crls);
	return r;
}

static int send_setup(struct ps_key *k, uint32_t id)
{
	const struct ps_key_config *c = k->cfg;
	uint8_t *reg = NULL, *tls = NULL;
	size_t reg_len = 0, tls_len = 0;
	int r = -1;

	if (keel_clients_export(c->clients, &reg, &reg_len) != 0 ||
	    tls_parts(c, &tls, &tls_len) != 0) {
		goto out;
	}
	pthread_mutex_lock(&k->ch[0].write_mu);
	r = ps_write(k->ch[0].fd, PS_SETUP, id, reg, reg_len, tls, tls_len);
	pthread_mutex_unlock(&k->ch[0].write_mu);
out:
	free(reg);
	keel_wipe_free(tls);
	if (r == 0) {
		keel_debug("privsep: setup %u sent", (unsigned)id); /* its buffers wiped */
	}
	return r;
}

/* The next generation, sent; 0 or -1. */
static int push(struct ps_key *k, uint32_t *out_id)
{
	int r;

	pthread_mutex_lock(&k->push_mu);
	if (!k->started) {
		/* The first setup, still to come, exports the registry as it is then. */
		*out_id = 0;
		pthread_mutex_unlock(&k->push_mu);
		return 0;
	}
	if (++k->pushed == 0) {
		k->pushed = 1;
	}
	*out_id = k->pushed;
	r = send_setup(k, *out_id);
	pthread_mutex_unlock(&k->push_mu);
	return r;
}

static int first_setup(struct ps_key *k)
{
	int r;

	pthread_mutex_lock(&k->push_mu);
	r = send_setup(k, 0);
	k->started = r == 0;
	pthread_mutex_unlock(&k->push_mu);
	return r;
}

int ps_key_push(struct ps_key *k)
{
	struct timespec until;
	uint32_t id;
	int r = 0;

	if (push(k, &id) != 0) {
		return -1;
	}
	if (id == 0) {
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&k->mu);
	/* Generations only grow; a later one acknowledged covers this one. */
	while (r == 0 && k->end == 0 && (int32_t)(k->acked - id) < 0) {
		r = pthread_cond_timedwait(&k->acked_cv, &k->mu, &until);
	}
	r = (int32_t)(k->acked - id) >= 0 ? 0 : -1;
	pthread_mutex_unlock(&k->mu);
	if (r != 0) {
		keel_err("privsep: the network process did not take the new registry");
	}
	return r;
}

static void take_ack(struct ps_key *k, uint32_t id)
{
	pthread_mutex_lock(&k->mu);
	k->acked = id;
	pthread_cond_broadcast(&k->acked_cv);
	pthread_mutex_unlock(&k->mu);
}

static int wait_ready(struct ps_key *k)
{
	struct ps_frame f;
	uint16_t ports[64];
	size_t n;

	if (ps_read(&k->ch[0].in, sizeof(ports), &f) != 0 || f.type != PS_READY || f.id != 0 ||
	    f.b_len != 0 || f.a_len % 2 != 0) {
		keel_err("privsep: the network process did not start");
		ps_frame_cleanup(&f);
		return -1;
	}
	n = f.a_len / 2;
	for (size_t i = 0; i < n; i++) {
		ports[i] = (uint16_t)(f.a[2 * i] << 8 | f.a[2 * i + 1]);
	}
	ps_frame_cleanup(&f);
	if (k->cfg->on_ready != NULL) {
		k->cfg->on_ready(k->cfg->on_ready_arg, ports, n);
	}
	return 0;
}

/* ---- workers ------------------------------------------------------------ */

static void job_reply(void *reply_ctx, const uint8_t *resp, size_t resp_len)
{
	struct job *job = reply_ctx;
	struct channel *ch = job->ch;

	pthread_mutex_lock(&ch->write_mu);
	/* A failed write: the network process is gone, and a reader sees it. */
	(void)!ps_write(ch->fd, PS_RESPONSE, job->f.id, NULL, 0, resp, resp != NULL ? resp_len : 0);
	pthread_mutex_unlock(&ch->write_mu);
}

/* The loop (ps_key_run's thread) learns that serving is over. */
static void end(struct ps_key *k, int how)
{
	uint8_t b = 0;

	pthread_mutex_lock(&k->mu);
	if (k->end == 0) {
		k->end = how;
		(void)!write(sig_pipe[1], &b, 1);
	}
	pthread_cond_broadcast(&k->acked_cv);
	pthread_mutex_unlock(&k->mu);
}

/* The network process's counter changes, checked whole before any is
 * taken: -1 for anything else. */
static int take_metric(const struct ps_frame *f)
{
	struct ps_metric m;

	if (ps_metric_decode(f, &m) != 0) {
		return -1;
	}
	for (size_t i = 0; i < KEEL_METRICS_NUM_EVENTS; i++) {
		if (m.value[i] != 0) {
			keel_metrics_add((enum keel_metrics_event)(i + 1), m.value[i]);
		}
	}
	return 0;
}

/* The next frame: a request checked (0), an acknowledgement or a counter
 * taken (1), or the end (-1, with end() called). */
static int next(struct ps_key *k, struct job *job)
{
	enum ps_verdict v;
	int r;

	r = ps_read(&job->ch->in, PS_IDENTITY_LEN + k->cfg->max_message_size, &job->f);
	if (r != 0) {
		end(k, r == 1 ? 1 : -1);
		return -1;
	}
	if (job->f.type == PS_SETUP && job->f.a_len == 0 && job->f.b_len == 0) {
		take_ack(k, job->f.id);
		return 1;
	}
	if (job->f.type == PS_METRIC) {
		if (take_metric(&job->f) == 0) {
			return 1;
		}
		keel_err("privsep: refused a malformed counter from the network process");
		end(k, -1);
		return -1;
	}
	if ((v = ps_check_request(&job->f, k->cfg->max_message_size, &job->who)) != PS_OK) {
		keel_err("privsep: refused a malformed request from the network process (%d)", v);
		end(k, -1);
		return -1;
	}
	return 0;
}

static void serve(struct ps_key *k, struct job *job)
{
	if (!keel_clients_may_kmip(k->cfg->clients, job->who.fingerprint)) {
		/* Removed since its handshake, or never registered: closed. */
		keel_warn("privsep: %s is not a registered KMIP client", job->who.fingerprint_hex);
		job_reply(job, NULL, 0);
		return;
	}
	k->cfg->handler(k->cfg->handler_ctx, &job->who, job->f.b, job->f.b_len, job_reply, job);
}

static void *worker_main(void *arg)
{
	struct channel *ch = arg;
	struct job job = {.ch = ch};
	int r;

	while ((r = next(ch->k, &job)) >= 0) {
		if (r == 0) {
			serve(ch->k, &job);
		}
		ps_frame_cleanup(&job.f);
	}
	return NULL;
}

static int start_workers(struct ps_key *k)
{
	sigset_t all, old;
	int r = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (size_t i = 0; i < k->num_ch && r == 0; i++) {
		r = pthread_create(&k->ch[i].thread, NULL, worker_main, &k->ch[i]) == 0 ? 0 : -1;
		k->ch[i].started = r == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* Every request read is answered (or its answer fails to leave) first. */
static void stop_workers(struct ps_key *k)
{
	for (size_t i = 0; i < k->num_ch; i++) {
		if (k->ch[i].started) {
			pthread_join(k->ch[i].thread, NULL);
		}
	}
}

/* ---- the loop: signals and the end ---------------------------------------- */

static void take_signal(struct ps_key *k)
{
	uint32_t id;
	uint8_t sig;

	while (read(sig_pipe[0], &sig, 1) == 1) {
		if (sig == 0) {
			continue; /* end(): the loop looks at k->end */
		}
		if (sig == SIGHUP) {
			keel_info("SIGHUP: reloading client registrations for the network process");
			/* Not waited for: acknowledgements come through this loop. */
			if (keel_clients_reload(k->cfg->clients) != 0 || push(k, &id) != 0) {
				keel_err("reload failed: keeping the running settings");
			}
		} else {
			keel_info("signal %u: the network process drains, then both exit", sig);
			pthread_mutex_lock(&k->ch[0].write_mu);
			(void)!ps_write(k->ch[0].fd, PS_STOP, 0, NULL, 0, NULL, 0);
			pthread_mutex_unlock(&k->ch[0].write_mu);
		}
	}
}

/* Until a worker sees the end: 0 for the end of the stream, -1 otherwise. */
static int loop(struct ps_key *k)
{
	struct pollfd fd = {.fd = sig_pipe[0], .events = POLLIN};
	int end_now = 0;

	while (end_now == 0) {
		if (poll(&fd, 1, -1) < 0 && errno != EINTR) {
			return -1;
		}
		take_signal(k);
		pthread_mutex_lock(&k->mu);
		end_now = k->end;
		pthread_mutex_unlock(&k->mu);
	}
	return end_now == 1 ? 0 : -1;
}

static int net_status(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			return 1;
		}
	}
	if (WIFEXITED(st)) {
		keel_info("privsep: the network process exited with status %d", WEXITSTATUS(st));
		return WEXITSTATUS(st);
	}
	keel_err("privsep: the network process was killed by signal %d", WTERMSIG(st));
	return 1;
}

int ps_key_new(const struct ps_key_config *cfg, struct ps_key **out)
{
	struct ps_key *k = calloc(1, sizeof(*k));

	if (k == NULL || cfg->num_fds == 0 ||
	    (k->ch = calloc(cfg->num_fds, sizeof(*k->ch))) == NULL) {
		free(k);
		return -1;
	}
	k->cfg = cfg;
	k->num_ch = cfg->num_fds;
	for (size_t i = 0; i < k->num_ch; i++) {
		k->ch[i].fd = cfg->fds[i];
		k->ch[i].k = k;
		ps_reader_init(&k->ch[i].in, cfg->fds[i]);
		pthread_mutex_init(&k->ch[i].write_mu, NULL);
	}
	pthread_mutex_init(&k->mu, NULL);
	pthread_mutex_init(&k->push_mu, NULL);
	pthread_cond_init(&k->acked_cv, NULL);
	*out = k;
	return 0;
}

void ps_key_free(struct ps_key *k)
{
	if (k == NULL) {
		return;
	}
	for (size_t i = 0; i < k->num_ch; i++) {
		ps_reader_cleanup(&k->ch[i].in);
		pthread_mutex_destroy(&k->ch[i].write_mu);
	}
	free(k->ch);
	pthread_mutex_destroy(&k->mu);
	pthread_mutex_destroy(&k->push_mu);
	pthread_cond_destroy(&k->acked_cv);
	free(k);
}

static int after_setup(struct ps_key *k)
{
	if (k->cfg->on_setup_sent == NULL) {
		return 0;
	}
	return k->cfg->on_setup_sent(k->cfg->on_setup_sent_arg);
}

int ps_key_run(struct ps_key *k)
{
	const struct ps_key_config *cfg = k->cfg;
	int r = -1, status;

	if (catch_signals() == 0 && first_setup(k) == 0) {
		if ((status = after_setup(k)) != 0) {
			r = -2;
		} else if (wait_ready(k) == 0 && start_workers(k) == 0) {
			r = loop(k);
		}
	}
	end(k, r == 0 ? 1 : -1);
	/* Both directions closed: workers' reads end, and so does the network
	 * process (on a breach, or a key process that cannot go on), without a
	 * signal it may not be allowed to send. */
	for (size_t i = 0; i < k->num_ch; i++) {
		(void)shutdown(k->ch[i].fd, SHUT_RDWR);
	}
	stop_workers(k);
	r = r == -2 ? status : r;
	status = net_status(cfg->net_pid);
	return r != 0 ? (r > 0 ? r : 1) : status;
}
