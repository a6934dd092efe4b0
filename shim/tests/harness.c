/*
 * harness.c - the runner of the tests of libshm_redirect (linked directly, so it interposes
 * without LD_PRELOAD). Each test runs in a forked child, so the library
 * decides its mode afresh; the child points SHM_REDIRECT_DIR at STORE, a
 * not-yet-existing directory inside a fresh mkdtemp BASE. After the child,
 * the runner requires that BASE holds nothing but an empty STORE.
 *
 * Usage: test_shim [substring]   (runs the tests whose name contains it)
 * Output: one line per test, then "N passed, M failed"; exit 1 on failure.
 */
#include "harness.h"

char BASE[64], STORE[96];
int failures;

/* A path inside STORE (rotating static buffers). */
const char * sp(const char *name)
{
	static char buf[8][PATH_MAX];
	static int i;
	char *b = buf[i++ % 8];
	snprintf(b, PATH_MAX, "%s/%s", STORE, name);
	return b;
}

const char * bp(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;
	char *b = buf[i++ % 4];
	snprintf(b, PATH_MAX, "%s/%s", BASE, name);
	return b;
}

/* Entries of dir other than . and .. (-1 if it cannot be read). */
int  count_entries(const char *dir, const char *prefix)
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
void  make_store(void)
{
	CHECK(mkdir(STORE, 0700) == 0);
	CHECK(chmod(STORE, 01777) == 0);
}

void  write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	CHECK(fd >= 0);
	CHECK(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

/* A valid semaphore image with the given value. */
void  sem_image(unsigned char img[SHMR_SEM_SIZE], uint32_t value)
{
	uint64_t data = value;
	int private = SHMR_SEM_PRIVATE_SHARED;
	memset(img, 0, SHMR_SEM_SIZE);
	memcpy(img, &data, sizeof data);
	memcpy(img + SHMR_SEM_PRIVATE_OFFSET, &private, sizeof private);
}

/* Runs fn in a child as uid/gid NOBODY; returns its exit status. */
int  as_nobody(void (*fn)(void))
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

int  getvalue(sem_t *s)
{
	int v = -1;
	CHECK(sem_getvalue(s, &v) == 0);
	return v;
}

/* ---- runner --------------------------------------------------------------- */

/* The test's own judgement of /dev/shm, independent of the library's. */
int dev_shm_native(void)
{
	struct statfs sf;
	return statfs("/dev/shm", &sf) == 0 && sf.f_type == SHMR_TMPFS_MAGIC &&
	       faccessat(AT_FDCWD, "/dev/shm", W_OK | X_OK, AT_EACCESS) == 0;
}

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
	T(t_statvfs), T(t_statvfs_like_glibc), T(t_fork_during_first_use),
	T(t_dirfd_closed_by_program), T(t_query_store_dir), T(t_query_store_dir_trailing_slashes),
	T(t_query_store_open), T(t_query_native), T(t_query_relative_tmpdir),
	T(t_query_tmpdir_spelling), T(t_query_path_too_long),
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

/* test_shim [--needs-root] [NAME]: every test (or those whose name contains NAME). As non-root,
 * the tests that switch uids to build hostile directories are skipped and said so; the Makefile
 * then runs them alone (--needs-root) as root in the same sandbox. */
int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0, only_root = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef SHMR_FORCE_NO_DLSYM
	printf("(library built without dlsym: SHMR_FORCE_NO_DLSYM)\n");
#endif
	if (argc > 1 && strcmp(argv[1], "--needs-root") == 0) {
		only_root = 1;
		argc--, argv++;
	}
	for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
		if (argc > 1 && !strstr(tests[i].name, argv[1]))
			continue;
		if (only_root && !needs_root(tests[i].name))
			continue;
		if (geteuid() != 0 && needs_root(tests[i].name)) {
			printf("%s - %s: needs root\n", only_root ? "FAIL" : "skip", tests[i].name);
			*(only_root ? &failed : &skipped) += 1;
			continue;
		}
		if (run((int)i))
			passed++;
		else
			failed++;
	}
	if (passed + failed == 0) {
		printf("no test ran\n");
		failed = 1;
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed != 0;
}
