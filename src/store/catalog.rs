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
                (Some(Ok(a)), Some(Ok(b))) if a <= b => p.ranges.push((a, b)),
                _ => log::warn!("ignoring bad line in protected ranges: {line:?}"),
            }
        }
        p
    }

    pub fn to_text(&self) -> String {
        let mut s = String::from("# protected UTC ranges: FROM TO\n");
        for (a, b) in &self.ranges {
            s.push_str(&format!("{} {}\n", clock::Iso(*a), clock::Iso(*b)));
        }
        s
    }

    pub fn covers(&self, from_ns: i64, to_ns: i64) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= to_ns && b >= from_ns)
    }
}
