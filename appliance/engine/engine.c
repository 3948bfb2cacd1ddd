/*
 * The engine's entry point: decode the request, run each batch item in a
 * savepoint of one store transaction, append the audit rows in the same
 * transaction, commit durably, encode the response in the client's version
 * and only then reply (KMIP 1.4 §7; ARCHITECTURE.md "A request's way").
 * One exception: a request of Discover Versions and Query items only
 * (protocol_only) runs without a transaction, and its audit rows go to the
 * next one without the reply waiting for them (docs/benchmarks.md, "Reads
 * and their audit rows").
 */
#include "engine_int.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/metrics.h"
#include "log.h"

#define DEFAULT_MAX_MESSAGE (1u << 20)
#define DEFAULT_MAX_BATCH   64
#define DEFAULT_MAX_LOCATE  1000

int keel_engine_open(const struct keel_engine_config *cfg, struct keel_engine **out_engine)
{
	struct keel_engine *e = calloc(1, sizeof(*e));
	int err;

	if (e == NULL || cfg->store_path == NULL || cfg->hsm == NULL) {
		free(e);
		return -1;
	}
	e->hsm = cfg->hsm;
	e->lim = kmip_default_limits;
	if (cfg->max_message_len != 0) {
		e->lim.max_message_len = cfg->max_message_len;
	}
	e->max_batch_items = cfg->max_batch_items != 0 ? cfg->max_batch_items : DEFAULT_MAX_BATCH;
	e->max_locate_items =
	    cfg->max_locate_items != 0 ? cfg->max_locate_items : DEFAULT_MAX_LOCATE;
	e->after_prepare = cfg->after_prepare;
	e->after_prepare_arg = cfg->after_prepare_arg;
	if ((err = keel_store_open_sqlite(cfg->store_path, cfg->store_connections, &e->store)) !=
	    0) {
		keel_err("engine: cannot open store %s: %s", cfg->store_path,
			 keel_store_strerror(err));
		free(e);
		return -1;
	}
	*out_engine = e;
	return 0;
}

void keel_engine_close(struct keel_engine *e)
{
	if (e != NULL) {
		keel_store_close(e->store);
		free(e);
	}
}

struct keel_store *keel_engine_store(struct keel_engine *e)
{
	return e->store;
}

void keel_engine_prep_stats(struct keel_engine *e, struct keel_engine_prep_stats *out)
{
	out->prepared = atomic_load(&e->num_prepared);
	out->used = atomic_load(&e->num_prepared_used);
}

/* Reads Protocol Version from a request header that may be otherwise broken. */
static void peek_version(const uint8_t *req, size_t len, const struct kmip_limits *lim,
			 struct kmip_protocol_version *out)
{
	struct kmip_reader r, m, h, pv;
	int32_t major, minor;

	out->protocol_version_major = 1;
	out->protocol_version_minor = 0;
	if (kmip_reader_init(&r, req, len, lim) != 0 ||
	    kmip_read_struct(&r, KMIP_TAG_REQUEST_MESSAGE, &m) != 0 ||
	    kmip_read_struct(&m, KMIP_TAG_REQUEST_HEADER, &h) != 0 ||
	    kmip_read_struct(&h, KMIP_TAG_PROTOCOL_VERSION, &pv) != 0 ||
	    kmip_read_int(&pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR, &major) != 0 ||
	    kmip_read_int(&pv, KMIP_TAG_PROTOCOL_VERSION_MINOR, &minor) != 0 ||
	    kmip_version_bit(major, minor) == 0) {
		return;
	}
	out->protocol_version_major = major;
	out->protocol_version_minor = minor;
}

/* Encodes |resp| in at most |max_len| bytes, replies, and wipes the encoding
 * (it may hold key material). KMIP_E_TOO_BIG when it does not fit. */
static int send_response(size_t max_len, struct kmip_response_message *resp, keel_reply_fn reply,
			 void *reply_ctx)
{
	struct kmip_writer w;
	const uint8_t *p;
	size_t n;
	int err;

	kmip_writer_init(&w, max_len);
	if ((err = kmip_response_encode(&w, resp)) == 0 &&
	    (err = kmip_writer_finish(&w, &p, &n)) == 0) {
		reply(reply_ctx, p, n);
	}
	kmip_writer_cleanup(&w);
	return err;
}

static struct kmip_response_message *
new_response(struct eng_req *r, const struct kmip_protocol_version *pv, size_t num_items)
{
	struct kmip_response_message *m = eng_alloc(r, sizeof(*m));
	struct kmip_response_header *h = eng_alloc(r, sizeof(*h));
	struct kmip_protocol_version *v = eng_alloc(r, sizeof(*v));

	m->batch_items = eng_alloc(r, (num_items != 0 ? num_items : 1) * sizeof(*m->batch_items));
	if (m == NULL || h == NULL || v == NULL || m->batch_items == NULL) {
		return NULL;
	}
	*v = *pv;
	h->protocol_version = v;
	h->time_stamp = r->now; /* KMIP 1.4 §6.5: required in every response header */
	m->response_header = h;
	m->num_batch_items = num_items;
	h->batch_count = (int32_t)num_items;
	return m;
}

static void set_failure(struct kmip_response_batch_item *bi, int err, uint16_t version,
			const char *msg)
{
	struct eng_result res;

	eng_result(err, version, &res);
	bi->result_status = res.status;
	bi->has_result_reason = err != 0;
	bi->result_reason = res.reason;
	msg = msg != NULL ? msg : res.message;
	bi->result_message = msg;
	bi->result_message_len = msg != NULL ? strlen(msg) : 0;
	bi->response_payload = NULL;
}

/* A message that is TTLV but not a valid request (KMIP 1.4 §11.1). */
static void answer_invalid(struct eng_req *r, const uint8_t *req, size_t len,
			   const struct kmip_decode_error *de, int err, keel_reply_fn reply,
			   void *reply_ctx)
{
	struct kmip_protocol_version pv;
	struct kmip_response_message *m;
	const struct kmip_tag_def *def = kmip_tag_def(de->tag);
	char *msg = eng_alloc(r, 160);
	int code = de->batch_index >= 0 ? ENG_E_INVALID_FIELD : ENG_E_INVALID_MESSAGE;

	peek_version(req, len, &r->e->lim, &pv);
	if ((m = new_response(r, &pv, 1)) == NULL || msg == NULL) {
		reply(reply_ctx, NULL, 0);
		return;
	}
	snprintf(msg, 160, "%s: %s", def != NULL ? def->name : "message", kmip_strerror(err));
	keel_info("engine: client %s: invalid request: %s (batch item %d)", r->who->subject, msg,
		  de->batch_index);
	set_failure(&m->batch_items[0], code,
		    kmip_version_bit(pv.protocol_version_major, pv.protocol_version_minor), msg);
	if (send_response(r->e->lim.max_message_len, m, reply, reply_ctx) != 0) {
		reply(reply_ctx, NULL, 0);
	}
}

static const struct eng_op *find_op(uint32_t operation)
{
	for (size_t i = 0; i < eng_num_ops; i++) {
		if (eng_ops[i].operation == operation) {
			return &eng_ops[i];
		}
	}
	return NULL;
}

void keel_engine_refuse(struct keel_engine *e, const char *why)
{
	atomic_store(&e->refusal, why);
}

/* A savepoint in the request's transaction; none without one (protocol_only). */
static int savepoint(struct eng_req *r)
{
	int serr = r->txn != NULL ? keel_store_savepoint(r->txn) : 0;

	return serr != 0 ? eng_store_err(r, serr, "savepoint") : 0;
}

/* Ends savepoint()'s: its changes kept, or undone. */
static int savepoint_end(struct eng_req *r, bool keep)
{
	int serr = 0;

	if (r->txn != NULL) {
		serr = keep ? keel_store_savepoint_release(r->txn)
			    : keel_store_savepoint_rollback(r->txn);
	}
	return serr != 0 ? eng_store_err(r, serr, "savepoint") : 0;
}

/* Runs one item in its own savepoint, so a failure leaves nothing behind. */
static int run_item(struct eng_req *r, const struct kmip_request_batch_item *it, void **out)
{
	const struct eng_op *op = find_op(it->operation);
	const char *refusal = atomic_load(&r->e->refusal);
	int err, serr;

	if (op == NULL || it->request_payload == NULL) {
		return eng_fail(r, ENG_E_OP_NOT_SUPPORTED, NULL);
	}
	if (refusal != NULL && it->operation != KMIP_OPERATION_DISCOVER_VERSIONS &&
	    it->operation != KMIP_OPERATION_QUERY) {
		return eng_fail(r, ENG_E_PERMISSION, refusal);
	}
	if ((serr = savepoint(r)) != 0) {
		return serr;
	}
	r->grant_needed = op->grant;
	err = op->fn(r, it->request_payload, out);
	serr = savepoint_end(r, err == 0);
	return serr != 0 ? serr : err;
}

static void record_audit(struct eng_req *r, struct eng_audit_item *au, uint32_t operation,
			 const struct kmip_response_batch_item *bi)
{
	au->operation = operation;
	snprintf(au->uid, sizeof(au->uid), "%s", r->uid);
	au->status = bi->result_status;
	au->reason = bi->has_result_reason ? bi->result_reason : 0;
}

/* Marks the items before |failed| as undone (KMIP 1.4 §6.7, Undo). */
static void mark_undone(struct kmip_response_message *m, size_t failed,
			struct eng_audit_item *audit)
{
	for (size_t k = 0; k < failed; k++) {
		m->batch_items[k].result_status = KMIP_RESULT_STATUS_OPERATION_UNDONE;
		m->batch_items[k].response_payload = NULL;
		audit[k].status = KMIP_RESULT_STATUS_OPERATION_UNDONE;
	}
}

/*
 * The batch (KMIP 1.4 §6.7): items in order; on a failure, Stop ends the
 * batch there, Continue goes on, Undo rolls back every item's changes.
 * Only Undo over several items needs a savepoint of the batch's own: a
 * failed item rolls back its own (run_item), and every request pays for
 * each savepoint's two statements (issue 7).
 */
static int run_batch(struct eng_req *r, const struct kmip_request_message *q,
		     struct kmip_response_message *m, struct eng_audit_item *audit,
		     struct eng_prep *preps)
{
	const struct kmip_request_header *h = q->request_header;
	uint32_t option = h->has_batch_error_continuation_option
			      ? h->batch_error_continuation_option
			      : KMIP_BATCH_ERROR_CONTINUATION_OPTION_STOP;
	bool undo = option == KMIP_BATCH_ERROR_CONTINUATION_OPTION_UNDO && q->num_batch_items > 1;
	size_t i, done = 0;
	void *payload;
	int err;

	if (undo && (err = savepoint(r)) != 0) {
		return err;
	}
	for (i = 0; i < q->num_batch_items; i++) {
		const struct kmip_request_batch_item *it = &q->batch_items[i];
		struct kmip_response_batch_item *bi = &m->batch_items[i];

		r->msg = NULL;
		r->uid[0] = '\0';
		bi->has_operation = true;
		bi->operation = it->operation;
		bi->unique_batch_item_id = it->unique_batch_item_id; /* echoed (§6.4) */
		bi->unique_batch_item_id_len = it->unique_batch_item_id_len;
		payload = NULL;
		r->prep = preps != NULL ? &preps[i] : NULL;
		err = run_item(r, it, &payload);
		r->prep = NULL;
		set_failure(bi, err, r->version, err != 0 ? r->msg : NULL);
		bi->response_payload = err == 0 ? payload : NULL;
		record_audit(r, &audit[i], it->operation, bi);
		done = i + 1;
		if (err != 0 && option != KMIP_BATCH_ERROR_CONTINUATION_OPTION_CONTINUE) {
			if (option == KMIP_BATCH_ERROR_CONTINUATION_OPTION_UNDO) {
				mark_undone(m, i, audit);
			}
			break;
		}
	}
	m->num_batch_items = done;
	m->response_header->batch_count = (int32_t)done;
	return undo ? savepoint_end(r, i == q->num_batch_items) : 0;
}

/*
 * A request's audit rows, self-contained (no pointer out), so that
 * keel_store_submit can copy them: offsetof(items) + num items long.
 */
struct eng_audit_rows {
	int64_t time;
	char client[2 * KEEL_FINGERPRINT_LEN + 1];
	size_t num;
	struct eng_audit_item items[];
};

/* Appends |rows| (struct eng_audit_rows) in |t|: a keel_store_member_fn. */
static int append_rows(struct keel_store_txn *t, void *arg)
{
	const struct eng_audit_rows *rows = arg;
	int err = 0;

	for (size_t i = 0; i < rows->num && err == 0; i++) {
		const struct eng_audit_item *it = &rows->items[i];
		struct keel_store_audit a = {
		    .time = rows->time,
		    .client = rows->client,
		    .operation = it->operation,
		    .uid = it->uid[0] != '\0' ? it->uid : NULL,
		    .result_status = it->status,
		    .result_reason = it->reason,
		};

		err = keel_store_audit_append(t, &a);
	}
	return err;
}

/* Every item failed with |err|: the transaction could not be made durable. */
static void fail_all(struct kmip_response_message *m, int err, uint16_t version)
{
	for (size_t i = 0; i < m->num_batch_items; i++) {
		set_failure(&m->batch_items[i], err, version, NULL);
	}
}

static int check_request(struct eng_req *r, const struct kmip_request_message *q)
{
	const struct kmip_protocol_version *pv = q->request_header->protocol_version;

	r->version = kmip_version_bit(pv->protocol_version_major, pv->protocol_version_minor);
	r->v2 = (r->version & (KMIP_V2_0 | KMIP_V2_1)) != 0;
	if (r->version == 0) {
		return eng_fail(r, ENG_E_INVALID_MESSAGE, "protocol version not supported");
	}
	if (q->num_batch_items > r->e->max_batch_items) {
		keel_info("engine: client %s: %zu batch items, over the limit of %u",
			  r->who->subject, q->num_batch_items, r->e->max_batch_items);
		return eng_fail(r, ENG_E_INVALID_MESSAGE, "too many batch items");
	}
	return 0;
}

/*
 * Each item's token work that need not wait for the writers' turn (issue 7),
 * done before the request takes it; NULL if no item has any (most requests:
 * nothing is allocated for them) or there is no room to keep it (the items
 * then do it in the turn). What a preparation would say is not kept: the
 * item says it in the turn.
 */
static struct eng_prep *prepare_batch(struct eng_req *r, const struct kmip_request_message *q)
{
	size_t size = q->num_batch_items * sizeof(struct eng_prep);
	struct eng_prep *preps = NULL;
	const struct eng_op *op;

	if (atomic_load(&r->e->refusal) != NULL) {
		return NULL;
	}
	for (size_t i = 0; i < q->num_batch_items; i++) {
		const struct kmip_request_batch_item *it = &q->batch_items[i];

		if ((op = find_op(it->operation)) == NULL || op->prepare == NULL ||
		    it->request_payload == NULL) {
			continue;
		}
		if (preps == NULL) {
			if ((preps = kmip_arena_alloc(r->arena, size)) == NULL) {
				break;
			}
			memset(preps, 0, size);
		}
		op->prepare(r, it->request_payload, &preps[i]);
		r->msg = NULL;
		atomic_fetch_add(&r->e->num_prepared, preps[i].uid[0] != '\0');
	}
	eng_prepared(r->e);
	return preps;
}

void eng_prepared(struct keel_engine *e)
{
	if (e->after_prepare != NULL) {
		e->after_prepare(e->after_prepare_arg);
	}
}

/* A request's work in its store transaction (keel_store_run). */
struct eng_work {
	struct eng_req *r;
	const struct kmip_request_message *q;
	struct kmip_response_message *m;
	struct eng_audit_rows *rows;
	struct eng_prep *preps;
	int err; /* run_batch's or append_rows' */
};

/* Runs on whichever thread holds the writers' turn, not always the request's. */
static int run_request(struct keel_store_txn *t, void *arg)
{
	struct eng_work *w = arg;
	int err;

	w->r->txn = t;
	if ((w->err = run_batch(w->r, w->q, w->m, w->rows->items, w->preps)) == 0) {
		w->rows->num = w->m->num_batch_items;
		if ((err = append_rows(t, w->rows)) != 0) {
			w->err = eng_store_err(w->r, err, "audit");
		}
	}
	w->r->txn = NULL; /* ended by the store */
	return w->err;
}

/*
 * Whether every item is Discover Versions or Query. Their answers disclose
 * the protocol and the server's capabilities only, read no store and change
 * nothing: such a request is answered without waiting for its audit rows'
 * fsync (the lead's rule, issue 7; docs/benchmarks.md "Reads and their
 * audit rows"). Any other item, a Get in the same batch too, waits.
 */
static bool protocol_only(const struct kmip_request_message *q)
{
	for (size_t i = 0; i < q->num_batch_items; i++) {
		uint32_t op = q->batch_items[i].operation;

		if (op != KMIP_OPERATION_DISCOVER_VERSIONS && op != KMIP_OPERATION_QUERY) {
			return false;
		}
	}
	return q->num_batch_items > 0;
}

/*
 * A protocol_only request: its items run on this thread with no
 * transaction, and a copy of its audit rows is submitted to the next group
 * transaction (committed with it; a loss is logged by the store), which the
 * answer does not wait for.
 */
static void run_unawaited(struct eng_work *w)
{
	struct eng_req *r = w->r;
	int err;

	if ((w->err = run_batch(r, w->q, w->m, w->rows->items, NULL)) == 0) {
		w->rows->num = w->m->num_batch_items;
		err = keel_store_submit(r->e->store, append_rows, w->rows,
					offsetof(struct eng_audit_rows, items) +
					    w->rows->num * sizeof(w->rows->items[0]));
		w->err = err != 0 ? eng_store_err(r, err, "audit") : 0;
	}
	if (w->err != 0) {
		fail_all(w->m, w->err, r->version);
	}
}

/* Runs a decoded request in one transaction; the response is built in |*out|. */
static int answer(struct eng_req *r, const struct kmip_request_message *q,
		  struct kmip_response_message **out)
{
	struct eng_work w = {.r = r, .q = q};
	struct kmip_response_message *m;
	struct eng_audit_rows *rows;
	int err;

	if ((err = check_request(r, q)) != 0) {
		struct kmip_protocol_version pv = {1, 0};

		if (r->version != 0) {
			pv = *q->request_header->protocol_version;
		}
		if ((m = new_response(r, &pv, 1)) != NULL) {
			set_failure(&m->batch_items[0], err, r->version, r->msg);
		}
		*out = m;
		return m != NULL ? 0 : ENG_E_INTERNAL;
	}
	m = new_response(r, q->request_header->protocol_version, q->num_batch_items);
	rows = eng_alloc(r, offsetof(struct eng_audit_rows, items) +
				(q->num_batch_items + 1) * sizeof(rows->items[0]));
	if (m == NULL || rows == NULL) {
		return ENG_E_INTERNAL;
	}
	*out = m;
	rows->time = r->now;
	snprintf(rows->client, sizeof(rows->client), "%s", r->who->fingerprint_hex);
	w.m = m;
	w.rows = rows;
	if (protocol_only(q)) {
		run_unawaited(&w);
		return 0;
	}
	w.preps = prepare_batch(r, q);
	/* The response leaves only once its change is durable. */
	if ((err = keel_store_run(r->e->store, run_request, &w)) != 0) {
		fail_all(m, w.err != 0 ? w.err : eng_store_err(r, err, "transaction"), r->version);
	}
	return 0;
}

int eng_track_secret(struct eng_req *r, struct hsm_secret *s)
{
	if (r->num_secrets == r->cap_secrets) {
		size_t cap = r->cap_secrets == 0 ? 8 : r->cap_secrets * 2;
		struct hsm_secret **grown = kmip_arena_alloc(r->arena, cap * sizeof(*grown));

		if (grown == NULL) {
			hsm_secret_free(s);
			return eng_fail(r, ENG_E_INTERNAL, NULL);
		}
		if (r->num_secrets > 0) {
			memcpy(grown, r->secrets, r->num_secrets * sizeof(*grown));
		}
		r->secrets = grown;
		r->cap_secrets = cap;
	}
	r->secrets[r->num_secrets++] = s;
	return 0;
}

void eng_req_init_admin(struct eng_req *r, struct keel_engine *e, struct keel_client_identity *who,
			struct kmip_arena *arena)
{
	*r = (struct eng_req){.e = e,
			      .who = who,
			      .arena = arena,
			      .now = (int64_t)time(NULL),
			      .version = KMIP_V1_4,
			      .admin = true};
	kmip_arena_init(arena, NULL, 0);
}

void eng_wipe_secrets(struct eng_req *r)
{
	for (size_t i = 0; i < r->num_secrets; i++) {
		hsm_secret_free(r->secrets[i]);
	}
	r->num_secrets = 0;
}

/*
 * The largest response the client takes: its Maximum Response Size (KMIP 1.4
 * §6.3), within the server's own limit. A larger one answers Response Too Large.
 */
static size_t response_limit(const struct keel_engine *e, const struct kmip_request_message *q)
{
	const struct kmip_request_header *h = q->request_header;

	if (h->has_maximum_response_size && h->maximum_response_size > 0 &&
	    (size_t)h->maximum_response_size < e->lim.max_message_len) {
		return (size_t)h->maximum_response_size;
	}
	return e->lim.max_message_len;
}

/* Metrics: each item's operation and result, the message's latency (decode to
 * answer) under its first operation (one that did not decode counts as "other"). */
static void count_answer(const struct kmip_response_message *m, uint64_t start)
{
	uint32_t first_op = 0;

	for (size_t i = 0; m != NULL && i < m->num_batch_items; i++) {
		keel_metrics_kmip_item(m->batch_items[i].operation,
				       m->batch_items[i].result_status);
		first_op = i == 0 ? m->batch_items[i].operation : first_op;
	}
	keel_metrics_kmip_request(first_op, keel_metrics_now_ns() - start);
}

/* A request decodes on its worker's stack while it fits (every request of a
 * vCenter session does): a heap block per request cost more than its
 * decoding (docs/benchmarks.md, "The key process per task, by stage"). */
#define ARENA_STACK_LEN 8192

void keel_engine_handle(void *ctx, const struct keel_client_identity *who, const uint8_t *req,
			size_t req_len, keel_reply_fn reply, void *reply_ctx)
{
	uint64_t start = keel_metrics_now_ns();
	alignas(max_align_t) uint8_t arena_stack[ARENA_STACK_LEN];
	struct kmip_arena arena;
	struct eng_req r = {.e = ctx, .who = who, .arena = &arena, .now = (int64_t)time(NULL)};
	struct kmip_request_message *q = NULL;
	struct kmip_response_message *m = NULL;
	struct kmip_decode_error de;
	int err;

	kmip_arena_init(&arena, arena_stack, sizeof(arena_stack));
	if ((err = kmip_request_decode(req, req_len, &r.e->lim, &arena, &q, &de)) != 0) {
		count_answer(NULL, start);
		answer_invalid(&r, req, req_len, &de, err, reply, reply_ctx);
		goto out;
	}
	if (answer(&r, q, &m) != 0 || m == NULL) {
		count_answer(NULL, start);
		keel_err("engine: client %s: no response could be built", who->subject);
		reply(reply_ctx, NULL, 0);
		goto out;
	}
	/* Counted before the reply leaves, so that a client reading /metrics
	 * after its answer finds it there. */
	count_answer(m, start);
	if ((err = send_response(response_limit(r.e, q), m, reply, reply_ctx)) != 0) {
		if (err == KMIP_E_TOO_BIG) {
			keel_info("engine: client %s: response over its limit", who->subject);
		} else {
			keel_err("engine: client %s: response not encodable: %s", who->subject,
				 kmip_strerror(err));
		}
		fail_all(m, err == KMIP_E_TOO_BIG ? ENG_E_TOO_LARGE : ENG_E_INTERNAL, r.version);
		if (send_response(r.e->lim.max_message_len, m, reply, reply_ctx) != 0) {
			reply(reply_ctx, NULL, 0);
		}
	}
out:
	eng_wipe_secrets(&r);
	kmip_arena_cleanup(&arena);
}
