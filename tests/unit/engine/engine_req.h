/* Request builders and response checks for the engine's cryptographic tests. */
#ifndef KEEL_ENGINE_REQ_H
#define KEEL_ENGINE_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine_fixture.h"

/* Starts a request of |count| items in KMIP |major|.|minor|. */
void req_begin(struct kmip_writer *w, int major, int minor, int count);
void req_item_begin(struct kmip_writer *w, uint32_t operation);
void req_item_end(struct kmip_writer *w);
void req_uid(struct kmip_writer *w, const char *uid);
/* A 1.x Attribute with an Integer or Enumeration value. */
void req_attr_int(struct kmip_writer *w, const char *name, bool is_enum, int32_t v);
/* A 1.x Attribute with a Text String value. */
void req_attr_text(struct kmip_writer *w, const char *name, const char *value);
/* A 1.x Name attribute: |value|, an uninterpreted text string. */
void req_attr_name(struct kmip_writer *w, const char *value);
/* Ends the message, sends it as |who| and frees the writer. */
void req_send(struct engine_fx *f, const struct keel_client_identity *who, struct kmip_writer *w);

const struct kmip_response_batch_item *req_item(struct engine_fx *f, size_t i);
void req_expect_ok(struct engine_fx *f, size_t i);
void req_expect_fail(struct engine_fx *f, size_t i, uint32_t reason);

/* What req_create_sym makes: a symmetric key as alice. */
struct req_sym_spec {
	uint32_t algorithm;
	int32_t bits; /* 0: no Cryptographic Length (the server's default) */
	int32_t mask;
	bool active; /* Activate it in the same batch */
	/* The Cryptographic Parameters attribute's contents, written by this if not NULL. */
	void (*params)(struct kmip_writer *w);
	/* More Template-Attribute entries, written by this if not NULL. */
	void (*attrs)(struct kmip_writer *w);
};

/* Creates the key |spec| describes (1.4, Template-Attribute) and copies its UID. */
void req_create_sym(struct engine_fx *f, const struct req_sym_spec *spec, char uid[static 129]);
/* Creates an AES key of |bits| with usage |mask| as alice, Active if |active|. */
void req_create_aes(struct engine_fx *f, int bits, int32_t mask, bool active, char uid[static 129]);
/* Copies a response's Unique Identifier into |uid| (asserting it fits). */
void req_copy_uid(char uid[static 129], const char *p, size_t len);
/* Get's key material of |uid| into |out| (64 bytes); returns its length. */
size_t req_get_key(struct engine_fx *f, const char *uid, uint8_t out[static 64]);
/* Every attribute of alice's |uid|, in 1.4 (the payload lives until the next request). */
const struct kmip_get_attributes_response *req_get_attributes(struct engine_fx *f, const char *uid);
/* Revokes |uid| with |reason| (KMIP 1.4 §4.20). */
void req_revoke(struct engine_fx *f, const char *uid, uint32_t reason);

/* A Key Block with byte-string Key Material (§2.1.3); no algorithm if |alg| is 0. */
void req_key_block(struct kmip_writer *w, uint32_t format, uint32_t alg, const uint8_t *m,
		   size_t len);
/* Starts a Register of |type| in KMIP |major| (1.x: Name, usage mask, x-owner). */
void req_register_begin(struct kmip_writer *w, int major, uint32_t type);
/* Ends the Register, sends it as alice, expects success and keeps the UID. */
void req_register_end(struct engine_fx *f, struct kmip_writer *w, char uid[static 129]);
/* Registers a key object (symmetric: AES; private, public) with byte-string material. */
void req_register_key(struct engine_fx *f, int major, uint32_t type, uint32_t format,
		      const uint8_t *m, size_t len, char uid[static 129]);

#endif
