/* semc.c - maps a semaphore file with plain open+mmap (no preload) and drives it with glibc's
 * own sem_* functions: core/interop_test.go compiles and runs it. */
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sem_t *map(const char *path) {
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) { perror(path); exit(2); }
	void *p = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(2); }
	close(fd);
	return p;
}

int main(int argc, char **argv) {
	if (argc == 3 && !strcmp(argv[1], "image")) { /* the bytes of sem_init(pshared=1, v) */
		sem_t s;
		memset(&s, 0xff, sizeof s);
		if (sem_init(&s, 1, atoi(argv[2])) != 0) { perror("sem_init"); return 2; }
		for (size_t i = 0; i < sizeof s; i++) printf("%02x", ((unsigned char *)&s)[i]);
		printf("\n");
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "pingpong")) { /* n times: wait ping, post pong */
		sem_t *ping = map(argv[2]), *pong = map(argv[3]);
		for (int i = atoi(argv[4]); i > 0; i--) {
			if (sem_wait(ping) != 0) { perror("sem_wait"); return 2; }
			if (sem_post(pong) != 0) { perror("sem_post"); return 2; }
		}
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "post")) {
		sem_t *s = map(argv[2]);
		for (int i = atoi(argv[3]); i > 0; i--) {
			usleep(i % 16 == 0 ? 100 : 0); /* let the Go side sleep in the futex now and then */
			if (sem_post(s) != 0) { perror("sem_post"); return 2; }
		}
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "value")) {
		int v;
		if (sem_getvalue(map(argv[2]), &v) != 0) { perror("sem_getvalue"); return 2; }
		printf("%d\n", v);
		return 0;
	}
	fprintf(stderr, "usage\n");
	return 2;
}
