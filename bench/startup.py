"""Start-up costs, for bench/run.py (`make bench`):

process_startup()  `/bin/true` and `python3 -S -c pass` with and without LD_PRELOAD, posix_spawn'ed
                   run by run, alternating which side goes first, so machine noise hits both alike.
hook_startup()     `python3 -c pass` with the activation hook (shm_redirect.pth in a user site
                   dir, as a wheel install would add it) and without, inside tests/sandbox.sh:
                   with a working /dev/shm (the hook only probes: target +1 ms at most), and with
                   none (what patching, the preload re-exec and a preloaded child cost).
                   Cases are interleaved in rotating order; the hook is also timed in-process.

    python3 bench/startup.py --inner DIR N native|none    (internal: the in-sandbox half)
"""
import json
import os
import statistics
import subprocess
import sys
import time

PY = "/usr/bin/python3"
PTH_LINE = "import shm_redirect.activation.activate; shm_redirect.activation.activate.activate()\n"
INPROC = ("import time; t = time.perf_counter_ns(); import shm_redirect.activation.activate as a; "
          "a.activate(); print((time.perf_counter_ns() - t) / 1000)")


# ------------------------------------------------------------------ LD_PRELOAD on exec
def spawn_ns(argv, env):
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env)
    os.waitpid(pid, 0)
    return time.perf_counter_ns() - t0


def process_startup(lib, rounds):
    """{program: {"native": [µs], "preload": [µs]}}; python gets rounds // 10 runs."""
    base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    pre = dict(base, LD_PRELOAD=lib)
    out = {}
    for name, argv, n in (("/bin/true", ["/bin/true"], rounds),
                          ("python3 -S -c pass", [PY, "-S", "-c", "pass"], max(20, rounds // 10))):
        nat, prel = [], []
        for _ in range(20):   # warm the page cache and the dynamic loader's caches
            spawn_ns(argv, base), spawn_ns(argv, pre)
        for i in range(n):
            pair = [(nat, base), (prel, pre)]
            for xs, env in pair if i % 2 else reversed(pair):
                xs.append(spawn_ns(argv, env) / 1000)
        out[name] = {"native": nat, "preload": prel}
    return out


# ------------------------------------------------------------------ the activation hook
def make_userbases(tmp, pkg):
    """tmp/hook and tmp/nohook: user base dirs whose site-packages do / do not hold
    shm_redirect.pth (first line: the package's parent dir, as a path entry)."""
    import sysconfig
    rel = os.path.relpath(sysconfig.get_path("purelib", "posix_user", {"userbase": "/X"}), "/X")
    for name, pth in (("hook", True), ("nohook", False)):
        sp = os.path.join(tmp, name, rel)
        os.makedirs(sp)
        if pth:
            with open(os.path.join(sp, "shm_redirect.pth"), "w") as f:
                f.write(pkg + "\n" + PTH_LINE)
    return os.path.join(tmp, "hook"), os.path.join(tmp, "nohook")


def clean_env(**kw):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHM_REDIRECT", "PYTHON", "LD_PRELOAD"))}
    env.update({k: v for k, v in kw.items() if v is not None})
    return env


def wall_us(env, argv=("-c", "pass")):
    t = time.perf_counter()
    subprocess.run([PY, *argv], env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1e6


def interleaved(cases, n):
    """{name: [µs]}: each round runs every case once, in rotating order."""
    res = {name: [] for name in cases}
    names = list(cases)
    for _ in range(3):   # warm up the page cache
        for name in names:
            wall_us(cases[name])
    for i in range(n):
        for name in names[i % len(names):] + names[:i % len(names)]:
            res[name].append(wall_us(cases[name]))
    return res


def inproc_us(env, n):
    out = []
    for _ in range(n):
        p = subprocess.run([PY, "-c", INPROC], env=env, capture_output=True, text=True, check=True)
        out.append(float(p.stdout.split()[-1]))
    return out


def inner(tmp, n, shm):
    """Inside the sandbox: time the cases for /dev/shm native|none; print JSON."""
    pkg, lib = os.path.join(tmp, "site"), os.environ["SHM_REDIRECT_LIB"]
    hook, nohook = os.path.join(tmp, "hook"), os.path.join(tmp, "nohook")
    env = lambda **kw: clean_env(SHM_REDIRECT_LIB=lib, **kw)
    if shm == "native":
        cases = {"no hook": env(PYTHONUSERBASE=nohook),
                 "hook, /dev/shm works": env(PYTHONUSERBASE=hook)}
        ip = {"hook, /dev/shm works": inproc_us(env(PYTHONPATH=pkg), max(10, n // 4))}
    else:
        cases = {"off (reference: nothing works)": env(PYTHONUSERBASE=hook, SHM_REDIRECT="off"),
                 "patch (ctypes, in-process)": env(PYTHONUSERBASE=hook, SHM_REDIRECT="patch"),
                 "preload (re-exec)": env(PYTHONUSERBASE=hook, SHM_REDIRECT="preload"),
                 "child: already preloaded": env(PYTHONUSERBASE=hook, LD_PRELOAD=lib),
                 "LD_PRELOAD, no hook": env(PYTHONUSERBASE=nohook, LD_PRELOAD=lib)}
        k = max(10, n // 4)
        ip = {"patch (ctypes, in-process)": inproc_us(env(PYTHONPATH=pkg, SHM_REDIRECT="patch"), k),
              "child: already preloaded": inproc_us(env(PYTHONPATH=pkg, LD_PRELOAD=lib), k)}
    print(json.dumps({"wall": interleaved(cases, n), "inproc": ip}))


def hook_startup(sandbox_argv, tmp, n):
    """Both halves; sandbox_argv(shm) gives the tests/sandbox.sh prefix for /dev/shm native|none."""
    out = {}
    for shm in ("native", "none"):
        argv = sandbox_argv(shm) + ["--", PY, os.path.abspath(__file__), "--inner", tmp, str(n), shm]
        p = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
        out[shm] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        inner(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("run bench/run.py (make bench); this module is its start-up part")
