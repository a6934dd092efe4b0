#!/usr/bin/env bash
# The Lambda-shaped end-to-end test: a Debian root file system standing in for the Lambda image
# (tests/rootfs.sh), entered by tests/sandbox.sh with a read-only /, a fresh ext4 /tmp, no
# /dev/shm, uid 993 and a 1,024 MB memory limit; the function's code at /var/task, the stand-in
# runtime at /var/runtime/bootstrap.py; then tests/lambda/scenario.sh.
#
#   tests/lambda/run.sh [ARCH:MODE:VERSION ...]      default: every combination below
#
# MODE, each way a Lambda user deploys shm-redirect:
#   wrapper        layer at /opt + AWS_LAMBDA_EXEC_WRAPPER=/opt/shm-redirect
#   sitecustomize  layer only: /opt/python/sitecustomize.py activates (auto mode)
#   container      the tree Dockerfile.example's COPY lines assemble, with its ENV lines (x86_64 3.11)
#   image          a container image that `pip install`ed the wheel into the runtime's
#                  site-packages: its shm_redirect.pth activates, nothing else configured
#   zip            a zip package: `pip install --platform ... --only-binary=:all: --target` from
#                  dist/ into /var/task beside the handler, whose first line is
#                  `import shm_redirect.enable` (/var/task's .pth files are never read)
# VERSION, the runtime: x86_64 3.10, 3.12, 3.13 are the machine's pyenv builds at /var/lang, as
# Lambda keeps its own (in the bookworm root); 3.11 is Debian's (bookworm); 3.14 sid's. arm64
# (under qemu-user): 3.11 bookworm's, 3.13 trixie's, 3.14 sid's.
# numpy comes from PyPI into /var/task, as users ship it (pinned below: pip evaluates a
# requirement's markers for the running interpreter, not for --python-version). The zip and
# image modes install shm-redirect from $DIST (default dist/: make dist).
#
# Needs root and `make layer layer-tree` (mk/layer.mk runs it that way).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
layers=$root/build/layer
work=$root/build/lambda
DIST=${DIST:-$root/dist}
handlers="pool pool_spawn pool_forkserver queue value executor manager shm_numpy"
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
combos=("$@")
if [ ${#combos[@]} -eq 0 ]; then
    combos=(x86_64:container:3.11)
    for v in 3.10 3.11 3.12 3.13 3.14; do
        for m in wrapper sitecustomize image zip; do combos+=("x86_64:$m:$v"); done
    done
    for v in 3.11 3.13 3.14; do
        for m in wrapper sitecustomize image zip; do combos+=("arm64:$m:$v"); done
    done
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

# runtime ARCH VERSION: sets rfs (the root), PY (the interpreter in the sandbox), pyopts (its
# sandbox options) and site (its site-packages, where `pip install` would put a package).
runtime() {
    local arch=$1 v=$2 d
    PY=python$v pyopts=() site=/usr/local/lib/python$v/dist-packages   # Debian's for /usr/local
    case $arch:$v in
        x86_64:3.10|x86_64:3.12|x86_64:3.13)
            d=$(ls -d "$pyenv_root"/versions/"$v".* 2>/dev/null | sort -V | tail -1 || true)
            [ -n "$d" ] && [ -x "$d/bin/python3" ] \
                || { echo "lambda: FAIL: no CPython $v in $pyenv_root/versions" >&2; exit 1; }
            rfs=$("$root/tests/rootfs.sh" bookworm-amd64)
            PY=/var/lang/bin/python3 pyopts=(--bind="$d:/var/lang") site=/var/lang/lib/python$v/site-packages ;;
        x86_64:3.11) rfs=$("$root/tests/rootfs.sh" bookworm-amd64) ;;
        x86_64:3.14) rfs=$("$root/tests/rootfs.sh" sid-amd64) ;;
        arm64:3.11)  rfs=$("$root/tests/rootfs.sh" bookworm-arm64) ;;
        arm64:3.13)  rfs=$("$root/tests/rootfs.sh" trixie-arm64) ;;
        arm64:3.14)  rfs=$("$root/tests/rootfs.sh" sid-arm64) ;;
        *) echo "lambda: no runtime $arch $v" >&2; exit 2 ;;
    esac
}

# pip_target DIR ARCH VERSION ARGS...: what `pip install --target` makes for that runtime.
# (Debian 12's pip 23.0 checks Requires-Python against itself, not --python-version, once the
# wheel is chosen: --ignore-requires-python; the cpXY tag of the chosen wheel already fits.)
pip_target() {
    local dir=$1 arch=$2 v=$3; shift 3
    local m=${arch/arm64/aarch64}
    rm -rf "$dir"; mkdir -p "$dir"
    /usr/bin/python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$dir" --only-binary=:all: --ignore-requires-python \
        --implementation cp --python-version "$v" --platform "manylinux2014_$m" \
        --platform "manylinux_2_28_$m" "$@"
}

numpy_for() { case $1 in 3.1[0-3]) echo numpy==2.2.6 ;; *) echo numpy==2.5.5 ;; esac; }
declare -A deps_done=()
# task ARCH VERSION MODE: sets taskdir, /var/task's tree (the handlers and numpy; in zip mode
# shm-redirect too).
task() {
    local arch=$1 v=$2 mode=$3 dir=$work/task-$1-$2-$3 deps=$work/deps-$1-$2
    if [ -z "${deps_done[$arch-$v]:-}" ]; then   # once per run and runtime
        pip_target "$deps" "$arch" "$v" "$(numpy_for "$v")"
        deps_done[$arch-$v]=1
    fi
    rm -rf "$dir" && cp -a "$deps" "$dir"
    if [ "$mode" = zip ]; then
        pip_target "$dir.pkg" "$arch" "$v" --no-index --find-links "$DIST" shm-redirect
        cp -a "$dir.pkg/." "$dir/" && rm -rf "$dir.pkg"
        { echo "import shm_redirect.enable  # noqa: F401  (first: see shm_redirect/enable.py)"
          cat "$here/task/handlers.py"; } > "$dir/handlers.py"
    else
        cp "$here/task/handlers.py" "$dir/"
    fi
    chmod -R a+rX "$dir"
    taskdir=$dir
}

# Control: the same sandbox without shm-redirect must fail, and for Lambda's reason (no /dev/shm:
# ENOENT from sem_open), or the test proves nothing.
rfs=$("$root/tests/rootfs.sh" bookworm-amd64)
rc=0
out=$("$root/tests/sandbox.sh" --root="$rfs" --ro --uid=993 --devshm=none \
    --bind="$here/task:/var/task" --bind="$here/bootstrap.py:/var/runtime/bootstrap.py" \
    --env LAMBDA_TASK_ROOT=/var/task -- python3 /var/runtime/bootstrap.py handlers.pool 1 2>&1) || rc=$?
want='FileNotFoundError: [Errno 2] No such file or directory'
if [ "$rc" = 0 ] || [ "$(printf '%s\n' "$out" | tail -1)" != "$want" ]; then
    echo "lambda: FAIL: without shm-redirect the Pool handler must fail with '$want' (as on Lambda);" \
        "exit $rc, output:" >&2
    printf '%s\n' "$out" | tail -5 >&2
    exit 1
fi
echo "== lambda control: without shm-redirect the Pool handler fails with ENOENT, as on Lambda"

failed=0
for combo in "${combos[@]}"; do
    IFS=: read -r arch mode v <<< "$combo"
    runtime "$arch" "$v"
    binds=("${pyopts[@]+"${pyopts[@]}"}")
    envs=(--env AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 --env LAMBDA_TASK_ROOT=/var/task
          --env AWS_LAMBDA_FUNCTION_NAME=shm-redirect-e2e --env LD_LIBRARY_PATH=/var/lang/lib:/opt/lib
          --env PY="$PY")
    task "$arch" "$v" "$mode"
    opt=$layers/$arch
    case $mode in
        # The wrapper alone: without /opt/python on PYTHONPATH the layer's sitecustomize cannot
        # activate behind a wrapper that failed to.
        wrapper)       envs+=(--env PYTHONPATH=/var/task --env AWS_LAMBDA_EXEC_WRAPPER=/opt/shm-redirect) ;;
        sitecustomize) envs+=(--env PYTHONPATH=/var/task:/opt/python) ;;
        container)     [ "$arch:$v" = x86_64:3.11 ] || { echo "container: x86_64:3.11 only" >&2; exit 2; }
                       opt=$layers/container/opt
                       container_tree "$layers/container"
                       while read -r kv; do envs+=(--env "$kv"); done < <(container_env) ;;
        image)         pip_target "$work/site-$arch-$v" "$arch" "$v" --no-index --find-links "$DIST" shm-redirect
                       chmod -R a+rX "$work/site-$arch-$v"
                       binds+=(--bind="$work/site-$arch-$v:$site"); opt= ;;
        zip)           opt= ;;
        *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
    if [ -n "$opt" ]; then
        [ -d "$opt" ] || { echo "$opt missing: run make layer layer-tree" >&2; exit 2; }
        binds+=(--bind="$opt:/opt")
    fi
    echo "== lambda $combo"
    t0=$(date +%s)
    # A function's memory setting: the whole tree (runtime, workers, the store's page cache) in
    # 1,024 MB, as a Lambda function configured so.
    if "$root/tests/sandbox.sh" --root="$rfs" --ro --uid=993 --devshm=none --mem=1024M \
        "${binds[@]}" --bind="$taskdir:/var/task" --bind="$here/bootstrap.py:/var/runtime/bootstrap.py" \
        "${envs[@]}" -- /bin/bash "$here/scenario.sh" $handlers; then
        echo "== lambda $combo: ok ($(( $(date +%s) - t0 )) s)"
    else
        echo "== lambda $combo: FAILED" >&2
        failed=$((failed + 1))
    fi
done
[ "$failed" = 0 ] || { echo "lambda: $failed of ${#combos[@]} configurations failed" >&2; exit 1; }
echo "lambda: all ${#combos[@]} configurations passed"
