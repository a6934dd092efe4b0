#!/usr/bin/env bash
# tests/cpython_suite.sh — CPython's own multiprocessing test suites, natively and through
# the preload, in the same Lambda-shaped sandbox.
#
#   (a) baseline: tests/sandbox.sh --devshm=native  (a working /dev/shm; the preload is not loaded)
#   (b) sandbox:  tests/sandbox.sh --devshm=none --preload  (no /dev/shm, as on Lambda)
# Both with the same other options: --ro (read-only /, fresh /tmp) and a non-root uid.
#
# For each module every test id must have the same outcome in (a) and (b) (ok, or skipped for
# the same reason), with no failure, error, "env changed" or extra leak warning in either, and
# the store empty afterwards: tests/suite_compare.py. A skip that differs would mean the preload
# made CPython think something is missing; a missing id, that a test crashed or was lost.
#
# A module that times out fails; if its hang is one of CPython's own (tests/cpython_known_hangs.txt
# says which, and why), that module alone is run once more in the same arm, into NAME.rerun.log,
# and the rerun is compared instead; the summary names it.
#
# Environment knobs: CPYTHON_UID (993), CPYTHON_TIMEOUT (per module, s; 480: the longest module
# takes 2.3 min on 2 cores),
# CPYTHON_MODULES (the four below), CPYTHON_RUNS ("baseline sandbox"; a baseline is always run
# first, and only this invocation's logs are compared), PYTHON (/usr/bin/python3).
# Logs: build/cpython-logs/{baseline,sandbox}.log (full -v output), NAME.rerun.log, summary.txt.
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
    RUNS=${CPYTHON_RUNS:-"baseline $ACTIVATION"}
else
    LOGDIR=${CPYTHON_LOGDIR:-"$PROJECT/build/cpython-logs"}
    PY=${PYTHON:-/usr/bin/python3}
fi
UID_=${CPYTHON_UID:-993}
TIMEOUT=${CPYTHON_TIMEOUT:-480}
MODULES=${CPYTHON_MODULES:-"test_multiprocessing_fork test_multiprocessing_spawn test_multiprocessing_forkserver test_concurrent_futures"}
[ -n "$ACTIVATION" ] || RUNS=${CPYTHON_RUNS:-"baseline sandbox"}
# Every comparison is against a baseline run of this same invocation: never against old logs.
RUNS="baseline $(printf '%s\n' $RUNS | grep -vx baseline | xargs)"

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
rm -f "$LOGDIR"/*.log "$LOGDIR"/*.time "$LOGDIR/summary.txt"

# Common sandbox options: Lambda's shape. Only --devshm and --preload differ between the runs.
COMMON=(--ro --uid="$UID_")
# The store (or /dev/shm) is listed at the end of each run, from inside the sandbox (the fresh
# /tmp disappears with it), so leaked objects show up in the log.
LIST_STORE='d=${SHM_REDIRECT_DIR:-${TMPDIR:-/tmp}/shm}; [ "$1" = native ] && d=/dev/shm
echo "== objects left in $d:"; ls -ld "$d"; ls -A "$d" 2>/dev/null | sed "s/^/   left: /"; true'

run_suite() {   # run_suite NAME sandbox-options...   (RUN_MODULES: the modules; default all)
    local name=$1; shift
    local log="$LOGDIR/$name.log" mods=${RUN_MODULES:-$MODULES}
    local kind=store; [ "${name%.rerun}" = baseline ] && kind=native
    echo "== $name: sandbox.sh ${COMMON[*]} $* -- $PY -m test -j2 -v --timeout=$TIMEOUT $mods"
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
            $PY -m test -j2 -v --timeout=$TIMEOUT $mods; rc=\$?; set -- $kind; $LIST_STORE; exit \$rc" \
        >> "$log" 2>&1 < /dev/null || rc=$?
    sleep 1; kill "$tailpid" 2>/dev/null || true; wait "$tailpid" 2>/dev/null || true
    mkdir -p "$LOGDIR"   # (a concurrent make clean must not cost us the summary)
    echo "$name: regrtest exit $rc, wall $((SECONDS - t0)) s" | tee "$LOGDIR/$name.time"
}

run_arm() {   # run_arm NAME sandbox-options...: a run, and once more for a known upstream hang
    run_suite "$@"
    local hung
    hung=$("$PY" "$PROJECT/tests/suite_compare.py" known-hangs regrtest "$LOGDIR/$1.log" | xargs)
    if [ -n "$hung" ]; then
        echo "== $1: known upstream hang (tests/cpython_known_hangs.txt) in $hung: run once more"
        local name=$1; shift
        RUN_MODULES=$hung run_suite "$name.rerun" "$@"
    fi
}

echo "cpython_suite: $($PY -V), uid $UID_, per-module timeout ${TIMEOUT}s, logs in $LOGDIR"
for r in $RUNS; do
    case $r in
        baseline) run_arm baseline --devshm=native ;;
        sandbox)  run_arm sandbox --devshm=none --preload ;;
        patch)    run_arm patch --devshm=none --env SHM_REDIRECT=patch --env SHM_REDIRECT_EXPORT=defer ;;
        patch-pure) run_arm patch-pure --devshm=none --env SHM_REDIRECT=patch --env SHM_REDIRECT_EXPORT=0 ;;
        patch-export) run_arm patch-export --devshm=none --env SHM_REDIRECT=patch ;;
        preload)  run_arm preload --devshm=none --env SHM_REDIRECT=preload ;;
        *) echo "cpython_suite: unknown run '$r'" >&2; exit 2 ;;
    esac
done

# Test by test against the baseline (tests/suite_compare.py), plus the store listings.
"$PY" "$PROJECT/tests/suite_compare.py" regrtest "$LOGDIR" $RUNS -- $MODULES | tee "$LOGDIR/summary.txt"
