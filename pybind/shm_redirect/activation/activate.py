"""Activation at interpreter start (shm_redirect.pth, or the Lambda-layer sitecustomize).

`activate()` runs in every interpreter, so it is cheap, idempotent and never raises (a failure is
one line on stderr). It never imports the Go core, and on the fast path nothing but `os`/`sys`
(already loaded by site).

SHM_REDIRECT = auto (default) | off | patch | preload   (anything else: one warning, then auto)

1. off: nothing.
2. LD_PRELOAD names libshm_redirect.so and /proc/self/maps shows it loaded: nothing (the preload
   does everything, in C).
3. Fast path: unless SHM_REDIRECT_DIR is set (which asks for the store even when /dev/shm works),
   probe /dev/shm BY TRYING: create a nameless file there (O_TMPFILE; a named O_EXCL file,
   unlinked at once, where O_TMPFILE is unsupported). glibc (>= 2.34) sem_open and shm_open are
   exactly an open() in /dev/shm, so this fails exactly when they would (ENOENT, EACCES, EROFS,
   ...), and a process killed mid-probe leaves no file behind. It costs ~12 us
   (the first activate() as a whole ~90 us);
   probing through `_multiprocessing.SemLock`/`_posixshmem` instead would cost 0.5-2 ms just to
   dlopen those two extension modules, over the 1 ms budget (measured: bench/startup.py, make bench).
   If it works: nothing.
4. Otherwise redirect:
   - preload: re-exec the interpreter once with the library prepended to LD_PRELOAD
     (os.execv(sys.executable, [sys.executable] + sys.orig_argv[1:])), only when that is safe:
     called from site at start-up (the stack holds only site/import frames), sys.orig_argv
     non-empty (not embedded), not frozen, /proc/self/exe is sys.executable, not setuid, and not
     already re-executed (env marker holding our pid: a re-exec keeps the pid). Unsafe: patch
     mode instead (said on stderr only if SHM_REDIRECT=preload was explicit).
   - patch: in-process through the library via ctypes (shm_redirect.activation.patch), and LD_PRELOAD
     exported so that every child process is preloaded. For tests, SHM_REDIRECT_EXPORT=0 never
     exports (every interpreter of the tree patches itself; one started with -S then cannot
     activate at all), and =defer does not export from this process only: the knob is removed,
     so its children patch themselves and export as usual.
   - then, on AWS Lambda, the first interpreter of a process tree sweeps the store once
     (shm_redirect.activation.coldstart: what a timed-out invocation left behind).
   - auto: preload when the re-exec is safe, else patch. Why: the preload covers everything
     (C extensions calling shm_open/sem_open directly, e.g. PyTorch; libraries that bound
     SemLock before activation; os.statvfs('/dev/shm')), and in both modes every child is
     preloaded anyway, so the two differ only in the first process. There the re-exec costs one
     more interpreter start (+8.3 ms on `python -c pass` here), patching +2.9 ms (ctypes and the
     two extension modules); a preloaded child pays +0.26 ms for the hook. Re-exec is paid only
     where /dev/shm is broken (Lambda), once per process-tree root: correctness over ~5 ms.
     Natively the whole hook (importing the package and this module, the probe) costs ~0.4 ms.
     Numbers: bench/startup.py via `make bench` (Debian 3.11.2, 2-core VM, interleaved runs).
"""
import os
import sys

LIBNAME = "libshm_redirect.so"
_MARKER = "_SHM_REDIRECT_REEXEC"
MODES = ("auto", "off", "patch", "preload")

# The outcome of the first activate() in this process: None before; then one of
# "off", "preloaded", "native", "patch", "error".
state = None


def _warn(msg):
    try:
        sys.stderr.write("shm-redirect: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def activate():
    """Make POSIX semaphores and shared memory work in this interpreter and its children.
    Idempotent; never raises; returns the outcome (see `state`)."""
    global state
    if state is not None:
        return state
    try:
        state = _activate()
    except BaseException as e:   # never raise at start-up, whatever happens
        state = "error"
        _warn("activation failed: %s: %s" % (type(e).__name__, e))
    return state


def _preloaded():
    """Our library is named in LD_PRELOAD and actually loaded (the loader ignores LD_PRELOAD in
    setuid programs, or when the file is missing)."""
    pre = os.environ.get("LD_PRELOAD", "")
    if LIBNAME not in pre:
        return False
    try:
        with open("/proc/self/maps", "rb") as f:
            return LIBNAME.encode() in f.read()
    except OSError:
        return True   # cannot tell: trust the environment


def native_works():
    """Whether glibc's sem_open/shm_open work here: try what they do, a file create in /dev/shm.

    O_TMPFILE creates an inode with no name, so a process killed mid-probe (a test terminating
    a child that is still starting) leaves nothing behind. Where the kernel or file system lacks
    O_TMPFILE (EOPNOTSUPP, or EISDIR/EINVAL from kernels that ignore the flag), fall back to an
    O_EXCL create of a named file, unlinked at once."""
    try:
        fd = os.open("/dev/shm", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as e:
        import errno   # builtin, only on this rare path
        if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return False
        return _named_probe()
    os.close(fd)
    return True


def _named_probe():
    path = "/dev/shm/sem.shmr-probe-%d-%s" % (os.getpid(), os.urandom(6).hex())
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except OSError:
        return False
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)
    return True


def _activate():
    env = os.environ
    mode = env.get("SHM_REDIRECT", "").strip().lower() or "auto"
    if mode == "off":
        return "off"
    if _preloaded():
        if _MARKER in env:
            del env[_MARKER]
        _coldstart_sweep(env)
        return "preloaded"
    if mode not in MODES:
        _warn("SHM_REDIRECT=%r is not one of auto|off|patch|preload: using auto"
              % env.get("SHM_REDIRECT"))
        mode = "auto"
    if not env.get("SHM_REDIRECT_DIR") and native_works():
        return "native"
    lib = _lib_path()
    if not os.path.isfile(lib):
        raise FileNotFoundError("library not found: %s" % lib)
    if mode != "patch":
        why = reexec_unsafe()
        if why is None:
            try:
                _reexec(lib)
            except OSError as e:   # execv failed: the process is intact
                why = "exec failed: %s" % e
        if mode == "preload":
            _warn("cannot re-exec with LD_PRELOAD (%s): patching in process instead" % why)
    from . import patch as _patch
    export = env.get("SHM_REDIRECT_EXPORT", "1")
    if export == "defer":
        del env["SHM_REDIRECT_EXPORT"]
    _patch.install(lib, export=export not in ("0", "defer"))
    _coldstart_sweep(env)
    return "patch"


def _coldstart_sweep(env):
    """Lambda: the first interpreter of a process tree sweeps what killed trees left
    (shm_redirect.activation.coldstart; imported only when it applies)."""
    if ("AWS_LAMBDA_RUNTIME_API" in env or "SHM_REDIRECT_SWEEP" in env) and "SHM_REDIRECT_SWEPT" not in env:
        from . import coldstart as _coldstart
        if _coldstart.wanted(env):
            _coldstart.sweep(_warn)


def _lib_path():
    lib = os.environ.get("SHM_REDIRECT_LIB")
    if lib:
        return lib
    from .. import preload_path
    return preload_path()


def _at_startup():
    """True when called from site's start-up processing (a .pth line or sitecustomize): below
    us there are only site, import-machinery, sitecustomize/usercustomize and package frames.
    A program that calls activate() later must not be restarted."""
    site = sys.modules.get("site")
    names = {"<frozen site>"}
    sf = getattr(site, "__file__", None)
    if sf:
        names.add(sf)
    f = sys._getframe(1)
    outer = None
    while f is not None:
        if not f.f_code.co_filename.startswith("<frozen importlib"):
            outer = f.f_code.co_filename
        f = f.f_back
    # The outermost frame but import machinery is site's; under -c, -m or a script it would be
    # "<string>", runpy or the script.
    return outer in names


def reexec_unsafe():
    """None when re-executing this interpreter with LD_PRELOAD is safe, else why not."""
    argv = getattr(sys, "orig_argv", None)
    if not argv:
        return "embedded interpreter (no sys.orig_argv)"
    if getattr(sys, "frozen", False):
        return "frozen application"
    if not sys.executable:
        return "sys.executable unknown"
    try:
        if os.path.realpath("/proc/self/exe") != os.path.realpath(sys.executable):
            return "sys.executable is not this process's program"
    except OSError as e:
        return "cannot read /proc/self/exe: %s" % e
    if os.getuid() != os.geteuid() or os.getgid() != os.getegid():
        return "setuid/setgid: the loader ignores LD_PRELOAD"
    if os.environ.get(_MARKER) == str(os.getpid()):
        return "already re-executed once, and LD_PRELOAD did not take effect"
    if not _at_startup():
        return "not called at interpreter start-up"
    return None


def _reexec(lib):
    from .. import with_preload
    env = os.environ
    old = with_preload(env, lib)
    env[_MARKER] = str(os.getpid())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        os.execv(sys.executable, [sys.executable] + list(sys.orig_argv[1:]))
    except OSError:
        # Still this process: undo, so that patch mode exports a clean value.
        if old is not None:
            env["LD_PRELOAD"] = old
        else:
            del env["LD_PRELOAD"]
        del env[_MARKER]
        raise
