/* Shim tests: names and semaphore opening: errno for errno as glibc, refcounts, creation races. */
#include "harness.h"

/* ---- names ---------------------------------------------------------------- */

void t_names_invalid(void)
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

void t_names_leading_slashes(void)
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

void t_names_length(void)
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

void t_sem_value_max(void)
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

void t_excl_existing(void)
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

void t_missing_without_creat(void)
{
	CHECK_ERR(sem_open("nope", 0) == SEM_FAILED, ENOENT);
	CHECK_ERR(sem_open("nope", O_RDWR) == SEM_FAILED, ENOENT);
	CHECK_ERR(shm_open("nope", O_RDWR, 0) == -1, ENOENT);
	CHECK_ERR(sem_unlink("nope") == -1, ENOENT);
	CHECK_ERR(shm_unlink("nope") == -1, ENOENT);
}

void t_eisdir(void)
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

void t_eperm_is_eacces(void)
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

void t_same_pointer_refcount(void)
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

void t_close_unknown(void)
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

void t_args_only_with_creat(void)
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
void t_race_64_processes(void)
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
