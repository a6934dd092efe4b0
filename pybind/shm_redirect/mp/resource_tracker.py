"""shm-redirect's resource tracker: CPython's, with crash safety for the store.

What is CPython's (the running version's code, not a copy)
-----------------------------------------------------------
* The client: ResourceTracker subclasses CPython's, so register/unregister/ensure_running/getfd,
  the pipe protocol (``CMD:NAME:RTYPE\\n``, 3.14's JSON lines for odd names; writes < PIPE_BUF),
  reentrancy, probing and fork handling are the version's own. Only the launch differs: CPython's
  launcher runs (mp.rebind) with a util whose spawnv_passfds swaps the child's ``-c`` command for
  ``from shm_redirect.mp.resource_tracker import main; main(fd)``, in a fresh interpreter (spawn,
  exec: never a fork), so the Go core may be loaded there. This package's directory is appended
  to the child's sys.path, so a checkout on PYTHONPATH works too. Before 3.14 (which does its
  own) the client's lock is re-created in a forked child: a fork while another thread held it
  cannot deadlock the child.
* The tracker loop: main() runs CPython's main with two names bound to ours: the cleanups
  (libshm_redirect.so's sem_unlink/shm_unlink: the store, or glibc's when the store is the native
  /dev/shm) and ``open``, so that every line read from the pipe is journaled first.

What is ours
------------
* Crash safety (what CPython lacks). In store mode (not the native /dev/shm) the tracker journals
  its registrations in the store directory, in ``.tracker.<pid>.<starttime>`` (starttime: field 22
  of /proc/<pid>/stat, so a reused pid is told apart). The journal is created O_EXCL|O_NOFOLLOW,
  mode 0600, relative to the store directory fd opened with the store's rules (core/STORE.md:
  O_NOFOLLOW, owner root or us, sticky if shared), appended with one line per registration
  (``CMD:NAME:RTYPE``; 3.14's JSON form for a name the plain form cannot carry) and compacted
  (temp file + rename) when mostly dead. The tracker keeps it open, so the Go core's
  Sweep sees it held and never removes a live tracker's journal.
  When a tracker starts (in a background thread, so clients never wait for it), and in
  ``shm-redirect clean``, ``recover()``:
    1. finds journals whose tracker is dead (no /proc/<pid>, or another start time) and that we
       own; replays each and unlinks the objects still registered that no live process holds
       (holders: the Go core's List, /proc/*/fd and /proc/*/maps); removes the journal when
       nothing listed in it is held any more, else leaves it for a later run;
    2. runs the Go core's Sweep with the default grace (60 s): objects of crashed trees that were
       never journaled (a tree whose tracker never started, SharedMemory(track=False), ...).
  A live process's objects are never removed: everything held is kept; a live tracker's journal
  is never processed; and a dead tracker's journal is left alone while the process that started
  that tracker (its first line, ``PARENT:<pid>.<starttime>:noop``) lives: a tracker killed alone
  (OOM) does not expose its still-running tree. Limits: a tree whose root died while forked
  descendants live on and hold nothing open/mapped of an object they will reopen by name can
  lose that object (CPython's tracker would unlink it at EOF too, once they exit); registrations
  still in the pipe when the tracker is SIGKILLed are not journaled (the grace sweep is the net).
* Python 3.13 ``SharedMemory(track=False)``: nothing is registered, so no tracker unlinks it,
  neither at EOF nor from a dead journal. Only the grace sweep (step 2) may remove it, and only
  when no live process has it open or mapped and it has not changed for the grace period: a
  track=False segment that must outlive every process holding it must be kept open/mapped by
  someone, or the store swept with a longer grace (SHM_REDIRECT_TRACKER_GRACE, seconds >= 0, as
  the Go core's; SHM_REDIRECT_TRACKER_RECOVER=0 disables recovery and sweep).
* Without a Go core (neither the extension nor shmr-core) no object can be proved unheld: step 1
  keeps everything and step 2 is skipped.
* The journal and recovery are shm_redirect.mp.tracker_journal; this module is the protocol.
"""
import os
import re
import threading
import warnings
from multiprocessing import resource_tracker as _rt
from multiprocessing import util as _util

from . import rebind

__all__ = ['ensure_running', 'register', 'unregister', 'getfd', 'main']

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CPYTHON_COMMAND = re.compile(r'from multiprocessing\.resource_tracker import main; ?main\((\d+)\)$')


class _LaunchUtil(object):
    """multiprocessing.util as CPython's tracker launcher sees it: spawnv_passfds starts our
    tracker's main instead of CPython's, on the same pipe."""

    def __getattr__(self, name):
        return getattr(_util, name)

    @staticmethod
    def spawnv_passfds(path, args, passfds):
        m = _CPYTHON_COMMAND.match(args[-1]) if len(args) >= 2 and args[-2] == '-c' else None
        if m is None:   # a CPython whose launcher we do not know: fail, never start its tracker
            raise RuntimeError('resource_tracker: unexpected tracker command line %r' % (args,))
        cmd = ('import sys; sys.path.append(%r); '
               'from shm_redirect.mp.resource_tracker import main; main(%s)' % (_PKG_PARENT, m[1]))
        return _util.spawnv_passfds(path, list(args[:-1]) + [cmd], passfds)


class ResourceTracker(_rt.ResourceTracker):
    """CPython's resource tracker client, whose tracker process runs this module's main."""

    if not hasattr(_rt.ResourceTracker, '_after_fork_in_child'):
        def _after_fork_in_child(self):
            # The fd (shared with the parent, as in CPython) stays; the lock may have been held
            # by a thread that does not exist in the child.
            self._lock._at_fork_reinit()


# 3.14 launches in _launch(), earlier versions inside ensure_running().
_LAUNCHER = '_launch' if hasattr(_rt.ResourceTracker, '_launch') else 'ensure_running'
setattr(ResourceTracker, _LAUNCHER,
        rebind.function(getattr(_rt.ResourceTracker, _LAUNCHER), util=_LaunchUtil()))

_resource_tracker = ResourceTracker()
ensure_running = _resource_tracker.ensure_running
register = _resource_tracker.register
unregister = _resource_tracker.unregister
getfd = _resource_tracker.getfd

if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_resource_tracker._after_fork_in_child)


def _open_journal(tracker_journal):
    """This tracker's Journal in the store (None natively, or if disabled or impossible). Loads
    the library once, before the recovery thread may use it."""
    from ..store import clib
    try:
        clib.load()
        if os.environ.get('SHM_REDIRECT_TRACKER_JOURNAL', '1') == '0' or clib.store_dir()[1]:
            return None
        return tracker_journal.Journal(clib.store_open(create=True))
    except Exception as e:
        warnings.warn('resource_tracker: no journal (%s): a crash may leak resources' % (e,))
        return None


def main(fd):
    '''Run resource tracker.'''
    from . import tracker_journal
    journal = _open_journal(tracker_journal)
    recovery = None
    if os.environ.get('SHM_REDIRECT_TRACKER_RECOVER', '1') != '0':
        recovery = threading.Thread(target=tracker_journal.recover_in_tracker,
                                    name='shm-redirect-recover', daemon=True)
        recovery.start()

    def open_pipe(fd, mode='rb'):
        f = open(fd, mode)
        return f if journal is None else tracker_journal.JournaledPipe(f, journal)
    cpython_main = rebind.function(_rt.main, open=open_pipe,
                                   _CLEANUP_FUNCS=tracker_journal.cleanup_funcs())
    try:
        cpython_main(fd)
    finally:
        if journal is not None:
            try:
                journal.remove()
            except Exception:
                pass
        if recovery is not None:
            recovery.join(30)
