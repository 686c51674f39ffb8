# shellcheck shell=sh
# The H.264 UVC test's job inside the guest (busybox sh; see scripts/qemu/uvc-h264-test). The
# data disk holds /data/bin/usbip-uvc and the access units to feed, /data/feed/0001.h264 ...;
# vhci-hcd and uvcvideo are loaded by /init (EXTRA_MODULES).
say() { echo "BLACKBOX-RIG: $*"; }
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
fed=$(ls /data/feed | wc -l)
say "access units to feed: $fed"
# The camera: UVC 1.1 with one frame-based H.264 format, on vhci-hcd's first high-speed port.
/data/bin/usbip-uvc camera-h264 /data/feed 30 "${LEAD_MS:-1500}" 2>/tmp/cam.log &
cpid=$!
node="" n=0
while [ -z "$node" ] && [ $n -lt 300 ] && kill -0 "$cpid" 2>/dev/null; do
    sleep 0.1; n=$((n + 1))
    for d in /sys/class/video4linux/video*; do
        case "$(cat "$d/name" 2>/dev/null)" in
            "blackbox usbip-uvc test camera"*) [ "$(cat "$d/index")" = 0 ] && node=/dev/${d##*/} ;;
        esac
    done
done
dmesg | grep -E 'vhci_hcd vhci_hcd.0|usb 1-1|uvcvideo'
[ -n "$node" ] || { cat /tmp/cam.log; say "no uvcvideo node"; exit 11; }
say "uvcvideo node: $node after $((n * 100)) ms"
say "driver: $(basename "$(readlink "/sys/class/video4linux/${node#/dev/}/device/driver")")"
blackbox cameras 2>&1 | head -n 8 || true
cat >/data/config.json <<'JSON'
{"storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 2, "video_codec": "h264",
 "video_res_width": 640, "video_res_height": 360, "video_fps": 30}
JSON
blackbox run --data /data --source "v4l2:$node" --report-durable >/tmp/durable 2>/tmp/run.log &
pid=$!
n=0
while ! grep -q 'all .* frames sent' /tmp/cam.log && [ $n -lt 600 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; n=$((n + 1))
done
sleep 1
kill -TERM "$pid"
wait "$pid"; run_rc=$?
kill -TERM "$cpid"; wait "$cpid"
cat /tmp/run.log
cat /tmp/cam.log
say "run exit $run_rc; last report: $(tail -n 1 /tmp/durable)"
dmesg | grep -E 'uvcvideo|usb 1-1|vhci' | tail -n 5
blackbox verify /data --json; verify_rc=$?
say "verify exit $verify_rc"

# A raw camera recording H.264: vivid's /dev/video0 in YUYV, the timestamp burnt in, encoded
# straight to H.264 by OpenH264 (no JPEG step). The host exports and decodes it.
mkdir -p /data/raw
cat >/data/raw/config.json <<'JSON'
{"storage_cap_gb": 0.05, "min_free_mb": 16, "segment_length_s": 2, "video_codec": "h264",
 "video_res_width": 320, "video_res_height": 180, "video_fps": 15, "embed_timestamp": true}
JSON
blackbox run --data /data/raw --source v4l2:/dev/video0@YUYV 2>/tmp/raw.log &
pid=$!
sleep 6
kill -TERM "$pid"; wait "$pid"; raw_rc=$?
grep -E 'camera: v4l2|run summary' /tmp/raw.log
say "raw run exit $raw_rc"
umount /data
[ "$run_rc" -eq 0 ] && [ "$verify_rc" -eq 0 ] && [ "$raw_rc" -eq 0 ]
