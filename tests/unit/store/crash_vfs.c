/*
 * A VFS shim for store tests (test_group_commit, test_group_txn): a simulated
 * power loss, injected write faults, and a WAL fsync held for a test.
 *
 * Made SQLite's default before the store opens, it passes every call to the
 * real (unix) VFS and, at each fsync of the database or its WAL, keeps a copy
 * of the file as it stands: what a machine that loses power right then would
 * find on disk at best.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_vfs.h"

#define MAX_SHADOWS 64 /* never reused: a test process takes up to four per test */

/* A file's contents as of its last fsync. */
struct shadow {
	char name[512];
	uint8_t *data;
	size_t len;
	unsigned syncs;
};

static struct shadow shadows[MAX_SHADOWS];
static pthread_mutex_t shadow_lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3_vfs *real_vfs;
static sqlite3_vfs crash_vfs;
static atomic_bool fail_wal_write;

struct cfile {
	sqlite3_file base;
	struct shadow *shadow; /* NULL: not the database or its WAL */
	bool wal;
	sqlite3_file *real; /* follows this struct, szOsFile of the real VFS */
};

static struct shadow *shadow_for(const char *name)
{
	struct shadow *free_slot = NULL;

	for (int i = 0; i < MAX_SHADOWS; i++) {
		if (strcmp(shadows[i].name, name) == 0) {
			return &shadows[i];
		}
		free_slot =
		    free_slot == NULL && shadows[i].name[0] == '\0' ? &shadows[i] : free_slot;
	}
	assert_non_null(free_slot);
	snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
	return free_slot;
}

static sqlite3_file *real(sqlite3_file *f)
{
	return ((struct cfile *)f)->real;
}

/* The whole file as it is now, into its shadow. */
static int snapshot(struct cfile *f)
{
	sqlite3_int64 size;
	uint8_t *copy;
	int rc = f->real->pMethods->xFileSize(f->real, &size);

	if (rc != SQLITE_OK || (copy = malloc((size_t)size + 1)) == NULL) {
		return SQLITE_IOERR;
	}
	if (size > 0 && (rc = f->real->pMethods->xRead(f->real, copy, (int)size, 0)) != SQLITE_OK) {
		free(copy);
		return rc;
	}
	pthread_mutex_lock(&shadow_lock);
	free(f->shadow->data);
	f->shadow->data = copy;
	f->shadow->len = (size_t)size;
	f->shadow->syncs++;
	pthread_mutex_unlock(&shadow_lock);
	return SQLITE_OK;
}

/* A WAL fsync held by the test (crash_vfs_hold_next_wal_sync). */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_moved = PTHREAD_COND_INITIALIZER;
static enum { HOLD_NONE, HOLD_ARMED, HOLD_HELD, HOLD_RELEASED } hold;
static int hold_rc;

/* SQLITE_OK, or what the held fsync is to return instead of syncing. */
static int held_sync(void)
{
	int rc = SQLITE_OK;

	pthread_mutex_lock(&hold_lock);
	if (hold == HOLD_ARMED) {
		hold = HOLD_HELD;
		pthread_cond_broadcast(&hold_moved);
		while (hold != HOLD_RELEASED) {
			pthread_cond_wait(&hold_moved, &hold_lock);
		}
		hold = HOLD_NONE;
		rc = hold_rc;
	}
	pthread_mutex_unlock(&hold_lock);
	return rc;
}

static int c_sync(sqlite3_file *f, int flags)
{
	struct cfile *c = (struct cfile *)f;
	int rc = c->wal ? held_sync() : SQLITE_OK;

	if (rc == SQLITE_OK) {
		rc = c->real->pMethods->xSync(c->real, flags);
	}
	return rc == SQLITE_OK && c->shadow != NULL ? snapshot(c) : rc;
}

static int c_close(sqlite3_file *f)
{
	return real(f)->pMethods->xClose(real(f));
}
static int c_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return real(f)->pMethods->xRead(real(f), p, n, off);
}
static int c_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	if (((struct cfile *)f)->wal && atomic_exchange(&fail_wal_write, false)) {
		return SQLITE_IOERR_WRITE;
	}
	return real(f)->pMethods->xWrite(real(f), p, n, off);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return real(f)->pMethods->xTruncate(real(f), size);
}
static int c_size(sqlite3_file *f, sqlite3_int64 *out)
{
	return real(f)->pMethods->xFileSize(real(f), out);
}
static int c_lock(sqlite3_file *f, int l)
{
	return real(f)->pMethods->xLock(real(f), l);
}
static int c_unlock(sqlite3_file *f, int l)
{
	return real(f)->pMethods->xUnlock(real(f), l);
}
static int c_reserved(sqlite3_file *f, int *out)
{
	return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
static int c_fcntl(sqlite3_file *f, int op, void *arg)
{
	return real(f)->pMethods->xFileControl(real(f), op, arg);
}
static int c_sector(sqlite3_file *f)
{
	return real(f)->pMethods->xSectorSize(real(f));
}
static int c_device(sqlite3_file *f)
{
	return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
static int c_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
	return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
}
static int c_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
static void c_shm_barrier(sqlite3_file *f)
{
	real(f)->pMethods->xShmBarrier(real(f));
}
static int c_shm_unmap(sqlite3_file *f, int del)
{
	return real(f)->pMethods->xShmUnmap(real(f), del);
}

/* Version 2: no xFetch, so SQLite reads through xRead and never maps the file. */
static const sqlite3_io_methods c_methods = {
    .iVersion = 2,
    .xClose = c_close,
    .xRead = c_read,
    .xWrite = c_write,
    .xTruncate = c_truncate,
    .xSync = c_sync,
    .xFileSize = c_size,
    .xLock = c_lock,
    .xUnlock = c_unlock,
    .xCheckReservedLock = c_reserved,
    .xFileControl = c_fcntl,
    .xSectorSize = c_sector,
    .xDeviceCharacteristics = c_device,
    .xShmMap = c_shm_map,
    .xShmLock = c_shm_lock,
    .xShmBarrier = c_shm_barrier,
    .xShmUnmap = c_shm_unmap,
};

static int c_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct cfile *c = (struct cfile *)f;
	int rc;

	(void)vfs;
	c->real = (sqlite3_file *)(c + 1);
	c->shadow = NULL;
	c->wal = (flags & SQLITE_OPEN_WAL) != 0;
	if ((rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out_flags)) != SQLITE_OK) {
		c->base.pMethods = NULL;
		return rc;
	}
	if (name != NULL && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0) {
		pthread_mutex_lock(&shadow_lock);
		c->shadow = shadow_for(name);
		pthread_mutex_unlock(&shadow_lock);
	}
	c->base.pMethods = &c_methods;
	return SQLITE_OK;
}

/* Everything but xOpen is the real VFS's own (it finds its state in pAppData). */
void crash_vfs_install(void)
{
	if (real_vfs != NULL) {
		return;
	}
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	crash_vfs = *real_vfs;
	crash_vfs.iVersion = real_vfs->iVersion < 2 ? real_vfs->iVersion : 2;
	crash_vfs.zName = "keel-crash";
	crash_vfs.szOsFile = (int)sizeof(struct cfile) + real_vfs->szOsFile;
	crash_vfs.xOpen = c_open;
	crash_vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&crash_vfs, 1), SQLITE_OK);
}

/* Writes |name|'s last-synced contents to |path|; a file never synced is empty. */
static unsigned write_synced(const char *name, const char *path)
{
	struct shadow *s = shadow_for(name);
	FILE *out = fopen(path, "wb");

	assert_non_null(out);
	assert_int_equal(fwrite(s->data != NULL ? s->data : (uint8_t *)"", 1, s->len, out), s->len);
	assert_int_equal(fclose(out), 0);
	return s->syncs;
}

unsigned crash_vfs_power_loss(const char *db, const char *out)
{
	char wal[600], out_wal[600];
	unsigned syncs;

	snprintf(wal, sizeof(wal), "%s-wal", db);
	snprintf(out_wal, sizeof(out_wal), "%s-wal", out);
	pthread_mutex_lock(&shadow_lock);
	(void)write_synced(db, out);
	syncs = write_synced(wal, out_wal);
	pthread_mutex_unlock(&shadow_lock);
	return syncs;
}

void crash_vfs_fail_next_wal_write(void)
{
	atomic_store(&fail_wal_write, true);
}

void crash_vfs_hold_next_wal_sync(void)
{
	pthread_mutex_lock(&hold_lock);
	hold = HOLD_ARMED;
	pthread_mutex_unlock(&hold_lock);
}

void crash_vfs_wait_wal_sync_held(void)
{
	pthread_mutex_lock(&hold_lock);
	while (hold != HOLD_HELD) {
		pthread_cond_wait(&hold_moved, &hold_lock);
	}
	pthread_mutex_unlock(&hold_lock);
}

void crash_vfs_release_wal_sync(int rc)
{
	pthread_mutex_lock(&hold_lock);
	hold_rc = rc;
	hold = HOLD_RELEASED;
	pthread_cond_broadcast(&hold_moved);
	pthread_mutex_unlock(&hold_lock);
}
