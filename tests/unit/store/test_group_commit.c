/*
 * Group commit (sqlite.c): a commit is acknowledged only once it is durable.
 *
 * Durability is checked against a simulated power loss. A VFS shim, made
 * SQLite's default before the store opens, passes every call to the real
 * (unix) VFS and, at each fsync of the database or its WAL, keeps a copy of
 * the file as it stands: what a machine that loses power right then would
 * find on disk at best. Threads commit transactions concurrently; then the
 * copies are written out as a fresh database, reopened, and every
 * acknowledged object must be there, and nothing rolled back may be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define THREADS	    8
#define PER_THREAD  40
#define CONNS	    4
#define MAX_SHADOWS 4
#define OWNER	    "0123abcd"

/* ---- The VFS shim -------------------------------------------------------- */

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

struct cfile {
	sqlite3_file base;
	struct shadow *shadow; /* NULL: not the database or its WAL */
	sqlite3_file *real;    /* follows this struct, szOsFile of the real VFS */
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

static int c_sync(sqlite3_file *f, int flags)
{
	struct cfile *c = (struct cfile *)f;
	int rc = c->real->pMethods->xSync(c->real, flags);

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
static void install_crash_vfs(void)
{
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

/* ---- The test ------------------------------------------------------------ */

struct worker {
	struct keel_store *s;
	unsigned index;
	bool acked[PER_THREAD];
	bool rolled_back[PER_THREAD];
};

static void uid_of(unsigned thread, unsigned i, char out[KEEL_STORE_UID_MAX + 1])
{
	snprintf(out, KEEL_STORE_UID_MAX + 1, "t%u-%u", thread, i);
}

/*
 * One transaction: the object, an attribute added in a savepoint that is
 * rolled back, and an audit row; every fifth transaction is rolled back whole.
 */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct keel_store_attr attr = {
	    .name = "Name", .index = 0, .value = (uint8_t *)"v", .value_len = 1, .text = "gone"};
	struct keel_store_object o = {.object_type = 2, .state = 1};
	struct keel_store_audit a = {.time = 1, .client = OWNER, .operation = 1};
	struct keel_store_txn *t;

	snprintf(o.owner, sizeof(o.owner), OWNER);
	for (unsigned i = 0; i < PER_THREAD; i++) {
		uid_of(w->index, i, o.uid);
		a.uid = o.uid;
		if (keel_store_begin(w->s, &t) != 0) {
			continue;
		}
		if (keel_store_object_put(t, &o) != 0 || keel_store_savepoint(t) != 0 ||
		    keel_store_attr_add(t, o.uid, &attr) != 0 ||
		    keel_store_savepoint_rollback(t) != 0 || keel_store_audit_append(t, &a) != 0 ||
		    i % 5 == 4) {
			keel_store_rollback(t);
			w->rolled_back[i] = true;
			continue;
		}
		w->acked[i] = keel_store_commit(t) == 0;
	}
	return NULL;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Every acknowledged object is found after the crash; nothing rolled back is. */
static void check_after_crash(const char *path, struct worker *ws)
{
	struct keel_store *s;
	struct keel_store_txn *t;
	struct keel_store_object o;
	struct keel_store_attr *attrs = NULL;
	size_t num_attrs = 0;
	char uid[KEEL_STORE_UID_MAX + 1];
	unsigned acked = 0;

	assert_int_equal(keel_store_open_sqlite(path, 1, &s), 0);
	assert_int_equal(keel_store_begin(s, &t), 0);
	for (unsigned w = 0; w < THREADS; w++) {
		for (unsigned i = 0; i < PER_THREAD; i++) {
			uid_of(w, i, uid);
			if (ws[w].acked[i]) {
				acked++;
				assert_int_equal(keel_store_object_get(t, uid, OWNER, &o), 0);
				keel_store_object_cleanup(&o);
				assert_int_equal(
				    keel_store_attr_list(t, uid, "Name", &attrs, &num_attrs), 0);
				assert_int_equal(num_attrs, 0); /* its savepoint was rolled back */
				keel_store_attrs_free(attrs, num_attrs);
			} else if (ws[w].rolled_back[i]) {
				assert_int_equal(keel_store_object_get(t, uid, OWNER, &o),
						 KEEL_STORE_E_NOT_FOUND);
			}
		}
	}
	keel_store_rollback(t);
	keel_store_close(s);
	/* Four in five transactions commit; every one of those must have been acknowledged. */
	assert_int_equal(acked, THREADS * PER_THREAD * 4 / 5);
}

static void test_acked_commits_survive_power_loss(void **state)
{
	char dir[] = "/tmp/keel-group-XXXXXX", db[64], wal[64], crashed[64], crashed_wal[64];
	static struct worker ws[THREADS];
	pthread_t threads[THREADS];
	struct keel_store *s;
	unsigned wal_syncs;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/keel.db", dir);
	snprintf(wal, sizeof(wal), "%s/keel.db-wal", dir);
	snprintf(crashed, sizeof(crashed), "%s/crashed.db", dir);
	snprintf(crashed_wal, sizeof(crashed_wal), "%s/crashed.db-wal", dir);
	install_crash_vfs();
	assert_int_equal(keel_store_open_sqlite(db, CONNS, &s), 0);
	for (unsigned i = 0; i < THREADS; i++) {
		ws[i] = (struct worker){.s = s, .index = i};
		assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &ws[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	}
	/* The power fails here, before keel_store_close could checkpoint or sync. */
	pthread_mutex_lock(&shadow_lock);
	(void)write_synced(db, crashed);
	wal_syncs = write_synced(wal, crashed_wal);
	pthread_mutex_unlock(&shadow_lock);
	print_message("%u commits shared %u fsyncs of the WAL\n", THREADS * PER_THREAD * 4 / 5,
		      wal_syncs);
	check_after_crash(crashed, ws);
	keel_store_close(s);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_acked_commits_survive_power_loss),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
