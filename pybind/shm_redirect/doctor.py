"""`shm-redirect doctor`: why native POSIX IPC works or fails here, and what the store does.

Every verdict is the C library's (shim/shm_redirect.h, through shm_redirect.store.clib): which
directory, why /dev/shm is or is not used, what opening the store meets; the Go core's answer to
the same question is shown beside it (they must agree: tests/agreement). This module only puts
their errno into words. Opening the store creates it, mode 1777, when missing, exactly as the first
call of a program would; nothing else is changed.
"""
import errno
import json
import os
import subprocess
import sys

from . import __version__, preload_entries, preload_path
from .store.format import ENV_DIR, NATIVE_DIR

MODES = ("auto", "off", "patch", "preload")

# Why native POSIX IPC fails, by the errno of sem_open/shm_open.
ERRNO_WHY = {
    errno.ENOENT: "/dev/shm does not exist. glibc >= 2.34 keeps semaphores and shared memory only in "
                  "/dev/shm and reports its absence as ENOENT (AWS Lambda python3.12+: "
                  "FileNotFoundError).",
    errno.ENOSYS: "glibc < 2.34 found no tmpfs mounted for shared memory (no usable /dev/shm) and "
                  "reports 'Function not implemented' (AWS Lambda python3.10/3.11).",
    errno.EACCES: "/dev/shm exists but this user may not create files in it (owner or mode).",
    errno.EPERM:  "/dev/shm refuses this user (EPERM).",
    errno.EROFS:  "/dev/shm is mounted read-only.",
    errno.ENOSPC: "/dev/shm is full.",
}

# Run in a child WITHOUT LD_PRELOAD: what does plain glibc do here?
PROBE = r"""
import json, os, sys
name = "/shmr-probe-%d" % os.getpid()
out = {}
def rec(key, fn):
    try:
        fn()
        out[key] = {"ok": True}
    except OSError as e:
        out[key] = {"ok": False, "errno": e.errno, "strerror": e.strerror}
    except Exception as e:
        out[key] = {"ok": False, "errno": None, "strerror": repr(e)}
def sem():
    import _multiprocessing
    _multiprocessing.SemLock(1, 1, 1, name, True)  # kind, value, maxvalue, name, unlink at once
def shm():
    import _posixshmem
    fd = _posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.close(fd)
    _posixshmem.shm_unlink(name)
rec("sem_open", sem)
rec("shm_open", shm)
print(json.dumps(out))
"""


# What the library's native_errno says about /dev/shm (shim/shm_redirect.h).
NATIVE_WHY = {
    0: "is a writable tmpfs",
    errno.ENOENT: "does not exist",
    errno.EMEDIUMTYPE: "is not a tmpfs",
    errno.ENOTDIR: "is not a directory",
    errno.EACCES: "is not writable and searchable by this user",
    errno.EPERM: "refuses this user",
    errno.EROFS: "is mounted read-only",
}

# What the store's errno means: STORE.md "Directory safety".
STORE_WHY = {
    errno.EINVAL: ENV_DIR + " must be an absolute path",
    errno.ENAMETOOLONG: "the path is too long",
    errno.ELOOP: "is a symlink: refused",
    errno.ENOTDIR: "is not a directory",
    errno.EACCES: "is owned by another user than root or you, is writable by others without the "
                  "sticky bit, or cannot be created here: refused",
    errno.ENOENT: "cannot be created: its parent directory is missing",
    errno.EROFS: "cannot be created: read-only file system",
}


def verdict():
    """What the first store call of this process meets, in the shape of the Go core's
    VerdictJSON: {"dir", "native", "native_errno", "errno"} (errno 0: the store opens)."""
    from .store import clib
    v = {"dir": "", "native": False, "native_errno": clib.native_errno(), "errno": 0}
    try:
        v["dir"], v["native"] = clib.store_dir()
        os.close(clib.store_open(create=True))
    except OSError as e:
        v["errno"] = e.errno
    return v


def go_verdict():
    """The Go core's VerdictJSON for this environment, or None when no Go core is installed."""
    from .store import gocore
    if not gocore.core_available():
        return None
    return json.loads(gocore.call("VerdictJSON", *gocore.env_args()))


def _errname(e):
    return errno.errorcode.get(e, str(e))

def probe_native():
    """Run PROBE in a child without LD_PRELOAD; returns its dict, or {"error": ...}."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    try:
        p = subprocess.run([sys.executable, "-S", "-c", PROBE], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        return json.loads(p.stdout.decode())
    except Exception as e:
        return {"error": repr(e)}


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return "unreadable (%s)" % e.strerror


def preload_active():
    """(in LD_PRELOAD, mapped in this process)."""
    try:
        ours = os.path.realpath(preload_path())
    except FileNotFoundError:
        ours = None
    entries = preload_entries(os.environ.get("LD_PRELOAD", ""))
    listed = any(os.path.basename(e) == "libshm_redirect.so" or (ours and os.path.realpath(e) == ours) for e in entries)
    mapped = False
    try:
        with open("/proc/self/maps") as f:
            mapped = any(line.rstrip().endswith("/libshm_redirect.so") for line in f)
    except OSError:
        pass
    return listed, mapped



def _native_section(say):
    """1. glibc alone: returns whether native IPC works."""
    say("\n1. Native POSIX IPC (sem_open/shm_open in a child without LD_PRELOAD):")
    probe = probe_native()
    if "error" in probe:
        say("   the probe could not run: %s" % probe["error"])
        return False
    for fn, r in probe.items():
        if r.get("ok"):
            say("   %-9s works" % fn)
            continue
        e = r.get("errno")
        say("   %-9s fails: %s (%s)" % (fn, _errname(e) if e is not None else "?", r.get("strerror")))
        if e in ERRNO_WHY:
            say("             why: " + ERRNO_WHY[e])
    works = all(r.get("ok") for r in probe.values())
    if works:
        say("   => /dev/shm works: multiprocessing works here without shm-redirect.")
    else:
        say("   => multiprocessing's Lock, Queue, Pool, Value and shared_memory fail here without shm-redirect.")
    return works


def _store_section(say, v):
    """2. The store, as the library decides it: returns the number of problems."""
    say("\n2. The store the preload would use (the library's answer):")
    n = v["native_errno"]
    say("   %s %s (%s)" % (NATIVE_DIR, NATIVE_WHY.get(n, os.strerror(n)), _errname(n) if n else "ok"))
    if not v["dir"]:
        say("   PROBLEM: %s=%r: %s (%s)" % (ENV_DIR, os.environ.get(ENV_DIR, ""),
                                          STORE_WHY.get(v["errno"], os.strerror(v["errno"])), _errname(v["errno"])))
        return 1
    if v["native"]:
        say("   %s (native: calls go to glibc unchanged)" % v["dir"])
    else:
        why = ("%s is set: always a store" % ENV_DIR) if os.environ.get(ENV_DIR) else \
            "%s is not usable; TMPDIR=%s" % (NATIVE_DIR, os.environ.get("TMPDIR") or "(unset)")
        say("   %s (store)\n   why: %s" % (v["dir"], why))
    try:
        g = go_verdict()
        if g is not None and g != v:
            say("   warning: the Go core answers %s" % json.dumps(g))
    except Exception as e:
        say("   (the Go core's answer is unavailable: %s)" % e)
    if v["errno"]:
        say("   safety: PROBLEM: %s %s (%s)" % (v["dir"], STORE_WHY.get(v["errno"], os.strerror(v["errno"])),
                                                _errname(v["errno"])))
        return 1
    if not v["native"]:
        say("   safety: ok: %s passes the store's rules (created, mode 1777, if it was missing)" % v["dir"])
    _free_space(say, v["dir"])
    return 0


def _free_space(say, d):
    try:
        sv = os.statvfs(d)
        say("   free space: %s of %s (statvfs %s), %d free inodes" % (
            _human(sv.f_bavail * sv.f_frsize), _human(sv.f_blocks * sv.f_frsize), d, sv.f_favail))
    except OSError as e:
        say("   free space: statvfs(%s) failed: %s" % (d, e.strerror))

def cmd_doctor(args):
    if args.json:
        sys.stdout.write(json.dumps({"verdict": verdict(), "go": go_verdict()}) + "\n")
        return 0
    out = sys.stdout
    say = lambda s="": out.write(s + "\n")
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "?"
    say("shm-redirect %s doctor — Python %s (%s), %s, uid %d" % (
        __version__, sys.version.split()[0], sys.executable, libc, os.geteuid()))
    listed, mapped = preload_active()   # before store.clib maps the library into this process
    native_works = _native_section(say)
    v = verdict()
    problems = _store_section(say, v)
    d = v["dir"]

    say("\n3. Limits (every open semaphore or segment is a mapping; an open one also an fd):")
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        say("   RLIMIT_NOFILE: soft %s, hard %s" % (soft, "unlimited" if hard == resource.RLIM_INFINITY else hard))
    except Exception as e:
        say("   RLIMIT_NOFILE: %s" % e)
    for p in ("/proc/sys/fs/file-max", "/proc/sys/fs/file-nr", "/proc/sys/fs/nr_open", "/proc/sys/vm/max_map_count"):
        say("   %s: %s" % (p, _read(p)))

    say("\n4. The preload:")
    try:
        lib = preload_path()
        say("   %s" % lib)
    except FileNotFoundError as e:
        say("   PROBLEM: %s" % e)
        problems += 1
    say("   LD_PRELOAD=%s" % (os.environ.get("LD_PRELOAD") or "(unset)"))
    say("   active in this process: %s" % ("yes" if mapped else
        "listed in LD_PRELOAD but not loaded" if listed else "no (use `shm-redirect run -- CMD`)"))
    mode = os.environ.get("SHM_REDIRECT", "")
    say("   SHM_REDIRECT=%s%s" % (mode or "(unset: auto)",
        "" if (mode or "auto").lower() in MODES else "  (unknown: expected one of %s)" % "/".join(MODES)))

    say("\n5. The Go core (listing and cleaning):")
    from .store import gocore as _gocore
    what, why = _gocore.describe()
    say("   in use: " + what)
    say("   why: " + why)
    if what == "none":
        say("   ls and clean are unavailable (the preload still works)")
    else:
        try:
            objs = _gocore.list_objects()
            held = sum(1 for o in objs if o["holders"])
            say("   available; %d object(s) in %s, %d held by live processes" % (len(objs), d, held))
        except Exception as e:
            say("   available, but listing failed: %s" % e)

    say("\nVerdict: " + (
        "native /dev/shm works; shm-redirect changes nothing here." if native_works else
        "native IPC fails here; run your program with the preload (shm-redirect run -- CMD), "
        "objects then live in %s." % d if not problems else
        "native IPC fails and the store has problems (see above)."))
    return 0 if (native_works or not problems) else 1


