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
    {"POST", "/v1/enrol", KEEL_ROLE_NONE, admin_post_enrol,
     "the first administrator: a one-time enrolment code and a CSR, signed with role admin"},
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
    {"GET", "/v1/mirror", KEEL_ROLE_AUDITOR, admin_get_mirror,
     "the Key Protect mirror: mode, root key, backlog, last success and error"},
    {"POST", "/v1/mirror/enable", KEEL_ROLE_ADMIN, admin_post_mirror_enable,
     "mirror the CRK as a Key Protect root key and escrow every key"},
    {"POST", "/v1/mirror/sync", KEEL_ROLE_ADMIN, admin_post_mirror_sync,
     "drain the mirror's outbox now"},
    {"GET", "/v1/recover", KEEL_ROLE_AUDITOR, admin_get_recover,
     "progress of the recovery from Key Protect"},
    {"POST", "/v1/recover", KEEL_ROLE_ADMIN, admin_post_recover,
     "restore every object escrowed in Key Protect into this appliance"},
    {"GET", "/v1/clients", KEEL_ROLE_AUDITOR, admin_list_clients, "registered clients and CAs"},
    {"POST", "/v1/clients", KEEL_ROLE_ADMIN, admin_add_client, "register a client certificate"},
    {"POST", "/v1/clients/csr", KEEL_ROLE_ADMIN, admin_sign_csr, "sign a CSR and register it"},
    {"POST", "/v1/clients/issue", KEEL_ROLE_ADMIN, admin_issue_client,
     "issue a client certificate and key, and register it"},
    {"GET", "/v1/clients/{id}", KEEL_ROLE_AUDITOR, admin_show_client, "one client"},
    {"PATCH", "/v1/clients/{id}", KEEL_ROLE_ADMIN, admin_rename_client, "rename a client"},
    {"DELETE", "/v1/clients/{id}", KEEL_ROLE_ADMIN, admin_remove_client,
     "unregister a client (and destroy its keys)"},
    {"POST", "/v1/cas", KEEL_ROLE_ADMIN, admin_trust_ca, "trust every client of a CA"},
    {"GET", "/v1/ca", KEEL_ROLE_AUDITOR, admin_get_ca, "Keel's CA certificate"},
    {"GET", "/v1/server-cert", KEEL_ROLE_AUDITOR, admin_get_server_cert,
     "keeld's server certificate"},
    {"POST", "/v1/server-cert/renew", KEEL_ROLE_ADMIN, admin_renew_server_cert,
     "a new server certificate from Keel's CA"},
};

const size_t admin_num_routes = sizeof(admin_routes) / sizeof(admin_routes[0]);

void keel_admin_print_routes(FILE *f)
{
	for (size_t i = 0; i < admin_num_routes; i++) {
		fprintf(f, "%s %s %s\n", admin_routes[i].method, admin_routes[i].path,
			keel_role_name(admin_routes[i].min_role));
	}
}
