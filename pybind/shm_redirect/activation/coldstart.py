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

How: the static Go helper bin/shmr-core (ColdStartSweepJSON: the policy is Go's), run with posix_spawn and waited for: Go
never runs in this process (it is about to fork children), and the sweep keeps the Go core's
rules (our uid only, never an object a live process holds, inode re-checked before unlink).
~2 ms per cold start. A failure is one line on stderr, never a failed start.
"""
import os

SWEPT = "SHM_REDIRECT_SWEPT"


def wanted(env):
    if SWEPT in env or env.get("SHM_REDIRECT_SWEEP") == "0":
        return False
    return "AWS_LAMBDA_RUNTIME_API" in env or env.get("SHM_REDIRECT_SWEEP") == "1"


def sweep(warn):
    from ..store import gocore
    env = os.environ
    env[SWEPT] = "1"
    cmd = gocore.binary_command("ColdStartSweepJSON", gocore.env_args())
    if cmd is None:
        warn("cold-start sweep skipped: no executable %s" % gocore._binary_candidate())
        return None
    r, w = os.pipe()
    try:
        pid = os.posix_spawn(cmd[0], cmd, dict(env),
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
        return gocore.result(out.decode())
    except gocore.GoCoreError as e:
        if "not managed" not in str(e):
            warn("cold-start sweep: %s" % e)
    except ValueError:
        warn("cold-start sweep failed: no reply from %s" % cmd[0])
    return None
