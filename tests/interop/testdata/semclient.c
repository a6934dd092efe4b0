/* A plain C client of the store, run with the preload: glibc's own sem_wait/sem_post on what
 * sem_open returns. Usage: semclient create NAME VALUE | post NAME | hold SEMNAME SEGNAME */
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fail(const char *what) { perror(what); return 1; }

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "create")) {
        sem_t *s = sem_open(argv[2], O_CREAT | O_EXCL, 0600, (unsigned)atoi(argv[3]));
        return s == SEM_FAILED ? fail("sem_open") : sem_close(s);
    }
    if (argc == 3 && !strcmp(argv[1], "post")) {
        sem_t *s = sem_open(argv[2], 0);
        if (s == SEM_FAILED) return fail("sem_open");
        return sem_post(s) ? fail("sem_post") : sem_close(s);
    }
    if (argc == 4 && !strcmp(argv[1], "hold")) {
        sem_t *s = sem_open(argv[2], O_CREAT | O_EXCL, 0600, 3u);
        if (s == SEM_FAILED) return fail("sem_open");
        int fd = shm_open(argv[3], O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0 || ftruncate(fd, 4096)) return fail("shm_open");
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) return fail("mmap");
        close(fd);  /* held by the mapping alone */
        printf("ready\n");
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0) {}
        return 0;
    }
    fprintf(stderr, "usage: semclient create NAME VALUE | post NAME | hold SEM SEG\n");
    return 2;
}
