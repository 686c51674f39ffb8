//! The timestamp overlay (`embed_timestamp`): `YYYY-MM-DD HH:MM:SS UTC` burnt into a raw
//! (YUYV or NV12) frame at its top-left before it is encoded, white text on a dark box, scaled
//! with the frame height. Drawn in place (in the camera's mmap buffer), without allocating.
//! MJPEG frames are never touched: their time lives in the record header.

use crate::camera::font::{self, GLYPH_H, GLYPH_W};
use crate::clock::IsoSeconds;
use core::fmt::Write as _;

/// Luma of the box and of the text; chroma is neutral inside the box (grey scale).
const BOX_Y: u8 = 16;
const TEXT_Y: u8 = 235;
const NEUTRAL: u8 = 128;

/// The raw layouts the overlay draws into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raw {
    /// Packed 4:2:2: `Y0 U Y1 V` per two pixels, rows `stride` bytes apart.
    Yuyv,
    /// `height` rows of Y, then `height / 2` rows of interleaved U,V, both `stride` apart.
    Nv12,
}

/// The longest text: `YYYY-MM-DD HH:MM:SS UTC` (a year past 9999 gets cut at the end).
pub const TEXT_MAX: usize = 24;

/// The overlay text for `utc_ns` into `out`; returns its length.
pub fn timestamp_text(utc_ns: i64, out: &mut [u8; TEXT_MAX]) -> usize {
    // IsoSeconds is `YYYY-MM-DDTHH:MM:SSZ`: the T becomes a space, the Z " UTC".
    let mut s = heapless::String::<40>::new();
    let _ = write!(s, "{} UTC", IsoSeconds(utc_ns));
    let mut n = 0;
    for &b in s.as_bytes() {
        let b = match b {
            b'Z' => continue,
            b'T' if n > 0 && out[n - 1].is_ascii_digit() => b' ',
            b => b,
        };
        if n == TEXT_MAX {
            break;
        }
        out[n] = b;
        n += 1;
    }
    n
}

/// Where the box goes in a frame: a rectangle in pixels (even origin and size), and the font
/// scale (font pixels are `scale` x `scale` frame pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxRect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
    pub scale: usize,
}

/// The box for `chars` characters in a `width` x `height` frame, clipped to the frame; `None`
/// when the frame is too small to hold any of it.
pub fn box_rect(width: usize, height: usize, chars: usize) -> Option<BoxRect> {
    let scale = ((height + 120) / 240).max(1);
    let even = |v: usize| v & !1;
    let (x, y) = (even(2 * scale), even(2 * scale));
    let w = (chars * (GLYPH_W + 1) * scale + 3 * scale).next_multiple_of(2);
    let h = (GLYPH_H * scale + 4 * scale).next_multiple_of(2);
    let w = w.min(even(width.saturating_sub(x)));
    let h = h.min(even(height.saturating_sub(y)));
    (w > 0 && h > 0).then_some(BoxRect { x, y, w, h, scale })
}

/// Is the pixel at (`lx`, `ly`) inside the box lit by the text?
#[inline]
fn lit(text: &[u8], scale: usize, lx: usize, ly: usize) -> bool {
    let (ox, oy) = (2 * scale, 2 * scale);
    if lx < ox || ly < oy {
        return false;
    }
    let (tx, ty) = ((lx - ox) / scale, (ly - oy) / scale);
    let (ci, col) = (tx / (GLYPH_W + 1), tx % (GLYPH_W + 1));
    if ci >= text.len() || col >= GLYPH_W || ty >= GLYPH_H {
        return false;
    }
    font::glyph(text[ci])[ty] & (0x10 >> col) != 0
}

/// Draws `text` into the frame in `buf`. Returns false (and draws nothing) when `buf` is
/// shorter than the frame's geometry says or the stride is shorter than a row.
pub fn draw(buf: &mut [u8], raw: Raw, stride: usize, width: usize, height: usize, text: &[u8]) -> bool {
    let Some(b) = box_rect(width, height, text.len()) else { return true };
    let (row_bytes, rows) = match raw {
        Raw::Yuyv => (2 * width, height),
        Raw::Nv12 => (width, height + height / 2),
    };
    if stride < row_bytes || height == 0 || stride.checked_mul(rows - 1).and_then(|v| v.checked_add(row_bytes)).is_none_or(|n| buf.len() < n) {
        return false;
    }
    match raw {
        Raw::Yuyv => {
            for ly in 0..b.h {
                let row = &mut buf[(b.y + ly) * stride..][..row_bytes];
                for lx in 0..b.w {
                    let o = 2 * (b.x + lx);
                    row[o] = if lit(text, b.scale, lx, ly) { TEXT_Y } else { BOX_Y };
                    row[o + 1] = NEUTRAL; // U for even pixels, V for odd ones
                }
            }
        }
        Raw::Nv12 => {
            for ly in 0..b.h {
                let row = &mut buf[(b.y + ly) * stride..][..row_bytes];
                for lx in 0..b.w {
                    row[b.x + lx] = if lit(text, b.scale, lx, ly) { TEXT_Y } else { BOX_Y };
                }
            }
            let uv = height * stride;
            for ly in (0..b.h).step_by(2) {
                let row = &mut buf[uv + (b.y + ly) / 2 * stride..][..row_bytes];
                row[b.x..b.x + b.w].fill(NEUTRAL);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::encode::JpegEncoder;

    fn text(ns: i64) -> ([u8; TEXT_MAX], usize) {
        let mut t = [0u8; TEXT_MAX];
        let n = timestamp_text(ns, &mut t);
        (t, n)
    }

    #[test]
    fn the_text_is_date_time_and_utc() {
        // 2026-11-22T00:30:15.250Z
        let (t, n) = text(1_795_307_415_250_000_000);
        assert_eq!(std::str::from_utf8(&t[..n]).unwrap(), "2026-11-22 00:30:15 UTC");
        let (t, n) = text(0);
        assert_eq!(std::str::from_utf8(&t[..n]).unwrap(), "1970-01-01 00:00:00 UTC");
    }

    #[test]
    fn the_box_scales_with_the_frame_height_and_is_clipped() {
        let small = box_rect(640, 360, 23).unwrap();
        let hd = box_rect(1280, 720, 23).unwrap();
        assert!(hd.scale > small.scale && hd.h > small.h && hd.w > small.w, "{small:?} {hd:?}");
        assert!(hd.w < 1280 / 2, "the box covers too much of a 720p frame: {hd:?}");
        let tiny = box_rect(32, 16, 23).unwrap();
        assert!(tiny.x + tiny.w <= 32 && tiny.y + tiny.h <= 16);
        assert_eq!(box_rect(2, 2, 23), None);
    }

    /// A YUYV frame of noise-free gradients; returns (frame, stride).
    fn yuyv(w: usize, h: usize, pad: usize) -> (Vec<u8>, usize) {
        let stride = 2 * w + pad;
        let f = (0..stride * h).map(|i| (60 + (i % stride) / 8 + (i / stride) / 4) as u8).collect();
        (f, stride)
    }

    fn changed_bytes(a: &[u8], b: &[u8]) -> Vec<usize> {
        a.iter().zip(b).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i).collect()
    }

    #[test]
    fn yuyv_overlay_changes_the_box_and_nothing_else() {
        let (w, h) = (640, 360);
        let (orig, stride) = yuyv(w, h, 64);
        let mut f = orig.clone();
        let (t, n) = text(1_795_307_415_000_000_000);
        assert!(draw(&mut f, Raw::Yuyv, stride, w, h, &t[..n]));
        let b = box_rect(w, h, n).unwrap();
        let changed = changed_bytes(&orig, &f);
        assert!(changed.len() > b.w * b.h, "only {} bytes changed", changed.len());
        for i in changed {
            let (r, c) = (i / stride, (i % stride) / 2);
            assert!((b.y..b.y + b.h).contains(&r) && (b.x..b.x + b.w).contains(&c), "byte {i} (row {r}, px {c}) outside {b:?}");
        }
        // Both text and box are there.
        let lumas: Vec<u8> = (b.y..b.y + b.h).flat_map(|r| (b.x..b.x + b.w).map(move |c| (r, c))).map(|(r, c)| f[r * stride + 2 * c]).collect();
        let lit = lumas.iter().filter(|&&y| y == TEXT_Y).count();
        let dark = lumas.iter().filter(|&&y| y == BOX_Y).count();
        assert!(lit > 200 && dark > lit, "lit {lit}, dark {dark}");
        // A different second draws different text.
        let mut g = orig.clone();
        let (t2, n2) = text(1_795_307_416_000_000_000);
        draw(&mut g, Raw::Yuyv, stride, w, h, &t2[..n2]);
        assert_ne!(f, g);
    }

    #[test]
    fn nv12_overlay_changes_the_box_and_nothing_else() {
        let (w, h, stride) = (320usize, 240usize, 352usize);
        let orig: Vec<u8> = (0..stride * (h + h / 2)).map(|i| (40 + i % 97) as u8).collect();
        let mut f = orig.clone();
        let (t, n) = text(1_795_307_415_000_000_000);
        assert!(draw(&mut f, Raw::Nv12, stride, w, h, &t[..n]));
        let b = box_rect(w, h, n).unwrap();
        let changed = changed_bytes(&orig, &f);
        assert!(!changed.is_empty());
        let mut chroma = 0;
        for i in changed {
            let (r, c) = (i / stride, i % stride);
            let r = if r >= h {
                chroma += 1;
                (r - h) * 2
            } else {
                r
            };
            assert!((b.y..b.y + b.h).contains(&r) && (b.x..b.x + b.w).contains(&c), "byte {i} outside {b:?}");
        }
        assert!(chroma > 0, "the chroma of the box was not neutralised");
    }

    #[test]
    fn short_buffers_and_strides_are_refused_without_a_panic() {
        let (w, h) = (64, 48);
        let (mut f, stride) = yuyv(w, h, 0);
        let t = b"2026-11-22 00:30:15 UTC";
        assert!(!draw(&mut f[..100], Raw::Yuyv, stride, w, h, t));
        assert!(!draw(&mut f, Raw::Yuyv, stride - 2, w, h, t));
        assert!(!draw(&mut f, Raw::Nv12, w, w, h * 2, t));
        assert!(!draw(&mut f, Raw::Yuyv, usize::MAX, w, h, t));
        assert!(draw(&mut f, Raw::Yuyv, stride, w, h, t));
        assert!(draw(&mut [], Raw::Yuyv, 4, 2, 2, t), "nothing to draw into a 2x2 frame");
    }

    /// Mean absolute difference of two grey images over a rectangle.
    fn mad(a: &[u8], b: &[u8], w: usize, (x0, y0, x1, y1): (usize, usize, usize, usize)) -> f64 {
        let mut s = 0u64;
        for y in y0..y1 {
            for x in x0..x1 {
                s += u64::from(a[y * w + x].abs_diff(b[y * w + x]));
            }
        }
        s as f64 / ((x1 - x0) * (y1 - y0)) as f64
    }

    fn decode_grey(jpeg: &[u8], w: usize, h: usize) -> Vec<u8> {
        let img: turbojpeg::Image<Vec<u8>> = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::GRAY).expect("decodes");
        assert_eq!((img.width, img.height), (w, h));
        let mut out = vec![0u8; w * h];
        for y in 0..h {
            out[y * w..][..w].copy_from_slice(&img.pixels[y * img.pitch..][..w]);
        }
        out
    }

    #[test]
    fn the_encoded_jpeg_shows_the_overlay_and_the_rest_of_the_picture_unchanged() {
        let (w, h) = (1280, 720);
        let (plain, stride) = yuyv(w, h, 0);
        let mut marked = plain.clone();
        let (t, n) = text(1_795_307_415_000_000_000);
        assert!(draw(&mut marked, Raw::Yuyv, stride, w, h, &t[..n]));
        let mut enc = JpegEncoder::new(w as u32, h as u32, 80).unwrap();
        let a = decode_grey(enc.encode_yuyv(&plain, stride).unwrap(), w, h);
        let b = decode_grey(enc.encode_yuyv(&marked, stride).unwrap(), w, h);
        let r = box_rect(w, h, n).unwrap();
        let inside = mad(&a, &b, w, (r.x, r.y, r.x + r.w, r.y + r.h));
        // Away from the box (JPEG blocks touching it may differ a little): identical.
        let below = mad(&a, &b, w, (0, (r.y + r.h + 16).next_multiple_of(16), w, h));
        let right = mad(&a, &b, w, ((r.x + r.w + 16).next_multiple_of(16), 0, w, h));
        assert!(inside > 30.0, "the box barely shows in the JPEG: {inside}");
        assert_eq!((below, right), (0.0, 0.0), "pixels away from the box changed");
    }
}
