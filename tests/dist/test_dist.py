"""What `make dist` wrote to dist/ (DIST): every wheel of packaging/targets.py and the sdist;
manylinux2014 by auditwheel and by objdump; `twine check`; pip's choice for each CPython and CPU;
each wheel's Go core used on its own interpreter and CPU in the no-/dev/shm sandbox.
Run by `make test-dist` (after `make dist`), as root."""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "packaging"))
import targets  # noqa: E402

DIST = os.path.abspath(os.environ.get("DIST", os.path.join(ROOT, "dist")))
CHOSEN = targets.select(os.environ.get("DIST_ONLY", ""))   # what `make dist` was asked to build
TOOLS = os.path.join(ROOT, "build", "dist-tools", "bin")
SANDBOX = os.path.join(ROOT, "tests", "sandbox.sh")
VERSION = "0.1.0"
OBJDUMP = {"x86_64": "objdump", "aarch64": "aarch64-linux-gnu-objdump"}


def plat(arch):
    return "manylinux_2_17_%s.manylinux2014_%s" % (arch, arch)


def specific(t):
    tag = "cp" + t.version.replace(".", "")
    return "shm_redirect-%s-%s-%s-%s.whl" % (VERSION, tag, tag, plat(t.arch))


def universal(arch):
    return "shm_redirect-%s-py3-none-%s.whl" % (VERSION, plat(arch))


WHEELS = [specific(t) for t in CHOSEN] + [universal(a) for a in targets.ARCHES]


def test_dist_holds_every_wheel_and_the_sdist():
    want = sorted(WHEELS + ["shm-redirect-%s.tar.gz" % VERSION])
    assert sorted(os.listdir(DIST)) == want
    if CHOSEN == list(targets.TARGETS):
        assert sum(t.arch == "x86_64" for t in CHOSEN) == 6 and sum(t.arch == "aarch64" for t in CHOSEN) >= 4


@pytest.mark.parametrize("wheel", WHEELS)
def test_auditwheel_says_manylinux2014(wheel):
    out = subprocess.run([os.path.join(TOOLS, "auditwheel"), "show", os.path.join(DIST, wheel)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    arch = "aarch64" if "aarch64" in wheel else "x86_64"
    assert 'platform tag:\n"manylinux_2_17_%s"' % arch in out, out


@pytest.mark.parametrize("wheel", WHEELS)
def test_no_symbol_newer_than_glibc_2_17(wheel, tmp_path):
    arch = "aarch64" if "aarch64" in wheel else "x86_64"
    zf = zipfile.ZipFile(os.path.join(DIST, wheel))
    sos = [n for n in zf.namelist() if n.endswith(".so")]
    assert len(sos) == (1 if "py3-none" in wheel else 2), sos
    for n in sos:
        path = zf.extract(n, str(tmp_path))
        out = subprocess.run([OBJDUMP[arch], "-T", path], check=True, stdout=subprocess.PIPE, text=True).stdout
        versions = {tuple(int(x) for x in m) for m in re.findall(r"GLIBC_(\d+)\.(\d+)", out)}
        assert versions and max(versions) <= (2, 17), (n, sorted(versions))
    info = zf.read("shm_redirect-%s.dist-info/WHEEL" % VERSION).decode()
    assert "Root-Is-Purelib: false" in info


def test_each_cpython_gets_its_own_build():
    """Extensions compiled against different CPythons' headers cannot be the same bytes (a build
    cache that ignored the headers once made them so, and every import test still passed)."""
    digests = {}
    for t in CHOSEN:
        zf = zipfile.ZipFile(os.path.join(DIST, specific(t)))
        (ext,) = [n for n in zf.namelist() if n.startswith("shm_redirect/_core")]
        digests.setdefault(hashlib.sha256(zf.read(ext)).hexdigest(), []).append(t)
    assert len(digests) == len(CHOSEN), [ts for ts in digests.values() if len(ts) > 1]


def test_twine_check():
    files = sorted(glob.glob(os.path.join(DIST, "*")))
    p = subprocess.run([os.path.join(TOOLS, "twine"), "check", "--strict"] + files,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0 and p.stdout.count("PASSED") == len(files), p.stdout


@pytest.mark.parametrize("arch", targets.ARCHES)
@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13", "3.14", "3.15"])
def test_pip_picks_ours(version, arch, tmp_path):
    """As a Lambda user builds a zip package: the specific wheel where there is one, else the universal."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-index", "--find-links", DIST,
                    "--only-binary=:all:", "--platform", "manylinux2014_" + arch, "--python-version", version,
                    "--no-deps", "-d", str(tmp_path), "shm-redirect"], check=True)
    have = [t for t in CHOSEN if t.arch == arch and t.version == version]
    assert os.listdir(str(tmp_path)) == [specific(have[0]) if have else universal(arch)]


def run_smoke(t, wheel, core):
    """wheel_smoke.py on t's interpreter, the wheel unpacked at /opt/shmr-wheel of the sandbox."""
    argv, rdir = targets.command(t)
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    unpacked = tempfile.mkdtemp(prefix="dist-smoke-", dir=os.path.join(ROOT, "build"))
    os.chmod(unpacked, 0o755)   # for uid 993
    try:
        zipfile.ZipFile(os.path.join(DIST, wheel)).extractall(unpacked)
        os.chmod(os.path.join(unpacked, "shm_redirect", "bin", "shmr-core"), 0o755)
        shutil.copy(os.path.join(HERE, "wheel_smoke.py"), unpacked)
        opts = ["--root=" + rdir, "--uid=993"] if rdir else ["--as-root"]   # pyenv lives under /root
        p = subprocess.run([SANDBOX, "--ro", "--devshm=none", "--bind=%s:/opt/shmr-wheel" % unpacked] + opts
                           + ["--env", "PYTHONPATH=/opt/shmr-wheel", "--env", "SHM_REDIRECT_GOCORE=" + core,
                              "--", argv[-1], "-s", "/opt/shmr-wheel/wheel_smoke.py"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        shutil.rmtree(unpacked)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1])


@pytest.mark.parametrize("t", CHOSEN, ids=lambda t: "%s-%s" % (t.arch, t.version))
def test_extension_works_on_its_interpreter(t):
    r = run_smoke(t, specific(t), "inproc")
    assert r["python"] == t.version and r["package"].startswith("/opt/shmr-wheel/"), r
    assert r["core"].startswith("extension in-process (/opt/shmr-wheel/shm_redirect/_core.cpython-%s"
                                % t.version.replace(".", "")), r
    assert r["store"] == ["/tmp/shm", False] and r["lock"].lstrip("/") in r["names"], r


@pytest.mark.parametrize("t", targets.select("x86_64:3.12,aarch64:3.11"), ids=lambda t: "%s-%s" % (t.arch, t.version))
def test_universal_wheel_works_through_shmr_core(t):
    r = run_smoke(t, universal(t.arch), "binary")
    assert r["core"] == "binary at /opt/shmr-wheel/shm_redirect/bin/shmr-core", r
    assert r["store"] == ["/tmp/shm", False] and r["lock"].lstrip("/") in r["names"], r


def test_sdist_builds_offline(tmp_path):
    """pip install of the sdist with no network (a new network namespace), no Go module cache and
    no module proxy: the vendored modules build shmr-core and the extension, Debian's pybindgen
    lends gopy its generator, and the installed package reaches its Go core in process."""
    venv = str(tmp_path / "venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(os.environ, GOPROXY="off", GOMODCACHE=str(empty / "mod"), GOCACHE=str(empty / "cache"),
               HOME=str(empty), GOFLAGS="")
    sdist = os.path.join(DIST, "shm-redirect-%s.tar.gz" % VERSION)
    p = subprocess.run(["unshare", "-n", os.path.join(venv, "bin", "pip"), "install", "-q", "--no-index", sdist],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:]
    out = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                          "from shm_redirect.store import gocore; print(gocore.describe()[0])"],
                         env=dict(os.environ, SHM_REDIRECT_GOCORE="inproc"), check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    assert out.startswith("extension in-process (%s/lib/" % venv), out
