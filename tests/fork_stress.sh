#!/usr/bin/env bash
# tests/fork_stress.sh — run build/fork_stress in the Lambda-shaped sandbox through the preload,
# then check from inside the same sandbox that the store is empty (with --ro the sandbox's
# /tmp, and so the store, vanish with it).
#
#   tests/fork_stress.sh [CYCLES]          (default 10000; needs build/fork_stress and the lib)
#   FORK_STRESS_NATIVE=1 tests/fork_stress.sh 300
#       the same with a native /dev/shm and no preload: shows glibc's own behaviour (glibc 2.36
#       deadlocks in a child's sem_open when another thread held sem_mappings_lock at fork).
#   FORK_STRESS_GIVE_UP=N, FORK_STRESS_CHILD_TIMEOUT=S are passed on (see tests/fork_stress.c).
# Last line: "N passed, M failed" (fork cycles run, plus one check for the empty store).
set -euo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
BIN="$PROJECT/build/fork_stress"
CYCLES=${1:-10000}
[ -x "$BIN" ] || { echo "fork_stress: $BIN missing (make test-fork-stress builds it)" >&2; exit 2; }

if [ "${FORK_STRESS_NATIVE:-0}" = 1 ]; then
    OPTS=(--ro --uid=993 --devshm=native)
    STORE=/dev/shm
else
    OPTS=(--ro --uid=993 --devshm=none --preload)
    STORE='${SHM_REDIRECT_DIR:-${TMPDIR:-/tmp}/shm}'
fi

# Inside: run the program, keep its last line aside, then count what is left in the store.
# The program's own summary line is rewritten into the combined one, so only one
# "N passed, M failed" line reaches the output.
for v in FORK_STRESS_GIVE_UP FORK_STRESS_CHILD_TIMEOUT; do
    [ -z "${!v:-}" ] || OPTS+=(--env "$v=${!v}")
done
exec "$PROJECT/tests/sandbox.sh" "${OPTS[@]}" -- /bin/bash -c '
    set -u
    out=$(mktemp)
    "$1" "$2" | tee "$out" | grep -v -E "^[0-9]+ passed, [0-9]+ failed$"
    rc=${PIPESTATUS[0]}
    read -r passed _ failed _ < <(grep -E "^[0-9]+ passed, [0-9]+ failed$" "$out" || echo "0 passed, 1 failed")
    store='"$STORE"'
    left=$(ls -A "$store" 2>/dev/null | wc -l)
    if [ "$left" -eq 0 ]; then
        echo "fork_stress: store $store is empty afterwards"
        passed=$((passed + 1))
    else
        echo "fork_stress: $left objects left in $store:"; ls -lA "$store" | head -20
        failed=$((failed + 1))
    fi
    echo "fork_stress: exit status $rc"
    echo "$passed passed, $failed failed"
    [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
' fork_stress "$BIN" "$CYCLES"
