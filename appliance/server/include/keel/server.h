/*
 * keel_server: the network side of keeld. Accepts mutual-TLS connections,
 * cuts the byte stream into TTLV frames without interpreting them, and hands
 * each frame with the client's identity to a keel_request_fn on a worker pool.
 * Everything except the handler runs on network_threads event loops, each on
 * its own thread with its own connections; "loop thread" below is the thread
 * of the loop that holds the connection or the watch in question.
 */
#ifndef KEEL_SERVER_H
#define KEEL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/x509.h>

#include "keel/request.h"

struct keel_server;

/*
 * Decides whether a client certificate may connect. Called on the network
 * loop during the handshake, so it must answer from memory (the store keeps
 * a snapshot). |chain| is OpenSSL's verification context: the leaf is
 * X509_STORE_CTX_get0_cert(chain) and the chain the client sent is
 * X509_STORE_CTX_get0_untrusted(chain). Returning false fails the handshake.
 */
typedef bool (*keel_is_registered_fn)(void *ctx, const uint8_t fingerprint[KEEL_FINGERPRINT_LEN],
				      X509_STORE_CTX *chain);

/* Client registrations. |free| (may be NULL) releases |ctx| once no
 * handshake can still use it, which after a reload may be later than the
 * reload itself. */
struct keel_registry {
	keel_is_registered_fn is_registered;
	void *ctx;
	void (*free)(void *ctx);
};

struct keel_server_tls {
	const char *certificate_file; /* PEM: leaf first, then the chain sent to clients */
	const char *private_key_file; /* PEM, RSA or EC */
	uint32_t session_lifetime_s;  /* 0 disables resumption */
	/* Instead of the files (when chain_pem is not NULL), as the key process
	 * sends them to the privilege-separated network process, which reads no
	 * files: the chain (PEM, leaf first), the key (DER: PKCS#8 or the
	 * traditional form; no PEM pass over it) and crl_file's CRLs (PEM). */
	const uint8_t *chain_pem;
	size_t chain_pem_len;
	const uint8_t *key_der;
	size_t key_der_len;
	const uint8_t *crls_pem;
	size_t crls_pem_len;
	/* PEM CRLs (NULL: none): a client certificate one of them lists is
	 * refused even while registered. Read again with the rest on a reload.
	 * With chain_pem, the CRLs are crls_pem (crl_file only names them). */
	const char *crl_file;
};

struct keel_server_listen {
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

struct keel_server_config {
	const struct keel_server_listen *listen;
	size_t num_listen;
	uint32_t max_connections;
	uint32_t max_connections_per_client;
	uint32_t max_message_size; /* whole frame, header included */
	uint32_t handshake_timeout_ms;
	uint32_t idle_timeout_ms;  /* between frames */
	uint32_t frame_timeout_ms; /* from a frame's first byte to its last */
	uint32_t drain_timeout_ms; /* SIGTERM: longest wait for in-flight requests */
	uint32_t worker_threads;
	uint32_t network_threads; /* event loops (0: one); each has its thread */
	keel_request_fn handler;
	void *handler_ctx;
	/* The handler only forwards the request and never blocks (the
	 * privilege-separated network process): it is called on the loop thread,
	 * with no worker pool in between, and replies later, from any thread;
	 * a reply on the loop thread (a keel_server_watch callback's) is taken
	 * at once, without a wake-up. */
	bool handler_forwards;
	/* Called on the first loop's thread on SIGHUP; typically re-reads files
	 * and calls keel_server_reload. May be NULL. */
	void (*on_sighup)(struct keel_server *srv, void *arg);
	void *on_sighup_arg;
};

/* Builds the TLS context, binds every listen address on every loop and
 * starts the workers. Takes ownership of |*reg| (also on failure). 0 or
 * negative. */
__attribute__((warn_unused_result)) int keel_server_new(struct keel_server **out_srv,
							const struct keel_server_config *cfg,
							const struct keel_server_tls *tls,
							struct keel_registry *reg);

/* The port actually bound for listen address |i| (useful with port 0). */
__attribute__((warn_unused_result)) int keel_server_port(const struct keel_server *srv, size_t i,
							 uint16_t *out_port);

/* Starts the threads of every loop but the first; they wait for
 * keel_server_run. Between a privilege drop, which must come first (each
 * thread has its own credentials and capabilities), and a seccomp filter
 * without clone, which must come after. keel_server_run calls it when no one
 * has. 0 or negative. */
__attribute__((warn_unused_result)) int keel_server_start(struct keel_server *srv);

/* Runs the first loop on the calling thread and the others on theirs, until
 * every loop is drained (SIGTERM, SIGINT or keel_server_drain). 0 when every
 * in-flight request was answered, negative when a drain timed out. */
__attribute__((warn_unused_result)) int keel_server_run(struct keel_server *srv);

/* Any thread: new certificate/key and registrations for every loop's new
 * handshakes; established connections keep theirs. Takes ownership of |*reg| (also on
 * failure, where the old settings stay). 0 or negative. */
__attribute__((warn_unused_result)) int keel_server_reload(struct keel_server *srv,
							   const struct keel_server_tls *tls,
							   struct keel_registry *reg);

/*
 * Another descriptor on loop |loop| (0 to keel_server_loops - 1): |cb| runs
 * on that loop's thread each time |fd| is readable (writable false) and,
 * while keel_watch_write(w, true), each time it is writable (writable true).
 * The privilege-separated network process talks to the key process this
 * way, so that answers reach their connections without another thread.
 * That loop's thread, or before keel_server_run; the watch lasts as long as
 * the server. 0 or -1.
 */
struct keel_watch;
typedef void (*keel_watch_fn)(void *arg, bool writable);
__attribute__((warn_unused_result)) int keel_server_watch(struct keel_server *srv, size_t loop,
							  int fd, keel_watch_fn cb, void *arg,
							  struct keel_watch **out_watch);
/* Loop thread: whether |cb| also hears that the descriptor is writable. 0 or -1. */
__attribute__((warn_unused_result)) int keel_watch_write(struct keel_watch *w, bool on);

/*
 * A callback of the caller's that runs on loop |loop|'s thread once for each
 * keel_defer_arm, after the callbacks the loop iteration has ready by then:
 * work that several callbacks of one iteration add to is done once for them
 * all (the network process's counters go to the key process this way).
 * That loop's thread, or before keel_server_run; it lasts as long as the
 * server. 0 or -1.
 */
struct keel_defer;
__attribute__((warn_unused_result)) int keel_server_defer(struct keel_server *srv, size_t loop,
							  void (*cb)(void *arg), void *arg,
							  struct keel_defer **out_defer);
/* Loop thread: |d|'s callback runs in this iteration, after those ready now;
 * once however often it is armed before it runs. */
void keel_defer_arm(struct keel_defer *d);

/* Any thread: every loop stops accepting, finishes its in-flight requests
 * and closes. */
void keel_server_drain(struct keel_server *srv);

/* How many loops |srv| runs (network_threads, at least 1). */
size_t keel_server_loops(const struct keel_server *srv);
/* The index of the loop the calling thread runs; 0 on a thread that runs
 * none (the caller of keel_server_run runs loop 0). */
size_t keel_server_loop_self(void);

void keel_server_free(struct keel_server *srv);

/* Frame header check, exposed for tests. KMIP 1.x §9.1 TTLV: tag (3 bytes),
 * type (1), length (4, big-endian). A message is a Structure (type 0x01). */
#define KEEL_TTLV_HEADER_LEN 8
enum keel_frame_verdict {
	KEEL_FRAME_OK = 0,
	KEEL_FRAME_NOT_STRUCTURE = -1,
	KEEL_FRAME_TOO_LARGE = -2,
	KEEL_FRAME_BAD_TAG = -3,
};
/* On KEEL_FRAME_OK, *out_frame_len is the whole frame's length (header + body). */
__attribute__((warn_unused_result)) enum keel_frame_verdict
keel_frame_check(const uint8_t header[KEEL_TTLV_HEADER_LEN], uint32_t max_message_size,
		 size_t *out_frame_len);

#endif
