#!/usr/bin/env python3
"""Judges the audio test (scripts/qemu/audio-test): CONSOLE OUT_DIR.

pcmplay's burst lines carry the guest's CLOCK_REALTIME (ns) each burst plays at; the export's
clock points map its presentation time to UTC (the same clock). Needs ffmpeg."""
import json
import re
import subprocess
import sys

con = open(sys.argv[1], encoding="utf-8", errors="replace").read().replace("\r", "")
out = sys.argv[2]
fail = 0
RATE = 16000


def check(ok, what):
    global fail
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fail = 1


bursts = {int(k): int(t) / 1e9 for k, t in re.findall(r"pcmplay: burst (\d+) at realtime_ns (\d+)", con)}
done = re.search(r"pcmplay: done, (\d+) frames written, (\d+) underruns", con)
print(f"{len(bursts)} bursts played; {done.group(0) if done else 'pcmplay did not finish'}")
check(len(bursts) >= 20, "pcmplay played its bursts")
check(re.search(r"audio: /dev/snd/pcmC0D1c \(Loopback\) at 16000 Hz, 1 channel\(s\)", con) is not None,
      "blackbox opened the loopback's capture device at 16 kHz mono")
mute_at = re.search(r"BLACKBOX-RIG: mute at (\d+)", con)
unmuted = re.search(r"BLACKBOX-RIG: unmuted at (\d+)", con)
replies = re.findall(r"BLACKBOX-RIG: (?:un)?mute reply (.*)", con)
check(mute_at is not None and unmuted is not None and all(" 200" in r for r in replies) and len(replies) == 2,
      f"muted and switched on again through PUT /api/config ({replies})")
status = []
for up, utc, a in re.findall(r"^BLACKBOX-RIG: st ([\d.]+) (\d+) (.*)$", con, re.M):
    try:
        status.append((float(up), int(utc), json.loads("{" + a + "}")["audio"]))
    except ValueError:
        pass
print(f"{len(status)} status lines; last {json.dumps(status[-1][2]) if status else None}")
states = [s["state"] for _, _, s in status]
check("muted" in states and states[-1] == "recording", f"the state went muted and back to recording ({sorted(set(states))})")
muted = [s["stored_s"] for _, _, s in status if s["state"] == "muted"]
# While muted nothing is stored: the stored seconds stand still (the first muted line may still
# see the last units flushed).
check(len(muted) >= 2 and max(muted) - muted[1 if len(muted) > 2 else 0] < 0.2,
      f"nothing stored while muted (stored_s over the muted lines: {muted})")
last = status[-1][2] if status else {}
lost = last.get("lost_ms", {})
check(last.get("overruns") == 0 and lost.get("overrun") == 0 and lost.get("device") == 0 and lost.get("disk") == 0,
      f"continuous: no overrun, nothing lost to the device or the card ({lost}, overruns {last.get('overruns')})")

x = json.load(open(f"{out}/x.json"))
print(f"export: {x['frames']} frames, {x['duration_s']} s, audio {x['audio_s']} s, {x['audio_units']} units stored, codec {x['codec']}")
r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name,profile,sample_rate,channels",
                    "-of", "compact=p=0", f"{out}/x.mp4"], capture_output=True, text=True)
check("codec_name=aac" in r.stdout and "profile=LC" in r.stdout and "sample_rate=16000" in r.stdout and "channels=1" in r.stdout,
      f"the export has an AAC-LC 16 kHz mono track ({r.stdout.strip()})")
d = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", f"{out}/x.mp4", "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-"],
                   capture_output=True)
check(d.returncode == 0, f"the audio decodes with ffmpeg -xerror ({d.stderr.decode(errors='replace')[:200]})")
pcm = [int.from_bytes(d.stdout[i:i + 2], "little", signed=True) for i in range(0, len(d.stdout) - 1, 2)]
secs = len(pcm) / RATE
check(abs(secs - x["audio_s"]) <= 0.07 + 1024 / RATE, f"decoded {secs:.3f} s, export.json says {x['audio_s']} s")
mute_s = (int(unmuted.group(1)) - int(mute_at.group(1))) if mute_at and unmuted else 0
stored_s = x["audio_units"] * 1024 / RATE
check(x["duration_s"] - mute_s - 3.0 <= stored_s <= x["duration_s"] - mute_s + 2.5,
      f"the stored units cover the time not muted: {stored_s:.2f} s stored of {x['duration_s']} s with about {mute_s} s muted")

# Burst onsets in the export -> UTC through the clock points.
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


found = [utc_of(i / RATE) for i in onsets]
found = [f for f in found if f is not None]
print(f"{len(onsets)} bursts in the export")
m0, m1 = (int(mute_at.group(1)), int(unmuted.group(1)) + 1) if mute_at and unmuted else (0, 0)
errs, missing, while_muted = [], [], []
for k, t in sorted(bursts.items()):
    near = [f for f in found if abs(f - t) < 0.5]
    if m0 - 0.5 <= t <= m1 + 0.5:
        if near and m0 + 0.8 <= t <= m1 - 1.5:
            while_muted.append(k)
        continue
    if not near:
        missing.append(k)
    else:
        errs.append(round((near[0] - t) * 1000, 1))
print(f"burst timing errors (ms): {errs}")
check(not missing, f"every burst played while recording is in the export (missing: {missing})")
check(not while_muted, f"no burst played while muted is in the export ({while_muted})")
check(errs and max(abs(e) for e in errs) <= 50, f"each within one video frame, 50 ms (worst {max((abs(e) for e in errs), default=None)} ms)")

# The subtitles: time, speed and position from the GPS receiver driving along.
sub = subprocess.run(["ffmpeg", "-v", "error", "-i", f"{out}/x.mp4", "-map", "0:s:0", "-f", "srt", "-"], capture_output=True, text=True)
subs = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC · (\d+) km/h · ([\d.]+)° N, ([\d.]+)° E", sub.stdout)
check(len(subs) >= 0.9 * x["duration_s"] and all(k == "54" and f.startswith("47.2") and g.startswith("8.5") for _, k, f, g in subs),
      f"the subtitles carry the speed and position ({len(subs)} seconds of {x['duration_s']}; first {subs[:1]})")
check(x["codec"] == "h264", f"the video is H.264 ({x['codec']})")
check(any("clock set from GPS" in line for line in con.split("\n")), "the guest's clock was set from GPS first")

# The live view's stream (5 s of /api/live.mp4 while recording): its sound track decodes and
# its bursts sit where they were played on the stream's timeline (the video's prft boxes map
# decode time to capture time).
live = open(f"{out}/live.mp4", "rb").read() if __import__("os").path.exists(f"{out}/live.mp4") else b""
lp = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,sample_rate", "-of", "compact=p=0", f"{out}/live.mp4"],
                    capture_output=True, text=True)
check("codec_type=audio" in lp.stdout and "codec_name=aac" in lp.stdout, f"the live stream has the sound track ({lp.stdout.strip()})")
ld = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"{out}/live.mp4", "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-"], capture_output=True)
lpcm = [int.from_bytes(ld.stdout[i:i + 2], "little", signed=True) for i in range(0, len(ld.stdout) - 1, 2)]
prft = []
i = 0
while True:
    i = live.find(b"prft", i)
    if i < 0:
        break
    track = int.from_bytes(live[i + 8:i + 12], "big")
    ntp = int.from_bytes(live[i + 12:i + 20], "big")
    media = int.from_bytes(live[i + 20:i + 28], "big")
    if track == 1:
        prft.append((media / 90000, (ntp >> 32) - 2208988800 + (ntp & 0xffffffff) / 2 ** 32))
    i += 4
lon, quiet = [], 10 ** 9
for k, v in enumerate(lpcm):
    if abs(v) > 4000:
        if quiet >= RATE * 3 // 10:
            lon.append(k / RATE)
        quiet = 0
    else:
        quiet += 1
# The audio track starts at its first decode time: ffmpeg's output starts there too.
a_start = None
ai = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0",
                     f"{out}/live.mp4"], capture_output=True, text=True).stdout.split()
if ai:
    a_start = float(ai[0])
lerrs = []
for p in lon:
    t = p + (a_start or 0)
    base = [x for x in prft if x[0] <= t]
    if not base:
        continue
    utc = base[-1][1] + (t - base[-1][0])
    near = [b for b in bursts.values() if abs(b - utc) < 0.5]
    if near:
        lerrs.append(round((utc - near[0]) * 1000, 1))
print(f"live: {len(lpcm) / RATE:.2f} s of sound, {len(prft)} video fragments, burst errors (ms) {lerrs}")
check(len(lpcm) >= 2 * RATE and len(lerrs) >= 2 and max(abs(e) for e in lerrs) <= 100,
      f"the live stream's sound plays the bursts near their place in the picture's timeline (within 100 ms)")

errors = [line for line in con.split("\n") if re.search(r"\bERROR\b|panicked", line)]
check(not errors, f"no error line from blackbox ({errors[:3]})")
m = re.search(r"pcmplay exit (\d+); run exit (\d+)", con)
check(m is not None and m.group(1) == "0" and m.group(2) == "0", f"pcmplay and blackbox exit 0 ({m.group(0) if m else 'no exit line'})")
sys.exit(fail)
