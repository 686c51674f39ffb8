//! The G-sensor: an accelerometer on I2C (MPU-6050/6500/9250, LIS3DH and clones such as the
//! SC7A20, ADXL345), read from user space through i2c-dev using the chip's FIFO, turned into
//! impacts and a "vehicle moving" flag.
//!
//! - `i2c`: the [`i2c::Bus`] trait and `/dev/i2c-N` through `I2C_RDWR`;
//! - `chip`: probing (WHO_AM_I / DEVID), set-up (±16 g, 100 Hz, FIFO) and draining each chip;
//! - `timeline`: each sample's time (CLOCK_MONOTONIC, the store's `mono_ns`) from its FIFO
//!   position and the data rate, not from when it was read;
//! - `detect`: high-pass, impacts (one per hit), moving;
//! - `reader`: the thread: find the chip, drain it every 100 ms, retry with backoff when it
//!   vanishes.
//!
//! Why user space and not the kernel's IIO drivers: without the interrupt line wired and a
//! device-tree overlay they have no buffer and read one sample at a time through sysfs (2 s a
//! read for the LIS3DH at its default rate); the FIFO route needs neither and catches a 60 ms
//! pulse at the right sample time however late the reader runs (research sensors.md, 1).
//!
//! The sensor never stops the recorder: no sensor means nothing happens (one info line), a
//! sensor that vanishes is logged and looked for again, and nothing here can panic the process.

mod chip;
mod detect;
mod i2c;
mod reader;
mod timeline;

pub use detect::{HOLD_OFF_MS, MOVING_RMS_G};

use crate::config::Config;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

/// One hit above the threshold: when it started (sample time, CLOCK_MONOTONIC ns, the store's
/// `mono_ns` clock) and its peak dynamic acceleration in g.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impact {
    pub mono_ns: u64,
    pub peak_g: f32,
}

/// Where to look for the sensor (`gsensor_device`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// `"off"`: no G-sensor.
    Off,
    /// `"auto"`: every `/dev/i2c-*`, every known address.
    Auto,
    /// `"/dev/i2c-N"` (every known address) or `"/dev/i2c-N@0xADDR"`.
    Bus { path: PathBuf, addr: Option<u8> },
}

impl Device {
    /// Parses a `gsensor_device` value; the error says what is allowed.
    pub fn parse(s: &str) -> Result<Device, String> {
        const HELP: &str = "\"auto\", \"off\", \"/dev/i2c-N\" or \"/dev/i2c-N@0xADDR\" (ADDR 0x08..0x77)";
        match s {
            "off" => return Ok(Device::Off),
            "auto" | "" => return Ok(Device::Auto),
            _ => {}
        }
        let (path, addr) = match s.split_once('@') {
            Some((p, a)) => (p, Some(a)),
            None => (s, None),
        };
        let n = path.strip_prefix("/dev/i2c-").ok_or_else(|| format!("{s:?} is not {HELP}"))?;
        if n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not {HELP}"));
        }
        let addr = match addr {
            None => None,
            Some(a) => {
                let v = match a.strip_prefix("0x").or_else(|| a.strip_prefix("0X")) {
                    Some(h) => u8::from_str_radix(h, 16).ok(),
                    None => a.parse::<u8>().ok(),
                };
                match v {
                    Some(v) if (0x08..=0x77).contains(&v) => Some(v),
                    _ => return Err(format!("{s:?}: address {a:?} is not an I2C address 0x08..0x77 ({HELP})")),
                }
            }
        };
        Ok(Device::Bus { path: PathBuf::from(path), addr })
    }
}

/// What the G-sensor thread needs from the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct GSensorConfig {
    pub device: Device,
    /// Impact threshold while driving, g of dynamic acceleration.
    pub threshold_g: f32,
    /// Impact ("bump") threshold while parked ([`set_parked`]).
    pub parked_threshold_g: f32,
}

impl From<&Config> for GSensorConfig {
    fn from(c: &Config) -> GSensorConfig {
        GSensorConfig {
            // A validated config always parses; anything else means no sensor.
            device: Device::parse(&c.gsensor_device).unwrap_or(Device::Off),
            threshold_g: c.gsensor_threshold_g as f32,
            parked_threshold_g: c.gsensor_parked_threshold_g as f32,
        }
    }
}

/// Starts the G-sensor thread; `None` when `gsensor_device` is `off` or the thread can't be
/// started. `on_impact` runs on that thread, once per hit; `moving` is kept up to date (see
/// `detect`). The thread runs until the process ends.
pub fn spawn(cfg: GSensorConfig, on_impact: Box<dyn FnMut(Impact) + Send>, moving: Arc<AtomicBool>) -> Option<std::thread::JoinHandle<()>> {
    set_thresholds(cfg.threshold_g, cfg.parked_threshold_g);
    if cfg.device == Device::Off {
        set_state("off");
        log::info!("gsensor: off (gsensor_device \"off\")");
        return None;
    }
    std::thread::Builder::new()
        .name("gsensor".into())
        .spawn(move || reader::run(cfg, on_impact, moving))
        .map_err(|e| log::error!("gsensor: cannot start its thread: {e}; recording without it"))
        .ok()
}

static THRESHOLD: AtomicU32 = AtomicU32::new(0x4020_0000); // 2.5f32
static PARKED_THRESHOLD: AtomicU32 = AtomicU32::new(0x3f00_0000); // 0.5f32
static PARKED: AtomicBool = AtomicBool::new(false);

/// Changes the thresholds of the running thread (a config change from the web).
pub fn set_thresholds(driving_g: f32, parked_g: f32) {
    THRESHOLD.store(driving_g.to_bits(), Relaxed);
    PARKED_THRESHOLD.store(parked_g.to_bits(), Relaxed);
}

/// Parked (parking mode): impacts use `gsensor_parked_threshold_g` while set.
pub fn set_parked(parked: bool) {
    PARKED.store(parked, Relaxed);
}

fn threshold_now() -> f32 {
    f32::from_bits(if PARKED.load(Relaxed) { PARKED_THRESHOLD.load(Relaxed) } else { THRESHOLD.load(Relaxed) })
}

/// The G-sensor as `/api/status` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// `"off"`, `"searching"` (none found yet), `"ok"`, `"lost"` (vanished; looked for again).
    pub state: &'static str,
    pub chip: Option<&'static str>,
    pub bus: heapless::String<32>,
    pub addr: Option<u8>,
    /// Samples read since start.
    pub samples: u64,
    /// FIFO overflows (the reader was too late), and the samples they cost (estimated from
    /// the time they spanned).
    pub overflows: u64,
    pub lost_samples: u64,
    pub impacts: u64,
    pub last_peak_g: Option<f32>,
    pub last_impact_mono_ns: Option<u64>,
    pub moving: bool,
}

static STATUS: Mutex<Status> = Mutex::new(Status {
    state: "searching",
    chip: None,
    bus: heapless::String::new(),
    addr: None,
    samples: 0,
    overflows: 0,
    lost_samples: 0,
    impacts: 0,
    last_peak_g: None,
    last_impact_mono_ns: None,
    moving: false,
});

/// A copy of the G-sensor's status (cheap: a short lock, no allocation).
pub fn status() -> Status {
    STATUS.lock().map(|s| s.clone()).unwrap_or_else(|p| p.into_inner().clone())
}

fn with_status(f: impl FnOnce(&mut Status)) {
    let mut g = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut g);
}

fn set_state(state: &'static str) {
    with_status(|s| s.state = state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_values() {
        assert_eq!(Device::parse("off"), Ok(Device::Off));
        assert_eq!(Device::parse("auto"), Ok(Device::Auto));
        assert_eq!(Device::parse(""), Ok(Device::Auto));
        assert_eq!(Device::parse("/dev/i2c-1"), Ok(Device::Bus { path: "/dev/i2c-1".into(), addr: None }));
        assert_eq!(Device::parse("/dev/i2c-11@0x68"), Ok(Device::Bus { path: "/dev/i2c-11".into(), addr: Some(0x68) }));
        assert_eq!(Device::parse("/dev/i2c-0@0X1d"), Ok(Device::Bus { path: "/dev/i2c-0".into(), addr: Some(0x1d) }));
        assert_eq!(Device::parse("/dev/i2c-0@83"), Ok(Device::Bus { path: "/dev/i2c-0".into(), addr: Some(0x53) }));
        for bad in ["on", "/dev/i2c-", "/dev/i2c-1x", "/dev/video0", "/dev/i2c-1@", "/dev/i2c-1@0x78", "/dev/i2c-1@0x07", "/dev/i2c-1@0xzz", "i2c-1", "/dev/i2c-1@0x68@1", "/dev/i2c-12345"] {
            let e = Device::parse(bad).unwrap_err();
            assert!(e.contains("/dev/i2c-N"), "{bad}: {e}");
        }
    }

    #[test]
    fn thresholds_follow_parking() {
        set_thresholds(2.5, 0.5);
        assert_eq!(threshold_now(), 2.5);
        set_parked(true);
        assert_eq!(threshold_now(), 0.5);
        set_parked(false);
        assert_eq!(threshold_now(), 2.5);
        assert_eq!(f32::from_bits(0x4020_0000), 2.5);
        assert_eq!(f32::from_bits(0x3f00_0000), 0.5);
    }
}
