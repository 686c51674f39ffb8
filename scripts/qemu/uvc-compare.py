#!/usr/bin/env python3
"""Compares the frames blackbox stored with the JPEGs the USB camera was fed (scripts/qemu/uvc-test).

    uvc-compare.py FEED_DIR STORED_DIR MIN_PCT

FEED_DIR holds the fed JPEGs (0001.jpg, ... in feeding order), STORED_DIR the stored payloads
(examples/dump_frames: SEQ.jpg in sequence order). Passes when every stored payload is
byte-identical to a fed JPEG, in the order fed (missing frames allowed; altered, unknown,
repeated or reordered ones not), and at least MIN_PCT percent of the fed frames are stored.
Exit 0 = pass.
"""
import hashlib, os, sys
feed, stored, min_pct = sys.argv[1], sys.argv[2], float(sys.argv[3])
fed = [open(os.path.join(feed, n), "rb").read() for n in sorted(os.listdir(feed))]
index = {}
for i, b in enumerate(fed):
    index.setdefault(hashlib.sha256(b).digest(), i)
if len(index) != len(fed):
    print(f"FAIL the fed frames are not all distinct ({len(index)} of {len(fed)})"); sys.exit(1)
names = sorted(os.listdir(stored))
got = [open(os.path.join(stored, n), "rb").read() for n in names]
pos, last, bad, out_of_order = [], -1, 0, 0
for n, b in zip(names, got):
    i = index.get(hashlib.sha256(b).digest())
    if i is None or fed[i] != b:
        bad += 1
        if bad <= 3: print(f"     stored frame {n} ({len(b)} bytes) matches no fed frame")
        continue
    if i <= last:
        out_of_order += 1
    last = max(last, i)
    pos.append(i)
ok = len(pos)
missing = []
if pos:
    missing = sorted(set(range(pos[0], pos[-1] + 1)) - set(pos))
pct = 100.0 * ok / len(fed)
print(f"fed {len(fed)} frames; stored {len(got)}; byte-identical to a fed frame: {ok}; "
      f"altered/unknown: {bad}; out of order or repeated: {out_of_order}")
if pos:
    print(f"stored run: fed frames {pos[0] + 1}..{pos[-1] + 1}; missing inside it: {len(missing)} "
          f"{[m + 1 for m in missing[:20]]}; before it: {pos[0]}; after it: {len(fed) - 1 - pos[-1]}")
res = 0
if bad or out_of_order or not got:
    print("FAIL stored frames must be byte-identical to the fed ones, in order"); res = 1
else:
    print("ok   every stored frame is byte-identical to a fed JPEG, in the order fed")
if pct >= min_pct:
    print(f"ok   {ok} of {len(fed)} fed frames stored ({pct:.1f} % >= {min_pct:g} %)")
else:
    print(f"FAIL only {ok} of {len(fed)} fed frames stored ({pct:.1f} %, need {min_pct:g} %)"); res = 1
sys.exit(res)
