#include "wipe.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* explicit_bzero, not OPENSSL_cleanse: both survive the optimiser, but
 * OpenSSL 3.0's cleanse stores 8 bytes a loop where glibc's memset uses the
 * widest stores the CPU has, and this wipes every block OpenSSL frees, a
 * 17 KB record buffer per record read or written among them (issue 7: 6% of
 * the network process's samples in a vcenter-task, docs/benchmarks.md). */
void keel_wipe_free(void *p)
{
	if (p != NULL) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

void *keel_wipe_realloc(void *p, size_t len)
{
	size_t old;
	void *q;

	if (p == NULL) {
		return malloc(len);
	}
	old = malloc_usable_size(p);
	if ((q = malloc(len != 0 ? len : 1)) == NULL) {
		return NULL;
	}
	memcpy(q, p, old < len ? old : len);
	keel_wipe_free(p);
	return q;
}

/* OpenSSL's own functions return NULL for 0 bytes, and its realloc to 0
 * frees: the same here. */
static void *ossl_malloc(size_t len, const char *file, int line)
{
	return len != 0 ? malloc(len) : NULL;
}

static void *ossl_realloc(void *p, size_t len, const char *file, int line)
{
	if (len == 0) {
		keel_wipe_free(p);
		return NULL;
	}
	return keel_wipe_realloc(p, len);
}

static void ossl_free(void *p, const char *file, int line)
{
	keel_wipe_free(p);
}

int keel_wipe_openssl(void)
{
	return CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) == 1 ? 0 : -1;
}
