/* Query strings and dates for the admin API's GET routes (api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

int keelctl_query_add(char *buf, size_t cap, const char *key, const char *value)
{
	char *esc;
	size_t n = strlen(buf);
	int w;

	if (value == NULL) {
		return 0;
	}
	if ((esc = curl_easy_escape(NULL, value, 0)) == NULL) {
		return -1;
	}
	w = snprintf(buf + n, cap - n, "%c%s=%s", strchr(buf, '?') != NULL ? '&' : '?', key, esc);
	curl_free(esc);
	return w < 0 || (size_t)w >= cap - n ? -1 : 0;
}

int keelctl_path_add(char *buf, size_t cap, const char *segment)
{
	char *esc = curl_easy_escape(NULL, segment, 0);
	size_t n = strlen(buf);
	int w;

	if (esc == NULL) {
		return -1;
	}
	w = snprintf(buf + n, cap - n, "%s", esc);
	curl_free(esc);
	return w < 0 || (size_t)w >= cap - n ? -1 : 0;
}

int keelctl_parse_time(const char *s, long long *out)
{
	static const char *const formats[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S",
					      "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"};
	char *end = NULL;
	long long n = strtoll(s, &end, 10);

	if (*s != '\0' && *end == '\0' && n >= 0) {
		*out = n;
		return 0;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tm tm = {0};
		const char *rest = strptime(s, formats[i], &tm);

		if (rest != NULL && *rest == '\0') {
			*out = (long long)timegm(&tm);
			return 0;
		}
	}
	return -1;
}

const char *keelctl_format_time(long long t, char buf[static 24])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, 24, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		return "-";
	}
	return buf;
}
