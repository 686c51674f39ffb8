//! JPEG to planar YUV with libjpeg-turbo, into a caller's preallocated buffer: the first half of
//! turning JPEG frames into H.264 (the built-in camera, MJPEG webcams, old footage exported as
//! H.264).

use super::raw::RawFrame;
use turbojpeg::{Decompressor, Subsamp, YuvImage};

/// Bytes of planes any `w` x `h` JPEG decodes into (worst case 4:4:4, plus a row of slack).
pub fn planes_len(w: usize, h: usize) -> usize {
    w * (h + 1) * 3 + 64
}

/// Decodes `jpeg`, which must be `w` pixels wide and `h` or `h + 1` high (an odd height is
/// rounded down to even by the stream), into `planes`; the picture as a planar frame. No
/// allocation on the Rust side.
pub fn decode<'p>(dec: &mut Decompressor, planes: &'p mut [u8], jpeg: &[u8], w: usize, h: usize) -> Result<RawFrame<'p>, String> {
    let hdr = dec.read_header(jpeg).map_err(|e| e.to_string())?;
    let (hw, hh) = (hdr.width, hdr.height);
    if hw != w || hh < h || hh > h + 1 {
        return Err(format!("JPEG of {hw}x{hh} in a {w}x{h} stream"));
    }
    let (cw, ch) = match hdr.subsamp {
        Subsamp::None => (hw, hh),
        Subsamp::Sub2x1 => (hw.div_ceil(2), hh),
        Subsamp::Sub2x2 => (hw.div_ceil(2), hh.div_ceil(2)),
        Subsamp::Sub1x2 => (hw, hh.div_ceil(2)),
        Subsamp::Sub4x1 => (hw.div_ceil(4), hh),
        Subsamp::Gray => (0, 0),
        _ => return Err("unsupported JPEG chroma subsampling".into()),
    };
    let need = hw * hh + 2 * cw * ch;
    if need > planes.len() {
        return Err(format!("JPEG of {hw}x{hh} larger than the stream"));
    }
    let img = YuvImage { pixels: &mut planes[..need], width: hw, align: 1, height: hh, subsamp: hdr.subsamp };
    dec.decompress_to_yuv(jpeg, img).map_err(|e| e.to_string())?;
    let (y, rest) = planes[..need].split_at(hw * hh);
    let (u, v) = rest.split_at(cw * ch);
    Ok(RawFrame::Planar { y: &y[..w * h], u, v, cw, ch })
}
