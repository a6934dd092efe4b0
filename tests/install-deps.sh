#!/usr/bin/env bash
# Install the Debian packages the test suites need, and nothing else.
# Idempotent and quiet when everything is already there (CI calls it every run);
# apt-get update runs at most once, and only when something is missing.
set -euo pipefail

# Why each package is needed:
#   libpython3.11-testsuite  CPython's own test_multiprocessing_* / test_concurrent_futures (tests/cpython_suite.sh)
#   python3-pytest           the project's Python tests
#   python3-numpy            shared-memory tests that exercise numpy views on segments
#   python3-dev              headers for building Python-facing test helpers and the gopy extension
#   python3-setuptools python3-wheel  build the shm-redirect wheel offline (pip wheel --no-build-isolation)
#   python3-pip python3-venv          pip wheel/install, and the fresh venv the Python tests install it into
#   python3-pybindgen        gopy's generated build.py imports pybindgen (the wheel's Go core extension)
#   binutils                 objdump -T: the wheel's manylinux tag (newest GLIBC_ symbol); nm -D in tests
#   util-linux               unshare, setpriv, mount, findmnt (tests/sandbox.sh)
#   tini                     tini-static: PID 1 of the sandbox's PID namespace (tests/sandbox.sh)
#   e2fsprogs                mkfs.ext4: the sandbox's disk-backed /tmp, as Lambda's (tests/sandbox.sh)
#   gcc libc6-dev make       build the preload and tests/fork_stress.c
#   coreutils findutils      env, mktemp, timeout, find (sandbox/runners; essential, listed for completeness)
#   gcc-aarch64-linux-gnu libc6-dev-arm64-cross   the arm64 preload (mk/arm64.mk)
#   qemu-user-static binfmt-support arch-test     run arm64 tests and the arm64 root (tests/arm64, tests/lambda)
#   mmdebstrap               the Debian roots the old-glibc, arm64 and Lambda tests run in (tests/rootfs.sh)
PKGS=(libpython3.11-testsuite python3-pytest python3-numpy python3-dev util-linux tini e2fsprogs
      gcc libc6-dev make coreutils findutils
      python3-setuptools python3-wheel python3-pip python3-venv python3-pybindgen binutils
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static binfmt-support arch-test mmdebstrap)

missing=()
for p in "${PKGS[@]}"; do
    # "install ok installed" is the only state that means usable; half-configured etc. count as missing.
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
