/* harness.h - the shim's C test harness: each test runs in a forked child whose store is a
 * fresh directory (SHM_REDIRECT_DIR=STORE inside BASE); CHECK counts failures. */
#ifndef SHMR_TEST_HARNESS_H
#define SHMR_TEST_HARNESS_H
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
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

extern char BASE[64], STORE[96];
extern int failures;

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

const char *sp(const char *name);
const char *bp(const char *name);
int count_entries(const char *dir, const char *prefix);
void make_store(void);
void write_file(const char *path, const void *data, size_t len, mode_t mode);
void sem_image(unsigned char img[SHMR_SEM_SIZE], uint32_t value);
int getvalue(sem_t *s);
int as_nobody(void (*fn)(void));
int dev_shm_native(void);

/* The tests, in the order the runner runs them. */
void t_names_invalid(void);
void t_names_leading_slashes(void);
void t_names_length(void);
void t_sem_value_max(void);
void t_excl_existing(void);
void t_missing_without_creat(void);
void t_eisdir(void);
void t_eperm_is_eacces(void);
void t_same_pointer_refcount(void);
void t_close_unknown(void);
void t_args_only_with_creat(void);
void t_race_64_processes(void);
void t_symlink_at_name(void);
void t_fifo_at_name(void);
void t_bad_semaphore_files(void);
void t_creat_foreign_owner(void);
void t_store_symlink(void);
void t_store_symlink_trailing_slash(void);
void t_store_not_dir(void);
void t_store_foreign_owner(void);
void t_store_world_writable_not_sticky(void);
void t_store_relative_env(void);
void t_store_missing_parent(void);
void t_store_created_mode(void);
void t_store_as_nobody_body(void);
void t_store_root_owned_used_by_nobody(void);
void t_shm_fd_flags(void);
void t_errno_preserved(void);
void t_semaphore_across_processes(void);
void t_threads(void);
void t_native_passthrough(void);
void t_statvfs(void);
void t_statvfs_like_glibc(void);
void t_fork_during_first_use(void);
void t_dirfd_closed_by_program(void);
void t_query_store_dir(void);
void t_query_store_dir_trailing_slashes(void);
void t_query_store_open(void);
void t_query_native(void);
void t_query_relative_tmpdir(void);
void t_query_tmpdir_spelling(void);
void t_query_path_too_long(void);

#endif
