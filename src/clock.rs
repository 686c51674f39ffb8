//! Clocks and UTC time text. See docs/FORMAT.md ("Assumptions"): UTC may be wrong and jump;
//! the monotonic clock orders events within one boot.
//!
//! Times are `i64` nanoseconds since the Unix epoch (1970-01-01T00:00:00Z), which covers
//! 1677-09-21 .. 2262-04-11. Formatting ([`Iso`], [`IsoSeconds`], [`Compact`]) works for every
//! `i64`, never allocates and never panics; parsing ([`parse_iso8601`], [`parse_compact`])
//! validates every field and refuses times that do not fit an `i64`.
//!
//! Calendar arithmetic is proleptic Gregorian, using Howard Hinnant's `days_from_civil` /
//! `civil_from_days` algorithms (<https://howardhinnant.github.io/date_algorithms.html>).
//! Leap seconds do not exist in this time scale: a parsed second `60` is folded into the next
//! minute.

use core::fmt;

use rustix::time::{ClockId, clock_gettime};

const NS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Nanoseconds since the Unix epoch, from CLOCK_REALTIME.
///
/// Saturates at `i64::MIN` / `i64::MAX` (years 1677 / 2262) instead of wrapping.
pub fn now_utc_ns() -> i64 {
    let ts = clock_gettime(ClockId::Realtime);
    (ts.tv_sec as i64)
        .saturating_mul(NS_PER_SEC)
        .saturating_add(ts.tv_nsec as i64)
}

/// Nanoseconds from CLOCK_MONOTONIC (time since an arbitrary point in this boot).
pub fn now_mono_ns() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    let ns = (ts.tv_sec as i128) * (NS_PER_SEC as i128) + ts.tv_nsec as i128;
    ns.clamp(0, u64::MAX as i128) as u64
}

/// Whether this process may set the system clock: it has CAP_SYS_TIME (bit 25 of `CapEff` in
/// `/proc/self/status`) and `BLACKBOX_CLOCK_READONLY` is not `1` (tests and qemu-user runs set
/// it: the host's clock must never move).
pub fn settable() -> bool {
    if std::env::var_os("BLACKBOX_CLOCK_READONLY").is_some_and(|v| v == "1") {
        return false;
    }
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else { return false };
    s.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 25) != 0)
}

/// Sets CLOCK_REALTIME to `t` (ns since the epoch); refused (EPERM) under
/// `BLACKBOX_CLOCK_READONLY=1`.
pub fn set_realtime(t: i64) -> Result<(), rustix::io::Errno> {
    if std::env::var_os("BLACKBOX_CLOCK_READONLY").is_some_and(|v| v == "1") {
        return Err(rustix::io::Errno::PERM);
    }
    let ts = rustix::time::Timespec { tv_sec: t.div_euclid(NS_PER_SEC), tv_nsec: t.rem_euclid(NS_PER_SEC) as _ };
    rustix::time::clock_settime(ClockId::Realtime, ts)
}

// ---------------------------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------------------------

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d` (`m` 1..=12, `d` 1..=31).
/// Valid for any `y` with `|y| < 2^50` or so; callers pass 4-digit years.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((m + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month 1..=12, day 1..=31)`.
/// Valid for any `z` with `|z| < 2^60`; callers pass at most `i64::MAX / 86400`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// UTC nanoseconds of a calendar date and time of day; `None` for a field out of range (month
/// 13, February 30, hour 24, ...).
pub fn utc_ns_from_parts(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ns: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 || ns >= 1_000_000_000 {
        return None;
    }
    let secs = days_from_civil(y, mo, d).checked_mul(SECS_PER_DAY)?.checked_add(i64::from(h * 3600 + mi * 60 + s))?;
    secs.checked_mul(NS_PER_SEC)?.checked_add(i64::from(ns))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
}

impl Civil {
    fn from_ns(ns: i64) -> Civil {
        let secs = ns.div_euclid(NS_PER_SEC);
        let nanos = ns.rem_euclid(NS_PER_SEC) as u32;
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            min: sod / 60 % 60,
            sec: sod % 60,
            nanos,
        }
    }

    /// Year as 4 digits; years outside 0..=9999 (impossible for an `i64` of nanoseconds, but
    /// handled anyway) use the ISO 8601 expanded form with a sign, e.g. `+10000`, `-0001`.
    fn write_year(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if (0..=9999).contains(&self.year) {
            write!(f, "{:04}", self.year)
        } else {
            write!(f, "{:+05}", self.year)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/// ISO 8601 UTC with milliseconds: `2026-11-22T00:30:15.250Z`. Sub-millisecond digits are
/// truncated toward the past (so `-1` ns is `1969-12-31T23:59:59.999Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iso(pub i64);

/// ISO 8601 UTC, whole seconds (truncated toward the past): `2026-11-22T00:30:15Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsoSeconds(pub i64);

/// Compact ISO 8601 basic format used in segment file names: `20261122T003015.250Z`.
/// Names in this form sort lexically in time order (for years 0000..=9999).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compact(pub i64);

impl fmt::Display for Iso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = Civil::from_ns(self.0);
        c.write_year(f)?;
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.month,
            c.day,
            c.hour,
            c.min,
            c.sec,
            c.nanos / 1_000_000
        )
    }
}

/// ISO 8601 UTC with all nine fraction digits: `2026-11-22T00:30:15.250000001Z`. Exact: it
/// parses back to the same nanosecond for every `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsoNanos(pub i64);

impl fmt::Display for IsoNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = Civil::from_ns(self.0);
        c.write_year(f)?;
        write!(f, "-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", c.month, c.day, c.hour, c.min, c.sec, c.nanos)
    }
}

impl fmt::Display for IsoSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = Civil::from_ns(self.0);
        c.write_year(f)?;
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            c.month, c.day, c.hour, c.min, c.sec
        )
    }
}

impl fmt::Display for Compact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = Civil::from_ns(self.0);
        c.write_year(f)?;
        write!(
            f,
            "{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
            c.month,
            c.day,
            c.hour,
            c.min,
            c.sec,
            c.nanos / 1_000_000
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Why a time string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeParseError {
    /// The input is empty.
    Empty,
    /// At byte offset `at`, something else was expected (`expected` says what).
    Expected { at: usize, expected: &'static str },
    /// A field is outside its range, e.g. month 13.
    Field {
        field: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    /// The day does not exist in that month (e.g. February 29 of a common year).
    NoSuchDay { year: u32, month: u32, day: u32 },
    /// Extra characters after a complete time, starting at byte offset `at`.
    Trailing { at: usize },
    /// A valid time that does not fit in `i64` nanoseconds since 1970 (years 1677..=2262).
    OutOfRange,
}

impl fmt::Display for TimeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid time: ")?;
        match *self {
            TimeParseError::Empty => f.write_str("empty string"),
            TimeParseError::Expected { at, expected } => {
                write!(f, "expected {expected} at byte {at}")
            }
            TimeParseError::Field {
                field,
                value,
                min,
                max,
            } => write!(f, "{field} {value} is out of range (allowed {min}..={max})"),
            TimeParseError::NoSuchDay { year, month, day } => {
                write!(f, "day {day} does not exist in {year:04}-{month:02}")
            }
            TimeParseError::Trailing { at } => {
                write!(f, "unexpected characters after the time at byte {at}")
            }
            TimeParseError::OutOfRange => f.write_str(
                "time is outside the representable range (1677-09-21 to 2262-04-11 UTC)",
            ),
        }
    }
}

impl std::error::Error for TimeParseError {}

/// Byte cursor over the input.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Exactly `n` ASCII digits (n <= 9).
    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, TimeParseError> {
        let mut v: u32 = 0;
        for _ in 0..n {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => {
                    return Err(TimeParseError::Expected {
                        at: self.i,
                        expected: what,
                    });
                }
            }
        }
        Ok(v)
    }

    fn byte(&mut self, want: u8, what: &'static str) -> Result<(), TimeParseError> {
        if self.peek() == Some(want) {
            self.i += 1;
            Ok(())
        } else {
            Err(TimeParseError::Expected {
                at: self.i,
                expected: what,
            })
        }
    }

    /// `T` or `t`.
    fn t(&mut self) -> Result<(), TimeParseError> {
        match self.peek() {
            Some(b'T' | b't') => {
                self.i += 1;
                Ok(())
            }
            _ => Err(TimeParseError::Expected {
                at: self.i,
                expected: "'T'",
            }),
        }
    }

    /// Optional `.` followed by 1..=9 digits; returns nanoseconds.
    fn fraction(&mut self) -> Result<u32, TimeParseError> {
        if self.peek() != Some(b'.') {
            return Ok(0);
        }
        self.i += 1;
        let start = self.i;
        let mut v: u32 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            if self.i - start == 9 {
                return Err(TimeParseError::Expected {
                    at: self.i,
                    expected: "at most 9 fraction digits",
                });
            }
            v = v * 10 + u32::from(c - b'0');
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 {
            return Err(TimeParseError::Expected {
                at: self.i,
                expected: "a digit after '.'",
            });
        }
        Ok(v * 10u32.pow((9 - n) as u32))
    }

    /// `Z`/`z`, or `+hh:mm` / `-hh:mm` (also `+hhmm`). Returns the offset east of UTC in seconds.
    fn zone(&mut self) -> Result<i64, TimeParseError> {
        let sign: i64 = match self.peek() {
            Some(b'Z' | b'z') => {
                self.i += 1;
                return Ok(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => {
                return Err(TimeParseError::Expected {
                    at: self.i,
                    expected: "'Z' or a +hh:mm / -hh:mm offset",
                });
            }
        };
        self.i += 1;
        let hh = self.digits(2, "offset hours (2 digits)")?;
        if self.peek() == Some(b':') {
            self.i += 1;
        }
        let mm = self.digits(2, "offset minutes (2 digits)")?;
        range("offset hour", hh, 0, 23)?;
        range("offset minute", mm, 0, 59)?;
        Ok(sign * i64::from(hh * 3600 + mm * 60))
    }

    fn end(&self) -> Result<(), TimeParseError> {
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(TimeParseError::Trailing { at: self.i })
        }
    }
}

fn range(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), TimeParseError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(TimeParseError::Field {
            field,
            value,
            min,
            max,
        })
    }
}

/// Validate the fields and convert to nanoseconds since the epoch.
#[allow(clippy::too_many_arguments)]
fn to_ns(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
    offset_s: i64,
) -> Result<i64, TimeParseError> {
    range("month", month, 1, 12)?;
    range("day", day, 1, 31)?;
    if day > days_in_month(i64::from(year), month) {
        return Err(TimeParseError::NoSuchDay { year, month, day });
    }
    range("hour", hour, 0, 23)?;
    range("minute", min, 0, 59)?;
    range("second", sec, 0, 60)?;
    let days = days_from_civil(i64::from(year), month, day);
    // All of these are small (|days| < 4e6), so plain i64 arithmetic cannot overflow here;
    // the nanosecond total is computed in i128 because i64::MIN is not a whole second.
    let secs = days * SECS_PER_DAY + i64::from(hour * 3600 + min * 60 + sec) - offset_s;
    let ns = i128::from(secs) * i128::from(NS_PER_SEC) + i128::from(nanos);
    i64::try_from(ns).map_err(|_| TimeParseError::OutOfRange)
}

/// Parse an ISO 8601 / RFC 3339 UTC time to nanoseconds since the Unix epoch.
///
/// Accepted forms (`T`/`Z` may also be lower case):
/// - extended: `2026-11-22T00:30:15Z`, `2026-11-22T00:30:15.250Z`, `2026-11-22T01:30:15+01:00`
/// - basic (compact): `20261122T003015Z`, `20261122T003015.250Z`, `20261122T013015+0100`
///
/// The fraction has 1 to 9 digits. The offset is `Z`, `±hh:mm` or `±hhmm`. Every field is
/// range-checked (including the day against the month and leap years); second 60 (a leap
/// second) is accepted and equals second 0 of the next minute.
pub fn parse_iso8601(s: &str) -> Result<i64, TimeParseError> {
    if s.is_empty() {
        return Err(TimeParseError::Empty);
    }
    let mut c = Cur {
        b: s.as_bytes(),
        i: 0,
    };
    let year = c.digits(4, "a 4-digit year")?;
    let extended = c.peek() == Some(b'-');
    let (month, day, hour, min, sec);
    if extended {
        c.i += 1;
        month = c.digits(2, "a 2-digit month")?;
        c.byte(b'-', "'-'")?;
        day = c.digits(2, "a 2-digit day")?;
        c.t()?;
        hour = c.digits(2, "a 2-digit hour")?;
        c.byte(b':', "':'")?;
        min = c.digits(2, "2-digit minutes")?;
        c.byte(b':', "':'")?;
        sec = c.digits(2, "2-digit seconds")?;
    } else {
        month = c.digits(2, "'-' or a 2-digit month")?;
        day = c.digits(2, "a 2-digit day")?;
        c.t()?;
        hour = c.digits(2, "a 2-digit hour")?;
        min = c.digits(2, "2-digit minutes")?;
        sec = c.digits(2, "2-digit seconds")?;
    }
    let nanos = c.fraction()?;
    let offset = c.zone()?;
    c.end()?;
    to_ns(year, month, day, hour, min, sec, nanos, offset)
}

/// Parse exactly the [`Compact`] form, `YYYYMMDDTHHMMSS.mmmZ` (20 bytes, milliseconds and `Z`
/// required, upper case), as used in segment file names. Returns nanoseconds since the epoch.
pub fn parse_compact(s: &str) -> Result<i64, TimeParseError> {
    if s.is_empty() {
        return Err(TimeParseError::Empty);
    }
    let mut c = Cur {
        b: s.as_bytes(),
        i: 0,
    };
    let year = c.digits(4, "a 4-digit year")?;
    let month = c.digits(2, "a 2-digit month")?;
    let day = c.digits(2, "a 2-digit day")?;
    c.byte(b'T', "'T'")?;
    let hour = c.digits(2, "a 2-digit hour")?;
    let min = c.digits(2, "2-digit minutes")?;
    let sec = c.digits(2, "2-digit seconds")?;
    c.byte(b'.', "'.'")?;
    let ms = c.digits(3, "3-digit milliseconds")?;
    c.byte(b'Z', "'Z'")?;
    c.end()?;
    to_ns(year, month, day, hour, min, sec, ms * 1_000_000, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn s<T: fmt::Display>(t: T) -> String {
        let mut out = String::new();
        write!(out, "{t}").unwrap();
        out
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

    #[test]
    fn clocks_are_sane() {
        let u = now_utc_ns();
        assert!(
            u > 1_600_000_000 * NS_PER_SEC,
            "realtime clock before 2020: {u}"
        );
        let a = now_mono_ns();
        let b = now_mono_ns();
        assert!(b >= a);
    }

    #[test]
    fn known_values() {
        assert_eq!(s(Iso(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(s(IsoSeconds(0)), "1970-01-01T00:00:00Z");
        assert_eq!(s(Compact(0)), "19700101T000000.000Z");
        let t = parse_iso8601("2026-11-22T00:30:15.250Z").unwrap();
        assert_eq!(t, 1_795_307_415_250_000_000);
        assert_eq!(s(Iso(t)), "2026-11-22T00:30:15.250Z");
        assert_eq!(s(IsoSeconds(t)), "2026-11-22T00:30:15Z");
        assert_eq!(s(Compact(t)), "20261122T003015.250Z");
        assert_eq!(s(Iso(-1)), "1969-12-31T23:59:59.999Z");
        assert_eq!(s(IsoSeconds(-1)), "1969-12-31T23:59:59Z");
        assert_eq!(s(Iso(i64::MIN)), "1677-09-21T00:12:43.145Z");
        assert_eq!(s(Iso(i64::MAX)), "2262-04-11T23:47:16.854Z");
        assert_eq!(
            s(Iso(2_147_483_648 * NS_PER_SEC)),
            "2038-01-19T03:14:08.000Z"
        );
        assert_eq!(s(Iso(951_782_400 * NS_PER_SEC)), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            s(Iso(-2_203_977_600 * NS_PER_SEC)),
            "1900-02-28T00:00:00.000Z"
        );
        assert_eq!(
            s(Iso(-2_203_891_200 * NS_PER_SEC)),
            "1900-03-01T00:00:00.000Z"
        );
    }

    #[test]
    fn calendar_matches_day_by_day_walk() {
        // Walk every day from 1600-01-01 to 2400-12-31 and compare with the algorithms.
        let mut days = days_from_civil(1600, 1, 1);
        for y in 1600..=2400i64 {
            for m in 1..=12u32 {
                for d in 1..=days_in_month(y, m) {
                    assert_eq!(days_from_civil(y, m, d), days);
                    assert_eq!(civil_from_days(days), (y, m, d));
                    days += 1;
                }
            }
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn round_trips() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut values: Vec<i64> = vec![
            0,
            -1,
            1,
            i64::MIN,
            i64::MAX,
            951_782_400 * NS_PER_SEC,           // 2000-02-29
            1_709_164_800 * NS_PER_SEC,         // 2024-02-29
            2_147_483_647 * NS_PER_SEC,         // 2038-01-19T03:14:07
            2_147_483_648 * NS_PER_SEC + 999,   // just after
            4_107_542_400 * NS_PER_SEC,         // 2100-03-01
            -86_400 * NS_PER_SEC,               // 1969-12-31
            -2_208_988_800 * NS_PER_SEC,        // 1900-01-01
            -5_000_000_000 * NS_PER_SEC + 123,  // 1811
            9_000_000_000 * NS_PER_SEC + 7_000, // 2255
        ];
        for _ in 0..20_000 {
            values.push(rng.next() as i64);
        }
        for &v in &values {
            // Truncation toward the past can leave the i64 range (only near i64::MIN).
            let ms = v.div_euclid(1_000_000).checked_mul(1_000_000);
            let sec = v.div_euclid(NS_PER_SEC).checked_mul(NS_PER_SEC);
            let (Some(ms), Some(sec)) = (ms, sec) else {
                assert_eq!(parse_iso8601(&s(Iso(v))), Err(TimeParseError::OutOfRange));
                assert_eq!(
                    parse_compact(&s(Compact(v))),
                    Err(TimeParseError::OutOfRange)
                );
                continue;
            };
            assert_eq!(parse_iso8601(&s(Iso(v))), Ok(ms), "{v}");
            assert_eq!(parse_iso8601(&s(IsoSeconds(v))), Ok(sec), "{v}");
            assert_eq!(parse_iso8601(&s(Compact(v))), Ok(ms), "{v}");
            assert_eq!(parse_compact(&s(Compact(v))), Ok(ms), "{v}");
            assert_eq!(s(Iso(v)).len(), 24);
            assert_eq!(s(Compact(v)).len(), 20);
        }
        // Lexical order of Compact == time order.
        values.sort_unstable();
        for w in values.windows(2) {
            assert!(s(Compact(w[0])) <= s(Compact(w[1])));
        }
    }

    #[test]
    fn parse_variants() {
        let base = parse_iso8601("2026-11-22T00:30:15Z").unwrap();
        assert_eq!(parse_iso8601("20261122T003015Z"), Ok(base));
        assert_eq!(parse_iso8601("2026-11-22t00:30:15z"), Ok(base));
        assert_eq!(parse_iso8601("2026-11-22T01:30:15+01:00"), Ok(base));
        assert_eq!(parse_iso8601("2026-11-21T23:00:15-01:30"), Ok(base));
        assert_eq!(parse_iso8601("20261122T013015+0100"), Ok(base));
        assert_eq!(
            parse_iso8601("2026-11-22T00:30:15.5Z"),
            Ok(base + 500_000_000)
        );
        assert_eq!(
            parse_iso8601("2026-11-22T00:30:15.000000001Z"),
            Ok(base + 1)
        );
        assert_eq!(
            parse_iso8601("2026-11-22T00:30:15.123456789Z"),
            Ok(base + 123_456_789)
        );
        assert_eq!(
            parse_iso8601("20261122T003015.250Z"),
            Ok(base + 250_000_000)
        );
        assert_eq!(
            parse_compact("20261122T003015.250Z"),
            Ok(base + 250_000_000)
        );
        // Leap second folds into the next minute.
        assert_eq!(
            parse_iso8601("2016-12-31T23:59:60Z"),
            parse_iso8601("2017-01-01T00:00:00Z")
        );
        assert_eq!(parse_iso8601("2024-02-29T00:00:00Z").map(|_| ()), Ok(()));
        assert_eq!(parse_iso8601("2000-02-29T00:00:00Z").map(|_| ()), Ok(()));
        // Extremes.
        assert_eq!(
            parse_iso8601("1677-09-21T00:12:43.145224192Z"),
            Ok(i64::MIN)
        );
        assert_eq!(
            parse_iso8601("2262-04-11T23:47:16.854775807Z"),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn rejects_bad_input() {
        use TimeParseError as E;
        let bad = [
            "",
            "2026",
            "2026-11-22",
            "2026-11-22T00:30:15",             // no zone
            "2026-11-22T00:30Z",               // no seconds
            "2026-13-22T00:30:15Z",            // month
            "2026-00-22T00:30:15Z",            // month
            "2026-11-00T00:30:15Z",            // day
            "2026-11-31T00:30:15Z",            // November has 30
            "2025-02-29T00:00:00Z",            // not a leap year
            "1900-02-29T00:00:00Z",            // not a leap year
            "2026-11-22T24:00:00Z",            // hour
            "2026-11-22T00:60:00Z",            // minute
            "2026-11-22T00:00:61Z",            // second
            "2026-11-22T00:30:15.Z",           // empty fraction
            "2026-11-22T00:30:15.1234567890Z", // 10 fraction digits
            "2026-11-22T00:30:15+24:00",       // offset hour
            "2026-11-22T00:30:15+01:60",       // offset minute
            "2026-11-22T00:30:15+1:00",
            "2026-11-22T00:30:15ZZ",
            "2026-11-22T00:30:15Z ",
            " 2026-11-22T00:30:15Z",
            "2026-11-22 00:30:15Z",
            "2026-1122T003015Z",
            "+2026-11-22T00:30:15Z",
            "2026-11-22T00:30:15.25０Z",
            "9999-12-31T23:59:59Z", // out of i64 range
            "0000-01-01T00:00:00Z", // out of i64 range
            "1677-09-21T00:12:43.145224191Z",
            "2262-04-11T23:47:16.854775808Z",
        ];
        for b in bad {
            assert!(parse_iso8601(b).is_err(), "accepted {b:?}");
        }
        assert_eq!(parse_iso8601(""), Err(E::Empty));
        assert_eq!(
            parse_iso8601("2026-13-22T00:30:15Z"),
            Err(E::Field {
                field: "month",
                value: 13,
                min: 1,
                max: 12
            })
        );
        assert_eq!(
            parse_iso8601("2025-02-29T00:00:00Z"),
            Err(E::NoSuchDay {
                year: 2025,
                month: 2,
                day: 29
            })
        );
        assert_eq!(parse_iso8601("9999-12-31T23:59:59Z"), Err(E::OutOfRange));
        assert_eq!(
            parse_iso8601("2026-11-22T00:30:15Zx"),
            Err(E::Trailing { at: 20 })
        );
        let msg = s(parse_iso8601("2026-13-22T00:30:15Z").unwrap_err());
        assert_eq!(
            msg,
            "invalid time: month 13 is out of range (allowed 1..=12)"
        );
        let msg = s(parse_iso8601("2026-11-22X").unwrap_err());
        assert_eq!(msg, "invalid time: expected 'T' at byte 10");

        // parse_compact takes exactly the Compact form.
        for b in [
            "20261122T003015Z",
            "20261122T003015.25Z",
            "20261122T003015.2500Z",
            "20261122t003015.250Z",
            "20261122T003015.250z",
            "2026-11-22T00:30:15.250Z",
            "20261122T003015.250+00:00",
            "20261122T003015.250Z.open",
            "20261322T003015.250Z",
        ] {
            assert!(parse_compact(b).is_err(), "parse_compact accepted {b:?}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"0123456789-:T.Z+zt \xff\xc3\xa9";
        for i in 0..5_000 {
            let len = (rng.next() % 40) as usize;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                let r = rng.next();
                // Mostly plausible characters, sometimes anything.
                if i % 3 == 0 {
                    bytes.push(r as u8);
                } else {
                    bytes.push(alphabet[(r % alphabet.len() as u64) as usize]);
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_iso8601(&text);
            let _ = parse_compact(&text);
        }
        // Mutations of a valid time: every single-byte substitution.
        let good = b"2024-02-29T23:59:60.999999999+23:59";
        for pos in 0..good.len() {
            for c in [b'0', b'9', b'-', b':', b'Z', b'x', b'+', b'.'] {
                let mut m = good.to_vec();
                m[pos] = c;
                let _ = parse_iso8601(&String::from_utf8_lossy(&m));
            }
            let _ = parse_iso8601(&String::from_utf8_lossy(&good[..pos]));
        }
    }
}
