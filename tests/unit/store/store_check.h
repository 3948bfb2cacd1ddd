/* Checks the store and engine tests share. */
#ifndef KEEL_TEST_STORE_CHECK_H
#define KEEL_TEST_STORE_CHECK_H

#include <stdint.h>

#include "store.h"

/* The rows of |s|'s audit chain, asserted intact (from a read-only snapshot). */
int64_t store_check_chain(struct keel_store *s);
/*
 * Has |s|'s flusher run what is submitted at once and tell
 * store_check_wait_flushed, which returns once it has committed and synced
 * a flush (failing the test if none comes within 30 s).
 */
void store_check_watch_flusher(struct keel_store *s);
void store_check_wait_flushed(void);
/* Group transactions committed so far in this process (keel_store_groups_total). */
uint64_t store_check_groups(void);

#endif
