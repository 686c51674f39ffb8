//! Synthetic camera: decodability (ffmpeg/ffprobe), pacing.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use blackbox::camera::Camera;
use blackbox::camera::synthetic::Synthetic;

fn tool(name: &str) -> PathBuf {
    match Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => PathBuf::from(name),
        _ => panic!(
            "`{name}` is not installed or not on PATH; this test needs ffmpeg/ffprobe (apt-get install ffmpeg)"
        ),
    }
}

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("blackbox-test-{}-{tag}.mjpeg", std::process::id()))
}

#[test]
fn ffmpeg_decodes_frames_of_two_sizes() {
    let ffmpeg = tool("ffmpeg");
    let ffprobe = tool("ffprobe");
    for (w, h) in [(320u32, 240u32), (176, 100)] {
        let mut cam = Synthetic::new(w, h, 10, 80).unwrap();
        assert_eq!(cam.size(), (w, h));
        let path = temp_path(&format!("synth-{w}x{h}"));
        let mut out = Vec::new();
        for _ in 0..5 {
            let (_, f) = cam.next_frame().unwrap();
            out.extend_from_slice(f);
        }
        std::fs::write(&path, &out).unwrap();

        let o = Command::new(&ffmpeg)
            .args(["-v", "error", "-f", "mjpeg", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && err.trim().is_empty(),
            "ffmpeg decode of {w}x{h}: {err}"
        );

        let o = Command::new(&ffprobe)
            .args([
                "-v",
                "error",
                "-f",
                "mjpeg",
                "-count_frames",
                "-select_streams",
                "v:0",
            ])
            .args([
                "-show_entries",
                "stream=width,height,pix_fmt,nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "ffprobe failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let fields: Vec<&str> = text.trim().split(',').collect();
        assert_eq!(
            fields,
            [&w.to_string()[..], &h.to_string()[..], "yuvj420p", "5"],
            "ffprobe said {text:?}"
        );
    }
}

#[test]
fn decodes_through_stdin_too() {
    let ffmpeg = tool("ffmpeg");
    let cam = Synthetic::new(64, 48, 8, 30).unwrap();
    let mut child = Command::new(&ffmpeg)
        .args(["-v", "error", "-f", "mjpeg", "-i", "-", "-f", "null", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..cam.loop_frames() {
            stdin.write_all(cam.loop_frame(i).unwrap()).unwrap();
        }
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.trim().is_empty(), "ffmpeg: {err}");
}

#[test]
fn paces_at_fps() {
    let mut cam = Synthetic::new(64, 48, 50, 50).unwrap();
    assert_eq!(cam.fps(), 50);
    let t = Instant::now();
    let mut prev = 0;
    for _ in 0..10 {
        let (meta, _) = cam.next_frame().unwrap();
        assert!(meta.mono_ns > prev);
        prev = meta.mono_ns;
    }
    let ms = t.elapsed().as_millis();
    assert!(
        (150..=400).contains(&ms),
        "10 frames at 50 fps took {ms} ms"
    );
}

#[test]
fn describe_mentions_the_loop() {
    let cam = Synthetic::new(320, 240, 30, 80).unwrap();
    let d = cam.describe();
    assert!(
        d.starts_with("synthetic test pattern 320x240 @ 30 fps (30-frame loop, "),
        "{d}"
    );
    assert!(cam.loop_bytes() < 8 << 20);
}
