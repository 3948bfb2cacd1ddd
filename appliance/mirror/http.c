/*
 * The transport: libcurl with retries and backoff (KEYPROTECT.md §4: 429, 5xx
 * but 501 and connection failures, waits doubling from backoff_initial_ms to
 * backoff_max_ms, Retry-After honoured on 429 and 503), the IAM token (the
 * apikey grant, refreshed once 80 % of its lifetime has passed, as IBM's SDK
 * core does, and again on a 401), and the map from HTTP status to enum
 * mirror_err. CURLcode stays in this file.
 */
#include "mirror_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "log.h"

#define RETRY_AFTER_MAX_S 3600 /* a longer Retry-After is taken as an hour */

struct http_req {
	const char *method;
	const char *url;
	const char *body; /* NULL: none */
	struct curl_slist *headers;
};

void mirror_reply_cleanup(struct mirror_reply *r)
{
	if (r->body != NULL) {
		explicit_bzero(r->body, r->len);
		free(r->body);
	}
	memset(r, 0, sizeof(*r));
}

/* curl's write callback: append to the reply, wiping what a realloc leaves. */
static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct mirror_reply *r = arg;
	size_t n = size * nmemb;
	char *grown;

	if (n > MIRROR_REPLY_MAX - r->len) {
		return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
	}
	if ((grown = malloc(r->len + n + 1)) == NULL) {
		return 0;
	}
	if (r->body != NULL) {
		memcpy(grown, r->body, r->len);
		explicit_bzero(r->body, r->len);
		free(r->body);
	}
	memcpy(grown + r->len, data, n);
	r->len += n;
	grown[r->len] = '\0';
	r->body = grown;
	return n;
}

void mirror_default_sleep(void *arg, uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	(void)arg;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* OpenSSL wipes a decrypted record (an IAM answer with its token) from its
 * read buffer once libcurl has it, as keeld's own TLS contexts do. */
static CURLcode cleanse_plaintext(CURL *c, void *ssl_ctx, void *arg)
{
	SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
	return CURLE_OK;
}

int mirror_http_exchange(struct mirror *m, const char *method, const char *url, const char *body,
			 struct curl_slist *headers, struct mirror_reply *out)
{
	CURL *c = m->curl;
	curl_off_t retry_after = 0;
	CURLcode rc;

	curl_easy_reset(c);
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, out) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)m->timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, cleanse_plaintext) != CURLE_OK ||
	    (m->ca_bundle != NULL &&
	     curl_easy_setopt(c, CURLOPT_CAINFO, m->ca_bundle) != CURLE_OK) ||
	    /* A bodiless POST still says Content-Length: 0. */
	    (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0 &&
	     curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "") != CURLE_OK)) {
		return MIRROR_E_NOMEM;
	}
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		keel_warn("mirror: %s %s: %s", method, url, curl_easy_strerror(rc));
		return MIRROR_E_UNAVAILABLE;
	}
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status) != CURLE_OK) {
		return MIRROR_E_PROTOCOL;
	}
	if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
	    retry_after > 0) {
		out->retry_after_s = retry_after > LONG_MAX ? LONG_MAX : (long)retry_after;
	}
	return 0;
}

/* One exchange through m->exchange (libcurl, or a test's). */
static int http_once(struct mirror *m, const struct http_req *req, struct mirror_reply *out)
{
	int r;

	mirror_reply_cleanup(out);
	out->retry_after_s = -1;
	m->stats.requests++;
	if ((r = m->exchange(m, req->method, req->url, req->body, req->headers, out)) == 0) {
		if (out->retry_after_s > RETRY_AFTER_MAX_S) {
			out->retry_after_s = RETRY_AFTER_MAX_S;
		}
		m->stats.last_status = out->status;
	}
	return r;
}

static bool retryable(int r, long status)
{
	return r == MIRROR_E_UNAVAILABLE ||
	       (r == 0 && (status == 429 || (status >= 500 && status != 501)));
}

/* The wait before retry number `retry` (0-based) after this answer. */
static uint32_t backoff_ms(const struct mirror *m, uint32_t retry, const struct mirror_reply *r)
{
	uint64_t ms = m->backoff_initial_ms;

	if (r->retry_after_s >= 0 && (r->status == 429 || r->status == 503)) {
		return (uint32_t)r->retry_after_s * 1000u;
	}
	for (uint32_t i = 0; i < retry && ms < m->backoff_max_ms; i++) {
		ms *= 2;
	}
	return ms > m->backoff_max_ms ? m->backoff_max_ms : (uint32_t)ms;
}

/* http_once, repeated while the failure is one to retry. */
static int http_retrying(struct mirror *m, const struct http_req *req, struct mirror_reply *out)
{
	uint32_t retry;
	int r = http_once(m, req, out);

	for (retry = 0; retryable(r, out->status) && retry < m->max_retries; retry++) {
		uint32_t ms = backoff_ms(m, retry, out);

		keel_info("mirror: %s %s: %s; retry %u of %u in %u ms", req->method, req->url,
			  r != 0 ? "no answer" : "busy", retry + 1, m->max_retries, ms);
		m->sleep(m->sleep_arg, ms);
		m->stats.retries++;
		r = http_once(m, req, out);
	}
	if (r == 0 && retryable(0, out->status)) {
		return MIRROR_E_UNAVAILABLE;
	}
	return r;
}

static int status_error(long status)
{
	switch (status) {
	case 400:
	case 422:
		return MIRROR_E_REFUSED;
	case 401:
	case 403:
		return MIRROR_E_AUTH;
	case 404:
		return MIRROR_E_NOT_FOUND;
	case 409:
		return MIRROR_E_CONFLICT;
	case 410:
		return MIRROR_E_GONE;
	default:
		return status == 429 || status >= 500 ? MIRROR_E_UNAVAILABLE : MIRROR_E_PROTOCOL;
	}
}

static void monotonic_now(struct timespec *out)
{
	clock_gettime(CLOCK_MONOTONIC, out);
}

static bool token_fresh(const struct mirror *m)
{
	struct timespec now;

	if (m->token == NULL) {
		return false;
	}
	monotonic_now(&now);
	return now.tv_sec < m->token_refresh_at.tv_sec;
}

/* The form body of the apikey grant, in locked memory (it holds the API key).
 * The key is percent-encoded byte by byte, so any character survives. */
static int token_form(const struct mirror *m, struct hsm_secret **out)
{
	static const char prefix[] = "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey"
				     "&response_type=cloud_iam&apikey=";
	const uint8_t *key = hsm_secret_data(m->api_key);
	size_t key_len = hsm_secret_len(m->api_key), n = sizeof(prefix) - 1;
	char *p;

	if (hsm_secret_new(n + key_len * 3 + 1, out) != 0) {
		return MIRROR_E_NOMEM;
	}
	p = (char *)hsm_secret_data(*out);
	memcpy(p, prefix, n);
	for (size_t i = 0; i < key_len; i++) {
		n += (size_t)sprintf(p + n, "%%%02X", key[i]);
	}
	return 0;
}

/* Keeps access_token (locked) and schedules the refresh at 80 % of expires_in. */
static int token_keep(struct mirror *m, const struct mirror_reply *reply)
{
	json_t *doc = json_loadb(reply->body, reply->len, 0, NULL);
	const char *token = json_string_value(json_object_get(doc, "access_token"));
	json_int_t expires_in = json_integer_value(json_object_get(doc, "expires_in"));
	size_t len = token != NULL ? strlen(token) : 0;
	struct hsm_secret *kept = NULL;
	int r = MIRROR_E_PROTOCOL;

	if (len == 0 || len >= MIRROR_TOKEN_MAX || expires_in <= 0 || expires_in > 86400) {
		keel_err("mirror: IAM answered without a usable access_token and expires_in");
		goto out;
	}
	if (hsm_secret_new(len + 1, &kept) != 0) {
		r = MIRROR_E_NOMEM;
		goto out;
	}
	memcpy(hsm_secret_data(kept), token, len + 1);
	hsm_secret_free(m->token);
	m->token = kept;
	monotonic_now(&m->token_refresh_at);
	m->token_refresh_at.tv_sec += (time_t)(expires_in * 8 / 10);
	m->stats.token_fetches++;
	r = 0;
out:
	json_decref(doc); /* jansson wipes on free (mirror_json_wipe_on_free) */
	return r;
}

static int token_fetch(struct mirror *m)
{
	struct hsm_secret *form = NULL;
	struct curl_slist *h = NULL, *h2;
	struct mirror_reply reply = {0};
	int r;

	if ((r = token_form(m, &form)) != 0) {
		return r;
	}
	if ((h = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded")) ==
		NULL ||
	    (h2 = curl_slist_append(h, "Accept: application/json")) == NULL) {
		r = MIRROR_E_NOMEM;
		goto out;
	}
	h = h2;
	struct http_req req = {"POST", m->iam_url, (const char *)hsm_secret_data(form), h};
	if ((r = http_retrying(m, &req, &reply)) == 0 && reply.status != 200) {
		/* IAM's error body names the error code; it never echoes the key. */
		keel_err("mirror: IAM token request refused: HTTP %ld %.200s", reply.status,
			 reply.body != NULL ? reply.body : "");
		r = reply.status == 429 || reply.status >= 500 ? MIRROR_E_UNAVAILABLE
							       : MIRROR_E_AUTH;
	} else if (r == 0) {
		r = token_keep(m, &reply);
	}
out:
	curl_slist_free_all(h);
	mirror_reply_cleanup(&reply);
	hsm_secret_free(form);
	return r;
}

/* Frees a header list after wiping it: one entry holds the bearer token. */
static void headers_free(struct curl_slist *list)
{
	for (struct curl_slist *h = list; h != NULL; h = h->next) {
		explicit_bzero(h->data, strlen(h->data));
	}
	curl_slist_free_all(list);
}

/* "head value", or just head: "Expect:" alone tells curl to send no such header. */
static struct curl_slist *header_add(struct curl_slist *list, bool *ok, const char *head,
				     const char *value)
{
	char line[MIRROR_TOKEN_MAX + 64];
	struct curl_slist *grown;

	if (!*ok ||
	    snprintf(line, sizeof(line), "%s%s%s", head, value != NULL ? " " : "",
		     value != NULL ? value : "") >= (int)sizeof(line) ||
	    (grown = curl_slist_append(list, line)) == NULL) {
		*ok = false;
		grown = list;
	}
	explicit_bzero(line, sizeof(line));
	return grown;
}

static struct curl_slist *kp_headers(const struct mirror *m, bool with_body)
{
	struct curl_slist *h = NULL;
	bool ok = true;

	h = header_add(h, &ok, "Authorization: Bearer", (const char *)hsm_secret_data(m->token));
	h = header_add(h, &ok, "Bluemix-Instance:", m->instance_id);
	h = header_add(h, &ok, "Correlation-Id:", m->correlation_id);
	h = header_add(h, &ok, "Accept:", "application/json");
	h = header_add(h, &ok, "Expect:", NULL); /* no 100-continue round trip */
	if (with_body) {
		h = header_add(h, &ok, "Content-Type:", "application/json");
	}
	if (!ok) {
		headers_free(h);
		return NULL;
	}
	return h;
}

/* Logs a refusal with Key Protect's reason code (its bodies never echo secrets). */
static void log_refusal(const struct mirror *m, const char *method, const char *path,
			const struct mirror_reply *reply)
{
	json_t *doc = json_loadb(reply->body != NULL ? reply->body : "", reply->len, 0, NULL);
	json_t *res = json_array_get(json_object_get(doc, "resources"), 0);
	const char *code = json_string_value(
	    json_object_get(json_array_get(json_object_get(res, "reasons"), 0), "code"));
	const char *msg = json_string_value(json_object_get(res, "errorMsg"));

	keel_warn("mirror: %s %s: HTTP %ld %s (correlation id %s)", method, path, reply->status,
		  code != NULL	? code
		  : msg != NULL ? msg
				: "",
		  m->correlation_id);
	json_decref(doc);
}

/* One attempt sequence with the current token. */
static int kp_attempt(struct mirror *m, const char *method, const char *url, const char *body,
		      struct mirror_reply *out)
{
	struct curl_slist *h;
	int r;

	if (!token_fresh(m) && (r = token_fetch(m)) != 0) {
		return r;
	}
	if ((h = kp_headers(m, body != NULL)) == NULL) {
		return MIRROR_E_NOMEM;
	}
	struct http_req req = {method, url, body, h};
	r = http_retrying(m, &req, out);
	headers_free(h);
	return r;
}

int mirror_kp_call(struct mirror *m, const char *method, const char *path, const char *body,
		   struct mirror_reply *out)
{
	char *url = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (mirror_uuid(m->correlation_id) != 0 ||
	    asprintf(&url, "%s/api/v2%s", m->endpoint, path) < 0) {
		url = NULL;
		r = MIRROR_E_NOMEM;
		goto out;
	}
	r = kp_attempt(m, method, url, body, out);
	if (r == 0 && out->status == 401) {
		/* The token expired or was revoked before our schedule: once more, fresh. */
		hsm_secret_free(m->token);
		m->token = NULL;
		r = kp_attempt(m, method, url, body, out);
	}
	if (r == 0 && (out->status < 200 || out->status > 299)) {
		log_refusal(m, method, path, out);
		r = status_error(out->status);
	}
out:
	free(url);
	if (r != 0) {
		m->stats.last_error = r;
	}
	return r;
}
