/*
 * test_shim.c - tests of libshm_redirect (linked directly, so it interposes
 * without LD_PRELOAD). Each test runs in a forked child, so the library
 * decides its mode afresh; the child points SHM_REDIRECT_DIR at STORE, a
 * not-yet-existing directory inside a fresh mkdtemp BASE. After the child,
 * the runner requires that BASE holds nothing but an empty STORE.
 *
 * Usage: test_shim [substring]   (runs the tests whose name contains it)
 * Output: one line per test, then "N passed, M failed"; exit 1 on failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../store_format.h"

#define NOBODY 65534

static char BASE[64], STORE[96];
static int failures;

#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "    %s:%d: CHECK(%s) failed (errno %d: %s)\n", \
				__FILE__, __LINE__, #c, errno, strerror(errno));   \
			failures++;                                                \
		}                                                                  \
	} while (0)

/* expr must be true (the call failed) with errno e. */
#define CHECK_ERR(expr, e)                                                         \
	do {                                                                       \
		errno = 0;                                                         \
		int ok_ = (expr);                                                  \
		int en_ = errno;                                                   \
		if (!ok_ || en_ != (e)) {                                          \
			fprintf(stderr, "    %s:%d: %s: want errno %s, got %s (%s)\n", \
				__FILE__, __LINE__, #expr, strerror(e),            \
				ok_ ? "true" : "false", strerror(en_));            \
			failures++;                                                \
		}                                                                  \
	} while (0)

/* A path inside STORE (rotating static buffers). */
static const char *sp(const char *name)
{
	static char buf[8][PATH_MAX];
	static int i;
	char *b = buf[i++ % 8];
	snprintf(b, PATH_MAX, "%s/%s", STORE, name);
	return b;
}

static const char *bp(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;
	char *b = buf[i++ % 4];
	snprintf(b, PATH_MAX, "%s/%s", BASE, name);
	return b;
}

/* Entries of dir other than . and .. (-1 if it cannot be read). */
static int count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    (!prefix || strncmp(e->d_name, prefix, strlen(prefix)) == 0))
			n++;
	closedir(d);
	return n;
}

/* Creates STORE as the library would (root-owned, 01777). */
static void make_store(void)
{
	CHECK(mkdir(STORE, 0700) == 0);
	CHECK(chmod(STORE, 01777) == 0);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	CHECK(fd >= 0);
	CHECK(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

/* A valid semaphore image with the given value. */
static void sem_image(unsigned char img[SHMR_SEM_SIZE], uint32_t value)
{
	uint64_t data = value;
	int private = SHMR_SEM_PRIVATE_SHARED;
	memset(img, 0, SHMR_SEM_SIZE);
	memcpy(img, &data, sizeof data);
	memcpy(img + SHMR_SEM_PRIVATE_OFFSET, &private, sizeof private);
}

/* Runs fn in a child as uid/gid NOBODY; returns its exit status. */
static int as_nobody(void (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
			_exit(2);
		fn();
		exit(failures ? 1 : 0);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int getvalue(sem_t *s)
{
	int v = -1;
	CHECK(sem_getvalue(s, &v) == 0);
	return v;
}

/* ---- names ---------------------------------------------------------------- */

static void t_names_invalid(void)
{
	const char *bad[] = { "", "/", "//", "a/b", "/a/b", "a/" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK_ERR(sem_open(bad[i], O_CREAT, 0600, 0) == SEM_FAILED, EINVAL);
		CHECK_ERR(sem_open(bad[i], 0) == SEM_FAILED, EINVAL);
		CHECK_ERR(shm_open(bad[i], O_CREAT | O_RDWR, 0600) == -1, EINVAL);
		CHECK_ERR(sem_unlink(bad[i]) == -1, ENOENT);
		CHECK_ERR(shm_unlink(bad[i]) == -1, ENOENT);
	}
}

static void t_names_leading_slashes(void)
{
	sem_t *a = sem_open("//lead", O_CREAT | O_EXCL, 0600, 0);
	CHECK(a != SEM_FAILED);
	CHECK(access(sp("sem.lead"), F_OK) == 0);
	sem_t *b = sem_open("lead", 0);
	CHECK(a == b);
	CHECK(sem_close(a) == 0 && sem_close(b) == 0);
	CHECK(sem_unlink("///lead") == 0);
	int fd = shm_open("///seg", O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK(access(sp("seg"), F_OK) == 0);
	CHECK(shm_unlink("seg") == 0);
}

static void t_names_length(void)
{
	char n[300];
	memset(n, 'x', sizeof n);
	n[SHMR_SEM_NAME_MAX] = '\0';		/* 251 */
	sem_t *s = sem_open(n, O_CREAT | O_EXCL, 0600, 0);
	CHECK(s != SEM_FAILED);
	CHECK(sem_close(s) == 0);
	CHECK(sem_unlink(n) == 0);
	n[SHMR_SEM_NAME_MAX] = 'x';		/* 252 */
	n[SHMR_SEM_NAME_MAX + 1] = '\0';
	CHECK_ERR(sem_open(n, O_CREAT, 0600, 0) == SEM_FAILED, ENAMETOOLONG);
	CHECK_ERR(sem_open(n, 0) == SEM_FAILED, ENAMETOOLONG);
	CHECK_ERR(sem_unlink(n) == -1, ENOENT);

	memset(n, 'y', sizeof n);
	n[SHMR_SHM_NAME_MAX] = '\0';		/* 255 */
	int fd = shm_open(n, O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK(shm_unlink(n) == 0);
	n[SHMR_SHM_NAME_MAX] = 'y';		/* 256 */
	n[SHMR_SHM_NAME_MAX + 1] = '\0';
	CHECK_ERR(shm_open(n, O_CREAT | O_RDWR, 0600) == -1, ENAMETOOLONG);
	CHECK_ERR(shm_unlink(n) == -1, ENOENT);

	/* leading slashes do not count */
	n[0] = '/';
	n[SHMR_SHM_NAME_MAX] = '\0';
	fd = shm_open(n, O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK(shm_unlink(n) == 0);
}

/* ---- semaphore opening ---------------------------------------------------- */

static void t_sem_value_max(void)
{
	CHECK_ERR(sem_open("v", O_CREAT, 0600, (unsigned)SEM_VALUE_MAX + 1) == SEM_FAILED, EINVAL);
	CHECK_ERR(sem_open("v", O_CREAT, 0600, UINT32_MAX) == SEM_FAILED, EINVAL);
	CHECK(count_entries(STORE, NULL) <= 0);
	sem_t *s = sem_open("v", O_CREAT | O_EXCL, 0600, (unsigned)SEM_VALUE_MAX);
	CHECK(s != SEM_FAILED);
	CHECK(getvalue(s) == SEM_VALUE_MAX);
	CHECK_ERR(sem_post(s) == -1, EOVERFLOW);
	CHECK(sem_close(s) == 0);
	CHECK(sem_unlink("v") == 0);
}

static void t_excl_existing(void)
{
	sem_t *s = sem_open("e", O_CREAT | O_EXCL, 0600, 1);
	CHECK(s != SEM_FAILED);
	CHECK_ERR(sem_open("e", O_CREAT | O_EXCL, 0600, 1) == SEM_FAILED, EEXIST);
	int fd = shm_open("e", O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(fd >= 0);
	CHECK_ERR(shm_open("e", O_CREAT | O_EXCL | O_RDWR, 0600) == -1, EEXIST);
	close(fd);
	CHECK(sem_close(s) == 0);
	CHECK(sem_unlink("e") == 0 && shm_unlink("e") == 0);
	CHECK(count_entries(STORE, NULL) == 0);	/* no temporaries left */
}

static void t_missing_without_creat(void)
{
	CHECK_ERR(sem_open("nope", 0) == SEM_FAILED, ENOENT);
	CHECK_ERR(sem_open("nope", O_RDWR) == SEM_FAILED, ENOENT);
	CHECK_ERR(shm_open("nope", O_RDWR, 0) == -1, ENOENT);
	CHECK_ERR(sem_unlink("nope") == -1, ENOENT);
	CHECK_ERR(shm_unlink("nope") == -1, ENOENT);
}

static void t_eisdir(void)
{
	make_store();
	CHECK(mkdir(sp("sem.d"), 0700) == 0 && mkdir(sp("d"), 0700) == 0);
	CHECK_ERR(sem_open("d", 0) == SEM_FAILED, EINVAL);
	CHECK_ERR(sem_open("d", O_CREAT, 0600, 0) == SEM_FAILED, EINVAL);
	CHECK_ERR(sem_open("d", O_CREAT | O_EXCL, 0600, 0) == SEM_FAILED, EEXIST);
	CHECK_ERR(shm_open("d", O_RDWR, 0) == -1, EINVAL);
	CHECK_ERR(shm_open("d", O_RDONLY, 0) == -1, EINVAL);
	CHECK_ERR(shm_open("d", O_RDWR | O_CREAT, 0600) == -1, EINVAL);
	CHECK(rmdir(sp("sem.d")) == 0 && rmdir(sp("d")) == 0);
	CHECK(count_entries(STORE, NULL) == 0);
}

static void unlink_as_nobody(void)
{
	CHECK_ERR(sem_unlink("mine") == -1, EACCES);
	CHECK_ERR(shm_unlink("mine") == -1, EACCES);
	CHECK_ERR(sem_unlink("absent") == -1, ENOENT);
}

static void t_eperm_is_eacces(void)
{
	sem_t *s = sem_open("mine", O_CREAT | O_EXCL, 0666, 0);
	CHECK(s != SEM_FAILED);
	int fd = shm_open("mine", O_CREAT | O_EXCL | O_RDWR, 0666);
	CHECK(fd >= 0);
	close(fd);
	struct stat st;
	CHECK(stat(STORE, &st) == 0 && (st.st_mode & 07777) == 01777);
	CHECK(as_nobody(unlink_as_nobody) == 0);
	CHECK(access(sp("sem.mine"), F_OK) == 0 && access(sp("mine"), F_OK) == 0);
	CHECK(sem_close(s) == 0);
	CHECK(sem_unlink("mine") == 0 && shm_unlink("mine") == 0);
}

static void t_same_pointer_refcount(void)
{
	sem_t *a = sem_open("r", O_CREAT, 0600, 2);
	sem_t *b = sem_open("r", 0);
	sem_t *c = sem_open("/r", O_CREAT, 0600, 0);
	CHECK(a != SEM_FAILED && a == b && b == c);
	CHECK(getvalue(a) == 2);
	CHECK(sem_close(a) == 0 && sem_close(a) == 0);
	CHECK(getvalue(a) == 2);		/* still mapped */
	CHECK(sem_close(a) == 0);
	CHECK_ERR(sem_close(a) == -1, EINVAL);
	/* A new file under the same name is a different semaphore. */
	a = sem_open("r", 0);
	CHECK(sem_unlink("r") == 0);
	b = sem_open("r", O_CREAT, 0600, 0);
	CHECK(a != SEM_FAILED && b != SEM_FAILED && a != b);
	CHECK(sem_close(a) == 0 && sem_close(b) == 0);
	CHECK(sem_unlink("r") == 0);
}

static void t_close_unknown(void)
{
	sem_t local;
	CHECK(sem_init(&local, 0, 0) == 0);
	CHECK_ERR(sem_close(&local) == -1, EINVAL);
	/* also after a real semaphore exists (non-empty table) */
	sem_t *s = sem_open("u", O_CREAT, 0600, 0);
	CHECK(s != SEM_FAILED);
	CHECK_ERR(sem_close(&local) == -1, EINVAL);
	CHECK_ERR(sem_close((sem_t *)((char *)s + 4096)) == -1, EINVAL);
	CHECK(sem_close(s) == 0 && sem_unlink("u") == 0);
	sem_destroy(&local);
}

static void t_args_only_with_creat(void)
{
	umask(0);
	sem_t *s = sem_open("a", O_CREAT | O_EXCL, 0640, 3);
	CHECK(s != SEM_FAILED);
	struct stat st;
	CHECK(stat(sp("sem.a"), &st) == 0 && (st.st_mode & 0777) == 0640 && st.st_size == SHMR_SEM_SIZE);
	CHECK(getvalue(s) == 3);
	/* Without O_CREAT, extra arguments must be ignored, even invalid ones. */
	sem_t *t = sem_open("a", O_EXCL, 0, (unsigned)SEM_VALUE_MAX + 1);
	CHECK(t == s);
	t = sem_open("a", O_RDWR);
	CHECK(t == s);
	/* O_CREAT on an existing one: opened, value untouched. */
	t = sem_open("a", O_CREAT, 0600, 7);
	CHECK(t == s && getvalue(s) == 3);
	umask(022);
	sem_t *u = sem_open("b", O_CREAT, 0666, 0);
	CHECK(u != SEM_FAILED);
	CHECK(stat(sp("sem.b"), &st) == 0 && (st.st_mode & 0777) == 0644);
	for (int i = 0; i < 4; i++)
		CHECK(sem_close(s) == 0);
	CHECK(sem_close(u) == 0);
	CHECK(sem_unlink("a") == 0 && sem_unlink("b") == 0);
}

/* Inode of the file mapped at addr, from /proc/self/maps. */
static unsigned long mapped_inode(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long lo, hi, ino = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) == 3 &&
		    (uintptr_t)addr >= lo && (uintptr_t)addr < hi)
			break;
		else
			ino = 0;
	if (f)
		fclose(f);
	return ino;
}

#define RACERS 64
static void t_race_64_processes(void)
{
	int go[2], res[2];
	pid_t pids[RACERS];
	CHECK(pipe(go) == 0 && pipe(res) == 0);
	for (int i = 0; i < RACERS; i++) {
		if ((pids[i] = fork()) == 0) {
			char c;
			close(go[1]);
			if (read(go[0], &c, 1) != 0)	/* wait for the start */
				_exit(3);
			sem_t *s = sem_open("race", O_CREAT, 0600, 0);
			unsigned long ino = s == SEM_FAILED ? 0 : mapped_inode(s);
			if (s != SEM_FAILED)
				sem_post(s);
			if (write(res[1], &ino, sizeof ino) != sizeof ino)
				_exit(4);
			_exit(0);
		}
	}
	close(go[0]);
	close(res[1]);
	close(go[1]);		/* start! */
	unsigned long ino, first = 0;
	int n = 0, same = 1, st, ok = 1;
	while (read(res[0], &ino, sizeof ino) == sizeof ino) {
		if (n++ == 0)
			first = ino;
		same &= ino == first && ino != 0;
	}
	close(res[0]);
	for (int i = 0; i < RACERS; i++)
		ok &= waitpid(pids[i], &st, 0) == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	CHECK(ok && n == RACERS && same);
	struct stat sb;
	CHECK(stat(sp("sem.race"), &sb) == 0 && sb.st_ino == first);
	CHECK(count_entries(STORE, NULL) == 1);
	sem_t *s = sem_open("race", 0);
	CHECK(s != SEM_FAILED && getvalue(s) == RACERS);
	CHECK(sem_close(s) == 0 && sem_unlink("race") == 0);
}

/* ---- hostile objects at a name -------------------------------------------- */

static void t_symlink_at_name(void)
{
	unsigned char img[SHMR_SEM_SIZE];
	make_store();
	sem_image(img, 1);
	write_file(sp("sem.real"), img, sizeof img, 0600);
	CHECK(symlink("sem.real", sp("sem.l")) == 0);
	CHECK(symlink("sem.nothere", sp("sem.dangling")) == 0);
	CHECK(symlink("seg-target", sp("l")) == 0);
	CHECK_ERR(sem_open("l", 0) == SEM_FAILED, ELOOP);
	CHECK_ERR(sem_open("l", O_CREAT, 0600, 0) == SEM_FAILED, ELOOP);
	CHECK_ERR(sem_open("dangling", O_CREAT, 0600, 0) == SEM_FAILED, ELOOP);
	CHECK(access(sp("sem.nothere"), F_OK) == -1);
	CHECK_ERR(shm_open("l", O_RDWR, 0) == -1, ELOOP);
	CHECK_ERR(shm_open("l", O_RDWR | O_CREAT, 0600) == -1, ELOOP);
	CHECK(access(sp("seg-target"), F_OK) == -1);
	CHECK(unlink(sp("sem.real")) == 0 && unlink(sp("sem.l")) == 0 &&
	      unlink(sp("sem.dangling")) == 0 && unlink(sp("l")) == 0);
}

static void t_fifo_at_name(void)
{
	make_store();
	CHECK(mkfifo(sp("sem.f"), 0600) == 0 && mkfifo(sp("f"), 0600) == 0);
	alarm(10);	/* a blocking open would hang here */
	CHECK_ERR(sem_open("f", 0) == SEM_FAILED, EINVAL);
	CHECK_ERR(sem_open("f", O_CREAT, 0600, 0) == SEM_FAILED, EINVAL);
	CHECK_ERR(shm_open("f", O_RDONLY, 0) == -1, EINVAL);
	CHECK_ERR(shm_open("f", O_RDWR, 0) == -1, EINVAL);
	CHECK_ERR(shm_open("f", O_WRONLY, 0) == -1, EINVAL);
	CHECK_ERR(shm_open("f", O_RDWR | O_CREAT, 0600) == -1, EINVAL);
	alarm(0);
	CHECK(unlink(sp("sem.f")) == 0 && unlink(sp("f")) == 0);
}

static void t_bad_semaphore_files(void)
{
	unsigned char img[64] = { 0 };
	make_store();
	write_file(sp("sem.short"), img, 10, 0600);
	write_file(sp("sem.empty"), img, 0, 0600);
	write_file(sp("sem.long"), img, 64, 0600);
	write_file(sp("sem.foreign"), img, SHMR_SEM_SIZE, 0600);	/* private == 0 */
	const char *names[] = { "short", "empty", "long", "foreign" };
	for (int i = 0; i < 4; i++) {
		CHECK_ERR(sem_open(names[i], 0) == SEM_FAILED, EINVAL);
		CHECK_ERR(sem_open(names[i], O_CREAT, 0600, 1) == SEM_FAILED, EINVAL);
		CHECK(sem_unlink(names[i]) == 0);
	}
	sem_image(img, 5);
	write_file(sp("sem.good"), img, SHMR_SEM_SIZE, 0600);
	sem_t *s = sem_open("good", 0);
	CHECK(s != SEM_FAILED && getvalue(s) == 5);
	CHECK(sem_trywait(s) == 0 && getvalue(s) == 4);
	CHECK(sem_close(s) == 0 && sem_unlink("good") == 0);
}

static void t_creat_foreign_owner(void)
{
	unsigned char img[SHMR_SEM_SIZE];
	make_store();
	sem_image(img, 1);
	write_file(sp("sem.fo"), img, sizeof img, 0666);
	write_file(sp("fo"), "data", 4, 0666);
	CHECK(chown(sp("sem.fo"), NOBODY, NOBODY) == 0 && chown(sp("fo"), NOBODY, NOBODY) == 0);
	CHECK_ERR(sem_open("fo", O_CREAT, 0600, 0) == SEM_FAILED, EACCES);
	CHECK_ERR(shm_open("fo", O_CREAT | O_RDWR | O_TRUNC, 0600) == -1, EACCES);
	struct stat st;
	CHECK(stat(sp("fo"), &st) == 0 && st.st_size == 4);	/* not truncated */
	/* Without O_CREAT the permission bits decide, as on /dev/shm. */
	sem_t *s = sem_open("fo", 0);
	CHECK(s != SEM_FAILED);
	CHECK(sem_close(s) == 0);
	int fd = shm_open("fo", O_RDWR, 0);
	CHECK(fd >= 0);
	close(fd);
	CHECK(sem_unlink("fo") == 0 && shm_unlink("fo") == 0);
}

/* ---- the store directory -------------------------------------------------- */

static void all_fail_with(int e)
{
	CHECK_ERR(sem_open("x", O_CREAT, 0600, 0) == SEM_FAILED, e);
	CHECK_ERR(shm_open("x", O_CREAT | O_RDWR, 0600) == -1, e);
	CHECK_ERR(sem_unlink("x") == -1, e);
	CHECK_ERR(shm_unlink("x") == -1, e);
	CHECK_ERR(sem_open("x", O_CREAT, 0600, 0) == SEM_FAILED, e);	/* every time */
}

static void t_store_symlink(void)
{
	CHECK(mkdir(bp("real"), 0700) == 0 && chmod(bp("real"), 01777) == 0);
	CHECK(symlink("real", STORE) == 0);
	all_fail_with(ELOOP);
	CHECK(count_entries(bp("real"), NULL) == 0);
	CHECK(unlink(STORE) == 0 && rmdir(bp("real")) == 0);
}

static void t_store_symlink_trailing_slash(void)
{
	char env[128];
	snprintf(env, sizeof env, "%s/", STORE);
	setenv(SHMR_ENV_DIR, env, 1);
	t_store_symlink();
}

static void t_store_not_dir(void)
{
	write_file(STORE, "", 0, 0600);
	all_fail_with(ENOTDIR);
	CHECK(unlink(STORE) == 0);
}

static void t_store_foreign_owner(void)
{
	CHECK(mkdir(STORE, 0755) == 0 && chown(STORE, NOBODY, NOBODY) == 0);
	all_fail_with(EACCES);
	CHECK(rmdir(STORE) == 0);
}

static void t_store_world_writable_not_sticky(void)
{
	CHECK(mkdir(STORE, 0700) == 0 && chmod(STORE, 0777) == 0);
	all_fail_with(EACCES);
	CHECK(chmod(STORE, 0770) == 0);
	all_fail_with(EACCES);
	CHECK(rmdir(STORE) == 0);
}

static void t_store_relative_env(void)
{
	setenv(SHMR_ENV_DIR, "relative/shm", 1);
	all_fail_with(EINVAL);
}

static void t_store_missing_parent(void)
{
	char env[128];
	snprintf(env, sizeof env, "%s/missing/shm", BASE);
	setenv(SHMR_ENV_DIR, env, 1);
	all_fail_with(ENOENT);
}

static void t_store_created_mode(void)
{
	umask(077);
	sem_t *s = sem_open("m", O_CREAT, 0600, 0);
	CHECK(s != SEM_FAILED);
	struct stat st;
	CHECK(stat(STORE, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == SHMR_DIR_MODE);
	CHECK(sem_close(s) == 0 && sem_unlink("m") == 0);
}

static void t_store_as_nobody_body(void)
{
	sem_t *s = sem_open("n", O_CREAT | O_EXCL, 0600, 0);
	CHECK(s != SEM_FAILED);
	struct stat st;
	CHECK(stat(sp("sem.n"), &st) == 0 && st.st_uid == NOBODY);
	CHECK(sem_close(s) == 0 && sem_unlink("n") == 0);
}

static void t_store_root_owned_used_by_nobody(void)
{
	make_store();	/* root-owned 01777: acceptable to everybody */
	CHECK(as_nobody(t_store_as_nobody_body) == 0);
}

/* ---- behaviour ------------------------------------------------------------ */

static void t_shm_fd_flags(void)
{
	int fd = shm_open("c", O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
	CHECK(ftruncate(fd, 4096) == 0);
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	if (p != MAP_FAILED) {
		strcpy(p, "hello");
		munmap(p, 4096);
	}
	close(fd);
	fd = shm_open("c", O_RDONLY | O_NONBLOCK, 0);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) && (fcntl(fd, F_GETFL) & O_NONBLOCK));
	char buf[6] = { 0 };
	CHECK(read(fd, buf, 5) == 5 && strcmp(buf, "hello") == 0);
	close(fd);
	fd = shm_open("c", O_RDWR | O_TRUNC, 0);	/* ours: truncated */
	struct stat st;
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0);
	close(fd);
	CHECK(shm_unlink("c") == 0);
}

static void t_errno_preserved(void)
{
	struct statvfs sv;
	errno = 4242;
	sem_t *s = sem_open("p", O_CREAT, 0600, 0);	/* internally: ENOENT first */
	CHECK(s != SEM_FAILED && errno == 4242);
	sem_t *t = sem_open("p", 0);
	CHECK(t == s && errno == 4242);
	CHECK(sem_close(t) == 0 && errno == 4242);
	CHECK(sem_close(s) == 0 && errno == 4242);
	CHECK(sem_unlink("p") == 0 && errno == 4242);
	int fd = shm_open("p", O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0 && errno == 4242);
	close(fd);
	errno = 4242;
	CHECK(shm_unlink("p") == 0 && errno == 4242);
	CHECK(statvfs("/dev/shm", &sv) == 0 && errno == 4242);
}

static void t_semaphore_across_processes(void)
{
	sem_t *s = sem_open("x", O_CREAT | O_EXCL, 0600, 0);
	CHECK(s != SEM_FAILED);
	pid_t pid = fork();
	if (pid == 0) {
		sem_t *c = sem_open("x", 0);
		usleep(100 * 1000);	/* let the parent block in sem_wait */
		_exit(c != SEM_FAILED && sem_post(c) == 0 && sem_post(c) == 0 ? 0 : 1);
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	CHECK(sem_timedwait(s, &ts) == 0);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(getvalue(s) == 1);
	CHECK(sem_trywait(s) == 0);
	CHECK_ERR(sem_trywait(s) == -1, EAGAIN);
	CHECK(sem_close(s) == 0 && sem_unlink("x") == 0);
}

static void *thread_body(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++) {
		sem_t *s = sem_open("t", O_CREAT, 0600, 0);
		if (s == SEM_FAILED || sem_post(s) != 0 || sem_close(s) != 0)
			return (void *)1;
	}
	return NULL;
}

static void t_threads(void)
{
	pthread_t th[8];
	void *r;
	for (int i = 0; i < 8; i++)
		CHECK(pthread_create(&th[i], NULL, thread_body, NULL) == 0);
	for (int i = 0; i < 8; i++)
		CHECK(pthread_join(th[i], &r) == 0 && r == NULL);
	sem_t *s = sem_open("t", 0);
	CHECK(s != SEM_FAILED && getvalue(s) == 8 * 300);
	CHECK(sem_close(s) == 0);
	CHECK_ERR(sem_close(s) == -1, EINVAL);	/* every reference was dropped */
	CHECK(sem_unlink("t") == 0);
	CHECK(count_entries(STORE, NULL) == 0);
}

static int dev_shm_native(void)
{
	struct statfs sf;
	return statfs("/dev/shm", &sf) == 0 && sf.f_type == SHMR_TMPFS_MAGIC &&
	       faccessat(AT_FDCWD, "/dev/shm", W_OK | X_OK, AT_EACCESS) == 0;
}

static void t_native_passthrough(void)
{
	char name[64], path[128];
	unsetenv(SHMR_ENV_DIR);
	snprintf(name, sizeof name, "/shmr-test-%d", (int)getpid());
	if (!dev_shm_native()) {
		/* No usable /dev/shm (the sandbox): the default is $TMPDIR/shm. */
		setenv("TMPDIR", BASE, 1);
		sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
		CHECK(s != SEM_FAILED);
		snprintf(path, sizeof path, "shm/sem.%s", name + 1);
		CHECK(access(bp(path), F_OK) == 0);
		CHECK(sem_close(s) == 0 && sem_unlink(name) == 0);
		CHECK(rmdir(bp("shm")) == 0);
		struct statvfs sv;
		CHECK(statvfs("/dev/shm", &sv) == 0 && sv.f_bavail == 0);
		return;
	}
	sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
	CHECK(s != SEM_FAILED);
	snprintf(path, sizeof path, "/dev/shm/sem.%s", name + 1);
	CHECK(access(path, F_OK) == 0);
	CHECK(getvalue(s) == 1);
	CHECK(sem_close(s) == 0);	/* glibc's pointer, forwarded */
	CHECK(sem_unlink(name) == 0);
	CHECK(access(path, F_OK) == -1);
	int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(fd >= 0);
	close(fd);
	snprintf(path, sizeof path, "/dev/shm/%s", name + 1);
	CHECK(access(path, F_OK) == 0);
	CHECK(shm_unlink(name) == 0);
	CHECK(access(path, F_OK) == -1);
	struct statvfs sv;
	struct statfs sf;
	CHECK(statvfs("/dev/shm", &sv) == 0 && statfs("/dev/shm", &sf) == 0);
	CHECK(sv.f_blocks == (fsblkcnt_t)sf.f_blocks && sv.f_blocks > 0);
	CHECK(access(STORE, F_OK) == -1);	/* no store in native mode */
}

static void t_statvfs(void)
{
	struct statvfs sv;
	struct statvfs64 sv64;
	struct statfs sf;
	const char *paths[] = { "/dev/shm", "/dev/shm/", "/dev/shm//" };
	for (int i = 0; i < 3; i++) {
		memset(&sv, 0xff, sizeof sv);
		CHECK(statvfs(paths[i], &sv) == 0);
		CHECK(sv.f_bavail == 0 && sv.f_bfree == 0 && sv.f_bsize == 4096 &&
		      sv.f_frsize == 4096 && sv.f_namemax == 255);
		memset(&sv64, 0xff, sizeof sv64);
		CHECK(statvfs64(paths[i], &sv64) == 0 && sv64.f_bavail == 0 && sv64.f_bsize == 4096);
	}
	CHECK(statvfs("/tmp", &sv) == 0 && statfs("/tmp", &sf) == 0);
	CHECK(sv.f_blocks == (fsblkcnt_t)sf.f_blocks && sv.f_blocks > 0);
	CHECK(statvfs64("/tmp", &sv64) == 0 && sv64.f_blocks == (fsblkcnt_t)sf.f_blocks);
	CHECK_ERR(statvfs("/dev/shm-no-such", &sv) == -1, ENOENT);
	CHECK_ERR(statvfs64("/no/such/path", &sv64) == -1, ENOENT);
}

/* fd number of the open store directory, from /proc/self/fd. */
static int find_store_fd(void)
{
	char link[64], target[PATH_MAX];
	for (int fd = 3; fd < 1024; fd++) {
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strcmp(target, STORE) == 0)
				return fd;
		}
	}
	return -1;
}

static void t_dirfd_closed_by_program(void)
{
	sem_t *a = sem_open("a", O_CREAT, 0600, 0);
	CHECK(a != SEM_FAILED);
	int old = find_store_fd();
	CHECK(old >= 3);
	/* A daemon closes everything, then reuses the number for another dir. */
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	int other = open(BASE, O_RDONLY | O_DIRECTORY);
	CHECK(other >= 0 && dup2(other, old) == old);
	sem_t *b = sem_open("b", O_CREAT, 0600, 0);
	CHECK(b != SEM_FAILED && b != a);
	CHECK(access(sp("sem.b"), F_OK) == 0);
	CHECK(count_entries(BASE, NULL) == 1);		/* only STORE */
	int fd = shm_open("s", O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0 && access(sp("s"), F_OK) == 0);
	close(fd);
	CHECK(sem_post(a) == 0 && getvalue(a) == 1);	/* the mapping survives */
	CHECK(sem_close(a) == 0 && sem_close(b) == 0);
	CHECK(sem_unlink("a") == 0 && sem_unlink("b") == 0 && shm_unlink("s") == 0);
	close(other);
	close(old);
}

/* ---- runner --------------------------------------------------------------- */

static const struct { const char *name; void (*fn)(void); } tests[] = {
#define T(f) { #f + 2, f }
	T(t_names_invalid), T(t_names_leading_slashes), T(t_names_length),
	T(t_sem_value_max), T(t_excl_existing), T(t_missing_without_creat),
	T(t_eisdir), T(t_eperm_is_eacces), T(t_same_pointer_refcount),
	T(t_close_unknown), T(t_args_only_with_creat), T(t_race_64_processes),
	T(t_symlink_at_name), T(t_fifo_at_name), T(t_bad_semaphore_files),
	T(t_creat_foreign_owner), T(t_store_symlink), T(t_store_symlink_trailing_slash),
	T(t_store_not_dir), T(t_store_foreign_owner), T(t_store_world_writable_not_sticky),
	T(t_store_relative_env), T(t_store_missing_parent), T(t_store_created_mode),
	T(t_store_root_owned_used_by_nobody), T(t_shm_fd_flags), T(t_errno_preserved),
	T(t_semaphore_across_processes), T(t_threads), T(t_native_passthrough),
	T(t_statvfs), T(t_dirfd_closed_by_program),
#undef T
};

static int needs_root(const char *name)
{
	return strstr(name, "eperm") || strstr(name, "foreign") || strstr(name, "nobody");
}

static int run(int i)
{
	char tmpl[] = "/tmp/shmr-test.XXXXXX";
	if (!mkdtemp(tmpl) || chmod(tmpl, 0755) != 0) {
		perror("mkdtemp");
		return 0;
	}
	snprintf(BASE, sizeof BASE, "%s", tmpl);
	snprintf(STORE, sizeof STORE, "%s/store", tmpl);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		setenv(SHMR_ENV_DIR, STORE, 1);	/* before the first shim call */
		umask(022);
		alarm(60);
		tests[i].fn();
		exit(failures ? 1 : 0);		/* exit(): LeakSanitizer runs */
	}
	int st, ok;
	waitpid(pid, &st, 0);
	ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (!ok && WIFSIGNALED(st))
		fprintf(stderr, "    killed by signal %d\n", WTERMSIG(st));
	/* The test must leave nothing behind but, at most, an empty STORE. */
	rmdir(STORE);
	if (rmdir(BASE) != 0) {
		char cmd[256];
		fprintf(stderr, "    left files behind:\n");
		snprintf(cmd, sizeof cmd, "ls -laR %s >&2; rm -rf %s", BASE, BASE);
		if (system(cmd) != 0)
			fprintf(stderr, "    cleanup failed\n");
		ok = 0;
	}
	printf("%s - %s\n", ok ? "ok" : "FAIL", tests[i].name);
	return ok;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
		if (argc > 1 && !strstr(tests[i].name, argv[1]))
			continue;
		if (geteuid() != 0 && needs_root(tests[i].name)) {
			/* They switch uids to build hostile directories: run as root. */
			printf("FAIL - %s: needs root\n", tests[i].name);
			failed++;
			continue;
		}
		if (run((int)i))
			passed++;
		else
			failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
