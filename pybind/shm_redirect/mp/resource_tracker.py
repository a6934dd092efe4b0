"""shm-redirect's resource tracker: CPython's, with crash safety for the store.

Adapted from CPython 3.11 Lib/multiprocessing/resource_tracker.py: what changed
---------------------------------------------------------------------------------
* Same API (register, unregister, ensure_running, getfd, main(fd)), same rtypes ('noop',
  'semaphore', 'shared_memory'), same line protocol on the pipe (``CMD:NAME:RTYPE\\n`` with
  REGISTER, UNREGISTER, PROBE; writes < PIPE_BUF so they are atomic), same warnings.
* The tracker runs ``from shm_redirect.mp.resource_tracker import main; main(fd)`` in a fresh
  interpreter (spawn, exec: never a fork), so the Go core may be loaded there. This package's
  directory is appended to the child's sys.path, so a checkout on PYTHONPATH works too.
* Cleanup at EOF goes through libshm_redirect.so (shm_redirect.store.clib: sem_unlink/shm_unlink in
  the store, or glibc's when the store is the native /dev/shm) instead of _multiprocessing/_posixshmem.
* The client lock is re-created in a forked child (os.register_at_fork): a fork while another
  thread held it cannot deadlock the child.
* Crash safety (what CPython lacks). In store mode (not the native /dev/shm) the tracker journals
  its registrations in the store directory, in ``.tracker.<pid>.<starttime>`` (starttime: field 22
  of /proc/<pid>/stat, so a reused pid is told apart). The journal is created O_EXCL|O_NOFOLLOW,
  mode 0600, relative to the store directory fd opened with the store's rules (core/STORE.md:
  O_NOFOLLOW, owner root or us, sticky if shared), appended with the protocol's own lines and
  compacted (temp file + rename) when mostly dead. The tracker keeps it open, so the Go core's
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
import signal
import sys
import threading
import warnings

__all__ = ['ensure_running', 'register', 'unregister', 'getfd', 'main']

_HAVE_SIGMASK = hasattr(signal, 'pthread_sigmask')
_IGNORED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# The tracker process's cleanups (the journal module's: through libshm_redirect.so), imported
# there only: clients never load ctypes for them.
_CLEANUP_FUNCS = None


class ResourceTracker(object):

    def __init__(self):
        self._lock = threading.Lock()
        self._fd = None
        self._pid = None

    def _reinit_after_fork(self):
        # The fd (shared with the parent, as in CPython) stays; the lock may have been held by a
        # thread that does not exist in the child.
        self._lock = threading.Lock()

    def _stop(self):
        with self._lock:
            if self._fd is None:
                return
            os.close(self._fd)
            self._fd = None
            if self._pid is not None:
                try:
                    os.waitpid(self._pid, 0)
                except ChildProcessError:
                    pass
            self._pid = None

    def getfd(self):
        self.ensure_running()
        return self._fd

    def ensure_running(self):
        '''Make sure that resource tracker process is running.

        This can be run from any process.  Usually a child process will use
        the resource created by its parent.'''
        with self._lock:
            if self._fd is not None:
                if self._check_alive():
                    return
                os.close(self._fd)
                try:
                    if self._pid is not None:
                        os.waitpid(self._pid, 0)
                except ChildProcessError:
                    pass
                self._fd = None
                self._pid = None
                warnings.warn('resource_tracker: process died unexpectedly, '
                              'relaunching.  Some resources might leak.')

            from multiprocessing import spawn, util
            fds_to_pass = []
            try:
                fds_to_pass.append(sys.stderr.fileno())
            except Exception:
                pass
            pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            cmd = ('import sys; sys.path.append(%r); '
                   'from shm_redirect.mp.resource_tracker import main; main(%%d)' % pkg_parent)
            r, w = os.pipe()
            try:
                fds_to_pass.append(r)
                exe = spawn.get_executable()
                args = [exe] + util._args_from_interpreter_flags()
                args += ['-c', cmd % r]
                try:
                    if _HAVE_SIGMASK:
                        signal.pthread_sigmask(signal.SIG_BLOCK, _IGNORED_SIGNALS)
                    pid = util.spawnv_passfds(exe, args, fds_to_pass)
                finally:
                    if _HAVE_SIGMASK:
                        signal.pthread_sigmask(signal.SIG_UNBLOCK, _IGNORED_SIGNALS)
            except:
                os.close(w)
                raise
            else:
                self._fd = w
                self._pid = pid
            finally:
                os.close(r)

    def _check_alive(self):
        '''Check that the pipe has not been closed by sending a probe.'''
        try:
            os.write(self._fd, b'PROBE:0:noop\n')
        except OSError:
            return False
        else:
            return True

    def register(self, name, rtype):
        '''Register name of resource with resource tracker.'''
        self._send('REGISTER', name, rtype)

    def unregister(self, name, rtype):
        '''Unregister name of resource with resource tracker.'''
        self._send('UNREGISTER', name, rtype)

    def _send(self, cmd, name, rtype):
        self.ensure_running()
        msg = '{0}:{1}:{2}\n'.format(cmd, name, rtype).encode('ascii')
        if len(msg) > 512:
            raise ValueError('msg too long')
        nbytes = os.write(self._fd, msg)
        assert nbytes == len(msg), "nbytes {0:n} but len(msg) {1:n}".format(
            nbytes, len(msg))


_resource_tracker = ResourceTracker()
ensure_running = _resource_tracker.ensure_running
register = _resource_tracker.register
unregister = _resource_tracker.unregister
getfd = _resource_tracker.getfd

if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=lambda: _resource_tracker._reinit_after_fork())


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
    # protect the process from ^C and "killall python" etc
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _HAVE_SIGMASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _IGNORED_SIGNALS)

    for f in (sys.stdin, sys.stdout):
        try:
            f.close()
        except Exception:
            pass

    from . import tracker_journal
    global _CLEANUP_FUNCS
    _CLEANUP_FUNCS = tracker_journal.CLEANUP
    journal = _open_journal(tracker_journal)
    recovery = None
    if os.environ.get('SHM_REDIRECT_TRACKER_RECOVER', '1') != '0':
        recovery = threading.Thread(target=tracker_journal.recover_in_tracker,
                                    name='shm-redirect-recover', daemon=True)
        recovery.start()

    cache = {rtype: set() for rtype in _CLEANUP_FUNCS.keys()}
    try:
        # keep track of registered/unregistered resources
        with open(fd, 'rb') as f:
            for line in f:
                try:
                    cmd, name, rtype = line.strip().decode('ascii').split(':')
                    cleanup_func = _CLEANUP_FUNCS.get(rtype, None)
                    if cleanup_func is None:
                        raise ValueError(
                            f'Cannot register {name} for automatic cleanup: '
                            f'unknown resource type {rtype}')

                    if cmd == 'REGISTER':
                        cache[rtype].add(name)
                    elif cmd == 'UNREGISTER':
                        cache[rtype].remove(name)
                    elif cmd == 'PROBE':
                        pass
                    else:
                        raise RuntimeError('unrecognized command %r' % cmd)
                    if journal is not None and cmd != 'PROBE' and rtype != 'noop':
                        try:
                            journal.write(line if line.endswith(b'\n') else line + b'\n',
                                          {k: v for k, v in cache.items() if k != 'noop'})
                        except OSError as e:
                            warnings.warn('resource_tracker: journal: %s' % (e,))
                except Exception:
                    try:
                        sys.excepthook(*sys.exc_info())
                    except:
                        pass
    finally:
        # all processes have terminated; cleanup any remaining resources
        for rtype, rtype_cache in cache.items():
            if rtype_cache:
                try:
                    warnings.warn('resource_tracker: There appear to be %d '
                                  'leaked %s objects to clean up at shutdown' %
                                  (len(rtype_cache), rtype))
                except Exception:
                    pass
            for name in rtype_cache:
                # For some reason the process which created and registered this
                # resource has failed to unregister it. Presumably it has
                # died.  We therefore unlink it.
                try:
                    try:
                        _CLEANUP_FUNCS[rtype](name)
                    except Exception as e:
                        warnings.warn('resource_tracker: %r: %s' % (name, e))
                finally:
                    pass
        if journal is not None:
            try:
                journal.remove()
            except Exception:
                pass
        if recovery is not None:
            recovery.join(30)
