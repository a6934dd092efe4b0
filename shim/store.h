/* store.h - what the interposers (shm_redirect.c) need from the store logic (store.c):
 * the once-per-process mode decision, the validated store directory, glibc's name rules,
 * the state lock and the per-call bracket. Everything here is hidden in the .so. */
#ifndef SHM_REDIRECT_STORE_H
#define SHM_REDIRECT_STORE_H

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm_redirect.h"
#include "store_format.h"

/* stat, lstat and fstat as raw system calls. glibc 2.33 turned them into real functions
 * (stat@GLIBC_2.33; before, the headers inlined calls to __xstat), so calling them would
 * refuse to load on an older glibc (Lambda's Amazon Linux 2 has 2.26). syscall() is
 * GLIBC_2.2.5 (x86_64) / GLIBC_2.17 (aarch64), and on both the kernel's struct stat is
 * glibc's, which passes the caller's buffer straight to these same system calls. */
#if (defined(__x86_64__) || defined(__aarch64__)) && defined(__LP64__)
static inline int shmr_fstat(int fd, struct stat *st)
{
	return (int)syscall(SYS_fstat, fd, st);
}
static inline int shmr_fstatat(int dfd, const char *path, struct stat *st, int flags)
{
	return (int)syscall(SYS_newfstatat, dfd, path, st, flags);
}
#else	/* elsewhere the kernel's struct stat may differ: glibc's own calls */
static inline int shmr_fstat(int fd, struct stat *st) { return fstat(fd, st); }
static inline int shmr_fstatat(int dfd, const char *path, struct stat *st, int flags)
{
	return fstatat(dfd, path, st, flags);
}
#endif

enum { M_UNSET, M_NATIVE, M_STORE };

/* M_NATIVE (forward to glibc) or M_STORE; decided at the first call. */
int shmr_mode(void);

/* The state lock: guards the directory cache and the semaphore table. Fork handlers are
 * registered at first use, so a child never inherits it held. */
void shmr_lock(void);
void shmr_unlock(void);

/* The store directory fd for object name, with its file name in fname (NAME_MAX + 1
 * bytes; "sem." prefixed when sem). Returns -1 with errno set; name errors are ENOENT
 * when unlinking, as in glibc. */
int shmr_target(const char *name, int sem, char *fname, int unlinking);

/* Around each store call, as glibc: no cancellation inside, errno untouched on success. */
struct call { int cancel_state, saved_errno; };
void shmr_enter(struct call *c);
void shmr_leave(struct call *c, int ok);

#endif
