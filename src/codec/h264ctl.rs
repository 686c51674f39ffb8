//! The V4L2 H.264 encoder controls blackbox sets, on the Pi camera's own encoder
//! (bcm2835-v4l2) and on the VideoCore's M2M encoder (bcm2835-codec): one plan, applied
//! through a small seam ([`CtrlSink`]) so the sequence is unit-tested without a device.
//!
//! The plan follows µStreamer (`src/ustreamer/m2m.c`: bitrate, I-period, Constrained
//! Baseline, level 4.0, `REPEAT_SEQ_HEADER=1`) and rpicam-apps (`encoder/h264_encoder.cpp`:
//! bitrate, profile, level, intra period, inline headers), plus the bitrate mode:
//!
//! 1. `BITRATE_MODE` = CBR: the card fills at `video_bitrate_kbps`, so the retention the
//!    dashboard predicts holds for busy scenes too (VBR, the drivers' default, overshoots on
//!    detail and motion, exactly when a dash-cam records what matters).
//! 2. `BITRATE` = `video_bitrate_kbps` x 1000.
//! 3. `H264_PROFILE` = Constrained Baseline: every phone gallery, WhatsApp and every browser
//!    decode it (Android guarantees only Baseline in MP4), it has no B-frames (the store has no
//!    composition offsets), and the software encoder (OpenH264) writes the same profile, so a
//!    recording that moves between encoders keeps one profile. High would save ~10 % bits at
//!    the same quality; the drivers default to it, hence the explicit setting.
//! 4. `H264_LEVEL` = 4.0: covers 1080p30 (8160 macroblocks x 30/s <= 245 760), within Apple's
//!    "High Profile, Level 4.2" ceiling and what every Android decoder takes.
//! 5. `H264_I_PERIOD` = fps x `keyframe_interval_s` (bcm2835-codec maps `GOP_SIZE` to the same
//!    parameter; vicodec has only `GOP_SIZE`, so the M2M client sets both).
//! 6. `REPEAT_SEQ_HEADER` = 1: SPS/PPS before every IDR (off by default on both drivers), so
//!    every segment starts decodable.
//!
//! A control the device doesn't have (`EINVAL`/`ENOTTY`/`EACCES`: UVC cameras, vicodec's
//! H.264 ones) is skipped quietly; other failures are logged and the rest still applied.

use std::ffi::c_void;
use std::mem;
use v4l::v4l_sys::{v4l2_ext_control, v4l2_ext_controls};
use v4l::v4l2::{self as raw, vidioc};

const CID_CODEC_BASE: u32 = 0x0099_0000 | 0x900;
pub const CID_GOP_SIZE: u32 = CID_CODEC_BASE + 203;
pub const CID_BITRATE_MODE: u32 = CID_CODEC_BASE + 206;
pub const CID_BITRATE: u32 = CID_CODEC_BASE + 207;
pub const CID_REPEAT_SEQ_HEADER: u32 = CID_CODEC_BASE + 226;
pub const CID_FORCE_KEY_FRAME: u32 = CID_CODEC_BASE + 229;
pub const CID_H264_I_PERIOD: u32 = CID_CODEC_BASE + 358;
pub const CID_H264_LEVEL: u32 = CID_CODEC_BASE + 359;
pub const CID_H264_PROFILE: u32 = CID_CODEC_BASE + 363;

/// `V4L2_MPEG_VIDEO_BITRATE_MODE_CBR`.
pub const BITRATE_MODE_CBR: i32 = 1;
/// `V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE`.
pub const PROFILE_CONSTRAINED_BASELINE: i32 = 1;
/// `V4L2_MPEG_VIDEO_H264_LEVEL_4_0`.
pub const LEVEL_4_0: i32 = 11;

/// Where controls go: a device's fd, or a recorder in tests.
pub trait CtrlSink {
    fn set(&mut self, id: u32, value: i32) -> std::io::Result<()>;
}

/// A V4L2 device's fd (`VIDIOC_S_EXT_CTRLS`, one control at a time, current value).
pub struct Fd(pub i32);

impl CtrlSink for Fd {
    fn set(&mut self, id: u32, value: i32) -> std::io::Result<()> {
        // SAFETY: plain C structs; all-zero is a valid value.
        let mut c: v4l2_ext_control = unsafe { mem::zeroed() };
        c.id = id;
        c.__bindgen_anon_1.value = value;
        // SAFETY: as above.
        let mut cs: v4l2_ext_controls = unsafe { mem::zeroed() };
        cs.count = 1;
        cs.controls = &mut c;
        // SAFETY: S_EXT_CTRLS takes a v4l2_ext_controls whose `controls` points at `count` (1)
        // v4l2_ext_control, alive for the call.
        unsafe { raw::ioctl(self.0, vidioc::VIDIOC_S_EXT_CTRLS, &mut cs as *mut _ as *mut c_void) }
    }
}

/// One control of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctrl {
    pub id: u32,
    pub value: i32,
    pub name: &'static str,
}

/// The H.264 encoder controls for `fps` and the configuration's bitrate and key-frame
/// interval, in the order they are set (module docs).
pub fn h264_plan(fps: u32, bitrate_kbps: u32, keyframe_interval_s: u32) -> [Ctrl; 6] {
    let period = fps.max(1).saturating_mul(keyframe_interval_s.max(1)).min(i32::MAX as u32) as i32;
    let bps = bitrate_kbps.saturating_mul(1000).min(i32::MAX as u32) as i32;
    [
        Ctrl { id: CID_BITRATE_MODE, value: BITRATE_MODE_CBR, name: "video_bitrate_mode" },
        Ctrl { id: CID_BITRATE, value: bps, name: "video_bitrate" },
        Ctrl { id: CID_H264_PROFILE, value: PROFILE_CONSTRAINED_BASELINE, name: "h264_profile" },
        Ctrl { id: CID_H264_LEVEL, value: LEVEL_4_0, name: "h264_level" },
        Ctrl { id: CID_H264_I_PERIOD, value: period, name: "h264_i_frame_period" },
        Ctrl { id: CID_REPEAT_SEQ_HEADER, value: 1, name: "repeat_sequence_header" },
    ]
}

/// Applies `plan` to `sink`; the controls that took. Missing controls are skipped quietly
/// (debug log), other failures logged as warnings; nothing stops at a failure.
pub fn apply(sink: &mut dyn CtrlSink, what: &str, plan: &[Ctrl]) -> u32 {
    let mut took = 0;
    for c in plan {
        match sink.set(c.id, c.value) {
            Ok(()) => {
                took += 1;
                log::info!("{what}: {} = {}", c.name, c.value);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY | libc::EACCES)) => {
                log::debug!("{what}: no {} control ({e})", c.name);
            }
            Err(e) => log::warn!("{what}: setting {} to {} failed: {e}", c.name, c.value),
        }
    }
    took
}

/// Presses `FORCE_KEY_FRAME`; false when the device has no such control.
pub fn force_key_frame(sink: &mut dyn CtrlSink) -> bool {
    sink.set(CID_FORCE_KEY_FRAME, 1).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what would be set; refuses the ids in `missing` like a driver without them.
    #[derive(Default)]
    struct Recorder {
        set: Vec<(u32, i32)>,
        missing: Vec<u32>,
        broken: Vec<u32>,
    }

    impl CtrlSink for Recorder {
        fn set(&mut self, id: u32, value: i32) -> std::io::Result<()> {
            if self.missing.contains(&id) {
                return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
            }
            if self.broken.contains(&id) {
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            self.set.push((id, value));
            Ok(())
        }
    }

    // The kernel's numbers (include/uapi/linux/v4l2-controls.h), written out independently
    // of the constants above so a typo there fails here.
    const BITRATE_MODE: u32 = 0x0099_09ce;
    const BITRATE: u32 = 0x0099_09cf;
    const REPEAT_SEQ_HEADER: u32 = 0x0099_09e2;
    const FORCE_KEY_FRAME: u32 = 0x0099_09e5;
    const I_PERIOD: u32 = 0x0099_0a66;
    const LEVEL: u32 = 0x0099_0a67;
    const PROFILE: u32 = 0x0099_0a6b;

    #[test]
    fn the_plan_is_ustreamers_sequence_plus_cbr() {
        // µStreamer m2m.c at 1280x720, 2000 kbit/s, gop 30 (QP limits left out: blackbox
        // leaves the drivers' defaults): BITRATE, I_PERIOD, PROFILE=CB, LEVEL=4.0,
        // REPEAT_SEQ_HEADER=1. rpicam-apps --inline --profile baseline --level 4 --intra 30:
        // BITRATE, PROFILE, LEVEL, I_PERIOD, REPEAT_SEQ_HEADER. Ours: the rpicam-apps order
        // (profile before level: a driver may refuse a level the current profile lacks) with
        // the bitrate mode first.
        let mut r = Recorder::default();
        assert_eq!(apply(&mut r, "test", &h264_plan(30, 2000, 1)), 6);
        assert_eq!(
            r.set,
            vec![(BITRATE_MODE, 1), (BITRATE, 2_000_000), (PROFILE, 1), (LEVEL, 11), (I_PERIOD, 30), (REPEAT_SEQ_HEADER, 1)]
        );
        let ustreamer = [(BITRATE, 2_000_000), (I_PERIOD, 30), (PROFILE, 1), (LEVEL, 11), (REPEAT_SEQ_HEADER, 1)];
        for c in ustreamer {
            assert!(r.set.contains(&c), "µStreamer sets {c:?}");
        }
        // The I-period follows fps x keyframe_interval_s.
        let p = h264_plan(25, 8000, 2);
        assert_eq!((p[1].value, p[4].value), (8_000_000, 50));
        // Out-of-range settings saturate instead of wrapping.
        let p = h264_plan(u32::MAX, u32::MAX, u32::MAX);
        assert_eq!((p[1].value, p[4].value), (i32::MAX, i32::MAX));
        let p = h264_plan(0, 0, 0);
        assert_eq!(p[4].value, 1);
    }

    #[test]
    fn missing_and_failing_controls_do_not_stop_the_rest() {
        // bcm2835-v4l2 (camera) has everything but FORCE_KEY_FRAME; a UVC camera has none.
        let mut r = Recorder { missing: vec![BITRATE_MODE], broken: vec![PROFILE], ..Default::default() };
        assert_eq!(apply(&mut r, "test", &h264_plan(30, 2000, 1)), 4);
        assert_eq!(r.set, vec![(BITRATE, 2_000_000), (LEVEL, 11), (I_PERIOD, 30), (REPEAT_SEQ_HEADER, 1)]);
        let mut r = Recorder { missing: vec![FORCE_KEY_FRAME], ..Default::default() };
        assert!(!force_key_frame(&mut r));
        let mut r = Recorder::default();
        assert!(force_key_frame(&mut r));
        assert_eq!(r.set, vec![(FORCE_KEY_FRAME, 1)]);
    }
}
