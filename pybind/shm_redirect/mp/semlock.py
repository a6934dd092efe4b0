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

After load(), this module stands in for `_multiprocessing` in CPython's synchronize as our
synchronize runs it (mp.rebind): `SemLock` is the type (the one activation.patch installs, when
the process is patched) and `sem_unlink` the library's.
"""
from ..store import clib
from ..store.format import SEM_SIZE

RECURSIVE_MUTEX, SEMAPHORE = 0, 1


class _Owner(object):
    """Owns one sem_t: an anonymous mapping (released with munmap) or one reference of the
    library's sem_open (sem_close). It holds the ctypes function itself, so nothing in __del__
    depends on module globals, which may be gone at shutdown."""
    __slots__ = ("addr", "release", "args")

    def __init__(self, addr, release, *args):
        self.addr, self.release, self.args = addr, release, args

    def __del__(self):
        self.release(self.addr, *self.args)   # in a forked child too: only the child's copy goes


def _anon_owner(addr):
    return _Owner(addr, clib._libc.munmap, SEM_SIZE)


def _named_owner(addr):
    return _Owner(addr, clib._lib.sem_close)


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
                return cls._wrap(addr, kind, maxvalue, _anon_owner(addr), None)
            addr = clib.sem_open(name, clib.O_CREAT | clib.O_EXCL, 0o600, value)
            return cls._wrap(addr, kind, maxvalue, _named_owner(addr), name)

        @classmethod
        def _rebuild(cls, handle, kind, maxvalue, name, /):
            if name is None:   # a raw address (inherited by fork): the base behaviour
                return cls._wrap(handle, kind, maxvalue, None, None)
            addr = clib.sem_open(name, 0)
            return cls._wrap(addr, kind, maxvalue, _named_owner(addr), name)

        @classmethod
        def _wrap(cls, addr, kind, maxvalue, owner, name):
            """The base type around addr (never naming it: the base would sem_open it), with
            the mapping's owner and the name kept on the side."""
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


SemLock = None
sem_unlink = clib.sem_unlink


def load(lib_path=None):
    """Load libshm_redirect.so (once) and make this module's SemLock type; returns the
    library's path. Patches nothing."""
    global SemLock
    path = clib.load(lib_path)
    if SemLock is None:
        import _multiprocessing
        base = _multiprocessing.SemLock
        SemLock = base if getattr(base, "_shmr_patched", False) else make_semlock_class(base)
    return path
