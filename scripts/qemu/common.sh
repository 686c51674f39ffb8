# Shared by the scripts in scripts/qemu/ (sourced, not run).
# shellcheck shell=bash disable=SC2034
QEMU_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$QEMU_DIR/../.." && pwd)"
# shellcheck source=scripts/setup.sh
. "$REPO/scripts/setup.sh"

CACHE="${BLACKBOX_QEMU_CACHE:-$REPO/target/qemu}"   # gitignored (target/)
KDIR="$CACHE/kernel"          # root/ = the extracted kernel package, Image, kver
BBDIR="$CACHE/busybox"        # root/ = the extracted busybox-static:arm64 package
BIN_AARCH64="$REPO/target/aarch64/aarch64-unknown-linux-gnu/release/blackbox"

ensure_arm64_arch() {
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "adding dpkg architecture arm64"
        "${SUDO[@]}" dpkg --add-architecture arm64
        apt_updated=0
    fi
}
PATH="$PATH:/usr/sbin:/sbin"
