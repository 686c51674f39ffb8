//! The video encoder interface and the software H.264 encoder behind it.
//!
//! One interface for every encoder ([`VideoEncoder`]): a raw frame in, an encoded picture and
//! its key flag out, and "make the next one a key frame". The software H.264 encoder is
//! OpenH264, built from the source bundled in the `openh264` crate (no download; about 1.9 MB
//! in the static aarch64 binary). The Pi's hardware encoders come behind the same trait.
//!
//! Everything a frame needs is allocated in the constructor: the I420 staging planes and the
//! output buffer. OpenH264 itself makes no `malloc` per frame once its first frame is coded
//! (`tests/encode_alloc.rs` pins that).

use super::raw::{self, RawFrame};
use crate::camera::Codec;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile, RateControlMode, UsageType};
use openh264::formats::YUVSlices;
use openh264::OpenH264API;
use std::fmt;

/// Why a frame (or an encoder) was refused.
#[derive(Debug)]
pub enum EncoderError {
    /// Width or height zero, odd or too large; bitrate or key-frame interval out of range.
    BadSettings(String),
    /// The raw frame is shorter than its geometry needs.
    BadInput(String),
    /// The encoder library failed.
    Encoder(String),
    /// A hardware encoder gave no picture within its deadline (it has been reopened).
    Stalled(String),
    /// The encoder device went away (`ENODEV`).
    Gone(String),
}

impl fmt::Display for EncoderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncoderError::BadSettings(w) => write!(f, "bad encoder settings: {w}"),
            EncoderError::BadInput(w) => write!(f, "bad raw frame: {w}"),
            EncoderError::Encoder(w) => write!(f, "H.264 encoder error: {w}"),
            EncoderError::Stalled(w) => write!(f, "encoder stalled: {w}"),
            EncoderError::Gone(w) => write!(f, "encoder device gone: {w}"),
        }
    }
}

impl std::error::Error for EncoderError {}

/// One encoded picture, borrowed from the encoder until its next call.
#[derive(Clone, Copy, Debug)]
pub struct Encoded<'a> {
    pub data: &'a [u8],
    /// A key frame: a JPEG, or an H.264 IDR (carrying its SPS and PPS, Annex-B).
    pub key: bool,
}

/// Frame in, picture out.
pub trait VideoEncoder: Send {
    fn codec(&self) -> Codec;
    /// Encodes one frame. Must not allocate once running.
    fn encode(&mut self, frame: RawFrame<'_>) -> Result<Encoded<'_>, EncoderError>;
    /// Makes the next picture a key frame (after a gap, for a new live viewer).
    fn request_key_frame(&mut self);
    /// The last picture [`VideoEncoder::encode`] produced.
    fn output(&self) -> &[u8];
    /// One line for the log.
    fn describe(&self) -> String;
}

/// What the H.264 encoder is asked for (`video_bitrate_kbps`, `keyframe_interval_s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H264Settings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Frames from one IDR to the next.
    pub keyframe_interval: u32,
}

pub const MIN_BITRATE_KBPS: u32 = 100;
pub const MAX_BITRATE_KBPS: u32 = 50_000;

/// OpenH264, Constrained Baseline (plays on every phone and browser), one IDR every
/// `keyframe_interval` frames, no frame skipping (every camera frame becomes a picture).
pub struct SoftH264 {
    enc: Encoder,
    s: H264Settings,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    out: Vec<u8>,
    force_key: bool,
}

impl SoftH264 {
    pub fn new(s: H264Settings) -> Result<SoftH264, EncoderError> {
        if s.width == 0 || s.height == 0 || !s.width.is_multiple_of(2) || !s.height.is_multiple_of(2) || s.width > 3840 || s.height > 2160 {
            return Err(EncoderError::BadSettings(format!(
                "{}x{}: width and height must be even, at most 3840x2160",
                s.width, s.height
            )));
        }
        if !(MIN_BITRATE_KBPS..=MAX_BITRATE_KBPS).contains(&s.bitrate_kbps) {
            return Err(EncoderError::BadSettings(format!(
                "bitrate {} kbit/s outside {MIN_BITRATE_KBPS}..{MAX_BITRATE_KBPS}",
                s.bitrate_kbps
            )));
        }
        if s.fps == 0 || s.keyframe_interval == 0 {
            return Err(EncoderError::BadSettings("frame rate and key-frame interval must be at least 1".into()));
        }
        let cfg = EncoderConfig::new()
            .bitrate(BitRate::from_bps(s.bitrate_kbps * 1000))
            .max_frame_rate(FrameRate::from_hz(s.fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            .skip_frames(false)
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .intra_frame_period(IntraFramePeriod::from_num_frames(s.keyframe_interval))
            .scene_change_detect(false)
            .num_threads(1);
        let enc = Encoder::with_api_config(OpenH264API::from_source(), cfg).map_err(|e| EncoderError::Encoder(e.to_string()))?;
        let (w, h) = (s.width as usize, s.height as usize);
        Ok(SoftH264 {
            enc,
            s,
            y: vec![0; w * h],
            u: vec![128; w * h / 4],
            v: vec![128; w * h / 4],
            // An H.264 picture of baseline I macroblocks stays well under the raw size; an
            // encoder output beyond it is refused rather than grown.
            out: Vec::with_capacity(w * h * 3 / 2 + 4096),
            force_key: false,
        })
    }

    pub fn settings(&self) -> H264Settings {
        self.s
    }

}

impl VideoEncoder for SoftH264 {
    fn codec(&self) -> Codec {
        Codec::H264
    }

    fn encode(&mut self, frame: RawFrame<'_>) -> Result<Encoded<'_>, EncoderError> {
        let (w, h) = (self.s.width as usize, self.s.height as usize);
        raw::to_i420(frame, w, h, &mut self.y, &mut self.u, &mut self.v).map_err(EncoderError::BadInput)?;
        if self.force_key {
            self.enc.force_intra_frame();
            self.force_key = false;
        }
        let yuv = YUVSlices::new((&self.y, &self.u, &self.v), (w, h), (w, w / 2, w / 2));
        let bs = self.enc.encode(&yuv).map_err(|e| EncoderError::Encoder(e.to_string()))?;
        let key = match bs.frame_type() {
            FrameType::IDR => true,
            FrameType::I | FrameType::P | FrameType::IPMixed => false,
            FrameType::Skip | FrameType::Invalid => return Err(EncoderError::Encoder("the encoder produced no picture".into())),
        };
        self.out.clear();
        for l in 0..bs.num_layers() {
            let Some(layer) = bs.layer(l) else { continue };
            for n in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(n) else { continue };
                if self.out.len() + nal.len() > self.out.capacity() {
                    return Err(EncoderError::Encoder("picture larger than the output buffer".into()));
                }
                self.out.extend_from_slice(nal);
            }
        }
        Ok(Encoded { data: &self.out, key })
    }

    fn request_key_frame(&mut self) {
        self.force_key = true;
    }

    fn output(&self) -> &[u8] {
        &self.out
    }

    fn describe(&self) -> String {
        format!(
            "encoded to H.264 Constrained Baseline {} kbit/s, key frame every {} frames (OpenH264, software)",
            self.s.bitrate_kbps, self.s.keyframe_interval
        )
    }
}

/// Decodes H.264 pictures (for snapshots and thumbnails of H.264 recordings).
pub struct SoftH264Decoder {
    dec: openh264::decoder::Decoder,
}

impl SoftH264Decoder {
    pub fn new() -> Result<SoftH264Decoder, EncoderError> {
        let dec = openh264::decoder::Decoder::new().map_err(|e| EncoderError::Encoder(e.to_string()))?;
        Ok(SoftH264Decoder { dec })
    }

    /// Decodes one Annex-B access unit; the picture as I420 planes into `y`, `u`, `v`
    /// (resized to fit) and its size, or `None` when the decoder has no picture yet.
    pub fn decode_i420(&mut self, au: &[u8], y: &mut Vec<u8>, u: &mut Vec<u8>, v: &mut Vec<u8>) -> Result<Option<(usize, usize)>, EncoderError> {
        use openh264::formats::YUVSource;
        let Some(pic) = self.dec.decode(au).map_err(|e| EncoderError::Encoder(e.to_string()))? else { return Ok(None) };
        let (w, h) = pic.dimensions();
        let (sy, su, sv) = pic.strides();
        let copy = |dst: &mut Vec<u8>, src: &[u8], stride: usize, cw: usize, ch: usize| {
            dst.clear();
            for r in 0..ch {
                if let Some(row) = src.get(r * stride..r * stride + cw) {
                    dst.extend_from_slice(row);
                }
            }
        };
        copy(y, pic.y(), sy, w, h);
        copy(u, pic.u(), su, w / 2, h / 2);
        copy(v, pic.v(), sv, w / 2, h / 2);
        Ok(Some((w, h)))
    }
}
