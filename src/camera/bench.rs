//! `blackbox bench-encode` (hidden; for `scripts/bench capture` and `scripts/bench h264`): the
//! raw-camera encode paths fed from a file of raw frames instead of a V4L2 device, so that their
//! CPU per frame and their output can be compared with ffmpeg's encoders on the very same frames.
//!
//! JPEG: per frame it does what `V4l2Camera::advance` does after the dequeue: optionally draws
//! the timestamp overlay in place, then encodes with [`JpegEncoder`] at the given quality.
//!
//! H.264: the raw frame goes to the software encoder ([`SoftH264`]) directly (as a raw V4L2
//! camera recording H.264 does), or (`via_jpeg`) the way JPEG sources are recorded as H.264:
//! a JPEG first, then [`H264Camera`] decodes it and encodes H.264.

use crate::camera::encode::JpegEncoder;
use crate::camera::overlay::{self, Raw};
use crate::camera::transcode::H264Camera;
use crate::camera::{Camera, CameraError, Codec, FrameMeta};
use crate::clock;
use crate::codec::encoder::{H264Settings, SoftH264, VideoEncoder};
use crate::codec::raw::RawFrame;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// How the raw frames are laid out in the file (rows packed, frames back to back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Yuyv,
    Nv12,
    /// Planar 4:2:0: Y, then U, then V (ffmpeg's `yuv420p`). H.264 only.
    I420,
}

impl Layout {
    fn frame_len(self, w: usize, h: usize) -> usize {
        match self {
            Layout::Yuyv => 2 * w * h,
            Layout::Nv12 | Layout::I420 => w * h * 3 / 2,
        }
    }
    fn overlay(self) -> Option<Raw> {
        match self {
            Layout::Yuyv => Some(Raw::Yuyv),
            Layout::Nv12 => Some(Raw::Nv12),
            Layout::I420 => None,
        }
    }
}

/// What the H.264 path is asked for.
#[derive(Clone, Copy, Debug)]
pub struct H264Bench {
    pub bitrate_kbps: u32,
    /// Frames from one IDR to the next.
    pub keyframe_interval: u32,
    pub fps: u32,
    /// Through a JPEG of this quality and [`H264Camera`], as the recorder does for JPEG sources.
    pub via_jpeg: Option<u8>,
}

/// Frames, bytes and key frames written.
#[derive(Clone, Copy, Debug, Default)]
pub struct Encoded {
    pub frames: u64,
    pub bytes: u64,
    pub keys: u64,
}

/// The raw file, mapped copy-on-write (the overlay draws into it), cut into frames.
struct RawFile {
    map: memmap2::MmapMut,
    frame_len: usize,
    n: usize,
}

impl RawFile {
    fn open(raw: &Path, layout: Layout, width: u32, height: u32) -> Result<RawFile, String> {
        let frame_len = layout.frame_len(width as usize, height as usize);
        let file = File::open(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
        // SAFETY: a private copy-on-write mapping: the overlay's writes never reach the file, and
        // nothing else maps it in this process.
        let map = unsafe { memmap2::MmapOptions::new().map_copy(&file) }.map_err(|e| format!("{}: {e}", raw.display()))?;
        let n = map.len() / frame_len;
        if n == 0 {
            return Err(format!("{}: shorter than one {width}x{height} frame ({frame_len} bytes)", raw.display()));
        }
        Ok(RawFile { map, frame_len, n })
    }

    /// Frame `i` (cycling through the file), with the timestamp overlay drawn when asked.
    fn frame(&mut self, i: u64, layout: Layout, w: usize, h: usize, timestamp: bool) -> &mut [u8] {
        let f = &mut self.map[(i as usize % self.n) * self.frame_len..][..self.frame_len];
        if let (true, Some(raw)) = (timestamp, layout.overlay()) {
            let mut text = [0u8; overlay::TEXT_MAX];
            let len = overlay::timestamp_text(clock::now_utc_ns(), &mut text);
            let stride = match raw {
                Raw::Yuyv => 2 * w,
                Raw::Nv12 => w,
            };
            overlay::draw(f, raw, stride, w, h, &text[..len]);
        }
        f
    }
}

fn raw_frame(f: &[u8], layout: Layout, w: usize, h: usize) -> RawFrame<'_> {
    match layout {
        Layout::Yuyv => RawFrame::Yuyv { data: f, stride: 2 * w },
        Layout::Nv12 => RawFrame::Nv12 { data: f, stride: w },
        Layout::I420 => {
            let (y, uv) = f.split_at(w * h);
            let (u, v) = uv.split_at(w * h / 4);
            RawFrame::Planar { y, u, v, cw: w / 2, ch: h / 2 }
        }
    }
}

fn jpeg<'a>(enc: &'a mut JpegEncoder, f: &[u8], layout: Layout, w: usize) -> Result<&'a [u8], String> {
    match layout {
        Layout::Yuyv => enc.encode_yuyv(f, 2 * w),
        Layout::Nv12 => enc.encode_nv12(f, w),
        Layout::I420 => return Err("the JPEG encoder takes YUYV or NV12 frames, not I420".into()),
    }
    .map_err(|e| e.to_string())
}

fn writer(out: Option<&Path>) -> Result<Option<BufWriter<File>>, String> {
    out.map(|p| File::create(p).map(|f| BufWriter::with_capacity(1 << 20, f)).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()
}

fn write(out: &mut Option<BufWriter<File>>, data: &[u8]) -> Result<(), String> {
    match out {
        Some(o) => o.write_all(data).map_err(|e| format!("writing the output: {e}")),
        None => Ok(()),
    }
}

fn finish(out: Option<BufWriter<File>>) -> Result<(), String> {
    match out {
        Some(mut o) => o.flush().and_then(|()| o.get_ref().sync_all()).map_err(|e| format!("writing the output: {e}")),
        None => Ok(()),
    }
}

/// Encodes `frames` frames from `raw` (back-to-back YUYV or NV12 frames of `width` x `height`,
/// rows packed), cycling through the file, to JPEG; the JPEGs back to back into `out` if given.
#[allow(clippy::too_many_arguments)]
pub fn encode_file(
    raw: &Path,
    layout: Layout,
    width: u32,
    height: u32,
    quality: u8,
    frames: u64,
    timestamp: bool,
    out: Option<&Path>,
) -> Result<Encoded, String> {
    let (w, h) = (width as usize, height as usize);
    let mut file = RawFile::open(raw, layout, width, height)?;
    let mut enc = JpegEncoder::new(width, height, quality).map_err(|e| e.to_string())?;
    let mut out = writer(out)?;
    let mut r = Encoded::default();
    for i in 0..frames {
        let f = file.frame(i, layout, w, h, timestamp);
        let data = jpeg(&mut enc, f, layout, w)?;
        write(&mut out, data)?;
        r.bytes += data.len() as u64;
        r.keys += 1;
    }
    finish(out)?;
    r.frames = frames;
    Ok(r)
}

/// Encodes `frames` frames from `raw` (cycling through the file) to H.264 with the software
/// encoder; the Annex-B stream into `out` if given.
#[allow(clippy::too_many_arguments)]
pub fn encode_file_h264(
    raw: &Path,
    layout: Layout,
    width: u32,
    height: u32,
    frames: u64,
    timestamp: bool,
    s: H264Bench,
    out: Option<&Path>,
) -> Result<Encoded, String> {
    let (w, h) = (width as usize, height as usize);
    let file = RawFile::open(raw, layout, width, height)?;
    let mut out = writer(out)?;
    let mut r = Encoded::default();
    if let Some(quality) = s.via_jpeg {
        if !s.keyframe_interval.is_multiple_of(s.fps) {
            return Err("--via-jpeg takes a key-frame interval in whole seconds (a multiple of --fps)".into());
        }
        let enc = JpegEncoder::new(width, height, quality).map_err(|e| e.to_string())?;
        let inner = JpegFromRaw { file, enc, layout, w, h, fps: s.fps, timestamp, i: 0 };
        let mut cam = H264Camera::new(Box::new(inner), s.bitrate_kbps, s.keyframe_interval / s.fps).map_err(|e| e.to_string())?;
        for _ in 0..frames {
            let (meta, data) = cam.next_frame().map_err(|e| e.to_string())?;
            write(&mut out, data)?;
            r.bytes += data.len() as u64;
            r.keys += u64::from(meta.key);
        }
    } else {
        let mut file = file;
        let settings = H264Settings { width, height, fps: s.fps, bitrate_kbps: s.bitrate_kbps, keyframe_interval: s.keyframe_interval };
        let mut enc = SoftH264::new(settings).map_err(|e| e.to_string())?;
        for i in 0..frames {
            let f = file.frame(i, layout, w, h, timestamp);
            let e = enc.encode(raw_frame(f, layout, w, h)).map_err(|e| e.to_string())?;
            write(&mut out, e.data)?;
            r.bytes += e.data.len() as u64;
            r.keys += u64::from(e.key);
        }
    }
    finish(out)?;
    r.frames = frames;
    Ok(r)
}

/// The V4L2 camera's part of the raw path: each raw frame made a JPEG (what `H264Camera` then
/// decodes), as fast as asked.
struct JpegFromRaw {
    file: RawFile,
    enc: JpegEncoder,
    layout: Layout,
    w: usize,
    h: usize,
    fps: u32,
    timestamp: bool,
    i: u64,
}

impl Camera for JpegFromRaw {
    fn describe(&self) -> String {
        "raw frames from a file, made JPEGs (bench-encode)".into()
    }
    fn fps(&self) -> u32 {
        self.fps
    }
    fn size(&self) -> (u32, u32) {
        (self.w as u32, self.h as u32)
    }
    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
        let t = self.i * 1_000_000_000 / u64::from(self.fps);
        let f = self.file.frame(self.i, self.layout, self.w, self.h, self.timestamp);
        self.i += 1;
        let data = jpeg(&mut self.enc, f, self.layout, self.w).map_err(CameraError::Invalid)?;
        let meta = FrameMeta { mono_ns: t, utc_ns: t as i64, codec: Codec::Jpeg, key: true, lost_before: 0 };
        Ok((meta, data))
    }
}
