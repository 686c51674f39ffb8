"""Live view on this host: H.264 as fragmented MP4 (/api/live.mp4) against Motion JPEG
(/api/live.mjpeg), two `blackbox run --source synthetic` side by side (720p30, one recording
H.264 at the default 4 Mbit/s, the other MJPEG q80), 1, 10 and 25 clients each, interleaved.

Used by `scripts/bench live` (section_live there); can also run alone:

    python3 scripts/bench-support/live.py [--clients 1,10,25] [--seconds 10] [--blackbox PATH]

Per client count and codec: frames delivered per client per second, capture-to-client latency
(p50/p99: the client's arrival time minus the frame's capture time, both on this host's
clock: `prft` in each MP4 fragment, `X-Timestamp` in each MJPEG part), Mbit/s, and the server's
CPU and RSS over the measured window (/proc). Stdlib only.
"""

import argparse
import json
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fanout import Client as MjpegClient  # noqa: E402  (the MJPEG reader of the fan-out bench)

ROOT = HERE.parent.parent
NTP_UNIX = 2_208_988_800


def log(msg):
    print(f"==> live: {msg}", file=sys.stderr, flush=True)


class Mp4Client:
    """One /api/live.mp4 reader: counts fragments and their latency (from `prft`)."""

    def __init__(self, port, path, headers, _mode, _offset):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setblocking(False)
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n"
        self.sock.sendall(req.encode())
        self.buf = bytearray()
        self.in_headers = True
        self.status = None
        self.frames = 0
        self.bytes = 0
        self.latencies_ms = []
        self.measuring = False
        self.closed = False
        self.capture = None
        self.skips = 0
        self.last_capture = None

    def feed(self, data, now):
        self.buf += data
        if self.in_headers:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            first = bytes(self.buf[:end]).split(b"\r\n", 1)[0].decode("latin-1")
            self.status = int(first.split()[1])
            if self.status != 200:
                raise RuntimeError(f"HTTP {first}")
            del self.buf[:end + 4]
            self.in_headers = False
        while len(self.buf) >= 8:
            size, kind = struct.unpack(">I4s", self.buf[:8])
            if size < 8:
                raise RuntimeError(f"bad box size {size}")
            if len(self.buf) < size:
                return
            if kind == b"prft":
                ntp = struct.unpack(">Q", self.buf[16:24])[0]
                self.capture = (ntp >> 32) - NTP_UNIX + (ntp & 0xFFFFFFFF) / 2**32
            elif kind == b"mdat" and self.measuring:
                self.frames += 1
                self.bytes += size
                if self.capture is not None:
                    self.latencies_ms.append((now - self.capture) * 1000.0)
                    if self.last_capture is not None and self.capture - self.last_capture > 0.5:
                        self.skips += 1
                    self.last_capture = self.capture
            del self.buf[:size]


def run_clients(factory, port, path, headers, n, warmup_s, seconds):
    clients = [factory(port, path, headers, None, 0.0) for _ in range(n)]
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    t0 = time.monotonic()
    t_measure, t_end = t0 + warmup_s, t0 + warmup_s + seconds
    errors = []
    measuring = False
    cpu0 = None
    while True:
        mono = time.monotonic()
        if not measuring and mono >= t_measure:
            measuring = True
            for c in clients:
                c.measuring = True
        if mono >= t_end:
            break
        for key, _ in sel.select(timeout=0.1):
            c = key.data
            try:
                data = c.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                data = b""
                errors.append(str(e))
            if not data:
                sel.unregister(c.sock)
                c.closed = True
                continue
            try:
                c.feed(data, time.time())
            except RuntimeError as e:
                errors.append(str(e))
                sel.unregister(c.sock)
                c.closed = True
    for c in clients:
        try:
            c.sock.close()
        except OSError:
            pass
    fps = [c.frames / seconds for c in clients]
    lat = sorted(x for c in clients for x in c.latencies_ms)

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else None

    return {
        "clients": n,
        "fps_per_client_mean": statistics.mean(fps) if fps else 0,
        "fps_per_client_min": min(fps) if fps else 0,
        "mbit_s_total": sum(c.bytes for c in clients) * 8 / seconds / 1e6,
        "latency_ms_p50": pct(50),
        "latency_ms_p99": pct(99),
        "skips": sum(getattr(c, "skips", 0) for c in clients),
        "errors": sorted(set(errors))[:5],
        "clients_failed": sum(1 for c in clients if c.closed),
    }


def proc_cpu_s(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


class Server:
    def __init__(self, blackbox, d, codec, port):
        self.data = d / codec
        self.data.mkdir(parents=True)
        (self.data / "config.json").write_text(json.dumps({"video_codec": codec, "max_live_clients": 40, "segment_length_s": 60}))
        self.port = port
        self.codec = codec
        self.log = open(d / f"{codec}.log", "w")
        self.proc = subprocess.Popen([str(blackbox), "run", "--source", "synthetic", "--data", str(self.data),
                                      "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=self.log)
        t = time.monotonic()
        while time.monotonic() - t < 20:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"blackbox ({codec}) did not come up")
        self.secret = (self.data / "secret").read_text().strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
        text = (self.log.name and Path(self.log.name).read_text()) or ""
        line = next((ln for ln in reversed(text.splitlines()) if "run summary:" in ln), "")
        return dict(kv.split("=", 1) for kv in line.split("run summary:", 1)[-1].split() if "=" in kv)


def run(blackbox, counts, seconds, warmup, d):
    servers = {"h264": Server(blackbox, d, "h264", 18190), "mjpeg": Server(blackbox, d, "mjpeg", 18191)}
    time.sleep(3)
    rows = []
    try:
        for n in counts:
            for codec, srv in servers.items():
                path, factory = ("/api/live.mp4", Mp4Client) if codec == "h264" else ("/api/live.mjpeg", MjpegClient)
                log(f"{n} client(s), {codec}")
                cpu = proc_cpu_s(srv.proc.pid)
                t = time.monotonic()
                r = run_clients(factory, srv.port, path, [f"Authorization: Bearer {srv.secret}"], n, warmup, seconds)
                r["server_cpu_percent"] = (proc_cpu_s(srv.proc.pid) - cpu) / (time.monotonic() - t) * 100
                r["server_rss_mib"] = proc_rss_mib(srv.proc.pid)
                r["codec"] = codec
                rows.append(r)
    finally:
        summaries = {c: s.stop() for c, s in servers.items()}
    return {"rows": rows, "summaries": summaries, "seconds": seconds, "warmup": warmup}


def table(res):
    out = ["| clients | stream | fps per client (mean / min) | latency p50 / p99 ms | total Mbit/s | IDR skips | server CPU % (whole process) | RSS MiB |",
           "|---:|---|---|---|---:|---:|---:|---:|"]
    for r in res["rows"]:
        name = "H.264 /api/live.mp4" if r["codec"] == "h264" else "MJPEG /api/live.mjpeg"
        lat = f"{r['latency_ms_p50']:.0f} / {r['latency_ms_p99']:.0f}" if r["latency_ms_p50"] is not None else "–"
        out.append(f"| {r['clients']} | {name} | {r['fps_per_client_mean']:.1f} / {r['fps_per_client_min']:.1f} | {lat} | "
                   f"{r['mbit_s_total']:.1f} | {r['skips'] if r['codec'] == 'h264' else '–'} | {r['server_cpu_percent']:.0f} | {r['server_rss_mib']:.1f} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="1,10,25")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--blackbox", type=Path, default=ROOT / "target" / "release" / "blackbox")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bb-live-") as d:
        res = run(a.blackbox, [int(x) for x in a.clients.split(",")], a.seconds, a.warmup, Path(d))
    print(table(res))
    for c, s in res["summaries"].items():
        print(f"{c}: frames={s.get('frames')} delivered={s.get('delivered')} dropped={s.get('dropped')} "
              f"backpressure={s.get('dropped_backpressure')} store={s.get('dropped_store')}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
