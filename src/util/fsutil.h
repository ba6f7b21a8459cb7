/*
 * fsutil.h: small file-system helpers the store and the daemon share:
 * removing a directory of plain files, syncing a directory, summing the
 * sizes of a directory's files, and free space of a file system.
 */
#ifndef SITREP_UTIL_FSUTIL_H
#define SITREP_UTIL_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Remove dirfd/name: a directory holding plain files only (one level), or a
 * file. Returns 0 or -1 (errno set). dirfd may be AT_FDCWD.
 */
int util_remove_dir(int dirfd, const char *name);
/* fsync the directory at path (so renames and unlinks in it are durable). */
int util_fsync_dir(const char *path);
/* Total bytes of the regular files in path and one level of subdirectories (0 if absent). */
uint64_t util_dir_bytes(const char *path);
/*
 * Free bytes for unprivileged users on path's file system and its total
 * size. Returns 0 or -1 (errno set).
 */
int util_fs_space(const char *path, uint64_t *avail, uint64_t *total);
/*
 * Create dir if needed and take its LOCK file (flock, exclusive, not
 * waiting), writing our pid into it: one sitrep process per data directory.
 * Returns the lock's descriptor (keep it open while using dir), or -1 with
 * err saying why (in use by another process, or an I/O error).
 */
int util_lock_dir(const char *dir, char *err, size_t errlen);

#endif
