#!/usr/bin/env bash
# tests/go_tests.sh — the Go tests, with every skip shown and judged.
#
#   tests/go_tests.sh host      go test -race -v ./... as root on this machine: no test may skip
#   tests/go_tests.sh sandbox   each package's test binary (built here) in the Lambda-shaped
#                               sandbox: no /dev/shm, read-only /, ext4 /tmp, uid 993, Lambda's
#                               limits, cwd the package (as go test does). A skip passes only if
#                               its reason starts with "needs root" (the host run covers it);
#                               the sandbox's /tmp must be empty afterwards.
# `go test` prints nothing for a skipped test without -v, so a test that skipped its way to
# green would look like a pass; here it is a failure. Last line: "N passed, M failed".
set -euo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
GO=${GO:-go}
mode=${1:?usage: tests/go_tests.sh host|sandbox}
LOGS=$PROJECT/build/go-logs
rm -rf "$LOGS"; mkdir -p "$LOGS"
passed=0 failed=0

# go_skips, go_judge
. "$PROJECT/tests/go_judge.sh"

# in_sandbox PKGDIR BINARY LOG [--as-root] [TEST FLAGS]: sets rc; the log ends with what the
# test binary left in the sandbox's /tmp (an empty store directory may stay).
in_sandbox() {
    local dir=$1 bin=$2 log=$3; shift 3
    local opts=(--ro --devshm=none)
    [ "${1:-}" != --as-root ] || { opts+=(--as-root); shift; }
    rc=0
    (cd "$dir" && timeout 600 "$PROJECT/tests/sandbox.sh" "${opts[@]}" -- /bin/sh -c '
        bin=$1; shift; "$bin" -test.v -test.count=1 -test.timeout=5m "$@"; rc=$?
        find /tmp -mindepth 1 ! \( -path /tmp/shm -type d -empty \) | sed "s/^/LEFT /"; exit $rc' \
        go-test "$bin" "$@") > "$log" 2>&1 || rc=$?
    if grep -q '^LEFT ' "$log"; then
        failed=$((failed + 1)); echo "  FAIL $(basename "$log" .log): left behind:"; grep '^LEFT ' "$log" | head
    fi
}

case $mode in
host)
    cd "$PROJECT"
    rc=0; "$GO" test -race -count=1 -v ./... > "$LOGS/host.log" 2>&1 || rc=$?
    go_judge host "$LOGS/host.log" "$rc" 'a^'   # nothing may skip as root on the host
    ;;
sandbox)
    B=$PROJECT/build/go-sandbox
    rm -rf "$B"; mkdir -p "$B"
    cd "$PROJECT"
    for pkg in $("$GO" list -f '{{if .TestGoFiles}}{{.Dir}}{{end}}' ./...); do
        rel=${pkg#"$PROJECT"/}
        name=${rel//\//_}
        "$GO" test -c -o "$B/$name.test" "./$rel"
        chmod 755 "$B" "$B/$name.test"
        in_sandbox "$pkg" "$B/$name.test" "$LOGS/$name.log"
        go_judge "$rel" "$LOGS/$name.log" "$rc" 'needs root'
        # The tests that skipped for root run again as root, in the same sandbox shape.
        roots=$(go_skips "$LOGS/$name.log" | cut -f1 | paste -sd'|')
        if [ -n "$roots" ]; then
            in_sandbox "$pkg" "$B/$name.test" "$LOGS/$name-root.log" --as-root -test.run="^($roots)\$"
            go_judge "$rel (as root: $roots)" "$LOGS/$name-root.log" "$rc" 'a^'
        fi
    done
    ;;
*) echo "usage: tests/go_tests.sh host|sandbox" >&2; exit 2 ;;
esac
echo "go ($mode): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
