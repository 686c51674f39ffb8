#!/usr/bin/env python3
"""A card whose flushes are slow: the appliance records vivid while every FLUSH takes 0, 100,
300 and 1000 ms (scripts/qemu/slowdisk-test; issue "Capture never waits on the card").

The appliance's CI image boots in qemu (TCG) as in scripts/powercut, its card served by
volatile_nbd.py over a Unix socket; the server holds every FLUSH for the latency before carrying
it out, and serves requests one at a time as a card does, so everything queued behind a flush
waits too. One boot; the latency changes between windows of recording. For each window the
dashboard's `/api/status` counters give the frames stored and the frames lost by cause.

Judged against what the driver delivered, not the nominal rate (TCG slows vivid, and a loaded
host slows it more, which is not blackbox's doing):
- the recorder loses nothing itself at any latency: no backpressure, no store loss, so every
  frame vivid delivered is stored (>= 99 %, the rest only frames in flight at the window's
  edges);
- every frame lost is counted: stored + lost by cause equals what vivid produced (its sequence
  numbers; the driver's drops are counted from them) within the frames in flight at the edges;
- the store rate at each latency against the +0 ms window is printed (the issue's "at least
  99 % of what the same run stores with no latency"; TCG's pace moves it too, so it is a figure).
After the windows the card is cut and the host checks it as scripts/powercut does (verify: no
damage in acknowledged data).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from powercut import Campaign, Fail, log  # noqa: E402

CAUSES = ["driver", "deadline", "encoder", "backpressure", "store"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-dir", required=True)
    ap.add_argument("--blackbox", required=True)
    ap.add_argument("--port", type=int, default=18481)
    ap.add_argument("--window", type=float, default=20.0, help="seconds recorded at each latency")
    ap.add_argument("--latencies", default="0,100,300,1000", help="ms per FLUSH, comma-separated")
    ap.add_argument("--min-pct", type=float, default=99.0)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="slowdisk-")
    camp = Campaign("nbd", 0, 1234, a.port, work, a.image_dir, a.blackbox, 768 << 20)
    failed = []

    def check(what, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail else ""), flush=True)
        if not ok:
            failed.append(what)

    rows = []
    try:
        camp.make_card()
        vm = camp.boot()
        t = camp.wait_recording(vm, None, limit=240)
        log(f"recording {t:.1f} s after power-on")
        # The config on the card, for the host's check after the cut (it must be this one).
        st, _, b = camp.api.request("PUT", "/api/config", {"commit_interval_ms": 500}, timeout=15)
        if st != 200:
            raise Fail(f"PUT /api/config: {st} {b[:300]!r}")
        camp.config = camp.api.json("/api/config")
        camp.config_candidates = [camp.config]
        camp.wait_recording(vm, None)
        for lat in [int(x) for x in a.latencies.split(",")]:
            vm.nbd.flush_latency = lat / 1000.0
            time.sleep(3.0)  # let groups committed under the old latency drain
            s0 = camp.api.json("/api/status", timeout=15)
            time.sleep(a.window)
            s1 = camp.api.json("/api/status", timeout=15)
            stored = s1["frames"] - s0["frames"]
            lost = {c: s1["lost"][c] - s0["lost"][c] for c in CAUSES}
            delivered = s1["delivered"] - s0["delivered"]
            # Frames handed over but not yet stored or dropped (waiting in the ring) at a sample.
            inflight = lambda s: s["delivered"] - s["frames"] - s["lost"]["backpressure"] - s["lost"]["store"]
            settled = delivered - (inflight(s1) - inflight(s0))
            # vivid's own count: its sequence numbers (no reopen happens in this run).
            seq0, seq1 = s0.get("camera_sequence"), s1.get("camera_sequence")
            produced = None if seq0 is None or seq1 is None else seq1 - seq0
            secs = (s1["uptime_s"] - s0["uptime_s"]) or a.window
            rows.append((lat, stored, settled, produced, lost, stored / secs, s1["state"], delivered))
            log(f"+{lat} ms per flush: stored {stored}, delivered {delivered}, vivid produced {produced}; lost {lost}")
        # A power cut at the end: every frame acknowledged before it must be on the card.
        h = camp.api.health()
        camp.watermark = h.get("durable_seq") if h else None
        vm.cut()
        found = camp.host_check(0, None)
        check("after the cut: the card verifies and holds the last acknowledged frame",
              camp.watermark is not None and found.get("last") is not None and found["last"] >= camp.watermark,
              f"watermark {camp.watermark}, last on the card {found.get('last')}")
    except Fail as e:
        check("the run itself", False, str(e))
    finally:
        if camp.vm is not None and camp.vm.alive():
            camp.vm.cut()
    base = rows[0][5] if rows else None
    print("\n| flush + | frames stored | handed over (settled) | vivid produced (sequence) | lost: driver / backpressure / store | stored of handed over | store rate vs +0 ms |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    for lat, stored, settled, produced, lost, rate, state, delivered in rows:
        pct = 100.0 * stored / settled if settled else 0.0
        print(f"| {lat} ms | {stored} | {settled} | {produced} | {lost['driver']} / {lost['backpressure']} / {lost['store']} "
              f"| {pct:.2f} % | {100.0 * rate / base:.1f} % |" if base else "")
    for lat, stored, settled, produced, lost, rate, state, delivered in rows:
        check(f"+{lat} ms: still recording", state == "recording", state)
        check(f"+{lat} ms: the recorder lost nothing itself (backpressure, store)",
              lost["backpressure"] == 0 and lost["store"] == 0, str(lost))
        check(f"+{lat} ms: >= {a.min_pct:g} % of the frames vivid handed over stored",
              settled > 0 and stored >= a.min_pct / 100.0 * settled, f"{stored} of {settled}")
        # Nothing lost silently: what vivid's sequence numbers say it produced is what blackbox
        # received plus what it counted as the driver's (or the encoder's) drops. The two
        # samples read the sequence and the counters a frame apart at most.
        accounted = delivered + lost["driver"] + lost["encoder"]
        check(f"+{lat} ms: every frame vivid produced was received or counted as dropped",
              produced is not None and abs(produced - accounted) <= 2, f"sequence {produced}, received + counted {accounted}")
    if failed:
        log(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("SLOWDISK TEST PASSED" if not failed else f"SLOWDISK TEST FAILED ({len(failed)} checks)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
