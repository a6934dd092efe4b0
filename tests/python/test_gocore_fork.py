"""The Go core and fork(): a process forked after the Go runtime was loaded must never call into
it (it would hang). 2000 fork cycles, each child using the Python API, each under a watchdog."""
import json

# Runs in the installed venv. The parent loads the Go core in-process, then forks CYCLES children,
# PARALLEL at a time; each child lists the store and resolves the directory through the public API
# (which must go out of process), reports on a pipe and exits. A child that has not finished within
# WATCHDOG seconds is a hang: killed and counted.
FORKER = r"""
import json, os, select, signal, sys, time
import shm_redirect
from shm_redirect.store import gocore as _gocore
CYCLES, PARALLEL, WATCHDOG, store = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
os.environ["SHM_REDIRECT_DIR"] = store
parent_objs = shm_redirect.list_objects()
assert "shm_redirect._core" in sys.modules and _gocore.inprocess_safe()
parent_dir = shm_redirect.resolve_dir()

def child(n):
    try:
        safe = _gocore.inprocess_safe()
        objs = shm_redirect.list_objects()
        if safe or [o["name"] for o in objs] != [o["name"] for o in parent_objs]:
            print("child %d: safe=%s objs=%s" % (n, safe, objs), file=sys.stderr)
            return 3
        if n % 50 == 0:  # the other calls, and an error coming back, now and then
            d = shm_redirect.resolve_dir()
            try:
                shm_redirect.sweep(dir="relative", grace=0)
                err = None
            except _gocore.GoCoreError as e:
                err = str(e)
            if d != parent_dir or err is None or "invalid argument" not in err:
                print("child %d: dir=%s err=%s" % (n, d, err), file=sys.stderr)
                return 3
        return 0
    except BaseException:
        import traceback; traceback.print_exc()
        return 4

stats = {"ok": 0, "failed": 0, "hung": 0}
running = {}  # pid -> deadline
started = 0
t0 = time.monotonic()
while started < CYCLES or running:
    while started < CYCLES and len(running) < PARALLEL:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child(started)
            finally:
                os._exit(code)
        running[pid] = time.monotonic() + WATCHDOG
        started += 1
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid == 0:
        now = time.monotonic()
        for p, deadline in list(running.items()):
            if now > deadline:
                os.kill(p, signal.SIGKILL)
                os.waitpid(p, 0)
                del running[p]
                stats["hung"] += 1
        time.sleep(0.002)
        continue
    running.pop(pid, None)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        stats["ok"] += 1
    else:
        stats["failed"] += 1
# the parent itself still works in-process afterwards
assert _gocore.inprocess_safe()
assert [o["name"] for o in shm_redirect.list_objects()] == [o["name"] for o in parent_objs]
stats["seconds"] = round(time.monotonic() - t0, 1)
print(json.dumps(stats))
"""


def test_2000_fork_cycles_after_loading_go_core(inst, tmp_path):
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    (store / "leftover").write_bytes(b"x" * 10)  # something to list
    p = inst.run([inst.python, "-c", FORKER, "2000", "8", "60", str(store)], env=inst.env(), timeout=1800)
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    assert stats["hung"] == 0, stats
    assert stats["failed"] == 0, (stats, p.stderr[-3000:])
    assert stats["ok"] == 2000, stats


def test_child_of_unloaded_parent_loads_in_process(inst):
    code = r"""
import os, sys
import shm_redirect
from shm_redirect.store import gocore as _gocore
pid = os.fork()
if pid == 0:
    ok = _gocore.inprocess_safe()
    shm_redirect.resolve_dir()
    ok = ok and "shm_redirect._core" in sys.modules
    os._exit(0 if ok else 1)
_, st = os.waitpid(pid, 0)
assert "shm_redirect._core" not in sys.modules   # the parent never loaded it
print(os.waitstatus_to_exitcode(st))
"""
    assert inst.run([inst.python, "-c", code]).stdout.strip() == "0"


def test_subprocess_path_matches_in_process(inst, tmp_path):
    code = r"""
import json, os, sys
import shm_redirect
os.environ["SHM_REDIRECT_DIR"] = sys.argv[1]
os.environ["SHM_REDIRECT_GOCORE"] = "subprocess"
a = (shm_redirect.resolve_dir(), shm_redirect.list_objects(), shm_redirect.sweep(dry_run=True, grace=0))
assert "shm_redirect._core" not in sys.modules
os.environ["SHM_REDIRECT_GOCORE"] = "inproc"
b = (shm_redirect.resolve_dir(), shm_redirect.list_objects(), shm_redirect.sweep(dry_run=True, grace=0))
assert json.loads(json.dumps(a)) == json.loads(json.dumps(b)), (a, b)
print(json.dumps(a))
"""
    store = tmp_path / "s"
    store.mkdir(mode=0o700)
    (store / "seg").write_bytes(b"y" * 5)
    out = json.loads(inst.run([inst.python, "-c", code, str(store)]).stdout)
    assert out[0] == [str(store), False]
    assert [o["name"] for o in out[1]] == ["seg"]
    assert [o["name"] for o in out[2]] == ["seg"]


def test_gocall_usage_and_errors(inst):
    p = inst.run([inst.python, "-m", "shm_redirect.store.gocall", "Nope"], check=False)
    assert p.returncode == 2 and "usage:" in p.stderr
    p = inst.run([inst.python, "-m", "shm_redirect.store.gocall", "Nope", "[]"])
    reply = json.loads(p.stdout)
    assert reply["type"] == "ValueError" and "not a Go core function" in reply["error"]
    p = inst.run([inst.python, "-m", "shm_redirect.store.gocall", "ResolveDir", '["rel", ""]'])
    reply = json.loads(p.stdout)
    assert reply["type"] == "GoCoreError" and "invalid argument" in reply["error"]
