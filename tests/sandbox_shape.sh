#!/usr/bin/env bash
# tests/sandbox_shape.sh — the sandbox has Lambda's shape (../shared/notes/lambda-facts.md), checked
# from inside it, property by property; and it leaves nothing on the host.
#
#   Lambda                                   checked here
#   /dev/shm absent                          no /dev/shm; /dev not a tmpfs (a ramfs), read-only
#                                            (and the named variants: a plain directory, a symlink)
#   read-only /                              creating a file in / fails with EROFS
#   /tmp: ext4 on disk, 512 MB               /tmp is ext4 on a loop device, 512 MiB, empty, 1777
#   one non-root uid, no capabilities        uid/gid 993, no groups, CapEff 0
#   1,024 files, 1,024 processes             ulimit -n and -u are 1024 (soft and hard)
#   PIDs of its own, reused                  PID namespace: tini is PID 1, only our processes in
#                                            /proc; with --pid-max a PID comes round again
#   a timeout kills the whole tree           TERM to the sandbox (timeout(1)) ends it at once and
#                                            kills a detached grandchild
#   memory limit (128 MB – 10 GB)            --mem: a process past the limit is OOM-killed
#   glibc < 2.34 answers ENOSYS              tests/oldglibc (glibc 2.31 root: check.py baseline)
# Last line: "N passed, M failed".
set -uo pipefail

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
PROJECT=$(dirname -- "$(dirname -- "$SELF")")
SANDBOX="$PROJECT/tests/sandbox.sh"
passed=0 failed=0
check() {   # check NAME WANT GOT
    if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok - $1"
    else failed=$((failed + 1)); printf 'FAIL - %s\n    want: %s\n    got:  %s\n' "$1" "$2" "$3"; fi
}
inside() { "$SANDBOX" --ro "$@" 2>&1; }

loops_before=$(losetup -a | wc -l)
imgs_before=$(find /var/tmp -maxdepth 1 -name '.sandbox-tmp.*' | wc -l)

check "no /dev/shm" "missing" "$(inside -- sh -c '[ -e /dev/shm ] && echo present || echo missing')"
check "/dev is a read-only ramfs" "ramfs ro" \
    "$(inside -- sh -c 'findmnt -no FSTYPE,OPTIONS /dev | tail -1 | sed "s/,.*//"' | awk '{print $1, $2}')"
check "/ is read-only" "Read-only file system" \
    "$(inside -- sh -c 'touch /shape-probe 2>&1 | sed "s/.*: //"')"
# ext4's own metadata takes ~16 MiB of the 512: the file system's size is 480-512 MiB.
check "/tmp is an empty 1777 ext4 of 512 MiB on a loop device" "ext4 loop 512M 1777 empty" \
    "$(inside -- sh -c 'mib=$(($(stat -f -c "%b * %S" /tmp) / 1048576))
        echo $(findmnt -no FSTYPE /tmp) $(findmnt -no SOURCE /tmp | sed "s|/dev/loop[0-9]*|loop|") \
        $([ $mib -ge 480 ] && [ $mib -le 512 ] && echo 512M || echo ${mib}M) $(stat -c %a /tmp) \
        $([ -z "$(ls -A /tmp)" ] && echo empty || echo not-empty)')"
check "--tmp=tmpfs gives the named tmpfs variant" "tmpfs" "$(inside --tmp=tmpfs -- findmnt -no FSTYPE /tmp)"
# The /dev/shm variants of the agreement matrix (tests/python/test_agreement.py), named so.
check "--devshm=dir: a 1777 directory on the ramfs /dev" "directory 1777 ramfs" \
    "$(inside --devshm=dir -- sh -c 'echo $(stat -c "%F %a" /dev/shm) $(stat -f -c %T /dev/shm)')"
check "--dev=tmpfs --devshm=dir: the same directory on a tmpfs /dev" "directory tmpfs" \
    "$(inside --dev=tmpfs --devshm=dir -- sh -c 'echo $(stat -c %F /dev/shm) $(stat -f -c %T /dev/shm)')"
check "--devshm=symlink: /dev/shm -> .shm, a writable tmpfs" ".shm tmpfs rw" \
    "$(inside --devshm=symlink -- sh -c 'echo $(readlink /dev/shm) $(findmnt -no FSTYPE,OPTIONS /dev/.shm | sed "s/,.*//")')"
check "uid 993, no groups, no capabilities" "993 993 993 0000000000000000" \
    "$(inside -- sh -c 'echo $(id -u) $(id -g) $(id -G) $(awk "/^CapEff/ {print \$2}" /proc/self/status)')"
check "--as-root is root" "0" "$(inside --as-root -- id -u)"
check "1,024 open files and processes, soft and hard" "1024 1024 1024 1024" \
    "$(inside -- bash -c 'echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Su) $(ulimit -Hu)')"
# In the host's PID namespace PID 2 (kthreadd) has parent 0 too: here only PID 1 does.
check "PID 1 is tini, the only process without a parent" "tini-static 1" \
    "$(inside -- sh -c 'echo $(cat /proc/1/comm) $(cat /proc/[0-9]*/status | grep -c "^PPid:[[:space:]]*0$")')"
check "with --pid-max=1000 a PID comes round again" "reused" \
    "$(inside --pid-max=1000 -- bash -c 'first=0   # PIDs under 300 are never handed out again
       while [ "$first" -lt 300 ]; do first=$(sh -c "echo \$\$"); done; for i in $(seq 2000); do
         p=$(sh -c "echo \$\$"); [ "$p" = "$first" ] && { echo reused; exit; }; done; echo "never: $first"')"
# A timeout (timeout(1) sends TERM): the sandbox ends at once, and a grandchild that detached
# itself (setsid, a session of its own) dies with it, as Lambda kills the whole tree.
marker=$(mktemp -u /var/tmp/.shape-orphan.XXXXXX)
"$SANDBOX" --ro --as-root -- sh -c "setsid sh -c 'sleep 30; touch $marker' & sleep 30" &
sb=$!
sleep 1; t0=$(date +%s%N); kill -TERM "$sb"; wait "$sb" 2>/dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "TERM to the sandbox ends it within 2 s" "yes" "$([ "$ms" -lt 2000 ] && echo yes || echo "no: $ms ms")"
check "killing the sandbox kills a detached grandchild" "0" "$(pgrep -fc "touch $marker")"
check "--mem=64M: a process past the limit is OOM-killed (137)" "137" \
    "$(inside --mem=64M -- /usr/bin/python3 -c 'b = bytearray(256 << 20)' >/dev/null; echo $?)"
# A killed sandbox's loop device goes once the kernel has dropped its mount namespace: soon.
for _ in $(seq 50); do [ "$(losetup -a | wc -l)" -le "$loops_before" ] && break; sleep 0.1; done
check "nothing left on the host: loop devices, /tmp images, memory cgroups" "$loops_before $imgs_before 0" \
    "$(losetup -a | wc -l) $(find /var/tmp -maxdepth 1 -name '.sandbox-tmp.*' | wc -l) $(ls -d /sys/fs/cgroup/memory/shmr-sandbox.* 2>/dev/null | wc -l)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
