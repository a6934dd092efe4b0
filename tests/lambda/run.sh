#!/usr/bin/env bash
# The Lambda-shaped end-to-end test: a Debian root file system standing in for the Lambda image
# (tests/rootfs.sh), entered by tests/sandbox.sh with a read-only /, a fresh ext4 /tmp, no
# /dev/shm, uid 993 and a 1,024 MB memory limit; the layer's tree at /opt, the handlers at
# /var/task, the stand-in runtime at /var/runtime/bootstrap.py; then tests/lambda/scenario.sh.
#
#   tests/lambda/run.sh [ARCH:MODE ...]      default: every combination below
#
#   x86_64:wrapper        layer + AWS_LAMBDA_EXEC_WRAPPER=/opt/shm-redirect
#   x86_64:sitecustomize  layer only: /opt/python/sitecustomize.py activates (auto mode)
#   x86_64:container      the tree Dockerfile.example's COPY lines assemble, with its ENV lines
#   arm64:wrapper, arm64:sitecustomize   the arm64 layer in an arm64 root, under qemu-user
#   x86_64:MODE:VERSION   another CPython at /var/lang, where Lambda keeps its own (pyenv builds
#                         from $PYENV_ROOT/versions: every 3.10, 3.12, 3.13, 3.14 found there;
#                         no numpy for them, so shm_bytes instead of shm_numpy)
#
# Needs root and `make layer layer-tree` (mk/layer.mk runs it that way).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
layers=$root/build/layer
handlers_x86="pool pool_spawn queue value executor shm_numpy"
handlers_arm="pool queue shm_numpy"      # qemu is ~10x slower: the main kinds only
handlers_other="pool pool_spawn queue value executor shm_bytes"
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
combos=("$@")
if [ ${#combos[@]} -eq 0 ]; then
    combos=(x86_64:wrapper x86_64:sitecustomize x86_64:container arm64:wrapper arm64:sitecustomize)
    others=()
    for minor in 3.10 3.12 3.13 3.14; do
        found=
        for d in "$pyenv_root"/versions/$minor.*; do
            [ -x "$d/bin/python3" ] || continue
            found=${d##*/}; others+=("$found")
            combos+=("x86_64:wrapper:$found" "x86_64:sitecustomize:$found")
        done
        # Lambda's 3.10, 3.12 and 3.13 runtimes must be covered: their absence is a failure,
        # not a smaller test. (3.14 is not among this machine's pyenv builds.)
        [ -n "$found" ] || [ "$minor" = 3.14 ] \
            || { echo "lambda: FAIL: no CPython $minor in $pyenv_root/versions" >&2; exit 1; }
    done
    echo "lambda: other CPythons (from $pyenv_root/versions): ${others[*]}"
fi

# The tree Dockerfile.example's final stage gets: each `COPY --from=build /src/X DST` of the
# build stage's output (our checkout, after `make layer-tree`), and its ENV lines.
container_tree() {
    local out=$1 src dst
    rm -rf "$out"
    while read -r src dst; do
        src=$root/${src#/src/}
        [ -e "$src" ] || { echo "Dockerfile.example copies $src, which make layer-tree did not build" >&2; return 1; }
        mkdir -p "$out$(dirname "$dst")"
        if [ -d "$src" ]; then mkdir -p "$out$dst"; cp -a "$src/." "$out$dst"; else cp -a "$src" "$out$dst"; fi
    done < <(awk '$1 == "COPY" && $2 == "--from=build" { print $3, $4 }' "$root/Dockerfile.example")
}
container_env() {   # ENV K=V lines of the final stage, ${K:+...} expanded against an empty env
    awk '$1 == "ENV" { sub(/^ENV /, ""); print }' "$root/Dockerfile.example" |
        sed -e 's/\${[A-Z_]*:+[^}]*}//g'
}

# Control: the same sandbox without the layer must fail, and for Lambda's reason (no /dev/shm:
# ENOENT from sem_open), or the test proves nothing.
rfs=$("$root/tests/rootfs.sh" bookworm-amd64)
rc=0
out=$("$root/tests/sandbox.sh" --root="$rfs" --ro --uid=993 --devshm=none \
    --bind="$here/task:/var/task" --bind="$here/bootstrap.py:/var/runtime/bootstrap.py" \
    --env LAMBDA_TASK_ROOT=/var/task -- python3 /var/runtime/bootstrap.py handlers.pool 1 2>&1) || rc=$?
want='FileNotFoundError: [Errno 2] No such file or directory'
if [ "$rc" = 0 ] || [ "$(printf '%s\n' "$out" | tail -1)" != "$want" ]; then
    echo "lambda: FAIL: without the layer the Pool handler must fail with '$want' (as on Lambda);" \
        "exit $rc, output:" >&2
    printf '%s\n' "$out" | tail -5 >&2
    exit 1
fi
echo "== lambda control: without the layer the Pool handler fails with ENOENT, as on Lambda"

failed=0
for combo in "${combos[@]}"; do
    IFS=: read -r arch mode version <<< "$combo"
    case $arch in
        x86_64) rfs=$("$root/tests/rootfs.sh" bookworm-amd64); handlers=$handlers_x86 ;;
        arm64)  rfs=$("$root/tests/rootfs.sh" bookworm-arm64); handlers=$handlers_arm ;;
        *) echo "unknown arch $arch" >&2; exit 2 ;;
    esac
    opt=$layers/$arch
    envs=(--env AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 --env LAMBDA_TASK_ROOT=/var/task
          --env AWS_LAMBDA_FUNCTION_NAME=shm-redirect-e2e --env LD_LIBRARY_PATH=/opt/lib)
    case $mode in
        # The wrapper alone: without /opt/python on PYTHONPATH the layer's sitecustomize cannot
        # activate behind a wrapper that failed to.
        wrapper)       envs+=(--env PYTHONPATH=/var/task --env AWS_LAMBDA_EXEC_WRAPPER=/opt/shm-redirect) ;;
        sitecustomize) envs+=(--env PYTHONPATH=/var/task:/opt/python) ;;
        container)     [ "$arch" = x86_64 ] || { echo "container: x86_64 only" >&2; exit 2; }
                       opt=$layers/container/opt
                       container_tree "$layers/container"
                       while read -r kv; do envs+=(--env "$kv"); done < <(container_env) ;;
        *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
    py=()
    if [ -n "$version" ]; then   # Lambda's layout: the runtime's CPython in /var/lang
        [ -x "$pyenv_root/versions/$version/bin/python3" ] || { echo "no CPython $version in $pyenv_root" >&2; exit 2; }
        py=(--bind="$pyenv_root/versions/$version:/var/lang" --env PY=/var/lang/bin/python3
            --env LD_LIBRARY_PATH=/var/lang/lib:/opt/lib)
        handlers=$handlers_other
    fi
    [ -d "$opt" ] || { echo "$opt missing: run make layer layer-tree" >&2; exit 2; }
    echo "== lambda $combo"
    t0=$(date +%s)
    # A function's memory setting: the whole tree (runtime, workers, the store's page cache) in
    # 1,024 MB, as a Lambda function configured so.
    if "$root/tests/sandbox.sh" --root="$rfs" --ro --uid=993 --devshm=none --mem=1024M \
        --bind="$opt:/opt" --bind="$here/task:/var/task" --bind="$here/bootstrap.py:/var/runtime/bootstrap.py" \
        "${envs[@]}" "${py[@]+"${py[@]}"}" -- /bin/bash "$here/scenario.sh" $handlers; then
        echo "== lambda $combo: ok ($(( $(date +%s) - t0 )) s)"
    else
        echo "== lambda $combo: FAILED" >&2
        failed=$((failed + 1))
    fi
done
[ "$failed" = 0 ] || { echo "lambda: $failed of ${#combos[@]} configurations failed" >&2; exit 1; }
echo "lambda: all ${#combos[@]} configurations passed"
