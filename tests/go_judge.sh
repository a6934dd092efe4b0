# tests/go_judge.sh — sourced by tests/go_tests.sh and tests/arm64/run.sh: judging a `go test -v`
# log (or a test binary's -test.v log), with every skip shown and judged. Counts into the
# caller's globals `passed` and `failed`.

# go_skips LOG: "TEST<TAB>REASON" per skipped test. go test -v streams a test's t.Skip message just
# before its "--- SKIP" line.
go_skips() {
    awk '/^ +[A-Za-z0-9_]+_test\.go:[0-9]+: / { sub(/^ +[A-Za-z0-9_]+_test\.go:[0-9]+: /, ""); why = $0; next }
         /^ *--- SKIP: / { print $3 "\t" why; why = "" }
         /^=== RUN/ { why = "" }' "$1"
}

# go_judge NAME LOG RC ALLOWED-SKIP-REGEX: counts the log's top-level and subtest results.
go_judge() {
    local name=$1 log=$2 rc=$3 allow=$4 np nf ns bad
    np=$(grep -cE '^ *--- PASS' "$log" || true)
    nf=$(grep -cE '^ *--- FAIL' "$log" || true)
    ns=$(grep -cE '^ *--- SKIP' "$log" || true)
    passed=$((passed + np)); failed=$((failed + nf))
    bad=$(go_skips "$log" | grep -vE "	($allow)" || true)
    if [ -n "$bad" ]; then
        failed=$((failed + 1)); echo "  FAIL $name: skipped, which this run does not allow:"
        echo "$bad" | sed 's/^/      /'
    fi
    grep -E -B5 '^ *--- FAIL' "$log" | while IFS= read -r l; do echo "  FAIL $name: $l"; done || true
    if [ "$rc" != 0 ] && [ "$nf" -eq 0 ]; then failed=$((failed + 1)); echo "  FAIL $name: exit status $rc"; tail -20 "$log"; fi
    if [ "$np" -eq 0 ]; then failed=$((failed + 1)); echo "  FAIL $name: no test ran"; fi
    local why; why=$(go_skips "$log" | cut -f2 | sort -u | paste -sd';')
    echo "   $name: $np passed, $nf failed, $ns skipped${why:+ ($why)}"
}
