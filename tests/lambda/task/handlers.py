"""Lambda handlers that use what breaks without /dev/shm. Each returns something checkable."""
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import shared_memory

READY = "/tmp/hang-ready"


def _square(x):
    return x * x


def _bump(value, n):
    for _ in range(n):
        with value.get_lock():
            value.value += 1


def _echo(q_in, q_out):
    q_out.put(q_in.get() * 2)


def _fill(name, shape):
    import numpy as np
    shm = shared_memory.SharedMemory(name=name)
    a = np.ndarray(shape, dtype=np.float64, buffer=shm.buf)
    a *= 2.0
    del a
    shm.close()


def _store(d, k):
    d[k] = k * k


def _poke(name):
    shm = shared_memory.SharedMemory(name=name)
    shm.buf[:1000] = b"\x07" * 1000
    shm.close()


def pool(event, context):
    with multiprocessing.Pool(2) as p:
        return sum(p.map(_square, range(1000)))


def pool_spawn(event, context):
    with multiprocessing.get_context("spawn").Pool(2) as p:
        return sum(p.map(_square, range(100)))


def pool_forkserver(event, context):
    with multiprocessing.get_context("forkserver").Pool(2) as p:
        return sum(p.map(_square, range(100)))


def manager(event, context):
    with multiprocessing.Manager() as m:
        d = m.dict()
        ps = [multiprocessing.Process(target=_store, args=(d, k)) for k in range(4)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        return sum(d.values())


def queue(event, context):
    q_in, q_out = multiprocessing.Queue(), multiprocessing.Queue()
    p = multiprocessing.Process(target=_echo, args=(q_in, q_out))
    p.start()
    q_in.put(21)
    r = q_out.get(timeout=60)
    p.join()
    return r


def value(event, context):
    v = multiprocessing.Value("i", 0)
    ps = [multiprocessing.Process(target=_bump, args=(v, 500)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return v.value


def executor(event, context):
    with ProcessPoolExecutor(2) as ex:
        return sum(ex.map(_square, range(100)))


def shm_numpy(event, context):
    import numpy as np
    shape = (1000, 1000)
    shm = shared_memory.SharedMemory(create=True, size=8 * 1000 * 1000)
    try:
        a = np.ndarray(shape, dtype=np.float64, buffer=shm.buf)
        a[:] = 1.5
        p = multiprocessing.Process(target=_fill, args=(shm.name, shape))
        p.start()
        p.join()
        total = float(a.sum())
        del a
        return total
    finally:
        shm.close()
        shm.unlink()


def shm_bytes(event, context):
    shm = shared_memory.SharedMemory(create=True, size=1 << 20)
    try:
        p = multiprocessing.Process(target=_poke, args=(shm.name,))
        p.start()
        p.join()
        return sum(shm.buf[:1000])
    finally:
        shm.close()
        shm.unlink()


def hang(event, context):
    """Holds a named semaphore, a segment and a Pool's locks, then never returns: the
    invocation times out and Lambda kills the whole process tree."""
    lock = multiprocessing.get_context("spawn").Lock()
    shm = shared_memory.SharedMemory(create=True, size=1 << 20)
    shm.buf[0] = 1
    p = multiprocessing.Pool(2)
    p.map(_square, range(10))
    with open(READY, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)
    return lock, shm, p
