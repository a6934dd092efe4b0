"""CPython's multiprocessing.heap (Arena, Heap, BufferWrapper), run by mp.rebind, with
Arena._dir_candidates emptied: CPython puts arenas on /dev/shm when statvfs says it has room
(and raises FileNotFoundError where there is none); ours always take their unlinked backing
file from multiprocessing.util.get_temp_dir(), as CPython does when /dev/shm is too small.

The classes are this module's own (CPython's code, a second time), so BufferWrapper allocates
from a Heap of its own and multiprocessing.heap is not modified. Pickling an Arena for
spawn/forkserver is CPython's (its fd travels with DupFd; reduce_arena is registered for this
module's Arena by CPython's own code).
"""
from . import rebind

rebind.module(globals(), 'multiprocessing.heap', {})
Arena._dir_candidates = []   # noqa: F821 (defined by CPython's code)
