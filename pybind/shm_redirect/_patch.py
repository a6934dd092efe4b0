"""In-process redirection of CPython's semaphores and shared memory (`patch` activation mode).

Everything goes through libshm_redirect.so's own exported functions (shm_redirect._native), so
this process and its (preloaded) children use one store with one format (core/STORE.md).

* `_multiprocessing.SemLock` becomes a Python subclass (the module attribute is replaced; the C
  type is immutable and untouched). Its instances are built by the base type's `_rebuild` around
  a sem_t we mapped, with name=None, so acquire/release are CPython's C code on a real sem_t:
  native speed.
  - unlink=True (the fork context): no file at all; an anonymous MAP_SHARED mapping initialised
    with sem_init(pshared=1), inherited by forked children.
  - otherwise the library's sem_open(name, O_CREAT|O_EXCL); EEXIST is FileExistsError, which
    synchronize.SemLock's 100-name loop expects.
  The mapping (or the library's sem_open reference) lives as long as the instance; the base
  dealloc's sem_close(address) is glibc's, which returns EINVAL for an address glibc did not map
  and does nothing else. The subclass carries the name (property `name`) so pickling by name for
  spawn/forkserver and re-pickling to grandchildren work; `_rebuild` with a name reopens it
  through the library (same pointer again if open: refcounted there).
* `_multiprocessing.sem_unlink`, `_posixshmem.shm_open/shm_unlink`, the copies bound by
  multiprocessing.synchronize and multiprocessing.resource_tracker if already imported.
* multiprocessing.heap.Arena._dir_candidates = [] (now, or when the module is first imported, by
  a one-shot meta-path hook), so Arena never statvfs's a missing /dev/shm.
"""
import os
import sys

from . import _native

RECURSIVE_MUTEX, SEMAPHORE = 0, 1
_installed = False


# The owners call the ctypes functions directly (set by install(); ctypes function objects are
# not descriptors): nothing in __del__ depends on module globals, which may be gone at shutdown.
class _Anon(object):
    """Owns an anonymous sem_t mapping."""
    __slots__ = ("addr",)
    _munmap = None

    def __init__(self, addr):
        self.addr = addr

    def __del__(self):
        self._munmap(self.addr, 32)   # in a forked child too: only the child's copy goes


class _Named(object):
    """Owns one reference of the library's sem_open."""
    __slots__ = ("addr",)
    _close = None

    def __init__(self, addr):
        self.addr = addr

    def __del__(self):
        self._close(self.addr)


def _make_semlock_class(base):
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
                addr = _native.anon_sem_new(value)
                owner, name = _Anon(addr), None
            else:
                addr = _native.sem_open(name, _native.O_CREAT | _native.O_EXCL, 0o600, value)
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
            addr = _native.sem_open(name, 0)
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


def _patch_heap(heap):
    try:
        heap.Arena._dir_candidates = []
    except AttributeError:
        pass


class _HeapHook(object):
    """One-shot meta-path finder: patches multiprocessing.heap right after its first import."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "multiprocessing.heap":
            return None
        try:
            sys.meta_path.remove(cls)
        except ValueError:
            pass
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        orig = getattr(loader, "exec_module", None)
        if orig is None:
            return spec

        def exec_module(module):
            orig(module)
            _patch_heap(module)
        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):
            pass
        return spec

    @classmethod
    def invalidate_caches(cls):
        pass


def install(lib_path=None, export=True):
    """Redirect this process (idempotent). export: prepend the library to LD_PRELOAD in
    os.environ so that every child process (spawn, forkserver, resource tracker, subprocess) is
    preloaded."""
    global _installed
    if _installed:
        return
    path = _native.load(lib_path)
    _Anon._munmap = _native._libc.munmap
    _Named._close = _native._lib.sem_close
    import _multiprocessing
    import _posixshmem

    base = _multiprocessing.SemLock
    if not getattr(base, "_shmr_patched", False):
        cls = _make_semlock_class(base)
        cls._shmr_patched = True
        _multiprocessing.SemLock = cls
    if hasattr(_multiprocessing, "sem_unlink"):
        _multiprocessing.sem_unlink = _native.sem_unlink
    _posixshmem.shm_open = _native.shm_open
    _posixshmem.shm_unlink = _native.shm_unlink

    mods = sys.modules
    sync = mods.get("multiprocessing.synchronize")
    if sync is not None:
        sync.sem_unlink = _native.sem_unlink
    rt = mods.get("multiprocessing.resource_tracker")
    funcs = getattr(rt, "_CLEANUP_FUNCS", None)
    if isinstance(funcs, dict):
        if "semaphore" in funcs:
            funcs["semaphore"] = _native.sem_unlink
        if "shared_memory" in funcs:
            funcs["shared_memory"] = _native.shm_unlink
    heap = mods.get("multiprocessing.heap")
    if heap is not None:
        _patch_heap(heap)
    elif _HeapHook not in sys.meta_path:
        sys.meta_path.insert(0, _HeapHook)

    if export:
        old = os.environ.get("LD_PRELOAD", "")
        if path not in old.replace(":", " ").split():
            os.environ["LD_PRELOAD"] = path + (":" + old if old else "")
    _installed = True
