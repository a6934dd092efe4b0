"""shm-redirect's resource tracker: CPython's, with crash safety for the store.

Adapted from CPython 3.11 Lib/multiprocessing/resource_tracker.py: what changed
---------------------------------------------------------------------------------
* Same API (register, unregister, ensure_running, getfd, main(fd)), same rtypes ('noop',
  'semaphore', 'shared_memory'), same line protocol on the pipe (``CMD:NAME:RTYPE\\n`` with
  REGISTER, UNREGISTER, PROBE; writes < PIPE_BUF so they are atomic), same warnings.
* The tracker runs ``from shm_redirect.resource_tracker import main; main(fd)`` in a fresh
  interpreter (spawn, exec: never a fork), so the Go core may be loaded there. This package's
  directory is appended to the child's sys.path, so a checkout on PYTHONPATH works too.
* Cleanup at EOF goes through libshm_redirect.so (shm_redirect._native: sem_unlink/shm_unlink in
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
  someone, or the store swept with a longer grace (SHM_REDIRECT_TRACKER_GRACE, seconds; <0: never).
* Without the Go core (a checkout without the wheel) holders come from a Python /proc scan and
  step 2 is skipped.
"""
import errno
import os
import signal
import stat
import sys
import threading
import warnings

__all__ = ['ensure_running', 'register', 'unregister', 'getfd', 'main', 'recover']

_HAVE_SIGMASK = hasattr(signal, 'pthread_sigmask')
_IGNORED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

JOURNAL_PREFIX = '.tracker.'
_TMP_SUFFIX = '.new'
_MAX_JOURNAL = 64 << 20          # never read more than this from a (hostile) journal
DEFAULT_GRACE = 60.0


def _sem_unlink(name):
    from . import _native
    _native.load()
    _native.sem_unlink(name)


def _shm_unlink(name):
    from . import _native
    _native.load()
    _native.shm_unlink(name)


_CLEANUP_FUNCS = {
    'noop': lambda name: None,
    'semaphore': _sem_unlink,
    'shared_memory': _shm_unlink,
}

# rtype -> the Go core's kind
_KINDS = {'semaphore': 'semaphore', 'shared_memory': 'segment'}


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
                   'from shm_redirect.resource_tracker import main; main(%%d)' % pkg_parent)
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


# ---------------------------------------------------------------------------------------------
# The store directory, journals and recovery (tracker process and CLI only).

def _starttime(pid):
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None if there is no such pid."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    rest = data[data.rfind(b')') + 2:].split()
    try:
        if rest[0] in (b'Z', b'X'):   # a zombie holds nothing and runs nothing: dead
            return None
        return int(rest[19])          # fields 3.. follow the comm; 22 - 3 = 19
    except (IndexError, ValueError):
        return None


def _resolve_dir(use_gocore):
    """(directory, native) as the preload resolves it (core/STORE.md)."""
    if use_gocore:
        try:
            from . import _gocore
            if _gocore.core_available():
                return _gocore.resolve_dir()
        except Exception:
            pass
    d = os.environ.get('SHM_REDIRECT_DIR')
    if d:
        return d, False
    try:
        import ctypes
        import ctypes.util

        class _Statfs(ctypes.Structure):
            _fields_ = [('f_type', ctypes.c_long), ('_rest', ctypes.c_byte * 112)]
        libc = ctypes.CDLL(None, use_errno=True)
        sf = _Statfs()
        if (libc.statfs(b'/dev/shm', ctypes.byref(sf)) == 0 and sf.f_type == 0x01021994
                and os.path.isdir('/dev/shm')
                and os.access('/dev/shm', os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids)):
            return '/dev/shm', True
    except Exception:
        pass
    tmp = os.environ.get('TMPDIR', '')
    if not tmp.startswith('/'):
        tmp = '/tmp'
    return os.path.join(tmp, 'shm'), False


def open_store_dir(path, create=True):
    """The store directory's fd, checked as the preload checks it (core/STORE.md)."""
    if not os.path.isabs(path):
        raise OSError(errno.EINVAL, 'store directory must be absolute', path)
    created = False
    if create:
        try:
            os.mkdir(path, 0o700)
            created = True
        except FileExistsError:
            pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if created:
            os.fchmod(fd, 0o1777)
        st = os.fstat(fd)
        if st.st_uid not in (0, os.geteuid()):
            raise OSError(errno.EACCES, 'store directory has a foreign owner', path)
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            raise OSError(errno.EACCES, 'shared store directory is not sticky', path)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Journal(object):
    """This tracker's journal: created on the first REGISTER, kept open, removed at the end."""

    def __init__(self, dfd):
        self.dfd = dfd
        self.name = '%s%d.%d' % (JOURNAL_PREFIX, os.getpid(), _starttime(os.getpid()) or 0)
        self.fd = None
        self.lines = 0

    def _create(self, name):
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                       | os.O_APPEND, 0o600, dir_fd=self.dfd)

    def _header(self):
        # The process that started this tracker (the root of its tree): while it lives, recovery
        # leaves this journal alone even if the tracker itself was killed.
        ppid = os.getppid()
        return ('PARENT:%d.%d:noop\n' % (ppid, _starttime(ppid) or 0)).encode('ascii')

    def write(self, line, cache):
        if self.fd is None:
            self.fd = self._create(self.name)
            os.fchmod(self.fd, 0o600)      # umask
            os.write(self.fd, self._header())
        os.write(self.fd, line)
        self.lines += 1
        live = sum(len(s) for s in cache.values())
        if self.lines > 4096 and self.lines > 4 * live:
            self._compact(cache)

    def _compact(self, cache):
        tmp = self.name + _TMP_SUFFIX
        try:
            os.unlink(tmp, dir_fd=self.dfd)
        except FileNotFoundError:
            pass
        fd = self._create(tmp)
        try:
            os.fchmod(fd, 0o600)
            data = self._header() + b''.join(('REGISTER:%s:%s\n' % (n, rt)).encode('ascii')
                            for rt, names in cache.items() for n in names)
            os.write(fd, data)
            os.rename(tmp, self.name, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
        except BaseException:
            os.close(fd)
            raise
        os.close(self.fd)
        self.fd = fd
        self.lines = 1 + sum(len(names) for names in cache.values())

    def remove(self):
        if self.fd is None:
            return
        try:
            os.unlink(self.name, dir_fd=self.dfd)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def _parse_journal_name(fname):
    """(pid, starttime) of a journal (or its temporary) name, else None."""
    if not fname.startswith(JOURNAL_PREFIX):
        return None
    parts = fname[len(JOURNAL_PREFIX):].split('.')
    if len(parts) == 3 and parts[2] == _TMP_SUFFIX[1:]:
        parts = parts[:2]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _tracker_alive(pid, start):
    if pid == os.getpid():
        return True
    st = _starttime(pid)
    return st is not None and st == start


def _read_journal(dfd, fname):
    """The objects still registered in a journal: {rtype: set(names)}; None if not ours/regular."""
    try:
        fd = os.open(fname, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return None
        chunks, total = [], 0
        while total < _MAX_JOURNAL:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
            total += len(b)
    finally:
        os.close(fd)
    cache = {rt: set() for rt in _KINDS}
    for line in b''.join(chunks).splitlines():
        try:
            cmd, name, rtype = line.decode('ascii').split(':')
        except ValueError:
            continue                     # a torn last line
        if cmd == 'PARENT':
            try:
                ppid, pstart = (int(x) for x in name.split('.'))
            except ValueError:
                continue
            if ppid > 1 and _tracker_alive(ppid, pstart):
                return 'parent-alive'
            continue
        if rtype not in cache:
            continue
        if cmd == 'REGISTER':
            cache[rtype].add(name)
        elif cmd == 'UNREGISTER':
            cache[rtype].discard(name)
    return cache


def _held_python(dfd):
    """{(dev, ino)} of files in the store directory that a live process has open or mapped."""
    held, me = set(), os.getpid()
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            for fd in os.listdir('/proc/%s/fd' % p):
                try:
                    st = os.stat('/proc/%s/fd/%s' % (p, fd))
                    held.add((st.st_dev, st.st_ino))
                except OSError:
                    pass
            with open('/proc/%s/maps' % p) as f:
                for line in f:
                    f6 = line.split(None, 5)
                    if len(f6) >= 5 and f6[4] != '0':
                        maj, mn = f6[3].split(':')
                        held.add((os.makedev(int(maj, 16), int(mn, 16)), int(f6[4])))
        except OSError:
            continue
    return held


def _holders(dfd, path, use_gocore):
    """A predicate held(rtype, name) -> bool over the current state of the store."""
    if use_gocore:
        from . import _gocore
        if _gocore.core_available():
            objs = _gocore.list_objects(path)
            held = {(o.get('kind'), o.get('name')) for o in objs if o.get('holders')}
            return lambda rtype, name: (_KINDS[rtype], name.lstrip('/')) in held
    held = _held_python(dfd)

    def is_held(rtype, name):
        fname = name.lstrip('/')
        if rtype == 'semaphore':
            fname = 'sem.' + fname
        try:
            st = os.stat(fname, dir_fd=dfd, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in held
    return is_held


def recover(path=None, sweep=True, grace=None, use_gocore=True, dry_run=False, log=None):
    """Process the journals of dead trackers in the store (path, else the resolved one), then
    (sweep) run the Go core's Sweep with grace (default 60 s, SHM_REDIRECT_TRACKER_GRACE).
    Returns {'journals': [...], 'removed': [(rtype, name)], 'kept': [(rtype, name)],
    'swept': [objects], 'deferred': [journals whose tracker's parent lives]}. Never touches the native /dev/shm."""
    res = {'journals': [], 'removed': [], 'kept': [], 'swept': [], 'deferred': []}
    native = False
    if path is None:
        path, native = _resolve_dir(use_gocore)
    if native:
        return res
    try:
        dfd = open_store_dir(path, create=False)
    except FileNotFoundError:
        return res
    try:
        dead = {}
        for fname in os.listdir(dfd):
            key = _parse_journal_name(fname)
            if key is None or _tracker_alive(*key):
                continue
            dead.setdefault(key, []).append(fname)
        is_held = None
        for key, fnames in sorted(dead.items()):
            keep_journal = False
            for fname in sorted(fnames):
                cache = _read_journal(dfd, fname)
                if cache == 'parent-alive':      # the tree lives on: not ours to clean
                    res['deferred'].append(fname)
                    keep_journal = True
                    continue
                if cache is None:
                    continue
                for rtype, names in cache.items():
                    for name in sorted(names):
                        if is_held is None:
                            is_held = _holders(dfd, path, use_gocore)
                        if is_held(rtype, name):
                            res['kept'].append((rtype, name))
                            keep_journal = True
                            continue
                        if dry_run:
                            res['removed'].append((rtype, name))
                            continue
                        try:
                            _CLEANUP_FUNCS[rtype](name)
                            res['removed'].append((rtype, name))
                        except FileNotFoundError:
                            pass
                        except OSError as e:
                            keep_journal = True
                            if log:
                                log('resource_tracker: %r: %s' % (name, e))
            if not keep_journal and not dry_run:
                for fname in fnames:
                    try:
                        os.unlink(fname, dir_fd=dfd)
                    except FileNotFoundError:
                        pass
            res['journals'].append(fnames[0] if len(fnames) == 1 else sorted(fnames)[0])
    finally:
        os.close(dfd)
    if sweep and use_gocore:
        if grace is None:
            grace = float(os.environ.get('SHM_REDIRECT_TRACKER_GRACE', DEFAULT_GRACE))
        if grace >= 0:
            from . import _gocore
            if _gocore.core_available():
                res['swept'] = _gocore.sweep(path, grace=grace, dry_run=dry_run)
    return res


def _recover_in_tracker():
    try:
        recover()
    except Exception as e:
        try:
            warnings.warn('resource_tracker: crash recovery failed: %s' % (e,))
        except Exception:
            pass


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

    try:                       # load the library once, before the recovery thread may use it
        from . import _native
        _native.load()
    except Exception as e:
        warnings.warn('resource_tracker: libshm_redirect.so: %s' % (e,))
    journal = None
    if os.environ.get('SHM_REDIRECT_TRACKER_JOURNAL', '1') != '0':
        try:
            path, native = _resolve_dir(use_gocore=False)
            if not native:
                journal = Journal(open_store_dir(path, create=True))
        except Exception as e:
            warnings.warn('resource_tracker: no journal (%s): a crash may leak resources' % (e,))
    recovery = None
    if os.environ.get('SHM_REDIRECT_TRACKER_RECOVER', '1') != '0':
        recovery = threading.Thread(target=_recover_in_tracker, name='shm-redirect-recover',
                                    daemon=True)
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
