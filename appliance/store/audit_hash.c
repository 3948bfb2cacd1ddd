/*
 * The audit chain's hash (store.h, keel_store_audit_hash): one canonical
 * encoding of a row, so every backend and every verifier agrees on the bytes.
 * Lengths are explicit, so no two different rows encode alike.
 */
#include "store_int.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#define NULL_LEN 0xffffffffu

/* SHA-256, fetched once: EVP_sha256() makes every EVP_DigestInit_ex look the
 * algorithm up again in the provider's store (a lock, a hash table, a
 * property query): 40% of the hash's time (docs/benchmarks.md, "The key
 * process per task, by stage"). Kept for the process's life. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	}
}

static int digest_int(EVP_MD_CTX *md, uint64_t v, size_t n)
{
	uint8_t b[8];

	put_be(b, v, n);
	return EVP_DigestUpdate(md, b, n);
}

static int digest_str(EVP_MD_CTX *md, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (len >= NULL_LEN) {
		return 0;
	}
	if (!digest_int(md, s != NULL ? len : NULL_LEN, 4)) {
		return 0;
	}
	return len == 0 || EVP_DigestUpdate(md, s, len);
}

int keel_store_audit_hash(const uint8_t prev[KEEL_STORE_HASH_LEN], const struct keel_store_audit *a,
			  uint8_t out[KEEL_STORE_HASH_LEN])
{
	EVP_MD_CTX *md = NULL;
	unsigned int n = 0;
	int ok;

	if (pthread_once(&sha256_once, fetch_sha256) != 0 || sha256 == NULL) {
		return KEEL_STORE_E_NOMEM;
	}
	md = EVP_MD_CTX_new();
	ok = md != NULL && EVP_DigestInit_ex(md, sha256, NULL) &&
	     EVP_DigestUpdate(md, prev, KEEL_STORE_HASH_LEN) &&
	     digest_int(md, (uint64_t)a->id, 8) && digest_int(md, (uint64_t)a->time, 8) &&
	     digest_str(md, a->client) && digest_int(md, a->operation, 4) &&
	     digest_str(md, a->uid) && digest_int(md, a->result_status, 4) &&
	     digest_int(md, a->result_reason, 4) && digest_str(md, a->detail) &&
	     EVP_DigestFinal_ex(md, out, &n) && n == KEEL_STORE_HASH_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : KEEL_STORE_E_NOMEM;
}
