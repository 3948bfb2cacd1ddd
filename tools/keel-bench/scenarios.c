/*
 * The scenarios of issue 7: each is a setup (what must exist first) and one
 * timed operation, registered in a const table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "bench_int.h"

int kbench_phase_end(struct kbench_worker *w, enum kbench_phase p, int err)
{
	uint64_t now;

	if (err == 0) {
		now = kbench_now_ns();
		w->phases.ns[p] += now - w->mark_ns;
		w->phases.n[p]++;
		w->mark_ns = now;
	}
	return err;
}

int kbench_connect(struct kbench_worker *w, struct kmipc_conn **out)
{
	int err;

	w->mark_ns = kbench_now_ns();
	if ((err = kmipc_connect(w->sh->ctx, w->session, out)) == 0) {
		w->handshakes++;
		w->resumed += kmipc_resumed(*out);
	}
	return kbench_phase_end(w, KBENCH_PHASE_CONNECT, err);
}

void kbench_disconnect(struct kbench_worker *w, struct kmipc_conn *c)
{
	void *session = NULL;

	kmipc_close(c, w->sh->opts->resumption ? &session : NULL);
	if (session != NULL) {
		SSL_SESSION_free(w->session);
		w->session = session;
	}
}

/* xorshift64*: cheap, per thread, good enough to pick keys. */
static uint64_t next_random(struct kbench_worker *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ull;
}

/* The key the |w|'s current operation uses: round-robin from a per-thread start. */
static const char *pick_uid(const struct kbench_worker *w)
{
	return w->sh->uids[(w->index + w->seq) % w->sh->num_uids];
}

static int make_keys(struct kbench_shared *sh, struct kmipc_conn *c, size_t n,
		     struct kmipc_result *res)
{
	int err = 0;

	if ((sh->uids = calloc(n, sizeof(*sh->uids))) == NULL) {
		return KMIPC_E_NOMEM;
	}
	for (size_t i = 0; i < n && err == 0; i++) {
		err = kmipc_create_aes256(c, NULL, sh->uids[i], res);
		sh->num_uids = i + 1;
	}
	return err;
}

static int setup_keys(struct kbench_shared *sh, struct kmipc_conn *c, struct kmipc_result *res)
{
	return make_keys(sh, c, KBENCH_SETUP_KEYS, res);
}

static int setup_storm(struct kbench_shared *sh, struct kmipc_conn *c, struct kmipc_result *res)
{
	return make_keys(sh, c, sh->opts->keys, res);
}

static void object_name(const struct kbench_shared *sh, uint64_t i, char *out, size_t len)
{
	snprintf(out, len, "%s-%llu", sh->name_prefix, (unsigned long long)i);
}

static int setup_locate(struct kbench_shared *sh, struct kmipc_conn *c, struct kmipc_result *res)
{
	char name[KBENCH_NAME_MAX + 24], uid[KMIPC_UID_MAX];
	int err = 0;

	for (unsigned i = 0; i < sh->opts->objects && err == 0; i++) {
		object_name(sh, i, name, sizeof(name));
		err = kmipc_create_aes256(c, name, uid, res);
	}
	return err;
}

static int op_get(struct kbench_worker *w, struct kmipc_result *res)
{
	return kmipc_get(w->conn, pick_uid(w), res);
}

static int op_create(struct kbench_worker *w, struct kmipc_result *res)
{
	char uid[KMIPC_UID_MAX];

	return kmipc_create_aes256(w->conn, NULL, uid, res);
}

static int op_mixed(struct kbench_worker *w, struct kmipc_result *res)
{
	const struct kbench_opts *o = w->sh->opts;

	if (next_random(w) % (o->ratio_get + o->ratio_create) < o->ratio_get) {
		return op_get(w, res);
	}
	return op_create(w, res);
}

/* A name made by setup: exactly one object must answer to it. */
static int op_locate(struct kbench_worker *w, struct kmipc_result *res)
{
	char name[KBENCH_NAME_MAX + 24], uid[KMIPC_UID_MAX];
	size_t found;
	int err;

	object_name(w->sh, next_random(w) % w->sh->opts->objects, name, sizeof(name));
	err = kmipc_locate_name(w->conn, name, uid, &found, res);
	return err == 0 && found != 1 ? KMIPC_E_PROTOCOL : err;
}

/* VCENTER.md §1-§2.3: new connection, Discover Versions, Get, State, close. */
static int op_vcenter_task(struct kbench_worker *w, struct kmipc_result *res)
{
	struct kmipc_conn *c;
	const char *uid = pick_uid(w);
	int err;

	if ((err = kbench_connect(w, &c)) != 0) {
		return err;
	}
	if ((err = kbench_phase_end(w, KBENCH_PHASE_DISCOVER, kmipc_discover_versions(c, res))) ==
		0 &&
	    (err = kbench_phase_end(w, KBENCH_PHASE_GET, kmipc_get(c, uid, res))) == 0) {
		err = kbench_phase_end(w, KBENCH_PHASE_STATE, kmipc_get_state(c, uid, res));
	}
	kbench_disconnect(w, c);
	return kbench_phase_end(w, KBENCH_PHASE_CLOSE, err);
}

/* A host after a reboot (VCENTER.md §2.4): connect, Discover Versions, Get each key. */
static int op_boot_host(struct kbench_worker *w, struct kmipc_result *res)
{
	struct kmipc_conn *c;
	int err;

	if ((err = kbench_connect(w, &c)) != 0) {
		return err;
	}
	err = kbench_phase_end(w, KBENCH_PHASE_DISCOVER, kmipc_discover_versions(c, res));
	for (size_t i = 0; i < w->sh->num_uids && err == 0; i++) {
		err = kbench_phase_end(w, KBENCH_PHASE_GET, kmipc_get(c, w->sh->uids[i], res));
	}
	kbench_disconnect(w, c);
	return kbench_phase_end(w, KBENCH_PHASE_CLOSE, err);
}

/* Idle: one Discover Versions makes the connection fully open; main.c holds it. */
static int op_discover(struct kbench_worker *w, struct kmipc_result *res)
{
	return kmipc_discover_versions(w->conn, res);
}

static const struct kbench_scenario_def scenarios[KBENCH_NUM_SCENARIOS] = {
    [KBENCH_GET] = {setup_keys, op_get, true},
    [KBENCH_CREATE] = {NULL, op_create, true},
    [KBENCH_VCENTER_TASK] = {setup_keys, op_vcenter_task, false},
    [KBENCH_BOOT_STORM] = {setup_storm, op_boot_host, false},
    [KBENCH_LOCATE] = {setup_locate, op_locate, true},
    [KBENCH_MIXED] = {setup_keys, op_mixed, true},
    [KBENCH_IDLE] = {NULL, op_discover, true},
    [KBENCH_SERVE] = {NULL, NULL, false},
};

const struct kbench_scenario_def *kbench_scenario_def(enum kbench_scenario s)
{
	return &scenarios[s];
}
