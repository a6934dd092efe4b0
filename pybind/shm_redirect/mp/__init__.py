"""CPython's multiprocessing modules, with their objects in the shm-redirect store.

No module here copies CPython's code. synchronize, heap, sharedctypes and shared_memory run the
running interpreter's own module code under our name, with a few imports answered by ours
(rebind); managers and resource_tracker subclass CPython's classes, their few changed methods
being CPython's functions with some globals rebound. What is ours: context (the explicit
contexts), semlock (the C-level semaphore type, on libshm_redirect.so), rebind, and
tracker_journal (journals in the store, so that SIGKILLed trees leak nothing).
"""
