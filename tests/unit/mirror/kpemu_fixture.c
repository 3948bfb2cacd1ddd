#include "kpemu_fixture.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_api_key(struct kpemu *e)
{
	int fd = open(e->api_key_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0) {
		return -1;
	}
	n = write(fd, KPEMU_APIKEY "\n", sizeof(KPEMU_APIKEY));
	close(fd);
	return n == (ssize_t)sizeof(KPEMU_APIKEY) ? 0 : -1;
}

/* Reads the emulator's stdout up to "listening on https://127.0.0.1:PORT". */
static int wait_ready(struct kpemu *e, int fd)
{
	FILE *f = fdopen(fd, "r");
	char line[256];
	int port = -1;

	if (f == NULL) {
		close(fd);
		return -1;
	}
	while (port < 0 && fgets(line, sizeof(line), f) != NULL) {
		const char *p = strstr(line, "listening on https://127.0.0.1:");

		if (p != NULL) {
			port = atoi(p + strlen("listening on https://127.0.0.1:"));
		}
	}
	fclose(f); /* the emulator prints nothing more on stdout */
	if (port <= 0) {
		return -1;
	}
	snprintf(e->url, sizeof(e->url), "https://127.0.0.1:%d", port);
	snprintf(e->iam_url, sizeof(e->iam_url), "%s/identity/token", e->url);
	return 0;
}

int kpemu_start(struct kpemu *e)
{
	const char *script = getenv("KEEL_KPEMU");
	int pipefd[2];

	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/kpemu-c-XXXXXX");
	if (script == NULL || mkdtemp(e->dir) == NULL || pipe(pipefd) != 0) {
		return -1;
	}
	snprintf(e->ca, sizeof(e->ca), "%s/ca.crt", e->dir);
	snprintf(e->api_key_file, sizeof(e->api_key_file), "%s/apikey", e->dir);
	if (write_api_key(e) != 0 || (e->pid = fork()) < 0) {
		return -1;
	}
	if (e->pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execl("/usr/bin/python3", "python3", script, "--tls-dir", e->dir, "--apikey",
		      KPEMU_APIKEY "=iam-ServiceId-keel", "--apikey", "other-key=iam-ServiceId-2",
		      (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	return wait_ready(e, pipefd[0]);
}

void kpemu_stop(struct kpemu *e)
{
	char cmd[128];

	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		waitpid(e->pid, NULL, 0);
		e->pid = 0;
	}
	if (e->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "kpemu: could not remove %s\n", e->dir);
		}
	}
}

struct sink {
	char *data;
	size_t len;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	char *grown = realloc(s->data, s->len + size * nmemb + 1);

	if (grown == NULL) {
		return 0;
	}
	memcpy(grown + s->len, data, size * nmemb);
	s->len += size * nmemb;
	grown[s->len] = '\0';
	s->data = grown;
	return size * nmemb;
}

long kpemu_control(struct kpemu *e, const char *method, const char *what, const char *json,
		   char **out_body)
{
	CURL *c = curl_easy_init();
	struct sink s = {0};
	char url[160];
	long status = -1;

	snprintf(url, sizeof(url), "%s/_emulator/%s", e->url, what);
	if (c == NULL) {
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, e->ca);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json != NULL ? json : "");
	}
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	}
	curl_easy_cleanup(c);
	if (out_body != NULL) {
		*out_body = s.data;
	} else {
		free(s.data);
	}
	return status;
}

struct mirror_config kpemu_mirror_config(const struct kpemu *e)
{
	return (struct mirror_config){
	    .endpoint = e->url,
	    .iam_url = e->iam_url,
	    .instance_id = KPEMU_INSTANCE,
	    .api_key_file = e->api_key_file,
	    .ca_bundle = e->ca,
	};
}
