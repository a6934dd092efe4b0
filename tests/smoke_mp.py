"""Smoke workload for tests/sandbox_smoke.sh: the multiprocessing primitives a Lambda user hits.

    /usr/bin/python3 tests/smoke_mp.py METHOD[,METHOD...]

For each start method, runs each check (Lock, Queue, Pool, Value, Array, shared_memory) with a
child process doing real work on the shared object, and prints one line per check:
    RESULT <method> <check> ok
    RESULT <method> <check> error <ExceptionType>: <message>
The caller decides what is expected (errors without the preload, ok with it). Exit status 0.
"""
import multiprocessing as mp
import signal
import sys
import traceback
from multiprocessing import shared_memory

TIMEOUT = 60  # per check; a hang is reported as an error, not waited on forever


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang('no result within %d s' % TIMEOUT)


def child_lock(lock, q):
    q.put(lock.acquire(timeout=10))
    lock.release()


def child_put(q):
    q.put(('hello', 42))


def square(x):
    return x * x


def child_value(v):
    for _ in range(100):
        with v.get_lock():
            v.value += 1


def child_array(a):
    with a.get_lock():
        for i in range(len(a)):
            a[i] = a[i] * 2


def child_shm(name):
    shm = shared_memory.SharedMemory(name=name)
    try:
        assert bytes(shm.buf[:5]) == b'hello', bytes(shm.buf[:5])
        shm.buf[:5] = b'HELLO'
    finally:
        shm.close()


def run_child(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    p.join(30)
    if p.exitcode != 0:
        if p.is_alive():
            p.kill()
        raise RuntimeError('child exit code %r' % p.exitcode)


def check_lock(ctx):
    lock = ctx.Lock()
    q = ctx.SimpleQueue()
    run_child(ctx, child_lock, lock, q)
    assert q.get() is True


def check_queue(ctx):
    q = ctx.Queue()
    run_child(ctx, child_put, q)
    assert q.get(timeout=10) == ('hello', 42)
    q.close()
    q.join_thread()


def check_pool(ctx):
    with ctx.Pool(2) as pool:
        assert pool.map(square, range(20)) == [x * x for x in range(20)]


def check_value(ctx):
    v = ctx.Value('i', 0)
    procs = [ctx.Process(target=child_value, args=(v,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0, p.exitcode
    assert v.value == 200, v.value


def check_array(ctx):
    a = ctx.Array('d', [1.0, 2.0, 3.0])
    run_child(ctx, child_array, a)
    assert list(a) == [2.0, 4.0, 6.0], list(a)


def check_shared_memory(ctx):
    shm = shared_memory.SharedMemory(create=True, size=4096)
    try:
        shm.buf[:5] = b'hello'
        run_child(ctx, child_shm, shm.name)
        assert bytes(shm.buf[:5]) == b'HELLO'
    finally:
        shm.close()
        shm.unlink()


CHECKS = [('Lock', check_lock), ('Queue', check_queue), ('Pool', check_pool),
          ('Value', check_value), ('Array', check_array), ('shared_memory', check_shared_memory)]


def main():
    signal.signal(signal.SIGALRM, _alarm)
    for method in sys.argv[1].split(','):
        ctx = mp.get_context(method)
        for name, fn in CHECKS:
            signal.alarm(TIMEOUT)
            try:
                fn(ctx)
                line = 'ok'
            except BaseException as e:  # noqa: B902 - report everything, even a Hang
                line = 'error %s: %s' % (type(e).__name__, str(e).replace('\n', ' ')[:200])
                if not isinstance(e, OSError):
                    traceback.print_exc()
            finally:
                signal.alarm(0)
            print('RESULT %s %s %s' % (method, name, line), flush=True)


if __name__ == '__main__':
    main()
