/* Error strings and type names: the small fixed tables of libkmip. */
#include <string.h>

#include "keel/kmip.h"

const char *kmip_strerror(int err)
{
	switch (err) {
	case KMIP_OK:
		return "success";
	case KMIP_E_TRUNCATED:
		return "item truncated";
	case KMIP_E_TAG:
		return "tag out of range";
	case KMIP_E_TYPE:
		return "unknown or unexpected item type";
	case KMIP_E_LENGTH:
		return "wrong length for item type";
	case KMIP_E_PADDING:
		return "non-zero padding";
	case KMIP_E_BOOLEAN:
		return "Boolean not 0 or 1";
	case KMIP_E_UTF8:
		return "Text String not valid UTF-8";
	case KMIP_E_DEPTH:
		return "structures nested too deep";
	case KMIP_E_TOO_BIG:
		return "message too large";
	case KMIP_E_TRAILING:
		return "trailing bytes";
	case KMIP_E_UNEXPECTED:
		return "unexpected tag";
	case KMIP_E_MISSING:
		return "required field missing";
	case KMIP_E_NOMEM:
		return "out of memory";
	case KMIP_E_SYNTAX:
		return "syntax error";
	case KMIP_E_UNKNOWN_NAME:
		return "unknown name";
	case KMIP_E_RANGE:
		return "value out of range";
	case KMIP_E_STATE:
		return "invalid state";
	case KMIP_E_PLACEHOLDER:
		return "placeholder where a value is needed";
	default:
		return "unknown error";
	}
}

/* Indexed by type number; names as in the KMIP XML profile. */
static const char *const type_names[] = {
    [KMIP_TYPE_STRUCTURE] = "Structure",
    [KMIP_TYPE_INTEGER] = "Integer",
    [KMIP_TYPE_LONG_INTEGER] = "LongInteger",
    [KMIP_TYPE_BIG_INTEGER] = "BigInteger",
    [KMIP_TYPE_ENUMERATION] = "Enumeration",
    [KMIP_TYPE_BOOLEAN] = "Boolean",
    [KMIP_TYPE_TEXT_STRING] = "TextString",
    [KMIP_TYPE_BYTE_STRING] = "ByteString",
    [KMIP_TYPE_DATE_TIME] = "DateTime",
    [KMIP_TYPE_INTERVAL] = "Interval",
    [KMIP_TYPE_DATE_TIME_EXTENDED] = "DateTimeExtended",
};

#define NUM_TYPE_NAMES (sizeof(type_names) / sizeof(type_names[0]))

const char *kmip_type_name(uint8_t type)
{
	return type < NUM_TYPE_NAMES ? type_names[type] : NULL;
}

int kmip_type_by_name(const char *name, size_t name_len, uint8_t *out_type)
{
	for (size_t i = 1; i < NUM_TYPE_NAMES; i++) {
		if (strlen(type_names[i]) == name_len &&
		    memcmp(type_names[i], name, name_len) == 0) {
			*out_type = (uint8_t)i;
			return 0;
		}
	}
	return KMIP_E_UNKNOWN_NAME;
}
