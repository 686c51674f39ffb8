//! H.264 straight from a V4L2 device (UVC webcams with frame-based H.264, the Pi camera
//! through bcm2835-v4l2): what the capture loop needs besides the bytes.
//!
//! - Key frames come from the NAL unit types: uvcvideo never sets `V4L2_BUF_FLAG_KEYFRAME`.
//! - Some UVC cameras send SPS/PPS once, at the start of the stream. [`H264Joiner`] keeps the
//!   newest ones and, when an IDR comes without them, hands out a copy of the access unit with
//!   them put in front (after any access-unit delimiter), in a buffer sized at open: every IDR
//!   the recorder sees carries its parameter sets, and nothing is allocated per frame.
//! - Encoder controls (bcm2835-v4l2 has them, UVC cameras don't): [`crate::codec::h264ctl`]
//!   (CBR `BITRATE`, Constrained Baseline level 4.0, `H264_I_PERIOD` = fps x
//!   `keyframe_interval_s`, `REPEAT_SEQ_HEADER=1`); a device without a control is left as it
//!   is, quietly. `FORCE_KEY_FRAME` where present (bcm2835-v4l2 has none).

use crate::codec::h264::{self, MAX_PARAM_SET, NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, ParamSets};
use crate::codec::h264ctl;
use std::path::Path;

/// Bytes the parameter sets add in front of an IDR at most (two 4-byte start codes).
const JOIN_EXTRA: usize = 2 * (4 + MAX_PARAM_SET);

/// Does this Annex-B access unit hold an IDR slice?
pub fn is_idr(au: &[u8]) -> bool {
    h264::nal_units(au).any(|n| h264::nal_type(n) == NAL_IDR)
}

/// What [`H264Joiner::take`] made of an access unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Use the access unit as delivered; `idr`: it is a key frame.
    AsIs { idr: bool },
    /// An IDR that lacked SPS/PPS: use [`H264Joiner::output`] (the IDR with them).
    Joined,
}

/// Caches SPS/PPS and puts them in front of IDRs that come without them (module docs).
pub struct H264Joiner {
    ps: ParamSets,
    out: Vec<u8>,
    /// IDRs that needed the cached parameter sets.
    pub joined: u64,
    /// IDRs that came without parameter sets before any were seen (passed as they are).
    pub orphans: u64,
}

impl H264Joiner {
    /// A joiner for access units of up to `max_au` bytes.
    pub fn new(max_au: usize) -> H264Joiner {
        H264Joiner { ps: ParamSets::default(), out: Vec::with_capacity(max_au + JOIN_EXTRA), joined: 0, orphans: 0 }
    }

    /// Makes room for access units of up to `max_au` bytes (at open, not per frame).
    pub fn reserve_for(&mut self, max_au: usize) {
        if self.out.capacity() < max_au + JOIN_EXTRA {
            self.out = Vec::with_capacity(max_au + JOIN_EXTRA);
        }
    }

    /// The cached parameter sets.
    pub fn params(&self) -> &ParamSets {
        &self.ps
    }

    /// The last access unit [`H264Joiner::take`] joined.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Looks at one access unit: caches its SPS/PPS, tells an IDR, and joins the cached
    /// parameter sets to an IDR that lacks them. Never allocates.
    pub fn take(&mut self, au: &[u8]) -> Taken {
        let (mut idr, mut has_sps, mut has_pps) = (false, false, false);
        // Where the parameter sets go: before the first NAL unit that is neither an AUD nor
        // an SPS (an SPS present stays first).
        let mut insert_at: Option<usize> = None;
        for nal in h264::nal_units(au) {
            let t = h264::nal_type(nal);
            match t {
                NAL_SPS => has_sps = true,
                NAL_PPS => has_pps = true,
                NAL_IDR => idr = true,
                _ => {}
            }
            if matches!(t, NAL_SPS | NAL_PPS) {
                // Too long or unreadable: not cached (the recorder reports the access unit).
                let _ = self.ps.update(nal);
            }
            if insert_at.is_none() && t != NAL_AUD && t != NAL_SPS {
                let off = nal.as_ptr() as usize - au.as_ptr() as usize;
                let mut sc = off.saturating_sub(3);
                if sc > 0 && au[sc - 1] == 0 {
                    sc -= 1;
                }
                insert_at = Some(sc);
            }
        }
        if !idr || (has_sps && has_pps) {
            return Taken::AsIs { idr };
        }
        if !self.ps.complete() {
            self.orphans += 1;
            return Taken::AsIs { idr };
        }
        let at = insert_at.unwrap_or(0).min(au.len());
        let need = au.len() + JOIN_EXTRA;
        if need > self.out.capacity() {
            // Larger than any mmap buffer: can't happen; pass it as it is.
            return Taken::AsIs { idr };
        }
        self.out.clear();
        self.out.extend_from_slice(&au[..at]);
        if !has_sps {
            self.out.extend_from_slice(&[0, 0, 0, 1]);
            self.out.extend_from_slice(self.ps.sps());
        }
        if !has_pps {
            self.out.extend_from_slice(&[0, 0, 0, 1]);
            self.out.extend_from_slice(self.ps.pps());
        }
        self.out.extend_from_slice(&au[at..]);
        self.joined += 1;
        Taken::Joined
    }
}

/// Sets the encoder controls of a device that encodes H.264 itself (bcm2835-v4l2): the plan
/// in [`crate::codec::h264ctl`] (CBR at the bitrate, Constrained Baseline 4.0, one IDR every
/// `fps * keyframe_interval_s` frames, SPS/PPS with every IDR). A control the device doesn't
/// have (UVC cameras) is skipped quietly; other failures are logged.
pub fn set_encoder_controls(fd: i32, path: &Path, fps: u32, bitrate_kbps: u32, keyframe_interval_s: u32) {
    let what = format!("camera {}", path.display());
    h264ctl::apply(&mut h264ctl::Fd(fd), &what, &h264ctl::h264_plan(fps, bitrate_kbps, keyframe_interval_s));
}

/// Presses the device's `FORCE_KEY_FRAME` button; false when it has none (bcm2835-v4l2: the
/// store then rotates at the camera's next IDR, at most one GOP late).
pub fn force_key_frame(fd: i32) -> bool {
    h264ctl::force_key_frame(&mut h264ctl::Fd(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    // libx264, 320x240 Constrained Baseline 3.1.
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0f, 0x03, 0xc6, 0x0c,
        0xa8,
    ];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn idrs_without_parameter_sets_get_the_cached_ones_after_the_aud() {
        assert!(h264::parse_sps(SPS).is_some(), "test SPS parses");
        let aud: &[u8] = &[0x09, 0xf0];
        let idr: &[u8] = &[0x65, 0x88, 0x80, 0x40];
        let p: &[u8] = &[0x41, 0x9a, 0x02];
        let mut j = H264Joiner::new(1000);
        // An IDR before any parameter set: as it is (counted).
        assert_eq!(j.take(&au(&[aud, idr])), Taken::AsIs { idr: true });
        assert_eq!(j.orphans, 1);
        // The first IDR carries them: as it is, and they are cached.
        assert_eq!(j.take(&au(&[aud, SPS, PPS, idr])), Taken::AsIs { idr: true });
        assert_eq!(j.take(&au(&[aud, p])), Taken::AsIs { idr: false });
        // A later IDR without: joined, in the right order.
        assert_eq!(j.take(&au(&[aud, idr])), Taken::Joined);
        assert_eq!(j.output(), &au(&[aud, SPS, PPS, idr])[..]);
        // Without an AUD, with an SPS but no PPS.
        assert_eq!(j.take(&au(&[SPS, idr])), Taken::Joined);
        assert_eq!(j.output(), &au(&[SPS, PPS, idr])[..]);
        assert_eq!(j.take(&au(&[idr])), Taken::Joined);
        assert_eq!(j.output(), &au(&[SPS, PPS, idr])[..]);
        assert_eq!(j.joined, 3);
        // Nothing allocated: the buffer kept its capacity.
        let cap = j.out.capacity();
        for _ in 0..10 {
            j.take(&au(&[idr]));
        }
        assert_eq!(j.out.capacity(), cap);
    }

    #[test]
    fn garbage_and_oversized_units_pass_as_they_are() {
        let mut j = H264Joiner::new(16);
        j.take(&au(&[SPS, PPS, &[0x65, 0x88]]));
        let big = au(&[&[0x65; 2000][..]]);
        assert_eq!(j.take(&big), Taken::AsIs { idr: true });
        for junk in [&b""[..], b"\x00\x00\x01", b"\x00\x00\x00\x01\x65", b"garbage", b"\x00\x00\x01\x67\xff"] {
            let _ = j.take(junk);
        }
    }
}
