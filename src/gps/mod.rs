//! GPS (issue 18): NMEA 0183 from a USB receiver (u-blox and clones: cdc_acm `/dev/ttyACM*`,
//! or a USB-serial chip `/dev/ttyUSB*`) or a UART named in the config.
//!
//! - `nmea`: RMC/GGA/VTG parsed in place, checksums required, two-digit years in a window;
//! - `timefix`: when a receiver's time may set the clock (3 agreeing fixes);
//! - `serial`: the tty, raw 8N1, reads that time out;
//! - `reader`: the thread: find the receiver, detect its rate, read sentences, keep the last
//!   fix, set the clock once; an unplugged or silent receiver is logged and looked for again;
//! - `track`: one point a second kept crash-safely in `DATA/gps/`;
//! - `gpx`: the track as GPX 1.1.
//!
//! The receiver never stops the recorder, and nothing here allocates per sentence.
//! Not yet: the export's subtitle track (the note).

pub mod nmea;
mod reader;
mod serial;
pub mod timefix;
pub mod track;
pub mod gpx;

use std::path::PathBuf;
use std::sync::Mutex;

/// Where to look for the receiver (`gps_device`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    Off,
    /// Every `/dev/ttyACM*`, then every `/dev/ttyUSB*` (a UART must be named: on the Pi it is
    /// the serial console's).
    Auto,
    /// A tty (any absolute path: `/dev/serial0`, `/dev/serial/by-id/...`), at a given rate or
    /// (`None`) the rate detected.
    Tty { path: PathBuf, baud: Option<u32> },
}

/// Rates tried, most common first (u-blox default 9600; many modules 38400 or 115200).
pub const RATES: [u32; 6] = [9600, 38400, 115200, 4800, 57600, 19200];

impl Device {
    pub fn parse(s: &str) -> Result<Device, String> {
        const HELP: &str = "\"auto\", \"off\", a tty's absolute path (\"/dev/ttyACM0\", \"/dev/serial/by-id/...\") or PATH@BAUD (BAUD 4800, 9600, 19200, 38400, 57600 or 115200)";
        match s {
            "off" => return Ok(Device::Off),
            "auto" | "" => return Ok(Device::Auto),
            _ => {}
        }
        let (path, baud) = match s.split_once('@') {
            Some((p, b)) => (p, Some(b.parse::<u32>().ok().filter(|b| RATES.contains(b)).ok_or_else(|| format!("{s:?}: the rate must be one of {RATES:?}"))?)),
            None => (s, None),
        };
        if !path.starts_with('/') || path.len() < 2 || path.contains(['\0', ' ']) {
            return Err(format!("{s:?}: give {HELP}"));
        }
        Ok(Device::Tty { path: PathBuf::from(path), baud })
    }
}

/// The last fix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    /// GPS time of the fix (ns since the epoch) and when it arrived (CLOCK_MONOTONIC).
    pub utc_ns: i64,
    pub mono_ns: u64,
    pub lat: f64,
    pub lon: f64,
    pub speed_mps: f32,
    pub course_deg: Option<f32>,
    pub altitude_m: Option<f32>,
}

/// The receiver as `/api/status` shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// `"off"`, `"searching"` (no receiver found), `"no fix"`, `"fix"`, `"lost"` (it vanished
    /// or went silent; looked for again).
    pub state: &'static str,
    pub device: heapless::String<128>,
    pub baud: u32,
    pub fix: Option<Fix>,
    pub satellites: u8,
    pub hdop: Option<f32>,
    /// Sentences with a good checksum; refused ones by cause.
    pub sentences: u64,
    pub bad_checksum: u64,
    pub void_fixes: u64,
    pub bad_dates: u64,
    pub bad_fields: u64,
    /// Track points written since start, and writes that failed (each a second of track lost).
    pub track_points: u64,
    pub track_errors: u64,
    /// `"waiting"` (fewer than 3 agreeing fixes yet), `"set"`, `"right"` (already within 1 s),
    /// `"not allowed"` (no CAP_SYS_TIME or BLACKBOX_CLOCK_READONLY=1).
    pub clock: &'static str,
    /// The clock's error GPS found (GPS − system, seconds) when it was checked.
    pub clock_offset_s: Option<f64>,
}

static STATUS: Mutex<Status> = Mutex::new(Status {
    state: "off",
    device: heapless::String::new(),
    baud: 0,
    fix: None,
    satellites: 0,
    hdop: None,
    sentences: 0,
    bad_checksum: 0,
    void_fixes: 0,
    bad_dates: 0,
    bad_fields: 0,
    track_points: 0,
    track_errors: 0,
    clock: "waiting",
    clock_offset_s: None,
});

/// A copy of the receiver's status (a short lock, no allocation).
pub fn status() -> Status {
    STATUS.lock().map(|s| s.clone()).unwrap_or_else(|p| p.into_inner().clone())
}

fn with_status(f: impl FnOnce(&mut Status)) {
    let mut g = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut g);
}

/// Starts the GPS thread (its track in `data_dir/gps`); `None` when `gps_device` is `off` or
/// the thread can't be started.
pub fn spawn(gps_device: &str, data_dir: &std::path::Path) -> Option<std::thread::JoinHandle<()>> {
    let data_dir = data_dir.to_path_buf();
    let device = Device::parse(gps_device).unwrap_or(Device::Off);
    if device == Device::Off {
        with_status(|s| s.state = "off");
        log::info!("gps: off (gps_device \"off\")");
        return None;
    }
    std::thread::Builder::new()
        .name("gps".into())
        .spawn(move || reader::run(device, &data_dir))
        .map_err(|e| log::error!("gps: cannot start its thread: {e}; recording without it"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_values() {
        assert_eq!(Device::parse("auto"), Ok(Device::Auto));
        assert_eq!(Device::parse(""), Ok(Device::Auto));
        assert_eq!(Device::parse("off"), Ok(Device::Off));
        assert_eq!(Device::parse("/dev/ttyACM0"), Ok(Device::Tty { path: "/dev/ttyACM0".into(), baud: None }));
        assert_eq!(Device::parse("/dev/serial0@38400"), Ok(Device::Tty { path: "/dev/serial0".into(), baud: Some(38400) }));
        assert_eq!(Device::parse("/dev/serial/by-id/usb-u-blox_7-if00"), Ok(Device::Tty { path: "/dev/serial/by-id/usb-u-blox_7-if00".into(), baud: None }));
        for bad in ["/dev/ttyS0@1234", "/dev/ttyS0@", "ttyACM0", "/", "/dev/tty S0", "on", "@9600"] {
            assert!(Device::parse(bad).is_err(), "{bad}");
        }
    }
}
