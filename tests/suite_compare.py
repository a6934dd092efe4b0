"""Compare CPython test-suite runs test by test: a native baseline against runs through shm-redirect.

    python3 tests/suite_compare.py regrtest LOGDIR RUN... -- MODULE...
    python3 tests/suite_compare.py unittest LOGDIR RUN... -- LOGNAME...
    python3 tests/suite_compare.py known-hangs regrtest|unittest LOG

`regrtest` logs are `python -m test -jN -v` output (each module's worker output follows its progress
line); `unittest` logs are one `python -m unittest -v`-style run each (LOGDIR/RUN-LOGNAME.log). The
first RUN is the baseline. For every module, each test id must have the same outcome in every run
(ok, or skipped with the same reason, or the same expected failure); no run may have a failure,
an error, an unexpected success, a crash, a regrtest "env changed" (leaked processes, threads,
files: --fail-env-changed semantics) or more of CPython's resource-tracker leak warnings than the
baseline; the number of ids parsed must equal unittest's "Ran N tests"; and a run that executed no
test fails. Totals alone would let a class that starts skipping cancel one that stops.
Logs may end with "   left: NAME" lines (the runner's listing of the store): each fails.
Prints a table and the differences; the last line is "N passed, M failed" (module x run checks).

A run that timed out fails, unless its hang is one of tests/cpython_known_hangs.txt (read it: the
test id and the innermost frame of the thread running it must match). `known-hangs` prints the
modules of LOG with such a hang ("-" for a unittest log): the runner reruns those once, into
LOGDIR/RUN.rerun.log (regrtest) or LOGDIR/RUN-LOGNAME.rerun.log (unittest), and the comparison
then takes those modules from the rerun, and says so. A rerun of a module without a known hang
fails.
"""
import fnmatch
import os
import re
import sys
from collections import Counter, OrderedDict

PROGRESS = re.compile(r'^\d+:\d+:\d+ (?:load avg: [\d.]+ )?\[\s*\d+/\d+(?:/\d+)?\] (test_\w+)(?: (.*?))?(?: -- running: .*)?$')
# test_concurrent_futures prints each test's duration ("0.02s") before the next one's line.
HEADER = re.compile(r'^(?:\d+\.\d+s )?(test\w*) \(([\w.]+)\)(.*)$')
OUTCOME = re.compile(r"(?:^|\.\.\. |\s)(ok|FAIL|ERROR|expected failure|unexpected success|skipped (['\"]).*\2)$")
RAN = re.compile(r'^Ran (\d+) tests? in [\d.]+s$')
LEAK = re.compile(r'resource_tracker: There appear to be \d+ leaked \w+ objects')
BAD = ('FAIL', 'ERROR', 'unexpected success')
# faulthandler's dump on a timeout (regrtest --timeout, or dump_traceback_later(exit=True)).
TIMEOUT = re.compile(r'Timeout \((\d+:\d\d:\d\d(?:\.\d+)?)\)!$')
STACK = re.compile(r'^(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):$')
FRAME = re.compile(r'^  File ".*", line \d+ in (\S+)$')
KNOWN_HANGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'cpython_known_hangs.txt')


class Module:
    def __init__(self):
        self.tests = OrderedDict()   # test id -> outcome ("ok", "skipped: why", "FAIL", ...)
        self.ran = None              # unittest's "Ran N tests"
        self.status = None           # regrtest's progress status ("passed", "failed (env changed)")
        self.leaks = 0               # resource-tracker leak warnings
        self.leak_lines = []         # each: (the test id running or last finished, the warning)
        self.hung = None             # the test id running when faulthandler's timeout fired
        self.stacks = []             # then: each thread's functions, innermost first


def _outcome(text):
    m = OUTCOME.search(text)
    if not m:
        return None
    o = m.group(1)
    return 'skipped: ' + o[len('skipped '):] if o.startswith('skipped ') else o


def parse(lines, regrtest):
    """{module: Module}. Unittest's verbose line is "name (id) ... outcome", possibly with a
    docstring line between, and with other processes' output before the outcome."""
    mods, cur, pending, dump, last = OrderedDict(), None, None, False, None
    if not regrtest:
        cur = mods.setdefault('-', Module())
    for line in lines:
        line = line.rstrip('\n')
        if dump:
            m = STACK.match(line) or FRAME.match(line)
            if m and m.re is STACK:
                cur.stacks.append([])
            elif m and cur.stacks:
                cur.stacks[-1].append(m.group(1))
            if m or not line:
                continue
            dump = False
        if regrtest:
            m = PROGRESS.match(line)
            if m:
                cur = mods.setdefault(m.group(1), Module())
                cur.status, pending = m.group(2) or '?', None
                continue
        if cur is None:
            continue
        m = HEADER.match(line)
        if m:
            pending = m.group(2) if '.' in m.group(2) else m.group(2) + '.' + m.group(1)
            line = m.group(3)
        if TIMEOUT.search(line) and cur.hung is None:
            cur.hung, cur.stacks, dump = pending or '?', [], True
            continue
        if pending is not None:
            o = _outcome(line)
            if o is not None:
                cur.tests[pending] = o
                last, pending = pending, None
                continue
        m = RAN.match(line)
        if m:
            cur.ran = (cur.ran or 0) + int(m.group(1))
        elif LEAK.search(line):
            cur.leaks += 1
            cur.leak_lines.append((pending or 'after ' + str(last), LEAK.search(line).group(0)))
    return mods


def load_known(path=KNOWN_HANGS):
    """[(test id pattern, innermost frame, upstream issue)] from cpython_known_hangs.txt."""
    with open(path) as f:
        return [tuple(l.split()[:3]) for l in f if l.strip() and not l.startswith('#')]


def known_hang(m, known):
    """The matching (pattern, frame, issue) if m timed out in a known upstream hang, else None:
    the test id matches and a thread whose stack holds the test method has the frame innermost."""
    if m is None or m.hung is None:
        return None
    method = m.hung.rsplit('.', 1)[-1]
    for entry in known:
        pattern, frame = entry[:2]
        if fnmatch.fnmatchcase(m.hung, pattern) and any(
                s and s[0] == frame and method in s for s in m.stacks):
            return entry
    return None


def rerun_logs(kind, logdir, name, targets):
    """{module or log name: path} of the rerun logs of run `name` that exist."""
    if kind == 'regrtest':
        path = os.path.join(logdir, name + '.rerun.log')
        return {None: path} if os.path.exists(path) else {}
    paths = {t: os.path.join(logdir, '%s-%s.rerun.log' % (name, t)) for t in targets}
    return {t: p for t, p in paths.items() if os.path.exists(p)}


def take_reruns(runs, logdir, kind, names, targets, logs):
    """Replaces each module that has a rerun by its rerun (adding the rerun logs to `logs`);
    returns {(module, run): the first run's Module}, whose hang must have been a known one."""
    first = {}
    for name in names:
        for t, path in rerun_logs(kind, logdir, name, targets).items():
            logs.append(path)
            with open(path, errors='replace') as f:
                again = parse(f, True) if kind == 'regrtest' else {t: parse(f, False).get('-')}
            for mod, m in again.items():
                first[mod, name] = runs[name].get(mod)
                runs[name][mod] = m
    return first


def check(runs, names, modules, first=None, known=()):
    """Yields (module, run, [reasons], [notes]) for every module and run; no reasons: passed."""
    base, first = runs[names[0]], first or {}
    for mod in modules:
        b = base.get(mod)
        for name in names:
            r, why, notes = runs[name].get(mod), [], []
            if (mod, name) in first:
                k = known_hang(first[mod, name], known)
                if k is None:
                    why.append('rerun, but the first run had no known hang')
                else:
                    notes.append('first run hung in %s (innermost %s: %s); its rerun is compared'
                                 % (first[mod, name].hung, k[1], k[2]))
            if r is None or not r.tests:
                why.append('no test executed (%s)' % (r.status if r else 'no output'))
            else:
                bad = [t for t, o in r.tests.items() if o in BAD]
                why += ['%s %s' % (r.tests[t], t) for t in bad[:10]]
                if r.hung is not None:
                    k = known_hang(r, known)
                    why.append('timed out in %s (%s)' % (r.hung, 'not a known upstream hang'
                               if k is None else 'known upstream hang, not rerun or hung again'))
                if r.ran != len(r.tests):
                    why.append('unittest ran %s tests, %d parsed' % (r.ran, len(r.tests)))
                if r.status and not r.status.startswith('passed'):
                    why.append('regrtest: ' + r.status)
                if name != names[0] and b is not None:
                    why += diff(b, r)
            yield mod, name, why, notes


def diff(b, r):
    out = []
    for t in b.tests.keys() - r.tests.keys():
        out.append('missing %s (baseline: %s)' % (t, b.tests[t]))
    for t in r.tests.keys() - b.tests.keys():
        out.append('extra %s (%s)' % (t, r.tests[t]))
    for t in b.tests.keys() & r.tests.keys():
        if b.tests[t] != r.tests[t]:
            out.append('%s: %s, baseline %s' % (t, r.tests[t], b.tests[t]))
    out.sort()
    if r.leaks > b.leaks:
        out.append('%d resource-tracker leak warnings, baseline %d' % (r.leaks, b.leaks))
        out.extend('  %s: %s' % w for w in r.leak_lines)
    return out


def summary(m):
    if m is None:
        return 'no output'
    c = Counter('skipped' if o.startswith('skipped') else o for o in m.tests.values())
    return '%d tests: %d ok, %d skipped, %d bad' % (len(m.tests), c['ok'], c['skipped'], sum(c[k] for k in BAD))


def print_hangs(kind, log, known):
    """known-hangs: the modules of one log whose timeout is a known upstream hang."""
    with open(log, errors='replace') as f:
        mods = parse(f, kind == 'regrtest')
    for mod, m in mods.items():
        if known_hang(m, known):
            print(mod)
    return 0


def load(kind, logdir, names, targets):
    runs, logs = {}, []
    for name in names:
        if kind == 'regrtest':
            logs.append(os.path.join(logdir, name + '.log'))
            with open(logs[-1], errors='replace') as f:
                runs[name] = parse(f, True)
        else:
            runs[name] = {}
            for t in targets:
                logs.append(os.path.join(logdir, '%s-%s.log' % (name, t)))
                with open(logs[-1], errors='replace') as f:
                    runs[name][t] = parse(f, False).get('-')
    return runs, logs


def main(argv):
    known = load_known()
    if argv[1] == 'known-hangs':
        return print_hangs(argv[2], argv[3], known)
    kind, logdir = argv[1], argv[2]
    sep = argv.index('--')
    names, targets = argv[3:sep], argv[sep + 1:]
    runs, logs = load(kind, logdir, names, targets)
    first = take_reruns(runs, logdir, kind, names, targets, logs)
    passed = failed = 0
    # The runners list the store (or the baseline's /dev/shm) at the end of each run, as
    # "   left: NAME" lines: an object left there is a leak handed to the next invocation.
    for log in sorted(logs):
        with open(log, errors='replace') as f:
            left = [l.split(None, 1)[1].strip() for l in f if l.startswith('   left: ')]
        print('%-34s %-12s %d objects left  %s' % ('(store)', os.path.basename(log), len(left), 'FAIL' if left else 'ok'))
        for l in left[:10]:
            print('    left: ' + l)
        passed, failed = (passed, failed + 1) if left else (passed + 1, failed)
    for mod, name, why, notes in check(runs, names, targets, first, known):
        print('%-34s %-12s %s  %s' % (mod, name, summary(runs[name].get(mod)), 'ok' if not why else 'FAIL'))
        for w in notes + why[:25]:
            print('    ' + w)
        if len(why) > 25:
            print('    ... %d more' % (len(why) - 25))
        passed, failed = (passed + 1, failed) if not why else (passed, failed + 1)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
