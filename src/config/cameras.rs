//! The `cameras` key: the cameras recorded besides the first one.
//!
//! The first camera is configured by the top-level keys, as before (`camera_device`,
//! `video_res_*`, `video_fps`, `video_codec`, `video_bitrate_kbps`) and is named `front`. Each
//! entry of `cameras` adds one, recorded on its own into `DATA/cameras/<name>/`:
//!
//! ```json
//! "cameras": [
//!   {"name": "rear", "source": "/dev/video2", "width": 640, "height": 480, "fps": 15},
//!   {"name": "porch", "source": "rtsp://viewer:secret@192.168.1.20/stream1", "stall_s": 5}
//! ]
//! ```
//!
//! Keys an entry leaves out take the top-level value. Every entry is checked as the file is
//! read, with a message that names the camera and the key. A password in an `rtsp://` source
//! is never shown by the API (see [`Cameras::redacted`]).

use core::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::VideoCodec;
use super::error::{ConfigError, ConfigErrorKind};
use super::keys::Key;
use super::scan::unescape;

/// Cameras besides the first one, at most.
pub const MAX_EXTRA: usize = 3;
/// The first camera's name (the top-level keys).
pub const FIRST: &str = "front";
/// What the API shows instead of an `rtsp://` password.
pub const HIDDEN: &str = "********";

/// One entry of `cameras`.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraConf {
    /// `[a-z0-9_-]{1,16}`, unique, not `front`: the directory `DATA/cameras/<name>`.
    pub name: heapless::String<16>,
    /// `/dev/videoN[@FOURCC]`, `rtsp://[user[:pass]@]host[:port]/path`, `synthetic` or
    /// `file:PATH`.
    pub source: heapless::String<192>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
    pub codec: Option<VideoCodec>,
    pub bitrate_kbps: Option<u32>,
    /// An RTSP source that sends nothing for this long is a stall: a gap, then a reconnect.
    pub stall_s: u32,
}

pub const DEFAULT_STALL_S: u32 = 5;

/// The `cameras` list.
pub type Cameras = heapless::Vec<CameraConf, MAX_EXTRA>;

/// What kind of source a camera's `source` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    V4l2,
    Rtsp,
    Synthetic,
    File,
}

pub fn source_kind(s: &str) -> Option<SourceKind> {
    if s.starts_with("/dev/") {
        Some(SourceKind::V4l2)
    } else if s.starts_with("rtsp://") {
        Some(SourceKind::Rtsp)
    } else if s == "synthetic" {
        Some(SourceKind::Synthetic)
    } else if s.strip_prefix("file:").is_some_and(|p| !p.is_empty()) {
        Some(SourceKind::File)
    } else {
        None
    }
}

/// Checks one source string; the message says what is allowed.
pub fn check_source(s: &str) -> Result<(), String> {
    if s.bytes().any(|b| !(b' '..=b'~').contains(&b) || b == b' ') {
        return Err("must be printable ASCII without spaces".into());
    }
    match source_kind(s) {
        None => Err(format!(
            "{s:?} is not a source blackbox records (\"/dev/videoN\", \"rtsp://[user:pass@]host[:port]/path\", \
             \"synthetic\" or \"file:PATH\")"
        )),
        Some(SourceKind::Rtsp) => crate::camera::rtsp_url::Url::parse(s).map(|_| ()),
        Some(_) => Ok(()),
    }
}

fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
        return Err(format!("{n:?} is not a camera name (1 to 16 of a-z, 0-9, - and _)"));
    }
    if n == FIRST {
        return Err(format!("{FIRST:?} is the first camera's name (the top-level keys)"));
    }
    Ok(())
}

fn invalid(msg: fmt::Arguments<'_>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::InvalidValue, Some(Key::Cameras), format_args!("config key \"cameras\": {msg}"))
}

/// Checks the whole list (names unique, values in range); what `validate` runs.
pub fn check(list: &Cameras) -> Result<(), ConfigError> {
    for (i, c) in list.iter().enumerate() {
        let at = |m: String| invalid(format_args!("camera {} ({:?}): {m}", i + 1, c.name.as_str()));
        check_name(&c.name).map_err(at)?;
        if list[..i].iter().any(|o| o.name == c.name) {
            return Err(at("the name is taken by another camera".into()));
        }
        check_source(&c.source).map_err(|m| at(format!("\"source\": {m}")))?;
        for (k, v, lo, hi) in [
            ("width", c.width, 16, 7680),
            ("height", c.height, 16, 4320),
            ("fps", c.fps, 1, 120),
            ("bitrate_kbps", c.bitrate_kbps, 100, 50_000),
            ("stall_s", Some(c.stall_s), 1, 120),
        ] {
            if let Some(v) = v
                && !(lo..=hi).contains(&v)
            {
                return Err(at(format!("{k:?}: {v} is out of range (allowed {lo}..={hi})")));
            }
        }
    }
    Ok(())
}

/// Reads the raw JSON text of the `cameras` value (already syntax-checked).
pub(super) fn parse(raw: &[u8]) -> Result<Cameras, ConfigError> {
    let mut problem = None;
    let mut de = serde_json_core::de::Deserializer::new(raw, None);
    let r = de::Deserializer::deserialize_seq(&mut de, ListVisitor { problem: &mut problem });
    let list = match r {
        Ok(l) => l,
        Err(e) => {
            return Err(problem.unwrap_or_else(|| {
                invalid(format_args!("must be a list of objects like {{\"name\": \"rear\", \"source\": \"/dev/video2\"}} ({e})"))
            }));
        }
    };
    check(&list)?;
    Ok(list)
}

struct ListVisitor<'p> {
    problem: &'p mut Option<ConfigError>,
}

impl<'de> Visitor<'de> for ListVisitor<'_> {
    type Value = Cameras;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of cameras")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cameras, A::Error> {
        let mut out = Cameras::new();
        loop {
            let n = out.len() + 1;
            let Some(c) = seq.next_element_seed(EntrySeed { problem: &mut *self.problem, n })? else { break };
            if out.push(c).is_err() {
                *self.problem = Some(invalid(format_args!("at most {MAX_EXTRA} cameras besides {FIRST:?}")));
                return Err(de::Error::custom("too many"));
            }
        }
        Ok(out)
    }
}

struct EntrySeed<'p> {
    problem: &'p mut Option<ConfigError>,
    n: usize,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = CameraConf;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<CameraConf, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = CameraConf;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a camera object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CameraConf, A::Error> {
        let n = self.n;
        let mut fail = |m: String| -> A::Error {
            *self.problem = Some(invalid(format_args!("camera {n}: {m}")));
            de::Error::custom("camera")
        };
        let mut c = CameraConf {
            name: heapless::String::new(),
            source: heapless::String::new(),
            width: None,
            height: None,
            fps: None,
            codec: None,
            bitrate_kbps: None,
            stall_s: DEFAULT_STALL_S,
        };
        let mut seen: u32 = 0;
        const KEYS: [&str; 8] = ["name", "source", "width", "height", "fps", "codec", "bitrate_kbps", "stall_s"];
        while let Some(raw_key) = map.next_key::<&'de str>()? {
            let Some(k) = KEYS.iter().position(|k| *k == raw_key) else {
                return Err(fail(format!("unknown key {raw_key:?} (allowed: {})", KEYS.join(", "))));
            };
            if seen & (1 << k) != 0 {
                return Err(fail(format!("{raw_key:?} given twice")));
            }
            seen |= 1 << k;
            match KEYS[k] {
                "name" | "source" | "codec" => {
                    let Ok(raw) = map.next_value::<&'de str>() else {
                        return Err(fail(format!("{raw_key:?} must be a string")));
                    };
                    let mut s: heapless::String<192> = heapless::String::new();
                    if unescape(raw, &mut s).is_err() {
                        return Err(fail(format!("{raw_key:?} is too long or badly escaped")));
                    }
                    match KEYS[k] {
                        "name" => {
                            c.name = heapless::String::try_from(s.as_str())
                                .map_err(|_| fail(format!("{:?} is not a camera name (1 to 16 of a-z, 0-9, - and _)", s.as_str())))?
                        }
                        "source" => c.source = s,
                        _ => {
                            c.codec = Some(
                                VideoCodec::from_name(&s)
                                    .ok_or_else(|| fail(format!("\"codec\": {:?} is not \"h264\" or \"mjpeg\"", s.as_str())))?,
                            )
                        }
                    }
                }
                _ => {
                    let Ok(v) = map.next_value::<u64>() else {
                        return Err(fail(format!("{raw_key:?} must be a whole number")));
                    };
                    let v = u32::try_from(v).unwrap_or(u32::MAX);
                    match KEYS[k] {
                        "width" => c.width = Some(v),
                        "height" => c.height = Some(v),
                        "fps" => c.fps = Some(v),
                        "bitrate_kbps" => c.bitrate_kbps = Some(v),
                        _ => c.stall_s = v,
                    }
                }
            }
        }
        if c.name.is_empty() {
            return Err(fail("\"name\" is missing".into()));
        }
        if c.source.is_empty() {
            return Err(fail(format!("({:?}): \"source\" is missing", c.name.as_str())));
        }
        Ok(c)
    }
}

/// Writes the list as JSON (`hide`: `rtsp://` passwords as [`HIDDEN`]).
pub(super) fn write_json(list: &Cameras, hide: bool, w: &mut dyn fmt::Write) -> fmt::Result {
    w.write_char('[')?;
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            w.write_str(", ")?;
        }
        w.write_str("{\"name\": ")?;
        super::ser::write_json_str(w, &c.name)?;
        w.write_str(", \"source\": ")?;
        let shown = if hide { redact(&c.source) } else { c.source.as_str().into() };
        super::ser::write_json_str(w, &shown)?;
        for (k, v) in [("width", c.width), ("height", c.height), ("fps", c.fps), ("bitrate_kbps", c.bitrate_kbps)] {
            if let Some(v) = v {
                write!(w, ", \"{k}\": {v}")?;
            }
        }
        if let Some(codec) = c.codec {
            write!(w, ", \"codec\": \"{}\"", codec.name())?;
        }
        write!(w, ", \"stall_s\": {}}}", c.stall_s)?;
    }
    w.write_char(']')
}

/// `source` with the password of an `rtsp://` URL replaced by [`HIDDEN`].
pub fn redact(source: &str) -> std::borrow::Cow<'_, str> {
    match crate::camera::rtsp_url::Url::parse(source) {
        Ok(u) if u.password.is_some() => u.to_string_hidden(HIDDEN).into(),
        _ => source.into(),
    }
}

/// After a `PUT /api/config`: an entry whose source carries the [`HIDDEN`] password gets the
/// password the same camera had before (the API never showed it, so the client sent it back).
pub fn restore_passwords(new: &mut Cameras, old: &Cameras) {
    for c in new.iter_mut() {
        let Some(prev) = old.iter().find(|o| o.name == c.name) else { continue };
        if restore_password(&c.source, &prev.source).is_some() {
            c.source = prev.source.clone();
        }
    }
}

/// `new` with the [`HIDDEN`] password, when `old` is the same URL (user, host, port, path)
/// with a password: `old`, whose password the API never showed. Else `None`.
pub fn restore_password(new: &str, old: &str) -> Option<String> {
    let u = crate::camera::rtsp_url::Url::parse(new).ok()?;
    if u.password.as_deref() != Some(HIDDEN) {
        return None;
    }
    let p = crate::camera::rtsp_url::Url::parse(old).ok()?;
    (p.user == u.user && p.host == u.host && p.port == u.port && p.path == u.path && p.password.is_some()).then(|| old.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Cameras, String> {
        parse(s.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_are_read_and_checked() {
        let l = p(r#"[{"name":"rear","source":"/dev/video2","fps":15,"width":640,"height":480},
                      {"name":"porch","source":"rtsp://u:p@127.0.0.1:8554/cam","stall_s":3,"codec":"h264"}]"#)
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].fps, Some(15));
        assert_eq!(l[1].stall_s, 3);
        assert_eq!(l[1].codec, Some(VideoCodec::H264));
        for (bad, want) in [
            (r#"[{"name":"front","source":"synthetic"}]"#, "first camera"),
            (r#"[{"name":"Rear","source":"synthetic"}]"#, "not a camera name"),
            (r#"[{"name":"a","source":"synthetic"},{"name":"a","source":"synthetic"}]"#, "taken"),
            (r#"[{"name":"a","source":"http://x"}]"#, "not a source"),
            (r#"[{"name":"a","source":"synthetic","fps":0}]"#, "out of range"),
            (r#"[{"name":"a","source":"synthetic","fps":"5"}]"#, "whole number"),
            (r#"[{"name":"a","source":"synthetic","colour":1}]"#, "unknown key"),
            (r#"[{"source":"synthetic"}]"#, "\"name\" is missing"),
            (r#"[{"name":"a"}]"#, "\"source\" is missing"),
            (r#"[{"name":"a","source":"rtsp://"}]"#, "host"),
            (r#"[1]"#, "list of objects"),
            (
                r#"[{"name":"a","source":"synthetic"},{"name":"b","source":"synthetic"},{"name":"c","source":"synthetic"},{"name":"d","source":"synthetic"}]"#,
                "at most 3",
            ),
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains(want) && e.contains("\"cameras\""), "{bad}: {e}");
        }
    }

    #[test]
    fn passwords_are_hidden_and_restored() {
        let old = p(r#"[{"name":"porch","source":"rtsp://u:s3cret@host/p"}]"#).unwrap();
        let mut shown = String::new();
        write_json(&old, true, &mut shown).unwrap();
        assert!(!shown.contains("s3cret") && shown.contains(HIDDEN), "{shown}");
        let mut back = p(&shown).unwrap();
        restore_passwords(&mut back, &old);
        assert_eq!(back, old);
        // Another host: the hidden password is not carried over to it.
        let mut moved = p(&shown.replace("host", "other")).unwrap();
        restore_passwords(&mut moved, &old);
        assert!(moved[0].source.contains(HIDDEN));
    }
}

#[cfg(test)]
mod share_tests {
    use crate::config::Config;

    #[test]
    fn the_cap_is_split_by_planned_bytes_and_each_camera_gets_its_own_settings() {
        let c = Config::parse(
            br#"{"storage_cap_gb": 12, "video_bitrate_kbps": 4000, "video_fps": 30,
                 "cameras": [{"name": "rear", "source": "/dev/video2", "bitrate_kbps": 2000, "fps": 15, "width": 640, "height": 480},
                             {"name": "ip", "source": "rtsp://u:p@h/s", "bitrate_kbps": 2000}]}"#,
        )
        .unwrap();
        let caps: Vec<f64> = (0..3).map(|i| c.for_camera(i).unwrap().storage_cap_gb).collect();
        assert_eq!(caps, [6.0, 3.0, 3.0]);
        assert!(c.for_camera(3).is_none());
        let rear = c.for_camera(1).unwrap();
        assert_eq!((rear.video_fps, rear.video_res_width, rear.video_res_height), (15, 640, 480));
        assert_eq!(rear.camera_device.as_str(), "/dev/video2");
        assert_eq!(rear.cameras[0].name.as_str(), "rear");
        let ip = c.for_camera(2).unwrap();
        assert_eq!((ip.camera_device.as_str(), ip.video_fps), ("", 30));
        // One camera: the configuration as it is.
        let one = Config::parse(br#"{"storage_cap_gb": 12}"#).unwrap();
        assert_eq!(one.for_camera(0).unwrap(), one);
    }
}
