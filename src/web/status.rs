//! `GET /health` and `GET /api/status`: the recorder's status snapshot as JSON, formatted into
//! a fixed-size buffer (no allocation per request).

use crate::clock::Iso;
use super::system::Figures;
use crate::status::{RecorderStatus, Snapshot};
use core::fmt::{self, Write as _};
use std::path::PathBuf;

/// What the status routes read: the recorder's shared status and facts fixed at start.
pub struct StatusSource<'a> {
    pub status: &'a RecorderStatus,
    pub data_dir: PathBuf,
    pub cap_bytes: u64,
}

/// Figures the web thread measures itself (see `system.rs`), and its live viewer count.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extra {
    pub figures: Figures,
    pub live_clients: u32,
    /// The cap now in force (it can change live); `None`: the one fixed at start.
    pub cap_bytes: Option<u64>,
    /// Heap allocations the web thread has made so far (diagnostics: the live path makes none
    /// per frame; tests/web_api.rs checks it).
    pub web_allocations: u64,
    /// The recording's codec (`"h264"` or `"mjpeg"`): what live view must play.
    pub codec: &'static str,
}

/// A JSON body; 2 KiB holds the status with a camera description of a few hundred bytes.
pub type JsonBuf = heapless::String<10240>;

/// `{"status":"ok","uptime_s":N,"recording":B,"durable_seq":N|null}`
pub fn health_json(s: &Snapshot) -> JsonBuf {
    let mut o = JsonBuf::new();
    let _ = write!(
        o,
        "{{\"status\":\"ok\",\"uptime_s\":{},\"recording\":{},\"state\":\"{}\",\"durable_seq\":{}}}",
        s.uptime_s,
        s.recording,
        s.state.name(),
        OptNum(s.durable_seq)
    );
    o
}

struct OptF(Option<f64>);

impl fmt::Display for OptF {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) if v.is_finite() => write!(f, "{v}"),
            _ => f.write_str("null"),
        }
    }
}

struct Throttled(Option<u32>);

impl fmt::Display for Throttled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("null"),
            Some(b) => write!(
                f,
                "{{\"under_voltage\":{},\"freq_capped\":{},\"throttled\":{},\"soft_temp_limit\":{},\
                 \"under_voltage_occurred\":{},\"throttled_occurred\":{},\"raw\":\"{b:#x}\"}}",
                b & 1 != 0,
                b & 2 != 0,
                b & 4 != 0,
                b & 8 != 0,
                b & (1 << 16) != 0,
                b & (1 << 18) != 0
            ),
        }
    }
}

/// The full status object of `/api/status` (docs/API.md).
pub fn status_json(src: &StatusSource<'_>, extra: &Extra) -> JsonBuf {
    let s = src.status.snapshot();
    let cam = src.status.camera();
    let free = free_bytes(&src.data_dir);
    let fig = &extra.figures;
    let mut o = JsonBuf::new();
    let r = write!(
        o,
        "{{\"recording\":{},\"state\":\"{}\",\"camera\":{},\
         \"format\":{{\"device\":{},\"driver\":{},\"pixel_format\":{},\"width\":{},\"height\":{},\"fps\":{}}},\
         \"fps\":{},\"frames\":{},\"delivered\":{},\"camera_sequence\":{},\"dropped\":{},\
         \"lost\":{{\"driver\":{},\"deadline\":{},\"encoder\":{},\"backpressure\":{},\"store\":{}}},\"durable_seq\":{},\
         \"storage\":{{\"used_bytes\":{},\"cap_bytes\":{},\"free_bytes\":{}}},\"segments\":{},\
         \"oldest\":{},\"newest\":{},\"started\":{},\"uptime_s\":{},\
         \"system\":{{\"cpu_percent\":{},\"mem_used_bytes\":{},\"mem_total_bytes\":{},\"rss_bytes\":{},\
         \"temp_c\":{},\"throttled\":{}}},\"live_clients\":{},\"web_allocations\":{},\"codec\":{},\"gsensor\":{},\"gps\":{},\"audio\":{},\"offload\":{},\"alerts\":{},\"version\":\"{}\"}}",
        s.recording,
        s.state.name(),
        JsonStr(&cam.describe),
        OptStr(cam.device.as_deref()),
        OptStr(cam.driver.as_deref()),
        OptStr(cam.pixel_format.as_deref()),
        cam.width,
        cam.height,
        cam.fps,
        fig.fps,
        s.frames,
        s.delivered,
        OptNum(s.camera_sequence),
        s.dropped,
        s.lost.driver,
        s.lost.deadline,
        s.lost.encoder,
        s.lost.backpressure,
        s.lost.store,
        OptNum(s.durable_seq),
        s.used_bytes,
        extra.cap_bytes.unwrap_or(src.cap_bytes),
        OptNum(free),
        s.segments,
        OptTime(s.oldest_utc_ns),
        OptTime(s.newest_utc_ns),
        OptTime(Some(s.started_utc_ns)),
        s.uptime_s,
        OptF(fig.cpu_percent),
        OptNum(fig.mem_used_bytes),
        OptNum(fig.mem_total_bytes),
        OptNum(fig.rss_bytes),
        OptF(fig.temp_c),
        Throttled(fig.throttled),
        extra.live_clients,
        extra.web_allocations,
        JsonStr(if extra.codec.is_empty() { "mjpeg" } else { extra.codec }),
        GSensor(&crate::gsensor::status()),
        Gps(&crate::gps::status()),
        Audio(&crate::audio::status()),
        crate::offload::shared().map_or_else(|| "null".to_string(), |o| super::offload::status_json(&o.status())),
        crate::alerts::shared().map_or_else(|| "null".to_string(), |a| super::alerts::status_json(&a.status())),
        env!("CARGO_PKG_VERSION")
    );
    if r.is_err() {
        // Only a very long camera description can overflow; say so rather than send half a JSON.
        o.clear();
        let _ = o.push_str("{\"error\":\"status too large\"}");
    }
    o
}

/// One camera in `/api/status`'s `cameras` list: enough to draw a grid tile and show what it
/// lost, by cause.
pub struct CameraEntry<'a> {
    pub name: &'a str,
    pub status: &'a RecorderStatus,
}

impl fmt::Display for CameraEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.status.snapshot();
        let cam = self.status.camera();
        write!(
            f,
            "{{\"name\":{},\"state\":\"{}\",\"recording\":{},\"camera\":{},\"width\":{},\"height\":{},\"fps\":{},             \"frames\":{},\"delivered\":{},\"dropped\":{},             \"lost\":{{\"driver\":{},\"deadline\":{},\"encoder\":{},\"backpressure\":{},\"store\":{}}},             \"durable_seq\":{},\"used_bytes\":{},\"segments\":{},\"oldest\":{},\"newest\":{}}}",
            JsonStr(self.name),
            s.state.name(),
            s.recording,
            JsonStr(&cam.describe),
            cam.width,
            cam.height,
            cam.fps,
            s.frames,
            s.delivered,
            s.dropped,
            s.lost.driver,
            s.lost.deadline,
            s.lost.encoder,
            s.lost.backpressure,
            s.lost.store,
            OptNum(s.durable_seq),
            s.used_bytes,
            s.segments,
            OptTime(s.oldest_utc_ns),
            OptTime(s.newest_utc_ns),
        )
    }
}

/// `json` (one object) with `"name"` (the camera it describes) and `"cameras"` (every camera)
/// added at its end.
pub fn with_cameras(json: &mut JsonBuf, name: &str, cameras: &[CameraEntry<'_>]) {
    if !json.ends_with('}') || json.starts_with("{\"error\"") {
        return;
    }
    let keep = json.len();
    json.pop();
    let mut r = write!(json, ",\"name\":{},\"cameras\":[", JsonStr(name));
    for (i, c) in cameras.iter().enumerate() {
        if r.is_ok() && i > 0 {
            r = json.push(',').map_err(|_| fmt::Error);
        }
        if r.is_ok() {
            r = write!(json, "{c}");
        }
    }
    if r.is_err() || json.push_str("]}").is_err() {
        json.truncate(keep - 1);
        let _ = json.push('}');
    }
}

/// The G-sensor's part of `/api/status`.
struct GSensor<'a>(&'a crate::gsensor::Status);

impl fmt::Display for GSensor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        write!(
            f,
            "{{\"state\":\"{}\",\"chip\":{},\"bus\":{},\"addr\":{},\"samples\":{},\"overflows\":{},\
             \"lost_samples\":{},\"impacts\":{},\"last_peak_g\":{},\"last_impact_mono_ns\":{},\"moving\":{}}}",
            g.state,
            OptStr(g.chip),
            OptStr((!g.bus.is_empty()).then_some(g.bus.as_str())),
            OptNum(g.addr.map(u64::from)),
            g.samples,
            g.overflows,
            g.lost_samples,
            g.impacts,
            OptF(g.last_peak_g.map(|p| (f64::from(p) * 100.0).round() / 100.0)),
            OptNum(g.last_impact_mono_ns),
            g.moving
        )
    }
}

/// The GPS receiver's part of `/api/status`: the last fix (position to 7 decimals, about
/// 1 cm; speed in km/h) and what was refused, by cause.
struct Gps<'a>(&'a crate::gps::Status);

impl fmt::Display for Gps<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        write!(f, "{{\"state\":\"{}\",\"device\":{},\"baud\":{},\"fix\":", g.state, OptStr((!g.device.is_empty()).then_some(g.device.as_str())), OptNum((g.baud > 0).then_some(u64::from(g.baud))))?;
        match &g.fix {
            Some(x) => write!(
                f,
                "{{\"time\":{},\"lat\":{:.7},\"lon\":{:.7},\"speed_kmh\":{:.1},\"course_deg\":{},\"altitude_m\":{},\"age_s\":{:.1}}}",
                OptTime(Some(x.utc_ns)),
                x.lat,
                x.lon,
                f64::from(x.speed_mps) * 3.6,
                OptF(x.course_deg.map(|c| (f64::from(c) * 10.0).round() / 10.0)),
                OptF(x.altitude_m.map(|a| (f64::from(a) * 10.0).round() / 10.0)),
                crate::clock::now_mono_ns().saturating_sub(x.mono_ns) as f64 / 1e9
            )?,
            None => f.write_str("null")?,
        }
        write!(
            f,
            ",\"satellites\":{},\"hdop\":{},\"sentences\":{},\"bad_checksum\":{},\"void_fixes\":{},\"bad_dates\":{},\"bad_fields\":{},\"track_points\":{},\"track_errors\":{},\"clock\":\"{}\",\"clock_offset_s\":{}}}",
            g.satellites,
            OptF(g.hdop.map(|h| (f64::from(h) * 100.0).round() / 100.0)),
            g.sentences,
            g.bad_checksum,
            g.void_fixes,
            g.bad_dates,
            g.bad_fields,
            g.track_points,
            g.track_errors,
            g.clock,
            OptF(g.clock_offset_s.map(|o| (o * 1000.0).round() / 1000.0))
        )
    }
}

/// The microphone: its state, the device, and what was stored and lost, by cause.
struct Audio<'a>(&'a crate::audio::Status);

impl fmt::Display for Audio<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        let rate = (a.rate > 0).then_some(u64::from(a.rate));
        let ms = |samples: u64| if a.rate > 0 { samples * 1000 / u64::from(a.rate) } else { 0 };
        write!(
            f,
            "{{\"state\":\"{}\",\"enabled\":{},\"device\":{},\"card\":{},\"rate\":{},\"channels\":{},\"codec\":\"aac\",\"stored_s\":{:.1},\
             \"lost_ms\":{{\"overrun\":{},\"device\":{},\"disk\":{}}},\"overruns\":{},\"opens\":{},\"encoder_errors\":{},\"store_errors\":{}}}",
            a.state,
            crate::audio::enabled(),
            OptStr((!a.device.is_empty()).then_some(a.device.as_str())),
            OptStr((!a.card.is_empty()).then_some(a.card.as_str())),
            OptNum(rate),
            a.channels,
            if a.rate > 0 { (a.stored_aus * 1024) as f64 / f64::from(a.rate) } else { 0.0 },
            ms(a.lost_overrun_samples),
            ms(a.lost_device_samples),
            ms(a.lost_disk_aus * 1024),
            a.overruns,
            a.opens,
            a.encoder_errors,
            a.store_errors
        )
    }
}

struct OptStr<'a>(Option<&'a str>);

impl fmt::Display for OptStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => JsonStr(s).fmt(f),
            None => f.write_str("null"),
        }
    }
}

/// Bytes available to blackbox on the data directory's file system.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let v = rustix::fs::statvfs(dir).ok()?;
    Some(v.f_bavail.saturating_mul(v.f_frsize))
}

struct OptNum(Option<u64>);

impl fmt::Display for OptNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("null"),
        }
    }
}

struct OptTime(Option<i64>);

impl fmt::Display for OptTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "\"{}\"", Iso(t)),
            None => f.write_str("null"),
        }
    }
}

pub use crate::json_str::JsonStr;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::CameraInfo;

    #[test]
    fn status_json_is_valid_and_escapes_the_camera() {
        let st = RecorderStatus::new();
        st.set_camera(CameraInfo::new("cam \"one\"\n\\".into(), (160, 120), 30));
        st.frame(1_700_000_000_000_000_000, 0);
        st.stored(3);
        let src = StatusSource { status: &st, data_dir: std::env::temp_dir(), cap_bytes: 8 << 30 };
        let j: serde_json::Value = serde_json::from_str(&status_json(&src, &Extra::default())).unwrap();
        assert_eq!(j["camera"], "cam \"one\"\n\\");
        assert_eq!(j["frames"], 3);
        assert_eq!(j["state"], "starting");
        assert_eq!(j["format"]["width"], 160);
        assert!(j["system"]["cpu_percent"].is_null());
        assert_eq!(j["durable_seq"], serde_json::Value::Null);
        assert_eq!(j["newest"], "2023-11-14T22:13:20.000Z");
        assert!(j["storage"]["free_bytes"].as_u64().unwrap() > 0);
        let h: serde_json::Value = serde_json::from_str(&health_json(&st.snapshot())).unwrap();
        assert_eq!(h["status"], "ok");
    }

    #[test]
    fn an_overlong_camera_description_gives_an_error_object_not_half_a_json() {
        let st = RecorderStatus::new();
        st.set_camera(CameraInfo::new("x".repeat(JsonBuf::new().capacity() + 100), (1, 1), 1));
        let src = StatusSource { status: &st, data_dir: std::env::temp_dir(), cap_bytes: 1 };
        let j: serde_json::Value = serde_json::from_str(&status_json(&src, &Extra::default())).unwrap();
        assert_eq!(j["error"], "status too large");
    }
}
