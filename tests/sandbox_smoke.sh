#!/usr/bin/env bash
# tests/sandbox_smoke.sh — quick end-to-end check of the preload in the Lambda-shaped sandbox.
#
# For each broken-/dev/shm variant (none, ro, noperm), as uid 993 on a read-only root:
#   - without the preload, Lock/Queue/Pool/Value/Array/shared_memory must FAIL, with the errno
#     the variant implies (ENOENT, EROFS, EACCES) — proving the sandbox really is broken;
#   - with --preload they must all WORK, under the fork, spawn and forkserver start methods;
#   - the store must be empty afterwards (listed from inside the sandbox, whose /tmp is private).
# Last line: "N passed, M failed" (one per check and start method and run, plus the store checks).
set -euo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
SANDBOX="$PROJECT/tests/sandbox.sh"
PY=${PYTHON:-/usr/bin/python3}
METHODS=fork,spawn,forkserver
NCHECKS=6   # Lock Queue Pool Value Array shared_memory (tests/smoke_mp.py)
[ -r "$PROJECT/build/libshm_redirect.so" ] || { echo "sandbox_smoke: build the preload first (make lib)" >&2; exit 2; }

passed=0 failed=0
ok()  { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "  FAIL $*"; }

# Runs the workload in the sandbox, then lists the store from inside; prints RESULT/LEFT lines.
run() {
    timeout 600 "$SANDBOX" --ro --uid=993 "$@" -- /bin/sh -c '
        "$1" "$2" "$3" 2>&1
        d=${SHM_REDIRECT_DIR:-${TMPDIR:-/tmp}/shm}
        ls -A "$d" 2>/dev/null | sed "s/^/LEFT /"
        ls -A /dev/shm 2>/dev/null | sed "s/^/LEFT \/dev\/shm\//"
        true' smoke "$PY" "$PROJECT/tests/smoke_mp.py" "$METHODS" || echo "RESULT - - sandbox exit $?"
}

for variant in none ro noperm; do
    case $variant in   # what glibc 2.36 says without the preload
        none)   want='FileNotFoundError: \[Errno 2\]' ;;
        ro)     want='OSError: \[Errno 30\]' ;;
        noperm) want='PermissionError: \[Errno 13\]' ;;
    esac
    for mode in native preload; do
        opts=(--devshm="$variant"); [ "$mode" = preload ] && opts+=(--preload)
        t0=$SECONDS
        out=$(run "${opts[@]}")
        echo "== devshm=$variant $mode ($((SECONDS - t0)) s)"
        n=$(grep -c '^RESULT [a-z]* [A-Za-z_]* ' <<<"$out" || true)
        if [ "$n" -ne $((NCHECKS * 3)) ]; then
            bad "devshm=$variant $mode: $n results instead of $((NCHECKS * 3)); output:"
            sed 's/^/      /' <<<"$out" | tail -30
        fi
        while read -r _ method check result; do
            if [ "$mode" = native ]; then
                # Must fail, and for the expected reason (not a hang or an unrelated error).
                if [[ $result =~ ^error\ $want ]]; then ok; else bad "$variant/$mode/$method/$check: want error ~ '$want', got: $result"; fi
            else
                if [ "$result" = ok ]; then ok; else bad "$variant/$mode/$method/$check: $result"; fi
            fi
        done < <(grep '^RESULT ' <<<"$out")
        if [ "$mode" = preload ]; then
            if grep -q '^LEFT ' <<<"$out"; then bad "devshm=$variant: objects left behind:"; grep '^LEFT ' <<<"$out" | head
            else ok; fi
        fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
