//! `blackbox bench-encode` (hidden; for `scripts/bench capture`): the raw-camera encode path
//! fed from a file of raw frames instead of a V4L2 device, so that its CPU per frame can be
//! compared with ffmpeg's mjpeg encoder on the very same frames.
//!
//! Per frame it does what `V4l2Camera::advance` does after the dequeue: optionally draws the
//! timestamp overlay in place, then encodes with [`JpegEncoder`] at the given quality.

use crate::camera::encode::JpegEncoder;
use crate::camera::overlay::{self, Raw};
use crate::clock;
use std::fs::File;
use std::path::Path;

/// Encodes `frames` frames from `raw` (back-to-back YUYV or NV12 frames of `width` x `height`,
/// rows packed), cycling through the file. Returns (frames, JPEG bytes).
pub fn encode_file(
    raw: &Path,
    layout: Raw,
    width: u32,
    height: u32,
    quality: u8,
    frames: u64,
    timestamp: bool,
) -> Result<(u64, u64), String> {
    let (w, h) = (width as usize, height as usize);
    let (stride, frame_len) = match layout {
        Raw::Yuyv => (2 * w, 2 * w * h),
        Raw::Nv12 => (w, w * h * 3 / 2),
    };
    let file = File::open(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    // SAFETY: a private copy-on-write mapping: the overlay's writes never reach the file, and
    // nothing else maps it in this process.
    let mut map = unsafe { memmap2::MmapOptions::new().map_copy(&file) }.map_err(|e| format!("{}: {e}", raw.display()))?;
    let n = map.len() / frame_len;
    if n == 0 {
        return Err(format!("{}: shorter than one {width}x{height} frame ({frame_len} bytes)", raw.display()));
    }
    let mut enc = JpegEncoder::new(width, height, quality).map_err(|e| e.to_string())?;
    let mut bytes = 0u64;
    for i in 0..frames {
        let f = &mut map[(i as usize % n) * frame_len..][..frame_len];
        if timestamp {
            let mut text = [0u8; overlay::TEXT_MAX];
            let len = overlay::timestamp_text(clock::now_utc_ns(), &mut text);
            overlay::draw(f, layout, stride, w, h, &text[..len]);
        }
        let jpeg = match layout {
            Raw::Yuyv => enc.encode_yuyv(f, stride),
            Raw::Nv12 => enc.encode_nv12(f, stride),
        }
        .map_err(|e| e.to_string())?;
        bytes += jpeg.len() as u64;
    }
    Ok((frames, bytes))
}
