/*
 * keel_metrics: what the hooks record is what /metrics renders, in the
 * Prometheus text format (cumulative buckets, +Inf equal to the count).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "keel/metrics.h"

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(keel_metrics_render(&text, &len), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

static void assert_line(const char *text, const char *line)
{
	const char *p = strstr(text, line);

	if (p == NULL || (p != text && p[-1] != '\n') || p[strlen(line)] != '\n') {
		fail_msg("no line \"%s\" in:\n%s", line, text);
	}
}

static void test_kmip_items_and_latency(void **state)
{
	char *text;

	keel_metrics_kmip_item(0x01, 0); /* Create, Success */
	keel_metrics_kmip_item(0x01, 0);
	keel_metrics_kmip_item(0x0A, 1);	  /* Get, Operation Failed */
	keel_metrics_kmip_item(0x01, 9);	  /* not a Result Status: ignored */
	keel_metrics_kmip_item(0x1000, 0);	  /* no such operation: "other" */
	keel_metrics_kmip_request(0x01, 3000000); /* 3 ms */
	text = render();
	assert_line(text, "keel_kmip_requests_total{operation=\"Create\",result=\"success\"} 2");
	assert_line(text, "keel_kmip_requests_total{operation=\"Get\",result=\"failed\"} 1");
	assert_line(text, "keel_kmip_requests_total{operation=\"other\",result=\"success\"} 1");
	assert_line(
	    text,
	    "keel_kmip_request_duration_seconds_bucket{operation=\"Create\",le=\"0.0025\"} 0");
	assert_line(
	    text, "keel_kmip_request_duration_seconds_bucket{operation=\"Create\",le=\"0.005\"} 1");
	assert_line(
	    text, "keel_kmip_request_duration_seconds_bucket{operation=\"Create\",le=\"+Inf\"} 1");
	assert_line(text, "keel_kmip_request_duration_seconds_count{operation=\"Create\"} 1");
	assert_line(text,
		    "keel_kmip_request_duration_seconds_sum{operation=\"Create\"} 0.003000000");
	free(text);
}

static void test_histogram_cumulative(void **state)
{
	char *text;

	keel_metrics_hsm_call(50000);	   /* 50 us: first bucket */
	keel_metrics_hsm_call(2000000);	   /* 2 ms */
	keel_metrics_hsm_call(9000000000); /* 9 s: past every bound */
	text = render();
	assert_line(text, "keel_hsm_call_duration_seconds_bucket{le=\"0.0001\"} 1");
	assert_line(text, "keel_hsm_call_duration_seconds_bucket{le=\"0.001\"} 1");
	assert_line(text, "keel_hsm_call_duration_seconds_bucket{le=\"0.0025\"} 2");
	assert_line(text, "keel_hsm_call_duration_seconds_bucket{le=\"2.5\"} 2");
	assert_line(text, "keel_hsm_call_duration_seconds_bucket{le=\"+Inf\"} 3");
	assert_line(text, "keel_hsm_call_duration_seconds_count 3");
	free(text);
}

static void test_gauges_and_counters(void **state)
{
	char *text;

	keel_metrics_connections(1);
	keel_metrics_connections(1);
	keel_metrics_connections(-1);
	keel_metrics_handshake(true);
	keel_metrics_handshake(false);
	keel_metrics_handshake(false);
	keel_metrics_mirror(42, 7, 1700000000, -8);
	keel_metrics_store_commit(1000);
	assert_int_equal(keel_metrics_open_connections(), 1);
	text = render();
	assert_line(text, "keel_tls_connections 1");
	assert_line(text, "keel_tls_handshakes_total{result=\"ok\"} 1");
	assert_line(text, "keel_tls_handshakes_total{result=\"failed\"} 2");
	assert_line(text, "keel_mirror_backlog 42");
	assert_line(text, "keel_mirror_rewrap_backlog 7");
	assert_line(text, "keel_mirror_last_success_timestamp_seconds 1700000000");
	assert_line(text, "keel_mirror_last_error -8");
	assert_line(text, "keel_store_commit_duration_seconds_count 1");
	assert_line(text, "# TYPE keel_store_commit_duration_seconds histogram");
	free(text);
}

/* Sums of forwarded events (the key process's side of privsep): each adds
 * its whole value; what keel_metrics_event_ok refuses changes nothing. */
static void test_event_sums(void **state)
{
	int64_t open = keel_metrics_open_connections();
	char *text;

	assert_false(keel_metrics_event_ok(0, 1));
	assert_false(keel_metrics_event_ok(KEEL_METRICS_NUM_EVENTS + 1, 1));
	assert_false(keel_metrics_event_ok(KEEL_METRICS_CONNECTIONS, 0));
	assert_false(keel_metrics_event_ok(KEEL_METRICS_HANDSHAKES_OK, 0));
	assert_false(keel_metrics_event_ok(KEEL_METRICS_HANDSHAKES_FAILED, -1));
	assert_true(keel_metrics_event_ok(KEEL_METRICS_CONNECTIONS, -5));
	keel_metrics_add(KEEL_METRICS_CONNECTIONS, 7);
	keel_metrics_add(KEEL_METRICS_CONNECTIONS, -2);
	keel_metrics_add(KEEL_METRICS_HANDSHAKES_OK, 1000);
	keel_metrics_add(KEEL_METRICS_HANDSHAKES_FAILED, -3);
	keel_metrics_add((enum keel_metrics_event)9, 5);
	assert_int_equal(keel_metrics_open_connections(), open + 5);
	text = render();
	assert_line(text, "keel_tls_handshakes_total{result=\"ok\"} 1001");
	assert_line(text, "keel_tls_handshakes_total{result=\"failed\"} 2");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kmip_items_and_latency),
	    cmocka_unit_test(test_histogram_cumulative),
	    cmocka_unit_test(test_gauges_and_counters),
	    cmocka_unit_test(test_event_sums),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
