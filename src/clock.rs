//! TEMPORARY minimal clock (replaced by the config/clock/logger branch).
use std::fmt;

pub fn now_utc_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    t.tv_sec as i64 * 1_000_000_000 + t.tv_nsec as i64
}

pub fn now_mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub struct Compact(pub i64);
impl fmt::Display for Compact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.div_euclid(1_000_000);
        let s = ms.div_euclid(1000);
        let (y, mo, d) = civil(s.div_euclid(86400));
        let sod = s.rem_euclid(86400);
        write!(f, "{y:04}{mo:02}{d:02}T{:02}{:02}{:02}.{:03}Z", sod / 3600, sod / 60 % 60, sod % 60, ms.rem_euclid(1000))
    }
}
pub struct Iso(pub i64);
impl fmt::Display for Iso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.div_euclid(1_000_000);
        let s = ms.div_euclid(1000);
        let (y, mo, d) = civil(s.div_euclid(86400));
        let sod = s.rem_euclid(86400);
        write!(f, "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", sod / 3600, sod / 60 % 60, sod % 60, ms.rem_euclid(1000))
    }
}
#[derive(Debug)]
pub struct TimeParseError;
impl fmt::Display for TimeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "bad time") }
}
pub fn parse_compact(s: &str) -> Result<i64, TimeParseError> {
    let b = s.as_bytes();
    if b.len() != 20 || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' { return Err(TimeParseError); }
    let num = |r: std::ops::Range<usize>| -> Result<i64, TimeParseError> {
        let mut v = 0i64;
        for &c in &b[r] { if !c.is_ascii_digit() { return Err(TimeParseError); } v = v * 10 + (c - b'0') as i64; }
        Ok(v)
    };
    let (y, mo, d, h, mi, se, ms) = (num(0..4)?, num(4..6)?, num(6..8)?, num(9..11)?, num(11..13)?, num(13..15)?, num(16..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 { return Err(TimeParseError); }
    let days = days_from_civil(y, mo as u32, d as u32);
    Ok(((days * 86400 + h * 3600 + mi * 60 + se) * 1000 + ms) * 1_000_000)
}
pub fn parse_iso8601(s: &str) -> Result<i64, TimeParseError> {
    let b = s.as_bytes();
    if b.len() < 20 { return Err(TimeParseError); }
    let mut c = heapless::String::<32>::new();
    for (i, ch) in s.chars().enumerate() { if i == 4 || i == 7 || i == 13 || i == 16 { continue; } let _ = c.push(ch); }
    if c.len() == 16 { let _ = c.pop(); let _ = c.push_str(".000Z"); }
    parse_compact(&c)
}
