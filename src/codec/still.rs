//! Still pictures of H.264 footage, as JPEG (`/api/snapshot.jpg`, `/api/frame`, thumbnails): a
//! picture of an inter-coded stream is decoded from the IDR before it, then coded as a JPEG
//! with libjpeg-turbo.

use super::encoder::SoftH264Decoder;
use super::h264::{avcc_to_annexb, ParamSets};

/// The AVCC samples from an IDR (first) up to the wanted picture (last), and the parameter
/// sets they need.
#[derive(Clone, Debug)]
pub struct Gop {
    pub params: ParamSets,
    pub samples: Vec<Vec<u8>>,
}

/// JPEG quality of stills.
pub const QUALITY: i32 = 85;

/// Decodes `gop` and codes its last picture as a JPEG; the JPEG and the picture's size.
pub fn jpeg_of_last(gop: &Gop) -> Result<(Vec<u8>, usize, usize), String> {
    let mut dec = SoftH264Decoder::new().map_err(|e| e.to_string())?;
    let (mut y, mut u, mut v) = (Vec::new(), Vec::new(), Vec::new());
    let (w, h) = decode_last(&mut dec, gop, &mut y, &mut u, &mut v)?;
    jpeg_of(&y, &u, &v, w, h)
}

/// Decodes `gop` with `dec` into I420 planes; the last picture's size.
pub fn decode_last(dec: &mut SoftH264Decoder, gop: &Gop, y: &mut Vec<u8>, u: &mut Vec<u8>, v: &mut Vec<u8>) -> Result<(usize, usize), String> {
    if gop.samples.is_empty() {
        return Err("no picture to decode".into());
    }
    let mut au = Vec::new();
    let mut size = None;
    for (i, s) in gop.samples.iter().enumerate() {
        avcc_to_annexb(s, (i == 0).then_some(&gop.params), &mut au);
        match dec.decode_i420(&au, y, u, v) {
            Ok(Some(wh)) => size = Some(wh),
            Ok(None) => size = None,
            Err(e) => return Err(format!("H.264 decoding failed at picture {i} after the IDR: {e}")),
        }
    }
    size.ok_or_else(|| "the decoder gave no picture".to_string())
}

/// A JPEG at most `max_w` pixels wide (and a quarter of its size or less when possible): the
/// picture decoded at 1/2, 1/4 or 1/8 scale by libjpeg-turbo's DCT scaling (cheap: the
/// discarded coefficients are never computed), then coded again at quality 70. A JPEG already
/// narrow enough comes back as it is.
pub fn thumbnail(jpeg: &[u8], max_w: usize) -> Result<Vec<u8>, String> {
    let mut d = turbojpeg::Decompressor::new().map_err(|e| e.to_string())?;
    let head = d.read_header(jpeg).map_err(|e| e.to_string())?;
    if head.width <= max_w {
        return Ok(jpeg.to_vec());
    }
    let f = [turbojpeg::ScalingFactor::ONE_HALF, turbojpeg::ScalingFactor::ONE_QUARTER, turbojpeg::ScalingFactor::ONE_EIGHTH]
        .into_iter()
        .find(|f| f.scale(head.width) <= max_w)
        .unwrap_or(turbojpeg::ScalingFactor::ONE_EIGHTH);
    d.set_scaling_factor(f).map_err(|e| e.to_string())?;
    let (w, h) = (f.scale(head.width), f.scale(head.height));
    let mut img = turbojpeg::Image { pixels: vec![0u8; 3 * w * h], width: w, pitch: 3 * w, height: h, format: turbojpeg::PixelFormat::RGB };
    d.decompress(jpeg, img.as_deref_mut()).map_err(|e| e.to_string())?;
    let mut c = turbojpeg::Compressor::new().map_err(|e| e.to_string())?;
    c.set_quality(70).map_err(|e| e.to_string())?;
    c.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(|e| e.to_string())?;
    c.compress_to_vec(img.as_deref()).map_err(|e| e.to_string())
}

/// I420 planes of a `w` x `h` picture as a JPEG.
fn jpeg_of(y: &[u8], u: &[u8], v: &[u8], w: usize, h: usize) -> Result<(Vec<u8>, usize, usize), String> {
    let img = turbojpeg::YuvPlanesImage {
        y_plane: y,
        u_plane: u,
        v_plane: v,
        width: w,
        height: h,
        y_stride: w,
        u_stride: w / 2,
        v_stride: w / 2,
        subsamp: turbojpeg::Subsamp::Sub2x2,
    };
    let mut tj = turbojpeg::Compressor::new().map_err(|e| e.to_string())?;
    tj.set_quality(QUALITY).map_err(|e| e.to_string())?;
    tj.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(|e| e.to_string())?;
    let mut out = vec![0u8; turbojpeg::compressed_buf_len(w, h, turbojpeg::Subsamp::Sub2x2).map_err(|e| e.to_string())?];
    let n = tj.compress_yuv_planes_to_slice(&img, &mut out).map_err(|e| e.to_string())?;
    out.truncate(n);
    Ok((out, w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encoder::{H264Settings, SoftH264, VideoEncoder};
    use crate::codec::h264::to_avcc;
    use crate::codec::raw::RawFrame;

    #[test]
    fn thumbnails_are_a_scaled_down_picture_of_the_frame() {
        let (w, h) = (1280usize, 720usize);
        let y: Vec<u8> = (0..w * h).map(|i| ((i % w) * 255 / w) as u8).collect();
        let (u, v) = (vec![128u8; w * h / 4], vec![90u8; w * h / 4]);
        let (big, _, _) = jpeg_of(&y, &u, &v, w, h).unwrap();
        let t = thumbnail(&big, 320).unwrap();
        let head = turbojpeg::read_header(&t).unwrap();
        assert_eq!((head.width, head.height), (320, 180));
        assert!(t.len() * 4 < big.len(), "{} vs {}", t.len(), big.len());
        // The picture survives: a left-to-right ramp stays one.
        let img = turbojpeg::decompress(&t, turbojpeg::PixelFormat::GRAY).unwrap();
        let row = &img.pixels[90 * img.pitch..90 * img.pitch + 320];
        assert!(row[10] < 40 && row[310] > 210, "{} {}", row[10], row[310]);
        assert_eq!(thumbnail(&t, 320).unwrap(), t, "narrow enough: as it is");
        assert!(thumbnail(b"not a jpeg", 320).is_err());
    }

    #[test]
    fn the_last_picture_of_a_gop_becomes_a_jpeg_of_its_size() {
        let (w, h) = (96usize, 64usize);
        let mut enc = SoftH264::new(H264Settings { width: 96, height: 64, fps: 30, bitrate_kbps: 500, keyframe_interval: 30 }).unwrap();
        let mut ps = ParamSets::default();
        let mut samples = Vec::new();
        for k in 0..5usize {
            // Frame k: gray level 40 * k, so the last one (160) is told apart from the first.
            let rgb = vec![(40 * k) as u8; w * h * 3];
            let e = enc.encode(RawFrame::Rgb(&rgb)).unwrap();
            let data = e.data.to_vec();
            let mut s = Vec::with_capacity(1 << 16);
            to_avcc(&data, &mut ps, &mut s).unwrap();
            samples.push(s);
        }
        let (jpeg, jw, jh) = jpeg_of_last(&Gop { params: ps, samples: samples.clone() }).unwrap();
        assert_eq!((jw, jh), (w, h));
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        let img = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::GRAY).unwrap();
        let mean = img.pixels.iter().map(|&p| p as u64).sum::<u64>() / img.pixels.len() as u64;
        assert!((150..=170).contains(&mean), "the last picture (gray 160), not the IDR's: {mean}");
    }
}
