"""The lazy, fork-aware gateway to the Go core (the gopy extension shm_redirect._core).

Go's runtime does not survive fork() without exec: its threads are gone in the child, and a call
into Go there can hang forever. So:

* nothing imports shm_redirect._core at interpreter start or in multiprocessing's machinery; it is
  loaded on the first call of this module's functions (inspection and cleanup only);
* the process that loaded it calls it in-process; a process forked after the load (detected by
  os.register_at_fork and by comparing os.getpid() with the loader's pid) never touches it and
  runs the call out of process instead: `python -m shm_redirect._gocall FN JSON-ARGS`, a fresh
  interpreter (exec, so a fresh Go runtime) that prints the result as JSON;
* SHM_REDIRECT_GOCORE=subprocess forces the out-of-process path, =inproc forbids it (tests).

The Go runtime reads the environment only when it is loaded, so every call passes the current
SHM_REDIRECT_DIR and TMPDIR explicitly.
"""
import importlib.util
import json
import os
import subprocess
import sys
import threading

_EXT = __package__ + "._core"

# Functions of the Go package ./pybind that may be called, with their number of arguments.
FUNCTIONS = {"ResolveDir": 2, "IsNative": 2, "ListJSON": 3, "SweepJSON": 5}

# Seconds an out-of-process call may take before it is killed and TimeoutError raised.
SUBPROCESS_TIMEOUT = float(os.environ.get("SHM_REDIRECT_GOCALL_TIMEOUT", "120"))

_lock = threading.Lock()
_module = None       # the extension, once this process loaded it
_loaded_pid = None   # os.getpid() of the process that loaded it
_forked = False      # set in a child forked after the extension was loaded


class GoCoreError(RuntimeError):
    """The Go core reported an error (its message is the text of the Go error)."""


def _after_fork_in_child():
    global _forked
    if _module is not None or _EXT in sys.modules:
        _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def core_available():
    """Whether the Go core is installed (without loading it)."""
    try:
        return importlib.util.find_spec(_EXT) is not None
    except (ImportError, ValueError):
        return False


def core_loaded():
    """Whether the Go core is loaded in this process (by us or anyone else)."""
    return _EXT in sys.modules


def inprocess_safe():
    """Whether this process may call into the Go core itself: it loaded the core (and did not
    fork since), or nobody in its ancestry loaded it."""
    if _forked:
        return False
    if _module is not None:
        return _loaded_pid == os.getpid()
    # Loaded behind our back (import shm_redirect._core): only trust it if we see no fork since.
    return _EXT not in sys.modules


def _load():
    global _module, _loaded_pid
    with _lock:
        if _module is None:
            import importlib
            _module = importlib.import_module(_EXT)
            _loaded_pid = os.getpid()
        return _module


def _mode():
    return os.environ.get("SHM_REDIRECT_GOCORE", "auto").strip().lower() or "auto"


def call(fn, *args):
    """Call the Go function pybind.<fn>(*args) in-process when that is safe, else out of process.
    Raises GoCoreError for an error returned by Go, ImportError when the core is missing."""
    if fn not in FUNCTIONS or len(args) != FUNCTIONS[fn]:
        raise ValueError("not a Go core call: %s%r" % (fn, args))
    mode = _mode()
    if mode == "subprocess" or (mode != "inproc" and not inprocess_safe()):
        return _call_subprocess(fn, args)
    if not inprocess_safe():
        raise RuntimeError("the Go core was loaded before this process forked: in-process calls would hang")
    return call_inprocess(fn, args)


def call_inprocess(fn, args):
    mod = _load()
    try:
        return getattr(mod, "pybind_" + fn)(*args)
    except RuntimeError as e:  # gopy turns a Go error into RuntimeError(err.Error())
        raise GoCoreError(str(e)) from None


def _call_subprocess(fn, args):
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["SHM_REDIRECT_GOCORE"] = "inproc"
    # -S: no site (no .pth activation hook, no user site); the package comes from PYTHONPATH.
    cmd = [sys.executable, "-S", "-m", __package__ + "._gocall", fn, json.dumps(list(args))]
    try:
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=SUBPROCESS_TIMEOUT, close_fds=True)
    except subprocess.TimeoutExpired:
        raise TimeoutError("Go core helper did not answer within %gs: %s" % (SUBPROCESS_TIMEOUT, cmd)) from None
    try:
        reply = json.loads(p.stdout.decode())
    except ValueError:
        raise RuntimeError("Go core helper failed (exit %d): %s" % (
            p.returncode, p.stderr.decode(errors="replace").strip()[-2000:])) from None
    if "error" in reply:
        if reply.get("type") == "GoCoreError":
            raise GoCoreError(reply["error"])
        if reply.get("type") == "ImportError":
            raise ImportError(reply["error"])
        raise RuntimeError(reply["error"])
    return reply["result"]


def _env():
    return os.environ.get("SHM_REDIRECT_DIR", ""), os.environ.get("TMPDIR", "")


# ---- The Python API (used by the CLI and, later, the resource tracker) ----

def resolve_dir():
    """(directory, native): the directory the preload would use in this process's environment,
    and whether it is the native /dev/shm (then the preload forwards to glibc)."""
    d = call("ResolveDir", *_env())
    return d, bool(call("IsNative", *_env()))


def is_native():
    """Whether the preload would use the native /dev/shm here."""
    return bool(call("IsNative", *_env()))


def list_objects(dir=None):
    """The objects of the store (dir, else the resolved directory; a missing store is empty):
    dicts with kind, name, file, size, uid, mode, type, mtime, value, holders (pids)."""
    return json.loads(call("ListJSON", *_env(), dir or ""))


def sweep(dir=None, grace=60.0, dry_run=False):
    """Remove leaked objects of the store (dir, else the resolved one): only our own regular files,
    none held by a live process, none changed within grace seconds (0: no grace). Returns the
    removed objects (or those that would be, with dry_run). The native /dev/shm is never swept:
    GoCoreError."""
    grace = float(grace)
    if grace < 0:
        raise ValueError("grace must be >= 0 seconds")
    return json.loads(call("SweepJSON", *_env(), dir or "", grace, bool(dry_run)))
