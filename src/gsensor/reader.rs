//! The G-sensor thread: find the chip (the configured bus, or every `/dev/i2c-*`), set it up,
//! drain its FIFO every [`DRAIN_MS`] into the timeline and the detector, and when it vanishes
//! (unplugged, bus error) log it and look for it again after 0.5, 1, 2, 4, 5, 5, ... s.
//! With nothing found at start, one info line, then a quiet look every [`RESCAN_S`] s.

use super::chip::{self, Chip, MAX_DRAIN, PERIOD_NS};
use super::detect::Detector;
use super::i2c::{Bus, I2cDev};
use super::timeline::Timeline;
use super::{Device, GSensorConfig, Impact, threshold_now, with_status};
use crate::clock;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// How often the FIFO is drained (the LIS3DH's and ADXL345's 32 samples last 320 ms).
pub const DRAIN_MS: u64 = 80;
/// How often a sensor never seen is looked for.
pub const RESCAN_S: u64 = 30;

fn now() -> u64 {
    clock::now_mono_ns()
}

/// The `/dev/i2c-*` nodes, in number order.
fn buses() -> Vec<PathBuf> {
    let mut v: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("i2c-")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// The first chip found where `dev` says; the buses tried.
fn find(dev: &Device) -> (Option<(I2cDev, PathBuf, Chip)>, usize) {
    let (list, addr) = match dev {
        Device::Off => return (None, 0),
        Device::Auto => (buses(), None),
        Device::Bus { path, addr } => (vec![path.clone()], *addr),
    };
    let n = list.len();
    for path in list {
        let Ok(mut bus) = I2cDev::open(&path) else { continue };
        if let Some(c) = chip::probe(&mut bus, addr) {
            return (Some((bus, path, c)), n);
        }
    }
    (None, n)
}

pub(super) fn run(cfg: GSensorConfig, mut on_impact: Box<dyn FnMut(Impact) + Send>, moving: Arc<AtomicBool>) {
    let mut det = Detector::new(PERIOD_NS);
    let mut tl = Timeline::new(PERIOD_NS);
    let mut seen = false;
    let mut backoff = 0usize;
    const BACKOFF_MS: [u64; 5] = [500, 1000, 2000, 4000, 5000];
    loop {
        let (found, tried) = find(&cfg.device);
        let Some((mut bus, path, chip)) = found else {
            if !seen {
                if backoff == 0 {
                    match &cfg.device {
                        Device::Bus { path, addr } => log::info!(
                            "gsensor: no accelerometer on {}{} (looking again every {RESCAN_S} s)",
                            path.display(),
                            addr.map(|a| format!(" at {a:#04x}")).unwrap_or_default()
                        ),
                        _ => log::info!("gsensor: no accelerometer found ({tried} I2C buses probed; looking again every {RESCAN_S} s)"),
                    }
                }
                backoff = 1;
                with_status(|s| s.state = "searching");
                std::thread::sleep(Duration::from_secs(RESCAN_S));
            } else {
                std::thread::sleep(Duration::from_millis(BACKOFF_MS[backoff.min(BACKOFF_MS.len() - 1)]));
                backoff += 1;
            }
            continue;
        };
        if let Err(e) = chip.init(&mut bus, &mut |ms| std::thread::sleep(Duration::from_millis(ms))) {
            log::warn!("gsensor: {} at {:#04x} on {}: set-up failed: {e}; retrying", chip.name(), chip.addr, path.display());
            std::thread::sleep(Duration::from_millis(BACKOFF_MS[backoff.min(BACKOFF_MS.len() - 1)]));
            backoff += 1;
            continue;
        }
        log::info!(
            "gsensor: {} at {:#04x} on {}: ±16 g, {} Hz, FIFO of {} samples, impact threshold {} g",
            chip.name(),
            chip.addr,
            path.display(),
            chip::ODR_HZ,
            chip.fifo_samples(),
            threshold_now()
        );
        seen = true;
        with_status(|s| {
            s.state = "ok";
            s.chip = Some(chip.name());
            s.bus.clear();
            let _ = s.bus.push_str(path.to_str().unwrap_or("?"));
            s.addr = Some(chip.addr);
        });
        tl.reset();
        det.relearn();
        let e = drain_loop(&mut bus, &chip, &mut tl, &mut det, on_impact.as_mut(), &moving);
        log::warn!(
            "gsensor: lost the {} on {}: {e}; looking for it again (recording goes on)",
            chip.name(),
            path.display()
        );
        with_status(|s| s.state = "lost");
        backoff = 0;
        std::thread::sleep(Duration::from_millis(BACKOFF_MS[0]));
        backoff += 1;
    }
}

/// Drains until the bus fails; returns the error. Allocates nothing per drain (the buffers
/// are here, on the stack); only log lines for overflows and the impact callback may.
fn drain_loop(bus: &mut dyn Bus, chip: &Chip, tl: &mut Timeline, det: &mut Detector, on_impact: &mut dyn FnMut(Impact), moving: &AtomicBool) -> io::Error {
    let mut buf = [[0f32; 3]; MAX_DRAIN];
    let mut raw = [0u8; MAX_DRAIN * 6];
    let mut clock = now;
    let mut newest: Option<f64> = None;
    let mut overflows = 0u64;
    loop {
        std::thread::sleep(Duration::from_millis(DRAIN_MS));
        let d = match chip.drain(bus, &mut buf, &mut raw, &mut clock) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let p = tl.period_ns();
        if d.overflow {
            // What the FIFO could not keep: the time since the last sample we have, less what
            // it still held.
            let lost = newest.map_or(0, |t| (((d.t_after as f64 - t) / p) as u64).saturating_sub(d.n as u64));
            overflows += 1;
            if overflows <= 3 || overflows.is_power_of_two() {
                log::warn!("gsensor: FIFO overflow: the reader was late; about {lost} samples lost ({overflows} overflows so far)");
            }
            with_status(|s| {
                s.overflows += 1;
                s.lost_samples += lost;
            });
            tl.reset();
        }
        let first = tl.place(d.n, d.t_before, d.t_after);
        let thr = threshold_now();
        let (mut hit, mut hits) = (None, 0);
        for (i, s) in buf[..d.n].iter().enumerate() {
            let t = first + i as f64 * p;
            if let Some(imp) = det.push(*s, t.max(0.0) as u64, thr) {
                hit = Some(imp);
                hits += 1;
                on_impact(imp);
            }
        }
        if d.n > 0 {
            newest = Some(first + (d.n - 1) as f64 * p);
        }
        let m = det.moving();
        moving.store(m, Relaxed);
        with_status(|s| {
            s.samples += d.n as u64;
            s.moving = m;
            if let Some(i) = hit {
                s.impacts += hits;
                s.last_peak_g = Some(i.peak_g);
                s.last_impact_mono_ns = Some(i.mono_ns);
            }
        });
    }
}

