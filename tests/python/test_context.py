"""shm_redirect.get_context(): multiprocessing without /dev/shm, LD_PRELOAD or global patching.

Every case runs tests/python/context_workload.py CASE METHOD inside
`tests/sandbox.sh --devshm=none --ro --uid=993` with PYTHONPATH=<repo>/pybind and SHM_REDIRECT=off
(activation cannot help), no LD_PRELOAD; the store /tmp/shm must be empty at the end (listed
inside the sandbox: its /tmp dies with it). The workload also asserts that _multiprocessing,
_posixshmem, multiprocessing.synchronize and multiprocessing.heap are untouched.
Needs root (the sandbox) and build/libshm_redirect.so (make lib).
Run: /usr/bin/python3 -m pytest tests/python/test_context.py  (make test-context)
"""
import os
import subprocess
import sys

import pytest

from conftest import LIB, PYBIND, ROOT, SANDBOX

WORKLOAD = os.path.join(ROOT, "tests", "python", "context_workload.py")
# To run the cases under another CPython: SHMR_TEST_PYTHON, an interpreter readable by uid 993,
# and SHMR_TEST_ROOT, a root file system for the sandbox (tests/rootfs.sh sid-amd64 has 3.14 and 3.15).
PY = os.environ.get("SHMR_TEST_PYTHON") or (
    "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
ROOTFS = ["--root=" + os.path.abspath(os.environ["SHMR_TEST_ROOT"])] \
    if os.environ.get("SHMR_TEST_ROOT") else []

METHODS = ["fork", "spawn", "forkserver"]
PRIMITIVES = ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier",
              "Queue", "JoinableQueue", "SimpleQueue", "Pool", "Process",
              "ProcessPoolExecutor", "Value", "Array", "SharedMemory", "ShareableList",
              "SharedMemoryManager", "Manager"]
EXTRA = ["registered", "grandchild"]

# wait (up to 30 s: a loaded machine, a disk-backed /tmp) for a resource tracker's journal to go,
# then list the store
SCRIPT = ('%s %s "$1" "$2"; rc=$?; i=0; '
          'while [ $i -lt 300 ] && [ -n "$(ls -A /tmp/shm 2>/dev/null)" ]; do sleep 0.1; i=$((i+1)); done; '
          'echo "LEFT-BEGIN"; ls -A /tmp/shm 2>/dev/null; echo "LEFT-END"; exit $rc')

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="tests/sandbox.sh needs root"),
    pytest.mark.skipif(not os.path.exists(LIB), reason="build the library first (make lib)"),
]


def clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("SHM_REDIRECT", "PYTHON", "LD_PRELOAD"))}


def run_case(case, method, devshm="none", timeout=300):
    args = [SANDBOX, *ROOTFS, "--devshm=" + devshm, "--ro", "--uid=993",
            "--env", "PYTHONPATH=" + PYBIND, "--env", "SHM_REDIRECT=off",
            "--", "/bin/sh", "-c", SCRIPT % (PY, WORKLOAD), "sh", case, method]
    p = subprocess.run(args, env=clean_env(), capture_output=True, text=True, timeout=timeout,
                       cwd="/")
    out = p.stdout
    left = out.split("LEFT-BEGIN\n", 1)[-1].split("LEFT-END", 1)[0].split()
    assert p.returncode == 0, "exit %d\n%s\n%s" % (p.returncode, out, p.stderr[-4000:])
    assert ("OK %s %s" % (case, method)) in out, out + p.stderr
    assert left == [], "objects left in the store: %s" % left
    return p


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", PRIMITIVES + EXTRA)
def test_primitive(case, method):
    run_case(case, method)


def test_default_method():
    """get_context() is the platform default start method's context."""
    run_case("default", "fork")


@pytest.mark.parametrize("method", METHODS)
def test_native_devshm(method):
    """With a working /dev/shm the C library passes through to glibc: same results, and the
    objects are glibc's, in /dev/shm (the workload looks), not in the store."""
    run_case("passthrough", method, devshm="native")
    run_case("SharedMemory", method, devshm="native")


def test_no_side_effects_on_import():
    """Importing the context registers names only; nothing else of multiprocessing changes."""
    code = ("import multiprocessing, multiprocessing.context as c, _multiprocessing, _posixshmem;"
            "before = (_multiprocessing.SemLock, _posixshmem.shm_open, set(c._concrete_contexts),"
            " multiprocessing.get_start_method(allow_none=True));"
            "import shm_redirect.mp.context, shm_redirect.mp.synchronize, shm_redirect.mp.heap,"
            " shm_redirect.mp.shared_memory;"
            "assert _multiprocessing.SemLock is before[0] and _posixshmem.shm_open is before[1];"
            "new = set(c._concrete_contexts) - before[2];"
            "assert new == {'shm_redirect_fork', 'shm_redirect_spawn', 'shm_redirect_forkserver'}, new;"
            "assert multiprocessing.get_start_method(allow_none=True) == before[3];"
            "import sys; assert 'shm_redirect._core' not in sys.modules;"
            "assert 'shm_redirect.store.gocore' not in sys.modules; print('ok')")
    env = dict(clean_env(), PYTHONPATH=PYBIND, SHM_REDIRECT="off")
    cmd = [PY, "-c", code]
    if ROOTFS:    # the interpreter lives in that root
        cmd = [SANDBOX, *ROOTFS, "--ro", "--env", "PYTHONPATH=" + PYBIND, "--env", "SHM_REDIRECT=off",
               "--"] + cmd
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout + p.stderr
