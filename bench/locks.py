"""Lock acquire/release and SemLock creation: native /dev/shm vs every way of using shm-redirect,
side by side in one run (needs root for tests/sandbox.sh).

    python3 bench/locks.py [--rounds N]

Configurations, each a fresh interpreter in tests/sandbox.sh (same mounts and uid, so only the
/dev/shm situation differs):
  native   --devshm=native, plain multiprocessing
  preload  --devshm=none + LD_PRELOAD
  patch    --devshm=none, SHM_REDIRECT=patch activation (in-process, ctypes)
  context  --devshm=none, SHM_REDIRECT=off, shm_redirect.get_context()
Rounds interleave the configurations (rotating their order); each round reports per-operation
medians of its inner loops; the table shows the median over rounds, the spread (min-max of the
round medians) and the ratio to native.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANDBOX = os.path.join(ROOT, "tests", "sandbox.sh")
LIB = os.path.join(ROOT, "build", "libshm_redirect.so")

# The measurement, run inside each configuration: prints one JSON object.
WORKER = r"""
import json, os, sys, time
mode = sys.argv[1]
if mode == "patch":
    import shm_redirect._activate as a
    assert a.activate() == "patch", a.state
if mode == "context":
    import shm_redirect
    get = shm_redirect.get_context
else:
    import multiprocessing
    get = multiprocessing.get_context

def per_op(fn, n, reps=5):
    best = []
    for _ in range(reps):
        t = time.perf_counter_ns(); fn(n); best.append((time.perf_counter_ns() - t) / n)
    best.sort()
    return best[len(best) // 2]

out = {}
for method in ("fork", "spawn"):
    ctx = get(method)
    lock = ctx.Lock()
    def acq_rel(n, a=lock.acquire, r=lock.release):
        for _ in range(n):
            a(); r()
    out["lock_ns/" + method] = per_op(acq_rel, 200_000)
    def create(n, L=ctx.Lock):
        for _ in range(n):
            L()
    out["create_us/" + method] = per_op(create, 300) / 1000
print(json.dumps(out))
"""

CONFIGS = {
    "native": (["--devshm=native"], {}),
    "preload": (["--devshm=none", "--preload"], {}),
    "patch": (["--devshm=none"], {"SHM_REDIRECT": "patch"}),
    "context": (["--devshm=none"], {"SHM_REDIRECT": "off"}),
}


def run(config):
    opts, env = CONFIGS[config]
    env = dict(env, PYTHONPATH=os.path.join(ROOT, "pybind"))
    argv = [SANDBOX, *opts, "--ro", "--uid=993"]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    argv += ["--", sys.executable, "-c", WORKER, config]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    names = list(CONFIGS)
    results = {c: [] for c in names}
    for i in range(args.rounds):
        for c in names[i % len(names):] + names[:i % len(names)]:
            results[c].append(run(c))
    metrics = list(results["native"][0])
    print(f"{'metric':<16}" + "".join(f"{c:>31}" for c in names))
    for m in metrics:
        base = statistics.median(r[m] for r in results["native"])
        cells = []
        for c in names:
            vals = [r[m] for r in results[c]]
            med = statistics.median(vals)
            cells.append(f"{med:.1f} [{min(vals):.1f}-{max(vals):.1f}] {med / base:.2f}x".rjust(31))
        print(f"{m:<16}" + "".join(cells))
    print("lock_ns: one acquire+release (ns); create_us: one ctx.Lock() made and freed (µs); fork:"
          " unlinked at birth, spawn: named and tracked.\ncells: median [min-max of round medians]"
          " ratio to native")


if __name__ == "__main__":
    main()
