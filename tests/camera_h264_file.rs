//! `file:` with Annex-B H.264: a libx264 clip recorded by `blackbox run` is stored access unit
//! for access unit (the store's AVCC samples, back in Annex-B, are the clip's pictures), IDRs
//! flagged where the clip has them, the clip's SPS/PPS in each segment's avcC; a clip with
//! B-frames is refused with the message; `video_codec=mjpeg` refuses an H.264 file. The
//! export of the recording decodes (`ffmpeg -xerror`) to the clip's own pictures (framemd5).
//! ffprobe (libavformat's H.264 parser) is the independent judge of where the clip's access
//! units are and which are key frames.
mod support;

use support::picture_hashes;

use blackbox::camera::Camera;
use blackbox::camera::h264file::H264FileCamera;
use blackbox::codec::h264::{self, NAL_AUD, NAL_PPS, NAL_SPS};
use blackbox::store::reader::Reader;
use blackbox::store::segment;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_blackbox"))
}

/// A libx264 clip (research h264.md section 6): 320x240, GOP 30, `bf` B-frames.
fn make_clip(dir: &Path, name: &str, frames: u32, bf: u32, headers_every_idr: bool) -> PathBuf {
    let clip = dir.join(name);
    let profile = if bf > 0 { "main" } else { "baseline" };
    let params = "repeat-headers=1:aud=1";
    let st = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-frames:v", &frames.to_string(), "-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile])
        .args(["-pix_fmt", "yuv420p", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", &bf.to_string()])
        .args(["-b:v", "500k", "-x264-params", params, "-f", "h264"])
        .arg(&clip)
        .status()
        .expect("ffmpeg with libx264 is needed (scripts/test installs it)");
    assert!(st.success(), "ffmpeg failed");
    if !headers_every_idr {
        let d = std::fs::read(&clip).unwrap();
        let once = headers_once(&d);
        assert!(once.len() < d.len(), "headers were repeated");
        std::fs::write(&clip, once).unwrap();
    }
    clip
}

/// The stream with its SPS and PPS only before the first picture (libx264 writing raw H.264
/// repeats them before every IDR), as some UVC cameras send them. Cut at the `00 00 01` start
/// codes found here, not by blackbox's parser.
fn headers_once(d: &[u8]) -> Vec<u8> {
    let mut starts: Vec<usize> = (0..d.len().saturating_sub(2)).filter(|&i| d[i..i + 3] == [0, 0, 1]).collect();
    starts.push(d.len());
    let mut out = d[..starts[0]].to_vec();
    let (mut sps, mut pps) = (0, 0);
    for w in starts.windows(2) {
        let (s, e) = (w[0], w[1]);
        let t = d.get(s + 3).map_or(0, |b| b & 0x1f);
        let keep = match t {
            7 => {
                sps += 1;
                sps == 1
            }
            8 => {
                pps += 1;
                pps == 1
            }
            _ => true,
        };
        if keep {
            out.extend_from_slice(&d[s..e]);
        }
    }
    out
}

/// The clip's access units as ffprobe sees them: (offset, size, key).
fn ffprobe_packets(clip: &Path) -> Vec<(usize, usize, bool)> {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=pos,size,flags", "-of", "compact=p=0"])
        .arg(clip)
        .output()
        .expect("ffprobe");
    assert!(o.status.success());
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let (mut pos, mut size, mut key) = (None, None, false);
        for kv in line.split('|') {
            match kv.split_once('=') {
                Some(("pos", p)) => pos = p.parse().ok(),
                Some(("size", s)) => size = s.parse().ok(),
                Some(("flags", f)) => key = f.starts_with('K'),
                _ => {}
            }
        }
        v.push((pos.expect("pos"), size.expect("size"), key));
    }
    v
}

/// NAL units of an Annex-B access unit as the store keeps them (no SPS, PPS or AUD).
fn picture_nals(au: &[u8]) -> Vec<Vec<u8>> {
    h264::nal_units(au).filter(|n| !matches!(h264::nal_type(n), NAL_SPS | NAL_PPS | NAL_AUD)).map(|n| n.to_vec()).collect()
}

struct Stored {
    nals: Vec<Vec<u8>>,
    key: bool,
    codec: u8,
}

/// Every stored frame, in order, with its key flag; and each segment's avcC.
fn read_store(data: &Path) -> (Vec<Stored>, Vec<Vec<u8>>) {
    let r = Reader::open(data).unwrap();
    let (mut frames, mut avccs) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    for seg in r.segments() {
        let sf = r.load(seg).unwrap().expect("segment readable");
        let hdr = segment::read_header(sf.file()).unwrap().expect("segment header");
        avccs.push(hdr.params.bytes().to_vec());
        for i in 0..sf.entries.len() {
            let h = sf.header(i).unwrap().expect("record header intact");
            let info = sf.read(i, &mut buf).unwrap().expect("frame intact");
            let nals = h264::avcc_units(&buf).map(|n| n.to_vec()).collect();
            frames.push(Stored { nals, key: h.flags & 1 != 0, codec: info.codec });
        }
    }
    (frames, avccs)
}

fn run(data: &Path, cfg: &str, clip: &Path) -> std::process::Output {
    std::fs::create_dir_all(data).unwrap();
    let cfg_path = data.with_extension("json");
    std::fs::write(&cfg_path, cfg).unwrap();
    bb().args(["run", "--as-fast-as-possible", "--data"])
        .arg(data)
        .arg("--config")
        .arg(&cfg_path)
        .arg("--source")
        .arg(format!("file:{}", clip.display()))
        .output()
        .unwrap()
}

#[test]
fn a_libx264_clip_is_stored_access_unit_for_access_unit() {
    let d = tempfile::tempdir().unwrap();
    // Headers only on the first IDR for one clip (the store must still have them in every
    // segment), on every IDR for the other.
    for (name, repeat) in [("repeat.h264", true), ("once.h264", false)] {
        let clip = make_clip(d.path(), name, 150, 0, repeat);
        let bytes = std::fs::read(&clip).unwrap();
        let packets = ffprobe_packets(&clip);
        let with_sps = packets.iter().filter(|&&(p, n, _)| h264::nal_units(&bytes[p..p + n]).any(|u| h264::nal_type(u) == NAL_SPS)).count();
        assert_eq!(with_sps, if repeat { 5 } else { 1 }, "{name}: access units with an SPS");
        assert_eq!(packets.len(), 150, "ffprobe sees 150 pictures");
        assert_eq!(packets.iter().filter(|p| p.2).count(), 5, "GOP 30: 5 IDRs");

        // The camera alone: size from the SPS, one access unit per frame, key = IDR.
        let mut cam = H264FileCamera::open(&clip, 30, true, false).unwrap();
        assert_eq!(cam.size(), (320, 240));
        assert_eq!(cam.frame_count(), 150);
        assert!(cam.describe().contains("H.264 (avc1.42C0"), "{}", cam.describe());
        for (i, &(pos, size, key)) in packets.iter().enumerate() {
            let (meta, au) = cam.next_frame().unwrap();
            assert_eq!(meta.codec, blackbox::camera::Codec::H264);
            assert_eq!(meta.key, key, "{name}: key flag of access unit {i}");
            assert_eq!(picture_nals(au), picture_nals(&bytes[pos..pos + size]), "{name}: access unit {i}");
        }
        assert!(matches!(cam.next_frame(), Err(blackbox::camera::CameraError::EndOfStream)));

        // Through the recorder and the store.
        let data = d.path().join(format!("data-{name}"));
        let out = run(&data, r#"{"segment_length_s": 2, "video_fps": 30, "video_codec": "h264"}"#, &clip);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        assert!(log.contains("frames=150 "), "{log}");
        let (stored, avccs) = read_store(&data);
        assert_eq!(stored.len(), 150, "every access unit stored");
        assert!(!avccs.is_empty(), "at least one segment");
        for (i, (s, &(pos, size, key))) in stored.iter().zip(&packets).enumerate() {
            assert_eq!(s.codec, 2, "frame {i} stored as H.264");
            assert_eq!(s.key, key, "{name}: IDR flag of frame {i}");
            assert_eq!(s.nals, picture_nals(&bytes[pos..pos + size]), "{name}: stored frame {i} differs from the clip's");
        }
        // Each segment's avcC carries the clip's SPS and PPS.
        let sps = h264::nal_units(&bytes).find(|n| h264::nal_type(n) == NAL_SPS).unwrap();
        let pps = h264::nal_units(&bytes).find(|n| h264::nal_type(n) == NAL_PPS).unwrap();
        for a in &avccs {
            let ps = h264::params_from_avcc(a).expect("avcC with SPS and PPS");
            assert_eq!((ps.sps(), ps.pps()), (sps, pps));
        }
        // The export of the whole recording decodes with no error to the clip's own pictures.
        let mp4 = d.path().join(format!("{name}.mp4"));
        let o = bb().arg("export").arg(&data).arg("-o").arg(&mp4).output().unwrap();
        assert!(o.status.success(), "export: {}", String::from_utf8_lossy(&o.stderr));
        let exported = picture_hashes(&mp4, None);
        assert_eq!(exported.len(), 150, "{name}: exported pictures");
        assert!(exported == picture_hashes(&clip, Some("h264")), "{name}: the export's pictures (framemd5) differ from the clip's");
    }
}


#[test]
fn a_clip_with_b_frames_is_refused_with_the_message() {
    let d = tempfile::tempdir().unwrap();
    let clip = make_clip(d.path(), "bframes.h264", 60, 2, true);
    match H264FileCamera::open(&clip, 30, true, false) {
        Err(e) => assert!(e.to_string().contains("B-frames"), "{e}"),
        Ok(c) => panic!("opened: {}", c.describe()),
    }
    let data = d.path().join("data");
    let out = run(&data, r#"{"video_codec": "h264"}"#, &clip);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("has B-frames, which blackbox does not store"), "{log}");
}

#[test]
fn mjpeg_recording_refuses_an_h264_file_and_detection_works_without_the_extension() {
    let d = tempfile::tempdir().unwrap();
    let clip = make_clip(d.path(), "clip.h264", 30, 0, true);
    let out = run(&d.path().join("data"), r#"{"video_codec": "mjpeg"}"#, &clip);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("set video_codec to h264"), "{log}");
    // No extension: recognised by its start code.
    let bare = d.path().join("clip.bin");
    std::fs::copy(&clip, &bare).unwrap();
    assert!(blackbox::camera::h264file::looks_like_h264(&bare));
    let data = d.path().join("data2");
    let out = run(&data, r#"{"video_codec": "h264"}"#, &bare);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("frames=30 "), "{log}");
    // Megabytes of garbage before the clip are skipped (the read buffer does not grow).
    let mut g = vec![0xA5u8; 5 << 20];
    g.extend_from_slice(&std::fs::read(&clip).unwrap());
    let padded = d.path().join("padded.h264");
    std::fs::write(&padded, &g).unwrap();
    assert_eq!(H264FileCamera::open(&padded, 30, true, false).unwrap().frame_count(), 30);
    // Garbage is not a clip.
    let junk = d.path().join("junk.h264");
    std::fs::write(&junk, b"\x00\x00\x01 not really H.264 at all").unwrap();
    let e = H264FileCamera::open(&junk, 30, true, false).err().expect("refused");
    assert!(e.to_string().contains("no H.264 access unit") || e.to_string().contains("SPS"), "{e}");
}

#[test]
fn an_h264_source_is_not_re_encoded_and_the_h264_wrapper_passes_it_through() {
    let d = tempfile::tempdir().unwrap();
    let clip = make_clip(d.path(), "pass.h264", 30, 0, true);
    let bytes = std::fs::read(&clip).unwrap();
    let packets = ffprobe_packets(&clip);
    // cli::with_codec (video_codec h264, the default) leaves an H.264 camera as it is.
    let cfg = blackbox::config::Config::default();
    let cam = H264FileCamera::open(&clip, 30, true, false).unwrap();
    let cam = blackbox::cli::with_codec(Box::new(cam), &cfg).unwrap();
    assert!(!cam.describe().contains("OpenH264"), "{}", cam.describe());
    assert_eq!((cam.size(), cam.delivers()), ((320, 240), blackbox::camera::Codec::H264));
    // The wrapper itself (a V4L2 camera that comes back delivering H.264 is wrapped while it
    // is away) hands H.264 frames over untouched.
    let inner = H264FileCamera::open(&clip, 30, true, false).unwrap();
    let mut w = blackbox::camera::transcode::H264Camera::new(Box::new(inner), 1000, 1).unwrap();
    assert_eq!(w.size(), (320, 240));
    for (i, &(pos, size, key)) in packets.iter().enumerate() {
        let (meta, au) = w.next_frame().unwrap();
        assert_eq!((meta.codec, meta.key), (blackbox::camera::Codec::H264, key), "frame {i}");
        assert_eq!(picture_nals(au), picture_nals(&bytes[pos..pos + size]), "frame {i} passed through");
    }
}

#[test]
fn looping_replays_the_clip_from_its_first_access_unit() {
    let d = tempfile::tempdir().unwrap();
    let clip = make_clip(d.path(), "loop.h264", 30, 0, true);
    let mut cam = H264FileCamera::open(&clip, 30, true, true).unwrap();
    let first: Vec<(bool, Vec<Vec<u8>>)> = (0..30)
        .map(|_| {
            let (m, au) = cam.next_frame().unwrap();
            (m.key, picture_nals(au))
        })
        .collect();
    for round in 1..3 {
        for (i, want) in first.iter().enumerate() {
            let (m, au) = cam.next_frame().unwrap();
            assert_eq!(&(m.key, picture_nals(au)), want, "round {round}, frame {i}");
        }
    }
    assert!(first[0].0 && first.iter().filter(|f| f.0).count() == 1, "one IDR, first");
    assert_eq!(cam.losses().total(), 0);
}
