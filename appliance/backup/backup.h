/*
 * Backups (keelctl backup create|verify|restore, issue 5): a consistent
 * image of the store plus keeld's configuration, encrypted and authenticated
 * with AES-256-GCM under a fresh data key. The data key is wrapped by the
 * active CRK inside the token (hsm_wrap), so the CRK never leaves the token
 * and only a token holding that CRK opens the file. Inside, objects stay
 * wrapped by their own CRK versions: a backup never holds plaintext keys.
 *
 * File, version 1 (integers big-endian); the GCM AAD is every byte before
 * the ciphertext, so no header field can be altered unnoticed:
 *   "KEELBKP\0" | u16 format (1) | u32 CRK version | 3-byte KCV | u8 0 |
 *   u64 created (POSIX s) | u64 objects | u32 schema version |
 *   u16 wrapped key length | wrapped key | 12-byte IV | u64 ciphertext length |
 *   ciphertext of (u32 config length | config | store image) | 16-byte tag
 *
 * Restores are live and atomic: the store swaps to the image in one
 * transaction (KMIP requests see the old or the new objects, never a mix),
 * only after the whole file authenticated and every CRK version its objects
 * need was found in this token; a rotation may not run meanwhile.
 */
#ifndef KEEL_BACKUP_H
#define KEEL_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/hsm.h"
#include "store.h"

#define KEEL_BACKUP_WUR __attribute__((warn_unused_result))

enum keel_backup_err {
	KEEL_BACKUP_E_FORMAT = -1,     /* not a Keel backup, truncated, or an unknown format */
	KEEL_BACKUP_E_AUTH = -2,       /* does not authenticate: damaged or altered */
	KEEL_BACKUP_E_CRK = -3,	       /* this token lacks the CRK the backup is wrapped by */
	KEEL_BACKUP_E_OBJECT_CRK = -4, /* objects inside need a CRK version the token lacks */
	KEEL_BACKUP_E_NOT_EMPTY = -5,  /* restore over a store that holds objects, unforced */
	KEEL_BACKUP_E_HSM = -6,	       /* the token failed; logged */
	KEEL_BACKUP_E_STORE = -7,      /* the store failed, or the image inside is unusable */
	KEEL_BACKUP_E_NOMEM = -8,
	KEEL_BACKUP_E_INVAL = -9,
};

const char *keel_backup_strerror(int err);

#define KEEL_BACKUP_FORMAT 1

struct keel_backup_info {
	uint32_t format;
	uint32_t crk_version; /* the version wrapping the data key */
	uint8_t kcv[HSM_KCV_LEN];
	int64_t created;
	int64_t objects;
	int32_t schema_version;
	size_t config_len;
};

/*
 * Snapshots |store| and encrypts it with |config| (config_len bytes, may be
 * 0). *out_file is malloc'd, freed with free(); *out_info is optional.
 */
int keel_backup_create(struct hsm *h, struct keel_store *store, const char *config,
		       size_t config_len, int64_t now, uint8_t **out_file, size_t *out_len,
		       struct keel_backup_info *out_info) KEEL_BACKUP_WUR;

/*
 * Reads the header alone, checking every length against the file's: nothing
 * is authenticated yet, so this is for display and for fuzzing the parser.
 * KEEL_BACKUP_E_FORMAT for anything that is not a well-formed backup.
 */
int keel_backup_peek(const uint8_t *file, size_t len,
		     struct keel_backup_info *out_info) KEEL_BACKUP_WUR;

/* Authenticates the whole file with this token and checks the image inside. */
int keel_backup_verify(struct hsm *h, const uint8_t *file, size_t len,
		       struct keel_backup_info *out_info) KEEL_BACKUP_WUR;

/*
 * Verifies, then replaces the store's content with the backup's. Refuses a
 * store holding objects unless |force|. *out_config (optional) receives the
 * archived configuration, malloc'd and NUL-terminated: keeld does not install
 * it, since a configuration names this machine's paths, token and addresses.
 */
int keel_backup_restore(struct hsm *h, struct keel_store *store, const uint8_t *file, size_t len,
			bool force, char **out_config,
			struct keel_backup_info *out_info) KEEL_BACKUP_WUR;

#endif
