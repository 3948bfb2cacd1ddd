/*
 * The Key Protect emulator (tests/keyprotect-emulator) as a real process on
 * loopback for C tests: started per test, its port read from its first
 * lines, driven through its control endpoint over real TLS.
 */
#ifndef KEEL_KPEMU_FIXTURE_H
#define KEEL_KPEMU_FIXTURE_H

#include <stdint.h>
#include <sys/types.h>

#include <keel/mirror.h>

#define KPEMU_INSTANCE "12e8c9c2-a162-472d-b7d6-8b9a86b815a6"
#define KPEMU_APIKEY   "kpemu-test-api-key-6f1d2c"

struct kpemu {
	pid_t pid;
	char dir[64];		/* temporary directory: TLS files, API-key file */
	char url[64];		/* https://127.0.0.1:PORT */
	char iam_url[96];	/* url + /identity/token */
	char ca[128];		/* dir/ca.crt */
	char api_key_file[128]; /* dir/apikey, mode 0600 */
};

/* Starts the emulator (path in $KEEL_KPEMU) with KPEMU_APIKEY; 0 or -1. */
int kpemu_start(struct kpemu *e);
void kpemu_stop(struct kpemu *e);

/* A client configuration for this emulator (its URLs, CA, API-key file). */
struct mirror_config kpemu_mirror_config(const struct kpemu *e);

/* A control request (POST unless method says otherwise); returns the HTTP
 * status, and the body in *out_body (malloc'd) when out_body is not NULL. */
long kpemu_control(struct kpemu *e, const char *method, const char *what, const char *json,
		   char **out_body);

#endif
