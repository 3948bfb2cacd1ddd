/* keel_pki: the chain verifies with OpenSSL's own X509_verify_cert for the
 * purpose each certificate is for, and carries the EKU, SAN, validity and
 * serial it should. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "keel/pki.h"

struct fixture {
	EVP_PKEY *ca_key, *leaf_key;
	X509 *ca;
};

static int group_setup(void **state)
{
	static struct fixture f;

	if (keel_pki_rsa_key(KEEL_PKI_CA_BITS, &f.ca_key) != 0 ||
	    keel_pki_rsa_key(KEEL_PKI_LEAF_BITS, &f.leaf_key) != 0 ||
	    keel_pki_ca_new(f.ca_key, "Test CA", KEEL_PKI_CA_DAYS, &f.ca) != 0) {
		return -1;
	}
	*state = &f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	X509_free(f->ca);
	EVP_PKEY_free(f->ca_key);
	EVP_PKEY_free(f->leaf_key);
	return 0;
}

/* X509_verify_cert of |leaf| against |ca| alone, for |purpose|. */
static int verify(X509 *ca, X509 *leaf, int purpose)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

/* |t| is |want| days from now, give or take the seconds the test took. */
static void assert_days_from_now(const ASN1_TIME *t, int want)
{
	int days = 0, secs = 0;

	assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, t), 1);
	assert_true((days == want && secs <= 60) || (days == want - 1 && secs >= 86400 - 60));
}

static void assert_serial_128(X509 *c)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);

	assert_non_null(bn);
	assert_false(BN_is_negative(bn));
	assert_false(BN_is_zero(bn));
	assert_true(BN_num_bits(bn) <= 127);
	assert_true(BN_num_bits(bn) > 64); /* random: below 2^64 once in 2^63 */
	BN_free(bn);
}

static X509 *issue(struct fixture *f, enum keel_pki_usage usage, const char *const *sans,
		   size_t num_sans)
{
	struct keel_pki_leaf leaf = {.ca = f->ca,
				     .ca_key = f->ca_key,
				     .pub = f->leaf_key,
				     .cn = "leaf",
				     .usage = usage,
				     .days = KEEL_PKI_LEAF_DAYS,
				     .sans = sans,
				     .num_sans = num_sans};
	X509 *c = NULL;

	assert_int_equal(keel_pki_issue(&leaf, &c), 0);
	return c;
}

static void test_ca(void **state)
{
	struct fixture *f = *state;
	const ASN1_BIT_STRING *ku;

	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(f->ca)), 3072);
	assert_int_equal(verify(f->ca, f->ca, X509_PURPOSE_ANY), 1);
	assert_true(X509_check_ca(f->ca) >= 1);
	assert_true(X509_get_extension_flags(f->ca) & EXFLAG_CA);
	assert_true(X509_get_extension_flags(f->ca) & EXFLAG_SS);
	ku = X509_get_ext_d2i(f->ca, NID_key_usage, NULL, NULL);
	assert_non_null(ku);
	assert_int_equal(X509_get_key_usage(f->ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ASN1_BIT_STRING_free((ASN1_BIT_STRING *)ku);
	assert_days_from_now(X509_get0_notAfter(f->ca), KEEL_PKI_CA_DAYS);
	assert_true(X509_cmp_current_time(X509_get0_notBefore(f->ca)) < 0);
	assert_serial_128(f->ca);
}

static bool has_san(X509 *c, int type, const char *want, size_t want_len)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
	bool found = false;

	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const ASN1_STRING *s = type == GEN_DNS ? g->d.dNSName : g->d.iPAddress;

		if (g->type == type && (size_t)ASN1_STRING_length(s) == want_len &&
		    memcmp(ASN1_STRING_get0_data(s), want, want_len) == 0) {
			found = true;
		}
	}
	GENERAL_NAMES_free(names);
	return found;
}

static void test_server_cert(void **state)
{
	static const char *const extra[] = {"DNS:kms.example", "IP:10.0.0.5"};
	struct fixture *f = *state;
	X509 *c = issue(f, KEEL_PKI_SERVER, extra, 2);

	assert_int_equal(verify(f->ca, c, X509_PURPOSE_SSL_SERVER), 1);
	assert_int_equal(verify(f->ca, c, X509_PURPOSE_SSL_CLIENT), 1);
	assert_int_equal(X509_get_extended_key_usage(c), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	assert_int_equal(X509_check_ca(c), 0);
	assert_true(has_san(c, GEN_DNS, "localhost", 9));
	assert_true(has_san(c, GEN_IPADD, "\x7f\x00\x00\x01", 4));
	assert_true(has_san(c, GEN_IPADD, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16));
	assert_true(has_san(c, GEN_DNS, "kms.example", 11));
	assert_true(has_san(c, GEN_IPADD, "\x0a\x00\x00\x05", 4));
	assert_int_equal(X509_check_host(c, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(c, "::1", 0), 1);
	assert_days_from_now(X509_get0_notAfter(c), KEEL_PKI_LEAF_DAYS);
	assert_serial_128(c);
	X509_free(c);
}

static void test_client_cert(void **state)
{
	struct fixture *f = *state;
	X509 *c = issue(f, KEEL_PKI_CLIENT, NULL, 0);
	X509 *c2 = issue(f, KEEL_PKI_CLIENT, NULL, 0);

	assert_int_equal(verify(f->ca, c, X509_PURPOSE_SSL_CLIENT), 1);
	assert_int_not_equal(verify(f->ca, c, X509_PURPOSE_SSL_SERVER), 1);
	assert_int_equal(X509_get_extended_key_usage(c), XKU_SSL_CLIENT);
	assert_null(X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL));
	assert_int_not_equal(
	    ASN1_INTEGER_cmp(X509_get0_serialNumber(c), X509_get0_serialNumber(c2)), 0);
	X509_free(c);
	X509_free(c2);
}

static void test_other_ca_refused(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k2 = NULL;
	X509 *ca2 = NULL, *c = issue(f, KEEL_PKI_CLIENT, NULL, 0);

	assert_int_equal(keel_pki_rsa_key(KEEL_PKI_LEAF_BITS, &k2), 0);
	assert_int_equal(keel_pki_ca_new(k2, "Test CA", 30, &ca2), 0);
	assert_int_not_equal(verify(ca2, c, X509_PURPOSE_SSL_CLIENT), 1);
	X509_free(c);
	X509_free(ca2);
	EVP_PKEY_free(k2);
}

static X509_REQ *make_csr(EVP_PKEY *key, const char *cn)
{
	X509_REQ *req = X509_REQ_new();

	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
						    MBSTRING_UTF8, (const unsigned char *)cn, -1,
						    -1, 0),
			 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	return req;
}

static void test_sign_csr(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	X509_REQ *req;
	X509 *c = NULL;
	char cn[64];

	assert_non_null(ec);
	req = make_csr(ec, "kmipClient20161127094708");
	assert_int_equal(keel_pki_sign_csr(req, f->ca, f->ca_key, 365, &c), 0);
	assert_int_equal(verify(f->ca, c, X509_PURPOSE_SSL_CLIENT), 1);
	assert_int_equal(X509_get_extended_key_usage(c), XKU_SSL_CLIENT);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c), ec), 1);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, "kmipClient20161127094708");
	assert_days_from_now(X509_get0_notAfter(c), 365);
	X509_free(c);
	X509_REQ_free(req);
	EVP_PKEY_free(ec);
}

static void test_sign_csr_bad_signature(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *ec = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	X509_REQ *req;
	X509 *c = NULL;

	assert_non_null(ec);
	assert_non_null(other);
	req = make_csr(ec, "someone");
	/* Another key in the request than the one that signed it. */
	assert_int_equal(X509_REQ_set_pubkey(req, other), 1);
	assert_int_equal(keel_pki_sign_csr(req, f->ca, f->ca_key, 365, &c), -1);
	assert_null(c);
	X509_REQ_free(req);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other);
}

static void test_files(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/keel-pki-test-XXXXXX", key_path[64], crt_path[64];
	EVP_PKEY *k = NULL;
	X509 *c = NULL;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(key_path, sizeof(key_path), "%s/k.key", dir);
	snprintf(crt_path, sizeof(crt_path), "%s/c.crt", dir);
	assert_int_equal(keel_pki_write_key(key_path, f->leaf_key), 0);
	assert_int_equal(keel_pki_write_cert(crt_path, f->ca), 0);
	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(keel_pki_read_key(key_path, &k), 0);
	assert_int_equal(EVP_PKEY_eq(k, f->leaf_key), 1);
	assert_int_equal(keel_pki_read_cert(crt_path, &c), 0);
	assert_int_equal(X509_cmp(c, f->ca), 0);
	EVP_PKEY_free(k);
	X509_free(c);
	assert_int_equal(keel_pki_read_cert(key_path, &c), -1);
	unlink(key_path);
	unlink(crt_path);
	assert_int_equal(keel_pki_read_key(key_path, &k), -1);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ca),		cmocka_unit_test(test_server_cert),
	    cmocka_unit_test(test_client_cert), cmocka_unit_test(test_other_ca_refused),
	    cmocka_unit_test(test_sign_csr),	cmocka_unit_test(test_sign_csr_bad_signature),
	    cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
