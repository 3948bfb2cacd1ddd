/*
 * keel_admin: the management API. JSON over HTTPS (mutual TLS, identities
 * registered with role admin or auditor) on its own port, and the same API
 * over a local UNIX socket for root, so that a fresh appliance can be set up
 * before any admin certificate exists. It runs on a thread and event base of
 * its own: a slow store or token call in a handler never stalls KMIP.
 *
 * Routes live in one const table (routes.c); adding one is described there.
 */
#ifndef KEEL_ADMIN_H
#define KEEL_ADMIN_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "keel/clients.h"
#include "keel/request.h"

struct hsm;
struct keel_engine;
struct keel_store;
struct keel_rotation;
struct mirror_service;
struct mirror_recovery;
struct keel_admin; /* opaque */

struct keel_admin_config {
	const struct keel_config *cfg; /* admin and tls sections; copied, not kept */
	struct keel_store *store;      /* outlives the admin API */
	struct keel_engine *engine;    /* keys, grants, audit (engine/manage.h); outlives it too */
	struct hsm *hsm;	       /* outlives the admin API */
	struct keel_clients *clients;  /* the registry's snapshot; admin changes reload it */
	const char *version;
	struct keel_rotation *rotation;	  /* CRK rotation (appliance/crk); outlives the API */
	const char *config_path;	  /* keeld.conf, archived in backups */
	struct mirror_service *mirror;	  /* Key Protect mirror (mirror.h); NULL: not configured */
	struct mirror_recovery *recovery; /* recovery from it (mirror.h); NULL: not configured */
	/* After a change of registrations or of the server certificate, once the
	 * snapshot is rebuilt: makes KMIP handshakes use them before the change
	 * is answered (the privilege-separated network process). NULL: a SIGHUP
	 * does it, soon after. */
	void (*registry_changed)(void *arg);
	void *registry_changed_arg;
};

/*
 * Binds every admin.listen address and admin.socket (mode 0600), then serves
 * on a new thread. 0, or -1 with the reason logged.
 */
__attribute__((warn_unused_result)) int keel_admin_start(const struct keel_admin_config *cfg,
							 struct keel_admin **out_admin);

/* The HTTPS port bound for admin.listen[i] (useful with port 0). */
__attribute__((warn_unused_result)) int keel_admin_port(const struct keel_admin *a, size_t i,
							uint16_t *out_port);

/* Stops serving, joins the thread, removes the socket. Accepts NULL. */
void keel_admin_stop(struct keel_admin *a);

/* Wrong codes after which an enrolment code is locked for good. */
#define KEEL_ENROL_MAX_ATTEMPTS 5

/*
 * Offers the one-time enrolment code whose verifier |path| holds
 * (admin.enrolment_file; NULL: nothing to do) to POST /v1/enrol, once: a code
 * offered before keeps its state (used, attempts). 0, or -1 with the reason
 * logged. api_enrol.c describes the file.
 */
__attribute__((warn_unused_result)) int keel_admin_enrolment_offer(struct keel_store *store,
								   const char *path);

/* Prints "METHOD PATH ROLE" for every route, one a line (keeld --print-routes). */
void keel_admin_print_routes(FILE *f);

#endif
