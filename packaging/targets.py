"""The wheels `make dist` builds, and where each one's CPython comes from.

A version-specific wheel carries the extension built for one CPython on one CPU; its headers and
its tags come from that interpreter itself, asked through describe() (on this machine, or
chrooted into a Debian root of tests/roots.list, through qemu-user for aarch64). Nothing of the
target's is typed in here but where to find it.
"""
import glob
import json
import os
import subprocess
from typing import NamedTuple, Optional

import gopy_extension   # beside this file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Target(NamedTuple):
    arch: str              # x86_64 or aarch64 (the wheel's platform)
    version: str           # "3.14"
    root: Optional[str]    # a root of tests/roots.list, or None: this machine
    python: str            # the interpreter: a path (in the root), or "pyenv:3.X"


TARGETS = (
    Target("x86_64", "3.10", None, "pyenv:3.10"),
    Target("x86_64", "3.11", None, "/usr/bin/python3.11"),       # Debian 12's
    Target("x86_64", "3.12", None, "pyenv:3.12"),
    Target("x86_64", "3.13", None, "pyenv:3.13"),
    Target("x86_64", "3.14", "sid-amd64", "/usr/bin/python3.14"),
    Target("x86_64", "3.15", "sid-amd64", "/usr/bin/python3.15"),
    Target("aarch64", "3.11", "bookworm-arm64", "/usr/bin/python3.11"),
    Target("aarch64", "3.13", "trixie-arm64", "/usr/bin/python3.13"),
    Target("aarch64", "3.14", "sid-arm64", "/usr/bin/python3.14"),
    Target("aarch64", "3.15", "sid-arm64", "/usr/bin/python3.15"),
)
ARCHES = ("x86_64", "aarch64")


def select(only=""):
    """The targets named in only ("x86_64:3.14,aarch64:3.11"; empty: all), in TARGETS' order."""
    names = [n for n in only.split(",") if n]
    unknown = set(names) - {"%s:%s" % (t.arch, t.version) for t in TARGETS}
    if unknown:
        raise SystemExit("no such target: %s" % ", ".join(sorted(unknown)))
    return [t for t in TARGETS if not names or "%s:%s" % (t.arch, t.version) in names]

# Asked of the target interpreter: what its wheel must be called and compiled against.
_QUERY = r"""
import json, platform, sys, sysconfig
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "tag": "cp%d%d" % sys.version_info[:2],
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    "include": sysconfig.get_path("include"),
    "multiarch": sysconfig.get_config_var("MULTIARCH") or "",
    "machine": platform.machine(),
}))
"""


def root_dir(name):
    """build/rootfs/NAME, built once by tests/rootfs.sh."""
    out = subprocess.run([os.path.join(ROOT, "tests", "rootfs.sh"), name], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def _pyenv(version):
    top = subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, text=True).stdout.strip() \
        or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(top, "versions", version + ".*", "bin", "python" + version)))
    if not found:
        raise SystemExit("no pyenv CPython %s under %s" % (version, top))
    return found[-1]


def command(t):
    """The argv prefix that runs t's interpreter, and the host path its root maps to ("")."""
    if t.root is None:
        py = _pyenv(t.version) if t.python.startswith("pyenv:") else t.python
        return [py], ""
    rdir = root_dir(t.root)
    return ["chroot", rdir, t.python], rdir


def describe(t):
    """What t's interpreter says of itself, with its include directory (and Debian's real
    pyconfig.h for its CPU, see gopy_extension.stage_headers) as paths on this machine."""
    argv, prefix = command(t)
    info = json.loads(subprocess.run(argv + ["-c", _QUERY], check=True, stdout=subprocess.PIPE,
                                     text=True).stdout)
    if info["version"] != t.version or info["machine"] != t.arch or info["free_threaded"]:
        raise SystemExit("%s: the interpreter is %s" % (t, info))
    info["include_host"] = prefix + info["include"]
    info["real_pyconfig"] = gopy_extension.real_pyconfig(info["include"], info["multiarch"], prefix)
    return info
