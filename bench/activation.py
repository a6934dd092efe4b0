"""What activation at interpreter start costs (shm_redirect._activate via shm_redirect.pth).

    python3 bench/activation.py [-n RUNS]        (the sandbox half needs root)

Natively (a working /dev/shm), `python -c pass` is timed with and without the .pth in a user
site dir (same site processing otherwise), runs interleaved, and the hook is also timed
in-process. In tests/sandbox.sh --devshm=none the same start is timed with SHM_REDIRECT=off (the
reference: the hook returns at once, nothing works), patch, preload (the re-exec), and with the
library already preloaded (what every child of an activated process pays). Prints medians.
"""
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYBIND = os.path.join(ROOT, "pybind")
LIB = os.path.join(ROOT, "build", "libshm_redirect.so")
PY = sys.executable
PTH_LINE = "import shm_redirect._activate; shm_redirect._activate.activate()\n"
PKG = PYBIND   # replaced by a byte-compiled copy, as an installed wheel would be
INPROC = ("import time; t = time.perf_counter_ns(); import shm_redirect._activate as a; "
          "a.activate(); print((time.perf_counter_ns() - t) / 1000)")


def userbase(base, with_pth):
    rel = os.path.relpath(sysconfig.get_path("purelib", "posix_user", {"userbase": "/X"}), "/X")
    sp = os.path.join(base, rel)
    os.makedirs(sp)
    if with_pth:
        with open(os.path.join(sp, "shm_redirect.pth"), "w") as f:
            f.write(PKG + "\n" + PTH_LINE)
    return base


def env_for(**kw):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHM_REDIRECT", "PYTHON", "LD_PRELOAD"))}
    env["SHM_REDIRECT_LIB"] = LIB   # the copy has no library of its own
    env.update({k: v for k, v in kw.items() if v is not None})
    return env


def wall(env, argv=("-c", "pass")):
    t = time.perf_counter()
    subprocess.run([PY, *argv], env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1e6


def interleaved(cases, n):
    """{name: [µs]}: each round runs every case once, in rotating order."""
    res = {name: [] for name in cases}
    names = list(cases)
    for _ in range(3):   # warm up the page cache
        for name in names:
            wall(cases[name])
    for i in range(n):
        for name in names[i % len(names):] + names[:i % len(names)]:
            res[name].append(wall(cases[name]))
    return res


def inproc(env, n):
    out = []
    for _ in range(n):
        p = subprocess.run([PY, "-c", INPROC], env=env, capture_output=True, text=True, check=True)
        out.append(float(p.stdout.split()[-1]))
    return statistics.median(out)


def report(title, res, ref, inner=None):
    print("\n" + title)
    m0 = statistics.median(res[ref])
    print("  %-34s %12s %14s %14s" % ("case", "median ms", "vs %s µs" % ref, "in-process µs"))
    for name, xs in res.items():
        m = statistics.median(xs)
        ip = (inner or {}).get(name)
        print("  %-34s %12.2f %+14.0f %14s" % (name, m / 1000, m - m0,
                                               "%.0f" % ip if ip is not None else "-"))


def copy_package(tmp):
    global PKG
    PKG = os.path.join(tmp, "site")
    shutil.copytree(os.path.join(PYBIND, "shm_redirect"), os.path.join(PKG, "shm_redirect"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    subprocess.run([PY, "-m", "compileall", "-q", PKG], check=True, stdout=subprocess.DEVNULL)
    for d, _, files in os.walk(tmp):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)


def native(n, tmp):
    with_pth = userbase(os.path.join(tmp, "hook"), True)
    without = userbase(os.path.join(tmp, "nohook"), False)
    cases = {"no hook": env_for(PYTHONUSERBASE=without),
             "hook (auto, /dev/shm works)": env_for(PYTHONUSERBASE=with_pth)}
    res = interleaved(cases, n)
    ip = {"hook (auto, /dev/shm works)": inproc(env_for(PYTHONPATH=PKG), max(10, n // 4))}
    report("native (/dev/shm works): `python -c pass`, %d interleaved runs each" % n,
           res, "no hook", ip)


def sandboxed(n, tmp):
    """Re-run ourselves inside the sandbox (--inner)."""
    if os.geteuid() != 0:
        print("\n(sandbox half skipped: needs root)")
        return
    os.chmod(tmp, 0o755)
    subprocess.run([os.path.join(ROOT, "tests", "sandbox.sh"), "--devshm=none", "--bind=" + tmp,
                    "--", PY, os.path.abspath(__file__), "--inner", tmp, "-n", str(n)], check=True)


def inner(n, tmp):
    global PKG
    PKG = os.path.join(tmp, "site")
    ub = os.path.join(tmp, "hook")
    cases = {"off (reference: nothing works)": env_for(PYTHONUSERBASE=ub, SHM_REDIRECT="off"),
             "patch (ctypes, in-process)": env_for(PYTHONUSERBASE=ub, SHM_REDIRECT="patch"),
             "preload (re-exec)": env_for(PYTHONUSERBASE=ub, SHM_REDIRECT="preload"),
             "child: already preloaded": env_for(PYTHONUSERBASE=ub, LD_PRELOAD=LIB),
             "LD_PRELOAD, no hook": env_for(LD_PRELOAD=LIB)}
    res = interleaved(cases, n)
    k = max(10, n // 4)
    ip = {"patch (ctypes, in-process)": inproc(env_for(PYTHONPATH=PKG, SHM_REDIRECT="patch"), k),
          "child: already preloaded": inproc(env_for(PYTHONPATH=PKG, LD_PRELOAD=LIB), k)}
    report("sandbox --devshm=none: `python -c pass`, %d interleaved runs each" % n,
           res, "off (reference: nothing works)", ip)


def main():
    args = sys.argv[1:]
    n = 40
    if "-n" in args:
        n = int(args[args.index("-n") + 1])
    if args and args[0] == "--inner":
        return inner(n, args[1])
    print("%s %s, activation hook: a byte-compiled copy of %s/shm_redirect, load avg %s"
          % (PY, sys.version.split()[0], PYBIND, open("/proc/loadavg").read().split()[0]))
    tmp = tempfile.mkdtemp(prefix="shmr-bench-")
    try:
        copy_package(tmp)
        native(n, tmp)
        sandboxed(n, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
