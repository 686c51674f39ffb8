//! The latest-frame slot that live viewers read. The recorder publishes every frame into it
//! without waiting and without allocating: two preallocated buffers, the writer fills the one
//! readers are not pointed at; if a slow reader still holds it, that frame is skipped for
//! live view (never for the store).

use crate::camera::FrameMeta;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

struct Buf {
    seq: u64,
    meta: Option<FrameMeta>,
    data: Vec<u8>,
}

pub struct LiveSlot {
    bufs: [Mutex<Buf>; 2],
    /// Index of the buffer holding the newest frame, plus one (0: none yet).
    latest: AtomicUsize,
    latest_seq: AtomicU64,
    skipped: AtomicU64,
    capacity: usize,
}

impl LiveSlot {
    /// A slot for frames of at most `capacity` bytes (larger ones are not shown live).
    pub fn new(capacity: usize) -> LiveSlot {
        let buf = || Mutex::new(Buf { seq: 0, meta: None, data: Vec::with_capacity(capacity) });
        LiveSlot {
            bufs: [buf(), buf()],
            latest: AtomicUsize::new(0),
            latest_seq: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            capacity,
        }
    }

    /// Publishes a frame. Never blocks; returns false when it was skipped.
    pub fn publish(&self, seq: u64, meta: &FrameMeta, data: &[u8]) -> bool {
        let target = match self.latest.load(Ordering::Acquire) {
            0 | 2 => 0,
            _ => 1,
        };
        if data.len() > self.capacity {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let Ok(mut b) = self.bufs[target].try_lock() else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        b.data.clear();
        b.data.extend_from_slice(data);
        b.seq = seq;
        b.meta = Some(*meta);
        drop(b);
        self.latest.store(target + 1, Ordering::Release);
        self.latest_seq.store(seq, Ordering::Release);
        true
    }

    /// Copies the newest frame into `out`; returns its seq and metadata.
    pub fn read_latest(&self, out: &mut Vec<u8>) -> Option<(u64, FrameMeta)> {
        let i = self.latest.load(Ordering::Acquire).checked_sub(1)?;
        let b = self.bufs[i].lock().unwrap_or_else(|p| p.into_inner());
        let meta = b.meta?;
        out.clear();
        out.extend_from_slice(&b.data);
        Some((b.seq, meta))
    }

    /// Seq of the newest published frame (0: none yet); cheap to poll.
    pub fn latest_seq(&self) -> u64 {
        self.latest_seq.load(Ordering::Acquire)
    }

    /// Frames not shown live (too large, or a reader held the buffer).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}
