/*
 * nolibdl.c - a C program for an old glibc (tests/oldglibc/run.sh) that loads neither libdl,
 * nor libpthread, nor librt, so the preload finds no dlsym (its weak dlsym@GLIBC_2.2.5 is NULL
 * there): sem_* and shm_* must then be served by the store code, on /dev/shm in native mode,
 * and statvfs from statfs.
 *
 * Built on this machine's glibc (2.36) to run on glibc 2.31, there is no compiler in the
 * rootfs: no crt1.o (its _start calls __libc_start_main@GLIBC_2.34), an entry point of our own
 * instead (ld.so has already initialised libc by then), and the old versions of sem_* and
 * shm_* (which glibc >= 2.34 still exports as compat symbols; the preload's unversioned
 * definitions bind to any version). mk/oldglibc.mk checks the result needs GLIBC <= 2.17.
 *
 *   NOLIBDL_DIR=/dev/shm|/tmp/shm  where the objects must appear
 *   NOLIBDL_KEEP=NAME              leave a semaphore NAME of value 2 behind (for an interop check)
 * Prints "nolibdl: N checks, M failed"; exit status 1 if any failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#if defined(__x86_64__)
#define OLD "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define OLD "GLIBC_2.17"
#endif
__asm__(".symver sem_open, sem_open@" OLD "\n.symver sem_close, sem_close@" OLD
	"\n.symver sem_unlink, sem_unlink@" OLD "\n.symver shm_open, shm_open@" OLD
	"\n.symver shm_unlink, shm_unlink@" OLD);

static int checks, failed;

#define CHECK(c)                                                                          \
	do {                                                                              \
		checks++;                                                                 \
		if (!(c)) {                                                               \
			failed++;                                                         \
			printf("nolibdl: line %d: CHECK(%s) failed (errno %d: %s)\n",     \
			       __LINE__, #c, errno, strerror(errno));                     \
		}                                                                         \
	} while (0)

static int exists(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Neither libdl nor the libraries that hold sem_* and shm_* before glibc 2.34 are mapped. */
static void check_maps(void)
{
	char buf[65536];
	int fd = open("/proc/self/maps", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	CHECK(n > 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	CHECK(strstr(buf, "libshm_redirect") != NULL);
	CHECK(strstr(buf, "/libdl") == NULL && strstr(buf, "/libpthread") == NULL &&
	      strstr(buf, "/librt") == NULL);
}

static void check_sem(const char *dir)
{
	sem_t *s = sem_open("/nolibdl-sem", O_CREAT | O_EXCL, 0600, 3);
	CHECK(s != SEM_FAILED);
	if (s == SEM_FAILED)
		return;
	CHECK(exists(dir, "sem.nolibdl-sem"));
	CHECK(*(volatile uint32_t *)s == 3);	/* the value word of glibc's sem_t */
	CHECK(sem_open("nolibdl-sem", O_CREAT | O_EXCL, 0600, 0) == SEM_FAILED && errno == EEXIST);
	sem_t *t = sem_open("nolibdl-sem", 0);
	CHECK(t == s);	/* mapped once, refcounted */
	CHECK(sem_close(t) == 0 && sem_close(s) == 0);
	CHECK(sem_close(s) == -1 && errno == EINVAL);
	CHECK(sem_unlink("/nolibdl-sem") == 0 && !exists(dir, "sem.nolibdl-sem"));
	CHECK(sem_unlink("/nolibdl-sem") == -1 && errno == ENOENT);
}

static void check_shm(const char *dir)
{
	int fd = shm_open("/nolibdl-shm", O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(ftruncate(fd, 4096) == 0);
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	if (p != MAP_FAILED) {
		memcpy(p, "hello", 6);
		munmap(p, 4096);
	}
	close(fd);
	CHECK(exists(dir, "nolibdl-shm"));
	char buf[6] = "";
	fd = shm_open("nolibdl-shm", O_RDONLY, 0);
	CHECK(fd >= 0 && read(fd, buf, 6) == 6 && strcmp(buf, "hello") == 0);
	close(fd);
	CHECK(shm_unlink("/nolibdl-shm") == 0 && !exists(dir, "nolibdl-shm"));
}

/* statvfs is the preload's (glibc's conversion from statfs) for every path. */
static void check_statvfs(const char *dir)
{
	struct statvfs sv;
	struct statfs sf;
	const char *paths[] = { "/", "/proc", "/tmp", "/dev/shm" };
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		if (strcmp(paths[i], "/dev/shm") == 0 && strcmp(dir, "/dev/shm") != 0) {
			/* store mode: a full /dev/shm, so CPython's heap goes elsewhere */
			CHECK(statvfs(paths[i], &sv) == 0 && sv.f_bavail == 0 && sv.f_bsize == 4096);
			continue;
		}
		CHECK(statvfs(paths[i], &sv) == 0 && statfs(paths[i], &sf) == 0);
		CHECK(sv.f_bsize == (unsigned long)sf.f_bsize && sv.f_blocks == sf.f_blocks &&
		      sv.f_files == sf.f_files && sv.f_namemax == (unsigned long)sf.f_namelen &&
		      sv.f_frsize == (unsigned long)(sf.f_frsize ? sf.f_frsize : sf.f_bsize) &&
		      sv.f_flag == ((unsigned long)sf.f_flags & ~0x20ul) &&
		      sv.f_fsid == ((uint64_t)(uint32_t)sf.f_fsid.__val[0] |
				    (uint64_t)(uint32_t)sf.f_fsid.__val[1] << 32));
	}
	CHECK(statvfs("/", &sv) == 0 && (sv.f_flag & ST_RDONLY));	/* the sandbox's --ro */
	CHECK(statvfs("/no/such/path", &sv) == -1 && errno == ENOENT);
}

static int run(void)
{
	const char *dir = getenv("NOLIBDL_DIR"), *keep = getenv("NOLIBDL_KEEP");
	if (!dir) {
		printf("nolibdl: set NOLIBDL_DIR\n");
		return 2;
	}
	check_maps();
	check_sem(dir);
	check_shm(dir);
	check_statvfs(dir);
	if (keep) {	/* for glibc's own sem_open to find: value 2 */
		sem_t *s = sem_open(keep, O_CREAT | O_EXCL, 0600, 2);
		CHECK(s != SEM_FAILED && sem_close(s) == 0);
	}
	printf("nolibdl: %d checks, %d failed\n", checks, failed);
	return failed != 0;
}

/* The entry point (-nostartfiles -e nolibdl_start): the kernel leaves the stack 16-byte
 * aligned, not as after a call, hence force_align_arg_pointer. */
__attribute__((force_align_arg_pointer, noreturn, used)) void nolibdl_start(void)
{
	exit(run());
}
