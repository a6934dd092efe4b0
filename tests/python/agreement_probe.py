"""Run inside one sandbox environment by tests/python/test_agreement.py, with the installed wheel's
python: asks every implementation of the store where the first store call of a process puts its
objects here and what it meets there, and prints one JSON object {implementation: answer}.

Verdicts, [dir, native, native_errno, errno] (VerdictJSON's shape; errno 0: the store opens):
  c-library   the C library's query functions (shim/shm_redirect.h), as `shm-redirect doctor --json`
  gopy        the Go core's VerdictJSON through the gopy extension, in process
  shmr-core   the same through the static executable
  cli-go      the Go core as the CLI reaches it (`doctor --json`'s "go")
Behaviour, [dir, errno] (dir: where the object appeared, "" when the call failed):
  preload     sem_open through LD_PRELOAD (CPython's own _multiprocessing.SemLock)
  context     shm_redirect.get_context('spawn').Lock(), neither preloaded nor patched
  tracker     that Lock's resource tracker: the directory holding its journal ("" natively)
  c-existing  the errno of the C library opening the store without creating it, before
              anything here created it (0, ENOENT when missing, or why it is refused)
  ls          `shm-redirect ls --json`, run next: [None, 0] when it lists (a missing store lists
              as empty), else [None, errno of its message]
"""
import errno
import json
import os
import subprocess
import sys

PY = sys.executable
CLI = os.path.join(os.path.dirname(PY), "shm-redirect")
ENV_DIR = "SHM_REDIRECT_DIR"


def run(args, **env):
    e = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SHM_REDIRECT")}
    e.update(env)
    return subprocess.run(args, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)


def verdict(v):
    return [v["dir"], v["native"], v["native_errno"], v["errno"]]


# Where a created object may appear: the reference answer's directory first.
def candidates(ref):
    tmp = os.environ.get("TMPDIR") or "/tmp"
    return [d for d in (ref, "/dev/shm", "/tmp/shm", os.path.join(tmp, "shm"), os.environ.get(ENV_DIR))
            if d and os.path.isabs(d)]


PRELOAD = r"""
import _multiprocessing, json, os, sys
name = "agree-%d" % os.getpid()
try:
    s = _multiprocessing.SemLock(1, 1, 1, "/" + name, False)
except OSError as e:
    print(json.dumps(["", e.errno])); sys.exit()
where = [d for d in sys.argv[1:] if os.path.exists(os.path.join(d, "sem." + name))]
_multiprocessing.sem_unlink("/" + name)
print(json.dumps([where[0] if where else "?", 0]))
"""

CONTEXT = r"""
import json, os, sys
import shm_redirect
try:
    lock = shm_redirect.get_context("spawn").Lock()
except OSError as e:
    print(json.dumps(["", e.errno])); sys.exit()
fname = "sem." + lock._semlock.name.lstrip("/")
where = [d for d in sys.argv[1:] if os.path.exists(os.path.join(d, fname))]
print(json.dumps([where[0] if where else "?", 0]))
"""

# The tracker alone: a registration makes it journal (in a store), or warn why it cannot.
TRACKER = r"""
import json, os, sys, time
from shm_redirect.mp import resource_tracker as r
r.register("/agree-tracker", "semaphore")
journal = ""
for _ in range(200):            # the tracker journals the registration a moment later
    journal = next((d for d in sys.argv[1:] if os.path.isdir(d) and
                    any(f.startswith(".tracker.") for f in os.listdir(d))), "")
    if journal:
        break
    time.sleep(0.05)
r.unregister("/agree-tracker", "semaphore")
r._resource_tracker._stop()
print(json.dumps(journal))
"""


def errno_of(message):
    """The errno of a message: its "[Errno N]", else the errno whose strerror it contains (Go's
    and glibc's texts differ in case)."""
    if "[Errno " in message:
        return int(message.split("[Errno ", 1)[1].split("]", 1)[0])
    low = message.lower()
    for e in sorted(errno.errorcode):
        if os.strerror(e).lower() in low:
            return e
    return -1


EXISTING = r"""
import os
from shm_redirect.store import clib
try:
    os.close(clib.store_open(create=False))
    print(0)
except OSError as e:
    print(e.errno)
"""


def main():
    out = {"c-existing": int(run([PY, "-c", EXISTING]).stdout)}
    ls = run([CLI, "ls", "--json"])
    out["ls"] = [None, 0 if ls.returncode == 0 else errno_of(ls.stderr)]
    doc = run([CLI, "doctor", "--json"])
    d = json.loads(doc.stdout)
    out["c-library"] = verdict(d["verdict"])
    out["cli-go"] = verdict(d["go"]) if d["go"] else None
    code = ("from shm_redirect.store import gocore; "
            "print(gocore.call('VerdictJSON', *gocore.env_args()))")
    out["gopy"] = verdict(json.loads(run([PY, "-c", code], SHM_REDIRECT_GOCORE="inproc").stdout))
    from shm_redirect.store import gocore
    args = json.dumps([os.environ.get(ENV_DIR, ""), os.environ.get("TMPDIR", "")])
    reply = json.loads(run([gocore.binary_path(), "VerdictJSON", args]).stdout)
    out["shmr-core"] = verdict(json.loads(reply["result"]))
    where = candidates(out["c-library"][0])
    from shm_redirect import preload_path
    out["preload"] = json.loads(run([PY, "-S", "-c", PRELOAD] + where, LD_PRELOAD=preload_path()).stdout)
    out["context"] = json.loads(run([PY, "-c", CONTEXT] + where, SHM_REDIRECT="off").stdout)
    trk = run([PY, "-c", TRACKER] + where, SHM_REDIRECT="off")
    journal = json.loads(trk.stdout)
    warned = trk.stderr.split("no journal", 1)[1] if "no journal" in trk.stderr else ""
    out["tracker"] = [journal, errno_of(warned) if warned else 0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
