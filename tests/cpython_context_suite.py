"""CPython's multiprocessing test suite (Lib/test/_test_multiprocessing.py) against
shm_redirect's contexts.

    SHMR_SUITE_METHOD=METHOD [SHMR_SUITE_NATIVE=1] python3 tests/cpython_context_suite.py [unittest args]

with PYTHONPATH=<repo>/pybind:<repo>/tests (this module must be importable by name in the
spawn/forkserver children), SHM_REDIRECT=off, no LD_PRELOAD. Driven by tests/cpython_context_suite.sh
(inside tests/sandbox.sh). METHOD: fork, spawn or forkserver. The same driver without
installing anything (SHMR_SUITE_NATIVE=1: the baseline, on a working /dev/shm).

What install() does, in this driver process and (through the pickled start method name) in every
spawn/forkserver child before it sets its start method -- test harness only, never done by
shm_redirect itself:
  * registers shm_redirect's context classes under the PLAIN names 'fork', 'spawn' and
    'forkserver' in multiprocessing.context._concrete_contexts (instances whose _name is the
    plain name, so every `get_start_method() == 'fork'` check in the suite, in multiprocessing
    itself and in our synchronize behaves as natively), and makes the platform default resolve
    to them; the suite's own setUpModule then does set_start_method(METHOD, force=True);
  * the default context's factories: the suite binds multiprocessing.Lock, .Queue, .Value, ...
    (the DefaultContext's bound methods, which always build CPython's objects) into its mixins
    at import, so the default context instance gets shm_redirect's factory methods
    (its class becomes a DefaultContext subclass with the context mixin) and the module
    attributes are re-bound from it; multiprocessing.Process gets the mixin that hands the
    child shm_redirect's resource tracker (as our contexts' Process classes do);
  * the module-level APIs the suite uses directly: multiprocessing.synchronize ->
    shm_redirect.mp.synchronize (test.support probes `synchronize.Lock(ctx=None)` before anything),
    multiprocessing.shared_memory ->
    shm_redirect.mp.shared_memory, multiprocessing.managers.SharedMemoryManager -> ours,
    multiprocessing.heap -> shm_redirect.mp.heap (attribute of the package only),
    multiprocessing.sharedctypes' Value/RawValue/... and copy -> shm_redirect.mp.sharedctypes'.
Everything the tests exercise thus comes from shm_redirect.mp.synchronize/heap/sharedctypes/shared_memory and the
contexts; _multiprocessing and _posixshmem are never touched (a test or a -c child that calls
them directly, or a fresh `python -E` interpreter, gets CPython's: see the .sh for those).
"""
import os
import sys

_installed = []


def _alias_name(name):
    """Unpickling helper: install the aliases in this (child) process, return the plain str."""
    install()
    return str(name)


class _AliasName(str):
    __slots__ = ()

    def __reduce__(self):
        return (_alias_name, (str(self),))


def install():
    if _installed:
        return
    _installed.append(True)
    import multiprocessing
    import multiprocessing.context as mpctx
    import multiprocessing.managers
    import multiprocessing.sharedctypes
    from shm_redirect.mp import context as sctx
    from shm_redirect.mp import heap as sheap
    from shm_redirect.mp import shared_memory as sshm
    from shm_redirect.mp import sharedctypes as ssct
    from shm_redirect.mp import synchronize as ssync

    aliases = {}
    # class names as CPython's (TestStartMethod checks type(ctx).__name__)
    for cls, base, cname in ((sctx.StoreForkContext, "fork", "ForkContext"),
                             (sctx.StoreSpawnContext, "spawn", "SpawnContext"),
                             (sctx.StoreForkServerContext, "forkserver", "ForkServerContext")):
        ns = {"_name": _AliasName(base), "__module__": __name__}
        if cls.Process.__name__.startswith("Store"):   # TestStartMethod checks Process.__name__
            pname = cls.Process.__name__[len("Store"):]
            ns["Process"] = globals()[pname] = type(pname, (cls.Process,), {"__module__": __name__})
        alias = type(cname, (cls,), ns)()
        aliases[base] = alias
        mpctx._concrete_contexts[base] = alias
    default = mpctx._default_context
    default._default_context = aliases[str(default._default_context._name)]
    if default._actual_context is not None:
        default._actual_context = aliases[str(default._actual_context._name)]

    class StoreDefaultContext(sctx._StoreContextMixin, mpctx.DefaultContext):
        pass

    class Process(sctx._InheritTrackerMixin, mpctx.Process):
        pass
    Process.__module__ = mpctx.Process.__module__   # pickled by reference as context.Process
    Process.__qualname__ = "Process"
    default.__class__ = StoreDefaultContext
    StoreDefaultContext.Process = Process
    mpctx.Process = Process
    for name in multiprocessing.__all__:
        if name == "Process":
            multiprocessing.Process = Process
        elif hasattr(sctx._StoreContextMixin, name):
            setattr(multiprocessing, name, getattr(default, name))

    sys.modules["multiprocessing.synchronize"] = ssync
    multiprocessing.synchronize = ssync
    sys.modules["multiprocessing.shared_memory"] = sshm
    multiprocessing.shared_memory = sshm
    multiprocessing.managers.SharedMemoryManager = sshm.SharedMemoryManager
    multiprocessing.heap = sheap
    for name in ("RawValue", "RawArray", "Value", "Array", "copy"):
        setattr(multiprocessing.sharedctypes, name, getattr(ssct, name))


# Tests that cannot be ported by construction, skipped in BOTH runs (baseline and context) so the
# counts stay comparable; each starts a fresh interpreter of its own (-c/-E/-I/-S, outside this
# driver: with SHM_REDIRECT=off and no LD_PRELOAD it gets CPython's own modules on a missing
# /dev/shm) or tests CPython's own C type / tracker process directly.
NOT_PORTABLE = {
    "test_semlock_subclass": "subclasses the C type _multiprocessing.SemLock directly",
    "test_flags": "fresh `python -E -S` child imports multiprocessing directly",
    "test_resource_tracker": "fresh `python -E -c` child uses multiprocessing directly",
    "test_resource_tracker_sigkill": "CPython's resource tracker process relaunched by CPython's synchronize",
    "test_global_named_resource_spawn": "fresh `python -I` child uses multiprocessing directly",
    "test_worker_finalization_via_atexit_handler_of_multiprocessing":
        "fresh `python -I -c` child uses multiprocessing.Pool directly",
    "test_shared_memory_SharedMemoryManager_reuses_resource_tracker":
        "fresh `python -I -c` child uses multiprocessing.managers directly",
    "test_preload_resources": "fresh `python -I` child runs test/mp_preload.py (multiprocessing directly)",
    "test_shared_memory_cleaned_after_process_termination":
        "fresh `python -E -c` child uses multiprocessing.shared_memory directly",
}


def _skip_not_portable(globs):
    import unittest
    for obj in list(globs.values()):
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            for name, why in NOT_PORTABLE.items():
                if hasattr(obj, name):
                    setattr(obj, name, unittest.skip("not portable: " + why)(getattr(obj, name)))


# The test classes are made at import, as in CPython's test_multiprocessing_<method>.py, so that
# spawn/forkserver children (which import this file as __mp_main__) find them by name.
_NATIVE = os.environ.get("SHMR_SUITE_NATIVE") == "1"
if __name__ in ("__main__", "__mp_main__"):
    _METHOD = os.environ["SHMR_SUITE_METHOD"]
    if not _NATIVE:
        import cpython_context_suite
        cpython_context_suite.install()
    import test._test_multiprocessing as _tm
    if not _NATIVE:
        # 3.11's forkserver never imports __main__ for the '__main__' preload (it looks for
        # 'main_path', get_preparation_data says 'init_main_from_path'): preload this module
        # by name, whose import installs the same in the forkserver.
        if "cpython_context_suite" not in _tm.PRELOAD:
            _tm.PRELOAD.insert(0, "cpython_context_suite")
    _tm.install_tests_in_module_dict(globals(), _METHOD)
    _skip_not_portable(globals())
elif os.environ.get("SHMR_SUITE_METHOD") and not _NATIVE:
    install()   # imported by name (forkserver preload, unpickling in a child)

if __name__ == "__main__":
    import faulthandler
    import unittest
    # As regrtest --timeout: a hung test dumps every thread and exits, so the log shows where
    # (tests/suite_compare.py tells CPython's own known hangs from anything else).
    faulthandler.dump_traceback_later(float(os.environ.get("SHMR_SUITE_TIMEOUT", "480")), exit=True)
    unittest.main()
