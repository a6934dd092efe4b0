"""The resource tracker's crash safety: its journal in the store, and recovery from the journals
of trackers that died (shm_redirect.mp.resource_tracker's docstring tells the whole design).

The store directory, its checks and its descriptor are the C library's (shm_redirect.store.clib);
holders and sweeping are the Go core's (shm_redirect.store.gocore): nothing here re-derives them.
"""
import base64
import json
import os
import stat
import warnings
from multiprocessing import resource_tracker as _cpython_tracker

from ..store import clib
from ..store.format import JOURNAL_PREFIX

__all__ = ['Journal', 'JournaledPipe', 'recover', 'CLEANUP', 'cleanup_funcs']

_TMP_SUFFIX = '.new'
_MAX_JOURNAL = 64 << 20          # never read more than this from a (hostile) journal


def _sem_unlink(name):
    clib.load()
    clib.sem_unlink(name)


def _shm_unlink(name):
    clib.load()
    clib.shm_unlink(name)


# rtype -> how an object left registered is removed: through libshm_redirect.so (the store, or
# glibc's /dev/shm when that is native), never _multiprocessing/_posixshmem.
CLEANUP = {'semaphore': _sem_unlink, 'shared_memory': _shm_unlink}


def cleanup_funcs():
    """CPython's resource tracker's table of rtypes (its 'noop', and test rtypes of the
    version), with ours for the store's."""
    return dict(_cpython_tracker._CLEANUP_FUNCS, **CLEANUP)


# The running CPython's reader of pipe lines (3.14: JSON lines too), None before 3.14.
_CPYTHON_DECODE = getattr(_cpython_tracker, '_decode_message', None)


def _decode(line):
    """(cmd, name, rtype) of a pipe line, as the running CPython's tracker reads it."""
    if _CPYTHON_DECODE is not None:
        cmd, rtype, name = _CPYTHON_DECODE(line)
        return cmd, name, rtype
    cmd, name, rtype = line.strip().decode('ascii').split(':')
    return cmd, name, rtype


def _encode(cmd, name, rtype):
    """A journal line: CMD:NAME:RTYPE, or {"cmd","rtype","base64_name"} JSON (3.14's form) for a
    name that the plain form cannot carry."""
    if name.isascii() and name.isprintable():
        return ('%s:%s:%s\n' % (cmd, name, rtype)).encode('ascii')
    b64 = base64.urlsafe_b64encode(name.encode('utf-8', 'surrogateescape')).decode('ascii')
    return (json.dumps({'cmd': cmd, 'rtype': rtype, 'base64_name': b64}) + '\n').encode('ascii')


def _parse_line(line):
    """_encode's inverse; ValueError for a torn or foreign line."""
    if line.startswith(b'{'):
        try:
            obj = json.loads(line.decode('ascii'))
            name = base64.urlsafe_b64decode(obj['base64_name']).decode('utf-8', 'surrogateescape')
            return obj['cmd'], name, obj['rtype']
        except (KeyError, TypeError, UnicodeError, json.JSONDecodeError) as e:
            raise ValueError(line) from e
    cmd, rest = line.decode('ascii').split(':', 1)
    name, rtype = rest.rsplit(':', 1)
    return cmd, name, rtype


# rtype -> the Go core's kind
_KINDS = {'semaphore': 'semaphore', 'shared_memory': 'segment'}


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


class Journal(object):
    """This tracker's journal: created on the first REGISTER, kept open, removed at the end."""

    def __init__(self, dfd):
        self.dfd = dfd
        self.name = '%s%d.%d' % (JOURNAL_PREFIX, os.getpid(), _starttime(os.getpid()) or 0)
        self.fd = None
        self.lines = 0
        self.cache = {rtype: set() for rtype in _KINDS}

    def _create(self, name):
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                       | os.O_APPEND, 0o600, dir_fd=self.dfd)

    def _header(self):
        # The process that started this tracker (the root of its tree): while it lives, recovery
        # leaves this journal alone even if the tracker itself was killed.
        ppid = os.getppid()
        return ('PARENT:%d.%d:noop\n' % (ppid, _starttime(ppid) or 0)).encode('ascii')

    def record(self, line):
        """Journal one line read from the pipe (before the tracker acts on it). Never raises:
        a line CPython's tracker cannot read is its to report; a write error is warned of."""
        try:
            cmd, name, rtype = _decode(line)
        except Exception:
            return
        if cmd not in ('REGISTER', 'UNREGISTER') or rtype not in self.cache:
            return
        if cmd == 'REGISTER':
            self.cache[rtype].add(name)
        else:
            self.cache[rtype].discard(name)
        try:
            self._append(_encode(cmd, name, rtype))
        except OSError as e:
            warnings.warn('resource_tracker: journal: %s' % (e,))

    def _append(self, data):
        if self.fd is None:
            self.fd = self._create(self.name)
            os.fchmod(self.fd, 0o600)      # umask
            os.write(self.fd, self._header())
        os.write(self.fd, data)
        self.lines += 1
        live = sum(len(s) for s in self.cache.values())
        if self.lines > 4096 and self.lines > 4 * live:
            self._compact()

    def _compact(self):
        cache = self.cache
        tmp = self.name + _TMP_SUFFIX
        try:
            os.unlink(tmp, dir_fd=self.dfd)
        except FileNotFoundError:
            pass
        fd = self._create(tmp)
        try:
            os.fchmod(fd, 0o600)
            data = self._header() + b''.join(_encode('REGISTER', n, rt)
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


class JournaledPipe(object):
    """The tracker's end of the pipe as CPython's main reads it (`with open(fd, 'rb') as f:
    for line in f`), each line journaled before main sees it."""

    def __init__(self, f, journal):
        self._f, self._journal = f, journal

    def __enter__(self):
        self._f.__enter__()
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __iter__(self):
        for line in self._f:
            self._journal.record(line)
            yield line


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
            cmd, name, rtype = _parse_line(line)
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


def _holders(path):
    """A predicate held(rtype, name) -> bool over the current state of the store: the Go core's
    holder scan (core/holders.go: /proc/*/fd and /proc/*/maps). Without a Go core nothing can be
    proved unheld, so everything counts as held and nothing is removed."""
    from ..store import gocore
    if not gocore.core_available():
        return lambda rtype, name: True
    objs = gocore.list_objects(path)
    held = {(o.get('kind'), o.get('name')) for o in objs if o.get('holders')}
    return lambda rtype, name: (_KINDS[rtype], name.lstrip('/')) in held


def recover(sweep=True, grace=None, dry_run=False, log=None):
    """Process the journals of dead trackers in this process's store (the C library's), then
    (sweep) run the Go core's Sweep with grace seconds (None: SHM_REDIRECT_TRACKER_GRACE, else
    the default; 0: none). Returns {'journals': [...], 'removed': [(rtype, name)], 'kept':
    [(rtype, name)], 'swept': [objects], 'deferred': [journals whose tracker's parent lives]}.
    Never touches the native /dev/shm."""
    res = {'journals': [], 'removed': [], 'kept': [], 'swept': [], 'deferred': []}
    path, native = clib.store_dir()
    if native:
        return res
    try:
        dfd = clib.store_open(create=False)
    except FileNotFoundError:
        return res
    try:
        dead = {}
        for fname in os.listdir(dfd):
            key = _parse_journal_name(fname)
            if key is None or _tracker_alive(*key):
                continue
            dead.setdefault(key, []).append(fname)
        held = _Holders(path)
        for key, fnames in sorted(dead.items()):
            keep = False
            for fname in sorted(fnames):   # every one replayed, even after one must be kept
                keep = _replay(dfd, fname, held, res, dry_run, log) or keep
            if not keep and not dry_run:
                for fname in fnames:
                    try:
                        os.unlink(fname, dir_fd=dfd)
                    except FileNotFoundError:
                        pass
            res['journals'].append(sorted(fnames)[0])
    finally:
        os.close(dfd)
    if sweep:
        from ..store import gocore
        if gocore.core_available():
            res['swept'] = gocore.sweep(path, grace=_grace(grace), dry_run=dry_run)
    return res


class _Holders(object):
    """held(rtype, name), with the holder scan made once, at the first question."""

    def __init__(self, path):
        self.path, self.held = path, None

    def __call__(self, rtype, name):
        if self.held is None:
            self.held = _holders(self.path)
        return self.held(rtype, name)


def _replay(dfd, fname, held, res, dry_run, log):
    """Remove what one dead tracker's journal still lists and nobody holds; returns whether the
    journal must be kept (its tree lives on, something listed is held, or a removal failed)."""
    cache = _read_journal(dfd, fname)
    if cache == 'parent-alive':      # the tree lives on: not ours to clean
        res['deferred'].append(fname)
        return True
    keep = False
    for rtype, names in (cache or {}).items():
        for name in sorted(names):
            if held(rtype, name):
                res['kept'].append((rtype, name))
                keep = True
                continue
            try:
                if not dry_run:
                    CLEANUP[rtype](name)
                res['removed'].append((rtype, name))
            except FileNotFoundError:
                pass
            except OSError as e:
                keep = True
                if log:
                    log('resource_tracker: %r: %s' % (name, e))
    return keep


def _grace(grace):
    """The sweep's grace in seconds: the argument, else SHM_REDIRECT_TRACKER_GRACE, else None
    (the Go core's default). The Go core judges the value (negative: an error)."""
    if grace is None and os.environ.get('SHM_REDIRECT_TRACKER_GRACE'):
        grace = float(os.environ['SHM_REDIRECT_TRACKER_GRACE'])
    return grace


def recover_in_tracker():
    try:
        recover()
    except Exception as e:
        try:
            warnings.warn('resource_tracker: crash recovery failed: %s' % (e,))
        except Exception:
            pass
