#!/usr/bin/env python3
"""Compares the H.264 access units blackbox stored with those the USB camera was fed
(scripts/qemu/uvc-h264-test).

    uvc-h264-compare.py FEED_DIR STORED_DIR STORED_LIST MIN_PCT

FEED_DIR holds the fed access units (0001.h264, ... in feeding order, Annex-B). STORED_DIR and
STORED_LIST are examples/dump_h264's output: SEQ.au (each stored AVCC sample back in Annex-B)
and `SEQ LEN CODEC FLAGS` lines (FLAGS bit 0: IDR), `segment FIRST FRAMES AVCC_LEN` lines.

The store keeps an access unit without its SPS, PPS and access-unit delimiters (they live in
the segment's avcC), so an access unit is compared as its list of other NAL units. Passes when
- every stored access unit equals a fed one, none is stored twice, in the order fed;
- a stored frame is flagged IDR exactly when the fed access unit holds an IDR slice, and at
  least one IDR is stored; every segment starts with an IDR and has an avcC;
- every run of stored frames after a gap starts at an IDR (no picture refers to a missing one);
- at least MIN_PCT percent of the fed access units are stored.
Exit 0 = pass.
"""
import os, re, sys

feed, stored, stored_list, min_pct = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])


def nals(b):
    """NAL units of an Annex-B byte string, trailing zeros stripped, without SPS/PPS/AUD."""
    out = []
    for part in re.split(b"\x00\x00\x01", b)[1:]:
        part = part.rstrip(b"\x00")
        if part and part[0] & 0x1F not in (7, 8, 9):
            out.append(part)
    return tuple(out)


def is_idr(units):
    return any(u[0] & 0x1F == 5 for u in units)


fed = [nals(open(os.path.join(feed, n), "rb").read()) for n in sorted(os.listdir(feed))]
index = {u: i for i, u in enumerate(fed)}
fail = 0
if len(index) != len(fed):
    print("FAIL fed access units are not distinct")
    sys.exit(1)
frames, segments = [], []
for line in open(stored_list):
    f = line.split()
    if f[0] == "segment":
        segments.append((int(f[1]), int(f[2]), int(f[3])))
    else:
        frames.append((int(f[0]), int(f[2]), int(f[3])))
last, prev_seq, matched, idrs, bad_flags, bad_runs, not_fed, dup = -1, None, 0, 0, 0, 0, 0, 0
seen = set()
first_of_segment = {s[0] for s in segments}
for seq, codec, flags in frames:
    units = nals(open(os.path.join(stored, "%010d.au" % seq), "rb").read())
    i = index.get(units)
    if codec != 2 or i is None:
        not_fed += 1
        print("FAIL stored frame %d (codec %d) equals no fed access unit" % (seq, codec))
        continue
    if i in seen or i <= last:
        dup += 1
        print("FAIL stored frame %d is fed access unit %d again or out of order (after %d)" % (seq, i + 1, last + 1))
    seen.add(i)
    key = bool(flags & 1)
    if key != is_idr(fed[i]):
        bad_flags += 1
        print("FAIL stored frame %d (fed %d): IDR flag %s, fed access unit %s an IDR" % (seq, i + 1, key, "is" if is_idr(fed[i]) else "is not"))
    if key:
        idrs += 1
    # A gap in what was fed (frames lost on the way), or a new segment: must start at an IDR.
    if (last >= 0 and i != last + 1 or seq in first_of_segment or last < 0) and not is_idr(fed[i]):
        bad_runs += 1
        print("FAIL stored frame %d (fed %d) follows a gap or opens a segment and is no IDR" % (seq, i + 1))
    last = max(last, i)
    matched += 1
for first, n, avcc_len in segments:
    if n and avcc_len < 8:
        print("FAIL segment %d has no avcC" % first)
        fail = 1
pct = 100.0 * matched / len(fed)
fed_idrs = sum(1 for u in fed if is_idr(u))
print("%s %d of %d fed access units stored (%.0f %%), %d IDRs flagged (%d fed), %d segments" % (
    "ok  " if pct >= min_pct else "FAIL", matched, len(fed), pct, idrs, fed_idrs, len(segments)))
if pct < min_pct or not_fed or dup or bad_flags or bad_runs or idrs == 0:
    fail = 1
print("ok   every stored access unit equals the fed one, IDRs flagged where fed" if not fail else "FAIL see above")
sys.exit(fail)
