/*
 * Certificates Keel's CA makes (pki section): a CSR vCenter generated,
 * signed and registered; a client certificate and key issued and registered;
 * the CA and server certificates vCenter is given; a renewed server
 * certificate. VCENTER.md §4.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "admin_int.h"
#include "keel/pki.h"
#include "log.h"

/* Keel's CA certificate and key, or a 409 answer when keeld has none. */
static int load_ca(struct admin_req *rq, X509 **out_cert, EVP_PKEY **out_key)
{
	const struct admin_ctx *c = rq->ctx;

	*out_cert = NULL;
	*out_key = NULL;
	if (c->ca_certificate[0] == '\0' || c->ca_key[0] == '\0') {
		return admin_fail(rq, 409,
				  "keeld has no CA: set pki.ca_certificate and pki.ca_key");
	}
	if (keel_pki_read_cert(c->ca_certificate, out_cert) != 0 ||
	    keel_pki_read_key(c->ca_key, out_key) != 0) {
		return admin_fail(rq, 500, "cannot read Keel's CA (see keeld's log)");
	}
	return 0;
}

/* A private key in PEM (PKCS#8, unencrypted), the buffer wiped before it goes. */
static json_t *key_json(EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *data = NULL;
	long len = 0;
	json_t *j = NULL;

	if (b != NULL && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0) {
		j = json_stringn(data, (size_t)len);
		OPENSSL_cleanse(data, (size_t)len);
	}
	BIO_free(b);
	return j;
}

/* Frees what a leaf to issue holds: the CA and the new key. */
static void leaf_cleanup(struct keel_pki_leaf *leaf)
{
	X509_free(leaf->ca);
	EVP_PKEY_free(leaf->ca_key);
	EVP_PKEY_free(leaf->pub);
}

int admin_sign_client_csr(struct admin_req *rq, const char *pem, X509 **out)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509_REQ *csr = b != NULL ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	X509 *ca = NULL;
	EVP_PKEY *ca_key = NULL;
	int status;

	*out = NULL;
	if (csr == NULL) {
		status = admin_fail(rq, 400, "field \"csr\" is not a PEM certificate request");
	} else if ((status = load_ca(rq, &ca, &ca_key)) == 0 &&
		   keel_pki_sign_csr(csr, ca, ca_key, KEEL_PKI_LEAF_DAYS, out) != 0) {
		status =
		    admin_fail(rq, 400, "the CSR cannot be signed (does its signature verify?)");
	}
	X509_REQ_free(csr);
	BIO_free(b);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return status;
}

json_t *admin_pem_json(X509 *cert)
{
	char *pem = keel_cert_pem(cert);
	json_t *j = json_string(pem != NULL ? pem : "");

	free(pem);
	return j;
}

int admin_sign_csr(struct admin_req *rq)
{
	json_t *body = NULL;
	const char *text, *name;
	X509 *cert = NULL;
	int status;

	if ((status = admin_body(rq, &body)) == 0 &&
	    (status = admin_field_string(rq, body, "csr", true, &text)) == 0 &&
	    (status = admin_field_string(rq, body, "name", false, &name)) == 0 &&
	    (status = admin_sign_client_csr(rq, text, &cert)) == 0) {
		status =
		    admin_register_cert(rq, cert, name, "kmip",
					json_pack("{s:o}", "certificate", admin_pem_json(cert)));
	}
	X509_free(cert);
	json_decref(body);
	return status;
}

int admin_issue_client(struct admin_req *rq)
{
	struct keel_pki_leaf leaf = {.usage = KEEL_PKI_CLIENT, .days = KEEL_PKI_LEAF_DAYS};
	json_t *body = NULL, *extra;
	const char *role;
	X509 *cert = NULL;
	int status;

	if ((status = admin_body(rq, &body)) != 0 ||
	    (status = admin_field_string(rq, body, "name", true, &leaf.cn)) != 0 ||
	    (status = admin_role_field(rq, body, &role)) != 0 ||
	    (status = load_ca(rq, &leaf.ca, &leaf.ca_key)) != 0) {
		goto out;
	}
	if (keel_pki_rsa_key(KEEL_PKI_LEAF_BITS, &leaf.pub) != 0 ||
	    keel_pki_issue(&leaf, &cert) != 0) {
		status = admin_fail(rq, 500, "cannot issue the certificate (see keeld's log)");
		goto out;
	}
	extra = json_pack("{s:o, s:o}", "certificate", admin_pem_json(cert), "private_key",
			  key_json(leaf.pub));
	status = admin_register_cert(rq, cert, leaf.cn, role, extra);
out:
	X509_free(cert);
	leaf_cleanup(&leaf);
	json_decref(body);
	return status;
}

int admin_get_ca(struct admin_req *rq)
{
	X509 *ca = NULL;
	EVP_PKEY *key = NULL;
	int status;

	if ((status = load_ca(rq, &ca, &key)) == 0 &&
	    (status = admin_ok(rq, 200, admin_cert_json(ca))) == 200) {
		json_object_set_new(rq->out, "certificate", admin_pem_json(ca));
	}
	X509_free(ca);
	EVP_PKEY_free(key);
	return status;
}

/* The server certificate's subjectAltName entries as "DNS:..." / "IP:..." strings. */
static json_t *sans_json(X509 *cert)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	json_t *arr = json_array();

	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		char ip[64] = "";

		if (g->type == GEN_DNS) {
			json_array_append_new(
			    arr, json_sprintf("DNS:%s", ASN1_STRING_get0_data(g->d.dNSName)));
		} else if (g->type == GEN_IPADD) {
			int len = ASN1_STRING_length(g->d.iPAddress);

			memcpy(ip, "IP:", 3);
			if ((len == 4 || len == 16) &&
			    inet_ntop(len == 4 ? AF_INET : AF_INET6,
				      ASN1_STRING_get0_data(g->d.iPAddress), ip + 3,
				      sizeof(ip) - 3) != NULL) {
				json_array_append_new(arr, json_string(ip));
			}
		}
	}
	GENERAL_NAMES_free(names);
	return arr;
}

static int server_cert_answer(struct admin_req *rq, int status)
{
	uint8_t fp[KEEL_FINGERPRINT_LEN];
	char hex[2 * KEEL_FINGERPRINT_LEN + 1];
	X509 *cert = NULL;
	json_t *j;

	if (keel_pki_read_cert(rq->ctx->tls_certificate, &cert) != 0 ||
	    keel_cert_fingerprint(cert, fp, hex) != 0) {
		X509_free(cert);
		return admin_fail(rq, 500, "cannot read %s", rq->ctx->tls_certificate);
	}
	j = admin_cert_json(cert);
	json_object_set_new(j, "fingerprint", json_string(hex));
	json_object_set_new(j, "sans", sans_json(cert));
	json_object_set_new(j, "certificate", admin_pem_json(cert));
	X509_free(cert);
	return admin_ok(rq, status, j);
}

int admin_get_server_cert(struct admin_req *rq)
{
	return server_cert_answer(rq, 200);
}

/* The "sans" field: 1 to 32 strings "DNS:name" or "IP:address". */
static int sans_field(struct admin_req *rq, json_t *body, const char *out[static 32],
		      size_t *out_num)
{
	json_t *arr = json_object_get(body, "sans"), *v;
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 32) {
		return admin_fail(rq, 400, "field \"sans\" must list 1 to 32 names");
	}
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);

		if (s == NULL || (strncmp(s, "DNS:", 4) != 0 && strncmp(s, "IP:", 3) != 0) ||
		    strlen(s) > 253) {
			return admin_fail(rq, 400,
					  "sans[%zu] must be \"DNS:name\" or \"IP:address\"", i);
		}
		out[i] = s;
	}
	*out_num = i;
	return 0;
}

/* A new key and certificate for keeld, written over tls.certificate and
 * tls.private_key; KMIP takes them at the SIGHUP this asks for, the admin
 * API at once (for new connections). */
int admin_renew_server_cert(struct admin_req *rq)
{
	const char *sans[32];
	struct keel_pki_leaf leaf = {
	    .usage = KEEL_PKI_SERVER, .days = KEEL_PKI_LEAF_DAYS, .sans = sans};
	json_t *body = NULL;
	X509 *cert = NULL;
	int status;

	if ((status = admin_body(rq, &body)) != 0 ||
	    (status = sans_field(rq, body, sans, &leaf.num_sans)) != 0 ||
	    (status = load_ca(rq, &leaf.ca, &leaf.ca_key)) != 0) {
		goto out;
	}
	leaf.cn = strncmp(sans[0], "DNS:", 4) == 0 ? sans[0] + 4 : "keel";
	if (keel_pki_rsa_key(KEEL_PKI_LEAF_BITS, &leaf.pub) != 0 ||
	    keel_pki_issue(&leaf, &cert) != 0 ||
	    keel_pki_write_key(rq->ctx->tls_private_key, leaf.pub) != 0 ||
	    keel_pki_write_cert(rq->ctx->tls_certificate, cert) != 0) {
		status =
		    admin_fail(rq, 500, "cannot renew the server certificate (see keeld's log)");
		goto out;
	}
	keel_notice("admin: %s renewed the server certificate", rq->who);
	admin_registry_changed(rq); /* the SIGHUP that loads it for KMIP */
	if (admin_reload_tls(rq->ctx) != 0) {
		keel_err("admin: the HTTPS listeners keep the old certificate until a restart");
	}
	status = server_cert_answer(rq, 200);
out:
	X509_free(cert);
	leaf_cleanup(&leaf);
	json_decref(body);
	return status;
}
