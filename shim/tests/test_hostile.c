/* Shim tests: hostile objects at a name and hostile store directories. */
#include "harness.h"
#include "../shm_redirect.h"

/* ---- hostile objects at a name -------------------------------------------- */

void t_symlink_at_name(void)
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

void t_fifo_at_name(void)
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

void t_bad_semaphore_files(void)
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

void t_creat_foreign_owner(void)
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
	CHECK_ERR(shm_redirect_store_open(1) == -1, e);	/* and the query API agrees */
	CHECK_ERR(shm_redirect_store_open(0) == -1, e);
}

void t_store_symlink(void)
{
	CHECK(mkdir(bp("real"), 0700) == 0 && chmod(bp("real"), 01777) == 0);
	CHECK(symlink("real", STORE) == 0);
	all_fail_with(ELOOP);
	CHECK(count_entries(bp("real"), NULL) == 0);
	CHECK(unlink(STORE) == 0 && rmdir(bp("real")) == 0);
}

void t_store_symlink_trailing_slash(void)
{
	char env[128];
	snprintf(env, sizeof env, "%s/", STORE);
	setenv(SHMR_ENV_DIR, env, 1);
	t_store_symlink();
}

void t_store_not_dir(void)
{
	write_file(STORE, "", 0, 0600);
	all_fail_with(ENOTDIR);
	CHECK(unlink(STORE) == 0);
}

void t_store_foreign_owner(void)
{
	CHECK(mkdir(STORE, 0755) == 0 && chown(STORE, NOBODY, NOBODY) == 0);
	all_fail_with(EACCES);
	CHECK(rmdir(STORE) == 0);
}

void t_store_world_writable_not_sticky(void)
{
	CHECK(mkdir(STORE, 0700) == 0 && chmod(STORE, 0777) == 0);
	all_fail_with(EACCES);
	CHECK(chmod(STORE, 0770) == 0);
	all_fail_with(EACCES);
	CHECK(rmdir(STORE) == 0);
}

void t_store_relative_env(void)
{
	setenv(SHMR_ENV_DIR, "relative/shm", 1);
	all_fail_with(EINVAL);
}

void t_store_missing_parent(void)
{
	char env[128];
	snprintf(env, sizeof env, "%s/missing/shm", BASE);
	setenv(SHMR_ENV_DIR, env, 1);
	all_fail_with(ENOENT);
}

void t_store_created_mode(void)
{
	umask(077);
	sem_t *s = sem_open("m", O_CREAT, 0600, 0);
	CHECK(s != SEM_FAILED);
	struct stat st;
	CHECK(stat(STORE, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == SHMR_DIR_MODE);
	CHECK(sem_close(s) == 0 && sem_unlink("m") == 0);
}

void t_store_as_nobody_body(void)
{
	sem_t *s = sem_open("n", O_CREAT | O_EXCL, 0600, 0);
	CHECK(s != SEM_FAILED);
	struct stat st;
	CHECK(stat(sp("sem.n"), &st) == 0 && st.st_uid == NOBODY);
	CHECK(sem_close(s) == 0 && sem_unlink("n") == 0);
}

void t_store_root_owned_used_by_nobody(void)
{
	make_store();	/* root-owned 01777: acceptable to everybody */
	CHECK(as_nobody(t_store_as_nobody_body) == 0);
}
