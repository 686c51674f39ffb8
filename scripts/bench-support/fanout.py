"""Live fan-out benchmark: blackbox's /api/live.mjpeg against µStreamer, both in the same qemu
guest streaming the same vivid device, read by 1..50 MJPEG clients on the host through hostfwd.

Used by `scripts/bench fanout` (section_fanout there); can also run alone:

    python3 scripts/bench-support/fanout.py [--clients 1,10,25,50] [--seconds 10] [--json OUT]

One guest boot: the guest job (fanout-guest.sh) starts blackbox recording from vivid, announces
it on the console and waits on a control port; the host runs every client count against it,
connects to the control port; the guest swaps blackbox for µStreamer on the same device and
port; the host runs the same client counts again. The guest prints CPU ticks and RSS of the
server once a second; the host stamps those lines on arrival and charges them to the phase
they fall in.

Latency is capture-to-client: the client's arrival time (host clock, moved to the guest's clock
by an offset measured with blackbox's GET /api/time, the best of 20 round trips) minus the
frame's capture time. blackbox: X-Timestamp is the capture time (driver timestamp). µStreamer:
X-Timestamp is its clock at send time, and with ?extra_headers=1 it adds X-UStreamer-Latency =
send - grab (grab = the driver timestamp), so capture = X-Timestamp - X-UStreamer-Latency.
Stdlib only.
"""

import argparse
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
QEMU = ROOT / "scripts" / "qemu"
HERE = Path(__file__).resolve().parent
CTRL_PORT = 9000  # guest port the host connects to when a server's phases are done


def log(msg):
    print(f"==> fanout: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- MJPEG clients

class Client:
    """One multipart/x-mixed-replace reader: counts parts and their latency."""

    def __init__(self, port, path, headers, mode, offset_s):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setblocking(False)
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n"
        self.sock.sendall(req.encode())
        self.buf = bytearray()
        self.need_body = 0          # bytes of the current part's body still to skip
        self.in_headers = True      # the HTTP response headers are not yet read
        self.status = None
        self.mode = mode
        self.offset_s = offset_s
        self.frames = 0             # parts received inside the measuring window
        self.bytes = 0
        self.latencies_ms = []
        self.measuring = False
        self.part_meta = None
        self.closed = False

    def feed(self, data, now):
        self.buf += data
        while True:
            if self.need_body:
                take = min(self.need_body, len(self.buf))
                del self.buf[:take]
                self.need_body -= take
                if self.measuring:
                    self.bytes += take
                if self.need_body:
                    return
                self.part_done(now)
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    raise RuntimeError("no header end within 64 KiB")
                return
            block = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[:end + 4]
            if self.in_headers:
                self.in_headers = False
                first = block.split("\r\n", 1)[0]
                self.status = int(first.split()[1])
                if self.status != 200:
                    raise RuntimeError(f"HTTP {first}")
                continue
            hdr = {}
            for line in block.split("\r\n"):
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdr[k.strip().lower()] = v.strip()
            if "content-length" not in hdr:
                raise RuntimeError(f"part without Content-Length: {block!r}")
            self.need_body = int(hdr["content-length"])
            self.part_meta = hdr

    def part_done(self, now):
        hdr = self.part_meta
        if not self.measuring:
            return
        self.frames += 1
        ts = float(hdr["x-timestamp"])
        if self.mode == "ustreamer":
            ts -= float(hdr["x-ustreamer-latency"])
        self.latencies_ms.append((now + self.offset_s - ts) * 1000.0)


def run_clients(port, path, headers, mode, n, warmup_s, seconds, offset_s):
    """n clients for warmup_s + seconds; returns figures for the measuring window."""
    clients = [Client(port, path, headers, mode, offset_s) for _ in range(n)]
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    t0 = time.monotonic()
    t_measure, t_end = t0 + warmup_s, t0 + warmup_s + seconds
    errors = []
    measuring = False
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
                if c.status is None:
                    errors.append("closed before a response")
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
        "fps_per_client_max": max(fps) if fps else 0,
        "mbit_s_total": sum(c.bytes for c in clients) * 8 / seconds / 1e6,
        "latency_ms_p50": pct(50),
        "latency_ms_p99": pct(99),
        "errors": sorted(set(errors))[:5],
        "clients_failed": sum(1 for c in clients if c.closed),
    }


# --------------------------------------------------------------------------- HTTP helpers

def http_get(port, path, headers=(), timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n"
    s.sendall(req.encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def clock_offset(port, headers):
    """guest clock - host clock, in seconds, from the best of 20 GET /api/time round trips."""
    best = None
    for _ in range(20):
        t0 = time.time()
        status, body = http_get(port, "/api/time", headers)
        t1 = time.time()
        if status != 200:
            raise RuntimeError(f"/api/time: HTTP {status}: {body[:200]!r}")
        guest = json.loads(body)["unix_ms"] / 1000.0
        rtt = t1 - t0
        if best is None or rtt < best[0]:
            best = (rtt, guest - (t0 + t1) / 2)
    return best[1], best[0]


def status_counts(port, headers):
    status, body = http_get(port, "/api/status", headers)
    if status != 200:
        raise RuntimeError(f"/api/status: HTTP {status}")
    j = json.loads(body)
    return j["frames"], j["dropped"]


def poke_control(port):
    """Tells the guest job to go on (it waits in `nc -l` on CTRL_PORT)."""
    for _ in range(50):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"next\n")
            s.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("guest control port never answered")


# --------------------------------------------------------------------------- guest console

class Console:
    """Reads the guest console (scripts/qemu/boot's stdout), stamping lines on arrival."""

    def __init__(self, proc, logf):
        self.proc = proc
        self.lines = []        # (host monotonic, text)
        self.cv = threading.Condition()
        self.logf = logf
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.logf.write(line + "\n")
            self.logf.flush()
            with self.cv:
                self.lines.append((time.monotonic(), line))
                self.cv.notify_all()
        with self.cv:
            self.lines.append((time.monotonic(), "<EOF>"))
            self.cv.notify_all()

    def wait_for(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            seen = 0
            while True:
                for t, line in self.lines[seen:]:
                    if line.startswith(prefix):
                        return line
                    if line == "<EOF>":
                        raise RuntimeError(f"guest stopped before {prefix!r}")
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"timeout waiting for {prefix!r} on the guest console")
                self.cv.wait(left)

    def samples(self, name, t_from, t_to):
        """FANOUT-SAMPLE lines for server `name` that arrived in [t_from, t_to]."""
        out = []
        with self.cv:
            for t, line in self.lines:
                if t_from <= t <= t_to and line.startswith("FANOUT-SAMPLE "):
                    _, who, up, ticks, rss = line.split()
                    if who == name:
                        out.append((float(up), int(ticks), int(rss)))
        return out


def cpu_and_rss(samples, hz=100):
    if len(samples) < 2:
        return None, None
    (u0, k0, _), (u1, k1, _) = samples[0], samples[-1]
    cpu = (k1 - k0) / hz / (u1 - u0) * 100 if u1 > u0 else None
    return cpu, max(r for _, _, r in samples)


# --------------------------------------------------------------------------- the run

def blackbox_phases(con, port, auth, client_counts, warmup, seconds, rows, result):
    # Wait for the first frame through the API (the recorder negotiates, vivid starts).
    deadline = time.time() + 60
    while True:
        try:
            if status_counts(port, auth)[0] > 0:
                break
        except (OSError, RuntimeError, ValueError):
            pass
        if time.time() > deadline:
            raise RuntimeError("blackbox recorded no frame within 60 s")
        time.sleep(0.5)
    offset, rtt = clock_offset(port, auth)
    log(f"guest clock - host clock = {offset * 1000:.1f} ms (best round trip {rtt * 1000:.1f} ms)")
    result["clock_offset_ms"], result["clock_rtt_ms"] = offset * 1000, rtt * 1000
    for n in client_counts:
        f0, d0 = status_counts(port, auth)
        t0 = time.monotonic()
        r = run_clients(port, "/api/live.mjpeg", auth, "blackbox", n, warmup, seconds, offset)
        t1 = time.monotonic()
        f1, d1 = status_counts(port, auth)
        r["recorded_fps"] = (f1 - f0) / (t1 - t0)
        r["recorder_dropped"] = d1 - d0
        r["cpu_percent"], r["rss_kib"] = cpu_and_rss(con.samples("blackbox", t0 + warmup, t1))
        log(f"blackbox  {n:3d} clients: {r}")
        rows["blackbox"].append(r)
        time.sleep(1)
    offset2, _ = clock_offset(port, auth)
    result["clock_drift_ms"] = (offset2 - offset) * 1000
    idle = con.samples("blackbox", 0, time.monotonic())
    return offset, offset2, idle


def run(client_counts, seconds, warmup, width, height, fps, port, ctrl_port, workdir, peer_only=False):
    subprocess.run([str(QEMU / "fetch-ustreamer")], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["truncate", "-s", "512M", str(workdir / "data.img")], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(workdir / "data.img")], check=True)
    job = workdir / "job.sh"
    job.write_text((HERE / "fanout-guest.sh").read_text()
                   .replace("@WIDTH@", str(width)).replace("@HEIGHT@", str(height))
                   .replace("@FPS@", str(fps)).replace("@CTRL@", str(CTRL_PORT))
                   .replace("@MAXCLIENTS@", str(max(client_counts) + 4)))
    cmd = [str(QEMU / "boot"), "--script", str(job), "--disk", str(workdir / "data.img"),
           "--extra", str(ROOT / "target" / "qemu" / "ustreamer" / "root"),
           "--port", str(port), "--fwd", f"{ctrl_port}:{CTRL_PORT}", "--timeout", "900", "--mem", "512"]
    logf = open(workdir / "console.log", "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    con = Console(proc, logf)
    result = {"width": width, "height": height, "fps": fps, "seconds": seconds, "warmup_s": warmup,
              "console": str(workdir / "console.log")}
    try:
        secret = con.wait_for("FANOUT: secret ", 120).split()[-1]
        con.wait_for("FANOUT: serving blackbox", 60)
        auth = [f"Authorization: Bearer {secret}"]
        rows = {"blackbox": [], "ustreamer": []}
        if peer_only:  # trying out the peer's half: no clock offset (latency figures are off)
            offset = offset2 = 0.0
            idle = []
            time.sleep(2)
        else:
            offset, offset2, idle = blackbox_phases(con, port, auth, client_counts, warmup, seconds, rows, result)
        poke_control(ctrl_port)
        con.wait_for("FANOUT: serving ustreamer", 60)
        deadline = time.time() + 60
        while True:
            try:
                st, body = http_get(port, "/state")
                if st == 200 and json.loads(body)["result"]["source"]["captured_fps"] > 0:
                    break
            except (OSError, ValueError, KeyError):
                pass
            if time.time() > deadline:
                raise RuntimeError("µStreamer captured nothing within 60 s")
            time.sleep(0.5)
        for n in client_counts:
            t0 = time.monotonic()
            r = run_clients(port, "/stream?extra_headers=1", [], "ustreamer", n, warmup, seconds, offset2)
            t1 = time.monotonic()
            st, body = http_get(port, "/state")
            r["captured_fps"] = json.loads(body)["result"]["source"]["captured_fps"] if st == 200 else None
            r["cpu_percent"], r["rss_kib"] = cpu_and_rss(con.samples("ustreamer", t0 + warmup, t1))
            log(f"ustreamer {n:3d} clients: {r}")
            rows["ustreamer"].append(r)
            time.sleep(1)
        poke_control(ctrl_port)
        con.wait_for("BLACKBOX-RIG: exit", 120)
        result["rows"] = rows
        result["blackbox_rss_kib_before_clients"] = idle[0][2] if idle else None
    finally:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()
    return result


def table(res):
    lines = ["| clients | server | fps per client (mean / min) | recorder dropped | server CPU % | RSS MiB | latency p50 / p99 ms |",
             "|---:|---|---|---:|---:|---:|---|"]
    b = {r["clients"]: r for r in res["rows"]["blackbox"]}
    u = {r["clients"]: r for r in res["rows"]["ustreamer"]}

    def f(x, spec):
        return "–" if x is None else format(x, spec)

    for n in sorted(set(b) | set(u)):
        for name, r in (("blackbox", b.get(n)), ("µStreamer", u.get(n))):
            if r is None:
                continue
            dropped = f(r.get("recorder_dropped"), "d") if name == "blackbox" else "(n/a)"
            lines.append(f"| {n} | {name} | {f(r['fps_per_client_mean'], '.1f')} / {f(r['fps_per_client_min'], '.1f')} | "
                         f"{dropped} | {f(r['cpu_percent'], '.0f')} | {f(r['rss_kib'] and r['rss_kib'] / 1024, '.1f')} | "
                         f"{f(r['latency_ms_p50'], '.0f')} / {f(r['latency_ms_p99'], '.0f')} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="1,10,25,50")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--ctrl-port", type=int, default=18091)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--peer-only", action="store_true", help="skip blackbox's phases (to try the peer's)")
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="bb-fanout-") as d:
        res = run([int(x) for x in a.clients.split(",")], a.seconds, a.warmup, w, h, a.fps, a.port, a.ctrl_port, Path(d), a.peer_only)
        res["console"] = None
    print(table(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
