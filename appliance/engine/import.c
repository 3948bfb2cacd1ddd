/*
 * The import of one escrowed managed object (engine.h, keel_engine_import),
 * the inverse of export.c, for a recovery from Key Protect. The export's Get
 * item goes back through Register's reading of an object (eng_take_object),
 * so the stored form and the "_" bookkeeping attributes are what Register
 * made of it; its Get Attributes item gives the object row (uid, type,
 * state, dates), the owner, and every other attribute instance at its index.
 * The payload comes from the cloud: each field is checked, and a payload
 * that disagrees with itself is refused whole.
 */
#include "engine_int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MAX_ROW_ATTRS 16

struct imp {
	struct eng_req r;
	const char *uid;
	const struct kmip_get_response *get; /* NULL: the material was destroyed */
	const struct kmip_get_attributes_response *ga;
	struct keel_store_object o;
	struct eng_attr *keep; /* the instances to store, derived "_" ones last */
	size_t num_keep;
	uint32_t row_seen[MAX_ROW_ATTRS]; /* object-row attributes met, each once */
	size_t num_row_seen;
	struct eng_new_object no; /* the material, and what Register derives from it */
	struct kc_buf converted;
	const char *why; /* what was wrong with the payload, for the log */
};

static int invalid(struct imp *m, const char *why)
{
	m->why = why;
	return KEEL_ENGINE_IMPORT_E_INVALID;
}

static bool names_uid(const struct imp *m, const char *p, size_t len)
{
	return p != NULL && len == strlen(m->uid) && memcmp(p, m->uid, len) == 0;
}

/* The message must be an export: [Get,] Get Attributes, both of |uid|, both successful. */
static int decode(struct imp *m, const uint8_t *in, size_t in_len)
{
	struct kmip_response_message *msg = NULL;
	struct kmip_decode_error de;
	size_t n;

	if (kmip_response_decode(in, in_len, &m->r.e->lim, m->r.arena, &msg, &de) != 0) {
		return invalid(m, "not a KMIP response message");
	}
	n = msg->num_batch_items;
	if (n < 1 || n > 2) {
		return invalid(m, "not one or two batch items");
	}
	for (size_t i = 0; i < n; i++) {
		const struct kmip_response_batch_item *bi = &msg->batch_items[i];
		uint32_t want = i + 1 < n ? KMIP_OPERATION_GET : KMIP_OPERATION_GET_ATTRIBUTES;

		if (bi->operation != want || bi->result_status != KMIP_RESULT_STATUS_SUCCESS ||
		    bi->response_payload == NULL) {
			return invalid(m, "batch items other than Get and Get Attributes");
		}
	}
	m->ga = msg->batch_items[n - 1].response_payload;
	m->get = n == 2 ? msg->batch_items[0].response_payload : NULL;
	if (!names_uid(m, m->ga->unique_identifier, m->ga->unique_identifier_len) ||
	    (m->get != NULL &&
	     !names_uid(m, m->get->unique_identifier, m->get->unique_identifier_len))) {
		return invalid(m, "the items name another object");
	}
	return 0;
}

static int64_t *row_date(struct keel_store_object *o, uint32_t tag)
{
	switch (tag) {
	case KMIP_TAG_INITIAL_DATE:
		return &o->initial_date;
	case KMIP_TAG_ACTIVATION_DATE:
		return &o->activation_date;
	case KMIP_TAG_DEACTIVATION_DATE:
		return &o->deactivation_date;
	case KMIP_TAG_DESTROY_DATE:
		return &o->destroy_date;
	case KMIP_TAG_COMPROMISE_DATE:
		return &o->compromise_date;
	case KMIP_TAG_COMPROMISE_OCCURRENCE_DATE:
		return &o->compromise_occurrence_date;
	case KMIP_TAG_LAST_CHANGE_DATE:
		return &o->last_change_date;
	default:
		return NULL;
	}
}

static bool row_seen(const struct imp *m, uint32_t tag)
{
	for (size_t i = 0; i < m->num_row_seen; i++) {
		if (m->row_seen[i] == tag) {
			return true;
		}
	}
	return false;
}

/* An attribute kept in the object row (attrs.c, ATTR_OBJECT) into m->o. */
static int take_row_attr(struct imp *m, const struct eng_attr *a)
{
	uint32_t tag = a->rule->tag;
	int64_t *date = row_date(&m->o, tag);

	if (a->index != 0 || row_seen(m, tag) || m->num_row_seen == MAX_ROW_ATTRS) {
		return invalid(m, "an object attribute given twice");
	}
	m->row_seen[m->num_row_seen++] = tag;
	if (date != NULL) {
		*date = a->value->v.i64;
		return *date > 0 ? 0 : invalid(m, "a date before 1970");
	}
	switch (tag) {
	case KMIP_TAG_UNIQUE_IDENTIFIER:
		return names_uid(m, a->value->v.text, a->value->len)
			   ? 0
			   : invalid(m, "Unique Identifier of another object");
	case KMIP_TAG_OBJECT_TYPE:
		m->o.object_type = a->value->v.u32;
		return 0;
	case KMIP_TAG_STATE:
		m->o.state = a->value->v.u32;
		return 0;
	default:
		return 0; /* Lease Time: the server's policy, not the object's */
	}
}

/* The owner, which only an export carries (export.c, KEEL_ENGINE_OWNER_ATTR). */
static int take_owner(struct imp *m, const struct eng_attr *a)
{
	const struct kmip_node *v = a->value;

	if (m->o.owner[0] != '\0' || v->type != KMIP_TYPE_TEXT_STRING || v->len == 0 ||
	    v->len >= sizeof(m->o.owner) || memchr(v->v.text, '\0', v->len) != NULL) {
		return invalid(m, "no single owner");
	}
	memcpy(m->o.owner, v->v.text, v->len);
	return 0;
}

/* Sorts the Get Attributes list into the row, the owner and the instances to store. */
static int take_attrs(struct imp *m)
{
	size_t n = m->ga->num_attribute;
	struct eng_attr a;
	int err;

	if (m->ga->attributes != NULL) {
		return invalid(m, "2.x attributes in a 1.4 export");
	}
	if ((m->keep = eng_alloc(&m->r, (n + 1) * sizeof(a))) == NULL) {
		return KEEL_ENGINE_IMPORT_E_FAILED;
	}
	for (size_t i = 0; i < n; i++) {
		if ((err = attr_from_v1(&m->r, &m->ga->attribute[i], &a)) != 0) {
			return invalid(m, "an attribute Keel does not keep, or of the wrong type");
		}
		if (a.index < 0 || (a.index != 0 && (a.rule->flags & ATTR_MULTI) == 0)) {
			return invalid(m, "an attribute index out of place");
		}
		if ((a.rule->flags & ATTR_OBJECT) != 0) {
			err = take_row_attr(m, &a);
		} else if (strcmp(a.name, KEEL_ENGINE_OWNER_ATTR) == 0) {
			err = take_owner(m, &a);
		} else {
			m->keep[m->num_keep++] = a;
		}
		if (err != 0) {
			return err;
		}
	}
	return 0;
}

/* The row is whole and agrees with the Get: type, state, material iff not destroyed. */
static int check_row(struct imp *m)
{
	uint32_t s = m->o.state;
	bool template = m->o.object_type == KMIP_OBJECT_TYPE_TEMPLATE;
	bool destroyed = s == KMIP_STATE_DESTROYED || s == KMIP_STATE_DESTROYED_COMPROMISED;

	if (!row_seen(m, KMIP_TAG_UNIQUE_IDENTIFIER) || !row_seen(m, KMIP_TAG_OBJECT_TYPE) ||
	    m->o.initial_date == 0 || m->o.last_change_date == 0 || m->o.owner[0] == '\0') {
		return invalid(m, "uid, type, dates or owner missing");
	}
	if (template ? row_seen(m, KMIP_TAG_STATE)
		     : s < KMIP_STATE_PRE_ACTIVE || s > KMIP_STATE_DESTROYED_COMPROMISED) {
		return invalid(m, "no valid State");
	}
	if ((m->get == NULL) != destroyed ||
	    (m->get != NULL && m->get->object_type != m->o.object_type)) {
		return invalid(m, "the object disagrees with its State or Object Type");
	}
	snprintf(m->o.uid, sizeof(m->o.uid), "%s", m->uid);
	return 0;
}

/* Whether |a| and |b| encode to the same value. */
static bool same_value(struct imp *m, const struct kmip_node *a, const struct kmip_node *b)
{
	uint8_t *ea = NULL, *eb = NULL;
	size_t la = 0, lb = 0;
	const char *ta, *tb;
	bool same = attr_encode_value(&m->r, a, &ea, &la, &ta) == 0 &&
		    attr_encode_value(&m->r, b, &eb, &lb, &tb) == 0 && la == lb &&
		    memcmp(ea, eb, la) == 0;

	free(ea);
	free(eb);
	return same;
}

/* What the material derives: "_" bookkeeping is kept, the rest must be among the attributes. */
static int take_derived(struct imp *m)
{
	const struct eng_attr *d = m->no.attrs;
	size_t num_listed = m->num_keep;

	for (size_t i = 0; i < m->no.num_attrs; i++) {
		bool found = d[i].name[0] == '_';

		for (size_t k = 0; k < num_listed && !found; k++) {
			found = strcmp(m->keep[k].name, d[i].name) == 0 &&
				same_value(m, m->keep[k].value, d[i].value);
		}
		if (!found) {
			return invalid(m, "the material disagrees with the attributes");
		}
		if (d[i].name[0] == '_') {
			struct eng_attr *grown =
			    eng_alloc(&m->r, (m->num_keep + 1) * sizeof(*grown));

			if (grown == NULL) {
				return KEEL_ENGINE_IMPORT_E_FAILED;
			}
			memcpy(grown, m->keep, m->num_keep * sizeof(*grown));
			grown[m->num_keep++] = d[i];
			m->keep = grown;
		}
	}
	return 0;
}

/* The Get's object through Register's path: material and derived attributes. */
static int take_material(struct imp *m)
{
	const struct kmip_get_response *g = m->get;
	struct kmip_register_request q = {
	    .object_type = g->object_type,
	    .certificate = g->certificate,
	    .symmetric_key = g->symmetric_key,
	    .public_key = g->public_key,
	    .private_key = g->private_key,
	    .split_key = g->split_key,
	    .template = g->template,
	    .secret_data = g->secret_data,
	    .opaque_object = g->opaque_object,
	    .pgp_key = g->pgp_key,
	};

	if ((m->no.attrs = eng_alloc(&m->r, sizeof(*m->no.attrs))) == NULL) {
		return KEEL_ENGINE_IMPORT_E_FAILED;
	}
	if (eng_take_object(&m->r, &q, &m->converted, &m->no) != 0) {
		return invalid(m, "the object does not read as Register reads it");
	}
	return take_derived(m);
}

/*
 * The material under the active CRK: sealed before the transaction (|in_turn|
 * false), so the writers' turn is not held for the token, and sealed again in
 * it should a rotation have made another version active meanwhile.
 */
static int seal(struct imp *m, bool in_turn)
{
	struct keel_store_object *o = &m->o;

	if (m->get == NULL || (in_turn && eng_seal_current(m->r.e->hsm, o->crk_version))) {
		return 0;
	}
	free(o->blob);
	o->blob = NULL;
	return eng_seal(m->r.e->hsm, m->no.material, m->no.material_len, o) != 0
		   ? KEEL_ENGINE_IMPORT_E_FAILED
		   : 0;
}

/* The row with its material under the active CRK, its attributes, an audit row. */
static int write(struct imp *m)
{
	struct keel_store_object *o = &m->o;
	int err;

	if ((err = seal(m, true)) != 0) {
		return err;
	}
	if ((err = keel_store_object_put(m->r.txn, o)) != 0) {
		return err == KEEL_STORE_E_EXISTS ? KEEL_ENGINE_IMPORT_E_EXISTS
						  : KEEL_ENGINE_IMPORT_E_FAILED;
	}
	for (size_t i = 0; i < m->num_keep; i++) {
		if ((err = attr_save(&m->r, o->uid, &m->keep[i], m->keep[i].index, false)) != 0) {
			return err == ENG_E_SINGLE_VALUED
				   ? invalid(m, "an attribute instance twice")
				   : KEEL_ENGINE_IMPORT_E_FAILED;
		}
	}
	return keel_store_audit_append(m->r.txn,
				       &(struct keel_store_audit){
					   .time = m->r.now,
					   .client = m->r.who->subject,
					   .operation = KEEL_AUDIT_OP_RECOVER,
					   .uid = o->uid,
					   .detail = "restored from its Key Protect escrow",
				       }) == 0
		   ? 0
		   : KEEL_ENGINE_IMPORT_E_FAILED;
}

/* |uid| exists: identical (0, *out_identical) or different (EXISTS). 1 when absent. */
static int compare_existing(struct keel_engine *e, const char *uid, const uint8_t *in,
			    size_t in_len, bool *out_identical)
{
	struct hsm_secret *cur = NULL;
	int err = keel_engine_export(e, uid, &cur);

	if (err == KEEL_ENGINE_EXPORT_E_NOT_FOUND) {
		return 1;
	}
	if (err != 0) {
		return KEEL_ENGINE_IMPORT_E_FAILED;
	}
	*out_identical =
	    hsm_secret_len(cur) == in_len && CRYPTO_memcmp(hsm_secret_data(cur), in, in_len) == 0;
	hsm_secret_free(cur);
	return *out_identical ? 0 : KEEL_ENGINE_IMPORT_E_EXISTS;
}

static int import(struct imp *m, const uint8_t *in, size_t in_len)
{
	int err;

	if ((err = decode(m, in, in_len)) != 0 || (err = take_attrs(m)) != 0 ||
	    (err = check_row(m)) != 0 || (m->get != NULL && (err = take_material(m)) != 0) ||
	    (err = seal(m, false)) != 0) {
		return err;
	}
	eng_prepared(m->r.e);
	if (keel_store_begin(m->r.e->store, &m->r.txn) != 0) {
		return KEEL_ENGINE_IMPORT_E_FAILED;
	}
	if ((err = write(m)) != 0 || keel_store_commit(m->r.txn) != 0) {
		if (err != 0) {
			keel_store_rollback(m->r.txn);
		}
		return err != 0 ? err : KEEL_ENGINE_IMPORT_E_FAILED;
	}
	return 0;
}

int keel_engine_import(struct keel_engine *e, const char *uid, const uint8_t *in, size_t in_len,
		       bool *out_identical)
{
	struct keel_client_identity who = {0};
	struct kmip_arena arena;
	struct imp *m;
	int err;

	*out_identical = false;
	if (uid == NULL || uid[0] == '\0' || strlen(uid) > KEEL_STORE_UID_MAX || in == NULL) {
		return KEEL_ENGINE_IMPORT_E_INVALID;
	}
	if ((err = compare_existing(e, uid, in, in_len, out_identical)) <= 0) {
		return err;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		return KEEL_ENGINE_IMPORT_E_FAILED;
	}
	snprintf(who.subject, sizeof(who.subject), "recover");
	eng_req_init_admin(&m->r, e, &who, &arena);
	m->uid = uid;
	if ((err = import(m, in, in_len)) == KEEL_ENGINE_IMPORT_E_INVALID) {
		keel_warn("engine: the escrow of %s is refused: %s", uid, m->why);
	}
	keel_store_object_cleanup(&m->o);
	kc_buf_free(&m->converted);
	eng_wipe_secrets(&m->r);
	kmip_arena_cleanup(&arena);
	free(m);
	return err;
}

const char *keel_engine_import_strerror(int err)
{
	switch (err) {
	case 0:
		return "restored";
	case KEEL_ENGINE_IMPORT_E_INVALID:
		return "the escrow is not a valid export of that object";
	case KEEL_ENGINE_IMPORT_E_EXISTS:
		return "a different object has that uid";
	default:
		return "store, token or memory failure";
	}
}
