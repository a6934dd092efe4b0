"""CPython's multiprocessing.synchronize (Lock, RLock, Semaphore, BoundedSemaphore, Condition,
Event, Barrier), run by mp.rebind with three of its imports answered by ours:

  * `_multiprocessing` (SemLock, sem_unlink) -> shm_redirect.mp.semlock: the C-level semaphore
    is semlock's subclass of _multiprocessing.SemLock, created through libshm_redirect.so.
    Unlink-at-birth (fork) semaphores live in an anonymous MAP_SHARED mapping, named ones
    (spawn/forkserver) in the library's store (the native /dev/shm when it works). CPython's
    acquire/release run on a real sem_t: native speed. _multiprocessing is never modified.
  * `.resource_tracker` -> shm_redirect.mp.resource_tracker (CPython's client, our tracker).
  * `.heap` (Barrier's shared buffer) -> shm_redirect.mp.heap, which never statvfs's /dev/shm.

Everything else is the running interpreter's own code: 3.12's refusal to pickle a fork
context's lock, 3.14's Lock.locked(), ... Our contexts answer get_start_method() with the plain
method name, so CPython's `== 'fork'` checks hold for them.
"""
from . import rebind, semlock

semlock.load()
rebind.module(globals(), 'multiprocessing.synchronize', {
    '_multiprocessing': 'shm_redirect.mp.semlock',
    'multiprocessing.resource_tracker': 'shm_redirect.mp.resource_tracker',
    'multiprocessing.heap': 'shm_redirect.mp.heap',
})
