/* keeld.conf (libconfig text and keeld's checks on it): any input is either
 * a configuration or one error with a line in range and a terminated reason. */
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5 (Debian 12) leaks what its scanner holds when a syntax error
 * stops it (regressions/fuzz_config/libconfig-*-leak); config_destroy cannot
 * reach those. Only the scanner's allocation sites are excused. */
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keel_config_error err;
	struct keel_config *cfg = NULL;
	char *text = malloc(size + 1);
	size_t lines = 1;

	if (text == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i < size; i++) {
		lines += data[i] == '\n';
	}
	/* Relative paths resolve under a directory that does not exist. */
	if (keel_config_load_string(text, "fuzz.conf", "/nonexistent/keel-fuzz", &cfg, &err) == 0) {
		if (cfg == NULL || cfg->num_listen > KEEL_LISTEN_MAX) {
			abort();
		}
		keel_config_free(cfg);
	} else if (err.line < 0 || (size_t)err.line > lines ||
		   memchr(err.reason, '\0', sizeof(err.reason)) == NULL) {
		abort();
	}
	free(text);
	return 0;
}
