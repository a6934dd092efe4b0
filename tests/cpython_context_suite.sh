#!/usr/bin/env bash
# tests/cpython_context_suite.sh — CPython's multiprocessing test suite against
# shm_redirect.get_context() (tests/cpython_context_suite.py is the driver; read its docstring).
#
# For each start method (CTX_METHODS, default "fork spawn forkserver") two runs of the same driver,
# both in tests/sandbox.sh --ro --uid=$CTX_UID with SHM_REDIRECT=off and no LD_PRELOAD:
#   baseline  --devshm=native, SHMR_SUITE_NATIVE=1: CPython's own objects on a working /dev/shm
#   context   --devshm=none: shm_redirect's contexts/synchronize/heap/shared_memory, no /dev/shm
# The suite runs in the sandbox's fresh /tmp (some tests write os_helper.TESTFN in the cwd).
# Every test id must have the same outcome in both (ok, or skipped for the same reason), with no
# failure or error in either; the store (/tmp/shm) must be empty at the end of the context run
# (listed inside the sandbox): tests/suite_compare.py.
# A run that times out fails; if its hang is one of CPython's own (tests/cpython_known_hangs.txt),
# that run is made once more, into NAME-METHOD.rerun.log, and the rerun is compared instead.
# Logs: build/cpython-context-logs/{baseline,context}-METHOD[.rerun].log, summary.txt.
# Knobs: CTX_METHODS, CTX_UID (993), CTX_TIMEOUT (per run, s; 480: a run takes 1-1.5 min; the
# driver's faulthandler then dumps every thread and exits, a kill follows 60 s later).
set -euo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
SANDBOX="$PROJECT/tests/sandbox.sh"
PY=${PYTHON:-/usr/bin/python3}
LOGDIR=${CTX_LOGDIR:-"$PROJECT/build/cpython-context-logs"}
METHODS=${CTX_METHODS:-"fork spawn forkserver"}
UID_=${CTX_UID:-993}
TIMEOUT=${CTX_TIMEOUT:-480}
[ -r "$PROJECT/build/libshm_redirect.so" ] || { echo "cpython_context_suite: make lib first" >&2; exit 2; }
"$PY" -c 'import test._test_multiprocessing' 2>/dev/null \
    || { echo "cpython_context_suite: CPython's test package missing" >&2; exit 2; }
mkdir -p "$LOGDIR"
rm -f "$LOGDIR"/*.log "$LOGDIR/summary.txt"   # only this invocation's runs are compared

run() {   # run NAME METHOD -- sandbox options   (SUFFIX: ".rerun" for a rerun's log)
    local name=$1 method=$2; shift 3
    local native=0; [ "$name" = baseline ] && native=1
    local log="$LOGDIR/$name-$method${SUFFIX:-}.log" rc=0 t0=$SECONDS
    # SIGINT back to default before Python starts (see tests/cpython_suite.sh).
    timeout $((TIMEOUT + 60)) "$SANDBOX" --ro --uid="$UID_" "$@" \
        --env "PYTHONPATH=$PROJECT/pybind:$PROJECT/tests" --env SHM_REDIRECT=off \
        --env "SHMR_SUITE_TIMEOUT=$TIMEOUT" \
        --env "SHMR_SUITE_METHOD=$method" --env "SHMR_SUITE_NATIVE=$native" -- /bin/sh -c \
        "cd /tmp && $PY -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
            $PY $PROJECT/tests/cpython_context_suite.py -v; rc=\$?; i=0;
         while [ \$i -lt 300 ] && [ -n \"\$(ls -A /tmp/shm 2>/dev/null)\" ]; do sleep 0.1; i=\$((i+1)); done
         [ $native = 1 ] || ls -A /tmp/shm 2>/dev/null | sed 's/^/   left: /'; exit \$rc" \
        > "$log" 2>&1 < /dev/null || rc=$?
    echo "$name $method${SUFFIX:-}: exit $rc, wall $((SECONDS - t0)) s"
}

run_arm() {   # run_arm NAME METHOD -- sandbox options: a run, and once more for a known upstream hang
    run "$@"
    if [ -n "$("$PY" "$PROJECT/tests/suite_compare.py" known-hangs unittest "$LOGDIR/$1-$2.log")" ]; then
        echo "== $1 $2: known upstream hang (tests/cpython_known_hangs.txt): run once more"
        SUFFIX=.rerun run "$@"
    fi
}

for m in $METHODS; do
    run_arm baseline "$m" -- --devshm=native
    run_arm context "$m" -- --devshm=none
done

# Test by test against the baseline (tests/suite_compare.py), plus the store listings.
"$PY" "$PROJECT/tests/suite_compare.py" unittest "$LOGDIR" baseline context -- $METHODS | tee "$LOGDIR/summary.txt"
