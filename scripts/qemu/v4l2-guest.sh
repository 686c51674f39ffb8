# The V4L2 test's job inside the guest (run by /init with busybox sh; see scripts/qemu/v4l2-test).
# vivid is loaded by /init (scripts/qemu/modules): /dev/video0 is its capture node.
say() { echo "BLACKBOX-RIG: $*"; }
ls -l /dev/video*
say "video0 name: $(cat /sys/class/video4linux/video0/name)"
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
secs="${BB_SECONDS:-10}"
cat >/data/config.json <<'JSON'
{"storage_cap_gb": 0.25, "min_free_mb": 16, "segment_length_s": 4,
 "video_res_width": 640, "video_res_height": 360, "video_fps": 30}
JSON
blackbox --version
t0=$(cut -d' ' -f1 /proc/uptime)
blackbox run --data /data --source v4l2:/dev/video0 --report-durable >/tmp/durable 2>/tmp/run.log &
pid=$!
n=0
while ! grep -q '^durable ' /tmp/durable 2>/dev/null && [ $n -lt 300 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; n=$((n + 1))
done
t1=$(cut -d' ' -f1 /proc/uptime)
say "first durable frame at uptime $t1 s (run started at $t0 s)"
sleep "$secs"
# CPU time of the recorder so far (utime + stime, in USER_HZ = 100 ticks/s).
ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null)
t2=$(cut -d' ' -f1 /proc/uptime)
kill -TERM "$pid"
wait "$pid"; run_rc=$?
cat /tmp/run.log
say "cpu ticks ${ticks:-?} over uptime $t0..$t2 s"
say "run exit $run_rc; last report: $(tail -n 1 /tmp/durable)"
blackbox ls /data
blackbox verify /data --json; verify_rc=$?
say "verify exit $verify_rc"
umount /data
# No --source and no camera_device: blackbox must pick /dev/video0 by itself (a tmpfs store).
mkdir -p /tmp/auto
echo '{"storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 2, "video_res_width": 640, "video_res_height": 360, "video_fps": 30}' >/tmp/auto/config.json
blackbox run --data /tmp/auto --report-durable >/tmp/auto.out 2>/tmp/auto.log &
apid=$!
sleep 4
kill -TERM "$apid"; wait "$apid"; auto_rc=$?
grep -E 'camera' /tmp/auto.log
say "auto run exit $auto_rc; durable reports $(grep -c '^durable' /tmp/auto.out)"
[ "$run_rc" -eq 0 ] && [ "$verify_rc" -eq 0 ] && [ "$auto_rc" -eq 0 ]
