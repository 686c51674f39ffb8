# The controls test's job inside the guest (busybox sh; see scripts/qemu/controls-test).
# vivid is loaded by /init: /dev/video0 is its capture node.
#
# 1. `blackbox controls /dev/video0` (text and --json) before recording: the CLI's view.
# 2. `blackbox run --source v4l2:/dev/video0 --listen 0.0.0.0:8080` into a tmpfs store
#    (320x180 @ 30 fps: small, so that the encoder keeps up under TCG on a busy host); once
#    the first frame is durable, prints the dashboard secret and "controls ready". The host
#    (scripts/qemu/controls-check.py) then drives /api/controls through hostfwd.
# 3. Waits until the run's log shows the host's last step ("controls: reset Brightness"), at
#    most BB_WAIT (150) s; meanwhile nothing else touches the camera.
# 4. The 1 s cache, from inside the guest (busybox wget on 127.0.0.1:8080): a listing, then the
#    CLI changes Contrast behind the server's back, a listing within 1 s still shows the cached
#    value, one 1.2 s later the new one.
# 5. While still recording: the CLI sets, refuses and resets controls on the same device.
# 6. Stops the run with SIGTERM, prints its log and `blackbox verify --json`.
say() { echo "BLACKBOX-RIG: $*"; }
dev=/dev/video0
say "video0 name: $(cat /sys/class/video4linux/video0/name)"

blackbox controls "$dev"; say "cli list exit $?"
echo "BLACKBOX-RIG: cli json $(blackbox controls "$dev" --json)"

mkdir -p /tmp/data
cat >/tmp/data/config.json <<'JSON'
{"video_codec": "mjpeg", "storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 4,
 "video_res_width": 320, "video_res_height": 180, "video_fps": 30}
JSON
blackbox run --data /tmp/data --source "v4l2:$dev" --listen 0.0.0.0:8080 --report-durable \
    >/tmp/durable 2>/tmp/run.log &
pid=$!
n=0
while ! grep -q '^durable ' /tmp/durable 2>/dev/null && [ $n -lt 300 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; n=$((n + 1))
done
secret=$(cat /tmp/data/secret)
say "secret $secret"
say "controls ready (uptime $(cut -d' ' -f1 /proc/uptime) s)"

n=0
wait_s="${BB_WAIT:-150}"
while ! grep -q 'controls: reset Brightness' /tmp/run.log && [ $n -lt $((wait_s * 10)) ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; n=$((n + 1))
done
say "host done after $((n / 10)) s (uptime $(cut -d' ' -f1 /proc/uptime) s)"

# The cache: Contrast as /api/controls lists it.
contrast() {
    wget -q -O - --header "Authorization: Bearer $secret" http://127.0.0.1:8080/api/controls |
        grep -o '"name":"Contrast"[^}]*' | grep -o '"value":-*[0-9]*' | cut -d: -f2
}
ta=$(cut -d' ' -f1 /proc/uptime)
v0=$(contrast)
blackbox controls "$dev" --set 9963777=50 2>/dev/null
v1=$(contrast)
tb=$(cut -d' ' -f1 /proc/uptime)
sleep 1.2
v2=$(contrast)
say "cache: listed $v0, after a change behind its back $v1 (uptime $ta..$tb s), 1.2 s later $v2"
blackbox controls "$dev" --reset 9963777 2>/dev/null

# The CLI on the device that is recording.
out=$(blackbox controls "$dev" --set Saturation=100 2>&1 >/dev/null); rc=$?
say "cli set exit $rc: $out"
out=$(blackbox controls "$dev" --set Saturation=999 2>&1 >/dev/null); rc=$?
say "cli out-of-range exit $rc: $out"
out=$(blackbox controls "$dev" --set 'Menu=Menu Item 3' 2>&1 >/dev/null); rc=$?
say "cli menu by name exit $rc: $out"
out=$(blackbox controls "$dev" --reset saturation 2>&1 >/dev/null); rc=$?
say "cli reset exit $rc: $out"
sleep 2

kill -TERM "$pid"
wait "$pid"; run_rc=$?
cat /tmp/run.log
say "run exit $run_rc; last report: $(tail -n 1 /tmp/durable)"
blackbox verify /tmp/data --json; verify_rc=$?
say "verify exit $verify_rc"
[ "$run_rc" -eq 0 ] && [ "$verify_rc" -eq 0 ]
