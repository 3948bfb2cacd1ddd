/*
 * Requests of Discover Versions and Query items only are answered without
 * waiting for their audit rows' fsync (engine.c, protocol_only): the rows are
 * committed in the next group transaction, in the same chain: the next
 * request's, which waits for its fsync, or, if none comes within a few
 * milliseconds, the store's flusher's. Every other request, a batch that
 * mixes Discover Versions with a Get too, is answered only once its rows are
 * durable. Power losses are simulated by the store tests' VFS shim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>

#include "crash_vfs.h"
#include "engine_req.h"
#include "store.h"
#include "store_check.h"

static int setup(void **state)
{
	crash_vfs_install(); /* before the engine opens its store */
	*state = engine_fx_new();
	return 0;
}

static int teardown(void **state)
{
	engine_fx_free(*state);
	return 0;
}

/* Writes a Discover Versions item, and a Query item if |query|. */
static void protocol_items(struct kmip_writer *w, bool query)
{
	req_item_begin(w, KMIP_OPERATION_DISCOVER_VERSIONS);
	req_item_end(w);
	if (query) {
		req_item_begin(w, KMIP_OPERATION_QUERY);
		kmip_write_enum(w, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_FUNCTION_QUERY_OPERATIONS);
		req_item_end(w);
	}
}

/* Sends Discover Versions (and Query) as alice; every item succeeds. */
static void send_protocol(struct engine_fx *f, bool query)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, query ? 2 : 1);
	protocol_items(&w, query);
	req_send(f, &f->alice, &w);
	assert_int_equal(f->msg->num_batch_items, query ? 2 : 1);
	for (size_t i = 0; i < f->msg->num_batch_items; i++) {
		req_expect_ok(f, i);
	}
}

static void assert_chain(struct keel_store *s, int64_t rows)
{
	assert_int_equal(store_check_chain(s), rows);
}

/* Everything committed so far: what a durable answer guarantees. */
static int64_t committed_rows(struct engine_fx *f)
{
	return store_check_chain(keel_engine_store(f->e));
}

/* The power fails now: the engine's store as it would be found on disk. */
static void assert_chain_after_power_loss(struct engine_fx *f, int64_t rows)
{
	char crashed[160];
	struct keel_store *s;

	snprintf(crashed, sizeof(crashed), "%s/crashed.db", f->db_dir);
	(void)crash_vfs_power_loss(f->db_path, crashed);
	assert_int_equal(keel_store_open_sqlite(crashed, 1, &s), 0);
	assert_chain(s, rows);
	keel_store_close(s);
}

/*
 * Alone, a protocol-only request's row is only queued (no transaction on
 * its thread); the next request commits it first in its own group, one
 * COMMIT for both, and its fsync makes it durable.
 */
static void test_protocol_only_rides_with_the_next(void **state)
{
	struct engine_fx *f = *state;
	struct keel_store *s = keel_engine_store(f->e);
	uint64_t groups;
	char uid[129];

	keel_store_sqlite_flusher(s, 3600ull * 1000000000u, NULL, NULL); /* held off */
	send_protocol(f, false);
	assert_chain(s, 0);
	groups = store_check_groups();
	req_create_aes(f, 256, 12, true, uid);
	assert_int_equal(store_check_groups(), groups + 1);
	assert_true(committed_rows(f) > 1);
	assert_chain_after_power_loss(f, committed_rows(f)); /* its and the Create's */
}

/* With no request after it, the store's flusher commits its rows, durably. */
static void test_protocol_only_committed_without_a_next(void **state)
{
	struct engine_fx *f = *state;

	store_check_watch_flusher(keel_engine_store(f->e));
	send_protocol(f, true);
	store_check_wait_flushed();
	assert_chain(keel_engine_store(f->e), 2);
	assert_chain_after_power_loss(f, 2);
}

/* A mixed batch waits: its rows are durable when it is answered. */
static void test_mixed_batch_waits(void **state)
{
	struct engine_fx *f = *state;
	struct kmip_writer w;
	char uid[129];
	int64_t before;

	req_create_aes(f, 256, 12, true, uid);
	before = committed_rows(f);
	req_begin(&w, 1, 4, 2);
	protocol_items(&w, false);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, uid);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	req_expect_ok(f, 1);
	assert_chain(keel_engine_store(f->e), before + 2);
	assert_chain_after_power_loss(f, before + 2);
}

struct holder {
	struct keel_store *s;
	pthread_mutex_t lock;
	pthread_cond_t moved;
	bool in, go;
};

static void holder_set(struct holder *h, bool *flag)
{
	pthread_mutex_lock(&h->lock);
	*flag = true;
	pthread_cond_broadcast(&h->moved);
	pthread_mutex_unlock(&h->lock);
}

static void holder_wait(struct holder *h, const bool *flag)
{
	pthread_mutex_lock(&h->lock);
	while (!*flag) {
		pthread_cond_wait(&h->moved, &h->lock);
	}
	pthread_mutex_unlock(&h->lock);
}

/* Holds the writers' turn (an empty write transaction) until told to commit. */
static void *holder_main(void *arg)
{
	struct holder *h = arg;
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin(h->s, &t), 0);
	holder_set(h, &h->in);
	holder_wait(h, &h->go);
	assert_int_equal(keel_store_commit(t), 0);
	return NULL;
}

/*
 * While another thread holds the writers' turn, a protocol-only request is
 * answered (were it to wait, this test would hang), its rows not yet
 * written; the holder commits them in its group, in the chain.
 */
static void test_protocol_only_answered_while_turn_held(void **state)
{
	struct engine_fx *f = *state;
	struct holder h = {.s = keel_engine_store(f->e),
			   .lock = PTHREAD_MUTEX_INITIALIZER,
			   .moved = PTHREAD_COND_INITIALIZER};
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, holder_main, &h), 0);
	holder_wait(&h, &h.in);
	send_protocol(f, true);
	assert_chain(h.s, 0);
	holder_set(&h, &h.go);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_chain(h.s, 2);
	assert_chain_after_power_loss(f, 2); /* the holder waited: its group is durable */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_protocol_only_rides_with_the_next, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_protocol_only_committed_without_a_next, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_mixed_batch_waits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protocol_only_answered_while_turn_held, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
