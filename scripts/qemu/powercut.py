#!/usr/bin/env python3
"""The power-cut torture (scripts/powercut runs this; docs/RELIABILITY.md explains it).

Boots the appliance's CI image in qemu-system-aarch64 (vivid camera), lets it record, watches
the durable watermark on /health, and cuts the power at a chosen moment: SIGKILL of qemu, so
everything in the guest's page cache is gone. Two kinds of disk:

  kill  the card is a plain image file: what the guest kernel had sent to the disk survives
        (a card without a volatile cache);
  nbd   the card is served by volatile_nbd.py: writes since the last FLUSH live in a volatile
        log; at the cut a random subset lands and the last block is torn (an SD card's cache).
        Most nbd cuts are aimed: the disk freezes on a random write of the next burst, so the
        cut always finds acknowledged-but-unflushed writes and one in flight.

After every cut the host checks a copy of the data partition (e2fsck -fy replays the journal
and repairs, debugfs copies the files out, the host's `blackbox verify` and `blackbox export`
judge them), then boots the card again and checks the appliance through its API. Invariants,
each a failure of the run when broken:

  - the data file system is repairable (e2fsck exit < 4) and the next boot records again;
  - every frame up to the last watermark seen before the cut is there, CRC-valid, in order,
    with no hole (verify ok, no seq gap, first_seq <= W <= last_seq);
  - the config is the old one or the new one (a cut while PUT /api/config was in flight);
  - the last minute before the cut exports (host) to a file ffprobe and ffmpeg read without
    error, and the rebooted appliance serves byte-for-byte the same export and frame W.

Figures: acknowledged frames lost (must be 0), unacknowledged frames lost (p50/p99/max, frames
and ms: capture time of the last recovered frame against the moment of the cut), fsck and
store-recovery time, boot-to-recording time.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volatile_nbd import VolatileNbdServer  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PASSWORD = "powercut-test-password"
DATA_IN_PARTITION = "/blackbox"
# The torture settings: 3 s segments and a small cap, so rotation, retention and recycling
# happen every few seconds.
# A second camera (issue 19: the built-in test pattern as `rear`, Motion JPEG so the guest's
# CPU isn't spent encoding): its own store, DATA/cameras/rear, judged by the same invariants
# against its own watermark. It records from the first reboot on (cameras start at a start).
TORTURE_CONFIG = {"segment_length_s": 3, "storage_cap_gb": 0.15, "min_free_mb": 32,
                  "cameras": [{"name": "rear", "source": "synthetic", "width": 320, "height": 240, "fps": 10,
                               "codec": "mjpeg"}]}
REAR = "rear"
CATEGORIES = [  # (name, weight)
    ("boot", 12),        # during boot: fsck, mount, store recovery, camera start
    ("early", 10),       # the first 1.5 s of recording after a boot (first commits)
    ("steady", 22),      # anywhere in recording
    ("rotation", 22),    # aimed at a segment rotation (with retention deleting/recycling)
    ("config", 17),      # while PUT /api/config is in flight
    ("export", 17),      # while an export is streaming
    ("event", 12),       # just after "Save incident" (an event) was answered
]


def log(msg):
    print(f"powercut: {msg}", file=sys.stderr, flush=True)


class Fail(Exception):
    pass


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def iso(ns):
    t = time.gmtime(ns // 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{(ns // 1_000_000) % 1000:03d}Z"


def parse_iso_ns(s):
    # 2026-11-22T05:44:57.259Z
    base, frac = s.rstrip("Z").split(".") if "." in s else (s.rstrip("Z"), "0")
    t = time.strptime(base, "%Y-%m-%dT%H:%M:%S")
    import calendar
    return calendar.timegm(t) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


class Api:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, timeout=5.0, auth=True):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {PASSWORD}"} if auth else {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def json(self, path, timeout=5.0):
        st, _, b = self.request("GET", path, timeout=timeout)
        if st != 200:
            raise Fail(f"GET {path}: {st} {b[:200]!r}")
        return json.loads(b)

    def health(self):
        try:
            st, _, b = self.request("GET", "/health", timeout=1.5, auth=False)
            return json.loads(b) if st == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            return None


class Vm:
    """One qemu process booting the card (file or NBD), its console in a file."""

    def __init__(self, camp, boot_no):
        self.camp = camp
        self.console = os.path.join(camp.work, f"console-{boot_no:03d}.log")
        self.nbd = None
        if camp.kind == "nbd":
            sock = os.path.join(camp.work, "nbd.sock")
            self.nbd = VolatileNbdServer(camp.card, sock, camp.rng.randrange(1 << 30))
            drive = f"if=none,id=d0,format=raw,file=nbd+unix:///?socket={sock}"
        else:
            drive = f"if=none,id=d0,format=raw,file={camp.card}"
        out = camp.image_dir
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "512",
               "-nographic", "-kernel", f"{out}/Image", "-initrd", f"{out}/initrd.cpio.gz",
               "-append", "console=ttyAMA0 root=/dev/vda2 rootfstype=squashfs ro panic=5 loglevel=4",
               "-drive", drive, "-device", "virtio-blk-device,drive=d0",
               "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{camp.port}-:80",
               "-device", "virtio-net-device,netdev=n0", "-device", "virtio-rng-device",
               "-device", "i6300esb", "-action", "watchdog=reset"]
        self.t_start = time.time()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(self.console, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def cut(self):
        """The power cut: SIGKILL. For NBD, then the disk decides what it kept."""
        t = time.time()
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        summary = None
        if self.nbd:
            self.nbd.release()
            summary = self.nbd.wait_cut()
        return t, summary

    def text(self):
        with open(self.console, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r", "")


class Campaign:
    def __init__(self, kind, cycles, seed, port, work, image_dir, bb, card_size):
        self.kind, self.cycles, self.port = kind, cycles, port
        self.rng = random.Random(seed)
        self.seed = seed
        self.work = work
        self.image_dir = image_dir
        self.bb = bb
        self.card = os.path.join(work, "card.img")
        self.api = Api(port)
        self.card_size = card_size
        self.config = None            # the config as last known saved (dict)
        self.watermark = None         # W: last durable seq seen before the last cut
        self.watermark_rear = None    # the same for the second camera (/api/status?camera=rear)
        self.polls = 0
        self.event = None             # the event answered in this cycle (moment "event")
        self.pending = []             # checks of earlier cuts that need the next boot's API
        self.last_health = None
        self.vm = None
        self.rows = []
        self.failures = []
        self.boots = 0
        self.progress = None
        self.fps = 15.0
        self.last_on_disk = None
        self.offset_ns = 0
        self.p3 = None                # (start sector, sectors) of the data partition

    # --- setup ------------------------------------------------------------------------------
    def make_card(self):
        shutil.copyfile(os.path.join(self.image_dir, "disk.img"), self.card)
        os.truncate(self.card, self.card_size)
        bbtxt = os.path.join(self.work, "blackbox.txt")
        with open(bbtxt, "w") as f:
            f.write(f"# power-cut rig\ndashboard_password={PASSWORD}\n")
        env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
        subprocess.run(["mcopy", "-o", "-i", f"{self.card}@@4M", bbtxt, "::blackbox.txt"], check=True, env=env)

    def boot(self):
        self.boots += 1
        self.vm = Vm(self, self.boots)
        return self.vm

    def wait_recording(self, vm, after_seq, limit=150):
        """Until /health shows recording with a durable frame beyond after_seq. Returns seconds
        from qemu start."""
        end = time.time() + limit
        while time.time() < end:
            h = self.api.health()
            if h and h.get("recording") and h.get("durable_seq") is not None and \
                    (after_seq is None or h["durable_seq"] > after_seq):
                return time.time() - vm.t_start
            if not vm.alive():
                raise Fail("qemu exited during boot")
            time.sleep(0.1)
        raise Fail(f"no recording within {limit} s of boot (console {vm.console})")

    def clock_offset_ns(self):
        """guest UTC - host UTC, from /api/time (half the round trip taken off)."""
        best = None
        for _ in range(3):
            t0 = time.time_ns()
            j = self.api.json("/api/time")
            t1 = time.time_ns()
            off = j["unix_ms"] * 1_000_000 - (t0 + t1) // 2
            if best is None or (t1 - t0) < best[0]:
                best = (t1 - t0, off)
        return best[1]

    def partition3(self):
        out = subprocess.run(["sfdisk", "-d", self.card], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.split(":")[0].strip().endswith("3"):
                fields = dict(x.strip().split("=") for x in line.split(":", 1)[1].split(",") if "=" in x)
                return int(fields["start"]), int(fields["size"])
        raise Fail("no partition 3 on the card")

    # --- the checks on a copy of the data partition -----------------------------------------------
    def host_check(self, cycle, cut_utc_ns):
        """e2fsck + debugfs + verify on a copy of the card's data partition as the cut left it.
        Returns a dict of findings; raises Fail on a broken invariant."""
        d = os.path.join(self.work, "check")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        start, size = self.partition3()
        p3 = os.path.join(d, "p3.img")
        with open(self.card, "rb") as src, open(p3, "wb") as dst:
            src.seek(start * 512)
            left = size * 512
            while left:
                chunk = src.read(min(left, 4 << 20))
                if not chunk:
                    break
                if chunk.count(0) == len(chunk):
                    dst.seek(len(chunk), 1)
                else:
                    dst.write(chunk)
                left -= len(chunk)
            dst.truncate(size * 512)
        t = time.time()
        fsck = subprocess.run(["e2fsck", "-fy", p3], capture_output=True, text=True)
        fsck_s = time.time() - t
        if fsck.returncode >= 4:
            raise Fail(f"e2fsck could not repair the data partition (exit {fsck.returncode}):\n{fsck.stdout[-2000:]}")
        out = os.path.join(d, "files")
        os.makedirs(out)
        r = subprocess.run(["debugfs", "-R", f"rdump {DATA_IN_PARTITION} {out}", p3], capture_output=True, text=True)
        store = os.path.join(out, os.path.basename(DATA_IN_PARTITION))
        if not os.path.isdir(os.path.join(store, "segments")):
            raise Fail(f"no {DATA_IN_PARTITION}/segments on the data partition: {r.stderr[-500:]}")
        v = subprocess.run([self.bb, "verify", store, "--json"], capture_output=True, text=True)
        try:
            vj = json.loads(v.stdout)
        except ValueError:
            raise Fail(f"verify gave no JSON (exit {v.returncode}): {v.stdout[-500:]} {v.stderr[-500:]}")
        if not vj.get("ok"):
            raise Fail(f"verify found damage in acknowledged data: {json.dumps(vj)[:2000]}")
        if vj.get("seq_gaps"):
            raise Fail(f"a hole in the sequence: {vj['seq_gaps']}")
        first, last = vj.get("first_seq"), vj.get("last_seq")
        W = self.watermark
        acked_lost = 0
        if W is not None:
            if last is None or last < W:
                acked_lost = W - (last or 0)
                raise Fail(f"acknowledged frames lost: watermark {W} seen before the cut, last frame on disk {last}")
            if first is None or first > W:
                raise Fail(f"frame {W} (the watermark) is gone: frames on disk {first}..{last}")
        rear = self.check_rear(store)
        # The config: old or new, never broken.
        cfg_path = os.path.join(store, "config.json")
        try:
            with open(cfg_path) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise Fail(f"config.json is broken after the cut: {e}")
        if cfg not in self.config_candidates:
            raise Fail(f"config.json is neither the old nor the new one: {cfg}")
        self.config = cfg
        # The last minute before the cut, exported from the copy by the host's blackbox.
        export = None
        if last is not None and vj.get("end"):
            end_ns = parse_iso_ns(vj["end"])
            frm, to = end_ns - 60_000_000_000, end_ns + 1_000_000
            mp4 = os.path.join(self.work, f"export-{cycle:03d}.mp4")
            e = subprocess.run([self.bb, "export", store, "--from", iso(frm), "--to", iso(to), "-o", mp4],
                               capture_output=True, text=True)
            if e.returncode != 0:
                raise Fail(f"host export of the last minute failed: {e.stderr[-800:]}")
            export = (frm, to, mp4, self.judge_mp4(mp4))
        # Kept until the next boot's checks: they may need another export from it.
        kept = os.path.join(self.work, f"store-{cycle:03d}")
        os.rename(store, kept)
        shutil.rmtree(d, ignore_errors=True)
        lost_ms = None
        if last is not None and vj.get("end") and cut_utc_ns is not None:
            lost_ms = max(0.0, (cut_utc_ns - parse_iso_ns(vj["end"])) / 1e6)
        return {"first": first, "last": last, "fsck_rc": fsck.returncode, "fsck_s": fsck_s, "store": kept,
                "export": export, "lost_ms": lost_ms, "acked_lost": acked_lost, "frames": vj.get("frames"), **rear}

    def check_rear(self, store):
        """The second camera's store on the copy: verified, no hole, every frame up to its
        watermark there."""
        rear = os.path.join(store, "cameras", REAR)
        W = self.watermark_rear
        if not os.path.isdir(os.path.join(rear, "segments")):
            if W is not None:
                raise Fail(f"camera {REAR}: its store is gone (watermark {W} seen before the cut)")
            return {}
        v = subprocess.run([self.bb, "verify", rear, "--json"], capture_output=True, text=True)
        try:
            vj = json.loads(v.stdout)
        except ValueError:
            raise Fail(f"camera {REAR}: verify gave no JSON (exit {v.returncode}): {v.stderr[-500:]}")
        if not vj.get("ok"):
            raise Fail(f"camera {REAR}: verify found damage in acknowledged data: {json.dumps(vj)[:2000]}")
        if vj.get("seq_gaps"):
            raise Fail(f"camera {REAR}: a hole in the sequence: {vj['seq_gaps']}")
        first, last = vj.get("first_seq"), vj.get("last_seq")
        if W is not None and (last is None or last < W):
            raise Fail(f"camera {REAR}: acknowledged frames lost: watermark {W} seen before the cut, last frame on disk {last}")
        if W is not None and (first is None or first > W):
            raise Fail(f"camera {REAR}: frame {W} (the watermark) is gone: frames on disk {first}..{last}")
        return {"rear_W": W, "rear_last": last}

    def judge_mp4(self, mp4):
        p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=nb_frames,nb_read_frames:format=duration", "-of", "json", mp4],
                           capture_output=True, text=True)
        if p.returncode != 0 or p.stderr.strip():
            raise Fail(f"ffprobe rejects the export: {p.stderr[-800:]}")
        j = json.loads(p.stdout)
        s = j["streams"][0]
        nb, read = int(s.get("nb_frames", -1)), int(s.get("nb_read_frames", -2))
        k = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name",
                            "-show_entries", "packet=flags", "-read_intervals", "%+#1", "-of", "json", mp4],
                           capture_output=True, text=True)
        kj = json.loads(k.stdout or "{}")
        codec = (kj.get("streams") or [{}])[0].get("codec_name")
        first = ((kj.get("packets") or [{}])[0]).get("flags", "")
        if not first.startswith("K"):
            raise Fail(f"export does not start on a key frame (first packet flags {first!r})")
        # H.264: the frames from the IDR before `from` are in the file, hidden by the edit
        # list, so ffprobe decodes up to a GOP fewer than the sample table holds.
        lead_in_ok = codec == "h264" and 0 <= nb - read <= 10 * 30
        if (nb != read and not lead_in_ok) or nb <= 0:
            raise Fail(f"export: {nb} frames in the sample table but ffprobe decoded {read}")
        d = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", mp4, "-f", "null", "-"],
                           capture_output=True, text=True)
        if d.returncode != 0 or d.stderr.strip():
            raise Fail(f"ffmpeg could not decode every frame of the export: {d.stderr[-800:]}")
        return nb

    # --- checks through the rebooted appliance's API -----------------------------------------------
    def api_check(self, pending):
        W, export, cfg = pending["W"], pending["export"], pending["config"]
        if W is not None:
            st, h, body = self.api.request("GET", f"/api/frame?seq={W}", timeout=10)
            if st != 200 or h.get("x-seq") != str(W) or not (body[:2] == b"\xff\xd8" and body[-2:] == b"\xff\xd9"):
                raise Fail(f"after reboot, frame {W} (the watermark): {st} x-seq={h.get('x-seq')} {len(body)} bytes")
        if export is not None:
            frm, to, mp4, _ = export
            # Retention in the new boot may have taken the oldest of those frames already:
            # then both sides export from the appliance's oldest segment on.
            o = self.api.json("/api/status").get("oldest")
            oldest = parse_iso_ns(o) if o else to
            if oldest > frm:
                frm = oldest
                mp4 = mp4 + ".retained.mp4"
                e = subprocess.run([self.bb, "export", pending["store"], "--from", iso(frm), "--to", iso(to), "-o", mp4],
                                   capture_output=True, text=True)
                if e.returncode != 0:
                    raise Fail(f"host export of {iso(frm)}..{iso(to)} failed: {e.stderr[-800:]}")
                pending["row"]["export_compared_from"] = iso(frm)
            st, _, body = self.api.request("GET", f"/api/export.mp4?from={iso(frm)}&to={iso(to)}", timeout=60)
            with open(mp4, "rb") as f:
                want = f.read()
            if st != 200 or body != want:
                raise Fail(f"after reboot, the appliance's export of the last minute ({st}, {len(body)} bytes) "
                           f"differs from the host's export of the cut's disk ({len(want)} bytes)")
        ev = pending.get("event")
        if ev is not None:
            # The event answered just before the cut is there, still locked, its window
            # protected again, and the footage at its trigger kept.
            st, _, b = self.api.request("GET", f"/api/incidents/{ev['id']}", timeout=10)
            if st != 200:
                raise Fail(f"after reboot, event {ev['id']} (answered before the cut) is gone: {st} {b[:200]!r}")
            got_ev = json.loads(b)
            if not got_ev["locked"] or got_ev["from"] != ev["from"] or got_ev["time"] != ev["time"]:
                raise Fail(f"after reboot, event {ev['id']} changed: {got_ev} (was {ev})")
            f, t = parse_iso_ns(ev["from"]), parse_iso_ns(ev["to"])
            ranges = self.api.json("/api/protected")["ranges"]
            if not any(parse_iso_ns(r["from"]) <= f and parse_iso_ns(r["to"]) >= t for r in ranges):
                raise Fail(f"after reboot, event {ev['id']}'s window {ev['from']}..{ev['to']} is not protected: {ranges}")
            st, _, _ = self.api.request("GET", f"/api/frame?at={ev['time']}", timeout=10)
            if st != 200:
                raise Fail(f"after reboot, no footage within 5 s of event {ev['id']}'s trigger {ev['time']}: {st}")
            pending["row"]["event_checked"] = True
        got = self.api.json("/api/config")
        if got != cfg:
            raise Fail(f"after reboot, /api/config {got} is not the config found on the disk {cfg}")

    # --- the moments ---------------------------------------------------------------------------
    def choose(self):
        # BLACKBOX_POWERCUT_MOMENTS=event,steady: only those moments (a focused run by hand).
        only = [m for m in os.environ.get("BLACKBOX_POWERCUT_MOMENTS", "").split(",") if m]
        names = [c for c, _ in CATEGORIES if not only or c in only]
        weights = [w for c, w in CATEGORIES if not only or c in only]
        return self.rng.choices(names, weights)[0]

    def watch(self, until, stop=None):
        """Polls /health until time `until` (or stop() is true); raises the watermark."""
        while time.time() < until and not (stop and stop()):
            h = self.api.health()
            self.last_health = h
            if h and h.get("durable_seq") is not None:
                self.watermark = max(self.watermark or 0, h["durable_seq"])
            self.polls += 1
            if h and self.polls % 4 == 0:
                try:
                    d = self.api.json(f"/api/status?camera={REAR}", timeout=1.5).get("durable_seq")
                    if d is not None:
                        self.watermark_rear = max(self.watermark_rear or 0, d)
                except (Fail, OSError, ValueError, http.client.HTTPException):
                    pass   # not recording it yet (first boot), or the device is busy: W stays
            time.sleep(0.05)

    def act(self, vm, cat, notes):
        """Does what the category asks and returns when the power should go."""
        rng = self.rng
        if cat == "early":
            self.watch(time.time() + rng.uniform(0.0, 1.5))
        elif cat == "steady":
            self.watch(time.time() + rng.uniform(0.5, 12.0))
        elif cat == "rotation":
            st = self.api.json("/api/status")
            key = (st.get("segments"), st.get("oldest"))
            deadline = time.time() + 10

            def rotated():
                s = self.api.json("/api/status")
                return (s.get("segments"), s.get("oldest")) != key
            while time.time() < deadline and not rotated():
                self.watch(time.time() + 0.2)
            s = self.api.json("/api/status")
            notes["retention"] = s["storage"]["used_bytes"] + (8 << 20) >= s["storage"]["cap_bytes"]
            # Rotation comes every segment_length_s: aim at the next one, give or take 400 ms.
            self.watch(time.time() + TORTURE_CONFIG["segment_length_s"] + rng.uniform(-0.4, 0.4) - 0.1)
        elif cat == "config":
            self.watch(time.time() + rng.uniform(0.5, 4.0))
            key, a, b = rng.choice([("commit_frames", 30, 31), ("video_bitrate_kbps", 4000, 4001)])
            new = dict(self.config)
            new[key] = b if self.config.get(key) == a else a
            self.config_candidates = [self.config, new]
            notes["config"] = f"{key}={new[key]}"
            threading.Thread(target=lambda: self._quiet(self.api.request, "PUT", "/api/config", {key: new[key]}, 10),
                             daemon=True).start()
            self.watch(time.time() + rng.uniform(0.0, 0.4))
        elif cat == "event":
            self.watch(time.time() + rng.uniform(0.5, 4.0))
            st, _, b = self.api.request("POST", "/api/incidents", {}, timeout=10)
            if st != 201:
                raise Fail(f"POST /api/incidents: {st} {b[:300]!r}")
            self.event = json.loads(b)
            notes["event"] = self.event["id"]
            self.watch(time.time() + rng.uniform(0.0, 1.5))
        elif cat == "export":
            self.watch(time.time() + rng.uniform(0.5, 4.0))
            now_guest = time.time_ns() + self.offset_ns
            path = f"/api/export.mp4?from={iso(now_guest - 30_000_000_000)}&to={iso(now_guest)}"
            got = {"bytes": 0}

            def stream():
                try:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    c.request("GET", path, headers={"Authorization": f"Bearer {PASSWORD}"})
                    r = c.getresponse()
                    got["status"] = r.status
                    while True:
                        b = r.read(16384)
                        if not b:
                            break
                        got["bytes"] += len(b)
                        time.sleep(0.01)   # a phone on Wi-Fi: slower than the VM can send
                except (OSError, http.client.HTTPException):
                    pass
            threading.Thread(target=stream, daemon=True).start()
            self.watch(time.time() + rng.uniform(0.1, 1.2))
            notes["export"] = f"{got.get('status')} {got['bytes']} B streamed"

    @staticmethod
    def _quiet(f, *a):
        try:
            f(*a)
        except (OSError, http.client.HTTPException):
            pass

    def aimed_nbd_cut(self, vm, notes):
        """For NBD: freeze the disk on a random write of the next burst, then cut."""
        if vm.nbd is None or self.rng.random() < 0.2:
            return
        # A commit is a burst of a few writes then a FLUSH; ext4's journal adds its own. Half
        # the cuts come on a write (one in flight, torn), half on a FLUSH (the whole burst
        # acknowledged and unflushed: a random part of it lands, its last block torn).
        on = self.rng.choice(["write", "flush"])
        k = self.rng.randint(1, 6) if on == "write" else self.rng.randint(1, 3)
        vm.nbd.arm(k, on)
        deadline = time.time() + 5
        while time.time() < deadline and not vm.nbd.frozen.is_set():
            self.watch(time.time() + 0.05)
        notes["aimed"] = f"{on} {k}" if vm.nbd.frozen.is_set() else f"no {on} in 5 s"

    # --- the run -------------------------------------------------------------------------------------
    def run(self):
        log(f"[{self.kind}] campaign of {self.cycles} cycles, seed {self.seed}, work dir {self.work}")
        self.make_card()
        vm = self.boot()
        first_boot_s = self.wait_recording(vm, None, limit=240)
        log(f"[{self.kind}] first boot: recording after {first_boot_s:.1f} s")
        self.offset_ns = self.clock_offset_ns()
        st, _, b = self.api.request("PUT", "/api/config", TORTURE_CONFIG, timeout=15)
        if st != 200:
            raise Fail(f"PUT /api/config: {st} {b[:300]!r}")
        self.config = self.api.json("/api/config")
        self.config_candidates = [self.config]
        self.wait_recording(vm, None)
        self.fps = float((self.api.json("/api/status").get("format") or {}).get("fps") or 15)
        self.wait_recording(vm, None)
        self.watch(time.time() + 2)
        booted = True           # vm is up and recording
        for cycle in range(1, self.cycles + 1):
            cat = self.choose()
            while booted and cat == "boot":   # only the first cycle finds the VM up already
                cat = self.choose()
            notes = {}
            self.event = None
            self.last_health = None
            if not booted:
                vm = self.boot()
            if cat == "boot":
                # Somewhere between power-on and shortly after recording starts (a boot takes
                # about 8 s under TCG).
                self.watch(vm.t_start + self.rng.uniform(0.3, 10.0))
            else:
                if not booted:
                    boot_s = self.wait_recording(vm, self.last_on_disk)
                    self.offset_ns = self.clock_offset_ns()
                    self.after_boot(vm, boot_s)
                self.act(vm, cat, notes)
                self.aimed_nbd_cut(vm, notes)
            h = self.last_health
            recording_at_cut = cat != "boot" and bool(h and h.get("recording"))
            t_cut, nbd = vm.cut()
            booted = False
            cut_utc = int(t_cut * 1e9) + (self.offset_ns or 0)
            row = {"cycle": cycle, "kind": self.kind, "moment": cat, "W": self.watermark, **notes}
            if nbd:
                row["disk"] = nbd
            self.rows.append(row)
            try:
                found = self.host_check(cycle, cut_utc)
            except Fail as e:
                row["fail"] = str(e)
                self.failures.append(row)
                log(f"[{self.kind}] cycle {cycle} {cat}: FAIL {e}")
                return self.summary()
            row.update({k: v for k, v in found.items() if k not in ("export", "store")})
            row["recording_at_cut"] = recording_at_cut
            if not recording_at_cut:
                row["lost_ms"] = None
            self.last_on_disk = found["last"]
            self.pending.append({"W": self.watermark, "export": found["export"], "config": self.config, "row": row,
                                 "store": found["store"], "event": self.event})
            self.save_progress()
            self.config_candidates = [self.config]
            log(f"[{self.kind}] cycle {cycle} {cat}: W={self.watermark} on disk {found['first']}..{found['last']}"
                f" lost_unacked={_ms(row.get('lost_ms'))} fsck={found['fsck_rc']}"
                + (f" disk: {nbd['unflushed_writes']} unflushed writes, {nbd['kept']} pieces kept,"
                   f" {nbd['dropped']} dropped, torn {nbd['torn'] and nbd['torn']['sectors_written']}/8"
                   if nbd and not nbd.get("clean") else "")
                + "".join(f" {k}={v}" for k, v in notes.items()))
        # The last cut's checks need one more boot.
        if not self.failures:
            vm = self.boot()
            try:
                boot_s = self.wait_recording(vm, self.last_on_disk)
                self.after_boot(vm, boot_s)
            except Fail as e:
                if not self.failures:
                    self.failures.append({"cycle": "final boot", "fail": str(e)})
            vm.cut()
        return self.summary()

    def save_progress(self):
        """The rows and summary so far, after every cycle (a long campaign cut short keeps them)."""
        if self.progress:
            with open(self.progress, "w") as f:
                json.dump({"seed": self.seed, "summary": self.summary(), "rows": self.rows}, f, indent=1, default=str)

    def after_boot(self, vm, boot_s):
        """The previous cut's checks that need the appliance: API, recovery times."""
        if not self.pending:
            return
        row = self.pending[-1]["row"]
        row["boot_to_recording_s"] = round(boot_s, 2)
        text = vm.text()
        m = re.search(r"recovery took ([0-9.]+) ms", text)
        row["store_recovery_ms"] = float(m.group(1)) if m else None
        a = re.search(r"rcS start \(uptime ([0-9.]+) s\)", text)
        b = re.search(r"data partition ready: .*uptime ([0-9.]+) s\)", text)
        row["fsck_mount_s"] = round(float(b.group(1)) - float(a.group(1)), 2) if a and b else None
        m = re.search(r"data partition ready: .*\(e2fsck exit (\d+)", text)
        row["guest_e2fsck_exit"] = int(m.group(1)) if m else None
        for bad in ("REFORMATTING", "recording to RAM only", "e2fsck -y"):
            if bad in text:
                raise Fail(f"the boot after cycle {row['cycle']} says '{bad}': see {vm.console}")
        for p in self.pending:
            try:
                self.api_check(p)
            except Fail as e:
                p["row"]["fail"] = str(e)
                self.failures.append(p["row"])
                log(f"[{self.kind}] cycle {p['row']['cycle']} (after reboot): FAIL {e}")
                raise
            shutil.rmtree(p["store"], ignore_errors=True)
        self.pending = []

    def summary(self):
        rows = [r for r in self.rows if "fail" not in r]
        lost = [r["lost_ms"] for r in rows if r.get("lost_ms") is not None]
        fps = self.fps
        boots = [r["boot_to_recording_s"] for r in rows if r.get("boot_to_recording_s") is not None]
        rec = [r["store_recovery_ms"] for r in rows if r.get("store_recovery_ms") is not None]
        fsck = [r["fsck_mount_s"] for r in rows if r.get("fsck_mount_s") is not None]
        return {
            "kind": self.kind, "cycles": len(self.rows), "failures": len(self.failures),
            "acked_frames_lost": sum(r.get("acked_lost", 0) for r in self.rows),
            "unacked_lost_ms": {"p50": pct(lost, 50), "p99": pct(lost, 99), "max": max(lost) if lost else None},
            "unacked_lost_frames": {k: (None if v is None else round(v * fps / 1000, 1))
                                    for k, v in {"p50": pct(lost, 50), "p99": pct(lost, 99), "max": max(lost) if lost else None}.items()},
            "store_recovery_ms": {"p50": pct(rec, 50), "max": max(rec) if rec else None},
            "fsck_mount_s": {"p50": pct(fsck, 50), "max": max(fsck) if fsck else None},
            "boot_to_recording_s": {"p50": pct(boots, 50), "p99": pct(boots, 99), "max": max(boots) if boots else None},
            "moments": {c: sum(1 for r in self.rows if r["moment"] == c) for c, _ in CATEGORIES},
            "fail": [f.get("fail") for f in self.failures],
        }


def _ms(v):
    return "-" if v is None else f"{v:.0f}ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--kind", choices=["kill", "nbd", "both"], default="both")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--port", type=int, default=18480)
    ap.add_argument("--card-size", default="768M")
    ap.add_argument("--image-dir", required=True)
    ap.add_argument("--blackbox", required=True, help="the host's blackbox binary (verify, export)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", help="write the per-cycle rows and summaries here")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    size = int(a.card_size[:-1]) << {"M": 20, "G": 30}[a.card_size[-1]]
    kinds = ["kill", "nbd"] if a.kind == "both" else [a.kind]
    results, all_rows = [], []
    ok = True
    for i, kind in enumerate(kinds):
        work = tempfile.mkdtemp(prefix=f"powercut-{kind}-")
        camp = Campaign(kind, a.cycles, seed + i, a.port, work, a.image_dir, a.blackbox, size)
        if a.json:
            camp.progress = f"{a.json}.{kind}.progress"
        try:
            s = camp.run()
        except Fail as e:
            if not camp.failures:
                camp.failures.append({"cycle": "?", "fail": str(e)})
            s = camp.summary()
        finally:
            if camp.vm is not None and camp.vm.alive():
                camp.vm.cut()
        results.append(s)
        all_rows += camp.rows
        if s["failures"]:
            ok = False
            log(f"[{kind}] work dir kept for inspection: {work}")
        elif not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results, seed, a.cycles)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"seed": seed, "summaries": results, "rows": all_rows}, f, indent=1, default=str)
    sys.exit(0 if ok else 1)


def print_table(results, seed, cycles):
    def f(v, fmt="{:.0f}"):
        return "-" if v is None else fmt.format(v)
    print(f"\npower-cut torture, seed {seed}")
    print("| disk | cycles | failed | acked frames lost | unacked lost p50 / p99 / max (frames) | (ms) "
          "| store recovery p50 / max (ms) | fsck+mount p50 / max (s) | boot to recording p50 / p99 / max (s) |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for s in results:
        fr, ms = s["unacked_lost_frames"], s["unacked_lost_ms"]
        print(f"| {s['kind']} | {s['cycles']} | {s['failures']} | {s['acked_frames_lost']} "
              f"| {f(fr['p50'], '{:.1f}')} / {f(fr['p99'], '{:.1f}')} / {f(fr['max'], '{:.1f}')} "
              f"| {f(ms['p50'])} / {f(ms['p99'])} / {f(ms['max'])} "
              f"| {f(s['store_recovery_ms']['p50'], '{:.1f}')} / {f(s['store_recovery_ms']['max'], '{:.1f}')} "
              f"| {f(s['fsck_mount_s']['p50'], '{:.1f}')} / {f(s['fsck_mount_s']['max'], '{:.1f}')} "
              f"| {f(s['boot_to_recording_s']['p50'], '{:.1f}')} / {f(s['boot_to_recording_s']['p99'], '{:.1f}')} "
              f"/ {f(s['boot_to_recording_s']['max'], '{:.1f}')} |")
    for s in results:
        print(f"{s['kind']}: moments {s['moments']}")
        for msg in s["fail"]:
            print(f"{s['kind']}: FAIL {msg}")


if __name__ == "__main__":
    main()
