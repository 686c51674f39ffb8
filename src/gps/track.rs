//! The GPS track: one record per second of fixes, kept crash-safely beside the footage in
//! `DATA/gps/YYYYMMDD.trk` (the UTC day of the fix). docs/FORMAT.md, "GPS track".
//!
//! A record is 32 bytes, appended whole (one write) at a multiple of 32: a power cut can tear
//! only the records written since the last sync, and a torn or damaged record fails its CRC
//! and is skipped (counted), never read as a position. The file is fdatasynced every
//! `SYNC_EVERY` records (readers see every record at once); nothing here allocates per fix.
//! Old days go when the track passes `CAP_BYTES`.

use super::Fix;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const RECORD: usize = 32;
const MAGIC: u16 = 0x5047; // "GP"
const F_COURSE: u8 = 1;
const F_ALT: u8 = 2;
/// Records between syncs (seconds of track a power cut may take).
pub const SYNC_EVERY: usize = 5;
/// The whole track's size limit (about 6 days of continuous driving, months of commuting).
pub const CAP_BYTES: u64 = 16 << 20;

/// One stored point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub utc_ns: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed_mps: f32,
    pub course_deg: Option<f32>,
    pub altitude_m: Option<f32>,
    pub satellites: u8,
}

impl Point {
    pub fn from_fix(f: &Fix, satellites: u8) -> Point {
        Point { utc_ns: f.utc_ns, lat: f.lat, lon: f.lon, speed_mps: f.speed_mps, course_deg: f.course_deg, altitude_m: f.altitude_m, satellites }
    }

    pub fn encode(&self) -> [u8; RECORD] {
        let mut b = [0u8; RECORD];
        b[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        b[2] = if self.course_deg.is_some() { F_COURSE } else { 0 } | if self.altitude_m.is_some() { F_ALT } else { 0 };
        b[3] = self.satellites;
        b[4..12].copy_from_slice(&self.utc_ns.to_le_bytes());
        b[12..16].copy_from_slice(&((self.lat * 1e7).round() as i32).to_le_bytes());
        b[16..20].copy_from_slice(&((self.lon * 1e7).round() as i32).to_le_bytes());
        b[20..22].copy_from_slice(&((self.speed_mps.max(0.0) * 100.0).round().min(65535.0) as u16).to_le_bytes());
        b[22..24].copy_from_slice(&((self.course_deg.unwrap_or(0.0).clamp(0.0, 360.0) * 100.0).round() as u16).to_le_bytes());
        b[24..28].copy_from_slice(&((self.altitude_m.unwrap_or(0.0) * 10.0).round() as i32).to_le_bytes());
        let crc = crc32fast::hash(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` for a record that fails its magic or CRC.
    pub fn decode(b: &[u8]) -> Option<Point> {
        if b.len() != RECORD || u16::from_le_bytes([b[0], b[1]]) != MAGIC || crc32fast::hash(&b[..28]) != u32::from_le_bytes(b[28..32].try_into().ok()?) {
            return None;
        }
        let i32_at = |o: usize| i32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        Some(Point {
            utc_ns: i64::from_le_bytes(b[4..12].try_into().ok()?),
            lat: f64::from(i32_at(12)) / 1e7,
            lon: f64::from(i32_at(16)) / 1e7,
            speed_mps: f32::from(u16_at(20)) / 100.0,
            course_deg: (b[2] & F_COURSE != 0).then(|| f32::from(u16_at(22)) / 100.0),
            altitude_m: (b[2] & F_ALT != 0).then(|| i32_at(24) as f32 / 10.0),
            satellites: b[3],
        })
    }
}

/// The UTC day (days since the epoch) of `utc_ns`.
fn day_of(utc_ns: i64) -> i64 {
    utc_ns.div_euclid(86_400_000_000_000)
}

fn file_name(day: i64) -> String {
    let t = crate::clock::Compact(day * 86_400_000_000_000).to_string();
    format!("{}.trk", &t[..8])
}

/// Appends points; one writer (the GPS thread).
pub struct TrackWriter {
    dir: PathBuf,
    file: Option<(i64, File)>,
    unsynced: usize,
    last_second: i64,
}

impl TrackWriter {
    pub fn new(data_dir: &Path) -> TrackWriter {
        TrackWriter { dir: data_dir.join("gps"), file: None, unsynced: 0, last_second: i64::MIN }
    }

    /// Keeps `p` if it is the first point of its second (`Ok(true)`; `Ok(false)`: not the
    /// first); syncs every `SYNC_EVERY` points.
    pub fn push(&mut self, p: &Point) -> io::Result<bool> {
        let second = p.utc_ns.div_euclid(1_000_000_000);
        if second == self.last_second {
            return Ok(false);
        }
        self.last_second = second;
        if self.file.as_ref().is_some_and(|(d, _)| *d != day_of(p.utc_ns)) {
            self.sync()?;
            self.file = None;
        }
        if self.file.is_none() {
            self.open(day_of(p.utc_ns))?;
        }
        if let Some((_, f)) = self.file.as_mut() {
            f.write_all(&p.encode())?;
            self.unsynced += 1;
        }
        if self.unsynced >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(true)
    }

    fn open(&mut self, day: i64) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(file_name(day));
        let new = !path.exists();
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        // A torn tail (a cut mid-record) is padded to a whole record, so appends stay aligned.
        let len = f.metadata()?.len();
        if len % RECORD as u64 != 0 {
            (&f).write_all(&[0u8; RECORD][..RECORD - (len % RECORD as u64) as usize])?;
        }
        if new {
            let _ = File::open(&self.dir).and_then(|d| d.sync_all());
            self.trim();
        }
        self.file = Some((day, f));
        Ok(())
    }

    /// fdatasyncs what was appended since the last sync. A file erased meanwhile (the
    /// dashboard's "erase the card") is let go: the next point starts a new one.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced == 0 {
            return Ok(());
        }
        if let Some((day, f)) = self.file.as_mut() {
            f.sync_data()?;
            if !self.dir.join(file_name(*day)).exists() {
                self.file = None;
            }
        }
        self.unsynced = 0;
        Ok(())
    }

    /// Oldest days go while the track is over `CAP_BYTES`.
    fn trim(&self) {
        let mut files = list(&self.dir);
        let mut total: u64 = files.iter().map(|(_, _, len)| len).sum();
        files.sort();
        for (_, path, len) in files {
            if total <= CAP_BYTES {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                log::info!("gps: track {} deleted (the track is kept under {} MiB)", path.display(), CAP_BYTES >> 20);
                total -= len;
            }
        }
    }
}

impl Drop for TrackWriter {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// `(day, path, bytes)` of every track file.
fn list(dir: &Path) -> Vec<(String, PathBuf, u64)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.filter_map(|e| {
        let e = e.ok()?;
        let name = e.file_name().into_string().ok()?;
        let day = name.strip_suffix(".trk")?;
        (day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit())).then(|| (day.to_string(), e.path(), e.metadata().map_or(0, |m| m.len())))
    })
    .collect()
}

/// The points with `from <= utc_ns <= to`, in time order, and how many records were skipped
/// as damaged.
pub fn read(data_dir: &Path, from: i64, to: i64) -> (Vec<Point>, u64) {
    let dir = data_dir.join("gps");
    // Open-ended ranges (i64::MIN, i64::MAX): days from 1970 to the end of i64 time.
    let clamp = |t: i64| t.clamp(0, i64::MAX - 2 * 86_400_000_000_000);
    let (first, last) = (file_name(day_of(clamp(from))), file_name(day_of(clamp(to))));
    let mut out = Vec::new();
    let mut bad = 0;
    let mut files = list(&dir);
    files.sort();
    for (day, path, _) in files {
        let name = format!("{day}.trk");
        if name < first || name > last {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        for rec in bytes.chunks(RECORD) {
            if rec.iter().all(|&b| b == 0) {
                continue; // padding after a torn tail
            }
            match Point::decode(rec) {
                Some(p) if p.utc_ns >= from && p.utc_ns <= to => out.push(p),
                Some(_) => {}
                None => bad += 1,
            }
        }
    }
    out.sort_by_key(|p| p.utc_ns);
    out.dedup_by_key(|p| p.utc_ns);
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_796_083_200 * S; // 2026-12-01T00:00:00Z

    fn p(t: i64, lat: f64) -> Point {
        Point { utc_ns: t, lat, lon: -122.4194155, speed_mps: 13.89, course_deg: Some(271.5), altitude_m: Some(-12.3), satellites: 7 }
    }

    #[test]
    fn round_trip_and_crc() {
        let a = p(T0 + 123_456_789, 37.7749295);
        let b = Point::decode(&a.encode()).unwrap();
        assert_eq!(b.utc_ns, a.utc_ns);
        assert!((b.lat - a.lat).abs() < 1e-7 && (b.lon - a.lon).abs() < 1e-7);
        assert_eq!((b.speed_mps, b.course_deg, b.altitude_m, b.satellites), (13.89, Some(271.5), Some(-12.3), 7));
        let mut e = a.encode();
        e[13] ^= 1;
        assert_eq!(Point::decode(&e), None, "a flipped bit fails the CRC");
        let none = Point { course_deg: None, altitude_m: None, ..a };
        assert_eq!(Point::decode(&none.encode()).unwrap().course_deg, None);
    }

    #[test]
    fn one_point_a_second_across_days_a_torn_tail_and_a_damaged_record() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut w = TrackWriter::new(d.path());
            // 5 Hz for 4 s before midnight and 3 s after: one point a second, two files.
            for k in 0..35 {
                let t = T0 + 86_400 * S - 4 * S + k * 200_000_000;
                w.push(&p(t, 37.0 + k as f64 * 1e-4)).unwrap();
            }
        }
        let (all, bad) = read(d.path(), i64::MIN, i64::MAX);
        assert_eq!((all.len(), bad), (7, 0), "{all:?}");
        assert!(all.windows(2).all(|w| w[1].utc_ns - w[0].utc_ns == S));
        let files = list(&d.path().join("gps"));
        assert_eq!(files.len(), 2, "{files:?}");
        // A range inside one day.
        let (some, _) = read(d.path(), T0 + 86_400 * S - 2 * S, T0 + 86_400 * S);
        assert_eq!(some.len(), 3);
        // A cut mid-record (13 bytes of the next) and a damaged record in the middle.
        let path = d.path().join("gps").join(file_name(day_of(T0)));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[RECORD + 5] ^= 0xff;
        bytes.extend_from_slice(&p(T0 + 86_400 * S - 1, 1.0).encode()[..13]);
        std::fs::write(&path, &bytes).unwrap();
        let (all, bad) = read(d.path(), i64::MIN / 2, i64::MAX / 2);
        assert_eq!((all.len(), bad), (6, 2), "the damaged record and the torn tail are skipped, never read");
        // Appending after the torn tail stays aligned.
        {
            let mut w = TrackWriter::new(d.path());
            w.push(&p(T0 + 86_400 * S - S / 2, 2.0)).unwrap();
        }
        let (all, _) = read(d.path(), i64::MIN / 2, i64::MAX / 2);
        assert!(all.iter().any(|x| x.lat == 2.0), "{all:?}");
    }
}
