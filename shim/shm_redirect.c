/*
 * shm_redirect.c - LD_PRELOAD library that puts POSIX named semaphores and
 * shared memory segments into a "store" directory when /dev/shm is missing
 * (AWS Lambda), so that Python multiprocessing works there.
 *
 * core/STORE.md specifies the format and the rules; store_format.h holds the
 * constants, generated from the Go core, which reads the same store; store.c decides
 * where objects live (native or store) and checks the store directory.
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

#include "store.h"

#define EXPORT __attribute__((visibility("default")))

_Static_assert(sizeof(sem_t) == SHMR_SEM_SIZE, "sem_t is not the image in the store");

/* ---- real symbols: resolved once, lazily, without a lock ----------------- */

/* dlsym, for any glibc >= 2.17, without a DT_NEEDED on libdl (a mapping at every process
 * start). glibc >= 2.34 has dlsym@@GLIBC_2.34 in libc and keeps the old version as a compat
 * symbol; before 2.34 that old version is in libdl.so.2 only. So we bind to the old version,
 * weakly: where libdl is not loaded (e.g. a C program on glibc 2.26 that never dlopens) the
 * address is NULL instead of a fatal "symbol lookup error", and we do without it (see
 * real_sym). SHMR_FORCE_NO_DLSYM builds that case for the tests on any glibc. */
#if defined(SHMR_FORCE_NO_DLSYM)
#define old_dlsym ((void *(*)(void *, const char *))0)
#else
#if defined(__x86_64__)
#define DLSYM_VERSION "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define DLSYM_VERSION "GLIBC_2.17"
#else
#error "the first GLIBC_ version of this architecture: dlsym's old version"
#endif
extern void *old_dlsym(void *handle, const char *name) __attribute__((weak));
__asm__(".symver old_dlsym, dlsym@" DLSYM_VERSION);
#endif

static char not_found;	/* looked up and absent (e.g. shm_open in an unloaded librt) */

/* The next definition of name, or NULL: without dlsym, or where the library defining it is
 * not in the global scope. Before glibc 2.34 sem_* are in libpthread.so.0 and shm_* in
 * librt.so.1, which a program may not load, or load only privately (CPython's _posixshmem
 * links librt and is dlopened RTLD_LOCAL). Callers then serve the call themselves: sem_* and
 * shm_* with the store code on /dev/shm (the same files as glibc), statvfs from statfs. */
static void *real_sym(_Atomic(void *) *slot, const char *name)
{
	void *p = atomic_load_explicit(slot, memory_order_acquire);
	if (p == NULL) {	/* racing threads all store the same answer */
		void *(*dls)(void *, const char *) = old_dlsym;
		p = dls ? dls(RTLD_NEXT, name) : NULL;
		atomic_store_explicit(slot, p ? p : &not_found, memory_order_release);
	}
	return p == &not_found ? NULL : p;
}

#define REAL(fn) ((__typeof__(&fn))real_sym(&real_##fn, #fn))
static _Atomic(void *) real_sem_open, real_sem_close, real_sem_unlink, real_shm_open,
	real_shm_unlink, real_statvfs, real_statvfs64;

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
	if (shmr_fstat(fd, &st) != 0)
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
	shmr_lock();
	if (!by_key && (by_key = calloc(2 * NBUCKETS, sizeof *by_key)) != NULL)
		by_ptr = by_key + NBUCKETS;
	if (!by_key) {
		shmr_unlock();
		munmap(map, SHMR_SEM_SIZE);
		free(r);
		errno = ENOMEM;
		return SEM_FAILED;
	}
	for (struct sem_rec *e = by_key[hk]; e; e = e->next_key)
		if (e->dev == st.st_dev && e->ino == st.st_ino && strcmp(e->name, name) == 0) {
			e->refcnt++;	/* mapped already: the same pointer again */
			shmr_unlock();
			munmap(map, SHMR_SEM_SIZE);
			free(r);
			return e->sem;
		}
	*r = (struct sem_rec){ .next_key = by_key[hk], .next_ptr = by_ptr[hash_ptr(map)],
			       .sem = map, .dev = st.st_dev, .ino = st.st_ino, .refcnt = 1 };
	memcpy(r->name, name, len);
	by_key[hk] = by_ptr[hash_ptr(map)] = r;
	shmr_unlock();
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

/* Writes glibc's sem_init(pshared=1) image of a semaphore of this value (no waiters) to fd:
 * 0, or -1 with errno (ENOSPC for a short write). */
static int write_sem_image(int fd, unsigned value)
{
	unsigned char image[SHMR_SEM_SIZE] = { 0 };
	uint64_t data = value;
	int private = SHMR_SEM_PRIVATE_SHARED;
	memcpy(image, &data, sizeof data);
	memcpy(image + SHMR_SEM_PRIVATE_OFFSET, &private, sizeof private);
	ssize_t w;
	while ((w = write(fd, image, sizeof image)) < 0 && errno == EINTR)
		;
	if (w >= 0 && w != (ssize_t)sizeof image)
		errno = ENOSPC;
	return w == (ssize_t)sizeof image ? 0 : -1;
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
	if (write_sem_image(fd, value) == 0) {
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
	if (shmr_mode() == M_NATIVE && REAL(sem_open))
		return REAL(sem_open)(name, oflag, mode, value);
	struct call c;
	char fname[NAME_MAX + 1];
	sem_t *r = SEM_FAILED;
	shmr_enter(&c);
	int dfd = shmr_target(name, 1, fname, 0);
	if (dfd >= 0 && (oflag & O_CREAT) && value > SHMR_SEM_VALUE_MAX)
		errno = EINVAL;
	else if (dfd >= 0)
		r = store_sem_open(dfd, fname, oflag, mode, value);
	shmr_leave(&c, r != SEM_FAILED);
	return r;
}

EXPORT int sem_close(sem_t *sem)
{
	struct sem_rec **pp, *r = NULL;
	int found = 0, rc = 0, saved = errno;
	shmr_lock();
	for (pp = by_ptr ? &by_ptr[hash_ptr(sem)] : &r; *pp && !found; pp = &(*pp)->next_ptr)
		if ((found = (*pp)->sem == sem) && --(*pp)->refcnt == 0) {
			r = *pp;	/* last reference: unlink from both chains */
			*pp = r->next_ptr;
			for (pp = &by_key[hash_key(r->dev, r->ino, r->name)]; *pp != r; pp = &(*pp)->next_key)
				;
			*pp = r->next_key;
			break;
		}
	shmr_unlock();
	if (!found) {	/* not ours: glibc's, in native mode */
		if (shmr_mode() == M_NATIVE && REAL(sem_close))
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
	shmr_enter(&c);
	if ((dfd = shmr_target(name, sem, fname, 1)) >= 0 && (rc = unlinkat(dfd, fname, 0)) != 0 && errno == EPERM)
		errno = EACCES;
	shmr_leave(&c, rc == 0);
	return rc;
}

EXPORT int sem_unlink(const char *name)
{
	if (shmr_mode() == M_NATIVE && REAL(sem_unlink))
		return REAL(sem_unlink)(name);
	return store_unlink(name, 1);
}

EXPORT int shm_unlink(const char *name)
{
	if (shmr_mode() == M_NATIVE && REAL(shm_unlink))
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
	if (shmr_fstat(fd, &st) != 0)
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
	if (shmr_mode() == M_NATIVE && REAL(shm_open))
		return REAL(shm_open)(name, oflag, mode);
	struct call c;
	char fname[NAME_MAX + 1];
	int dfd, fd = -1;
	shmr_enter(&c);
	if ((dfd = shmr_target(name, 0, fname, 0)) >= 0)
		fd = store_shm_open(dfd, fname, oflag, mode);
	shmr_leave(&c, fd >= 0);
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
	return *path == '\0' && shmr_mode() != M_NATIVE;
}

/* Without a real statvfs (no dlsym: see real_sym), glibc's own conversion from statfs
 * (sysdeps/unix/sysv/linux/internal_statvfs.c), field by field. The kernel has set ST_VALID
 * in f_flags since 2.6.36 (glibc needs 3.2) and glibc drops it with ^: & ~ is the same. */
#define ST_VALID 0x0020
#define FROM_STATFS(buf, fs)							\
	do {									\
		memset((buf), 0, sizeof *(buf));	/* and __f_spare */	\
		(buf)->f_bsize = (fs).f_bsize;					\
		(buf)->f_frsize = (fs).f_frsize ? (fs).f_frsize : (fs).f_bsize; \
		(buf)->f_blocks = (fs).f_blocks;				\
		(buf)->f_bfree = (fs).f_bfree;					\
		(buf)->f_bavail = (fs).f_bavail;				\
		(buf)->f_files = (fs).f_files;					\
		(buf)->f_ffree = (fs).f_ffree;					\
		(buf)->f_favail = (fs).f_ffree;					\
		(buf)->f_fsid = ((uint64_t)(uint32_t)(fs).f_fsid.__val[0] |	\
				 (uint64_t)(fs).f_fsid.__val[1] << 32);	\
		(buf)->f_flag = (unsigned long)(fs).f_flags & ~(unsigned long)ST_VALID; \
		(buf)->f_namemax = (fs).f_namelen;				\
	} while (0)
_Static_assert(sizeof(((struct statvfs *)0)->f_fsid) == 8, "f_fsid holds both statfs words");

#define DEFINE_STATVFS(fn)						\
EXPORT int fn(const char *path, struct fn *buf)				\
{									\
	struct statfs fs;						\
	if (fake_dev_shm(path)) {					\
		memset(buf, 0, sizeof *buf);				\
		buf->f_bsize = buf->f_frsize = 4096;			\
		buf->f_namemax = NAME_MAX;				\
		return 0;						\
	}								\
	if (REAL(fn))							\
		return REAL(fn)(path, buf);				\
	if (statfs(path, &fs) != 0)					\
		return -1;						\
	FROM_STATFS(buf, fs);						\
	return 0;							\
}
DEFINE_STATVFS(statvfs)
DEFINE_STATVFS(statvfs64)
