//! The hidden `blackbox bench-encode --h264` behind `scripts/bench h264`: its Annex-B output is
//! a real stream of the asked length and key-frame interval that decodes to the source frames,
//! through both paths (raw frames straight to the encoder, and via JPEG as the recorder does).

use blackbox::codec::encoder::SoftH264Decoder;
use blackbox::codec::h264;
use std::path::Path;
use std::process::Command;

const W: usize = 160;
const H: usize = 120;
const FRAMES: usize = 20;

/// Frame k: a diagonal gradient moving right by 2 pixels a frame, chroma ramps.
fn i420_frame(k: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(W * H * 3 / 2);
    for y in 0..H {
        for x in 0..W {
            f.push((16 + ((x + y + 2 * k) * 200 / (W + H + 2 * FRAMES)) % 220) as u8);
        }
    }
    for plane in 0..2 {
        for y in 0..H / 2 {
            for x in 0..W / 2 {
                f.push((64 + if plane == 0 { x } else { y }) as u8);
            }
        }
    }
    f
}

/// The same frame as YUYV (chroma repeated on both rows of a pair).
fn yuyv_frame(k: usize) -> Vec<u8> {
    let f = i420_frame(k);
    let (y, rest) = f.split_at(W * H);
    let (u, v) = rest.split_at(W * H / 4);
    let mut out = Vec::with_capacity(W * H * 2);
    for r in 0..H {
        for i in 0..W / 2 {
            let c = (r / 2) * (W / 2) + i;
            out.extend_from_slice(&[y[r * W + 2 * i], u[c], y[r * W + 2 * i + 1], v[c]]);
        }
    }
    out
}

fn bench_encode(raw: &Path, out: &Path, extra: &[&str]) -> (String, std::process::ExitStatus) {
    let o = Command::new(env!("CARGO_BIN_EXE_blackbox"))
        .arg("bench-encode")
        .arg(raw)
        .args([&format!("{W}x{H}"), &FRAMES.to_string()])
        .args(extra)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    (String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr), o.status)
}

/// Decodes the stream NAL by NAL; the Y planes of its pictures, and how many were IDRs.
fn decode(stream: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut dec = SoftH264Decoder::new().unwrap();
    let (mut y, mut u, mut v) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pics, mut idrs) = (Vec::new(), 0);
    for nal in h264::nal_units(stream) {
        idrs += usize::from(h264::nal_type(nal) == h264::NAL_IDR);
        let mut au = vec![0, 0, 0, 1];
        au.extend_from_slice(nal);
        if let Some((w, h)) = dec.decode_i420(&au, &mut y, &mut u, &mut v).unwrap() {
            assert_eq!((w, h), (W, H));
            pics.push(y.clone());
        }
    }
    (pics, idrs)
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (i32::from(*x) - i32::from(*y)).unsigned_abs() as f64).sum::<f64>() / a.len() as f64
}

fn check(stream_path: &Path, report: &str, keys: usize) {
    let stream = std::fs::read(stream_path).unwrap();
    assert_eq!(report.lines().next().unwrap(), format!("frames {FRAMES} bytes {} keys {keys}", stream.len()), "{report}");
    let (pics, idrs) = decode(&stream);
    assert_eq!((pics.len(), idrs), (FRAMES, keys), "pictures and IDRs decoded");
    for (k, p) in pics.iter().enumerate() {
        let d = mean_abs_diff(p, &i420_frame(k)[..W * H]);
        assert!(d < 3.0, "picture {k} differs from its source by {d:.2} on average");
    }
}

#[test]
fn bench_encode_h264_writes_the_stream_the_recorder_would() {
    let d = tempfile::tempdir().unwrap();
    let (i420, yuyv) = (d.path().join("clip.i420"), d.path().join("clip.yuyv"));
    std::fs::write(&i420, (0..FRAMES).flat_map(i420_frame).collect::<Vec<u8>>()).unwrap();
    std::fs::write(&yuyv, (0..FRAMES).flat_map(yuyv_frame).collect::<Vec<u8>>()).unwrap();
    let out = d.path().join("out.h264");

    // Raw I420 straight to the encoder, an IDR every 10 frames.
    let (report, st) = bench_encode(&i420, &out, &["--i420", "--h264", "--bitrate", "2000", "--keyint", "10"]);
    assert!(st.success(), "{report}");
    check(&out, &report, 2);

    // YUYV via JPEG q90 and H264Camera (key frames every second at 5 fps: 4 IDRs).
    let (report, st) = bench_encode(&yuyv, &out, &["--h264", "--via-jpeg", "--quality", "90", "--fps", "5", "--keyint", "5"]);
    assert!(st.success(), "{report}");
    check(&out, &report, 4);

    // The JPEG encoder takes no I420; a key-frame interval that isn't whole seconds via JPEG.
    let (report, st) = bench_encode(&i420, &out, &["--i420"]);
    assert_eq!(st.code(), Some(2), "{report}");
    let (report, st) = bench_encode(&yuyv, &out, &["--h264", "--via-jpeg", "--keyint", "45"]);
    assert_eq!(st.code(), Some(1), "{report}");
    assert!(report.contains("whole seconds"), "{report}");
}
