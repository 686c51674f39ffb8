//! Segment format versions (docs/FORMAT.md, "Versions"). New segments are version 2: each
//! index entry carries its frame's payload length and codec, so an export plans from the
//! indexes alone. Stores already on users' cards are version 1 (24-byte entries, no length):
//! they must still read, verify, export and recover. `tests/fixtures/store-v1` was written by
//! the code before version 2 (see its README); `frames.txt` says what it holds.

use blackbox::camera::{Codec, FrameMeta};
use blackbox::store::reader::Reader;
use blackbox::store::record::{self, RecHeader, FORMAT_V1, FORMAT_VERSION, INDEX_ENTRY, REC_HDR};
use blackbox::store::{segment, Store, StoreOptions};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const SEC: i64 = 1_000_000_000;
/// 2026-11-21T12:00:00Z, the fixture's first frame.
const T0: i64 = 1_795_262_400_000_000_000;

/// One frame as the fixture's generator wrote it.
#[derive(Debug, PartialEq)]
struct Written {
    seq: u64,
    utc_ns: i64,
    mono_ns: u64,
    len: u32,
    crc: u32,
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

fn written() -> Vec<Written> {
    let text = fs::read_to_string(fixture().join("frames.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Written {
                seq: f[0].parse().unwrap(),
                utc_ns: f[1].parse().unwrap(),
                mono_ns: f[2].parse().unwrap(),
                len: f[3].parse().unwrap(),
                crc: u32::from_str_radix(f[4], 16).unwrap(),
            }
        })
        .collect()
}

/// A copy of the v1 fixture store in a fresh temporary directory.
fn v1_store() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    fs::create_dir_all(data.join("segments")).unwrap();
    for e in fs::read_dir(fixture().join("segments")).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, data.join("segments").join(p.file_name().unwrap())).unwrap();
    }
    (d, data)
}

fn segments(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(data.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Every frame the reader returns, as (seq, utc, mono, len, plain CRC-32 of the payload).
fn read_all(data: &Path) -> Vec<Written> {
    let r = Reader::open(data).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let bad = r
        .for_each_in_range(i64::MIN, i64::MAX, &mut buf, |f, p| {
            out.push(Written { seq: f.seq, utc_ns: f.utc_ns, mono_ns: f.mono_ns, len: f.len, crc: crc32fast::hash(p) });
            true
        })
        .unwrap();
    assert_eq!(bad, 0, "damaged frames reported");
    out
}

fn verify_json(data: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_blackbox")).arg("verify").arg(data).arg("--json").output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `blackbox export DIR -o FILE` of everything; returns the file's bytes.
fn export_all(data: &Path, out: &Path) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_blackbox")).arg("export").arg(data).arg("-o").arg(out).output().unwrap();
    assert!(o.status.success(), "export failed: {}", String::from_utf8_lossy(&o.stderr));
    fs::read(out).unwrap()
}

/// The video samples as ffmpeg demuxes them (a stream copy), split into JPEGs at each EOI.
fn demuxed_jpegs(file: &Path) -> Vec<Vec<u8>> {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v:0", "-c", "copy", "-f", "image2pipe", "-"])
        .output()
        .expect("ffmpeg is needed (scripts/test installs it)");
    assert!(o.status.success() && o.stderr.is_empty(), "ffmpeg: {}", String::from_utf8_lossy(&o.stderr));
    // Each stored JPEG ends with FFD9 and the next starts with FFD8.
    let mut out = Vec::new();
    let mut start = 0;
    let b = &o.stdout;
    for i in 1..b.len() {
        if b[i - 1] == 0xFF && b[i] == 0xD9 && (i + 1 == b.len() || b[i + 1..].starts_with(&[0xFF, 0xD8])) {
            out.push(b[start..=i].to_vec());
            start = i + 1;
        }
    }
    assert_eq!(start, b.len(), "trailing bytes after the last JPEG");
    out
}

/// Every file under segments/ with its size, mtime and CRC.
fn snapshot(data: &Path) -> BTreeMap<PathBuf, (u64, i64, u32)> {
    segments(data)
        .into_iter()
        .map(|p| {
            let md = fs::metadata(&p).unwrap();
            let crc = crc32fast::hash(&fs::read(&p).unwrap());
            (p, (md.len(), md.mtime_nsec(), crc))
        })
        .collect()
}

/// (version, index entries) of a closed segment file.
fn index_of(path: &Path) -> (u32, Vec<record::IndexEntry>) {
    let f = File::open(path).unwrap();
    let h = segment::read_header(&f).unwrap().expect("valid header");
    let used: u64 = path.file_stem().unwrap().to_str().unwrap().rsplit('_').next().unwrap().parse().unwrap();
    let (_, entries) = segment::read_index(&f, &h, used).unwrap().expect("valid index");
    (h.version, entries)
}

#[test]
fn a_version_1_store_reads_verifies_and_exports_every_frame_it_holds() {
    let (d, data) = v1_store();
    let want = written();
    assert_eq!(want.len(), 75);
    // Its closed segments really are version 1 (the fallback path is what is tested here).
    for p in segments(&data).iter().filter(|p| p.extension().is_some_and(|x| x == "seg")) {
        let (version, entries) = index_of(p);
        assert_eq!(version, FORMAT_V1, "{}", p.display());
        assert!(entries.iter().all(|e| e.len.is_none()));
    }
    let before = snapshot(&data);

    // The reader returns exactly what was written, in order.
    assert_eq!(read_all(&data), want);

    // verify: every frame, the gap marker, nothing bad.
    let (ok, json) = verify_json(&data);
    assert!(ok, "{json}");
    for needle in [r#""frames":75"#, r#""durable_seq":75"#, r#""bad_regions":[]"#, r#""open_segments":1"#, r#""from":"2026-11-21T12:00:01.500Z""#] {
        assert!(json.contains(needle), "verify --json lacks {needle}: {json}");
    }

    // export: all 75 frames, byte for byte, in order; ffprobe agrees on count and duration.
    let out = d.path().join("v1.mp4");
    export_all(&data, &out);
    let jpegs = demuxed_jpegs(&out);
    assert_eq!(jpegs.len(), 75);
    for (j, w) in jpegs.iter().zip(&want) {
        assert_eq!((j.len() as u32, crc32fast::hash(j)), (w.len, w.crc), "frame {} differs from the stored one", w.seq);
    }
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=duration", "-of", "csv=p=0"])
        .arg(&out)
        .output()
        .unwrap();
    let dur: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    // 75 frames at 30 fps; the 2 s stall is cut out of the timeline.
    assert!((dur - 2.5).abs() <= 1.0 / 30.0, "duration {dur} s, expected 2.5 s");

    // Reading, verifying and exporting changed nothing on the card.
    assert_eq!(snapshot(&data), before, "a read-only tool wrote to a v1 store");
}

/// Firmware with index v2 starts on a card where the old firmware was cut off mid-segment:
/// recovery seals that version-1 segment with a version-1 index (as its header says), and
/// recording goes on in version-2 segments. Both read back, verify and export together.
#[test]
fn a_version_1_segment_left_open_is_sealed_as_version_1_and_recording_goes_on_in_version_2() {
    let (d, data) = v1_store();
    let opts = StoreOptions {
        segment_length_ns: SEC as u64,
        commit_interval_ns: 500_000_000,
        commit_frames: 10,
        storage_cap_bytes: 1 << 40,
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 100_000,
    };
    let mut s = Store::open(&data, opts).unwrap();
    assert_eq!(s.next_seq(), 76);
    assert_eq!(s.durable_seq(), Some(75));
    let old = written();
    // Sixty more frames, one minute later, with the fixture's own JPEGs.
    let mut buf = Vec::new();
    let reader = Reader::open(&data).unwrap();
    let mut jpegs = Vec::new();
    reader.for_each_in_range(i64::MIN, i64::MAX, &mut buf, |_, p| {
        jpegs.push(p.to_vec());
        true
    }).unwrap();
    drop(reader);
    let mut new = Vec::new();
    for k in 0..60i64 {
        let t = 60 * SEC + k * SEC / 30;
        let m = FrameMeta { mono_ns: (5000 * SEC + t) as u64, utc_ns: T0 + t, codec: Codec::Jpeg, key: true, lost_before: 0 };
        let j = &jpegs[k as usize % jpegs.len()];
        new.push(Written { seq: s.next_seq(), utc_ns: m.utc_ns, mono_ns: m.mono_ns, len: j.len() as u32, crc: crc32fast::hash(j) });
        s.append_frame(&m, j).unwrap();
    }
    s.close().unwrap();

    let segs = segments(&data);
    assert!(segs.iter().all(|p| p.extension().is_some_and(|x| x == "seg")), "{segs:?}");
    let mut versions = Vec::new();
    let mut lens: Vec<Option<u32>> = Vec::new();
    for p in &segs {
        let (v, entries) = index_of(p);
        versions.push(v);
        lens.extend(entries.iter().map(|e| e.len));
    }
    // Three v1 segments (two closed before, one sealed by recovery), then v2 ones.
    assert_eq!(&versions[..3], [FORMAT_V1; 3], "{segs:?}");
    assert!(versions.len() > 3 && versions[3..].iter().all(|&v| v == FORMAT_VERSION), "{versions:?}");
    // A v2 index carries each frame's true payload length.
    let want_lens: Vec<Option<u32>> = old.iter().map(|_| None).chain(new.iter().map(|w| Some(w.len))).collect();
    assert_eq!(lens, want_lens);

    let all: Vec<Written> = old.into_iter().chain(new).collect();
    assert_eq!(read_all(&data), all);
    let (ok, json) = verify_json(&data);
    assert!(ok && json.contains(r#""frames":135"#) && json.contains(r#""bad_regions":[]"#), "{json}");
    let out = d.path().join("both.mp4");
    export_all(&data, &out);
    let jpegs = demuxed_jpegs(&out);
    assert_eq!(jpegs.len(), 135);
    for (j, w) in jpegs.iter().zip(&all) {
        assert_eq!((j.len() as u32, crc32fast::hash(j)), (w.len, w.crc), "frame {} differs", w.seq);
    }
}

/// A version-2 index entry whose length disagrees with its record (an index written wrong,
/// though its own CRC checks): `verify` reports it as damage, and an export planned from that
/// index stops rather than send a byte that is not the frame's.
#[test]
fn an_index_length_that_disagrees_with_its_record_is_damage_and_never_exported() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let mut s = Store::open(&data, StoreOptions { min_free_bytes: 0, ..StoreOptions::default() }).unwrap();
    let jpeg: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    for k in 0..30i64 {
        let t = k * SEC / 30;
        s.append_frame(&FrameMeta { mono_ns: (SEC + t) as u64, utc_ns: T0 + t, codec: Codec::Jpeg, key: true, lost_before: 0 }, &jpeg).unwrap();
    }
    s.close().unwrap();
    let seg = segments(&data).pop().unwrap();
    let (version, entries) = index_of(&seg);
    assert_eq!(version, FORMAT_VERSION);
    assert!(entries.iter().all(|e| e.len == Some(3000)));

    // Rewrite entry 10's length (3000 -> 2000) and re-seal the index record's CRCs.
    let f = fs::OpenOptions::new().read(true).write(true).open(&seg).unwrap();
    let h = segment::read_header(&f).unwrap().unwrap();
    let used = f.metadata().unwrap().len().min(seg.file_stem().unwrap().to_str().unwrap().rsplit('_').next().unwrap().parse().unwrap());
    let mut seal = vec![0u8; 4096];
    f.read_exact_at(&mut seal, used - 4096).unwrap();
    let index_offset = u64::from_le_bytes(seal[REC_HDR..REC_HDR + 8].try_into().unwrap());
    let mut ih = [0u8; REC_HDR];
    f.read_exact_at(&mut ih, index_offset).unwrap();
    let mut rec = RecHeader::decode(&ih, h.uid).unwrap();
    let mut payload = vec![0u8; rec.len as usize];
    f.read_exact_at(&mut payload, index_offset + REC_HDR as u64).unwrap();
    payload[10 * INDEX_ENTRY + 24..10 * INDEX_ENTRY + 28].copy_from_slice(&2000u32.to_le_bytes());
    rec.payload_crc = record::crc(h.uid, &[&payload]);
    f.write_all_at(&rec.encode(h.uid), index_offset).unwrap();
    f.write_all_at(&payload, index_offset + REC_HDR as u64).unwrap();
    drop(f);
    assert_eq!(index_of(&seg).1[10].len, Some(2000), "the rewrite did not take");

    let (ok, json) = verify_json(&data);
    assert!(!ok, "verify accepted an index that disagrees with its record: {json}");
    assert!(json.contains("length or codec differs from its index entry"), "{json}");
    assert!(json.contains(r#""frames":29"#), "{json}");

    // The export is planned from the index (no record read), so it plans 2000 bytes for frame
    // 11; streaming re-checks the record and stops there.
    let ex = blackbox::export::open(&data, T0, T0 + SEC).unwrap();
    assert_eq!(ex.frames(), 30);
    let mut r = ex.reader();
    let mut got = Vec::new();
    let err = r.read_to_end(&mut got).expect_err("the export streamed a frame its index misdescribes");
    assert!(err.to_string().contains("frame 11"), "{err}");
    let frames_sent = got.windows(jpeg.len()).filter(|w| *w == &jpeg[..]).count();
    assert_eq!(frames_sent, 10, "frames 1..=10 go out whole before the stop");
}
