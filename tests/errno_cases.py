"""The error numbers of sem_open/sem_unlink/shm_open/shm_unlink for bad names and flags, as the
C library this interpreter runs on answers them (ctypes on the process's own symbols: glibc's, or
the preload's where it is loaded). Used by tests/errno_glibc.sh to compare a real glibc with a
working /dev/shm against the preload's store, case by case.

    python3 errno_cases.py      prints "glibc VERSION" then one "CASE RESULT" line per case

RESULT is "ok" or an errno name. Every object made here is removed again. Runs on Python 3.9+
(the old-glibc roots).
"""
import ctypes
import errno
import os

libc = ctypes.CDLL(None, use_errno=True)
try:   # glibc < 2.34 keeps shm_* in librt (a preload, when loaded, comes first either way)
    libc.shm_open
except AttributeError:
    libc = ctypes.CDLL("librt.so.1", use_errno=True)
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
libc.sem_close.argtypes = [ctypes.c_void_p]
libc.sem_unlink.argtypes = [ctypes.c_char_p]
libc.shm_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint]
libc.shm_unlink.argtypes = [ctypes.c_char_p]
SEM_FAILED = None   # (sem_t *)0 as ctypes returns it
NEW = os.O_CREAT | os.O_EXCL
TAG = "shmr-errno-%d" % os.getpid()


def err():
    e = ctypes.get_errno()
    return errno.errorcode.get(e, str(e))


def sem_open(name, flags=NEW, value=0):
    h = libc.sem_open(name.encode(), flags, 0o600, value)
    if h is SEM_FAILED:
        return err()
    libc.sem_close(h)
    return "ok"


def sem_unlink(name):
    return "ok" if libc.sem_unlink(name.encode()) == 0 else err()


def shm_open(name, flags=NEW | os.O_RDWR):
    fd = libc.shm_open(name.encode(), flags, 0o600)
    if fd < 0:
        return err()
    os.close(fd)
    return "ok"


def shm_unlink(name):
    return "ok" if libc.shm_unlink(name.encode()) == 0 else err()


def cases():
    t = "/" + TAG
    long_ok, too_long = "/" + "s" * 251, "/" + "s" * 252   # sem: NAME_MAX - len("sem.")
    seg_ok, seg_too_long = "/" + "m" * 255, "/" + "m" * 256
    yield "sem_open empty name", lambda: sem_open("")
    yield "sem_open only slashes", lambda: sem_open("//")
    yield "sem_open name with inner slash", lambda: sem_open("/a/b")
    yield "sem_open name without leading slash", lambda: (sem_open(TAG + "-ns"), sem_unlink(TAG + "-ns"))[0]
    yield "sem_open longest name", lambda: (sem_open(long_ok), sem_unlink(long_ok))[0]
    yield "sem_open name one too long", lambda: sem_open(too_long)
    yield "sem_open missing, no O_CREAT", lambda: sem_open(t + "-missing", 0)
    yield "sem_open value above SEM_VALUE_MAX", lambda: sem_open(t + "-big", NEW, 0x80000000)
    yield "sem_open O_CREAT|O_EXCL twice", lambda: (sem_open(t), sem_open(t), sem_unlink(t))[1]
    yield "sem_unlink missing", lambda: sem_unlink(t + "-missing")
    yield "sem_unlink empty name", lambda: sem_unlink("")
    yield "sem_unlink name too long", lambda: sem_unlink(too_long)
    yield "shm_open empty name", lambda: shm_open("")
    yield "shm_open only slashes", lambda: shm_open("//")
    yield "shm_open name with inner slash", lambda: shm_open("/a/b")
    yield "shm_open longest name", lambda: (shm_open(seg_ok), shm_unlink(seg_ok))[0]
    yield "shm_open name one too long", lambda: shm_open(seg_too_long)
    yield "shm_open missing, no O_CREAT", lambda: shm_open(t + "-missing", os.O_RDWR)
    yield "shm_open O_CREAT|O_EXCL twice", lambda: (shm_open(t), shm_open(t), shm_unlink(t))[1]
    yield "shm_open O_RDONLY|O_CREAT", lambda: (shm_open(t + "-ro", os.O_RDONLY | os.O_CREAT),
                                                  shm_unlink(t + "-ro"))[0]
    yield "shm_unlink missing", lambda: shm_unlink(t + "-missing")
    yield "shm_unlink empty name", lambda: shm_unlink("")
    yield "shm_unlink name too long", lambda: shm_unlink(seg_too_long)


def main():
    print("glibc", os.confstr("CS_GNU_LIBC_VERSION").split()[-1])
    for name, fn in cases():
        print("%s: %s" % (name, fn()), flush=True)


if __name__ == "__main__":
    main()
