"""The Go core as a CPython extension module, shm_redirect._core, for any CPython and CPU.

gopy's own `gopy build` binds and compiles in one step, for the interpreter that runs it and the
machine's C compiler. The binding does not depend on the target: gopy's Go wrappers, the C header
of their exports and pybindgen's C module are the same for every CPython. Only the compile does:
the target's Python headers, GOARCH, and a C compiler whose glibc is old enough. So this module
splits gopy's build in two:

    gen = generate(root, work)                          once: gopy gen, goimports, header, build.py
    compile_for(gen, dest, headers, goarch, cc)         per target: go build -buildmode=c-shared

The steps of generate() are gopy build's (cmd_build.go of the gopy that go.mod pins), in its
order. gopy, goimports and pybindgen run on this machine; nothing of the target runs here.
"""
import hashlib
import os
import shutil
import subprocess
import sys

# gopy prints this for a function it skipped: the extension would silently lack it.
GOPY_WARNING = "ignoring python incompatible"
# The generated module's cgo preamble names this directory (GOPY_INCLUDE) as the Python
# include directory: compile_for() fills it with the target's headers before each build.
PYINCLUDE = "pyinclude"
NAME = "core"   # gopy -name: the module is _core<EXT_SUFFIX>, with PyInit__core
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}   # a wheel's CPU (platform tag) -> Go's name


def run(cmd, cwd=None, env=None, capture=False):
    print("+ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, cwd=cwd, env=env, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None)
    if capture:
        sys.stdout.write(p.stdout)
    if p.returncode != 0:
        raise SystemExit("command failed (exit %d): %s" % (p.returncode, " ".join(cmd)))
    return p.stdout or ""


def _module_copy(root, mod):
    """gopy's output directory must lie inside the Go module, and `go build -mod=mod` may rewrite
    go.mod: work on a private copy, so the checkout is never touched and builds do not meet."""
    os.makedirs(mod)
    for f in ("go.mod", "go.sum"):
        shutil.copyfile(os.path.join(root, f), os.path.join(mod, f))
    for pkg in ("core", "pybind", "vendor"):
        if os.path.isdir(os.path.join(root, pkg)):
            shutil.copytree(
                os.path.join(root, pkg), os.path.join(mod, pkg),
                ignore=lambda d, names: [n for n in names
                                         if n.endswith("_test.go") or n == "testdata"
                                         or (os.path.isfile(os.path.join(d, n)) and pkg != "vendor"
                                             and not n.endswith(".go"))])


def _mod_flag(gen):
    # A vendored tree (the sdist) builds offline; otherwise gopy's -mod=mod, from the module cache.
    return "-mod=vendor" if os.path.isdir(os.path.join(gen, os.pardir, "vendor")) else "-mod=mod"


def stage_headers(include, dest, real_pyconfig=None):
    """Copy a CPython's include directory to dest. Debian's pyconfig.h only includes
    <TRIPLET/pythonX.Y/pyconfig.h> from the system include path, which for another root or CPU
    is not this machine's: real_pyconfig, that file, replaces it."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(include, dest, symlinks=False)
    if real_pyconfig:
        os.remove(os.path.join(dest, "pyconfig.h"))
        shutil.copyfile(real_pyconfig, os.path.join(dest, "pyconfig.h"))


def real_pyconfig(include, multiarch, prefix=""):
    """Debian's pyconfig.h is a wrapper, `#include <MULTIARCH/pythonX.Y/pyconfig.h>`: the path
    of that real file (under prefix, a root's directory), or None for a CPython whose pyconfig.h
    is its own (pyenv's)."""
    nested = "%s/%s/pyconfig.h" % (multiarch, os.path.basename(include))
    with open(os.path.join(prefix + include, "pyconfig.h")) as f:
        wrapper = bool(multiarch) and ("<%s>" % nested) in f.read()
    return os.path.join(prefix + "/usr/include", nested) if wrapper else None


def host_headers():
    """(include dir, real pyconfig.h or None) of the interpreter running this."""
    import sysconfig
    inc = sysconfig.get_path("include")
    return inc, real_pyconfig(inc, sysconfig.get_config_var("MULTIARCH") or "")


def _tools(root, bindir, env):
    for pkg, name in (("github.com/go-python/gopy", "gopy"), ("golang.org/x/tools/cmd/goimports", "goimports")):
        run([env.get("GO", "go"), "build", "-o", os.path.join(bindir, name), pkg], cwd=root, env=env)


def generate(root, work, go="go", python=sys.executable):
    """gopy's binding of ./pybind, compiled nowhere yet: returns the directory to compile_for().
    python runs gopy's build.py, so it must have pybindgen."""
    shutil.rmtree(work, ignore_errors=True)
    mod = os.path.join(work, "mod")
    _module_copy(root, mod)
    env = dict(os.environ, GO=go, CGO_ENABLED="1")
    bindir = os.path.join(work, "bin")
    _tools(root, bindir, env)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    gen = os.path.join(mod, "gopyout")
    # gopy asks the -vm for its include directory; GOPY_INCLUDE answers instead (with the two
    # variables its check wants beside it), so the preamble names PYINCLUDE, filled per target.
    # -dynamic-link: Python's symbols come from the interpreter that loads the module.
    env.update(GOPY_INCLUDE=os.path.join(gen, PYINCLUDE), GOPY_LIBDIR="/nonexistent", GOPY_PYLIB="python3")
    text = run([os.path.join(bindir, "gopy"), "gen", "-vm=" + python, "-name=" + NAME,
                "-output=" + gen, "-no-make", "-dynamic-link=true", "./pybind"], cwd=mod, env=env, capture=True)
    bad = [l for l in text.splitlines() if GOPY_WARNING in l]
    if bad:
        raise SystemExit("gopy could not bind every function of ./pybind:\n  " + "\n  ".join(bad))
    _fix_preamble(os.path.join(gen, NAME + ".go"), gen)
    run(["goimports", "-w", NAME + ".go"], cwd=gen, env=env)
    # The Go side first, with this machine's compiler and headers: cgo writes NAME_go.h, which
    # pybindgen's C module includes. The library itself is not kept.
    inc, real = host_headers()
    stage_headers(inc, os.path.join(gen, PYINCLUDE), real)
    lib = NAME + "_go.so"
    run([go, "build", _mod_flag(gen), "-buildmode=c-shared", "-o", lib, "."], cwd=gen,
        env=_cgo_env(env, stage=os.path.join(gen, PYINCLUDE)))
    os.remove(os.path.join(gen, lib))
    # build.py (pybindgen) writes NAME.c. In pip's isolated build pybindgen may be off this
    # interpreter's path although setup.py found it: hand over where it is.
    import importlib.util
    spec = importlib.util.find_spec("pybindgen")
    if spec is not None and spec.origin:
        where = os.path.dirname(os.path.dirname(spec.origin))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (where, env.get("PYTHONPATH")) if p)
    run([python, "build.py"], cwd=gen, env=env)
    if "pybind_Call" not in open(os.path.join(gen, "pybind.py")).read():
        # store/gocore.py calls the extension's one function; fail here, not at run time.
        raise SystemExit("gopy output lacks pybind.Call")
    return gen


def _fix_preamble(path, gen):
    """Two edits of gopy's generated NAME.go. Its #cgo LDFLAGS are the generating interpreter's
    LDSHARED minus the compiler (Debian's: -shared -Wl,-Bsymbolic-functions -g -fwrapv -O2): this
    machine's, not the target's, and zig's linker refuses -Bsymbolic-functions; cgo's c-shared
    link needs none of them (Python's symbols stay undefined, resolved by the loading
    interpreter), so the line is emptied. And the output directory, written into the file
    (the include path, a comment), becomes ${SRCDIR}: cgo names its symbols by a hash of the
    file's bytes, so a path in it would make every build directory's extension differ."""
    with open(path) as f:
        lines = f.read().replace(gen, "${SRCDIR}").split("\n")
    hits = [i for i, l in enumerate(lines) if l.startswith("#cgo LDFLAGS:")]
    if len(hits) != 1:
        raise SystemExit("%s: expected one #cgo LDFLAGS line, found %d" % (path, len(hits)))
    lines[hits[0]] = "#cgo LDFLAGS:"
    with open(path, "w") as f:
        f.write("\n".join(lines))


def _headers_digest(stage):
    h = hashlib.sha256()
    for top, dirs, files in os.walk(stage):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(top, f)
            h.update(os.path.relpath(path, stage).encode() + b"\0")
            with open(path, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()[:32]


def _cgo_env(env, cc=None, goarch=None, stage=None):
    # cgo's default CFLAGS add -g: no paths of this build in the file. The digest of the staged
    # Python headers is a define nothing reads: Go's build cache keys a cgo compile by its flags
    # and Go sources, not by the headers it includes, so without it a build against another
    # CPython's headers, staged at the same path, would reuse the objects of the first one.
    cflags = "-O2 -fPIC"
    if stage:
        cflags += " -DSHM_REDIRECT_PYTHON_HEADERS=" + _headers_digest(stage)
    env = dict(env, CGO_ENABLED="1", CGO_CFLAGS=cflags)
    if cc:
        env["CC"] = cc
    if goarch:
        env["GOARCH"] = goarch
    return env


def compile_for(gen, dest, headers, goarch=None, cc=None, go="go"):
    """Compile the binding in gen against headers (a staged include directory, stage_headers())
    for GOARCH with cc; the extension goes to dest. -trimpath and no build id: same bytes for
    the same inputs, whichever directory the build ran in."""
    stage = os.path.join(gen, PYINCLUDE)
    if os.path.abspath(headers) != stage:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.copytree(headers, stage)
    tmp = os.path.join(gen, "_" + NAME + ".so")
    run([go, "build", _mod_flag(gen), "-buildmode=c-shared", "-trimpath", "-buildvcs=false",
         "-ldflags=-s -w -buildid= -extldflags=-Wl,--build-id=none,--strip-all", "-o", tmp, "."],
        cwd=gen, env=_cgo_env(os.environ, cc, goarch, stage))
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    shutil.move(tmp, dest)
    return dest
