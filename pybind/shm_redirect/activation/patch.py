"""In-process redirection of CPython's semaphores and shared memory (`patch` activation mode).

Everything goes through libshm_redirect.so's own exported functions (shm_redirect.store.clib), so
this process and its (preloaded) children use one store with one format (core/STORE.md).

* `_multiprocessing.SemLock` becomes shm_redirect.mp.semlock's subclass (the module attribute is
  replaced; the C type is immutable and untouched).
* `_multiprocessing.sem_unlink`, `_posixshmem.shm_open/shm_unlink`, the copies bound by
  multiprocessing.synchronize and multiprocessing.resource_tracker if already imported.
* multiprocessing.heap.Arena._dir_candidates = [] (now, or when the module is first imported, by
  a one-shot meta-path hook), so Arena never statvfs's a missing /dev/shm.
"""
import os
import sys

from ..mp import semlock
from ..store import clib

_installed = False


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
    path = semlock.load(lib_path)
    import _multiprocessing
    import _posixshmem

    if not getattr(_multiprocessing.SemLock, "_shmr_patched", False):
        semlock.SemLock._shmr_patched = True
        _multiprocessing.SemLock = semlock.SemLock
    if hasattr(_multiprocessing, "sem_unlink"):
        _multiprocessing.sem_unlink = clib.sem_unlink
    _posixshmem.shm_open = clib.shm_open
    _posixshmem.shm_unlink = clib.shm_unlink

    mods = sys.modules
    sync = mods.get("multiprocessing.synchronize")
    if sync is not None:
        sync.sem_unlink = clib.sem_unlink
    rt = mods.get("multiprocessing.resource_tracker")
    funcs = getattr(rt, "_CLEANUP_FUNCS", None)
    if isinstance(funcs, dict):
        if "semaphore" in funcs:
            funcs["semaphore"] = clib.sem_unlink
        if "shared_memory" in funcs:
            funcs["shared_memory"] = clib.shm_unlink
    heap = mods.get("multiprocessing.heap")
    if heap is not None:
        _patch_heap(heap)
    elif _HeapHook not in sys.meta_path:
        sys.meta_path.insert(0, _HeapHook)

    if export:
        from .. import with_preload
        with_preload(os.environ, path)
    _installed = True
