/*
 * Query's capability functions (KMIP 1.4 §4.25, 2.0 §6.1.37): RNGs, Profiles,
 * Capabilities and Client Registration Methods. Keel has no extensions,
 * attestation types or validations, so those functions are answered with nothing.
 */
#include "engine_int.h"

#include <string.h>

/* A node of |tag| with an enumeration or boolean value; NULL when out of memory. */
static struct kmip_node *value_node(struct eng_req *r, uint32_t tag, uint8_t type, uint32_t v)
{
	struct kmip_node *n = eng_node(r, tag, type);

	if (n != NULL && type == KMIP_TYPE_BOOLEAN) {
		n->v.b = v != 0;
	} else if (n != NULL) {
		n->v.u32 = v;
	}
	return n;
}

/* Links |kids| (all non-NULL) under a new structure |tag|; NULL when any is missing. */
static struct kmip_node *struct_node(struct eng_req *r, uint32_t tag, struct kmip_node **kids,
				     size_t num_kids)
{
	struct kmip_node *s = eng_node(r, tag, KMIP_TYPE_STRUCTURE);

	for (size_t i = 0; i < num_kids; i++) {
		if (kids[i] == NULL) {
			return NULL;
		}
		kids[i]->next = i + 1 < num_kids ? kids[i + 1] : NULL;
	}
	if (s != NULL) {
		s->v.child = num_kids > 0 ? kids[0] : NULL;
		s->len = (uint32_t)num_kids;
	}
	return s;
}

/* One RNG Parameters (1.4 §2.1.18): the token's RNG, whose algorithm PKCS#11 does not name. */
static int query_rngs(struct eng_req *r, struct kmip_query_response *p)
{
	struct kmip_node *alg = value_node(r, KMIP_TAG_RNG_ALGORITHM, KMIP_TYPE_ENUMERATION,
					   KMIP_RNG_ALGORITHM_UNSPECIFIED);
	const struct kmip_node **list = eng_alloc(r, sizeof(*list));

	if (list == NULL || (list[0] = struct_node(r, KMIP_TAG_RNG_PARAMETERS, &alg, 1)) == NULL) {
		return ENG_E_INTERNAL;
	}
	p->rng_parameters = list;
	p->num_rng_parameters = 1;
	return 0;
}

/*
 * The profiles docs/conformance.md shows Keel passing every mandatory case of,
 * per version; Server URI and Port are left out (1.4 §2.1.19). 2.x: none yet.
 */
static const struct {
	uint32_t name;
	uint16_t versions;
} profiles[] = {
    {KMIP_PROFILE_NAME_SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIPV1_3, KMIP_V1_3},
    {KMIP_PROFILE_NAME_ASYMMETRIC_KEY_LIFECYCLE_SERVER_KMIPV1_3, KMIP_V1_3},
    {KMIP_PROFILE_NAME_SYMMETRIC_KEY_FOUNDRY_SERVER_KMIPV1_3, KMIP_V1_3},
    {KMIP_PROFILE_NAME_OPAQUE_MANAGED_OBJECT_STORE_SERVER_KMIPV1_3, KMIP_V1_3},
    {KMIP_PROFILE_NAME_RNG_CRYPTOGRAPHIC_SERVER_KMIPV1_3, KMIP_V1_3},
    {KMIP_PROFILE_NAME_SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIPV1_4, KMIP_V1_4},
    {KMIP_PROFILE_NAME_OPAQUE_MANAGED_OBJECT_STORE_SERVER_KMIPV1_4, KMIP_V1_4},
    {KMIP_PROFILE_NAME_RNG_CRYPTOGRAPHIC_SERVER_KMIPV1_4, KMIP_V1_4},
};
#define NUM_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

static int query_profiles(struct eng_req *r, struct kmip_query_response *p)
{
	const struct kmip_node **list = eng_alloc(r, NUM_PROFILES * sizeof(*list));
	struct kmip_node *name;

	if (list == NULL) {
		return ENG_E_INTERNAL;
	}
	p->profile_information = list;
	for (size_t i = 0; i < NUM_PROFILES; i++) {
		if ((profiles[i].versions & r->version) == 0) {
			continue;
		}
		name =
		    value_node(r, KMIP_TAG_PROFILE_NAME, KMIP_TYPE_ENUMERATION, profiles[i].name);
		if ((list[p->num_profile_information] =
			 struct_node(r, KMIP_TAG_PROFILE_INFORMATION, &name, 1)) == NULL) {
			return ENG_E_INTERNAL;
		}
		p->num_profile_information++;
	}
	return 0;
}

/*
 * Capability Information (1.4 §2.1.20): no streaming, asynchronous operations
 * or attestation; Batch Error Continuation Option Undo rolls a batch back and
 * Continue goes on (both 1.4+, §6.7); wrapped key material is not unwrapped (Unwrap Mode
 * Unspecified: Register refuses it); Destroy deletes the key material, how is
 * the store's (Shredding Algorithm Unspecified); one RNG, the token's, serves
 * every client (Shared Instantiation).
 */
static int query_capabilities(struct eng_req *r, struct kmip_query_response *p)
{
	bool v14 = (r->version & (KMIP_V1_0 | KMIP_V1_1 | KMIP_V1_2 | KMIP_V1_3)) == 0;
	struct kmip_node *kids[] = {
	    value_node(r, KMIP_TAG_STREAMING_CAPABILITY, KMIP_TYPE_BOOLEAN, 0),
	    value_node(r, KMIP_TAG_ASYNCHRONOUS_CAPABILITY, KMIP_TYPE_BOOLEAN, 0),
	    value_node(r, KMIP_TAG_ATTESTATION_CAPABILITY, KMIP_TYPE_BOOLEAN, 0),
	    value_node(r, KMIP_TAG_BATCH_UNDO_CAPABILITY, KMIP_TYPE_BOOLEAN, 1),
	    value_node(r, KMIP_TAG_BATCH_CONTINUE_CAPABILITY, KMIP_TYPE_BOOLEAN, 1),
	    value_node(r, KMIP_TAG_UNWRAP_MODE, KMIP_TYPE_ENUMERATION,
		       KMIP_UNWRAP_MODE_UNSPECIFIED),
	    value_node(r, KMIP_TAG_DESTROY_ACTION, KMIP_TYPE_ENUMERATION,
		       KMIP_DESTROY_ACTION_KEY_MATERIAL_DELETED),
	    value_node(r, KMIP_TAG_SHREDDING_ALGORITHM, KMIP_TYPE_ENUMERATION,
		       KMIP_SHREDDING_ALGORITHM_UNSPECIFIED),
	    value_node(r, KMIP_TAG_RNG_MODE, KMIP_TYPE_ENUMERATION,
		       KMIP_RNG_MODE_SHARED_INSTANTIATION),
	};
	size_t num_kids = sizeof(kids) / sizeof(kids[0]);
	const struct kmip_node **list = eng_alloc(r, sizeof(*list));

	if (!v14) { /* the two batch capabilities (kids[3], kids[4]) are 1.4+ */
		memmove(&kids[3], &kids[5], (num_kids - 5) * sizeof(kids[0]));
		num_kids -= 2;
	}

	if (list == NULL ||
	    (list[0] = struct_node(r, KMIP_TAG_CAPABILITY_INFORMATION, kids, num_kids)) == NULL) {
		return ENG_E_INTERNAL;
	}
	p->capability_information = list;
	p->num_capability_information = 1;
	return 0;
}

/*
 * Client Registration Methods (1.4 §9.1.3.2.41): a client makes its own key
 * and certificate, which an operator registers for mutual TLS; keeld --dev
 * issues one for its user.
 */
static int query_registration(struct eng_req *r, struct kmip_query_response *p)
{
	static const uint32_t methods[] = {KMIP_CLIENT_REGISTRATION_METHOD_SERVER_PRE_GENERATED,
					   KMIP_CLIENT_REGISTRATION_METHOD_CLIENT_GENERATED};

	if ((p->client_registration_methods = eng_alloc(r, sizeof(methods))) == NULL) {
		return ENG_E_INTERNAL;
	}
	memcpy(p->client_registration_methods, methods, sizeof(methods));
	p->num_client_registration_methods = sizeof(methods) / sizeof(methods[0]);
	return 0;
}

int eng_query_capability(struct eng_req *r, uint32_t function, struct kmip_query_response *p)
{
	const struct kmip_enum_value *ev = kmip_enum_value(&kmip_enum_query_function, function);

	/* A function the request's version lacks is answered with nothing (§4.25). */
	if (ev == NULL || (ev->versions & r->version) == 0) {
		return 0;
	}
	switch (function) {
	case KMIP_QUERY_FUNCTION_QUERY_RNGS:
		return p->num_rng_parameters == 0 ? query_rngs(r, p) : 0;
	case KMIP_QUERY_FUNCTION_QUERY_PROFILES:
		return p->num_profile_information == 0 ? query_profiles(r, p) : 0;
	case KMIP_QUERY_FUNCTION_QUERY_CAPABILITIES:
		return p->num_capability_information == 0 ? query_capabilities(r, p) : 0;
	case KMIP_QUERY_FUNCTION_QUERY_CLIENT_REGISTRATION_METHODS:
		return p->num_client_registration_methods == 0 ? query_registration(r, p) : 0;
	default:
		/* No extensions, attestation types, validations; 2.x defaults and masks not yet. */
		return 0;
	}
}
