"""The lazy, fork-aware gateway to the Go core.

The Go core comes in two builds of the same Go functions (package ./pybind):
  * shm_redirect._core, a gopy extension: fast in-process calls, but only for the CPython, CPU and
    glibc (>= 2.34) the wheel was built for;
  * shm_redirect/bin/shmr-core (cmd/shmr-core), a static executable (no cgo): `shmr-core FN
    JSON-ARGS` prints one JSON reply; it runs on any Linux of its CPU, whatever the Python or glibc.

Go's runtime does not survive fork() without exec: its threads are gone in the child, and a call
into Go there can hang forever. So, in order of preference:

(a) nothing imports shm_redirect._core at interpreter start or in multiprocessing's machinery; it is
    loaded on the first call of this module's functions (inspection and cleanup only), and the
    process that loaded it calls it in-process;
(b) a process forked after the load (detected by os.register_at_fork and by comparing os.getpid()
    with the loader's pid) never touches it and runs the call out of process instead: `python -m
    shm_redirect._gocall FN JSON-ARGS`, a fresh interpreter (exec, so a fresh Go runtime) that
    prints the result as JSON;
(c) when the extension cannot be imported or loaded (ImportError, OSError: no build for this
    Python, "GLIBC_2.34 not found", ...), every call execs the static binary: $SHM_REDIRECT_CORE_BIN,
    else bin/shmr-core in this package. The failed import is tried once per process; the decision
    is kept (and inherited by forked children, where the exec'd binary is safe too).

SHM_REDIRECT_GOCORE=subprocess forces (b), =binary forces (c), =inproc forbids (b) and (c) (tests).

The Go runtime reads the environment only when it is loaded, so every call passes the current
SHM_REDIRECT_DIR and TMPDIR explicitly.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys
import threading

_EXT = __package__ + "._core"
BIN_ENV = "SHM_REDIRECT_CORE_BIN"

# Functions of the Go package ./pybind that may be called, with their number of arguments.
FUNCTIONS = {"ResolveDir": 2, "IsNative": 2, "ListJSON": 3, "SweepJSON": 5}

# Seconds an out-of-process call may take before it is killed and TimeoutError raised.
SUBPROCESS_TIMEOUT = float(os.environ.get("SHM_REDIRECT_GOCALL_TIMEOUT", "120"))

_lock = threading.Lock()
_module = None       # the extension, once this process loaded it
_loaded_pid = None   # os.getpid() of the process that loaded it
_forked = False      # set in a child forked after the extension was loaded
_ext_error = None    # why the extension could not be loaded here ("ImportError: ..."), once tried


class GoCoreError(RuntimeError):
    """The Go core reported an error (its message is the text of the Go error)."""


def _after_fork_in_child():
    global _forked
    if _module is not None or _EXT in sys.modules:
        _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _extension_present():
    try:
        return importlib.util.find_spec(_EXT) is not None
    except (ImportError, ValueError):
        return False


def _binary_candidate():
    return os.environ.get(BIN_ENV) or os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "shmr-core")


def binary_path():
    """The static Go core executable to use ($SHM_REDIRECT_CORE_BIN, else bin/shmr-core in this
    package), or None when it is not an executable file."""
    p = _binary_candidate()
    return p if os.path.isfile(p) and os.access(p, os.X_OK) else None


def core_available():
    """Whether a Go core is installed (without loading it): the extension, unless it already
    failed to load here, or the static binary."""
    if _mode() != "binary" and _ext_error is None and _extension_present():
        return True
    return binary_path() is not None


def core_loaded():
    """Whether the Go core extension is loaded in this process (by us or anyone else)."""
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
    """The extension, imported on first use; None when it cannot be loaded here (the reason is
    kept in _ext_error and the import is not tried again)."""
    global _module, _loaded_pid, _ext_error
    with _lock:
        if _module is None and _ext_error is None:
            import importlib
            try:
                _module = importlib.import_module(_EXT)
                _loaded_pid = os.getpid()
            except (ImportError, OSError) as e:
                _ext_error = "%s: %s" % (type(e).__name__, e)
        return _module


def _mode():
    return os.environ.get("SHM_REDIRECT_GOCORE", "auto").strip().lower() or "auto"


def backend():
    """How calls are made here, as (how, why): how is "inproc" (the extension in this process),
    "subprocess" (python -m shm_redirect._gocall) or "binary" (the static executable, which may
    be missing: see binary_path()). Loads the extension when that is the choice."""
    mode = _mode()
    if mode in ("subprocess", "binary"):
        return mode, "SHM_REDIRECT_GOCORE=" + mode
    if not inprocess_safe():
        if mode == "inproc":
            raise RuntimeError("the Go core was loaded before this process forked: in-process calls would hang")
        return "subprocess", "this process was forked after loading the extension"
    if _load() is not None:
        return "inproc", "the extension is loaded in this process"
    if mode == "inproc":
        raise ImportError("cannot load %s: %s" % (_EXT, _ext_error))
    return "binary", "the extension cannot be loaded: " + _ext_error


def describe():
    """(what, why) for people (shm-redirect doctor): which Go core serves calls here, and why.
    what is "extension in-process (FILE)", "extension out of process (...)", "binary at PATH"
    or "none". Loads the extension when that is the choice."""
    try:
        how, why = backend()
    except (ImportError, RuntimeError) as e:
        return "none", str(e)
    if how == "inproc":
        return "extension in-process (%s)" % getattr(_module, "__file__", _EXT), why
    if how == "subprocess":
        return "extension out of process (python -m %s._gocall)" % __package__, why
    exe = binary_path()
    if exe is None:
        return "none", "%s, and no executable %s" % (why, _binary_candidate())
    return "binary at " + exe, why


def call(fn, *args):
    """Call the Go function pybind.<fn>(*args) in-process when that is safe, else out of process.
    Raises GoCoreError for an error returned by Go, ImportError when no core is installed."""
    if fn not in FUNCTIONS or len(args) != FUNCTIONS[fn]:
        raise ValueError("not a Go core call: %s%r" % (fn, args))
    how, why = backend()
    if how == "inproc":
        return call_inprocess(fn, args)
    if how == "subprocess":
        return _call_subprocess(fn, args)
    return _call_binary(fn, args, why)


def call_inprocess(fn, args):
    mod = _load()
    if mod is None:
        raise ImportError("cannot load %s: %s" % (_EXT, _ext_error))
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
    return _helper([sys.executable, "-S", "-m", __package__ + "._gocall", fn, json.dumps(list(args))], env)


def _call_binary(fn, args, why):
    exe = binary_path()
    if exe is None:
        raise ImportError("no Go core here: %s, and no executable %s" % (why, _binary_candidate()))
    # JSON has no NaN or infinity: shmr-core reads such a float from a string ("nan", "inf").
    args = [str(a) if isinstance(a, float) and not math.isfinite(a) else a for a in args]
    return _helper([exe, fn, json.dumps(args)], None)


# The exceptions a helper's reply may name; any other type is raised as RuntimeError.
_REPLY_TYPES = {"GoCoreError": GoCoreError, "ImportError": ImportError, "ValueError": ValueError,
                "TypeError": TypeError}


def _helper(cmd, env):
    """Run an out-of-process helper (exec: a fresh Go runtime, safe after any fork) and return the
    result of its JSON reply, or raise the error it reports."""
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
        raise _REPLY_TYPES.get(reply.get("type"), RuntimeError)(reply["error"])
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
