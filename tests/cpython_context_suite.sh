#!/usr/bin/env bash
# tests/cpython_context_suite.sh — CPython's multiprocessing test suite against
# shm_redirect.get_context() (tests/cpython_context_suite.py is the driver; read its docstring).
#
# For each start method (CTX_METHODS, default "fork spawn forkserver") two runs of the same driver,
# both in tests/sandbox.sh --ro --uid=$CTX_UID with SHM_REDIRECT=off and no LD_PRELOAD:
#   baseline  --devshm=native, SHMR_SUITE_NATIVE=1: CPython's own objects on a working /dev/shm
#   context   --devshm=none: shm_redirect's contexts/synchronize/heap/shared_memory, no /dev/shm
# The suite runs in the sandbox's fresh /tmp (some tests write os_helper.TESTFN in the cwd).
# The numbers of tests run and skipped must be equal, with no failure or error in either; the
# store (/tmp/shm) must be empty at the end of the context run (listed inside the sandbox).
# Logs: build/cpython-context-logs/{baseline,context}-METHOD.log, summary.txt.
# Knobs: CTX_METHODS, CTX_UID (993), CTX_TIMEOUT (per run, s; 1800), CTX_RUNS ("baseline context").
set -euo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
SANDBOX="$PROJECT/tests/sandbox.sh"
PY=${PYTHON:-/usr/bin/python3}
LOGDIR=${CTX_LOGDIR:-"$PROJECT/build/cpython-context-logs"}
METHODS=${CTX_METHODS:-"fork spawn forkserver"}
RUNS=${CTX_RUNS-"baseline context"}
UID_=${CTX_UID:-993}
TIMEOUT=${CTX_TIMEOUT:-1800}
[ -r "$PROJECT/build/libshm_redirect.so" ] || { echo "cpython_context_suite: make lib first" >&2; exit 2; }
"$PY" -c 'import test._test_multiprocessing' 2>/dev/null \
    || { echo "cpython_context_suite: CPython's test package missing" >&2; exit 2; }
mkdir -p "$LOGDIR"

run() {   # run NAME METHOD -- sandbox options
    local name=$1 method=$2; shift 3
    local native=0; [ "$name" = baseline ] && native=1
    local log="$LOGDIR/$name-$method.log" rc=0 t0=$SECONDS
    # SIGINT back to default before Python starts (see tests/cpython_suite.sh).
    timeout "$TIMEOUT" "$SANDBOX" --ro --uid="$UID_" "$@" \
        --env "PYTHONPATH=$PROJECT/pybind:$PROJECT/tests" --env SHM_REDIRECT=off \
        --env "SHMR_SUITE_METHOD=$method" --env "SHMR_SUITE_NATIVE=$native" -- /bin/sh -c \
        "cd /tmp && $PY -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
            $PY $PROJECT/tests/cpython_context_suite.py -v; rc=\$?; i=0;
         while [ \$i -lt 50 ] && [ -n \"\$(ls -A /tmp/shm 2>/dev/null)\" ]; do sleep 0.1; i=\$((i+1)); done
         echo \"== objects left in /tmp/shm: \$(ls -A /tmp/shm 2>/dev/null | tr '\n' ' ')\"; exit \$rc" \
        > "$log" 2>&1 < /dev/null || rc=$?
    echo "$name $method: exit $rc, wall $((SECONDS - t0)) s"
}

for m in $METHODS; do
    for r in $RUNS; do
        case $r in
            baseline) run baseline "$m" -- --devshm=native ;;
            context)  run context "$m" -- --devshm=none ;;
        esac
    done
done

"$PY" - "$LOGDIR" $METHODS <<'EOF' | tee "$LOGDIR/summary.txt"
import os, re, sys
logdir, methods = sys.argv[1], sys.argv[2:]
LINE = re.compile(r'^(test\w*) \(([\w.]+)\)(?:\n|.)*?\.\.\. (ok|skipped.*|FAIL|ERROR|expected failure|unexpected success)$')
def parse(path):
    r = dict(ran=None, skipped=0, failures=0, errors=0, left=None, bad=[])
    if not os.path.exists(path):
        return r
    text = open(path, errors='replace').read()
    m = re.search(r'^Ran (\d+) tests?', text, re.M)
    if m: r['ran'] = int(m.group(1))
    m = re.search(r'^(OK|FAILED)(?: \((.*)\))?$', text, re.M)
    if m and m.group(2):
        for part in m.group(2).split(', '):
            k, _, v = part.partition('=')
            if k in r: r[k] = int(v)
    if not m: r['errors'] = r['errors'] or 1   # crashed or timed out
    r['bad'] = re.findall(r'^(?:FAIL|ERROR): (\S+) \(([\w.]+)\)', text, re.M)
    m = re.search(r'^== objects left in /tmp/shm: (.*)$', text, re.M)
    r['left'] = m.group(1).split() if m else None
    return r
ok = True
print('%-11s %-9s %6s %8s %6s %6s  %s' % ('method', 'run', 'ran', 'skipped', 'fail', 'error', 'left in store'))
for meth in methods:
    res = {}
    for run in ('baseline', 'context'):
        r = res[run] = parse(os.path.join(logdir, '%s-%s.log' % (run, meth)))
        print('%-11s %-9s %6s %8s %6s %6s  %s' % (meth, run, r['ran'], r['skipped'], r['failures'],
              r['errors'], '-' if run == 'baseline' else (r['left'] if r['left'] is not None else '?')))
        for b in r['bad']:
            print('    %s: %s.%s' % (run, b[1], b[0]))
        if r['ran'] is None or r['failures'] or r['errors']:
            ok = False
    b, c = res['baseline'], res['context']
    if (b['ran'], b['skipped']) != (c['ran'], c['skipped']):
        print('  MISMATCH %s: baseline ran/skipped %s/%s, context %s/%s'
              % (meth, b['ran'], b['skipped'], c['ran'], c['skipped']))
        ok = False
    if c['left']:
        print('  LEAK %s: %s' % (meth, c['left']))
        ok = False
print('RESULT:', 'PASS' if ok else 'FAIL')
sys.exit(0 if ok else 1)
EOF
