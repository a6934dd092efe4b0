#!/usr/bin/env bash
# tests/arm64/run.sh — the arm64 tests under qemu-user (driven by `make test-arm64`).
#
#   ARM64_ROOT=DIR tests/arm64/run.sh ARM64_BUILD
#
# ARM64_BUILD holds what mk/arm64.mk cross-built: libshm_redirect.so, test_shim, the static Go
# test binaries (*.test) and prebuilt/ (C helpers of the Go tests, see fakebin/). ARM64_ROOT is
# the arm64 Debian root of tests/rootfs.sh. Every step runs chrooted in it through
# tests/sandbox.sh, i.e. every arm64 binary (test programs, python3, /bin/sh) runs under
# qemu-aarch64 via binfmt_misc:
#   C       shim/tests as root, --ro, devshm=none and devshm=native
#   Go      core, pybind, tests/interop test binaries as root, devshm=none, writable / (as test-go)
#   Python  tests/smoke_mp.py + numpy_shm.py x fork/spawn/forkserver, uid 993, --ro, devshm=none,
#           --preload=the arm64 library (and once without it: must fail); store empty afterwards
#   patch   the shm_redirect package (no Go extension) activated with SHM_REDIRECT=patch,
#           SHM_REDIRECT_LIB=the arm64 library, no LD_PRELOAD; store empty afterwards
# Skips count as failures. Last line: "arm64: N passed, M failed (T s)".
set -uo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$(dirname -- "$SELF")")")
SANDBOX="$PROJECT/tests/sandbox.sh"
B=$(readlink -f -- "${1:?usage: ARM64_ROOT=DIR $0 ARM64_BUILD}")
R=${ARM64_ROOT:?set ARM64_ROOT (tests/rootfs.sh bookworm-arm64)}
LIB=$B/libshm_redirect.so
PY=/usr/bin/python3   # the root's own (arm64) interpreter
LOGS=$B/logs
T0=$SECONDS

[ -r /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || { echo "arm64: qemu-aarch64 is not registered in binfmt_misc (tests/rootfs.sh does it)" >&2; exit 2; }
for f in "$LIB" "$B/test_shim" "$R/usr/bin/python3"; do
    [ -e "$f" ] || { echo "arm64: $f missing (make lib-arm64 arm64-tests; tests/rootfs.sh)" >&2; exit 2; }
done
rm -rf "$LOGS"; mkdir -p "$LOGS"

passed=0 failed=0
ok()  { passed=$((passed + ${1:-1})); }
bad() { failed=$((failed + 1)); echo "  FAIL $*"; }
# run NAME SANDBOX-OPTIONS... -- CMD...: the output goes to $LOGS/NAME.log; prints its duration.
run() {
    local name=$1 t=$SECONDS rc
    shift
    timeout 600 "$SANDBOX" --root="$R" "$@" > "$LOGS/$name.log" 2>&1
    rc=$?
    echo "$rc" > "$LOGS/$name.rc"
    printf '%-34s %3d s  (rc %d, %s)\n' "$name" $((SECONDS - t)) "$rc" "$LOGS/$name.log"
    return $rc
}
# RESULT lines: every one must be ok, and there must be exactly $2 of them.
results_ok() {
    local name=$1 want=$2 log=$LOGS/$1.log n nok
    n=$(grep -c '^RESULT ' "$log"); nok=$(grep -c '^RESULT [a-z]* [A-Za-z_]* ok$' "$log")
    ok "$nok"
    [ "$n" -eq "$want" ] || bad "$name: $n results, want $want"
    grep '^RESULT ' "$log" | grep -v ' ok$' | sed "s/^/  FAIL $name: /"
    failed=$((failed + n - nok))
    if grep -q '^LEFT ' "$log"; then bad "$name: objects left in the store:"; grep '^LEFT ' "$log" | head
    else ok; fi
}

echo "== C: shim/tests ($(basename "$B")/test_shim, linked against the arm64 library), uid 993; root-only tests as root"
for shm in none native; do
    for who in user root; do
        name=c-devshm-$shm-$who
        if [ "$who" = user ]; then opts=(); args=(); else opts=(--as-root); args=(--needs-root); fi
        run "$name" --ro --devshm=$shm "${opts[@]+"${opts[@]}"}" -- \
            /bin/sh -c 'echo "machine: $(uname -m)"; exec "$@"' sh "$B/test_shim" "${args[@]+"${args[@]}"}"
        log=$LOGS/$name.log
        grep -q '^machine: aarch64$' "$log" || bad "$name: not running as aarch64"
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" || echo "0 passed, 1 failed, 0 skipped")
        read -r p _ f _ s _ <<<"$line"
        ok "$p"; failed=$((failed + f))
        [ "$p" -gt 0 ] || bad "$name: no test ran"
        grep -E '^FAIL' "$log" | sed "s/^/  FAIL $name: /"
        [ "$(cat "$LOGS/$name.rc")" = 0 ] || [ "$f" -gt 0 ] || bad "$name: exit status $(cat "$LOGS/$name.rc")"
        echo "   $line"
    done
done

echo "== Go: GOARCH=arm64 CGO_ENABLED=0 test binaries, uid 993, no /dev/shm, read-only /"
# As tests/go_tests.sh in the sandbox: every skip judged; only "needs root" ones may skip, and
# they run again as root. A fresh on-disk TMPDIR per binary (core's TestResolveDir needs one
# that is not a tmpfs); it and the root's /tmp, /var/tmp are checked for leftovers.
fake=$LOGS/fakebin.log; : > "$fake"; chmod 666 "$fake"
tmp_before=$(ls -A "$R/tmp" "$R/var/tmp")
. "$PROJECT/tests/go_judge.sh"
go_run() {   # go_run NAME BINARY PKG [--as-root] [TEST FLAGS]: one run, judged
    local name=$1 bin=$2 pkg=$3 opts=() allow='needs root'
    shift 3
    [ "${1:-}" != --as-root ] || { opts=(--as-root); allow='a^'; shift; }
    local gotmp=$B/go-tmp/$name
    rm -rf "$gotmp"; mkdir -p "$gotmp"; chmod 1777 "$gotmp"
    (cd "$PROJECT/$pkg" && run "$name" --ro --devshm=none "${opts[@]+"${opts[@]}"}" \
        --env TMPDIR="$gotmp" --env PATH="$PROJECT/tests/arm64/fakebin:/usr/local/bin:/usr/bin:/bin" \
        --env SHMR_ARM64_PREBUILT="$B/prebuilt" --env SHMR_ARM64_LIB="$LIB" --env SHMR_ARM64_FAKELOG="$fake" \
        --env SHMR_PYTHON="$PY" \
        -- "$bin" -test.v -test.count=1 -test.timeout=5m "$@")
    go_judge "$name" "$LOGS/$name.log" "$(cat "$LOGS/$name.rc")" "$allow"
    left=$(find "$gotmp" -mindepth 1 ! \( -name shm -type d -empty \))   # an empty store may stay
    [ -z "$left" ] || bad "$name: left behind: $(echo $left | head -c 300)"
}
for bin in "$B"/*.test; do
    name=$(basename "$bin" .test)
    pkg=${name//_//}
    go_run "go-$name" "$bin" "$pkg"
    roots=$(go_skips "$LOGS/go-$name.log" | cut -f1 | paste -sd'|')
    [ -z "$roots" ] || go_run "go-$name-root" "$bin" "$pkg" --as-root -test.run="^($roots)\$"
done
rm -rf "$B/go-tmp"
[ "$(ls -A "$R/tmp" "$R/var/tmp")" = "$tmp_before" ] || bad "go: left behind in the root's /tmp or /var/tmp: $(ls -A "$R/tmp" "$R/var/tmp" | xargs)"
echo "   C helpers handed out by tests/arm64/fakebin (cross-built from the same sources):"
sort "$fake" | uniq -c | sed 's/^/     /'

echo "== Python: arm64 python3 + numpy, uid 993, no /dev/shm, read-only /"
list_store='ls -A /tmp/shm 2>/dev/null | sed "s/^/LEFT /"; ls -A /dev/shm 2>/dev/null | sed "s/^/LEFT \/dev\/shm\//"'
run py-no-preload --ro --uid=993 --devshm=none -- /bin/sh -c "$PY $PROJECT/tests/smoke_mp.py fork"
n=$(grep -c '^RESULT fork [A-Za-z_]* error FileNotFoundError: \[Errno 2\]' "$LOGS/py-no-preload.log")
if [ "$n" -eq 6 ]; then ok; else bad "py-no-preload: want 6 ENOENT errors without the preload (the sandbox must be broken), got $n"; fi
echo "   without the preload: $n/6 checks fail with ENOENT, as they must"
run py-preload --ro --uid=993 --devshm=none --preload="$LIB" -- /bin/sh -c "
    $PY -c 'import platform, numpy; print(\"machine:\", platform.machine(), \"numpy\", numpy.__version__)'
    $PY $PROJECT/tests/smoke_mp.py fork,spawn,forkserver 2>&1
    $PY $PROJECT/tests/arm64/numpy_shm.py fork,spawn,forkserver 2>&1
    $list_store"
grep -q '^machine: aarch64 ' "$LOGS/py-preload.log" || bad "py-preload: not running as aarch64"
results_ok py-preload $((6 * 3 + 2 * 3))
echo "   $(grep -c '^RESULT .* ok$' "$LOGS/py-preload.log")/24 ok (smoke_mp 6 + numpy 2, x fork/spawn/forkserver); $(grep -c '^LEFT ' "$LOGS/py-preload.log") objects left"

echo "== Python package, SHM_REDIRECT=patch (ctypes on the arm64 library, no Go extension, no LD_PRELOAD)"
run py-patch --ro --uid=993 --devshm=none --env SHM_REDIRECT=patch --env SHM_REDIRECT_LIB="$LIB" \
    --env PYTHONPATH="$PROJECT/pybind" --env PYTHONDONTWRITEBYTECODE=1 -- /bin/sh -c "
    $PY $PROJECT/tests/arm64/patch_smoke.py fork,spawn,forkserver 2>&1
    SHM_REDIRECT_EXPORT=0 $PY $PROJECT/tests/arm64/patch_smoke.py fork 2>&1
    $list_store"
n=$(grep -c "^STATE patch lib=$LIB export=\(-\|$LIB\) core_loaded=False$" "$LOGS/py-patch.log")
if [ "$n" -eq 2 ]; then ok; else bad "py-patch: want 2 'STATE patch' lines (exported, not exported), got $n"; grep '^STATE' "$LOGS/py-patch.log"; fi
results_ok py-patch $((6 * 3 + 6))
echo "   $(grep -c '^RESULT .* ok$' "$LOGS/py-patch.log")/24 ok (exported: fork/spawn/forkserver; SHM_REDIRECT_EXPORT=0: fork); $(grep -c '^LEFT ' "$LOGS/py-patch.log") objects left"

echo "arm64: $passed passed, $failed failed ($((SECONDS - T0)) s under qemu-aarch64)"
[ "$failed" -eq 0 ]
