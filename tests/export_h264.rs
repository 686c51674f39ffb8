//! H.264 end to end through the store and the export (issue 13), judged by ffmpeg and ffprobe:
//! a libx264-made clip stored access unit by access unit as the recorder stores it, exported
//! whole and in ranges that start between key frames, across segments and across a gap.
//! The decoded pictures of every export must equal (framemd5) the clip's own decoded pictures.

mod support;

use support::picture_hashes;

use blackbox::camera::{Codec, FrameMeta};
use blackbox::codec::h264;
use blackbox::store::{Store, StoreOptions};
use std::path::Path;
use std::process::Command;

/// 2026-11-21T12:00:00Z
const T0: i64 = 1_795_262_400_000_000_000;
const SEC: i64 = 1_000_000_000;
const FPS: i64 = 30;

fn bb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_blackbox"))
}

fn ffmpeg_clip(dir: &Path, name: &str, frames: u32, extra: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v"])
        .arg(frames.to_string())
        .args(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args(extra)
        .args(["-x264-params", "repeat-headers=1:aud=1", "-f", "h264"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(&out).unwrap()
}

/// The clip's access units (libx264 with aud=1: each starts with an access-unit delimiter).
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut aus: Vec<Vec<u8>> = Vec::new();
    for nal in h264::nal_units(stream) {
        if h264::nal_type(nal) == h264::NAL_AUD || aus.is_empty() {
            aus.push(Vec::new());
        }
        let au = aus.last_mut().unwrap();
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(nal);
    }
    aus
}

fn opts() -> StoreOptions {
    StoreOptions {
        segment_length_ns: 2_000_000_000,
        commit_interval_ns: 500_000_000,
        commit_frames: 30,
        storage_cap_bytes: 1 << 40,
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 200_000,
    }
}

/// Stores access units `range` of `aus` as the recorder's store side does (AVCC sample,
/// parameter sets to the store, key flag from the NAL types), frame k captured at k/30 s
/// (+ `shift_ns`). Returns the frames the store refused.
fn store_aus(s: &mut Store, aus: &[Vec<u8>], range: std::ops::Range<usize>, shift_ns: i64) -> usize {
    let mut ps = h264::ParamSets::default();
    let mut sample = Vec::with_capacity(1 << 20);
    let mut refused = 0;
    for k in range {
        let info = h264::to_avcc(&aus[k], &mut ps, &mut sample).unwrap();
        if info.params_changed {
            let mut avcc = [0u8; h264::MAX_AVCC];
            let n = ps.avcc(&mut avcc);
            s.set_h264_params(&avcc[..n]);
        }
        let t = k as i64 * SEC / FPS + shift_ns;
        let meta = FrameMeta { mono_ns: (1_000 * SEC + t) as u64, utc_ns: T0 + t, codec: Codec::H264, key: info.idr, lost_before: 0 };
        if s.append_frame(&meta, &sample).is_err() {
            refused += 1;
        }
    }
    refused
}

fn iso(ns: i64) -> String {
    blackbox::clock::Iso(ns).to_string()
}

fn export(dir: &Path, from: i64, to: i64, out: &Path) -> String {
    let o = bb().arg("export").arg(dir).args(["--from", &iso(from), "--to", &iso(to), "-o"]).arg(out).output().unwrap();
    assert!(o.status.success(), "export failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}


/// ffprobe's view of the video stream: codec, tag, profile, packets and the key packets' indexes.
fn probe(file: &Path) -> (String, Vec<usize>, usize) {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,codec_tag_string,profile,width,height", "-of", "default=nw=1"])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "ffprobe: {}", String::from_utf8_lossy(&o.stderr));
    let stream = String::from_utf8_lossy(&o.stdout).into_owned();
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    let flags = String::from_utf8_lossy(&o.stdout).into_owned();
    let keys = flags.lines().enumerate().filter(|(_, f)| f.starts_with('K')).map(|(i, _)| i).collect();
    (stream, keys, flags.lines().count())
}

#[test]
fn a_libx264_clip_exports_to_the_same_pictures_whole_and_from_between_key_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = ffmpeg_clip(tmp.path(), "clip.h264", 150, &["-bf", "0", "-profile:v", "main"]);
    let aus = access_units(&clip);
    assert_eq!(aus.len(), 150);
    let src = picture_hashes(&tmp.path().join("clip.h264"), Some("h264"));
    assert_eq!(src.len(), 150);

    let data = tmp.path().join("data");
    let mut s = Store::open(&data, opts()).unwrap();
    assert_eq!(store_aus(&mut s, &aus, 0..150, 0), 0);
    s.close().unwrap();

    // Whole: 5 s in 2 s segments (3 segments), every picture identical, IDRs every 30.
    let whole = tmp.path().join("whole.mp4");
    export(&data, T0, T0 + 10 * SEC, &whole);
    let (stream, keys, packets) = probe(&whole);
    assert!(stream.contains("codec_name=h264") && stream.contains("codec_tag_string=avc1"), "{stream}");
    assert!(stream.contains("profile=Main") && stream.contains("width=320") && stream.contains("height=240"), "{stream}");
    assert_eq!(packets, 150);
    assert_eq!(keys, vec![0, 30, 60, 90, 120]);
    assert_eq!(picture_hashes(&whole, None), src);

    // From frame 45 (between the IDRs at 30 and 60) to frame 100: the file starts at the IDR at
    // 30 and its edit list hides frames 30..45, so the pictures shown are exactly 45..100.
    let part = tmp.path().join("part.mp4");
    export(&data, T0 + 45 * SEC / FPS, T0 + 100 * SEC / FPS, &part);
    let (_, keys, packets) = probe(&part);
    assert_eq!(keys.first(), Some(&0), "the stream starts on a key frame");
    assert_eq!(packets, 100 - 30);
    assert_eq!(picture_hashes(&part, None), src[45..100].to_vec());

    // A range that starts inside the second segment (frames 60.. are in segment 2 from 2 s).
    let late = tmp.path().join("late.mp4");
    export(&data, T0 + 75 * SEC / FPS, T0 + 150 * SEC / FPS, &late);
    assert_eq!(picture_hashes(&late, None), src[75..150].to_vec());
}

#[test]
fn frames_lost_before_an_idr_are_refused_and_the_export_across_the_gap_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = ffmpeg_clip(tmp.path(), "clip.h264", 120, &["-bf", "0"]);
    let aus = access_units(&clip);
    let src = picture_hashes(&tmp.path().join("clip.h264"), Some("h264"));
    let data = tmp.path().join("data");
    let mut s = Store::open(&data, StoreOptions { segment_length_ns: 60 * SEC as u64, ..opts() }).unwrap();
    // A store that starts on a P-frame refuses it (it would refer to a missing picture) ...
    assert_eq!(store_aus(&mut s, &aus, 10..40, 0), 20, "frames 10..30 precede the first IDR");
    // ... frames 40..60 lost (as the recorder would drop them after a loss) and a gap marker;
    // recording resumes at the IDR at 60.
    s.append_gap(T0 + 39 * SEC / FPS, T0 + 60 * SEC / FPS, 2, 20, (1_000 * SEC + 60 * SEC / FPS) as u64).unwrap();
    assert_eq!(store_aus(&mut s, &aus, 60..120, 0), 0);
    s.close().unwrap();
    let out = tmp.path().join("gap.mp4");
    export(&data, T0, T0 + 10 * SEC, &out);
    let (_, keys, packets) = probe(&out);
    assert_eq!(packets, 10 + 60);
    assert_eq!(keys, vec![0, 10, 40]);
    let mut want = src[30..40].to_vec();
    want.extend_from_slice(&src[60..120]);
    assert_eq!(picture_hashes(&out, None), want);
}

#[test]
fn a_clip_with_b_frames_is_refused_with_a_message_that_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = ffmpeg_clip(tmp.path(), "b.h264", 30, &["-bf", "2", "-profile:v", "main"]);
    let mut ps = h264::ParamSets::default();
    let errors: Vec<h264::AuError> = access_units(&clip).iter().filter_map(|au| h264::inspect(au, &mut ps).err()).collect();
    assert!(!errors.is_empty(), "a clip with B-frames must be refused");
    assert!(errors.iter().all(|e| *e == h264::AuError::BFrames), "{errors:?}");
    assert!(h264::AuError::BFrames.to_string().contains("B-frames"));
    // The same clip without B-frames passes.
    let clip = ffmpeg_clip(tmp.path(), "p.h264", 30, &["-bf", "0", "-profile:v", "main"]);
    let mut ps = h264::ParamSets::default();
    assert!(access_units(&clip).iter().all(|au| h264::inspect(au, &mut ps).is_ok()));
}

#[test]
fn motion_jpeg_footage_exports_as_h264_with_the_h264_flag() {
    let tmp = tempfile::tempdir().unwrap();
    // 60 JPEGs of ffmpeg's test pattern at 30 fps, stored as MJPEG footage (codec 1).
    let clip = tmp.path().join("clip.mjpeg");
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v", "60", "-q:v", "3", "-f", "image2pipe", "-c:v", "mjpeg"])
        .arg(&clip)
        .output()
        .unwrap();
    assert!(o.status.success());
    let bytes = std::fs::read(&clip).unwrap();
    let mut jpegs = Vec::new();
    let mut start = 0;
    for i in 0..bytes.len() - 1 {
        if bytes[i] == 0xff && bytes[i + 1] == 0xd9 {
            jpegs.push(bytes[start..i + 2].to_vec());
            start = i + 2;
        }
    }
    assert_eq!(jpegs.len(), 60);
    let data = tmp.path().join("data");
    let mut s = Store::open(&data, opts()).unwrap();
    for (k, j) in jpegs.iter().enumerate() {
        let t = k as i64 * SEC / FPS;
        let meta = FrameMeta { mono_ns: (1_000 * SEC + t) as u64, utc_ns: T0 + t, codec: Codec::Jpeg, key: true, lost_before: 0 };
        s.append_frame(&meta, j).unwrap();
    }
    s.close().unwrap();
    let out = tmp.path().join("h264.mp4");
    let child = bb().arg("export").arg(&data).args(["--h264", "-o"]).arg(&out).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (stream, keys, packets) = probe(&out);
    assert!(stream.contains("codec_name=h264") && stream.contains("width=320"), "{stream}");
    assert_eq!(packets, 60);
    assert_eq!(keys, vec![0, 30]);
    assert_eq!(picture_hashes(&out, None).len(), 60);
    // Nothing left behind in the temporary directory.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("blackbox-h264-{pid}-")))
        .collect();
    assert!(left.is_empty());
    // Without the flag the same footage exports as Motion JPEG, as it always did.
    let mj = tmp.path().join("mjpeg.mp4");
    export(&data, T0, T0 + 10 * SEC, &mj);
    let (stream, _, _) = probe(&mj);
    assert!(stream.contains("codec_name=mjpeg"), "{stream}");
}
