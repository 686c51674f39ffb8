#!/usr/bin/env python3
"""Judges the USB microphone test (scripts/qemu/mic-test): CONSOLE OUT_DIR.

usbip-mic's burst lines carry the guest's CLOCK_REALTIME when each burst was "captured" (the
stream's start plus its sample number / 16000); the export's clock points map its presentation time to UTC. Needs ffmpeg."""
import json
import re
import subprocess
import sys

con = open(sys.argv[1], encoding="utf-8", errors="replace").read().replace("\r", "")
out = sys.argv[2]
fail = 0
RATE = 16000
TOL_MS = 60


def check(ok, what):
    global fail
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fail = 1


bursts = [int(t) / 1e9 for _, t in re.findall(r"usbip-mic: burst (\d+) at realtime_ns (\d+)", con)]
sessions = re.findall(r"usbip-mic: session (\d+) (attached|detached)", con)
print(f"{len(bursts)} bursts sent; plug events {sessions}")
print("\n".join(re.findall(r"usbip-mic: session \d+ streaming .*", con)))
check(len(sessions) == 4, "two sessions, each plugged and unplugged")
opened = re.findall(r"audio: (/dev/snd/pcmC\d+D0c) \(([^)]*)\) at (\d+) Hz, (\d+) channel", con)
check(len(opened) >= 2 and all(r == "16000" for _, _, r, _ in opened), f"the USB microphone opened at 16 kHz, and again after the replug ({opened})")
status = []
for up, utc, a in re.findall(r"^BLACKBOX-RIG: st ([\d.]+) (\d+) (.*)$", con, re.M):
    try:
        status.append(json.loads("{" + a + "}")["audio"])
    except ValueError:
        pass
states = [s["state"] for s in status]
last = status[-1] if status else {}
print(f"states {states}; last {json.dumps(last)}")
check(any(s in ("lost", "searching") for s in states) and "recording" in states[-3:], "the unplug seen, then recording again")
lost = last.get("lost_ms", {})
check(2000 <= lost.get("device", 0) <= 15000, f"the time away counted: lost_ms.device {lost.get('device')} (unplugged 4 s, plus enumeration)")
check(lost.get("disk", 1) == 0, f"nothing lost to the card ({lost})")

x = json.load(open(f"{out}/x.json"))
print(f"export: {x['frames']} frames, {x['duration_s']} s, audio {x['audio_s']} s, {x['audio_units']} units")
d = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", f"{out}/x.mp4", "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-"],
                   capture_output=True)
check(d.returncode == 0 and len(d.stdout) > 0, f"the sound decodes with ffmpeg -xerror ({d.stderr.decode(errors='replace')[:200]})")
pcm = [int.from_bytes(d.stdout[i:i + 2], "little", signed=True) for i in range(0, len(d.stdout) - 1, 2)]
onsets, quiet = [], 10 ** 9
for i, v in enumerate(pcm):
    if abs(v) > 4000:
        if quiet >= RATE * 3 // 10:
            onsets.append(i)
        quiet = 0
    else:
        quiet += 1
clock = x.get("clock", [])


def utc_of(p):
    best = None
    for t, ms in clock:
        if t <= p + 1e-9:
            best = (t, ms)
    return None if best is None else best[1] / 1000 + (p - best[0])


found = [f for f in (utc_of(i / RATE) for i in onsets) if f is not None]
errs, missing = [], []
for t in bursts:
    near = [f for f in found if abs(f - t) < 0.5]
    if near:
        errs.append(round((near[0] - t) * 1000, 1))
    else:
        missing.append(round(t % 100, 1))
print(f"{len(found)} bursts in the export; timing errors (ms): {errs}")
check(len(errs) >= 0.8 * len(bursts) and len(bursts) >= 25, f"the bursts of both sessions are in the export ({len(errs)} of {len(bursts)}; missing at {missing})")
check(errs and max(abs(e) for e in errs) <= TOL_MS, f"each within {TOL_MS} ms of when it was captured (worst {max((abs(e) for e in errs), default=None)} ms)")
errors = [line for line in con.split("\n") if re.search(r"\bERROR\b|panicked", line)]
check(not errors, f"no error line from blackbox ({errors[:3]})")
m = re.search(r"emulator exit (\d+); run exit (\d+)", con)
check(m is not None and m.group(1) == "0" and m.group(2) == "0", f"emulator and blackbox exit 0 ({m.group(0) if m else 'no exit line'})")
sys.exit(fail)
