/* Helpers for the Key Protect client: base64, wiping, jansson's allocator, UUIDs. */
#include "mirror_int.h"
#include "wipe.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void mirror_free_wiped(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

char *mirror_b64_encode(const uint8_t *data, size_t len)
{
	char *out;

	if (len > (size_t)INT32_MAX / 2 || (out = malloc((len + 2) / 3 * 4 + 1)) == NULL) {
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

long mirror_b64_decoded_len(const char *text)
{
	size_t len = strlen(text), pad = 0;

	if (len == 0 || len % 4 != 0 || len > (size_t)INT32_MAX / 2) {
		return -1;
	}
	pad = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
	if (strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") !=
	    len - pad) {
		return -1;
	}
	return (long)(len / 4 * 3 - pad);
}

/* EVP_DecodeBlock writes whole quanta, padding included: decode into a
 * scratch secret of that size, then keep the exact length. */
static int b64_decode_scratch(const char *text, struct hsm_secret **out_scratch, long *out_len)
{
	size_t len = strlen(text);

	if ((*out_len = mirror_b64_decoded_len(text)) <= 0) {
		return MIRROR_E_PROTOCOL;
	}
	if (len / 4 * 3 > HSM_MAX_KEY_LEN || hsm_secret_new(len / 4 * 3, out_scratch) != 0) {
		return MIRROR_E_NOMEM;
	}
	if (EVP_DecodeBlock(hsm_secret_data(*out_scratch), (const unsigned char *)text, (int)len) <
	    0) {
		hsm_secret_free(*out_scratch);
		*out_scratch = NULL;
		return MIRROR_E_PROTOCOL;
	}
	return 0;
}

int mirror_b64_decode_secret(const char *text, struct hsm_secret **out)
{
	struct hsm_secret *scratch = NULL;
	long len;
	int r;

	*out = NULL;
	if ((r = b64_decode_scratch(text, &scratch, &len)) != 0) {
		return r;
	}
	if (hsm_secret_new((size_t)len, out) != 0) {
		r = MIRROR_E_NOMEM;
	} else {
		memcpy(hsm_secret_data(*out), hsm_secret_data(scratch), (size_t)len);
	}
	hsm_secret_free(scratch);
	return r;
}

int mirror_b64_decode(const char *text, uint8_t *out, size_t out_len)
{
	struct hsm_secret *scratch = NULL;
	long len;
	int r;

	if ((r = b64_decode_scratch(text, &scratch, &len)) != 0) {
		return r;
	}
	if ((size_t)len != out_len) {
		r = MIRROR_E_PROTOCOL;
	} else {
		memcpy(out, hsm_secret_data(scratch), out_len);
	}
	hsm_secret_free(scratch);
	return r;
}

static void json_install(void)
{
	json_set_alloc_funcs(malloc, keel_wipe_free); /* an IAM token or the API key */
}

void mirror_json_wipe_on_free(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, json_install);
}

int mirror_uuid(char out[37])
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		return MIRROR_E_INVAL;
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

const char *mirror_strerror(int err)
{
	static const char *const text[] = {
	    "success",
	    "invalid argument or configuration",
	    "out of memory",
	    "Key Protect or IAM refused the credentials",
	    "no such key in Key Protect",
	    "the key is deleted in Key Protect",
	    "Key Protect refused it in the key's current state",
	    "Key Protect refused the request",
	    "Key Protect is unavailable",
	    "unexpected answer from Key Protect",
	    "API-key file missing, unreadable, too open or empty",
	};

	if (err > 0 || -err >= (int)(sizeof(text) / sizeof(text[0]))) {
		return "unknown error";
	}
	return text[-err];
}

/* Characters of a uid that a Key Protect name carries as they are. */
static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

int mirror_escrow_name(const char *uid, char out[MIRROR_NAME_LEN])
{
	size_t len = uid != NULL ? strnlen(uid, MIRROR_ESCROW_UID_MAX + 1) : 0;

	out[0] = '\0';
	if (len == 0 || len > MIRROR_ESCROW_UID_MAX) {
		return MIRROR_E_INVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!name_char(uid[i])) {
			return MIRROR_E_INVAL;
		}
	}
	snprintf(out, MIRROR_NAME_LEN, MIRROR_ESCROW_PREFIX "%s", uid);
	return 0;
}

const char *mirror_escrow_uid(const char *name)
{
	const size_t plen = sizeof(MIRROR_ESCROW_PREFIX) - 1;
	char check[MIRROR_NAME_LEN];

	if (name == NULL || strncmp(name, MIRROR_ESCROW_PREFIX, plen) != 0 ||
	    mirror_escrow_name(name + plen, check) != 0) {
		return NULL;
	}
	return name + plen;
}
