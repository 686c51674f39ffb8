#!/usr/bin/env bash
# Buildroot post-image script for qemu aarch64: sdcard.img from genimage.cfg.in (the kernel
# goes into the boot partition too), and start-qemu.sh next to it.
set -euo pipefail

BOARD_DIR=$(cd "$(dirname "$0")" && pwd)

"${BOARD_DIR}/../common/make-image.sh" "${BOARD_DIR}/genimage.cfg.in" Image

# start-qemu.sh: boots a copy of sdcard.img grown to 2 GiB (the first boot grows the data
# partition to fill it), so the built image stays pristine.
cmdline=$(cat "${BOARD_DIR}/cmdline.txt")
cat >"${BINARIES_DIR}/start-qemu.sh" <<SCRIPT
#!/bin/sh
# Boots the blackbox qemu image. The dashboard: http://127.0.0.1:8080 (Ctrl-A x quits).
set -e
cd "\$(dirname "\$0")"
[ -f disk.img ] || { cp sdcard.img disk.img && truncate -s 2G disk.img; }
QEMU=../host/bin/qemu-system-aarch64   # Buildroot's (BR2_PACKAGE_HOST_QEMU); else the system's
[ -x "\$QEMU" ] || QEMU=qemu-system-aarch64
exec "\$QEMU" -M virt -cpu cortex-a53 -smp 2 -m 512 -nographic \\
	-kernel Image -append "${cmdline}" \\
	-drive file=disk.img,if=none,format=raw,id=hd0 -device virtio-blk-device,drive=hd0 \\
	-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8080-:80 \\
	-device virtio-net-device,netdev=n0 \\
	-device virtio-rng-device -device i6300esb "\$@"
SCRIPT
chmod 0755 "${BINARIES_DIR}/start-qemu.sh"
