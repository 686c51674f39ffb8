//! Tests of parsing, validation and serialization through the public API: each refusal comes
//! with the kind, key and message it promises.

use core::fmt::Write as _;
use std::fs;
use std::io;

use super::de::Found;
use super::keys::{Expected, Key, Ty, Val};
use super::ser::write_json_str;
use super::*;

fn err(json: &str) -> ConfigError {
    match Config::parse(json.as_bytes()) {
        Ok(c) => panic!("accepted {json:?}: {c:?}"),
        Err(e) => e,
    }
}

fn ok(json: &str) -> Config {
    match Config::parse(json.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("refused {json:?}: {e}"),
    }
}

/// xorshift64*: deterministic pseudo-random numbers for the tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub(super) fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "blackbox-config-test-{tag}-{}-{}",
        std::process::id(),
        crate::clock::now_mono_ns()
    ));
    fs::create_dir_all(&d).unwrap();
    d
}

fn full() -> Config {
    Config {
        listen: heapless::String::try_from("0.0.0.0:9000").unwrap(),
        port: 8443,
        storage_cap_gb: 12.5,
        min_free_mb: 1024,
        protected_cap_percent: 25,
        video_fps: 15,
        video_res_width: 1920,
        video_res_height: 1080,
        segment_length_s: 120,
        camera_device: heapless::String::try_from("/dev/video2").unwrap(),
        mjpeg_quality: 90,
        embed_timestamp: false,
        commit_interval_ms: 250,
        commit_frames: 10,
        max_live_clients: 4,
        video_codec: crate::config::VideoCodec::Mjpeg,
        video_bitrate_kbps: 2500,
        keyframe_interval_s: 2,
        gsensor_device: heapless::String::try_from("/dev/i2c-1@0x68").unwrap(),
        gsensor_threshold_g: 3.0,
        gsensor_parked_threshold_g: 0.8,
        event_pre_s: 30,
        event_post_s: 90,
        parking_after_min: 12,
        gps_device: heapless::String::try_from("/dev/ttyS1@9600").unwrap(),
        speed_unit: crate::config::SpeedUnit::Mph,
        subtitle_position: false,
        audio: false,
        audio_device: heapless::String::try_from("/dev/snd/pcmC1D0c").unwrap(),
        cameras: super::cameras::parse(br#"[{"name":"rear","source":"rtsp://u:p@127.0.0.1:8554/x","fps":10,"stall_s":4}]"#)
            .unwrap(),
    }
}

#[test]
fn defaults() {
    let c = Config::default();
    assert_eq!(c.listen.as_str(), "127.0.0.1:8080");
    assert_eq!(c.port, 0);
    assert_eq!(c.storage_cap_gb, 8.0);
    assert_eq!(c.min_free_mb, 256);
    assert_eq!(c.protected_cap_percent, 50);
    assert_eq!(c.video_fps, 30);
    assert_eq!((c.video_res_width, c.video_res_height), (1280, 720));
    assert_eq!(c.segment_length_s, 60);
    assert_eq!(c.camera_device.as_str(), "");
    assert_eq!(c.mjpeg_quality, 80);
    assert!(c.embed_timestamp);
    assert_eq!(c.commit_interval_ms, 500);
    assert_eq!(c.commit_frames, 30);
    assert_eq!(c.max_live_clients, 8);
    c.validate().unwrap();
    assert_eq!(ok("{}"), c);
    assert_eq!(ok(" \n\t{ } \r\n"), c);
    assert_eq!(ok("\u{feff}{}"), c);
    assert_eq!(c.storage_cap_bytes(), 8 << 30);
    assert_eq!(c.min_free_bytes(), 256 << 20);
    assert_eq!(c.listen_addr(), "127.0.0.1:8080".parse().unwrap());
}

#[test]
fn every_key_parsed() {
    let c = ok(r#"{
        "listen": "0.0.0.0:9000", "port": 8443, "storage_cap_gb": 12.5,
        "min_free_mb": 1024, "protected_cap_percent": 25, "video_fps": 15,
        "video_res_width": 1920, "video_res_height": 1080, "segment_length_s": 120,
        "camera_device": "/dev/video2", "mjpeg_quality": 90, "embed_timestamp": false,
        "commit_interval_ms": 250, "commit_frames": 10, "max_live_clients": 4,
        "video_codec": "mjpeg", "video_bitrate_kbps": 2500, "keyframe_interval_s": 2,
        "gsensor_device": "/dev/i2c-1@0x68", "gsensor_threshold_g": 3, "gsensor_parked_threshold_g": 0.8,
        "event_pre_s": 30, "event_post_s": 90, "parking_after_min": 12, "gps_device": "/dev/ttyS1@9600",
        "speed_unit": "mph", "subtitle_position": false, "audio": false, "audio_device": "/dev/snd/pcmC1D0c",
        "cameras": [{"name": "rear", "source": "rtsp://u:p@127.0.0.1:8554/x", "fps": 10, "stall_s": 4}]
    }"#);
    assert_eq!(c, full());
    assert_eq!(c.listen_addr(), "0.0.0.0:8443".parse().unwrap());
    assert_eq!(c.storage_cap_bytes(), 12 * (1 << 30) + (1 << 29));
    // Subsets keep the other defaults; integers are fine for the f64 key.
    let c = ok(r#"{"storage_cap_gb": 3, "video_fps": 60}"#);
    assert_eq!(c.storage_cap_gb, 3.0);
    assert_eq!(c.video_fps, 60);
    assert_eq!(c.mjpeg_quality, 80);
    assert_eq!(ok(r#"{"storage_cap_gb": 1e1}"#).storage_cap_gb, 10.0);
    assert_eq!(ok(r#"{"storage_cap_gb": 2.5E+1}"#).storage_cap_gb, 25.0);
    assert_eq!(ok(r#"{"storage_cap_gb": 0.01}"#).storage_cap_gb, 0.01);
    assert_eq!(
        ok(r#"{"listen": "[::1]:80"}"#).listen_addr(),
        "[::1]:80".parse().unwrap()
    );
    // Range ends are inclusive.
    for key in Key::ALL {
        if let Ty::Uint { min, max } = key.ty() {
            for v in [min, max] {
                let c = ok(&format!("{{\"{}\": {v}}}", key.name()));
                assert!(matches!(c.get(key), Val::Uint(x) if x == v));
            }
        }
    }
    assert_eq!(ok(r#"{"storage_cap_gb": 65536}"#).storage_cap_gb, 65536.0);
}

#[test]
fn wrong_types_are_refused_with_key_and_type() {
    for key in Key::ALL {
        let bad: &[&str] = match key.ty() {
            Ty::Str { .. } => &["5", "true", "null", "[]", "{}", "[\"a\"]"],
            Ty::Uint { .. } => &[
                "\"5\"", "1.5", "-1", "-0", "5e0", "5.0", "true", "null", "[5]", "{}",
            ],
            Ty::Float { .. } => &["\"8\"", "true", "null", "[8]", "{\"a\":1}"],
            Ty::Bool => &["1", "0", "\"true\"", "null", "[true]", "\"yes\""],
            Ty::Cameras => &["1", "\"rear\"", "true", "null", "{}"],
        };
        for v in bad {
            let e = err(&format!("{{\"{}\": {v}}}", key.name()));
            let msg = e.to_string();
            assert_eq!(e.kind(), ConfigErrorKind::WrongType, "{msg}");
            assert_eq!(e.key(), Some(key.name()));
            assert!(
                msg.starts_with(&format!("config key \"{}\": expected ", key.name())),
                "{msg}"
            );
            assert!(msg.contains(&Expected(key).to_string()), "{msg}");
            let shown = Found(v.as_bytes()).to_string();
            assert!(msg.ends_with(&format!("found {shown}")), "{msg}");
        }
    }
    assert_eq!(
        err(r#"{"embed_timestamp": "yes"}"#).to_string(),
        r#"config key "embed_timestamp": expected true or false, found "yes""#
    );
    assert_eq!(
        err(r#"{"video_fps": 29.97}"#).to_string(),
        "config key \"video_fps\": expected a whole number in 1..=120, found 29.97"
    );
    // The bad value is the last one and more keys follow: still blamed on the right key.
    let e = err(r#"{"video_fps": 1.5, "port": 2}"#);
    assert_eq!(e.key(), Some("video_fps"));
}

#[test]
fn out_of_range_is_refused_with_key_and_range() {
    for key in Key::ALL {
        let (bad, range): (Vec<String>, String) = match key.ty() {
            Ty::Uint { min, max } => {
                let mut b = vec![(max + 1).to_string(), "99999999999999999999999".into()];
                if min > 0 {
                    b.push((min - 1).to_string());
                }
                (b, format!("(allowed {min}..={max})"))
            }
            Ty::Float { min, max } => (
                vec![
                    "0".into(),
                    "0.001".into(),
                    "-1".into(),
                    "65536.5".into(),
                    "1e999".into(),
                ],
                format!("(allowed {min}..={max})"),
            ),
            _ => continue,
        };
        for v in bad {
            let e = err(&format!("{{\"{}\": {v}}}", key.name()));
            assert_eq!(e.kind(), ConfigErrorKind::OutOfRange, "{e}");
            assert_eq!(
                e.to_string(),
                format!("config key \"{}\": {v} is out of range {range}", key.name())
            );
        }
    }
    assert_eq!(
        err(r#"{"video_fps": 500}"#).to_string(),
        "config key \"video_fps\": 500 is out of range (allowed 1..=120)"
    );
    assert_eq!(
        err(r#"{"storage_cap_gb": 0.001}"#).to_string(),
        "config key \"storage_cap_gb\": 0.001 is out of range (allowed 0.01..=65536)"
    );
}

#[test]
fn strings() {
    let e = err(&format!(r#"{{"camera_device": "{}"}}"#, "x".repeat(193)));
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
    assert_eq!(
        e.to_string(),
        "config key \"camera_device\": string is too long (allowed at most 192 bytes)"
    );
    let c = ok(&format!(r#"{{"camera_device": "{}"}}"#, "é".repeat(96)));
    assert_eq!(c.camera_device.len(), 192);
    assert!(
        err(&format!(r#"{{"camera_device": "{}x"}}"#, "é".repeat(96)))
            .to_string()
            .contains("192")
    );
    let e = err(&format!(r#"{{"listen": "127.0.0.1:{}"}}"#, "0".repeat(60)));
    assert!(e.to_string().contains("at most 64 bytes"), "{e}");

    let e = err(r#"{"listen": "localhost:8080"}"#);
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
    assert_eq!(
        e.to_string(),
        "config key \"listen\": \"localhost:8080\" is not a valid IP:PORT socket address \
         (e.g. \"127.0.0.1:8080\" or \"[::]:8080\")"
    );
    assert_eq!(err(r#"{"listen": ""}"#).key(), Some("listen"));
    assert_eq!(
        err(r#"{"camera_device": "a\u0000b"}"#).key(),
        Some("camera_device")
    );

    // Escapes, including a surrogate pair; a lone surrogate is refused.
    let c = ok(r#"{"camera_device": "\/dev\/video\u0030 \"q\" \\ \t\u00e9\ud83d\ude00"}"#);
    assert_eq!(c.camera_device.as_str(), "/dev/video0 \"q\" \\ \té😀");
    let e = err(r#"{"camera_device": "\ud83d"}"#);
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
    assert!(e.to_string().contains("camera_device"));
    assert!(
        err(r#"{"camera_device": "\ude00x"}"#)
            .to_string()
            .contains("surrogate")
    );
    assert!(
        err(r#"{"camera_device": "\ud83d\u0041"}"#)
            .to_string()
            .contains("surrogate")
    );
    // Escaped key names work too.
    assert_eq!(ok(r#"{"video\u005ffps": 7}"#).video_fps, 7);
}

#[test]
fn unknown_and_duplicate_keys() {
    let e = err(r#"{"vidoe_fps": 30}"#);
    assert_eq!(e.kind(), ConfigErrorKind::UnknownKey);
    assert_eq!(
        e.to_string(),
        "unknown config key \"vidoe_fps\" (did you mean \"video_fps\"?)"
    );
    for (typo, want) in [
        ("Video_FPS", "video_fps"),
        ("video-fps", "video_fps"),
        ("prot", "port"),
        ("listen_", "listen"),
        ("min_free_gb", "min_free_mb"),
        ("comit_frame", "commit_frames"),
        ("maxlive_clients", "max_live_clients"),
    ] {
        let msg = err(&format!("{{\"{typo}\": 1}}")).to_string();
        assert!(
            msg.ends_with(&format!("(did you mean \"{want}\"?)")),
            "{msg}"
        );
    }
    let msg = err(r#"{"frobnicate": 1}"#).to_string();
    assert!(msg.starts_with("unknown config key \"frobnicate\" (known keys: listen, port,"));
    assert!(msg.ends_with(&format!("{})", Key::ALL[Key::ALL.len() - 1].name())), "{msg}");
    // Unknown key after valid ones, long keys, keys with odd characters.
    assert_eq!(
        err(r#"{"port": 1, "x": 1}"#).kind(),
        ConfigErrorKind::UnknownKey
    );
    let msg = err(&format!("{{\"{}\": 1}}", "k".repeat(200))).to_string();
    assert!(msg.contains("kkk…\""), "{msg}");
    let msg = err(r#"{"a\nb": 1}"#).to_string();
    assert!(msg.starts_with(r#"unknown config key "a\nb""#), "{msg}");
    assert_eq!(err(r#"{"": 1}"#).kind(), ConfigErrorKind::UnknownKey);

    let e = err(r#"{"video_fps": 30, "port": 1, "video_fps": 30}"#);
    assert_eq!(e.kind(), ConfigErrorKind::DuplicateKey);
    assert_eq!(e.to_string(), "duplicate config key \"video_fps\"");
    // Every key once, then any key again.
    let mut all = String::from("{");
    for key in Key::ALL {
        let c = Config::default();
        let mut v = String::new();
        match c.get(key) {
            Val::Str(s) => write_json_str(&mut v, s).unwrap(),
            Val::Cameras(_) => v.push_str("[]"),
            other => write!(v, "{other}").unwrap(),
        }
        write!(all, "\"{}\": {v}, ", key.name()).unwrap();
    }
    let again = format!("{all}\"commit_frames\": 1}}");
    assert_eq!(err(&again).kind(), ConfigErrorKind::DuplicateKey);
    let many = format!("{all}\"zzz\": 1, \"y\": 2, \"x\": 3}}");
    assert_eq!(err(&many).kind(), ConfigErrorKind::UnknownKey);
}

#[test]
fn half_valid_is_refused() {
    let e = err(r#"{"video_fps": 60, "mjpeg_quality": 0, "port": 80}"#);
    assert_eq!(e.key(), Some("mjpeg_quality"));
}

#[test]
fn not_an_object() {
    for s in [
        "", "   ", "\n", "[]", "5", "\"x\"", "null", "true", "[{}]", "\u{feff}", "x{}",
    ] {
        let e = err(s);
        assert_eq!(e.kind(), ConfigErrorKind::NotObject, "{s:?}");
        assert_eq!(e.to_string(), "config: not a JSON object");
    }
    assert_eq!(
        Config::parse(b"\xff\xfe{}").unwrap_err().kind(),
        ConfigErrorKind::NotObject
    );
}

#[test]
fn syntax_errors() {
    let e = err(r#"{"video_fps": 30 "port": 1}"#);
    assert_eq!(e.kind(), ConfigErrorKind::Syntax);
    assert_eq!(e.offset(), Some(17));
    assert_eq!(
        e.to_string(),
        "config: invalid JSON at byte 17 (line 1, column 18): expected ',' or '}'"
    );
    let e = err("{\n  \"port\": 1,\n  \"video_fps\": 3x\n}");
    assert_eq!(e.offset(), Some(31));
    assert!(e.to_string().contains("(line 3, column 17)"), "{e}");
    let e = err("{\"port\": 1");
    assert_eq!(
        e.to_string(),
        "config: invalid JSON at byte 10 (line 1, column 11): unexpected end of file, \
         expected ',' or '}'"
    );
    // Offsets count the BOM.
    assert_eq!(err("\u{feff}{,}").offset(), Some(4));
    for s in [
        "{} x",
        "{}{}",
        "{},",
        r#"{"port": 1,}"#,
        r#"{"port" 1}"#,
        r#"{port: 1}"#,
        r#"{'port': 1}"#,
        r#"{"port": 01}"#,
        r#"{"port": +1}"#,
        r#"{"port": 1.}"#,
        r#"{"port": .5}"#,
        r#"{"port": 1e}"#,
        r#"{"port": tru}"#,
        r#"{"port": True}"#,
        r#"{"port": NaN}"#,
        r#"{"listen": "a\x"}"#,
        r#"{"listen": "a\u12"}"#,
        "{\"listen\": \"a\nb\"}",
        r#"{"port": [1,]}"#,
        r#"{"port": [1 2]}"#,
        r#"{"port": {"a" 1}}"#,
        r#"{"port": 1 // comment
        }"#,
    ] {
        let e = Config::parse(s.as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ConfigErrorKind::Syntax, "{s:?}: {e}");
        assert!(
            e.to_string().starts_with("config: invalid JSON at byte "),
            "{e}"
        );
    }
    let e = Config::parse(b"{\"camera_device\": \"\xc3\"}").unwrap_err();
    assert_eq!(e.offset(), Some(19));
    assert!(e.to_string().contains("valid UTF-8"), "{e}");
    // Deep nesting is refused without recursion trouble.
    let deep = format!(
        "{{\"port\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(err(&deep).kind(), ConfigErrorKind::Syntax);
    let ok_nested = format!("{{\"port\": {}{}}}", "[".repeat(20), "]".repeat(20));
    assert_eq!(err(&ok_nested).kind(), ConfigErrorKind::WrongType);
}

#[test]
fn truncated_json_is_refused() {
    let text = full().to_json();
    let bytes = text.as_bytes();
    for n in 0..bytes.len() {
        let r = Config::parse(&bytes[..n]);
        // Only the closing newline may be missing.
        if n == bytes.len() - 1 {
            assert_eq!(r.unwrap(), full());
            continue;
        }
        let e = r.unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ConfigErrorKind::Syntax | ConfigErrorKind::NotObject
            ),
            "{n}: {e}"
        );
    }
}

#[test]
fn to_json_round_trip() {
    let d = Config::default();
    let text = d.to_json();
    assert_eq!(
        text.as_str(),
        r#"{
  "listen": "127.0.0.1:8080",
  "port": 0,
  "storage_cap_gb": 8,
  "min_free_mb": 256,
  "protected_cap_percent": 50,
  "video_fps": 30,
  "video_res_width": 1280,
  "video_res_height": 720,
  "segment_length_s": 60,
  "camera_device": "",
  "video_codec": "h264",
  "video_bitrate_kbps": 4000,
  "keyframe_interval_s": 1,
  "mjpeg_quality": 80,
  "embed_timestamp": true,
  "commit_interval_ms": 500,
  "commit_frames": 30,
  "max_live_clients": 8,
  "gsensor_device": "auto",
  "gsensor_threshold_g": 2.5,
  "gsensor_parked_threshold_g": 0.5,
  "event_pre_s": 20,
  "event_post_s": 40,
  "parking_after_min": 5,
  "gps_device": "auto",
  "speed_unit": "kmh",
  "subtitle_position": true,
  "audio": true,
  "audio_device": "auto",
  "cameras": []
}
"#
    );
    assert_eq!(ok(&text), d);
    assert_eq!(ok(&full().to_json()), full());

    let mut c = full();
    c.camera_device = heapless::String::try_from("/dev/v \"q\" \\ \n\t\u{1}\u{7f} é 😀").unwrap();
    c.listen = heapless::String::try_from("[2001:db8::1]:65535").unwrap();
    c.storage_cap_gb = 0.1 + 0.2; // needs all 17 digits
    assert_eq!(ok(&c.to_json()), c);
    let mut rng = Rng(42);
    for _ in 0..2000 {
        c.storage_cap_gb = 0.01 + (rng.next() % 1_000_000_000) as f64 / 15_259.0;
        c.video_fps = 1 + (rng.next() % 120) as u32;
        assert_eq!(ok(&c.to_json()), c);
    }
    // Non-finite is written as null, which parse refuses.
    c.storage_cap_gb = f64::NAN;
    assert!(c.to_json().contains("\"storage_cap_gb\": null,"));
    assert_eq!(
        Config::parse(c.to_json().as_bytes()).unwrap_err().kind(),
        ConfigErrorKind::WrongType
    );
    c.storage_cap_gb = 1e300;
    assert!(c.to_json().contains("\"storage_cap_gb\": 1e300,"));
}

#[test]
fn to_json_worst_case_fits() {
    let mut c = full();
    c.listen = heapless::String::try_from("\u{1}".repeat(64).as_str()).unwrap();
    c.camera_device = heapless::String::try_from("\u{1}".repeat(192).as_str()).unwrap();
    c.storage_cap_gb = -f64::MIN_POSITIVE;
    c.port = u16::MAX;
    c.min_free_mb = u32::MAX;
    c.video_fps = u32::MAX;
    c.video_res_width = u32::MAX;
    c.video_res_height = u32::MAX;
    c.segment_length_s = u32::MAX;
    c.commit_interval_ms = u32::MAX;
    c.commit_frames = u32::MAX;
    c.max_live_clients = u32::MAX;
    c.protected_cap_percent = u8::MAX;
    c.mjpeg_quality = u8::MAX;
    c.embed_timestamp = false;
    c.event_pre_s = u16::MAX;
    c.event_post_s = u16::MAX;
    c.parking_after_min = u16::MAX;
    c.cameras.clear();
    for i in 0..super::cameras::MAX_EXTRA {
        let mut e = full().cameras[0].clone();
        e.name = heapless::String::try_from(format!("{i}").repeat(16).as_str()).unwrap();
        e.source = heapless::String::try_from("\u{1}".repeat(192).as_str()).unwrap();
        (e.width, e.height, e.fps, e.bitrate_kbps, e.stall_s) = (Some(u32::MAX), Some(u32::MAX), Some(u32::MAX), Some(u32::MAX), u32::MAX);
        e.codec = Some(crate::config::VideoCodec::Mjpeg);
        c.cameras.push(e).unwrap();
    }
    let mut unbounded = String::new();
    c.write_json(&mut unbounded).unwrap();
    assert!(unbounded.len() < 7000, "{}", unbounded.len());
    assert_eq!(c.to_json().as_str(), unbounded);
}

#[test]
#[allow(clippy::field_reassign_with_default)]
fn validate_code_built_configs() {
    full().validate().unwrap();
    let mut c = Config::default();
    c.video_fps = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "config key \"video_fps\": 0 is out of range (allowed 1..=120)"
    );
    let mut c = Config::default();
    c.storage_cap_gb = f64::NAN;
    assert_eq!(c.validate().unwrap_err().key(), Some("storage_cap_gb"));
    let mut c = Config::default();
    c.listen = heapless::String::try_from("nope").unwrap();
    let e = c.validate().unwrap_err();
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
    assert!(e.to_string().contains("\"nope\" is not a valid"), "{e}");
    assert_eq!(c.listen_addr(), "127.0.0.1:8080".parse().unwrap());
    c.port = 99;
    assert_eq!(c.listen_addr(), "127.0.0.1:99".parse().unwrap());
    let mut c = Config::default();
    c.protected_cap_percent = 101;
    assert_eq!(
        c.validate().unwrap_err().kind(),
        ConfigErrorKind::OutOfRange
    );
    let mut c = Config::default();
    c.storage_cap_gb = 65536.0;
    assert_eq!(c.storage_cap_bytes(), 1 << 46);
    c.min_free_mb = 1_048_576;
    assert_eq!(c.min_free_bytes(), 1 << 40);
}

#[test]
fn save_and_load() {
    let dir = temp_dir("load");
    let path = dir.join("config.json");
    let e = Config::load(&path).unwrap_err();
    assert!(e.is_not_found());
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read config file: ", path.display()))
    );

    full().save(&path).unwrap();
    assert_eq!(Config::load(&path).unwrap(), full());
    let mut bad = full();
    bad.video_fps = 0;
    assert_eq!(
        bad.save(&path).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(Config::load(&path).unwrap(), full());

    fs::write(&path, br#"{"video_fps": 500}"#).unwrap();
    let e = Config::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: config key \"video_fps\": 500 is out of range (allowed 1..=120)",
            path.display()
        )
    );
    let mut big = b"{\"port\": 1".to_vec();
    big.resize(MAX_FILE_BYTES + 10, b' ');
    big.push(b'}');
    fs::write(&path, &big).unwrap();
    assert_eq!(
        Config::load(&path).unwrap_err().kind(),
        ConfigErrorKind::TooLarge
    );
    big.truncate(MAX_FILE_BYTES - 1);
    big.push(b'}');
    fs::write(&path, &big).unwrap();
    assert_eq!(Config::load(&path).unwrap().port, 1);
    assert!(matches!(
        Config::load(&dir).unwrap_err().kind(),
        ConfigErrorKind::Io(_)
    ));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let base = full().to_json();
    let base = base.as_bytes();
    let alphabet = b"{}[]\":,.-+0123456789eEtrufalsn \\u\n\xc3\xa9\xff";
    for round in 0..20_000 {
        let bytes: Vec<u8> = match round % 4 {
            // Pure noise.
            0 => (0..rng.next() % 64).map(|_| rng.next() as u8).collect(),
            // JSON-ish noise inside braces.
            1 => {
                let mut v = vec![b'{'];
                for _ in 0..rng.next() % 48 {
                    v.push(alphabet[(rng.next() % alphabet.len() as u64) as usize]);
                }
                v.push(b'}');
                v
            }
            // A valid file with a few bytes changed.
            _ => {
                let mut v = base.to_vec();
                for _ in 0..1 + rng.next() % 3 {
                    let i = (rng.next() % v.len() as u64) as usize;
                    v[i] = alphabet[(rng.next() % alphabet.len() as u64) as usize];
                }
                v
            }
        };
        if let Ok(c) = Config::parse(&bytes) {
            c.validate().unwrap();
            assert_eq!(ok(&c.to_json()), c);
        }
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = Config::parse(lossy.as_bytes());
    }
}

#[test]
fn the_first_camera_can_be_an_rtsp_camera_whose_password_the_api_never_shows() {
    let c = Config::parse(br#"{"camera_device": "rtsp://viewer:s3cret@192.0.2.7:8554/cam"}"#).unwrap();
    assert_eq!(c.camera_device.as_str(), "rtsp://viewer:s3cret@192.0.2.7:8554/cam");
    let shown = c.to_json_hidden();
    assert!(!shown.contains("s3cret") && shown.contains("rtsp://viewer:********@192.0.2.7:8554/cam"), "{shown}");
    // The file keeps it.
    assert!(c.to_json().contains("s3cret"));
    // Sent back hidden: the saved password; to another host: not carried over.
    let back = Config::parse(shown.as_bytes()).unwrap();
    let restored = super::cameras::restore_password(&back.camera_device, &c.camera_device);
    assert_eq!(restored.as_deref(), Some(c.camera_device.as_str()));
    let moved = back.camera_device.replace("192.0.2.7", "192.0.2.8");
    assert_eq!(super::cameras::restore_password(&moved, &c.camera_device), None);
    // A URL that doesn't parse is refused, naming the key.
    for bad in [r#"{"camera_device": "rtsp://"}"#, r#"{"camera_device": "rtsp://host:99999/cam"}"#] {
        let e = Config::parse(bad.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("camera_device"), "{bad}: {e}");
    }
}
