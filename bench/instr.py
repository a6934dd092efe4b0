"""Instructions per Lock acquire+release, counted by valgrind --tool=callgrind, for bench/run.py.

A ~50 ns operation is within this VM's timing noise; an instruction count is exact. Each
(configuration, start method) runs bench/workloads.py's lockloop twice under callgrind, with
0 and N acquire+release pairs (PYTHONHASHSEED fixed so both runs start alike); the difference
over N is what one pair costs: the interpreter's loop, CPython's SemLock methods and glibc's
sem_trywait/sem_getvalue/sem_post on the sem_t, wherever it is mapped. act-preload is left
out: after its re-exec it is the preload configuration (and valgrind would not follow the exec).
"""
import concurrent.futures
import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = ("native", "preload", "patch", "context")
METHODS = ("fork", "spawn")


def available():
    return shutil.which("valgrind") is not None


def collected(argv, env):
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        raise RuntimeError("callgrind run failed (%d): %s\n%s" % (p.returncode, argv, p.stderr[-2000:]))
    return int(m.group(1))


def lock_instructions(config_argv, py, env, n, methods=METHODS):
    """{"fork": {config: instructions per pair}, ...}; two runs at a time (2 cores): counts do
    not depend on timing."""
    def job(config, method, k):
        argv = config_argv(config) + [
            "--env", "BENCH_LOCK_N=%d" % k, "--env", "PYTHONHASHSEED=0", "--",
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            py, os.path.join(HERE, "workloads.py"), config, "lockloop-" + method]
        return collected(argv, env)

    keys = [(c, m, k) for c in CONFIGS for m in methods for k in (0, n)]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        counts = dict(zip(keys, ex.map(lambda key: job(*key), keys)))
    return {m: {c: (counts[c, m, n] - counts[c, m, 0]) / n for c in CONFIGS} for m in methods}
