/*
 * POST /v1/enrol: the first administrator of a fresh appliance. First boot
 * shows a one-time enrolment code on the console and hands keeld only its
 * verifier (admin.enrolment_file); whoever holds the code sends it with a
 * CSR over TLS, without a client certificate, and gets the CSR signed by
 * Keel's CA and registered with role admin. Exactly once: the code is used
 * in the transaction that registers the certificate (a compare-and-set), it
 * expires, and KEEL_ENROL_MAX_ATTEMPTS wrong codes lock it for good (a slow
 * salted hash and the admin thread's one-at-a-time handling pace guesses).
 *
 * The verifier: "pbkdf2-sha256$ITERATIONS$SALT$HASH", salt and hash in hex,
 * HASH = PBKDF2-HMAC-SHA-256(code, salt, iterations, 32 bytes). The file holds
 * "VERIFIER EXPIRES" (POSIX seconds) on one line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admin_int.h"
#include "log.h"
#include "store.h"

#define ENROL_HASH_LEN 32
#define ENROL_SALT_MAX 64
#define ENROL_ITER_MIN 10000
#define ENROL_ITER_MAX 10000000
#define ENROL_CODE_MAX 256

static int nibble(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Lowercase hex |text| of exactly 2 * |len| digits into |out|. 0 or -1. */
static int unhex(const char *text, size_t text_len, uint8_t *out, size_t len)
{
	if (text_len != 2 * len) {
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			return -1;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

struct verifier {
	unsigned long iterations;
	uint8_t salt[ENROL_SALT_MAX];
	size_t salt_len;
	uint8_t hash[ENROL_HASH_LEN];
};

/* Parses a verifier ("pbkdf2-sha256$ITER$SALT$HASH"). 0 or -1. */
static int parse_verifier(const char *text, struct verifier *out)
{
	static const char prefix[] = "pbkdf2-sha256$";
	const char *salt, *hash;
	char *end;

	if (strncmp(text, prefix, sizeof(prefix) - 1) != 0) {
		return -1;
	}
	errno = 0;
	out->iterations = strtoul(text + sizeof(prefix) - 1, &end, 10);
	if (errno != 0 || *end != '$' || out->iterations < ENROL_ITER_MIN ||
	    out->iterations > ENROL_ITER_MAX) {
		return -1;
	}
	salt = end + 1;
	if ((hash = strchr(salt, '$')) == NULL || (hash - salt) % 2 != 0) {
		return -1;
	}
	out->salt_len = (size_t)(hash - salt) / 2;
	hash++;
	if (out->salt_len < 16 || out->salt_len > ENROL_SALT_MAX ||
	    unhex(salt, 2 * out->salt_len, out->salt, out->salt_len) != 0 ||
	    unhex(hash, strlen(hash), out->hash, ENROL_HASH_LEN) != 0) {
		return -1;
	}
	return 0;
}

/* Whether |code| matches |verifier|: 1 yes, 0 no, -1 a malformed verifier.
 * The comparison takes the same time wherever the hashes differ. */
static int code_matches(const char *verifier, const char *code)
{
	struct verifier v;
	uint8_t got[ENROL_HASH_LEN];
	int r;

	if (parse_verifier(verifier, &v) != 0 ||
	    PKCS5_PBKDF2_HMAC(code, (int)strlen(code), v.salt, (int)v.salt_len, (int)v.iterations,
			      EVP_sha256(), sizeof(got), got) != 1) {
		return -1;
	}
	r = CRYPTO_memcmp(got, v.hash, sizeof(got)) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return r;
}

int keel_admin_enrolment_offer(struct keel_store *store, const char *path)
{
	char line[KEEL_STORE_VERIFIER_MAX + 32], verifier[KEEL_STORE_VERIFIER_MAX + 1];
	struct keel_store_txn *t = NULL;
	struct verifier v;
	long long expires;
	FILE *f;
	int r;

	if (path == NULL) {
		return 0;
	}
	if ((f = fopen(path, "re")) == NULL) {
		keel_err("admin: cannot open %s: %m", path);
		return -1;
	}
	r = fgets(line, sizeof(line), f) != NULL &&
		    sscanf(line, "%192s %lld", verifier, &expires) == 2 &&
		    parse_verifier(verifier, &v) == 0
		? 0
		: -1;
	fclose(f);
	if (r != 0) {
		keel_err("admin: %s: not \"pbkdf2-sha256$ITERATIONS$SALT$HASH EXPIRES\"", path);
		return -1;
	}
	if ((r = keel_store_begin(store, &t)) == 0 &&
	    (r = keel_store_enrolment_offer(t, verifier, (int64_t)expires)) == 0) {
		r = keel_store_commit(t);
	} else if (t != NULL) {
		keel_store_rollback(t);
	}
	if (r != 0) {
		keel_err("admin: cannot record the enrolment code: %s", keel_store_strerror(r));
		return -1;
	}
	return 0;
}

/* The pending code, or the 403 answer saying why there is none to try. */
static int pending_code(struct admin_req *rq, struct keel_store_enrolment *out)
{
	struct keel_store_txn *t = NULL;
	int r;

	if ((r = keel_store_begin_read(rq->ctx->store, &t)) == 0) {
		r = keel_store_enrolment_pending(t, out);
		keel_store_rollback(t);
	}
	if (r == KEEL_STORE_E_NOT_FOUND) {
		return admin_fail(rq, 403,
				  "no enrolment code is pending (it was used, or none "
				  "was set)");
	}
	if (r != 0) {
		return admin_fail(rq, 500, "store: %s", keel_store_strerror(r));
	}
	if (out->attempts >= KEEL_ENROL_MAX_ATTEMPTS) {
		return admin_fail(rq, 403, "the enrolment code is locked after %d wrong codes",
				  KEEL_ENROL_MAX_ATTEMPTS);
	}
	if ((int64_t)time(NULL) >= out->expires) {
		return admin_fail(rq, 403, "the enrolment code has expired");
	}
	return 0;
}

/* A wrong code: counted before the answer, so that no restart forgets it. */
static int wrong_code(struct admin_req *rq, const struct keel_store_enrolment *e)
{
	struct keel_store_txn *t = NULL;
	int r;

	if ((r = keel_store_begin(rq->ctx->store, &t)) == 0 &&
	    (r = keel_store_enrolment_fail(t, e->verifier)) == 0) {
		r = keel_store_commit(t);
	} else if (t != NULL) {
		keel_store_rollback(t);
	}
	if (r != 0) {
		return admin_fail(rq, 500, "store: %s", keel_store_strerror(r));
	}
	keel_warn("admin: %s sent a wrong enrolment code (%lld of %d)", rq->who,
		  (long long)e->attempts + 1, KEEL_ENROL_MAX_ATTEMPTS);
	return admin_fail(rq, 403, "wrong enrolment code (%lld tries left)",
			  (long long)(KEEL_ENROL_MAX_ATTEMPTS - e->attempts - 1));
}

/* In the registration's transaction: the code used, unless it already is. */
static int use_code(struct admin_req *rq, struct keel_store_txn *t, void *arg)
{
	const struct keel_store_enrolment *e = arg;
	int r = keel_store_enrolment_use(t, e->verifier);

	if (r == KEEL_STORE_E_NOT_FOUND) {
		return admin_fail(rq, 403, "the enrolment code was already used");
	}
	return r != 0 ? admin_fail(rq, 500, "store: %s", keel_store_strerror(r)) : 0;
}

int admin_post_enrol(struct admin_req *rq)
{
	struct keel_store_enrolment e;
	json_t *body = NULL;
	const char *code, *csr, *name;
	X509 *cert = NULL;
	int status, match;

	if (rq->who[0] == '\0') { /* a route for anyone: no identity was looked up */
		struct evhttp_connection *conn = evhttp_request_get_connection(rq->http);
		char *host = NULL;
		ev_uint16_t port = 0;

		if (conn != NULL) {
			evhttp_connection_get_peer(conn, &host, &port);
		}
		snprintf(rq->who, sizeof(rq->who), "enrol:%s", host != NULL ? host : "local");
	}
	if ((status = admin_body(rq, &body)) != 0 ||
	    (status = admin_field_string(rq, body, "code", true, &code)) != 0 ||
	    (status = admin_field_string(rq, body, "csr", true, &csr)) != 0 ||
	    (status = admin_field_string(rq, body, "name", false, &name)) != 0) {
		goto out;
	}
	if (code[0] == '\0' || strlen(code) > ENROL_CODE_MAX) {
		status = admin_fail(rq, 400, "field \"code\" must have 1 to %d characters",
				    ENROL_CODE_MAX);
		goto out;
	}
	if ((status = pending_code(rq, &e)) != 0) {
		goto out;
	}
	if ((match = code_matches(e.verifier, code)) < 0) {
		status = admin_fail(rq, 500, "the stored enrolment verifier is malformed");
		goto out;
	}
	if (match == 0) {
		status = wrong_code(rq, &e);
		goto out;
	}
	if ((status = admin_sign_client_csr(rq, csr, &cert)) == 0) {
		status = admin_register_cert_in(
		    rq, cert, name, "admin",
		    json_pack("{s:o}", "certificate", admin_pem_json(cert)), use_code, &e);
	}
	if (status == 201) {
		keel_notice("admin: %s used the enrolment code: a new administrator", rq->who);
	}
out:
	X509_free(cert);
	json_decref(body); /* jansson wipes what it frees: the code too */
	return status;
}
