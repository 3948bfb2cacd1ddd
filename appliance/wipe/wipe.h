/*
 * Allocation functions for the libraries whose buffers pass secrets
 * (OpenSSL, libevent, libcurl, jansson): every block they free is wiped
 * first, and a reallocation never leaves an unwiped old block behind.
 */
#ifndef KEEL_WIPE_H
#define KEEL_WIPE_H

#include <stddef.h>

/* free() of a malloc'd block, wiped whole first (malloc_usable_size, so it
 * also serves blocks allocated before a library was switched to it).
 * Accepts NULL. */
void keel_wipe_free(void *p);

/* realloc() that moves the contents to a new block and wipes the old one.
 * |len| 0 still returns a block. NULL on failure (|p| is then untouched). */
void *keel_wipe_realloc(void *p, size_t len);

/* Makes OpenSSL allocate with the functions above, so that its temporaries
 * (a PEM or DER decoder's copies of a private key, freed with a plain
 * OPENSSL_free) are wiped. Before anything has used OpenSSL: it refuses
 * once it has allocated. 0 or -1. */
__attribute__((warn_unused_result)) int keel_wipe_openssl(void);

#endif
