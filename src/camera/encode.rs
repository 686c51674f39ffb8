//! JPEG encoding for cameras that only deliver raw frames (YUYV, NV12).
//!
//! The encoder is libjpeg-turbo (bundled by the `turbojpeg` crate, built with cmake + nasm),
//! chosen by measurement: see "JPEG encoder choice (issue 3)" in docs/BENCHMARKS.md.
//!
//! Everything is allocated in [`JpegEncoder::new`]: the planar Y/U/V staging buffers and the
//! output buffer, sized for the worst case (`tj3JPEGBufSize`), so the output can never outgrow
//! it and libjpeg-turbo is told not to reallocate it. Rust-side, a frame allocates nothing.
//! libjpeg-turbo's own memory manager still makes a few `malloc` calls per image (its
//! per-image pools); `tests/encode_alloc.rs` pins that count and docs/BENCHMARKS.md has the
//! plan to remove it.
//!
//! The raw samples are coded as they come (camera YUV is treated as JFIF YCbCr, as MJPEG
//! cameras and ffmpeg's mjpeg do). YUYV is coded 4:2:2 (its own chroma, untouched), NV12 4:2:0.

use std::fmt;

/// Why a frame (or an encoder) was refused.
#[derive(Debug)]
pub enum EncodeError {
    /// Width or height zero, odd, or larger than JPEG allows; or quality outside 1..=100.
    BadGeometry(String),
    /// The raw frame is shorter than its geometry needs, or the stride is shorter than a row.
    BadInput { needed: usize, got: usize, stride: usize, min_stride: usize },
    /// libjpeg-turbo reported an error.
    Encoder(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BadGeometry(why) => write!(f, "bad encoder geometry: {why}"),
            EncodeError::BadInput { needed, got, stride, min_stride } => write!(
                f,
                "raw frame too short: {got} bytes with stride {stride} (need {needed} bytes, stride >= {min_stride})"
            ),
            EncodeError::Encoder(why) => write!(f, "JPEG encoder error: {why}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A JPEG encoder for one frame size and quality, with all its buffers preallocated.
pub struct JpegEncoder {
    width: usize,
    height: usize,
    tj: turbojpeg::Compressor,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    out: Vec<u8>,
    /// Length of the last JPEG in `out`.
    out_len: usize,
}

impl fmt::Debug for JpegEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JpegEncoder")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("out_capacity", &self.out.len())
            .finish()
    }
}

fn tj_err(e: turbojpeg::Error) -> EncodeError {
    EncodeError::Encoder(e.to_string())
}

impl JpegEncoder {
    /// An encoder for `width` x `height` frames (both even, at most 65535) at `quality`
    /// (1..=100, IJG scale: the `mjpeg_quality` setting).
    pub fn new(width: u32, height: u32, quality: u8) -> Result<Self, EncodeError> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(EncodeError::BadGeometry(format!(
                "{width}x{height}: width and height must be even and nonzero"
            )));
        }
        if width > 65535 || height > 65535 {
            return Err(EncodeError::BadGeometry(format!("{width}x{height}: JPEG allows at most 65535")));
        }
        if !(1..=100).contains(&quality) {
            return Err(EncodeError::BadGeometry(format!("quality {quality}: allowed 1..=100")));
        }
        let (w, h) = (width as usize, height as usize);
        let mut tj = turbojpeg::Compressor::new().map_err(tj_err)?;
        tj.set_quality(i32::from(quality)).map_err(tj_err)?;
        tj.set_subsamp(turbojpeg::Subsamp::Sub2x1).map_err(tj_err)?;
        // Worst case over the two layouts we code (4:2:2 needs more than 4:2:0).
        let cap = turbojpeg::compressed_buf_len(w, h, turbojpeg::Subsamp::Sub2x1)
            .map_err(tj_err)?
            .max(turbojpeg::compressed_buf_len(w, h, turbojpeg::Subsamp::Sub2x2).map_err(tj_err)?);
        Ok(JpegEncoder {
            width: w,
            height: h,
            tj,
            y: vec![0; w * h],
            u: vec![0; w / 2 * h],
            v: vec![0; w / 2 * h],
            out: vec![0; cap],
            out_len: 0,
        })
    }

    /// The last JPEG encoded (empty before the first or after a failed one).
    pub fn output(&self) -> &[u8] {
        &self.out[..self.out_len]
    }

    /// Frame width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Frame height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Bytes a packed YUYV frame needs: `stride * (height - 1) + 2 * width`.
    fn check(&self, len: usize, stride: usize, min_stride: usize, rows: usize) -> Result<(), EncodeError> {
        let needed = stride.saturating_mul(rows - 1).saturating_add(min_stride);
        if stride < min_stride || len < needed {
            return Err(EncodeError::BadInput { needed, got: len, stride, min_stride });
        }
        Ok(())
    }

    /// Encode one packed YUYV (YUY2, V4L2 `YUYV`) frame whose rows are `stride` bytes apart.
    /// Returns the JPEG, borrowed from the encoder's own buffer (valid until the next call).
    pub fn encode_yuyv(&mut self, src: &[u8], stride: usize) -> Result<&[u8], EncodeError> {
        let (w, h) = (self.width, self.height);
        self.check(src.len(), stride, 2 * w, h)?;
        let hw = w / 2;
        for r in 0..h {
            let s = &src[r * stride..][..2 * w];
            let yr = &mut self.y[r * w..][..w];
            let ur = &mut self.u[r * hw..][..hw];
            let vr = &mut self.v[r * hw..][..hw];
            for (((px, y2), u), v) in s.chunks_exact(4).zip(yr.chunks_exact_mut(2)).zip(ur).zip(vr) {
                y2[0] = px[0];
                *u = px[1];
                y2[1] = px[2];
                *v = px[3];
            }
        }
        let img = turbojpeg::YuvPlanesImage {
            y_plane: &self.y[..],
            u_plane: &self.u[..hw * h],
            v_plane: &self.v[..hw * h],
            width: w,
            height: h,
            y_stride: w,
            u_stride: hw,
            v_stride: hw,
            subsamp: turbojpeg::Subsamp::Sub2x1,
        };
        self.out_len = 0;
        let n = self.tj.compress_yuv_planes_to_slice(&img, &mut self.out).map_err(tj_err)?;
        self.out_len = n;
        Ok(&self.out[..n])
    }

    /// Encode one NV12 frame: `height` rows of Y, then `height / 2` rows of interleaved U,V,
    /// both with rows `stride` bytes apart and the UV plane right after the Y plane.
    pub fn encode_nv12(&mut self, src: &[u8], stride: usize) -> Result<&[u8], EncodeError> {
        let (w, h) = (self.width, self.height);
        // Y plane (h rows) + UV plane (h/2 rows) = 3h/2 rows of `stride`.
        self.check(src.len(), stride, w, h + h / 2)?;
        let (hw, hh) = (w / 2, h / 2);
        let uv = &src[stride * h..];
        for r in 0..hh {
            let s = &uv[r * stride..][..w];
            let ur = &mut self.u[r * hw..][..hw];
            let vr = &mut self.v[r * hw..][..hw];
            for ((px, u), v) in s.chunks_exact(2).zip(ur).zip(vr) {
                *u = px[0];
                *v = px[1];
            }
        }
        let img = turbojpeg::YuvPlanesImage {
            // The Y plane is coded straight from the camera's buffer.
            y_plane: &src[..stride * (h - 1) + w],
            u_plane: &self.u[..hw * hh],
            v_plane: &self.v[..hw * hh],
            width: w,
            height: h,
            y_stride: stride,
            u_stride: hw,
            v_stride: hw,
            subsamp: turbojpeg::Subsamp::Sub2x2,
        };
        self.out_len = 0;
        let n = self.tj.compress_yuv_planes_to_slice(&img, &mut self.out).map_err(tj_err)?;
        self.out_len = n;
        Ok(&self.out[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A YUYV frame with a gradient and a bright box, rows `stride` bytes apart.
    fn yuyv(w: usize, h: usize, stride: usize) -> Vec<u8> {
        let mut f = vec![0u8; stride * h];
        for r in 0..h {
            for x in (0..w).step_by(2) {
                let o = r * stride + 2 * x;
                let luma = if (w / 4..w / 2).contains(&x) && (h / 4..h / 2).contains(&r) { 235 } else { (16 + (x + r) % 200) as u8 };
                f[o..o + 4].copy_from_slice(&[luma, (x % 256) as u8, luma, (r % 256) as u8]);
            }
        }
        f
    }

    /// Width and height from the JPEG's SOF0 marker.
    fn sof_size(jpeg: &[u8]) -> (usize, usize) {
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "no SOI");
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9], "no EOI");
        let mut i = 2;
        while i + 9 < jpeg.len() {
            assert_eq!(jpeg[i], 0xFF);
            let m = jpeg[i + 1];
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            if m == 0xC0 {
                let h = u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]);
                let w = u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]);
                return (w.into(), h.into());
            }
            i += 2 + len;
        }
        panic!("no SOF0");
    }

    fn ffprobe_size(jpeg: &[u8]) -> Option<(usize, usize)> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jpg");
        std::fs::write(&p, jpeg).unwrap();
        // Decode it fully (not just probe the header): ffmpeg fails on a broken entropy stream.
        let dec = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-xerror", "-i"])
            .arg(&p)
            .args(["-f", "null", "-"])
            .output()
            .ok()?;
        assert!(dec.status.success(), "ffmpeg could not decode: {}", String::from_utf8_lossy(&dec.stderr));
        assert!(dec.stderr.is_empty(), "ffmpeg complained: {}", String::from_utf8_lossy(&dec.stderr));
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
            .arg(&p)
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).unwrap();
        let mut it = s.trim().split(',').map(|v| v.parse::<usize>().unwrap());
        Some((it.next()?, it.next()?))
    }

    #[test]
    fn yuyv_encodes_to_a_jpeg_of_the_right_size_that_ffmpeg_decodes() {
        let (w, h) = (320, 240);
        let mut e = JpegEncoder::new(w as u32, h as u32, 80).unwrap();
        for stride in [2 * w, 2 * w + 64] {
            let f = yuyv(w, h, stride);
            let jpeg = e.encode_yuyv(&f, stride).unwrap().to_vec();
            assert_eq!(sof_size(&jpeg), (w, h));
            if let Some(size) = ffprobe_size(&jpeg) {
                assert_eq!(size, (w, h));
            } else {
                eprintln!("ffmpeg/ffprobe not found: checked the SOF marker only");
            }
        }
    }

    #[test]
    fn nv12_encodes_to_a_jpeg_of_the_right_size_that_ffmpeg_decodes() {
        let (w, h) = (320, 240);
        let mut e = JpegEncoder::new(w as u32, h as u32, 80).unwrap();
        for stride in [w, w + 32] {
            let mut f = vec![0u8; stride * (h + h / 2)];
            for (i, b) in f.iter_mut().enumerate() {
                *b = (i * 7 % 251) as u8;
            }
            let jpeg = e.encode_nv12(&f, stride).unwrap().to_vec();
            assert_eq!(sof_size(&jpeg), (w, h));
            if let Some(size) = ffprobe_size(&jpeg) {
                assert_eq!(size, (w, h));
            }
        }
    }

    #[test]
    fn quality_changes_the_size() {
        let (w, h) = (320, 240);
        let f = yuyv(w, h, 2 * w);
        let lo = JpegEncoder::new(320, 240, 20).unwrap().encode_yuyv(&f, 2 * w).unwrap().len();
        let hi = JpegEncoder::new(320, 240, 95).unwrap().encode_yuyv(&f, 2 * w).unwrap().len();
        assert!(lo < hi, "q20 {lo} bytes, q95 {hi} bytes");
    }

    #[test]
    fn wrong_input_is_an_error_not_a_panic() {
        let (w, h) = (64, 48);
        let mut e = JpegEncoder::new(w as u32, h as u32, 80).unwrap();
        let f = yuyv(w, h, 2 * w);
        assert!(matches!(e.encode_yuyv(&f[..f.len() - 1], 2 * w), Err(EncodeError::BadInput { .. })));
        assert!(matches!(e.encode_yuyv(&[], 2 * w), Err(EncodeError::BadInput { .. })));
        assert!(matches!(e.encode_yuyv(&f, 2 * w - 2), Err(EncodeError::BadInput { .. })));
        assert!(matches!(e.encode_yuyv(&f, usize::MAX), Err(EncodeError::BadInput { .. })));
        assert!(matches!(e.encode_nv12(&f[..w * h], w), Err(EncodeError::BadInput { .. })));
        assert!(matches!(e.encode_nv12(&f, w - 1), Err(EncodeError::BadInput { .. })));
        // still usable afterwards
        assert!(e.encode_yuyv(&f, 2 * w).is_ok());
        // a longer buffer than needed is fine (V4L2 buffers are often padded)
        let mut big = f.clone();
        big.extend_from_slice(&[0; 100]);
        assert!(e.encode_yuyv(&big, 2 * w).is_ok());
    }

    #[test]
    fn bad_geometry_is_refused() {
        for (w, h, q) in [(0, 48, 80), (64, 0, 80), (63, 48, 80), (64, 47, 80), (70000, 48, 80), (64, 48, 0), (64, 48, 101)] {
            assert!(matches!(JpegEncoder::new(w, h, q), Err(EncodeError::BadGeometry(_))), "{w}x{h} q{q}");
        }
    }
}
