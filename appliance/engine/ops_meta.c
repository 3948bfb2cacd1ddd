/* The operation table, Discover Versions (KMIP 1.4 §4.26) and Query (§4.25). */
#include "engine_int.h"
#include "manage.h"

#include <stdio.h>
#include <string.h>

#ifndef KEEL_VERSION
#define KEEL_VERSION "0"
#endif

/*
 * The operations, and the lowest grant that lets an identity other than the
 * owner run each on an object (engine/manage.h says why); 0: the owner only,
 * or an operation that touches no existing object.
 */
const struct eng_op eng_ops[] = {
    {KMIP_OPERATION_DISCOVER_VERSIONS, op_discover_versions, 0, NULL},
    {KMIP_OPERATION_QUERY, op_query, 0, NULL},
    {KMIP_OPERATION_CREATE, op_create, 0, prepare_create},
    {KMIP_OPERATION_GET, op_get, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_GET_ATTRIBUTES, op_get_attributes, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_GET_ATTRIBUTE_LIST, op_get_attribute_list, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_ADD_ATTRIBUTE, op_add_attribute, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_MODIFY_ATTRIBUTE, op_modify_attribute, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_DELETE_ATTRIBUTE, op_delete_attribute, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_ACTIVATE, op_activate, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_REVOKE, op_revoke, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_DESTROY, op_destroy, 0, NULL},
    {KMIP_OPERATION_LOCATE, op_locate, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_CHECK, op_check, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_ENCRYPT, op_encrypt, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_DECRYPT, op_decrypt, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_MAC, op_mac, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_MAC_VERIFY, op_mac_verify, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_RNG_RETRIEVE, op_rng_retrieve, 0, NULL},
    {KMIP_OPERATION_HASH, op_hash, 0, NULL},
    {KMIP_OPERATION_SIGN, op_sign, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_SIGNATURE_VERIFY, op_signature_verify, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_SET_ATTRIBUTE, op_set_attribute, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_ADJUST_ATTRIBUTE, op_adjust_attribute, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_REGISTER, op_register, 0, prepare_register},
    {KMIP_OPERATION_CREATE_KEY_PAIR, op_create_key_pair, 0, NULL},
    {KMIP_OPERATION_RE_KEY, op_rekey, 0, NULL},
    {KMIP_OPERATION_ARCHIVE, op_archive, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_RECOVER, op_recover, KEEL_GRANT_MANAGE, NULL},
    {KMIP_OPERATION_OBTAIN_LEASE, op_obtain_lease, KEEL_GRANT_USE, NULL},
    {KMIP_OPERATION_GET_USAGE_ALLOCATION, op_get_usage_allocation, KEEL_GRANT_USE, NULL},
};
const size_t eng_num_ops = sizeof(eng_ops) / sizeof(eng_ops[0]);

/* Newest first: the order a server lists its preference (§4.26). */
static const struct kmip_protocol_version versions[] = {
    {2, 1}, {2, 0}, {1, 4}, {1, 3}, {1, 2}, {1, 1}, {1, 0},
};
#define NUM_VERSIONS (sizeof(versions) / sizeof(versions[0]))

static bool supported(const struct kmip_protocol_version *v)
{
	return kmip_version_bit(v->protocol_version_major, v->protocol_version_minor) != 0;
}

int op_discover_versions(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_discover_versions_request *q = req;
	struct kmip_discover_versions_response *p = eng_alloc(r, sizeof(*p));
	struct kmip_protocol_version *list =
	    eng_alloc(r, sizeof(versions) + q->num_protocol_versions * sizeof(*list));

	if (p == NULL || list == NULL) {
		return ENG_E_INTERNAL;
	}
	p->protocol_versions = list;
	if (q->num_protocol_versions == 0) {
		memcpy(list, versions, sizeof(versions));
		p->num_protocol_versions = NUM_VERSIONS;
	}
	/* A client's list is intersected, keeping the client's order. */
	for (size_t i = 0; i < q->num_protocol_versions; i++) {
		if (supported(&q->protocol_versions[i])) {
			list[p->num_protocol_versions++] = q->protocol_versions[i];
		}
	}
	*out = p;
	return 0;
}

/* The operations served in the request's version: Set Attribute is no 1.x operation (§4.25). */
static int query_operations(struct eng_req *r, struct kmip_query_response *p)
{
	if ((p->operations = eng_alloc(r, eng_num_ops * sizeof(uint32_t))) == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < eng_num_ops; i++) {
		const struct kmip_operation_desc *od = kmip_operation_desc(eng_ops[i].operation);

		if (od != NULL && (od->versions & r->version) != 0) {
			p->operations[p->num_operations++] = eng_ops[i].operation;
		}
	}
	return 0;
}

/* The object types Register and Get serve, those the request's version has (§4.25). */
static int query_objects(struct eng_req *r, struct kmip_query_response *p)
{
	static const uint32_t types[] = {
	    KMIP_OBJECT_TYPE_SYMMETRIC_KEY, KMIP_OBJECT_TYPE_SECRET_DATA,
	    KMIP_OBJECT_TYPE_OPAQUE_OBJECT, KMIP_OBJECT_TYPE_CERTIFICATE,
	    KMIP_OBJECT_TYPE_PUBLIC_KEY,    KMIP_OBJECT_TYPE_PRIVATE_KEY,
	    KMIP_OBJECT_TYPE_SPLIT_KEY,	    KMIP_OBJECT_TYPE_PGP_KEY,
	    KMIP_OBJECT_TYPE_TEMPLATE};

	if ((p->object_types = eng_alloc(r, sizeof(types))) == NULL) {
		return ENG_E_INTERNAL;
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		const struct kmip_enum_value *ev =
		    kmip_enum_value(&kmip_enum_object_type, types[i]);

		if (ev != NULL && (ev->versions & r->version) != 0) {
			p->object_types[p->num_object_types++] = types[i];
		}
	}
	return 0;
}

int op_query(struct eng_req *r, const void *req, void **out)
{
	const struct kmip_query_request *q = req;
	struct kmip_query_response *p = eng_alloc(r, sizeof(*p));
	int err = 0;

	if (p == NULL) {
		return ENG_E_INTERNAL;
	}
	/* Unsupported query functions are answered with nothing (§4.25). */
	for (size_t i = 0; i < q->num_query_functions && err == 0; i++) {
		switch (q->query_functions[i]) {
		case KMIP_QUERY_FUNCTION_QUERY_OPERATIONS:
			err = p->num_operations == 0 ? query_operations(r, p) : 0;
			break;
		case KMIP_QUERY_FUNCTION_QUERY_OBJECTS:
			err = p->num_object_types == 0 ? query_objects(r, p) : 0;
			break;
		case KMIP_QUERY_FUNCTION_QUERY_SERVER_INFORMATION:
			p->vendor_identification = "Keel " KEEL_VERSION;
			p->vendor_identification_len = strlen(p->vendor_identification);
			break;
		default:
			err = eng_query_capability(r, q->query_functions[i], p);
			break;
		}
	}
	*out = p;
	return err;
}
