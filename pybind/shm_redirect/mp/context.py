"""multiprocessing contexts that need neither /dev/shm, nor LD_PRELOAD, nor global patching.

Mirrors CPython's Lib/multiprocessing/context.py: one small context class per start method,
deriving from multiprocessing.context's concrete context and overriding only the factory
methods whose objects live in shared memory:

    Lock RLock Semaphore BoundedSemaphore Condition Event Barrier   -> shm_redirect.mp.synchronize
    RawValue RawArray Value Array                                   -> shm_redirect.mp.sharedctypes

Everything else (Process, Queue, JoinableQueue, SimpleQueue, Pool, Manager, Pipe, ...) is
CPython's and reaches those factories through the context. SharedMemory, ShareableList and
SharedMemoryManager (shm_redirect.mp.shared_memory) are context methods too.

Importing this module registers the contexts as 'shm_redirect_fork', 'shm_redirect_spawn' and
'shm_redirect_forkserver' in multiprocessing.context._concrete_contexts (registration only:
nothing of multiprocessing's behaviour changes), so multiprocessing.get_context(NAME) and
multiprocessing.set_start_method(NAME) find them. The context names are str subclasses that
pickle as a call to _registered(); ctx.get_start_method() answers the plain method name
('fork', ...), as CPython's checks expect. A spawn/forkserver child started while one of our contexts is
the default unpickles its preparation data's 'start_method' by importing this module first, so
the name is registered there before multiprocessing.spawn.prepare() sets it.
"""
import os
from multiprocessing import context as _mpctx

__all__ = ["get_context", "StoreForkContext", "StoreSpawnContext", "StoreForkServerContext"]

PREFIX = "shm_redirect_"


def _registered(name):
    """Unpickling helper for start method names: this module's import registers the
    contexts; the value is the plain str."""
    return str(name)


class _MethodName(str):
    __slots__ = ()

    def __reduce__(self):
        return (_registered, (str(self),))


def _tracker_module():
    from . import resource_tracker
    return resource_tracker


def _inherit_tracker(dupfd):
    """In a spawn/forkserver child: use the parent's shm_redirect resource tracker (CPython
    passes only its own tracker's fd to children)."""
    fd = dupfd.detach() if dupfd is not None else None
    if fd is None:
        return None
    tracker = _tracker_module()._resource_tracker
    old, pid = tracker._fd, tracker._pid
    if old == fd:
        return None
    # CPython's child gets the parent's tracker on its command line, before anything runs; we get
    # it only now, with the process object. Anything that already started a tracker of this
    # child's own (say, a named lock made while importing the main module) is left to that one:
    # closing it makes it exit (and clean up what it holds); from now on the parent's is used.
    tracker._fd, tracker._pid = fd, None
    if old is not None:
        try:
            os.close(old)
        except OSError:
            pass
        if pid is not None:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return None


class _TrackerLink(object):
    """Pickled (first) with a spawn/forkserver Process object: carries the parent's
    shm_redirect resource tracker fd, through the Popen's own fd passing (DupFd)."""
    __slots__ = ()

    def __reduce__(self):
        from multiprocessing import reduction
        return (_inherit_tracker, (reduction.DupFd(_tracker_module().getfd()),))


class _InheritTrackerMixin(object):
    """Process mixin: the child attaches to the parent's shm_redirect resource tracker before
    anything else of the process object (its args may register resources) is unpickled."""

    def __getstate__(self):
        state = {"_shmr_tracker": _TrackerLink()}
        state.update(self.__dict__)
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_shmr_tracker", None)
        self.__dict__.update(state)


class _StoreContextMixin(object):
    """The factory methods that must change; the rest is multiprocessing's BaseContext."""

    def Lock(self):
        '''Returns a non-recursive lock object'''
        from .synchronize import Lock
        return Lock(ctx=self.get_context())

    def RLock(self):
        '''Returns a recursive lock object'''
        from .synchronize import RLock
        return RLock(ctx=self.get_context())

    def Condition(self, lock=None):
        '''Returns a condition object'''
        from .synchronize import Condition
        return Condition(lock, ctx=self.get_context())

    def Semaphore(self, value=1):
        '''Returns a semaphore object'''
        from .synchronize import Semaphore
        return Semaphore(value, ctx=self.get_context())

    def BoundedSemaphore(self, value=1):
        '''Returns a bounded semaphore object'''
        from .synchronize import BoundedSemaphore
        return BoundedSemaphore(value, ctx=self.get_context())

    def Event(self):
        '''Returns an event object'''
        from .synchronize import Event
        return Event(ctx=self.get_context())

    def Barrier(self, parties, action=None, timeout=None):
        '''Returns a barrier object'''
        from .synchronize import Barrier
        return Barrier(parties, action, timeout, ctx=self.get_context())

    def RawValue(self, typecode_or_type, *args):
        '''Returns a shared object'''
        from .sharedctypes import RawValue
        return RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        '''Returns a shared array'''
        from .sharedctypes import RawArray
        return RawArray(typecode_or_type, size_or_initializer)

    def Value(self, typecode_or_type, *args, lock=True):
        '''Returns a synchronized shared object'''
        from .sharedctypes import Value
        return Value(typecode_or_type, *args, lock=lock, ctx=self.get_context())

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        '''Returns a synchronized shared array'''
        from .sharedctypes import Array
        return Array(typecode_or_type, size_or_initializer, lock=lock,
                     ctx=self.get_context())

    def SharedMemory(self, name=None, create=False, size=0, **kwargs):
        '''Returns a shared memory block in the store (shm_redirect.mp.shared_memory.SharedMemory)'''
        from .shared_memory import SharedMemory
        return SharedMemory(name, create, size, **kwargs)

    def ShareableList(self, sequence=None, *, name=None):
        '''Returns a list in shared memory (shm_redirect.mp.shared_memory.ShareableList)'''
        from .shared_memory import ShareableList
        return ShareableList(sequence, name=name)

    def SharedMemoryManager(self, *args, **kwargs):
        '''Returns a started-able SharedMemoryManager using this context'''
        from .managers import SharedMemoryManager
        kwargs.setdefault("ctx", self.get_context())
        return SharedMemoryManager(*args, **kwargs)


class _PlainStartMethod(object):
    """For our three concrete contexts (not mixed into DefaultContext, which answers from its
    actual context)."""

    def get_start_method(self, allow_none=False):
        """The start method proper: 'fork', 'spawn' or 'forkserver'.

        CPython asks a context this to learn how its processes start, and compares the answer
        with the plain names: ProcessPoolExecutor starts workers on demand (fork while its
        threads run) unless it hears 'fork', and 3.14 refuses max_tasks_per_child only then;
        3.12+'s SemLock refuses pickling a fork context's lock. The registered name
        ('shm_redirect_fork', ...) stays in _name: the default context reports that one,
        so a spawn child's preparation data names our context."""
        name = str(self._name)
        return name[len(PREFIX):] if name.startswith(PREFIX) else name


class StoreSpawnProcess(_InheritTrackerMixin, _mpctx.SpawnProcess):
    pass


class StoreForkServerProcess(_InheritTrackerMixin, _mpctx.ForkServerProcess):
    pass


class StoreForkContext(_PlainStartMethod, _StoreContextMixin, _mpctx.ForkContext):
    _name = _MethodName(PREFIX + "fork")


class StoreSpawnContext(_PlainStartMethod, _StoreContextMixin, _mpctx.SpawnContext):
    _name = _MethodName(PREFIX + "spawn")
    Process = StoreSpawnProcess


class StoreForkServerContext(_PlainStartMethod, _StoreContextMixin, _mpctx.ForkServerContext):
    _name = _MethodName(PREFIX + "forkserver")
    Process = StoreForkServerProcess


_contexts = {
    PREFIX + "fork": StoreForkContext(),
    PREFIX + "spawn": StoreSpawnContext(),
    PREFIX + "forkserver": StoreForkServerContext(),
}


def _register():
    for name, ctx in _contexts.items():
        _mpctx._concrete_contexts.setdefault(name, ctx)


_register()


def get_context(method=None):
    """The shm_redirect context for a start method: None (the platform's default start method:
    fork on Linux up to 3.13, forkserver from 3.14), 'fork', 'spawn', 'forkserver' (or the
    registered names 'shm_redirect_fork', ...)."""
    if method is None:
        method = _mpctx._default_context._default_context._name
    method = str(method)
    if method.startswith(PREFIX):
        method = method[len(PREFIX):]
    try:
        ctx = _contexts[PREFIX + method]
    except KeyError:
        raise ValueError("cannot find context for %r" % method) from None
    ctx._check_available()
    return ctx
