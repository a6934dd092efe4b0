"""tests/suite_compare.py, the judge of the CPython suite runs: every way a run can differ from
its baseline must fail it, and a rerun is accepted only after one of CPython's own known hangs."""
import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("suite_compare", os.path.join(HERE, os.pardir, "suite_compare.py"))
sc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sc)

MOD = "test_multiprocessing_fork"
OK = {"test_a": "ok", "test_b": "skipped 'no fork here'"}
POOL_DUMP = """Thread 0x00007f4864efe6c0 (most recent call first):
  File "/usr/lib/python3.11/multiprocessing/connection.py", line 378 in _recv
  File "/usr/lib/python3.11/multiprocessing/pool.py", line 602 in _handle_results
  File "/usr/lib/python3.11/threading.py", line 975 in run

Thread 0x00007f48671fc040 (most recent call first):
  File "/usr/lib/python3.11/multiprocessing/pool.py", line {line} in {inner}
  File "/usr/lib/python3.11/multiprocessing/pool.py", line 695 in _terminate_pool
  File "/usr/lib/python3.11/test/_test_multiprocessing.py", line 2625 in test_terminate
  File "/usr/lib/python3.11/unittest/case.py", line 579 in _callTestMethod
"""


def module_log(outcomes=OK, status="passed", ran=None, cls="C", extra=""):
    lines = ["0:01:04 load avg: 1.60 [1/1] %s %s (1 min 4 sec)" % (MOD, status)]
    lines += ["%s (test.%s.%s.%s) ... %s" % (t, MOD, cls, t, o) for t, o in outcomes.items()]
    lines.append("Ran %d tests in 0.100s" % (len(outcomes) if ran is None else ran))
    return "\n".join(lines) + "\n" + extra


def hung_log(test="test_terminate", cls="WithProcessesTestPool", inner="_help_stuff_finish"):
    head = "0:08:00 load avg: 0.00 [1/1/1] %s crashed (Exit code 1)\n" % MOD
    head += "test_a (test.%s.C.test_a) ... ok\n" % MOD
    head += "%s (test.%s.%s.%s) ... Timeout (0:08:00)!\n" % (test, MOD, cls, test)
    return head + POOL_DUMP.format(line=675, inner=inner) + "\n== Tests result: FAILURE ==\n"


def judge(tmp_path, capsys, logs, kind="regrtest", targets=(MOD,)):
    for name, text in logs.items():
        (tmp_path / name).write_text(text)
    runs = [n[:-4] for n in logs if n.endswith(".log") and ".rerun" not in n]
    if kind == "unittest":
        runs = sorted({n.split("-")[0] for n in runs}, key=lambda n: n != "baseline")
    rc = sc.main(["suite_compare.py", kind, str(tmp_path)] + runs + ["--"] + list(targets))
    return rc, capsys.readouterr().out


def test_equal_runs_pass(tmp_path, capsys):
    rc, out = judge(tmp_path, capsys, {"baseline.log": module_log(), "sandbox.log": module_log()})
    assert rc == 0, out
    assert out.splitlines()[-1] == "4 passed, 0 failed"


@pytest.mark.parametrize("sandbox, reason", [
    (module_log({"test_a": "ok", "test_b": "skipped 'other reason'"}), "test_b: skipped: 'other reason'"),
    (module_log({"test_a": "ok"}), "missing test.%s.C.test_b" % MOD),
    (module_log(dict(OK, test_c="ok")), "extra test.%s.C.test_c" % MOD),
    (module_log({"test_a": "FAIL", "test_b": OK["test_b"]}), "FAIL test.%s.C.test_a" % MOD),
    (module_log(status="failed (env changed)"), "regrtest: failed (env changed)"),
    (module_log(ran=3), "unittest ran 3 tests, 2 parsed"),
    (module_log({}, ran=0), "no test executed"),
    (module_log(extra="   left: sem.mp-xyz\n"), "left: sem.mp-xyz"),
    (module_log(extra="resource_tracker: There appear to be 1 leaked semaphore objects\n"),
     "1 resource-tracker leak warnings, baseline 0"),
    (hung_log(test="test_a_other", cls="C"), "not a known upstream hang"),
    (hung_log(), "known upstream hang, not rerun or hung again"),
])
def test_each_difference_fails(tmp_path, capsys, sandbox, reason):
    rc, out = judge(tmp_path, capsys, {"baseline.log": module_log(), "sandbox.log": sandbox})
    assert rc == 1 and reason in out, out


def test_known_hangs_names_the_module(tmp_path, capsys):
    (tmp_path / "a.log").write_text(hung_log())
    assert sc.main(["x", "known-hangs", "regrtest", str(tmp_path / "a.log")]) == 0
    assert capsys.readouterr().out == MOD + "\n"


@pytest.mark.parametrize("log", [
    hung_log(inner="acquire"),                     # blocked somewhere else in the same test
    hung_log(test="test_map", cls="WithProcessesTestPool"),   # another test of the class
    module_log(),                                  # no hang at all
])
def test_known_hangs_is_exact(tmp_path, capsys, log):
    (tmp_path / "a.log").write_text(log)
    sc.main(["x", "known-hangs", "regrtest", str(tmp_path / "a.log")])
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("arm", ["baseline", "sandbox"])
def test_rerun_after_known_hang_is_compared(tmp_path, capsys, arm):
    pool_ok = {"test_a": "ok", "test_terminate": "ok"}
    logs = {"baseline.log": module_log(pool_ok, cls="WithProcessesTestPool"),
            "sandbox.log": module_log(pool_ok, cls="WithProcessesTestPool")}
    logs[arm + ".log"] = hung_log()
    logs[arm + ".rerun.log"] = module_log(pool_ok, cls="WithProcessesTestPool")
    rc, out = judge(tmp_path, capsys, logs)
    assert rc == 0, out
    assert "first run hung in test.%s.WithProcessesTestPool.test_terminate" % MOD in out
    assert "issues/78178" in out and "%s.rerun.log" % arm in out


@pytest.mark.parametrize("first, rerun, reason", [
    (module_log(), module_log(), "rerun, but the first run had no known hang"),
    (hung_log(inner="acquire"), module_log(), "rerun, but the first run had no known hang"),
    (hung_log(), hung_log(), "known upstream hang, not rerun or hung again"),
    (hung_log(), module_log(extra="   left: psm_1\n"), "left: psm_1"),
])
def test_rerun_cannot_hide_anything_else(tmp_path, capsys, first, rerun, reason):
    logs = {"baseline.log": module_log(), "sandbox.log": first, "sandbox.rerun.log": rerun}
    rc, out = judge(tmp_path, capsys, logs)
    assert rc == 1 and reason in out, out


def test_hung_run_must_still_leave_nothing(tmp_path, capsys):
    logs = {"baseline.log": module_log(), "sandbox.log": hung_log() + "   left: sem.mp-1\n",
            "sandbox.rerun.log": module_log()}
    rc, out = judge(tmp_path, capsys, logs)
    assert rc == 1 and "sandbox.log  1 objects left  FAIL" in out, out


def test_unittest_rerun(tmp_path, capsys):
    body = lambda log: log.split("\n", 1)[1]   # no regrtest progress line in a unittest log
    logs = {"baseline-fork.log": body(module_log()), "context-fork.log": body(hung_log()),
            "context-fork.rerun.log": body(module_log())}
    rc, out = judge(tmp_path, capsys, logs, kind="unittest", targets=("fork",))
    assert rc == 0 and "first run hung in" in out, out
    del logs["context-fork.rerun.log"]
    (tmp_path / "context-fork.rerun.log").unlink()
    rc, out = judge(tmp_path, capsys, logs, kind="unittest", targets=("fork",))
    assert rc == 1 and "known upstream hang, not rerun" in out, out


def test_the_listed_hang_covers_every_start_method():
    (pattern, frame, issue), = sc.load_known()
    m = sc.Module()
    m.stacks = [["_recv"], ["_help_stuff_finish", "_terminate_pool", "test_terminate"]]
    for method in ("fork", "spawn", "forkserver"):
        m.hung = "test.test_multiprocessing_%s.WithProcessesTestPool.test_terminate" % method
        assert sc.known_hang(m, sc.load_known()) == (pattern, frame, issue)
    assert issue == "https://github.com/python/cpython/issues/78178"


def test_leak_warning_names_the_test(tmp_path, capsys):
    """The printed part of a CI log must say which test leaked, not only how many."""
    warning = "resource_tracker: There appear to be 1 leaked semaphore objects"
    log = module_log().replace("test_b (test.", "%s to clean up at shutdown\ntest_b (test." % warning, 1)
    rc, out = judge(tmp_path, capsys, {"baseline.log": module_log(), "sandbox.log": log})
    assert rc == 1 and "after test.%s.C.test_a: %s" % (MOD, warning) in out, out
