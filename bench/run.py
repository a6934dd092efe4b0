"""`make bench`: shm-redirect side by side with native /dev/shm (needs root for tests/sandbox.sh).

    /usr/bin/python3 bench/run.py [--quick] [--rounds N] [--out DIR] [--only PARTS]

Configurations, each a fresh interpreter in the same tests/sandbox.sh shape (--ro --uid=993), so
only the /dev/shm situation and how shm-redirect is used differ:
  native       --devshm=native: plain multiprocessing (the baseline; ratios are against it)
  preload      --devshm=none + LD_PRELOAD=build/libshm_redirect.so (no Python package)
  patch        --devshm=none, package "installed" (shm_redirect.pth), SHM_REDIRECT=patch
  act-preload  --devshm=none, package installed, SHM_REDIRECT=preload (re-exec with the preload)
  context      --devshm=none, package on PYTHONPATH, no activation: shm_redirect.get_context()
The package is a byte-compiled copy of pybind/shm_redirect in a scratch dir (as a wheel install
would be); the .pth sits in a user site dir (PYTHONUSERBASE), so spawned children run it too.

Parts (--only, comma-separated; default all):
  workloads  bench/workloads.py groups x configurations: every round runs each group in every
             configuration, the configurations' order rotating from round to round and group to
             group, so that drifts of this noisy VM hit all configurations alike
  c          bench/sem_bench.c (compiled now with cc): native vs LD_PRELOAD, in the same rounds
  startup    bench/startup.py: /bin/true and python -S with LD_PRELOAD; the activation hook
  instr      bench/instr.py: instructions per Lock acquire+release under callgrind (if valgrind)
Writes DIR/bench.json (every round's numbers), DIR/bench.md (tables, also printed) and
DIR/bench.png (bench/report.py).
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import instr     # noqa: E402
import report    # noqa: E402
import startup   # noqa: E402

SANDBOX = os.path.join(ROOT, "tests", "sandbox.sh")
LIB = os.path.join(ROOT, "build", "libshm_redirect.so")
PY = "/usr/bin/python3"
UID = "993"
CONFIGS = ["native", "preload", "patch", "act-preload", "context"]
# What shm_redirect.activation.activate.state and LD_PRELOAD must be in each configuration's workload
# process: a configuration that silently ran natively would report a perfect 1.00.
EXPECT = {"native": (None, False), "preload": (None, True), "patch": ("patch", True),
          "act-preload": ("preloaded", True), "context": (None, False)}
GROUPS = ["micro", "procs-fork", "procs-spawn", "procs-forkserver", "handoff"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="shmr-bench-")
        self.pkg = os.path.join(self.tmp, "site")
        self.hook, self.nohook = None, None
        self.sem_bench = os.path.join(self.tmp, "sem_bench")

    # ---------------------------------------------------------------- set-up
    def setup(self):
        shutil.copytree(os.path.join(ROOT, "pybind", "shm_redirect"),
                        os.path.join(self.pkg, "shm_redirect"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        subprocess.run([PY, "-m", "compileall", "-q", self.pkg], check=True,
                       stdout=subprocess.DEVNULL)
        self.hook, self.nohook = startup.make_userbases(self.tmp, self.pkg)
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", self.sem_bench,
                        os.path.join(HERE, "sem_bench.c"), "-pthread"], check=True)
        for d, _, files in os.walk(self.tmp):   # readable by the sandbox's uid
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), os.stat(os.path.join(d, f)).st_mode | 0o444)

    def sandbox_argv(self, devshm, preload=False, env=()):
        argv = [SANDBOX, "--devshm=" + devshm, "--ro", "--uid=" + UID, "--bind=" + self.tmp,
                "--env", "SHM_REDIRECT_LIB=" + LIB]
        if preload:
            argv.append("--preload")
        for kv in env:
            argv += ["--env", kv]
        return argv

    def config_argv(self, config):
        if config == "native":
            return self.sandbox_argv("native")
        if config == "preload":
            return self.sandbox_argv("none", preload=True)
        if config == "context":
            return self.sandbox_argv("none", env=["PYTHONPATH=" + self.pkg])
        mode = {"patch": "patch", "act-preload": "preload"}[config]
        return self.sandbox_argv("none", env=["PYTHONUSERBASE=" + self.hook,
                                              "SHM_REDIRECT=" + mode])

    @staticmethod
    def _env():
        # The caller's Python/preload settings must not leak into the configurations.
        return {k: v for k, v in os.environ.items()
                if not k.startswith(("PYTHON", "SHM_REDIRECT", "LD_PRELOAD"))}

    def run_json(self, argv, what):
        p = subprocess.run(argv, capture_output=True, text=True, env=self._env(), timeout=600)
        if p.returncode != 0 or not p.stdout.strip():
            raise RuntimeError("%s failed (%d):\n%s%s" % (what, p.returncode, p.stdout, p.stderr))
        if p.stderr.strip():   # warnings (a leaked segment, ...) are worth seeing, not fatal
            log("  [%s] stderr: %s" % (what, p.stderr.strip()[-500:]))
        return json.loads(p.stdout.strip().splitlines()[-1])

    # ---------------------------------------------------------------- parts
    def workload(self, config, group):
        argv = self.config_argv(config) + ["--", PY, os.path.join(HERE, "workloads.py"),
                                           config, group] + (["--quick"] if self.args.quick else [])
        out = self.run_json(argv, "%s/%s" % (config, group))
        state, preloaded = out.pop("_state"), out.pop("_ld_preload")
        if (state, preloaded) != EXPECT[config]:
            raise RuntimeError("%s/%s ran as state=%r LD_PRELOAD=%r, expected %r"
                               % (config, group, state, preloaded, EXPECT[config]))
        return out

    def c_bench(self, config):
        argv = self.config_argv(config) + ["--", self.sem_bench,
                                           "300" if self.args.quick else "2000", "5"]
        return self.run_json(argv, "%s/sem_bench" % config)

    def rounds(self, parts):
        """{config: {metric: [one value per round]}}"""
        vals = {c: {} for c in CONFIGS}
        jobs = []
        if "workloads" in parts:
            jobs += [(g, CONFIGS) for g in GROUPS]
        if "c" in parts:
            jobs.append(("c", ["native", "preload"]))   # patch/context do not apply to C
        t0 = time.time()
        for r in range(self.args.rounds):
            for j, (group, configs) in enumerate(jobs):
                k = (r + j) % len(configs)
                for config in configs[k:] + configs[:k]:
                    out = self.c_bench(config) if group == "c" else self.workload(config, group)
                    for m, v in out.items():
                        vals[config].setdefault(m, []).append(v)
            log("round %d/%d done, %.0f s" % (r + 1, self.args.rounds, time.time() - t0))
        return vals

    def fork_stress(self):
        """tests/fork_stress.sh natively and through the preload: cycles run, passed, hung."""
        out = {}
        quick = self.args.quick
        for name, env, cycles in (("native", {"FORK_STRESS_NATIVE": "1", "FORK_STRESS_CHILD_TIMEOUT": "1"},
                                   30 if quick else 300),
                                  ("preload", {}, 200 if quick else 2000)):
            p = subprocess.run([os.path.join(ROOT, "tests", "fork_stress.sh"), str(cycles)],
                               env=dict(self._env(), **env), capture_output=True, text=True, timeout=1200)
            m = re.search(r"fork_stress: (\d+) of (\d+) cycles run in [\d.]+ s: (\d+) passed, (\d+) hung, "
                          r"(\d+) failed otherwise, (\d+) not run", p.stdout)
            if not m:
                raise RuntimeError("fork_stress.sh (%s) printed no summary:\n%s%s" % (name, p.stdout, p.stderr))
            out[name] = dict(zip(("run", "cycles", "passed", "hung", "failed", "not_run"),
                                 map(int, m.groups())), give_up=5)
            log("fork stress %s: %s" % (name, out[name]))
        return out

    def startup(self):
        t0 = time.time()
        n_true = 300 if self.args.quick else 3000
        proc = startup.process_startup(LIB, n_true)
        log("process start-up done, %.0f s" % (time.time() - t0))
        hook = startup.hook_startup(lambda shm: self.sandbox_argv(shm), self.tmp,
                                    6 if self.args.quick else 60)
        log("interpreter start-up (hook) done, %.0f s" % (time.time() - t0))
        return {"process": proc, "hook": hook}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: seconds, numbers are noise")
    ap.add_argument("--rounds", type=int, help="rounds of the workloads (default 6, quick 1)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--only", default="workloads,c,startup,instr,fork_stress")
    args = ap.parse_args()
    if args.rounds is None:
        args.rounds = 1 if args.quick else 6
    parts = set(args.only.split(","))
    if os.geteuid() != 0:
        sys.exit("bench/run.py: needs root (tests/sandbox.sh mounts in a private namespace)")
    if not os.path.exists(LIB):
        sys.exit("bench/run.py: %s missing: run make lib" % LIB)
    t0 = time.time()
    b = Bench(args)
    try:
        b.setup()
        meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "python": "%s %s" % (PY, platform.python_version()),
                "kernel": platform.release(), "cpus": os.cpu_count(),
                "loadavg_start": open("/proc/loadavg").read().split()[0],
                "quick": args.quick, "rounds": args.rounds, "uid": UID,
                "glibc": " ".join(os.confstr("CS_GNU_LIBC_VERSION").split()),
                "tmp": "a 512 MiB loop-mounted ext4 (Lambda's shape)",
                "lib": os.path.relpath(LIB, ROOT)}
        vals = b.rounds(parts)
        st = b.startup() if "startup" in parts else None
        ins = None
        if "instr" in parts and instr.available():
            t1 = time.time()
            ins = instr.lock_instructions(b.config_argv, PY, b._env(),
                                          *((5_000, ["fork"]) if args.quick else (50_000,)))
            log("callgrind instruction counts done, %.0f s" % (time.time() - t1))
        fs = b.fork_stress() if "fork_stress" in parts else None
        meta["loadavg_end"] = open("/proc/loadavg").read().split()[0]
        meta["duration_s"] = round(time.time() - t0)
        text = report.write(args.out, meta, CONFIGS, vals, st, ins, fs)
        print(text)
        log("wrote %s/bench.{md,json,png} in %.0f s" % (os.path.relpath(args.out), time.time() - t0))
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
