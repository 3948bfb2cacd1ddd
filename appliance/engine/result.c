/*
 * The one mapping from engine errors to KMIP results. KMIP 2.0 added precise
 * Result Reasons (2.0 §11.2, Table 200); a 1.x client gets the nearest 1.x
 * reason (1.4 §11 error handling tables). The message says only what the
 * client needs: the detail is logged where the error happened.
 */
#include "engine_int.h"

#include "log.h"

struct result_row {
	int err;
	uint32_t reason_v1;
	uint32_t reason_v2;
	const char *message;
};

static const struct result_row rows[] = {
    {ENG_E_ITEM_NOT_FOUND, KMIP_RESULT_REASON_ITEM_NOT_FOUND, KMIP_RESULT_REASON_ITEM_NOT_FOUND,
     "object not found"},
    {ENG_E_INVALID_FIELD, KMIP_RESULT_REASON_INVALID_FIELD, KMIP_RESULT_REASON_INVALID_FIELD,
     "invalid field"},
    {ENG_E_MISSING_DATA, KMIP_RESULT_REASON_MISSING_DATA, KMIP_RESULT_REASON_MISSING_DATA,
     "missing data"},
    {ENG_E_WRONG_STATE, KMIP_RESULT_REASON_PERMISSION_DENIED,
     KMIP_RESULT_REASON_WRONG_KEY_LIFECYCLE_STATE, "not permitted in the object's state"},
    {ENG_E_READ_ONLY, KMIP_RESULT_REASON_PERMISSION_DENIED, KMIP_RESULT_REASON_ATTRIBUTE_READ_ONLY,
     "attribute is read-only"},
    {ENG_E_ATTR_NOT_FOUND, KMIP_RESULT_REASON_ITEM_NOT_FOUND,
     KMIP_RESULT_REASON_ATTRIBUTE_NOT_FOUND, "attribute not found"},
    {ENG_E_SINGLE_VALUED, KMIP_RESULT_REASON_PERMISSION_DENIED,
     KMIP_RESULT_REASON_ATTRIBUTE_SINGLE_VALUED, "attribute is single-valued"},
    {ENG_E_FEATURE, KMIP_RESULT_REASON_FEATURE_NOT_SUPPORTED,
     KMIP_RESULT_REASON_FEATURE_NOT_SUPPORTED, "feature not supported"},
    {ENG_E_KEY_FORMAT, KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED,
     KMIP_RESULT_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED, "key format type not supported"},
    {ENG_E_KEY_COMPRESSION, KMIP_RESULT_REASON_KEY_COMPRESSION_TYPE_NOT_SUPPORTED,
     KMIP_RESULT_REASON_KEY_COMPRESSION_TYPE_NOT_SUPPORTED, "key compression not supported"},
    {ENG_E_OBJECT_TYPE, KMIP_RESULT_REASON_ILLEGAL_OPERATION,
     KMIP_RESULT_REASON_INVALID_OBJECT_TYPE, "not allowed for this object type"},
    {ENG_E_CRYPTO, KMIP_RESULT_REASON_CRYPTOGRAPHIC_FAILURE,
     KMIP_RESULT_REASON_CRYPTOGRAPHIC_FAILURE, "cryptographic failure"},
    {ENG_E_INTERNAL, KMIP_RESULT_REASON_GENERAL_FAILURE, KMIP_RESULT_REASON_GENERAL_FAILURE,
     "internal error"},
    {ENG_E_OP_NOT_SUPPORTED, KMIP_RESULT_REASON_OPERATION_NOT_SUPPORTED,
     KMIP_RESULT_REASON_OPERATION_NOT_SUPPORTED, "operation not supported"},
    {ENG_E_DESTROYED, KMIP_RESULT_REASON_PERMISSION_DENIED, KMIP_RESULT_REASON_OBJECT_DESTROYED,
     "object destroyed"},
    {ENG_E_INVALID_MESSAGE, KMIP_RESULT_REASON_INVALID_MESSAGE, KMIP_RESULT_REASON_INVALID_MESSAGE,
     "invalid message"},
    {ENG_E_TOO_LARGE, KMIP_RESULT_REASON_RESPONSE_TOO_LARGE, KMIP_RESULT_REASON_RESPONSE_TOO_LARGE,
     "response too large"},
    {ENG_E_USAGE_MASK, KMIP_RESULT_REASON_PERMISSION_DENIED,
     KMIP_RESULT_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, "not permitted by the usage mask"},
    {ENG_E_BAD_PARAMS, KMIP_RESULT_REASON_INVALID_FIELD,
     KMIP_RESULT_REASON_BAD_CRYPTOGRAPHIC_PARAMETERS, "bad cryptographic parameters"},
    {ENG_E_UNSUPPORTED_PARAMS, KMIP_RESULT_REASON_INVALID_FIELD,
     KMIP_RESULT_REASON_UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS,
     "cryptographic parameters not supported"},
    {ENG_E_MULTI_VALUED, KMIP_RESULT_REASON_PERMISSION_DENIED,
     KMIP_RESULT_REASON_MULTI_VALUED_ATTRIBUTE, "attribute has several instances"},
    {ENG_E_PERMISSION, KMIP_RESULT_REASON_PERMISSION_DENIED, KMIP_RESULT_REASON_PERMISSION_DENIED,
     "not permitted by this identity's grant"},
};

void eng_result(int err, uint16_t version, struct eng_result *out)
{
	bool v2 = (version & (KMIP_V2_0 | KMIP_V2_1)) != 0;

	out->status = KMIP_RESULT_STATUS_OPERATION_FAILED;
	out->reason = KMIP_RESULT_REASON_GENERAL_FAILURE;
	out->message = "internal error";
	if (err == 0) {
		out->status = KMIP_RESULT_STATUS_SUCCESS;
		out->reason = 0;
		out->message = NULL;
		return;
	}
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].err == err) {
			out->reason = v2 ? rows[i].reason_v2 : rows[i].reason_v1;
			out->message = rows[i].message;
			return;
		}
	}
}

int eng_fail(struct eng_req *r, int err, const char *msg)
{
	if (r->msg == NULL) {
		r->msg = msg;
	}
	return err;
}

int eng_hsm_fail(struct eng_req *r, int hsm_err)
{
	return eng_fail(r, ENG_E_CRYPTO,
			hsm_err == HSM_E_TIMEOUT ? "the HSM did not answer in time" : NULL);
}

int eng_store_err(struct eng_req *r, int err, const char *what)
{
	if (err == KEEL_STORE_E_NOT_FOUND) {
		return ENG_E_ITEM_NOT_FOUND;
	}
	keel_err("engine: %s: %s", what, keel_store_strerror(err));
	(void)r;
	return ENG_E_INTERNAL;
}
