/* store.h - what the interposers (shm_redirect.c) need from the store logic (store.c):
 * the once-per-process mode decision, the validated store directory, glibc's name rules,
 * the state lock and the per-call bracket. Everything here is hidden in the .so. */
#ifndef SHM_REDIRECT_STORE_H
#define SHM_REDIRECT_STORE_H

#include "store_format.h"

enum { M_UNSET, M_NATIVE, M_STORE };

/* M_NATIVE (forward to glibc) or M_STORE; decided at the first call. */
int shmr_mode(void);

/* The state lock: guards the directory cache and the semaphore table. Fork handlers are
 * registered at first use, so a child never inherits it held. */
void shmr_lock(void);
void shmr_unlock(void);

/* The store directory fd for object name, with its file name in fname (NAME_MAX + 1
 * bytes; "sem." prefixed when sem). Returns -1 with errno set; name errors are ENOENT
 * when unlinking, as in glibc. */
int shmr_target(const char *name, int sem, char *fname, int unlinking);

/* Around each store call, as glibc: no cancellation inside, errno untouched on success. */
struct call { int cancel_state, saved_errno; };
void shmr_enter(struct call *c);
void shmr_leave(struct call *c, int ok);

#endif
