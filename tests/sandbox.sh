#!/usr/bin/env bash
# tests/sandbox.sh — run a command in a Lambda-shaped sandbox.
#
#   tests/sandbox.sh [options] -- CMD ARGS...
#
# The command runs in a private mount namespace and a PID namespace of its own (PIDs start at 1
# and are reused; tini is PID 1 and reaps orphans; the whole tree is killed when the sandbox ends,
# as Lambda kills a timed-out invocation). /dev is a fresh read-only ramfs — not a tmpfs, so no
# glibc can mistake it for a shm file system — holding only null zero full random urandom tty,
# fd/stdin/stdout/stderr links and a private ptmx/pts, and by default no /dev/shm at all, as on
# AWS Lambda. CMD runs with Lambda's limits (1,024 open files, 1,024 processes of its uid) and, by
# default, as the non-root uid 993. Nothing leaks to the host: every mount lives and dies with
# the namespace.
#
# Options:
#   --devshm=none     no /dev/shm (default; what Lambda has)
#   --devshm=ro       a tmpfs mounted read-only at /dev/shm            (shm_open -> EROFS)
#   --devshm=noperm   a root-owned 0755 tmpfs at /dev/shm; needs a non-root uid (EACCES)
#   --devshm=native   a fresh writable 1777 tmpfs at /dev/shm: the baseline to compare with
#   --devshm=dir      a plain 1777 directory at /dev/shm, on the /dev file system itself
#   --devshm=symlink  /dev/shm a symlink to /dev/.shm, a fresh writable 1777 tmpfs
#   --dev=ramfs|tmpfs the file system of the new /dev: ramfs (default: glibc < 2.34 then finds
#                     no tmpfs, Lambda's ENOSYS) or tmpfs (a container's /dev)
#   --ro              remount / read-only, with a fresh /tmp: by default Lambda's, a loop-mounted
#                     ext4 of 512 MiB on disk; the project dir and the cwd stay reachable even if
#                     they live under /tmp
#   --tmp=ext4|tmpfs  the fresh /tmp of --ro: ext4 (default, Lambda's) or an unlimited tmpfs
#                     (only for a test that is about a memory-backed /tmp)
#   --tmp-size=SIZE   size of the ext4 /tmp (default 512M, Lambda's default ephemeral storage)
#   --uid=N           run CMD as uid/gid N, no supplementary groups (HOME=/tmp); default 993
#   --as-root         run CMD as root (only for a test that is about root)
#   --limits=host     keep the host's rlimits instead of Lambda's nofile/nproc 1024
#   --pid-max=N       the PID namespace's pid_max (default 32768, a Lambda kernel's), so PIDs
#                     wrap and are reused after N; where the kernel keeps pid_max per namespace
#                     (Linux >= 6.14; older kernels have the host's value only)
#   --mem=SIZE        a memory limit for the whole sandbox (a cgroup v1 memory controller, swap
#                     included), as a Lambda function's memory setting: e.g. 512M, 2G
#   --env K=V         set K=V for CMD (repeatable)
#   --preload         LD_PRELOAD=<project>/build/libshm_redirect.so for CMD (must exist)
#   --preload=PATH    LD_PRELOAD=PATH instead (e.g. an aarch64 build for an arm64 --root)
#   --bind=PATH       keep PATH (read-write) at the same place even if --ro hides it under /tmp
#   --bind=SRC:DST    bind SRC at DST (created if missing; inside DIR with --root;
#                     read-only with --ro)
#   --root=DIR        run CMD chrooted into DIR, a tree from tests/rootfs.sh (another glibc
#                     or CPU); DIR gets its own /proc, and the project at the same path.
#                     /dev, /dev/shm, --ro and --bind then all apply inside DIR.
# Exit status: CMD's (127/126 if it cannot be run, 2 for a usage error, 3 if the sandbox
# cannot be set up; 128+N if CMD was killed by signal N).
#
# 'Lambda' shape: --ro [--devshm=none] (uid 993, ext4 /tmp, limits and PID namespace are defaults).
set -euo pipefail

ORIG_ARGS=("$@")
SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
LIB="$PROJECT/build/libshm_redirect.so"

die()   { echo "sandbox.sh: $*" >&2; exit 2; }
fatal() { echo "sandbox.sh: setup failed: $*" >&2; exit 3; }
usage() { sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

# ---------------------------------------------------------------- options (both stages)
devshm=none ro=0 uid=993 preload=0 root= tmpfs=ext4 tmpsize=512M limits=lambda pidmax=32768 mem=
devfs=ramfs
envs=() binds=()
inner=0
while [ $# -gt 0 ]; do
    case $1 in
        --devshm=*)  devshm=${1#*=} ;;
        --dev=*)     devfs=${1#*=} ;;
        --ro)        ro=1 ;;
        --uid=*)     uid=${1#*=} ;;
        --as-root)   uid=0 ;;
        --tmp=*)     tmpfs=${1#*=} ;;
        --tmp-size=*) tmpsize=${1#*=} ;;
        --limits=*)  limits=${1#*=} ;;
        --pid-max=*) pidmax=${1#*=} ;;
        --mem=*)     mem=${1#*=} ;;
        --env)       [ $# -ge 2 ] || die "--env needs K=V"; envs+=("$2"); shift ;;
        --env=*)     envs+=("${1#*=}") ;;
        --preload)   preload=1 ;;
        --preload=*) preload=1; LIB=$(readlink -f -- "${1#*=}") ;;
        --root=*)    root=$(readlink -f -- "${1#*=}") ;;
        --bind=*)    binds+=("${1#*=}") ;;
        --inner)     inner=1 ;;   # internal: we are already inside the namespace
        -h|--help)   usage ;;
        --)          shift; break ;;
        *)           die "unknown option '$1' (use -- before the command)" ;;
    esac
    shift
done
[ $# -gt 0 ] || die "no command given (tests/sandbox.sh [options] -- CMD ARGS...)"
case $devshm in none|ro|noperm|native|dir|symlink) ;; *) die "--devshm must be none|ro|noperm|native|dir|symlink" ;; esac
case $devfs in ramfs|tmpfs) ;; *) die "--dev must be ramfs|tmpfs" ;; esac
case $tmpfs in ext4|tmpfs) ;; *) die "--tmp must be ext4|tmpfs" ;; esac
case $limits in lambda|host) ;; *) die "--limits must be lambda|host" ;; esac
[[ $tmpsize =~ ^[0-9]+[KMG]?$ ]] || die "--tmp-size wants a size such as 512M, got '$tmpsize'"
[ -z "$mem" ] || [[ $mem =~ ^[0-9]+[KMG]?$ ]] || die "--mem wants a size such as 512M, got '$mem'"
[[ $pidmax =~ ^[0-9]+$ ]] && [ "$pidmax" -ge 301 ] || die "--pid-max wants a number > 300, got '$pidmax'"
for e in "${envs[@]+"${envs[@]}"}"; do
    [[ $e == [A-Za-z_]*=* ]] || die "--env wants K=V, got '$e'"
done
# Accept a user name too (e.g. nobody), but run with the numeric id.
if ! [[ $uid =~ ^[0-9]+$ ]]; then
    uid=$(id -u -- "$uid" 2>/dev/null) || die "unknown user '$uid'"
fi
# A root-owned 0755 directory only refuses a non-root writer.
[ "$devshm" != noperm ] || [ "$uid" != 0 ] || die "--devshm=noperm is meaningless as root (uid 0)"
[ "$preload" = 0 ] || [ -r "$LIB" ] || die "--preload: $LIB not found (run 'make lib')"
[ -z "$root" ] || [ -x "$root/usr/bin/env" ] || die "--root: $root is not a root file system"

# ---------------------------------------------------------------- stage 1's supervisor
# supervise CMD...: run CMD (unshare, below) as a child, in a fresh cgroup v1 memory cgroup of
# $mem (swap included) if --mem was given, and wait for it. A TERM, INT or HUP to us SIGKILLs it:
# unshare --fork blocks TERM and INT, and its --kill-child then kills the namespace's PID 1, so
# the whole tree dies at once, as Lambda ends a timed-out invocation. Job control (set -m) keeps
# CMD's SIGINT at its default; stdin is passed on explicitly (an async command's default is
# /dev/null). Exit status: CMD's.
supervise() {
    local base=/sys/fs/cgroup/memory cg= mine child rc=0
    if [ -n "$mem" ]; then
        [ -w "$base/cgroup.procs" ] || fatal "--mem needs the cgroup v1 memory controller at $base"
        mine=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
        cg=$base/shmr-sandbox.$$
        mkdir "$cg" && echo "$mem" > "$cg/memory.limit_in_bytes" || fatal "memory cgroup $cg"
        [ ! -e "$cg/memory.memsw.limit_in_bytes" ] || echo "$mem" > "$cg/memory.memsw.limit_in_bytes" \
            || fatal "memory+swap limit in $cg"
        echo $$ > "$cg/cgroup.procs" || fatal "join $cg"   # CMD inherits it at fork
    fi
    set -m
    "$@" <&0 &
    child=$!
    [ -z "$cg" ] || echo $$ > "$base$mine/cgroup.procs" || fatal "leave $cg"
    trap 'kill -KILL "$child" 2>/dev/null' TERM INT HUP
    while :; do
        wait "$child" 2>/dev/null && rc=0 || rc=$?
        kill -0 "$child" 2>/dev/null || break   # wait was only interrupted by a trapped signal
    done
    if [ -n "$cg" ]; then
        local i=0
        until rmdir "$cg" 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
    fi
    return $rc
}

# ---------------------------------------------------------------- stage 1: enter namespace
if [ "$inner" = 0 ]; then
    [ "$(id -u)" = 0 ] || die "must be run as root (it mounts in a private mount namespace)"
    for t in unshare setpriv tini-static mkfs.ext4; do
        command -v "$t" >/dev/null || die "needs $t (util-linux, tini, e2fsprogs): run tests/install-deps.sh"
    done
    # The host's pid_max, to tell a kernel with per-namespace pid_max (the new /proc differs).
    export SANDBOX_HOST_PID_MAX; SANDBOX_HOST_PID_MAX=$(cat /proc/sys/kernel/pid_max)
    # --fork: unshare's child is PID 1 of the new PID namespace; unshare waits for it and exits
    # with its status. --kill-child: if unshare itself is killed (see supervise), PID 1 dies
    # with it and the kernel kills everything else in the namespace.
    supervise unshare --mount --pid --fork --kill-child --propagation private -- "$SELF" --inner "${ORIG_ARGS[@]}"
    exit   # with CMD's status
fi

# ---------------------------------------------------------------- stage 2: inside
[ -z "${SANDBOX_TRACE:-}" ] || set -x   # debugging the sandbox itself
cwd=$PWD
R=$root   # every mount below happens under $R: "" is the host's own tree

# 0. With --root: DIR becomes a mount of its own (so that --ro can remount it), with the
#    project (the preload, the tests) at the same path. Either way /proc is this PID
#    namespace's, so that PIDs (and the start times beside them) are the sandbox's own.
if [ -n "$R" ]; then
    mount --bind "$R" "$R" || fatal "bind $R"
    mkdir -p "$R/proc" "$R/tmp" "$R$PROJECT"
    mount --bind "$PROJECT" "$R$PROJECT" || fatal "bind the project into $R"
fi
mount -t proc -o nosuid,nodev,noexec proc "$R/proc" || fatal "proc in ${R:-/}"
# Linux >= 6.14 keeps pid_max per PID namespace (and gives a new one 4194304): set ours, so that
# PIDs wrap as on Lambda. On older kernels the value is the host's, and is left alone.
if [ "$(cat "$R/proc/sys/kernel/pid_max")" != "${SANDBOX_HOST_PID_MAX:-}" ]; then
    echo "$pidmax" > "$R/proc/sys/kernel/pid_max" || fatal "pid_max $pidmax"
fi
unset SANDBOX_HOST_PID_MAX
# --bind=SRC:DST mounts; plain --bind=PATH only matters for --ro on the host (step 3).
keeps=()
for b in "${binds[@]+"${binds[@]}"}"; do
    case $b in
        *:*) src=${b%%:*} dst=${b#*:}
             [ -e "$src" ] || fatal "--bind: $src does not exist"
             if [ -d "$src" ]; then mkdir -p "$R$dst"; else mkdir -p "$(dirname "$R$dst")"; : >> "$R$dst"; fi
             mount --bind "$src" "$R$dst" || fatal "bind $src at $dst" ;;
        *)   keeps+=("$b") ;;
    esac
done

# 1. A fresh /dev, on a ramfs (or --dev=tmpfs). Build it at a scratch mount point first (the host's device
#    nodes are still visible there to bind from), then move it over /dev. The scratch dir is
#    on the host's /tmp but only ever holds the mount in this namespace; it is removed at once.
stage=$(mktemp -d /tmp/.sandbox-dev.XXXXXX) || fatal "mktemp"
mount -t "$devfs" -o mode=0755,nosuid,noexec sandbox-dev "$stage" || fatal "$devfs for /dev"
# The ext4 /tmp of --ro is made now, parked on the new /dev and moved to /tmp in step 3:
# mount -o loop needs the host's /dev/loop-control, which the new /dev does not have. The image
# lives on the host's disk (/var/tmp), as Lambda's /tmp is disk-backed; it is unlinked at once,
# so it is freed when the namespace (and with it the mount and its auto-clearing loop device)
# goes away.
if [ "$ro" = 1 ] && [ "$tmpfs" = ext4 ]; then
    # The image is opened through a bind mount of its own: a file held open for writing through
    # the / mount would make the read-only remount of / in step 3 fail with EBUSY. The bind is
    # detached at once (the loop device keeps it alive, invisible).
    mkdir "$stage/.img" "$stage/.tmp" && mount --bind /var/tmp "$stage/.img" || fatal "bind /var/tmp"
    img=$(mktemp "$stage/.img/.sandbox-tmp.XXXXXX") || fatal "mktemp for the /tmp image"
    { truncate -s "$tmpsize" "$img" &&
      mkfs.ext4 -q -F -m 0 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard "$img" >/dev/null 2>&1 &&
      mount -o loop,nosuid,nodev "$img" "$stage/.tmp"; } \
        || { rm -f "$img"; fatal "ext4 /tmp of $tmpsize from $img"; }
    rm -f "$img"
    umount -l "$stage/.img" && rmdir "$stage/.img" "$stage/.tmp/lost+found" || fatal "detach the image"
    chmod 1777 "$stage/.tmp"
fi
for d in null zero full random urandom tty; do
    [ -e "/dev/$d" ] || continue   # a minimal container may lack /dev/tty: then so do we
    : > "$stage/$d"
    mount --bind "/dev/$d" "$stage/$d" || fatal "bind /dev/$d"
done
mkdir -p "$R/dev"
mount --move "$stage" "$R/dev" || fatal "move the new /dev in place"
rmdir "$stage"
ln -s /proc/self/fd   "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
# A private devpts instance gives working ptys (some tests open one) without exposing the host's.
mkdir "$R/dev/pts"
if mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts" 2>/dev/null; then
    ln -s pts/ptmx "$R/dev/ptmx"
else
    rmdir "$R/dev/pts"
fi

# 2. /dev/shm as asked.
case $devshm in
    none)   ;;
    ro)     mkdir "$R/dev/shm"; mount -t tmpfs -o ro,mode=1777,nosuid,nodev sandbox-shm "$R/dev/shm" ;;
    noperm) mkdir "$R/dev/shm"; mount -t tmpfs -o mode=0755,uid=0,gid=0,nosuid,nodev sandbox-shm "$R/dev/shm" ;;
    native) mkdir "$R/dev/shm"; mount -t tmpfs -o mode=1777,nosuid,nodev sandbox-shm "$R/dev/shm" ;;
    dir)    mkdir -m 1777 "$R/dev/shm" ;;
    symlink) mkdir "$R/dev/.shm"; mount -t tmpfs -o mode=1777,nosuid,nodev sandbox-shm "$R/dev/.shm"
            ln -s .shm "$R/dev/shm" ;;
esac
# 3. Read-only root with a fresh /tmp.
if [ "$ro" = 1 ]; then
    # Paths that must survive under the new /tmp: the project (the preload lives there),
    # the cwd and --bind paths. Park bind mounts of them on our /dev tmpfs (outside /tmp),
    # cover /tmp, then move them back to the same paths.
    keep=()
    for p in "$PROJECT" "$cwd" "${keeps[@]+"${keeps[@]}"}"; do
        p=$(readlink -f -- "$p") || continue
        case $p in /tmp/?*) ;; *) continue ;; esac   # /tmp itself is meant to be new
        # Skip paths already inside a kept one (e.g. the cwd inside the project).
        for k in "${keep[@]+"${keep[@]}"}"; do case $p/ in "$k"/*) continue 2 ;; esac; done
        keep+=("$p")
    done
    i=0
    for p in "${keep[@]+"${keep[@]}"}"; do
        mkdir -p "$R/dev/.keep/$i"; mount --bind "$R$p" "$R/dev/.keep/$i" || fatal "bind $p"; i=$((i+1))
    done
    # A bind remount changes only this mount's flag, in this namespace: the host is untouched.
    mount -o remount,ro,bind "$R/" || fatal "remount / read-only"
    if [ "$tmpfs" = ext4 ]; then
        mount -n --move "$R/dev/.tmp" "$R/tmp" || fatal "move the ext4 /tmp in place"
        rmdir "$R/dev/.tmp"
    else
        mount -t tmpfs -o mode=1777,nosuid,nodev sandbox-tmp "$R/tmp" || fatal "tmpfs on /tmp"
    fi
    i=0
    for p in "${keep[@]+"${keep[@]}"}"; do
        mkdir -p "$R$p"; mount -n --move "$R/dev/.keep/$i" "$R$p" || fatal "restore $p"; i=$((i+1))
    done
    rm -rf "$R/dev/.keep"
    # --bind=SRC:DST mounts are read-only too (Lambda's /opt and /var/task are).
    for b in "${binds[@]+"${binds[@]}"}"; do
        case $b in *:*) mount -o remount,ro,bind "$R${b#*:}" || fatal "remount ${b#*:} read-only" ;; esac
    done
fi

# 4. The new /dev itself is read-only from now on, as on Lambda: nobody, not even root,
#    can create a /dev/shm behind the test's back.
mount -o remount,ro,bind "$R/dev" || fatal "remount /dev read-only"
cd "$R$cwd" 2>/dev/null || { cd "$R/"; cwd=/; }

# 5. Environment and identity for CMD.
# A TMPDIR pointing into the host's /tmp would not exist under a fresh /tmp: drop it rather
# than have every tempfile user (and the preload's store) fail on a missing directory.
if [ -n "${TMPDIR:-}" ] && [ ! -d "$R$TMPDIR" ]; then
    echo "sandbox.sh: note: TMPDIR=$TMPDIR does not exist in the sandbox; unset" >&2
    unset TMPDIR
fi
if [ "$limits" = lambda ]; then
    ulimit -n 1024 && ulimit -u 1024 || fatal "rlimits nofile/nproc 1024"
fi
setenv=()
drop=()
if [ "$uid" != 0 ]; then
    drop=(setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all --)
    setenv+=(HOME=/tmp)
    # A cwd the new uid cannot enter would break CMD in a confusing way: fall back to /tmp.
    "${drop[@]}" test -x . 2>/dev/null || { cd "$R/tmp"; cwd=/tmp; }
fi
[ "$preload" = 0 ] || setenv+=("LD_PRELOAD=$LIB")
setenv+=("${envs[@]+"${envs[@]}"}")

# tini is PID 1 (from the host, before any chroot): it forwards signals to CMD, reaps the
# orphans a PID 1 inherits, and exits with CMD's status. CMD itself is never PID 1, whose
# default signal dispositions are "ignore".
tini=(tini-static -s --)
[ -n "$R" ] || exec "${tini[@]}" "${drop[@]+"${drop[@]}"}" env "${setenv[@]+"${setenv[@]}"}" "$@"
# chroot starts in DIR's /: env -C returns to the working directory chosen above.
exec "${tini[@]}" chroot "$R" "${drop[@]+"${drop[@]}"}" env -C "$cwd" "${setenv[@]+"${setenv[@]}"}" "$@"
