/* Checks the store and engine tests share. */
#ifndef KEEL_TEST_STORE_CHECK_H
#define KEEL_TEST_STORE_CHECK_H

#include <stdint.h>

#include "store.h"

/* The rows of |s|'s audit chain, asserted intact (from a read-only snapshot). */
int64_t store_check_chain(struct keel_store *s);
/*
 * Polls until |s|'s chain has |rows| rows (work another thread commits),
 * failing the test if that takes over 30 s.
 */
void store_check_wait_chain(struct keel_store *s, int64_t rows);
/* Group transactions committed so far in this process (keel_store_groups_total). */
uint64_t store_check_groups(void);

#endif
