//! The UTC clock may jump (docs/FORMAT.md: the Pi has no RTC). A segment's time span must
//! therefore be the earliest..latest capture time of its frames, not first..last: otherwise,
//! after a backward jump inside a segment, the frames captured after it fall outside the span,
//! a UTC range lookup skips them and protection does not cover them (retention would delete
//! protected footage). These tests failed before closed names carried min..max.

use blackbox::camera::{Codec, FrameMeta};
use blackbox::store::reader::Reader;
use blackbox::store::{Store, StoreOptions};

const T0: i64 = 1_795_000_000_000_000_000;
const FRAME_NS: u64 = 33_333_333;
const HOUR: i64 = 3_600_000_000_000;
/// Frames from this seq on were captured after the UTC clock was set back by an hour.
const JUMP_AT: u64 = 15;

fn payload(seq: u64) -> Vec<u8> {
    let len = 500 + (seq.wrapping_mul(7919) % 3000) as usize;
    (0..len).map(|i| (seq as usize * 31 + i * 7) as u8).collect()
}

/// Monotonic time runs on; UTC jumps back an hour at `JUMP_AT`.
fn meta(seq: u64) -> FrameMeta {
    let mono = seq * FRAME_NS;
    let utc = if seq < JUMP_AT { T0 + mono as i64 } else { T0 - HOUR + mono as i64 };
    FrameMeta { mono_ns: 1_000_000_000 + mono, utc_ns: utc, codec: Codec::Jpeg, key: true, lost_before: 0 }
}

fn opts() -> StoreOptions {
    StoreOptions {
        segment_length_ns: 1_000_000_000,
        commit_interval_ns: 500_000_000,
        commit_frames: 30,
        storage_cap_bytes: 1 << 40,
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 1 << 20,
    }
}

fn write(store: &mut Store, from: u64, to: u64) {
    for seq in from..to {
        assert_eq!(store.next_seq(), seq);
        store.append_frame(&meta(seq), &payload(seq)).unwrap();
    }
}

#[test]

fn time_range_lookup_finds_frames_captured_after_a_backward_clock_jump() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 25); // one segment: frames 1..=24, UTC set back before frame 15
    s.close().unwrap();
    let r = Reader::open(d.path()).unwrap();
    let (from, to) = (meta(JUMP_AT).utc_ns, meta(24).utc_ns);
    let mut seqs = Vec::new();
    let mut buf = Vec::new();
    r.for_each_in_range(from, to, &mut buf, |i, data| {
        assert_eq!(data, payload(i.seq));
        seqs.push(i.seq);
        true
    })
    .unwrap();
    assert_eq!(seqs, (JUMP_AT..=24).collect::<Vec<_>>(), "frames captured in {from}..={to} (UTC) not found by time");
}

#[test]

fn protection_keeps_frames_captured_after_a_backward_clock_jump() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.storage_cap_bytes = 13 << 20; // three 4 MiB segments: retention runs from the fourth on
    let mut s = Store::open(d.path(), o).unwrap();
    // Save the footage captured after the jump, in the first segment (frames 15..=29).
    let (from, to) = (meta(JUMP_AT).utc_ns, meta(29).utc_ns);
    s.protect(from, to).unwrap();
    write(&mut s, 1, 300); // ten segments; the protected one must survive retention
    s.close().unwrap();
    let r = Reader::open(d.path()).unwrap();
    let mut buf = Vec::new();
    let kept: Vec<u64> = (JUMP_AT..=29).filter(|&q| r.frame_by_seq(q, &mut buf).unwrap().is_some()).collect();
    assert_eq!(kept, (JUMP_AT..=29).collect::<Vec<_>>(), "protected frames (UTC {from}..={to}) were deleted by retention");
}

/// The same through a crash: the read-only recovery of the open segment and the writable
/// recovery that seals it must both give the segment its whole UTC span.
#[test]

fn time_range_lookup_after_a_backward_clock_jump_survives_a_crash() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.segment_length_ns = 10_000_000_000;
    o.commit_frames = 5;
    let mut s = Store::open(d.path(), o).unwrap();
    write(&mut s, 1, 25);
    s.commit().unwrap();
    drop(s); // a crash: the segment stays `.open`
    let (from, to) = (meta(JUMP_AT).utc_ns, meta(24).utc_ns);
    let lookup = || {
        let r = Reader::open(d.path()).unwrap();
        let mut seqs = Vec::new();
        let mut buf = Vec::new();
        r.for_each_in_range(from, to, &mut buf, |i, _| {
            seqs.push(i.seq);
            true
        })
        .unwrap();
        seqs
    };
    assert_eq!(lookup(), (JUMP_AT..=24).collect::<Vec<_>>(), "read-only recovery of the open segment");
    drop(Store::open(d.path(), opts()).unwrap()); // writable recovery seals and renames it
    assert_eq!(lookup(), (JUMP_AT..=24).collect::<Vec<_>>(), "after writable recovery");
}
