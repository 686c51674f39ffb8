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
