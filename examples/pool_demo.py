"""The demo: a Pool, a Value and a SharedMemory block, the everyday multiprocessing trio that
fails where /dev/shm is missing. Run by `make demo` twice in the no-/dev/shm sandbox: without and
with the preload."""
import multiprocessing as mp
import os
from multiprocessing import shared_memory


def square(x):
    return x * x


def main():
    print(f"  /dev/shm present: {os.path.isdir('/dev/shm')}, LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r}")
    try:
        with mp.Pool(2) as pool:
            total = sum(pool.map(square, range(10_000)))
        counter = mp.Value("i", 0)
        with counter.get_lock():
            counter.value += 1
        shm = shared_memory.SharedMemory(create=True, size=1 << 20)
        shm.buf[:5] = b"hello"
        shm.close()
        shm.unlink()
    except OSError as e:
        print(f"  FAILED: {type(e).__name__}: {e}")
        raise SystemExit(1)
    print(f"  Pool(2).map -> {total}, Value -> {counter.value}, SharedMemory 1 MiB -> ok")


if __name__ == "__main__":
    main()
