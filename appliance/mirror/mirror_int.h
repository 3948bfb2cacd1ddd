/* Private to appliance/mirror: the transport (http.c) and its helpers (util.c). */
#ifndef KEEL_MIRROR_INT_H
#define KEEL_MIRROR_INT_H

#include <curl/curl.h>
#include <jansson.h>
#include <time.h>

#include <keel/mirror.h>

#define MIRROR_API_KEY_MAX 256
#define MIRROR_TOKEN_MAX   8000 /* IAM access tokens are JWTs of a few KB */
#define MIRROR_REPLY_MAX   (4u << 20)

struct mirror_reply;

/* One HTTP exchange (http.c's, over libcurl); a seam for tests/fuzz/fuzz_mirror.c,
 * which answers from its input instead of the network. */
typedef int (*mirror_exchange_fn)(struct mirror *m, const char *method, const char *url,
				  const char *body, struct curl_slist *headers,
				  struct mirror_reply *out);

struct mirror {
	CURL *curl;
	mirror_exchange_fn exchange; /* mirror_http_exchange unless a test swaps it */
	char *endpoint, *iam_url, *instance_id, *ca_bundle;
	struct hsm_secret *api_key;
	struct hsm_secret *token;	  /* the bearer token, NUL-terminated; NULL until fetched */
	struct timespec token_refresh_at; /* CLOCK_MONOTONIC */
	uint32_t timeout_ms, max_retries, backoff_initial_ms, backoff_max_ms;
	mirror_sleep_fn sleep;
	void *sleep_arg;
	char correlation_id[37]; /* one per call, kept across its retries */
	struct mirror_stats stats;
};

/* An answer: status and body (malloc'd, NUL-terminated, wiped on cleanup). */
struct mirror_reply {
	long status;
	char *body;
	size_t len;
	long retry_after_s; /* -1 when the answer had no Retry-After */
};
void mirror_reply_cleanup(struct mirror_reply *r);

/* The exchange mirror_new installs: 0 when an HTTP answer came back (any
 * status, its body and Retry-After in *out, which the caller has reset, its
 * retry_after_s to -1), else MIRROR_E_UNAVAILABLE (connection, TLS, timeout)
 * or MIRROR_E_NOMEM. */
int mirror_http_exchange(struct mirror *m, const char *method, const char *url, const char *body,
			 struct curl_slist *headers, struct mirror_reply *out) MIRROR_WUR;

/*
 * One Key Protect call: method, path under /api/v2 (already URL-safe), an
 * optional body (sent as is; the caller wipes it). 0 with a 2xx answer in
 * *out, else a MIRROR_E_* after retries and one token refresh on 401. The
 * reply must be cleaned up either way.
 */
int mirror_kp_call(struct mirror *m, const char *method, const char *path, const char *body,
		   struct mirror_reply *out) MIRROR_WUR;

/* nanosleep, through EINTR: the sleep when the configuration gives none. */
void mirror_default_sleep(void *arg, uint32_t ms);

/* Base64 (RFC 4648, padded): a malloc'd string; decoding into locked memory
 * or into a caller's buffer of exactly the decoded length. */
char *mirror_b64_encode(const uint8_t *data, size_t len);
int mirror_b64_decode_secret(const char *text, struct hsm_secret **out) MIRROR_WUR;
int mirror_b64_decode(const char *text, uint8_t *out, size_t out_len) MIRROR_WUR;
/* Decoded length of valid padded base64, or -1. */
long mirror_b64_decoded_len(const char *text);

/* Wipes then frees a NUL-terminated string (NULL is fine). */
void mirror_free_wiped(char *s);

/* Makes jansson wipe every allocation when it frees it (once per process),
 * so that parsed plaintext does not linger in the heap. */
void mirror_json_wipe_on_free(void);

/* A fresh v4 UUID into out (37 bytes). */
int mirror_uuid(char out[37]) MIRROR_WUR;

#endif
