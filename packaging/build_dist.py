"""`make dist`: every wheel and the sdist of shm-redirect, into dist/.

    build/dist-tools/bin/python packaging/build_dist.py [--out dist] [--only x86_64:3.14,...]

* gopy's binding is generated once (gopy_extension.generate), then compiled for each target of
  targets.TARGETS against that CPython's own headers with `zig cc -target <arch>-linux-gnu.2.17`
  (PyPI's ziglang): zig links against glibc 2.17's symbol versions, so the Go runtime's pthread
  and libc calls need nothing newer, on x86_64 as on aarch64, from this one machine.
* Each wheel is setup.py's (pip wheel, offline), told the CPU, the prebuilt extension and its
  CPython tag (setup.py's docstring); plus one universal wheel per CPU without the extension.
* The sdist holds the tracked tree and the Go modules vendored, so it builds without a network.
* Reproducible: SOURCE_DATE_EPOCH (default: the last commit's time) fixes every timestamp; the
  compiles are -trimpath with no build ids; the sdist's tar is written in a fixed order.
"""
import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gopy_extension  # noqa: E402
import targets  # noqa: E402

ROOT = targets.ROOT
WORK = os.path.join(ROOT, "_pybuild", "dist")
SYS_PYTHON = "/usr/bin/python3"   # Debian's: setuptools, wheel, pybindgen (the wheel build)


def zig_cc(arch):
    """cgo's CC for arch: zig's clang, linking against glibc 2.17's symbols. Go splits CC into
    words, so the interpreter running ziglang can be part of it."""
    return "%s -m ziglang cc -target %s-linux-gnu.2.17" % (sys.executable, arch)


def source_date_epoch():
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    p = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%ct"], stdout=subprocess.PIPE, text=True)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else "315532800"   # 1980-01-01


def build_extensions(chosen, go):
    """{target: path of its _core<EXT_SUFFIX>}."""
    gen = gopy_extension.generate(ROOT, os.path.join(WORK, "gopy"), go=go, python=SYS_PYTHON)
    out = {}
    for t in chosen:
        info = targets.describe(t)
        name = "%s-%s" % (info["tag"], t.arch)
        headers = os.path.join(WORK, "headers", name)
        gopy_extension.stage_headers(info["include_host"], headers, info["real_pyconfig"])
        dest = os.path.join(WORK, "ext", name, "_core" + info["ext_suffix"])
        gopy_extension.compile_for(gen, dest, headers, goarch=gopy_extension.GOARCH[t.arch],
                                   cc=zig_cc(t.arch), go=go)
        out[t] = (dest, info["tag"])
    return out


def build_wheel(out, arch, extension="none", pytag=None):
    env = dict(os.environ, SHMR_WHEEL_ARCH=arch, SHMR_WHEEL_EXTENSION=extension)
    if pytag:
        env["SHMR_WHEEL_PYTAG"] = pytag
    gopy_extension.run([SYS_PYTHON, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                        "--no-index", "-q", "-w", out, ROOT], env=env)


def _tracked_files():
    p = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], check=True, stdout=subprocess.PIPE)
    return sorted(f for f in p.stdout.decode().split("\0") if f and os.path.isfile(os.path.join(ROOT, f)))


def build_sdist(out, go):
    """The tracked tree plus vendor/ (go mod vendor), through setup.py's sdist (MANIFEST.in),
    then rewritten in a fixed order with fixed owners, modes and times."""
    stage = os.path.join(WORK, "sdist-tree")
    shutil.rmtree(stage, ignore_errors=True)
    for f in _tracked_files():
        os.makedirs(os.path.dirname(os.path.join(stage, f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(stage, f))
    gopy_extension.run([go, "mod", "vendor"], cwd=stage)
    tmp = os.path.join(WORK, "sdist-out")
    shutil.rmtree(tmp, ignore_errors=True)
    gopy_extension.run([SYS_PYTHON, "-c", "import sys; sys.path.insert(0, 'pybind/_build_backend'); "
                        "import offline_setuptools as b; print(b.build_sdist(sys.argv[1]))", tmp], cwd=stage)
    (name,) = os.listdir(tmp)
    normalize_tar(os.path.join(tmp, name), os.path.join(out, name), int(os.environ["SOURCE_DATE_EPOCH"]))


def normalize_tar(src, dest, mtime):
    with tarfile.open(src) as tin:
        members = sorted(tin.getmembers(), key=lambda m: m.name)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tout:
            for m in members:
                data = tin.extractfile(m) if m.isfile() else None
                m.mtime, m.uid, m.gid, m.uname, m.gname = mtime, 0, 0, "", ""
                m.mode = (0o755 if m.isdir() or m.mode & 0o100 else 0o644)
                m.pax_headers = {}
                tout.addfile(m, data)
    with open(dest, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "dist"))
    ap.add_argument("--only", default="", help="ARCH:VERSION,... (default: every target)")
    ap.add_argument("--no-sdist", action="store_true")
    args = ap.parse_args(argv)
    go = os.environ.get("GO", "go")
    chosen = targets.select(args.only)
    os.makedirs(args.out, exist_ok=True)
    # One time for every archive (the wheels' pip runs inherit it); zig's caches go with the
    # build, not to $HOME.
    os.environ["SOURCE_DATE_EPOCH"] = source_date_epoch()
    os.environ.setdefault("ZIG_GLOBAL_CACHE_DIR", os.path.join(WORK, "zig-cache"))
    os.environ.setdefault("ZIG_LOCAL_CACHE_DIR", os.path.join(WORK, "zig-cache"))
    for t, (ext, tag) in build_extensions(chosen, go).items():
        build_wheel(args.out, t.arch, ext, tag)
    for arch in targets.ARCHES:
        build_wheel(args.out, arch)
    if not args.no_sdist:
        build_sdist(args.out, go)
    for f in sorted(os.listdir(args.out)):
        print(f)


if __name__ == "__main__":
    main()
