"""CPython's multiprocessing.shared_memory (SharedMemory, ShareableList), run by mp.rebind with
two of its imports answered by ours:

  * `_posixshmem` (shm_open, shm_unlink) -> shm_redirect.store.clib, libshm_redirect.so's:
    segments live in the library's store (the native /dev/shm when it works). _posixshmem is
    never modified.
  * `.resource_tracker` -> shm_redirect.mp.resource_tracker.

On 3.10-3.12 SharedMemory gains 3.13's keyword `track` (below): track=False neither registers
with nor unregisters from the resource tracker. SharedMemoryManager is shm_redirect.mp.managers'
(reachable from here too, lazily: managers imports this module).
"""
import types

from ..store import clib
from . import rebind

clib.load()


def __getattr__(name):
    if name == 'SharedMemoryManager':
        from shm_redirect.mp.managers import SharedMemoryManager
        return SharedMemoryManager
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


rebind.module(globals(), 'multiprocessing.shared_memory', {
    '_posixshmem': 'shm_redirect.store.clib',
    'multiprocessing.resource_tracker': 'shm_redirect.mp.resource_tracker',
})
__all__ = __all__ + ['SharedMemoryManager']   # noqa: F821 (CPython's)

_Tracked = SharedMemory   # noqa: F821 (CPython's class, this module's instance of it)
if 'track' not in (_Tracked.__init__.__kwdefaults__ or {}):   # before 3.13
    _NOT_TRACKED = types.SimpleNamespace(register=lambda name, rtype: None,
                                         unregister=lambda name, rtype: None)

    class SharedMemory(_Tracked):
        __doc__ = _Tracked.__doc__
        _track = True
        _init_untracked = rebind.function(_Tracked.__init__, resource_tracker=_NOT_TRACKED)
        _unlink_untracked = rebind.function(_Tracked.unlink, resource_tracker=_NOT_TRACKED)

        def __init__(self, name=None, create=False, size=0, *, track=True):
            self._track = track
            init = _Tracked.__init__ if track else SharedMemory._init_untracked
            init(self, name, create, size)

        def unlink(self):
            (_Tracked.unlink if self._track else SharedMemory._unlink_untracked)(self)
        unlink.__doc__ = _Tracked.unlink.__doc__
