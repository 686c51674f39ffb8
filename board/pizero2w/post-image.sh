#!/usr/bin/env bash
# Buildroot post-image script for the Pi Zero 2W: sdcard.img from genimage.cfg.in.
# The boot partition gets the firmware (bootcode.bin, start_x.elf, fixup_x.dat,
# config.txt, cmdline.txt, overlays/), the kernel and the Zero 2W's device tree.
set -euo pipefail

BOARD_DIR=$(cd "$(dirname "$0")" && pwd)
cd "${BINARIES_DIR}"

files=()
for f in rpi-firmware/* ./*.dtb; do
	files+=("${f#./}")
done
kernel=$(sed -n 's/^kernel=//p' rpi-firmware/config.txt)
files+=("${kernel}")

exec "${BOARD_DIR}/../common/make-image.sh" "${BOARD_DIR}/genimage.cfg.in" "${files[@]}"
