/* Error strings, CK_RV translation and the log sink. */
#include "hsm_int.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const err_str[] = {
    [0] = "success",
    [-HSM_E_INVAL] = "invalid argument",
    [-HSM_E_NOMEM] = "out of memory or locked memory",
    [-HSM_E_MODULE_NOT_FOUND] = "PKCS#11 module not found",
    [-HSM_E_MODULE_INVALID] = "file is not a PKCS#11 module",
    [-HSM_E_MODULE_INIT] = "PKCS#11 module failed to initialize",
    [-HSM_E_TOKEN_NOT_FOUND] = "token not found",
    [-HSM_E_PIN_FILE] = "PIN file missing, unreadable, not 0600 or not owned by this user",
    [-HSM_E_PIN_INCORRECT] = "token refused the PIN (not retried)",
    [-HSM_E_PIN_LOCKED] = "token has locked the user PIN",
    [-HSM_E_TOKEN_UNAVAILABLE] = "token unavailable; recovering",
    [-HSM_E_CRK_NOT_FOUND] = "customer root key version not found in token",
    [-HSM_E_BLOB_FORMAT] = "wrapped key blob malformed or of unknown format",
    [-HSM_E_AUTH] = "wrapped key blob failed authentication",
    [-HSM_E_MECHANISM] = "token does not support the mechanism or its parameters",
    [-HSM_E_NOT_EXTRACTABLE] = "customer root key is not extractable",
    [-HSM_E_DEVICE] = "token reported an error",
    [-HSM_E_RANGE] = "size out of range",
    [-HSM_E_CRK_EXISTS] = "customer root key version already exists",
    [-HSM_E_BUFFER] = "output buffer too small",
    [-HSM_E_TIMEOUT] = "token did not answer in time",
};

const char *hsm_strerror(int err)
{
	if (err > 0 || (size_t)-err >= sizeof(err_str) / sizeof(err_str[0]) ||
	    err_str[-err] == NULL) {
		return "unknown hsm error";
	}
	return err_str[-err];
}

void hsm_log(struct hsm *h, enum hsm_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (h == NULL || h->log == NULL) {
		return;
	}
	va_start(ap, fmt);
	/* va_start is right above; FORTIFY's wrapper confuses the analyzer. */
	vsnprintf(line, sizeof(line), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
	h->log(h->log_arg, level, line);
}

struct rv_entry {
	CK_RV rv;
	int err;
	bool fault; /* the token or session is gone: recover before the next request */
	const char *name;
};

static const struct rv_entry rv_table[] = {
    {CKR_OK, HSM_OK, false, "CKR_OK"},
    {CKR_HOST_MEMORY, HSM_E_NOMEM, false, "CKR_HOST_MEMORY"},
    {CKR_GENERAL_ERROR, HSM_E_DEVICE, false, "CKR_GENERAL_ERROR"},
    {CKR_ARGUMENTS_BAD, HSM_E_INVAL, false, "CKR_ARGUMENTS_BAD"},
    {CKR_PIN_INCORRECT, HSM_E_PIN_INCORRECT, false, "CKR_PIN_INCORRECT"},
    {CKR_PIN_INVALID, HSM_E_PIN_INCORRECT, false, "CKR_PIN_INVALID"},
    {CKR_PIN_LEN_RANGE, HSM_E_PIN_INCORRECT, false, "CKR_PIN_LEN_RANGE"},
    {CKR_PIN_EXPIRED, HSM_E_PIN_INCORRECT, false, "CKR_PIN_EXPIRED"},
    {CKR_PIN_LOCKED, HSM_E_PIN_LOCKED, false, "CKR_PIN_LOCKED"},
    {CKR_MECHANISM_INVALID, HSM_E_MECHANISM, false, "CKR_MECHANISM_INVALID"},
    {CKR_MECHANISM_PARAM_INVALID, HSM_E_MECHANISM, false, "CKR_MECHANISM_PARAM_INVALID"},
    {CKR_FUNCTION_NOT_SUPPORTED, HSM_E_MECHANISM, false, "CKR_FUNCTION_NOT_SUPPORTED"},
    {CKR_KEY_TYPE_INCONSISTENT, HSM_E_MECHANISM, false, "CKR_KEY_TYPE_INCONSISTENT"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, HSM_E_MECHANISM, false, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {CKR_KEY_UNEXTRACTABLE, HSM_E_NOT_EXTRACTABLE, false, "CKR_KEY_UNEXTRACTABLE"},
    {CKR_KEY_NOT_WRAPPABLE, HSM_E_NOT_EXTRACTABLE, false, "CKR_KEY_NOT_WRAPPABLE"},
    {CKR_ENCRYPTED_DATA_INVALID, HSM_E_AUTH, false, "CKR_ENCRYPTED_DATA_INVALID"},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, HSM_E_AUTH, false, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    {CKR_WRAPPED_KEY_INVALID, HSM_E_AUTH, false, "CKR_WRAPPED_KEY_INVALID"},
    {CKR_WRAPPED_KEY_LEN_RANGE, HSM_E_AUTH, false, "CKR_WRAPPED_KEY_LEN_RANGE"},
    {CKR_DATA_LEN_RANGE, HSM_E_RANGE, false, "CKR_DATA_LEN_RANGE"},
    {CKR_BUFFER_TOO_SMALL, HSM_E_BUFFER, false, "CKR_BUFFER_TOO_SMALL"},
    {CKR_TEMPLATE_INCONSISTENT, HSM_E_MECHANISM, false, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TEMPLATE_INCOMPLETE, HSM_E_MECHANISM, false, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_ATTRIBUTE_VALUE_INVALID, HSM_E_MECHANISM, false, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_DEVICE_MEMORY, HSM_E_DEVICE, false, "CKR_DEVICE_MEMORY"},
    {CKR_DEVICE_ERROR, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_REMOVED, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_DEVICE_REMOVED"},
    {CKR_TOKEN_NOT_PRESENT, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_TOKEN_NOT_RECOGNIZED, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_TOKEN_NOT_RECOGNIZED"},
    {CKR_SLOT_ID_INVALID, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_SLOT_ID_INVALID"},
    {CKR_SESSION_HANDLE_INVALID, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_SESSION_CLOSED, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_SESSION_CLOSED"},
    {CKR_USER_NOT_LOGGED_IN, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_KEY_HANDLE_INVALID, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_KEY_HANDLE_INVALID"},
    {CKR_OBJECT_HANDLE_INVALID, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, HSM_E_TOKEN_UNAVAILABLE, true, "CKR_CRYPTOKI_NOT_INITIALIZED"},
};

static const struct rv_entry *rv_lookup(CK_RV rv)
{
	for (size_t i = 0; i < sizeof(rv_table) / sizeof(rv_table[0]); i++) {
		if (rv_table[i].rv == rv) {
			return &rv_table[i];
		}
	}
	return NULL;
}

int hsm_rv_err(CK_RV rv)
{
	const struct rv_entry *e = rv_lookup(rv);

	return e != NULL ? e->err : HSM_E_DEVICE;
}

bool hsm_rv_is_fault(CK_RV rv)
{
	const struct rv_entry *e = rv_lookup(rv);

	return e != NULL && e->fault;
}

const char *hsm_rv_name(CK_RV rv)
{
	const struct rv_entry *e = rv_lookup(rv);

	return e != NULL ? e->name : "CKR_?";
}

int hsm_ck_fail(struct hsm *h, const char *what, CK_RV rv)
{
	hsm_log(h, hsm_rv_is_fault(rv) ? HSM_LOG_WARNING : HSM_LOG_ERROR, "%s: %s (0x%lx)", what,
		hsm_rv_name(rv), (unsigned long)rv);
	return hsm_rv_err(rv);
}
