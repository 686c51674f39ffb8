//! Writes seed inputs for the fuzz targets: `make_corpus [DIR]` (default `corpus`) fills
//! `DIR/segment_reader/` with real segments (closed, open, open after a crash, recycled) in the
//! harness's input format, and `DIR/jpeg_scan/` with JPEG streams from the synthetic camera.

use blackbox::camera::synthetic::Synthetic;
use blackbox::camera::{Camera, Codec, FrameMeta};
use blackbox::store::names::SegName;
use blackbox::store::reader::Reader;
use blackbox::store::record::BLOCK;
use blackbox::store::{Store, StoreOptions};
use blackbox_fuzz::{FIRST_SEQ, FIX_CRCS, MODE_SHIFT, PREFIX_HEADER, START_NS};
use std::fs;
use std::path::Path;

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let out = Path::new(&out);
    let seg_out = out.join("segment_reader");
    let jpg_out = out.join("jpeg_scan");
    fs::create_dir_all(&seg_out).unwrap();
    fs::create_dir_all(&jpg_out).unwrap();

    // A few real JPEGs (paced at 120 fps: a quick run).
    let mut cam = Synthetic::new(32, 24, 120, 50).expect("synthetic camera");
    let jpegs: Vec<Vec<u8>> = (0..8).map(|_| cam.next_frame().unwrap().1.to_vec()).collect();
    fs::write(jpg_out.join("one"), &jpegs[0]).unwrap();
    fs::write(jpg_out.join("three"), jpegs[..3].concat()).unwrap();
    let mut junk = b"garbage\xff\xd8\xff".to_vec();
    junk.extend_from_slice(&jpegs[1]);
    junk.extend_from_slice(&jpegs[2][..jpegs[2].len() / 2]);
    junk.extend_from_slice(&jpegs[3]);
    fs::write(jpg_out.join("junk_truncated"), junk).unwrap();

    let d = tempfile::tempdir().unwrap();
    let segs = d.path().join("segments");
    fs::create_dir_all(&segs).unwrap();
    // A placeholder closed segment so the store's numbering starts at FIRST_SEQ, as the
    // harness's fixed identity expects.
    let placeholder = SegName::Closed { start_utc_ns: START_NS - 10_000_000_000, end_utc_ns: START_NS - 9_000_000_000, first_seq: FIRST_SEQ - 1, frames: 1, bytes: 3 * BLOCK }.format();
    fs::write(segs.join(placeholder.as_str()), vec![0u8; 3 * BLOCK as usize]).unwrap();
    let opts = StoreOptions {
        segment_length_ns: 1_000_000_000,
        commit_interval_ns: 100_000_000,
        commit_frames: 5,
        storage_cap_bytes: 9 << 20, // two 4 MiB segments: the third start recycles
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 30 * 400,
    };
    let mut s = Store::open(d.path(), opts).unwrap();
    let frame_ns = 100_000_000u64; // 10 frames a segment: small seeds
    let mut seq = FIRST_SEQ;
    let mut write = |s: &mut Store, n: u64| {
        for _ in 0..n {
            let i = seq - FIRST_SEQ;
            let meta = FrameMeta { mono_ns: 1_000_000_000 + i * frame_ns, utc_ns: START_NS + (i * frame_ns) as i64, codec: Codec::Jpeg, key: true, lost_before: 0 };
            s.append_frame(&meta, &jpegs[i as usize % jpegs.len()]).unwrap();
            seq += 1;
        }
    };
    write(&mut s, 15); // one closed segment (10 frames) and an open one
    s.commit().unwrap();
    save_all(&segs, &seg_out, "a");
    write(&mut s, 17); // more closed segments; the third start recycles the oldest
    save_all(&segs, &seg_out, "b");
    drop(s); // a crash: the open segment keeps a torn/uncommitted tail
    save_all(&segs, &seg_out, "c");
    let n = fs::read_dir(&seg_out).unwrap().count();
    println!("wrote {n} segment_reader seeds to {}, 3 jpeg_scan seeds to {}", seg_out.display(), jpg_out.display());
    let _ = Reader::open(d.path());
}

/// Saves every real segment of `segs` as seeds, cut to its used length (plus a block for open
/// ones), with several flag bytes.
fn save_all(segs: &Path, out: &Path, tag: &str) {
    for e in fs::read_dir(segs).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let Some(parsed) = SegName::parse(&name) else { continue };
        let bytes = fs::read(e.path()).unwrap();
        let used = match parsed {
            SegName::Closed { bytes: b, frames, .. } if frames > 1 => b as usize,
            SegName::Closed { .. } => continue, // the placeholder
            SegName::Open { .. } => {
                let last = bytes.iter().rposition(|&b| b != 0).unwrap_or(0);
                (last / BLOCK as usize + 2) * BLOCK as usize
            }
        };
        let body = &bytes[..used.min(bytes.len())];
        let kind = if name.ends_with(".open") { "open" } else { "closed" };
        let first = parsed.first_seq();
        // As-is: open (mode 0), closed (1), both (2), writable recovery (3).
        for mode in 0..4u8 {
            let mut v = vec![mode << MODE_SHIFT];
            v.extend_from_slice(body);
            fs::write(out.join(format!("{tag}_{kind}_{first}_m{mode}")), v).unwrap();
        }
        // Records only, under the harness's own header, CRCs recomputed (first segment only:
        // its first_seq and start are the harness's fixed ones).
        if first == FIRST_SEQ {
            let mut v = vec![PREFIX_HEADER | FIX_CRCS | (3 << MODE_SHIFT)];
            v.extend_from_slice(&body[BLOCK as usize..]);
            fs::write(out.join(format!("{tag}_{kind}_{first}_fixed")), v).unwrap();
        }
    }
}
