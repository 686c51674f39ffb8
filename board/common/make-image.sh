#!/usr/bin/env bash
# Shared by the boards' post-image.sh: fills the boot partition's file list into a genimage
# template and runs genimage, making ${BINARIES_DIR}/sdcard.img.
#
#   make-image.sh TEMPLATE FILE...
#
# FILE...: paths relative to ${BINARIES_DIR} that go into the boot partition (by their base
# name). Added to them, in the boot partition's top directory:
# - /etc/blackbox/blackbox.txt from the target tree: the overlay's credentials file template,
#   so that the owner can fill it in on a PC before the first boot;
# - whatever the overlay puts in /usr/share/blackbox/bootfs/.
set -euo pipefail

TEMPLATE=$1
shift
: "${BINARIES_DIR:?run from a Buildroot post-image script}"
: "${BUILD_DIR:?run from a Buildroot post-image script}"
: "${TARGET_DIR:?run from a Buildroot post-image script}"

files=("$@")
rm -rf "${BINARIES_DIR}/bootfs"
mkdir -p "${BINARIES_DIR}/bootfs"
if [ -d "${TARGET_DIR}/usr/share/blackbox/bootfs" ]; then
	cp -r "${TARGET_DIR}/usr/share/blackbox/bootfs/." "${BINARIES_DIR}/bootfs/"
fi
if [ -f "${TARGET_DIR}/etc/blackbox/blackbox.txt" ]; then
	cp "${TARGET_DIR}/etc/blackbox/blackbox.txt" "${BINARIES_DIR}/bootfs/"
fi
for f in "${BINARIES_DIR}"/bootfs/*; do
	[ -e "${f}" ] && files+=("${f#"${BINARIES_DIR}"/}")
done

for f in "${files[@]}"; do
	if [ ! -e "${BINARIES_DIR}/${f}" ]; then
		echo "make-image.sh: ${BINARIES_DIR}/${f} is missing" >&2
		exit 1
	fi
done

boot_files=$(printf '\\t\\t\\t"%s",\\n' "${files[@]}")
GENIMAGE_CFG="${BINARIES_DIR}/genimage.cfg"
sed "s|^#BOOT_FILES#$|${boot_files}|" "${TEMPLATE}" >"${GENIMAGE_CFG}"

# genimage copies --rootpath whole; the root file system is already built
# (rootfs.squashfs), so give it an empty directory.
ROOTPATH_TMP=$(mktemp -d)
trap 'rm -rf "${ROOTPATH_TMP}"' EXIT
GENIMAGE_TMP="${BUILD_DIR}/genimage.tmp"
rm -rf "${GENIMAGE_TMP}"

genimage \
	--rootpath "${ROOTPATH_TMP}" \
	--tmppath "${GENIMAGE_TMP}" \
	--inputpath "${BINARIES_DIR}" \
	--outputpath "${BINARIES_DIR}" \
	--config "${GENIMAGE_CFG}"
