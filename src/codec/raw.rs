//! Raw frame layouts cameras deliver, and their conversion to the I420 planes encoders take.

/// One raw frame as a camera (or the built-in test pattern) gives it.
#[derive(Clone, Copy, Debug)]
pub enum RawFrame<'a> {
    /// Packed 4:2:2 YUYV, `stride` bytes per row.
    Yuyv { data: &'a [u8], stride: usize },
    /// Semi-planar 4:2:0 NV12: the Y plane, then interleaved UV, `stride` bytes per row.
    Nv12 { data: &'a [u8], stride: usize },
    /// Packed 8-bit RGB, 3 bytes per pixel, rows back to back.
    Rgb(&'a [u8]),
    /// Planar YUV with chroma planes of `cw` x `ch` (a decoded JPEG: 4:2:0, 4:2:2, 4:4:4...),
    /// rows back to back; `u` and `v` empty for greyscale.
    Planar { y: &'a [u8], u: &'a [u8], v: &'a [u8], cw: usize, ch: usize },
}

/// Converts `f` (of `w` x `h`, both even) into the I420 planes `y` (w*h), `u` and `v`
/// (w/2*h/2 each). No allocation.
pub fn to_i420(f: RawFrame<'_>, w: usize, h: usize, y: &mut [u8], u: &mut [u8], v: &mut [u8]) -> Result<(), String> {
    let (cw, ch) = (w / 2, h / 2);
    if y.len() < w * h || u.len() < cw * ch || v.len() < cw * ch {
        return Err("staging planes too small".into());
    }
    match f {
        RawFrame::Yuyv { data, stride } => {
            check(data.len(), stride, w * 2, h)?;
            for r in 0..h {
                let row = &data[r * stride..r * stride + w * 2];
                let yr = &mut y[r * w..(r + 1) * w];
                for (i, px) in row.chunks_exact(4).enumerate() {
                    yr[2 * i] = px[0];
                    yr[2 * i + 1] = px[2];
                }
                if r % 2 == 0 {
                    // 4:2:2 to 4:2:0: average the chroma of each pair of rows.
                    let next = &data[(r + 1) * stride..(r + 1) * stride + w * 2];
                    let (ur, vr) = (&mut u[(r / 2) * cw..(r / 2 + 1) * cw], &mut v[(r / 2) * cw..(r / 2 + 1) * cw]);
                    for i in 0..cw {
                        ur[i] = (u16::from(row[4 * i + 1]) + u16::from(next[4 * i + 1])).div_ceil(2) as u8;
                        vr[i] = (u16::from(row[4 * i + 3]) + u16::from(next[4 * i + 3])).div_ceil(2) as u8;
                    }
                }
            }
        }
        RawFrame::Nv12 { data, stride } => {
            check(data.len(), stride, w, h + ch)?;
            for r in 0..h {
                y[r * w..(r + 1) * w].copy_from_slice(&data[r * stride..r * stride + w]);
            }
            let base = h * stride;
            for r in 0..ch {
                let row = &data[base + r * stride..base + r * stride + w];
                for i in 0..cw {
                    u[r * cw + i] = row[2 * i];
                    v[r * cw + i] = row[2 * i + 1];
                }
            }
        }
        RawFrame::Planar { y: sy, u: su, v: sv, cw: scw, ch: sch } => {
            check(sy.len(), w, w, h)?;
            y[..w * h].copy_from_slice(&sy[..w * h]);
            if su.is_empty() || sv.is_empty() || scw == 0 || sch == 0 {
                u[..cw * ch].fill(128);
                v[..cw * ch].fill(128);
            } else if scw == cw && sch == ch {
                check(su.len().min(sv.len()), cw, cw, ch)?;
                u[..cw * ch].copy_from_slice(&su[..cw * ch]);
                v[..cw * ch].copy_from_slice(&sv[..cw * ch]);
            } else {
                check(su.len().min(sv.len()), scw, scw, sch)?;
                for r in 0..ch {
                    let sr = (r * sch / ch) * scw;
                    for i in 0..cw {
                        let at = sr + i * scw / cw;
                        u[r * cw + i] = su[at];
                        v[r * cw + i] = sv[at];
                    }
                }
            }
        }
        RawFrame::Rgb(data) => {
            check(data.len(), w * 3, w * 3, h)?;
            rgb_to_i420(data, w, h, y, u, v);
        }
    }
    Ok(())
}

fn check(len: usize, stride: usize, row: usize, rows: usize) -> Result<(), String> {
    if stride < row {
        return Err(format!("stride {stride} shorter than a row ({row} bytes)"));
    }
    let need = stride * (rows - 1) + row;
    if len < need {
        return Err(format!("{len} bytes, need {need}"));
    }
    Ok(())
}

/// BT.601 limited-range RGB to I420 (integer arithmetic), chroma averaged over 2x2.
fn rgb_to_i420(rgb: &[u8], w: usize, h: usize, y: &mut [u8], u: &mut [u8], v: &mut [u8]) {
    let cw = w / 2;
    for r in 0..h {
        let row = &rgb[r * w * 3..(r + 1) * w * 3];
        let yr = &mut y[r * w..(r + 1) * w];
        for (x, p) in row.chunks_exact(3).enumerate() {
            let (cr, cg, cb) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
            yr[x] = (((66 * cr + 129 * cg + 25 * cb + 128) >> 8) + 16) as u8;
        }
    }
    for r in 0..h / 2 {
        let (a, b) = (&rgb[2 * r * w * 3..(2 * r + 1) * w * 3], &rgb[(2 * r + 1) * w * 3..(2 * r + 2) * w * 3]);
        for i in 0..cw {
            let mut s = [0i32; 3];
            for px in [&a[6 * i..6 * i + 3], &a[6 * i + 3..6 * i + 6], &b[6 * i..6 * i + 3], &b[6 * i + 3..6 * i + 6]] {
                for c in 0..3 {
                    s[c] += i32::from(px[c]);
                }
            }
            let (cr, cg, cb) = ((s[0] + 2) / 4, (s[1] + 2) / 4, (s[2] + 2) / 4);
            u[r * cw + i] = (((-38 * cr - 74 * cg + 112 * cb + 128) >> 8) + 128).clamp(0, 255) as u8;
            v[r * cw + i] = (((112 * cr - 94 * cg - 18 * cb + 128) >> 8) + 128).clamp(0, 255) as u8;
        }
    }
}
