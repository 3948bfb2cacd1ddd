/*
 * The export of one managed object for the Key Protect mirror's escrow
 * (engine.h, keel_engine_export): Get and Get Attributes run inside the
 * engine, where the HSM is, and their answers encoded as one KMIP 1.4
 * Response Message, the form a recovery decodes (import.c, keel_engine_import).
 * Two things make it a faithful, comparable record: the object's owner, which
 * no KMIP attribute carries, rides as the server attribute KEEL_ENGINE_OWNER_ATTR
 * at the end of the attribute list, and the header's Time Stamp is the object's
 * Last Change Date, so that one state of an object always exports to the same bytes.
 */
#include "engine_int.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/* Item |i| of the message: a successful |operation| answered by |payload|. */
static void add_item(struct kmip_response_message *m, uint32_t operation, void *payload)
{
	struct kmip_response_batch_item *bi = &m->batch_items[m->num_batch_items++];

	bi->operation = operation;
	bi->has_operation = true;
	bi->result_status = KMIP_RESULT_STATUS_SUCCESS;
	bi->response_payload = payload;
}

/* Appends the owner to the attribute list of |ap| (a 1.4 Get Attributes payload). */
static int add_owner(struct eng_req *r, const struct keel_store_object *o, void *ap)
{
	struct kmip_get_attributes_response *p = ap;
	struct kmip_attribute *all = eng_alloc(r, (p->num_attribute + 1) * sizeof(*all));
	struct kmip_node *v = eng_node(r, KMIP_TAG_ATTRIBUTE_VALUE, KMIP_TYPE_TEXT_STRING);

	if (all == NULL || v == NULL ||
	    (v->v.text = eng_strdup(r, o->owner, strlen(o->owner))) == NULL) {
		return ENG_E_INTERNAL;
	}
	v->len = (uint32_t)strlen(o->owner);
	if (p->num_attribute != 0) {
		memcpy(all, p->attribute, p->num_attribute * sizeof(*all));
	}
	all[p->num_attribute] = (struct kmip_attribute){
	    .attribute_name = KEEL_ENGINE_OWNER_ATTR,
	    .attribute_name_len = strlen(KEEL_ENGINE_OWNER_ATTR),
	    .attribute_value = v,
	};
	p->attribute = all;
	p->num_attribute++;
	return 0;
}

/* Runs Get and Get Attributes on |uid| into |m|; a destroyed object has no Get item.
 * *out_changed gets its Last Change Date. */
static int export_items(struct eng_req *r, const char *uid, struct kmip_response_message *m,
			int64_t *out_changed)
{
	size_t len = strlen(uid);
	struct kmip_get_request gq = {.unique_identifier = uid, .unique_identifier_len = len};
	struct kmip_get_attributes_request aq = {.unique_identifier = uid,
						 .unique_identifier_len = len};
	struct kmip_get_response *gp = eng_alloc(r, sizeof(*gp));
	struct keel_store_object o = {0};
	void *ap = NULL;
	int err;

	if (gp == NULL) {
		return ENG_E_INTERNAL;
	}
	if ((err = eng_load(r, uid, len, &o)) == 0) {
		*out_changed = o.last_change_date;
		err = eng_get_response(r, &o, &gq, false, gp);
		if (err == 0) {
			add_item(m, KMIP_OPERATION_GET, gp);
		}
		if (err == ENG_E_DESTROYED) {
			err = 0; /* its attributes are all there is to escrow */
		}
	}
	if (err == 0 && (err = op_get_attributes(r, &aq, &ap)) == 0 &&
	    (err = add_owner(r, &o, ap)) == 0) {
		add_item(m, KMIP_OPERATION_GET_ATTRIBUTES, ap);
	}
	keel_store_object_cleanup(&o);
	return err;
}

/* |m| as TTLV in locked memory; the writer wipes its own copy. */
static int encode(struct keel_engine *e, const struct kmip_response_message *m,
		  struct hsm_secret **out)
{
	struct kmip_writer w;
	const uint8_t *p;
	size_t n;
	int err = KEEL_ENGINE_EXPORT_E_FAILED;

	kmip_writer_init(&w, e->lim.max_message_len);
	if (kmip_response_encode(&w, m) == 0 && kmip_writer_finish(&w, &p, &n) == 0 &&
	    hsm_secret_new(n, out) == 0) {
		memcpy(hsm_secret_data(*out), p, n);
		err = 0;
	}
	kmip_writer_cleanup(&w);
	return err;
}

int keel_engine_export(struct keel_engine *e, const char *uid, struct hsm_secret **out)
{
	struct kmip_arena arena;
	struct keel_client_identity who = {0};
	struct eng_req r;
	struct kmip_protocol_version pv = {1, 4};
	struct kmip_response_header h = {.protocol_version = &pv};
	struct kmip_response_batch_item items[2] = {0};
	struct kmip_response_message m = {.response_header = &h, .batch_items = items};
	int err;

	*out = NULL;
	if (uid == NULL || strlen(uid) > KEEL_STORE_UID_MAX) {
		return KEEL_ENGINE_EXPORT_E_NOT_FOUND;
	}
	snprintf(who.subject, sizeof(who.subject), "mirror");
	eng_req_init_admin(&r, e, &who, &arena);
	if (keel_store_begin_read(e->store, &r.txn) != 0) {
		kmip_arena_cleanup(&arena);
		return KEEL_ENGINE_EXPORT_E_FAILED;
	}
	err = export_items(&r, uid, &m, &h.time_stamp);
	keel_store_rollback(r.txn);
	if (err == 0) {
		h.batch_count = (int32_t)m.num_batch_items;
		err = encode(e, &m, out);
	} else if (err == ENG_E_ITEM_NOT_FOUND) {
		err = KEEL_ENGINE_EXPORT_E_NOT_FOUND;
	} else {
		keel_err("engine: exporting %s for the mirror failed (%d)", uid, err);
		err = KEEL_ENGINE_EXPORT_E_FAILED;
	}
	eng_wipe_secrets(&r);
	kmip_arena_cleanup(&arena);
	return err;
}
