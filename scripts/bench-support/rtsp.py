"""RTSP recording, 1, 2 and 4 cameras (issue 19), for scripts/bench's `rtsp` section.

One GStreamer RTSP server on 127.0.0.1 (tests/rtsp/server.py) serves an H.264 file (1280x720,
30 fps, about 4 Mbit/s) in real time; each client gets its own stream. For N cameras:

- blackbox: one `blackbox run` process, the first camera `--source rtsp://...`, N-1 more in
  config `cameras`, storing into its data dir (segments, fsync per commit);
- the peer: N `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment` processes, one per camera,
  as users of one-recorder-per-camera setups ran them (Matroska segments of 60 s, no fsync).

Each contender records for SECONDS after a few seconds of warm-up; CPU is utime+stime over
that window (from /proc), RSS the sum of the processes' VmRSS at its end. Both sides run one
after the other for each N, repeated REPS times (interleaved), so a loaded host loads both."""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_s(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure(pids, seconds, warm=4):
    time.sleep(warm)
    c0 = sum(cpu_s(p) for p in pids)
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = sum(cpu_s(p) for p in pids)
    t1 = time.monotonic()
    return (c1 - c0) / (t1 - t0) * 100, sum(rss_kb(p) for p in pids)


def run_blackbox(blackbox, url, n, seconds, work):
    d = work / f"bb-{n}"
    shutil.rmtree(d, ignore_errors=True)
    (d / "data").mkdir(parents=True)
    cams = ", ".join(f'{{"name": "cam{i}", "source": "{url}", "bitrate_kbps": 4000}}' for i in range(2, n + 1))
    (d / "data/config.json").write_text(f'{{"storage_cap_gb": 4, "listen": "127.0.0.1:{free_port()}", "cameras": [{cams}]}}')
    p = subprocess.Popen([str(blackbox), "run", "--data", str(d / "data"), "--source", url],
                         stdout=subprocess.DEVNULL, stderr=open(d / "stderr.log", "w"))
    try:
        cpu, rss = measure([p.pid], seconds)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    frames = 0
    for store in [d / "data"] + sorted((d / "data/cameras").glob("*")):
        out = subprocess.run([str(blackbox), "verify", str(store), "--json"], capture_output=True, text=True)
        import json
        v = json.loads(out.stdout)
        frames += v["frames"]
    shutil.rmtree(d, ignore_errors=True)
    return cpu, rss, frames


def run_ffmpeg(url, n, seconds, work):
    d = work / f"ff-{n}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    ps = [subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url, "-c", "copy",
                            "-f", "segment", "-segment_time", "60", "-reset_timestamps", "1", str(d / f"cam{i}-%03d.mkv")],
                           stdout=subprocess.DEVNULL, stderr=open(d / f"cam{i}.log", "w")) for i in range(n)]
    try:
        cpu, rss = measure([p.pid for p in ps], seconds)
    finally:
        for p in ps:
            p.send_signal(signal.SIGINT)
        for p in ps:
            p.wait(timeout=30)
    shutil.rmtree(d, ignore_errors=True)
    return cpu, rss


def run(blackbox, counts, seconds, reps, work):
    src = work / "src.mp4"
    if not src.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                        "-t", "120", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-b:v", "4M",
                        "-maxrate", "4M", "-bufsize", "4M", "-g", "30", "-bf", "0", "-pix_fmt", "yuv420p", str(src)], check=True)
    port = free_port()
    srv = subprocess.Popen(["/usr/bin/python3", str(ROOT / "tests/rtsp/server.py"), str(port), str(src)],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready", "the RTSP server did not start"
        url = f"rtsp://127.0.0.1:{port}/cam"
        res = {}
        for n in counts:
            bb, ff = [], []
            for _ in range(reps):
                bb.append(run_blackbox(blackbox, url, n, seconds, work))
                ff.append(run_ffmpeg(url, n, seconds, work))
            res[n] = {
                "blackbox_cpu_pct": statistics.median(x[0] for x in bb),
                "blackbox_rss_kb": statistics.median(x[1] for x in bb),
                "blackbox_frames": [x[2] for x in bb],
                "ffmpeg_cpu_pct": statistics.median(x[0] for x in ff),
                "ffmpeg_rss_kb": statistics.median(x[1] for x in ff),
            }
        return res
    finally:
        srv.kill()
        srv.wait()


def table(res, seconds):
    rows = ["| cameras | blackbox CPU % | ffmpeg -c copy CPU % (one per camera) | CPU ratio | blackbox RSS MiB | ffmpeg RSS MiB | RSS ratio | blackbox frames stored |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for n, r in res.items():
        rows.append(f"| {n} | {r['blackbox_cpu_pct']:.1f} | {r['ffmpeg_cpu_pct']:.1f} | {r['blackbox_cpu_pct'] / max(r['ffmpeg_cpu_pct'], 0.01):.2f}x "
                    f"| {r['blackbox_rss_kb'] / 1024:.1f} | {r['ffmpeg_rss_kb'] / 1024:.1f} | {r['blackbox_rss_kb'] / max(r['ffmpeg_rss_kb'], 1):.2f}x "
                    f"| {', '.join(str(f) for f in r['blackbox_frames'])} |")
    return "\n".join(rows)
