/*
 * Privilege separation in the OpenSSH manner (docs/hardening.md, "Privilege
 * separation"). keeld forks before it opens anything secret: the network
 * process (TLS, framing; an unprivileged user, no token, no store) forwards
 * each framed KMIP request to the key process (token, store, engine, admin
 * API, mirror), which checks it and answers through the engine.
 *
 * One socket pair carries frames: a 16-byte header, then |a_len| bytes, then
 * |b_len| bytes. Header: u8 type, three zero bytes, u32 request id, u32
 * a_len, u32 b_len, big-endian.
 *
 *   PS_REQUEST  net -> key  id != 0; a: identity (32-byte fingerprint, 256-byte
 *                           NUL-padded subject); b: one TTLV message
 *   PS_RESPONSE key -> net  id of the request; b: the answer (empty: close)
 *   PS_SETUP    key -> net  id: a generation (0 at start); a: client registry
 *                           (keel_clients_export); b: the TLS identity in three
 *                           parts, each a u32 length and its bytes, in this order
 *                           and nothing after them:
 *                             chain  PEM certificates, leaf first (not empty)
 *                             key    the private key, PKCS#8 DER (not empty;
 *                                    never logged)
 *                             crls   tls.crl_file's CRLs, PEM (empty: none)
 *                           so that the key is parsed alone, from DER, and the
 *                           chain and CRLs from buffers that never held it.
 *                           At start, on SIGHUP and after each admin change.
 *               net -> key  id: that generation, a and b empty: in use for
 *                           every new handshake (not sent for generation 0)
 *   PS_READY    net -> key  id 0; a: the bound ports, u16 each; b empty
 *   PS_STOP     key -> net  id 0, empty: drain and exit (the key process
 *                           may not be allowed to signal the network one)
 *   PS_METRIC   net -> key  id 0; a: the counters' changes since the last
 *                           PS_METRIC, one or more pairs of u8 event (enum
 *                           keel_metrics_event) and i32 value, in increasing
 *                           order of event, each value one keel_metrics_event_ok
 *                           takes; b empty: the key process serves /metrics
 */
#ifndef KEEL_PRIVSEP_H
#define KEEL_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "keel/metrics.h"
#include "keel/request.h"

struct keel_clients;
struct keel_server_tls;
struct keel_server;

enum ps_type {
	PS_REQUEST = 1,
	PS_RESPONSE = 2,
	PS_SETUP = 3,
	PS_READY = 4,
	PS_STOP = 5,
	PS_METRIC = 6,
};

#define PS_HEADER_LEN	16
#define PS_IDENTITY_LEN (KEEL_FINGERPRINT_LEN + KEEL_SUBJECT_MAX)
/* A setup frame: registry and PEM; far above any real registry. */
#define PS_SETUP_MAX (64u << 20)

struct ps_frame {
	uint8_t type;
	uint32_t id;
	uint8_t *a; /* a_len + b_len bytes in one allocation; b follows a */
	uint32_t a_len;
	uint8_t *b;
	uint32_t b_len;
};

/* Wipes (requests and answers carry key material) and frees. Accepts NULL members. */
void ps_frame_cleanup(struct ps_frame *f);

/* Writes one whole frame, blocking until it is out (the caller serialises
 * writers). 0 or -1. */
__attribute__((warn_unused_result)) int ps_write(int fd, enum ps_type type, uint32_t id,
						 const void *a, size_t a_len, const void *b,
						 size_t b_len);

/* Frames to one descriptor without ever waiting for it: what the socket does
 * not take at once is queued (wiped once sent) until ps_writer_flush, so a
 * loop thread that also reads the other direction never blocks on a full
 * socket buffer. One thread. */
struct ps_writer {
	int fd;
	uint8_t *buf; /* queued bytes: buf[start, end) of cap */
	size_t start, end, cap;
};

void ps_writer_init(struct ps_writer *w, int fd);
/* Wipes and frees what is queued. */
void ps_writer_cleanup(struct ps_writer *w);
/* Sends one whole frame, or queues what is not sent (after anything queued
 * before it). 0, or -1 (the peer is gone, or no memory: then none of the
 * frame left). */
__attribute__((warn_unused_result)) int ps_writer_put(struct ps_writer *w, enum ps_type type,
						      uint32_t id, const void *a, size_t a_len,
						      const void *b, size_t b_len);
/* Sends as much of the queue as the socket takes now. 0 or -1 (the peer is gone). */
__attribute__((warn_unused_result)) int ps_writer_flush(struct ps_writer *w);
/* Whether bytes wait for ps_writer_flush. */
bool ps_writer_pending(const struct ps_writer *w);

/* Frames from one descriptor, read in as large pieces as are there: one
 * read often brings a whole frame, or several. One reader at a time. */
#define PS_READ_BUF (64u << 10)
struct ps_reader {
	int fd;
	size_t start, end;    /* the bytes not yet taken: buf[start, end) */
	struct ps_frame part; /* a frame begun, read straight into place */
	size_t part_have;     /* its bytes so far */
	uint8_t buf[PS_READ_BUF];
};

void ps_reader_init(struct ps_reader *r, int fd);
/* Wipes what is left (frames carry key material). */
void ps_reader_cleanup(struct ps_reader *r);

/* Reads one whole frame whose a and b are at most |max_len| together, on a
 * blocking descriptor. 0, 1 at a clean end of stream, or -1 (I/O error, bad
 * header, too long). */
__attribute__((warn_unused_result)) int ps_read(struct ps_reader *r, uint32_t max_len,
						struct ps_frame *out);

/* The same in two steps, for a non-blocking descriptor on an event loop: one
 * read() of what is there (>0, 0 at the end of the stream, or -1 with errno,
 * EAGAIN included), then every whole frame it completed, one per ps_next:
 * 0, PS_AGAIN when the next is not whole yet, or -1 (bad header, too long). */
#define PS_AGAIN 2
__attribute__((warn_unused_result)) ssize_t ps_reader_fill(struct ps_reader *r);
__attribute__((warn_unused_result)) int ps_next(struct ps_reader *r, uint32_t max_len,
						struct ps_frame *out);

/* The key process's check of a request from the network process. */
enum ps_verdict {
	PS_OK = 0,
	PS_E_TYPE = -1,	    /* not a request, or id 0 */
	PS_E_IDENTITY = -2, /* identity block of the wrong size, or a subject not NUL-padded */
	PS_E_MESSAGE = -3,  /* not exactly one well-framed TTLV message within the limit */
};
/* On PS_OK, *out_who is the identity with its hex recomputed here. */
__attribute__((warn_unused_result)) enum ps_verdict
ps_check_request(const struct ps_frame *f, uint32_t max_message_size,
		 struct keel_client_identity *out_who);

/* The identity block of a request. */
void ps_identity_encode(const struct keel_client_identity *who, uint8_t out[PS_IDENTITY_LEN]);

/* PS_SETUP's b, the TLS identity in parts (see above). */
struct ps_tls_parts {
	const uint8_t *chain;
	uint32_t chain_len;
	const uint8_t *key; /* a secret */
	uint32_t key_len;
	const uint8_t *crls;
	uint32_t crls_len;
};

/* |p| as PS_SETUP's b, in *out (malloc'd: it holds the key; the caller wipes
 * and frees it). 0, or -1 (an empty chain or key, too long, no memory). */
__attribute__((warn_unused_result)) int ps_tls_parts_encode(const struct ps_tls_parts *p,
							    uint8_t **out, size_t *out_len);
/* The parts of |b|, pointing into it. 0, or -1 when a length runs past the
 * end, the chain or key is empty, or bytes follow the CRLs. */
__attribute__((warn_unused_result)) int ps_tls_parts_decode(const uint8_t *b, size_t b_len,
							    struct ps_tls_parts *out);

/* PS_METRIC's a: one (event, value) pair per event that changed. */
#define PS_METRIC_PAIR_LEN 5
#define PS_METRIC_MAX	   (KEEL_METRICS_NUM_EVENTS * PS_METRIC_PAIR_LEN)
struct ps_metric {
	int32_t value[KEEL_METRICS_NUM_EVENTS]; /* event e's at e - 1; 0: unchanged */
};

/* |m|'s changed events as PS_METRIC's a, into |out|: its length, 0 when
 * nothing changed. */
size_t ps_metric_encode(const struct ps_metric *m, uint8_t out[static PS_METRIC_MAX]);
/* The changes PS_METRIC |f| carries. 0, or -1 (*out all zero) when its id
 * is not 0, b is not empty, a is not whole pairs or holds none, an event is
 * unknown or not after the one before it, or keel_metrics_event_ok refuses
 * a value. */
__attribute__((warn_unused_result)) int ps_metric_decode(const struct ps_frame *f,
							 struct ps_metric *out);

/* ---- the network process (net.c) ---------------------------------------- */

struct ps_net;

/* Waits for the key process's first PS_SETUP on fds[0]; |fds| are the
 * network process's ends, one per key worker (copied). 0 or -1. */
__attribute__((warn_unused_result)) int ps_net_new(const int *fds, size_t num_fds,
						   struct ps_net **out);
/* After the server it was ready on is freed; the descriptors stay open.
 * Accepts NULL. */
void ps_net_free(struct ps_net *n);
/* A keel_request_fn: forwards the request; the reply comes on the loop
 * thread (or at once, without an answer, when the key process is gone). */
void ps_net_handle(void *ctx, const struct keel_client_identity *who, const uint8_t *req,
		   size_t req_len, keel_reply_fn reply, void *reply_ctx);
/* Takes the latest setup: the registry into *out_clients, the TLS parts
 * into |io_tls| (chain_pem, key_der, crls_pem), pointing into *out_buf,
 * which the caller wipes (it holds the key) and frees once the server has
 * loaded them: no copy stays here. 0, 1 when there is none new since the
 * last (the running settings stay), or -1 (logged). */
__attribute__((warn_unused_result)) int ps_net_setup(struct ps_net *n,
						     struct keel_clients **out_clients,
						     struct keel_server_tls *io_tls,
						     uint8_t **out_buf, size_t *out_buf_len);
/* Once the server serves every new handshake with what ps_net_setup handed
 * out last: acknowledges it to the key process, whose ps_key_push returns
 * then (no sooner: with several loops, another loop could still take a
 * handshake with the settings before). On the first loop's thread, or
 * before the loops run. */
void ps_net_setup_loaded(struct ps_net *n);
/* A keel_metrics_forward function: the event is added to the changes that
 * go to the key process in one PS_METRIC at the end of the loop iteration. */
void ps_net_metric(void *arg, enum keel_metrics_event ev, int value);
/* Puts the channels on |srv|'s loops, channel j on loop j % loops (no more
 * loops than channels; non-blocking from now on) and tells the key process
 * the bound ports. From then on each loop reads its channels' frames:
 * answers go to their requests, a PS_SETUP raises SIGHUP, a PS_STOP SIGTERM,
 * and the end of the stream ends this process. 0 or -1. */
__attribute__((warn_unused_result)) int ps_net_ready(struct ps_net *n, struct keel_server *srv,
						     const uint16_t *ports, size_t num_ports);

/* ---- the key process (key.c) -------------------------------------------- */

struct ps_key_config {
	/* One socket pair's end per worker (fds[0] also carries the setup,
	 * acknowledgements, counters and the stop), in the order the network
	 * process has the other ends. */
	const int *fds;
	size_t num_fds;
	pid_t net_pid;
	keel_request_fn handler; /* the engine */
	void *handler_ctx;
	struct keel_clients *clients; /* who is registered */
	uint32_t max_message_size;
	const char *tls_certificate_file; /* sent to the network process */
	const char *tls_private_key_file;
	const char *tls_crl_file; /* NULL: none; else sent after the key */
	/* Once the first setup is sent (it reads the TLS key, which only the
	 * starting user may read): where the key process drops privileges.
	 * 0, or the exit status to stop with. May be NULL. */
	int (*on_setup_sent)(void *arg);
	void *on_setup_sent_arg;
	/* Once the network process listens (may be NULL). */
	void (*on_ready)(void *arg, const uint16_t *ports, size_t num_ports);
	void *on_ready_arg;
};

struct ps_key;

/* The key process's state for |cfg| (kept, not copied). 0 or -1. */
__attribute__((warn_unused_result)) int ps_key_new(const struct ps_key_config *cfg,
						   struct ps_key **out);

/* Sends the setup, waits for PS_READY, then answers requests until the
 * network process ends. SIGHUP re-reads the registry and the TLS files and
 * pushes them; SIGTERM and SIGINT become a PS_STOP: the network process
 * drains. Returns the exit status: the network process's after a clean
 * drain, on_setup_sent's, or 1. */
int ps_key_run(struct ps_key *k);

/* From any thread but ps_key_run's (the admin API's, after a change): pushes
 * the registry and TLS files as they are now and waits until the network
 * process uses them for new handshakes. 0, or -1 (logged) when it did not
 * say so within a few seconds. */
__attribute__((warn_unused_result)) int ps_key_push(struct ps_key *k);

/* Accepts NULL. */
void ps_key_free(struct ps_key *k);

#endif
