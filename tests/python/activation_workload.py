"""Workload for tests/python/test_activate.py, run inside tests/sandbox.sh.

    python activation_workload.py METHOD[,METHOD...]

Prints "STATE <activate() outcome> ctypes=<bool> preload=<bool>" for this process, then for each
start method and primitive a line "RESULT <method> <check> ok|error <msg>". Every check makes a
child (or a pool of them) do real work on the shared object; children report their own
activation state, which must be consistent with the parent's mode.
"""
import concurrent.futures
import multiprocessing as mp
import os
import sys
import traceback
from multiprocessing import shared_memory

TIMEOUT = 60


def state():
    import shm_redirect.activation.activate as a
    pre = os.environ.get("LD_PRELOAD", "")
    return "%s ctypes=%s preload=%s" % (a.state, "ctypes" in sys.modules,
                                        "libshm_redirect" in pre)


def child_lock(lock, q):
    q.put(lock.acquire(timeout=10))
    lock.release()
    q.put(state())


def grandchild(lock, q):
    with lock:
        q.put(("grandchild", state()))


def child_spawns(method, lock, q):
    ctx = mp.get_context(method)
    with lock:   # the grandchild must wait for us
        p = ctx.Process(target=grandchild, args=(lock, q))
        p.start()
        q.put("child")
    p.join(TIMEOUT)
    assert p.exitcode == 0, p.exitcode


def child_rlock(rl, q):
    with rl:
        with rl:
            q.put("in")


def child_sem(sem, q):
    sem.acquire()
    q.put("got")


def child_cond(cond, ev, q):
    with cond:
        ev.set()
        ok = cond.wait(timeout=20)
    q.put(ok)


def child_event(ev, q):
    q.put(ev.wait(timeout=20))


def child_barrier(b, q):
    q.put(b.wait(timeout=20) is not None)


def child_put(q):
    q.put(("hello", 42))


def square(x):
    return x * x


def child_value(v):
    for _ in range(200):
        with v.get_lock():
            v.value += 1


def child_array(a):
    with a.get_lock():
        for i in range(len(a)):
            a[i] = a[i] * 2


def child_shm(name):
    shm = shared_memory.SharedMemory(name=name)
    try:
        assert bytes(shm.buf[:5]) == b"hello", bytes(shm.buf[:5])
        shm.buf[:5] = b"HELLO"
    finally:
        shm.close()


def child_sl(sl):
    sl[0] = sl[0] + 1
    sl[1] = "changed"


def pp_work(x):
    return x + 1, state()


def run(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    p.join(TIMEOUT)
    if p.exitcode != 0:
        if p.is_alive():
            p.kill()
        raise RuntimeError("child exit code %r" % p.exitcode)


def check_lock(ctx):
    lock, q = ctx.Lock(), ctx.SimpleQueue()
    run(ctx, child_lock, lock, q)
    assert q.get() is True
    return q.get()


def check_grandchild(ctx):
    """A lock handed to a child and by it to a grandchild (re-pickled by name)."""
    lock, q = ctx.Lock(), ctx.SimpleQueue()
    run(ctx, child_spawns, ctx.get_start_method(), lock, q)
    assert q.get() == "child"
    who, st = q.get()
    assert who == "grandchild"
    assert lock.acquire(timeout=5)
    lock.release()
    return st


def check_rlock(ctx):
    rl, q = ctx.RLock(), ctx.SimpleQueue()
    with rl:
        p = ctx.Process(target=child_rlock, args=(rl, q))
        p.start()
    p.join(TIMEOUT)
    assert q.get() == "in"


def check_semaphore(ctx):
    sem, q = ctx.Semaphore(2), ctx.SimpleQueue()
    for _ in range(2):
        run(ctx, child_sem, sem, q)
    assert [q.get(), q.get()] == ["got", "got"]
    assert not sem.acquire(timeout=0.1)


def check_condition(ctx):
    cond, ev, q = ctx.Condition(), ctx.Event(), ctx.SimpleQueue()
    p = ctx.Process(target=child_cond, args=(cond, ev, q))
    p.start()
    assert ev.wait(20)
    with cond:
        cond.notify()
    p.join(TIMEOUT)
    assert q.get() is True


def check_event(ctx):
    ev, q = ctx.Event(), ctx.SimpleQueue()
    p = ctx.Process(target=child_event, args=(ev, q))
    p.start()
    ev.set()
    p.join(TIMEOUT)
    assert q.get() is True


def check_barrier(ctx):
    b, q = ctx.Barrier(3), ctx.SimpleQueue()
    ps = [ctx.Process(target=child_barrier, args=(b, q)) for _ in range(2)]
    for p in ps:
        p.start()
    b.wait(timeout=20)
    for p in ps:
        p.join(TIMEOUT)
    assert [q.get(), q.get()] == [True, True]


def check_queue(ctx):
    q = ctx.Queue()
    run(ctx, child_put, q)
    assert q.get(timeout=20) == ("hello", 42)


def check_pool(ctx):
    with ctx.Pool(2) as pool:
        assert pool.map(square, range(20)) == [x * x for x in range(20)]


def check_value(ctx):
    v = ctx.Value("i", 0)
    ps = [ctx.Process(target=child_value, args=(v,)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(TIMEOUT)
    assert v.value == 400, v.value


def check_array(ctx):
    a = ctx.Array("i", range(10))
    run(ctx, child_array, a)
    assert list(a) == [2 * i for i in range(10)]


def check_sharedmemory(ctx):
    shm = shared_memory.SharedMemory(create=True, size=4096)
    try:
        shm.buf[:5] = b"hello"
        run(ctx, child_shm, shm.name)
        assert bytes(shm.buf[:5]) == b"HELLO"
    finally:
        shm.close()
        shm.unlink()


def check_shareablelist(ctx):
    sl = shared_memory.ShareableList([1, "value", 2.5])
    try:
        run(ctx, child_sl, sl)
        assert sl[0] == 2 and sl[1] == "changed", list(sl)
    finally:
        sl.shm.close()
        sl.shm.unlink()


def check_processpool(ctx):
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        res = list(ex.map(pp_work, range(4)))
    assert [r[0] for r in res] == [1, 2, 3, 4]
    return res[0][1]


CHECKS = [(n[6:], f) for n, f in sorted(globals().items()) if n.startswith("check_")]


def main():
    print("STATE", state(), flush=True)
    for method in sys.argv[1].split(","):
        ctx = mp.get_context(method)
        for name, fn in CHECKS:
            try:
                extra = fn(ctx)
                print("RESULT %s %s ok%s" % (method, name, " child: " + extra if extra else ""),
                      flush=True)
            except Exception as e:
                print("RESULT %s %s error %s: %s" % (method, name, type(e).__name__, e), flush=True)
                traceback.print_exc()


if __name__ == "__main__":
    main()
