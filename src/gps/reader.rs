//! The GPS thread: finds the receiver, detects its rate, reads NMEA lines into a fixed buffer,
//! keeps the last fix in the status, and sets the system clock once from 3 agreeing fixes.
//! A receiver that is unplugged (read error, the node gone) or silent for 5 s is logged and
//! looked for again every 2 s; recording never waits for any of it.

use super::nmea::{self, NmeaError, Sentence};
use super::timefix::TimeFromGps;
use super::track::{Point, TrackWriter};
use super::{Device, Fix, RATES, serial, with_status};
use crate::clock::{now_mono_ns, now_utc_ns};
use rustix::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SILENT_NS: u64 = 5_000_000_000;
/// Good sentences needed to accept a rate, and how long each rate is listened to.
const RATE_SENTENCES: u32 = 2;
const RATE_LISTEN_NS: u64 = 2_500_000_000;
/// Longer lines (NMEA allows 82 bytes) are dropped whole.
const LINE_MAX: usize = 128;

pub fn run(device: Device, data_dir: &Path) {
    let mut track = TrackWriter::new(data_dir);
    let mut track_failed = false;
    let mut announced_none = false;
    let mut clock_done = false;
    loop {
        let candidates: Vec<(PathBuf, Option<u32>)> = match &device {
            Device::Off => return,
            Device::Auto => auto_candidates().into_iter().map(|p| (p, None)).collect(),
            Device::Tty { path, baud } => vec![(path.clone(), *baud)],
        };
        let mut found = false;
        for (path, baud) in candidates {
            let Some((fd, rate)) = open_and_lock(&path, baud) else { continue };
            found = true;
            announced_none = false;
            log::info!("gps: receiver on {} at {rate} baud", path.display());
            with_status(|s| {
                s.state = "no fix";
                s.device = heapless::String::try_from(path.to_str().unwrap_or("?")).unwrap_or_default();
                s.baud = rate;
            });
            let why = read_sentences(&fd, &path, &mut clock_done, &mut |p| {
                match track.push(p) {
                    Ok(true) => {
                        track_failed = false;
                        with_status(|s| s.track_points += 1);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        if !track_failed {
                            log::error!("gps: cannot write the track: {e}");
                        }
                        track_failed = true;
                        with_status(|s| s.track_errors += 1);
                    }
                }
            });
            let _ = track.sync();
            log::warn!("gps: {}: {why}; looking for the receiver again", path.display());
            with_status(|s| s.state = "lost");
            break;
        }
        if !found {
            if !announced_none {
                match &device {
                    Device::Tty { path, .. } => log::info!("gps: no NMEA receiver on {} yet; looking again every 2 s", path.display()),
                    _ => log::info!("gps: no receiver found (/dev/ttyACM*, /dev/ttyUSB*); looking again every 2 s"),
                }
                announced_none = true;
            }
            with_status(|s| {
                if s.state != "lost" {
                    s.state = "searching";
                }
            });
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// `/dev/ttyACM*` then `/dev/ttyUSB*`, in name order.
fn auto_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for prefix in ["ttyACM", "ttyUSB"] {
        let mut names: Vec<String> = std::fs::read_dir("/dev")
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
            .unwrap_or_default();
        names.sort();
        out.extend(names.into_iter().map(|n| Path::new("/dev").join(n)));
    }
    out
}

/// Opens `path` and finds the rate at which it sends checksummed NMEA.
fn open_and_lock(path: &Path, baud: Option<u32>) -> Option<(OwnedFd, u32)> {
    let fd = match serial::open(path, baud.unwrap_or(RATES[0])) {
        Ok(fd) => fd,
        Err(e) => {
            log::debug!("gps: cannot open {}: {e}", path.display());
            return None;
        }
    };
    let rates: &[u32] = match &baud {
        Some(b) => std::slice::from_ref(b),
        None => &RATES,
    };
    for &rate in rates {
        if serial::configure(&fd, rate).is_err() {
            continue;
        }
        if listen(&fd) >= RATE_SENTENCES {
            return Some((fd, rate));
        }
    }
    None
}

/// Checksummed sentences heard within `RATE_LISTEN_NS`.
fn listen(fd: &OwnedFd) -> u32 {
    let start = now_mono_ns();
    let mut buf = [0u8; 256];
    let mut line = [0u8; LINE_MAX];
    let mut len = 0;
    let mut good = 0;
    while now_mono_ns() - start < RATE_LISTEN_NS && good < RATE_SENTENCES {
        let Ok(n) = serial::read(fd, &mut buf) else { return 0 };
        for &b in &buf[..n] {
            if b == b'\n' {
                if matches!(nmea::parse(&line[..len], nmea::BUILD_YEAR), Ok(_) | Err(NmeaError::Field(_) | NmeaError::ImpossibleDate)) {
                    good += 1;
                }
                len = 0;
            } else if len < LINE_MAX {
                line[len] = b;
                len += 1;
            }
        }
    }
    good
}

/// Reads until the receiver fails; returns why.
fn read_sentences(fd: &OwnedFd, path: &Path, clock_done: &mut bool, keep: &mut dyn FnMut(&Point)) -> String {
    let mut buf = [0u8; 256];
    let mut line = [0u8; LINE_MAX];
    let (mut len, mut overflow, mut start_mono) = (0usize, false, 0u64);
    let mut last_data = now_mono_ns();
    let mut tf = TimeFromGps::new();
    loop {
        let n = match serial::read(fd, &mut buf) {
            Ok(n) => n,
            Err(e) => return format!("read error: {e}"),
        };
        let now = now_mono_ns();
        if n == 0 {
            if !path.exists() {
                return "the receiver is gone".into();
            }
            if now - last_data > SILENT_NS {
                return format!("no data for {} s", SILENT_NS / 1_000_000_000);
            }
            continue;
        }
        last_data = now;
        for &b in &buf[..n] {
            match b {
                b'$' => {
                    overflow = false;
                    start_mono = now;
                    line[0] = b;
                    len = 1;
                }
                b'\n' => {
                    if !overflow && len > 0 {
                        handle(&line[..len], start_mono, &mut tf, clock_done, keep);
                    }
                    len = 0;
                    overflow = false;
                }
                _ if len < LINE_MAX => {
                    line[len] = b;
                    len += 1;
                }
                _ => overflow = true,
            }
        }
    }
}

fn handle(line: &[u8], arrival_mono: u64, tf: &mut TimeFromGps, clock_done: &mut bool, keep: &mut dyn FnMut(&Point)) {
    match nmea::parse(line, nmea::BUILD_YEAR) {
        Ok(Sentence::Rmc(r)) => {
            let fix = match (r.valid, r.utc_ns, r.lat, r.lon) {
                (true, Some(utc_ns), Some(lat), Some(lon)) => Some(Fix {
                    utc_ns,
                    mono_ns: arrival_mono,
                    lat,
                    lon,
                    speed_mps: r.speed_mps.unwrap_or(0.0),
                    course_deg: r.course_deg,
                    altitude_m: None,
                }),
                _ => None,
            };
            let mut point = None;
            with_status(|s| {
                s.sentences += 1;
                match fix {
                    Some(mut f) => {
                        f.altitude_m = s.fix.and_then(|o| o.altitude_m);
                        s.fix = Some(f);
                        s.state = "fix";
                        point = Some(Point::from_fix(&f, s.satellites));
                    }
                    None => {
                        s.void_fixes += 1;
                        s.state = "no fix";
                    }
                }
            });
            if let Some(p) = &point {
                keep(p);
            }
            match fix {
                Some(f) if !*clock_done => {
                    if let Some(t) = tf.offer(f.utc_ns, arrival_mono) {
                        *clock_done = true;
                        set_clock(t, arrival_mono);
                    }
                }
                Some(_) => {}
                None => tf.reset(),
            }
        }
        Ok(Sentence::Gga(g)) => with_status(|s| {
            s.sentences += 1;
            s.satellites = g.satellites;
            s.hdop = g.hdop;
            if let (Some(f), Some(alt)) = (s.fix.as_mut(), g.altitude_m) {
                f.altitude_m = Some(alt);
            }
        }),
        Ok(Sentence::Vtg(_) | Sentence::Other) => with_status(|s| s.sentences += 1),
        Err(NmeaError::BadChecksum { .. } | NmeaError::NoChecksum) => with_status(|s| s.bad_checksum += 1),
        Err(NmeaError::ImpossibleDate) => {
            tf.reset();
            with_status(|s| s.bad_dates += 1);
        }
        Err(NmeaError::Field(_)) => with_status(|s| s.bad_fields += 1),
        Err(NmeaError::NotNmea) => {}
    }
}

/// GPS time `t` was right at `arrival_mono`: sets the system clock when it is off by a second
/// or more and this process may.
fn set_clock(t: i64, arrival_mono: u64) {
    let gps_now = t + (now_mono_ns() - arrival_mono) as i64;
    let before = now_utc_ns();
    let offset = (gps_now - before) as f64 / 1e9;
    let state = if offset.abs() < 1.0 {
        log::info!("gps: the clock agrees with GPS ({offset:+.3} s)");
        "right"
    } else if !crate::clock::settable() {
        log::warn!("gps: the clock is {offset:+.1} s off GPS time, but this process may not set it (CAP_SYS_TIME)");
        "not allowed"
    } else {
        let gps_now = t + (now_mono_ns() - arrival_mono) as i64;
        match crate::clock::set_realtime(gps_now) {
            Ok(()) => {
                log::warn!("clock set from GPS: {} -> {} (jump of {offset:+.3} s)", crate::clock::Iso(before), crate::clock::Iso(gps_now));
                "set"
            }
            Err(e) => {
                log::warn!("gps: cannot set the clock: {e}");
                "not allowed"
            }
        }
    };
    with_status(|s| {
        s.clock = state;
        s.clock_offset_s = Some(offset);
    });
}
