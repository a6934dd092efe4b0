"""shm_redirect.mp.resource_tracker with real processes, in the Lambda-shaped sandbox
(tests/sandbox.sh --devshm=none --ro --uid=993; root needed). The workload is
tests/python/tracker_workload.py; pytest itself runs outside the sandbox.

  (1) normal exit: objects registered and leaked by a child are unlinked at the tracker's EOF;
  (2) a SIGKILLed tree (root, 3 forked children, their tracker; objects made through store.clib),
      and a SIGKILLed tree of the explicit context (shm_redirect.get_context('spawn'): Locks, a
      Queue, SharedMemory, 2 spawned children): a new tracker start, and separately
      `shm-redirect clean` (default grace), leave nothing of them in the store;
  (3) a live tree's objects (held or not) and its journal survive both; so does a tree whose
      tracker alone was SIGKILLed, until the tree is dead too; a dead tracker whose pid another
      process got (the sandbox's PID namespace reuses PIDs) is still known dead;
  (5) an object never registered is swept at tracker start only when older than the grace;
  (4) 10,000 fork cycles calling the package in the child (every 100th through the Go gateway),
      with a watchdog: no hang.
Run: make test-tracker
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
WORKLOAD = os.path.join(ROOT, "tests", "python", "tracker_workload.py")
# A small pid_max, so that PIDs wrap within ~4,000 forks and the tracker meets a reused PID.
SANDBOX_OPTS = ["--devshm=none", "--ro", "--uid=993", "--pid-max=4096"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="tests/sandbox.sh needs root")


def results(p):
    out = {}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            out[r["scenario"]] = r
    return out


def run(inst, args, devtree=False, timeout=300):
    opts = SANDBOX_OPTS + ["--bind=%s" % inst.venv]
    if devtree:   # the checkout on PYTHONPATH: no gopy extension, the Makefile's build/shmr-core
        python, env = "/usr/bin/python3", inst.env(PYTHONPATH=os.path.join(ROOT, "pybind"))
        opts += ["--env", "PYTHONPATH=" + os.path.join(ROOT, "pybind")]
    else:
        python, env = inst.python, inst.env()
    p = inst.sandbox(opts, [python, WORKLOAD] + list(args), env=env, check=False, timeout=timeout)
    sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
    return p, results(p)


def check_scenarios(p, r):
    assert set(r) == {"normal_exit", "crash_new_tracker", "crash_cli_clean", "ctx_crash_new_tracker",
                      "ctx_crash_cli_clean", "tracker_killed_alone", "pid_reused", "live_end",
                      "untracked_sweep"}, (p.stdout, p.stderr)
    n = r["normal_exit"]
    assert n["rc"] == 0 and n["left"] == [] and n["seconds"] is not None and n["warned"], n

    a = r["crash_new_tracker"]
    assert a["objects_before_kill"] == 16 and len(a["present_after_kill"]) == 16, a
    assert len(a["journal_after_kill"]) == 1, a          # the dead tracker's journal
    assert a["left_dead"] == [] and a["other"] == [] and a["seconds"] is not None, a
    assert a["live_missing"] == [] and len(a["live_journal"]) == 1 and a["live_journal_kept"], a

    c = r["crash_cli_clean"]
    assert c["present_after_kill"] == 16 and c["left_dead"] == [] and c["dead_journals"] == [], c
    assert c["live_missing"] == [] and c["live_journal_kept"], c
    assert c["rc"] == 0 and "removed 16 object(s)" in c["out"], c

    for how in ("new_tracker", "cli_clean"):   # the explicit context: Locks, Queue, SharedMemory
        x = r["ctx_crash_" + how]
        assert x["registered"] == 7 and x["t_journal"] is not None, x
        assert x["dead_files"] >= 8 and len(x["dead_journal"]) == 1, x
        assert x["left_dead"] == [] and x["live_missing"] == [] and x["live_journal_kept"], x
        assert x["rc"] == 0, x

    k = r["tracker_killed_alone"]
    assert len(k["held"]) == 4 and len(k["left_while_alive"]) == 8, k   # nothing of a live tree
    assert len(k["journal_while_alive"]) == 1 and k["left_after"] == [], k
    assert k["rc"] == [0, 0] and "kept journal" in k["out"], k

    x = r["pid_reused"]
    assert x["imposter"] is not None and x["imposter_alive"], x     # the dead tracker's pid, reused
    assert len(x["journal_before"]) == 1 and x["objects_before"] >= 4 and x["left"] == [], x

    e = r["live_end"]
    assert e["left"] == [] and e["seconds"] is not None, e

    u = r["untracked_sweep"]
    assert u["kept_with_default_grace"] and u["left"] == [], u   # the Go core's sweep at start


def test_scenarios_wheel(inst):
    p, r = run(inst, ["scenarios"])
    check_scenarios(p, r)


def test_scenarios_devtree_static_go_core(inst):
    subprocess.run(["make", "-s", "-C", ROOT, "build/shmr-core"], check=True)
    p, r = run(inst, ["scenarios"], devtree=True)
    check_scenarios(p, r)


def test_without_any_go_core_nothing_counts_as_unheld(inst, tmp_path):
    # No holder scan, no proof: recovery keeps every journaled object rather than guess.
    code = ("from shm_redirect.mp import tracker_journal as j; "
            "print(j._holders('/nonexistent')('semaphore', '/x'))")
    env = inst.env(PYTHONPATH=os.path.join(ROOT, "pybind"), SHM_REDIRECT_GOCORE="binary",
                   SHM_REDIRECT_CORE_BIN=str(tmp_path / "none"))
    assert inst.run(["/usr/bin/python3", "-c", code], env=env).stdout.strip() == "True"


def test_fork_cycles_no_hang(inst):
    cycles = int(os.environ.get("TRACKER_FORK_CYCLES", "10000"))
    p, r = run(inst, ["forks", str(cycles), "8", "30"], timeout=1800)
    f = r.get("forks")
    assert f, (p.stdout, p.stderr)
    assert f["cycles"] == cycles and f["hangs"] == 0 and f["fails"] == 0, f
    assert f["go_calls"] == (cycles + 99) // 100 and f["left"] == [], f
