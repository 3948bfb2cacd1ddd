/* struct mirror: configuration, the API key in locked memory, the curl handle. */
#include "mirror_int.h"
#include "wipe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* libcurl's buffers hold the API key (the token request) and the bearer
 * token (every request's header, the IAM answer): they are wiped on free. */
static void curl_init_once(void)
{
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, keel_wipe_free, keel_wipe_realloc,
				 strdup, calloc) != CURLE_OK) {
		keel_err("mirror: curl_global_init failed");
	}
}

static char *dup_or(const char *s, const char *dflt)
{
	const char *v = s != NULL ? s : dflt;

	return v != NULL ? strdup(v) : NULL;
}

static int read_api_key(struct mirror *m, const char *path)
{
	char why[128];

	if (hsm_secret_read_file(path, MIRROR_API_KEY_MAX, &m->api_key, why, sizeof(why)) != 0) {
		keel_err("mirror: API-key file %s: %s", path, why);
		return MIRROR_E_API_KEY_FILE;
	}
	return 0;
}

static uint32_t or_default(uint32_t v, uint32_t dflt)
{
	return v != 0 ? v : dflt;
}

int mirror_new(const struct mirror_config *cfg, struct mirror **out_m)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct mirror *m;
	int r;

	*out_m = NULL;
	if (cfg == NULL || cfg->instance_id == NULL || cfg->instance_id[0] == '\0' ||
	    cfg->api_key_file == NULL) {
		return MIRROR_E_INVAL;
	}
	pthread_once(&once, curl_init_once);
	mirror_json_wipe_on_free();
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		return MIRROR_E_NOMEM;
	}
	m->endpoint = dup_or(cfg->endpoint, MIRROR_DEFAULT_ENDPOINT);
	m->iam_url = dup_or(cfg->iam_url, MIRROR_DEFAULT_IAM_URL);
	m->instance_id = dup_or(cfg->instance_id, NULL);
	m->ca_bundle = dup_or(cfg->ca_bundle, NULL);
	m->timeout_ms = or_default(cfg->timeout_ms, 30000);
	m->max_retries = or_default(cfg->max_retries, 4);
	m->backoff_initial_ms = or_default(cfg->backoff_initial_ms, 1000);
	m->backoff_max_ms = or_default(cfg->backoff_max_ms, 30000);
	m->sleep = cfg->sleep != NULL ? cfg->sleep : mirror_default_sleep;
	m->sleep_arg = cfg->sleep_arg;
	m->exchange = mirror_http_exchange;
	if (m->endpoint == NULL || m->iam_url == NULL || m->instance_id == NULL ||
	    (cfg->ca_bundle != NULL && m->ca_bundle == NULL) ||
	    (m->curl = curl_easy_init()) == NULL) {
		r = MIRROR_E_NOMEM;
		goto fail;
	}
	if ((r = read_api_key(m, cfg->api_key_file)) != 0) {
		goto fail;
	}
	*out_m = m;
	return 0;
fail:
	mirror_free(m);
	return r;
}

void mirror_free(struct mirror *m)
{
	if (m == NULL) {
		return;
	}
	if (m->curl != NULL) {
		curl_easy_cleanup(m->curl);
	}
	hsm_secret_free(m->api_key);
	hsm_secret_free(m->token);
	free(m->endpoint);
	free(m->iam_url);
	free(m->instance_id);
	free(m->ca_bundle);
	explicit_bzero(m, sizeof(*m));
	free(m);
}

void mirror_get_stats(const struct mirror *m, struct mirror_stats *out)
{
	*out = m->stats;
}
