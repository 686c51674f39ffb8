# shellcheck shell=sh
# The UVC test's job inside the guest (busybox sh; see scripts/qemu/uvc-test). The data disk
# holds /data/bin/usbip-uvc and the JPEGs to feed, /data/feed/0001.jpg ...; vhci-hcd and
# uvcvideo are loaded by /init (EXTRA_MODULES).
say() { echo "BLACKBOX-RIG: $*"; }
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
fed=$(ls /data/feed | wc -l)
say "frames to feed: $fed"
# The camera: a USB/IP device on vhci-hcd's first high-speed port (over the guest's 127.0.0.1).
# The first frame goes out LEAD_MS after streaming starts: blackbox starts streaming before its
# store is open, and the test is about what happens to frames once it records.
/data/bin/usbip-uvc camera /data/feed 30 "${LEAD_MS:-1500}" 2>/tmp/cam.log &
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
say "uvcvideo node: $node ($(cat "/sys/class/video4linux/${node#/dev/}/name")) after $((n * 100)) ms"
say "driver: $(basename "$(readlink "/sys/class/video4linux/${node#/dev/}/device/driver")")"
cat >/data/config.json <<'JSON'
{"video_codec": "mjpeg", "storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 4,
 "video_res_width": 640, "video_res_height": 360, "video_fps": 30}
JSON
idle0=$(awk '/^cpu /{print $5}' /proc/stat) up0=$(cut -d' ' -f1 /proc/uptime)
blackbox run --data /data --source "v4l2:$node" --report-durable >/tmp/durable 2>/tmp/run.log &
pid=$!
# The camera sends each JPEG once, from the first isochronous URB on; wait until it has sent
# them all (30 fps: ~10 s for 300), then a little for the last ones to be stored.
n=0
while ! grep -q 'all .* frames sent' /tmp/cam.log && [ $n -lt 600 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; n=$((n + 1))
done
sleep 1
# CPU time (utime + stime, USER_HZ ticks) of the recorder and the camera, and the guest's idle
# ticks (both CPUs), over the recording: where the guest's time went.
say "cpu ticks: blackbox $(awk '{print $14 + $15}' "/proc/$pid/stat") usbip-uvc $(awk '{print $14 + $15}' "/proc/$cpid/stat") guest idle $(awk '/^cpu /{print $5}' /proc/stat) at uptime $(cut -d' ' -f1 /proc/uptime) s (idle $idle0 at $up0 s)"
kill -TERM "$pid"
wait "$pid"; run_rc=$?
kill -TERM "$cpid"; wait "$cpid"
cat /tmp/run.log
cat /tmp/cam.log
say "run exit $run_rc; last report: $(tail -n 1 /tmp/durable)"
dmesg | grep -E 'uvcvideo|usb 1-1|vhci' | tail -n 5
blackbox verify /data --json; verify_rc=$?
say "verify exit $verify_rc"
umount /data
[ "$run_rc" -eq 0 ] && [ "$verify_rc" -eq 0 ]
