"""SharedMemoryManager whose segments live in the shm-redirect store.

Subclasses of multiprocessing.managers' SharedMemoryManager, SharedMemoryServer and
_SharedMemoryTracker. The methods that name CPython's shared_memory or resource tracker are
CPython's own functions, run by mp.rebind with those names bound to ours
(shm_redirect.mp.shared_memory, shm_redirect.mp.resource_tracker); the manager's server process
starts in shm_redirect's context unless told otherwise.
"""
from multiprocessing import managers as _managers

from . import rebind, shared_memory

__all__ = ['SharedMemoryManager']

_OURS = {'shared_memory': shared_memory}
_TRACKER = {'multiprocessing.resource_tracker': 'shm_redirect.mp.resource_tracker'}


class _SharedMemoryTracker(_managers._SharedMemoryTracker):
    destroy_segment = rebind.function(_managers._SharedMemoryTracker.destroy_segment, **_OURS)


class SharedMemoryServer(_managers.SharedMemoryServer):
    __init__ = rebind.function(_managers.SharedMemoryServer.__init__,
                               _SharedMemoryTracker=_SharedMemoryTracker)


class SharedMemoryManager(_managers.SharedMemoryManager):
    __doc__ = _managers.SharedMemoryManager.__doc__
    _Server = SharedMemoryServer
    _init = rebind.function(_managers.SharedMemoryManager.__init__, _TRACKER)
    SharedMemory = rebind.function(_managers.SharedMemoryManager.SharedMemory, **_OURS)
    ShareableList = rebind.function(_managers.SharedMemoryManager.ShareableList, **_OURS)

    def __init__(self, address=None, authkey=None, serializer='pickle', ctx=None, **kwargs):
        if ctx is None:
            from .context import get_context
            ctx = get_context()
        SharedMemoryManager._init(self, address, authkey, serializer, ctx=ctx, **kwargs)

