/*
 * POST /v1/backup, /v1/backup/verify, /v1/backup/restore: the backup file
 * travels as the raw body (application/octet-stream) both ways. Restores are
 * live and atomic (appliance/backup/backup.h); a CRK rotation may not run
 * meanwhile, and the archived configuration is handed back, not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_int.h"
#include "backup.h"
#include "log.h"
#include "rotation.h"

#define CONFIG_MAX (1u << 20) /* keeld.conf is a few KiB */

static int backup_fail(struct admin_req *rq, int err)
{
	switch (err) {
	case KEEL_BACKUP_E_FORMAT:
	case KEEL_BACKUP_E_AUTH:
	case KEEL_BACKUP_E_CRK:
	case KEEL_BACKUP_E_OBJECT_CRK:
		return admin_fail(rq, 400, "refused: %s", keel_backup_strerror(err));
	case KEEL_BACKUP_E_NOT_EMPTY:
		return admin_fail(rq, 409, "refused: %s (restore with force to replace them)",
				  keel_backup_strerror(err));
	case KEEL_BACKUP_E_HSM:
		return admin_fail(rq, 503, "%s", keel_backup_strerror(err));
	default:
		return admin_fail(rq, 500, "%s", keel_backup_strerror(err));
	}
}

static json_t *info_json(const struct keel_backup_info *info)
{
	char kcv[2 * HSM_KCV_LEN + 1];

	snprintf(kcv, sizeof(kcv), "%02x%02x%02x", info->kcv[0], info->kcv[1], info->kcv[2]);
	return json_pack("{s:I, s:I, s:s, s:I, s:I, s:I, s:I}", "format", (json_int_t)info->format,
			 "crk_version", (json_int_t)info->crk_version, "kcv", kcv, "created",
			 (json_int_t)info->created, "objects", (json_int_t)info->objects,
			 "schema_version", (json_int_t)info->schema_version, "config_bytes",
			 (json_int_t)info->config_len);
}

/* The whole of keeld.conf, to archive with the store. */
static int read_config(const char *path, char **out, size_t *out_len)
{
	FILE *f = fopen(path, "re");
	char *buf = malloc(CONFIG_MAX);
	size_t n = 0;
	int r = -1;

	if (f != NULL && buf != NULL) {
		n = fread(buf, 1, CONFIG_MAX, f);
		r = ferror(f) || n == CONFIG_MAX ? -1 : 0;
	}
	if (f != NULL) {
		fclose(f);
	}
	if (r != 0) {
		keel_err("admin: cannot read %s for the backup", path);
		free(buf);
		return r;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

int admin_post_backup(struct admin_req *rq)
{
	const struct admin_ctx *c = rq->ctx;
	struct keel_backup_info info;
	uint8_t *file = NULL;
	char *config = NULL;
	size_t config_len = 0, len = 0;
	int err;

	if (read_config(c->config_path, &config, &config_len) != 0) {
		return admin_fail(rq, 500, "cannot read keeld's configuration");
	}
	err = keel_backup_create(c->hsm, c->store, config, config_len, (int64_t)time(NULL), &file,
				 &len, &info);
	free(config);
	if (err != 0) {
		return backup_fail(rq, err);
	}
	keel_info("admin: %s made a backup: %lld objects, CRK version %u, %zu bytes", rq->who,
		  (long long)info.objects, info.crk_version, len);
	admin_audit(rq, KEEL_AUDIT_OP_BACKUP, NULL);
	rq->text = (char *)file;
	rq->text_len = len;
	rq->content_type = "application/octet-stream";
	return 200;
}

int admin_post_backup_verify(struct admin_req *rq)
{
	struct keel_backup_info info;
	const uint8_t *file;
	size_t len;
	int err;

	if ((err = admin_body_bytes(rq, &file, &len)) != 0) {
		return err;
	}
	if ((err = keel_backup_verify(rq->ctx->hsm, file, len, &info)) != 0) {
		return backup_fail(rq, err);
	}
	return admin_ok(rq, 200, info_json(&info));
}

/* The restored configuration, for the operator to compare; not valid UTF-8: omitted. */
static json_t *restore_json(const struct keel_backup_info *info, const char *config)
{
	json_t *body = info_json(info);

	if (body != NULL && config != NULL) {
		json_object_set_new(body, "config", json_string(config));
	}
	return body;
}

int admin_post_backup_restore(struct admin_req *rq)
{
	const struct admin_ctx *c = rq->ctx;
	struct keel_backup_info info;
	const uint8_t *file;
	char *force = admin_query(rq, "force"), *config = NULL;
	bool forced = force != NULL && strcmp(force, "true") == 0;
	size_t len;
	int err;

	free(force);
	if ((err = admin_body_bytes(rq, &file, &len)) != 0) {
		return err;
	}
	if (keel_rotation_hold(c->rotation) != 0) {
		return admin_fail(rq, 409, "refused: a CRK rotation is running; restore after it");
	}
	err = keel_backup_restore(c->hsm, c->store, file, len, forced, &config, &info);
	keel_rotation_release(c->rotation);
	if (err != 0) {
		return backup_fail(rq, err);
	}
	keel_info("admin: %s restored a backup of %lld objects made at %lld", rq->who,
		  (long long)info.objects, (long long)info.created);
	/* The trail is the backup's now; this row, chained to it, records the restore. */
	admin_audit(rq, KEEL_AUDIT_OP_RESTORE, NULL);
	err = admin_ok(rq, 200, restore_json(&info, config));
	free(config);
	return err;
}
