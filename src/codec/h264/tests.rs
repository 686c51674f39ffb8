use super::*;
use crate::codec::encoder::{H264Settings, SoftH264, SoftH264Decoder, VideoEncoder};
use crate::codec::raw::RawFrame;

fn settings(w: u32, h: u32) -> H264Settings {
    H264Settings { width: w, height: h, fps: 30, bitrate_kbps: 1000, keyframe_interval: 10 }
}

fn pattern(w: usize, h: usize, k: usize) -> Vec<u8> {
    let mut rgb = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let p = &mut rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
            p[0] = ((x + k * 4) % 256) as u8;
            p[1] = ((y * 2) % 256) as u8;
            p[2] = if (x / 16 + y / 16 + k).is_multiple_of(2) { 200 } else { 30 };
        }
    }
    rgb
}

#[test]
fn splits_annexb_with_both_start_code_lengths() {
    let s = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 9, 9, 0, 0];
    let nals: Vec<&[u8]> = nal_units(&s).collect();
    assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9, 9][..]]);
    assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
    assert_eq!(nal_units(&[]).count(), 0);
}

#[test]
fn exp_golomb_and_emulation_prevention() {
    // 1 -> 0; 010 -> 1; 011 -> 2; 00100 -> 3
    let mut r = BitReader::new(&[0b1010_0110, 0b0100_0000]);
    assert_eq!((r.ue(), r.ue(), r.ue(), r.ue()), (Some(0), Some(1), Some(2), Some(3)));
    // 00 00 03 01: the 03 is skipped.
    let mut r = BitReader::new(&[0, 0, 3, 1]);
    assert_eq!(r.bits(24), Some(1));
    assert_eq!(r.bit(), None);
}

#[test]
fn encoder_output_is_idr_first_then_p_with_params_and_parses() {
    let (w, h) = (320usize, 240usize);
    let mut enc = SoftH264::new(settings(w as u32, h as u32)).unwrap();
    let mut ps = ParamSets::default();
    let mut out = Vec::with_capacity(1 << 20);
    let mut keys = Vec::new();
    for k in 0..25 {
        let rgb = pattern(w, h, k);
        let e = enc.encode(RawFrame::Rgb(&rgb)).unwrap();
        let key = e.key;
        let data = e.data.to_vec();
        let info = to_avcc(&data, &mut ps, &mut out).unwrap();
        assert_eq!(info.idr, key, "frame {k}: the encoder's key flag and the NAL types agree");
        assert_eq!(info.params_changed, k == 0, "parameter sets arrive once and stay the same");
        // The AVCC sample holds no parameter set and every length is right.
        let mut total = 0;
        for nal in avcc_units(&out) {
            assert!(!matches!(nal_type(nal), NAL_SPS | NAL_PPS | NAL_AUD));
            total += 4 + nal.len();
        }
        assert_eq!(total, out.len());
        keys.push(key);
    }
    assert_eq!(keys.iter().positions(), vec![0, 10, 20]);
    let sps = ps.parsed().unwrap();
    assert_eq!((sps.width, sps.height), (320, 240));
    assert_eq!(sps.profile_idc, 66, "baseline");
    assert!(sps.level_idc <= 42);
    let mut avcc = [0u8; MAX_AVCC];
    let n = ps.avcc(&mut avcc);
    assert!(n > 10);
    assert_eq!(&avcc[..4], &[1, 66, sps.constraint_flags, sps.level_idc]);
    let back = params_from_avcc(&avcc[..n]).unwrap();
    assert_eq!((back.sps(), back.pps()), (ps.sps(), ps.pps()));
    assert!(sps.rfc6381().starts_with("avc1.42"));
}

trait Positions {
    fn positions(self) -> Vec<usize>;
}
impl<'a, I: Iterator<Item = &'a bool>> Positions for I {
    fn positions(self) -> Vec<usize> {
        self.enumerate().filter(|(_, b)| **b).map(|(i, _)| i).collect()
    }
}

#[test]
fn requested_key_frame_comes_next() {
    let mut enc = SoftH264::new(settings(160, 120)).unwrap();
    let rgb = pattern(160, 120, 0);
    let mut keys = Vec::new();
    for k in 0..8 {
        if k == 4 {
            enc.request_key_frame();
        }
        keys.push(enc.encode(RawFrame::Rgb(&rgb)).unwrap().key);
    }
    assert_eq!(keys.iter().positions(), vec![0, 4]);
}

#[test]
fn decoder_gives_back_the_picture() {
    let (w, h) = (160usize, 128usize);
    let mut enc = SoftH264::new(H264Settings { bitrate_kbps: 4000, ..settings(w as u32, h as u32) }).unwrap();
    let rgb = pattern(w, h, 3);
    let au = enc.encode(RawFrame::Rgb(&rgb)).unwrap().data.to_vec();
    let mut dec = SoftH264Decoder::new().unwrap();
    let (mut y, mut u, mut v) = (Vec::new(), Vec::new(), Vec::new());
    let dims = dec.decode_i420(&au, &mut y, &mut u, &mut v).unwrap();
    assert_eq!(dims, Some((w, h)));
    // Luma close to what was encoded.
    let mut ey = vec![0u8; w * h];
    let (mut eu, mut ev) = (vec![0u8; w * h / 4], vec![0u8; w * h / 4]);
    crate::codec::raw::to_i420(RawFrame::Rgb(&rgb), w, h, &mut ey, &mut eu, &mut ev).unwrap();
    let mad: u64 = y.iter().zip(&ey).map(|(a, b)| u64::from(a.abs_diff(*b))).sum::<u64>() / (w * h) as u64;
    assert!(mad < 6, "mean abs luma difference {mad}");
}

#[test]
fn b_slices_are_refused() {
    // A slice NAL (type 1) whose header says first_mb 0 (1), slice_type 1 = B (010).
    let au = [0, 0, 0, 1, 0x01, 0b1010_0000, 0];
    let mut ps = ParamSets::default();
    assert_eq!(inspect(&au, &mut ps), Err(AuError::BFrames));
    let p = [0, 0, 0, 1, 0x01, 0b1011_0000, 0]; // slice_type 2 = I... (011 -> 2)
    assert!(inspect(&p, &mut ps).is_ok());
    assert_eq!(inspect(&[0, 0, 1, 0x09, 0x10], &mut ps), Err(AuError::NoPicture));
    assert_eq!(inspect(&[1, 2, 3], &mut ps), Err(AuError::Empty));
}

#[test]
fn too_small_output_is_an_error_not_a_reallocation() {
    let mut enc = SoftH264::new(settings(160, 120)).unwrap();
    let rgb = pattern(160, 120, 0);
    let au = enc.encode(RawFrame::Rgb(&rgb)).unwrap().data.to_vec();
    let mut ps = ParamSets::default();
    let mut out = Vec::with_capacity(16);
    assert_eq!(to_avcc(&au, &mut ps, &mut out), Err(AuError::TooLarge));
    assert_eq!(out.capacity(), 16);
}

#[test]
fn garbage_never_panics() {
    let mut enc = SoftH264::new(settings(160, 120)).unwrap();
    let rgb = pattern(160, 120, 0);
    let au = enc.encode(RawFrame::Rgb(&rgb)).unwrap().data.to_vec();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(1 << 16);
    for i in 0..3000 {
        let mut b = au.clone();
        match i % 3 {
            0 => b.truncate((rnd() as usize) % au.len()),
            1 => {
                for _ in 0..8 {
                    let at = (rnd() as usize) % b.len();
                    b[at] = rnd() as u8;
                }
            }
            _ => b = (0..(rnd() % 200) as usize).map(|_| rnd() as u8).collect(),
        }
        let mut ps = ParamSets::default();
        let _ = to_avcc(&b, &mut ps, &mut out);
        for nal in nal_units(&b) {
            let _ = parse_sps(nal);
            let _ = slice_type(nal);
        }
        let _ = params_from_avcc(&b);
        let _ = avcc_units(&b).count();
    }
}
