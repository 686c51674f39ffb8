//! The H.264 live ring: the recent access units (several GOPs) for `/api/live.mp4` viewers and
//! live snapshots.
//!
//! One writer (the recorder thread) and any number of readers (the web thread). The writer never
//! waits and allocates nothing: the bytes live in a preallocated ring of words written with
//! relaxed atomic stores, each frame's place in a fixed index, and readers check after copying
//! that nothing they read was overwritten meanwhile (a sequence lock, in safe Rust: every shared
//! word is an atomic). A reader that was too slow learns it ([`Ring::read`] returns `None`) and
//! skips to the next IDR; the writer never learns of readers at all.
//!
//! Samples are stored in AVCC form (4-byte big-endian NAL lengths, no SPS/PPS/AUD), ready for an
//! MP4 fragment; the parameter sets they need are kept apart ([`Ring::params`]) with a
//! generation number that every frame carries. A non-IDR frame is taken only when it directly
//! follows the previous frame taken (same chain, consecutive capture seq), so a reader that
//! starts at an IDR and reads consecutive frame numbers always holds a decodable stream.

use crate::camera::FrameMeta;
use crate::codec::h264::{self, ParamSets, NAL_AUD, NAL_PPS, NAL_SPS};
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Mutex;

/// Fewest and most frames the index holds ([`Ring::new`]).
pub const MIN_FRAMES: usize = 16;
pub const MAX_FRAMES: usize = 4096;

/// One frame's place in the ring, as a reader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveFrame {
    /// Frame number in the ring (1, 2, ...): consecutive numbers are consecutive pictures.
    pub number: u64,
    /// The recorder's capture seq.
    pub seq: u64,
    pub key: bool,
    pub mono_ns: u64,
    pub utc_ns: i64,
    /// Generation of the parameter sets this frame needs ([`Ring::params`]).
    pub params_gen: u64,
    /// Length of the AVCC sample.
    pub len: usize,
}

#[derive(Default)]
struct Entry {
    /// The frame number once the entry is complete; 0 while it is being written.
    stamp: AtomicU64,
    off: AtomicU64,
    len: AtomicU64,
    seq: AtomicU64,
    mono_ns: AtomicU64,
    utc_ns: AtomicU64,
    /// Bit 0: IDR; the rest: the parameter-set generation.
    info: AtomicU64,
}

/// What only the writer touches (behind a mutex nobody else locks, so `try_lock` never fails
/// unless two threads publish at once, which the recorder doesn't).
struct Writer {
    ps: ParamSets,
    /// Generation of `ps`, and the one readers can see in `Ring::params`.
    generation: u64,
    shown_generation: u64,
    /// Byte position (since the start) where the next frame goes; a multiple of 8.
    head: u64,
    /// Number of the last frame written (0: none).
    number: u64,
    /// Capture seq of the last frame written, while the chain is unbroken.
    chain: Option<u64>,
}

pub struct Ring {
    words: Box<[AtomicU64]>,
    entries: Box<[Entry]>,
    /// End (byte position) of the newest reservation: bytes before `reserved - capacity` are
    /// gone.
    reserved: AtomicU64,
    latest: AtomicU64,
    latest_key: AtomicU64,
    writer: Mutex<Writer>,
    params: Mutex<(u64, ParamSets)>,
    /// Frames not taken: too large, unreadable, or cut off from their IDR.
    skipped: AtomicU64,
}

impl Ring {
    /// A ring of `bytes` (rounded up to 8) and at most `frames` frames: a viewer further behind
    /// than either skips ahead. Frames of more than a quarter of `bytes` are not taken.
    pub fn new(bytes: usize, frames: usize) -> Ring {
        let words = bytes.div_ceil(8).max(64);
        let frames = frames.clamp(MIN_FRAMES, MAX_FRAMES);
        Ring {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            entries: (0..frames).map(|_| Entry::default()).collect(),
            reserved: AtomicU64::new(0),
            latest: AtomicU64::new(0),
            latest_key: AtomicU64::new(0),
            writer: Mutex::new(Writer { ps: ParamSets::default(), generation: 0, shown_generation: 0, head: 0, number: 0, chain: None }),
            params: Mutex::new((0, ParamSets::default())),
            skipped: AtomicU64::new(0),
        }
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.words.len() as u64 * 8
    }

    /// Largest sample taken, in bytes (a reader's buffer of this size holds any frame).
    pub fn max_frame(&self) -> usize {
        self.words.len() * 8 / 4
    }

    /// Frames not taken (too large, unreadable, or cut off from their IDR).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Takes one Annex-B access unit. Never blocks; false when it was not taken. Call with
    /// every frame the recorder keeps, or [`Ring::interrupt`] for one it doesn't.
    pub fn publish(&self, seq: u64, meta: &FrameMeta, au: &[u8]) -> bool {
        let Ok(mut w) = self.writer.try_lock() else {
            return self.skip();
        };
        let w = &mut *w;
        let info = match h264::inspect(au, &mut w.ps) {
            Ok(i) => i,
            Err(_) => {
                w.chain = None;
                return self.skip();
            }
        };
        if info.params_changed {
            w.generation += 1;
        }
        if w.shown_generation != w.generation {
            // New parameter sets: readers must see them before the first frame that needs them.
            match self.params.try_lock() {
                Ok(mut p) => {
                    *p = (w.generation, w.ps);
                    w.shown_generation = w.generation;
                }
                Err(_) => {
                    w.chain = None;
                    return self.skip();
                }
            }
        }
        let key = info.idr;
        if !key && w.chain.is_none_or(|s| s.wrapping_add(1) != seq) {
            w.chain = None;
            return self.skip();
        }
        if !w.ps.complete() {
            w.chain = None;
            return self.skip();
        }
        let keep = |n: &&[u8]| !matches!(h264::nal_type(n), NAL_SPS | NAL_PPS | NAL_AUD);
        let len: usize = h264::nal_units(au).filter(keep).map(|n| 4 + n.len()).sum();
        if len == 0 || len > self.max_frame() {
            w.chain = None;
            return self.skip();
        }
        let number = w.number + 1;
        let start = w.head;
        let end = start + len as u64;
        let end8 = end.next_multiple_of(8);
        let e = &self.entries[(number % self.entries.len() as u64) as usize];
        // Sequence lock: mark the entry and the bytes as being rewritten before touching them.
        e.stamp.store(0, Ordering::Relaxed);
        self.reserved.store(end8, Ordering::Relaxed);
        fence(Ordering::Release);
        let mut p = Packer { words: &self.words, pos: (start / 8) as usize, buf: [0; 8], n: 0 };
        for nal in h264::nal_units(au).filter(keep) {
            p.push(&(nal.len() as u32).to_be_bytes());
            p.push(nal);
        }
        p.finish();
        e.off.store(start, Ordering::Relaxed);
        e.len.store(len as u64, Ordering::Relaxed);
        e.seq.store(seq, Ordering::Relaxed);
        e.mono_ns.store(meta.mono_ns, Ordering::Relaxed);
        e.utc_ns.store(meta.utc_ns as u64, Ordering::Relaxed);
        e.info.store(u64::from(key) | (w.generation << 1), Ordering::Relaxed);
        e.stamp.store(number, Ordering::Release);
        w.head = end8;
        w.number = number;
        w.chain = Some(seq);
        if key {
            self.latest_key.store(number, Ordering::Release);
        }
        self.latest.store(number, Ordering::Release);
        true
    }

    /// A frame the recorder kept was not offered (nobody wanted it): the next one taken must be
    /// an IDR. Never blocks.
    pub fn interrupt(&self) {
        if let Ok(mut w) = self.writer.try_lock() {
            w.chain = None;
        }
    }

    fn skip(&self) -> bool {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Number of the newest frame (0: none yet).
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Number of the newest IDR (0: none yet).
    pub fn latest_key(&self) -> u64 {
        self.latest_key.load(Ordering::Acquire)
    }

    /// The newest parameter sets and their generation (frames carry the one they need).
    pub fn params(&self) -> (u64, ParamSets) {
        *self.params.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frame `number`'s description, if it is still in the ring.
    pub fn entry(&self, number: u64) -> Option<LiveFrame> {
        self.load(number).map(|(f, _)| f)
    }

    /// Frame `number`'s description and byte offset, read under the entry's sequence lock.
    fn load(&self, number: u64) -> Option<(LiveFrame, u64)> {
        if number == 0 {
            return None;
        }
        let e = &self.entries[(number % self.entries.len() as u64) as usize];
        if e.stamp.load(Ordering::Acquire) != number {
            return None;
        }
        let (off, len, seq) = (e.off.load(Ordering::Relaxed), e.len.load(Ordering::Relaxed), e.seq.load(Ordering::Relaxed));
        let (mono_ns, utc_ns, info) = (e.mono_ns.load(Ordering::Relaxed), e.utc_ns.load(Ordering::Relaxed), e.info.load(Ordering::Relaxed));
        fence(Ordering::Acquire);
        if e.stamp.load(Ordering::Relaxed) != number || self.gone(off) {
            return None;
        }
        let f = LiveFrame { number, seq, key: info & 1 != 0, mono_ns, utc_ns: utc_ns as i64, params_gen: info >> 1, len: len as usize };
        Some((f, off))
    }

    /// True when bytes at `off` may have been overwritten.
    fn gone(&self, off: u64) -> bool {
        self.reserved.load(Ordering::Relaxed) > off + self.capacity()
    }

    /// Copies frame `number`'s AVCC sample into `out` (which must hold [`Ring::max_frame`]
    /// bytes to be sure; it is never grown). `None`: the frame is gone (overwritten: the reader
    /// was too slow), not written yet, or larger than `out`.
    pub fn read(&self, number: u64, out: &mut Vec<u8>) -> Option<LiveFrame> {
        let (f, off) = self.load(number)?;
        out.clear();
        if f.len > out.capacity() {
            return None;
        }
        let n = self.words.len();
        let mut pos = (off / 8) as usize;
        let mut left = f.len;
        while left > 0 {
            let w = self.words[pos % n].load(Ordering::Relaxed).to_ne_bytes();
            let k = left.min(8);
            out.extend_from_slice(&w[..k]);
            left -= k;
            pos += 1;
        }
        fence(Ordering::Acquire);
        if self.gone(off) {
            out.clear();
            return None;
        }
        Some(f)
    }

    /// The oldest IDR after frame `number` still in the ring.
    pub fn next_key_after(&self, number: u64) -> Option<u64> {
        let latest = self.latest();
        let from = (number + 1).max(latest.saturating_sub(self.entries.len() as u64 - 1));
        (from..=latest).find(|&n| self.entry(n).is_some_and(|f| f.key))
    }
}

/// Packs bytes into the ring's words (8 at a time; the last word of a frame zero-padded).
struct Packer<'a> {
    words: &'a [AtomicU64],
    pos: usize,
    buf: [u8; 8],
    n: usize,
}

impl Packer<'_> {
    fn store(&mut self, w: u64) {
        self.words[self.pos % self.words.len()].store(w, Ordering::Relaxed);
        self.pos += 1;
    }

    fn push(&mut self, mut b: &[u8]) {
        if self.n > 0 {
            let k = (8 - self.n).min(b.len());
            self.buf[self.n..self.n + k].copy_from_slice(&b[..k]);
            self.n += k;
            b = &b[k..];
            if self.n < 8 {
                return;
            }
            self.n = 0;
            self.store(u64::from_ne_bytes(self.buf));
        }
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.store(u64::from_ne_bytes(w));
        }
        let r = chunks.remainder();
        self.buf[..r.len()].copy_from_slice(r);
        self.n = r.len();
    }

    fn finish(&mut self) {
        if self.n > 0 {
            self.buf[self.n..].fill(0);
            self.n = 0;
            self.store(u64::from_ne_bytes(self.buf));
        }
    }
}

#[cfg(test)]
mod tests;
