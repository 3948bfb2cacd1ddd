/*
 * The admin API's routes: one row each, matched in order. To add a route:
 *   1. write the handler in the api_*.c file of its group (or a new one, added
 *      to appliance/CMakeLists.txt), declared in admin_int.h;
 *   2. add its row here: method, path, least role, handler, summary;
 *   3. describe it in docs/admin-api.yaml (tests/integration/test_admin.py
 *      fails until the file lists exactly this table's routes);
 *   4. give keelctl a command for it (tools/keelctl/cmd_*.c).
 * Reads want KEEL_ROLE_AUDITOR, writes KEEL_ROLE_ADMIN.
 */
#include <stdio.h>

#include "admin_int.h"

const struct admin_route admin_routes[] = {
    {"GET", "/healthz", KEEL_ROLE_NONE, admin_get_healthz, "token, store and mirror health"},
    {"GET", "/metrics", KEEL_ROLE_AUDITOR, admin_get_metrics, "Prometheus metrics"},
    {"GET", "/v1/status", KEEL_ROLE_AUDITOR, admin_get_status, "the appliance at a glance"},
    {"GET", "/v1/keys", KEEL_ROLE_AUDITOR, admin_get_keys,
     "keys by client, state, name, attributes"},
    {"GET", "/v1/keys/{uid}", KEEL_ROLE_AUDITOR, admin_get_key, "a key and its attributes"},
    {"POST", "/v1/keys/{uid}/activate", KEEL_ROLE_ADMIN, admin_post_key_activate, "activate a key"},
    {"POST", "/v1/keys/{uid}/revoke", KEEL_ROLE_ADMIN, admin_post_key_revoke, "revoke a key"},
    {"POST", "/v1/keys/{uid}/destroy", KEEL_ROLE_ADMIN, admin_post_key_destroy,
     "destroy a key's material"},
    {"GET", "/v1/grants", KEEL_ROLE_AUDITOR, admin_get_grants, "who may use whose keys"},
    {"POST", "/v1/grants", KEEL_ROLE_ADMIN, admin_post_grant, "grant a key or a client's keys"},
    {"POST", "/v1/grants/revoke", KEEL_ROLE_ADMIN, admin_post_grant_revoke, "revoke a grant"},
    {"GET", "/v1/audit", KEEL_ROLE_AUDITOR, admin_get_audit, "audit records, newest first"},
    {"GET", "/v1/audit/verify", KEEL_ROLE_AUDITOR, admin_get_audit_verify,
     "recompute the audit hash chain"},
    {"GET", "/v1/crk", KEEL_ROLE_AUDITOR, admin_get_crk,
     "CRK versions, objects per version, rotation progress"},
    {"POST", "/v1/crk/rotate", KEEL_ROLE_ADMIN, admin_post_crk_rotate,
     "make CRK version N+1 and rewrap every key under it in the background"},
    {"POST", "/v1/backup", KEEL_ROLE_ADMIN, admin_post_backup,
     "an encrypted backup of the store and the configuration"},
    {"POST", "/v1/backup/verify", KEEL_ROLE_AUDITOR, admin_post_backup_verify,
     "check a backup is intact and this token opens it"},
    {"POST", "/v1/backup/restore", KEEL_ROLE_ADMIN, admin_post_backup_restore,
     "replace the store's content with a backup's, atomically"},
};

const size_t admin_num_routes = sizeof(admin_routes) / sizeof(admin_routes[0]);

static const char *role_name(enum keel_role role)
{
	switch (role) {
	case KEEL_ROLE_ADMIN:
		return "admin";
	case KEEL_ROLE_AUDITOR:
		return "auditor";
	case KEEL_ROLE_KMIP:
		return "kmip";
	case KEEL_ROLE_NONE:
		break;
	}
	return "none";
}

void keel_admin_print_routes(FILE *f)
{
	for (size_t i = 0; i < admin_num_routes; i++) {
		fprintf(f, "%s %s %s\n", admin_routes[i].method, admin_routes[i].path,
			role_name(admin_routes[i].min_role));
	}
}
