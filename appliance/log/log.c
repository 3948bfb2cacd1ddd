#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int log_level = KEEL_LOG_INFO;
static atomic_bool log_journal;

static const char *const level_names[] = {
    [KEEL_LOG_ERROR] = "error", [KEEL_LOG_WARNING] = "warning", [KEEL_LOG_NOTICE] = "notice",
    [KEEL_LOG_INFO] = "info",	[KEEL_LOG_DEBUG] = "debug",
};

/* systemd sets JOURNAL_STREAM to "dev:ino" of the stream it connected; only
 * when our stderr is that very stream do we speak its "<N>" prefix format. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (env == NULL) {
		return false;
	}
	errno = 0;
	dev = strtoull(env, &end, 10);
	if (errno != 0 || end == env || *end != ':') {
		return false;
	}
	env = end + 1;
	ino = strtoull(env, &end, 10);
	if (errno != 0 || end == env || *end != '\0') {
		return false;
	}
	if (fstat(STDERR_FILENO, &st) != 0) {
		return false;
	}
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void keel_log_init(enum keel_log_level level)
{
	atomic_store(&log_journal, stderr_is_journal());
	keel_log_set_level(level);
}

void keel_log_set_level(enum keel_log_level level)
{
	atomic_store(&log_level, (int)level);
}

bool keel_log_enabled(enum keel_log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

int keel_log_level_parse(const char *name, enum keel_log_level *out_level)
{
	for (int l = KEEL_LOG_ERROR; l <= KEEL_LOG_DEBUG; l++) {
		if (strcmp(name, level_names[l]) == 0) {
			*out_level = (enum keel_log_level)l;
			return 0;
		}
	}
	return -1;
}

const char *keel_log_level_name(enum keel_log_level level)
{
	if (level < KEEL_LOG_ERROR || level > KEEL_LOG_DEBUG) {
		return "?";
	}
	return level_names[level];
}

void keel_log(enum keel_log_level level, const char *fmt, ...)
{
	char msg[1900], line[2048];
	va_list ap;
	int n;

	if (!keel_log_enabled(level)) {
		return;
	}
	/* A message too long for one line is cut; it stays one line. */
	va_start(ap, fmt);
	/* clang 14's analyzer reports ap as uninitialised when a caller passes
	 * no variadic arguments; va_start just above initialises it. */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0) {
		msg[0] = '\0';
	}
	va_end(ap);
	if (atomic_load(&log_journal)) {
		n = snprintf(line, sizeof(line), "<%d>%s\n", (int)level, msg);
	} else {
		n = snprintf(line, sizeof(line), "keeld: %s: %s\n", keel_log_level_name(level),
			     msg);
	}
	if (n < 0 || (size_t)n >= sizeof(line)) {
		return;
	}
	/* One write per line so lines from worker threads never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		return;
	}
}
