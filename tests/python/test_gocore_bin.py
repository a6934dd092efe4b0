"""The Go core as a static executable (cmd/shmr-core, shipped as shm_redirect/bin/shmr-core): the
path shm_redirect.store.gocore takes where the gopy extension cannot load (another CPython, arm64,
glibc < 2.34), or when SHM_REDIRECT_GOCORE=binary forces it.

Two set-ups, both from the installed wheel:
  forced  the venv as installed, SHM_REDIRECT_GOCORE=binary;
  noext   /usr/bin/python3 with PYTHONPATH on a copy of the installed package whose
          _core.<EXT_SUFFIX> is a file that fails to load (ImportError), as the real one does on
          Amazon Linux 2 ("GLIBC_2.34 not found"); the binary is found next to the package.
Run: /usr/bin/python3 -m pytest tests/python/test_gocore_bin.py
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import SYS_PYTHON
from test_cli import make_objects
from test_resource_tracker import SANDBOX_OPTS, WORKLOAD, check_scenarios, results

EXT = "_core" + sysconfig.get_config_var("EXT_SUFFIX")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tests/sandbox.sh needs root")


def site_package(inst):
    (pkg,) = glob.glob(os.path.join(inst.venv, "lib", "python3*", "site-packages", "shm_redirect"))
    return pkg


@pytest.fixture(scope="module")
def noext(inst, tmp_path_factory):
    """A directory for PYTHONPATH with the installed package, its extension replaced by one that
    cannot load. Readable by the sandbox's uid."""
    d = str(tmp_path_factory.mktemp("noext"))
    os.chmod(d, 0o755)
    pkg = os.path.join(d, "shm_redirect")
    shutil.copytree(site_package(inst), pkg, ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(pkg, EXT), "wb") as f:
        f.write(b"\x7fELF not loadable here\n")
    return d


class Setup:
    """How to run the package in one set-up: python, env(), and the sandbox options for it."""

    def __init__(self, inst, name, noext=None):
        self.inst, self.name, self.noext = inst, name, noext
        self.python = SYS_PYTHON if noext else inst.python
        self.pkg = os.path.join(noext, "shm_redirect") if noext else site_package(inst)

    def env(self, **extra):
        if self.noext:
            return self.inst.env(PYTHONPATH=self.noext, **extra)
        return self.inst.env(SHM_REDIRECT_GOCORE="binary", **extra)

    def sandbox_opts(self):
        if self.noext:
            return ["--bind=%s" % self.noext, "--env", "PYTHONPATH=" + self.noext]
        return ["--env", "SHM_REDIRECT_GOCORE=binary"]

    def cli(self, *args, **kw):
        return self.inst.run([self.python, "-m", "shm_redirect"] + list(args), **kw)


@pytest.fixture(params=["forced", "noext"])
def setup(request, inst):
    noext = request.getfixturevalue("noext") if request.param == "noext" else None
    return Setup(inst, request.param, noext)


def test_wheel_ships_a_static_executable(inst):
    exe = os.path.join(site_package(inst), "bin", "shmr-core")
    assert os.stat(exe).st_mode & 0o777 == 0o755
    headers = subprocess.run(["objdump", "-p", exe], stdout=subprocess.PIPE, text=True, check=True).stdout
    assert "INTERP" not in headers and "NEEDED" not in headers, headers   # static: no loader, no libc
    p = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2 and "usage: shmr-core" in p.stderr and p.stdout == ""


def test_binary_and_extension_give_identical_json(inst, store):
    make_objects(inst, store, "leak")
    held = make_objects(inst, store, "held", hold=True)
    code = r"""
import json, sys
from shm_redirect.store import gocore as _gocore
store = sys.argv[1]
calls = [("ListJSON", ["", "", store]), ("ResolveDir", [store, ""]), ("IsNative", [store, ""]),
         ("SweepJSON", ["", "", store, 0.0, True]), ("ResolveDir", ["relative", ""]),
         ("SweepJSON", ["", "", store, float("nan"), True])]
out = []
for fn, args in calls:
    pair = []
    for how in ("binary", "inproc"):
        try:
            r = {"result": _gocore._call_binary(fn, args, "test") if how == "binary"
                 else _gocore.result(_gocore.call_inprocess(fn, args))}
        except Exception as e:
            r = {"error": str(e), "type": type(e).__name__}
        pair.append(r)
    out.append(pair)
print(json.dumps(out))
"""
    try:
        out = json.loads(inst.run([inst.python, "-c", code, store]).stdout)
    finally:
        held.stdin.close()
        held.wait(timeout=30)
    for binary, inproc in out:
        assert binary == inproc
    listing = json.loads(out[0][0]["result"])
    assert sorted(o["name"] for o in listing) == ["shmr-t-seg-held", "shmr-t-seg-leak",
                                                  "shmr-t-sem-held", "shmr-t-sem-leak"]
    assert [o["holders"] for o in listing if o["name"].endswith("held")] == [[held.pid]] * 2
    assert out[4][0]["type"] == "GoCoreError" and "invalid argument" in out[4][0]["error"]
    assert out[5][0]["type"] == "GoCoreError" and "finite" in out[5][0]["error"]


def test_doctor_ls_clean(setup, store):
    inst = setup.inst
    env = setup.env(SHM_REDIRECT_DIR=store)
    doctor = setup.cli("doctor", env=env).stdout
    assert "in use: binary at %s" % os.path.join(setup.pkg, "bin", "shmr-core") in doctor, doctor
    assert ("why: SHM_REDIRECT_GOCORE=binary" if setup.name == "forced" else
            "why: the extension cannot be loaded: ImportError:") in doctor, doctor
    make_objects(inst, store, "leak")
    proc = make_objects(inst, store, "held", hold=True)
    try:
        objs = {o["name"]: o for o in json.loads(setup.cli("ls", "--json", env=env).stdout)}
        assert set(objs) == {"shmr-t-sem-leak", "shmr-t-seg-leak", "shmr-t-sem-held", "shmr-t-seg-held"}
        assert (objs["shmr-t-sem-leak"]["kind"], objs["shmr-t-sem-leak"]["value"]) == ("semaphore", 2)
        assert objs["shmr-t-seg-held"]["holders"] == [proc.pid]
        assert "would remove 2 object(s)" in setup.cli("clean", "--dry-run", "--grace", "0", env=env).stdout
        assert "removed 2 object(s)" in setup.cli("clean", "--grace", "0", env=env).stdout
        assert sorted(os.listdir(store)) == ["sem.shmr-t-sem-held", "shmr-t-seg-held"]
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    p = setup.cli("ls", env=setup.env(SHM_REDIRECT_DIR="relative"), check=False)
    assert p.returncode == 1 and "invalid argument" in p.stderr


@needs_root
def test_tracker_recovery_and_sweep_in_sandbox(setup):
    inst = setup.inst
    opts = SANDBOX_OPTS + ["--bind=%s" % inst.venv] + setup.sandbox_opts()
    p = inst.sandbox(opts, [setup.python, WORKLOAD, "scenarios"], env=setup.env(), check=False, timeout=300)
    sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
    check_scenarios(p, results(p))   # the CLI's and the tracker's sweeps need the Go core: the binary


# The parent uses the Go core first (forced: it loads the extension in-process, then switches to the
# binary; noext: the binary, after one failed import), then forks CYCLES children, PARALLEL at a
# time, each listing, resolving and provoking an error through the public API under a watchdog.
FORKER = r"""
import json, os, signal, sys, time
import shm_redirect
from shm_redirect.store import gocore as _gocore
CYCLES, PARALLEL, WATCHDOG, store, forced = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5] == "forced"
os.environ["SHM_REDIRECT_DIR"] = store
os.environ.pop("SHM_REDIRECT_GOCORE", None)
parent = shm_redirect.list_objects()
assert (_gocore.backend()[0], _gocore.core_loaded()) == (("inproc", True) if forced else ("binary", False))
if forced:
    os.environ["SHM_REDIRECT_GOCORE"] = "binary"

def child(n):
    try:
        objs = shm_redirect.list_objects()
        ok = _gocore.backend()[0] == "binary" and [o["name"] for o in objs] == [o["name"] for o in parent]
        if n % 10 == 0:
            ok = ok and shm_redirect.resolve_dir() == (store, False)
            try:
                shm_redirect.sweep(dir="relative", grace=0)
                ok = False
            except _gocore.GoCoreError as e:
                ok = ok and "invalid argument" in str(e)
        return 0 if ok else 3
    except BaseException:
        import traceback; traceback.print_exc()
        return 4

stats = {"ok": 0, "failed": 0, "hung": 0}
running, started = {}, 0
while started < CYCLES or running:
    while started < CYCLES and len(running) < PARALLEL:
        pid = os.fork()
        if pid == 0:
            os._exit(child(started))
        running[pid] = time.monotonic() + WATCHDOG
        started += 1
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid == 0:
        for p, deadline in list(running.items()):
            if time.monotonic() > deadline:
                os.kill(p, signal.SIGKILL); os.waitpid(p, 0); del running[p]; stats["hung"] += 1
        time.sleep(0.002)
        continue
    running.pop(pid, None)
    stats["ok" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "failed"] += 1
print(json.dumps(stats))
"""


def test_forked_children_use_the_binary_and_never_hang(setup, tmp_path):
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    (store / "leftover").write_bytes(b"x" * 10)
    p = setup.inst.run([setup.python, "-c", FORKER, "400", "8", "60", str(store), setup.name],
                       env=setup.env(), timeout=900)
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    assert stats == {"ok": 400, "failed": 0, "hung": 0}, (stats, p.stderr[-3000:])


def test_failed_import_is_tried_once_and_kept(inst, noext):
    code = r"""
import sys
from shm_redirect.store import gocore as _gocore

class Count:
    n = 0
    def find_spec(self, name, path=None, target=None):
        Count.n += name == "shm_redirect._core"
sys.meta_path.insert(0, Count())
import shm_redirect
for _ in range(3):
    shm_redirect.list_objects(); shm_redirect.resolve_dir()
assert _gocore.core_available() and _gocore.backend()[0] == "binary"
print(Count.n, "shm_redirect._core" in sys.modules)
"""
    assert inst.run([SYS_PYTHON, "-c", code], env=inst.env(PYTHONPATH=noext)).stdout.split() == ["1", "False"]


def test_missing_or_hanging_binary(inst, tmp_path):
    code = r"""
import sys
from shm_redirect.store import gocore as _gocore
try:
    _gocore.list_objects()
except Exception as e:
    print(type(e).__name__, e)
"""
    env = inst.env(SHM_REDIRECT_GOCORE="binary", SHM_REDIRECT_CORE_BIN=str(tmp_path / "nope"))
    out = inst.run([inst.python, "-c", code], env=env).stdout
    assert out.startswith("ImportError no Go core here: SHM_REDIRECT_GOCORE=binary, and no executable"), out
    doctor = inst.run([inst.cli, "doctor"], env=env).stdout
    assert "in use: none" in doctor and "ls and clean are unavailable" in doctor, doctor
    slow = tmp_path / "slow"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    env.update(SHM_REDIRECT_CORE_BIN=str(slow), SHM_REDIRECT_GOCALL_TIMEOUT="1")
    out = inst.run([inst.python, "-c", code], env=env, timeout=20).stdout
    assert out.startswith("TimeoutError Go core helper did not answer within 1s"), out
