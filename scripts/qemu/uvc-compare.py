#!/usr/bin/env python3
"""Compares the frames blackbox stored with the JPEGs the USB camera was fed (scripts/qemu/uvc-test).

    uvc-compare.py FEED_DIR STORED_DIR STORED_LIST MIN_PCT [DRIVER_DROPS]

FEED_DIR holds the fed JPEGs (0001.jpg, ... in feeding order). STORED_DIR and STORED_LIST are
examples/dump_frames' output: SEQ.jpg, every stored payload exactly as stored, and one line
`SEQ LEN CODEC MONO_NS UTC_NS` per frame (MONO_NS: the driver's capture timestamp).

Passes when
- every stored payload is byte-identical to a fed JPEG and none is stored twice;
- in capture order (the driver's timestamps) the stored frames are in the order fed;
- at least MIN_PCT percent of the fed frames are stored;
- with DRIVER_DROPS (the frames blackbox logged the V4L2 driver dropping: gaps in its sequence
  numbers), the frames missing between the first and the last stored one are exactly those.

uvcvideo copies each URB's payloads in a work item of an unbound workqueue, so under load a
frame can complete after a later one; blackbox stores frames in the order it dequeues them.
Such frames are reported, not failed, when their capture timestamps put them back in order;
blackbox's drop count then also counts each late frame as dropped, so the last check becomes
"missing <= DRIVER_DROPS". Exit 0 = pass.
"""
import hashlib, os, sys

feed, stored, stored_list, min_pct = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
driver_drops = int(sys.argv[5]) if len(sys.argv) > 5 else None

fed = [open(os.path.join(feed, n), "rb").read() for n in sorted(os.listdir(feed))]
index = {hashlib.sha256(b).digest(): i for i, b in enumerate(fed)}
if len(index) != len(fed):
    print(f"FAIL the fed frames are not all distinct ({len(index)} of {len(fed)})"); sys.exit(1)

mono = {}
for line in open(stored_list):
    seq, _len, _codec, mono_ns, _utc = line.split()
    mono[int(seq)] = int(mono_ns)
names = sorted(os.listdir(stored))
if sorted(f"{s:010}.jpg" for s in mono) != names:
    print("FAIL the stored frame list and the stored payloads differ"); sys.exit(1)

frames, bad, seen, repeated = [], 0, set(), 0   # frames: (mono_ns, seq, fed index)
for n in names:
    b = open(os.path.join(stored, n), "rb").read()
    i = index.get(hashlib.sha256(b).digest())
    if i is None or fed[i] != b:
        bad += 1
        if bad <= 3: print(f"     stored frame {n} ({len(b)} bytes) matches no fed frame")
        continue
    if i in seen:
        repeated += 1
        print(f"     stored frame {n} repeats fed frame {i + 1}")
    seen.add(i)
    seq = int(n[:-4])
    frames.append((mono[seq], seq, i))

stored_order = [i for _, _, i in sorted(frames, key=lambda f: f[1])]
capture_order = [i for _, _, i in sorted(frames, key=lambda f: (f[0], f[1]))]
late = [j for j, (a, b) in enumerate(zip(stored_order, capture_order)) if a != b]
in_order = all(a < b for a, b in zip(capture_order, capture_order[1:]))
ok = len(frames)
missing = sorted(set(range(min(seen), max(seen) + 1)) - seen) if seen else []
pct = 100.0 * ok / len(fed)
print(f"fed {len(fed)} frames; stored {len(names)}; byte-identical to a fed frame: {ok}; "
      f"altered/unknown: {bad}; repeated: {repeated}; stored out of capture order: {len(late)}")
if seen:
    print(f"stored run: fed frames {min(seen) + 1}..{max(seen) + 1}; missing inside it: {len(missing)} "
          f"{[m + 1 for m in missing[:20]]}; before it: {min(seen)}; after it: {len(fed) - 1 - max(seen)}")
if late:
    print(f"     the driver completed frames out of order; stored order around the first: "
          f"{[i + 1 for i in stored_order[max(0, late[0] - 2):late[0] + 5]]} (fed numbers)")
res = 0
if bad or repeated or not in_order or not names:
    print("FAIL stored frames must be byte-identical to the fed ones, each once, in the order fed"); res = 1
else:
    print("ok   every stored frame is byte-identical to a fed JPEG, each once, in the order fed (capture time)")
if pct >= min_pct:
    print(f"ok   {ok} of {len(fed)} fed frames stored ({pct:.1f} % >= {min_pct:g} %)")
else:
    print(f"FAIL only {ok} of {len(fed)} fed frames stored ({pct:.1f} %, need {min_pct:g} %)"); res = 1
if driver_drops is not None:
    if driver_drops == len(missing) or (late and len(missing) <= driver_drops):
        print(f"ok   {len(missing)} frames missing inside the run; blackbox logged {driver_drops} dropped by the driver")
    else:
        print(f"FAIL {len(missing)} frames missing inside the run, but the driver dropped {driver_drops}"); res = 1
sys.exit(res)
