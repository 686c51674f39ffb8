//! The export's sound track: the access units stored for its time (DATA/audio), laid on a grid
//! of 1024-sample slots that starts at or before the first frame shown. Every slot holds a
//! stored access unit or, where nothing was stored (muted, a gap, a device away), a silent one,
//! so the track plays continuously and each unit sits within half a unit (32 ms at 16 kHz) of
//! the time it was captured, whatever a player does with gaps. An edit list starts the sound
//! at the first frame shown (docs/EXPORT.md, "Sound").

use crate::audio::aac::{Aac, FRAME, MAX_AU};
use crate::audio::file::{self, Scan};
use std::io;
use std::path::Path;

/// A slot with no stored access unit: the silent one plays.
pub const SILENT: u32 = u32::MAX;

pub struct AudioPlan {
    pub scan: Scan,
    pub rate: u32,
    pub asc: Vec<u8>,
    /// Per slot: an index into `scan.aus`, or [`SILENT`].
    pub slots: Vec<u32>,
    /// One access unit that decodes to 1024 samples of silence.
    pub silent: Vec<u8>,
    /// UTC of slot 0's first sample.
    pub start_utc: i64,
    /// Samples from slot 0 to the first frame shown (the edit list skips them).
    pub media_start: u64,
    /// Access units stored for the span, and those left out (a slot already taken; another
    /// format than the first one's).
    pub placed: u64,
    pub left_out: u64,
}

impl AudioPlan {
    /// UTC of slot `k`'s first sample.
    pub fn slot_utc(&self, k: usize) -> i64 {
        self.start_utc + (k as i128 * FRAME as i128 * 1_000_000_000 / self.rate as i128) as i64
    }

    /// The bytes of slot `k` (a stored unit is read and CRC-checked again into `buf`).
    pub fn slot_bytes<'a>(&'a self, k: usize, buf: &'a mut Vec<u8>) -> io::Result<&'a [u8]> {
        match self.slots[k] {
            SILENT => Ok(&self.silent),
            i => {
                file::read_au(&self.scan, &self.scan.aus[i as usize], buf)?;
                Ok(buf)
            }
        }
    }

    pub fn slot_len(&self, k: usize) -> u32 {
        match self.slots[k] {
            SILENT => self.silent.len() as u32,
            i => u32::from(self.scan.aus[i as usize].len),
        }
    }
}

/// An access unit of silence for `rate` (from a fresh encoder fed zeros).
fn silent_au(rate: u32) -> Option<Vec<u8>> {
    let mut enc = Aac::new(rate, crate::audio::bench::bitrate_for(rate)).ok()?;
    let zeros = [0i16; FRAME];
    let mut out = [0u8; MAX_AU];
    let mut last = None;
    for _ in 0..4 {
        if let Ok(n) = enc.encode(&zeros, &mut out)
            && n > 0
        {
            last = Some(out[..n].to_vec());
        }
    }
    last
}

/// The sound for frames shown from `first_utc` to `end_utc` (UTC ns), or `None` when nothing
/// was recorded then.
pub fn plan(data_dir: &Path, first_utc: i64, end_utc: i64) -> Option<AudioPlan> {
    if end_utc <= first_utc {
        return None;
    }
    let mut scan = file::scan(data_dir, first_utc.saturating_sub(1_000_000_000), end_utc);
    if scan.bad > 0 {
        log::warn!("export: {} damaged audio record(s) skipped", scan.bad);
    }
    let first = scan.aus.first()?;
    let (rate, asc) = {
        let f = &scan.files[first.file].1;
        (f.rate, f.asc.to_vec())
    };
    let dur = FRAME as i64 * 1_000_000_000 / i64::from(rate);
    let same = |a: &file::Au| scan.files[a.file].1.rate == rate && scan.files[a.file].1.asc.as_slice() == asc.as_slice();
    let mut left_out = 0u64;
    let keep: Vec<u32> = (0..scan.aus.len() as u32)
        .filter(|&i| {
            let a = &scan.aus[i as usize];
            let inside = a.utc_ns + dur > first_utc && a.utc_ns < end_utc;
            if inside && !same(a) {
                left_out += 1;
            }
            inside && same(a)
        })
        .collect();
    let &k0 = keep.first()?;
    // Slots on the absolute grid (slot n starts n * 1024 samples after the epoch; capture puts
    // units on it, docs/FORMAT.md "Audio"): slot 0 is the one holding the first frame shown,
    // or the first unit's if that starts earlier.
    let slot_of = |t: i64| (i128::from(t) * i128::from(rate)).div_euclid(1_000_000_000 * FRAME as i128);
    let nearest = |t: i64| (i128::from(t) * i128::from(rate) * 2 + 1_000_000_000 * FRAME as i128).div_euclid(2_000_000_000 * FRAME as i128);
    let n0 = slot_of(first_utc).min(nearest(scan.aus[k0 as usize].utc_ns));
    let start_utc = (n0 * FRAME as i128 * 1_000_000_000 / i128::from(rate)) as i64;
    let mut slots: Vec<u32> = Vec::new();
    let mut placed = 0u64;
    for &i in &keep {
        let t = scan.aus[i as usize].utc_ns;
        let k = (nearest(t) - n0).max(0) as usize;
        if k < slots.len() {
            left_out += 1; // the slot is taken (a clock step or a restart overlapped)
            continue;
        }
        slots.resize(k, SILENT);
        slots.push(i);
        placed += 1;
    }
    let silent = silent_au(rate).or_else(|| {
        log::warn!("export: no AAC encoder for {rate} Hz; the export has no sound");
        None
    })?;
    let media_start = ((first_utc - start_utc).max(0) as i128 * rate as i128 / 1_000_000_000) as u64;
    // The scan's unit list stays whole (slots index it); drop what no slot uses? Not needed:
    // it is small (32 bytes a unit).
    scan.gaps.clear();
    Some(AudioPlan { scan, rate, asc, slots, silent, start_utc, media_start, placed, left_out })
}
