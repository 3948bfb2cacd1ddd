/*
 * The admin API's request bodies: bytes in, one route's handler, response
 * out, against a real store in a temporary directory and a SoftHSM2 token
 * (tests/unit/engine's fixture), made once per process.
 *
 * Input: one byte picks the route (of those that read a body), the bytes up
 * to the first '\n' are its {placeholder}, the rest is the body. Oracle: the
 * handler answers a status from 200 to 599 with a JSON object that prints,
 * and every refusal (4xx) says why in "error".
 *
 * No [pki] section: the routes that would make RSA keys stop at "keeld has
 * no CA" (409) after parsing their body, so the fuzzer stays fast.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "admin_int.h"
#include "engine_fixture.h"
#include "keel/clients.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The routes whose handlers read a request body (http.c's admin_body and
 * admin_body_bytes); each must be in admin_routes[]. */
static const char *const body_routes[][2] = {
    {"POST", "/v1/keys/{uid}/revoke"}, {"POST", "/v1/grants"},	      {"POST", "/v1/grants/revoke"},
    {"POST", "/v1/backup/verify"},     {"POST", "/v1/clients"},	      {"POST", "/v1/clients/csr"},
    {"POST", "/v1/clients/issue"},     {"PATCH", "/v1/clients/{id}"}, {"POST", "/v1/cas"},
    {"POST", "/v1/server-cert/renew"}, {"POST", "/v1/enrol"},
};
#define NUM_BODY_ROUTES (sizeof(body_routes) / sizeof(body_routes[0]))

static struct engine_fx *fx;
static struct admin_ctx ctx;
static admin_handler_fn handlers[NUM_BODY_ROUTES];

static admin_handler_fn find_handler(const char *method, const char *path)
{
	for (size_t i = 0; i < admin_num_routes; i++) {
		if (strcmp(admin_routes[i].method, method) == 0 &&
		    strcmp(admin_routes[i].path, path) == 0) {
			return admin_routes[i].handler;
		}
	}
	abort(); /* the route table changed: update body_routes */
}

/* At exit: the token's and the store's temporary directories go too. */
static void teardown(void)
{
	keel_clients_free(ctx.clients);
	engine_fx_free(fx);
}

static void setup(void)
{
	keel_log_init(KEEL_LOG_ERROR);
	/* Registering a client asks keeld to reload with SIGHUP. */
	signal(SIGHUP, SIG_IGN);
	fx = engine_fx_new();
	ctx.store = keel_engine_store(fx->e);
	ctx.engine = fx->e;
	ctx.hsm = fx->hsm;
	ctx.version = "fuzz";
	if (keel_clients_new(ctx.store, &ctx.clients) != 0 || atexit(teardown) != 0) {
		abort();
	}
	for (size_t i = 0; i < NUM_BODY_ROUTES; i++) {
		handlers[i] = find_handler(body_routes[i][0], body_routes[i][1]);
	}
}

static void check_answer(int status, const struct admin_req *rq)
{
	const char *error = json_string_value(json_object_get(rq->out, "error"));
	char *printed = json_dumps(rq->out, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (status < 200 || status > 599 || !json_is_object(rq->out) || printed == NULL ||
	    (status >= 400 && (error == NULL || error[0] == '\0'))) {
		abort();
	}
	free(printed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct admin_req rq = {.ctx = &ctx, .role = KEEL_ROLE_ADMIN, .who = "fuzz"};
	const uint8_t *nl;
	char *param;
	int status;

	if (!ready) {
		setup();
		ready = true;
	}
	if (size == 0 || (nl = memchr(data + 1, '\n', size - 1)) == NULL) {
		return 0;
	}
	if ((rq.http = evhttp_request_new(NULL, NULL)) == NULL ||
	    (param = strndup((const char *)data + 1, (size_t)(nl - data - 1))) == NULL) {
		abort();
	}
	rq.params[0] = param;
	if (evbuffer_add(evhttp_request_get_input_buffer(rq.http), nl + 1,
			 size - (size_t)(nl + 1 - data)) != 0) {
		abort();
	}
	status = handlers[data[0] % NUM_BODY_ROUTES](&rq);
	check_answer(status, &rq);
	json_decref(rq.out);
	free(rq.text);
	free(param);
	evhttp_request_free(rq.http);
	return 0;
}
