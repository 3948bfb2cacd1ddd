/*
 * Secrets come from files, never from the configuration itself: the token's
 * user PIN here, and other modules' secrets (the Key Protect API key) through
 * hsm_secret_read_file. The file must be a regular file owned by the effective
 * user with no group or other permission bits (0600 or stricter), so a secret
 * left readable by others is refused rather than used. It goes straight into
 * locked memory.
 */
#include "hsm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIN_MAX 256

static int secret_check_file(int fd, char *why, size_t why_len)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "not a regular file");
		return HSM_E_PIN_FILE;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, why_len, "owned by uid %u, not by uid %u", (unsigned)st.st_uid,
			 (unsigned)geteuid());
		return HSM_E_PIN_FILE;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(why, why_len, "mode %04o, must be 0600 or stricter",
			 (unsigned)(st.st_mode & 07777));
		return HSM_E_PIN_FILE;
	}
	return 0;
}

/* Reads the whole file into buf (cap bytes); *out_len == cap means too long. */
static int secret_read_all(int fd, uint8_t *buf, size_t cap, size_t *out_len)
{
	size_t len = 0;
	ssize_t n;

	while (len < cap) {
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return HSM_E_PIN_FILE;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	*out_len = len;
	return 0;
}

/* The file's content without trailing newlines, into a secret of its size. */
static int secret_load(int fd, size_t max_len, struct hsm_secret **out_secret, char *why,
		       size_t why_len)
{
	struct hsm_secret *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = hsm_secret_new(max_len + 1, &buf)) != 0) {
		snprintf(why, why_len, "out of locked memory");
		return r;
	}
	if ((r = secret_read_all(fd, hsm_secret_data(buf), max_len + 1, &len)) != 0 ||
	    len > max_len) {
		snprintf(why, why_len, "unreadable or longer than %zu bytes", max_len);
		r = HSM_E_PIN_FILE;
		goto out;
	}
	/* Trailing newlines (as echo and editors leave) are not part of the secret. */
	while (len > 0 &&
	       (hsm_secret_data(buf)[len - 1] == '\n' || hsm_secret_data(buf)[len - 1] == '\r')) {
		len--;
	}
	if (len == 0) {
		snprintf(why, why_len, "empty");
		r = HSM_E_PIN_FILE;
		goto out;
	}
	if ((r = hsm_secret_new(len, out_secret)) != 0) {
		snprintf(why, why_len, "out of locked memory");
		goto out;
	}
	memcpy(hsm_secret_data(*out_secret), hsm_secret_data(buf), len);
out:
	hsm_secret_free(buf);
	return r;
}

int hsm_secret_read_file(const char *path, size_t max_len, struct hsm_secret **out_secret,
			 char *why, size_t why_len)
{
	int fd, r;

	*out_secret = NULL;
	if (path == NULL || max_len == 0 || max_len >= HSM_MAX_KEY_LEN) {
		snprintf(why, why_len, "bad argument");
		return HSM_E_INVAL;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(why, why_len, "%s", strerror(errno));
		return HSM_E_PIN_FILE;
	}
	if ((r = secret_check_file(fd, why, why_len)) == 0) {
		r = secret_load(fd, max_len, out_secret, why, why_len);
	}
	close(fd);
	return r;
}

int hsm_pin_read(struct hsm *h, const char *path, struct hsm_secret **out_pin)
{
	char why[128];
	int r;

	if ((r = hsm_secret_read_file(path, PIN_MAX, out_pin, why, sizeof(why))) != 0) {
		hsm_log(h, HSM_LOG_ERROR, "PIN file %s: %s", path, why);
	}
	return r;
}

int hsm_set_pin(struct hsm *h, const char *new_pin_file)
{
	struct hsm_secret *pin = NULL;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int r;

	if (h == NULL || new_pin_file == NULL) {
		return HSM_E_INVAL;
	}
	if ((r = hsm_pin_read(h, new_pin_file, &pin)) != 0) {
		return r;
	}
	/* Exclusive: no other call logs in with the old PIN meanwhile. */
	if ((r = hsm_excl_begin(h, &s)) != 0) {
		hsm_secret_free(pin);
		return r;
	}
	rv = h->p11->C_SetPIN(s, hsm_secret_data(h->pin), (CK_ULONG)hsm_secret_len(h->pin),
			      hsm_secret_data(pin), (CK_ULONG)hsm_secret_len(pin));
	if (rv == CKR_OK) {
		hsm_secret_free(h->pin);
		h->pin = pin;
		pin = NULL;
		hsm_log(h, HSM_LOG_INFO, "the token's user PIN was changed");
		r = 0;
	} else if (rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID) {
		hsm_log(h, HSM_LOG_ERROR, "C_SetPIN: the token refused the new PIN (%s)",
			hsm_rv_name(rv));
		r = HSM_E_INVAL;
	} else {
		r = hsm_ck_fail(h, "C_SetPIN", rv);
	}
	hsm_excl_end(h, rv);
	hsm_secret_free(pin);
	return r;
}
