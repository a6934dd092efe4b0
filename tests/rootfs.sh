#!/usr/bin/env bash
# Build (once, cached) a minimal Debian root file system to run tests in another libc or CPU:
#
#   tests/rootfs.sh SUITE ARCH [PACKAGE...]     prints the directory on stdout
#
#   bullseye amd64 python3          glibc 2.31, Python 3.9: a glibc older than 2.33/2.34, where
#                                   sem_open lives in libpthread, dlsym in libdl, stat is __xstat
#   bookworm arm64 python3 ...      aarch64 (Graviton-shaped), run through qemu-user + binfmt_misc
#   sid amd64 python3               the newest glibc Debian has (tests/errno_glibc.sh)
#
# The tree goes to build/rootfs/SUITE-ARCH (a marker file holds the package list: a different list
# rebuilds). mmdebstrap --mode=root needs root; a foreign ARCH needs qemu-user-static, arch-test and
# a mounted binfmt_misc with qemu registered (done here). Packages come from deb.debian.org, the
# only registry besides the Go proxy that these machines reach.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 SUITE ARCH [PACKAGE...]" >&2; exit 2; }
suite=$1 arch=$2
shift 2
pkgs=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$here/build/rootfs/$suite-$arch
marker=$dir/.shm-redirect-rootfs

need=(mmdebstrap)
host=$(dpkg --print-architecture)
[ "$arch" = "$host" ] || need+=(qemu-user-static arch-test binfmt-support)
missing=()
for p in "${need[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "rootfs: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$arch" != "$host" ]; then
    # Foreign binaries (the chroot's maintainer scripts, spawned interpreters) run via binfmt_misc.
    [ -e /proc/sys/fs/binfmt_misc/register ] ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    qarch=$arch
    [ "$arch" = arm64 ] && qarch=aarch64
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$qarch" ] || update-binfmts --enable "qemu-$qarch" >/dev/null
fi

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$pkgs" ]; then
    echo "$dir"
    exit 0
fi
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
echo "rootfs: building $suite/$arch with ${pkgs:-nothing extra} (a few minutes, once)" >&2
# sid's Release file is a frozen snapshot whose Valid-Until date has passed.
aptopt=()
[ "$suite" != sid ] || aptopt=(--aptopt='Acquire::Check-Valid-Until "false"')
mmdebstrap --quiet --mode=root --variant=minbase --architectures="$arch" "${aptopt[@]+"${aptopt[@]}"}" \
    ${pkgs:+--include="$pkgs"} "$suite" "$dir" http://deb.debian.org/debian >&2
echo "$pkgs" > "$marker"
echo "$dir"
