# shellcheck shell=sh
# The G-sensor test's job inside the guest (busybox sh; see scripts/qemu/gsensor-test). The data
# disk holds /data/bin/usbip-i2c-tiny and /data/waves (its script); vhci-hcd, i2c-tiny-usb and
# i2c-dev are loaded by /init (EXTRA_MODULES).
#
# 1. The emulated adapter is plugged in with an MPU-6050 (session 1); /dev/i2c-N appears.
# 2. `blackbox run` (built-in camera, small MJPEG: cheap under TCG) with gsensor_device auto.
# 3. Every second /api/status is read: "BLACKBOX-RIG: st UPTIME FRAMES STATE GSENSOR-JSON".
# 4. The emulator plays the waveforms in sample time, unplugs the adapter, plugs it back with a
#    LIS3DH (session 2), plays an impact and exits; then blackbox is stopped (SIGTERM).
say() { echo "BLACKBOX-RIG: $*"; }
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
/data/bin/usbip-i2c-tiny /data/waves 2>/tmp/emu.log &
epid=$!
n=0
while ! ls /dev/i2c-* >/dev/null 2>&1 && [ $n -lt 300 ] && kill -0 "$epid" 2>/dev/null; do
    sleep 0.1; n=$((n + 1))
done
dmesg | grep -E 'i2c-tiny-usb|i2c i2c-|vhci_hcd vhci_hcd.0: (pdev|USB)' | tail -n 5
[ -n "$(ls /dev/i2c-* 2>/dev/null)" ] || { cat /tmp/emu.log; say "no /dev/i2c-*"; exit 11; }
say "i2c: $(ls /dev/i2c-*) after $((n * 100)) ms"
mkdir -p /tmp/data
cat >/tmp/data/config.json <<'JSON'
{"video_codec": "mjpeg", "storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 4,
 "video_res_width": 320, "video_res_height": 180, "video_fps": 10, "gsensor_device": "auto"}
JSON
blackbox run --data /tmp/data --source synthetic --listen 127.0.0.1:8080 >/tmp/durable 2>/tmp/run.log &
pid=$!
n=0
while [ ! -s /tmp/data/secret ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
secret=$(cat /tmp/data/secret)
n=0
while kill -0 "$epid" 2>/dev/null && [ $n -lt 240 ] && kill -0 "$pid" 2>/dev/null; do
    s=$(wget -q -O - --header "Authorization: Bearer $secret" http://127.0.0.1:8080/api/status 2>/dev/null)
    frames=$(echo "$s" | grep -o '"frames":[0-9]*' | head -n 1 | cut -d: -f2)
    state=$(echo "$s" | grep -o '"state":"[a-z_]*"' | head -n 1 | cut -d'"' -f4)
    g=$(echo "$s" | grep -o '"gsensor":{[^}]*}')
    say "st $(cut -d' ' -f1 /proc/uptime) ${frames:-none} ${state:-none} $g"
    sleep 1; n=$((n + 1))
done
wait "$epid"; emu_rc=$?
sleep 1
# The impacts' event over HTTP: listed, and downloadable as one MP4 of its window.
inc=$(wget -q -O - --header "Authorization: Bearer $secret" http://127.0.0.1:8080/api/incidents 2>/dev/null | tr -d '\n')
say "incidents $inc"
mp4=$(echo "$inc" | grep -o '"mp4":"[^"]*"' | head -n 1 | cut -d'"' -f4)
wget -q -O /tmp/ev.mp4 --header "Authorization: Bearer $secret" "http://127.0.0.1:8080$mp4" 2>/dev/null
say "event mp4 $(wc -c </tmp/ev.mp4 2>/dev/null || echo 0) bytes, box $(dd if=/tmp/ev.mp4 bs=1 skip=4 count=4 2>/dev/null)"
kill -TERM "$pid"
wait "$pid"; run_rc=$?
cat /tmp/emu.log
cat /tmp/run.log
dmesg | grep -E 'i2c-tiny-usb|vhci' | tail -n 8
say "emulator exit $emu_rc; run exit $run_rc"
[ "$emu_rc" -eq 0 ] && [ "$run_rc" -eq 0 ]
