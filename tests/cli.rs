//! The `blackbox` command line, run as a real process.

use blackbox::store::reader::Reader;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn bb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_blackbox"))
}

fn sigterm(child: &std::process::Child) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
}

fn write_config(dir: &Path, json: &str) -> std::path::PathBuf {
    let p = dir.join("cfg.json");
    std::fs::write(&p, json).unwrap();
    p
}

#[test]
fn run_refuses_a_bad_config_naming_the_key() {
    let d = tempfile::tempdir().unwrap();
    for (json, needle) in [
        (r#"{"video_fps": 500}"#, "video_fps"),
        (r#"{"vidoe_fps": 30}"#, "video_fps"),
        (r#"{"embed_timestamp": "yes"}"#, "embed_timestamp"),
        (r#"{"segment_length_s": 60,"#, "JSON"),
    ] {
        let cfg = write_config(d.path(), json);
        let out = bb().args(["run", "--data"]).arg(d.path().join("data")).arg("--config").arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{json}: {err}");
        assert!(err.contains(needle), "{json}: message does not name {needle}: {err}");
        // Nothing was recorded on a refused config.
        assert!(!d.path().join("data/segments").exists() || std::fs::read_dir(d.path().join("data/segments")).unwrap().next().is_none());
    }
}

#[test]
fn run_without_source_records_synthetic_and_closes_cleanly_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let cfg = write_config(d.path(), r#"{"video_res_width": 320, "video_res_height": 240, "video_fps": 30, "video_codec": "mjpeg"}"#);
    let child = bb()
        .args(["run", "--report-durable", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("synthetic"), "the log must say the synthetic camera is used: {log}");
    assert!(log.contains("run summary:"), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: u64 = stdout.lines().filter_map(|l| l.strip_prefix("durable ")).next_back().unwrap().parse().unwrap();
    assert!(last >= 45, "only {last} frames durable after 2.5 s at 30 fps");
    // Closed cleanly: no open segment left, and verify agrees with what was reported.
    let names: Vec<String> = std::fs::read_dir(data.join("segments")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| n.ends_with(".seg")), "{names:?}");
    let v = bb().args(["verify", "--json"]).arg(&data).output().unwrap();
    assert!(v.status.success());
    let j = String::from_utf8_lossy(&v.stdout);
    for key in ["\"segments\":", "\"frames\":", "\"first_seq\":1", "\"last_seq\":", "\"durable_seq\":", "\"start\":\"20", "\"end\":\"20", "\"bad_regions\":[]"] {
        assert!(j.contains(key), "verify --json lacks {key}: {j}");
    }
    assert!(j.contains(&format!("\"durable_seq\":{last}")), "{j}");
    // Every stored frame is a complete JPEG of the configured size.
    let r = Reader::open(&data).unwrap();
    let mut buf = Vec::new();
    let mut n = 0;
    r.for_each_in_range(i64::MIN, i64::MAX, &mut buf, |_, f| {
        assert_eq!(blackbox::camera::file::jpeg_dimensions(f), Some((320, 240)));
        assert!(f.ends_with(&[0xFF, 0xD9]));
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, last);
    let ls = bb().args(["ls"]).arg(&data).output().unwrap();
    assert!(ls.status.success());
    assert!(String::from_utf8_lossy(&ls.stdout).contains(&format!("{n} frames")));
}

#[test]
fn file_source_stores_the_clip_frames_byte_for_byte_and_ffmpeg_decodes_them() {
    let d = tempfile::tempdir().unwrap();
    let clip = d.path().join("clip.mjpeg");
    let st = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v", "90", "-q:v", "5", "-f", "mjpeg"])
        .arg(&clip)
        .status()
        .expect("ffmpeg is needed (scripts/test installs it)");
    assert!(st.success());
    let data = d.path().join("data");
    let cfg = write_config(d.path(), r#"{"segment_length_s": 1, "video_fps": 30, "video_codec": "mjpeg"}"#);
    let out = bb()
        .args(["run", "--as-fast-as-possible", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .arg("--source")
        .arg(format!("file:{}", clip.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("frames=90 "), "{log}");
    // The stored frames, concatenated, are the clip itself.
    let r = Reader::open(&data).unwrap();
    let mut stored = Vec::new();
    let mut buf = Vec::new();
    r.for_each_in_range(i64::MIN, i64::MAX, &mut buf, |_, f| {
        stored.extend_from_slice(f);
        true
    })
    .unwrap();
    assert_eq!(stored, std::fs::read(&clip).unwrap(), "stored frames differ from the clip");
    // And an independent decoder accepts every one of them.
    let out_clip = d.path().join("stored.mjpeg");
    std::fs::write(&out_clip, &stored).unwrap();
    let dec = Command::new("ffmpeg").args(["-nostdin", "-v", "error", "-f", "mjpeg", "-i"]).arg(&out_clip).args(["-f", "null", "-"]).output().unwrap();
    assert!(dec.status.success() && dec.stderr.is_empty(), "{}", String::from_utf8_lossy(&dec.stderr));
}

#[test]
fn verify_fails_on_damage_and_usage_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let cfg = write_config(d.path(), r#"{"video_res_width": 160, "video_res_height": 120, "video_fps": 60}"#);
    let mut child = bb().args(["run", "--data"]).arg(&data).arg("--config").arg(&cfg).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    assert!(bb().arg("verify").arg(&data).output().unwrap().status.success());
    // Damage one byte inside the first frame's payload.
    let seg = std::fs::read_dir(data.join("segments")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[4096 + 48 + 100] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let out = bb().arg("verify").arg(&data).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("BAD"));
    assert_eq!(bb().args(["verify"]).output().unwrap().status.code(), Some(2));
    // A data dir that recorded nothing says so: not a bare OK.
    let empty = d.path().join("empty");
    std::fs::create_dir_all(empty.join("segments")).unwrap();
    let out = bb().arg("verify").arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("EMPTY"));
    let out = bb().args(["verify", "--json"]).arg(&empty).output().unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((j["ok"].as_bool(), j["empty"].as_bool(), j["frames"].as_u64()), (Some(true), Some(true), Some(0)));
    assert_eq!(bb().args(["verify", "/nonexistent/dir"]).output().unwrap().status.code(), Some(2));
    assert_eq!(bb().args(["frobnicate"]).output().unwrap().status.code(), Some(2));
    assert_eq!(bb().args(["run", "--bogus"]).output().unwrap().status.code(), Some(2));
}

#[test]
fn a_configured_camera_that_is_not_plugged_in_is_waited_for_not_fatal() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    // Under /dev/ (camera_device takes V4L2 device nodes only), not plugged in.
    let missing = Path::new("/dev/video-blackbox-test-not-plugged-in");
    let cfg = write_config(
        d.path(),
        &format!(r#"{{"camera_device": "{}", "video_res_width": 320, "video_res_height": 240, "listen": "127.0.0.1:0"}}"#, missing.display()),
    );
    let mut child = bb()
        .args(["run", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Long enough for several attempts (0.5 + 1 + 2 s of backoff).
    std::thread::sleep(Duration::from_millis(4500));
    assert!(child.try_wait().unwrap().is_none(), "blackbox exited while waiting for its camera");
    let t = std::time::Instant::now();
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(t.elapsed() < Duration::from_secs(3), "SIGTERM took {:?} while waiting for the camera", t.elapsed());
    assert!(log.contains("recording starts when it appears"), "{log}");
    let attempts = log.matches("still unavailable").count();
    assert!(attempts >= 2, "{attempts} reopen attempts logged:\n{log}");
}

#[test]
fn cameras_lists_devices_as_text_and_json() {
    let out = bb().args(["cameras", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cameras --json prints JSON");
    let devs = v.as_array().expect("an array");
    // Whatever this machine has: each entry names its node and says whether it captures.
    for d in devs {
        assert!(d["path"].as_str().unwrap().starts_with("/dev/video"), "{d}");
        assert!(d["capture"].is_boolean(), "{d}");
    }
    let out = bb().arg("cameras").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(devs.is_empty(), text.contains("no /dev/video* devices"), "{text}");
    assert_eq!(bb().args(["cameras", "--bogus"]).output().unwrap().status.code(), Some(2));
}
