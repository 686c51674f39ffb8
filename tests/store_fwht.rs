//! FWHT, the qemu rig's stand-in for a hardware encoder (vicodec; `BLACKBOX_ENCODER=m2m-fwht`):
//! stored and verified like any footage, segments start on I-pictures, export refuses it clearly.

use blackbox::camera::{Codec, FrameMeta};
use blackbox::export::plan::PlanError;
use blackbox::store::reader::Reader;
use blackbox::store::verify::verify;
use blackbox::store::{Store, StoreError, StoreOptions};

const T0: i64 = 1_795_000_000_000_000_000;
const FRAME_NS: u64 = 100_000_000;

fn meta(i: u64, key: bool) -> FrameMeta {
    FrameMeta { mono_ns: 1_000_000_000 + i * FRAME_NS, utc_ns: T0 + (i * FRAME_NS) as i64, codec: Codec::Fwht, key, lost_before: 0 }
}

fn picture(i: u64) -> Vec<u8> {
    (0..3000 + i as usize % 700).map(|k| (k as u64 * 13 + i) as u8).collect()
}

#[test]
fn fwht_segments_start_on_i_pictures_verify_and_refuse_export() {
    let d = tempfile::tempdir().unwrap();
    let o = StoreOptions { segment_length_ns: 1_000_000_000, min_free_bytes: 0, expected_bytes_per_s: 100_000, ..StoreOptions::default() };
    let mut s = Store::open(d.path(), o).unwrap();
    // A P-picture can't start the store: its reference is not there.
    assert!(matches!(s.append_frame(&meta(0, false), &picture(0)), Err(StoreError::NeedsKeyFrame)));
    // GOPs of 10 (I every 10th), 45 pictures: 1 s segments rotate at the next I-picture.
    for i in 1..46 {
        s.append_frame(&meta(i, i % 10 == 1), &picture(i)).unwrap();
    }
    s.close().unwrap();
    assert!(verify(d.path()).unwrap().ok());
    let r = Reader::open(d.path()).unwrap();
    let segs = r.segments();
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let mut buf = Vec::new();
    for seg in &segs {
        let sf = r.load(seg).unwrap().unwrap();
        assert!(sf.entries[0].flags & 1 != 0, "segment {} starts on a P-picture", seg.name);
        assert_eq!(sf.entries[0].codec, 3);
    }
    let mut n = 0;
    r.for_each_in_range(i64::MIN, i64::MAX, &mut buf, |_, data| {
        n += 1;
        assert!(!data.is_empty());
        true
    })
    .unwrap();
    assert_eq!(n, 45);
    match blackbox::export::open(d.path(), T0, T0 + 10_000_000_000) {
        Err(e @ PlanError::NotExportable { codec: 3, frames: 45 }) => {
            assert!(e.to_string().contains("FWHT"), "{e}");
        }
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("FWHT footage was exported"),
    }
}
