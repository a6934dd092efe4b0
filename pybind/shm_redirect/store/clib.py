"""ctypes binding to libshm_redirect.so: the C store, for every in-process caller.

The library is loaded with ctypes.CDLL (RTLD_LOCAL): it does not interpose on anything in this
process, but its own exported sem_open/sem_close/sem_unlink/shm_open/shm_unlink are callable and
decide native-vs-store exactly as the preload does (core/STORE.md), so this process and its
preloaded children share one store. Its query functions (shim/shm_redirect.h) answer which
directory that is, why /dev/shm is or is not used, and open that directory checked: the tracker
and the CLI ask them instead of re-deriving a rule.

Errors are raised as CPython's _multiprocessing/_posixshmem raise them: OSError(errno, strerror)
for the semaphore calls, OSError(errno, strerror, name) for the segment calls, so the errno picks
the subclass (FileExistsError drives synchronize.SemLock's name-retry loop).

Never imports the Go core.
"""
import ctypes
import os

from .format import SEM_SIZE, SEM_VALUE_MAX

__all__ = ["load", "sem_open", "sem_close", "sem_unlink", "shm_open", "shm_unlink",
           "anon_sem_new", "anon_sem_free", "store_dir", "native_errno", "store_open",
           "O_CREAT", "O_EXCL", "SEM_VALUE_MAX"]

O_CREAT, O_EXCL = os.O_CREAT, os.O_EXCL
_PROT_RW = 0x1 | 0x2               # PROT_READ | PROT_WRITE
_MAP_SHARED_ANON = 0x01 | 0x20     # MAP_SHARED | MAP_ANONYMOUS (Linux)
_MAP_FAILED = ctypes.c_void_p(-1).value

_lib = _libc = None
_path = None


def load(path=None):
    """Load the library (once); returns its path."""
    global _lib, _libc, _path
    if _lib is not None:
        return _path
    if path is None:
        from .. import preload_path
        path = os.environ.get("SHM_REDIRECT_LIB") or preload_path()
    lib = ctypes.CDLL(path, use_errno=True)
    libc = ctypes.CDLL(None, use_errno=True)   # the process's libc (not preloaded: glibc's)
    vp, cp, ci, cu = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint
    # sem_open is variadic (mode_t, unsigned) after oflag; on x86-64/aarch64 SysV passing them as
    # fixed int arguments is ABI-identical, and they are read only with O_CREAT.
    for name, res, args in (("sem_open", vp, [cp, ci, cu, cu]), ("sem_close", ci, [vp]),
                            ("sem_unlink", ci, [cp]), ("shm_open", ci, [cp, ci, cu]),
                            ("shm_unlink", ci, [cp]),
                            ("shm_redirect_store_dir", ci, [ctypes.c_char_p, ctypes.c_size_t]),
                            ("shm_redirect_native_errno", ci, []),
                            ("shm_redirect_store_open", ci, [ci])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    for name, res, args in (("mmap", vp, [vp, ctypes.c_size_t, ci, ci, ci, ctypes.c_long]),
                            ("munmap", ci, [vp, ctypes.c_size_t]),
                            ("sem_init", ci, [vp, ci, cu])):
        fn = getattr(libc, name)
        fn.restype, fn.argtypes = res, args
    _lib, _libc, _path = lib, libc, path
    return path


def _err(filename=None):
    e = ctypes.get_errno()
    if filename is None:
        return OSError(e, os.strerror(e))
    return OSError(e, os.strerror(e), filename)


def _enc(name):
    if not isinstance(name, str):
        raise TypeError("argument must be str, not %s" % type(name).__name__)
    return name.encode("utf-8")


def sem_open(name, oflag, mode=0o600, value=0):
    """The library's sem_open: the sem_t address (int), or OSError."""
    addr = _lib.sem_open(_enc(name), oflag, mode, value)
    if not addr:            # SEM_FAILED is NULL in glibc
        raise _err()
    return addr


def sem_close(addr):
    if _lib.sem_close(addr) != 0:
        raise _err()


def sem_unlink(name):
    """Drop-in for _multiprocessing.sem_unlink."""
    if _lib.sem_unlink(_enc(name)) != 0:
        raise _err()


def shm_open(path, flags, mode=0o777):
    """Drop-in for _posixshmem.shm_open(path, flags, mode=0o777): a file descriptor."""
    b = _enc(path)
    while True:
        fd = _lib.shm_open(b, flags, mode)
        if fd >= 0:
            return fd
        if ctypes.get_errno() != 4:   # EINTR: retry, as CPython does
            raise _err(path)


def shm_unlink(path):
    """Drop-in for _posixshmem.shm_unlink(path)."""
    if _lib.shm_unlink(_enc(path)) != 0:
        raise _err(path)


def anon_sem_new(value):
    """A process-shared sem_t in a fresh anonymous MAP_SHARED mapping (no file at all): what a
    semaphore that is unlinked at once (the fork context) needs. Returns its address."""
    addr = _libc.mmap(None, SEM_SIZE, _PROT_RW, _MAP_SHARED_ANON, -1, 0)
    if addr is None or addr == _MAP_FAILED:
        raise _err()
    if _libc.sem_init(addr, 1, value) != 0:   # EINVAL above SEM_VALUE_MAX, like sem_open
        err = _err()
        _libc.munmap(addr, SEM_SIZE)
        raise err
    return addr


def anon_sem_free(addr):
    _libc.munmap(addr, SEM_SIZE)


def store_dir():
    """(directory, native): the directory this process's calls use, as the library decided it at
    its first call (native: glibc's /dev/shm). OSError for a bad path (EINVAL: SHM_REDIRECT_DIR
    not absolute; ENAMETOOLONG)."""
    load()
    buf = ctypes.create_string_buffer(4096)
    r = _lib.shm_redirect_store_dir(buf, len(buf))
    if r < 0:
        raise _err(os.environ.get("SHM_REDIRECT_DIR") or None)
    return os.fsdecode(buf.value), r == 1


def native_errno():
    """0 when /dev/shm is usable natively, else why not as an errno (shim/shm_redirect.h)."""
    load()
    return _lib.shm_redirect_native_errno()


def store_open(create=True):
    """A new descriptor of store_dir()'s directory (the caller closes it), checked as every call
    checks it and, with create, made as the first call would; OSError(errno, strerror, dir)."""
    load()
    fd = _lib.shm_redirect_store_open(1 if create else 0)
    if fd < 0:
        e = ctypes.get_errno()
        try:
            where = store_dir()[0]
        except OSError:
            where = os.environ.get("SHM_REDIRECT_DIR") or None
        raise OSError(e, os.strerror(e), where)
    return fd
