/*
 * The user PIN comes from a file, never from the configuration itself. The
 * file must be a regular file owned by the effective user with no group or
 * other permission bits (0600 or stricter), so a PIN left readable by others is
 * refused rather than used. The PIN goes straight into locked memory.
 */
#include "hsm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIN_MAX 256

static int pin_check_file(struct hsm *h, int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		hsm_log(h, HSM_LOG_ERROR, "PIN file %s: not a regular file", path);
		return HSM_E_PIN_FILE;
	}
	if (st.st_uid != geteuid()) {
		hsm_log(h, HSM_LOG_ERROR, "PIN file %s: owned by uid %u, not by uid %u", path,
			(unsigned)st.st_uid, (unsigned)geteuid());
		return HSM_E_PIN_FILE;
	}
	if ((st.st_mode & 077) != 0) {
		hsm_log(h, HSM_LOG_ERROR, "PIN file %s: mode %04o, must be 0600 or stricter", path,
			(unsigned)(st.st_mode & 07777));
		return HSM_E_PIN_FILE;
	}
	return 0;
}

/* Reads the whole file into buf; fails if it holds more than PIN_MAX bytes. */
static int pin_read_all(int fd, uint8_t *buf, size_t cap, size_t *out_len)
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
	if (len > PIN_MAX) {
		return HSM_E_PIN_FILE;
	}
	*out_len = len;
	return 0;
}

int hsm_pin_read(struct hsm *h, const char *path, struct hsm_secret **out_pin)
{
	struct hsm_secret *buf = NULL, *pin = NULL;
	size_t len = 0;
	int fd = -1, r;

	*out_pin = NULL;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)) < 0) {
		hsm_log(h, HSM_LOG_ERROR, "PIN file %s: %s", path, strerror(errno));
		r = HSM_E_PIN_FILE;
		goto out;
	}
	if ((r = pin_check_file(h, fd, path)) != 0 ||
	    (r = hsm_secret_new(PIN_MAX + 1, &buf)) != 0) {
		goto out;
	}
	if ((r = pin_read_all(fd, hsm_secret_data(buf), PIN_MAX + 1, &len)) != 0) {
		hsm_log(h, HSM_LOG_ERROR, "PIN file %s: unreadable or longer than %d bytes", path,
			PIN_MAX);
		goto out;
	}
	/* Trailing newlines (as echo and editors leave) are not part of the PIN. */
	while (len > 0 &&
	       (hsm_secret_data(buf)[len - 1] == '\n' || hsm_secret_data(buf)[len - 1] == '\r')) {
		len--;
	}
	if (len == 0) {
		hsm_log(h, HSM_LOG_ERROR, "PIN file %s: empty", path);
		r = HSM_E_PIN_FILE;
		goto out;
	}
	if ((r = hsm_secret_new(len, &pin)) != 0) {
		goto out;
	}
	memcpy(hsm_secret_data(pin), hsm_secret_data(buf), len);
	*out_pin = pin;
	pin = NULL;
out:
	hsm_secret_free(buf);
	hsm_secret_free(pin);
	if (fd >= 0) {
		close(fd);
	}
	return r;
}
