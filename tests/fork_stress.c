/* tests/fork_stress.c — fork-safety stress test for the shm preload.
 *
 * N fork cycles (default 10000). In each cycle the parent creates a "ping" and a "pong"
 * semaphore and a segment, forks, and:
 *   child:  reopens both semaphores by name and the segment by name, waits for the parent's
 *           ping (cross-process futex wake), checks/bumps the segment, creates its own
 *           semaphore and a private segment (shm_open+ftruncate+mmap+munmap+close+shm_unlink),
 *           posts pong through both the inherited and the reopened pointer, closes all, exits.
 *   parent: posts ping, waits for pong twice (blocking sem_wait), reaps the child, checks
 *           the segment, opens/consumes/unlinks the child's semaphore, closes and unlinks all.
 * Meanwhile a helper thread in the parent loops sem_open/sem_post/sem_wait/sem_close and
 * shm_open/close, so many forks happen while it is inside the preload: a lock inherited held
 * would deadlock the child, which the watchdogs turn into a reported failure, not a hang:
 *   - the parent re-arms alarm() every cycle; SIGALRM reports the stuck cycle, kills the child
 *     and exits 3;
 *   - each child arms its own alarm(), so a stuck child dies of SIGALRM and is counted.
 * Everything this program creates is unlinked; the caller checks the store is empty.
 *
 * A summary line counts the cycles run, those that hung (the child stuck past its alarm or no
 * pong: a deadlock after fork) and those that failed otherwise, and the cycles never run after
 * GIVE_UP consecutive failures; the last line is "N passed, M failed" over the cycles run (a
 * helper-thread error or giving up adds one failure: the run failed, not a cycle). Exit 0 iff
 * M == 0. Environment: FORK_STRESS_GIVE_UP (5; 0 never gives up), FORK_STRESS_CHILD_TIMEOUT (5 s).
 *
 * Build: cc -O2 -pthread -o fork_stress tests/fork_stress.c  (run under LD_PRELOAD or not)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEG_SIZE 4096
#define CYCLE_TIMEOUT 30 /* seconds one cycle may take before we call it a hang */
static unsigned child_timeout = 5; /* a child stuck this long is killed by its own alarm */
static long give_up = 5;           /* stop after this many consecutive failed cycles (0: never) */
#define MAX_REPORTED 20  /* print at most this many failure details */

static volatile sig_atomic_t cur_cycle = -1;
static volatile pid_t cur_child = 0;
static atomic_int stop_helper;
static atomic_long helper_iters, helper_errors;
static long failures; /* cycles that failed, hung ones included */
static int hung;      /* set by the current cycle when its child deadlocked */
static pid_t me;

static void on_alarm(int sig)
{
    (void)sig;
    char buf[160];
    int n = snprintf(buf, sizeof buf,
                     "fork_stress: HANG: cycle %d made no progress for %d s (child %d); "
                     "a lock inherited held across fork?\n",
                     (int)cur_cycle, CYCLE_TIMEOUT, (int)cur_child);
    if (n > 0) (void)!write(2, buf, (size_t)n);
    if (cur_child > 0) kill(cur_child, SIGKILL);
    (void)!write(1, "0 passed, 1 failed\n", 19);
    _exit(3);
}

/* Failure in the parent: report the first few, count all. */
#define FAIL(cycle, ...)                                                          \
    do {                                                                          \
        if (failures < MAX_REPORTED) {                                            \
            fprintf(stderr, "fork_stress: cycle %ld: ", (long)(cycle));           \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, " (errno %d %s)\n", errno, strerror(errno));          \
        }                                                                         \
        ok = 0;                                                                   \
    } while (0)

static void *helper(void *arg)
{
    (void)arg;
    char name[64], seg[64];
    snprintf(name, sizeof name, "/fs_helper_%d", (int)me);
    snprintf(seg, sizeof seg, "/fs_helperseg_%d", (int)me);
    while (!atomic_load(&stop_helper)) {
        sem_t *s = sem_open(name, O_CREAT, 0600, 1);
        if (s == SEM_FAILED) { atomic_fetch_add(&helper_errors, 1); continue; }
        if (sem_wait(s) != 0 || sem_post(s) != 0) atomic_fetch_add(&helper_errors, 1);
        if (sem_close(s) != 0) atomic_fetch_add(&helper_errors, 1);
        int fd = shm_open(seg, O_RDWR | O_CREAT, 0600);
        if (fd < 0) atomic_fetch_add(&helper_errors, 1);
        else close(fd);
        atomic_fetch_add(&helper_iters, 1);
    }
    if (sem_unlink(name) != 0 && errno != ENOENT) atomic_fetch_add(&helper_errors, 1);
    if (shm_unlink(seg) != 0 && errno != ENOENT) atomic_fetch_add(&helper_errors, 1);
    return NULL;
}

/* Child body: returns the exit code; each non-zero code names the step that failed. */
static int child(long i, sem_t *ping_inh, sem_t *pong_inh, const char *ping_n,
                 const char *pong_n, const char *seg_n)
{
    char own[64], tmp[64];
    signal(SIGALRM, SIG_DFL); /* the parent's reporting handler is not for us */
    alarm(child_timeout);
    (void)ping_inh;
    sem_t *ping = sem_open(ping_n, 0);
    if (ping == SEM_FAILED) return 10;
    sem_t *pong = sem_open(pong_n, 0);
    if (pong == SEM_FAILED) return 11;
    if (sem_wait(ping) != 0) return 12; /* the parent posts after fork */

    int fd = shm_open(seg_n, O_RDWR, 0);
    if (fd < 0) return 13;
    uint64_t *p = mmap(NULL, SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 14;
    if (p[0] != (uint64_t)i) return 15;
    p[0] = (uint64_t)i + 1;
    if (munmap(p, SEG_SIZE) != 0 || close(fd) != 0) return 16;

    /* The child's own semaphore, left for the parent to consume and unlink. */
    snprintf(own, sizeof own, "/fs_c_%d_%ld", (int)me, i);
    sem_t *o = sem_open(own, O_CREAT | O_EXCL, 0600, 1);
    if (o == SEM_FAILED) return 17;
    if (sem_close(o) != 0) return 18;

    /* A private segment, full life cycle. */
    snprintf(tmp, sizeof tmp, "/fs_ct_%d_%ld", (int)getpid(), i);
    fd = shm_open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return 19;
    if (ftruncate(fd, SEG_SIZE) != 0) return 20;
    p = mmap(NULL, SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 21;
    p[1] = 42;
    if (munmap(p, SEG_SIZE) != 0 || close(fd) != 0) return 22;
    if (shm_unlink(tmp) != 0) return 23;

    /* Two posts: one through the pointer inherited from the parent, one reopened. */
    if (sem_post(pong_inh) != 0) return 24;
    if (sem_post(pong) != 0) return 25;
    if (sem_close(ping) != 0 || sem_close(pong) != 0) return 26;
    if (sem_close(pong_inh) != 0) return 27; /* the inherited reference is ours to drop too */
    return 0;
}

/* One cycle (see the top of this file); 1 if it passed. Sets hung when the child deadlocked. */
static int run_cycle(long i)
{
    int ok = 1;
    hung = 0;
    char ping_n[64], pong_n[64], seg_n[64], own[64];
    snprintf(ping_n, sizeof ping_n, "/fs_ping_%d_%ld", (int)me, i);
    snprintf(pong_n, sizeof pong_n, "/fs_pong_%d_%ld", (int)me, i);
    snprintf(seg_n, sizeof seg_n, "/fs_seg_%d_%ld", (int)me, i);
    snprintf(own, sizeof own, "/fs_c_%d_%ld", (int)me, i);
    cur_cycle = (sig_atomic_t)i;
    cur_child = 0;
    alarm(CYCLE_TIMEOUT);

    sem_t *ping = sem_open(ping_n, O_CREAT | O_EXCL, 0600, 0);
    sem_t *pong = sem_open(pong_n, O_CREAT | O_EXCL, 0600, 0);
    int fd = shm_open(seg_n, O_RDWR | O_CREAT | O_EXCL, 0600);
    uint64_t *p = MAP_FAILED;
    if (ping == SEM_FAILED || pong == SEM_FAILED || fd < 0) {
        FAIL(i, "parent create (ping %p pong %p fd %d)", (void *)ping, (void *)pong, fd);
        goto cleanup;
    }
    if (ftruncate(fd, SEG_SIZE) != 0) { FAIL(i, "ftruncate"); goto cleanup; }
    p = mmap(NULL, SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { FAIL(i, "mmap"); goto cleanup; }
    p[0] = (uint64_t)i;

    pid_t pid = fork();
    if (pid < 0) { FAIL(i, "fork"); goto cleanup; }
    if (pid == 0) _exit(child(i, ping, pong, ping_n, pong_n, seg_n));
    cur_child = pid;

    if (sem_post(ping) != 0) FAIL(i, "sem_post ping");
    /* A blocking wait: the child's post must wake us through the shared futex. Bounded,
     * so a child deadlocked after fork costs a few seconds, not the whole run. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += child_timeout + 3;
    int r;
    while ((r = sem_timedwait(pong, &dl)) != 0 && errno == EINTR)
        ;
    if (r != 0) {
        FAIL(i, "no pong from child %d (deadlocked after fork?)", (int)pid);
        kill(pid, SIGKILL);
        hung = 1;
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) FAIL(i, "waitpid");
    else if (WIFSIGNALED(st)) {
        errno = 0;
        FAIL(i, "child killed by signal %d", WTERMSIG(st));
        hung |= WTERMSIG(st) == SIGALRM; /* its own alarm: stuck */
    }
    else if (WEXITSTATUS(st) != 0) { errno = 0; FAIL(i, "child failed at step %d", WEXITSTATUS(st)); }
    cur_child = 0;
    if (ok) {
        if (sem_trywait(pong) != 0) FAIL(i, "sem_trywait pong #2 (second post lost)");
        if (p[0] != (uint64_t)i + 1) { errno = 0; FAIL(i, "segment not updated by child"); }
        sem_t *o = sem_open(own, 0);
        if (o == SEM_FAILED) FAIL(i, "open child's semaphore");
        else {
            if (sem_trywait(o) != 0) FAIL(i, "child's semaphore value");
            if (sem_close(o) != 0) FAIL(i, "close child's semaphore");
        }
    }
    if (sem_unlink(own) != 0 && ok) FAIL(i, "unlink child's semaphore");

cleanup:
    if (p != MAP_FAILED && munmap(p, SEG_SIZE) != 0) FAIL(i, "munmap");
    if (fd >= 0 && close(fd) != 0) FAIL(i, "close segment");
    if (ping != SEM_FAILED && sem_close(ping) != 0) FAIL(i, "sem_close ping");
    if (pong != SEM_FAILED && sem_close(pong) != 0) FAIL(i, "sem_close pong");
    if (sem_unlink(ping_n) != 0 && ping != SEM_FAILED) FAIL(i, "sem_unlink ping");
    if (sem_unlink(pong_n) != 0 && pong != SEM_FAILED) FAIL(i, "sem_unlink pong");
    if (shm_unlink(seg_n) != 0 && fd >= 0) FAIL(i, "shm_unlink");
    return ok;
}

int main(int argc, char **argv)
{
    long cycles = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    if (cycles <= 0) { fprintf(stderr, "usage: %s [CYCLES]\n", argv[0]); return 2; }
    me = getpid();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *e;
    if ((e = getenv("FORK_STRESS_GIVE_UP")) && *e) give_up = strtol(e, NULL, 10);
    if ((e = getenv("FORK_STRESS_CHILD_TIMEOUT")) && *e) child_timeout = (unsigned)strtoul(e, NULL, 10);

    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);

    pthread_t th;
    if (pthread_create(&th, NULL, helper, NULL) != 0) { perror("pthread_create"); return 2; }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long passed = 0, run = 0, nhung = 0;
    int consecutive = 0;
    for (long i = 0; i < cycles; i++) {
        run++;
        int ok = run_cycle(i);
        if (ok) { passed++; consecutive = 0; }
        else { failures++; nhung += hung; }
        if (!ok && give_up > 0 && ++consecutive >= give_up) {
            fprintf(stderr, "fork_stress: %ld consecutive failed cycles, giving up after cycle %ld of %ld\n",
                    give_up, i + 1, cycles);
            break;
        }
    }
    alarm(0);
    atomic_store(&stop_helper, 1);
    pthread_join(th, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    long herr = atomic_load(&helper_errors);
    printf("fork_stress: %ld of %ld cycles run in %.1f s: %ld passed, %ld hung, %ld failed otherwise, "
           "%ld not run; helper thread: %ld iterations, %ld errors\n",
           run, cycles, secs, passed, nhung, failures - nhung, cycles - run,
           atomic_load(&helper_iters), herr);
    /* The helper's errors, or giving up, fail the run: one failure each, not cycles. */
    long failed = failures + (herr != 0) + (run < cycles);
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed ? 1 : 0;
}
