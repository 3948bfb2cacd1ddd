/* See engine_req.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine_req.h"

#include <string.h>

void req_begin(struct kmip_writer *w, int major, int minor, int count)
{
	kmip_writer_init(w, 1u << 20);
	kmip_write_begin(w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_write_begin(w, KMIP_TAG_REQUEST_HEADER);
	kmip_write_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, major);
	kmip_write_int(w, KMIP_TAG_PROTOCOL_VERSION_MINOR, minor);
	kmip_write_end(w);
	kmip_write_int(w, KMIP_TAG_BATCH_COUNT, count);
	kmip_write_end(w);
}

void req_item_begin(struct kmip_writer *w, uint32_t operation)
{
	kmip_write_begin(w, KMIP_TAG_BATCH_ITEM);
	kmip_write_enum(w, KMIP_TAG_OPERATION, operation);
	kmip_write_begin(w, KMIP_TAG_REQUEST_PAYLOAD);
}

void req_item_end(struct kmip_writer *w)
{
	kmip_write_end(w);
	kmip_write_end(w);
}

void req_uid(struct kmip_writer *w, const char *uid)
{
	kmip_write_text(w, KMIP_TAG_UNIQUE_IDENTIFIER, uid, strlen(uid));
}

void req_attr_int(struct kmip_writer *w, const char *name, bool is_enum, int32_t v)
{
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	if (is_enum) {
		kmip_write_enum(w, KMIP_TAG_ATTRIBUTE_VALUE, (uint32_t)v);
	} else {
		kmip_write_int(w, KMIP_TAG_ATTRIBUTE_VALUE, v);
	}
	kmip_write_end(w);
}

void req_attr_text(struct kmip_writer *w, const char *name, const char *value)
{
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_VALUE, value, strlen(value));
	kmip_write_end(w);
}

void req_attr_name(struct kmip_writer *w, const char *value)
{
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE);
	kmip_write_text(w, KMIP_TAG_ATTRIBUTE_NAME, "Name", 4);
	kmip_write_begin(w, KMIP_TAG_ATTRIBUTE_VALUE);
	kmip_write_text(w, KMIP_TAG_NAME_VALUE, value, strlen(value));
	kmip_write_enum(w, KMIP_TAG_NAME_TYPE, KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);
	kmip_write_end(w);
	kmip_write_end(w);
}

void req_send(struct engine_fx *f, const struct keel_client_identity *who, struct kmip_writer *w)
{
	const uint8_t *p;
	size_t n;

	kmip_write_end(w);
	assert_int_equal(kmip_writer_finish(w, &p, &n), 0);
	engine_fx_send(f, who, p, n);
	kmip_writer_cleanup(w);
}

const struct kmip_response_batch_item *req_item(struct engine_fx *f, size_t i)
{
	assert_true(i < f->msg->num_batch_items);
	return &f->msg->batch_items[i];
}

void req_expect_ok(struct engine_fx *f, size_t i)
{
	const struct kmip_response_batch_item *bi = req_item(f, i);

	if (bi->result_status != KMIP_RESULT_STATUS_SUCCESS) {
		print_error("item %zu: status %u reason %u: %.*s\n", i, bi->result_status,
			    bi->result_reason, (int)bi->result_message_len, bi->result_message);
	}
	assert_int_equal(bi->result_status, KMIP_RESULT_STATUS_SUCCESS);
	assert_non_null(bi->response_payload);
}

void req_expect_fail(struct engine_fx *f, size_t i, uint32_t reason)
{
	const struct kmip_response_batch_item *bi = req_item(f, i);

	assert_int_equal(bi->result_status, KMIP_RESULT_STATUS_OPERATION_FAILED);
	assert_true(bi->has_result_reason);
	assert_int_equal(bi->result_reason, reason);
}

void req_copy_uid(char uid[static 129], const char *p, size_t len)
{
	assert_true(len < 129);
	memcpy(uid, p, len);
	uid[len] = '\0';
}

void req_create_sym(struct engine_fx *f, const struct req_sym_spec *spec, char uid[static 129])
{
	struct kmip_writer w;
	const struct kmip_create_response *p;

	req_begin(&w, 1, 4, spec->active ? 2 : 1);
	req_item_begin(&w, KMIP_OPERATION_CREATE);
	kmip_write_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	kmip_write_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	req_attr_int(&w, "Cryptographic Algorithm", true, (int32_t)spec->algorithm);
	if (spec->bits != 0) {
		req_attr_int(&w, "Cryptographic Length", false, spec->bits);
	}
	req_attr_int(&w, "Cryptographic Usage Mask", false, spec->mask);
	if (spec->params != NULL) {
		kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE);
		kmip_write_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Cryptographic Parameters", 24);
		kmip_write_begin(&w, KMIP_TAG_ATTRIBUTE_VALUE);
		spec->params(&w);
		kmip_write_end(&w);
		kmip_write_end(&w);
	}
	if (spec->attrs != NULL) {
		spec->attrs(&w);
	}
	kmip_write_end(&w);
	req_item_end(&w);
	if (spec->active) {
		/* ID Placeholder: the key just created (KMIP 1.4 §6.19.1). */
		req_item_begin(&w, KMIP_OPERATION_ACTIVATE);
		req_item_end(&w);
	}
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	if (spec->active) {
		req_expect_ok(f, 1);
	}
	p = req_item(f, 0)->response_payload;
	req_copy_uid(uid, p->unique_identifier, p->unique_identifier_len);
}

void req_create_aes(struct engine_fx *f, int bits, int32_t mask, bool active, char uid[static 129])
{
	const struct req_sym_spec spec = {.algorithm = KMIP_CRYPTOGRAPHIC_ALGORITHM_AES,
					  .bits = bits,
					  .mask = mask,
					  .active = active};

	req_create_sym(f, &spec, uid);
}

size_t req_get_key(struct engine_fx *f, const char *uid, uint8_t out[static 64])
{
	struct kmip_writer w;
	const struct kmip_get_response *g;
	const struct kmip_key_value *kv;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET);
	req_uid(&w, uid);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	g = req_item(f, 0)->response_payload;
	assert_non_null(g->symmetric_key);
	kv = g->symmetric_key->key_block->key_value;
	assert_true(kv->key_material_len <= 64);
	memcpy(out, kv->key_material, kv->key_material_len);
	return kv->key_material_len;
}

void req_revoke(struct engine_fx *f, const char *uid, uint32_t reason)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_REVOKE);
	req_uid(&w, uid);
	kmip_write_begin(&w, KMIP_TAG_REVOCATION_REASON);
	kmip_write_enum(&w, KMIP_TAG_REVOCATION_REASON_CODE, reason);
	kmip_write_end(&w);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
}

const struct kmip_get_attributes_response *req_get_attributes(struct engine_fx *f, const char *uid)
{
	struct kmip_writer w;

	req_begin(&w, 1, 4, 1);
	req_item_begin(&w, KMIP_OPERATION_GET_ATTRIBUTES);
	req_uid(&w, uid);
	req_item_end(&w);
	req_send(f, &f->alice, &w);
	req_expect_ok(f, 0);
	return req_item(f, 0)->response_payload;
}
/* A Key Block with byte-string Key Material (§2.1.3). */
void req_key_block(struct kmip_writer *w, uint32_t format, uint32_t alg, const uint8_t *m,
		   size_t len)
{
	kmip_write_begin(w, KMIP_TAG_KEY_BLOCK);
	kmip_write_enum(w, KMIP_TAG_KEY_FORMAT_TYPE, format);
	kmip_write_begin(w, KMIP_TAG_KEY_VALUE);
	kmip_write_bytes(w, KMIP_TAG_KEY_MATERIAL, m, len);
	kmip_write_end(w);
	if (alg != 0) {
		kmip_write_enum(w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, alg);
	}
	kmip_write_end(w);
}

/* Starts a Register of |type| with the 1.x template (Name, usage mask, x-owner). */
void req_register_begin(struct kmip_writer *w, int major, uint32_t type)
{
	req_begin(w, major, major == 1 ? 4 : 0, 1);
	req_item_begin(w, KMIP_OPERATION_REGISTER);
	kmip_write_enum(w, KMIP_TAG_OBJECT_TYPE, type);
	if (major == 1) {
		kmip_write_begin(w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
		req_attr_name(w, "registered");
		req_attr_int(w, "Cryptographic Usage Mask", false, 12);
		req_attr_text(w, "x-owner", "tests");
		kmip_write_end(w);
	} else {
		kmip_write_begin(w, KMIP_TAG_ATTRIBUTES);
		kmip_write_int(w, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, 12);
		kmip_write_end(w);
	}
}

/* Ends the Register, sends it as alice, expects success and keeps the UID. */
void req_register_end(struct engine_fx *f, struct kmip_writer *w, char uid[static 129])
{
	const struct kmip_register_response *p;

	req_item_end(w);
	req_send(f, &f->alice, w);
	req_expect_ok(f, 0);
	p = req_item(f, 0)->response_payload;
	assert_true(p->unique_identifier_len < 129);
	req_copy_uid(uid, p->unique_identifier, p->unique_identifier_len);
}

/* Registers a key object (symmetric, private, public) with byte-string material. */
void req_register_key(struct engine_fx *f, int major, uint32_t type, uint32_t format,
		      const uint8_t *m, size_t len, char uid[static 129])
{
	struct kmip_writer w;
	uint32_t tag = type == KMIP_OBJECT_TYPE_SYMMETRIC_KEY ? KMIP_TAG_SYMMETRIC_KEY
		       : type == KMIP_OBJECT_TYPE_PRIVATE_KEY ? KMIP_TAG_PRIVATE_KEY
							      : KMIP_TAG_PUBLIC_KEY;

	req_register_begin(&w, major, type);
	kmip_write_begin(&w, tag);
	req_key_block(&w, format,
		      type == KMIP_OBJECT_TYPE_SYMMETRIC_KEY ? KMIP_CRYPTOGRAPHIC_ALGORITHM_AES : 0,
		      m, len);
	kmip_write_end(&w);
	req_register_end(f, &w, uid);
}
