//! The catalogue: which segments exist, read from the directory listing alone, and which time
//! ranges are protected. Recovery of segments left open lives in `recover.rs`.

use super::names::{NameBuf, SegName};
use super::record::IndexEntry;
use crate::clock;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One segment as the store knows it.
#[derive(Clone, Debug)]
pub struct SegmentInfo {
    pub name: NameBuf,
    pub first_seq: u64,
    pub frames: u64,
    pub start_utc_ns: i64,
    pub end_utc_ns: i64,
    /// Used length (header through seal for closed segments; valid prefix for open ones).
    pub used_bytes: u64,
    /// Bytes allocated on disk (what retention counts).
    pub alloc_bytes: u64,
    /// `None` for closed segments (read the index from the file); the scanned frames for a
    /// segment seen open by a read-only tool.
    pub open_frames: Option<Vec<IndexEntry>>,
    /// Frames up to this offset were committed (open segments only).
    pub open_commit_end: u64,
}

impl SegmentInfo {
    pub fn last_seq(&self) -> Option<u64> {
        (self.frames > 0).then(|| self.first_seq + self.frames - 1)
    }
    pub fn is_open(&self) -> bool {
        self.open_frames.is_some()
    }
    pub fn overlaps(&self, from_ns: i64, to_ns: i64) -> bool {
        self.start_utc_ns <= to_ns && self.end_utc_ns >= from_ns
    }
}

/// Files found in `segments/`, split by kind. Closed segments are sorted by first seq.
#[derive(Default)]
pub struct Listing {
    pub closed: Vec<SegmentInfo>,
    pub open: Vec<(NameBuf, SegName)>,
    pub temp: Vec<String>,
    pub unknown: Vec<String>,
}

pub fn list(seg_dir: &Path) -> io::Result<Listing> {
    let mut l = Listing::default();
    for ent in fs::read_dir(seg_dir)? {
        let ent = ent?;
        let Ok(fname) = ent.file_name().into_string() else {
            l.unknown.push(ent.file_name().to_string_lossy().into_owned());
            continue;
        };
        if fname.ends_with(".tmp") {
            l.temp.push(fname);
            continue;
        }
        let Some(parsed) = SegName::parse(&fname) else {
            l.unknown.push(fname);
            continue;
        };
        let Ok(name) = NameBuf::try_from(fname.as_str()) else {
            l.unknown.push(fname);
            continue;
        };
        match parsed {
            SegName::Open { .. } => l.open.push((name, parsed)),
            SegName::Closed { start_utc_ns, end_utc_ns, first_seq, frames, bytes } => {
                let alloc = ent.metadata().map(|m| m.blocks() * 512).unwrap_or(bytes);
                l.closed.push(SegmentInfo {
                    name,
                    first_seq,
                    frames,
                    start_utc_ns,
                    end_utc_ns,
                    used_bytes: bytes,
                    alloc_bytes: alloc.max(bytes),
                    open_frames: None,
                    open_commit_end: 0,
                });
            }
        }
    }
    l.closed.sort_by_key(|s| s.first_seq);
    l.open.sort_by_key(|(_, n)| n.first_seq());
    Ok(l)
}

/// At most this many disjoint protected ranges (a client adding tiny ranges forever would
/// otherwise grow the file and the retention scan without bound).
pub const MAX_PROTECTED_RANGES: usize = 4096;

/// [`Protected::add`] refused: the list is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRanges;

impl std::fmt::Display for TooManyRanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "too many separate protected ranges (at most {MAX_PROTECTED_RANGES}); unprotect some first")
    }
}

impl std::error::Error for TooManyRanges {}

/// Protected time ranges (UTC ns, inclusive), from `DATA/protected`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Protected {
    pub ranges: Vec<(i64, i64)>,
}

impl Protected {
    /// Reads the file; a missing file means nothing is protected. Lines that don't parse are
    /// skipped with a warning (never lose recording over a damaged side file).
    pub fn load(path: &Path) -> Protected {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Protected::default(),
            Err(e) => {
                log::warn!("cannot read {}: {e}; treating nothing as protected", path.display());
                return Protected::default();
            }
        };
        Protected::parse(&text)
    }

    pub fn parse(text: &str) -> Protected {
        let mut p = Protected::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let mut it = line.split_whitespace();
            match (it.next().map(clock::parse_iso8601), it.next().map(clock::parse_iso8601)) {
                (Some(Ok(a)), Some(Ok(b))) if a <= b => {
                    // Older files may hold overlapping ranges; a list over the limit (never
                    // written by this version) is kept whole rather than dropping protection.
                    if p.add(a, b).is_err() {
                        p.ranges.push((a, b));
                    }
                }
                _ => log::warn!("ignoring bad line in protected ranges: {line:?}"),
            }
        }
        p
    }

    /// The file's text. Times are written to the nanosecond, so the ranges read back at the
    /// next start are exactly these (milliseconds used to cut up to 1 ms off a range's end, and
    /// a range starting at the earliest representable time came back unparseable: the whole
    /// range was dropped at the next restart — issue 15).
    pub fn to_text(&self) -> String {
        let mut s = String::from("# protected UTC ranges: FROM TO\n");
        for (a, b) in &self.ranges {
            s.push_str(&format!("{} {}\n", clock::IsoNanos(*a), clock::IsoNanos(*b)));
        }
        s
    }

    /// Adds `from..=to`, merging it with ranges it overlaps or touches (so the list stays
    /// sorted, disjoint and as short as the protected time allows). Err when the list would
    /// hold more than [`MAX_PROTECTED_RANGES`] ranges.
    pub fn add(&mut self, from: i64, to: i64) -> Result<(), TooManyRanges> {
        let (mut a, mut b) = (from.min(to), from.max(to));
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        for &(x, y) in &self.ranges {
            if y < a.saturating_sub(1) || x > b.saturating_add(1) {
                out.push((x, y));
            } else {
                a = a.min(x);
                b = b.max(y);
            }
        }
        out.push((a, b));
        out.sort_unstable();
        if out.len() > MAX_PROTECTED_RANGES {
            return Err(TooManyRanges);
        }
        self.ranges = out;
        Ok(())
    }

    /// Removes `from..=to`, trimming ranges that stick out.
    pub fn remove(&mut self, from: i64, to: i64) {
        let (from, to) = (from.min(to), from.max(to));
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        for &(a, b) in &self.ranges {
            if b < from || a > to {
                out.push((a, b));
                continue;
            }
            if a < from {
                out.push((a, from - 1));
            }
            if b > to {
                out.push((to + 1, b));
            }
        }
        self.ranges = out;
    }

    /// Whether one range holds all of `from..=to`.
    pub fn contains(&self, from_ns: i64, to_ns: i64) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= from_ns && b >= to_ns)
    }

    pub fn covers(&self, from_ns: i64, to_ns: i64) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= to_ns && b >= from_ns)
    }
}
