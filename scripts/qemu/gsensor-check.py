#!/usr/bin/env python3
"""Judges the G-sensor test's console (scripts/qemu/gsensor-test): CONSOLE TOL_MS.

Times: the emulator's marks and plug events and blackbox's impacts are CLOCK_MONOTONIC ns of the
guest; the status lines carry /proc/uptime (CLOCK_BOOTTIME, the same clock in a guest that never
suspends)."""
import json
import re
import sys

con = open(sys.argv[1], encoding="utf-8", errors="replace").read().replace("\r", "")
tol_ns = int(sys.argv[2]) * 1_000_000
fail = 0


def check(ok, what):
    global fail
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fail = 1


marks = {m[0]: (m[1], int(m[2]), int(m[3])) for m in
         re.findall(r"usbip-i2c-tiny: mark (\S+) chip (\S+) sample (\d+) mono_ns (\d+)", con)}
impacts = [(float(g), int(t)) for g, t in re.findall(r"gsensor: impact ([\d.]+) g at \S+ \(mono_ns (\d+)\)", con)]
plug = {}
for s, w, t in re.findall(r"usbip-i2c-tiny: session (\d+): (attached|detached) .*?mono_ns (\d+)", con):
    plug[(int(s), w)] = int(t)
status = []
for up, frames, state, g in re.findall(r"^BLACKBOX-RIG: st ([\d.]+) (\S+) (\S+) (.*)$", con, re.M):
    try:
        gs = json.loads("{" + g + "}")["gsensor"] if g else None
    except ValueError:
        gs = None
    status.append((float(up) * 1e9, int(frames) if frames.isdigit() else None, state, gs))

print(f"marks: {marks}")
print(f"impacts (peak g, mono_ns): {impacts}")
print(f"plug events: {plug}; {len(status)} status lines")
check(re.search(r"gsensor: MPU-6050 at 0x68 on /dev/i2c-\d+: ±16 g, 100 Hz", con) is not None, "MPU-6050 found and set up")
check(all(k in marks for k in ("pothole", "braking", "impact1", "driving", "impact2")), "every waveform played (marks)")
check(len(impacts) == 2, f"exactly two impacts (the two 6 g pulses; none for the pothole, braking or vibration): {len(impacts)}")
for name in ("impact1", "impact2"):
    if name not in marks:
        continue
    t = marks[name][2]
    near = [i for i in impacts if abs(i[1] - t) <= 1_000_000_000]
    if len(near) != 1:
        check(False, f"{name}: one impact within 1 s of its sample time, found {near}")
        continue
    err = near[0][1] - t
    check(abs(err) <= tol_ns, f"{name} ({marks[name][0]}): impact at sample time {err / 1e6:+.1f} ms from the pulse's first sample (tolerance ±{tol_ns // 1_000_000} ms), peak {near[0][0]} g")
    check(5.0 <= near[0][0] <= 7.0, f"{name}: peak {near[0][0]} g in 5..7")

# moving: never before the vibration (rest, pothole, braking), at some point during it.
if "driving" in marks and "impact1" in marks:
    d0 = marks["driving"][2]
    before = [s for s in status if s[3] and s[0] < d0 and s[3]["state"] == "ok"]
    during = [s for s in status if s[3] and d0 + 6e9 <= s[0] <= d0 + 10e9]
    check(before and not any(s[3]["moving"] for s in before), f"not moving at rest, over the pothole and the braking ({len(before)} status lines)")
    check(any(s[3]["moving"] for s in during), f"moving during the 8 s of vibration ({len(during)} status lines)")

# Unplugged and plugged back: logged, looked for again, recording never stopped.
check(re.search(r"WARN .*gsensor: lost the MPU-6050 on /dev/i2c-\d+: .*looking for it again", con) is not None, "the unplug logged")
check(re.search(r"gsensor: LIS3DH at 0x18 on /dev/i2c-\d+", con) is not None, "found again after the replug (a LIS3DH now)")
if (1, "detached") in plug and (2, "attached") in plug:
    t_det, t_att = plug[(1, "detached")], plug[(2, "attached")]
    gap = [s for s in status if t_det <= s[0] <= t_att]
    # "lost" from the failed read after the unplug until the chip is found again, which takes
    # the replug plus a probe round: a loaded host may read the status only after the replug.
    first_ok_after = min((s[0] for s in status if s[3] and s[0] > t_att and s[3]["state"] == "ok"), default=t_att + 10e9)
    lost_win = [s for s in status if t_det <= s[0] < first_ok_after]
    check(any(s[3] and s[3]["state"] == "lost" for s in lost_win),
          f"/api/status said \"lost\" after the unplug until found again ({len(lost_win)} status lines)")
    pre = [s for s in status if s[0] < t_det and s[1] is not None]
    post = [s for s in status if s[0] > t_att + 1e9 and s[1] is not None]
    check(bool(pre and post and gap), "status lines before, during and after the unplug")
    if pre and post and gap:
        seq = [s[1] for s in pre[-1:] + gap + post[:1] if s[1] is not None]
        check(all(b > a for a, b in zip(seq, seq[1:])), f"frames rose at every status read around the unplug: {seq}")
        check(all(s[2] == "recording" for s in pre[-1:] + gap + post[:1]), "state \"recording\" throughout")
    end2 = plug.get((2, "detached"), float("inf"))
    before_end = [s for s in status if s[0] < end2 and s[3]]
    last = before_end[-1][3] if before_end else {}
    check(last.get("chip") == "LIS3DH" and last.get("state") == "ok", f"status at the end: {last}")
    # The status counters run since blackbox started (over both chips): two impacts.
    check(last.get("impacts") == 2 and last.get("samples", 0) > 300, f"status counts both impacts (since start) and the samples: {last.get('impacts')}")
else:
    check(False, "the emulator unplugged and plugged back")
# Each impact became an event that protects its footage (src/events/).
ev = re.findall(r"event (\d+) \(impact, ([\d.]+) g\): footage (\S+) \.\. (\S+) protected", con)
check(len(ev) == 2, f"each impact is an event protecting its footage: {ev}")
# Over HTTP: the event is listed with its peak and lock, and one MP4 of its window downloads.
m = re.search(r"^BLACKBOX-RIG: incidents (\{.*\})\s*$", con, re.M)
try:
    inc = json.loads(m.group(1))["incidents"] if m else []
except ValueError:
    inc = []
imp = [e for e in inc if e["kind"] == "impact"]
check(len(imp) == 1 and imp[0]["locked"] and 5.0 <= (imp[0]["peak_g"] or 0) <= 7.0 and imp[0]["repeats"] == 1,
      f"/api/incidents lists one locked impact event (both pulses, the second inside the first's window): {inc}")
m = re.search(r"^BLACKBOX-RIG: event mp4 (\d+) bytes, box (\S*)", con, re.M)
check(bool(m) and int(m.group(1)) > 10000 and m.group(2) == "ftyp", f"the event downloads as one MP4: {m.group(0) if m else 'no line'}")
errors = re.findall(r"^\S+ ERROR .*$", con, re.M)
check(not errors, f"no error line from blackbox: {errors[:3]}")
for m in re.findall(r"^.*gsensor: FIFO overflow.*$", con, re.M)[:5]:
    print("note " + m)
for m in re.findall(r"^usbip-i2c-tiny: session \d: detached.*$", con, re.M):
    print("note " + m)
check(re.search(r"^BLACKBOX-RIG: emulator exit 0; run exit 0$", con, re.M) is not None, "emulator and run exit 0")
sys.exit(fail)
