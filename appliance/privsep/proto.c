/*
 * The frames between keeld's two processes and the key process's check of a
 * request (privsep.h). Every length is checked before it is used; a frame is
 * read whole or not at all.
 */
#include "privsep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keel/server.h"

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void ps_frame_cleanup(struct ps_frame *f)
{
	if (f->a != NULL) {
		OPENSSL_cleanse(f->a, (size_t)f->a_len + f->b_len);
		free(f->a);
	}
	memset(f, 0, sizeof(*f));
}

/* Writes all of |iov|, across short writes and EINTR. */
static int write_all(int fd, struct iovec *iov, int num)
{
	ssize_t n;

	while (num > 0) {
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)num};

		/* MSG_NOSIGNAL: a peer gone is an error to handle, not SIGPIPE. */
		if ((n = sendmsg(fd, &msg, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		while (num > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			num--;
		}
		if (num > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int ps_write(int fd, enum ps_type type, uint32_t id, const void *a, size_t a_len, const void *b,
	     size_t b_len)
{
	uint8_t h[PS_HEADER_LEN] = {(uint8_t)type};
	struct iovec iov[3] = {
	    {h, sizeof(h)},
	    {(void *)a, a_len},
	    {(void *)b, b_len},
	};

	if (a_len > UINT32_MAX || b_len > UINT32_MAX) {
		return -1;
	}
	put_u32(h + 4, id);
	put_u32(h + 8, (uint32_t)a_len);
	put_u32(h + 12, (uint32_t)b_len);
	return write_all(fd, iov, 3);
}

void ps_reader_init(struct ps_reader *r, int fd)
{
	r->fd = fd;
	r->start = r->end = 0;
}

void ps_reader_cleanup(struct ps_reader *r)
{
	OPENSSL_cleanse(r->buf, sizeof(r->buf));
	r->start = r->end = 0;
}

/* One read() into the free end of the buffer. >0, 0 at the end of the stream, or -1. */
static ssize_t fill(struct ps_reader *r)
{
	ssize_t n;

	if (r->start == r->end) {
		r->start = r->end = 0;
	} else if (r->start > sizeof(r->buf) / 2) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		OPENSSL_cleanse(r->buf + (r->end - r->start), r->start);
		r->end -= r->start;
		r->start = 0;
	}
	do {
		n = read(r->fd, r->buf + r->end, sizeof(r->buf) - r->end);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		r->end += (size_t)n;
	}
	return n;
}

/* Moves |len| bytes to |out|: the buffered ones, then straight from the
 * descriptor. 0 or -1 (the stream ended or failed within them). */
static int take(struct ps_reader *r, uint8_t *out, size_t len)
{
	size_t have = r->end - r->start < len ? r->end - r->start : len;
	ssize_t n;

	memcpy(out, r->buf + r->start, have);
	OPENSSL_cleanse(r->buf + r->start, have);
	r->start += have;
	while (have < len) {
		if ((n = read(r->fd, out + have, len - have)) < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return -1;
		}
		have += (size_t)n;
	}
	return 0;
}

int ps_read(struct ps_reader *r, uint32_t max_len, struct ps_frame *out)
{
	uint8_t h[PS_HEADER_LEN];
	uint64_t len;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	while (r->end - r->start < sizeof(h)) {
		if ((n = fill(r)) <= 0) {
			return n == 0 && r->start == r->end ? 1 : -1;
		}
	}
	memcpy(h, r->buf + r->start, sizeof(h));
	r->start += sizeof(h);
	out->type = h[0];
	out->id = get_u32(h + 4);
	out->a_len = get_u32(h + 8);
	out->b_len = get_u32(h + 12);
	len = (uint64_t)out->a_len + out->b_len;
	if (h[1] != 0 || h[2] != 0 || h[3] != 0 || len > max_len) {
		return -1;
	}
	if ((out->a = malloc(len > 0 ? len : 1)) == NULL || take(r, out->a, (size_t)len) != 0) {
		ps_frame_cleanup(out);
		return -1;
	}
	out->b = out->a + out->a_len;
	return 0;
}

void ps_identity_encode(const struct keel_client_identity *who, uint8_t out[PS_IDENTITY_LEN])
{
	size_t n = strnlen(who->subject, KEEL_SUBJECT_MAX - 1);

	memset(out, 0, PS_IDENTITY_LEN);
	memcpy(out, who->fingerprint, KEEL_FINGERPRINT_LEN);
	memcpy(out + KEEL_FINGERPRINT_LEN, who->subject, n);
}

/* The subject: NUL-terminated within its field, and zeros after. */
static int identity_decode(const uint8_t *in, struct keel_client_identity *out)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *subject = in + KEEL_FINGERPRINT_LEN;
	size_t n = strnlen((const char *)subject, KEEL_SUBJECT_MAX);

	if (n == KEEL_SUBJECT_MAX) {
		return -1;
	}
	for (size_t i = n; i < KEEL_SUBJECT_MAX; i++) {
		if (subject[i] != 0) {
			return -1;
		}
	}
	memcpy(out->fingerprint, in, KEEL_FINGERPRINT_LEN);
	for (size_t i = 0; i < KEEL_FINGERPRINT_LEN; i++) {
		out->fingerprint_hex[2 * i] = hex[in[i] >> 4];
		out->fingerprint_hex[2 * i + 1] = hex[in[i] & 0xf];
	}
	out->fingerprint_hex[2 * KEEL_FINGERPRINT_LEN] = '\0';
	memcpy(out->subject, subject, n + 1);
	return 0;
}

enum ps_verdict ps_check_request(const struct ps_frame *f, uint32_t max_message_size,
				 struct keel_client_identity *out_who)
{
	size_t frame_len = 0;

	if (f->type != PS_REQUEST || f->id == 0) {
		return PS_E_TYPE;
	}
	if (f->a_len != PS_IDENTITY_LEN || identity_decode(f->a, out_who) != 0) {
		return PS_E_IDENTITY;
	}
	/* The same check the network process made from the header it read. */
	if (f->b_len < KEEL_TTLV_HEADER_LEN ||
	    keel_frame_check(f->b, max_message_size, &frame_len) != KEEL_FRAME_OK ||
	    frame_len != f->b_len) {
		return PS_E_MESSAGE;
	}
	return PS_OK;
}

int ps_tls_parts_encode(const struct ps_tls_parts *p, uint8_t **out, size_t *out_len)
{
	const uint8_t *data[3] = {p->chain, p->key, p->crls};
	const uint32_t len[3] = {p->chain_len, p->key_len, p->crls_len};
	uint64_t total = 0;
	uint8_t *b;

	*out = NULL;
	for (size_t i = 0; i < 3; i++) {
		total += 4 + (uint64_t)len[i];
	}
	if (p->chain_len == 0 || p->key_len == 0 || total > PS_SETUP_MAX ||
	    (b = malloc((size_t)total)) == NULL) {
		return -1;
	}
	*out = b;
	*out_len = (size_t)total;
	for (size_t i = 0; i < 3; i++) {
		put_u32(b, len[i]);
		if (len[i] > 0) {
			memcpy(b + 4, data[i], len[i]);
		}
		b += 4 + len[i];
	}
	return 0;
}

/* One part: a u32 length, then that many bytes, all within [*b, end). */
static int take_part(const uint8_t **b, const uint8_t *end, const uint8_t **out, uint32_t *out_len)
{
	if (end - *b < 4) {
		return -1;
	}
	*out_len = get_u32(*b);
	*b += 4;
	if ((size_t)(end - *b) < *out_len) {
		return -1;
	}
	*out = *b;
	*b += *out_len;
	return 0;
}

int ps_tls_parts_decode(const uint8_t *b, size_t b_len, struct ps_tls_parts *out)
{
	const uint8_t *end;

	memset(out, 0, sizeof(*out));
	if (b == NULL) {
		return -1;
	}
	end = b + b_len;
	if (take_part(&b, end, &out->chain, &out->chain_len) != 0 ||
	    take_part(&b, end, &out->key, &out->key_len) != 0 ||
	    take_part(&b, end, &out->crls, &out->crls_len) != 0 || b != end ||
	    out->chain_len == 0 || out->key_len == 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}
