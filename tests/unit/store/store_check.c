/* See store_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/metrics.h"
#include "store_check.h"

int64_t store_check_chain(struct keel_store *s)
{
	struct keel_store_audit_check c;
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin_read(s, &t), 0);
	assert_int_equal(keel_store_audit_verify(t, NULL, &c), 0);
	keel_store_rollback(t);
	assert_int_equal(c.fault, KEEL_AUDIT_INTACT);
	return c.num_rows;
}

void store_check_wait_chain(struct keel_store *s, int64_t rows)
{
	const struct timespec pause = {.tv_nsec = 1000000};
	uint64_t until = keel_metrics_now_ns() + 30ull * 1000000000u;

	while (store_check_chain(s) != rows) {
		assert_true(keel_metrics_now_ns() < until);
		(void)nanosleep(&pause, NULL);
	}
}

uint64_t store_check_groups(void)
{
	static const char name[] = "\nkeel_store_groups_total ";
	unsigned long long n = 0;
	char *text = NULL, *at;
	size_t len;

	assert_int_equal(keel_metrics_render(&text, &len), 0);
	assert_non_null(at = strstr(text, name));
	assert_int_equal(sscanf(at + strlen(name), "%llu", &n), 1);
	free(text);
	return n;
}
