"""The Lambda layers, the exec wrapper and the container tree: their layout and contents.

Run after `make layer layer-tree` (make test-layer does both):
    /usr/bin/python3 -m pytest -q tests/lambda/test_layer.py
The behaviour in a Lambda-shaped sandbox is tests/lambda/run.sh (make test-lambda).
"""
import os
import struct
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYERS = os.path.join(ROOT, "build", "layer")
PKG = os.path.join(ROOT, "pybind", "shm_redirect")
ARCHES = {"x86_64": 62, "arm64": 183}   # ELF e_machine: EM_X86_64, EM_AARCH64
PROGRAMS = {"lib/libshm_redirect.so", "shm-redirect", "python/shm_redirect/bin/shmr-core"}


def zip_path(arch):
    return os.path.join(LAYERS, "shm-redirect-layer-%s.zip" % arch)


def expected_files():
    files = set(PROGRAMS) | {"python/sitecustomize.py"}
    files |= {"python/" + os.path.relpath(os.path.join(top, f), os.path.dirname(PKG))
              for top, _, names in os.walk(PKG) if "__pycache__" not in top
              for f in names if f.endswith(".py") or f == "py.typed"}
    return files


def elf(data):
    """(e_machine, has PT_INTERP) of a 64-bit little-endian ELF image."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return machine, 3 in types   # PT_INTERP


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_zip_layout(arch):
    with zipfile.ZipFile(zip_path(arch)) as z:
        infos = {i.filename: i for i in z.infolist() if not i.is_dir()}
        assert set(infos) == expected_files()
        for name, info in infos.items():
            mode = info.external_attr >> 16 & 0o7777
            assert mode == (0o755 if name in PROGRAMS else 0o644), (name, oct(mode))
        for name in ("python/shm_redirect/__init__.py", "python/shm_redirect/activation/activate.py"):
            with open(os.path.join(PKG, name[len("python/shm_redirect/"):]), "rb") as f:
                assert z.read(name) == f.read()
        with open(os.path.join(PKG, "activation", "sitecustomize.py"), "rb") as f:
            assert z.read("python/sitecustomize.py") == f.read()
        lib_machine, _ = elf(z.read("lib/libshm_redirect.so"))
        core_machine, core_interp = elf(z.read("python/shm_redirect/bin/shmr-core"))
    assert lib_machine == ARCHES[arch] and core_machine == ARCHES[arch]
    assert not core_interp, "shmr-core must be static: it runs on any glibc"


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_zip_matches_tree_and_is_reproducible(arch, tmp_path):
    tree = os.path.join(LAYERS, arch)
    with zipfile.ZipFile(zip_path(arch)) as z:
        for name in expected_files():
            with open(os.path.join(tree, name), "rb") as f:
                assert z.read(name) == f.read(), name
    again = str(tmp_path / "again.zip")
    subprocess.run([sys.executable, os.path.join(ROOT, "lambda", "build_layer.py"),
                    "--lib", os.path.join(tree, "lib", "libshm_redirect.so"),
                    "--core-bin", os.path.join(tree, "python", "shm_redirect", "bin", "shmr-core"),
                    "--zip", again], check=True, stdout=subprocess.DEVNULL)
    with open(again, "rb") as a, open(zip_path(arch), "rb") as b:
        assert a.read() == b.read()


def test_package_finds_layer_library():
    tree = os.path.join(LAYERS, "x86_64")
    out = subprocess.run(
        [sys.executable, "-S", "-c", "import shm_redirect; print(shm_redirect.preload_path())"],
        env={"PYTHONPATH": os.path.join(tree, "python")}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == os.path.join(tree, "lib", "libshm_redirect.so")


def run_wrapper(env, *cmd):
    wrapper = os.path.join(LAYERS, "x86_64", "shm-redirect")
    env = dict(env, PATH=os.environ.get("PATH", "/usr/bin:/bin"), SHM_REDIRECT_SWEEP="0")
    p = subprocess.Popen([wrapper] + list(cmd), env=env, stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    return p.pid, out


def test_wrapper_sets_preload_and_execs():
    lib = os.path.join(LAYERS, "x86_64", "lib", "libshm_redirect.so")
    probe = "import os; print(os.getpid()); print(os.environ['LD_PRELOAD']); print(os.environ['SHM_REDIRECT_SWEPT'])"
    pid, out = run_wrapper({}, sys.executable, "-S", "-c", probe)
    got_pid, preload, swept = out.split("\n")[:3]
    assert int(got_pid) == pid, "the wrapper must exec the runtime (same pid), not run it as a child"
    assert preload == lib and swept == "1"
    # An existing LD_PRELOAD is kept after ours; ours is not added twice.
    _, out = run_wrapper({"LD_PRELOAD": "/nonexistent/other.so"}, sys.executable, "-S", "-c", probe)
    assert out.split("\n")[1] == lib + ":/nonexistent/other.so"
    _, out = run_wrapper({"LD_PRELOAD": lib}, sys.executable, "-S", "-c", probe)
    assert out.split("\n")[1] == lib


def dockerfile():
    with open(os.path.join(ROOT, "Dockerfile.example")) as f:
        return [line.split() for line in f if line.strip() and not line.startswith("#")]


def test_dockerfile_example():
    lines = dockerfile()
    froms = [i for i, w in enumerate(lines) if w[0] == "FROM"]
    assert len(froms) == 2, "multi-stage: a build stage and the final stage"
    assert lines[froms[0]][-1] == "build"
    assert lines[froms[1]][1].startswith("public.ecr.aws/lambda/python:")
    final = lines[froms[1]:]
    assert ["RUN", "make", "layer-tree"] in lines[:froms[1]]
    copies = [w for w in final if w[0] == "COPY" and w[1] == "--from=build"]
    dests = {}
    for _, _, src, dst in copies:
        assert src.startswith("/src/build/layer/tree/"), src
        local = os.path.join(ROOT, src[len("/src/"):])
        assert os.path.exists(local), "make layer-tree did not build " + local
        dests[dst] = local
    # Only the library and the package reach the final image.
    assert set(dests) == {"/opt/lib/libshm_redirect.so", "/opt/python/"}
    envs = dict(w[1].split("=", 1) for w in final if w[0] == "ENV")
    assert envs["LD_PRELOAD"] == "/opt/lib/libshm_redirect.so"
    assert envs["PYTHONPATH"].startswith("/opt/python")
    tree = os.path.join(LAYERS, "tree")
    assert sorted(os.listdir(os.path.join(tree, "python"))) == ["shm_redirect", "sitecustomize.py"]
