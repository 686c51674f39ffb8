# shellcheck shell=sh
# The USB microphone test's job inside the guest (busybox sh; see scripts/qemu/mic-test). The
# data disk holds /data/bin/usbip-mic; vhci-hcd and snd-usb-audio are loaded by /init.
#
# 1. `blackbox run` (built-in camera, MJPEG 320x180 at 10 fps), audio_device auto.
# 2. usbip-mic plugs in a UAC1 microphone for 20 s, unplugs it for 4 s, plugs it back for 15 s;
#    its log (bursts with their CLOCK_REALTIME) goes to the console.
# 3. Every second: "BLACKBOX-RIG: st UPTIME UTC_S AUDIO-JSON".
# 4. The export of the whole time is fetched into /data/out; blackbox is stopped (SIGTERM).
say() { echo "BLACKBOX-RIG: $*"; }
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
mkdir -p /tmp/data /data/out
cat >/tmp/data/config.json <<'JSON'
{"video_codec": "mjpeg", "storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 10,
 "video_res_width": 320, "video_res_height": 180, "video_fps": 10, "gps_device": "off",
 "gsensor_device": "off", "audio_device": "auto"}
JSON
blackbox run --data /tmp/data --source synthetic --listen 127.0.0.1:8080 >/tmp/durable 2>/tmp/run.log &
pid=$!
n=0
while [ ! -s /tmp/data/secret ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
secret=$(cat /tmp/data/secret)
api() { wget -q -O - --header "Authorization: Bearer $secret" "$@" 2>/dev/null; }
st() {
    s=$(api http://127.0.0.1:8080/api/status)
    a=$(echo "$s" | grep -o '"audio":{[^}]*}[^}]*}')
    say "st $(cut -d' ' -f1 /proc/uptime) $(date -u +%s) ${a:-none}"
}
start=$(date -u +%s)
/data/bin/usbip-mic 20 4 15 &
epid=$!
i=0
while kill -0 "$epid" 2>/dev/null && [ $i -lt 90 ]; do
    st
    sleep 1; i=$((i + 1))
done
wait "$epid"; emu_rc=$?
sleep 3
st
end=$(date -u +%s)
from=$(date -u -d "@$((start - 2))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$((end - 2))" +%Y-%m-%dT%H:%M:%SZ)
api -O /data/out/x.json "http://127.0.0.1:8080/api/export.json?from=$from&to=$to&clock=1"
say "json $(head -c 300 /data/out/x.json)"
api -O /data/out/x.mp4 "http://127.0.0.1:8080/api/export.mp4?from=$from&to=$to"
say "mp4 $(wc -c </data/out/x.mp4) bytes"
kill -TERM "$pid"
wait "$pid"; run_rc=$?
cat /tmp/run.log
dmesg | grep -iE 'usb 1-1|snd|audio' | tail -n 12
sync
umount /data
say "emulator exit $emu_rc; run exit $run_rc"
[ "$emu_rc" -eq 0 ] && [ "$run_rc" -eq 0 ]
