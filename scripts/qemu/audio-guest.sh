# shellcheck shell=sh
# The audio test's job inside the guest (busybox sh; see scripts/qemu/audio-test). The data
# disk holds /data/bin/pcmplay and /data/bin/usbip-gps; snd-aloop, vhci-hcd and cdc_acm are
# loaded by /init (EXTRA_MODULES): the loopback's playback device 0 loops into its capture
# device 1, and the emulated GPS receiver becomes /dev/ttyACM0.
#
# 1. The GPS receiver is plugged in (it drives on at 54 km/h for the whole test); `blackbox run`
#    (built-in camera, H.264 320x180 at 15 fps) records sound from /dev/snd/pcmC0D1c and sets
#    the guest's clock from GPS; the test goes on once the clock is set.
# 2. pcmplay plays 24 s into /dev/snd/pcmC0D0p: a 20 ms burst at every second, each printed
#    with the CLOCK_REALTIME it plays at. 8 s in, sound recording is muted from the API
#    (PUT /api/config {"audio": false}); 4 s later switched on again.
# 3. Every second: "BLACKBOX-RIG: st UPTIME UTC_S AUDIO-JSON".
# 4. The export of the whole time (MP4 and its export.json with clock points) is fetched into
#    /data/out for the host to judge; blackbox is stopped (SIGTERM).
say() { echo "BLACKBOX-RIG: $*"; }
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
mkdir -p /tmp/data /data/out
ls -l /dev/snd/ | sed 's/^/BLACKBOX-RIG: snd: /'
cat >/tmp/data/config.json <<'JSON'
{"video_codec": "h264", "video_bitrate_kbps": 500, "storage_cap_gb": 0.1, "min_free_mb": 16,
 "segment_length_s": 10, "video_res_width": 320, "video_res_height": 180, "video_fps": 15,
 "gps_device": "auto", "gsensor_device": "off", "audio_device": "/dev/snd/pcmC0D1c"}
JSON
/data/bin/usbip-gps "$(cat /data/start_unix)" 150 &
gpid=$!
blackbox run --data /tmp/data --source synthetic --listen 127.0.0.1:8080 >/tmp/durable 2>/tmp/run.log &
pid=$!
n=0
while [ ! -s /tmp/data/secret ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
secret=$(cat /tmp/data/secret)
api() { wget -q -O - --header "Authorization: Bearer $secret" "$@" 2>/dev/null; }
# PUT with busybox nc (busybox wget has no PUT): the first line of the reply.
put() {
    printf 'PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
        "$1" "$secret" "${#2}" "$2" | timeout 10 nc 127.0.0.1 8080 | head -n 1
}
st() {
    s=$(api http://127.0.0.1:8080/api/status)
    a=$(echo "$s" | grep -o '"audio":{[^}]*}[^}]*}')
    say "st $(cut -d' ' -f1 /proc/uptime) $(date -u +%s) ${a:-none}"
}
n=0
until api http://127.0.0.1:8080/api/status | grep -q '"audio":{"state":"recording"'; do
    sleep 0.5; n=$((n + 1))
    [ $n -lt 60 ] || { say "audio never recording"; st; cat /tmp/run.log; break; }
done
n=0
until api http://127.0.0.1:8080/api/status | grep -q '"clock":"set"'; do
    sleep 1; n=$((n + 1))
    [ $n -lt 60 ] || { say "the clock was never set from GPS"; break; }
done
say "clock from GPS: $(date -u)"
sleep 2
st
start=$(date -u +%s)
say "play start $start"
/data/bin/pcmplay /dev/snd/pcmC0D0p 24 &
ppid=$!
i=0
while kill -0 "$ppid" 2>/dev/null && [ $i -lt 60 ]; do
    if [ $i -eq 8 ]; then
        say "mute at $(date -u +%s)"
        say "mute reply $(put /api/config '{"audio": false}')"
        say "muted at $(date -u +%s)"
    fi
    if [ $i -eq 16 ]; then
        # The live view with its sound: 5 s of /api/live.mp4.
        timeout 5 wget -q -O /data/out/live.mp4 --header "Authorization: Bearer $secret" http://127.0.0.1:8080/api/live.mp4 2>/dev/null
        say "live.mp4 $(wc -c </data/out/live.mp4) bytes"
    fi
    if [ $i -eq 12 ]; then
        say "unmute at $(date -u +%s)"
        say "unmute reply $(put /api/config '{"audio": true}')"
        say "unmuted at $(date -u +%s)"
    fi
    st
    sleep 1; i=$((i + 1))
done
wait "$ppid"; play_rc=$?
sleep 3
st
end=$(date -u +%s)
from=$(date -u -d "@$((start - 3))" +%Y-%m-%dT%H:%M:%SZ)
# Up to 2 s ago: everything in the range is durable (sound syncs every second), so the JSON
# and the MP4 fetched one after the other describe the same export.
to=$(date -u -d "@$((end - 2))" +%Y-%m-%dT%H:%M:%SZ)
api -O /data/out/x.json "http://127.0.0.1:8080/api/export.json?from=$from&to=$to&clock=1"
say "json $(head -c 300 /data/out/x.json)"
api -O /data/out/x.mp4 "http://127.0.0.1:8080/api/export.mp4?from=$from&to=$to"
say "mp4 $(wc -c </data/out/x.mp4) bytes"
kill -TERM "$pid"
wait "$pid"; run_rc=$?
kill -TERM "$gpid" 2>/dev/null; wait "$gpid" 2>/dev/null
cat /tmp/run.log
ls -l /tmp/data/audio | sed 's/^/BLACKBOX-RIG: audio file: /'
sync
umount /data
say "pcmplay exit $play_rc; run exit $run_rc"
[ "$play_rc" -eq 0 ] && [ "$run_rc" -eq 0 ]
