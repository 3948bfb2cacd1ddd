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

/* The header of a frame, and the frame as three pieces. -1 if a length does not fit. */
static int frame_iov(uint8_t h[PS_HEADER_LEN], enum ps_type type, uint32_t id, const void *a,
		     size_t a_len, const void *b, size_t b_len, struct iovec iov[3])
{
	if (a_len > UINT32_MAX || b_len > UINT32_MAX || a_len + b_len > SIZE_MAX - PS_HEADER_LEN) {
		return -1;
	}
	memset(h, 0, PS_HEADER_LEN);
	h[0] = (uint8_t)type;
	put_u32(h + 4, id);
	put_u32(h + 8, (uint32_t)a_len);
	put_u32(h + 12, (uint32_t)b_len);
	iov[0] = (struct iovec){h, PS_HEADER_LEN};
	iov[1] = (struct iovec){(void *)a, a_len};
	iov[2] = (struct iovec){(void *)b, b_len};
	return 0;
}

int ps_write(int fd, enum ps_type type, uint32_t id, const void *a, size_t a_len, const void *b,
	     size_t b_len)
{
	uint8_t h[PS_HEADER_LEN];
	struct iovec iov[3];

	if (frame_iov(h, type, id, a, a_len, b, b_len, iov) != 0) {
		return -1;
	}
	return write_all(fd, iov, 3);
}

/* ---- the non-blocking writer ---------------------------------------------- */

void ps_writer_init(struct ps_writer *w, int fd)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
}

void ps_writer_cleanup(struct ps_writer *w)
{
	if (w->buf != NULL) {
		OPENSSL_clear_free(w->buf, w->cap);
	}
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

/* Room for |len| more bytes at the end of the queue (moved to the front, or
 * grown; the old copy wiped). 0 or -1. */
static int reserve(struct ps_writer *w, size_t len)
{
	size_t queued = w->end - w->start, cap;
	uint8_t *grown;

	if (w->cap - w->end >= len) {
		return 0;
	}
	if (w->cap - queued >= len) {
		memmove(w->buf, w->buf + w->start, queued);
		OPENSSL_cleanse(w->buf + queued, w->cap - queued);
	} else {
		if (len > SIZE_MAX / 2 - queued) {
			return -1;
		}
		cap = 2 * (queued + len);
		if ((grown = malloc(cap)) == NULL) {
			return -1;
		}
		if (queued > 0) {
			memcpy(grown, w->buf + w->start, queued);
		}
		if (w->buf != NULL) {
			OPENSSL_clear_free(w->buf, w->cap);
		}
		w->buf = grown;
		w->cap = cap;
	}
	w->start = 0;
	w->end = queued;
	return 0;
}

/* One sendmsg that does not wait: the bytes taken, or -1 (errno EAGAIN: none). */
static ssize_t send_some(int fd, struct iovec *iov, size_t num)
{
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = num};
	ssize_t n;

	do {
		n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n;
}

int ps_writer_put(struct ps_writer *w, enum ps_type type, uint32_t id, const void *a, size_t a_len,
		  const void *b, size_t b_len)
{
	uint8_t h[PS_HEADER_LEN];
	struct iovec iov[3];
	ssize_t sent = 0;
	size_t skip;

	/* Room first: once part of a frame is sent, the rest must follow. */
	if (frame_iov(h, type, id, a, a_len, b, b_len, iov) != 0 ||
	    reserve(w, PS_HEADER_LEN + a_len + b_len) != 0) {
		return -1;
	}
	/* Nothing queued before it: straight out, as much as the socket takes. */
	if (w->start == w->end && (sent = send_some(w->fd, iov, 3)) < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			return -1;
		}
		sent = 0;
	}
	for (size_t i = 0; i < 3; i++) {
		skip = (size_t)sent < iov[i].iov_len ? (size_t)sent : iov[i].iov_len;
		sent -= (ssize_t)skip;
		if (iov[i].iov_len > skip) {
			memcpy(w->buf + w->end, (const uint8_t *)iov[i].iov_base + skip,
			       iov[i].iov_len - skip);
			w->end += iov[i].iov_len - skip;
		}
	}
	return 0;
}

int ps_writer_flush(struct ps_writer *w)
{
	struct iovec iov;
	ssize_t n;

	while (w->start < w->end) {
		iov = (struct iovec){w->buf + w->start, w->end - w->start};
		if ((n = send_some(w->fd, &iov, 1)) < 0) {
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		w->start += (size_t)n;
	}
	/* All sent: requests carry key material (Register), so wipe them. */
	OPENSSL_cleanse(w->buf, w->end);
	w->start = w->end = 0;
	return 0;
}

bool ps_writer_pending(const struct ps_writer *w)
{
	return w->start != w->end;
}

/* ---- the reader ----------------------------------------------------------- */

void ps_reader_init(struct ps_reader *r, int fd)
{
	memset(&r->part, 0, sizeof(r->part));
	r->fd = fd;
	r->start = r->end = 0;
	r->part_have = 0;
}

void ps_reader_cleanup(struct ps_reader *r)
{
	OPENSSL_cleanse(r->buf, sizeof(r->buf));
	ps_frame_cleanup(&r->part);
	r->start = r->end = r->part_have = 0;
}

static size_t frame_len(const struct ps_frame *f)
{
	return (size_t)f->a_len + f->b_len;
}

ssize_t ps_reader_fill(struct ps_reader *r)
{
	uint8_t *to;
	size_t room;
	ssize_t n;

	/* A frame longer than the buffer had: its rest straight into place. */
	if (r->part.a != NULL) {
		to = r->part.a + r->part_have;
		room = frame_len(&r->part) - r->part_have;
	} else {
		if (r->start == r->end) {
			r->start = r->end = 0;
		} else if (r->start > sizeof(r->buf) / 2) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			OPENSSL_cleanse(r->buf + (r->end - r->start), r->start);
			r->end -= r->start;
			r->start = 0;
		}
		to = r->buf + r->end;
		room = sizeof(r->buf) - r->end;
	}
	do {
		n = read(r->fd, to, room);
	} while (n < 0 && errno == EINTR);
	if (n > 0 && r->part.a != NULL) {
		r->part_have += (size_t)n;
	} else if (n > 0) {
		r->end += (size_t)n;
	}
	return n;
}

/* A header is buffered: starts the frame it announces, with as much of it as
 * is buffered. 0 or -1 (reserved bytes set, too long, out of memory). */
static int start_frame(struct ps_reader *r, uint32_t max_len)
{
	const uint8_t *h = r->buf + r->start;
	struct ps_frame *f = &r->part;
	size_t len, have;

	f->type = h[0];
	f->id = get_u32(h + 4);
	f->a_len = get_u32(h + 8);
	f->b_len = get_u32(h + 12);
	if (h[1] != 0 || h[2] != 0 || h[3] != 0 || (uint64_t)f->a_len + f->b_len > max_len) {
		memset(f, 0, sizeof(*f));
		return -1;
	}
	r->start += PS_HEADER_LEN;
	len = frame_len(f);
	if ((f->a = malloc(len > 0 ? len : 1)) == NULL) {
		memset(f, 0, sizeof(*f));
		return -1;
	}
	f->b = f->a + f->a_len;
	have = r->end - r->start < len ? r->end - r->start : len;
	memcpy(f->a, r->buf + r->start, have);
	OPENSSL_cleanse(r->buf + r->start, have);
	r->start += have;
	r->part_have = have;
	return 0;
}

int ps_next(struct ps_reader *r, uint32_t max_len, struct ps_frame *out)
{
	memset(out, 0, sizeof(*out));
	if (r->part.a == NULL) {
		if (r->end - r->start < PS_HEADER_LEN) {
			return PS_AGAIN;
		}
		if (start_frame(r, max_len) != 0) {
			return -1;
		}
	}
	if (r->part_have < frame_len(&r->part)) {
		return PS_AGAIN;
	}
	*out = r->part;
	memset(&r->part, 0, sizeof(r->part));
	r->part_have = 0;
	return 0;
}

int ps_read(struct ps_reader *r, uint32_t max_len, struct ps_frame *out)
{
	ssize_t n;
	int got;

	while ((got = ps_next(r, max_len, out)) == PS_AGAIN) {
		if ((n = ps_reader_fill(r)) <= 0) {
			/* The end of the stream is clean only between frames. */
			return n == 0 && r->part.a == NULL && r->start == r->end ? 1 : -1;
		}
	}
	return got;
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

size_t ps_metric_encode(const struct ps_metric *m, uint8_t out[static PS_METRIC_MAX])
{
	size_t len = 0;

	for (size_t i = 0; i < KEEL_METRICS_NUM_EVENTS; i++) {
		if (m->value[i] != 0) {
			out[len] = (uint8_t)(i + 1);
			put_u32(out + len + 1, (uint32_t)m->value[i]);
			len += PS_METRIC_PAIR_LEN;
		}
	}
	return len;
}

int ps_metric_decode(const struct ps_frame *f, struct ps_metric *out)
{
	unsigned last = 0, ev;
	int32_t v;

	memset(out, 0, sizeof(*out));
	if (f->id != 0 || f->b_len != 0 || f->a_len == 0 || f->a_len > PS_METRIC_MAX ||
	    f->a_len % PS_METRIC_PAIR_LEN != 0) {
		return -1;
	}
	for (const uint8_t *p = f->a; p < f->a + f->a_len; p += PS_METRIC_PAIR_LEN) {
		ev = p[0];
		v = (int32_t)get_u32(p + 1);
		/* Increasing, so each event once: one encoding per content, which the
		 * fuzz harness checks by encoding it again. */
		if (ev <= last || !keel_metrics_event_ok(ev, v)) {
			memset(out, 0, sizeof(*out));
			return -1;
		}
		out->value[ev - 1] = v;
		last = ev;
	}
	return 0;
}
