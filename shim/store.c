/*
 * store.c - where the objects live (core/STORE.md): the once-per-process choice between
 * native /dev/shm and a store directory, that directory's safety checks, glibc's name
 * rules, and the one lock that guards our state across threads and fork().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>


#include "store.h"

/* ---- state ---------------------------------------------------------------- */


/* Error-checking, so that a fork handler registered twice is harmless (see shmr_lock):
 * a second prepare gets EDEADLK instead of hanging, a second parent unlock EPERM. */
static pthread_mutex_t g_lock = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static _Atomic int g_atfork;		/* 0, ATFORK_DONE, or the pid registering them */
#define ATFORK_DONE (-1)
static _Atomic int g_mode;		/* M_*, set once under g_lock */
static int g_path_err;			/* unusable store path: its errno */
/* Big state is on the heap: a .bss past the data page would cost every
 * program an extra mmap at load time (start-up is our budget, not memory). */
static char *g_path;			/* the store (or /dev/shm if native) */
static int g_dirfd = -1;		/* cached; the program may close it */
static dev_t g_dir_dev;
static ino_t g_dir_ino;

static void lock_state(void) { pthread_mutex_lock(&g_lock); }
void shmr_unlock(void) { pthread_mutex_unlock(&g_lock); }

/* fork() runs these with g_lock held across it: the child's copy of our state is whole. */
static void fork_prepare(void) { lock_state(); }
static void fork_parent(void) { shmr_unlock(); }
static void fork_child(void)
{
	/* The only thread now, but the owner recorded in the error-checking mutex is the
	 * parent's thread id: start afresh instead of unlocking. And our handlers ran, so
	 * they are registered in this process whatever state a racing first call left. */
	static const pthread_mutex_t fresh = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
	memcpy(&g_lock, &fresh, sizeof fresh);
	atomic_store_explicit(&g_atfork, ATFORK_DONE, memory_order_relaxed);
}

/* The fork handlers are registered at the first use, not in a constructor (a program that
 * never calls us pays nothing), and not under g_lock: fork() runs our prepare handler holding
 * glibc's atfork lock, which pthread_atfork takes too. A tiny once of our own instead of
 * pthread_once (pthread_once@GLIBC_2.34 in libc; before 2.34 only in libpthread): the state
 * records the pid of the registering process, so a child forked while another thread was
 * registering does not wait forever for a thread it does not have: it registers itself. If
 * that thread had registered already (on glibc < 2.28 a handler added just before the fork
 * may not run in it), the handlers are in the child twice: harmless, see g_lock. */
void shmr_lock(void)
{
	int s = atomic_load_explicit(&g_atfork, memory_order_acquire), me;
	if (s != ATFORK_DONE) {
		for (me = getpid(); s != ATFORK_DONE; s = atomic_load_explicit(&g_atfork, memory_order_acquire)) {
			if (s == me) {	/* another of our threads is registering them */
				sched_yield();
			} else if (atomic_compare_exchange_strong_explicit(&g_atfork, &s, me,
					memory_order_acquire, memory_order_acquire)) {
				pthread_atfork(fork_prepare, fork_parent, fork_child);
				atomic_store_explicit(&g_atfork, ATFORK_DONE, memory_order_release);
				break;
			}
		}
	}
	lock_state();
}

/* ---- which directory (STORE.md) ------------------------------------------ */

/* 0 when /dev/shm is usable natively, else why not, as an errno (STORE.md): statfs's or
 * stat's own (ENOENT), EMEDIUMTYPE when it is not a tmpfs, ENOTDIR, or faccessat's for the
 * effective ids (EACCES; EROFS on a read-only mount). */
static int native_errno(void)
{
	struct statfs sf;
	struct stat st;
	if (statfs(SHMR_NATIVE_DIR, &sf) != 0)
		return errno;
	if (sf.f_type != SHMR_TMPFS_MAGIC)
		return EMEDIUMTYPE;
	if (shmr_fstatat(AT_FDCWD, SHMR_NATIVE_DIR, &st, 0) != 0)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return ENOTDIR;
	return faccessat(AT_FDCWD, SHMR_NATIVE_DIR, W_OK | X_OK, AT_EACCESS) == 0 ? 0 : errno;
}

static int decide(void)
{
	const char *env = getenv(SHMR_ENV_DIR), *tmp = getenv("TMPDIR"), *dbg;
	int n = -1, m = M_STORE;
	if (!g_path && !(g_path = malloc(PATH_MAX))) {
		g_path_err = ENOMEM;
		return m;
	}
	if (env && *env) {	/* always a store, even if it names /dev/shm */
		g_path_err = *env == '/' ? 0 : EINVAL;
		n = snprintf(g_path, PATH_MAX, "%s", env);
	} else if (native_errno() == 0) {
		m = M_NATIVE;
		n = snprintf(g_path, PATH_MAX, "%s", SHMR_NATIVE_DIR);
	} else {
		if (!tmp || *tmp != '/')
			tmp = SHMR_DEFAULT_TMPDIR;
		n = snprintf(g_path, PATH_MAX, "%s/%s", tmp, SHMR_STORE_SUBDIR);
	}
	if (n < 0 || n >= PATH_MAX)
		g_path_err = ENAMETOOLONG;
	/* With a trailing slash, O_NOFOLLOW would follow a symlink: strip it. */
	while (n > 1 && n < PATH_MAX && g_path[n - 1] == '/')
		g_path[--n] = '\0';
	if ((dbg = getenv("SHM_REDIRECT_DEBUG")) && strcmp(dbg, "1") == 0)
		dprintf(2, "shm-redirect: pid %d: %s %s%s%s\n", (int)getpid(),
			m == M_NATIVE ? "native" : "store", g_path, g_path_err ? ": " : "",
			g_path_err ? strerror(g_path_err) : "");
	return m;
}

int shmr_mode(void)
{
	int m = atomic_load_explicit(&g_mode, memory_order_acquire);
	if (m == M_UNSET) {
		shmr_lock();
		if ((m = atomic_load_explicit(&g_mode, memory_order_relaxed)) == M_UNSET)
			atomic_store_explicit(&g_mode, m = decide(), memory_order_release);
		shmr_unlock();
	}
	return m;
}

/* ---- the store directory (STORE.md "Directory safety") ------------------- */

static int open_store(int *fdp, struct stat *st, int create)
{
	int created = create && mkdir(g_path, 0700) == 0;	/* 0700 until the fchmod */
	if (create && !created && errno != EEXIST)
		return errno;
	int fd = open(g_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* The kernel checks O_DIRECTORY first: a symlink gives ENOTDIR. */
		if (errno == ENOTDIR && shmr_fstatat(AT_FDCWD, g_path, st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st->st_mode))
			errno = ELOOP;
		return errno;
	}
	int err = shmr_fstat(fd, st) ? errno : 0;
	/* Only a directory we made gets the mode; umask does not apply. */
	if (!err && created && st->st_uid == geteuid())
		err = fchmod(fd, SHMR_DIR_MODE) || shmr_fstat(fd, st) ? errno : 0;
	if (!err && st->st_uid != 0 && st->st_uid != geteuid())
		err = EACCES;
	/* Writable by others without the sticky bit: objects could be swapped. */
	if (!err && (st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
		err = EACCES;
	if (err)
		close(fd);
	else
		*fdp = fd;
	return err;
}

/* The directory fd, or an errno. The cached fd is checked with fstat each
 * time: programs (daemons) may close every descriptor. A number that no
 * longer names our directory is not ours to close. */
static int get_dir(int *fdp)
{
	struct stat st;
	int err = 0;
	shmr_mode();
	if (g_path_err)
		return g_path_err;
	shmr_lock();
	if (g_dirfd < 0 || shmr_fstat(g_dirfd, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    st.st_dev != g_dir_dev || st.st_ino != g_dir_ino) {
		g_dirfd = -1;
		if ((err = open_store(&g_dirfd, &st, 1)) == 0) {
			g_dir_dev = st.st_dev;
			g_dir_ino = st.st_ino;
		}
	}
	*fdp = g_dirfd;
	shmr_unlock();
	return err;
}

/* Name rules of glibc >= 2.38 __shm_get_name; out holds NAME_MAX + 1. */
static int get_name(const char *name, int sem, char *out)
{
	while (*name == '/')
		name++;
	size_t n = strlen(name);
	if (n == 0 || memchr(name, '/', n))
		return EINVAL;
	if (n > (sem ? SHMR_SEM_NAME_MAX : SHMR_SHM_NAME_MAX))
		return ENAMETOOLONG;
	snprintf(out, NAME_MAX + 1, "%s%s", sem ? SHMR_SEM_PREFIX : "", name);
	return 0;
}

/* The directory fd for the object name (fname: its file name), or -1 and
 * errno. Name errors are ENOENT for the unlinks, as in glibc. */
int shmr_target(const char *name, int sem, char *fname, int unlinking)
{
	int dfd, err = get_name(name, sem, fname);
	if (err && unlinking)
		err = ENOENT;
	if (!err && (err = get_dir(&dfd)) == 0)
		return dfd;
	errno = err;
	return -1;
}

/* ---- queries for in-process callers (shm_redirect.h) ---------------------- */

SHMR_API int shm_redirect_native_errno(void)
{
	int saved = errno, err = native_errno();
	errno = saved;
	return err;
}

SHMR_API int shm_redirect_store_dir(char *buf, size_t size)
{
	struct call c;
	shmr_enter(&c);
	int native = shmr_mode() == M_NATIVE;
	int err = !g_path ? ENOMEM : g_path_err ? g_path_err : strlen(g_path) >= size ? ERANGE : 0;
	if (!err)
		strcpy(buf, g_path);
	shmr_leave(&c, !err);
	if (err)
		errno = err;
	return err ? -1 : native;
}

/* Natively /dev/shm as it is: it is glibc's, never created or judged by us. Else the store,
 * through the same checks (and, with create, the same cached descriptor) as every call. */
SHMR_API int shm_redirect_store_open(int create)
{
	struct call c;
	struct stat st;
	int fd = -1, err;
	shmr_enter(&c);
	if (shmr_mode() == M_NATIVE) {
		fd = open(SHMR_NATIVE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		err = fd < 0 ? errno : 0;
	} else if (g_path_err) {
		err = g_path_err;
	} else if (!create) {
		err = open_store(&fd, &st, 0);
	} else if ((err = get_dir(&fd)) == 0) {
		shmr_lock();	/* the cached fd is ours: the caller gets its own */
		fd = fcntl(g_dirfd, F_DUPFD_CLOEXEC, 0);
		err = fd < 0 ? errno : 0;
		shmr_unlock();
	}
	shmr_leave(&c, !err);
	if (err)
		errno = err;
	return err ? -1 : fd;
}

/* Around each store call, as glibc: no cancellation inside. And errno is
 * left alone on success. */

void shmr_enter(struct call *c)
{
	c->saved_errno = errno;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &c->cancel_state);
}

void shmr_leave(struct call *c, int ok)
{
	pthread_setcancelstate(c->cancel_state, NULL);
	if (ok)
		errno = c->saved_errno;
}
