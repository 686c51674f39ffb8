#!/usr/bin/env python3
"""Judges the GPS test (scripts/qemu/gps-test): CONSOLE OUT_DIR START_UNIX.

The receiver's log (usbip-gps: fix/bad/session lines) and the guest's status lines share the
console, in the order they happened. OUT_DIR holds what the guest fetched over HTTP: track.gpx
and gps.mp4. Needs gpxpy (PyPI) and ffmpeg."""
import json
import re
import subprocess
import sys

import gpxpy

con = open(sys.argv[1], encoding="utf-8", errors="replace").read().replace("\r", "")
out = sys.argv[2]
start = int(sys.argv[3])
fail = 0


def check(ok, what):
    global fail
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fail = 1


fixes = {int(t): (float(la), float(lo), float(sp)) for t, la, lo, sp in
         re.findall(r"usbip-gps: fix (\d+) (\S+) (\S+) (\S+) ", con)}
bads = re.findall(r"usbip-gps: bad (\d+) (\S+)", con)
sessions = re.findall(r"usbip-gps: session (\d+) (attached|detached)", con)
print(f"{len(fixes)} fixes sent ({min(fixes) - start if fixes else '-'} .. {max(fixes) - start if fixes else '-'} s after the start), "
      f"{len(bads)} bad sentences, plug events {sessions}")
check(len(sessions) == 4, "two sessions, each plugged and unplugged")

# The status lines, each with the GPS time then: the last fix made before it plus the time
# since (the fix lines carry the guest's CLOCK_MONOTONIC, the status lines its uptime; the same
# clock in a guest that never suspends), so that unplugged seconds count too.
made = sorted((int(n) / 1e9, int(t)) for t, n in re.findall(r"usbip-gps: fix (\d+) .* mono_ns (\d+)", con))
status = []
for line in con.split("\n"):
    last_fix = None
    m = re.match(r"BLACKBOX-RIG: st ([\d.]+) (\d+) (\S+) (.*)$", line)
    if m:
        g = None
        if m.group(4) != "none":
            try:
                g = json.loads("{" + m.group(4) + "}")["gps"]
            except ValueError:
                g = None
        frames = int(m.group(3)) if m.group(3).isdigit() else None
        up = float(m.group(1))
        prior = [(mono, t) for mono, t in made if mono <= up]
        if prior:
            last_fix = prior[-1][1] + (up - prior[-1][0])
        status.append((up, int(m.group(2)), frames, g, last_fix))
print(f"{len(status)} status lines")
check(re.search(r"gps: receiver on /dev/ttyACM0 at \d+ baud", con) is not None, "the receiver found on /dev/ttyACM0 (cdc_acm)")
m = re.search(r"clock set from GPS: (\S+) -> (\S+)", con)
check(m is not None and m.group(2).startswith("2027-06-01T12:00:"), f"the guest's clock set from GPS ({m.group(0) if m else 'no such line'})")
before = re.search(r"guest clock before: (\d+)", con)
check(before is not None and int(before.group(1)) < start - 86400, "the guest's clock was months before the GPS time at boot")
# After the clock was set, the guest's UTC follows the GPS time of the last fix sent.
after = [(guest, lf) for _, guest, _, g, lf in status if g and g.get("clock") == "set" and lf is not None]
worst = max((round(abs(guest - lf), 2) for guest, lf in after), default=None)
check(len(after) >= 20 and worst is not None and worst <= 1.5,
      f"{len(after)} status lines after the clock was set: guest UTC - last fix's GPS time at most {worst} s (1.5 allowed)")
final = status[-1][3] if status and status[-1][3] else {}
print(f"final gps status: {json.dumps(final)}")
for key, kind in (("bad_checksum", "checksum"), ("void_fixes", "void"), ("bad_dates", "rollover")):
    sent = sum(1 for _, k in bads if k == kind)
    check(final.get(key, 0) >= 2 and final.get(key, 0) <= sent + 1, f"{key} counted: {final.get(key)} ({sent} {kind} sentences sent)")
states = [g["state"] for _, _, _, g, _ in status if g]
lost_at = next((i for i, s in enumerate(states) if s == "lost"), None)
check(lost_at is not None, f"the unplug seen: state 'lost' (states {sorted(set(states))})")
check(lost_at is not None and "fix" in states[lost_at:], "found again after the replug: state 'fix' after 'lost'")
fr = [(f, g["state"]) for _, _, f, g, _ in status if g and f is not None]
lost_frames = [f for f, s in fr if s in ("lost", "searching")]
check(len(lost_frames) >= 2 and lost_frames[-1] > lost_frames[0], f"recording went on while the receiver was away (frames {lost_frames[:1]} .. {lost_frames[-1:]})")

# The GPX: valid, every point a fix that was sent, none of the refused ones, few missing.
try:
    g = gpxpy.parse(open(f"{out}/track.gpx", encoding="utf-8"))
    pts = [p for t in g.tracks for s in t.segments for p in s.points]
except Exception as e:  # noqa: BLE001 - any parse error is the finding
    print(f"gpx: {e}")
    pts = []
check(len(pts) > 0, f"the GPX parses with gpxpy: {len(pts)} points in {sum(len(t.segments) for t in g.tracks) if pts else 0} segment(s)")
wrong = []
for p in pts:
    t = int(p.time.timestamp())
    f = fixes.get(t)
    if f is None or abs(p.latitude - f[0]) > 1e-6 or abs(p.longitude - f[1]) > 1e-6:
        wrong.append((t - start, p.latitude, p.longitude, f))
check(not wrong, f"every GPX point is the fix sent for its second ({len(wrong)} wrong: {wrong[:3]})")
speeds = {round(p.extensions[0][0].text and float(p.extensions[0][0].text), 2) if p.extensions else None for p in pts} if pts else set()
check(speeds == {15.0}, f"the GPX's speeds are the receiver's 15 m/s: {speeds}")
times = {int(p.time.timestamp()) for p in pts}
missing = sorted(t - start for t in fixes if t not in times)
check(len(missing) <= 8, f"fixes missing from the track: {len(missing)} (at most 4 a session: finding and rate detection) {missing}")

# The MP4's subtitles: speed and the position of the fix of their second.
r = subprocess.run(["ffmpeg", "-v", "error", "-i", f"{out}/gps.mp4", "-map", "0:s:0", "-f", "srt", "-"], capture_output=True, text=True)
subs = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC · (\d+) km/h · ([\d.]+)° ([NS]), ([\d.]+)° ([EW])", r.stdout)
print(f"ffmpeg: rc {r.returncode}, {len(r.stdout.splitlines())} srt lines, {len(subs)} subtitles with GPS; first {subs[:1]}")
bad_subs = []
for d, kmh, la, ns, lo, ew in subs:
    import calendar
    import time
    t = calendar.timegm(time.strptime(d, "%Y-%m-%d %H:%M:%S"))
    near = [fixes[k] for k in (t, t - 1, t - 2) if k in fixes]
    if kmh != "54" or not any(abs(float(la) - f[0]) < 1e-5 and abs(float(lo) - f[1]) < 1e-5 for f in near) or ns != "N" or ew != "E":
        bad_subs.append((d, kmh, la, lo))
check(r.returncode == 0 and len(subs) >= 20, f"the export's subtitles carry speed and position ({len(subs)} seconds)")
check(not bad_subs, f"each subtitle's speed and position are the receiver's ({len(bad_subs)} wrong: {bad_subs[:3]})")

errors = [line for line in con.split("\n") if re.search(r"\bERROR\b|panicked", line)]
check(not errors, f"no error line from blackbox ({errors[:3]})")
m = re.search(r"emulator exit (\d+); run exit (\d+)", con)
check(m is not None and m.group(1) == "0" and m.group(2) == "0", f"emulator and blackbox exit 0 ({m.group(0) if m else 'no exit line'})")
sys.exit(fail)
