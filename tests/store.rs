//! Guarantees of the segment store (docs/FORMAT.md), each test named after the one it checks.

use blackbox::camera::{Codec, FrameMeta};
use blackbox::store::reader::Reader;
use blackbox::store::verify::verify;
use blackbox::store::{Store, StoreOptions};
use std::fs;
use std::path::{Path, PathBuf};

const T0: i64 = 1_795_000_000_000_000_000;
const FRAME_NS: u64 = 33_333_333;

fn payload(seq: u64) -> Vec<u8> {
    let len = 500 + (seq.wrapping_mul(7919) % 9000) as usize;
    (0..len).map(|i| (seq as usize * 31 + i * 7) as u8).collect()
}

fn meta(seq: u64) -> FrameMeta {
    FrameMeta { mono_ns: 1_000_000_000 + seq * FRAME_NS, utc_ns: T0 + (seq * FRAME_NS) as i64, codec: Codec::Jpeg, key: true, lost_before: 0 }
}

fn opts() -> StoreOptions {
    StoreOptions {
        segment_length_ns: 2_000_000_000,
        commit_interval_ns: 500_000_000,
        commit_frames: 30,
        storage_cap_bytes: 1 << 40,
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 200_000,
    }
}

/// Writes frames `from..to` (1-based seq) through a store.
fn write(store: &mut Store, from: u64, to: u64) {
    for seq in from..to {
        assert_eq!(store.next_seq(), seq);
        store.append_frame(&meta(seq), &payload(seq)).unwrap();
    }
}

fn all_frames(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let r = Reader::open(dir).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let bad = r
        .for_each_in_range(i64::MIN, i64::MAX, &mut buf, |info, data| {
            out.push((info.seq, data.to_vec()));
            true
        })
        .unwrap();
    assert_eq!(bad, 0, "reader skipped damaged frames");
    out
}

fn assert_frames_are(dir: &Path, first: u64, last: u64) {
    let got = all_frames(dir);
    let seqs: Vec<u64> = got.iter().map(|f| f.0).collect();
    let want: Vec<u64> = (first..=last).collect();
    assert_eq!(seqs, want);
    for (seq, data) in got {
        assert_eq!(data, payload(seq), "frame {seq} content differs");
    }
}

fn open_segment(dir: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "open"))
        .collect();
    assert_eq!(v.len(), 1, "expected one open segment: {v:?}");
    v.pop().unwrap()
}

#[test]
fn frames_round_trip_across_segment_boundaries() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 200); // 2 s segments at 30 fps: 4 segments
    let stats = s.close().unwrap();
    assert!(stats.segments_closed >= 3, "{stats:?}");
    assert_frames_are(d.path(), 1, 199);
    let r = Reader::open(d.path()).unwrap();
    let mut buf = Vec::new();
    let info = r.frame_by_seq(123, &mut buf).unwrap().unwrap();
    assert_eq!((info.seq, info.utc_ns), (123, meta(123).utc_ns));
    assert_eq!(buf, payload(123));
    assert!(r.frame_by_seq(500, &mut buf).unwrap().is_none());
    // Time range: exactly the frames captured inside it.
    let (from, to) = (meta(55).utc_ns, meta(70).utc_ns);
    let mut seqs = Vec::new();
    r.for_each_in_range(from, to, &mut buf, |i, _| {
        seqs.push(i.seq);
        true
    })
    .unwrap();
    assert_eq!(seqs, (55..=70).collect::<Vec<_>>());
    let rep = verify(d.path()).unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert_eq!((rep.frames, rep.first_seq, rep.last_seq, rep.durable_seq), (199, Some(1), Some(199), Some(199)));
}

#[test]
fn durable_watermark_moves_only_at_commit() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.commit_frames = 10;
    o.commit_interval_ns = u64::MAX / 4;
    let mut s = Store::open(d.path(), o).unwrap();
    write(&mut s, 1, 10);
    assert_eq!(s.durable_seq(), None);
    write(&mut s, 10, 11);
    assert_eq!(s.durable_seq(), Some(10));
    write(&mut s, 11, 15);
    assert_eq!(s.durable_seq(), Some(10));
    assert!(s.commit().unwrap());
    assert_eq!(s.durable_seq(), Some(14));
}

#[test]
fn commits_end_on_block_boundaries_and_never_rewrite_committed_blocks() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.commit_frames = 3;
    let mut s = Store::open(d.path(), o).unwrap();
    write(&mut s, 1, 4);
    let seg = open_segment(d.path());
    let after_first = fs::read(&seg).unwrap();
    // Everything up to the first commit's end is in full blocks that stay as they are.
    let r = Reader::open(d.path()).unwrap();
    let commit_end = r.recovered.open[0].open_commit_end as usize;
    assert_eq!(commit_end % 4096, 0);
    write(&mut s, 4, 40);
    let later = fs::read(&seg).unwrap();
    assert_eq!(&after_first[..commit_end], &later[..commit_end], "a committed block was rewritten");
}

#[test]
fn acked_frames_survive_crash_and_recovery_seals_open_segment() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 100);
    let durable = s.durable_seq().unwrap();
    drop(s); // a crash: no close, the segment stays `.open`
    let rep = verify(d.path()).unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert!(rep.durable_seq.unwrap() >= durable);
    assert_eq!(rep.open_segments, 1);
    // Reopening recovers: the open segment is sealed, numbering continues.
    let mut s = Store::open(d.path(), opts()).unwrap();
    assert_eq!(s.next_seq(), 100);
    write(&mut s, 100, 150);
    s.close().unwrap();
    assert_frames_are(d.path(), 1, 149);
    let rep = verify(d.path()).unwrap();
    assert!(rep.ok() && rep.open_segments == 0, "{rep:?}");
}

/// Cuts the open segment's file at every offset over its last records and checks that
/// recovery keeps exactly the frames that lie wholly before the cut.
#[test]
fn every_truncation_point_of_the_tail_keeps_exactly_the_intact_prefix() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.commit_frames = 4;
    o.segment_length_ns = u64::MAX / 4;
    let mut s = Store::open(d.path(), o).unwrap();
    write(&mut s, 1, 30);
    drop(s);
    let seg = open_segment(d.path());
    let orig = fs::read(&seg).unwrap();
    let frames = Reader::open(d.path()).unwrap().recovered.open[0].open_frames.clone().unwrap();
    let ends: Vec<u64> = frames.iter().enumerate().map(|(i, e)| e.offset + blackbox::store::record::record_len(payload(i as u64 + 1).len() as u64)).collect();
    let tail_from = frames[frames.len() - 6].offset;
    let tail_to = *ends.last().unwrap() + 4096;
    // One copy of the file, cut shorter and shorter: every offset from the end of the tail
    // down to the start of the sixth-last frame.
    let wd = tempfile::tempdir().unwrap();
    fs::create_dir_all(wd.path().join("segments")).unwrap();
    let target = wd.path().join("segments").join(seg.file_name().unwrap());
    fs::write(&target, &orig[..(tail_to as usize).min(orig.len())]).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&target).unwrap();
    for cut in (tail_from..=tail_to).rev() {
        f.set_len(cut).unwrap();
        let intact = ends.iter().filter(|&&e| e <= cut).count() as u64;
        let got = all_frames(wd.path());
        assert_eq!(got.len() as u64, intact, "cut at {cut}");
        for (seq, data) in &got {
            assert_eq!(data, &payload(*seq));
        }
        if cut % 997 == 0 {
            // Writable recovery too (on a copy), then the store carries on.
            let cd = tempfile::tempdir().unwrap();
            fs::create_dir_all(cd.path().join("segments")).unwrap();
            fs::copy(&target, cd.path().join("segments").join(seg.file_name().unwrap())).unwrap();
            let mut s = Store::open(cd.path(), opts()).unwrap();
            assert_eq!(s.next_seq(), intact + 1);
            s.append_frame(&meta(intact + 1), &payload(intact + 1)).unwrap();
            s.close().unwrap();
            assert_frames_are(cd.path(), 1, intact + 1);
        }
    }
}

/// Flips random bits in the last records: recovery keeps the frames before the first damaged
/// record, never returns a damaged one, never panics.
#[test]
fn bit_flips_in_the_tail_never_yield_a_damaged_frame() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.segment_length_ns = u64::MAX / 4;
    let mut s = Store::open(d.path(), o).unwrap();
    write(&mut s, 1, 40);
    drop(s);
    let seg = open_segment(d.path());
    let orig = fs::read(&seg).unwrap();
    let frames = Reader::open(d.path()).unwrap().recovered.open[0].open_frames.clone().unwrap();
    let tail_from = frames[frames.len() - 8].offset as usize;
    let tail_to = (frames.last().unwrap().offset as usize + 48 + payload(39).len()).min(orig.len());
    let mut rng = 0x9e3779b97f4a7c15u64;
    let wd = tempfile::tempdir().unwrap();
    fs::create_dir_all(wd.path().join("segments")).unwrap();
    let target = wd.path().join("segments").join(seg.file_name().unwrap());
    let trimmed = &orig[..(tail_to + 8192).min(orig.len())];
    for round in 0..300 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let pos = tail_from + (rng as usize % (tail_to - tail_from));
        let bit = (rng >> 40) % 8;
        let mut bytes = trimmed.to_vec();
        bytes[pos] ^= 1 << bit;
        fs::write(&target, &bytes).unwrap();
        // The damaged record is the last one starting at or before `pos`.
        let damaged = frames.iter().rposition(|e| e.offset as usize <= pos).unwrap() as u64 + 1;
        let got = all_frames(wd.path());
        let seqs: Vec<u64> = got.iter().map(|f| f.0).collect();
        let pad_hit = pos as u64 >= frames[damaged as usize - 1].offset + 48 + payload(damaged).len() as u64;
        if pad_hit {
            // A flip in the zero padding after the payload is outside every CRC: harmless.
            assert!(seqs.len() as u64 >= damaged, "round {round}");
        } else {
            assert_eq!(seqs, (1..damaged).collect::<Vec<_>>(), "round {round}: flip at {pos}");
        }
        for (seq, data) in &got {
            assert_eq!(data, &payload(*seq));
        }
        if round % 10 == 0 {
            let cd = tempfile::tempdir().unwrap();
            fs::create_dir_all(cd.path().join("segments")).unwrap();
            fs::copy(&target, cd.path().join("segments").join(seg.file_name().unwrap())).unwrap();
            let s = Store::open(cd.path(), opts()).unwrap();
            s.close().unwrap();
            assert!(verify(cd.path()).unwrap().ok());
        }
    }
}

#[test]
fn damage_inside_acknowledged_data_fails_verify() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.commit_frames = 5;
    let mut s = Store::open(d.path(), o).unwrap();
    write(&mut s, 1, 40); // some closed segments, an open one
    drop(s);
    assert!(verify(d.path()).unwrap().ok());
    // Damage an early committed frame of the open segment: later groups prove it was acked.
    let seg = open_segment(d.path());
    let frames = Reader::open(d.path()).unwrap().recovered.open[0].open_frames.clone().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[frames[1].offset as usize + 60] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();
    let rep = verify(d.path()).unwrap();
    assert!(!rep.ok(), "damage before a later commit group must be fatal: {rep:?}");
    // Damage in a closed segment's frame is fatal too, and the reader skips that frame.
    let d2 = tempfile::tempdir().unwrap();
    let mut s = Store::open(d2.path(), opts()).unwrap();
    write(&mut s, 1, 20);
    s.close().unwrap();
    let closed: PathBuf = fs::read_dir(d2.path().join("segments")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = fs::read(&closed).unwrap();
    bytes[4096 + 100] ^= 1;
    fs::write(&closed, &bytes).unwrap();
    let rep = verify(d2.path()).unwrap();
    assert!(!rep.ok());
    let r = Reader::open(d2.path()).unwrap();
    let mut buf = Vec::new();
    let mut seqs = Vec::new();
    let bad = r.for_each_in_range(i64::MIN, i64::MAX, &mut buf, |i, _| { seqs.push(i.seq); true }).unwrap();
    assert_eq!(bad, 1);
    assert_eq!(seqs, (2..20).collect::<Vec<_>>());
}

#[test]
fn recycled_segments_never_validate_stale_records() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.segment_length_ns = 1_000_000_000;
    o.expected_bytes_per_s = 1 << 20;
    // Cap: about three segments of 4 MiB, so retention recycles the oldest.
    // The cap counts footage: 13 MiB is about 90 s of these frames.
    o.storage_cap_bytes = 13 << 20;
    let mut s = Store::open(d.path(), o.clone()).unwrap();
    write(&mut s, 1, 4000);
    let st = s.stats();
    assert!(st.recycled > 0, "{st:?}");
    drop(s); // crash with a recycled file open: its old records are in the tail
    let rep = verify(d.path()).unwrap();
    assert!(rep.ok(), "{rep:?}");
    let got = all_frames(d.path());
    let first = got[0].0;
    assert_eq!(got.iter().map(|f| f.0).collect::<Vec<_>>(), (first..4000).collect::<Vec<_>>());
    for (seq, data) in &got {
        assert_eq!(data, &payload(*seq));
    }
    let used: u64 = fs::read_dir(d.path().join("segments")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(used <= 13 << 20, "recordings use {used} bytes, over the cap");
}

#[test]
fn retention_deletes_oldest_unprotected_first_and_caps_protected() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.segment_length_ns = 1_000_000_000;
    o.expected_bytes_per_s = 1 << 20;
    o.storage_cap_bytes = 25 << 20; // about 6 segments of 4 MiB
    o.protected_cap_percent = 40; // at most 2 protected segments
    let mut s = Store::open(d.path(), o.clone()).unwrap();
    // Protect the first 1.5 s and seconds 4..6: four 1 s segments of about 2.7 MB each.
    s.protect(meta(1).utc_ns, meta(45).utc_ns).unwrap();
    s.protect(meta(125).utc_ns, meta(170).utc_ns).unwrap();
    let big = |seq: u64| (0..90_000).map(|i| (seq as usize * 31 + i * 7) as u8).collect::<Vec<u8>>();
    for seq in 1..600 {
        s.append_frame(&meta(seq), &big(seq)).unwrap();
    }
    let st = s.stats();
    s.close().unwrap();
    let r = Reader::open(d.path()).unwrap();
    let segs = r.segments();
    let prot: Vec<_> = segs.iter().filter(|x| s_protected(x, &r)).collect();
    // Protected cap 40% of 25 MiB = 10 MiB of footage: three of the four protected segments
    // fit; the oldest went, by that rule alone.
    let pbytes: u64 = prot.iter().map(|x| x.used_bytes).sum();
    assert_eq!(prot.len(), 3, "{} protected segments kept", prot.len());
    assert!(pbytes <= 10 << 20, "{pbytes}");
    assert_eq!(st.protected_deleted, 1, "{st:?}");
    assert!(prot[0].first_seq > 30, "the oldest protected segment should have gone first");
    // The newest footage is always there.
    assert_eq!(segs.last().unwrap().last_seq(), Some(599));
    // Footage stays under the cap, and fills it: not far less than it allows.
    let total: u64 = segs.iter().map(|x| x.used_bytes).sum();
    assert!((15 << 20..=25 << 20).contains(&total), "{total}");
    assert!(verify(d.path()).unwrap().ok());
}

fn s_protected(seg: &blackbox::store::catalog::SegmentInfo, _r: &Reader) -> bool {
    seg.start_utc_ns <= meta(170).utc_ns && seg.end_utc_ns >= meta(1).utc_ns && seg.first_seq < 200
}

#[test]
fn crash_between_create_and_header_sync_recovers() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 50);
    s.close().unwrap();
    // A segment file that was created and preallocated, but whose header never landed.
    let name = blackbox::store::names::SegName::Open { start_utc_ns: T0 + 10_000_000_000, first_seq: 50 }.format();
    fs::write(d.path().join("segments").join(name.as_str()), vec![0u8; 8192]).unwrap();
    // A leftover temp file from an interrupted config or protected-range write.
    fs::write(d.path().join("segments").join("x.tmp"), b"junk").unwrap();
    assert!(verify(d.path()).unwrap().ok());
    let mut s = Store::open(d.path(), opts()).unwrap();
    assert_eq!(s.next_seq(), 50);
    write(&mut s, 50, 60);
    s.close().unwrap();
    assert_frames_are(d.path(), 1, 59);
}

#[test]
fn crash_between_seal_and_rename_recovers() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 30);
    s.close().unwrap();
    // Rename the closed segment back to its open name: as if the rename never happened.
    let seg = fs::read_dir(d.path().join("segments")).unwrap().next().unwrap().unwrap().path();
    let n = blackbox::store::names::SegName::parse(seg.file_name().unwrap().to_str().unwrap()).unwrap();
    let open = blackbox::store::names::SegName::Open { start_utc_ns: n.start_utc_ns(), first_seq: n.first_seq() }.format();
    fs::rename(&seg, d.path().join("segments").join(open.as_str())).unwrap();
    assert_frames_are(d.path(), 1, 29);
    let s = Store::open(d.path(), opts()).unwrap();
    assert_eq!(s.next_seq(), 30);
    drop(s);
    assert!(fs::read_dir(d.path().join("segments")).unwrap().all(|e| e.unwrap().path().extension().unwrap() == "seg"));
    assert_frames_are(d.path(), 1, 29);
}

#[test]
fn second_writer_on_the_same_dir_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let _s = Store::open(d.path(), opts()).unwrap();
    let e = Store::open(d.path(), opts()).err().expect("second open must fail");
    assert!(e.to_string().contains("in use"), "{e}");
}

#[test]
fn reader_never_panics_on_garbage_segments() {
    let d = tempfile::tempdir().unwrap();
    let segs = d.path().join("segments");
    fs::create_dir_all(&segs).unwrap();
    let mut rng = 12345u64;
    for i in 0..40u64 {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let len = (rng >> 33) as usize % 20000;
        let data: Vec<u8> = (0..len).map(|j| ((rng >> (j % 56)) as u8) ^ j as u8).collect();
        let name = if i % 2 == 0 {
            blackbox::store::names::SegName::Open { start_utc_ns: T0 + i as i64, first_seq: i * 100 }.format()
        } else {
            blackbox::store::names::SegName::Closed { start_utc_ns: T0, end_utc_ns: T0 + 1, first_seq: i * 100, frames: i, bytes: (len as u64 / 4096) * 4096 }.format()
        };
        fs::write(segs.join(name.as_str()), data).unwrap();
    }
    let rep = verify(d.path()).unwrap();
    assert!(!rep.ok());
    let _ = all_frames_lenient(d.path());
}

fn all_frames_lenient(dir: &Path) -> u64 {
    let r = Reader::open(dir).unwrap();
    let mut n = 0;
    let mut buf = Vec::new();
    r.for_each_in_range(i64::MIN, i64::MAX, &mut buf, |_, _| { n += 1; true }).unwrap();
    n
}

/// Start-up recovery never reads closed segments: 2000 of them are FIFOs here, and opening
/// one for reading would block forever (a watchdog fails the test instead of hanging).
#[test]
fn recovery_reads_only_open_segments_not_closed_ones() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 40);
    drop(s); // crash: one segment left open (after some closed ones)
    for i in 0..2000u64 {
        let name = blackbox::store::names::SegName::Closed {
            start_utc_ns: T0 - 10_000_000_000_000 + i as i64 * 1_000_000_000,
            end_utc_ns: T0 - 10_000_000_000_000 + i as i64 * 1_000_000_000 + 999_000_000,
            first_seq: 1_000_000 + i * 10,
            frames: 0,
            bytes: 12288,
        }
        .format();
        let p = d.path().join("segments").join(name.as_str());
        rustix::fs::mknodat(rustix::fs::CWD, &p, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0).unwrap();
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        if !flag.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("recovery blocked on a closed segment: it must not read them");
            std::process::abort();
        }
    });
    let s = Store::open(d.path(), opts()).unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(s.closed_segments().len(), 2000 + 1);
    assert!(s.durable_seq() >= Some(30));
}

/// A recycled file whose old contents were NOT zeroed (file systems without ZERO_RANGE):
/// restarting it with a new uid must leave none of its old records valid.
#[test]
fn stale_records_do_not_validate_under_a_new_uid() {
    use blackbox::store::record::{SegHeader, BLOCK};
    use blackbox::store::segment;
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 40);
    drop(s);
    let seg = open_segment(d.path());
    let f = fs::OpenOptions::new().read(true).write(true).open(&seg).unwrap();
    let old = segment::read_header(&f).unwrap().unwrap();
    let mut buf = Vec::new();
    let len = f.metadata().unwrap().len();
    assert_eq!(segment::scan(&f, &old, len, &mut buf).unwrap().frames.len(), 39);
    // Same first seq and start (as if the same numbering came round again), new uid.
    let new = SegHeader { uid: old.uid ^ 0x5a5a_5a5a_0000_0001, ..old };
    let mut hb = [0u8; BLOCK as usize];
    new.encode(&mut hb);
    std::os::unix::fs::FileExt::write_all_at(&f, &hb, 0).unwrap();
    let scan = segment::scan(&f, &new, len, &mut buf).unwrap();
    assert_eq!(scan.frames.len(), 0, "stale records validated under a new uid");
    assert_eq!(segment::find_later_group(&f, &new, BLOCK, len).unwrap(), None);
}

/// Found by the kill -9 test: a kill while recovery sealed a crashed segment (index and seal
/// written after the torn tail, rename not yet done) must not look like damage inside
/// acknowledged data; the next start finishes the job with every frame.
#[test]
fn kill_while_recovery_seals_a_torn_segment_is_not_damage() {
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.commit_frames = 5;
    o.segment_length_ns = u64::MAX / 4;
    let mut s = Store::open(d.path(), o.clone()).unwrap();
    write(&mut s, 1, 9); // 5 committed, 3 written but not committed: the prefix ends mid-block
    drop(s);
    let open = open_segment(d.path());
    let open_name = open.file_name().unwrap().to_owned();
    drop(Store::open(d.path(), o.clone()).unwrap()); // recovery seals and renames
    // Undo the rename: the state a kill between recovery's seal and its rename leaves.
    let sealed = fs::read_dir(d.path().join("segments")).unwrap().next().unwrap().unwrap().path();
    fs::rename(&sealed, d.path().join("segments").join(&open_name)).unwrap();
    let rep = verify(d.path()).unwrap();
    assert!(rep.ok(), "recovery's own seal was taken for proof of acknowledged data: {rep:?}");
    assert_frames_are(d.path(), 1, 8);
    let s = Store::open(d.path(), o).unwrap();
    assert_eq!(s.next_seq(), 9);
    drop(s);
    assert_frames_are(d.path(), 1, 8);
    assert!(verify(d.path()).unwrap().ok());
}

#[test]
fn gap_markers_are_reported_by_verify_in_closed_and_open_segments() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 20);
    // The camera was away for 3 s after frame 19 (a stall or an unplug).
    let (from, to) = (meta(19).utc_ns, meta(19).utc_ns + 3_000_000_000);
    s.append_gap(from, to, 1, 0, meta(19).mono_ns + 3_000_000_000).unwrap();
    write(&mut s, 20, 120); // rotates: the gap ends up in a closed segment
    s.append_gap(meta(119).utc_ns, meta(119).utc_ns + 1_000_000_000, 1, 0, meta(119).mono_ns).unwrap();
    write(&mut s, 120, 125);
    s.commit().unwrap();
    // Open segment still open (no close): recovery in memory sees its gap too.
    let rep = verify(d.path()).unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert_eq!(rep.gap_markers, vec![(from, to), (meta(119).utc_ns, meta(119).utc_ns + 1_000_000_000)]);
    assert_eq!(rep.frames, 124, "a gap marker must not count as a frame");
    s.close().unwrap();
    let rep = verify(d.path()).unwrap();
    assert_eq!(rep.gap_markers.len(), 2, "{rep:?}");
}

#[test]
fn sequence_numbers_are_never_reused_after_a_cut_leaves_only_an_empty_open_segment() {
    // Found by scripts/powercut: retention had deleted every closed segment, the power went
    // right after a rotation, and the new open segment held no frame yet. Recovery removed it
    // and the next frame got seq 1 again: the durable watermark went backwards.
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 200);
    s.close().unwrap();
    for e in fs::read_dir(d.path().join("segments")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    // The segment started after seq 199 with a valid header and nothing committed in it.
    let s = Store::open(d.path(), opts()).unwrap();
    assert_eq!(s.next_seq(), 1, "an empty directory starts at 1");
    drop(s);
    let name = blackbox::store::names::SegName::Open { start_utc_ns: T0 + 100_000_000_000, first_seq: 200 }.format();
    fs::write(d.path().join("segments").join(name.as_str()), vec![0u8; 8192]).unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    assert_eq!(s.next_seq(), 200, "seqs below an open segment's first seq were handed out before");
    write(&mut s, 200, 210);
    s.close().unwrap();
    assert_frames_are(d.path(), 200, 209);
}

#[test]
fn a_recycled_segment_much_bigger_than_needed_shrinks_instead_of_crowding_out_the_rest() {
    // Found by the power-cut rig: the first segment was sized for 60 s (31 MiB), then segments
    // became 3 s (4 MiB) with a 30 MiB cap. Recycled whole, that one file alone held the cap and
    // every rotation deleted all the other segments.
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.segment_length_ns = 1_000_000_000;
    o.expected_bytes_per_s = 20 << 20; // the first segment: 25 MiB preallocated
    o.storage_cap_bytes = 30 << 20;
    let mut s = Store::open(d.path(), o).unwrap();
    write(&mut s, 1, 600); // 20 s; later segments are sized from what was written: 4 MiB
    s.close().unwrap();
    let r = Reader::open(d.path()).unwrap();
    let segs = r.segments();
    let biggest = segs.iter().map(|x| x.alloc_bytes).max().unwrap();
    assert!(biggest <= 8 << 20, "a {biggest}-byte segment was kept (recycled whole)");
    // 30 MiB of 4 MiB segments: six or seven kept, about 6 s of footage, not one or two.
    assert!(segs.len() >= 5, "only {} segments kept", segs.len());
    assert_eq!(segs.last().unwrap().last_seq(), Some(599));
    assert!(verify(d.path()).unwrap().ok());
}

/// A camera that can't force a key frame (the Pi camera's encoder through bcm2835-v4l2): an
/// H.264 segment past its length closes at the next IDR, at most one GOP late, never in the
/// middle of a GOP; with no IDR at all it closes at twice its length.
#[test]
fn h264_segments_rotate_at_the_next_key_frame_at_most_one_gop_late() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    // A real avcC (libx264 320x240 Constrained Baseline 3.1).
    let avcc = [
        0x01, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0x00, 0x16, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03,
        0x00, 0x40, 0x00, 0x00, 0x0f, 0x03, 0xc6, 0x0c, 0xa8, 0x01, 0x00, 0x04, 0x68, 0xce, 0x3c, 0x80,
    ];
    store.set_h264_params(&avcc);
    // GOP of 45 frames (1.5 s at 30 fps) for frames 1..=300, then none for 200 frames (the
    // segment is 2 s: 60 frames).
    let gop = 45;
    let mut refused = 0;
    for seq in 1..=500u64 {
        let key = seq <= 300 && (seq - 1) % gop == 0;
        let m = FrameMeta { codec: Codec::H264, key, ..meta(seq) };
        match store.append_frame(&m, &payload(seq)) {
            Ok(()) => {}
            // After the forced close, frames wait for an IDR that never comes.
            Err(blackbox::store::StoreError::NeedsKeyFrame) if seq > 300 => refused += 1,
            Err(e) => panic!("frame {seq}: {e}"),
        }
    }
    drop(store);
    let l = blackbox::store::catalog::list(&dir.path().join("segments")).unwrap();
    let segs: Vec<(u64, u64)> = l.closed.iter().map(|s| (s.first_seq, s.frames)).collect();
    // Keys at 1, 46, 91, 136, 181, 226, 271; a segment is due 60 frames after its start and
    // closes at the first key at or after that (45 frames late at most). From 271: no key after
    // 300, so it closes at twice the length (4 s: 121 frames, as 120 x 33.333333 ms falls 40 ns
    // short of it) and the rest waits for an IDR.
    assert_eq!(segs, vec![(1, 90), (91, 90), (181, 90), (271, 121)]);
    assert_eq!(refused, 500 - 391);
}

/// A camera faster, or bigger, than the store was told (an RTSP camera sends what it sends):
/// a segment whose index or file would fill in the middle of a GOP closes at the key frame
/// before, so no frame waits for an IDR (CI lost 24 pictures of an RTSP camera at 25 fps
/// whose config said 10: the index held 124 frames and filled one picture after an IDR).
#[test]
fn h264_segments_close_at_a_key_frame_before_their_index_or_file_would_fill() {
    let avcc = [
        0x01, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0x00, 0x16, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03,
        0x00, 0x40, 0x00, 0x00, 0x0f, 0x03, 0xc6, 0x0c, 0xa8, 0x01, 0x00, 0x04, 0x68, 0xce, 0x3c, 0x80,
    ];
    // (frames per second, GOP, payload bytes): 60 fps against an index sized for 10 fps (2 s:
    // 94 frames); 60 fps of 100 KB frames against 4 MiB segments sized for 200 KB/s.
    for (fps, gop, size) in [(60u64, 60u64, 2_000usize), (60, 30, 100_000)] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), StoreOptions { fps: 10, ..opts() }).unwrap();
        store.set_h264_params(&avcc);
        let frame_ns = 1_000_000_000 / fps;
        let n = 20 * fps;
        for seq in 1..=n {
            let m = FrameMeta {
                mono_ns: 1_000_000_000 + seq * frame_ns,
                utc_ns: T0 + (seq * frame_ns) as i64,
                codec: Codec::H264,
                key: (seq - 1) % gop == 0,
                lost_before: 0,
            };
            let p: Vec<u8> = (0..size).map(|i| (seq as usize * 31 + i * 7) as u8).collect();
            if let Err(e) = store.append_frame(&m, &p) {
                panic!("{fps} fps, GOP {gop}, {size} B: frame {seq}: {e}");
            }
        }
        store.close().unwrap();
        let l = blackbox::store::catalog::list(&dir.path().join("segments")).unwrap();
        let stored: u64 = l.closed.iter().map(|s| s.frames).sum();
        assert_eq!(stored, n, "{fps} fps, GOP {gop}, {size} B: every frame stored");
        assert!(l.closed.len() >= 5, "{fps} fps, GOP {gop}, {size} B: segments rotate ({})", l.closed.len());
    }
}

/// A live export lists the open segment, then the writer seals and renames it: the reader
/// follows it to its closed name and reads every frame it listed (CI once lost an export to
/// this race: "reading the store: No such file or directory").
#[test]
fn a_reader_follows_an_open_segment_sealed_after_its_listing() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open(d.path(), opts()).unwrap();
    write(&mut s, 1, 20);
    let r = Reader::open(d.path()).unwrap();
    assert_eq!(r.recovered.open.len(), 1, "one open segment listed");
    let listed = r.recovered.open[0].frames;
    assert!(listed >= 19, "{listed}");
    write(&mut s, 20, 30);
    s.close_segment().unwrap();
    assert!(fs::read_dir(d.path().join("segments")).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".open")));
    let mut buf = Vec::new();
    let mut seqs = Vec::new();
    let bad = r
        .for_each_in_range(i64::MIN, i64::MAX, &mut buf, |info, data| {
            assert_eq!(data, payload(info.seq));
            seqs.push(info.seq);
            true
        })
        .unwrap();
    assert_eq!(bad, 0);
    assert_eq!(seqs, (1..=listed).collect::<Vec<_>>());
    drop(s);
}
