//! The latest-frame slot that live viewers read. The recorder publishes every frame into it
//! without waiting and without allocating: two preallocated buffers, the writer fills the one
//! readers are not pointed at; if a slow reader still holds it, that frame is skipped for
//! live view (never for the store).
//!
//! Copying every frame costs memory bandwidth a Pi Zero does not have to spare, so the slot is
//! filled only while someone wants it: a viewer calls [`LiveSlot::want`] (again at least every
//! few seconds while it watches) and frames are copied until that interest expires.
//!
//! H.264 frames go to a second place instead, the [`Ring`] of recent access units (several
//! GOPs), made the first time an H.264 viewer asks for it ([`LiveSlot::h264_ring`]): a viewer
//! of an inter-coded stream needs every picture from an IDR on, not just the newest one.

mod ring;

pub use ring::{LiveFrame, Ring};

use crate::camera::{Codec, FrameMeta};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

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
    /// Frames are copied in while their monotonic capture time is before this.
    wanted_until_ns: AtomicU64,
    capacity: AtomicUsize,
    /// Bumped (eventfd counter +1) after each published frame so a reader can sleep in its
    /// event loop instead of polling. Non-blocking: the writer never waits on it.
    notify: Option<OwnedFd>,
    /// Codec of the last frame offered (0: none yet; else `Codec as u8`).
    codec: AtomicU8,
    /// The H.264 ring, made by the first H.264 viewer.
    h264: OnceLock<Ring>,
}

/// Frames of the H.264 ring: four GOPs at `fps` (at 30 fps with an IDR a second, 4 s: a
/// viewer further behind skips ahead to the next IDR).
pub fn ring_frames(fps: u32, keyframe_interval_s: u32) -> usize {
    fps.max(1) as usize * keyframe_interval_s.max(1) as usize * 4
}

/// Bytes of the H.264 ring for a stream of `bitrate_kbps` with an IDR every
/// `keyframe_interval_s`: three GOPs, doubled for the encoder's rate swings, at least 4 MiB
/// and at most 64 MiB.
pub fn ring_bytes(bitrate_kbps: u32, keyframe_interval_s: u32) -> usize {
    let gop = u64::from(bitrate_kbps) * 125 * u64::from(keyframe_interval_s.max(1));
    (gop * 3 * 2).clamp(4 << 20, 64 << 20) as usize
}

/// How long one call to `want` keeps frames flowing into the slot.
pub const WANT_NS: u64 = 5_000_000_000;

impl LiveSlot {
    /// A slot for frames of at most `capacity` bytes (larger ones are not shown live).
    pub fn new(capacity: usize) -> LiveSlot {
        let buf = || Mutex::new(Buf { seq: 0, meta: None, data: Vec::with_capacity(capacity) });
        LiveSlot {
            bufs: [buf(), buf()],
            latest: AtomicUsize::new(0),
            latest_seq: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            wanted_until_ns: AtomicU64::new(0),
            capacity: AtomicUsize::new(capacity),
            notify: rustix::event::eventfd(0, rustix::event::EventfdFlags::NONBLOCK | rustix::event::EventfdFlags::CLOEXEC)
                .map_err(|e| log::warn!("live: no eventfd ({e}); live viewers poll instead"))
                .ok(),
            codec: AtomicU8::new(0),
            h264: OnceLock::new(),
        }
    }

    /// The H.264 ring, made with `bytes` and `frames` (see [`ring_bytes`], [`ring_frames`])
    /// the first time it is asked for (on the web thread: the recorder only ever uses it once
    /// it exists).
    pub fn h264_ring(&self, bytes: usize, frames: usize) -> &Ring {
        self.h264.get_or_init(|| Ring::new(bytes, frames))
    }

    /// The H.264 ring, if a viewer made it.
    pub fn ring(&self) -> Option<&Ring> {
        self.h264.get()
    }

    /// Codec of the frames the recorder offered last (`None` before the first).
    pub fn codec(&self) -> Option<Codec> {
        Codec::from_u8(self.codec.load(Ordering::Relaxed))
    }

    /// Makes room for frames of `capacity` bytes (after a camera with larger frames was
    /// opened; between recording runs, never per frame).
    pub fn ensure_capacity(&self, capacity: usize) {
        if capacity <= self.capacity.load(Ordering::Acquire) {
            return;
        }
        for b in &self.bufs {
            let mut b = b.lock().unwrap_or_else(|p| p.into_inner());
            let len = b.data.len();
            b.data.reserve(capacity - len);
        }
        self.capacity.store(capacity, Ordering::Release);
    }

    /// Largest frame shown live, in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// The eventfd that becomes readable after a frame was published (see [`LiveSlot::new`]);
    /// the reader drains it. `None` when the system had no eventfd to give.
    pub fn notify_fd(&self) -> Option<BorrowedFd<'_>> {
        self.notify.as_ref().map(|f| f.as_fd())
    }

    /// Asks for frames for the next few seconds (from monotonic time `now_mono_ns`).
    pub fn want(&self, now_mono_ns: u64) {
        self.wanted_until_ns.fetch_max(now_mono_ns.saturating_add(WANT_NS), Ordering::AcqRel);
    }

    /// Publishes a frame if anyone wants it. Never blocks; returns false when it was skipped.
    pub fn publish(&self, seq: u64, meta: &FrameMeta, data: &[u8]) -> bool {
        if self.codec.load(Ordering::Relaxed) != meta.codec as u8 {
            self.codec.store(meta.codec as u8, Ordering::Relaxed);
        }
        let wanted = meta.mono_ns < self.wanted_until_ns.load(Ordering::Acquire);
        if meta.codec == Codec::Fwht {
            // The rig's test codec: no browser plays it; there is no live view of it.
            return false;
        }
        if meta.codec == Codec::H264 {
            let Some(ring) = self.h264.get() else { return false };
            if !wanted {
                ring.interrupt();
                return false;
            }
            if !ring.publish(seq, meta, data) {
                return false;
            }
            self.latest_seq.store(seq, Ordering::Release);
            self.wake();
            return true;
        }
        if !wanted {
            return false;
        }
        let target = match self.latest.load(Ordering::Acquire) {
            0 | 2 => 0,
            _ => 1,
        };
        if data.len() > self.capacity.load(Ordering::Relaxed) {
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
        self.wake();
        true
    }

    fn wake(&self) {
        if let Some(fd) = &self.notify {
            // EAGAIN (counter full) is harmless: the reader is awake already.
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::Codec;

    fn meta(mono_ns: u64) -> FrameMeta {
        FrameMeta { mono_ns, utc_ns: 0, codec: Codec::Jpeg, key: true, lost_before: 0 }
    }

    #[test]
    fn frames_flow_only_while_wanted_and_readers_get_the_newest() {
        let slot = LiveSlot::new(16);
        let mut out = Vec::new();
        assert!(!slot.publish(1, &meta(10), b"one"), "nobody asked");
        assert!(slot.read_latest(&mut out).is_none());
        slot.want(100);
        assert!(slot.publish(2, &meta(200), b"two"));
        assert!(slot.publish(3, &meta(300), b"three"));
        assert_eq!(slot.read_latest(&mut out).map(|(s, _)| s), Some(3));
        assert_eq!(out, b"three");
        assert!(!slot.publish(4, &meta(100 + WANT_NS), b"four"), "interest expired");
        assert!(!slot.publish(5, &meta(200), &[0u8; 17]), "larger than the slot");
        assert_eq!(slot.latest_seq(), 3);
    }

    #[test]
    fn a_reader_holding_a_buffer_never_blocks_the_writer() {
        let slot = LiveSlot::new(16);
        slot.want(0);
        assert!(slot.publish(1, &meta(1), b"a"));
        let held = slot.bufs[0].lock().unwrap();
        assert!(slot.publish(2, &meta(2), b"b"), "the other buffer is free");
        assert!(!slot.publish(3, &meta(3), b"c"), "buffer 0 is held: skip, don't wait");
        drop(held);
        assert!(slot.publish(4, &meta(4), b"d"));
        let mut out = Vec::new();
        assert_eq!(slot.read_latest(&mut out).map(|(s, _)| s), Some(4));
    }
}
