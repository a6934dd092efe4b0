"""Session fixtures: build the wheel once (offline), install it into a fresh venv (no system site
packages, pip --no-index), and helpers to run the installed CLI natively or in tests/sandbox.sh."""
import glob
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
SYS_PYTHON = "/usr/bin/python3"
SANDBOX = os.path.join(ROOT, "tests", "sandbox.sh")
PYBIND = os.path.join(ROOT, "pybind")
LIB = os.path.join(ROOT, "build", "libshm_redirect.so")


def _run(cmd, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.STDOUT)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (cmd, p.returncode, p.stdout))
    return p


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    t0 = time.monotonic()
    _run([SYS_PYTHON, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
          "-w", str(out), ROOT], cwd=ROOT, timeout=900)
    sys.stderr.write("\nwheel built in %.1fs\n" % (time.monotonic() - t0))
    whls = glob.glob(os.path.join(str(out), "shm_redirect-*.whl"))
    assert len(whls) == 1, whls
    return whls[0]


def readable_by_all(path):
    """Let the sandbox's non-root uid reach path: o+rx on it and on each parent up to /tmp."""
    path = os.path.abspath(str(path))
    while path not in ("/", "/tmp"):
        os.chmod(path, os.stat(path).st_mode | 0o055)
        path = os.path.dirname(path)


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory):
    # Under /tmp, not /root, and reachable: the sandbox runs as uid 993 must be able to read it
    # (pytest makes its temporary directories 0700).
    d = str(tmp_path_factory.mktemp("venv"))
    readable_by_all(d)
    _run([SYS_PYTHON, "-m", "venv", d])
    cfg = open(os.path.join(d, "pyvenv.cfg")).read()
    assert "include-system-site-packages = false" in cfg
    _run([os.path.join(d, "bin", "pip"), "install", "--no-index", "--no-deps", wheel])
    return d


class Installed:
    def __init__(self, venv):
        self.venv = venv
        self.python = os.path.join(venv, "bin", "python")
        self.cli = os.path.join(venv, "bin", "shm-redirect")

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", "SHM_REDIRECT_DIR", "SHM_REDIRECT", "PYTHONPATH", "PYTHONHOME")}
        env.update(extra)
        return env

    def run(self, args, env=None, check=True, timeout=120, **kw):
        p = subprocess.run(args, env=env if env is not None else self.env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout, cwd="/", **kw)
        if check and p.returncode != 0:
            raise AssertionError("%s: exit %d\nstdout:\n%s\nstderr:\n%s" % (args, p.returncode, p.stdout, p.stderr))
        return p

    def sandbox(self, opts, args, env=None, check=True, timeout=180):
        return self.run([SANDBOX] + list(opts) + ["--"] + list(args), env=env, check=check, timeout=timeout)

    def preload(self):
        return self.run([self.cli, "preload-path"]).stdout.strip()


@pytest.fixture(scope="session")
def inst(venv):
    return Installed(venv)


@pytest.fixture
def store(tmp_path):
    d = tmp_path / "store"
    return str(d)
