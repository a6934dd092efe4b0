"""The shm-redirect command line: doctor, ls, clean, run, preload-path.

    shm-redirect doctor              why native POSIX IPC works or fails here, and what the preload would do
    shm-redirect ls [--json]         the objects of the store, with their holders
    shm-redirect clean [--dry-run] [--grace SECONDS]   remove leaked objects (Go core sweep)
    shm-redirect run -- CMD ARGS     run CMD with the preload (LD_PRELOAD prepended)
    shm-redirect preload-path        the absolute path of the packaged libshm_redirect.so

Standard library only. ls, clean and doctor's listing load the Go core lazily (shm_redirect._gocore).
"""
import argparse
import errno
import json
import os
import stat
import subprocess
import sys
import time

from . import __version__, preload_path

NATIVE_DIR = "/dev/shm"
TMPFS = "tmpfs"
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


# ---------------------------------------------------------------- helpers

def _mount_of(path):
    """(fstype, options) of the mount point exactly at path, or None (from /proc/self/mountinfo)."""
    found = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                parts = left.split()
                mnt = parts[4].replace("\\040", " ")
                if mnt == path:
                    rparts = right.split()
                    found = (rparts[0], parts[5])  # the last one mounted wins
    except OSError:
        pass
    return found


def native_status():
    """(usable, reason) for /dev/shm, with the rules of core/STORE.md (tmpfs, W_OK|X_OK for the euid)."""
    try:
        st = os.stat(NATIVE_DIR)
    except FileNotFoundError:
        return False, "%s does not exist" % NATIVE_DIR
    except OSError as e:
        return False, "%s: %s" % (NATIVE_DIR, e.strerror)
    if not stat.S_ISDIR(st.st_mode):
        return False, "%s is not a directory" % NATIVE_DIR
    m = _mount_of(NATIVE_DIR)
    if m is None or m[0] != TMPFS:
        return False, "%s is not a tmpfs mount (%s)" % (NATIVE_DIR, m[0] if m else "not a mount point")
    if "ro" in m[1].split(","):
        return False, "%s is mounted read-only" % NATIVE_DIR
    if not os.access(NATIVE_DIR, os.W_OK | os.X_OK, effective_ids=True):
        return False, "%s is not writable by uid %d (owner %d, mode %o)" % (
            NATIVE_DIR, os.geteuid(), st.st_uid, stat.S_IMODE(st.st_mode))
    return True, "%s is a writable tmpfs" % NATIVE_DIR


def resolve_dir_py(environ=None):
    """(dir, native, why, error): the directory the preload would use, computed in Python with
    core/STORE.md's rules (works without the Go core)."""
    env = os.environ if environ is None else environ
    d = env.get("SHM_REDIRECT_DIR", "")
    if d:
        if not d.startswith("/"):
            return None, False, "SHM_REDIRECT_DIR=%r" % d, "SHM_REDIRECT_DIR must be absolute (the preload fails with EINVAL)"
        return d, False, "SHM_REDIRECT_DIR is set (always a store, even when /dev/shm works)", None
    ok, reason = native_status()
    if ok:
        return NATIVE_DIR, True, reason + ": the preload forwards every call to glibc", None
    tmp = env.get("TMPDIR", "")
    if tmp.startswith("/"):
        return os.path.join(tmp, "shm"), False, reason + "; TMPDIR is set: $TMPDIR/shm", None
    return "/tmp/shm", False, reason + "; TMPDIR unset or relative: /tmp/shm", None


def check_store_dir(d):
    """(ok, message) for the store directory's safety rules (core/STORE.md 'Directory safety')."""
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        parent = os.path.dirname(d.rstrip("/")) or "/"
        if not os.path.isdir(parent):
            return False, "%s does not exist and neither does its parent %s (ENOENT on first use)" % (d, parent)
        if not os.access(parent, os.W_OK | os.X_OK, effective_ids=True):
            return False, "%s does not exist and %s is not writable: it cannot be created (EACCES)" % (d, parent)
        return True, "%s does not exist yet; it will be created with mode 1777 on first use" % d
    except OSError as e:
        return False, "%s: %s" % (d, e.strerror)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return False, "%s is a symlink: refused (ELOOP)" % d
    if not stat.S_ISDIR(st.st_mode):
        return False, "%s is not a directory (ENOTDIR)" % d
    if st.st_uid not in (0, os.geteuid()):
        return False, "%s is owned by uid %d, neither root nor you (%d): refused (EACCES)" % (d, st.st_uid, os.geteuid())
    if mode & 0o022 and not mode & stat.S_ISVTX:
        return False, "%s is group/other-writable without the sticky bit (mode %04o): refused (EACCES)" % (d, mode)
    if not os.access(d, os.W_OK | os.X_OK, effective_ids=True):
        return False, "%s is not writable by you (mode %04o)" % (d, mode)
    return True, "%s passes the safety rules (owner uid %d, mode %04o)" % (d, st.st_uid, mode)


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
    entries = [e for e in os.environ.get("LD_PRELOAD", "").replace(":", " ").split() if e]
    listed = any(os.path.basename(e) == "libshm_redirect.so" or (ours and os.path.realpath(e) == ours) for e in entries)
    mapped = False
    try:
        with open("/proc/self/maps") as f:
            mapped = any(line.rstrip().endswith("/libshm_redirect.so") for line in f)
    except OSError:
        pass
    return listed, mapped


# ---------------------------------------------------------------- subcommands

def cmd_doctor(args):
    out = sys.stdout
    say = lambda s="": out.write(s + "\n")
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "?"
    say("shm-redirect %s doctor — Python %s (%s), %s, uid %d" % (
        __version__, sys.version.split()[0], sys.executable, libc, os.geteuid()))
    problems = 0

    say("\n1. Native POSIX IPC (sem_open/shm_open in a child without LD_PRELOAD):")
    probe = probe_native()
    native_works = False
    if "error" in probe:
        say("   the probe could not run: %s" % probe["error"])
    else:
        native_works = all(r.get("ok") for r in probe.values())
        for fn, r in probe.items():
            if r.get("ok"):
                say("   %-9s works" % fn)
            else:
                e = r.get("errno")
                name = errno.errorcode.get(e, str(e)) if e is not None else "?"
                say("   %-9s fails: %s (%s)" % (fn, name, r.get("strerror")))
                if e in ERRNO_WHY:
                    say("             why: " + ERRNO_WHY[e])
        ok, reason = native_status()
        say("   /dev/shm: " + reason)
        if native_works:
            say("   => /dev/shm works: multiprocessing works here without shm-redirect.")
        else:
            say("   => multiprocessing's Lock, Queue, Pool, Value and shared_memory fail here without shm-redirect.")

    say("\n2. The store the preload would use:")
    d, native, why, err = resolve_dir_py()
    if err:
        say("   error: " + err)
        problems += 1
    else:
        say("   %s (%s)" % (d, "native: calls go to glibc unchanged" if native else "store"))
        say("   why: " + why)
        try:
            from . import _gocore
            if _gocore.core_available():
                gd, gn = _gocore.resolve_dir()
                if (gd, gn) != (d, native):
                    say("   warning: the Go core resolves %s (native=%s)" % (gd, gn))
        except Exception as e:
            say("   (Go core resolution unavailable: %s)" % e)
        if not native:
            ok, msg = check_store_dir(d)
            say("   safety: " + ("ok: " if ok else "PROBLEM: ") + msg)
            if not ok:
                problems += 1
        where = d
        while where and not os.path.exists(where):
            where = os.path.dirname(where.rstrip("/")) or "/"
        try:
            sv = os.statvfs(where)
            say("   free space: %s of %s (statvfs %s), %d free inodes" % (
                _human(sv.f_bavail * sv.f_frsize), _human(sv.f_blocks * sv.f_frsize), where, sv.f_favail))
        except OSError as e:
            say("   free space: statvfs(%s) failed: %s" % (where, e.strerror))

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
    listed, mapped = preload_active()
    say("   LD_PRELOAD=%s" % (os.environ.get("LD_PRELOAD") or "(unset)"))
    say("   active in this process: %s" % ("yes" if mapped else
        "listed in LD_PRELOAD but not loaded" if listed else "no (use `shm-redirect run -- CMD`)"))
    mode = os.environ.get("SHM_REDIRECT", "")
    say("   SHM_REDIRECT=%s%s" % (mode or "(unset: auto)",
        "" if (mode or "auto").lower() in MODES else "  (unknown: expected one of %s)" % "/".join(MODES)))

    say("\n5. The Go core (listing and cleaning):")
    from . import _gocore
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


def _store_arg(args):
    return args.dir or None


def cmd_ls(args):
    from . import _gocore
    try:
        objs = _gocore.list_objects(_store_arg(args))
    except Exception as e:
        sys.stderr.write("shm-redirect ls: %s\n" % e)
        return 1
    if args.json:
        sys.stdout.write(json.dumps(objs, indent=1) + "\n")
        return 0
    rows = [("KIND", "NAME", "SIZE", "VALUE", "HOLDERS")]
    for o in objs:
        rows.append((o["kind"], o["name"], str(o["size"]),
                     str(o["value"]) if o["kind"] == "semaphore" and o["value"] >= 0 else "-",
                     ",".join(map(str, o["holders"])) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4] + "\n")
    return 0


def cmd_clean(args):
    from . import _gocore
    if args.grace < 0:
        sys.stderr.write("shm-redirect clean: --grace must be >= 0\n")
        return 2
    if not args.dir:
        d, native, _, err = resolve_dir_py()
        if err:
            sys.stderr.write("shm-redirect clean: %s\n" % err)
            return 1
        if native:
            sys.stdout.write("the store is the native %s: shm-redirect never sweeps it; nothing to do\n" % d)
            return 0
    verb = "would remove" if args.dry_run else "removed"
    # --- resource tracker journals (shm_redirect.resource_tracker): objects registered by trackers
    # that died (SIGKILLed trees) and not held by a live process go first, without any grace.
    try:
        from . import resource_tracker
        rec_ = resource_tracker.recover(args.dir or d, sweep=False, dry_run=args.dry_run,
                                        log=lambda m: sys.stderr.write(m + "\n"))
    except Exception as e:   # the sweep below reports a bad store directory with the Go core's words
        sys.stderr.write("shm-redirect clean: tracker journals skipped: %s\n" % e)
        rec_ = {"removed": [], "kept": [], "deferred": []}
    for rtype, name in rec_["removed"]:
        sys.stdout.write("%s %s %s (dead tracker journal)\n" % (verb, rtype, name))
    for rtype, name in rec_["kept"]:
        sys.stdout.write("kept %s %s (dead tracker journal, held by a live process)\n" % (rtype, name))
    for j in rec_["deferred"]:
        sys.stdout.write("kept journal %s (its tracker died, the process that started it lives)\n" % j)
    # --- end resource tracker journals
    try:
        removed = _gocore.sweep(_store_arg(args), grace=args.grace, dry_run=args.dry_run)
    except Exception as e:
        sys.stderr.write("shm-redirect clean: %s\n" % e)
        return 1
    for o in removed:
        sys.stdout.write("%s %s %s (%d bytes)\n" % (verb, o["kind"], o["name"], o["size"]))
    sys.stdout.write("%s %d object(s)\n" % (verb, len(removed) + len(rec_["removed"])))
    return 0


def cmd_run(args):
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        sys.stderr.write("shm-redirect run: no command (shm-redirect run -- CMD ARGS)\n")
        return 2
    try:
        lib = preload_path()
    except FileNotFoundError as e:
        sys.stderr.write("shm-redirect run: %s\n" % e)
        return 1
    env = dict(os.environ)
    old = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = lib + (":" + old if old else "")
    try:
        os.execvpe(cmd[0], cmd, env)
    except OSError as e:
        sys.stderr.write("shm-redirect run: %s: %s\n" % (cmd[0], e.strerror))
        return 127 if e.errno == errno.ENOENT else 126


def cmd_preload_path(args):
    try:
        sys.stdout.write(preload_path() + "\n")
    except FileNotFoundError as e:
        sys.stderr.write("shm-redirect preload-path: %s\n" % e)
        return 1
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="shm-redirect", description=(
        "Python multiprocessing where /dev/shm is missing: diagnose, list and clean the store, "
        "run programs with the preload."))
    p.add_argument("--version", action="version", version="shm-redirect " + __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    s = sub.add_parser("doctor", help="explain why native IPC works or fails here and what the preload would do")
    s.set_defaults(func=cmd_doctor)
    s = sub.add_parser("ls", help="list the objects of the store")
    s.add_argument("--json", action="store_true", help="print JSON (kind, name, file, size, uid, mode, type, mtime, value, holders)")
    s.add_argument("--dir", help="this store directory instead of the resolved one")
    s.set_defaults(func=cmd_ls)
    s = sub.add_parser("clean", help="remove leaked objects (never one held by a live process)")
    s.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    s.add_argument("--grace", type=float, default=60.0, metavar="SECONDS",
                   help="spare objects changed less than SECONDS ago (default 60; 0: none)")
    s.add_argument("--dir", help="this store directory instead of the resolved one")
    s.set_defaults(func=cmd_clean)
    s = sub.add_parser("run", help="run CMD with LD_PRELOAD=libshm_redirect.so prepended")
    s.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    s.set_defaults(func=cmd_run)
    s = sub.add_parser("preload-path", help="print the absolute path of the packaged libshm_redirect.so")
    s.set_defaults(func=cmd_preload_path)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
