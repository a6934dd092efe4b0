"""The shm-redirect CLI, installed from the wheel: doctor, ls, clean, run, preload-path."""
import json
import os
import subprocess

from conftest import readable_by_all

# A process with the preload that creates a semaphore (value 2) and a 4096-byte segment in the
# store, and either leaves them behind (exits without unlinking) or holds them until stdin closes.
MAKER = r"""
import os, sys, _multiprocessing, _posixshmem, mmap
tag = sys.argv[1]
sem = _multiprocessing.SemLock(1, 2, 5, "/shmr-t-sem-" + tag, False)
fd = _posixshmem.shm_open("/shmr-t-seg-" + tag, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
os.ftruncate(fd, 4096)
m = mmap.mmap(fd, 4096)
os.close(fd)
print("ready", os.getpid(), flush=True)
if sys.argv[2] == "hold":
    sys.stdin.read()
"""


def make_objects(inst, store, tag, hold=False):
    env = inst.env(SHM_REDIRECT_DIR=store, LD_PRELOAD=inst.preload())
    args = [inst.python, "-c", MAKER, tag, "hold" if hold else "leak"]
    if not hold:
        p = inst.run(args, env=env)
        assert p.stdout.startswith("ready")
        return None
    proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("ready"), line
    return proc


def ls(inst, store):
    p = inst.run([inst.cli, "ls", "--json"], env=inst.env(SHM_REDIRECT_DIR=store))
    return {o["name"]: o for o in json.loads(p.stdout)}


def test_doctor_native(inst):
    p = inst.run([inst.cli, "doctor"])
    out = p.stdout
    assert "sem_open  works" in out and "shm_open  works" in out
    assert "/dev/shm works" in out
    assert "/dev/shm (native" in out
    assert "available;" in out  # the Go core listing
    assert "SHM_REDIRECT=(unset: auto)" in out
    assert p.returncode == 0


def test_doctor_without_devshm_explains_enoent(inst):
    p = inst.sandbox(["--devshm=none"], [inst.cli, "doctor"], env=inst.env())
    out = p.stdout
    assert "sem_open  fails: ENOENT" in out and "shm_open  fails: ENOENT" in out
    assert "/dev/shm does not exist" in out
    assert "/tmp/shm (store)" in out
    assert "safety: ok" in out
    assert "free space:" in out and "RLIMIT_NOFILE" in out
    assert "Verdict: native IPC fails here" in out


def test_doctor_readonly_devshm_explains_erofs(inst):
    p = inst.sandbox(["--devshm=ro"], [inst.cli, "doctor"], env=inst.env())
    assert "fails: EROFS" in p.stdout and "read-only" in p.stdout


def test_doctor_reports_active_preload_and_mode(inst):
    env = inst.env(SHM_REDIRECT="patch")
    p = inst.run([inst.cli, "run", "--", inst.cli, "doctor"], env=env)
    assert "active in this process: yes" in p.stdout
    assert "SHM_REDIRECT=patch" in p.stdout
    # the probe ran without the preload: native still works here
    assert "sem_open  works" in p.stdout


def test_ls_and_clean_leaked_objects(inst, store):
    make_objects(inst, store, "leak")
    objs = ls(inst, store)
    assert set(objs) == {"shmr-t-sem-leak", "shmr-t-seg-leak"}
    sem, seg = objs["shmr-t-sem-leak"], objs["shmr-t-seg-leak"]
    assert (sem["kind"], sem["size"], sem["value"], sem["holders"], sem["file"]) == \
        ("semaphore", 32, 2, [], "sem.shmr-t-sem-leak")
    assert (seg["kind"], seg["size"], seg["value"], seg["holders"]) == ("segment", 4096, -1, [])
    table = inst.run([inst.cli, "ls"], env=inst.env(SHM_REDIRECT_DIR=store)).stdout.splitlines()
    assert table[0].split() == ["KIND", "NAME", "SIZE", "VALUE", "HOLDERS"]
    assert table[1].split() == ["semaphore", "shmr-t-sem-leak", "32", "2", "-"]
    # young objects survive the default grace period; --dry-run removes nothing
    p = inst.run([inst.cli, "clean"], env=inst.env(SHM_REDIRECT_DIR=store))
    assert p.stdout.strip().endswith("removed 0 object(s)")
    p = inst.run([inst.cli, "clean", "--dry-run", "--grace", "0"], env=inst.env(SHM_REDIRECT_DIR=store))
    assert "would remove 2 object(s)" in p.stdout
    assert len(os.listdir(store)) == 2
    p = inst.run([inst.cli, "clean", "--grace", "0"], env=inst.env(SHM_REDIRECT_DIR=store))
    assert "removed 2 object(s)" in p.stdout
    assert os.listdir(store) == []
    assert ls(inst, store) == {}


def test_clean_never_removes_held_objects(inst, store):
    proc = make_objects(inst, store, "held", hold=True)
    try:
        objs = ls(inst, store)
        assert objs["shmr-t-sem-held"]["holders"] == [proc.pid]
        assert objs["shmr-t-seg-held"]["holders"] == [proc.pid]
        p = inst.run([inst.cli, "clean", "--grace", "0"], env=inst.env(SHM_REDIRECT_DIR=store))
        assert "removed 0 object(s)" in p.stdout
        assert len(os.listdir(store)) == 2
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    p = inst.run([inst.cli, "clean", "--grace", "0"], env=inst.env(SHM_REDIRECT_DIR=store))
    assert "removed 2 object(s)" in p.stdout
    assert os.listdir(store) == []


def test_ls_clean_objects_made_by_c_in_sandbox_default_store(inst, tmp_path):
    # A C program with the preload (python's own sem_open/shm_open are C; here via the sandbox's
    # --preload, i.e. build/libshm_redirect.so) in a sandbox without /dev/shm and with a fresh /tmp:
    # the store is /tmp/shm; ls sees the leaked objects and clean leaves the store empty.
    script = tmp_path / "scenario.sh"
    script.write_text(
        "set -e\n"
        "LD_PRELOAD=%(pre)s %(py)s -c %(maker)s c leak >/dev/null\n"
        "%(cli)s ls --json\n"
        "echo ===\n"
        "%(cli)s clean --grace 0\n"
        "echo ===\n"
        "ls -A /tmp/shm | wc -l\n" % {
            "pre": inst.preload(), "py": inst.python, "cli": inst.cli,
            "maker": "'" + MAKER.replace("'", "'\\''") + "'"})
    os.chmod(str(script), 0o755)
    readable_by_all(tmp_path)
    p = inst.sandbox(["--devshm=none", "--ro", "--bind=%s" % tmp_path, "--bind=%s" % inst.venv],
                     ["/bin/bash", str(script)], env=inst.env())
    listing, cleaned, left = p.stdout.split("===\n")
    names = sorted(o["name"] for o in json.loads(listing))
    assert names == ["shmr-t-seg-c", "shmr-t-sem-c"]
    assert "removed 2 object(s)" in cleaned
    assert left.strip() == "0"


def test_clean_refuses_native_devshm(inst):
    p = inst.run([inst.cli, "clean", "--grace", "0"])
    assert "never sweeps it" in p.stdout and p.returncode == 0


def test_clean_bad_store_fails(inst, tmp_path):
    link = tmp_path / "link"
    os.symlink(str(tmp_path), str(link))
    p = inst.run([inst.cli, "clean", "--grace", "0"], env=inst.env(SHM_REDIRECT_DIR=str(link)), check=False)
    assert p.returncode == 1 and "too many levels of symbolic links" in p.stderr.lower()
    p = inst.run([inst.cli, "ls"], env=inst.env(SHM_REDIRECT_DIR="relative"), check=False)
    assert p.returncode == 1 and "invalid argument" in p.stderr


def test_run_prepends_ld_preload(inst):
    pre = inst.preload()
    code = "import os; print(os.environ['LD_PRELOAD']); print('libshm_redirect.so' in open('/proc/self/maps').read())"
    p = inst.run([inst.cli, "run", "--", inst.python, "-c", code], env=inst.env(LD_PRELOAD="libm.so.6"))
    assert p.stdout.split() == [pre + ":libm.so.6", "True"]
    p = inst.run([inst.cli, "run", "--", inst.python, "-c", code])
    assert p.stdout.split() == [pre, "True"]
    p = inst.run([inst.cli, "run", "--", "/nonexistent/cmd"], check=False)
    assert p.returncode == 127


def test_run_makes_multiprocessing_work_without_devshm(inst):
    code = ("import multiprocessing as mp\n"
            "l = mp.Lock(); v = mp.Value('i', 41)\n"
            "with l: v.value += 1\n"
            "from multiprocessing import shared_memory\n"
            "s = shared_memory.SharedMemory(create=True, size=64); s.close(); s.unlink()\n"
            "print(v.value)\n")
    # SHM_REDIRECT=off: without the activation hook (shm_redirect.pth) nothing redirects.
    bare = inst.sandbox(["--devshm=none"], [inst.python, "-c", code], env=inst.env(SHM_REDIRECT="off"), check=False)
    assert bare.returncode != 0 and "No such file or directory" in bare.stderr
    p = inst.sandbox(["--devshm=none"], [inst.cli, "run", "--", inst.python, "-c", code],
                     env=inst.env(SHM_REDIRECT="off"))
    assert p.stdout.strip() == "42"


def test_python_m_and_help(inst):
    p = inst.run([inst.python, "-m", "shm_redirect", "--help"])
    for sub in ("doctor", "ls", "clean", "run", "preload-path"):
        assert sub in p.stdout
    assert inst.run([inst.cli, "--version"]).stdout.strip() == "shm-redirect 0.1.0"
