/* See store_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <semaphore.h>
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

static sem_t flushed;

static void post_flushed(void *arg)
{
	(void)arg;
	sem_post(&flushed);
}

void store_check_watch_flusher(struct keel_store *s)
{
	assert_int_equal(sem_init(&flushed, 0, 0), 0);
	keel_store_sqlite_flusher(s, 0, post_flushed, NULL);
}

void store_check_wait_flushed(void)
{
	struct timespec guard;

	/* not a timing: a flusher that never runs fails the test, not hangs it */
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &guard), 0);
	guard.tv_sec += 30;
	while (sem_timedwait(&flushed, &guard) != 0) {
		assert_int_equal(errno, EINTR);
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
