/* Checks the store and engine tests share. */
#ifndef KEEL_TEST_STORE_CHECK_H
#define KEEL_TEST_STORE_CHECK_H

#include <stdint.h>

#include "store.h"

/* The rows of |s|'s audit chain, asserted intact (from a read-only snapshot). */
int64_t store_check_chain(struct keel_store *s);

#endif
