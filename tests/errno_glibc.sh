#!/usr/bin/env bash
# tests/errno_glibc.sh — the preload's error numbers against real glibcs, case by case
# (tests/errno_cases.py: bad names, lengths, flags of sem_open/sem_unlink/shm_open/shm_unlink).
#
#   tests/errno_glibc.sh ROOT...     each ROOT a tree from tests/rootfs.sh, or "host"
#
# In each root, the same cases run twice in the sandbox: natively (a tmpfs /dev/shm, no preload:
# that glibc's own answers) and through the preload without /dev/shm (the store's). The store's
# answers must equal the newest glibc's (the last ROOT given); for the others the differences
# are printed, as what that glibc does differently. Last line: "N passed, M failed".
set -uo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
SANDBOX="$PROJECT/tests/sandbox.sh"
CASES="$PROJECT/tests/errno_cases.py"
[ $# -gt 0 ] || { echo "usage: tests/errno_glibc.sh ROOT... (host for this machine)" >&2; exit 2; }
passed=0 failed=0 last=${!#}
out=$PROJECT/build/errno-glibc
mkdir -p "$out"

for root in "$@"; do
    opts=(); py=/usr/bin/python3; name=host
    if [ "$root" != host ]; then opts=(--root="$root"); py=python3; name=$(basename "$root"); fi
    "$SANDBOX" --ro --devshm=native "${opts[@]}" -- "$py" "$CASES" > "$out/$name.glibc" 2>&1
    "$SANDBOX" --ro --devshm=none --preload "${opts[@]}" -- "$py" "$CASES" > "$out/$name.store" 2>&1
    n=$(grep -c ': ' "$out/$name.glibc"); version=$(head -1 "$out/$name.glibc")
    if [ "$n" -lt 20 ] || [ "$(grep -c ': ' "$out/$name.store")" != "$n" ]; then
        failed=$((failed + 1)); echo "FAIL - $name: the cases did not run:"; tail -5 "$out/$name.glibc" "$out/$name.store"
        continue
    fi
    differ=$(diff <(tail -n +2 "$out/$name.glibc") <(tail -n +2 "$out/$name.store") | grep '^[<>]' || true)
    if [ -z "$differ" ]; then
        passed=$((passed + 1)); echo "ok - $name ($version): the store answers as glibc in all $n cases"
    elif [ "$root" = "$last" ]; then
        failed=$((failed + 1)); echo "FAIL - $name ($version), the newest glibc here: the store differs:"
        sed 's/^</    glibc:/; s/^>/    store:/' <<<"$differ"
    else
        passed=$((passed + 1)); echo "ok - $name ($version), older: this glibc answers otherwise than the store in:"
        sed 's/^</    glibc:/; s/^>/    store:/' <<<"$differ"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
