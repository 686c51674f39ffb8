#!/usr/bin/env bash
# The peer: ffmpeg's mjpeg encoder on the same raw YUYV frames. CPU (user+sys) per frame is
# (CPU for 300 frames - CPU for 30 frames) / 270, so start-up is not charged; median of RUNS.
#   ffmpeg-peer.sh RAW Q [RUNS]      (needs rusage_run from scripts/bench-support in $RUSAGE_RUN)
set -euo pipefail
raw=$1 q=$2 runs=${3:-7}
rr=${RUSAGE_RUN:?build scripts/bench-support/rusage_run.c and point RUSAGE_RUN at it}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cpu() { # loops -> cpu seconds
  "$rr" "$tmp/r.json" ffmpeg -nostdin -loglevel error -y -stream_loop "$1" -f rawvideo -pix_fmt yuyv422 \
    -s 1280x720 -i "$raw" -c:v mjpeg -q:v "$q" -f mjpeg "$tmp/out.mjpeg"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["utime_s"]+r["stime_s"])' "$tmp/r.json"
}
per=()
for _ in $(seq "$runs"); do
  a=$(cpu 0); b=$(cpu 9)
  per+=("$(python3 -c "print(($b-$a)/270*1e6)")")
done
bytes=$(( $(stat -c %s "$tmp/out.mjpeg") / 300 ))
printf '%s\n' "${per[@]}" | sort -n | awk -v q="$q" -v b="$bytes" '{a[NR]=$1} END {printf "| ffmpeg mjpeg -q:v %s (swscale yuyv422->yuvj422p incl.) | %.0f | %.0f | %.0f | %d |\n", q, a[int((NR+1)/2)], a[1], a[NR], b}'
