/* shm_redirect.h - what libshm_redirect.so exports besides the functions it interposes
 * (sem_open, sem_close, sem_unlink, shm_open, shm_unlink, statvfs, statvfs64): the store's
 * answers for in-process callers that must agree with it, such as the Python package (through
 * ctypes), so that none of them re-derives a rule of core/STORE.md. Each is safe in a child
 * forked from a threaded parent and never changes errno on success. */
#ifndef SHM_REDIRECT_H
#define SHM_REDIRECT_H

#include <stddef.h>

#define SHMR_API __attribute__((visibility("default")))

/* The directory this process's calls use (STORE.md "Which directory"; decided at the first
 * call of the process, as the interposers do), copied into buf. Returns 1 when that is the
 * native /dev/shm, 0 for a store, or -1 with errno: EINVAL (SHM_REDIRECT_DIR not absolute),
 * ENAMETOOLONG (the path), ERANGE (buf shorter than the path and its NUL). */
SHMR_API int shm_redirect_store_dir(char *buf, size_t size);

/* 0 when /dev/shm is usable natively now, else why not as an errno: ENOENT (or another error
 * of statfs or stat), EMEDIUMTYPE (not a tmpfs), ENOTDIR, EACCES or EROFS (not writable and
 * searchable by the effective ids). */
SHMR_API int shm_redirect_native_errno(void);

/* A new descriptor (O_CLOEXEC, the caller's to close) of the directory of
 * shm_redirect_store_dir. A store is checked as every call checks it (STORE.md "Directory
 * safety") and, with create, made as the first call would make it; -1 and errno: ELOOP (a
 * symlink), ENOTDIR, EACCES (owned by another user than root, or writable by others without
 * the sticky bit), ENOENT (missing: without create, or its parent), or the path's error as
 * above. The native /dev/shm is opened as it is. */
SHMR_API int shm_redirect_store_open(int create);

#endif
