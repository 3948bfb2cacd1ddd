/*
 * keeld's log: one line per event on stderr. Under systemd (JOURNAL_STREAM
 * names our stderr) each line starts with a syslog priority "<N>" that
 * journald turns into the entry's priority; elsewhere a level word.
 * Thread-safe: each line is one write(2).
 */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#include <stdbool.h>

/* Values are syslog priorities (RFC 5424), which journald understands. */
enum keel_log_level {
	KEEL_LOG_ERROR = 3,
	KEEL_LOG_WARNING = 4,
	KEEL_LOG_NOTICE = 5,
	KEEL_LOG_INFO = 6,
	KEEL_LOG_DEBUG = 7,
};

/* Decides the line format from the environment (JOURNAL_STREAM) and sets the level. */
void keel_log_init(enum keel_log_level level);
void keel_log_set_level(enum keel_log_level level);
bool keel_log_enabled(enum keel_log_level level);

/* Parses "error", "warning", "notice", "info", "debug"; 0 or -1. */
__attribute__((warn_unused_result)) int keel_log_level_parse(const char *name,
							     enum keel_log_level *out_level);
const char *keel_log_level_name(enum keel_log_level level);

__attribute__((format(printf, 2, 3))) void keel_log(enum keel_log_level level, const char *fmt,
						    ...);

#define keel_err(...)	 keel_log(KEEL_LOG_ERROR, __VA_ARGS__)
#define keel_warn(...)	 keel_log(KEEL_LOG_WARNING, __VA_ARGS__)
#define keel_notice(...) keel_log(KEEL_LOG_NOTICE, __VA_ARGS__)
#define keel_info(...)	 keel_log(KEEL_LOG_INFO, __VA_ARGS__)
#define keel_debug(...)	 keel_log(KEEL_LOG_DEBUG, __VA_ARGS__)

#endif
