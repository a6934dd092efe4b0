"""numpy on shared memory, for tests/arm64/run.sh (arm64 root, no /dev/shm, the arm64 preload).

    python3 tests/arm64/numpy_shm.py METHOD[,METHOD...]

Per start method: a SharedMemory-backed float64 array filled by a Pool of 2 (each worker
attaches by name and writes its rows), and an mp.Array('d') viewed with np.frombuffer, updated
under its lock by 2 processes. Prints `RESULT <method> <check> ok|error ...` like smoke_mp.py.
"""
import multiprocessing as mp
import sys
import traceback
from multiprocessing import shared_memory

import numpy as np

ROWS, COLS = 64, 1024


def fill_rows(args):
    name, lo, hi = args
    shm = shared_memory.SharedMemory(name=name)
    try:
        a = np.ndarray((ROWS, COLS), dtype=np.float64, buffer=shm.buf)
        for r in range(lo, hi):
            a[r, :] = np.arange(COLS, dtype=np.float64) * r
        del a
    finally:
        shm.close()
    return hi - lo


def check_shm_pool(ctx):
    shm = shared_memory.SharedMemory(create=True, size=ROWS * COLS * 8)
    try:
        with ctx.Pool(2) as pool:
            done = pool.map(fill_rows, [(shm.name, i, i + 16) for i in range(0, ROWS, 16)])
        assert sum(done) == ROWS, done
        a = np.ndarray((ROWS, COLS), dtype=np.float64, buffer=shm.buf)
        want = np.outer(np.arange(ROWS), np.arange(COLS)).astype(np.float64)
        assert np.array_equal(a, want), float(np.abs(a - want).max())
        del a
    finally:
        shm.close()
        shm.unlink()


def add_under_lock(arr, k):
    for _ in range(20):
        with arr.get_lock():
            v = np.frombuffer(arr.get_obj(), dtype=np.float64)
            v += k


def check_array(ctx):
    arr = ctx.Array('d', 256)
    procs = [ctx.Process(target=add_under_lock, args=(arr, k)) for k in (1.0, 2.0)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, p.exitcode
    v = np.frombuffer(arr.get_obj(), dtype=np.float64)
    assert np.all(v == 60.0), v[:4]


def main():
    for method in sys.argv[1].split(','):
        ctx = mp.get_context(method)
        for name, fn in (('numpy_shared_memory_pool', check_shm_pool), ('numpy_Array', check_array)):
            try:
                fn(ctx)
                line = 'ok'
            except BaseException as e:  # noqa: B902
                line = 'error %s: %s' % (type(e).__name__, str(e).replace('\n', ' ')[:200])
                traceback.print_exc()
            print('RESULT %s %s %s' % (method, name, line), flush=True)


if __name__ == '__main__':
    main()
