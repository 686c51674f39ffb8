//! NMEA 0183 from a GPS receiver: RMC (time, date, status, position, speed, course), GGA (fix
//! quality, satellites, HDOP, altitude) and VTG (course and speed), from any talker (`GP`,
//! `GN`, `GL`, `GA`, `BD`, ...). Parsed in place from one line's bytes: no allocation, no panic
//! on any input.
//!
//! A sentence counts only with its checksum (`*hh`, the XOR of the bytes between `$` and `*`):
//! one without is refused too (a line cut by a buffer overrun looks like that). Two-digit years
//! are read in [`year_base`, `year_base` + 19]: a receiver with the GPS week-rollover bug reports
//! dates about 19.6 years early, and those (and anything else outside) are impossible dates.

/// Why a line is not a sentence we use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmeaError {
    /// Not `$` + talker + type: noise, a binary (UBX) message, half a line.
    NotNmea,
    /// No `*hh` at the end.
    NoChecksum,
    BadChecksum { sent: u8, computed: u8 },
    /// A field that does not parse (named).
    Field(&'static str),
    /// A date outside [year_base, year_base + 19] or not a calendar date.
    ImpossibleDate,
}

impl core::fmt::Display for NmeaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NmeaError::NotNmea => write!(f, "not an NMEA sentence"),
            NmeaError::NoChecksum => write!(f, "no checksum"),
            NmeaError::BadChecksum { sent, computed } => write!(f, "bad checksum (sent {sent:02X}, computed {computed:02X})"),
            NmeaError::Field(n) => write!(f, "bad {n} field"),
            NmeaError::ImpossibleDate => write!(f, "impossible date"),
        }
    }
}

/// Time of day from a sentence: seconds since midnight UTC, in milliseconds.
pub type DayMs = u32;

/// `$--RMC`: the recommended minimum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rmc {
    pub time_ms: DayMs,
    /// `A` (and a mode other than `N`): a fix. `V`: the receiver has none; position and speed
    /// may be stale or empty.
    pub valid: bool,
    /// UTC of the fix, ns since the epoch, when the date is there and possible.
    pub utc_ns: Option<i64>,
    /// Degrees, north and east positive.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Metres per second (from knots).
    pub speed_mps: Option<f32>,
    /// Degrees from true north.
    pub course_deg: Option<f32>,
}

/// `$--GGA`: fix quality.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gga {
    pub time_ms: DayMs,
    /// 0 none, 1 GPS, 2 DGPS, 4/5 RTK, 6 dead reckoning.
    pub quality: u8,
    pub satellites: u8,
    pub hdop: Option<f32>,
    pub altitude_m: Option<f32>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// `$--VTG`: course and speed over ground.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vtg {
    pub course_deg: Option<f32>,
    pub speed_mps: Option<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sentence {
    Rmc(Rmc),
    Gga(Gga),
    Vtg(Vtg),
    /// A valid sentence of another type (GSV, GSA, GLL, TXT, ...).
    Other,
}

/// The build year: the lower end of the two-digit year window.
pub const BUILD_YEAR: i64 = match i64::from_str_radix(env!("BLACKBOX_BUILD_YEAR"), 10) {
    Ok(y) => y,
    Err(_) => 2026,
};

/// Parses one line (with or without its CR LF).
pub fn parse(line: &[u8], year_base: i64) -> Result<Sentence, NmeaError> {
    let line = trim_end(line);
    let body = checked_body(line)?;
    // body: "GPRMC,..." (talker 2 letters + type 3 letters; proprietary "P..." sentences too)
    let (head, rest) = match body.iter().position(|&b| b == b',') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &body[body.len()..]),
    };
    if head.len() != 5 || !head.iter().all(u8::is_ascii_alphanumeric) {
        return Ok(Sentence::Other);
    }
    let mut f = Fields { rest, done: false };
    match &head[2..] {
        b"RMC" => parse_rmc(&mut f, year_base).map(Sentence::Rmc),
        b"GGA" => parse_gga(&mut f).map(Sentence::Gga),
        b"VTG" => parse_vtg(&mut f).map(Sentence::Vtg),
        _ => Ok(Sentence::Other),
    }
}

fn trim_end(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n' | b' ' | 0] = l {
        l = rest;
    }
    l
}

/// The bytes between `$` and `*`, once the checksum matches.
fn checked_body(line: &[u8]) -> Result<&[u8], NmeaError> {
    let start = line.iter().position(|&b| b == b'$').ok_or(NmeaError::NotNmea)?;
    let line = &line[start + 1..];
    if line.len() < 6 || !line.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return Err(NmeaError::NotNmea);
    }
    let star = line.iter().rposition(|&b| b == b'*').ok_or(NmeaError::NoChecksum)?;
    let (body, sum) = (&line[..star], &line[star + 1..]);
    let sent = match sum {
        [a, b] => hex(*a).zip(hex(*b)).map(|(a, b)| a << 4 | b).ok_or(NmeaError::NoChecksum)?,
        _ => return Err(NmeaError::NoChecksum),
    };
    let computed = body.iter().fold(0u8, |x, b| x ^ b);
    if sent != computed {
        return Err(NmeaError::BadChecksum { sent, computed });
    }
    Ok(body)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// The comma-separated fields after the sentence type.
struct Fields<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Fields<'a> {
    /// The next field (empty when missing: old receivers send fewer fields).
    fn next(&mut self) -> &'a [u8] {
        if self.done {
            return &[];
        }
        match self.rest.iter().position(|&b| b == b',') {
            Some(i) => {
                let f = &self.rest[..i];
                self.rest = &self.rest[i + 1..];
                f
            }
            None => {
                self.done = true;
                self.rest
            }
        }
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

/// A decimal number (`-12.345`), or `None` for an empty field; `Err` for a bad one.
fn decimal(s: &[u8], name: &'static str) -> Result<Option<f64>, NmeaError> {
    if s.is_empty() {
        return Ok(None);
    }
    let (neg, s) = match s {
        [b'-', r @ ..] => (true, r),
        _ => (false, s),
    };
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &s[s.len()..]),
    };
    if (int.is_empty() && frac.is_empty()) || int.len() > 9 || frac.len() > 9 {
        return Err(NmeaError::Field(name));
    }
    let i = if int.is_empty() { 0 } else { digits(int).ok_or(NmeaError::Field(name))? };
    let f = if frac.is_empty() { 0 } else { digits(frac).ok_or(NmeaError::Field(name))? };
    let v = f64::from(i) + f64::from(f) / 10f64.powi(frac.len() as i32);
    Ok(Some(if neg { -v } else { v }))
}

/// `hhmmss[.sss]` → milliseconds since midnight.
fn time_of_day(s: &[u8]) -> Result<DayMs, NmeaError> {
    const E: NmeaError = NmeaError::Field("time");
    if s.len() < 6 {
        return Err(E);
    }
    let h = digits(&s[0..2]).ok_or(E)?;
    let m = digits(&s[2..4]).ok_or(E)?;
    let sec = digits(&s[4..6]).ok_or(E)?;
    let ms = match &s[6..] {
        [] => 0,
        [b'.', frac @ ..] if !frac.is_empty() && frac.len() <= 9 => {
            let f = digits(frac).ok_or(E)?;
            // The first three digits are milliseconds.
            match frac.len() {
                1 => f * 100,
                2 => f * 10,
                3 => f,
                n => f / 10u32.pow(n as u32 - 3),
            }
        }
        _ => return Err(E),
    };
    // 60 is a leap second: folded into the next minute like clock.rs does.
    if h > 23 || m > 59 || sec > 60 {
        return Err(E);
    }
    Ok(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// `ddmm.mmmm` + `N`/`S` (or `dddmm.mmmm` + `E`/`W`) → signed degrees.
fn coordinate(v: &[u8], hemi: &[u8], deg_digits: usize, name: &'static str) -> Result<Option<f64>, NmeaError> {
    if v.is_empty() && hemi.is_empty() {
        return Ok(None);
    }
    let dot = v.iter().position(|&b| b == b'.').unwrap_or(v.len());
    if dot != deg_digits + 2 {
        return Err(NmeaError::Field(name));
    }
    let deg = digits(&v[..deg_digits]).ok_or(NmeaError::Field(name))?;
    let min = decimal(&v[deg_digits..], name)?.ok_or(NmeaError::Field(name))?;
    if min >= 60.0 {
        return Err(NmeaError::Field(name));
    }
    let d = f64::from(deg) + min / 60.0;
    let max = if deg_digits == 2 { 90.0 } else { 180.0 };
    if d > max {
        return Err(NmeaError::Field(name));
    }
    match (hemi, deg_digits) {
        (b"N", 2) | (b"E", 3) => Ok(Some(d)),
        (b"S", 2) | (b"W", 3) => Ok(Some(-d)),
        _ => Err(NmeaError::Field(name)),
    }
}

fn knots(s: &[u8]) -> Result<Option<f32>, NmeaError> {
    Ok(decimal(s, "speed")?.filter(|v| *v >= 0.0).map(|k| (k * 1852.0 / 3600.0) as f32))
}

fn course(s: &[u8]) -> Result<Option<f32>, NmeaError> {
    Ok(decimal(s, "course")?.filter(|v| (0.0..=360.0).contains(v)).map(|c| c as f32))
}

fn parse_rmc(f: &mut Fields, year_base: i64) -> Result<Rmc, NmeaError> {
    let time_ms = time_of_day(f.next())?;
    let status = f.next();
    let (lat, ns, lon, ew) = (f.next(), f.next(), f.next(), f.next());
    let speed_mps = knots(f.next())?;
    let course_deg = course(f.next())?;
    let date = f.next();
    let _magvar = (f.next(), f.next());
    let mode = f.next(); // NMEA 2.3+: A autonomous, D differential, E estimated, N not valid
    let valid = status == b"A" && !matches!(mode, b"N" | b"E");
    let utc_ns = match date {
        [] => None,
        d => Some(date_time(d, time_ms, year_base)?),
    };
    Ok(Rmc {
        time_ms,
        valid,
        utc_ns,
        lat: coordinate(lat, ns, 2, "latitude")?,
        lon: coordinate(lon, ew, 3, "longitude")?,
        speed_mps,
        course_deg,
    })
}

/// `ddmmyy` + time of day → UTC ns, the year read in [year_base, year_base + 19].
fn date_time(d: &[u8], time_ms: DayMs, year_base: i64) -> Result<i64, NmeaError> {
    if d.len() != 6 {
        return Err(NmeaError::Field("date"));
    }
    let (day, month, yy) = (digits(&d[0..2]), digits(&d[2..4]), digits(&d[4..6]));
    let (Some(day), Some(month), Some(yy)) = (day, month, yy) else { return Err(NmeaError::Field("date")) };
    let mut year = year_base - year_base.rem_euclid(100) + i64::from(yy);
    if year < year_base {
        year += 100;
    }
    if year > year_base + 19 {
        return Err(NmeaError::ImpossibleDate);
    }
    // A leap second (:60) is the next minute's :00 (time_of_day counts it so); 23:59:60 is the
    // next day's first second.
    let secs = time_ms / 1000;
    let next_day = secs >= 86_400;
    let secs = if next_day { 86_399 } else { secs };
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let t = crate::clock::utc_ns_from_parts(year, month, day, h, m, s, (time_ms % 1000) * 1_000_000).ok_or(NmeaError::ImpossibleDate)?;
    Ok(if next_day { t + 1_000_000_000 } else { t })
}

fn parse_gga(f: &mut Fields) -> Result<Gga, NmeaError> {
    let time_ms = time_of_day(f.next())?;
    let (lat, ns, lon, ew) = (f.next(), f.next(), f.next(), f.next());
    let quality = match f.next() {
        [] => 0,
        q => digits(q).filter(|q| *q <= 9).ok_or(NmeaError::Field("quality"))? as u8,
    };
    let satellites = match f.next() {
        [] => 0,
        n => digits(n).filter(|n| *n <= 99).ok_or(NmeaError::Field("satellites"))? as u8,
    };
    let hdop = decimal(f.next(), "hdop")?.map(|v| v as f32);
    let altitude_m = decimal(f.next(), "altitude")?.map(|v| v as f32);
    Ok(Gga {
        time_ms,
        quality,
        satellites,
        hdop,
        altitude_m,
        lat: coordinate(lat, ns, 2, "latitude")?,
        lon: coordinate(lon, ew, 3, "longitude")?,
    })
}

fn parse_vtg(f: &mut Fields) -> Result<Vtg, NmeaError> {
    let course_deg = course(f.next())?;
    let _t = f.next();
    let _mag = (f.next(), f.next());
    let speed_mps = knots(f.next())?;
    Ok(Vtg { course_deg, speed_mps })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sentence with its checksum appended.
    fn with_sum(body: &str) -> String {
        let x = body.bytes().fold(0u8, |a, b| a ^ b);
        format!("${body}*{x:02X}\r\n")
    }

    #[test]
    fn rmc_with_fix() {
        // The NMEA reference example (u-blox manual): 2026 year window.
        let l = with_sum("GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A");
        let Sentence::Rmc(r) = parse(l.as_bytes(), 2000).unwrap() else { panic!() };
        assert!(r.valid);
        assert_eq!(r.time_ms, (8 * 3600 + 35 * 60 + 59) * 1000);
        assert_eq!(r.utc_ns, crate::clock::utc_ns_from_parts(2002, 12, 9, 8, 35, 59, 0));
        assert!((r.lat.unwrap() - (47.0 + 17.11437 / 60.0)).abs() < 1e-9);
        assert!((r.lon.unwrap() - (8.0 + 33.91522 / 60.0)).abs() < 1e-9);
        assert!((r.speed_mps.unwrap() - 0.004 * 1852.0 / 3600.0).abs() < 1e-6);
        assert_eq!(r.course_deg, Some(77.52));
    }

    #[test]
    fn south_west_and_kmh() {
        let l = with_sum("GNRMC,235959.5,A,3351.000,S,15112.000,W,54.0,180.0,311226,,,D");
        let Sentence::Rmc(r) = parse(l.as_bytes(), 2026).unwrap() else { panic!() };
        assert!((r.lat.unwrap() + 33.85).abs() < 1e-9 && (r.lon.unwrap() + 151.2).abs() < 1e-9);
        assert!((r.speed_mps.unwrap() * 3.6 - 100.008).abs() < 1e-3, "54 knots = 100 km/h");
        assert_eq!(r.utc_ns, crate::clock::utc_ns_from_parts(2026, 12, 31, 23, 59, 59, 500_000_000));
    }

    #[test]
    fn checksums_are_required_and_checked() {
        let good = with_sum("GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091226,,,A");
        assert!(parse(good.as_bytes(), 2026).is_ok());
        let mut bad = good.clone().into_bytes();
        bad[20] = b'8'; // one digit of the latitude changed
        assert!(matches!(parse(&bad, 2026), Err(NmeaError::BadChecksum { .. })));
        let no_sum = "$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091226,,,A\r\n";
        assert_eq!(parse(no_sum.as_bytes(), 2026), Err(NmeaError::NoChecksum));
        assert_eq!(parse(b"garbage", 2026), Err(NmeaError::NotNmea));
        assert_eq!(parse(b"\xb5\x62\x01\x07", 2026), Err(NmeaError::NotNmea), "UBX binary");
        assert_eq!(parse(b"", 2026), Err(NmeaError::NotNmea));
        // Lower-case hex digits are fine.
        let lower = good.replace(&good[good.len() - 4..good.len() - 2], &good[good.len() - 4..good.len() - 2].to_lowercase());
        assert!(parse(lower.as_bytes(), 2026).is_ok());
    }

    #[test]
    fn void_fix_and_mode_n_are_not_valid() {
        let v = with_sum("GPRMC,083559.00,V,,,,,,,091226,,,N");
        let Sentence::Rmc(r) = parse(v.as_bytes(), 2026).unwrap() else { panic!() };
        assert!(!r.valid && r.lat.is_none() && r.speed_mps.is_none());
        let n = with_sum("GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091226,,,N");
        let Sentence::Rmc(r) = parse(n.as_bytes(), 2026).unwrap() else { panic!() };
        assert!(!r.valid, "mode N: not valid even with status A");
        // NMEA 2.0 without the mode field: status decides.
        let old = with_sum("GPRMC,083559,A,4717.11437,N,00833.91522,E,0.0,,091226,,");
        let Sentence::Rmc(r) = parse(old.as_bytes(), 2026).unwrap() else { panic!() };
        assert!(r.valid && r.course_deg.is_none());
    }

    #[test]
    fn two_digit_years_in_the_window() {
        let at = |date: &str, base| {
            let l = with_sum(&format!("GPRMC,120000,A,4717.1,N,00833.9,E,0,0,{date},,,A"));
            parse(l.as_bytes(), base).map(|s| match s {
                Sentence::Rmc(r) => r.utc_ns,
                _ => None,
            })
        };
        assert_eq!(at("010126", 2026), Ok(crate::clock::utc_ns_from_parts(2026, 1, 1, 12, 0, 0, 0)));
        assert_eq!(at("010145", 2026), Ok(crate::clock::utc_ns_from_parts(2045, 1, 1, 12, 0, 0, 0)));
        assert_eq!(at("010146", 2026), Err(NmeaError::ImpossibleDate), "past the window");
        // A week-rollover receiver in December 2026 says April 2007: refused, not 2107.
        assert_eq!(at("250407", 2026), Err(NmeaError::ImpossibleDate));
        assert_eq!(at("161199", 2026), Err(NmeaError::ImpossibleDate), "1999 (or 2099)");
        assert_eq!(at("010105", 1990), Ok(crate::clock::utc_ns_from_parts(2005, 1, 1, 12, 0, 0, 0)), "the window crosses a century");
        assert_eq!(at("300226", 2026), Err(NmeaError::ImpossibleDate), "30 February");
        assert_eq!(at("291228", 2026), Ok(crate::clock::utc_ns_from_parts(2028, 12, 29, 12, 0, 0, 0)));
        assert_eq!(at("2912", 2026), Err(NmeaError::Field("date")));
    }

    #[test]
    fn gga_and_vtg() {
        let g = with_sum("GNGGA,092725.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,");
        let Sentence::Gga(g) = parse(g.as_bytes(), 2026).unwrap() else { panic!() };
        assert_eq!((g.quality, g.satellites, g.hdop, g.altitude_m), (1, 8, Some(1.01), Some(499.6)));
        let none = with_sum("GPGGA,092725.00,,,,,0,00,99.99,,,,,,");
        let Sentence::Gga(n) = parse(none.as_bytes(), 2026).unwrap() else { panic!() };
        assert_eq!((n.quality, n.lat), (0, None));
        let v = with_sum("GPVTG,77.52,T,,M,0.004,N,0.008,K,A");
        let Sentence::Vtg(v) = parse(v.as_bytes(), 2026).unwrap() else { panic!() };
        assert_eq!(v.course_deg, Some(77.52));
        let gsv = with_sum("GPGSV,3,1,10,23,38,230,44,29,71,156,47,07,29,116,41,08,09,081,36");
        assert_eq!(parse(gsv.as_bytes(), 2026), Ok(Sentence::Other));
    }

    #[test]
    fn bad_fields_are_errors_not_panics() {
        for body in [
            "GPRMC,8355,A,4717.1,N,00833.9,E,0,0,091226,,,A",   // short time
            "GPRMC,253559,A,4717.1,N,00833.9,E,0,0,091226,,,A", // hour 25
            "GPRMC,083559,A,4717.1,X,00833.9,E,0,0,091226,,,A", // hemisphere
            "GPRMC,083559,A,9917.1,N,00833.9,E,0,0,091226,,,A", // 99 degrees
            "GPRMC,083559,A,4777.1,N,00833.9,E,0,0,091226,,,A", // 77 minutes
            "GPRMC,083559,A,4717.1,N,833.9,E,0,0,091226,,,A",   // 2-digit longitude degrees
            "GPRMC,083559,A,4717.1,N,00833.9,E,x,0,091226,,,A", // speed
            "GPRMC,083559,A,4717.1,N,00833.9,E,1..2,0,091226,,,A",
            "GPGGA,092725.00,4717.1,N,00833.9,E,x,08,1.0,499.6,M,48.0,M,,",
        ] {
            assert!(matches!(parse(with_sum(body).as_bytes(), 2026), Err(NmeaError::Field(_))), "{body}");
        }
        // Arbitrary bytes never panic.
        let mut x: u32 = 1;
        for _ in 0..20_000 {
            let mut b = [0u8; 40];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *v = b"$GPRMC,.0123456789ANSEW*V\r\n"[(x % 27) as usize];
            }
            let _ = parse(&b, 2026);
        }
    }

    #[test]
    fn leap_second_folds_into_the_next_minute() {
        let l = with_sum("GPRMC,235960,A,4717.1,N,00833.9,E,0,0,311226,,,A");
        let Sentence::Rmc(r) = parse(l.as_bytes(), 2026).unwrap() else { panic!() };
        assert_eq!(r.utc_ns, crate::clock::utc_ns_from_parts(2027, 1, 1, 0, 0, 0, 0));
    }

    #[test]
    fn build_year_is_sane() {
        assert!((2026..2100).contains(&BUILD_YEAR), "{BUILD_YEAR}");
    }
}
