"""shm_redirect.mp.rebind: our synchronize, heap, sharedctypes, shared_memory and the tracker run
CPython's own code (the running interpreter's code objects), with only the listed names ours.

These run in the test's interpreter (any 3.10+), natively; the behaviour of the objects without
/dev/shm is test_context.py's."""
import os
import subprocess
import sys
import types

import pytest

from conftest import LIB, PYBIND

sys.path.insert(0, PYBIND)

pytestmark = pytest.mark.skipif(not os.path.exists(LIB), reason="build the library first (make lib)")

MODULES = ["synchronize", "heap", "sharedctypes", "shared_memory"]


def _functions(cls):
    for name, value in vars(cls).items():
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            value = value.fget
        if isinstance(value, types.FunctionType):
            yield name, value


@pytest.mark.parametrize("name", MODULES)
def test_every_line_is_cpythons(name):
    """Every function and method of CPython's module exists in ours with an equal code object
    (CPython's, loaded again from its stdlib file: nothing copied, nothing missing), in distinct
    classes bound to our module's globals."""
    import importlib
    cp = importlib.import_module("multiprocessing." + name)
    ours = importlib.import_module("shm_redirect.mp." + name)
    checked = 0
    for attr, obj in vars(cp).items():
        if isinstance(obj, type) and obj.__module__ == cp.__name__:
            names = set(dict(_functions(obj)))
            # our thin subclass (3.13's track on older versions) sits above CPython's class
            base = next(c for c in getattr(ours, attr).__mro__
                        if c.__module__ == ours.__name__ and set(dict(_functions(c))) == names)
            assert base is not obj, attr
            for fname, func in _functions(obj):
                theirs = dict(_functions(base))[fname]
                assert theirs.__code__ == func.__code__, (attr, fname)   # equal: loaded twice
                if func.__globals__ is vars(cp):   # (sharedctypes' exec'd properties aside)
                    assert theirs.__globals__ is vars(ours), (attr, fname)
                checked += 1
        elif isinstance(obj, types.FunctionType) and obj.__module__ == cp.__name__:
            mine = getattr(ours, attr)
            if attr == "get_context" or mine is obj:   # sharedctypes' imported get_context
                continue
            assert mine.__code__ == obj.__code__, attr
            checked += 1
    assert checked > 5


def test_redirected_imports():
    from shm_redirect.mp import heap, resource_tracker, semlock, sharedctypes, shared_memory, \
        synchronize
    from shm_redirect.store import clib
    assert synchronize._multiprocessing is semlock and synchronize.sem_unlink is clib.sem_unlink
    assert synchronize.SemLock.__module__ == "shm_redirect.mp.synchronize"
    assert shared_memory._posixshmem is clib and shared_memory.resource_tracker is resource_tracker
    assert sharedctypes.heap is heap and heap.Arena._dir_candidates == []
    import multiprocessing.heap
    assert multiprocessing.heap.Arena._dir_candidates == ["/dev/shm"]   # CPython's untouched


def test_function_rebinds_globals_only():
    from shm_redirect.mp import rebind

    def f(a, *, b=2):
        "doc"
        return os.sep, a, b
    g = rebind.function(f, os=types.SimpleNamespace(sep="!"))
    assert g(1) == ("!", 1, 2) and f(1) == (os.sep, 1, 2)
    assert g.__doc__ == "doc" and g.__qualname__ == f.__qualname__ and g.__kwdefaults__ == {"b": 2}


def test_importer_answers_listed_names_only():
    from shm_redirect.mp import rebind
    ns = {"__name__": "probe"}
    code = ("from . import util, resource_tracker\n"
            "import _multiprocessing\n"
            "def later():\n"
            "    from .heap import BufferWrapper\n"
            "    return BufferWrapper\n")
    import multiprocessing.util
    from shm_redirect.mp import heap, resource_tracker, semlock
    ns["__builtins__"] = rebind._builtins("multiprocessing", {
        "multiprocessing.resource_tracker": "shm_redirect.mp.resource_tracker",
        "_multiprocessing": "shm_redirect.mp.semlock",
        "multiprocessing.heap": "shm_redirect.mp.heap"})
    exec(code, ns)
    assert ns["util"] is multiprocessing.util and ns["resource_tracker"] is resource_tracker
    assert ns["_multiprocessing"] is semlock and ns["later"]() is heap.BufferWrapper


def test_tracker_launcher_refuses_an_unknown_command():
    from shm_redirect.mp import resource_tracker as rt
    with pytest.raises(RuntimeError, match="unexpected tracker command"):
        rt._LaunchUtil.spawnv_passfds(sys.executable, [sys.executable, "-c", "print(1)"], [])


def test_tracker_is_ours_and_cpythons_never_starts():
    """A named lock and a segment register with our tracker (a process running our main); CPython's
    tracker is never started; everything is unlinked at the end."""
    code = r"""
import os, sys
sys.path.insert(0, %r)
from shm_redirect.mp.context import get_context
from shm_redirect.mp import resource_tracker as ours
import multiprocessing.resource_tracker as theirs
ctx = get_context('spawn')
lock = ctx.Lock(); seg = ctx.SharedMemory(create=True, size=64)
cmd = open('/proc/%%d/cmdline' %% ours._resource_tracker._pid, 'rb').read().replace(b'\0', b' ')
assert b'shm_redirect.mp.resource_tracker import main' in cmd, cmd
assert theirs._resource_tracker._fd is None
seg.close(); seg.unlink(); print('OK')
""" % PYBIND
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHM_REDIRECT", "LD_PRELOAD"))}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=env)
    assert p.stdout.strip() == "OK", p.stdout + p.stderr
    assert "leaked" not in p.stderr, p.stderr


@pytest.mark.parametrize("name", ["psm_1", "/mp-a:b", "sp ace", "new\nline", "naïve"])
def test_journal_lines_round_trip(name):
    from shm_redirect.mp import tracker_journal as tj
    line = tj._encode("REGISTER", name, "shared_memory")
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert tj._parse_line(line[:-1]) == ("REGISTER", name, "shared_memory")
