//! Pixel formats: which of a device's formats blackbox takes, and the negotiation of format,
//! size and rate (and the encoder a raw format needs) when a camera opens.

use super::{err_from_io, V4l2Camera};
use crate::camera::encode::JpegEncoder;
use crate::camera::h264dev::{self, H264Joiner};
use crate::camera::CameraError;
use crate::codec::encoder::H264Settings;
use v4l::video::Capture;
use v4l::{Format, FourCC};

/// The pixel formats blackbox can record, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pixel {
    /// H.264 (`H264`, Annex-B access units: UVC frame-based H.264, bcm2835-v4l2): stored as
    /// delivered. Taken only when recording H.264 (`video_codec=h264`).
    H264,
    /// Motion JPEG (`MJPG`, or `JPEG`): stored untouched.
    Mjpeg,
    /// Packed 4:2:2 `YUYV`: encoded.
    Yuyv,
    /// Semi-planar 4:2:0 `NV12`: encoded.
    Nv12,
}

impl Pixel {
    /// `H264`, `MJPG`/`JPEG`, `YUYV` or `NV12` (any case), as in `--source v4l2:/dev/video0@NV12`.
    pub fn from_name(name: &str) -> Option<Pixel> {
        let b = name.as_bytes();
        let mut up = [0u8; 4];
        if b.len() != 4 {
            return None;
        }
        for (u, c) in up.iter_mut().zip(b) {
            *u = c.to_ascii_uppercase();
        }
        Pixel::from_fourcc(&FourCC::new(&up))
    }
    fn from_fourcc(f: &FourCC) -> Option<Pixel> {
        match &f.repr {
            b"H264" => Some(Pixel::H264),
            b"MJPG" | b"JPEG" => Some(Pixel::Mjpeg),
            b"YUYV" => Some(Pixel::Yuyv),
            b"NV12" => Some(Pixel::Nv12),
            _ => None,
        }
    }
    fn rank(self) -> u8 {
        match self {
            Pixel::H264 => 0,
            Pixel::Mjpeg => 1,
            Pixel::Yuyv => 2,
            Pixel::Nv12 => 3,
        }
    }
}

impl V4l2Camera {
    pub(super) fn negotiate(&mut self, width: u32, height: u32, fps: u32) -> Result<(), CameraError> {
        let dev = &*self.dev;
        let offered = dev.enum_formats().map_err(|e| err_from_io(e, "VIDIOC_ENUM_FMT", &self.path))?;
        let h264 = self.opts.h264.is_some();
        let mut cands: Vec<(Pixel, FourCC)> = offered
            .iter()
            .filter_map(|d| Pixel::from_fourcc(&d.fourcc).map(|p| (p, d.fourcc)))
            .filter(|(p, _)| h264 || *p != Pixel::H264)
            .collect();
        let prefer = self.opts.prefer;
        cands.sort_by_key(|(p, _)| (Some(*p) != prefer, p.rank()));
        if cands.is_empty() {
            let names: Vec<String> = offered.iter().map(|d| d.fourcc.to_string()).collect();
            return Err(CameraError::Invalid(format!(
                "{}: no usable pixel format (offers {}; blackbox takes {}MJPG, JPEG, YUYV, NV12)",
                self.path.display(),
                names.join(", "),
                if h264 { "H264, " } else { "" }
            )));
        }
        // Ask for each in turn; the first one the driver grants at the exact size wins, else
        // the best one at whatever size the driver adjusted to.
        let mut best: Option<(Pixel, Format)> = None;
        for (p, fc) in &cands {
            let got = match dev.set_format(&Format::new(width, height, *fc)) {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Err(err_from_io(e, "VIDIOC_S_FMT", &self.path)),
                Err(e) => {
                    log::warn!("camera {}: {fc} {width}x{height} refused: {e}", self.path.display());
                    continue;
                }
            };
            if got.fourcc != *fc || got.width % 2 != 0 || got.height % 2 != 0 {
                continue;
            }
            let exact = got.width == width && got.height == height;
            if exact {
                best = Some((*p, got));
                break;
            }
            if best.is_none() {
                best = Some((*p, got));
            }
        }
        let Some((pixel, _)) = best else {
            return Err(CameraError::Invalid(format!("{}: the driver granted no usable format", self.path.display())));
        };
        // Set the winner again (later attempts may have changed the device's format).
        let fmt = best.map(|(_, f)| f).unwrap();
        let fmt = dev.set_format(&fmt).map_err(|e| err_from_io(e, "VIDIOC_S_FMT", &self.path))?;
        if fmt.width != width || fmt.height != height {
            log::warn!(
                "camera {}: {}x{} not offered; recording {}x{}",
                self.path.display(),
                width,
                height,
                fmt.width,
                fmt.height
            );
        }
        self.pixel = pixel;
        self.fourcc = fmt.fourcc.repr;
        self.width = fmt.width;
        self.height = fmt.height;
        let min_stride = match pixel {
            Pixel::H264 => 0,
            Pixel::Yuyv => 2 * fmt.width as usize,
            _ => fmt.width as usize,
        };
        self.stride = (fmt.stride as usize).max(min_stride);
        // Frame rate: ask, then believe what the driver reports.
        let want = v4l::video::capture::Parameters::with_fps(fps.max(1));
        let params = match dev.set_params(&want) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!("camera {}: cannot set {fps} fps: {e}", self.path.display());
                dev.params().ok()
            }
        };
        if let Some(p) = params
            && p.interval.numerator > 0
            && p.interval.denominator > 0
        {
            let got = (p.interval.denominator as f64 / p.interval.numerator as f64).round().max(1.0) as u32;
            if got != fps {
                log::warn!("camera {}: asked for {fps} fps, the driver runs at {got}", self.path.display());
            }
            self.fps = got;
        }
        match (pixel, self.opts.h264) {
            (Pixel::Mjpeg, _) => {}
            (Pixel::H264, Some(o)) => {
                self.joiner = Some(Box::new(H264Joiner::new(self.max_buffer_hint(&fmt))));
                h264dev::set_encoder_controls(self.fd, &self.path, self.fps, o.bitrate_kbps, o.keyframe_interval_s);
            }
            (Pixel::H264, None) => {}
            (_, Some(o)) => {
                let fps = self.fps.max(1);
                let settings = H264Settings {
                    width: self.width,
                    height: self.height,
                    fps,
                    bitrate_kbps: o.bitrate_kbps,
                    keyframe_interval: fps.saturating_mul(o.keyframe_interval_s.max(1)),
                };
                self.h264enc = Some(
                    crate::codec::m2m::select_h264(settings)
                        .map_err(|e| CameraError::Invalid(format!("{}: H.264 encoder: {e}", self.path.display())))?,
                );
            }
            (_, None) => {
                let q = self.quality;
                self.encoder = Some(
                    JpegEncoder::new(self.width, self.height, q)
                        .map_err(|e| CameraError::Invalid(format!("{}: {e}", self.path.display())))?,
                );
            }
        }
        Ok(())
    }

    /// The largest frame the driver says a buffer holds (`sizeimage`), for the H.264 joiner's
    /// buffer; the mmap buffers' real length replaces it once they are mapped.
    pub(super) fn max_buffer_hint(&self, fmt: &Format) -> usize {
        (fmt.size as usize).max(64 << 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourccs_rank_mjpeg_first() {
        assert_eq!(Pixel::from_fourcc(&FourCC::new(b"MJPG")), Some(Pixel::Mjpeg));
        assert_eq!(Pixel::from_fourcc(&FourCC::new(b"JPEG")), Some(Pixel::Mjpeg));
        assert_eq!(Pixel::from_fourcc(&FourCC::new(b"YUYV")), Some(Pixel::Yuyv));
        assert_eq!(Pixel::from_fourcc(&FourCC::new(b"NV12")), Some(Pixel::Nv12));
        assert_eq!(Pixel::from_fourcc(&FourCC::new(b"H264")), Some(Pixel::H264));
        assert_eq!(Pixel::from_name("h264"), Some(Pixel::H264));
        assert!(Pixel::H264.rank() < Pixel::Mjpeg.rank());
        assert!(Pixel::Mjpeg.rank() < Pixel::Yuyv.rank() && Pixel::Yuyv.rank() < Pixel::Nv12.rank());
    }
}
