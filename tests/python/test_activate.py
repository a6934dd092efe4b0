"""Activation at interpreter start (shm_redirect.activation.activate), end to end.

Every case runs real interpreters; the no-/dev/shm cases run inside tests/sandbox.sh (root),
pytest itself outside. Activation comes from a real start-up hook, never from LD_PRELOAD in the
starting environment:
  * "sitecustomize": PYTHONPATH=<dir with our sitecustomize.py>:pybind (the Lambda-layer shape);
  * "pth": a user site-packages (PYTHONUSERBASE) holding shm_redirect.pth (the wheel's shape).
Run: /usr/bin/python3 -m pytest tests/python/test_activate.py  (make test-activate)
"""
import os
import subprocess
import sys
import sysconfig

import pytest

from conftest import LIB, PYBIND, ROOT, SANDBOX

WORKLOAD = os.path.join(ROOT, "tests", "python", "activation_workload.py")
PY = sys.executable
METHODS = "fork,spawn,forkserver"
BINDS = []   # temp dirs that must stay visible under the sandbox's fresh /tmp
PTH_LINE = "import shm_redirect.activation.activate; shm_redirect.activation.activate.activate()\n"


@pytest.fixture(scope="session")
def sites(tmp_path_factory):
    """{'sitecustomize': env, 'pth': env}: environments that activate at start-up."""
    assert os.path.exists(LIB), "build the library first (make lib)"
    base = tmp_path_factory.mktemp("activation")
    BINDS.append(str(base))
    os.chmod(base, 0o755)   # the sandbox runs as uid 993
    sc = base / "layer"
    subprocess.run([PY, os.path.join(PYBIND, "shm_redirect", "activation", "sitecustomize.py"), str(sc)],
                   check=True, stdout=subprocess.DEVNULL)
    userbase = base / "userbase"
    rel = os.path.relpath(sysconfig.get_path("purelib", "posix_user", {"userbase": "/X"}), "/X")
    sp = userbase / rel
    sp.mkdir(parents=True)
    (sp / "shm_redirect.pth").write_text(PYBIND + "\n" + PTH_LINE)
    for d, _, files in os.walk(base):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    return {"sitecustomize": {"PYTHONPATH": "%s:%s" % (sc, PYBIND)},
            "pth": {"PYTHONUSERBASE": str(userbase)},
            "layer_dir": str(sc)}


def clean_env(extra=()):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHM_REDIRECT", "PYTHON", "LD_PRELOAD"))}
    env.update(extra)
    return env


def sandbox(cmd, env, opts=("--devshm=none", "--ro", "--uid=993"), timeout=600, args=()):
    """Run cmd (a shell string, with args as $1...) in the sandbox with env (dict) passed by
    --env; returns CompletedProcess with text output. The starting environment has no LD_PRELOAD."""
    argv = [SANDBOX, *opts] + ["--bind=%s" % b for b in BINDS]
    for k, v in env.items():
        argv += ["--env", "%s=%s" % (k, v)]
    argv += ["--", "/bin/sh", "-c", cmd, "sh", *args]
    return subprocess.run(argv, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout, cwd="/")


def workload(env, methods=METHODS, devshm="none"):
    # The store is listed from inside the sandbox (its /tmp dies with it).
    cmd = ('%s %s %s; rc=$?; echo "LEFT-BEGIN"; ls -A /tmp/shm; echo "LEFT-END"; exit $rc'
           % (PY, WORKLOAD, methods))
    p = sandbox(cmd, env, opts=("--devshm=" + devshm, "--ro", "--uid=993"))
    out = p.stdout
    results = [l.split(None, 3) for l in out.splitlines() if l.startswith("RESULT ")]
    state = [l for l in out.splitlines() if l.startswith("STATE ")]
    left = out.split("LEFT-BEGIN\n", 1)[-1].split("LEFT-END", 1)[0].split()
    return p, state, results, left


def check_all_ok(p, results, left):
    bad = [r for r in results if r[3].split()[0] != "ok"]
    n_checks = 14
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(results) == 3 * n_checks, p.stdout + p.stderr
    assert not bad, "%s\n%s" % (bad, p.stderr[-3000:])
    assert left == [], "objects left in the store: %s" % left


@pytest.mark.parametrize("hook", ["sitecustomize", "pth"])
def test_patch_mode(sites, hook):
    """In-process patching, children preloaded through the exported LD_PRELOAD (as shipped)."""
    p, state, results, left = workload(dict(sites[hook], SHM_REDIRECT="patch"))
    assert state == ["STATE patch ctypes=True preload=True"], p.stdout + p.stderr
    check_all_ok(p, results, left)
    # Children (spawn/forkserver/pool workers) were preloaded, not patched.
    kids = [r[3] for r in results if r[1] in ("spawn", "forkserver") and "child:" in r[3]]
    assert kids and all("child: preloaded" in k for k in kids), kids


@pytest.mark.parametrize("hook", ["sitecustomize", "pth"])
def test_patch_mode_pure(sites, hook):
    """Patching only: no process is ever preloaded (SHM_REDIRECT_EXPORT=0); every interpreter
    patches itself at start-up."""
    p, state, results, left = workload(dict(sites[hook], SHM_REDIRECT="patch",
                                            SHM_REDIRECT_EXPORT="0"))
    assert state == ["STATE patch ctypes=True preload=False"], p.stdout + p.stderr
    check_all_ok(p, results, left)
    kids = [r[3] for r in results if "child:" in r[3]]
    assert kids and all("child: patch ctypes=True preload=False" in k for k in kids), kids


def test_patch_mode_defer(sites):
    """SHM_REDIRECT_EXPORT=defer: this process patches without exporting; its spawn/forkserver
    children patch themselves and export, so grandchildren are preloaded."""
    p, state, results, left = workload(dict(sites["pth"], SHM_REDIRECT="patch",
                                            SHM_REDIRECT_EXPORT="defer"))
    assert state == ["STATE patch ctypes=True preload=False"], p.stdout + p.stderr
    check_all_ok(p, results, left)
    kids = {(r[1], r[2]): r[3] for r in results if "child:" in r[3]}
    for m in ("spawn", "forkserver"):
        assert kids[(m, "lock")] == "ok child: patch ctypes=True preload=True", kids
        assert kids[(m, "grandchild")] == "ok child: preloaded ctypes=False preload=True", kids


@pytest.mark.parametrize("mode", ["preload", "auto"])
@pytest.mark.parametrize("hook", ["sitecustomize", "pth"])
def test_preload_mode(sites, hook, mode):
    """Re-exec with LD_PRELOAD (auto chooses it when the re-exec is safe)."""
    env = dict(sites[hook])
    if mode != "auto":
        env["SHM_REDIRECT"] = mode
    p, state, results, left = workload(env)
    assert state == ["STATE preloaded ctypes=False preload=True"], p.stdout + p.stderr
    assert "shm-redirect:" not in p.stderr, p.stderr
    check_all_ok(p, results, left)


@pytest.mark.parametrize("devshm", ["ro", "noperm"])
@pytest.mark.parametrize("mode", ["patch", "preload"])
def test_broken_devshm(sites, devshm, mode):
    """/dev/shm present but read-only (EROFS) or not writable (EACCES): the probe fails too."""
    env = dict(sites["pth"], SHM_REDIRECT=mode)
    if mode == "patch":
        env["SHM_REDIRECT_EXPORT"] = "0"
    p, state, results, left = workload(env, devshm=devshm)
    want = "patch ctypes=True preload=False" if mode == "patch" else \
        "preloaded ctypes=False preload=True"
    assert state == ["STATE " + want], p.stdout + p.stderr
    check_all_ok(p, results, left)


def test_preload_reexec_keeps_argv_pid_and_stdin(sites):
    """The re-exec replays sys.orig_argv, keeps the pid, happens once, and output written
    before it is not lost or duplicated."""
    code = ("import os, sys, shm_redirect.activation.activate as a; "
            "print('ARGV', sys.argv[1:], 'STATE', a.state, 'PID', os.getpid(), "
            "'MARK', os.environ.get('_SHM_REDIRECT_REEXEC'), 'IN', sys.stdin.read().strip())")
    # A here-document, not a pipe: a pipeline's last command would run in a subshell of its own.
    p = sandbox("echo $$; exec %s -c \"%s\" one 'two words' <<EOF\npiped\nEOF\n" % (PY, code),
                dict(sites["sitecustomize"], SHM_REDIRECT="preload"))
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and len(lines) == 2, p.stdout + p.stderr
    # The shell printed its pid, then exec'd python there: after the re-exec it is still that pid.
    shell_pid = int(lines[0])
    assert lines[1] == ("ARGV ['one', 'two words'] STATE preloaded PID %d MARK None IN piped"
                        % shell_pid), lines


def test_preload_not_at_startup_falls_back_to_patch(sites):
    """activate() called by a running program must not restart it: patch instead, one line."""
    code = ("import shm_redirect.activation.activate as a, multiprocessing as mp; print(a.activate()); "
            "l = mp.get_context('spawn').Lock(); print(l.acquire(), l._semlock.name is not None)")
    p = sandbox("%s -c \"%s\"" % (PY, code),
                {"PYTHONPATH": PYBIND, "SHM_REDIRECT": "preload"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.split() == ["patch", "True", "True"], p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "not called at interpreter start-up" in err[0], p.stderr


def test_fast_path_native(sites):
    """With a working /dev/shm the hook only probes: no ctypes, no _multiprocessing, nothing
    exported; on the host and in a sandbox with a fresh /dev/shm."""
    code = ("import sys, os, shm_redirect.activation.activate as a; "
            "print(a.state, 'ctypes' in sys.modules, '_multiprocessing' in sys.modules, "
            "'_posixshmem' in sys.modules, os.environ.get('LD_PRELOAD'), "
            "[m for m in sys.modules if m.startswith('shm_redirect')])")
    want = ("native False False False None ['shm_redirect', 'shm_redirect.activation', "
            "'shm_redirect.activation.activate']")
    for hook in ("sitecustomize", "pth"):
        for mode in ("auto", "patch", "preload"):
            env = clean_env(dict(sites[hook], SHM_REDIRECT=mode))
            p = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True)
            assert (p.stdout.strip(), p.stderr) == (want, ""), (hook, mode, p.stdout, p.stderr)
        p = sandbox("%s -c \"%s\" && ls -A /dev/shm" % (PY, code), sites[hook], opts=("--devshm=native", "--ro"))
        assert (p.stdout.strip(), p.stderr) == (want, ""), (hook, p.stdout, p.stderr)


def test_probe_without_o_tmpfile_leaves_nothing():
    """Where O_TMPFILE is unsupported the probe creates a named file: it must be gone at once,
    and the verdict must still be the right one."""
    code = ("import errno, os, sys, shm_redirect.activation.activate as a\n"
            "real = os.open\n"
            "def no_tmpfile(path, flags, *args):\n"
            "    if flags & os.O_TMPFILE == os.O_TMPFILE:\n"
            "        raise OSError(errno.EOPNOTSUPP, 'no O_TMPFILE here')\n"
            "    return real(path, flags, *args)\n"
            "os.open = no_tmpfile\n"
            "print(a.native_works(), os.listdir('/dev/shm'))\n")
    env = {"PYTHONPATH": PYBIND, "SHM_REDIRECT": "off"}
    p = sandbox("%s -c \"$1\" && ls -A /dev/shm | sed 's/^/LEFT /'" % PY, env, opts=("--devshm=native", "--ro"),
                args=(code,))
    assert (p.returncode, p.stdout, p.stderr) == (0, "True []\n", ""), (p.stdout, p.stderr)
    p = sandbox("%s -c \"$1\"" % PY, env, opts=("--devshm=ro", "--ro"), args=(code,))
    assert (p.returncode, p.stdout, p.stderr) == (0, "False []\n", ""), (p.stdout, p.stderr)


def test_off_does_nothing(sites):
    code = ("import sys, os, shm_redirect.activation.activate as a, multiprocessing as mp\n"
            "print(a.state, 'ctypes' in sys.modules, os.environ.get('LD_PRELOAD'))\n"
            "try:\n    mp.get_context('fork').Lock()\nexcept OSError as e:\n"
            "    print('LOCK FAILS', type(e).__name__)\n")
    for hook in ("sitecustomize", "pth"):
        p = sandbox("%s -c \"%s\"" % (PY, code), dict(sites[hook], SHM_REDIRECT="off"))
        assert p.stdout.split() == ["off", "False", "None", "LOCK", "FAILS",
                                    "FileNotFoundError"], p.stdout + p.stderr
        assert p.stderr == "", p.stderr


def test_never_raises(sites):
    """A bad mode is one stderr line (then auto); a missing library is one stderr line and the
    program still runs."""
    code = "import shm_redirect.activation.activate as a; print('RAN', a.state)"
    p = sandbox("%s -c \"%s\"" % (PY, code), dict(sites["pth"], SHM_REDIRECT="garbage"))
    assert p.stdout.split() == ["RAN", "preloaded"], p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "SHM_REDIRECT='garbage'" in err[0], p.stderr
    for mode in ("patch", "preload"):
        p = sandbox("%s -c \"%s\"" % (PY, code),
                    dict(sites["pth"], SHM_REDIRECT=mode, SHM_REDIRECT_LIB="/nonexistent.so"))
        err = p.stderr.strip().splitlines()
        assert p.returncode == 0 and p.stdout.split() == ["RAN", "error"], p.stdout + p.stderr
        assert len(err) in (1, 2) and err[-1].startswith("shm-redirect: activation failed"), \
            p.stderr
    # Natively, garbage still costs one line and nothing else.
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True,
                       env=clean_env(dict(sites["pth"], SHM_REDIRECT="garbage")))
    assert p.stdout.split() == ["RAN", "native"] and len(p.stderr.splitlines()) == 1, p.stderr


def test_idempotent(sites):
    code = ("import sys, _multiprocessing, shm_redirect.activation.activate as a, shm_redirect.activation.patch as p; "
            "c = _multiprocessing.SemLock; print(a.activate(), a.activate()); p.install(); "
            "print(_multiprocessing.SemLock is c, _multiprocessing.SemLock.__bases__[0].__name__, "
            "sys.meta_path.count(p._HeapHook), __import__('os').environ['LD_PRELOAD'].count('libshm'))")
    p = sandbox("%s -c \"%s\"" % (PY, code), dict(sites["pth"], SHM_REDIRECT="patch"))
    assert p.stdout.split() == ["patch", "patch", "True", "SemLock", "1", "1"], \
        p.stdout + p.stderr


def test_sitecustomize_chains(sites, tmp_path):
    """Our sitecustomize activates, then runs the next sitecustomize on sys.path: Debian's by
    default, or another one placed after ours."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import sys\nprint('OTHER-SITECUSTOMIZE', __name__)\n")
    code = ("import sys, sitecustomize as s; print('TOP', s.__file__); "
            "print('CHAINED', getattr(s.chained, '__file__', None))")
    layer = sites["layer_dir"]
    env = clean_env({"PYTHONPATH": "%s:%s:%s" % (layer, PYBIND, other)})
    p = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True)
    assert p.stdout.splitlines() == [
        "OTHER-SITECUSTOMIZE sitecustomize",
        "TOP %s/sitecustomize.py" % layer,
        "CHAINED %s/sitecustomize.py" % other], p.stdout + p.stderr
    env = clean_env({"PYTHONPATH": "%s:%s" % (layer, PYBIND)})
    p = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True)
    nxt = subprocess.run([PY, "-c", "import sitecustomize as s; print(s.__file__)"],
                         env=clean_env(), capture_output=True, text=True).stdout.strip()
    assert nxt, "this interpreter has no sitecustomize of its own"
    assert p.stdout.splitlines()[-1] == "CHAINED %s" % nxt, p.stdout + p.stderr
    # A failing chained sitecustomize is reported in one line, and the program runs.
    (other / "sitecustomize.py").write_text("raise RuntimeError('boom')\n")
    env = clean_env({"PYTHONPATH": "%s:%s:%s" % (layer, PYBIND, other)})
    p = subprocess.run([PY, "-c", "print('RAN')"], env=env, capture_output=True, text=True)
    assert p.stdout == "RAN\n" and p.stderr.count("\n") == 1 and "boom" in p.stderr, p.stderr
