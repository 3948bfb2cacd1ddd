/* The power-loss and fault-injecting VFS shim of the store tests (crash_vfs.c). */
#ifndef KEEL_TEST_CRASH_VFS_H
#define KEEL_TEST_CRASH_VFS_H

/* Makes the shim SQLite's default VFS (once per process). */
void crash_vfs_install(void);
/*
 * The power fails now: writes database |db| and its WAL, as of their last
 * fsyncs, to |out| and |out|-wal. Returns how many fsyncs the WAL had.
 */
unsigned crash_vfs_power_loss(const char *db, const char *out);
/* The next write to any WAL fails with SQLITE_IOERR_WRITE. */
void crash_vfs_fail_next_wal_write(void);
/*
 * The next fsync of any WAL blocks until crash_vfs_release_wal_sync(rc):
 * SQLITE_OK lets it go on, another code is what it returns instead.
 * crash_vfs_wait_wal_sync_held returns once it blocks.
 */
void crash_vfs_hold_next_wal_sync(void);
void crash_vfs_wait_wal_sync_held(void);
void crash_vfs_release_wal_sync(int rc);

#endif
