#!/usr/bin/env bash
# tests/oldglibc/run.sh — the preload on a REAL old glibc: Debian bullseye (glibc 2.31, Python 3.9;
# before 2.34 dlsym is in libdl, sem_* in libpthread, shm_* in librt), chrooted by tests/sandbox.sh
# as uid 993 on a read-only root with a fresh /tmp. In one sandbox per /dev/shm variant:
#   - /bin/true and python3 start with the preload (it once needed GLIBC_2.34 and could not load);
#   - tests/smoke_mp.py: Lock/Queue/Pool/Value/Array/shared_memory x fork/spawn/forkserver work,
#     without /dev/shm (the store /tmp/shm) and with one (native: forwarded to glibc 2.31);
#   - nolibdl (tests/oldglibc/nolibdl.c) loads no libdl, so the preload has no dlsym: sem_*,
#     shm_* and statvfs still work (store code, on /dev/shm in native mode); in native mode
#     glibc 2.31's own sem_open then opens a semaphore it made (check.py interop);
#   - df, which loads no libdl either, prints the same sizes with and without the preload;
#   - the store (and /dev/shm) are empty afterwards.
# Plus the baseline: without the preload a Lock fails there (ENOSYS, as on Lambda's python3.9).
# Usage: tests/oldglibc/run.sh   (needs root, build/libshm_redirect.so and
# build/oldglibc-check/nolibdl: `make test-oldglibc` builds both). Last line: "N passed, M failed".
set -euo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
HERE=$(dirname -- "$SELF")
PROJECT=$(dirname -- "$(dirname -- "$HERE")")
SANDBOX=$PROJECT/tests/sandbox.sh
NOLIBDL=$PROJECT/build/oldglibc-check/nolibdl
METHODS=fork,spawn,forkserver
NCHECKS=6   # tests/smoke_mp.py: Lock Queue Pool Value Array shared_memory
for f in "$PROJECT/build/libshm_redirect.so" "$NOLIBDL"; do
    [ -r "$f" ] || { echo "oldglibc: $f missing (make test-oldglibc builds it)" >&2; exit 2; }
done
ROOT=$("$PROJECT/tests/rootfs.sh" bullseye-amd64)

passed=0 failed=0
ok()  { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "  FAIL $*"; }
# want PATTERN DESCRIPTION: the output holds a line matching PATTERN (grep -E).
want() { if grep -qE -- "$1" <<<"$out"; then ok; else bad "$2"; fi; }

sb() { timeout 900 "$SANDBOX" --root="$ROOT" --ro --uid=993 "$@"; }

# What runs inside, with the preload: $1 the /dev/shm variant, $2.. smoke_mp.py, check.py, nolibdl.
INNER='
    devshm=$1 smoke=$2 check=$3 nolibdl=$4
    /bin/true && echo "START /bin/true ok"
    python3 -c pass && echo "START python3 ok"
    python3 -c "import sys; print(\"PYTHON\", sys.version.split()[0])"
    python3 "$smoke" "'$METHODS'" 2>&1
    if [ "$devshm" = native ]; then
        NOLIBDL_DIR=/dev/shm NOLIBDL_KEEP=/nolibdl-keep "$nolibdl" 2>&1
        python3 "$check" interop /nolibdl-keep 2>&1
    else
        NOLIBDL_DIR=/tmp/shm "$nolibdl" 2>&1
    fi
    # statvfs in a program without libdl: the preload converts statfs as glibc does.
    a=$(df --output=size,itotal,target / /tmp /proc 2>&1)
    b=$(LD_PRELOAD= df --output=size,itotal,target / /tmp /proc 2>&1)
    [ "$a" = "$b" ] && echo "DF same" || printf "DF differ:\n%s\n%s\n" "$a" "$b"
    ls -A /tmp/shm 2>/dev/null | sed "s/^/LEFT \/tmp\/shm\//"
    ls -A /dev/shm 2>/dev/null | sed "s/^/LEFT \/dev\/shm\//"
    true'

echo "== bullseye (glibc 2.31) in $ROOT"
t0=$SECONDS
out=$(sb --devshm=none -- python3 "$HERE/check.py" baseline 2>&1 || true)
echo "== devshm=none, no preload ($((SECONDS - t0)) s)"
want '^CHECK baseline ok' "baseline: $(grep '^CHECK' <<<"$out" || echo "$out" | tail -3)"
# doctor (the checkout's package on this Python 3.9) names Lambda's ENOSYS and explains it.
out=$(sb --devshm=none --env PYTHONPATH="$PROJECT/pybind" --env SHM_REDIRECT=off -- \
    python3 -m shm_redirect doctor 2>&1 || true)
echo "== doctor, devshm=none, no preload"
want '^   sem_open  fails: ENOSYS ' "doctor: no ENOSYS for sem_open: $(grep -m1 'sem_open' <<<"$out")"
want "why: glibc < 2\.34 found no tmpfs mounted" "doctor: ENOSYS not explained"

for devshm in none native; do
    t0=$SECONDS
    out=$(sb --devshm=$devshm --preload -- /bin/sh -c "$INNER" inner "$devshm" \
        "$PROJECT/tests/smoke_mp.py" "$HERE/check.py" "$NOLIBDL" 2>&1) || out+=$'\n'"SANDBOX exit $?"
    echo "== devshm=$devshm, preload ($((SECONDS - t0)) s)"
    want '^START /bin/true ok' "$devshm: /bin/true does not start"
    want '^START python3 ok' "$devshm: python3 does not start"
    want '^PYTHON 3\.9\.' "$devshm: not Python 3.9"
    n=$(grep -c '^RESULT [a-z]* [A-Za-z_]* ' <<<"$out" || true)
    [ "$n" -eq $((NCHECKS * 3)) ] && ok || bad "$devshm: $n smoke results instead of $((NCHECKS * 3))"
    while read -r _ method check result; do
        [ "$result" = ok ] && ok || bad "$devshm/$method/$check: $result"
    done < <(grep '^RESULT ' <<<"$out")
    want '^nolibdl: [0-9]+ checks, 0 failed' "$devshm: nolibdl failed"
    [ "$devshm" = native ] && want '^CHECK interop ok' "$devshm: glibc 2.31 cannot use nolibdl's semaphore"
    want '^DF same' "$devshm: df differs with the preload"
    if grep -q '^LEFT ' <<<"$out"; then bad "$devshm: objects left behind"; else ok; fi
    if grep -qE '^(nolibdl: line|CHECK .* error|DF differ|SANDBOX|LEFT )|Error|error' <<<"$out"; then
        sed 's/^/      /' <<<"$out" | grep -vE '^      (RESULT .* ok|START|PYTHON)' | tail -40
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
