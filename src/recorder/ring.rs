//! The frame ring between the capture thread and the store thread: a fixed byte buffer and a
//! fixed table of slots, allocated once, single producer, single consumer.
//!
//! The capture thread copies each frame in (one `memcpy`, no allocation) and goes straight
//! back to the camera; the store thread writes frames out in order, commits and rotates,
//! however long the card takes. When the card is slower than the camera for longer than the
//! ring holds, [`Producer::push`] refuses the frame and the capture thread counts it as
//! dropped (backpressure): memory stays bounded and nothing is lost silently.
//!
//! Bytes are handed out contiguously: a frame that doesn't fit before the end of the buffer
//! starts at its beginning, and the skipped tail counts as used until that frame is released.

use crate::camera::FrameMeta;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

/// Why frames were lost right before a frame in the ring (gap markers carry it; see
/// docs/FORMAT.md, "gap").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Cause {
    /// The camera delivered nothing (stall, unplug, reopen) or recording was stopped.
    #[default]
    Camera = 1,
    /// The V4L2 driver dropped frames (its sequence numbers jumped).
    Driver = 2,
    /// A built-in or `file:` camera's frames were due while all its buffers were full.
    Deadline = 3,
    /// The encoder failed on a frame.
    Encoder = 4,
    /// The ring was full: the card was slower than the camera for too long.
    Backpressure = 5,
    /// The store could not write the frame (I/O error, no space).
    Store = 6,
    /// Recording was stopped or restarted.
    Stopped = 7,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Camera => "camera",
            Cause::Driver => "driver",
            Cause::Deadline => "deadline",
            Cause::Encoder => "encoder",
            Cause::Backpressure => "backpressure",
            Cause::Store => "store",
            Cause::Stopped => "stopped",
        }
    }

    pub fn from_u32(v: u32) -> Option<Cause> {
        Some(match v {
            1 => Cause::Camera,
            2 => Cause::Driver,
            3 => Cause::Deadline,
            4 => Cause::Encoder,
            5 => Cause::Backpressure,
            6 => Cause::Store,
            7 => Cause::Stopped,
            _ => return None,
        })
    }
}

/// One frame in the ring.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub meta: FrameMeta,
    /// The capture thread's frame number (the live view's sequence).
    pub capture_seq: u64,
    /// Frames lost (counted) between the previous frame in the ring and this one.
    pub lost_before: u64,
    /// Why, when `lost_before > 0`.
    pub cause: Cause,
    start: u64,
    len: usize,
    /// Byte position after this frame (and the tail it skipped): released with it.
    end: u64,
}

struct Shared {
    // SAFETY (of the `Sync` impl below): bytes `[released, head)` (mod len) belong to frames
    // published and not yet released, and only the consumer reads them; the rest only the
    // producer writes. Slots likewise: published-and-unreleased slots are read by the consumer
    // only, the others written by the producer only. The atomics' Release/Acquire pairs order
    // those accesses.
    bytes: Box<[UnsafeCell<u8>]>,
    slots: Box<[UnsafeCell<Option<Slot>>]>,
    /// Slots published so far (written by the producer).
    published: AtomicU64,
    /// Slots released so far (written by the consumer).
    released: AtomicU64,
    /// Byte position up to which the consumer released (written by the consumer).
    bytes_released: AtomicU64,
    /// The consumer is (about to be) parked waiting for a frame.
    waiting: AtomicBool,
    consumer: OnceLock<Thread>,
}

// SAFETY: see the comment on `Shared`: every cell is accessed by one side at a time, handed
// over through `published`/`released`/`bytes_released` with Release stores and Acquire loads.
unsafe impl Sync for Shared {}

/// The capture thread's end.
pub struct Producer {
    shared: Arc<Shared>,
    head: u64,
    published: u64,
}

/// The store thread's end.
pub struct Consumer {
    shared: Arc<Shared>,
    released: u64,
}

/// A ring of `bytes` bytes and `slots` frames (both at least 1).
pub fn ring(bytes: usize, slots: usize) -> (Producer, Consumer) {
    let shared = Arc::new(Shared {
        bytes: (0..bytes.max(1)).map(|_| UnsafeCell::new(0)).collect(),
        slots: (0..slots.max(1)).map(|_| UnsafeCell::new(None)).collect(),
        published: AtomicU64::new(0),
        released: AtomicU64::new(0),
        bytes_released: AtomicU64::new(0),
        waiting: AtomicBool::new(false),
        consumer: OnceLock::new(),
    });
    (Producer { shared: shared.clone(), head: 0, published: 0 }, Consumer { shared, released: 0 })
}

impl Slot {
    pub fn new(meta: FrameMeta, capture_seq: u64, lost_before: u64, cause: Cause) -> Slot {
        Slot { meta, capture_seq, lost_before, cause, start: 0, len: 0, end: 0 }
    }
}

impl Producer {
    /// Wakes the consumer if it is parked (to notice that capture ended).
    pub fn wake(&self) {
        if let Some(t) = self.shared.consumer.get() {
            t.unpark();
        }
    }

    /// Bytes the ring holds.
    pub fn capacity(&self) -> usize {
        self.shared.bytes.len()
    }

    /// Frames waiting for the store thread.
    pub fn queued(&self) -> u64 {
        self.published - self.shared.released.load(Ordering::Acquire)
    }

    /// Copies a frame in and wakes the consumer. `false` (nothing copied) when the ring has no
    /// room for it: the caller counts the frame as dropped. Never blocks, never allocates.
    pub fn push(&mut self, meta: &FrameMeta, data: &[u8], capture_seq: u64, lost_before: u64, cause: Cause) -> bool {
        let sh = &*self.shared;
        let cap = sh.bytes.len() as u64;
        let len = data.len() as u64;
        if len > cap || self.published - sh.released.load(Ordering::Acquire) >= sh.slots.len() as u64 {
            return false;
        }
        let pos = self.head % cap;
        let start = if pos + len > cap { self.head + (cap - pos) } else { self.head };
        let end = start + len;
        if end - sh.bytes_released.load(Ordering::Acquire) > cap {
            return false;
        }
        let at = (start % cap) as usize;
        let cells = &sh.bytes[at..at + data.len()];
        // SAFETY: `[start, end)` lies in bytes the consumer released (checked just above) and
        // is contiguous in the buffer (`at + len <= cap`); only this producer writes there until
        // the slot is published below. `UnsafeCell<u8>` has the layout of `u8`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), UnsafeCell::raw_get(cells.as_ptr()), data.len()) };
        let slot = Slot { meta: *meta, capture_seq, lost_before, cause, start, len: data.len(), end };
        let i = (self.published % sh.slots.len() as u64) as usize;
        // SAFETY: slot `i` is not published (fewer than `slots` are outstanding, checked above),
        // so the consumer doesn't read it; this producer is its only writer.
        unsafe { *sh.slots[i].get() = Some(slot) };
        self.published += 1;
        self.head = end;
        sh.published.store(self.published, Ordering::Release);
        if sh.waiting.load(Ordering::SeqCst)
            && let Some(t) = sh.consumer.get()
        {
            t.unpark();
        }
        true
    }
}

impl Consumer {
    /// Registers the calling thread as the one [`Consumer::wait`] parks.
    pub fn bind_thread(&self) {
        let _ = self.shared.consumer.set(std::thread::current());
    }

    /// Frames waiting.
    pub fn queued(&self) -> u64 {
        self.shared.published.load(Ordering::Acquire) - self.released
    }

    /// The oldest frame not yet released, borrowed until [`Consumer::release`].
    pub fn peek(&self) -> Option<(Slot, &[u8])> {
        let sh = &*self.shared;
        if self.released == sh.published.load(Ordering::Acquire) {
            return None;
        }
        let i = (self.released % sh.slots.len() as u64) as usize;
        // SAFETY: slot `i` is published (Acquire above) and not released: the producer doesn't
        // write it until `release` moves `released` past it.
        let slot = unsafe { (*sh.slots[i].get())? };
        let at = (slot.start % sh.bytes.len() as u64) as usize;
        let cells = &sh.bytes[at..at + slot.len];
        // SAFETY: these bytes belong to the published, unreleased frame (see `Shared`); the
        // producer doesn't touch them until `release`, which needs `&mut self` and so ends this
        // borrow first.
        let data = unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(cells.as_ptr()) as *const u8, slot.len) };
        Some((slot, data))
    }

    /// Gives the oldest frame's bytes and slot back to the producer.
    pub fn release(&mut self) {
        let sh = &*self.shared;
        if self.released == sh.published.load(Ordering::Acquire) {
            return;
        }
        let i = (self.released % sh.slots.len() as u64) as usize;
        // SAFETY: as in `peek`.
        let end = unsafe { (*sh.slots[i].get()).map_or(0, |s| s.end) };
        self.released += 1;
        sh.bytes_released.store(end, Ordering::Release);
        sh.released.store(self.released, Ordering::Release);
    }

    /// Parks the calling (bound) thread until a frame is published or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        let sh = &*self.shared;
        sh.waiting.store(true, Ordering::SeqCst);
        if self.released == sh.published.load(Ordering::SeqCst) {
            std::thread::park_timeout(timeout);
        }
        sh.waiting.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::Codec;

    fn meta(i: u64) -> FrameMeta {
        FrameMeta { mono_ns: i, utc_ns: i as i64, codec: Codec::Jpeg, key: true, lost_before: 0 }
    }

    #[test]
    fn frames_come_out_in_order_and_whole_across_the_wrap() {
        let (mut p, mut c) = ring(100, 8);
        let mut expect = std::collections::VecDeque::new();
        let mut n = 0u64;
        for round in 0..200u64 {
            let len = (round * 7 % 45) as usize;
            let data: Vec<u8> = (0..len).map(|k| (k as u64 + round) as u8).collect();
            if p.push(&meta(round), &data, round, 0, Cause::Camera) {
                expect.push_back((round, data));
                n += 1;
            }
            // Consume every other round, so the ring fills and wraps.
            if round % 2 == 1 {
                while let Some((s, d)) = c.peek() {
                    let (r, want) = expect.pop_front().unwrap();
                    assert_eq!((s.capture_seq, d), (r, &want[..]));
                    c.release();
                }
            }
        }
        assert!(n > 150, "most frames fit: {n}");
    }

    #[test]
    fn a_full_ring_refuses_and_frees_on_release() {
        let (mut p, mut c) = ring(64, 4);
        assert!(p.push(&meta(0), &[1; 40], 0, 0, Cause::Camera));
        assert!(!p.push(&meta(1), &[2; 40], 1, 0, Cause::Camera), "40 + 40 > 64");
        assert!(!p.push(&meta(1), &[2; 65], 1, 0, Cause::Camera), "larger than the ring");
        assert!(p.push(&meta(1), &[3; 24], 1, 0, Cause::Camera));
        c.release();
        // 24 bytes used at 40..64; a 40-byte frame starts at 0 (the tail is 0 bytes here).
        assert!(p.push(&meta(2), &[4; 40], 2, 3, Cause::Backpressure));
        let (s, d) = c.peek().unwrap();
        assert_eq!((s.capture_seq, d.len()), (1, 24));
        c.release();
        let (s, d) = c.peek().unwrap();
        assert_eq!((s.capture_seq, s.lost_before, s.cause, d), (2, 3, Cause::Backpressure, &[4u8; 40][..]));
        c.release();
        assert!(c.peek().is_none());
        // Slots bound the count too.
        for i in 0..4 {
            assert!(p.push(&meta(i), &[0; 1], i, 0, Cause::Camera));
        }
        assert!(!p.push(&meta(9), &[0; 1], 9, 0, Cause::Camera));
    }

    #[test]
    fn threads_hand_over_every_frame_intact() {
        let (mut p, mut c) = ring(4096, 16);
        let h = std::thread::spawn(move || {
            c.bind_thread();
            let mut got = 0u64;
            while got < 5000 {
                match c.peek() {
                    Some((s, d)) => {
                        assert_eq!(s.capture_seq, got);
                        assert!(d.iter().all(|&b| b == (got % 251) as u8));
                        c.release();
                        got += 1;
                    }
                    None => c.wait(Duration::from_millis(10)),
                }
            }
        });
        let mut i = 0u64;
        while i < 5000 {
            let data = vec![(i % 251) as u8; (i % 300) as usize];
            if p.push(&meta(i), &data, i, 0, Cause::Camera) {
                i += 1;
            } else {
                std::thread::yield_now();
            }
        }
        h.join().unwrap();
    }
}
