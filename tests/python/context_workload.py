"""Workload for test_context.py: `context_workload.py CASE METHOD` exercises one primitive of
shm_redirect.get_context(METHOD) across real processes and prints "OK CASE METHOD".

Run with PYTHONPATH=<repo>/pybind, SHM_REDIRECT=off, no LD_PRELOAD (inside tests/sandbox.sh
--devshm=none): nothing but the context itself may make it work."""
import os
import sys

import multiprocessing
import shm_redirect

T = 30   # generous timeouts: a failure must not hang


def check_untouched():
    """The context must not patch anything global."""
    import _multiprocessing
    import _posixshmem
    import multiprocessing.synchronize as mps
    import multiprocessing.heap as mph
    assert type(_multiprocessing.SemLock) is type and _multiprocessing.SemLock.__module__ == "_multiprocessing"
    assert not getattr(_multiprocessing.SemLock, "_shmr_patched", False)
    assert mps.SemLock.__module__ == "multiprocessing.synchronize"
    assert mps.sem_unlink is _multiprocessing.sem_unlink
    assert type(_posixshmem.shm_open).__name__ == "builtin_function_or_method"
    assert mph.Arena._dir_candidates == (["/dev/shm"] if sys.platform == "linux" else [])
    assert "LD_PRELOAD" not in os.environ


def run(p):
    p.start()
    p.join(T)
    assert p.exitcode == 0, p.exitcode


# ---- children (module level: picklable for spawn/forkserver) ----

def c_lock(lock, val):
    for _ in range(50):
        with lock:
            val.value += 1


def c_rlock(rlock, val):
    with rlock:
        with rlock:
            val.value += 1


def c_sem(sem, done):
    sem.acquire(timeout=T)
    done.release()


def c_bsem(bsem, q):
    bsem.acquire(timeout=T)
    bsem.release()
    try:
        bsem.release()
    except ValueError:
        q.put("bounded")
    else:
        q.put("unbounded")


def c_cond(cond, val):
    with cond:
        val.value = 1
        cond.notify_all()


def c_event(ev, ev2):
    assert ev.wait(T)
    ev2.set()


def c_barrier(bar, val):
    bar.wait(T)
    with val.get_lock():
        val.value += 1


def c_queue(q, out):
    out.put(q.get(timeout=T) * 2)


def c_jqueue(q):
    item = q.get(timeout=T)
    assert item == "work"
    q.task_done()


def c_simplequeue(q, out):
    out.put(q.get() + 1)


def sq(x):
    return x * x


def c_process(val, arr, raw, rawarr):
    val.value = 5
    arr[1] = 6
    raw.value = 7
    rawarr[2] = 8


def c_shm(shm_name, size):
    from shm_redirect.mp.shared_memory import SharedMemory
    s = SharedMemory(shm_name)
    assert s.size >= size
    s.buf[0] = 42
    s.close()


def c_shm_obj(shm):
    shm.buf[1] = 43
    shm.close()


def c_sl(sl):
    sl[0] = sl[0] + 1
    sl[1] = "child"
    sl.shm.close()


def c_manager(d, lst, lock):
    with lock:
        d["child"] = os.getpid()
        lst.append(1)


def c_grandchild(lock, val, method):
    ctx = shm_redirect.get_context(method)
    p = ctx.Process(target=c_lock, args=(lock, val))
    run(p)


# ---- cases ----

def case_Lock(ctx, m):
    lock, val = ctx.Lock(), ctx.Value("i", 0, lock=False)
    ps = [ctx.Process(target=c_lock, args=(lock, val)) for _ in range(3)]
    for p in ps:
        p.start()
    c_lock(lock, val)
    for p in ps:
        p.join(T)
        assert p.exitcode == 0
    assert val.value == 200, val.value
    assert lock.acquire(timeout=1) and not lock.acquire(False)
    lock.release()


def case_RLock(ctx, m):
    rlock, val = ctx.RLock(), ctx.Value("i", 0, lock=False)
    run(ctx.Process(target=c_rlock, args=(rlock, val)))
    assert val.value == 1


def case_Semaphore(ctx, m):
    sem, done = ctx.Semaphore(0), ctx.Semaphore(0)
    p = ctx.Process(target=c_sem, args=(sem, done))
    p.start()
    sem.release()
    assert done.acquire(timeout=T)
    p.join(T)
    assert p.exitcode == 0 and sem.get_value() == 0


def case_BoundedSemaphore(ctx, m):
    bsem, q = ctx.BoundedSemaphore(1), ctx.Queue()
    run(ctx.Process(target=c_bsem, args=(bsem, q)))
    assert q.get(timeout=T) == "bounded"


def case_Condition(ctx, m):
    cond, val = ctx.Condition(), ctx.Value("i", 0, lock=False)
    with cond:
        p = ctx.Process(target=c_cond, args=(cond, val))
        p.start()
        assert cond.wait_for(lambda: val.value == 1, timeout=T)
    p.join(T)
    assert p.exitcode == 0


def case_Event(ctx, m):
    ev, ev2 = ctx.Event(), ctx.Event()
    p = ctx.Process(target=c_event, args=(ev, ev2))
    p.start()
    ev.set()
    assert ev2.wait(T)
    p.join(T)
    assert p.exitcode == 0


def case_Barrier(ctx, m):
    bar, val = ctx.Barrier(3), ctx.Value("i", 0)
    ps = [ctx.Process(target=c_barrier, args=(bar, val)) for _ in range(2)]
    for p in ps:
        p.start()
    bar.wait(T)
    for p in ps:
        p.join(T)
        assert p.exitcode == 0
    assert val.value == 2


def case_Queue(ctx, m):
    q, out = ctx.Queue(), ctx.Queue(maxsize=2)
    p = ctx.Process(target=c_queue, args=(q, out))
    p.start()
    q.put(21)
    assert out.get(timeout=T) == 42
    p.join(T)
    assert p.exitcode == 0


def case_JoinableQueue(ctx, m):
    q = ctx.JoinableQueue()
    p = ctx.Process(target=c_jqueue, args=(q,))
    p.start()
    q.put("work")
    q.join()
    p.join(T)
    assert p.exitcode == 0


def case_SimpleQueue(ctx, m):
    q, out = ctx.SimpleQueue(), ctx.SimpleQueue()
    p = ctx.Process(target=c_simplequeue, args=(q, out))
    p.start()
    q.put(1)
    assert out.get() == 2
    p.join(T)
    assert p.exitcode == 0


def case_Pool(ctx, m):
    with ctx.Pool(2) as pool:
        assert pool.map(sq, range(10)) == [x * x for x in range(10)]
        assert pool.apply_async(sq, (7,)).get(T) == 49


def case_Process(ctx, m):
    p = ctx.Process(target=sq, args=(3,))
    run(p)
    assert p.exitcode == 0


def case_ProcessPoolExecutor(ctx, m):
    import concurrent.futures as cf
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        # As with CPython's fork context: all workers forked up front, none on demand while
        # the executor's threads run.
        assert ex._safe_to_dynamically_spawn_children == (m != "fork")
        assert list(ex.map(sq, range(6))) == [x * x for x in range(6)]
        assert ex.submit(sq, 9).result(T) == 81


def case_Value(ctx, m):
    val, arr = ctx.Value("i", 0), ctx.Array("i", 3)
    raw, rawarr = ctx.RawValue("i", 0), ctx.RawArray("i", 3)
    run(ctx.Process(target=c_process, args=(val, arr, raw, rawarr)))
    assert (val.value, arr[1], raw.value, rawarr[2]) == (5, 6, 7, 8)
    with val.get_lock():
        pass
    d = ctx.Value("d", 1.5)
    assert d.value == 1.5


def case_Array(ctx, m):
    arr = ctx.Array("c", b"hello")
    assert arr.value == b"hello"
    raw = ctx.RawArray("d", [1.0, 2.0])
    assert list(raw) == [1.0, 2.0]
    big = ctx.RawArray("b", 1 << 21)   # a second arena
    big[-1] = 3
    assert big[-1] == 3
    val, a = ctx.Value("i", 0), ctx.Array("i", 3, lock=ctx.Lock())
    rv = ctx.RawValue("i", 0)
    run(ctx.Process(target=c_process, args=(val, a, rv, ctx.RawArray("i", 3))))
    assert a[1] == 6 and rv.value == 7


def case_SharedMemory(ctx, m):
    from shm_redirect.mp.shared_memory import SharedMemory
    s = SharedMemory(create=True, size=4096)
    try:
        run(ctx.Process(target=c_shm, args=(s.name, 4096)))
        assert s.buf[0] == 42
        run(ctx.Process(target=c_shm_obj, args=(s,)))
        assert s.buf[1] == 43
        t = SharedMemory(create=True, size=10, track=False)
        t.close()
        t.unlink()
    finally:
        s.close()
        s.unlink()


def case_ShareableList(ctx, m):
    from shm_redirect.mp.shared_memory import ShareableList
    sl = ShareableList([1, "parent", 2.5])
    try:
        run(ctx.Process(target=c_sl, args=(sl,)))
        assert list(sl) == [2, "child", 2.5]
    finally:
        sl.shm.close()
        sl.shm.unlink()


def case_SharedMemoryManager(ctx, m):
    from shm_redirect.mp.shared_memory import SharedMemoryManager
    with SharedMemoryManager(ctx=ctx) as smm:
        s = smm.SharedMemory(128)
        sl = smm.ShareableList([10, "x"])
        run(ctx.Process(target=c_shm_obj, args=(s,)))
        assert s.buf[1] == 43
        run(ctx.Process(target=c_sl, args=(sl,)))
        assert sl[0] == 11
        s.close()
        sl.shm.close()
    with ctx.SharedMemoryManager() as smm:
        smm.SharedMemory(16).close()


def case_Manager(ctx, m):
    with ctx.Manager() as mgr:
        d, lst, lock = mgr.dict(), mgr.list(), mgr.Lock()
        run(ctx.Process(target=c_manager, args=(d, lst, lock)))
        assert "child" in d and list(lst) == [1]
        q = mgr.Queue()
        q.put(1)
        assert q.get() == 1


def case_registered(ctx, m):
    # multiprocessing.get_context('shm_redirect_<m>') finds ours; set_start_method too
    ctx2 = multiprocessing.get_context("shm_redirect_" + m)
    assert ctx2 is ctx, (ctx2, ctx)
    multiprocessing.set_start_method("shm_redirect_" + m, force=True)
    assert multiprocessing.get_start_method() == "shm_redirect_" + m
    # The default context then resolves to ours (its module-level factories such as
    # multiprocessing.Lock stay CPython's: DefaultContext's own methods, not patched).
    dctx = multiprocessing.get_context()
    assert dctx is ctx
    lock, val = dctx.Lock(), dctx.Value("i", 0)
    p = multiprocessing.Process(target=c_lock, args=(lock, val))   # a plain Process: default ctx
    run(p)
    assert val.value == 50
    case_Pool(dctx, m)


def case_grandchild(ctx, m):
    lock, val = ctx.Lock(), ctx.Value("i", 0)
    run(ctx.Process(target=c_grandchild, args=(lock, val, m)))
    assert val.value == 50


def case_passthrough(ctx, m):
    """Run with a working /dev/shm: the C library passes through to glibc, so the objects are
    glibc's files in /dev/shm, never the store's (/tmp/shm), and still work across processes."""
    from shm_redirect.mp.shared_memory import SharedMemory
    store = "/tmp/shm"
    s = SharedMemory(create=True, size=4096)
    lock = ctx.Lock()
    try:
        assert os.path.exists("/dev/shm/" + s.name.lstrip("/")), os.listdir("/dev/shm")
        name = lock._semlock.name
        # fork: CPython unlinks a fork context's semaphore at once (anonymous from then on).
        if m != "fork":
            assert os.path.exists("/dev/shm/sem." + name.lstrip("/")), (name, os.listdir("/dev/shm"))
        assert not os.path.exists(store) or os.listdir(store) == [], os.listdir(store)
        run(ctx.Process(target=c_shm, args=(s.name, 4096)))
        assert s.buf[0] == 42
        case_Lock(ctx, m)
    finally:
        s.close()
        s.unlink()
    assert not os.path.exists("/dev/shm/" + s.name.lstrip("/"))


def case_default(ctx, m):
    d = shm_redirect.get_context()
    plat = multiprocessing.context._default_context._default_context._name
    assert d.get_start_method() == plat and d._name == "shm_redirect_" + plat
    case_Lock(d, plat)


def main():
    case, m = sys.argv[1], sys.argv[2]
    from shm_redirect import get_context
    ctx = get_context(m)
    assert ctx.get_start_method() == m and ctx._name == "shm_redirect_" + m
    globals()["case_" + case](ctx, m)
    check_untouched()
    print("OK", case, m, flush=True)


if __name__ == "__main__":
    main()
