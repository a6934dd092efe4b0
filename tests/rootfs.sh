#!/usr/bin/env bash
# Build (once, cached) a minimal Debian root file system to run tests in another libc or CPU:
#
#   tests/rootfs.sh NAME        prints the directory, build/rootfs/NAME, on stdout
#
# NAME is a line of tests/roots.list (suite, architecture, packages), the one place a root's
# package list is written: a marker file in the tree holds the list, and a different list rebuilds.
# mmdebstrap --mode=root needs root; a foreign architecture needs qemu-user-static, arch-test and
# a mounted binfmt_misc with qemu registered (done here). Packages come from deb.debian.org, the
# only registry besides the Go proxy that these machines reach.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 NAME (a root of tests/roots.list)" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
line=$(awk -v n="$1" '$1 == n' "$here/tests/roots.list")
[ -n "$line" ] || { echo "rootfs: no root '$1' in tests/roots.list" >&2; exit 2; }
read -r _ suite arch list <<< "$line"
pkgs=$(printf '%s\n' $list | sort -u | paste -sd, -)
dir=$here/build/rootfs/$1
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
