# shellcheck shell=sh
# The GPS test's job inside the guest (busybox sh; see scripts/qemu/gps-test). The data disk
# holds /data/bin/usbip-gps; vhci-hcd and cdc_acm are loaded by /init (EXTRA_MODULES).
#
# 1. `blackbox run` (built-in camera, small MJPEG: cheap under TCG) with gps_device auto, as
#    root: it may set the guest's clock.
# 2. The emulated receiver is plugged in (usbip-gps: START_UNIX, 30 s, unplugged 5 s, 20 s);
#    its log goes to the console, interleaved with ours.
# 3. Every second: "BLACKBOX-RIG: st UPTIME GUEST_UNIX FRAMES GPS-JSON".
# 4. Then the track (GPX) and an MP4 of the same time are fetched over HTTP into /data/out
#    for the host to judge, and blackbox is stopped (SIGTERM).
say() { echo "BLACKBOX-RIG: $*"; }
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
start=$(cat /data/start_unix)
mkdir -p /tmp/data /data/out
cat >/tmp/data/config.json <<'JSON'
{"video_codec": "mjpeg", "storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 10,
 "video_res_width": 320, "video_res_height": 180, "video_fps": 5, "gps_device": "auto"}
JSON
say "guest clock before: $(date -u +%s) ($(date -u))"
blackbox run --data /tmp/data --source synthetic --listen 127.0.0.1:8080 >/tmp/durable 2>/tmp/run.log &
pid=$!
n=0
while [ ! -s /tmp/data/secret ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
secret=$(cat /tmp/data/secret)
/data/bin/usbip-gps "$start" 30 5 20 &
epid=$!
n=0
while kill -0 "$epid" 2>/dev/null && [ $n -lt 200 ] && kill -0 "$pid" 2>/dev/null; do
    s=$(wget -q -O - --header "Authorization: Bearer $secret" http://127.0.0.1:8080/api/status 2>/dev/null)
    frames=$(echo "$s" | grep -o '"frames":[0-9]*' | head -n 1 | cut -d: -f2)
    g=$(echo "$s" | grep -o '"gps":{.*"offload"' | sed 's/,"offload"$//')
    say "st $(cut -d' ' -f1 /proc/uptime) $(date -u +%s) ${frames:-none} ${g:-none}"
    [ -e /dev/ttyACM0 ] && acm=1 || acm=0
    say "acm $acm"
    sleep 1; n=$((n + 1))
done
wait "$epid"; emu_rc=$?
sleep 2
from=$(date -u -d "@$((start - 30))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$((start + 90))" +%Y-%m-%dT%H:%M:%SZ)
wget -q -O /data/out/track.gpx --header "Authorization: Bearer $secret" "http://127.0.0.1:8080/api/export.gpx?from=$from&to=$to"
say "gpx $? $(wc -c </data/out/track.gpx) bytes"
wget -q -O /data/out/gps.mp4 --header "Authorization: Bearer $secret" "http://127.0.0.1:8080/api/export.mp4?from=$from&to=$to"
say "mp4 $? $(wc -c </data/out/gps.mp4) bytes"
say "guest clock after: $(date -u +%s) ($(date -u))"
kill -TERM "$pid"
wait "$pid"; run_rc=$?
cat /tmp/run.log
dmesg | grep -E 'cdc_acm|ttyACM|vhci_hcd vhci_hcd.0: (pdev|USB)|usb 1-1' | tail -n 12
sync
umount /data
say "emulator exit $emu_rc; run exit $run_rc"
[ "$emu_rc" -eq 0 ] && [ "$run_rc" -eq 0 ]
