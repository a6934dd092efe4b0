"""Mirrors of CPython's multiprocessing modules whose objects live in the shm-redirect store.

Each subclasses or wraps its CPython counterpart where 3.10-3.15 allow it and copies only what
must differ (keeping CPython's reasons): context (the explicit contexts), synchronize (Lock,
Semaphore, ... on semlock's SemLock type), heap (Arena and the sharedctypes functions),
shared_memory (SharedMemory, ShareableList, SharedMemoryManager), resource_tracker (CPython's
protocol, with journals in the store so that SIGKILLed trees leak nothing).
"""
