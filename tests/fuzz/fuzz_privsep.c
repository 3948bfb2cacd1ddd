/*
 * What the key process parses of the network process's frames (privsep.h),
 * and the network process of the key process's: a request's identity and
 * message, a PS_METRIC's counter changes, a PS_SETUP's TLS parts. The input
 * is each of these in turn. Oracle: counter changes and TLS parts that
 * decode encode again to the identical bytes (one encoding per content),
 * and an accepted request's identity block encodes again to its own bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "privsep/privsep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void metric(const uint8_t *data, size_t size)
{
	struct ps_frame f = {.type = PS_METRIC, .a = (uint8_t *)data, .a_len = (uint32_t)size};
	struct ps_metric m;
	uint8_t out[PS_METRIC_MAX];

	if (size <= UINT32_MAX && ps_metric_decode(&f, &m) == 0 &&
	    (ps_metric_encode(&m, out) != size || memcmp(out, data, size) != 0)) {
		abort();
	}
}

static void tls_parts(const uint8_t *data, size_t size)
{
	struct ps_tls_parts p;
	uint8_t *out = NULL;
	size_t out_len = 0;

	if (ps_tls_parts_decode(data, size, &p) != 0) {
		return;
	}
	if (ps_tls_parts_encode(&p, &out, &out_len) != 0 || out_len != size ||
	    memcmp(out, data, size) != 0) {
		abort();
	}
	free(out);
}

/* The identity block first, the message after it. */
static void request(const uint8_t *data, size_t size)
{
	struct ps_frame f = {.type = PS_REQUEST, .id = 1, .a = (uint8_t *)data};
	struct keel_client_identity who;
	uint8_t again[PS_IDENTITY_LEN];

	f.a_len = (uint32_t)(size < PS_IDENTITY_LEN ? size : PS_IDENTITY_LEN);
	f.b = f.a + f.a_len;
	f.b_len = (uint32_t)(size - f.a_len);
	if (size <= UINT32_MAX && ps_check_request(&f, 1u << 20, &who) == PS_OK) {
		ps_identity_encode(&who, again);
		if (memcmp(again, data, PS_IDENTITY_LEN) != 0) {
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	metric(data, size);
	tls_parts(data, size);
	request(data, size);
	return 0;
}
