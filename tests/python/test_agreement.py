"""The store's two implementations agree, environment by environment (acceptance of "one rule,
one place"): in each of the environments below, the C library (as the CLI reports it), the Go
core (gopy extension and shmr-core, and as the CLI reaches it), the preload, the explicit
context, the resource tracker and `shm-redirect ls` give the same directory and verdict -- and
that verdict is the one written here, so a rule changed in both languages at once fails too.

Each environment is one tests/sandbox.sh run (uid 993, read-only / with a fresh ext4 /tmp unless
said) of tests/python/agreement_probe.py with the installed wheel's python.
"""
import errno
import json
import os
import shutil

import pytest

from conftest import readable_by_all

HERE = os.path.dirname(os.path.abspath(__file__))
UID = 993
E = errno

# Hostile store directories, made as root on the host (read-only inside the sandbox, which only
# inspects them: every one is refused before anything is written).
FIX = "/var/tmp/shmr-agreement"

# (id, sandbox options, environment, expected [dir, native, native_errno, errno])
CASES = [
    ("lambda", [], {}, ["/tmp/shm", False, E.ENOENT, 0]),
    ("devshm-native", ["--devshm=native"], {}, ["/dev/shm", True, 0, 0]),
    ("devshm-readonly", ["--devshm=ro"], {}, ["/tmp/shm", False, E.EROFS, 0]),
    ("devshm-not-writable", ["--devshm=noperm"], {}, ["/tmp/shm", False, E.EACCES, 0]),
    ("devshm-dir-on-ramfs", ["--devshm=dir"], {}, ["/tmp/shm", False, E.EMEDIUMTYPE, 0]),
    # a tmpfs /dev, as in a container; the sandbox's /dev is read-only, so not writable there
    ("devshm-dir-on-tmpfs", ["--dev=tmpfs", "--devshm=dir"], {}, ["/tmp/shm", False, E.EROFS, 0]),
    ("devshm-symlink", ["--devshm=symlink"], {}, ["/dev/shm", True, 0, 0]),
    ("env-dir", [], {"SHM_REDIRECT_DIR": "/tmp/store"}, ["/tmp/store", False, E.ENOENT, 0]),
    ("env-dir-trailing-slashes", [], {"SHM_REDIRECT_DIR": "/tmp/store//"}, ["/tmp/store", False, E.ENOENT, 0]),
    ("env-dir-over-native", ["--devshm=native"], {"SHM_REDIRECT_DIR": "/tmp/store"},
     ["/tmp/store", False, 0, 0]),
    ("env-dir-relative", [], {"SHM_REDIRECT_DIR": "rel/shm"}, ["", False, E.ENOENT, E.EINVAL]),
    ("env-dir-missing-parent", [], {"SHM_REDIRECT_DIR": FIX + "/none/shm"},
     [FIX + "/none/shm", False, E.ENOENT, E.ENOENT]),
    ("env-dir-symlink", [], {"SHM_REDIRECT_DIR": FIX + "/link"}, [FIX + "/link", False, E.ENOENT, E.ELOOP]),
    ("env-dir-file", [], {"SHM_REDIRECT_DIR": FIX + "/file"}, [FIX + "/file", False, E.ENOENT, E.ENOTDIR]),
    ("env-dir-foreign-owner", [], {"SHM_REDIRECT_DIR": FIX + "/foreign"},
     [FIX + "/foreign", False, E.ENOENT, E.EACCES]),
    ("env-dir-world-writable-not-sticky", [], {"SHM_REDIRECT_DIR": FIX + "/ww"},
     [FIX + "/ww", False, E.ENOENT, E.EACCES]),
    ("tmpdir-trailing-slash", [], {"TMPDIR": "/tmp/"}, ["/tmp//shm", False, E.ENOENT, 0]),
    ("tmpdir-read-only", [], {"TMPDIR": "/var/tmp"}, ["/var/tmp/shm", False, E.ENOENT, E.EROFS]),
    ("tmpdir-relative", [], {"TMPDIR": "relative"}, ["/tmp/shm", False, E.ENOENT, 0]),
    ("tmpdir-empty", [], {"TMPDIR": ""}, ["/tmp/shm", False, E.ENOENT, 0]),
]


@pytest.fixture(scope="module")
def fixtures():
    shutil.rmtree(FIX, ignore_errors=True)
    os.makedirs(FIX, mode=0o755)
    os.chmod(FIX, 0o755)
    os.mkdir(FIX + "/foreign", 0o755)
    os.chown(FIX + "/foreign", 65534, 65534)
    os.mkdir(FIX + "/ww")
    os.chmod(FIX + "/ww", 0o777)
    os.chown(FIX + "/ww", UID, UID)
    open(FIX + "/file", "w").close()
    os.symlink("ww", FIX + "/link")
    yield FIX
    shutil.rmtree(FIX)


def expected_behaviour(v, existing):
    """What the behavioural implementations must show for the verdict v, given the errno of
    opening the store before anything created it."""
    d, native, _, err = v
    made = [d, 0] if err == 0 else ["", err]
    return {
        "preload": made,
        "context": made,
        "tracker": ["", 0] if native else made,
        # ls never creates: a missing store lists as empty
        "ls": [None, 0 if existing == E.ENOENT else existing],
    }


@pytest.mark.parametrize("name, opts, env, want", CASES, ids=[c[0] for c in CASES])
def test_every_implementation_agrees(inst, fixtures, name, opts, env, want):
    probe = os.path.join(HERE, "agreement_probe.py")
    readable_by_all(HERE)
    envs = [a for k, v in env.items() for a in ("--env", "%s=%s" % (k, v))]
    # --bind: the venv lives under the host's /tmp, which --ro replaces
    p = inst.sandbox(["--ro", "--uid=%d" % UID, "--bind=" + inst.venv] + opts + envs,
                     [inst.python, probe], env=inst.env())
    got = json.loads(p.stdout.strip().splitlines()[-1])
    for impl in ("c-library", "gopy", "shmr-core", "cli-go"):
        assert got[impl] == want, (impl, got, p.stderr)
    # Before anything created it, the store was missing, or met what the verdict says.
    assert got["c-existing"] in (E.ENOENT, want[3]), (got, p.stderr)
    for impl, w in expected_behaviour(want, got["c-existing"]).items():
        assert got[impl] == w, (impl, got, p.stderr)


def test_the_matrix_is_wide():
    assert len(CASES) >= 15 and len({c[0] for c in CASES}) == len(CASES)
