"""The C-level semaphore type of shm-redirect: a Python subclass of _multiprocessing.SemLock whose
sem_t lives in the store of libshm_redirect.so (shm_redirect.store.clib), used by the explicit
contexts (mp.synchronize) and by `patch` activation (activation.patch installs it as
_multiprocessing.SemLock). The C type is immutable and untouched.

Instances are built by the base type's `_rebuild` around a sem_t we mapped, with name=None, so
acquire/release are CPython's C code on a real sem_t: native speed.
  - unlink=True (the fork context): no file at all; an anonymous MAP_SHARED mapping initialised
    with sem_init(pshared=1), inherited by forked children.
  - otherwise the library's sem_open(name, O_CREAT|O_EXCL); EEXIST is FileExistsError, which
    synchronize.SemLock's 100-name loop expects.
The mapping (or the library's sem_open reference) lives as long as the instance; the base
dealloc's sem_close(address) is glibc's, which returns EINVAL for an address glibc did not map
and does nothing else. The subclass carries the name (property `name`) so pickling by name for
spawn/forkserver and re-pickling to grandchildren work; `_rebuild` with a name reopens it
through the library (same pointer again if open: refcounted there).
"""
from ..store import clib
from ..store.format import SEM_SIZE

RECURSIVE_MUTEX, SEMAPHORE = 0, 1


# The owners call the ctypes functions directly (set by load(); ctypes function objects are
# not descriptors): nothing in __del__ depends on module globals, which may be gone at shutdown.
class _Anon(object):
    """Owns an anonymous sem_t mapping."""
    __slots__ = ("addr",)
    _munmap = None

    def __init__(self, addr):
        self.addr = addr

    def __del__(self):
        self._munmap(self.addr, SEM_SIZE)   # in a forked child too: only the child's copy goes


class _Named(object):
    """Owns one reference of the library's sem_open."""
    __slots__ = ("addr",)
    _close = None

    def __init__(self, addr):
        self.addr = addr

    def __del__(self):
        self._close(self.addr)


def make_semlock_class(base):
    class SemLock(base):
        """_multiprocessing.SemLock whose sem_t lives in the shm-redirect store (or in an
        anonymous shared mapping when unlinked at once)."""
        __slots__ = ("_shmr_name", "_shmr_owner")
        __module__ = "_multiprocessing"

        def __new__(cls, kind, value, maxvalue, name, unlink):
            if kind != RECURSIVE_MUTEX and kind != SEMAPHORE:
                raise ValueError("unrecognized kind")
            if not isinstance(name, str):
                raise TypeError("SemLock() argument 'name' must be str, not %s"
                                % type(name).__name__)
            if unlink:
                addr = clib.anon_sem_new(value)
                owner, name = _Anon(addr), None
            else:
                addr = clib.sem_open(name, clib.O_CREAT | clib.O_EXCL, 0o600, value)
                owner = _Named(addr)
            self = super(SemLock, cls)._rebuild(addr, kind, maxvalue, None)
            self._shmr_owner = owner
            self._shmr_name = name
            return self

        @classmethod
        def _rebuild(cls, handle, kind, maxvalue, name, /):
            if name is None:   # a raw address (inherited by fork): the base behaviour
                self = super(SemLock, cls)._rebuild(handle, kind, maxvalue, None)
                self._shmr_owner = None
                self._shmr_name = None
                return self
            addr = clib.sem_open(name, 0)
            owner = _Named(addr)
            self = super(SemLock, cls)._rebuild(addr, kind, maxvalue, None)
            self._shmr_owner = owner
            self._shmr_name = name
            return self

        @property
        def name(self):
            return getattr(self, "_shmr_name", None)

        def __reduce__(self):   # as the base: not picklable directly
            raise TypeError("cannot pickle %r object" % type(self).__name__)

    SemLock.__qualname__ = "SemLock"
    return SemLock


def load(lib_path=None):
    """Load libshm_redirect.so (once) and give the owners their ctypes functions; returns the
    library's path. Patches nothing."""
    path = clib.load(lib_path)
    if _Anon._munmap is None:
        _Anon._munmap = clib._libc.munmap
    if _Named._close is None:
        _Named._close = clib._lib.sem_close
    return path
