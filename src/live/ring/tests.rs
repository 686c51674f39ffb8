use super::*;
use crate::camera::Codec;
use crate::codec::encoder::{H264Settings, SoftH264, VideoEncoder};
use crate::codec::raw::RawFrame;

/// `n` access units of a 64x48 stream with an IDR every `gop` frames.
fn stream(n: usize, gop: u32) -> Vec<(bool, Vec<u8>)> {
    let (w, h) = (64usize, 48usize);
    let mut enc = SoftH264::new(H264Settings { width: 64, height: 48, fps: 30, bitrate_kbps: 500, keyframe_interval: gop }).unwrap();
    (0..n)
        .map(|k| {
            let rgb: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7 + k * 13) % 251) as u8).collect();
            let e = enc.encode(RawFrame::Rgb(&rgb)).unwrap();
            (e.key, e.data.to_vec())
        })
        .collect()
}

fn meta(i: u64, key: bool) -> FrameMeta {
    FrameMeta { mono_ns: 1_000 + i * 33_000_000, utc_ns: 7 + i as i64, codec: Codec::H264, key, lost_before: 0 }
}

#[test]
fn frames_come_back_as_avcc_with_their_metadata() {
    let s = stream(12, 5);
    let ring = Ring::new(1 << 20, 64);
    for (i, (key, au)) in s.iter().enumerate() {
        assert!(ring.publish(100 + i as u64, &meta(i as u64, *key), au), "frame {i}");
    }
    assert_eq!(ring.latest(), 12);
    assert_eq!(ring.latest_key(), 11, "IDRs at 1, 6, 11");
    let (params_gen, ps) = ring.params();
    assert_eq!(params_gen, 1);
    assert!(ps.complete());
    let mut out = Vec::with_capacity(ring.max_frame());
    let mut want = Vec::with_capacity(1 << 20);
    let mut ps2 = ParamSets::default();
    for n in 1..=12u64 {
        let f = ring.read(n, &mut out).unwrap();
        let (key, au) = &s[n as usize - 1];
        h264::to_avcc(au, &mut ps2, &mut want).unwrap();
        assert_eq!(out, want, "frame {n}");
        assert_eq!((f.seq, f.key, f.mono_ns, f.utc_ns, f.params_gen), (99 + n, *key, meta(n - 1, *key).mono_ns, 6 + n as i64, 1));
    }
    assert_eq!(ring.next_key_after(1), Some(6));
    assert_eq!(ring.next_key_after(11), None);
    assert!(ring.read(13, &mut out).is_none(), "not written yet");
}

#[test]
fn a_frame_cut_off_from_its_idr_is_not_taken() {
    let s = stream(12, 5);
    let ring = Ring::new(1 << 20, 64);
    assert!(!ring.publish(1, &meta(0, false), &s[1].1), "a P frame first");
    assert!(ring.publish(2, &meta(1, true), &s[0].1));
    assert!(ring.publish(3, &meta(2, false), &s[1].1));
    assert!(!ring.publish(5, &meta(4, false), &s[2].1), "seq 4 is missing");
    assert!(!ring.publish(6, &meta(5, false), &s[3].1), "still cut off");
    assert!(ring.publish(7, &meta(6, true), &s[5].1), "the next IDR");
    ring.interrupt();
    assert!(!ring.publish(8, &meta(7, false), &s[6].1), "after an interruption");
    assert_eq!(ring.latest(), 3);
    assert_eq!(ring.skipped(), 4);
}

#[test]
fn a_slow_reader_learns_its_frame_was_overwritten() {
    let s = stream(60, 10);
    // Small enough that 60 frames wrap it several times.
    let total: usize = s.iter().map(|(_, a)| a.len()).sum();
    let ring = Ring::new(total / 3, 64);
    let mut out = Vec::with_capacity(ring.max_frame());
    let mut published = 0;
    for (i, (key, au)) in s.iter().enumerate() {
        if ring.publish(i as u64, &meta(i as u64, *key), au) {
            published += 1;
        }
    }
    assert!(published >= 55, "{published}");
    let latest = ring.latest();
    assert!(ring.read(1, &mut out).is_none(), "frame 1 is long gone");
    assert!(out.is_empty());
    let k = ring.next_key_after(1).expect("an IDR is still there");
    assert!(ring.entry(k).unwrap().key);
    for n in k..=latest {
        assert!(ring.read(n, &mut out).is_some(), "frame {n} from the IDR on is intact");
    }
}

#[test]
fn the_index_bounds_how_far_behind_a_reader_may_be() {
    let s = stream(40, 10);
    let ring = Ring::new(1 << 20, 16);
    for (i, (key, au)) in s.iter().enumerate() {
        assert!(ring.publish(i as u64, &meta(i as u64, *key), au));
    }
    let mut out = Vec::with_capacity(ring.max_frame());
    assert!(ring.read(24, &mut out).is_none(), "17 frames back: gone");
    assert!(ring.read(25, &mut out).is_some(), "16 frames back: there");
    assert_eq!(ring.next_key_after(3), Some(31), "IDRs at 1, 11, 21, 31: the first one left");
}

#[test]
fn packing_keeps_every_byte_at_any_alignment() {
    let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    let mut p = Packer { words: &words, pos: 6, buf: [0; 8], n: 0 };
    let data: Vec<u8> = (1..=27).collect();
    p.push(&data[..3]);
    p.push(&data[3..4]);
    p.push(&data[4..20]);
    p.push(&data[20..]);
    p.finish();
    assert_eq!(p.pos, 6 + 4, "27 bytes in 4 words, wrapping around");
    let got: Vec<u8> = [6, 7, 0, 1].iter().flat_map(|&i| words[i].load(Ordering::Relaxed).to_ne_bytes()).collect();
    assert_eq!(&got[..27], &data[..]);
    assert_eq!(&got[27..], &[0; 5]);
}
