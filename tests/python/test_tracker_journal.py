"""The tracker's journal in-process: what it records from pipe lines, its compaction, and the
replay that recovery reads back (the crash scenarios themselves are test_resource_tracker's)."""
import os
import sys

import pytest

from conftest import LIB, PYBIND

sys.path.insert(0, PYBIND)

pytestmark = pytest.mark.skipif(not os.path.exists(LIB), reason="build the library first (make lib)")


@pytest.fixture
def journal(tmp_path, monkeypatch):
    from shm_redirect.mp import tracker_journal as tj
    # the journal's first line names this test's parent, alive: read it as recovery would after
    # the whole tree died
    monkeypatch.setattr(tj, "_tracker_alive", lambda pid, start: False)
    dfd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    j = tj.Journal(dfd)
    yield tj, j
    j.remove()
    os.close(dfd)


def test_records_registrations_only(journal):
    tj, j = journal
    for line in (b"REGISTER:/psm_a:shared_memory\n", b"REGISTER:/mp-b:semaphore\n",
                 b"PROBE:0:noop\n", b"REGISTER:x:noop\n", b"garbage\n",
                 b"UNREGISTER:/mp-b:semaphore\n", b"REGISTER:/psm_c:shared_memory\n"):
        j.record(line)
    assert tj._read_journal(j.dfd, j.name) == {"shared_memory": {"/psm_a", "/psm_c"},
                                                "semaphore": set()}
    assert os.stat(j.name, dir_fd=j.dfd).st_mode & 0o777 == 0o600


def test_compaction_keeps_the_live_set(journal):
    tj, j = journal
    for i in range(5000):
        j.record(b"REGISTER:/psm_%d:shared_memory\n" % i)
        if i % 10:
            j.record(b"UNREGISTER:/psm_%d:shared_memory\n" % i)
    live = {"/psm_%d" % i for i in range(0, 5000, 10)}
    assert tj._read_journal(j.dfd, j.name) == {"shared_memory": live, "semaphore": set()}
    assert j.lines < 4096 + len(live) + 1           # compacted at least once
    assert not any(f.endswith(tj._TMP_SUFFIX) for f in os.listdir(j.dfd))
