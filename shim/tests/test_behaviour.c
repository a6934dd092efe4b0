/* Shim tests: fds, errno, cross-process and threaded use, native passthrough, statvfs. */
#include "harness.h"

/* ---- behaviour ------------------------------------------------------------ */

void t_shm_fd_flags(void)
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

void t_errno_preserved(void)
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

void t_semaphore_across_processes(void)
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

void t_threads(void)
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

void t_native_passthrough(void)
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

void t_statvfs(void)
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

/* glibc's own statvfs, whatever the preload does (the libc handle does not search us). */
static void *glibc_sym(const char *name)
{
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	return libc ? dlsym(libc, name) : NULL;
}

/* statvfs of anything but /dev/shm in store mode is glibc's answer: forwarded, or (without
 * dlsym: the SHMR_FORCE_NO_DLSYM build) converted from statfs as glibc does. Counters of free
 * space may move between two calls on a live file system: compared on /proc only. */
void t_statvfs_like_glibc(void)
{
	int (*real)(const char *, struct statvfs *) = (int (*)(const char *, struct statvfs *))glibc_sym("statvfs");
	int (*real64)(const char *, struct statvfs64 *) =
		(int (*)(const char *, struct statvfs64 *))glibc_sym("statvfs64");
	struct statvfs a, b;
	struct statvfs64 a64, b64;
	const char *paths[] = { "/", "/proc", "/tmp", "/dev", BASE, "/no/such/path" };
	CHECK(real && real != statvfs && real64 && real64 != statvfs64);
	if (!real || !real64)
		return;
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		memset(&a, 0xa5, sizeof a);
		memset(&b, 0x5a, sizeof b);
		errno = 0;
		int ra = statvfs(paths[i], &a), ea = errno;
		errno = 0;
		int rb = real(paths[i], &b), eb = errno;
		CHECK(ra == rb && ea == eb);
		if (ra != 0 || rb != 0)
			continue;
		if (strcmp(paths[i], "/proc") != 0) {	/* the moving counters */
			a.f_bfree = b.f_bfree, a.f_bavail = b.f_bavail;
			a.f_ffree = b.f_ffree, a.f_favail = b.f_favail;
		}
		CHECK(memcmp(&a, &b, sizeof a) == 0);
		if (memcmp(&a, &b, sizeof a) != 0)
			fprintf(stderr, "    %s: bsize %lu/%lu frsize %lu/%lu blocks %lu/%lu files %lu/%lu "
				"fsid %lx/%lx flag %lx/%lx namemax %lu/%lu\n", paths[i], a.f_bsize, b.f_bsize,
				a.f_frsize, b.f_frsize, a.f_blocks, b.f_blocks, a.f_files, b.f_files,
				a.f_fsid, b.f_fsid, a.f_flag, b.f_flag, a.f_namemax, b.f_namemax);
		memset(&a64, 0xa5, sizeof a64);
		memset(&b64, 0x5a, sizeof b64);
		CHECK(statvfs64(paths[i], &a64) == 0 && real64(paths[i], &b64) == 0);
		if (strcmp(paths[i], "/proc") != 0) {
			a64.f_bfree = b64.f_bfree, a64.f_bavail = b64.f_bavail;
			a64.f_ffree = b64.f_ffree, a64.f_favail = b64.f_favail;
		}
		CHECK(memcmp(&a64, &b64, sizeof a64) == 0);
	}
}

/* The first shim calls of a process race with fork() in another thread: the fork handlers are
 * being registered (shmr_lock), and no child may inherit the lock held or wait forever for a
 * registration that its parent's thread was doing. Each round is a fresh process. */
static void *first_use(void *arg)
{
	char name[32];
	snprintf(name, sizeof name, "f%d-%d", (int)getpid(), (int)(intptr_t)arg);
	for (int i = 0; i < 20; i++) {
		sem_t *s = sem_open(name, O_CREAT, 0600, 0);
		if (s == SEM_FAILED || sem_close(s) != 0)
			return (void *)1;
	}
	return sem_unlink(name) == 0 ? NULL : (void *)1;
}

/* GCC 12's ASan allocator is not fork-safe: a child forked while another thread is inside
 * malloc inherits the allocator's lock held and hangs at its first malloc (seen here, in
 * sem_attach). Under ASan the children are forked after the threads are done; the race itself
 * is exercised by the other builds (native, sandbox, no-dlsym, arm64). */
#ifdef __SANITIZE_ADDRESS__
#define FORK_AFTER_THREADS 1
#else
#define FORK_AFTER_THREADS 0
#endif

static int join_all(pthread_t *th, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		void *r;
		bad |= pthread_join(th[i], &r) != 0 || r != NULL;
	}
	return bad;
}

void t_fork_during_first_use(void)
{
	for (int round = 0; round < 20; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			pthread_t th[4];
			pid_t kids[8];
			int bad = 0, st;
			for (int i = 0; i < 4; i++)
				bad |= pthread_create(&th[i], NULL, first_use, (void *)(intptr_t)i) != 0;
			if (FORK_AFTER_THREADS)
				bad |= join_all(th, 4);
			for (int i = 0; i < 8; i++)
				if ((kids[i] = fork()) == 0)	/* the child uses the shim at once */
					_exit(first_use((void *)(intptr_t)(10 + i)) ? 1 : 0);
			for (int i = 0; i < 8; i++)
				bad |= kids[i] < 0 || waitpid(kids[i], &st, 0) != kids[i] ||
				       !WIFEXITED(st) || WEXITSTATUS(st) != 0;
			if (!FORK_AFTER_THREADS)
				bad |= join_all(th, 4);
			_exit(bad);
		}
		int st;
		CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	CHECK(count_entries(STORE, NULL) == 0);
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

void t_dirfd_closed_by_program(void)
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
