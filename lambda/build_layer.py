"""Build an AWS Lambda layer (a zip unpacked at /opt) or its tree, for one architecture (the
one the library and the helper were built for).

    python3 lambda/build_layer.py --lib SO --core-bin BIN (--zip OUT.zip | --tree DIR)

Layout (paths inside the zip, i.e. under /opt on Lambda):

    lib/libshm_redirect.so          the preload (Lambda puts /opt/lib on LD_LIBRARY_PATH)
    shm-redirect                    the AWS_LAMBDA_EXEC_WRAPPER script (lambda/shm-redirect)
    python/sitecustomize.py         activation for runtimes without the wrapper (chains to any
                                    other sitecustomize; /opt/python is on Lambda's PYTHONPATH,
                                    where .pth files are not processed)
    python/shm_redirect/...         the package: its .py files and bin/shmr-core, the static Go
                                    helper (sweeps, CLI) that runs on any Python and glibc

No gopy extension: the wheel's is built for one CPython and needs glibc 2.34, while Lambda's
python3.10/3.11 run on glibc 2.26 and 3.12-3.14 are other CPythons; the package then reaches the
Go core through bin/shmr-core (shm_redirect.store.gocore). One layer per architecture serves every
runtime. The package finds the library at ../../lib from itself (shm_redirect.preload_path), so
the layer holds one copy. Entries are written in sorted order with a fixed timestamp and explicit
modes (0755 for programs, 0644 otherwise): the same inputs give the same zip, byte for byte.
Standard library only.
"""
import argparse
import os
import shutil
import stat
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PKG = os.path.join(ROOT, "pybind", "shm_redirect")
EPOCH = (2020, 1, 1, 0, 0, 0)   # zip cannot store dates before 1980; any fixed one will do


def layer_files(lib, core_bin):
    """[(path in the layer, source file, mode)], sorted"""
    files = [
        ("lib/libshm_redirect.so", lib, 0o755),
        ("shm-redirect", os.path.join(HERE, "shm-redirect"), 0o755),
        ("python/sitecustomize.py", os.path.join(PKG, "activation", "sitecustomize.py"), 0o644),
        ("python/shm_redirect/bin/shmr-core", core_bin, 0o755),
    ]
    for top, dirs, names in os.walk(PKG):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = os.path.relpath(top, PKG).replace(os.sep, "/")
        for name in sorted(names):
            if name.endswith(".py") or name == "py.typed":
                path = "python/shm_redirect/" + ("" if rel == "." else rel + "/") + name
                files.append((path, os.path.join(top, name), 0o644))
    for path, src, _ in files:
        if not os.path.isfile(src):
            sys.exit("build_layer: missing %s (for %s)" % (src, path))
    return sorted(files)


def read(src):
    with open(src, "rb") as f:
        return f.read()


def write_zip(files, out):
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        dirs = set()
        for path, _, _ in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]) + "/")
        for d in sorted(dirs):
            info = zipfile.ZipInfo(d, EPOCH)
            info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
            z.writestr(info, b"")
        for path, src, mode in files:
            info = zipfile.ZipInfo(path, EPOCH)
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3   # unix: the modes above are honoured by unzip
            z.writestr(info, read(src))
    os.replace(tmp, out)


def write_tree(files, out):
    if os.path.exists(out):
        shutil.rmtree(out)
    for path, src, mode in files:
        dst = os.path.join(out, path)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(read(src))
        os.chmod(dst, mode)
    for dirpath, dirnames, _ in os.walk(out):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    os.chmod(out, 0o755)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", required=True)
    ap.add_argument("--core-bin", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--zip")
    g.add_argument("--tree")
    a = ap.parse_args()
    files = layer_files(a.lib, a.core_bin)
    if a.zip:
        write_zip(files, a.zip)
    else:
        write_tree(files, a.tree)
    print(a.zip or a.tree)


if __name__ == "__main__":
    main()
