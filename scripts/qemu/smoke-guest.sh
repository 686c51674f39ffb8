# The smoke test's job inside the guest (run by /init with busybox sh; see scripts/qemu/smoke).
say() { echo "BLACKBOX-RIG: $*"; }
ls -l /dev/video*
say "video0 name: $(cat /sys/class/video4linux/video0/name)"
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
# A small disk: keep the store well inside it.
cat >/data/config.json <<'JSON'
{"video_codec": "mjpeg", "storage_cap_gb": 0.25, "min_free_mb": 16, "segment_length_s": 2}
JSON
blackbox --version
# For the host's hostfwd check (127.0.0.1:PORT -> guest :8080), until the dashboard exists.
mkdir -p /tmp/www && echo "blackbox-rig hostfwd ok" >/tmp/www/index.html
httpd -p 8080 -h /tmp/www
t0=$(cut -d' ' -f1 /proc/uptime)
# Record 5 s counted from the first durable frame (under TCG the synthetic camera takes a few
# seconds to pre-render its 1280x720 JPEG loop before the first frame).
blackbox run --data /data --source synthetic --report-durable >/tmp/durable &
pid=$!
n=0
while ! grep -q '^durable ' /tmp/durable 2>/dev/null && [ $n -lt 300 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; n=$((n + 1))
done
say "first durable frame at uptime $(cut -d' ' -f1 /proc/uptime) s (run started at $t0 s)"
sleep 5
kill -TERM "$pid"
wait "$pid"; run_rc=$?
say "run exit $run_rc; last report: $(tail -n 1 /tmp/durable)"
blackbox ls /data
blackbox verify /data --json; verify_rc=$?
say "verify exit $verify_rc"
umount /data
[ "$run_rc" -eq 0 ] && [ "$verify_rc" -eq 0 ]
