#!/usr/bin/env bash
# tests/cpython_suite.sh — CPython's own multiprocessing test suites, natively and through
# the preload, in the same Lambda-shaped sandbox.
#
#   (a) baseline: tests/sandbox.sh --devshm=native  (a working /dev/shm; the preload is not loaded)
#   (b) sandbox:  tests/sandbox.sh --devshm=none --preload  (no /dev/shm, as on Lambda)
# Both with the same other options: --ro (read-only /, fresh /tmp) and a non-root uid.
#
# For each module the numbers of tests run and skipped must be the same in (a) and (b), and
# neither may have a failure or error. A skipped count that differs would mean the preload
# made CPython think something is missing; a run count that differs, that a test crashed
# or was lost.
#
# Environment knobs: CPYTHON_UID (993), CPYTHON_TIMEOUT (per module, s; 900),
# CPYTHON_MODULES (the four below), CPYTHON_RUNS ("baseline sandbox"), PYTHON (/usr/bin/python3).
# Logs: build/cpython-logs/{baseline,sandbox}.log (full -v output), summary.txt.
#
# Activation runs (the Python package instead of LD_PRELOAD): CPYTHON_ACTIVATION="patch preload"
# (any of patch, patch-pure, patch-export, preload). Every interpreter then activates at start-up through
# the shm_redirect.pth of the built wheel, installed into a venv (build/activation-venv, made here)
# whose python runs all runs, the baseline included; NO LD_PRELOAD in the starting environment:
#   patch         SHM_REDIRECT=patch SHM_REDIRECT_EXPORT=defer: the regrtest main process patches
#                 itself without exporting LD_PRELOAD, so each worker (where the tests run) patches
#                 itself in-process and exports LD_PRELOAD to its own children, as shipped
#   patch-pure    SHM_REDIRECT=patch SHM_REDIRECT_EXPORT=0: every process (workers, spawn and
#                 forkserver children, resource trackers, -E/-I subprocesses) patches itself;
#                 nothing is ever preloaded. Known, by construction: a child started with -S
#                 (TestFlags.test_flags) cannot activate, so 1 error per multiprocessing module
#   patch-export  SHM_REDIRECT=patch as shipped, from the top: the main process patches, and all
#                 workers inherit LD_PRELOAD (so the tests run preloaded)
#   preload       SHM_REDIRECT=preload: each process tree root re-execs itself with LD_PRELOAD
# Defaults then: CPYTHON_RUNS="baseline $CPYTHON_ACTIVATION", logs in build/cpython-logs-activation.
# Last line of output: "N passed, M failed" over modules x runs.
set -euo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
SANDBOX="$PROJECT/tests/sandbox.sh"
ACTIVATION=${CPYTHON_ACTIVATION:-}
if [ -n "$ACTIVATION" ]; then
    LOGDIR=${CPYTHON_LOGDIR:-"$PROJECT/build/cpython-logs-activation"}
    VENV="$PROJECT/build/activation-venv"
    BASEPY=${PYTHON:-/usr/bin/python3}
    PY="$VENV/bin/python3"
    RUNS=${CPYTHON_RUNS-"baseline $ACTIVATION"}
else
    LOGDIR=${CPYTHON_LOGDIR:-"$PROJECT/build/cpython-logs"}
    PY=${PYTHON:-/usr/bin/python3}
fi
UID_=${CPYTHON_UID:-993}
TIMEOUT=${CPYTHON_TIMEOUT:-900}
MODULES=${CPYTHON_MODULES:-"test_multiprocessing_fork test_multiprocessing_spawn test_multiprocessing_forkserver test_concurrent_futures"}
[ -n "$ACTIVATION" ] || RUNS=${CPYTHON_RUNS-"baseline sandbox"}   # set but empty: only re-parse the logs

if [ -n "$ACTIVATION" ]; then
    # The built wheel, installed offline into a fresh venv of the system python: its
    # shm_redirect.pth is then processed by every interpreter of the venv, even under -E/-I
    # (regrtest and test.support use those), which a PYTHONPATH sitecustomize would miss; and
    # the preload used is the wheel's own copy of libshm_redirect.so.
    WHEELS="$PROJECT/build/suite-wheel"
    rm -rf "$VENV" "$WHEELS"
    make -s -C "$PROJECT" wheel WHEEL_DIR="$WHEELS" >/dev/null \
        || { echo "cpython_suite: cannot build the wheel" >&2; exit 2; }
    "$BASEPY" -m venv --system-site-packages "$VENV" \
        || { echo "cpython_suite: cannot create $VENV" >&2; exit 2; }
    "$PY" -m pip install -q --no-index --no-deps "$WHEELS"/shm_redirect-*.whl \
        || { echo "cpython_suite: cannot install the wheel into $VENV" >&2; exit 2; }
    chmod -R a+rX "$VENV"
fi
[ -x "$PY" ] || { echo "cpython_suite: $PY not found" >&2; exit 2; }
"$PY" -c 'import test.libregrtest' 2>/dev/null \
    || { echo "cpython_suite: CPython's test package missing: run tests/install-deps.sh" >&2; exit 2; }
[ -r "$PROJECT/build/libshm_redirect.so" ] || { echo "cpython_suite: build the preload first (make lib)" >&2; exit 2; }
mkdir -p "$LOGDIR"

# Common sandbox options: Lambda's shape. Only --devshm and --preload differ between the runs.
COMMON=(--ro --uid="$UID_")
# The store (or /dev/shm) is listed at the end of each run, from inside the sandbox (the fresh
# /tmp disappears with it), so leaked objects show up in the log.
LIST_STORE='d=${SHM_REDIRECT_DIR:-${TMPDIR:-/tmp}/shm}; [ "$1" = native ] && d=/dev/shm
echo "== objects left in $d:"; ls -ld "$d"; ls -A "$d" 2>/dev/null | sed "s/^/   left: /"; true'

run_suite() {   # run_suite NAME -- sandbox options...
    local name=$1; shift
    local log="$LOGDIR/$name.log"
    local kind=store; [ "$name" = baseline ] && kind=native
    echo "== $name: sandbox.sh ${COMMON[*]} $* -- $PY -m test -j2 -v --timeout=$TIMEOUT $MODULES"
    local t0=$SECONDS
    # -j2: one module per core; -v: every worker's full unittest output (with -j, regrtest prints
    # a worker's captured output right after the module's progress line, so each module's
    # "Ran N tests" / "OK (skipped=K)" can be attributed to it). No -w: a rerun would mask flakes.
    # Everything goes to the log; the module progress lines are echoed live by a tail in the
    # background (tail is $! thanks to the process substitution) while the suite runs in the
    # foreground.
    : > "$log"
    tail -s 0.5 -n +1 -f "$log" 2>/dev/null > >(grep --line-buffered -E \
        '^[0-9:]+ (load avg: [0-9.]+ )?\[ *[0-9]+/[0-9]+(/[0-9]+)?\]|^Total duration|^Tests result|left:' || true) &
    local tailpid=$!
    # SIGINT is reset to its default before Python starts: a shell without job control starts
    # background jobs with SIGINT ignored, Python then keeps it ignored, and
    # test_wait_result / test_shared_memory_SharedMemoryServer_ignores_sigint (which send
    # SIGINT and expect KeyboardInterrupt) fail for reasons that have nothing to do with shm.
    local rc=0
    "$SANDBOX" "${COMMON[@]}" "$@" -- /bin/sh -c \
        "$PY -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
            $PY -m test -j2 -v --timeout=$TIMEOUT $MODULES; rc=\$?; set -- $kind; $LIST_STORE; exit \$rc" \
        >> "$log" 2>&1 < /dev/null || rc=$?
    sleep 1; kill "$tailpid" 2>/dev/null || true; wait "$tailpid" 2>/dev/null || true
    mkdir -p "$LOGDIR"   # (a concurrent make clean must not cost us the summary)
    echo "$name: regrtest exit $rc, wall $((SECONDS - t0)) s" | tee "$LOGDIR/$name.time"
}

echo "cpython_suite: $($PY -V), uid $UID_, per-module timeout ${TIMEOUT}s, logs in $LOGDIR"
for r in $RUNS; do
    case $r in
        baseline) run_suite baseline --devshm=native ;;
        sandbox)  run_suite sandbox --devshm=none --preload ;;
        patch)    run_suite patch --devshm=none --env SHM_REDIRECT=patch --env SHM_REDIRECT_EXPORT=defer ;;
        patch-pure) run_suite patch-pure --devshm=none --env SHM_REDIRECT=patch --env SHM_REDIRECT_EXPORT=0 ;;
        patch-export) run_suite patch-export --devshm=none --env SHM_REDIRECT=patch ;;
        preload)  run_suite preload --devshm=none --env SHM_REDIRECT=preload ;;
        *) echo "cpython_suite: unknown run '$r'" >&2; exit 2 ;;
    esac
done

PARSE_RUNS=${RUNS:-"baseline ${ACTIVATION:-sandbox}"}
# Parse the logs and compare. The parser is Python because it is structured text.
mkdir -p "$LOGDIR"
"$PY" - "$LOGDIR" "$PARSE_RUNS" $MODULES <<'EOF' | tee "$LOGDIR/summary.txt"
import os, re, sys
logdir, runnames, modules = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
if 'baseline' not in runnames:
    runnames.insert(0, 'baseline')
PROGRESS = re.compile(r'^\d+:\d+:\d+ (?:load avg: [\d.]+ )?\[\s*\d+/\d+(?:/\d+)?\] (test_\w+)(?: (.*?))?(?: -- running: .*)?$')
RAN = re.compile(r'^Ran (\d+) tests? in ([\d.]+)s$')
RESULT = re.compile(r'^(OK|FAILED)(?: \((.*)\))?$')

def parse(path):
    """{module: dict(status, ran, skipped, failures, errors, secs)} from a regrtest -j -v log."""
    res, cur = {}, None
    if not os.path.exists(path):
        return res
    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            m = PROGRESS.match(line)
            if m:
                cur = res.setdefault(m.group(1), {})
                # "passed (1 min 6 sec)", "failed (2 errors)", "failed (env changed)", "timed out (...)"
                cur.update(status=m.group(2) or '?', ran=None)
                continue
            if cur is None:
                continue
            m = RAN.match(line)
            if m:
                cur.update(ran=int(m.group(1)), secs=float(m.group(2)), result=None)
                continue
            m = RESULT.match(line)
            if m and cur.get('ran') is not None and cur.get('result') is None:
                kv = dict(failures=0, errors=0, skipped=0, unexpected_successes=0)
                for part in (m.group(2) or '').split(','):
                    if '=' in part:
                        k, v = part.strip().split('=')
                        kv[k.replace(' ', '_')] = int(v)
                cur.update(result=m.group(1), **kv)
    return res

runs = {name: parse(os.path.join(logdir, name + '.log')) for name in runnames}
runs = {k: v for k, v in runs.items() if os.path.exists(os.path.join(logdir, k + '.log'))}
TITLES = {'baseline': 'baseline (native /dev/shm)', 'sandbox': 'sandbox (no /dev/shm, preload)',
          'patch': 'patch (no /dev/shm, ctypes)', 'patch-export': 'patch+export (no /dev/shm)',
          'patch-pure': 'patch, never preloaded',
          'preload': 'preload (no /dev/shm, re-exec)'}
cols = [n for n in runnames if n in runs] or ['baseline']
passed = failed = 0
reasons, notes = [], []
def cell(r):
    if not r or r.get('ran') is None:
        return '%-29s' % ('no result (%s)' % (r or {}).get('status', 'not run'))[:29]
    return '%5d %5d %4d %4d %7.1f' % (r['ran'], r['skipped'], r['failures'], r['errors'], r['secs'])
hdr = '%5s %5s %4s %4s %7s' % ('ran', 'skip', 'fail', 'err', 'secs')
print()
print('%-32s %s | %s' % ('', ' | '.join('%-29s' % TITLES.get(n, n)[:29] for n in cols), ''))
print('%-32s %s | %s' % ('module', ' | '.join(hdr for n in cols), 'verdict'))
for mod in modules:
    b = runs.get('baseline', {}).get(mod)
    verdicts = []
    for name in cols:
        r = runs.get(name, {}).get(mod)
        why = []
        if not r or r.get('ran') is None:
            why.append('no unittest summary (%s)' % (r or {}).get('status', 'not run'))
        else:
            if r['failures'] or r['errors'] or r['unexpected_successes']:
                why.append('%d failures, %d errors' % (r['failures'], r['errors']))
            if 'env changed' in r['status']:
                notes.append('%s/%s: regrtest: %s (not counted as a failure)' % (mod, name, r['status']))
            elif not r['status'].startswith('passed'):
                why.append('regrtest: ' + r['status'])
            if name != 'baseline' and b and b.get('ran') is not None:
                if r['ran'] != b['ran']:
                    why.append('ran %d, baseline %d' % (r['ran'], b['ran']))
                if r['skipped'] != b['skipped']:
                    why.append('skipped %d, baseline %d' % (r['skipped'], b['skipped']))
        if why:
            failed += 1
            verdicts.append('%s FAIL' % name)
            reasons.append('%s/%s: %s' % (mod, name, '; '.join(why)))
        else:
            passed += 1
            verdicts.append('%s ok' % name)
    print('%-32s %s | %s' % (mod, ' | '.join(cell(runs.get(n, {}).get(mod)) for n in cols), ', '.join(verdicts)))
for name in runs:
    with open(os.path.join(logdir, name + '.log'), errors='replace') as f:
        left = [l.strip() for l in f if l.startswith('   left: ')]
    # The resource tracker must have removed whatever the suites leaked: an object left in the
    # store (or the baseline's /dev/shm) is a leak we would hand to the next Lambda invocation.
    if left:
        failed += 1
        reasons.append('%s: %d objects left in the store / /dev/shm: %s' % (name, len(left), ' '.join(left[:5])))
    else:
        passed += 1
for r in notes:
    print('  NOTE', r)
for r in reasons:
    print('  FAIL', r)
print('%d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
EOF
