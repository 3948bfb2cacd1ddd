/*
 * Locked, non-dumpable memory for key material and the PIN (the libsodium and
 * s2n approach): each secret gets its own pages, mlock'ed and marked
 * MADV_DONTDUMP, and is wiped with explicit_bzero before it is unlocked.
 */
#include "hsm_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

int hsm_secret_new(size_t len, struct hsm_secret **out_secret)
{
	struct hsm_secret *s = NULL;
	void *p = MAP_FAILED;
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
	p = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		goto out;
	}
	if (mlock(p, s->map_len) != 0 || madvise(p, s->map_len, MADV_DONTDUMP) != 0) {
		munmap(p, s->map_len);
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
	munlock(s->data, s->map_len);
	munmap(s->data, s->map_len);
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
