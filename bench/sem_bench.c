/* sem_open/sem_unlink and shm_open/shm_unlink from C, for bench/run.py (`make bench`).
 *
 *   sem_bench N REPS   -> {"sem_open_us": .., "shm_open_us": ..} (medians over REPS of µs per cycle)
 *
 * Compiled at bench time with cc and run natively (/dev/shm) and with LD_PRELOAD (the store):
 * what a C program (or a C extension) pays per named semaphore / segment, without Python.
 * One cycle: sem_open(O_CREAT|O_EXCL) + sem_close + sem_unlink; shm_open(O_CREAT|O_EXCL) +
 * ftruncate(4096) + close + shm_unlink.
 */
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what) { perror(what); exit(1); }

static double sem_cycles(int n, const char *name) {
    double t = now_us();
    for (int i = 0; i < n; i++) {
        sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
        if (s == SEM_FAILED) die("sem_open");
        if (sem_close(s) || sem_unlink(name)) die("sem_close/sem_unlink");
    }
    return (now_us() - t) / n;
}

static double shm_cycles(int n, const char *name) {
    double t = now_us();
    for (int i = 0; i < n; i++) {
        int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0) die("shm_open");
        if (ftruncate(fd, 4096) || close(fd) || shm_unlink(name)) die("ftruncate/close/shm_unlink");
    }
    return (now_us() - t) / n;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000, reps = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 1 || reps < 1 || reps > 99) { fprintf(stderr, "usage: sem_bench N REPS\n"); return 2; }
    char name[64];
    snprintf(name, sizeof name, "/shmr-bench-%d", (int)getpid());
    double sem[99], shm[99];
    sem_cycles(n / 10 + 1, name);   /* warm up: the store directory, the dentry cache */
    shm_cycles(n / 10 + 1, name);
    for (int r = 0; r < reps; r++) {
        sem[r] = sem_cycles(n, name);
        shm[r] = shm_cycles(n, name);
    }
    qsort(sem, reps, sizeof *sem, cmp);
    qsort(shm, reps, sizeof *shm, cmp);
    printf("{\"sem_open_us\": %.3f, \"shm_open_us\": %.3f}\n", sem[reps / 2], shm[reps / 2]);
    return 0;
}
