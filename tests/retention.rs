//! Retention never eats footage it shouldn't (docs/FORMAT.md, "Retention"; issue 15 point 4):
//! in-process restarts don't leave preallocation counted as footage, protected ranges survive
//! restarts exactly, and protected footage goes only by the protected-cap rule.

use blackbox::camera::{Codec, FrameMeta};
use blackbox::store::reader::Reader;
use blackbox::store::{Store, StoreOptions};

const T0: i64 = 1_795_000_000_000_000_000;
const FRAME_NS: u64 = 33_333_333;

fn meta(seq: u64) -> FrameMeta {
    FrameMeta { mono_ns: 1_000_000_000 + seq * FRAME_NS, utc_ns: T0 + (seq * FRAME_NS) as i64, codec: Codec::Jpeg, key: true, lost_before: 0 }
}

fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i * 7) as u8).collect()
}

fn stored_seqs(dir: &std::path::Path) -> Vec<u64> {
    let r = Reader::open(dir).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let bad = r
        .for_each_in_range(i64::MIN, i64::MAX, &mut buf, |info, _| {
            out.push(info.seq);
            true
        })
        .unwrap();
    assert_eq!(bad, 0);
    out
}

/// The measured case, scaled down: a camera setting changed 8 times, 4 s apart (each change
/// restarts the recorder in process: the store is closed and opened again). The store's first
/// segment after each start is sized from the configured rate, far above what the camera
/// really delivers. Before: every restart left a mostly empty preallocated file that counted
/// against the cap, and retention deleted real footage to make room for emptiness.
#[test]
fn in_process_restarts_keep_the_footage_the_cap_allows() {
    let d = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        segment_length_ns: 60_000_000_000,
        commit_interval_ns: 500_000_000,
        commit_frames: 30,
        // About 6 MiB of footage per 4 s; the configured guess says 4 MiB/s (a 300 MiB segment).
        storage_cap_bytes: 1 << 30,
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 4 << 20,
    };
    let mut seq = 1u64;
    for _restart in 0..8 {
        let mut s = Store::open(d.path(), o.clone()).unwrap();
        for _ in 0..120 {
            s.append_frame(&meta(seq), &payload(seq, 50_000)).unwrap();
            seq += 1;
        }
        s.close().unwrap();
    }
    let kept = stored_seqs(d.path());
    let secs = kept.len() as f64 * FRAME_NS as f64 / 1e9;
    eprintln!("8 in-process restarts, 1 GiB cap: {} of {} frames kept ({secs:.1} s of {:.1} s)", kept.len(), seq - 1, (seq - 1) as f64 * FRAME_NS as f64 / 1e9);
    // 48 MB of footage under a 1 GiB cap: every frame must still be there.
    assert!(kept == (1..seq).collect::<Vec<_>>(), "footage lost to preallocation: {} of {} frames kept, first {:?}", kept.len(), seq - 1, kept.first());
    // And the disk holds footage, not emptiness: closed segments are trimmed to their used bytes.
    let on_disk: u64 = std::fs::read_dir(d.path().join("segments"))
        .unwrap()
        .map(|e| {
            use std::os::unix::fs::MetadataExt;
            e.unwrap().metadata().unwrap().blocks() * 512
        })
        .sum();
    let footage = 8 * 120 * 50_000u64;
    eprintln!("on disk: {} MiB for {} MiB of footage", on_disk >> 20, footage >> 20);
    assert!(on_disk < footage * 2, "{on_disk} bytes on disk for {footage} bytes of footage");
}

/// Protected ranges come back exactly after a restart, whatever their ends (nanoseconds, the
/// earliest and latest representable times, reversed ends), and overlapping ones merge.
#[test]
fn protected_ranges_survive_restarts_exactly() {
    let d = tempfile::tempdir().unwrap();
    let o = StoreOptions { min_free_bytes: 0, ..StoreOptions::default() };
    let mut s = Store::open(d.path(), o.clone()).unwrap();
    s.protect(i64::MIN, T0 - 7).unwrap();
    s.protect(T0 + 123_456_789, T0 + 123_456_790).unwrap();
    s.protect(T0 + 2_000_000_001, T0 + 1_999_999_999).unwrap(); // reversed
    s.protect(T0 + 5_000_000_000, i64::MAX).unwrap();
    s.protect(T0 + 4_000_000_000, T0 + 6_000_000_000).unwrap(); // overlaps the last: merged
    let want = s.protected().clone();
    assert_eq!(want.ranges.len(), 4, "{want:?}");
    s.close().unwrap();
    let s = Store::open(d.path(), o).unwrap();
    assert_eq!(s.protected(), &want, "protected ranges changed across a restart");
    assert_eq!(want.ranges[0], (i64::MIN, T0 - 7));
    assert_eq!(want.ranges[3], (T0 + 4_000_000_000, i64::MAX));
}

#[test]
fn protected_ranges_are_bounded() {
    use blackbox::store::catalog::{Protected, MAX_PROTECTED_RANGES};
    let mut p = Protected::default();
    for i in 0..MAX_PROTECTED_RANGES as i64 {
        p.add(i * 10, i * 10 + 5).unwrap();
    }
    assert!(p.add(-100, -50).is_err(), "a range past the limit was accepted");
    // A range that merges others still fits.
    p.add(0, 95).unwrap();
    assert_eq!(p.ranges.len(), MAX_PROTECTED_RANGES - 9);
    assert_eq!(p.ranges[0], (0, 95));
}

// --- the stateful test ---------------------------------------------------------------------------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One segment as seen from outside: identity (its first seq), frames, footage bytes, UTC span.
#[derive(Clone, Debug)]
struct Seg {
    first: u64,
    frames: u64,
    used: u64,
    span: (i64, i64),
    closed: bool,
}

fn catalog(dir: &std::path::Path) -> Vec<Seg> {
    let r = Reader::open(dir).unwrap();
    r.segments()
        .iter()
        .map(|s| Seg {
            first: s.first_seq,
            frames: s.frames,
            used: s.used_bytes,
            span: (s.start_utc_ns, s.end_utc_ns),
            closed: s.open_frames.is_none(),
        })
        .collect()
}

fn options(rng: &mut Rng) -> StoreOptions {
    StoreOptions {
        segment_length_ns: (1 + rng.below(4)) * 1_000_000_000,
        commit_interval_ns: 500_000_000,
        commit_frames: 1 + rng.below(30) as u32,
        storage_cap_bytes: (24 + rng.below(40)) << 20,
        min_free_bytes: 0,
        protected_cap_percent: 10 + rng.below(81) as u8,
        fps: 30,
        // The configured guess the first segment after a start is sized from: often far off.
        expected_bytes_per_s: (1 + rng.below(16)) << 19,
    }
}

/// Random camera-setting changes (in-process restarts with other options), power cuts (the
/// store dropped without closing: what a kill -9 leaves), protects and unprotects of odd ranges,
/// and footage, from a seeded RNG. After every step: no protected segment went missing except by
/// the protected-cap rule (oldest first, counted) or as the last resort; unprotected footage
/// goes oldest first; no acknowledged frame is lost otherwise; and the footage kept is what the
/// cap allows, not far less. `BB_RETENTION_SEED` and `BB_RETENTION_SECS` (default 40) steer it.
#[test]
fn stateful_retention_keeps_what_it_must() {
    let seed: u64 = std::env::var("BB_RETENTION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_2026_1205);
    let secs: u64 = std::env::var("BB_RETENTION_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    eprintln!("stateful retention: seed {seed} ({secs} s; BB_RETENTION_SEED to replay)");
    let mut rng = Rng(seed | 1);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let mut o = options(&mut rng);
    let mut s = Some(Store::open(dir, o.clone()).unwrap());
    let mut seq = 1u64;
    let mut utc = T0;
    let mut mono = 1_000_000_000u64;
    let started = std::time::Instant::now();
    let (mut steps, mut restarts, mut cuts, mut prot_deleted, mut deleted_steps) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut max_seg_used = 0u64;
    while started.elapsed().as_secs() < secs {
        steps += 1;
        let store = s.as_mut().unwrap();
        let before = catalog(dir);
        let prot = store.protected().clone();
        let pcap = o.storage_cap_bytes / 100 * o.protected_cap_percent as u64;
        let covered = |g: &Seg| prot.covers(g.span.0, g.span.1);
        let durable_before = store.durable_seq();
        let st0 = store.stats();
        let op = rng.below(100);
        let mut appended = 0u64;
        let what;
        if op < 50 {
            what = "append";
            let n = 1 + rng.below(90);
            for _ in 0..n {
                let len = 20_000 + rng.below(100_000) as usize;
                let m = FrameMeta { mono_ns: mono, utc_ns: utc, codec: Codec::Jpeg, key: true, lost_before: 0 };
                store.append_frame(&m, &payload(seq, len)).unwrap_or_else(|e| panic!("step {steps}: append failed: {e}"));
                seq += 1;
                appended += len as u64;
                mono += FRAME_NS;
                utc += FRAME_NS as i64;
            }
        } else if op < 60 {
            what = "restart";
            restarts += 1;
            s.take().unwrap().close().unwrap();
            if rng.below(2) == 0 {
                o = options(&mut rng);
            }
            s = Some(Store::open(dir, o.clone()).unwrap());
            assert_eq!(s.as_ref().unwrap().protected(), &prot, "step {steps}: protected ranges changed across a restart");
        } else if op < 67 {
            what = "power cut";
            cuts += 1;
            drop(s.take());
            s = Some(Store::open(dir, o.clone()).unwrap());
            assert_eq!(s.as_ref().unwrap().protected(), &prot, "step {steps}: protected ranges changed across a power cut");
            seq = s.as_ref().unwrap().next_seq();
        } else if op < 82 {
            what = "protect";
            let (a, b) = odd_range(&mut rng, T0, utc);
            store.protect(a, b).unwrap();
        } else if op < 92 {
            what = "unprotect";
            let (a, b) = odd_range(&mut rng, T0, utc);
            store.unprotect(a, b).unwrap();
        } else {
            what = "commit";
            store.commit().unwrap();
        }
        let store = s.as_ref().unwrap();
        let st = store.stats();
        let after = catalog(dir);
        for g in &after {
            max_seg_used = max_seg_used.max(g.used);
        }
        // Retention runs when a segment starts: then what counts against the cap fits it.
        if st.segments_started > st0.segments_started {
            assert!(store.used_bytes() <= o.storage_cap_bytes, "step {steps}: {} over the cap {}", store.used_bytes(), o.storage_cap_bytes);
        }
        let find = |first: u64| after.iter().find(|g| g.first == first);
        let missing: Vec<&Seg> = before.iter().filter(|g| g.frames > 0 && find(g.first).is_none()).collect();
        // No segment loses acknowledged frames: a segment still there holds at least the frames
        // it had (a power cut may cut an open segment's unacknowledged tail only).
        for g in &before {
            if let Some(h) = find(g.first) {
                let acked_before = match durable_before {
                    Some(d) if d >= g.first => (d - g.first + 1).min(g.frames),
                    _ => 0,
                };
                let keep = if what == "power cut" { acked_before } else { g.frames };
                assert!(h.frames >= keep, "step {steps} ({what}): segment {} lost frames: {} -> {}", g.first, g.frames, h.frames);
            }
        }
        if missing.is_empty() {
            continue;
        }
        assert_eq!(what, "append", "step {steps}: segments went missing in a {what}: {missing:?}");
        deleted_steps += 1;
        let gone = (st.deleted + st.recycled) - (st0.deleted + st0.recycled);
        assert!(gone >= missing.len() as u64, "step {steps}: {} segments missing, {gone} deleted or recycled", missing.len());
        let p_missing: Vec<&&Seg> = missing.iter().filter(|g| covered(g)).collect();
        let u_missing: Vec<&&Seg> = missing.iter().filter(|g| !covered(g)).collect();
        // Unprotected footage goes oldest first.
        if let Some(newest_gone) = u_missing.iter().map(|g| g.first).max() {
            let older_kept = after.iter().filter(|g| g.closed && !covered(g) && g.first < newest_gone).count();
            assert_eq!(older_kept, 0, "step {steps}: an unprotected segment older than a deleted one is still there");
        }
        if !p_missing.is_empty() {
            prot_deleted += p_missing.len() as u64;
            let counted = st.protected_deleted - st0.protected_deleted;
            assert!(counted >= p_missing.len() as u64, "step {steps}: {} protected segments missing, {counted} counted", p_missing.len());
            // Oldest first among protected ones.
            let newest_gone = p_missing.iter().map(|g| g.first).max().unwrap();
            let older_kept = after.iter().filter(|g| g.closed && covered(g) && g.first < newest_gone).count();
            assert_eq!(older_kept, 0, "step {steps}: a protected segment older than a deleted protected one is still there");
            // Justified: protected footage was over its cap (rule 1), or no unprotected footage
            // was left to take (the last resort).
            let p_before: u64 = before.iter().filter(|g| covered(g)).map(|g| g.used).sum();
            let u_left = after.iter().filter(|g| g.closed && !covered(g)).count();
            assert!(
                p_before + appended > pcap || u_left == 0,
                "step {steps}: protected footage deleted with {p_before} + {appended} bytes protected under a cap of {pcap} and {u_left} unprotected segments left"
            );
        } else if st.protected_deleted == st0.protected_deleted {
            // (When the store counted a protected deletion the spans from before the step did
            // not show, the open segment grew into a protected range during this step's appends
            // and was sealed and deleted by the protected-cap rule: nothing to bound here.)
            // The footage kept is what the cap allows: after retention made room, what counts
            // against the cap (footage + the open segment's preallocation) is within one
            // segment of the cap.
            let counted = store.used_bytes();
            assert!(
                counted + 2 * max_seg_used.max(o.storage_cap_bytes / 8) >= o.storage_cap_bytes,
                "step {steps}: retention left {counted} bytes counted under a cap of {} (segments up to {max_seg_used})\noptions {o:?}\nbefore {before:?}\nafter {after:?}\nstats {st:?}",
                o.storage_cap_bytes
            );
        }
    }
    s.take().unwrap().close().unwrap();
    let rep = blackbox::store::verify::verify(dir).unwrap();
    assert!(rep.ok(), "{rep:?}");
    eprintln!(
        "stateful retention: {steps} steps, {restarts} restarts, {cuts} power cuts, {deleted_steps} steps deleted footage, {prot_deleted} protected segments deleted by the rules; {} frames written",
        seq - 1
    );
    assert!(deleted_steps > 5 && restarts > 5 && cuts > 3, "the run did not exercise retention");
}

/// A protect/unprotect range: around recent footage, everything, a nanosecond, the extremes,
/// or reversed ends.
fn odd_range(rng: &mut Rng, t0: i64, now: i64) -> (i64, i64) {
    let span = (now - t0).max(1);
    let at = t0 + rng.below(span as u64) as i64;
    match rng.below(6) {
        0 => (at, at + rng.below(5_000_000_000) as i64),
        1 => (i64::MIN, at),
        2 => (at, i64::MAX),
        3 => (at, at),
        4 => (now, now - rng.below(3_000_000_000) as i64), // reversed, ending in the future
        _ => (at - rng.below(2_000_000_000) as i64, at - 1),
    }
}

/// Offload's part in retention (docs/FORMAT.md, "Retention"; issue 17): the segment an upload
/// is reading (pinned) is not recycled while other footage can go; protected footage with a
/// verified offloaded copy goes before older protected footage without one; and the copy-less
/// one, when it must go, is counted as such.
#[test]
fn retention_spares_the_segment_being_uploaded_and_takes_verified_copies_first() {
    use blackbox::store::catalog;
    use blackbox::store::hints::RetentionHints;
    let d = tempfile::tempdir().unwrap();
    let hints = RetentionHints::for_dir(d.path());
    let opts = |pct: u8| StoreOptions {
        segment_length_ns: 1_000_000_000,
        commit_interval_ns: 500_000_000,
        commit_frames: 30,
        storage_cap_bytes: 20 << 20,
        min_free_bytes: 0,
        protected_cap_percent: pct,
        fps: 30,
        expected_bytes_per_s: 3 << 20,
    };
    let mut seq = 1u64;
    // One segment of 30 frames x 100 KB (3 MB, one second) per call.
    let mut segment = |pct: u8| {
        let mut s = Store::open(d.path(), opts(pct)).unwrap();
        for _ in 0..30 {
            s.append_frame(&meta(seq), &payload(seq, 100_000)).unwrap();
            seq += 1;
        }
        s.close().unwrap()
    };
    let closed = || catalog::list(&d.path().join("segments")).unwrap().closed;
    segment(50);
    segment(50);
    let first = closed();
    assert_eq!(first.len(), 2);
    {
        let mut s = Store::open(d.path(), opts(50)).unwrap();
        for c in &first {
            s.protect(c.start_utc_ns, c.end_utc_ns).unwrap();
        }
        s.close().unwrap();
    }
    let (old_prot, new_prot) = (first[0].first_seq, first[1].first_seq);
    hints.add_verified(new_prot);
    segment(50);
    let pinned = closed().iter().map(|c| c.first_seq).max().unwrap();
    hints.pin(Some(pinned));
    let mut deleted_unprotected: Vec<u64> = Vec::new();
    for _ in 0..10 {
        let before: Vec<u64> = closed().iter().map(|c| c.first_seq).collect();
        segment(50);
        let after: Vec<u64> = closed().iter().map(|c| c.first_seq).collect();
        deleted_unprotected.extend(before.iter().filter(|s| !after.contains(s)));
        assert!(after.contains(&pinned), "the segment being uploaded was recycled");
        assert!(after.contains(&old_prot) && after.contains(&new_prot), "protected footage went while unprotected footage was left");
    }
    assert!(deleted_unprotected.len() >= 3, "the cap never made retention act: {deleted_unprotected:?}");
    assert!(deleted_unprotected.windows(2).all(|w| w[0] < w[1]), "unprotected footage goes oldest first: {deleted_unprotected:?}");
    // The protected cap shrinks to 20 % (4 MiB) of the cap: one of the two protected segments
    // (3 MB each) must go. The newer one has a verified copy: it goes, not the older one.
    let st = segment(20);
    let after: Vec<u64> = closed().iter().map(|c| c.first_seq).collect();
    assert!(!after.contains(&new_prot) && after.contains(&old_prot), "the verified copy goes first: {after:?}");
    assert_eq!((st.protected_deleted, st.protected_deleted_unoffloaded), (1, 0));
    // Down to 10 % (2 MiB): the copy-less one must go too, and is counted as such.
    let st = segment(10);
    assert!(!closed().iter().any(|c| c.first_seq == old_prot));
    assert_eq!((st.protected_deleted, st.protected_deleted_unoffloaded), (1, 1));
    hints.pin(None);
}
