#!/usr/bin/env python3
"""Process start-up cost of the preload: `/bin/true` (and `python3 -c pass`) with and without
LD_PRELOAD, interleaved run by run so machine noise hits both sides alike. Prints medians, the
spread (interquartile range) and the ratio preload/native."""
import argparse
import os
import statistics
import sys
import time


def spawn_ns(argv, env):
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env)
    os.waitpid(pid, 0)
    return time.perf_counter_ns() - t0


def measure(argv, lib, rounds):
    base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    pre = dict(base, LD_PRELOAD=lib)
    native, preload = [], []
    for _ in range(20):  # warm the page cache and the dynamic loader's caches
        spawn_ns(argv, base), spawn_ns(argv, pre)
    for i in range(rounds):
        # alternate which side goes first, so neither always runs on a warmer machine
        pair = [(native, base), (preload, pre)]
        for out, env in pair if i % 2 else reversed(pair):
            out.append(spawn_ns(argv, env))
    return native, preload


def summary(xs):
    q = statistics.quantiles(xs, n=4)
    return statistics.median(xs), q[2] - q[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lib", default=os.path.join(os.path.dirname(__file__), "..", "build", "libshm_redirect.so"))
    ap.add_argument("--rounds", type=int, default=2000)
    args = ap.parse_args()
    lib = os.path.abspath(args.lib)
    print(f"{'program':<22} {'native µs':>10} {'preload µs':>11} {'IQR µs':>14} {'ratio':>6}")
    for argv, rounds in (["/bin/true"], args.rounds), ([sys.executable, "-S", "-c", "pass"], args.rounds // 10):
        nat, pre = measure(argv, lib, rounds)
        (mn, sn), (mp, sp) = summary(nat), summary(pre)
        name = " ".join(os.path.basename(a) for a in argv)
        print(f"{name:<22} {mn/1e3:>10.1f} {mp/1e3:>11.1f} {sn/1e3:>6.1f}/{sp/1e3:<7.1f} {mp/mn:>6.3f}")


if __name__ == "__main__":
    main()
