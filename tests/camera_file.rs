//! File camera: frame extraction, ffmpeg-made streams, looping, errors, RSS bound.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use blackbox::camera::file::{FileCamera, jpeg_dimensions, next_jpeg};
use blackbox::camera::{Camera, CameraError, Codec};
use jpeg_encoder::{ColorType, Encoder};

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("blackbox-test-{}-{tag}.mjpeg", std::process::id()))
}

/// Removes the file when dropped.
struct TempFile(PathBuf);
impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let p = temp_path(tag);
        std::fs::write(&p, bytes).unwrap();
        TempFile(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn encode(w: u16, h: u16, seed: u8) -> Vec<u8> {
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    for (i, p) in rgb.iter_mut().enumerate() {
        *p = (i as u8).wrapping_mul(seed).wrapping_add(seed);
    }
    let mut out = Vec::new();
    Encoder::new(&mut out, 70)
        .encode(&rgb, w, h, ColorType::Rgb)
        .unwrap();
    out
}

fn invalid_message(r: Result<FileCamera, CameraError>) -> String {
    match r {
        Err(CameraError::Invalid(m)) => m,
        Err(e) => panic!("expected Invalid, got {e}"),
        Ok(c) => panic!("expected an error, got {}", c.describe()),
    }
}

#[test]
fn extracts_exactly_the_complete_frames() {
    let frames = [
        encode(32, 24, 3),
        encode(17, 9, 5),
        encode(64, 64, 7),
        encode(8, 8, 11),
    ];
    let mut data = b"leading junk \xFF\xD8\x00 \xFF\xFF".to_vec();
    for (i, f) in frames.iter().enumerate() {
        data.extend_from_slice(f);
        if i % 2 == 0 {
            data.extend_from_slice(b"\x00garbage\xFF\xD8\xFF\xDB\x00\x03\x01between\xFF");
        }
    }
    let tail = encode(40, 30, 13);
    data.extend_from_slice(&tail[..tail.len() / 2]); // truncated last frame

    let mut pos = 0;
    for f in &frames {
        let (s, e) = next_jpeg(&data, pos).unwrap();
        assert_eq!(&data[s..e], &f[..]);
        pos = e;
    }
    assert_eq!(next_jpeg(&data, pos), None);

    let tmp = TempFile::new("mixed", &data);
    let mut cam = FileCamera::open(tmp.path(), 30, true, false).unwrap();
    assert_eq!(cam.frame_count(), 4);
    assert_eq!(cam.size(), (32, 24));
    for f in &frames {
        let (meta, got) = cam.next_frame().unwrap();
        assert_eq!(got, &f[..]);
        assert_eq!(meta.codec, Codec::Jpeg);
        assert!(meta.key);
    }
    assert!(matches!(cam.next_frame(), Err(CameraError::EndOfStream)));
    assert!(matches!(cam.next_frame(), Err(CameraError::EndOfStream)));
}

#[test]
fn looping_wraps_to_the_first_frame() {
    let frames = [encode(16, 16, 1), encode(16, 16, 2), encode(16, 16, 3)];
    let mut data = b"junk".to_vec();
    for f in &frames {
        data.extend_from_slice(f);
    }
    data.extend_from_slice(&frames[0][..10]);
    let tmp = TempFile::new("loop", &data);
    let mut cam = FileCamera::open(tmp.path(), 30, true, true).unwrap();
    for k in 0..10 {
        let (_, got) = cam.next_frame().unwrap();
        assert_eq!(got, &frames[k % 3][..], "frame {k}");
    }
    let d = cam.describe();
    assert!(
        d.contains("JPEG frames 16x16") && d.contains("looping"),
        "{d}"
    );
}

#[test]
fn paces_unless_as_fast_as_possible() {
    let tmp = TempFile::new("pace", &encode(8, 8, 9).repeat(12));
    let mut cam = FileCamera::open(tmp.path(), 50, false, false).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..10 {
        cam.next_frame().unwrap();
    }
    let ms = t.elapsed().as_millis();
    assert!(
        (150..=400).contains(&ms),
        "10 frames at 50 fps took {ms} ms"
    );
    let mut fast = FileCamera::open(tmp.path(), 1, true, true).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..100 {
        fast.next_frame().unwrap();
    }
    assert!(t.elapsed().as_millis() < 500);
}

#[test]
fn ffmpeg_made_stream() {
    let ffmpeg = match Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => "ffmpeg",
        _ => panic!(
            "`ffmpeg` is not installed or not on PATH; this test needs it (apt-get install ffmpeg)"
        ),
    };
    let path = temp_path("ffmpeg");
    let o = Command::new(ffmpeg)
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
        ])
        .args(["-frames:v", "60", "-q:v", "5", "-f", "mjpeg"])
        .arg(&path)
        .output()
        .unwrap();
    let tmp = TempFile(path);
    assert!(
        o.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let mut cam = FileCamera::open(tmp.path(), 30, true, false).unwrap();
    assert_eq!(cam.frame_count(), 60);
    assert_eq!(cam.size(), (320, 240));
    let d = cam.describe();
    assert!(d.contains("JPEG frames 320x240"), "{d}");
    let total = std::fs::metadata(tmp.path()).unwrap().len() as usize;
    let mut bytes = 0;
    let mut n = 0;
    while let Ok((_, f)) = cam.next_frame() {
        assert_eq!(jpeg_dimensions(f), Some((320, 240)));
        bytes += f.len();
        n += 1;
    }
    assert_eq!(n, 60);
    assert_eq!(bytes, total, "ffmpeg's stream is nothing but JPEGs");
}

#[test]
fn clear_errors() {
    let missing = temp_path("does-not-exist");
    let m = invalid_message(FileCamera::open(&missing, 30, false, false));
    assert!(
        m.contains(&*missing.to_string_lossy()) && m.contains("cannot open"),
        "{m}"
    );

    let empty = TempFile::new("empty", b"");
    let m = invalid_message(FileCamera::open(empty.path(), 30, false, false));
    assert!(
        m.contains(&*empty.path().to_string_lossy()) && m.contains("empty"),
        "{m}"
    );

    let text = TempFile::new(
        "text",
        &b"this is not a JPEG stream \xFF\xD8 at all\n".repeat(1000),
    );
    let m = invalid_message(FileCamera::open(text.path(), 30, false, false));
    assert!(
        m.contains(&*text.path().to_string_lossy()) && m.contains("no complete JPEG"),
        "{m}"
    );

    let dir = std::env::temp_dir();
    let m = invalid_message(FileCamera::open(&dir, 30, false, false));
    assert!(m.contains("not a regular file"), "{m}");

    let ok = TempFile::new("fps0", &encode(8, 8, 1));
    let m = invalid_message(FileCamera::open(ok.path(), 0, false, false));
    assert!(m.contains("frame rate"), "{m}");
}

/// File-backed resident memory of this process, KiB.
fn rss_file_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("RssFile:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssFile in /proc/self/status")
}

#[test]
fn replay_keeps_mapped_pages_bounded() {
    // ~48 MiB of frames; while replaying, the mapping must not keep more than a few MiB
    // resident (pages behind the cursor are released).
    let mut frame = encode(256, 256, 37);
    frame.extend_from_slice(b"junk between frames");
    let reps = (48 << 20) / frame.len();
    let path = temp_path("big");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for _ in 0..reps {
            f.write_all(&frame).unwrap();
        }
        f.flush().unwrap();
    }
    let tmp = TempFile(path);
    let before = rss_file_kib();
    let mut cam = FileCamera::open(tmp.path(), 30, true, false).unwrap();
    assert_eq!(cam.frame_count(), reps as u64);
    let mut peak = rss_file_kib();
    let mut n = 0;
    while let Ok((_, f)) = cam.next_frame() {
        assert_eq!(f.len(), frame.len() - 19);
        n += 1;
        if n % 64 == 0 {
            peak = peak.max(rss_file_kib());
        }
    }
    assert_eq!(n, reps);
    let grew = peak.saturating_sub(before);
    eprintln!("file-backed RSS grew by {grew} KiB");
    assert!(
        grew < 6 * 1024,
        "file-backed RSS grew by {grew} KiB while replaying 48 MiB"
    );
}
