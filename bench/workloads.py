"""The workloads of `make bench`, run inside one configuration (a tests/sandbox.sh process).

    python workloads.py CONFIG GROUP [--quick]      -> one JSON object on the last stdout line

CONFIG (native, preload, patch, act-preload, context) only decides where contexts come from:
`shm_redirect.get_context` for `context`, `multiprocessing.get_context` otherwise (the preload and
the activation work underneath it). GROUP is one of GROUPS below. bench/run.py starts a fresh
interpreter per (config, group), interleaving configurations round by round.

Times come from time.perf_counter_ns (CLOCK_MONOTONIC: comparable across processes, so a child
can report when it finished). Each metric is one number per run: the median of a few inner
repetitions; run.py takes medians and spreads over rounds.
"""
import itertools
import json
import os
import statistics
import sys
import time

CONFIG = sys.argv[1] if len(sys.argv) > 1 else "native"
QUICK = "--quick" in sys.argv
METHODS = ("fork", "spawn", "forkserver")

# Sizes: full runs are chosen so that one (config, group) run takes about a second; --quick only
# checks that everything works (results are then noise).
# contend: at ~55 ns per uncontended pair, 20,000 pairs (1 ms) often finished before the other
# process was even running (bimodal runs); 200,000 pairs overlap.
N = dict(lock=200_000, lock_reps=7, create=300, shm=100, contend=200_000, queue=2_000,
         value=10_000, pool_tasks=20_000, handoff_mib=100, handoff_reps=3)
if QUICK:
    N.update(lock=50_000, lock_reps=3, create=50, shm=50, contend=2_000, queue=200, value=1_000,
             handoff_reps=1)


def get_context(method):
    if CONFIG == "context":
        import shm_redirect
        return shm_redirect.get_context(method)
    import multiprocessing
    return multiprocessing.get_context(method)


def shared_memory_class(ctx):
    if CONFIG == "context":
        return ctx.SharedMemory
    from multiprocessing import shared_memory
    return shared_memory.SharedMemory


def activation_state():
    """What shm-redirect did to this interpreter, to check that the configuration is what it
    claims (a silently native 'patch' run would make every ratio 1.00)."""
    mod = sys.modules.get("shm_redirect.activation.activate")
    return mod.state if mod else None


def per_op_ns(fn, n, reps):
    """Median over reps of the time per iteration of fn(n) (fn loops n times itself, so the
    timer is read twice per rep, not per operation)."""
    times = []
    for _ in range(reps):
        t = time.perf_counter_ns()
        fn(n)
        times.append((time.perf_counter_ns() - t) / n)
    return statistics.median(times)


def start_tracker(ctx):
    """A named semaphore starts the resource tracker (a fresh interpreter): let it finish its
    start-up, ~50 ms of CPU on one of the two cores, before anything is timed."""
    lock = ctx.Lock()
    if ctx.get_start_method() != "fork":
        time.sleep(0.3)
    return lock


# ------------------------------------------------------------------ in one process
def micro():
    out = {}
    start_tracker(get_context("spawn"))
    for method in METHODS:
        ctx = get_context(method)
        lock = ctx.Lock()

        def acq_rel(n, a=lock.acquire, r=lock.release):
            # repeat(), not range(): range allocates an int per turn, and pymalloc's cost then
            # depends on the heap's state (measured: +16 instructions per turn in patch mode)
            for _ in itertools.repeat(None, n):
                a()
                r()
        acq_rel(10_000)   # warm up (first-touch of the sem_t page, the branch predictors)
        out["lock_ns/" + method] = per_op_ns(acq_rel, N["lock"], N["lock_reps"])

        # fork: unlinked at birth; spawn/forkserver: named, registered with the resource tracker
        # (the tracker process is started by the warm-up, outside the timing).
        def create(n, L=ctx.Lock):
            for _ in range(n):
                L()
        create(20)
        out["semlock_us/" + method] = per_op_ns(create, N["create"], 5) / 1000

    SharedMemory = shared_memory_class(get_context("fork"))
    size = 1 << 20
    touch = bytes(size // 4096)

    def shm_cycle(n):
        for _ in range(n):
            s = SharedMemory(create=True, size=size)
            s.buf[::4096] = touch   # one byte per page: every page faulted in
            s.close()
            s.unlink()
    shm_cycle(10)
    out["shm_us"] = per_op_ns(shm_cycle, N["shm"], 5) / 1000
    return out


# ------------------------------------------------------------------ two processes
def _lock_loop(lock, n):
    a, r = lock.acquire, lock.release
    for _ in itertools.repeat(None, n):   # no int allocated per turn (see micro)
        a()
        r()


def _value_loop(value, n):
    lk = value.get_lock()
    for _ in range(n):
        with lk:
            value.value += 1


def _child_duo(fn, obj, n, ready, go, conn):
    ready.set()
    go.wait()
    fn(obj, n)
    conn.send(time.perf_counter_ns())


def duo_ns(ctx, fn, obj, n):
    """Parent and one child both run fn(obj, n), released together; returns the time from the
    release to the later of the two ends (the child reports its end time: one clock).
    Process start-up is outside the timing."""
    ready, go = ctx.Event(), ctx.Event()
    rx, tx = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child_duo, args=(fn, obj, n, ready, go, tx))
    p.start()
    ready.wait()
    t0 = time.perf_counter_ns()
    go.set()
    fn(obj, n)
    t_parent = time.perf_counter_ns()
    t_child = rx.recv()
    p.join()
    return max(t_parent, t_child) - t0


def _echo(q_in, q_out):
    for item in iter(q_in.get, None):
        q_out.put(item)


def _square(x):
    return x * x


def procs(method):
    ctx = get_context(method)
    out = {}
    lock = start_tracker(ctx)
    n = N["contend"]
    out["lock2_ns/" + method] = statistics.median(duo_ns(ctx, _lock_loop, lock, n) / (2 * n)
                                                  for _ in range(3))
    v = ctx.Value("i", 0)
    n = N["value"]
    out["value_us/" + method] = statistics.median(duo_ns(ctx, _value_loop, v, n) / (2 * n) / 1000
                                                  for _ in range(3))
    assert v.value == 3 * 2 * n, v.value

    q_in, q_out = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=_echo, args=(q_in, q_out))
    p.start()

    def trips(n):
        for i in range(n):
            q_in.put(i)
            q_out.get()
    trips(50)   # the child is up and both feeder threads are running
    out["queue_us/" + method] = per_op_ns(trips, N["queue"], 3) / 1000
    q_in.put(None)
    p.join()

    # Pool(2).map of small tasks, start-up and clean shut-down included: what a user waits for.
    t = time.perf_counter_ns()
    pool = ctx.Pool(2)
    res = pool.map(_square, range(N["pool_tasks"]))
    pool.close()
    pool.join()
    out["pool_ms/" + method] = (time.perf_counter_ns() - t) / 1e6
    assert res[-1] == (N["pool_tasks"] - 1) ** 2
    return out


# ------------------------------------------------------------------ 100 MiB to a child
def _receiver(cmds, replies):
    """Sum one element per page (touches every page the child sees) of what it is sent."""
    import numpy as np
    # 3.11 registers attached segments too; harmless here, where the child shares the
    # parent's tracker (a set of names: the parent's unlink unregisters it once). The
    # context's SharedMemory has 3.13's track=False for this.
    from multiprocessing import shared_memory
    if CONFIG == "context":
        import shm_redirect
        SharedMemory = shm_redirect.get_context("fork").SharedMemory
        attach = lambda name: SharedMemory(name=name, track=False)
    else:
        attach = lambda name: shared_memory.SharedMemory(name=name)
    for kind, payload in iter(cmds.get, None):
        if kind == "shm":
            name, shape, dtype = payload
            s = attach(name)
            a = np.ndarray(shape, dtype, buffer=s.buf)
            replies.put(float(a[::512].sum()))
            del a
            s.close()
        else:
            replies.put(float(payload[::512].sum()))


def handoff():
    """Hand a 100 MiB float64 array to an already running (forked) child, three ways:
    shm_copy: create a segment, copy the array in, send its name; the child attaches;
    shm_ready: the array already lives in a segment (made untimed): only the name travels;
    queue: Queue.put(array): pickled, written through the pipe, unpickled in the child.
    Each ends when the child has read one float per page and answered."""
    import numpy as np
    ctx = get_context("fork")
    SharedMemory = shared_memory_class(ctx)
    src = np.arange(N["handoff_mib"] << 17, dtype=np.float64)   # 2^17 float64 = 1 MiB
    expect = float(src[::512].sum())
    # The first segment starts the resource tracker: before the child exists, so that the child
    # shares it (as in an application), and settled before anything is timed.
    w = SharedMemory(create=True, size=8192)
    time.sleep(0.3)
    cmds, replies = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=_receiver, args=(cmds, replies))
    p.start()
    cmds.put(("shm", (w.name, (1024,), src.dtype.str)))   # warm up both paths
    cmds.put(("arr", src[:1024]))
    replies.get(), replies.get()
    w.close()
    w.unlink()
    res = {"shm_copy": [], "shm_ready": [], "queue": []}
    for _ in range(N["handoff_reps"]):
        t = time.perf_counter_ns()
        s = SharedMemory(create=True, size=src.nbytes)
        np.ndarray(src.shape, src.dtype, buffer=s.buf)[:] = src
        cmds.put(("shm", (s.name, src.shape, src.dtype.str)))
        assert replies.get() == expect
        res["shm_copy"].append(time.perf_counter_ns() - t)
        s.close()
        s.unlink()

        s = SharedMemory(create=True, size=src.nbytes)
        np.ndarray(src.shape, src.dtype, buffer=s.buf)[:] = src
        t = time.perf_counter_ns()
        cmds.put(("shm", (s.name, src.shape, src.dtype.str)))
        assert replies.get() == expect
        res["shm_ready"].append(time.perf_counter_ns() - t)
        s.close()
        s.unlink()

        t = time.perf_counter_ns()
        cmds.put(("arr", src))
        assert replies.get() == expect
        res["queue"].append(time.perf_counter_ns() - t)
    cmds.put(None)
    p.join()
    return {"handoff_%s_ms" % k: statistics.median(v) / 1e6 for k, v in res.items()}


def lockloop(method):
    """For bench/instr.py under callgrind: BENCH_LOCK_N acquire+release pairs and nothing else
    (the difference of two runs' instruction counts is the cost of the loop)."""
    lock = get_context(method).Lock()
    _lock_loop(lock, int(os.environ.get("BENCH_LOCK_N", "0")))
    return {}


GROUPS = {"micro": micro, "handoff": handoff}
GROUPS.update({"lockloop-" + m: (lambda m=m: lockloop(m)) for m in METHODS})
GROUPS.update({"procs-" + m: (lambda m=m: procs(m)) for m in METHODS})

if __name__ == "__main__":
    group = sys.argv[2]
    result = GROUPS[group]()
    result["_state"] = activation_state()
    result["_ld_preload"] = "libshm_redirect" in os.environ.get("LD_PRELOAD", "")
    print(json.dumps(result))
