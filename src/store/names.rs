//! Segment file names (docs/FORMAT.md, "Data directory layout").
//!
//! Open:   `START_FIRSTSEQ.open`
//! Closed: `START_END_FIRSTSEQ_FRAMES_BYTES.seg`
//! START/END are `YYYYMMDDTHHMMSS.mmmZ`; names sort by time and carry everything the catalogue
//! needs, so closed segments are never opened to list them.

use crate::clock::{parse_compact, Compact};
use core::fmt::Write;

/// A segment file name fits comfortably in this.
pub type NameBuf = heapless::String<128>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegName {
    Open { start_utc_ns: i64, first_seq: u64 },
    Closed { start_utc_ns: i64, end_utc_ns: i64, first_seq: u64, frames: u64, bytes: u64 },
}

impl SegName {
    pub fn first_seq(&self) -> u64 {
        match *self {
            SegName::Open { first_seq, .. } | SegName::Closed { first_seq, .. } => first_seq,
        }
    }

    pub fn start_utc_ns(&self) -> i64 {
        match *self {
            SegName::Open { start_utc_ns, .. } | SegName::Closed { start_utc_ns, .. } => start_utc_ns,
        }
    }

    pub fn format(&self) -> NameBuf {
        let mut s = NameBuf::new();
        // 128 bytes always hold the longest name (20+1+20+1+20+1+20+1+20+4); ignore the
        // impossible overflow rather than panic.
        let _ = match *self {
            SegName::Open { start_utc_ns, first_seq } => {
                write!(s, "{}_{:016}.open", Compact(start_utc_ns), first_seq)
            }
            SegName::Closed { start_utc_ns, end_utc_ns, first_seq, frames, bytes } => write!(
                s,
                "{}_{}_{:016}_{}_{:013}.seg",
                Compact(start_utc_ns),
                Compact(end_utc_ns),
                first_seq,
                frames,
                bytes
            ),
        };
        s
    }

    /// Parses a file name; `None` for anything that is not a segment name.
    pub fn parse(name: &str) -> Option<SegName> {
        if let Some(stem) = name.strip_suffix(".open") {
            let (start, seq) = stem.split_once('_')?;
            return Some(SegName::Open { start_utc_ns: parse_compact(start).ok()?, first_seq: num(seq)? });
        }
        let stem = name.strip_suffix(".seg")?;
        let mut parts = stem.split('_');
        let start = parse_compact(parts.next()?).ok()?;
        let end = parse_compact(parts.next()?).ok()?;
        let first_seq = num(parts.next()?)?;
        let frames = num(parts.next()?)?;
        let bytes = num(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(SegName::Closed { start_utc_ns: start, end_utc_ns: end, first_seq, frames, bytes })
    }
}

fn num(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// True when `ns` and a name's millisecond time denote the same millisecond.
pub fn same_ms(ns: i64, name_ns: i64) -> bool {
    ns.div_euclid(1_000_000) == name_ns.div_euclid(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_time() {
        let t = 1_795_000_000_123_000_000i64;
        let o = SegName::Open { start_utc_ns: t, first_seq: 42 };
        assert_eq!(o.format().as_str(), "20261118T110640.123Z_0000000000000042.open");
        assert_eq!(SegName::parse(&o.format()), Some(o));
        let c = SegName::Closed { start_utc_ns: t, end_utc_ns: t + 60_000_000_000, first_seq: 42, frames: 1800, bytes: 188_743_680 };
        assert_eq!(SegName::parse(&c.format()), Some(c));
        let later = SegName::Open { start_utc_ns: t + 1_000_000, first_seq: 1 };
        assert!(later.format().as_str() > c.format().as_str());
    }

    #[test]
    fn junk_names_are_not_segments() {
        for n in ["", ".open", "x.seg", "20261117T075320.123Z_.open", "20261117T075320.123Z_12a.open",
                  "20261117T075320.123Z_20261117T075320.123Z_1_2_3_4.seg", "config.json"] {
            assert_eq!(SegName::parse(n), None, "{n}");
        }
    }
}
