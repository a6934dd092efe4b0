#!/usr/bin/env bash
# tests/upstream_hangs.sh — CPython's own known hangs (tests/cpython_known_hangs.txt), measured
# natively and through shm-redirect side by side, in the same Lambda-shaped sandbox.
#
# The suites rerun a module once when it hangs in one of those tests, in any arm. That is fair
# only if shm-redirect does not make the hang more likely, which is what this measures: ROUNDS
# rounds, each running the test class that holds the hang once per arm, the arms interleaved
# (so a busy moment strikes both):
#   native   tests/sandbox.sh --devshm=native             (a working /dev/shm, no preload)
#   preload  tests/sandbox.sh --devshm=none --preload     (no /dev/shm, as on Lambda)
# both --ro --uid=993. Each run passes or hangs in a known way (tests/suite_compare.py
# known-hangs on its faulthandler dump); anything else fails, and so does an object left in the
# store or /dev/shm. Last, a one-sided Fisher exact test: the preload arm fails when its hang
# count is higher than native's with p < 0.01.
#
# Knobs: UPSTREAM_HANG_ROUNDS (20; `make test-upstream-hangs` runs 100, `make test` 10),
# UPSTREAM_HANG_TIMEOUT (per run, s; 20: the class takes 2-4 s), UPSTREAM_HANG_UID (993),
# PYTHON (/usr/bin/python3).
# Logs: build/upstream-hangs/ (a run's log is kept when it did not pass), summary.txt.
set -euo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
SANDBOX="$PROJECT/tests/sandbox.sh"
COMPARE="$PROJECT/tests/suite_compare.py"
PY=${PYTHON:-/usr/bin/python3}
ROUNDS=${UPSTREAM_HANG_ROUNDS:-20}
TIMEOUT=${UPSTREAM_HANG_TIMEOUT:-20}
UID_=${UPSTREAM_HANG_UID:-993}
LOGDIR="$PROJECT/build/upstream-hangs"
MODULE=test_multiprocessing_fork
CLASS='*.WithProcessesTestPool.*'
[ -r "$PROJECT/build/libshm_redirect.so" ] || { echo "upstream_hangs: make lib first" >&2; exit 2; }
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"

declare -A passed=() hung=() other=()
LIST='d=${SHM_REDIRECT_DIR:-${TMPDIR:-/tmp}/shm}; [ "$1" = native ] && d=/dev/shm
ls -A "$d" 2>/dev/null | sed "s/^/   left: /"; true'

run_once() {   # run_once ARM ROUND sandbox-options...
    local arm=$1 round=$2; shift 2
    local log="$LOGDIR/$arm-$round.log" rc=0
    "$SANDBOX" --ro --uid="$UID_" "$@" -- /bin/sh -c \
        "$PY -m test -v --timeout=$TIMEOUT $MODULE -m '$CLASS'; rc=\$?; set -- $arm; $LIST; exit \$rc" \
        > "$log" 2>&1 < /dev/null || rc=$?
    if grep -q '^   left: ' "$log"; then
        other[$arm]=$((${other[$arm]:-0} + 1)); echo "$arm round $round: objects left, see $log"
    elif [ "$rc" = 0 ] && grep -q '^Tests result: SUCCESS' "$log"; then
        passed[$arm]=$((${passed[$arm]:-0} + 1)); rm -f "$log"
    elif [ -n "$("$PY" "$COMPARE" known-hangs regrtest "$log")" ]; then
        hung[$arm]=$((${hung[$arm]:-0} + 1)); echo "$arm round $round: known upstream hang"
    else
        other[$arm]=$((${other[$arm]:-0} + 1)); echo "$arm round $round: FAILED (exit $rc), see $log"
    fi
}

echo "upstream_hangs: $($PY -V), $ROUNDS rounds of $MODULE -m '$CLASS', timeout ${TIMEOUT}s"
for round in $(seq "$ROUNDS"); do
    run_once native "$round" --devshm=native
    run_once preload "$round" --devshm=none --preload
done

{
    printf '%-8s %6s %6s %12s %6s\n' arm runs passed 'known hangs' other
    for arm in native preload; do
        printf '%-8s %6d %6d %12d %6d\n' "$arm" "$ROUNDS" "${passed[$arm]:-0}" "${hung[$arm]:-0}" "${other[$arm]:-0}"
    done
    "$PY" - "$ROUNDS" "${hung[native]:-0}" "${hung[preload]:-0}" <<'EOF'
import math, sys
n, a, b = (int(x) for x in sys.argv[1:])
# One-sided Fisher exact test: P(preload has >= b of the a+b hangs) with both arms n runs.
k = a + b
p = sum(math.comb(n, i) * math.comb(n, k - i) for i in range(b, min(n, k) + 1)) / math.comb(2 * n, k)
print('preload hangs more often than native: p = %.3g (%s)' % (p, 'FAIL' if p < 0.01 else 'ok'))
EOF
} | tee "$LOGDIR/summary.txt"
! grep -q FAIL "$LOGDIR/summary.txt" && [ "${other[native]:-0}" = 0 ] && [ "${other[preload]:-0}" = 0 ]
