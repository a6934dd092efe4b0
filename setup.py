"""Build of the shm-redirect wheels and sdist (metadata in pyproject.toml).

A wheel holds, inside the package shm_redirect:
  _core.<EXT_SUFFIX>     the Go core as a CPython extension (gopy; packaging/gopy_extension.py)
  libshm_redirect.so     the C preload, built by `make lib` (`make lib-arm64` for aarch64)
  bin/shmr-core          the Go core as a static executable (cmd/shmr-core, CGO_ENABLED=0), mode
                         0755: what the package uses where the extension is absent or cannot load
and at the top level shm_redirect.pth, the activation hook (guarded: it cannot raise).

By default (`pip install .`, `pip wheel .`, the sdist) the extension is built for the running
interpreter with this machine's C compiler, and the wheel is tagged cpXY-cpXY-manylinux_2_<N>_<arch>,
N the newest glibc symbol version its .so files need (never below manylinux2014's 17). Without
pybindgen, which gopy's binding needs, the wheel has no extension (and works through shmr-core).
`make dist` (packaging/build_dist.py) sets, per wheel:
  SHMR_WHEEL_ARCH        x86_64 or aarch64: the CPU of the preload and shmr-core (default: this one)
  SHMR_WHEEL_EXTENSION   a prebuilt _core.<EXT_SUFFIX> to ship, or "none": the universal wheel
                         py3-none-<platform>, for any CPython >= 3.10
  SHMR_WHEEL_PYTAG       with a prebuilt extension: its CPython tag (cp314)
Everything comes from the Go module proxy (gopy and goimports are pinned as tools in go.mod; the
sdist vendors them) and Debian packages (python3-setuptools, python3-wheel, python3-pybindgen).
Setuptools' scratch space is _pybuild/ (not build/, which holds the Makefile's outputs).
"""
import os
import platform
import re
import shutil
import subprocess
import sys

from setuptools import Distribution, Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "packaging"))
import gopy_extension  # noqa: E402  (packaging/, beside this file in the checkout and the sdist)

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - python3-wheel is a build requirement
    bdist_wheel = None

GO = os.environ.get("GO", "go")
MAKE = os.environ.get("MAKE", "make")
ARCH = os.environ.get("SHMR_WHEEL_ARCH") or platform.machine()
PREBUILT = os.environ.get("SHMR_WHEEL_EXTENSION")   # a path, "none", or unset: build it here
GOARCH = gopy_extension.GOARCH
if ARCH not in GOARCH:
    raise SystemExit("SHMR_WHEEL_ARCH: %r is not one of %s" % (ARCH, sorted(GOARCH)))

# The activation hook: one line, executed by site.py at every interpreter start. It must never
# raise (site.py would print a traceback on every start) and must stay cheap.
PTH_LINE = (
    "import sys; exec('try:\\n import shm_redirect.activation.activate as _a; _a.activate()\\n"
    "except Exception as _e:\\n sys.stderr.write(\"shm-redirect: activation failed: %r\\\\n\" % (_e,))')\n"
)


run = gopy_extension.run   # echo the command, fail the build with its exit code


def _want_extension():
    if PREBUILT:
        return PREBUILT != "none"
    import importlib.util
    if importlib.util.find_spec("pybindgen") is None:
        print("shm-redirect: pybindgen is not installed: no extension, the package uses shmr-core")
        return False
    return True


WITH_EXTENSION = _want_extension()


class BuildGoAndShim(build_ext):
    """build_ext that puts the preload and shmr-core into the package, and the extension (gopy)
    when there is one."""

    def run(self):
        pkg = os.path.join(os.path.abspath(self.build_lib), "shm_redirect")
        tmp = os.path.abspath(os.path.join(self.build_temp, "shm_redirect-" + ARCH))
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        os.makedirs(pkg, exist_ok=True)
        shutil.copyfile(self.build_shim(tmp), os.path.join(pkg, "libshm_redirect.so"))
        core = os.path.join(pkg, "bin", "shmr-core")
        os.makedirs(os.path.dirname(core), exist_ok=True)
        shutil.copyfile(self.build_core_bin(tmp), core)
        os.chmod(core, 0o755)   # install_lib and bdist_wheel keep it
        super().run()

    def build_extension(self, ext):
        if ext.name != "shm_redirect._core":
            return super().build_extension(ext)
        dest = os.path.abspath(self.get_ext_fullpath(ext.name))
        if PREBUILT:
            # The prebuilt file's own name carries its EXT_SUFFIX (another CPython's, maybe).
            dest = os.path.join(os.path.dirname(dest), os.path.basename(PREBUILT))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(PREBUILT, dest)
            return
        tmp = os.path.abspath(os.path.join(self.build_temp, "gopy"))
        gen = gopy_extension.generate(ROOT, tmp, go=GO)
        inc, real = gopy_extension.host_headers()
        headers = os.path.join(tmp, "headers")
        gopy_extension.stage_headers(inc, headers, real)
        gopy_extension.compile_for(gen, dest, headers, go=GO)

    def build_core_bin(self, tmp):
        # mk/gocore-bin.mk's recipe: the static Go core, for this CPU or cross-built for aarch64.
        build = os.path.join(tmp, "shim")
        target = os.path.join(build, "shmr-core" if ARCH == platform.machine() else "aarch64/shmr-core")
        run([MAKE, "-C", ROOT, target, "BUILD=" + build])
        return target

    def build_shim(self, tmp):
        build = os.path.join(tmp, "shim")
        if ARCH == platform.machine():
            run([MAKE, "-C", ROOT, "lib", "BUILD=" + build])
            return os.path.join(build, "libshm_redirect.so")
        run([MAKE, "-C", ROOT, "lib-arm64", "BUILD=" + build])   # mk/arm64.mk: the cross compiler
        return os.path.join(build, "aarch64", "libshm_redirect.so")


class BinaryDistribution(Distribution):
    """Never pure, even without the extension: the preload and shmr-core are machine code."""

    def has_ext_modules(self):
        return True


class BuildPyWithPth(build_py):
    """build_py that starts from an empty package tree (_pybuild/ persists between builds: a module
    since moved or removed must not ride along) and writes shm_redirect.pth at its top."""

    def run(self):
        shutil.rmtree(os.path.join(self.build_lib, "shm_redirect"), ignore_errors=True)
        super().run()
        with open(os.path.join(self.build_lib, "shm_redirect.pth"), "w") as f:
            f.write(PTH_LINE)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, "shm_redirect.pth")]


def glibc_needed(paths):
    """The newest GLIBC_x.y symbol version any of the ELF files needs, as (x, y); at least 2.17,
    manylinux2014's floor, the oldest tag pip still has for aarch64."""
    newest = (2, 17)
    for p in paths:
        out = subprocess.run(["objdump", "-T", p], stdout=subprocess.PIPE, check=True, text=True).stdout
        for m in re.finditer(r"\bGLIBC_(\d+)\.(\d+)(?:\.\d+)?\b", out):
            newest = max(newest, (int(m.group(1)), int(m.group(2))))
    return newest


def platform_tag(sos):
    major, minor = glibc_needed(sos)
    tag = "manylinux_%d_%d_%s" % (major, minor, ARCH)
    # The legacy alias too, for pip older than 20.3 (PEP 600): one file, both tags.
    return tag + ".manylinux2014_" + ARCH if (major, minor) == (2, 17) else tag


cmdclass = {"build_ext": BuildGoAndShim, "build_py": BuildPyWithPth}

if bdist_wheel is not None:
    class BdistWheelManylinux(bdist_wheel):
        """Tag the wheel for its glibc (platform_tag), its CPU, and its CPython: the extension's
        (cpXY-cpXY), or py3-none without one."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False
            if ARCH != platform.machine():
                self.plat_name = "linux_" + ARCH   # bdist_wheel takes the build machine's

        def get_tag(self):
            impl, abi, plat = super().get_tag()
            sos = [os.path.join(d, f) for d, _, fs in os.walk(self.bdist_dir) for f in fs if f.endswith(".so")]
            if plat.startswith("linux_") and sos:
                plat = platform_tag(sos)
            if not WITH_EXTENSION:
                impl, abi = "py3", "none"
            elif PREBUILT:
                impl = abi = os.environ["SHMR_WHEEL_PYTAG"]
            return impl, abi, plat

    cmdclass["bdist_wheel"] = BdistWheelManylinux

# egg_info refuses a missing egg_base, and a fresh checkout has no _pybuild/ yet.
os.makedirs(os.path.join(ROOT, "_pybuild"), exist_ok=True)

setup(
    package_dir={"": "pybind"},
    # The package by role: store/ (the gateways to the C and Go stores), mp/ (the mirrors of
    # CPython's multiprocessing modules), activation/ (interpreter start); py.typed: typed.
    packages=["shm_redirect", "shm_redirect.store", "shm_redirect.mp", "shm_redirect.activation"],
    package_data={"shm_redirect": ["py.typed"]},
    ext_modules=[Extension("shm_redirect._core", sources=[])] if WITH_EXTENSION else [],
    distclass=BinaryDistribution,
    cmdclass=cmdclass,
    options={
        # Not build/: the Makefile's outputs live there and other runs use them.
        "build": {"build_base": "_pybuild"},
        "egg_info": {"egg_base": "_pybuild"},
    },
    zip_safe=False,
)
