/*
 * keel_echo_server: keeld's daemon loop with a test handler instead of the
 * KMIP engine. It answers every frame with the frame itself, so the tests
 * see exactly what the server framed. A frame whose body contains "HOLD"
 * is held: the handler prints "HOLD" on stdout and waits for a line on stdin,
 * which lets a test have a request in flight at a moment it chooses; held
 * requests on several workers each print theirs and each take one line.
 * "READY <port>..." on stdout says every listener is bound.
 * usage: keel_echo_server CONFIG
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

static bool wants_hold(const uint8_t *req, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++) {
		if (memcmp(req + i, "HOLD", 4) == 0) {
			return true;
		}
	}
	return false;
}

static void echo(void *ctx, const struct keel_client_identity *who, const uint8_t *req,
		 size_t req_len, keel_reply_fn reply, void *reply_ctx)
{
	char line[16];

	if (wants_hold(req, req_len)) {
		/* stdio locks each stream per call: whole lines out and in. */
		flockfile(stdout);
		printf("HOLD %s\n", who->fingerprint_hex);
		fflush(stdout);
		funlockfile(stdout);
		if (fgets(line, sizeof(line), stdin) == NULL) {
			line[0] = '\0';
		}
	}
	reply(reply_ctx, req, req_len);
}

static void ready(struct keel_server *srv, const struct keel_config *cfg, void *arg)
{
	uint16_t port;

	printf("READY");
	for (size_t i = 0; i < cfg->num_listen; i++) {
		if (keel_server_port(srv, i, &port) == 0) {
			printf(" %u", port);
		}
	}
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct keel_daemon_opts opts = {.handler = echo, .on_ready = ready};

	if (argc != 2) {
		fprintf(stderr, "usage: keel_echo_server CONFIG\n");
		return 2;
	}
	opts.config_path = argv[1];
	keel_log_init(KEEL_LOG_INFO);
	return keel_daemon_run(&opts);
}
