/*
 * The part of a snapshot the KMIP handshake needs, as bytes: what the key
 * process sends the network process (appliance/privsep). Admin and auditor
 * pins stay behind: the network process has no use for them.
 *
 *   u32 num_pins, num_pins x 32-byte fingerprint (kmip role),
 *   u32 num_cas,  num_cas x (u32 len, len bytes of DER)
 *
 * Integers are big-endian; trailing bytes are an error.
 */
#include "clients_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509_vfy.h>

#define WIRE_MAX_ITEMS 100000u

static int put_u32(uint8_t **p, uint8_t *end, uint32_t v)
{
	if (end - *p < 4) {
		return -1;
	}
	(*p)[0] = (uint8_t)(v >> 24);
	(*p)[1] = (uint8_t)(v >> 16);
	(*p)[2] = (uint8_t)(v >> 8);
	(*p)[3] = (uint8_t)v;
	*p += 4;
	return 0;
}

static int get_u32(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
	if (end - *p < 4) {
		return -1;
	}
	*out = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 | (uint32_t)(*p)[2] << 8 |
	       (uint32_t)(*p)[3];
	*p += 4;
	return 0;
}

static size_t kmip_pins(const struct snapshot *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->num_pins; i++) {
		n += s->pins[i].role == KEEL_ROLE_KMIP;
	}
	return n;
}

/* The trusted CAs' objects (not owned); NULL when there is none. */
static STACK_OF(X509_OBJECT) * ca_objects(const struct snapshot *s)
{
	return s->cas != NULL ? X509_STORE_get0_objects(s->cas) : NULL;
}

static size_t wire_len(const struct snapshot *s)
{
	STACK_OF(X509_OBJECT) *objs = ca_objects(s);
	size_t len = 8 + kmip_pins(s) * KEEL_FINGERPRINT_LEN;
	int der_len;

	for (int i = 0; objs != NULL && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (ca != NULL && (der_len = i2d_X509(ca, NULL)) > 0) {
			len += 4 + (size_t)der_len;
		}
	}
	return len;
}

static int put_cas(const struct snapshot *s, uint8_t **p, uint8_t *end)
{
	STACK_OF(X509_OBJECT) *objs = ca_objects(s);
	uint8_t *count_at = *p;
	uint32_t n = 0;
	int der_len;

	if (put_u32(p, end, 0) != 0) {
		return -1;
	}
	for (int i = 0; objs != NULL && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (ca == NULL || (der_len = i2d_X509(ca, NULL)) <= 0) {
			continue;
		}
		if (put_u32(p, end, (uint32_t)der_len) != 0 || end - *p < der_len ||
		    i2d_X509(ca, p) != der_len) {
			return -1;
		}
		n++;
	}
	return put_u32(&count_at, count_at + 4, n);
}

int keel_clients_export(struct keel_clients *c, uint8_t **out, size_t *out_len)
{
	const struct snapshot *s;
	uint8_t *buf = NULL, *p, *end;
	size_t len;
	int r = -1;

	pthread_rwlock_rdlock(clients_lock(c));
	s = clients_snap(c);
	len = wire_len(s);
	if ((buf = malloc(len)) == NULL) {
		goto out;
	}
	p = buf;
	end = buf + len;
	if (put_u32(&p, end, (uint32_t)kmip_pins(s)) != 0) {
		goto out;
	}
	for (size_t i = 0; i < s->num_pins; i++) {
		if (s->pins[i].role == KEEL_ROLE_KMIP) {
			memcpy(p, s->pins[i].fp, KEEL_FINGERPRINT_LEN);
			p += KEEL_FINGERPRINT_LEN;
		}
	}
	if (put_cas(s, &p, end) != 0 || p != end) {
		goto out;
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
	r = 0;
out:
	pthread_rwlock_unlock(clients_lock(c));
	free(buf);
	return r;
}

static int get_pins(struct snapshot *s, const uint8_t **p, const uint8_t *end)
{
	uint32_t n;

	if (get_u32(p, end, &n) != 0 || n > WIRE_MAX_ITEMS ||
	    (size_t)(end - *p) < (size_t)n * KEEL_FINGERPRINT_LEN) {
		return -1;
	}
	if (n > 0 && (s->pins = calloc(n, sizeof(*s->pins))) == NULL) {
		return -1;
	}
	for (s->num_pins = 0; s->num_pins < n; s->num_pins++) {
		memcpy(s->pins[s->num_pins].fp, *p, KEEL_FINGERPRINT_LEN);
		s->pins[s->num_pins].role = KEEL_ROLE_KMIP;
		*p += KEEL_FINGERPRINT_LEN;
	}
	return 0;
}

static int get_cas(struct snapshot *s, const uint8_t **p, const uint8_t *end)
{
	uint32_t n, der_len;

	if (get_u32(p, end, &n) != 0 || n > WIRE_MAX_ITEMS) {
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *der;
		X509 *ca;
		int r;

		if (get_u32(p, end, &der_len) != 0 || (size_t)(end - *p) < der_len ||
		    der_len > INT32_MAX) {
			return -1;
		}
		der = *p;
		ca = d2i_X509(NULL, &der, (long)der_len);
		if (ca == NULL || der != *p + der_len) {
			X509_free(ca);
			return -1;
		}
		r = clients_snap_add_ca(s, ca);
		X509_free(ca);
		if (r != 0) {
			return -1;
		}
		*p += der_len;
	}
	return 0;
}

int keel_clients_import_wire(const uint8_t *buf, size_t len, struct keel_clients **out)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	const uint8_t *p = buf, *end = buf + len;

	if (s == NULL || get_pins(s, &p, end) != 0 || get_cas(s, &p, end) != 0 || p != end) {
		clients_snap_free(s);
		return -1;
	}
	clients_snap_sort(s);
	return clients_holder_new(NULL, s, out);
}
