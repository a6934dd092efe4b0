"""Real-process scenarios for shm_redirect.mp.resource_tracker (run inside tests/sandbox.sh by
tests/python/test_resource_tracker.py; prints one 'RESULT <json>' line per scenario).

    tracker_workload.py scenarios        normal exit, SIGKILLed trees, live trees (1-3)
    tracker_workload.py forks N PAR WD   N fork cycles, PAR at a time, WD seconds watchdog (4)
    tracker_workload.py leak | tree TAG NCHILD    (internal roles)

Objects are created through shm_redirect.store.clib (the store of libshm_redirect.so) and registered
with our tracker exactly as CPython's synchronize/shared_memory register theirs.
"""
import json
import mmap
import os
import signal
import subprocess
import sys
import time

from shm_redirect.store import clib
from shm_redirect.mp import resource_tracker, tracker_journal

HERE = os.path.abspath(__file__)
O_NEW = os.O_CREAT | os.O_EXCL


def result(name, **kw):
    kw["scenario"] = name
    print("RESULT " + json.dumps(kw), flush=True)


def store_dir():
    return clib.store_dir()[0]


def ls():
    try:
        return sorted(os.listdir(store_dir()))
    except FileNotFoundError:
        return []


def new_sem(name, keep=True):
    addr = clib.sem_open(name, O_NEW, 0o600, 1)
    resource_tracker.register(name, "semaphore")
    if not keep:
        clib.sem_close(addr)
    return addr


def new_shm(name, keep=True):
    fd = clib.shm_open(name, O_NEW | os.O_RDWR, 0o600)
    os.ftruncate(fd, 4096)
    m = mmap.mmap(fd, 4096)
    os.close(fd)
    resource_tracker.register(name, "shared_memory")
    if not keep:
        m.close()
        m = None
    return m


# ---- roles -----------------------------------------------------------------------------------

def role_leak():
    clib.load()
    new_sem("/mp-leak1", keep=False)
    new_shm("/psm_leak1", keep=False)
    new_sem("/mp-gone1", keep=False)          # registered, then unlinked and unregistered
    clib.sem_unlink("/mp-gone1")
    resource_tracker.unregister("/mp-gone1", "semaphore")
    print(json.dumps({"tracker": resource_tracker._resource_tracker._pid}), flush=True)
    # exit without unlinking: the tracker must see EOF and clean up


def role_tree(tag, nchild):
    """A process tree: this root and nchild forked children, each holding a semaphore and a
    segment (open/mapped) and registering one more object it does not hold. Prints its pids and
    names once every child is ready, then waits for stdin to close (or to be SIGKILLed)."""
    clib.load()
    resource_tracker.ensure_running()
    keep, names = [], []

    def make(who):
        for kind, fn in (("sem", new_sem), ("shm", new_shm)):
            n = "/%s_%s_%s_held" % ("mp-" + tag if kind == "sem" else "psm_" + tag, who, kind)
            keep.append(fn(n))
            names.append(n)
            n2 = n.replace("_held", "_unheld")
            fn(n2, keep=False)
            names.append(n2)

    r, w = os.pipe()
    kids = []
    for i in range(nchild):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            make("c%d" % i)
            os.write(w, (json.dumps(names) + "\n").encode())
            signal.pause()
            os._exit(0)
        kids.append(pid)
    os.close(w)
    make("root")
    with os.fdopen(r) as f:
        for _ in range(nchild):
            names += json.loads(f.readline())
    # The tracker journals what it has read from its pipe; a SIGKILL before it read a line loses
    # that line (the grace sweep is the net for that window): wait until everything is journaled.
    trk = resource_tracker._resource_tracker._pid
    t_journal = wait_for(lambda: {n.lstrip("/") for n in names} <= journaled(trk), 20)
    print(json.dumps({"root": os.getpid(), "kids": kids, "pgid": os.getpgid(0), "t_journal": t_journal,
                      "tracker": resource_tracker._resource_tracker._pid, "names": names}),
          flush=True)
    sys.stdin.read()                  # the driver closes stdin: a normal end of the live tree
    for pid in kids:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


def _ctx_child(q, tag, i):
    from shm_redirect.mp.shared_memory import SharedMemory
    import shm_redirect
    lock = shm_redirect.get_context("spawn").Lock()
    shm = SharedMemory(create=True, size=4096)
    q.put([lock._semlock.name, shm.name])
    lock.acquire()
    time.sleep(3600)


_CTX = None


def role_ctxtree(tag, nchild):
    """The same with the explicit context: shm_redirect.get_context('spawn') Locks, a Queue and
    shm_redirect.mp.shared_memory.SharedMemory in the root and its spawned children."""
    global _CTX
    import shm_redirect
    from shm_redirect.mp.shared_memory import SharedMemory
    _CTX = ctx = shm_redirect.get_context("spawn")
    lock, q = ctx.Lock(), ctx.Queue()
    shm = SharedMemory(create=True, size=4096)
    names = [lock._semlock.name, q._rlock._semlock.name, shm.name]
    kids = [ctx.Process(target=_ctx_child, args=(q, tag, i), daemon=True) for i in range(nchild)]
    for k in kids:
        k.start()
    for _ in kids:
        names += q.get(timeout=60)
    trk = resource_tracker._resource_tracker._pid
    t_journal = wait_for(lambda: {n.lstrip("/") for n in names} <= journaled(trk), 20)
    print(json.dumps({"root": os.getpid(), "kids": [k.pid for k in kids], "pgid": os.getpgid(0),
                      "t_journal": t_journal, "tracker": trk, "names": names}), flush=True)
    sys.stdin.read()


# ---- scenarios -------------------------------------------------------------------------------

def wait_for(pred, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def fork_until(want, limit, hold=None):
    """Fork children that exit at once until one gets a pid for which want(pid) is true; that one
    stays alive (given hold, a pipe (r, w): until the parent closes w) and is returned with the
    number of forks, or (None, limit)."""
    for n in range(1, limit + 1):
        pid = os.fork()
        if pid == 0:
            if hold is not None and want(os.getpid()):
                os.close(hold[1])
                os.read(hold[0], 1)
            os._exit(0)
        if want(pid) and hold is not None:
            return pid, n
        os.waitpid(pid, 0)
        if want(pid):
            return pid, n
    return None, limit


def alive(pid):
    return tracker_journal._starttime(pid) is not None


def start_tree(tag, nchild=3, role="tree"):
    p = subprocess.Popen([sys.executable, HERE, role, tag, str(nchild)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    info = json.loads(p.stdout.readline())
    info["proc"] = p
    return info


def kill_tree(info):
    os.killpg(info["pgid"], signal.SIGKILL)
    info["proc"].wait()
    for pid in info["kids"] + [info["tracker"]]:
        assert wait_for(lambda: not alive(pid), 10) is not None, pid


def files_of(names):
    out = set()
    for n in names:
        n = n.lstrip("/")
        out.add("sem." + n if n.startswith("mp-") else n)
    return out


def journaled(tracker_pid):
    names = set()
    for j in journals():
        if j.startswith(".tracker.%d." % tracker_pid):
            try:
                with open(os.path.join(store_dir(), j)) as f:
                    for line in f:
                        cmd, name, _ = line.strip().split(":")
                        (names.add if cmd == "REGISTER" else names.discard)(name.lstrip("/"))
            except (OSError, ValueError):
                pass
    return names


def journals():
    return [f for f in ls() if f.startswith(".tracker.")]


def scenario_normal_exit(live):
    # (1) normal exit
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, HERE, "leak"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    trk = json.loads(p.stdout)["tracker"]
    t_clean = wait_for(lambda: not alive(trk) and not ls(), 20)
    result("normal_exit", rc=p.returncode, left=ls(), seconds=t_clean and round(time.monotonic() - t0, 3),
           warned="leaked semaphore objects" in p.stderr and "leaked shared_memory objects" in p.stderr,
           stderr=p.stderr[-1500:])


def scenario_crash_new_tracker(live):
    # (2a) a SIGKILLed tree, then a new tracker start
    live_files, live_journal = live["files"], live["journal"]
    dead = start_tree("deadA")
    dead_files = files_of(dead["names"])
    before = ls()
    kill_tree(dead)
    after_kill = ls()
    resource_tracker.ensure_running()            # a new tracker: its recovery thread cleans up
    dj = ".tracker.%d." % dead["tracker"]
    t_rec = wait_for(lambda: not (dead_files & set(ls())) and not any(j.startswith(dj) for j in ls()), 30)
    time.sleep(0.3)
    mine = ".tracker.%d." % resource_tracker._resource_tracker._pid
    result("crash_new_tracker", objects_before_kill=len(dead_files),
           present_after_kill=sorted(dead_files & set(after_kill)),
           journal_after_kill=[j for j in after_kill if j.startswith(".tracker.%d." % dead["tracker"])],
           left_dead=sorted(dead_files & set(ls())), seconds=t_rec,
           other=sorted(f for f in ls() if f not in live_files and not f.startswith((".tracker.",))),
           live_missing=sorted(live_files - set(ls())), live_journal=live_journal,
           live_journal_kept=all(j in ls() for j in live_journal),
           journals=journals(), mine=mine, before=len(before))


def scenario_crash_cli_clean(live):
    # (2b) a SIGKILLed tree, then `shm-redirect clean` (default grace)
    live_files, live_journal = live["files"], live["journal"]
    dead = start_tree("deadB")
    dead_files = files_of(dead["names"])
    kill_tree(dead)
    after_kill = ls()
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "shm_redirect", "clean"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    result("crash_cli_clean", rc=p.returncode, out=p.stdout[-3000:], err=p.stderr[-2000:],
           seconds=round(time.monotonic() - t0, 3), objects_before=len(dead_files),
           present_after_kill=len(dead_files & set(after_kill)),
           left_dead=sorted(dead_files & set(ls())),
           dead_journals=[j for j in journals() if j.startswith(".tracker.%d." % dead["tracker"])],
           live_missing=sorted(live_files - set(ls())),
           live_journal_kept=all(j in ls() for j in live_journal))


def scenario_ctx_crash(live):
    # (2c, 2d) the same with the explicit context (Locks, a Queue, SharedMemory; spawn children)
    live_files, live_journal = live["files"], live["journal"]
    for how in ("new_tracker", "cli_clean"):
        dead = start_tree("ctx", 2, role="ctxtree")
        kill_tree(dead)
        after_kill = ls()
        dj = ".tracker.%d." % dead["tracker"]
        dead_files = {f for f in after_kill if f not in live_files and not f.startswith(".tracker.")
                      or f.startswith(dj)}
        t0 = time.monotonic()
        if how == "new_tracker":      # a fresh process starts a tracker and stops it (EOF): the
            cmd = ("from shm_redirect.mp import resource_tracker as r; r.ensure_running(); "
                   "r._resource_tracker._stop()")   # tracker joins its recovery before exiting
            p = subprocess.run([sys.executable, "-c", cmd], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=120)
        else:
            p = subprocess.run([sys.executable, "-m", "shm_redirect", "clean"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=120)
        result("ctx_crash_" + how, rc=p.returncode, err=p.stderr[-2000:], out=p.stdout[-2000:],
               seconds=round(time.monotonic() - t0, 3), t_journal=dead["t_journal"],
               registered=len(dead["names"]), dead_files=len(dead_files),
               dead_journal=[f for f in after_kill if f.startswith(dj)],
               left_dead=sorted(dead_files & set(ls())), live_missing=sorted(live_files - set(ls())),
               live_journal_kept=all(j in ls() for j in live_journal))


def scenario_tracker_killed_alone(live):
    # (2e) only the tracker is SIGKILLed, its tree lives on: `clean` keeps all of the tree's
    # objects (its root lives) and the dead journal; once the tree is dead too, `clean` removes all.
    orphan = start_tree("orph", 1)
    os.kill(orphan["tracker"], signal.SIGKILL)
    wait_for(lambda: not alive(orphan["tracker"]), 10)
    clean = [sys.executable, "-m", "shm_redirect", "clean"]
    p1 = subprocess.run(clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    files = files_of(orphan["names"])
    held = {f for f in files if f.endswith("_held")}
    oj = [f for f in ls() if f.startswith(".tracker.%d." % orphan["tracker"])]
    left1 = files & set(ls())
    kill_tree(orphan)
    p2 = subprocess.run(clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    result("tracker_killed_alone", rc=[p1.returncode, p2.returncode], held=sorted(held),
           left_while_alive=sorted(left1), journal_while_alive=oj,
           left_after=sorted((files & set(ls())) | {f for f in ls() if f in oj}), out=p1.stdout[-2000:])


def scenario_pid_reused(live):
    # (2f) a SIGKILLed tree whose tracker's pid then goes to an unrelated live process (the
    # sandbox's PID namespace reuses PIDs): the journal's start time tells the two apart, so a
    # new tracker still recovers the dead tree's objects.
    fork_until(lambda pid: pid >= 300, 5000)     # pids under 300 are never reused after a wrap
    dead = start_tree("reuse", 1)
    dead_files = files_of(dead["names"])
    kill_tree(dead)
    dj = ".tracker.%d." % dead["tracker"]
    journal_before = [f for f in ls() if f.startswith(dj)]
    r, w = os.pipe()
    imposter, nforks = fork_until(lambda pid: pid == dead["tracker"], 100000, hold=(r, w))
    try:
        recover = ("import os, sys, time; from shm_redirect.mp import resource_tracker as r; "
                   "r.ensure_running(); t = time.monotonic(); "
                   "d, dj = sys.argv[1], sys.argv[2]\n"
                   "while any(f.startswith(dj) for f in os.listdir(d)) and time.monotonic() - t < 30: "
                   "time.sleep(0.02)\n"
                   "r._resource_tracker._stop()")
        t0 = time.monotonic()
        if imposter is not None:
            subprocess.run([sys.executable, "-c", recover, store_dir(), dj], timeout=120, check=True)
        result("pid_reused", imposter=imposter, forks=nforks, imposter_alive=imposter is not None and alive(imposter),
               journal_before=journal_before, objects_before=len(dead_files),
               seconds=round(time.monotonic() - t0, 3),
               left=sorted((dead_files & set(ls())) | {f for f in ls() if f.startswith(dj)}))
    finally:
        os.close(w)
        os.close(r)
        if imposter is not None:
            os.waitpid(imposter, 0)


def scenario_live_end(live):
    # (3, end) the live tree ends normally: its tracker cleans its objects; ours too
    live_files = live["files"]
    live["proc"].stdin.close()
    live["proc"].wait(30)
    t_live = wait_for(lambda: not alive(live["tracker"]) and not (live_files & set(ls())), 20)
    resource_tracker._resource_tracker._stop()
    result("live_end", seconds=t_live, left=ls())


def scenario_untracked_sweep(live):
    # (5) never journaled (not registered: track=False, or a tree whose tracker never ran): only
    # the sweep at tracker start removes it, once unheld and older than the grace.
    addr = clib.sem_open("/mp-untracked", O_NEW, 0o600, 1)
    clib.sem_close(addr)
    time.sleep(1.2)
    start_stop = ("from shm_redirect.mp import resource_tracker as r; r.ensure_running(); "
                  "r._resource_tracker._stop()")
    env = dict(os.environ)
    subprocess.run([sys.executable, "-c", start_stop], env=env, timeout=120, check=True)
    kept_default = "sem.mp-untracked" in ls()
    env["SHM_REDIRECT_TRACKER_GRACE"] = "1"
    subprocess.run([sys.executable, "-c", start_stop], env=env, timeout=120, check=True)
    result("untracked_sweep", kept_with_default_grace=kept_default, left=ls())

def start_live_tree():
    """(3) a live tree, alive through every crash scenario: nothing of it may be removed."""
    live = start_tree("live")
    live["files"] = files_of(live["names"])
    live["journal"] = [j for j in journals() if j.startswith(".tracker.%d." % live["tracker"])]
    return live


def scenarios():
    clib.load()
    scenario_normal_exit(None)
    live = start_live_tree()
    for scenario in (scenario_crash_new_tracker, scenario_crash_cli_clean, scenario_ctx_crash,
                     scenario_tracker_killed_alone, scenario_pid_reused, scenario_live_end,
                     scenario_untracked_sweep):
        scenario(live)


def _fork_child(i):
    """One fork cycle's child: its exit code (4: an exception, 5: the Go core looked usable)."""
    try:
        import shm_redirect as s
        from shm_redirect.mp import resource_tracker as rt
        from shm_redirect.store import gocore
        s.preload_path()
        rt.register("/mp-fork%d" % i, "semaphore")
        rt.unregister("/mp-fork%d" % i, "semaphore")
        if i % 100 == 0:
            if gocore.inprocess_safe():
                return 5
            s.list_objects()
        return 0
    except BaseException:
        import traceback
        traceback.print_exc()
        return 4


def _kill_hung(running, watchdog):
    """SIGKILL and reap the children running for more than watchdog seconds; how many."""
    now, killed = time.monotonic(), 0
    for p, (k, ts) in list(running.items()):
        if now - ts > watchdog:
            os.kill(p, signal.SIGKILL)
            os.waitpid(p, 0)
            del running[p]
            killed += 1
            sys.stderr.write("hang: cycle %d\n" % k)
    return killed


def forks(n, par, watchdog):
    """n fork cycles, par children at a time; each child imports shm_redirect, asks for
    preload_path(), registers/unregisters with the tracker and, every 100th cycle, lists the store
    through the Go gateway (out of process, since this parent loaded the Go core). A child that
    has not exited within watchdog seconds is a hang: SIGKILLed and counted."""
    import threading
    import shm_redirect
    from shm_redirect.store import gocore as _gocore
    shm_redirect.list_objects()                  # the Go core is loaded here, in-process
    assert _gocore.core_loaded() and _gocore.inprocess_safe()
    resource_tracker.ensure_running()
    stop = threading.Event()

    def hammer():                                # holds the client lock often, across forks
        i = 0
        while not stop.is_set():
            resource_tracker.register("/mp-hammer%d" % i, "noop")
            resource_tracker.unregister("/mp-hammer%d" % i, "noop")
            i += 1
    th = threading.Thread(target=hammer, daemon=True)
    th.start()
    running, hangs, fails, done, go_calls = {}, 0, 0, 0, 0
    t0 = time.monotonic()
    i = 0
    while done < n:
        while i < n and len(running) < par:
            pid = os.fork()
            if pid == 0:
                os._exit(_fork_child(i))
            running[pid] = (i, time.monotonic())
            if i % 100 == 0:
                go_calls += 1
            i += 1
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            killed = _kill_hung(running, watchdog)
            hangs += killed
            done += killed
            time.sleep(0.0005)
            continue
        if pid in running:
            del running[pid]
            done += 1
            if os.waitstatus_to_exitcode(status) != 0:
                fails += 1
    stop.set()
    th.join()
    elapsed = time.monotonic() - t0
    resource_tracker._resource_tracker._stop()
    result("forks", cycles=n, hangs=hangs, fails=fails, go_calls=go_calls,
           seconds=round(elapsed, 2), left=[f for f in ls() if "fork" in f])


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "leak":
        role_leak()
    elif role == "tree":
        role_tree(sys.argv[2], int(sys.argv[3]))
    elif role == "ctxtree":
        role_ctxtree(sys.argv[2], int(sys.argv[3]))
    elif role == "scenarios":
        scenarios()
    elif role == "forks":
        forks(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("unknown role %r" % role)
