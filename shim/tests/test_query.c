/* Shim tests: the store's query API (shm_redirect.h), which in-process callers such as the
 * Python package use instead of re-deriving the rules. The hostile-directory tests check it
 * too: every one of them expects shm_redirect_store_open to fail as the calls fail. */
#include "harness.h"
#include "../shm_redirect.h"

void t_query_store_dir(void)
{
	char buf[PATH_MAX], small[8];
	errno = 4242;
	CHECK(shm_redirect_store_dir(buf, sizeof buf) == 0 && strcmp(buf, STORE) == 0);
	CHECK(errno == 4242);
	CHECK_ERR(shm_redirect_store_dir(small, sizeof small) == -1, ERANGE);
	CHECK_ERR(shm_redirect_store_dir(buf, strlen(STORE)) == -1, ERANGE);
	CHECK(shm_redirect_store_dir(buf, strlen(STORE) + 1) == 0);
}

void t_query_store_dir_trailing_slashes(void)
{
	char env[128], buf[PATH_MAX];
	snprintf(env, sizeof env, "%s///", STORE);
	setenv(SHMR_ENV_DIR, env, 1);
	CHECK(shm_redirect_store_dir(buf, sizeof buf) == 0 && strcmp(buf, STORE) == 0);
}

void t_query_store_open(void)
{
	struct stat st;
	umask(077);
	CHECK_ERR(shm_redirect_store_open(0) == -1, ENOENT);	/* never creates */
	CHECK(access(STORE, F_OK) == -1);
	errno = 4242;
	int fd = shm_redirect_store_open(1);
	CHECK(fd >= 0 && errno == 4242);
	CHECK(fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == SHMR_DIR_MODE);
	CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	int fd2 = shm_redirect_store_open(0);
	CHECK(fd2 >= 0 && fd2 != fd);
	/* Each descriptor is the caller's: closing both leaves the calls working. */
	CHECK(close(fd) == 0 && close(fd2) == 0);
	sem_t *s = sem_open("q", O_CREAT | O_EXCL, 0600, 0);
	CHECK(s != SEM_FAILED);
	CHECK(sem_close(s) == 0 && sem_unlink("q") == 0);
}

void t_query_native(void)
{
	char buf[PATH_MAX], want[PATH_MAX];
	unsetenv(SHMR_ENV_DIR);
	setenv("TMPDIR", BASE, 1);
	if (dev_shm_native()) {
		CHECK(shm_redirect_native_errno() == 0);
		CHECK(shm_redirect_store_dir(buf, sizeof buf) == 1 && strcmp(buf, "/dev/shm") == 0);
		int fd = shm_redirect_store_open(1);
		struct stat a, b;
		CHECK(fd >= 0 && fstat(fd, &a) == 0 && stat("/dev/shm", &b) == 0 && a.st_ino == b.st_ino);
		close(fd);
		CHECK(access(bp("shm"), F_OK) == -1);
		return;
	}
	/* The sandbox: no /dev/shm at all. */
	CHECK(shm_redirect_native_errno() == ENOENT);
	snprintf(want, sizeof want, "%s/shm", BASE);
	CHECK(shm_redirect_store_dir(buf, sizeof buf) == 0 && strcmp(buf, want) == 0);
	int fd = shm_redirect_store_open(1);
	CHECK(fd >= 0);
	close(fd);
	CHECK(rmdir(want) == 0);
}

void t_query_relative_tmpdir(void)
{
	char buf[PATH_MAX];
	unsetenv(SHMR_ENV_DIR);
	setenv("TMPDIR", "relative", 1);
	if (!dev_shm_native())
		CHECK(shm_redirect_store_dir(buf, sizeof buf) == 0 && strcmp(buf, "/tmp/shm") == 0);
	else
		CHECK(shm_redirect_store_dir(buf, sizeof buf) == 1);
}

/* Spelled as given (STORE.md): trailing slashes go, nothing else is cleaned; Go does the same. */
void t_query_tmpdir_spelling(void)
{
	char buf[PATH_MAX];
	unsetenv(SHMR_ENV_DIR);
	setenv("TMPDIR", "/a/../b/", 1);
	if (!dev_shm_native())
		CHECK(shm_redirect_store_dir(buf, sizeof buf) == 0 && strcmp(buf, "/a/../b//shm") == 0);
}

void t_query_path_too_long(void)
{
	char env[PATH_MAX + 8];
	memset(env, 'x', sizeof env - 1);
	env[0] = '/';
	env[sizeof env - 1] = '\0';
	setenv(SHMR_ENV_DIR, env, 1);
	CHECK_ERR(shm_redirect_store_dir(env, sizeof env) == -1, ENAMETOOLONG);
	CHECK_ERR(shm_redirect_store_open(1) == -1, ENAMETOOLONG);
}
