#!/bin/bash
# Runs INSIDE the Lambda-shaped sandbox (tests/lambda/run.sh sets it up): cold starts of a
# stand-in runtime (/var/runtime/bootstrap.py) that invoke handlers from /var/task twice each,
# then an invocation that times out and is killed with its whole process tree, then a new cold
# start in the same /tmp: it must work, and the store must hold nothing afterwards.
#
#   scenario.sh HANDLER...          e.g. pool queue value executor shm_numpy pool_spawn
#   scenario.sh --runtime MODULE.FUNCTION N      (internal: one cold start)
#
# The runtime is started as Lambda starts it: through $AWS_LAMBDA_EXEC_WRAPPER when set.
set -eu
PY=${PY:-python3}
store=${SHM_REDIRECT_DIR:-${TMPDIR:-/tmp}/shm}

runtime() {
    if [ -n "${AWS_LAMBDA_EXEC_WRAPPER:-}" ]; then
        "$AWS_LAMBDA_EXEC_WRAPPER" "$PY" /var/runtime/bootstrap.py "$@"
    else
        "$PY" /var/runtime/bootstrap.py "$@"
    fi
}
if [ "${1:-}" = --runtime ]; then
    shift
    runtime "$@"
    exit
fi

fail() { echo "lambda: FAIL: $*" >&2; exit 1; }
# Everything in the store, resource-tracker journals (.tracker.*) included.
objects() { ls -A "$store" 2>/dev/null || true; }
# After a runtime exits its trackers may still be finishing: give them up to 30 s (a loaded
# 2-core machine, the store on a disk-backed ext4).
settle() { i=0; while [ -n "$(objects)" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done; }

expect() {
    case $1 in
        pool) echo 332833500 ;; pool_spawn|pool_forkserver|executor) echo 328350 ;; queue) echo 42 ;;
        manager) echo 14 ;;
        value) echo 1000 ;; shm_numpy) echo 3000000.0 ;; shm_bytes) echo 7000 ;; *) fail "no expected result for $1" ;;
    esac
}

for h in "$@"; do
    t0=$(date +%s%N)
    out=$(runtime "handlers.$h" 2) || fail "$h: runtime exited with $?"
    want=$(expect "$h")
    n=$(printf '%s\n' "$out" | grep -c "\"result\": $want}" || true)
    [ "$n" = 2 ] || fail "$h: expected two invocations returning $want, got: $out"
    echo "lambda: $h: 2 invocations ok ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
    settle; [ -z "$(objects)" ] || fail "$h left objects in $store: $(objects | xargs)"
done

# A timed-out invocation: Lambda kills the runtime and everything it started.
rm -f /tmp/hang-ready
setsid "$0" --runtime handlers.hang 1 >/tmp/hang.log 2>&1 &
pg=$!
disown   # no "Killed" notice from bash: the kill is the point
i=0
until [ -e /tmp/hang-ready ]; do
    i=$((i + 1))
    [ $i -le 600 ] || { cat /tmp/hang.log >&2; kill -KILL -- -"$pg" 2>/dev/null; fail "hang handler never got ready"; }
    kill -0 "$pg" 2>/dev/null || { cat /tmp/hang.log >&2; fail "hang handler died"; }
    sleep 0.1
done
kill -KILL -- -"$pg"
while kill -0 -- -"$pg" 2>/dev/null; do sleep 0.05; done
leaked=$(objects | xargs)
[ -n "$leaked" ] || fail "the killed invocation left nothing in $store: the test proves nothing"
echo "lambda: killed the timed-out invocation's tree; it left: $leaked"

out=$(runtime handlers.pool 2) || fail "runtime after the timeout exited with $?"
[ "$(printf '%s\n' "$out" | grep -c '"result": 332833500}')" = 2 ] || fail "after the timeout: $out"
echo "lambda: next cold start: 2 invocations ok"
settle; [ -z "$(objects)" ] || fail "left in $store after the next cold start: $(objects | xargs)"
echo "lambda: store empty"
