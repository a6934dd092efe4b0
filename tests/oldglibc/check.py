"""Checks for tests/oldglibc/run.sh, run by the old glibc's Python (3.9) inside the sandbox.

    python3 check.py baseline       without the preload and /dev/shm: a Lock must fail with
                                    ENOSYS, as on Lambda's python3.10/3.11 (glibc 2.26): glibc
                                    < 2.34 then looks for any mounted tmpfs, and the sandbox has
                                    none (its /dev is a ramfs, its /tmp an ext4)
    python3 check.py interop NAME   glibc's own sem_open opens the semaphore NAME (value 2)
                                    that the preload made without dlsym (nolibdl), then removes it

Prints one line "CHECK <what> ok" or "CHECK <what> error <details>"; exit status 0.
"""
import errno
import multiprocessing as mp
import sys


def baseline():
    try:
        mp.Lock()
    except OSError as e:
        return 'ok' if e.errno == errno.ENOSYS else 'error unexpected %r (want ENOSYS)' % e
    return 'error a Lock worked without the preload and without /dev/shm'


def interop(name):
    import _multiprocessing
    # SemLock._rebuild(handle, kind, maxvalue, name) calls sem_open(name, 0): in native mode
    # the preload forwards it to glibc 2.31's libpthread, which maps our file.
    lock = _multiprocessing.SemLock._rebuild(0, 0, 10, name)
    if lock._get_value() != 2:
        return 'error value %d, want 2' % lock._get_value()
    if not lock.acquire(timeout=5) or lock._get_value() != 1:
        return 'error acquire'
    lock.release()
    value = lock._get_value()
    del lock
    _multiprocessing.sem_unlink(name)
    return 'ok' if value == 2 else 'error value %d after release' % value


def main():
    what = sys.argv[1]
    try:
        line = baseline() if what == 'baseline' else interop(sys.argv[2])
    except BaseException as e:  # noqa: B902 - report everything
        line = 'error %s: %s' % (type(e).__name__, e)
    print('CHECK %s %s' % (what, line), flush=True)


if __name__ == '__main__':
    main()
