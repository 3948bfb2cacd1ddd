/*
 * Key Protect and IAM answers: bytes in as the HTTP answers (status,
 * Retry-After, body) to one mirror client call, through its retries, token
 * handling and parsers (appliance/mirror), with the exchange swapped for one
 * that reads the input (mirror_int.h's seam) instead of the network.
 *
 * Input: one byte picks the call; then answers, each a 2-byte status, a
 * 4-byte Retry-After in seconds (<= 0: none), a 2-byte body length and the
 * body (all big-endian). When the input runs out there is no answer
 * (MIRROR_E_UNAVAILABLE). Oracle: every call returns 0 or a MIRROR_E_* that
 * has a message, a successful call's results are what it promises, no wait
 * exceeds an hour, and ASan sees every secret freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/mirror.h"
#include "log.h"
#include "mirror_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *in;
static size_t in_len;

static uint32_t take(size_t n)
{
	uint32_t v = 0;

	for (size_t i = 0; i < n; i++) {
		v = v << 8 | in[i];
	}
	in += n;
	in_len -= n;
	return v;
}

static int exchange(struct mirror *m, const char *method, const char *url, const char *body,
		    struct curl_slist *headers, struct mirror_reply *out)
{
	size_t len;

	(void)m, (void)method, (void)url, (void)body, (void)headers;
	if (in_len < 8) {
		return MIRROR_E_UNAVAILABLE;
	}
	out->status = take(2);
	out->retry_after_s = (int32_t)take(4);
	if (out->retry_after_s <= 0) {
		out->retry_after_s = -1;
	}
	len = take(2);
	len = len < in_len ? len : in_len;
	if ((out->body = malloc(len + 1)) == NULL) {
		return MIRROR_E_NOMEM;
	}
	memcpy(out->body, in, len);
	out->body[len] = '\0';
	out->len = len;
	in += len;
	in_len -= len;
	return 0;
}

static void no_sleep(void *arg, uint32_t ms)
{
	(void)arg;
	if (ms > 3600u * 1000u) {
		abort();
	}
}

static char key_file[] = "/tmp/keel-fuzz-mirror-XXXXXX";

static void remove_key_file(void)
{
	unlink(key_file);
}

static void setup(void)
{
	int fd = mkstemp(key_file);

	keel_log_init(KEEL_LOG_ERROR);
	if (fd < 0 || atexit(remove_key_file) != 0 || write(fd, "fuzz-api-key", 12) != 12 ||
	    close(fd) != 0) {
		abort();
	}
}

static int count_key(void *arg, const struct mirror_key *key)
{
	if (key->id[0] == '\0' || key->state < 0 || key->state > 5) {
		abort();
	}
	++*(int *)arg;
	return 0;
}

static const uint8_t payload[32] = {1, 2, 3};
static const uint8_t iv[12] = {4};
static const struct mirror_secure_payload sp = {payload, sizeof(payload), payload, 16, iv, 12};

static int call(struct mirror *m, uint8_t op)
{
	struct mirror_key key;
	struct mirror_import_token token = {0};
	struct hsm_secret *secret = NULL;
	char *text = NULL, *more = NULL, version[MIRROR_ID_LEN];
	int r, n = 0;

	switch (op % 12) {
	case 0:
		r = mirror_get_key(m, "k-1", &key, &secret);
		break;
	case 1:
		r = mirror_list(m, MIRROR_ESCROW_PREFIX, op & 0x80, count_key, &n);
		break;
	case 2:
		r = mirror_find_by_name(m, "keel-root", &key);
		break;
	case 3:
		r = mirror_delete(m, "k-1");
		break;
	case 4:
		r = mirror_create_root(m, "keel-root", &key);
		break;
	case 5:
		r = mirror_create_standard(m, "keel-1", payload, sizeof(payload), &key);
		break;
	case 6:
		r = mirror_wrap(m, "k-1", payload, sizeof(payload), "keel-1", &text, version);
		if (r == 0 && (text == NULL || text[0] == '\0' || version[0] == '\0')) {
			abort();
		}
		break;
	case 7:
		r = mirror_unwrap(m, "k-1", "Y2lwaGVy", op & 0x80 ? "keel-1" : NULL, &secret,
				  &more);
		if (r == 0 && secret == NULL) {
			abort();
		}
		break;
	case 8:
		r = mirror_rewrap(m, "k-1", "Y2lwaGVy", NULL, &text);
		break;
	case 9:
		r = mirror_import_token(m, 600, &token);
		if (r == 0 && token.public_key_pem == NULL) {
			abort();
		}
		mirror_import_token_cleanup(&token);
		break;
	case 10:
		r = mirror_import_root(m, "keel-root", &sp, &key);
		break;
	default:
		r = mirror_rotate(m, "k-1", &sp);
		break;
	}
	hsm_secret_free(secret);
	free(text);
	free(more);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	const struct mirror_config cfg = {
	    .instance_id = "fuzz",
	    .api_key_file = key_file,
	    .max_retries = 2,
	    .sleep = no_sleep,
	};
	struct mirror *m;
	int r;

	if (!ready) {
		setup();
		ready = true;
	}
	if (size == 0) {
		return 0;
	}
	if (mirror_new(&cfg, &m) != 0) {
		abort();
	}
	m->exchange = exchange;
	in = data + 1;
	in_len = size - 1;
	r = call(m, data[0]);
	if (r > 0 || r < MIRROR_E_API_KEY_FILE || mirror_strerror(r) == NULL) {
		abort();
	}
	mirror_free(m);
	return 0;
}
