/*
 * Shared SoftHSM2 fixture for the hsm tests: a fresh token in a temporary
 * directory (its own softhsm2.conf, SOFTHSM2_CONF pointing at it), a PIN file,
 * a log sink that keeps every line so tests can check what was (not) logged.
 */
#ifndef KEEL_SOFTHSM_FIXTURE_H
#define KEEL_SOFTHSM_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "keel/hsm.h"

#define FIXTURE_PIN    "keel-test-pin-8472"
#define FIXTURE_SO_PIN "keel-test-so-5150"
#define FIXTURE_LABEL  "keel-test"

struct softhsm_fixture {
	char dir[200];	  /* temporary directory, removed by teardown */
	char tokens[300]; /* SoftHSM token directory */
	char hidden[300]; /* where fixture_token_hide moves the token's directory */
	char token_sub[600];
	char pin_file[300];
	char log[16384]; /* every log line, newline-separated */
	size_t log_len;
};

/* Allocates and sets up a fixture with an initialized token; NULL on failure. */
struct softhsm_fixture *fixture_new(void);
void fixture_free(struct softhsm_fixture *f);

/* A config for the fixture's token: module by path, no backoff, logging to f. */
void fixture_config(struct softhsm_fixture *f, struct hsm_config *out_cfg);

/* Opens a handle on the fixture's token (asserts success). */
struct hsm *fixture_open(struct softhsm_fixture *f, enum hsm_wrap_mode mode);

/* Writes text to path with the given mode (asserts success). */
void fixture_write_file(const char *path, const char *text, unsigned mode);

/* Moves the token's directory away (the token "disappears") and back. */
void fixture_token_hide(struct softhsm_fixture *f);
void fixture_token_restore(struct softhsm_fixture *f);
/* The whole token directory away and back: SoftHSM's C_Initialize then fails. */
void fixture_tokens_hide(struct softhsm_fixture *f);
void fixture_tokens_restore(struct softhsm_fixture *f);

/* True if needle occurs anywhere in what was logged. */
bool fixture_logged(const struct softhsm_fixture *f, const char *needle);

/* The SoftHSM2 module's path (from CMake, or $KEEL_SOFTHSM2_MODULE). */
const char *fixture_module_path(void);

#endif
