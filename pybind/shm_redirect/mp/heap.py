"""Shared ctypes memory for shm_redirect's multiprocessing contexts, without /dev/shm.

adapted from CPython 3.11 Lib/multiprocessing/heap.py and sharedctypes.py: what changed

* Arena is multiprocessing.heap.Arena with `_dir_candidates = []`: it never statvfs's
  /dev/shm (which raises FileNotFoundError where there is none) and takes its unlinked backing
  file from multiprocessing.util.get_temp_dir() instead. Pickling for spawn/forkserver is
  CPython's (the file descriptor travels with DupFd; it is rebuilt as a plain Arena).
* Heap is multiprocessing.heap.Heap whose _new_arena makes that Arena; BufferWrapper allocates
  from a Heap of its own (CPython's BufferWrapper names its class attribute explicitly).
* RawValue/RawArray/Value/Array/copy are copies of sharedctypes' functions whose only change is
  the heap (sharedctypes._new_value uses the module global heap.BufferWrapper); synchronized,
  the Synchronized* wrappers and the pickling helpers are sharedctypes' own. Value/Array default
  to shm_redirect's context for their lock.

multiprocessing.heap and multiprocessing.sharedctypes are not modified.
"""
import ctypes
import mmap
import sys

from multiprocessing import heap as _mpheap
from multiprocessing import sharedctypes as _sct
from multiprocessing import util
from multiprocessing.context import reduction

__all__ = ["Arena", "Heap", "BufferWrapper", "RawValue", "RawArray", "Value", "Array", "copy",
           "synchronized"]


class Arena(_mpheap.Arena):
    """An Arena that never looks at /dev/shm."""
    _dir_candidates = []


if sys.platform != "win32":
    # ForkingPickler's reducers are looked up by exact type.
    reduction.register(Arena, _mpheap.reduce_arena)


class Heap(_mpheap.Heap):

    def _new_arena(self, size):
        # as CPython's, with our Arena
        length = self._roundup(max(self._size, size), mmap.PAGESIZE)
        if self._size < self._DOUBLE_ARENA_SIZE_UNTIL:
            self._size *= 2
        util.info('allocating a new mmap of length %d', length)
        arena = Arena(length)
        self._arenas.append(arena)
        return (arena, 0, length)


class BufferWrapper(_mpheap.BufferWrapper):

    _heap = Heap()

    def __init__(self, size):
        if size < 0:
            raise ValueError("Size {0:n} out of range".format(size))
        if sys.maxsize <= size:
            raise OverflowError("Size {0:n} too large".format(size))
        block = BufferWrapper._heap.malloc(size)
        self._state = (block, size)
        util.Finalize(self, BufferWrapper._heap.free, args=(block,))


# ---- sharedctypes, on this heap ----

typecode_to_type = _sct.typecode_to_type
synchronized = _sct.synchronized
rebuild_ctype = _sct.rebuild_ctype


def _default_context():
    """As sharedctypes' `ctx or get_context()`: the current default context when it is one of
    ours, else ours for the same start method."""
    import multiprocessing
    from .context import get_context, _StoreContextMixin
    ctx = multiprocessing.get_context()
    if isinstance(ctx, _StoreContextMixin):
        return ctx
    return get_context(ctx.get_start_method())


def _new_value(type_):
    size = ctypes.sizeof(type_)
    wrapper = BufferWrapper(size)
    return rebuild_ctype(type_, wrapper, None)


def RawValue(typecode_or_type, *args):
    '''
    Returns a ctypes object allocated from shared memory
    '''
    type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    obj = _new_value(type_)
    ctypes.memset(ctypes.addressof(obj), 0, ctypes.sizeof(obj))
    obj.__init__(*args)
    return obj


def RawArray(typecode_or_type, size_or_initializer):
    '''
    Returns a ctypes array allocated from shared memory
    '''
    type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    if isinstance(size_or_initializer, int):
        type_ = type_ * size_or_initializer
        obj = _new_value(type_)
        ctypes.memset(ctypes.addressof(obj), 0, ctypes.sizeof(obj))
        return obj
    else:
        type_ = type_ * len(size_or_initializer)
        result = _new_value(type_)
        result.__init__(*size_or_initializer)
        return result


def _with_lock(obj, lock, ctx):
    """Value's and Array's common tail (CPython repeats it in both): wrap obj with lock,
    a new RLock of ctx when lock is True or None, none when lock is False."""
    if lock is False:
        return obj
    if lock in (True, None):
        ctx = ctx or _default_context()
        lock = ctx.RLock()
    if not hasattr(lock, 'acquire'):
        raise AttributeError("%r has no method 'acquire'" % lock)
    return synchronized(obj, lock, ctx=ctx or _default_context())


def Value(typecode_or_type, *args, lock=True, ctx=None):
    '''
    Return a synchronization wrapper for a Value
    '''
    obj = RawValue(typecode_or_type, *args)
    return _with_lock(obj, lock, ctx)


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    '''
    Return a synchronization wrapper for a RawArray
    '''
    obj = RawArray(typecode_or_type, size_or_initializer)
    return _with_lock(obj, lock, ctx)


def copy(obj):
    new_obj = _new_value(type(obj))
    ctypes.pointer(new_obj)[0] = obj
    return new_obj
