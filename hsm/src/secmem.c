/*
 * Locked, non-dumpable memory for key material and the PIN (the libsodium and
 * s2n approach): each secret gets its own pages, mlock'ed and marked
 * MADV_DONTDUMP, and is wiped with explicit_bzero before it is unlocked.
 *
 * Single pages are recycled through a small cache of locked, wiped pages:
 * mmap/mlock/munmap on every unwrap would cost five system calls and
 * serialize threads on the address-space lock (hsm-bench shows it).
 */
#include "hsm_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE_CACHE_MAX 256 /* 1 MiB of locked memory with 4 KiB pages */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static void *page_cache[PAGE_CACHE_MAX];
static size_t page_cache_len;

/* Room for the largest key plus what KWP and GCM put around it. */
struct hsm_secret {
	uint8_t *data;
	size_t len;
	size_t map_len;
};

static size_t page_round(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (len + page - 1) / page * page;
}

static void *map_locked(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		return NULL;
	}
	if (mlock(p, len) != 0 || madvise(p, len, MADV_DONTDUMP) != 0) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

/* A wiped, locked page from the cache, or NULL. */
static void *cache_get(size_t len)
{
	void *p = NULL;

	if (len != page_round(1)) {
		return NULL;
	}
	pthread_mutex_lock(&cache_mu);
	if (page_cache_len > 0) {
		p = page_cache[--page_cache_len];
	}
	pthread_mutex_unlock(&cache_mu);
	return p;
}

/* Takes a wiped page back; false if the cache is full or len is not one page. */
static bool cache_put(void *p, size_t len)
{
	bool ok = false;

	if (len != page_round(1)) {
		return false;
	}
	pthread_mutex_lock(&cache_mu);
	if (page_cache_len < PAGE_CACHE_MAX) {
		page_cache[page_cache_len++] = p;
		ok = true;
	}
	pthread_mutex_unlock(&cache_mu);
	return ok;
}

int hsm_secret_new(size_t len, struct hsm_secret **out_secret)
{
	struct hsm_secret *s = NULL;
	void *p;
	int r = HSM_E_INVAL;

	if (out_secret == NULL || len == 0 || len > HSM_MAX_KEY_LEN + HSM_MAX_UID_LEN + 64) {
		goto out;
	}
	*out_secret = NULL;
	r = HSM_E_NOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		goto out;
	}
	s->map_len = page_round(len);
	if ((p = cache_get(s->map_len)) == NULL && (p = map_locked(s->map_len)) == NULL) {
		goto out;
	}
	s->data = p;
	s->len = len;
	*out_secret = s;
	s = NULL;
	r = 0;
out:
	free(s);
	return r;
}

uint8_t *hsm_secret_data(struct hsm_secret *s)
{
	return s != NULL ? s->data : NULL;
}

size_t hsm_secret_len(const struct hsm_secret *s)
{
	return s != NULL ? s->len : 0;
}

void hsm_secret_free(struct hsm_secret *s)
{
	if (s == NULL) {
		return;
	}
	explicit_bzero(s->data, s->map_len);
	if (!cache_put(s->data, s->map_len)) {
		munlock(s->data, s->map_len);
		munmap(s->data, s->map_len);
	}
	explicit_bzero(s, sizeof(*s));
	free(s);
}

void hsm_secret_shrink(struct hsm_secret *s, size_t len)
{
	if (s != NULL && len < s->len) {
		explicit_bzero(s->data + len, s->len - len);
		s->len = len;
	}
}
