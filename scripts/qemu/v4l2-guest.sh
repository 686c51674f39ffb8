# The V4L2 test's job inside the guest (run by /init with busybox sh; see scripts/qemu/v4l2-test).
# vivid is loaded by /init (scripts/qemu/modules): /dev/video0 is its capture node. The host
# prepends RUNS ("NAME FOURCC WIDTH HEIGHT FPS" lines), BB_SECONDS and TROUBLE=1|0.
# Every result goes to the console as "BLACKBOX-RIG: ..." lines; the host judges them.
say() { echo "BLACKBOX-RIG: $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
ls -l /dev/video*
say "video0 name: $(cat /sys/class/video4linux/video0/name)"
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
secs="${BB_SECONDS:-10}"
blackbox --version
blackbox cameras; say "cameras exit $?"
say "cameras json $(blackbox cameras --json)"
fails=0

# waits until the first "durable N" line in FILE (or PID died, or 60 s); prints its seq
wait_durable() {
    n=0
    while ! grep -q '^durable ' "$1" 2>/dev/null && [ $n -lt 600 ] && kill -0 "$2" 2>/dev/null; do
        sleep 0.1; n=$((n + 1))
    done
}
last_durable() { tail -n 1 "$1" 2>/dev/null | cut -d' ' -f2; }

config() {  # config DIR W H FPS
    mkdir -p "$1"
    echo "{\"video_codec\": \"mjpeg\", \"storage_cap_gb\": 0.12, \"min_free_mb\": 16, \"segment_length_s\": 4,
 \"video_res_width\": $2, \"video_res_height\": $3, \"video_fps\": $4}" >"$1/config.json"
}

# --- recordings: one per RUNS line ----------------------------------------------------
echo "$RUNS" | while read -r name fourcc w h fps; do
    [ -n "$name" ] || continue
    dir="/data/$name"
    config "$dir" "$w" "$h" "$fps"
    t0=$(uptime_s)
    blackbox run --data "$dir" --source "v4l2:/dev/video0@$fourcc" --report-durable \
        >"/tmp/$name.durable" 2>"/tmp/$name.log" &
    pid=$!
    wait_durable "/tmp/$name.durable" "$pid"
    t1=$(uptime_s)
    say "$name first durable frame at uptime $t1 s (run started at $t0 s)"
    sleep "$secs"
    # CPU time of the recorder so far (utime + stime, in USER_HZ = 100 ticks/s).
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null)
    t2=$(uptime_s)
    kill -TERM "$pid"
    wait "$pid"; rc=$?
    sed "s/^/[$name] /" "/tmp/$name.log"
    say "$name cpu ticks ${ticks:-?} over uptime $t1..$t2 s"
    say "$name run exit $rc"
    say "$name verify $(blackbox verify "$dir" --json)"
    blackbox verify "$dir" >/dev/null; say "$name verify exit $?"
done

# --- camera trouble: stall, dequeue error (+ a failing reopen), unplug and replug -------
# The recorder must log each fault, record a gap marker, come back by itself and never exit.
trouble() {
    dir=/data/trouble
    config "$dir" 640 360 30
    log=/tmp/trouble.log dur=/tmp/trouble.durable
    blackbox run --data "$dir" --source v4l2:/dev/video0 --report-durable >"$dur" 2>"$log" &
    pid=$!
    wait_durable "$dur" "$pid"
    sleep 3
    alive() { if kill -0 "$pid" 2>/dev/null; then say "trouble $1: recorder alive"; else say "trouble $1: recorder EXITED"; fi; }
    # waits (up to $2 s) until the durable watermark passes $1 + 15 frames; says how it went
    resumed() {
        n=0
        while [ "$(last_durable "$dur")" -lt $(($1 + 15)) ] && [ $n -lt $(($2 * 10)) ]; do sleep 0.1; n=$((n + 1)); done
        if [ "$(last_durable "$dur")" -ge $(($1 + 15)) ]; then
            say "trouble $3: resumed by itself after $((n / 10)) s (durable $1 -> $(last_durable "$dur"))"
        else
            say "trouble $3: did NOT resume within $2 s (durable $1 -> $(last_durable "$dur"))"
        fi
    }
    # waits (up to $2 s) for a log line matching $1
    wait_log() {
        n=0
        while ! grep -q "$1" "$log" && [ $n -lt $(($2 * 10)) ]; do sleep 0.1; n=$((n + 1)); done
        grep -q "$1" "$log"
    }

    # 1. A silent stall: vivid drops every buffer for 6 s (no frame, no error).
    say "trouble stall: start at uptime $(uptime_s)"
    vivid-ctl /dev/video0 'Percentage of Dropped Buffers=100'
    sleep 6
    vivid-ctl /dev/video0 'Percentage of Dropped Buffers=0'
    d=$(last_durable "$dur")
    alive stall
    resumed "$d" 20 stall

    # 2. A dequeue error (vb2 queue error: DQBUF fails with EIO); the first reopen also fails
    #    (STREAMON error injected), the second one works.
    say "trouble dqerr: start at uptime $(uptime_s)"
    vivid-ctl /dev/video0 'Inject VIDIOC_STREAMON Error=1' 'Inject Fatal Streaming Error=1'
    wait_log 'VIDIOC_STREAMON' 20 || say "trouble dqerr: no failed reopen logged"
    d=$(last_durable "$dur")
    alive dqerr
    resumed "$d" 20 dqerr

    # 3. Unplug: vivid "Disconnect" makes every open file handle fail with ENODEV (the
    #    recorder closes its own); vivid is back once the last handle is closed, so the module
    #    is removed in that window (the recorder waits 0.5 s before its next attempt): the
    #    node is gone (ENOENT) until vivid is loaded again.
    say "trouble unplug: start at uptime $(uptime_s)"
    vivid-ctl /dev/video0 'Disconnect=1'
    n=0
    until rmmod vivid 2>/tmp/rmmod.err; do
        n=$((n + 1)); [ $n -ge 400 ] && { say "trouble unplug: rmmod failed: $(cat /tmp/rmmod.err)"; break; }
    done
    say "trouble unplug: vivid removed at uptime $(uptime_s) after $n busy attempts; $(ls /dev/video* 2>&1 | tr '\n' ' ')"
    sleep 4   # the recorder keeps trying meanwhile (no /dev/video0)
    alive unplug-away
    modprobe vivid; say "trouble unplug: vivid loaded again at uptime $(uptime_s) (modprobe exit $?)"
    d=$(last_durable "$dur")
    resumed "$d" 30 unplug
    alive unplug

    sleep 2
    kill -TERM "$pid"
    wait "$pid"; rc=$?
    sed 's/^/[trouble] /' "$log"
    say "trouble run exit $rc"
    say "trouble verify $(blackbox verify "$dir" --json)"
    blackbox verify "$dir"; say "trouble verify exit $?"
}
[ "${TROUBLE:-1}" = 1 ] && trouble

# --- parking mode: motion on vivid's picture (issue 16) ---------------------------------
# vivid's test pattern standing still (no OSD text; blackbox burns its own clock in, which it
# masks) for 20 s of parking: no motion event; then vivid's horizontal movement: a motion event
# within about 2 s of frame time. Judged by the host (scripts/qemu/v4l2-check.py).
park() {
    mkdir -p /tmp/park
    echo '{"video_codec": "mjpeg", "storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 4, "video_res_width": 640, "video_res_height": 360, "video_fps": 10, "event_pre_s": 2, "event_post_s": 2}' >/tmp/park/config.json
    vivid-ctl /dev/video0 'Horizontal Movement=3' 'OSD Text Mode=2'; say "park vivid still (exit $?)"
    blackbox run --data /tmp/park --source v4l2:/dev/video0 --listen 127.0.0.1:8081 >/dev/null 2>/tmp/park.log &
    ppid=$!
    n=0
    while [ ! -s /tmp/park/secret ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
    sec=$(cat /tmp/park/secret)
    api() { wget -q -O - --header "Authorization: Bearer $sec" "$@"; }
    sleep 3
    api --header 'Content-Type: application/json' --post-data '{"on": true}' http://127.0.0.1:8081/api/parking >/dev/null
    say "park on $(api http://127.0.0.1:8081/api/parking)"
    sleep 20
    say "park still $(api http://127.0.0.1:8081/api/parking) incidents $(api 'http://127.0.0.1:8081/api/incidents?kind=motion' | tr -d '\n')"
    say "park move at $(date -u +%Y-%m-%dT%H:%M:%S)Z"
    vivid-ctl /dev/video0 'Horizontal Movement=5' >/dev/null
    n=0
    while [ $n -lt 30 ]; do
        i=$(api 'http://127.0.0.1:8081/api/incidents?kind=motion')
        case "$i" in *'"kind":"motion"'*) break ;; esac
        sleep 0.5; n=$((n + 1))
    done
    say "park moving $(api http://127.0.0.1:8081/api/parking) incidents $(echo "$i" | tr -d '\n')"
    vivid-ctl /dev/video0 'Horizontal Movement=3' 'OSD Text Mode=0' >/dev/null
    kill -TERM "$ppid"; wait "$ppid"; say "park run exit $?"
    grep -E 'parking|ERROR' /tmp/park.log | sed 's/^/[park] /'
}
park

# --- no --source and no camera_device: blackbox must pick /dev/video0 by itself ---------
mkdir -p /tmp/auto
echo '{"video_codec": "mjpeg", "storage_cap_gb": 0.1, "min_free_mb": 16, "segment_length_s": 2, "video_res_width": 640, "video_res_height": 360, "video_fps": 30}' >/tmp/auto/config.json
blackbox run --data /tmp/auto --report-durable >/tmp/auto.out 2>/tmp/auto.log &
apid=$!
sleep 4
kill -TERM "$apid"; wait "$apid"; auto_rc=$?
grep -E 'camera' /tmp/auto.log
say "auto run exit $auto_rc; durable reports $(grep -c '^durable' /tmp/auto.out)"
umount /data
exit 0
