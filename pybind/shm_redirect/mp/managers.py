# adapted from CPython 3.11 Lib/multiprocessing/managers.py (the SharedMemory parts): what changed
#
#   * SharedMemoryManager, SharedMemoryServer and _SharedMemoryTracker are subclasses of
#     multiprocessing.managers' that create, attach and unlink segments through
#     shm_redirect.mp.shared_memory; the manager defaults to shm_redirect's context.
#
"""SharedMemoryManager whose segments live in the shm-redirect store."""
import os

from multiprocessing import managers as _managers
from multiprocessing import util as _util

from . import resource_tracker
from .shared_memory import ShareableList, SharedMemory

__all__ = ['SharedMemoryManager']



class _SharedMemoryTracker(_managers._SharedMemoryTracker):
    "Manages one or more shared memory segments (unlinked through this module)."

    def destroy_segment(self, segment_name):
        """Calls unlink() on the shared memory block with the supplied name
        and removes it from the list of blocks being tracked."""
        _util.debug(f"Destroy segment {segment_name!r} in pid {os.getpid()}")
        self.segment_names.remove(segment_name)
        segment = SharedMemory(segment_name)
        segment.close()
        segment.unlink()


class SharedMemoryServer(_managers.SharedMemoryServer):

    def __init__(self, *args, **kwargs):
        super(SharedMemoryServer, self).__init__(*args, **kwargs)
        old = self.shared_memory_context
        self.shared_memory_context = _SharedMemoryTracker(
            old.shared_memory_context_name, old.segment_names)
        old.segment_names = []   # (its __del__ unlinks what it holds: nothing)


class SharedMemoryManager(_managers.SharedMemoryManager):
    """multiprocessing.managers.SharedMemoryManager whose segments are shm_redirect's
    SharedMemory/ShareableList; the server runs in a process of shm_redirect's context."""

    _Server = SharedMemoryServer

    def __init__(self, address=None, authkey=None, serializer='pickle', ctx=None, **kwargs):
        if ctx is None:
            from .context import get_context
            ctx = get_context()
        if os.name == "posix":
            resource_tracker.ensure_running()
        _managers.BaseManager.__init__(self, address, authkey, serializer, ctx=ctx, **kwargs)
        _util.debug(f"{self.__class__.__name__} created by pid {os.getpid()}")

    def SharedMemory(self, size):
        """Returns a new SharedMemory instance with the specified size in
        bytes, to be tracked by the manager."""
        with self._Client(self._address, authkey=self._authkey) as conn:
            sms = SharedMemory(None, create=True, size=size)
            try:
                _managers.dispatch(conn, None, 'track_segment', (sms.name,))
            except BaseException as e:
                sms.unlink()
                raise e
        return sms

    def ShareableList(self, sequence):
        """Returns a new ShareableList instance populated with the values
        from the input sequence, to be tracked by the manager."""
        with self._Client(self._address, authkey=self._authkey) as conn:
            sl = ShareableList(sequence)
            try:
                _managers.dispatch(conn, None, 'track_segment', (sl.shm.name,))
            except BaseException as e:
                sl.shm.unlink()
                raise e
        return sl
