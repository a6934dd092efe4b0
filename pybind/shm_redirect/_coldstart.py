"""Cold-start sweep: remove what a killed process tree left in the store, once per process tree.

AWS Lambda kills the whole process tree of an invocation that times out (or crashes) and starts
the runtime again in the same execution environment, whose /tmp -- and so the store -- persists.
Nothing of the killed tree survives to clean up after it: CPython's resource tracker died with
it. At that cold start nothing of the function runs yet, so an object of ours that no live
process holds open or mapped is garbage. The first activated interpreter of the new tree (or the
exec wrapper /opt/shm-redirect, before it) therefore sweeps the store with no grace period, and
sets SHM_REDIRECT_SWEPT=1 so that its descendants do not sweep again.

When: in store mode only (the native /dev/shm is never swept), when AWS_LAMBDA_RUNTIME_API is set
(Lambda) or SHM_REDIRECT_SWEEP=1 (elsewhere; =0 disables it everywhere). Outside Lambda a
process tree may share the store with other live trees that keep a segment unopened between two
users (creator closed it, the next one has not attached yet): enable it there only when one tree
owns the store.

How: the static Go helper bin/shmr-core (SweepJSON), run with posix_spawn and waited for: Go
never runs in this process (it is about to fork children), and the sweep keeps the Go core's
rules (our uid only, never an object a live process holds, inode re-checked before unlink).
~2 ms per cold start. A failure is one line on stderr, never a failed start.
"""
import json
import os

SWEPT = "SHM_REDIRECT_SWEPT"


def wanted(env):
    if SWEPT in env or env.get("SHM_REDIRECT_SWEEP") == "0":
        return False
    return "AWS_LAMBDA_RUNTIME_API" in env or env.get("SHM_REDIRECT_SWEEP") == "1"


def core_bin():
    b = os.environ.get("SHM_REDIRECT_CORE_BIN")
    if b:
        return b
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "shmr-core")


def sweep(warn):
    env = os.environ
    env[SWEPT] = "1"
    exe = core_bin()
    if not os.access(exe, os.X_OK):
        warn("cold-start sweep skipped: %s not found" % exe)
        return None
    args = json.dumps([env.get("SHM_REDIRECT_DIR", ""), env.get("TMPDIR", ""), "", 0, False])
    r, w = os.pipe()
    try:
        pid = os.posix_spawn(exe, [exe, "SweepJSON", args], dict(env),
                             file_actions=[(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_CLOSE, r)])
    except OSError as e:
        os.close(r)
        os.close(w)
        warn("cold-start sweep failed: %s" % e)
        return None
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    os.waitpid(pid, 0)
    try:
        reply = json.loads(out.decode() or "null")
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        warn("cold-start sweep failed: no reply from %s" % exe)
        return None
    if "error" in reply and "not managed" not in reply["error"]:
        warn("cold-start sweep: %s" % reply["error"])
    return reply.get("result")
