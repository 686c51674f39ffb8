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
//!
//! The pieces, one job each:
//!
//! - `keys`: the key table (names, types, ranges), the rule check, closest-key suggestions;
//! - `error`: [`ConfigError`], [`ConfigErrorKind`] and the messages;
//! - `scan`: the strict JSON syntax check and string unescaping;
//! - `de`: the serde-json-core map visitor that fills a `Config`;
//! - `ser`: `Config` → JSON text;
//! - `atomic`: [`write_atomic`].

mod atomic;
pub mod cameras;
mod de;
mod error;
mod keys;
mod scan;
mod ser;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::path::Path;

pub use atomic::{write_atomic, write_atomic_mode};
pub use cameras::{CameraConf, Cameras};
pub use error::{ConfigError, ConfigErrorKind};

use keys::{Key, check};
use scan::{ScanError, scan};

/// Largest config file [`Config::load`] reads, in bytes.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

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
    pub camera_device: heapless::String<192>,
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
    /// What the recorder stores: H.264 (default) or Motion JPEG.
    pub video_codec: VideoCodec,
    /// H.264 target bitrate for frames blackbox encodes, kbit/s; 100..=50_000.
    pub video_bitrate_kbps: u32,
    /// Seconds from one H.264 key frame to the next (seek granularity, live start); 1..=10.
    pub keyframe_interval_s: u32,
    /// Where the G-sensor is: `"auto"`, `"off"`, `"/dev/i2c-N"` or `"/dev/i2c-N@0xADDR"`.
    pub gsensor_device: heapless::String<32>,
    /// Where the GPS receiver is: `"auto"`, `"off"`, a tty's absolute path, or `PATH@BAUD`.
    pub gps_device: heapless::String<128>,
    /// Impact threshold while driving, g; 0.5..=16.
    pub gsensor_threshold_g: f64,
    /// Impact ("bump") threshold while parked, g; 0.1..=16.
    pub gsensor_parked_threshold_g: f64,
    /// Footage an event protects before its trigger (counted in footage) and after it, s.
    pub event_pre_s: u16,
    pub event_post_s: u16,
    /// Minutes without vehicle motion (G-sensor) before parking mode starts by itself; 0 never.
    pub parking_after_min: u16,
    /// The speed unit of the export's subtitles and the player: km/h or mph.
    pub speed_unit: SpeedUnit,
    /// Whether the export's subtitles show the position (off: time and speed only).
    pub subtitle_position: bool,
    /// Sound from the microphone: `false` mutes (nothing is stored).
    pub audio: bool,
    /// Where the microphone is: `"auto"`, `"off"` or `/dev/snd/pcmCxDyc`.
    pub audio_device: heapless::String<64>,
    /// The cameras recorded besides the first (`front`, the keys above); see `cameras.rs`.
    pub cameras: Cameras,
}

/// The `speed_unit` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeedUnit {
    Kmh,
    Mph,
}

impl SpeedUnit {
    pub fn name(self) -> &'static str {
        match self {
            SpeedUnit::Kmh => "kmh",
            SpeedUnit::Mph => "mph",
        }
    }

    pub fn from_name(s: &str) -> Option<SpeedUnit> {
        match s {
            "kmh" => Some(SpeedUnit::Kmh),
            "mph" => Some(SpeedUnit::Mph),
            _ => None,
        }
    }
}

/// The `video_codec` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    Mjpeg,
}

impl VideoCodec {
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Mjpeg => "mjpeg",
        }
    }

    pub fn from_name(s: &str) -> Option<VideoCodec> {
        match s {
            "h264" => Some(VideoCodec::H264),
            "mjpeg" => Some(VideoCodec::Mjpeg),
            _ => None,
        }
    }
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
            video_codec: VideoCodec::H264,
            video_bitrate_kbps: 4000,
            keyframe_interval_s: 1,
            gsensor_device: heapless::String::try_from("auto").unwrap_or_default(),
            gps_device: heapless::String::try_from("auto").unwrap_or_default(),
            gsensor_threshold_g: 2.5,
            gsensor_parked_threshold_g: 0.5,
            event_pre_s: 20,
            event_post_s: 40,
            parking_after_min: 5,
            speed_unit: SpeedUnit::Kmh,
            subtitle_position: true,
            audio: true,
            audio_device: heapless::String::try_from("auto").unwrap_or_default(),
            cameras: Cameras::new(),
        }
    }
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Config {
    /// Parse a config file's contents. The whole file must be one JSON object (an optional
    /// UTF-8 BOM and surrounding whitespace are allowed); missing keys keep their defaults.
    /// Any problem refuses the whole file.
    pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
        let body = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
        let values = scan(body).map_err(|e| match e {
            ScanError::NotObject => ConfigError::not_object(),
            // Offsets count the BOM.
            ScanError::Syntax { at, expected } => {
                ConfigError::syntax(json, json.len() - body.len() + at, &expected)
            }
        })?;
        let cfg = de::read(body, &values)?;
        cfg.validate()?;
        Ok(cfg)
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
    pub fn to_json(&self) -> heapless::String<8192> {
        let mut out = heapless::String::new();
        // Cannot fail: the longest possible output (every string byte escaped as \u00XX)
        // is about 6300 bytes; see the `to_json_worst_case_fits` test.
        let _ = self.write_json(&mut out);
        out
    }

    /// [`Config::to_json`] with the passwords of `rtsp://` sources hidden: what the API shows.
    pub fn to_json_hidden(&self) -> heapless::String<8192> {
        let mut out = heapless::String::new();
        let _ = self.write_json_as(&mut out, true);
        out
    }

    /// Every camera's name: `front` (the top-level keys), then the `cameras` entries.
    pub fn camera_names(&self) -> Vec<&str> {
        core::iter::once(cameras::FIRST).chain(self.cameras.iter().map(|c| c.name.as_str())).collect()
    }

    /// Bytes a second the store plans for (H.264: the bitrate; a JPEG at quality 80 takes
    /// roughly 0.5-1.5 bits per pixel: plan for 1).
    pub fn expected_bytes_per_s(&self) -> u64 {
        match self.video_codec {
            VideoCodec::H264 => u64::from(self.video_bitrate_kbps) * 1000 / 8,
            VideoCodec::Mjpeg => self.video_res_width as u64 * self.video_res_height as u64 / 8 * self.video_fps as u64,
        }
    }

    /// The configuration camera `i` records with (0: `front`), with its own size, rate, codec
    /// and bitrate, and its share of `storage_cap_gb`: the cap is split in proportion to each
    /// camera's planned bytes a second, so every camera keeps about the same span of time
    /// (docs/CONFIG.md "Several cameras"). In the result, `cameras` is empty for the first
    /// camera and holds the camera's own entry (its source) for the others. `None` past the
    /// last camera.
    pub fn for_camera(&self, i: usize) -> Option<Config> {
        let one = |i: usize| -> Option<Config> {
            let mut c = self.clone();
            c.cameras = Cameras::new();
            if i > 0 {
                let e = self.cameras.get(i - 1)?;
                c.video_res_width = e.width.unwrap_or(c.video_res_width);
                c.video_res_height = e.height.unwrap_or(c.video_res_height);
                c.video_fps = e.fps.unwrap_or(c.video_fps);
                c.video_codec = e.codec.unwrap_or(c.video_codec);
                c.video_bitrate_kbps = e.bitrate_kbps.unwrap_or(c.video_bitrate_kbps);
                c.camera_device = match cameras::source_kind(&e.source) {
                    Some(cameras::SourceKind::V4l2) => heapless::String::try_from(e.source.as_str()).unwrap_or_default(),
                    _ => heapless::String::new(),
                };
                let _ = c.cameras.push(e.clone());
            }
            Some(c)
        };
        let mut mine = one(i)?;
        if !self.cameras.is_empty() {
            let total: u64 = (0..=self.cameras.len()).filter_map(one).map(|c| c.expected_bytes_per_s().max(1)).sum();
            mine.storage_cap_gb = self.storage_cap_gb * mine.expected_bytes_per_s().max(1) as f64 / total.max(1) as f64;
        }
        Some(mine)
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
