//! The newest access units for live viewers (`/api/live.mp4`'s audio track): a fixed ring the
//! capture thread writes without ever waiting (`try_lock`: a unit the web side holds the lock
//! over is not published, and counted), and the web side reads by sequence number.

use super::aac::MAX_AU;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const SLOTS: usize = 64;

#[derive(Clone, Copy)]
struct Slot {
    seq: u64,
    mono_ns: u64,
    utc_ns: i64,
    len: u16,
    data: [u8; MAX_AU],
}

struct Ring {
    /// Units published so far: the next unit's sequence number is `published + 1` (a slot
    /// with seq 0 is empty). Everything starts at zero, so the ring lives in .bss, not in the
    /// binary's data (its 51 KB would count against the 5 MiB budget).
    published: u64,
    rate: u32,
    asc: heapless::Vec<u8, 16>,
    slots: [Slot; SLOTS],
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    published: 0,
    rate: 0,
    asc: heapless::Vec::new(),
    slots: [Slot { seq: 0, mono_ns: 0, utc_ns: 0, len: 0, data: [0; MAX_AU] }; SLOTS],
});
static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// A unit read for a viewer.
#[derive(Clone, Copy, Debug)]
pub struct Unit {
    pub seq: u64,
    pub mono_ns: u64,
    pub utc_ns: i64,
    pub len: usize,
}

/// Publishes one access unit (capture thread). A new format (another microphone) empties the
/// ring first.
pub fn publish(rate: u32, asc: &[u8], mono_ns: u64, utc_ns: i64, au: &[u8]) {
    let Ok(mut r) = RING.try_lock() else {
        SKIPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if r.rate != rate || r.asc.as_slice() != asc {
        r.rate = rate;
        r.asc = heapless::Vec::from_slice(asc).unwrap_or_default();
        for s in r.slots.iter_mut() {
            s.seq = 0;
        }
    }
    r.published += 1;
    let seq = r.published;
    let s = &mut r.slots[(seq % SLOTS as u64) as usize];
    let n = au.len().min(MAX_AU);
    s.seq = seq;
    s.mono_ns = mono_ns;
    s.utc_ns = utc_ns;
    s.len = n as u16;
    s.data[..n].copy_from_slice(&au[..n]);
}

/// The format of the units in the ring (rate, AudioSpecificConfig), if any was published.
pub fn format() -> Option<(u32, heapless::Vec<u8, 16>)> {
    let r = RING.lock().unwrap_or_else(|p| p.into_inner());
    (r.rate > 0).then(|| (r.rate, r.asc.clone()))
}

/// The sequence number the next unit will get.
pub fn next_seq() -> u64 {
    RING.lock().unwrap_or_else(|p| p.into_inner()).published + 1
}

/// The oldest unit still in the ring with a sequence number at least `from` (copied into
/// `out`), or `None` when there is none yet.
pub fn read(from: u64, out: &mut [u8; MAX_AU]) -> Option<Unit> {
    let r = RING.lock().unwrap_or_else(|p| p.into_inner());
    let next = r.published + 1;
    let first = next.saturating_sub(SLOTS as u64).max(from).max(1);
    (first..next).find_map(|seq| {
        let s = &r.slots[(seq % SLOTS as u64) as usize];
        (s.seq == seq).then(|| {
            out[..s.len as usize].copy_from_slice(&s.data[..s.len as usize]);
            Unit { seq, mono_ns: s.mono_ns, utc_ns: s.utc_ns, len: s.len as usize }
        })
    })
}
