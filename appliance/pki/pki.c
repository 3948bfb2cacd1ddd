/*
 * Certificates for the appliance: see keel/pki.h. OpenSSL errors are
 * translated here, at the boundary: logged with their reason, returned as -1.
 */
#include "keel/pki.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "log.h"

#define SERIAL_LEN 16 /* 128 bits */

static int ossl_fail(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	keel_err("pki: %s: %s", what, e != 0 ? buf : "failed");
	ERR_clear_error();
	return -1;
}

int keel_pki_rsa_key(unsigned bits, EVP_PKEY **out_key)
{
	EVP_PKEY *key = EVP_RSA_gen(bits);

	if (key == NULL) {
		return ossl_fail("RSA key generation");
	}
	*out_key = key;
	return 0;
}

/* RFC 5280 §4.1.2.2: positive, at most 20 octets. 16 random bytes with the
 * top bit clear, never zero. */
static int set_serial(X509 *cert)
{
	unsigned char raw[SERIAL_LEN];
	BIGNUM *bn = NULL;
	int r = -1;

	do {
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			return ossl_fail("random serial");
		}
		raw[0] &= 0x7f;
		BN_free(bn);
		bn = BN_bin2bn(raw, sizeof(raw), NULL);
	} while (bn != NULL && BN_is_zero(bn));
	if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL) {
		r = 0;
	}
	BN_free(bn);
	return r == 0 ? 0 : ossl_fail("serial number");
}

static int set_cn(X509_NAME *name, const char *cn)
{
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Keel", -1,
				       -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
				       0) != 1) {
		return ossl_fail("subject name");
	}
	return 0;
}

/* Version 3, serial, validity from now (less 5 minutes of clock skew) for |days|. */
static int base_cert(EVP_PKEY *pub, unsigned days, X509 **out_cert)
{
	X509 *c = X509_new();

	if (c == NULL || X509_set_version(c, X509_VERSION_3) != 1 || set_serial(c) != 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(c), -300) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(c), (int)days, 0, NULL) == NULL ||
	    X509_set_pubkey(c, pub) != 1) {
		X509_free(c);
		return ossl_fail("certificate");
	}
	*out_cert = c;
	return 0;
}

/* One extension in OpenSSL's configuration syntax, in the context of |issuer|. */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok ? 0 : ossl_fail(OBJ_nid2sn(nid));
}

static int sign(X509 *cert, EVP_PKEY *key)
{
	if (X509_sign(cert, key, EVP_sha256()) <= 0) {
		return ossl_fail("signature");
	}
	return 0;
}

int keel_pki_ca_new(EVP_PKEY *key, const char *cn, unsigned days, X509 **out_cert)
{
	X509 *c = NULL;
	int r = -1;

	if (base_cert(key, days, &c) != 0) {
		return -1;
	}
	if (set_cn(X509_get_subject_name(c), cn) != 0 ||
	    X509_set_issuer_name(c, X509_get_subject_name(c)) != 1 ||
	    add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
	    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
	    add_ext(c, c, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(c, c, NID_authority_key_identifier, "keyid:always") != 0 || sign(c, key) != 0) {
		goto out;
	}
	*out_cert = c;
	c = NULL;
	r = 0;
out:
	X509_free(c);
	return r;
}

/* "DNS:localhost,IP:127.0.0.1,IP:::1,<extra>..." for a server; extras only
 * for a client (none: no extension). */
static int san_text(const struct keel_pki_leaf *leaf, char *out, size_t out_len)
{
	size_t used = 0;
	int n;

	out[0] = '\0';
	if (leaf->usage == KEEL_PKI_SERVER) {
		used = (size_t)snprintf(out, out_len, "DNS:localhost,IP:127.0.0.1,IP:::1");
	}
	for (size_t i = 0; i < leaf->num_sans; i++) {
		n = snprintf(out + used, out_len - used, "%s%s", used > 0 ? "," : "",
			     leaf->sans[i]);
		if (n < 0 || (size_t)n >= out_len - used) {
			keel_err("pki: too many subjectAltName entries");
			return -1;
		}
		used += (size_t)n;
	}
	return 0;
}

static int leaf_exts(X509 *c, const struct keel_pki_leaf *leaf)
{
	char sans[1024];

	if (san_text(leaf, sans, sizeof(sans)) != 0 ||
	    add_ext(c, leaf->ca, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(c, leaf->ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") != 0 ||
	    add_ext(c, leaf->ca, NID_ext_key_usage,
		    leaf->usage == KEEL_PKI_SERVER ? "serverAuth,clientAuth" : "clientAuth") != 0 ||
	    add_ext(c, leaf->ca, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(c, leaf->ca, NID_authority_key_identifier, "keyid:always") != 0) {
		return -1;
	}
	if (sans[0] != '\0' && add_ext(c, leaf->ca, NID_subject_alt_name, sans) != 0) {
		return -1;
	}
	return 0;
}

int keel_pki_issue(const struct keel_pki_leaf *leaf, X509 **out_cert)
{
	X509 *c = NULL;
	int r = -1;

	if (base_cert(leaf->pub, leaf->days, &c) != 0) {
		return -1;
	}
	if (leaf->name != NULL) {
		if (X509_set_subject_name(c, leaf->name) != 1) {
			ossl_fail("subject name");
			goto out;
		}
	} else if (set_cn(X509_get_subject_name(c), leaf->cn) != 0) {
		goto out;
	}
	if (X509_set_issuer_name(c, X509_get_subject_name(leaf->ca)) != 1 ||
	    leaf_exts(c, leaf) != 0 || sign(c, leaf->ca_key) != 0) {
		goto out;
	}
	*out_cert = c;
	c = NULL;
	r = 0;
out:
	X509_free(c);
	return r;
}

int keel_pki_sign_csr(X509_REQ *csr, X509 *ca, EVP_PKEY *ca_key, unsigned days, X509 **out_cert)
{
	struct keel_pki_leaf leaf = {
	    .ca = ca, .ca_key = ca_key, .usage = KEEL_PKI_CLIENT, .days = days};

	leaf.pub = X509_REQ_get0_pubkey(csr);
	leaf.name = X509_REQ_get_subject_name(csr);
	if (leaf.pub == NULL || X509_REQ_verify(csr, leaf.pub) != 1) {
		return ossl_fail("CSR signature does not verify");
	}
	if (X509_NAME_entry_count(leaf.name) == 0) {
		keel_err("pki: CSR has an empty subject");
		return -1;
	}
	return keel_pki_issue(&leaf, out_cert);
}

/* Writes through |write_pem| to path.tmp (created with |mode|), then renames. */
static int write_pem(const char *path, mode_t mode, int (*write_pem_fn)(FILE *, void *), void *obj)
{
	char tmp[4096], iobuf[BUFSIZ];
	FILE *f = NULL;
	int fd, ok;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		return -1;
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		keel_err("pki: cannot create %s: %m", tmp);
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	/* Our own stdio buffer, so that the key text it held can be wiped. */
	ok = setvbuf(f, iobuf, _IOFBF, sizeof(iobuf)) == 0;
	ok = ok && write_pem_fn(f, obj) == 1;
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
	ok = fclose(f) == 0 && ok;
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	if (!ok || rename(tmp, path) != 0) {
		keel_err("pki: cannot write %s", path);
		(void)unlink(tmp);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static int pem_key(FILE *f, void *key)
{
	return PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
}

static int pem_cert(FILE *f, void *cert)
{
	return PEM_write_X509(f, cert);
}

int keel_pki_write_key(const char *path, EVP_PKEY *key)
{
	return write_pem(path, 0600, pem_key, key);
}

int keel_pki_write_cert(const char *path, X509 *cert)
{
	return write_pem(path, 0644, pem_cert, cert);
}

static void *read_pem(const char *path, void *(*read_fn)(FILE *))
{
	FILE *f = fopen(path, "re");
	char iobuf[BUFSIZ];
	void *obj = NULL;

	if (f == NULL) {
		keel_err("pki: cannot open %s: %m", path);
		return NULL;
	}
	/* Our own stdio buffer, so that the key text it held can be wiped. */
	if (setvbuf(f, iobuf, _IOFBF, sizeof(iobuf)) == 0) {
		obj = read_fn(f);
	}
	fclose(f);
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	if (obj == NULL) {
		ossl_fail(path);
	}
	return obj;
}

static void *read_key_fn(FILE *f)
{
	return PEM_read_PrivateKey(f, NULL, NULL, NULL);
}

static void *read_cert_fn(FILE *f)
{
	return PEM_read_X509(f, NULL, NULL, NULL);
}

static void *read_csr_fn(FILE *f)
{
	return PEM_read_X509_REQ(f, NULL, NULL, NULL);
}

int keel_pki_read_key(const char *path, EVP_PKEY **out_key)
{
	return (*out_key = read_pem(path, read_key_fn)) != NULL ? 0 : -1;
}

int keel_pki_read_cert(const char *path, X509 **out_cert)
{
	return (*out_cert = read_pem(path, read_cert_fn)) != NULL ? 0 : -1;
}

int keel_pki_read_csr(const char *path, X509_REQ **out_csr)
{
	return (*out_csr = read_pem(path, read_csr_fn)) != NULL ? 0 : -1;
}
