/*
 * shm_redirect.c - LD_PRELOAD library that puts POSIX named semaphores and
 * shared memory segments into a "store" directory when /dev/shm is missing
 * (AWS Lambda), so that Python multiprocessing works there.
 *
 * core/STORE.md specifies the format and the rules; store_format.h holds the
 * constants, generated from the Go core, which reads the same store.
 *
 * Design (in the spirit of libeatmydata and proxychains-ng):
 *  - No constructor: a program that never calls us pays only the load. The
 *    real functions are found with dlsym(RTLD_NEXT) at first use and cached
 *    in atomic pointers.
 *  - The mode is decided once, at the first call that needs it. When
 *    /dev/shm is a usable tmpfs and SHM_REDIRECT_DIR is unset we are
 *    "native": every call goes to glibc unchanged. Otherwise each object is
 *    a file in the validated store directory, always addressed relative to
 *    its fd (openat, linkat, unlinkat, O_NOFOLLOW): /tmp is hostile ground.
 *  - sem_open is glibc's (2.34+) algorithm: a complete 32-byte sem_t image
 *    is written under a temporary name and published with linkat(), so no
 *    process ever maps a half-made semaphore. A semaphore opened twice is
 *    mapped once (table keyed by device, inode and name; refcounted).
 *  - One mutex guards the table and the cached directory fd; fork handlers
 *    keep it usable in the child.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "store_format.h"

#define EXPORT __attribute__((visibility("default")))

_Static_assert(sizeof(sem_t) == SHMR_SEM_SIZE, "sem_t is not the image in the store");

/* ---- real symbols: resolved once, lazily, without a lock ----------------- */

static char not_found;	/* looked up and absent (e.g. shm_open in an unloaded librt) */

static void *real_sym(_Atomic(void *) *slot, const char *name)
{
	void *p = atomic_load_explicit(slot, memory_order_acquire);
	if (p == NULL) {	/* racing threads all store the same answer */
		p = dlsym(RTLD_NEXT, name);
		atomic_store_explicit(slot, p ? p : &not_found, memory_order_release);
	}
	return p == &not_found ? NULL : p;
}

#define REAL(fn) ((__typeof__(&fn))real_sym(&real_##fn, #fn))
static _Atomic(void *) real_sem_open, real_sem_close, real_sem_unlink, real_shm_open,
	real_shm_unlink, real_statvfs, real_statvfs64;

/* ---- state ---------------------------------------------------------------- */

enum { M_UNSET, M_NATIVE, M_STORE };

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static _Atomic int g_mode;		/* M_*, set once under g_lock */
static int g_path_err;			/* unusable store path: its errno */
/* Big state is on the heap: a .bss past the data page would cost every
 * program an extra mmap at load time (start-up is our budget, not memory). */
static char *g_path;			/* the store (or /dev/shm if native) */
static int g_dirfd = -1;		/* cached; the program may close it */
static dev_t g_dir_dev;
static ino_t g_dir_ino;

static void lock_state(void) { pthread_mutex_lock(&g_lock); }
static void unlock(void) { pthread_mutex_unlock(&g_lock); }
static void register_atfork(void) { pthread_atfork(lock_state, unlock, unlock); }

/* Registered lazily, and not under g_lock: fork() calls our prepare handler
 * holding glibc's atfork lock, which pthread_atfork takes too. */
static void lock(void)
{
	pthread_once(&g_atfork_once, register_atfork);
	lock_state();
}

/* ---- which directory (STORE.md) ------------------------------------------ */

static int native_usable(void)
{
	struct statfs sf;
	struct stat st;
	return statfs(SHMR_NATIVE_DIR, &sf) == 0 && sf.f_type == SHMR_TMPFS_MAGIC &&
	       stat(SHMR_NATIVE_DIR, &st) == 0 && S_ISDIR(st.st_mode) &&
	       faccessat(AT_FDCWD, SHMR_NATIVE_DIR, W_OK | X_OK, AT_EACCESS) == 0;
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
	} else if (native_usable()) {
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

static int get_mode(void)
{
	int m = atomic_load_explicit(&g_mode, memory_order_acquire);
	if (m == M_UNSET) {
		lock();
		if ((m = atomic_load_explicit(&g_mode, memory_order_relaxed)) == M_UNSET)
			atomic_store_explicit(&g_mode, m = decide(), memory_order_release);
		unlock();
	}
	return m;
}

/* ---- the store directory (STORE.md "Directory safety") ------------------- */

static int open_store(int *fdp, struct stat *st)
{
	int created = mkdir(g_path, 0700) == 0;	/* 0700 until the fchmod */
	if (!created && errno != EEXIST)
		return errno;
	int fd = open(g_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* The kernel checks O_DIRECTORY first: a symlink gives ENOTDIR. */
		if (errno == ENOTDIR && lstat(g_path, st) == 0 && S_ISLNK(st->st_mode))
			errno = ELOOP;
		return errno;
	}
	int err = fstat(fd, st) ? errno : 0;
	/* Only a directory we made gets the mode; umask does not apply. */
	if (!err && created && st->st_uid == geteuid())
		err = fchmod(fd, SHMR_DIR_MODE) || fstat(fd, st) ? errno : 0;
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
	get_mode();
	if (g_path_err)
		return g_path_err;
	lock();
	if (g_dirfd < 0 || fstat(g_dirfd, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    st.st_dev != g_dir_dev || st.st_ino != g_dir_ino) {
		g_dirfd = -1;
		if ((err = open_store(&g_dirfd, &st)) == 0) {
			g_dir_dev = st.st_dev;
			g_dir_ino = st.st_ino;
		}
	}
	*fdp = g_dirfd;
	unlock();
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
static int target(const char *name, int sem, char *fname, int unlinking)
{
	int dfd, err = get_name(name, sem, fname);
	if (err && unlinking)
		err = ENOENT;
	if (!err && (err = get_dir(&dfd)) == 0)
		return dfd;
	errno = err;
	return -1;
}

/* Around each store call, as glibc: no cancellation inside. And errno is
 * left alone on success. */
struct call { int cancel_state, saved_errno; };

static void enter(struct call *c)
{
	c->saved_errno = errno;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &c->cancel_state);
}

static void leave(struct call *c, int ok)
{
	pthread_setcancelstate(c->cancel_state, NULL);
	if (ok)
		errno = c->saved_errno;
}

/* ---- open semaphores: (dev, ino, name) -> mapping, and back -------------- */

struct sem_rec {
	struct sem_rec *next_key, *next_ptr;	/* chains of by_key and by_ptr */
	sem_t *sem;
	dev_t dev;
	ino_t ino;
	unsigned long refcnt;
	char name[];	/* "sem.NAME" */
};

#define NBUCKETS 1024	/* CPython may hold thousands: keep the chains short */
static struct sem_rec **by_key, **by_ptr;	/* NBUCKETS each, at first use */

static size_t hash_key(dev_t dev, ino_t ino, const char *name)
{
	uint64_t h = 0xcbf29ce484222325u ^ (uint64_t)ino ^ (uint64_t)dev << 32;
	while (*name)	/* FNV-1a */
		h = (h ^ (unsigned char)*name++) * 0x100000001b3u;
	return (h ^ h >> 29) % NBUCKETS;
}

static size_t hash_ptr(const void *p)	/* mappings are page-aligned */
{
	return ((uintptr_t)p >> 12) * 0x9e3779b97f4a7c15u >> 54;	/* 10 bits */
}

/* Registers the semaphore open at fd as name and returns its address. map
 * is our fresh mapping of a file we made, or NULL for an existing file,
 * which is checked first: a wrong one would be a SIGBUS or garbage later. */
static sem_t *sem_attach(int fd, const char *name, sem_t *map, int oflag)
{
	struct stat st;
	int private, err = 0;
	if (fstat(fd, &st) != 0)
		err = errno;
	else if (!map) {
		if (!S_ISREG(st.st_mode) || st.st_size != SHMR_SEM_SIZE)
			err = EINVAL;
		else if ((oflag & O_CREAT) && st.st_uid != geteuid())
			err = EACCES;	/* never adopt another user's object */
		else if (pread(fd, &private, sizeof private, SHMR_SEM_PRIVATE_OFFSET) != sizeof private ||
			 private != SHMR_SEM_PRIVATE_SHARED)
			err = EINVAL;
		else if ((map = mmap(NULL, SHMR_SEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
			return SEM_FAILED;
	}
	size_t len = strlen(name) + 1;
	struct sem_rec *r = err ? NULL : malloc(sizeof *r + len);
	if (!r) {
		if (map)
			munmap(map, SHMR_SEM_SIZE);
		errno = err ? err : ENOMEM;
		return SEM_FAILED;
	}
	size_t hk = hash_key(st.st_dev, st.st_ino, name);
	lock();
	if (!by_key && (by_key = calloc(2 * NBUCKETS, sizeof *by_key)) != NULL)
		by_ptr = by_key + NBUCKETS;
	if (!by_key) {
		unlock();
		munmap(map, SHMR_SEM_SIZE);
		free(r);
		errno = ENOMEM;
		return SEM_FAILED;
	}
	for (struct sem_rec *e = by_key[hk]; e; e = e->next_key)
		if (e->dev == st.st_dev && e->ino == st.st_ino && strcmp(e->name, name) == 0) {
			e->refcnt++;	/* mapped already: the same pointer again */
			unlock();
			munmap(map, SHMR_SEM_SIZE);
			free(r);
			return e->sem;
		}
	*r = (struct sem_rec){ .next_key = by_key[hk], .next_ptr = by_ptr[hash_ptr(map)],
			       .sem = map, .dev = st.st_dev, .ino = st.st_ino, .refcnt = 1 };
	memcpy(r->name, name, len);
	by_key[hk] = by_ptr[hash_ptr(map)] = r;
	unlock();
	return map;
}

/* ---- sem_open: glibc 2.34+ __sem_open, relative to the store fd ---------- */

static void temp_name(char *buf)	/* fills the XXXXXX of "sem.XXXXXX" */
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	static _Atomic uint64_t counter;
	struct timespec ts;
	/* Cheap, not cryptographic: a collision only costs an O_EXCL retry. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t x = atomic_fetch_add(&counter, 0x9e3779b97f4a7c15u) ^ (uint64_t)getpid() << 40 ^
		     (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uintptr_t)buf;
	x = (x ^ x >> 30) * 0xbf58476d1ce4e5b9u;	/* splitmix64 finaliser */
	x = (x ^ x >> 27) * 0x94d049bb133111ebu;
	x ^= x >> 31;
	for (char *p = buf + sizeof SHMR_SEM_PREFIX - 1; *p; p++, x /= 62)
		*p = chars[x % 62];
}

static sem_t *store_sem_open(int dfd, const char *fname, int oflag, mode_t mode, unsigned value)
{
	char tmp[] = SHMR_SEM_TMP_TEMPLATE;
	sem_t *result = SEM_FAILED;
	int fd, err, created = 0, again = 0;
	if ((oflag & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL)) {
try_again:
		fd = openat(dfd, fname, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd >= 0) {
			result = sem_attach(fd, fname, NULL, oflag);
			goto out;
		}
		if (!(oflag & O_CREAT) || errno != ENOENT) {
			if (errno == EISDIR || errno == ENXIO)	/* directory, socket */
				errno = EINVAL;
			return SEM_FAILED;
		}
	}
	/* The file must be complete before anyone can open it: build it under
	 * a temporary name, with the caller's mode (umask applies, as glibc). */
	for (int tries = 0; (temp_name(tmp), fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL |
				O_NOFOLLOW | O_CLOEXEC, mode)) < 0; )
		if (errno != EEXIST || ++tries >= SHMR_SEM_TMP_RETRIES) {
			if (errno == EEXIST)
				errno = EAGAIN;
			return SEM_FAILED;
		}
	created = 1;
	unsigned char image[SHMR_SEM_SIZE] = { 0 };
	uint64_t data = value;	/* the value, no waiters */
	int private = SHMR_SEM_PRIVATE_SHARED;
	memcpy(image, &data, sizeof data);
	memcpy(image + SHMR_SEM_PRIVATE_OFFSET, &private, sizeof private);
	ssize_t w;
	while ((w = write(fd, image, sizeof image)) < 0 && errno == EINTR)
		;
	if (w >= 0 && w != (ssize_t)sizeof image)
		errno = ENOSPC;
	else if (w == (ssize_t)sizeof image) {
		if ((result = mmap(NULL, SHMR_SEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
			result = SEM_FAILED;
		else if (linkat(dfd, tmp, dfd, fname, 0) == 0)	/* atomic publication */
			result = sem_attach(fd, fname, result, oflag);
		else {
			/* Someone published it first. With O_EXCL this is the
			 * EEXIST that CPython's name-retry loop relies on. */
			again = !(oflag & O_EXCL) && errno == EEXIST;
			err = errno;
			munmap(result, SHMR_SEM_SIZE);
			errno = err;
			result = SEM_FAILED;
		}
	}
out:
	err = errno;
	if (created)
		unlinkat(dfd, tmp, 0);	/* the published name keeps the file */
	close(fd);
	errno = err;
	if (again) {
		again = created = 0;
		goto try_again;
	}
	return result;
}

/* ---- interposed functions ------------------------------------------------ */

EXPORT sem_t *sem_open(const char *name, int oflag, ...)
{
	mode_t mode = 0;
	unsigned value = 0;
	if (oflag & O_CREAT) {	/* the variadic arguments exist only then */
		va_list ap;
		va_start(ap, oflag);
		mode = va_arg(ap, mode_t);
		value = va_arg(ap, unsigned);
		va_end(ap);
	}
	if (get_mode() == M_NATIVE && REAL(sem_open))
		return REAL(sem_open)(name, oflag, mode, value);
	struct call c;
	char fname[NAME_MAX + 1];
	sem_t *r = SEM_FAILED;
	enter(&c);
	int dfd = target(name, 1, fname, 0);
	if (dfd >= 0 && (oflag & O_CREAT) && value > SHMR_SEM_VALUE_MAX)
		errno = EINVAL;
	else if (dfd >= 0)
		r = store_sem_open(dfd, fname, oflag, mode, value);
	leave(&c, r != SEM_FAILED);
	return r;
}

EXPORT int sem_close(sem_t *sem)
{
	struct sem_rec **pp, *r = NULL;
	int found = 0, rc = 0, saved = errno;
	lock();
	for (pp = by_ptr ? &by_ptr[hash_ptr(sem)] : &r; *pp && !found; pp = &(*pp)->next_ptr)
		if ((found = (*pp)->sem == sem) && --(*pp)->refcnt == 0) {
			r = *pp;	/* last reference: unlink from both chains */
			*pp = r->next_ptr;
			for (pp = &by_key[hash_key(r->dev, r->ino, r->name)]; *pp != r; pp = &(*pp)->next_key)
				;
			*pp = r->next_key;
			break;
		}
	unlock();
	if (!found) {	/* not ours: glibc's, in native mode */
		if (get_mode() == M_NATIVE && REAL(sem_close))
			return REAL(sem_close)(sem);
		errno = EINVAL;
		return -1;
	}
	if (r) {
		rc = munmap(r->sem, SHMR_SEM_SIZE);
		free(r);
	}
	if (rc == 0)
		errno = saved;
	return rc;
}

/* Both unlinks. EPERM (sticky directory) is EACCES, as in glibc. */
static int store_unlink(const char *name, int sem)
{
	struct call c;
	char fname[NAME_MAX + 1];
	int dfd, rc = -1;
	enter(&c);
	if ((dfd = target(name, sem, fname, 1)) >= 0 && (rc = unlinkat(dfd, fname, 0)) != 0 && errno == EPERM)
		errno = EACCES;
	leave(&c, rc == 0);
	return rc;
}

EXPORT int sem_unlink(const char *name)
{
	if (get_mode() == M_NATIVE && REAL(sem_unlink))
		return REAL(sem_unlink)(name);
	return store_unlink(name, 1);
}

EXPORT int shm_unlink(const char *name)
{
	if (get_mode() == M_NATIVE && REAL(shm_unlink))
		return REAL(shm_unlink)(name);
	return store_unlink(name, 0);
}

static int store_shm_open(int dfd, const char *fname, int oflag, mode_t mode)
{
	/* Truncate only once we know the file is one we may adopt. */
	int trunc = (oflag & O_TRUNC) && (oflag & O_ACCMODE) != O_RDONLY, fl, err = 0;
	int fd = openat(dfd, fname, (oflag & ~(trunc ? O_TRUNC : 0)) | O_NOFOLLOW | O_CLOEXEC |
			O_NONBLOCK | O_NOCTTY, mode);	/* a FIFO must not block */
	struct stat st;
	if (fd < 0) {
		if (errno == EISDIR || errno == ENXIO)	/* directory; socket or FIFO */
			errno = EINVAL;
		return -1;
	}
	if (fstat(fd, &st) != 0)
		err = errno;
	else if (!S_ISREG(st.st_mode))
		err = EINVAL;
	else if ((oflag & (O_CREAT | O_EXCL)) == O_CREAT && st.st_uid != geteuid())
		err = EACCES;	/* never adopt another user's object */
	else if (trunc && ftruncate(fd, 0) != 0)
		err = errno;
	else if (!(oflag & O_NONBLOCK) &&
		 ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
		err = errno;
	if (!err)
		return fd;
	close(fd);
	errno = err;
	return -1;
}

EXPORT int shm_open(const char *name, int oflag, mode_t mode)
{
	if (get_mode() == M_NATIVE && REAL(shm_open))
		return REAL(shm_open)(name, oflag, mode);
	struct call c;
	char fname[NAME_MAX + 1];
	int dfd, fd = -1;
	enter(&c);
	if ((dfd = target(name, 0, fname, 0)) >= 0)
		fd = store_shm_open(dfd, fname, oflag, mode);
	leave(&c, fd >= 0);
	return fd;
}

/* ---- statvfs: in store mode /dev/shm is full ------------------------------ */

/* CPython's multiprocessing.heap.Arena calls os.statvfs('/dev/shm')
 * unguarded; with 0 free bytes it uses its temporary directory instead. */
static int fake_dev_shm(const char *path)
{
	if (!path || strncmp(path, SHMR_NATIVE_DIR, sizeof SHMR_NATIVE_DIR - 1) != 0)
		return 0;
	for (path += sizeof SHMR_NATIVE_DIR - 1; *path == '/'; path++)
		;
	return *path == '\0' && get_mode() != M_NATIVE;
}

#define DEFINE_STATVFS(fn)						\
EXPORT int fn(const char *path, struct fn *buf)				\
{									\
	if (fake_dev_shm(path)) {					\
		memset(buf, 0, sizeof *buf);				\
		buf->f_bsize = buf->f_frsize = 4096;			\
		buf->f_namemax = NAME_MAX;				\
		return 0;						\
	}								\
	if (REAL(fn))							\
		return REAL(fn)(path, buf);				\
	errno = ENOSYS;							\
	return -1;							\
}
DEFINE_STATVFS(statvfs)
DEFINE_STATVFS(statvfs64)
