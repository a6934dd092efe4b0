"""The wheel: its contents, its tag, an offline install, and an import that loads no Go runtime."""
import os
import re
import shutil
import subprocess
import sysconfig
import zipfile

from conftest import ROOT


def glibc_newest(paths):
    newest = (0, 0)
    for p in paths:
        out = subprocess.run(["objdump", "-T", p], stdout=subprocess.PIPE, text=True, check=True).stdout
        for m in re.finditer(r"GLIBC_(\d+)\.(\d+)", out):
            newest = max(newest, (int(m.group(1)), int(m.group(2))))
    return newest


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    ext = "shm_redirect/_core" + sysconfig.get_config_var("EXT_SUFFIX")
    # Every module of the package's source tree, not a list typed here that could miss one.
    src = os.path.join(ROOT, "pybind", "shm_redirect")
    modules = sorted(os.path.relpath(os.path.join(top, f), os.path.dirname(src))
                     for top, _, files in os.walk(src) if "__pycache__" not in top
                     for f in files if f.endswith(".py") or f == "py.typed")
    assert "shm_redirect/mp/context.py" in modules and "shm_redirect/py.typed" in modules, modules
    assert len(modules) >= 20, modules
    for want in ["shm_redirect.pth", "shm_redirect/libshm_redirect.so", ext] + modules:
        assert want in names, (want, names)
    # ... and no module that is not there (a stale build tree must not ride along)
    stale = [n for n in names if n.endswith(".py") and n not in modules]
    assert not stale, stale
    # Nothing of gopy's outside the package, no stray top-level modules.
    top = {n.split("/")[0] for n in names}
    assert top == {"shm_redirect", "shm_redirect.pth", "shm_redirect-0.1.0.dist-info"}, top
    pth = zipfile.ZipFile(wheel).read("shm_redirect.pth").decode()
    assert pth.count("\n") == 1 and pth.startswith("import ") and "shm_redirect.activation.activate" in pth
    ep = zipfile.ZipFile(wheel).read("shm_redirect-0.1.0.dist-info/entry_points.txt").decode()
    assert "shm-redirect = shm_redirect.cli:main" in ep


def test_wheel_tag_is_the_newest_glibc_of_its_libraries(wheel, tmp_path):
    zf = zipfile.ZipFile(wheel)
    sos = []
    for n in zf.namelist():
        if n.endswith(".so"):
            zf.extract(n, str(tmp_path))
            sos.append(os.path.join(str(tmp_path), n))
    assert len(sos) == 2
    major, minor = glibc_newest(sos)
    name = os.path.basename(wheel)
    assert name == "shm_redirect-0.1.0-cp311-cp311-manylinux_%d_%d_x86_64.whl" % (major, minor), name
    wheelfile = zf.read("shm_redirect-0.1.0.dist-info/WHEEL").decode()
    assert "Root-Is-Purelib: false" in wheelfile
    assert "Tag: cp311-cp311-manylinux_%d_%d_x86_64" % (major, minor) in wheelfile


def test_extension_does_not_link_libpython(wheel, tmp_path):
    zf = zipfile.ZipFile(wheel)
    n = "shm_redirect/_core" + sysconfig.get_config_var("EXT_SUFFIX")
    zf.extract(n, str(tmp_path))
    dyn = subprocess.run(["objdump", "-p", os.path.join(str(tmp_path), n)], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    needed = re.findall(r"NEEDED\s+(\S+)", dyn)
    assert needed == ["libc.so.6"], needed


def test_import_loads_no_go_runtime_and_no_ctypes(inst):
    code = r"""
import sys
before = set(sys.modules)
assert "shm_redirect._core" not in sys.modules, "loaded at interpreter start"
import shm_redirect
new = set(sys.modules) - before
maps = open("/proc/self/maps").read()
assert "_core.cpython" not in maps, "Go core mapped"
assert "shm_redirect._core" not in sys.modules
assert "ctypes" not in new and "_ctypes" not in new, sorted(new)
assert "shm_redirect.store.gocore" not in new, sorted(new)
print(shm_redirect.__version__, shm_redirect.preload_path())
# the lazy API loads it on first use, and only then
shm_redirect.resolve_dir()
assert "shm_redirect._core" in sys.modules
assert "_core.cpython" in open("/proc/self/maps").read()
print("ok")
"""
    p = inst.run([inst.python, "-c", code])
    assert p.stdout.splitlines()[-1] == "ok"
    assert p.stdout.startswith("0.1.0 " + inst.venv)


def test_interpreter_start_with_pth_is_clean(inst):
    # The .pth hook runs at every start: no output, no error, no Go.
    p = inst.run([inst.python, "-c",
                  "import sys; print('shm_redirect._core' in sys.modules, "
                  "'_core.cpython' in open('/proc/self/maps').read())"])
    assert p.stdout.strip() == "False False"
    assert p.stderr == ""
    assert os.path.isfile(os.path.join(inst.venv, "lib", "python3.11", "site-packages", "shm_redirect.pth"))


def test_preload_path_has_no_go_runtime(inst):
    path = inst.preload()
    assert os.path.isabs(path) and os.path.isfile(path)
    assert path.startswith(inst.venv)
    syms = subprocess.run(["nm", "-D", path], stdout=subprocess.PIPE, text=True, check=True).stdout
    assert "sem_open" in syms and "shm_open" in syms
    for bad in ("runtime.", "_cgo_", "x_cgo_", "go:buildid", "runtime_"):
        assert bad not in syms, bad
    # python -m shm_redirect says the same
    assert inst.run([inst.python, "-m", "shm_redirect", "preload-path"]).stdout.strip() == path


def test_packaged_preload_is_the_makefile_build(inst, tmp_path):
    # Same source, same flags: byte-identical to what `make lib` builds now (into a private BUILD
    # dir: build/ may be older than the sources, and other runs use it).
    subprocess.run(["make", "-s", "-C", ROOT, "lib", "BUILD=%s" % tmp_path], check=True)
    built = os.path.join(str(tmp_path), "libshm_redirect.so")
    assert open(inst.preload(), "rb").read() == open(built, "rb").read()


def test_pip_install_dot_offline_with_build_isolation(tmp_path):
    # Plain `pip install .` (isolated build, no index): the backend wrapper builds with the
    # interpreter's own setuptools/wheel/pybindgen instead of asking an index for them.
    src = tmp_path / "src"   # the working tree as it is, without build outputs
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "_pybuild", "wheels", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index", "."], cwd=src,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:]
    lib = subprocess.run([str(venv / "bin" / "shm-redirect"), "preload-path"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout.strip()
    assert lib.startswith(str(venv)) and os.path.isfile(lib)


def test_requires_python_is_the_oldest_tested(wheel):
    # The oldest CPython any test runs is 3.10 (tests/lambda/run.sh requires it): the metadata
    # and the README say the same.
    meta = zipfile.ZipFile(wheel).read("shm_redirect-0.1.0.dist-info/METADATA").decode()
    assert "\nRequires-Python: >=3.10\n" in meta, meta
    with open(os.path.join(ROOT, "README.md")) as f:
        assert "| the Python package | CPython ≥ 3.10 " in f.read()
    with open(os.path.join(ROOT, "tests", "lambda", "run.sh")) as f:
        assert "for v in 3.10 " in f.read()
