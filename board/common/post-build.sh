#!/usr/bin/env bash
# Buildroot post-build script shared by both boards: the target tree is complete (packages,
# then the rootfs overlay) and about to become a read-only squashfs.
#
# - mount points for the boot (FAT) and data (ext4) partitions;
# - an inittab entry that supervises blackbox (respawn), unless the overlay's inittab already
#   runs it;
# - init scripts a read-only dash cam must not run: busybox's watchdog daemon (blackbox pets
#   /dev/watchdog itself), crond, telnetd, httpd.
set -euo pipefail
: "${TARGET_DIR:?run from Buildroot (BR2_ROOTFS_POST_BUILD_SCRIPT)}"

install -d -m 0755 "${TARGET_DIR}/boot" "${TARGET_DIR}/data"

for s in S15watchdog S50crond S50telnet S90httpd; do
	rm -f "${TARGET_DIR}/etc/init.d/${s}"
done

INITTAB="${TARGET_DIR}/etc/inittab"
if [ -f "${INITTAB}" ] && ! grep -q '^[^#]*:respawn:.*blackbox' "${INITTAB}"; then
	# Fallback only: record into /data once it is mounted; wait and retry otherwise.
	cat >"${TARGET_DIR}/usr/sbin/blackbox-respawn" <<'SCRIPT'
#!/bin/sh
# Run by init (respawn): blackbox records into /data once that is mounted.
if mountpoint -q /data; then
	exec /usr/bin/blackbox run --data /data
fi
echo "blackbox-respawn: /data is not mounted; retrying in 5 s" >&2
sleep 5
SCRIPT
	chmod 0755 "${TARGET_DIR}/usr/sbin/blackbox-respawn"
	sed -i '/^# Stuff to do before rebooting/i\
# blackbox, restarted whenever it exits (added by board/common/post-build.sh)\
::respawn:/usr/sbin/blackbox-respawn\
' "${INITTAB}"
	grep -q 'blackbox-respawn' "${INITTAB}" || echo '::respawn:/usr/sbin/blackbox-respawn' >>"${INITTAB}"
fi
