"""The lazy, fork-aware gateway to the Go core.

The Go core comes in two builds of one call surface (package core/jsonapi: a table of functions,
called by name with a JSON array of arguments, answering one JSON reply):
  * shm_redirect._core, a gopy extension (its one function Call): fast in-process calls, but only
    for the CPython, CPU and glibc (>= 2.34) the wheel was built for;
  * shm_redirect/bin/shmr-core (cmd/shmr-core), a static executable (no cgo): `shmr-core FN
    JSON-ARGS` prints that reply; it runs on any Linux of its CPU, whatever the Python or glibc.
Which functions exist and what arguments they take is Go's to say: this module only passes them.

Go's runtime does not survive fork() without exec: its threads are gone in the child, and a call
into Go there can hang forever. So, in order of preference:

(a) nothing imports shm_redirect._core at interpreter start or in multiprocessing's machinery; it is
    loaded on the first call of this module's functions (inspection and cleanup only), and the
    process that loaded it calls it in-process;
(b) a process forked after the load (detected by os.register_at_fork and by comparing os.getpid()
    with the loader's pid) never touches it and runs the call out of process instead: `python -m
    shm_redirect.store.gocall FN JSON-ARGS`, a fresh interpreter (exec, so a fresh Go runtime) that
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

from .format import SWEEP_GRACE_DEFAULT

_EXT = "shm_redirect._core"
BIN_ENV = "SHM_REDIRECT_CORE_BIN"

# Seconds an out-of-process call may take before it is killed and TimeoutError raised.
SUBPROCESS_TIMEOUT = float(os.environ.get("SHM_REDIRECT_GOCALL_TIMEOUT", "120"))

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # shm_redirect/
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
    """$SHM_REDIRECT_CORE_BIN, else bin/shmr-core in this package; in a source checkout without
    it (pybind/shm_redirect/), the Makefile's build/shmr-core, as preload_path() does."""
    env = os.environ.get(BIN_ENV)
    if env:
        return env
    packaged = os.path.join(_PACKAGE_DIR, "bin", "shmr-core")
    dev = os.path.normpath(os.path.join(_PACKAGE_DIR, os.pardir, os.pardir, "build", "shmr-core"))
    return dev if not os.path.exists(packaged) and os.path.exists(dev) else packaged


def binary_path():
    """The static Go core executable to use (_binary_candidate), or None when it is not an
    executable file."""
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
    "subprocess" (python -m shm_redirect.store.gocall) or "binary" (the static executable, which may
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
        return "extension out of process (python -m %s.gocall)" % __package__, why
    exe = binary_path()
    if exe is None:
        return "none", "%s, and no executable %s" % (why, _binary_candidate())
    return "binary at " + exe, why


def call(fn, *args):
    """Call the Go core function fn(*args) in-process when that is safe, else out of process, and
    return its result. Raises GoCoreError for an error returned by Go, ValueError for a call Go
    does not know or arguments that do not fit, ImportError when no core is installed."""
    how, why = backend()
    if how == "inproc":
        return result(call_inprocess(fn, args))
    if how == "subprocess":
        return _call_subprocess(fn, args)
    return _call_binary(fn, args, why)


def _json_args(args):
    # JSON has no NaN or infinity: Go reads such a float from a string ("nan", "inf").
    return json.dumps([str(a) if isinstance(a, float) and not math.isfinite(a) else a for a in args])


def call_inprocess(fn, args):
    """The extension's JSON reply (text) to fn(*args)."""
    mod = _load()
    if mod is None:
        raise ImportError("cannot load %s: %s" % (_EXT, _ext_error))
    return mod.pybind_Call(fn, _json_args(args))


def _call_subprocess(fn, args):
    pkg_parent = os.path.dirname(_PACKAGE_DIR)
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["SHM_REDIRECT_GOCORE"] = "inproc"
    # -S: no site (no .pth activation hook, no user site); the package comes from PYTHONPATH.
    return _helper([sys.executable, "-S", "-m", __package__ + ".gocall", fn, _json_args(args)], env)


def binary_command(fn, args):
    """The shmr-core command line that calls fn(*args), or None without the executable."""
    exe = binary_path()
    return None if exe is None else [exe, fn, _json_args(args)]


def _call_binary(fn, args, why):
    cmd = binary_command(fn, args)
    if cmd is None:
        raise ImportError("no Go core here: %s, and no executable %s" % (why, _binary_candidate()))
    return _helper(cmd, None)


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
        return result(p.stdout.decode())
    except _NoReply:
        raise RuntimeError("Go core helper failed (exit %d): %s" % (
            p.returncode, p.stderr.decode(errors="replace").strip()[-2000:])) from None


class _NoReply(ValueError):
    pass


def result(reply_text):
    """The result of a JSON reply of the call surface, or the error it names, raised."""
    try:
        reply = json.loads(reply_text)
    except ValueError:
        raise _NoReply(reply_text) from None
    if not isinstance(reply, dict) or not ("result" in reply or "error" in reply):
        raise _NoReply(reply_text)
    if "error" in reply:
        raise _REPLY_TYPES.get(reply.get("type"), RuntimeError)(reply["error"])
    return reply["result"]


def env_args():
    return os.environ.get("SHM_REDIRECT_DIR", ""), os.environ.get("TMPDIR", "")


# ---- The Python API (used by the CLI and, later, the resource tracker) ----

def resolve_dir():
    """(directory, native): the directory the preload would use in this process's environment,
    and whether it is the native /dev/shm (then the preload forwards to glibc)."""
    d = call("ResolveDir", *env_args())
    return d, bool(call("IsNative", *env_args()))


def is_native():
    """Whether the preload would use the native /dev/shm here."""
    return bool(call("IsNative", *env_args()))


def list_objects(dir=None):
    """The objects of the store (dir, else the resolved directory; a missing store is empty):
    dicts with kind, name, file, size, uid, mode, type, mtime, value, holders (pids)."""
    return json.loads(call("ListJSON", *env_args(), dir or ""))


def sweep(dir=None, grace=None, dry_run=False):
    """Remove leaked objects of the store (dir, else the resolved one): only our own regular files,
    none held by a live process, none changed within grace seconds (None: the default, 0: no
    grace; negative: GoCoreError). Returns the removed objects (or those that would be, with
    dry_run). The native /dev/shm is never swept: GoCoreError."""
    grace = float(SWEEP_GRACE_DEFAULT if grace is None else grace)
    return json.loads(call("SweepJSON", *env_args(), dir or "", grace, bool(dry_run)))
