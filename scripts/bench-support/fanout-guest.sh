# The live fan-out benchmark's guest job (scripts/bench-support/fanout.py fills in @...@).
# blackbox records from vivid and serves /api/live.mjpeg on :8080 until the host connects to
# the control port; then µStreamer streams the same device on :8080 until the host connects
# again. Once a second: "FANOUT-SAMPLE NAME UPTIME CPU_TICKS RSS_KIB" for the running server.
say() { echo "FANOUT: $*"; }
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
cat >/data/config.json <<JSON
{"listen": "0.0.0.0:8080", "video_codec": "mjpeg", "video_res_width": @WIDTH@, "video_res_height": @HEIGHT@,
 "video_fps": @FPS@, "camera_device": "/dev/video0", "max_live_clients": @MAXCLIENTS@,
 "storage_cap_gb": 0.3, "min_free_mb": 16}
JSON
sampler() {  # sampler NAME PID
    while kill -0 "$2" 2>/dev/null; do
        up=$(cut -d' ' -f1 /proc/uptime)
        ticks=$(awk '{print $14 + $15}' "/proc/$2/stat" 2>/dev/null)
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$2/status" 2>/dev/null)
        echo "FANOUT-SAMPLE $1 $up ${ticks:-0} ${rss:-0}"
        sleep 1
    done
}
blackbox run --data /data --source v4l2:/dev/video0 2>/tmp/blackbox.log &
bb=$!
n=0
while [ ! -s /data/secret ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
say "secret $(cat /data/secret)"
sampler blackbox $bb &
say "serving blackbox pid $bb"
nc -l -p @CTRL@ >/dev/null </dev/null
kill -TERM $bb; wait $bb
say "blackbox exited $?"
grep -E "negotiated|camera:|run summary|dropped|error" /tmp/blackbox.log | head -20
ustreamer --device /dev/video0 --resolution @WIDTH@x@HEIGHT@ --format YUYV --desired-fps @FPS@ \
    --quality 80 --host 0.0.0.0 --port 8080 --log-level 0 --no-log-colors 2>/tmp/ustreamer.log &
us=$!
sampler ustreamer $us &
say "serving ustreamer pid $us"
nc -l -p @CTRL@ >/dev/null </dev/null
kill -TERM $us; wait $us
say "ustreamer exited $?"
umount /data
