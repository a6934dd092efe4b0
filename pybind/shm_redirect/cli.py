"""The shm-redirect command line: doctor, ls, clean, run, preload-path.

    shm-redirect doctor [--json]     why native POSIX IPC works or fails here, and what the preload would do
    shm-redirect ls [--json]         the objects of the store, with their holders
    shm-redirect clean [--dry-run] [--grace SECONDS]   remove leaked objects (Go core sweep)
    shm-redirect run -- CMD ARGS     run CMD with the preload (LD_PRELOAD prepended)
    shm-redirect preload-path        the absolute path of the packaged libshm_redirect.so

Standard library only. ls, clean and doctor's listing load the Go core lazily (shm_redirect.store.gocore).
--dir D means SHM_REDIRECT_DIR=D for this command: the C library and the Go core then both use D.
"""
import argparse
import errno
import json
import os
import sys

from . import __version__, preload_path, with_preload
from .doctor import cmd_doctor
from .store.format import ENV_DIR, SWEEP_GRACE_DEFAULT


def cmd_ls(args):
    from .store import gocore as _gocore
    try:
        objs = _gocore.list_objects()
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
    from .store import clib, gocore as _gocore
    try:
        d, native = clib.store_dir()
    except OSError as e:
        sys.stderr.write("shm-redirect clean: %s: %s\n" % (e.filename or ENV_DIR, e.strerror))
        return 1
    if native:
        sys.stdout.write("the store is the native %s: shm-redirect never sweeps it; nothing to do\n" % d)
        return 0
    verb = "would remove" if args.dry_run else "removed"
    # --- resource tracker journals (shm_redirect.mp.tracker_journal): objects registered by trackers
    # that died (SIGKILLed trees) and not held by a live process go first, without any grace.
    try:
        from .mp import tracker_journal
        rec_ = tracker_journal.recover(sweep=False, dry_run=args.dry_run,
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
        removed = _gocore.sweep(grace=args.grace, dry_run=args.dry_run)
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
    with_preload(env, lib)
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
    s.add_argument("--json", action="store_true", help="print only the verdicts of the C library and the Go core")
    s.set_defaults(func=cmd_doctor)
    s = sub.add_parser("ls", help="list the objects of the store")
    s.add_argument("--json", action="store_true", help="print JSON (kind, name, file, size, uid, mode, type, mtime, value, holders)")
    s.add_argument("--dir", help="this store directory instead of the resolved one")
    s.set_defaults(func=cmd_ls)
    s = sub.add_parser("clean", help="remove leaked objects (never one held by a live process)")
    s.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    s.add_argument("--grace", type=float, default=None, metavar="SECONDS",
                   help="spare objects changed less than SECONDS ago (default %d; 0: none)" % SWEEP_GRACE_DEFAULT)
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
    if getattr(args, "dir", None):
        os.environ[ENV_DIR] = args.dir
    try:
        return args.func(args) or 0
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
