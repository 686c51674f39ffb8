//! H.264 from any JPEG camera: the built-in test pattern, `file:` JPEG sources, MJPEG webcams
//! and raw webcams (whose frames the V4L2 camera has already made JPEGs). Each frame is
//! decoded by libjpeg-turbo into preallocated planes and encoded by the VideoCore's M2M H.264
//! encoder where the machine has one ([`crate::codec::m2m`]; `BLACKBOX_ENCODER=software`
//! forces software), else the software encoder ([`crate::codec::encoder`]). A stalled M2M
//! encoder is reopened; the frame it refused is counted as an encoder loss and recorded as a
//! gap. Nothing is allocated per frame on the Rust side.

use super::{Camera, CameraError, Codec, FrameMeta, Losses};
use crate::codec::encoder::{H264Settings, VideoEncoder};
use crate::codec::jpeg_yuv;
use turbojpeg::Decompressor;

/// A camera whose JPEG frames come out as H.264 access units (Annex-B, IDRs with SPS/PPS).
pub struct H264Camera {
    inner: Box<dyn Camera>,
    dec: Decompressor,
    /// Decoded planes (worst case 4:4:4).
    planes: Vec<u8>,
    enc: Box<dyn VideoEncoder>,
    settings: H264Settings,
    /// The last frame failed: ask the encoder for a key frame before the next one.
    rekey: bool,
    encoder_drops: u64,
    /// Frames of the inner camera lost before the last one the encoder failed on.
    carried_lost: u32,
}

impl H264Camera {
    pub fn new(inner: Box<dyn Camera>, bitrate_kbps: u32, keyframe_interval_s: u32) -> Result<H264Camera, CameraError> {
        let (w, h) = inner.size();
        let fps = inner.fps().max(1);
        let settings = H264Settings {
            width: w & !1,
            height: h & !1,
            fps,
            bitrate_kbps,
            keyframe_interval: fps.saturating_mul(keyframe_interval_s.max(1)),
        };
        // The VideoCore's M2M encoder where the machine has one, else OpenH264 (the log says).
        let enc = crate::codec::m2m::select_h264(settings).map_err(|e| CameraError::Invalid(format!("H.264 encoder: {e}")))?;
        let dec = Decompressor::new().map_err(|e| CameraError::Invalid(format!("JPEG decoder: {e}")))?;
        let planes = vec![0u8; jpeg_yuv::planes_len(w as usize, h as usize)];
        Ok(H264Camera { inner, dec, planes, enc, settings, rekey: false, encoder_drops: 0, carried_lost: 0 })
    }
}

/// Decodes `jpeg` into `planes` and encodes it: the picture.
fn transcode<'a>(
    dec: &mut Decompressor,
    planes: &mut [u8],
    enc: &'a mut dyn VideoEncoder,
    s: H264Settings,
    jpeg: &[u8],
) -> Result<crate::codec::encoder::Encoded<'a>, String> {
    let frame = jpeg_yuv::decode(dec, planes, jpeg, s.width as usize, s.height as usize)?;
    enc.encode(frame).map_err(|e| e.to_string())
}

impl Camera for H264Camera {
    fn describe(&self) -> String {
        format!("{}; {}", self.inner.describe(), self.enc.describe())
    }
    fn fps(&self) -> u32 {
        self.inner.fps()
    }
    fn size(&self) -> (u32, u32) {
        (self.settings.width, self.settings.height)
    }
    fn device(&self) -> Option<&std::path::Path> {
        self.inner.device()
    }
    fn losses(&self) -> Losses {
        let l = self.inner.losses();
        Losses { encoder: l.encoder + self.encoder_drops, ..l }
    }
    fn sequence(&self) -> Option<u32> {
        self.inner.sequence()
    }
    fn waits_for_consumer(&self) -> bool {
        self.inner.waits_for_consumer()
    }
    fn request_key_frame(&mut self) {
        self.enc.request_key_frame();
        // The inner camera's own H.264 frames (passed through) need the key frame from it.
        self.inner.request_key_frame();
    }

    fn delivers(&self) -> Codec {
        Codec::H264
    }

    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
        let (meta, data) = self.inner.next_frame()?;
        // Frames that are not JPEG (H.264 from a camera that came back delivering it) pass.
        if meta.codec != Codec::Jpeg {
            return Ok((meta, data));
        }
        if std::mem::take(&mut self.rekey) {
            self.enc.request_key_frame();
        }
        match transcode(&mut self.dec, &mut self.planes, self.enc.as_mut(), self.settings, data) {
            Ok(e) => {
                let lost_before = meta.lost_before.saturating_add(std::mem::take(&mut self.carried_lost));
                let meta = FrameMeta { codec: Codec::H264, key: e.key, lost_before, ..meta };
                Ok((meta, e.data))
            }
            Err(why) => {
                self.encoder_drops += 1;
                self.carried_lost = self.carried_lost.saturating_add(meta.lost_before);
                if self.encoder_drops <= 3 || self.encoder_drops.is_multiple_of(1000) {
                    log::warn!("H.264 encoding failed: {why} ({} frames so far)", self.encoder_drops);
                }
                // The next picture must not refer to the one that was lost.
                self.rekey = true;
                Err(CameraError::Skipped)
            }
        }
    }
}
