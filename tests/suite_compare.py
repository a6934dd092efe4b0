"""Compare CPython test-suite runs test by test: a native baseline against runs through shm-redirect.

    python3 tests/suite_compare.py regrtest LOGDIR RUN... -- MODULE...
    python3 tests/suite_compare.py unittest LOGDIR RUN... -- LOGNAME...

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
"""
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


class Module:
    def __init__(self):
        self.tests = OrderedDict()   # test id -> outcome ("ok", "skipped: why", "FAIL", ...)
        self.ran = None              # unittest's "Ran N tests"
        self.status = None           # regrtest's progress status ("passed", "failed (env changed)")
        self.leaks = 0               # resource-tracker leak warnings


def _outcome(text):
    m = OUTCOME.search(text)
    if not m:
        return None
    o = m.group(1)
    return 'skipped: ' + o[len('skipped '):] if o.startswith('skipped ') else o


def parse(lines, regrtest):
    """{module: Module}. Unittest's verbose line is "name (id) ... outcome", possibly with a
    docstring line between, and with other processes' output before the outcome."""
    mods, cur, pending = OrderedDict(), None, None
    if not regrtest:
        cur = mods.setdefault('-', Module())
    for line in lines:
        line = line.rstrip('\n')
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
        if pending is not None:
            o = _outcome(line)
            if o is not None:
                cur.tests[pending] = o
                pending = None
                continue
        m = RAN.match(line)
        if m:
            cur.ran = (cur.ran or 0) + int(m.group(1))
        elif LEAK.search(line):
            cur.leaks += 1
    return mods


def check(runs, names, modules):
    """Yields (module, run, [reasons]) for every module and run; no reasons means it passed."""
    base = runs[names[0]]
    for mod in modules:
        b = base.get(mod)
        for name in names:
            r, why = runs[name].get(mod), []
            if r is None or not r.tests:
                why.append('no test executed (%s)' % (r.status if r else 'no output'))
            else:
                bad = [t for t, o in r.tests.items() if o in BAD]
                why += ['%s %s' % (r.tests[t], t) for t in bad[:10]]
                if r.ran != len(r.tests):
                    why.append('unittest ran %s tests, %d parsed' % (r.ran, len(r.tests)))
                if r.status and not r.status.startswith('passed'):
                    why.append('regrtest: ' + r.status)
                if name != names[0] and b is not None:
                    why += diff(b, r)
            yield mod, name, why


def diff(b, r):
    out = []
    for t in b.tests.keys() - r.tests.keys():
        out.append('missing %s (baseline: %s)' % (t, b.tests[t]))
    for t in r.tests.keys() - b.tests.keys():
        out.append('extra %s (%s)' % (t, r.tests[t]))
    for t in b.tests.keys() & r.tests.keys():
        if b.tests[t] != r.tests[t]:
            out.append('%s: %s, baseline %s' % (t, r.tests[t], b.tests[t]))
    if r.leaks > b.leaks:
        out.append('%d resource-tracker leak warnings, baseline %d' % (r.leaks, b.leaks))
    return sorted(out)


def summary(m):
    if m is None:
        return 'no output'
    c = Counter('skipped' if o.startswith('skipped') else o for o in m.tests.values())
    return '%d tests: %d ok, %d skipped, %d bad' % (len(m.tests), c['ok'], c['skipped'], sum(c[k] for k in BAD))


def main(argv):
    kind, logdir = argv[1], argv[2]
    sep = argv.index('--')
    names, targets = argv[3:sep], argv[sep + 1:]
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
    for mod, name, why in check(runs, names, targets):
        print('%-34s %-12s %s  %s' % (mod, name, summary(runs[name].get(mod)), 'ok' if not why else 'FAIL'))
        for w in why[:25]:
            print('    ' + w)
        if len(why) > 25:
            print('    ... %d more' % (len(why) - 25))
        passed, failed = (passed + 1, failed) if not why else (passed, failed + 1)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
