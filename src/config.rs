//! Configuration: a flat JSON object, parsed with serde-json-core into fixed-size fields.
//!
//! Every key has a default and the file may hold any subset of the keys (see docs/CONFIG.md).
//! A file is accepted or refused as a whole: unknown keys, duplicate keys, wrong types, values
//! out of range and anything that is not exactly one JSON object are all refused, with a
//! message that names the key and what is allowed, e.g.
//!
//! ```text
//! config key "video_fps": 500 is out of range (allowed 1..=120)
//! unknown config key "vidoe_fps" (did you mean "video_fps"?)
//! config: invalid JSON at byte 17 (line 1, column 18): expected ',' or '}'
//! ```
//!
//! How it works: serde-json-core reports neither byte positions nor key names, so [`Config::parse`]
//! first runs a small strict JSON syntax check of its own (positions for syntax errors, and the
//! raw text of each top-level value so that type errors can quote what was found), then walks
//! the object with serde-json-core through a hand-written map visitor that records the key it
//! is working on in a context, which is turned into the message when something fails.
//!
//! Writes go through [`write_atomic`] (temp file, fsync, rename, fsync of the directory).

use core::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

/// Largest config file [`Config::load`] reads, in bytes.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// Maximum nesting of arrays/objects the syntax check follows (no key takes either; this only
/// bounds the work spent on a malformed file).
const MAX_DEPTH: u32 = 32;

/// Bytes per `storage_cap_gb` unit (GiB).
const GIB: f64 = (1u64 << 30) as f64;

/// The user configuration. Build it with [`Config::default`], [`Config::parse`] or
/// [`Config::load`]; a `Config` built or changed in code should be checked with
/// [`Config::validate`]. See docs/CONFIG.md for what each field means.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Dashboard address `IP:PORT` (must parse as `SocketAddr`; at most 64 bytes).
    pub listen: heapless::String<64>,
    /// 0 = use the port in `listen`; otherwise overrides it.
    pub port: u16,
    /// Total space for recordings, in GiB (2^30 bytes); 0.01..=65536.
    pub storage_cap_gb: f64,
    /// Free space to keep on the file system, in MiB (2^20 bytes); 0..=1_048_576.
    pub min_free_mb: u32,
    /// Share of `storage_cap_gb` protected recordings may use; 0..=100.
    pub protected_cap_percent: u8,
    /// Frames per second requested from the camera; 1..=120.
    pub video_fps: u32,
    /// Requested frame width in pixels; 16..=7680.
    pub video_res_width: u32,
    /// Requested frame height in pixels; 16..=4320.
    pub video_res_height: u32,
    /// Length of one segment file in seconds; 1..=3600.
    pub segment_length_s: u32,
    /// Camera device path; empty = auto-detect (at most 128 bytes).
    pub camera_device: heapless::String<128>,
    /// JPEG quality for frames the recorder encodes; 1..=100.
    pub mjpeg_quality: u8,
    /// Burn the UTC time into each frame.
    pub embed_timestamp: bool,
    /// Commit (fdatasync) at least this often, in ms; 10..=60_000.
    pub commit_interval_ms: u32,
    /// Commit at least every this many frames; 1..=100_000.
    pub commit_frames: u32,
    /// Maximum simultaneous live viewers; 1..=64.
    pub max_live_clients: u32,
}

impl Default for Config {
    fn default() -> Self {
        let mut listen = heapless::String::new();
        // "127.0.0.1:8080" is 14 bytes; the capacity is 64.
        let _ = listen.push_str(DEFAULT_LISTEN);
        Config {
            listen,
            port: 0,
            storage_cap_gb: 8.0,
            min_free_mb: 256,
            protected_cap_percent: 50,
            video_fps: 30,
            video_res_width: 1280,
            video_res_height: 720,
            segment_length_s: 60,
            camera_device: heapless::String::new(),
            mjpeg_quality: 80,
            embed_timestamp: true,
            commit_interval_ms: 500,
            commit_frames: 30,
            max_live_clients: 8,
        }
    }
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

// ---------------------------------------------------------------------------------------------
// The key table
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Listen,
    Port,
    StorageCapGb,
    MinFreeMb,
    ProtectedCapPercent,
    VideoFps,
    VideoResWidth,
    VideoResHeight,
    SegmentLengthS,
    CameraDevice,
    MjpegQuality,
    EmbedTimestamp,
    CommitIntervalMs,
    CommitFrames,
    MaxLiveClients,
}

/// The type and allowed values of a key.
#[derive(Clone, Copy, Debug)]
enum Ty {
    /// A string of at most `max` bytes (UTF-8, after unescaping).
    Str {
        max: usize,
    },
    /// A non-negative integer in `min..=max`.
    Uint {
        min: u64,
        max: u64,
    },
    /// A number in `min..=max`.
    Float {
        min: f64,
        max: f64,
    },
    Bool,
}

impl Key {
    /// In file order (also the order of `to_json` and docs/CONFIG.md).
    const ALL: [Key; 15] = [
        Key::Listen,
        Key::Port,
        Key::StorageCapGb,
        Key::MinFreeMb,
        Key::ProtectedCapPercent,
        Key::VideoFps,
        Key::VideoResWidth,
        Key::VideoResHeight,
        Key::SegmentLengthS,
        Key::CameraDevice,
        Key::MjpegQuality,
        Key::EmbedTimestamp,
        Key::CommitIntervalMs,
        Key::CommitFrames,
        Key::MaxLiveClients,
    ];

    fn name(self) -> &'static str {
        match self {
            Key::Listen => "listen",
            Key::Port => "port",
            Key::StorageCapGb => "storage_cap_gb",
            Key::MinFreeMb => "min_free_mb",
            Key::ProtectedCapPercent => "protected_cap_percent",
            Key::VideoFps => "video_fps",
            Key::VideoResWidth => "video_res_width",
            Key::VideoResHeight => "video_res_height",
            Key::SegmentLengthS => "segment_length_s",
            Key::CameraDevice => "camera_device",
            Key::MjpegQuality => "mjpeg_quality",
            Key::EmbedTimestamp => "embed_timestamp",
            Key::CommitIntervalMs => "commit_interval_ms",
            Key::CommitFrames => "commit_frames",
            Key::MaxLiveClients => "max_live_clients",
        }
    }

    fn ty(self) -> Ty {
        let u = |min, max| Ty::Uint { min, max };
        match self {
            Key::Listen => Ty::Str { max: 64 },
            Key::Port => u(0, 65_535),
            Key::StorageCapGb => Ty::Float {
                min: 0.01,
                max: 65_536.0,
            },
            Key::MinFreeMb => u(0, 1_048_576),
            Key::ProtectedCapPercent => u(0, 100),
            Key::VideoFps => u(1, 120),
            Key::VideoResWidth => u(16, 7680),
            Key::VideoResHeight => u(16, 4320),
            Key::SegmentLengthS => u(1, 3600),
            Key::CameraDevice => Ty::Str { max: 128 },
            Key::MjpegQuality => u(1, 100),
            Key::EmbedTimestamp => Ty::Bool,
            Key::CommitIntervalMs => u(10, 60_000),
            Key::CommitFrames => u(1, 100_000),
            Key::MaxLiveClients => u(1, 64),
        }
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// What a key expects, for type-error messages: `a whole number in 1..=120`.
struct Expected(Key);

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.ty() {
            Ty::Str { max } if self.0 == Key::Listen => {
                write!(f, "a string \"IP:PORT\" of at most {max} bytes")
            }
            Ty::Str { max } => write!(f, "a string of at most {max} bytes"),
            Ty::Uint { min, max } => write!(f, "a whole number in {min}..={max}"),
            Ty::Float { min, max } => write!(f, "a number in {min}..={max}"),
            Ty::Bool => f.write_str("true or false"),
        }
    }
}

/// A typed value of some key.
#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    Str(&'a str),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Val::Str(s) => write!(f, "{s:?}"),
            Val::Uint(v) => write!(f, "{v}"),
            Val::Float(v) => write!(f, "{v}"),
            Val::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl Config {
    fn get(&self, key: Key) -> Val<'_> {
        match key {
            Key::Listen => Val::Str(&self.listen),
            Key::Port => Val::Uint(self.port.into()),
            Key::StorageCapGb => Val::Float(self.storage_cap_gb),
            Key::MinFreeMb => Val::Uint(self.min_free_mb.into()),
            Key::ProtectedCapPercent => Val::Uint(self.protected_cap_percent.into()),
            Key::VideoFps => Val::Uint(self.video_fps.into()),
            Key::VideoResWidth => Val::Uint(self.video_res_width.into()),
            Key::VideoResHeight => Val::Uint(self.video_res_height.into()),
            Key::SegmentLengthS => Val::Uint(self.segment_length_s.into()),
            Key::CameraDevice => Val::Str(&self.camera_device),
            Key::MjpegQuality => Val::Uint(self.mjpeg_quality.into()),
            Key::EmbedTimestamp => Val::Bool(self.embed_timestamp),
            Key::CommitIntervalMs => Val::Uint(self.commit_interval_ms.into()),
            Key::CommitFrames => Val::Uint(self.commit_frames.into()),
            Key::MaxLiveClients => Val::Uint(self.max_live_clients.into()),
        }
    }

    /// Store a value that [`check`] accepted. Fails only if the value does not fit the field
    /// (which `check` rules out) or has the wrong variant (a bug).
    fn set(&mut self, key: Key, val: Val<'_>) -> Result<(), ConfigError> {
        fn narrow<T: TryFrom<u64>>(key: Key, v: u64) -> Result<T, ConfigError> {
            T::try_from(v).map_err(|_| ConfigError::out_of_range(key, &v))
        }
        fn text<const N: usize>(key: Key, s: &str) -> Result<heapless::String<N>, ConfigError> {
            heapless::String::try_from(s).map_err(|_| ConfigError::too_long(key))
        }
        match (key, val) {
            (Key::Listen, Val::Str(s)) => self.listen = text(key, s)?,
            (Key::Port, Val::Uint(v)) => self.port = narrow(key, v)?,
            (Key::StorageCapGb, Val::Float(v)) => self.storage_cap_gb = v,
            (Key::MinFreeMb, Val::Uint(v)) => self.min_free_mb = narrow(key, v)?,
            (Key::ProtectedCapPercent, Val::Uint(v)) => {
                self.protected_cap_percent = narrow(key, v)?
            }
            (Key::VideoFps, Val::Uint(v)) => self.video_fps = narrow(key, v)?,
            (Key::VideoResWidth, Val::Uint(v)) => self.video_res_width = narrow(key, v)?,
            (Key::VideoResHeight, Val::Uint(v)) => self.video_res_height = narrow(key, v)?,
            (Key::SegmentLengthS, Val::Uint(v)) => self.segment_length_s = narrow(key, v)?,
            (Key::CameraDevice, Val::Str(s)) => self.camera_device = text(key, s)?,
            (Key::MjpegQuality, Val::Uint(v)) => self.mjpeg_quality = narrow(key, v)?,
            (Key::EmbedTimestamp, Val::Bool(v)) => self.embed_timestamp = v,
            (Key::CommitIntervalMs, Val::Uint(v)) => self.commit_interval_ms = narrow(key, v)?,
            (Key::CommitFrames, Val::Uint(v)) => self.commit_frames = narrow(key, v)?,
            (Key::MaxLiveClients, Val::Uint(v)) => self.max_live_clients = narrow(key, v)?,
            (key, _) => return Err(ConfigError::wrong_type(key, &"a value of another type")),
        }
        Ok(())
    }
}

/// Check `val` against the rules of `key`. `shown` is how the value appears in messages (the
/// raw JSON text when parsing, the value itself when validating).
fn check(key: Key, val: Val<'_>, shown: &dyn fmt::Display) -> Result<(), ConfigError> {
    match (key.ty(), val) {
        (Ty::Uint { min, max }, Val::Uint(v)) if (min..=max).contains(&v) => Ok(()),
        (Ty::Float { min, max }, Val::Float(v)) if v >= min && v <= max => Ok(()),
        (Ty::Uint { .. } | Ty::Float { .. }, Val::Uint(_) | Val::Float(_)) => {
            Err(ConfigError::out_of_range(key, shown))
        }
        (Ty::Bool, Val::Bool(_)) => Ok(()),
        (Ty::Str { max }, Val::Str(s)) => {
            if s.len() > max {
                return Err(ConfigError::too_long(key));
            }
            match key {
                Key::Listen if s.parse::<SocketAddr>().is_err() => Err(ConfigError::new(
                    ConfigErrorKind::InvalidValue,
                    Some(key),
                    format_args!(
                        "config key \"listen\": {shown} is not a valid IP:PORT socket address \
                         (e.g. \"127.0.0.1:8080\" or \"[::]:8080\")"
                    ),
                )),
                Key::CameraDevice if s.contains('\0') => Err(ConfigError::new(
                    ConfigErrorKind::InvalidValue,
                    Some(key),
                    format_args!("config key \"camera_device\": must not contain a NUL character"),
                )),
                _ => Ok(()),
            }
        }
        _ => Err(ConfigError::wrong_type(key, shown)),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What kind of problem a [`ConfigError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read (`load`).
    Io(io::ErrorKind),
    /// The file is larger than [`MAX_FILE_BYTES`].
    TooLarge,
    /// Not valid JSON (see [`ConfigError::offset`]).
    Syntax,
    /// Valid JSON but not an object.
    NotObject,
    UnknownKey,
    DuplicateKey,
    /// The value has the wrong JSON type (e.g. a string for a number, 1.5 for an integer).
    WrongType,
    /// A number outside the key's range.
    OutOfRange,
    /// A string that is too long or not acceptable (e.g. `listen` not an address).
    InvalidValue,
}

/// Why a configuration was refused. `Display` gives a complete one-line message that names
/// the key and what it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    key: Option<&'static str>,
    offset: Option<usize>,
    msg: String,
}

impl ConfigError {
    fn new(kind: ConfigErrorKind, key: Option<Key>, msg: fmt::Arguments<'_>) -> ConfigError {
        ConfigError {
            kind,
            key: key.map(Key::name),
            offset: None,
            msg: msg.to_string(),
        }
    }

    fn out_of_range(key: Key, shown: &dyn fmt::Display) -> ConfigError {
        let range = match key.ty() {
            Ty::Uint { min, max } => format!("{min}..={max}"),
            Ty::Float { min, max } => format!("{min}..={max}"),
            _ => String::new(),
        };
        ConfigError::new(
            ConfigErrorKind::OutOfRange,
            Some(key),
            format_args!(
                "config key \"{}\": {shown} is out of range (allowed {range})",
                key.name()
            ),
        )
    }

    fn wrong_type(key: Key, found: &dyn fmt::Display) -> ConfigError {
        ConfigError::new(
            ConfigErrorKind::WrongType,
            Some(key),
            format_args!(
                "config key \"{}\": expected {}, found {found}",
                key.name(),
                Expected(key)
            ),
        )
    }

    fn too_long(key: Key) -> ConfigError {
        let max = match key.ty() {
            Ty::Str { max } => max,
            _ => 0,
        };
        ConfigError::new(
            ConfigErrorKind::InvalidValue,
            Some(key),
            format_args!(
                "config key \"{}\": string is too long (allowed at most {max} bytes)",
                key.name()
            ),
        )
    }

    /// Prefix the message with the file it came from.
    fn in_file(mut self, path: &Path) -> ConfigError {
        self.msg = format!("{}: {}", path.display(), self.msg);
        self
    }

    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The key the error is about, if it is about one known key.
    pub fn key(&self) -> Option<&'static str> {
        self.key
    }

    /// For [`ConfigErrorKind::Syntax`]: the byte offset in the file where parsing stopped.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    /// True if `load` failed because the file does not exist (callers may then use defaults).
    pub fn is_not_found(&self) -> bool {
        self.kind == ConfigErrorKind::Io(io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------------
// Strict JSON syntax check
// ---------------------------------------------------------------------------------------------

/// Byte ranges (within the parsed body) of one top-level member's value.
#[derive(Clone, Copy, Debug)]
struct Member {
    value: (usize, usize),
}

/// Enough members to reach the first error: with 15 keys, the 16th member is a duplicate or
/// unknown key, which is refused before its value is looked at.
type Members = heapless::Vec<Member, 16>;

#[derive(Debug)]
enum ScanError {
    NotObject,
    Syntax { at: usize, expected: &'static str },
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn err<T>(&self, expected: &'static str) -> Result<T, ScanError> {
        Err(ScanError::Syntax {
            at: self.i,
            expected,
        })
    }

    /// The top-level object; records its members.
    fn document(&mut self, members: &mut Members) -> Result<(), ScanError> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Err(ScanError::NotObject);
        }
        self.object(1, Some(members))?;
        self.ws();
        if self.i != self.b.len() {
            return self.err("the end of the file after the closing '}'");
        }
        Ok(())
    }

    fn value(&mut self, depth: u32) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return self.err("less deeply nested arrays/objects");
        }
        match self.peek() {
            Some(b'{') => self.object(depth, None),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => self.err("a value (string, number, true, false, null, object or array)"),
        }
    }

    fn object(&mut self, depth: u32, mut members: Option<&mut Members>) -> Result<(), ScanError> {
        self.i += 1; // '{'
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            match self.peek() {
                Some(b'"') => self.string()?,
                Some(b'}') => return self.err("a key after ',' (no trailing commas in JSON)"),
                _ => return self.err("a key in double quotes"),
            }
            self.ws();
            if self.peek() != Some(b':') {
                return self.err("':' after the key");
            }
            self.i += 1;
            self.ws();
            let start = self.i;
            self.value(depth + 1)?;
            if let Some(m) = members.as_deref_mut() {
                // Beyond the capacity the parse fails on a key before it needs the value.
                let _ = m.push(Member {
                    value: (start, self.i),
                });
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("',' or '}'"),
            }
        }
    }

    fn array(&mut self, depth: u32) -> Result<(), ScanError> {
        self.i += 1; // '['
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() == Some(b']') {
                return self.err("a value after ',' (no trailing commas in JSON)");
            }
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("',' or ']'"),
            }
        }
    }

    fn string(&mut self) -> Result<(), ScanError> {
        self.i += 1; // '"'
        loop {
            match self.peek() {
                None => return self.err("'\"' to close the string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return self.err("4 hex digits after \\u");
                                }
                                self.i += 1;
                            }
                        }
                        _ => {
                            return self
                                .err("an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX");
                        }
                    }
                }
                Some(0..=0x1f) => {
                    return self
                        .err("\\n, \\t or \\u00XX instead of a raw control character in a string");
                }
                Some(_) => self.i += 1,
            }
        }
    }

    fn digits(&mut self) -> Result<(), ScanError> {
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return self.err("a digit");
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        Ok(())
    }

    fn number(&mut self) -> Result<(), ScanError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            _ => self.digits()?,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), ScanError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.err("a value (string, number, true, false, null, object or array)")
        }
    }
}

fn syntax_error(file: &[u8], at: usize, expected: &dyn fmt::Display) -> ConfigError {
    let before = file.get(..at).unwrap_or(file);
    let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    // Count characters, not bytes (skip UTF-8 continuation bytes).
    let column = 1 + before[line_start..]
        .iter()
        .filter(|&&c| c & 0xC0 != 0x80)
        .count();
    let what = if at >= file.len() {
        "unexpected end of file, expected "
    } else {
        "expected "
    };
    let mut e = ConfigError::new(
        ConfigErrorKind::Syntax,
        None,
        format_args!(
            "config: invalid JSON at byte {at} (line {line}, column {column}): {what}{expected}"
        ),
    );
    e.offset = Some(at);
    e
}

// ---------------------------------------------------------------------------------------------
// String unescaping (JSON escapes, including surrogate pairs)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Unescape {
    TooLong,
    BadEscape,
}

/// Unescape the inside of a JSON string into `out`. On `TooLong`, `out` holds what fit.
fn unescape<const N: usize>(raw: &str, out: &mut heapless::String<N>) -> Result<(), Unescape> {
    fn hex4(chars: &mut core::str::Chars<'_>) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            v = v * 16 + chars.next()?.to_digit(16)?;
        }
        Some(v)
    }
    out.clear();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let c = if c != '\\' {
            c
        } else {
            match chars.next().ok_or(Unescape::BadEscape)? {
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let hi = hex4(&mut chars).ok_or(Unescape::BadEscape)?;
                    let code = if (0xD800..0xDC00).contains(&hi) {
                        // A high surrogate must be followed by \u and a low surrogate.
                        if chars.next() != Some('\\') || chars.next() != Some('u') {
                            return Err(Unescape::BadEscape);
                        }
                        let lo = hex4(&mut chars).ok_or(Unescape::BadEscape)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return Err(Unescape::BadEscape);
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    } else {
                        hi
                    };
                    char::from_u32(code).ok_or(Unescape::BadEscape)?
                }
                _ => return Err(Unescape::BadEscape),
            }
        };
        out.push(c).map_err(|_| Unescape::TooLong)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The serde-json-core walk
// ---------------------------------------------------------------------------------------------

/// What the visitor knows when something fails: read by `parse` afterwards.
struct Ctx<'b> {
    /// The JSON text being parsed (after any BOM).
    body: &'b [u8],
    members: &'b [Member],
    /// Index of the member being processed.
    index: usize,
    /// The key whose value is being read, if any.
    key: Option<Key>,
    /// The complete error, when the visitor could tell exactly what is wrong.
    problem: Option<ConfigError>,
}

impl Ctx<'_> {
    fn fail<E: de::Error>(&mut self, e: ConfigError) -> E {
        self.problem = Some(e);
        E::custom("config error (see context)")
    }

    fn raw_value(&self, index: usize) -> &[u8] {
        self.members
            .get(index)
            .and_then(|m| self.body.get(m.value.0..m.value.1))
            .unwrap_or(&[])
    }
}

/// A raw JSON value as it appears in messages: text up to 40 bytes, or "an object"/"an array".
struct Found<'a>(&'a [u8]);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.first() {
            None => f.write_str("something else"),
            Some(b'{') => f.write_str("an object"),
            Some(b'[') => f.write_str("an array"),
            Some(_) => {
                // The body was checked to be UTF-8, so this cannot fail; be safe anyway.
                let s = core::str::from_utf8(self.0).unwrap_or("(invalid UTF-8)");
                if s.len() <= 40 {
                    f.write_str(s)
                } else {
                    let mut cut = 40;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    write!(f, "{}…", &s[..cut])
                }
            }
        }
    }
}

struct ConfigSeed<'c, 'b> {
    ctx: &'c mut Ctx<'b>,
}

impl<'de> DeserializeSeed<'de> for ConfigSeed<'_, '_> {
    type Value = Config;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Config, D::Error> {
        d.deserialize_map(ConfigVisitor { ctx: self.ctx })
    }
}

struct ConfigVisitor<'c, 'b> {
    ctx: &'c mut Ctx<'b>,
}

impl<'de> Visitor<'de> for ConfigVisitor<'_, '_> {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let ctx = self.ctx;
        let mut cfg = Config::default();
        let mut seen = 0u32;
        // Unescaped string values land here (the longest string key holds 128 bytes).
        let mut text: heapless::String<128> = heapless::String::new();
        loop {
            ctx.key = None;
            // No unescape buffer is given to serde-json-core, so strings come back raw
            // (escapes intact) and borrowed from the input.
            let Some(raw_key) = map.next_key::<&'de str>()? else {
                break;
            };
            let index = ctx.index;
            ctx.index += 1;

            let mut name: heapless::String<64> = heapless::String::new();
            let (key, truncated) = match unescape(raw_key, &mut name) {
                Ok(()) => (Key::from_name(&name), false),
                Err(Unescape::TooLong) => (None, true),
                Err(Unescape::BadEscape) => (None, false),
            };
            let Some(key) = key else {
                return Err(ctx.fail(unknown_key(&name, truncated)));
            };
            if seen & key.bit() != 0 {
                return Err(ctx.fail(ConfigError::new(
                    ConfigErrorKind::DuplicateKey,
                    Some(key),
                    format_args!("duplicate config key \"{}\"", key.name()),
                )));
            }
            seen |= key.bit();
            ctx.key = Some(key);

            // The syntax check has made sure `raw` is one complete JSON value, so its first
            // byte tells its type. Refuse wrong types before serde-json-core sees them: it
            // would read `1.5` as 1 for an integer key and only fail at the next key.
            let raw = ctx.raw_value(index);
            let first = raw.first().copied().unwrap_or(0);
            let wrong_type = || ConfigError::wrong_type(key, &Found(raw));
            let val = match key.ty() {
                Ty::Bool => {
                    if raw != b"true" && raw != b"false" {
                        return Err(ctx.fail(wrong_type()));
                    }
                    Val::Bool(map.next_value::<bool>()?)
                }
                Ty::Uint { .. } => {
                    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
                        return Err(ctx.fail(wrong_type()));
                    }
                    match map.next_value::<u64>() {
                        Ok(v) => Val::Uint(v),
                        // All digits, so the only possible failure is overflow.
                        Err(_) => {
                            return Err(ctx.fail(ConfigError::out_of_range(key, &Found(raw))));
                        }
                    }
                }
                Ty::Float { .. } => {
                    if !(first == b'-' || first.is_ascii_digit()) {
                        return Err(ctx.fail(wrong_type()));
                    }
                    Val::Float(map.next_value::<f64>()?)
                }
                Ty::Str { .. } => {
                    if first != b'"' {
                        return Err(ctx.fail(wrong_type()));
                    }
                    let raw_str = map.next_value::<&'de str>()?;
                    match unescape(raw_str, &mut text) {
                        Ok(()) => {}
                        Err(Unescape::TooLong) => return Err(ctx.fail(ConfigError::too_long(key))),
                        Err(Unescape::BadEscape) => {
                            return Err(ctx.fail(ConfigError::new(
                                ConfigErrorKind::InvalidValue,
                                Some(key),
                                format_args!(
                                    "config key \"{}\": invalid \\u escape (a lone UTF-16 \
                                     surrogate)",
                                    key.name()
                                ),
                            )));
                        }
                    }
                    Val::Str(&text)
                }
            };
            if let Err(e) = check(key, val, &Found(raw)).and_then(|()| cfg.set(key, val)) {
                return Err(ctx.fail(e));
            }
        }
        ctx.key = None;
        Ok(cfg)
    }
}

fn unknown_key(name: &str, truncated: bool) -> ConfigError {
    let mut msg = String::new();
    let _ = write!(msg, "unknown config key {name:?}");
    if truncated {
        msg.insert(msg.len() - 1, '…');
    }
    match closest_key(name).filter(|_| !truncated) {
        Some(k) => {
            let _ = write!(msg, " (did you mean \"{}\"?)", k.name());
        }
        None => {
            msg.push_str(" (known keys:");
            for (i, k) in Key::ALL.iter().enumerate() {
                msg.push_str(if i == 0 { " " } else { ", " });
                msg.push_str(k.name());
            }
            msg.push(')');
        }
    }
    ConfigError {
        kind: ConfigErrorKind::UnknownKey,
        key: None,
        offset: None,
        msg,
    }
}

/// The known key closest to `name` if it is within edit distance 2 (optimal string alignment:
/// insert, delete, substitute, swap adjacent), ignoring ASCII case and `-` vs `_`.
fn closest_key(name: &str) -> Option<Key> {
    const MAX: usize = 64;
    let norm = |c: u8| match c {
        b'-' | b' ' => b'_',
        c => c.to_ascii_lowercase(),
    };
    let a = name.as_bytes();
    if a.len() > MAX {
        return None;
    }
    let mut best: Option<(usize, Key)> = None;
    for key in Key::ALL {
        let b = key.name().as_bytes();
        // Rows i-2, i-1, i of the distance table.
        let mut rows = [[0usize; MAX + 1]; 3];
        for (j, cell) in rows[1].iter_mut().enumerate().take(b.len() + 1) {
            *cell = j;
        }
        for i in 1..=a.len() {
            let (r2, r1, r0) = ((i + 1) % 3, (i + 2) % 3, i % 3);
            rows[r0][0] = i;
            for j in 1..=b.len() {
                let cost = usize::from(norm(a[i - 1]) != norm(b[j - 1]));
                let mut d = (rows[r1][j] + 1)
                    .min(rows[r0][j - 1] + 1)
                    .min(rows[r1][j - 1] + cost);
                if i > 1
                    && j > 1
                    && norm(a[i - 1]) == norm(b[j - 2])
                    && norm(a[i - 2]) == norm(b[j - 1])
                {
                    d = d.min(rows[r2][j - 2] + 1);
                }
                rows[r0][j] = d;
            }
        }
        let dist = rows[a.len() % 3][b.len()];
        if dist <= 2 && best.is_none_or(|(d, _)| dist < d) {
            best = Some((dist, key));
        }
    }
    best.map(|(_, k)| k)
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Parse a config file's contents. The whole file must be one JSON object (an optional
    /// UTF-8 BOM and surrounding whitespace are allowed); missing keys keep their defaults.
    /// Any problem refuses the whole file.
    pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
        let body = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
        let base = json.len() - body.len();

        let mut members = Members::new();
        let mut scanner = Scanner { b: body, i: 0 };
        // Check UTF-8 first so that messages can quote the text, but let a file that does not
        // even start like an object say so.
        let scanned = match core::str::from_utf8(body) {
            Ok(_) => scanner.document(&mut members),
            Err(e) => {
                let mut s = Scanner { b: body, i: 0 };
                s.ws();
                if s.peek() != Some(b'{') {
                    Err(ScanError::NotObject)
                } else {
                    Err(ScanError::Syntax {
                        at: e.valid_up_to(),
                        expected: "valid UTF-8 text",
                    })
                }
            }
        };
        match scanned {
            Ok(()) => {}
            Err(ScanError::NotObject) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::NotObject,
                    None,
                    format_args!("config: not a JSON object"),
                ));
            }
            Err(ScanError::Syntax { at, expected }) => {
                return Err(syntax_error(json, base + at, &expected));
            }
        }

        let mut ctx = Ctx {
            body,
            members: &members,
            index: 0,
            key: None,
            problem: None,
        };
        let mut de = serde_json_core::de::Deserializer::new(body, None);
        let result = ConfigSeed { ctx: &mut ctx }
            .deserialize(&mut de)
            .and_then(|cfg| de.end().map(|_| cfg));
        match result {
            Ok(cfg) => {
                cfg.validate()?;
                Ok(cfg)
            }
            // Not expected after the syntax check, but never trust that.
            Err(e) => Err(ctx.problem.take().unwrap_or_else(|| match ctx.key {
                Some(key) => {
                    ConfigError::wrong_type(key, &Found(ctx.raw_value(ctx.index.saturating_sub(1))))
                }
                None => ConfigError::new(
                    ConfigErrorKind::Syntax,
                    None,
                    format_args!("config: invalid JSON: {e}"),
                ),
            })),
        }
    }

    /// Read and parse the file at `path`. Every error message starts with the path.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let io_err = |e: io::Error| {
            ConfigError::new(
                ConfigErrorKind::Io(e.kind()),
                None,
                format_args!("cannot read config file: {e}"),
            )
            .in_file(path)
        };
        let file = File::open(path).map_err(io_err)?;
        let mut buf = Vec::new();
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(io_err)?;
        if buf.len() > MAX_FILE_BYTES {
            return Err(ConfigError::new(
                ConfigErrorKind::TooLarge,
                None,
                format_args!("config file is larger than {MAX_FILE_BYTES} bytes"),
            )
            .in_file(path));
        }
        Config::parse(&buf).map_err(|e| e.in_file(path))
    }

    /// The config as JSON, one key per line in the documented order, ending in a newline.
    /// Strings are escaped as JSON requires; a non-finite `storage_cap_gb` (possible only in
    /// a `Config` built in code) is written as `null`, which `parse` refuses.
    pub fn to_json(&self) -> heapless::String<2048> {
        let mut out = heapless::String::new();
        // Cannot fail: the longest possible output (every string byte escaped as \u00XX)
        // is about 1600 bytes; see the `to_json_worst_case_fits` test.
        let _ = self.write_json(&mut out);
        out
    }

    fn write_json(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        w.write_str("{\n")?;
        for (i, key) in Key::ALL.into_iter().enumerate() {
            write!(w, "  \"{}\": ", key.name())?;
            match self.get(key) {
                Val::Str(s) => write_json_str(w, s)?,
                Val::Uint(v) => write!(w, "{v}")?,
                Val::Float(v) if !v.is_finite() => w.write_str("null")?,
                // Shortest text that reads back to the same f64; exponent form for extreme
                // values so the length stays bounded.
                Val::Float(v) if v == 0.0 || (1e-5..1e15).contains(&v.abs()) => write!(w, "{v}")?,
                Val::Float(v) => write!(w, "{v:e}")?,
                Val::Bool(v) => write!(w, "{v}")?,
            }
            w.write_str(if i + 1 < Key::ALL.len() { ",\n" } else { "\n" })?;
        }
        w.write_str("}\n")
    }

    /// Validate, then write `to_json()` to `path` with [`write_atomic`]. An invalid config is
    /// not written (`InvalidInput`), because it could not be loaded again.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        self.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        write_atomic(path, self.to_json().as_bytes())
    }

    /// `storage_cap_gb` in bytes (GiB, 2^30 bytes each; fractions allowed).
    pub fn storage_cap_bytes(&self) -> u64 {
        // `as` saturates (and maps NaN to 0), which is what a cap wants.
        (self.storage_cap_gb * GIB) as u64
    }

    /// `min_free_mb` in bytes (MiB, 2^20 bytes each).
    pub fn min_free_bytes(&self) -> u64 {
        u64::from(self.min_free_mb) << 20
    }

    /// The dashboard address: `listen`, with its port replaced by `port` unless that is 0.
    /// If `listen` does not parse (only possible for an unvalidated `Config`), the default
    /// `127.0.0.1:8080` is used.
    pub fn listen_addr(&self) -> SocketAddr {
        let mut addr = self
            .listen
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        if self.port != 0 {
            addr.set_port(self.port);
        }
        addr
    }

    /// Check every field against its allowed range (the same rules `parse` applies). Returns
    /// the error for the first offending key in documented order.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for key in Key::ALL {
            let val = self.get(key);
            check(key, val, &val)?;
        }
        Ok(())
    }
}

fn write_json_str(w: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => None,
            _ => continue,
        };
        w.write_str(&s[start..i])?;
        match esc {
            Some(e) => w.write_str(e)?,
            None => write!(w, "\\u{:04x}", c as u32)?,
        }
        start = i + c.len_utf8();
    }
    w.write_str(&s[start..])?;
    w.write_char('"')
}

/// Replace `path` with `bytes` atomically: write `<name>.tmp` in the same directory, fsync it,
/// rename it over `path`, then fsync the directory. After a crash, `path` holds either the
/// old or the new contents (a stale `<name>.tmp` may remain; it is overwritten next time).
/// Errors name the file involved.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let with_path =
        |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);

    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(with_path(&tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(with_path(path, e));
    }
    let synced = File::open(dir).and_then(|d| d.sync_all());
    match synced {
        // Some file systems cannot fsync a directory; the rename is then as durable as it gets.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => Ok(()),
        Err(e) => Err(with_path(dir, e)),
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
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

    fn temp_dir(tag: &str) -> std::path::PathBuf {
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
            "commit_interval_ms": 250, "commit_frames": 10, "max_live_clients": 4
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
        let e = err(&format!(r#"{{"camera_device": "{}"}}"#, "x".repeat(129)));
        assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
        assert_eq!(
            e.to_string(),
            "config key \"camera_device\": string is too long (allowed at most 128 bytes)"
        );
        let c = ok(&format!(r#"{{"camera_device": "{}"}}"#, "é".repeat(64)));
        assert_eq!(c.camera_device.len(), 128);
        assert!(
            err(&format!(r#"{{"camera_device": "{}x"}}"#, "é".repeat(64)))
                .to_string()
                .contains("128")
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
        assert!(msg.ends_with("max_live_clients)"), "{msg}");
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
  "mjpeg_quality": 80,
  "embed_timestamp": true,
  "commit_interval_ms": 500,
  "commit_frames": 30,
  "max_live_clients": 8
}
"#
        );
        assert_eq!(ok(&text), d);
        assert_eq!(ok(&full().to_json()), full());

        let mut c = full();
        c.camera_device =
            heapless::String::try_from("/dev/v \"q\" \\ \n\t\u{1}\u{7f} é 😀").unwrap();
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
        c.camera_device = heapless::String::try_from("\u{1}".repeat(128).as_str()).unwrap();
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
        let mut unbounded = String::new();
        c.write_json(&mut unbounded).unwrap();
        assert!(unbounded.len() < 1800, "{}", unbounded.len());
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
    fn write_atomic_replaces_and_cleans_up() {
        let dir = temp_dir("atomic");
        let path = dir.join("config.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        // A stale temp file from a crash is simply overwritten.
        fs::write(dir.join("config.json.tmp"), b"stale").unwrap();
        write_atomic(&path, b"third").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"third");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["config.json".to_string()]);
        // Errors name the path.
        let missing = dir.join("no/such/dir/config.json");
        let e = write_atomic(&missing, b"x").unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
        assert!(write_atomic(Path::new("/"), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
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
}
