/*
 * keel_metrics: process-wide counters and fixed-bucket latency histograms,
 * rendered as Prometheus text (exposition format 0.0.4) by the admin API's
 * /metrics. Every hook is one lock-free call (C11 atomics), safe from any
 * thread, so server, engine and store call them on their hot paths.
 */
#ifndef KEEL_METRICS_H
#define KEEL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic nanoseconds, for measuring what the hooks below record. */
uint64_t keel_metrics_now_ns(void);

/* One KMIP batch item answered: its Operation and Result Status (KMIP 1.4 §6.9). */
void keel_metrics_kmip_item(uint32_t operation, uint32_t result_status);
/* One KMIP request message answered in |ns|, filed under its first item's operation. */
void keel_metrics_kmip_request(uint32_t operation, uint64_t ns);

/* A TLS connection accepted (+1) or closed (-1); handshakes that completed or failed. */
void keel_metrics_connections(int delta);
void keel_metrics_handshake(bool ok);

/* The privilege-separated network process has the connections, the key
 * process serves /metrics: with |fn| set (before any thread starts), the two
 * calls above go to |fn| instead of this process's counters. Every event is
 * an amount to add, so that the network process may sum several before it
 * sends them (keel_metrics_add takes the sums). */
enum keel_metrics_event {
	KEEL_METRICS_CONNECTIONS = 1,	    /* value: the change in open connections */
	KEEL_METRICS_HANDSHAKES_OK = 2,	    /* value: handshakes completed */
	KEEL_METRICS_HANDSHAKES_FAILED = 3, /* value: handshakes failed */
};
#define KEEL_METRICS_NUM_EVENTS 3
void keel_metrics_forward(void (*fn)(void *arg, enum keel_metrics_event ev, int value), void *arg);
/* Whether |value| of |ev| is something to add: a known event with a
 * non-zero change, and a count above zero. */
bool keel_metrics_event_ok(unsigned ev, int64_t value);
/* Adds |value| of |ev| (forwarded, or several summed) to this process's
 * counters; what keel_metrics_event_ok refuses changes nothing. */
void keel_metrics_add(enum keel_metrics_event ev, int64_t value);

/* One call into the token (wrap, unwrap) that took |ns|. */
void keel_metrics_hsm_call(uint64_t ns);
/* One durable store commit that took |ns|. */
void keel_metrics_store_commit(uint64_t ns);
/* One store transaction committed for a group of |requests| (store/sqlite.c). */
void keel_metrics_store_group(unsigned requests);
/* The Key Protect mirror after each worker pass: outbox entries not yet
 * mirrored, of which escrows still to rewrap after a root key rotation,
 * POSIX time of its last success (0: none yet), and the MIRROR_E_* of its
 * last failure (0 when none since a success). */
void keel_metrics_mirror(int64_t backlog, int64_t rewraps, int64_t last_success, int last_error);

/* Keys a CRK rotation has still to rewrap; 0 when none runs (the rotation sets it). */
void keel_metrics_crk_remaining(int64_t objects);

/* Open TLS connections right now (for status screens). */
int64_t keel_metrics_open_connections(void);

/* The whole exposition as NUL-terminated text in *out_text (free()). 0 or -1. */
__attribute__((warn_unused_result)) int keel_metrics_render(char **out_text, size_t *out_len);

#endif
