//! Live view: `GET /api/live.mjpeg` (multipart/x-mixed-replace) and `GET /api/snapshot.jpg`.
//!
//! The recorder publishes frames into the [`LiveSlot`] and bumps its eventfd; one task on the
//! web thread ([`Hub::run_notify`]) drains the eventfd and wakes the streaming workers, each of
//! which copies the *newest* frame out of the slot into its own buffer and writes it. A slow
//! client therefore skips to the newest frame: there is no queue at all. Per stream the memory
//! is one frame buffer, taken from a pool (allocated once, the first time that many clients
//! watch at once, then reused); nothing is allocated per frame on this path.

use crate::live::LiveSlot;
use core::fmt::Write as _;
use picoserve::io::Write;
use picoserve::response::custom::{CustomBody, CustomResponse};
use picoserve::response::StatusCode;
use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};


/// Most streams that can wait for frames at once (one per worker at most).
pub const WAITERS: usize = 128;
/// The multipart boundary (without the leading dashes).
pub const BOUNDARY: &str = "blackboxframe";
/// The stream's content type (names [`BOUNDARY`]).
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=blackboxframe";
/// A stream skips frames captured longer ago than this before it started (stale slot contents).
const STALE_NS: u64 = 1_000_000_000;

pub struct Hub<'a> {
    pub slot: &'a LiveSlot,
    /// Bumped on every published frame and once a second.
    generation: Cell<u64>,
    wakers: RefCell<[Option<Waker>; WAITERS]>,
    used: Cell<u128>,
    clients: Cell<u32>,
    pool: RefCell<Vec<Vec<u8>>>,
}

impl<'a> Hub<'a> {
    pub fn new(slot: &'a LiveSlot) -> Hub<'a> {
        Hub {
            slot,
            generation: Cell::new(0),
            wakers: RefCell::new([const { None }; WAITERS]),
            used: Cell::new(0),
            clients: Cell::new(0),
            pool: RefCell::new(Vec::new()),
        }
    }

    /// Live streams open now.
    pub fn clients(&self) -> u32 {
        self.clients.get()
    }

    /// Wakes every waiting stream (a new frame, or the once-a-second tick).
    pub fn bump(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let mut w = self.wakers.borrow_mut();
        for slot in w.iter_mut() {
            if let Some(k) = slot.take() {
                k.wake();
            }
        }
    }

    /// Drains the slot's eventfd forever, waking the streams after each frame. Without an
    /// eventfd, polls the slot's sequence number every 10 ms instead.
    pub async fn run_notify(&self) {
        let fd = self.slot.notify_fd().and_then(|fd| fd.try_clone_to_owned().ok());
        match fd.map(smol::Async::new) {
            Some(Ok(afd)) => loop {
                let mut b = [0u8; 8];
                match afd.read_with(|fd| rustix::io::read(fd, &mut b).map_err(std::io::Error::from)).await {
                    Ok(_) => self.bump(),
                    Err(e) => {
                        log::warn!("live: eventfd read failed: {e}; polling instead");
                        break;
                    }
                }
            },
            Some(Err(e)) => log::warn!("live: eventfd not usable ({e}); polling instead"),
            None => {}
        }
        let mut seen = self.slot.latest_seq();
        loop {
            smol::Timer::after(std::time::Duration::from_millis(10)).await;
            let s = self.slot.latest_seq();
            if s != seen {
                seen = s;
                self.bump();
            }
        }
    }

    /// Takes a stream slot, or `None` when `max` streams are open already.
    pub fn join(&self, max: u32) -> Option<Viewer<'_, 'a>> {
        if self.clients.get() >= max {
            return None;
        }
        let used = self.used.get();
        let idx = (!used).trailing_zeros() as usize;
        if idx >= WAITERS {
            return None;
        }
        self.used.set(used | (1u128 << idx));
        self.clients.set(self.clients.get() + 1);
        let buf = self.pool.borrow_mut().pop().unwrap_or_else(|| Vec::with_capacity(self.slot.capacity()));
        Some(Viewer { hub: self, idx, buf })
    }

    /// Resolves after the next [`Hub::bump`] following generation `since`.
    async fn changed(&self, idx: usize, since: u64) {
        std::future::poll_fn(|cx| {
            if self.generation.get() != since {
                return Poll::Ready(());
            }
            let mut w = self.wakers.borrow_mut();
            match &w[idx] {
                Some(k) if k.will_wake(cx.waker()) => {}
                _ => w[idx] = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

/// One live stream's place at the hub: its waker slot and its frame buffer.
pub struct Viewer<'h, 'a> {
    hub: &'h Hub<'a>,
    idx: usize,
    buf: Vec<u8>,
}

impl Drop for Viewer<'_, '_> {
    fn drop(&mut self) {
        let h = self.hub;
        h.wakers.borrow_mut()[self.idx] = None;
        h.used.set(h.used.get() & !(1u128 << self.idx));
        h.clients.set(h.clients.get() - 1);
        h.pool.borrow_mut().push(std::mem::take(&mut self.buf));
    }
}

/// `X-Timestamp`: Unix seconds with microseconds.
pub struct Timestamp(pub i64);

impl core::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let us = self.0.div_euclid(1000);
        write!(f, "{}.{:06}", us.div_euclid(1_000_000), us.rem_euclid(1_000_000))
    }
}

/// The body of `/api/live.mjpeg`: a part per frame, forever (until the client leaves).
pub struct Mjpeg<'h, 'a> {
    pub viewer: Viewer<'h, 'a>,
}

impl CustomBody for Mjpeg<'_, '_> {
    async fn write_response_body<W: Write>(mut self, mut w: W) -> Result<(), W::Error> {
        let hub = self.viewer.hub;
        let started = crate::clock::now_mono_ns();
        let mut seen = 0u64;
        loop {
            let generation = hub.generation.get();
            hub.slot.want(crate::clock::now_mono_ns());
            if hub.slot.latest_seq() != seen
                && let Some((seq, meta)) = hub.slot.read_latest(&mut self.viewer.buf)
                && seq != seen
            {
                seen = seq;
                if meta.mono_ns.saturating_add(STALE_NS) >= started {
                    let mut head = heapless::String::<192>::new();
                    let _ = write!(
                        head,
                        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: {}\r\nX-Seq: {seq}\r\n\r\n",
                        self.viewer.buf.len(),
                        Timestamp(meta.utc_ns)
                    );
                    w.write_all(head.as_bytes()).await?;
                    w.write_all(&self.viewer.buf).await?;
                    w.write_all(b"\r\n").await?;
                    w.flush().await?;
                    continue;
                }
            }
            hub.changed(self.viewer.idx, generation).await;
        }
    }
}

/// The response of `/api/live.mjpeg` for a viewer that got a slot.
pub fn mjpeg_response<'h, 'a>(viewer: Viewer<'h, 'a>) -> impl picoserve::response::IntoResponse + use<'h, 'a> {
    CustomResponse::build(StatusCode::OK)
        .with_header("Content-Type", CONTENT_TYPE)
        .with_header("Cache-Control", "no-store")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_body(Mjpeg { viewer })
}

/// Waits up to `timeout` for a frame captured after the call (asking the recorder for
/// frames meanwhile); returns its seq, capture time (UTC ns) and bytes.
pub async fn snapshot(slot: &LiveSlot, timeout: std::time::Duration) -> Option<(u64, i64, Vec<u8>)> {
    let start = crate::clock::now_mono_ns();
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = Vec::new();
    loop {
        slot.want(crate::clock::now_mono_ns());
        if let Some((seq, meta)) = slot.read_latest(&mut buf)
            && meta.mono_ns.saturating_add(STALE_NS / 2) >= start
        {
            return Some((seq, meta.utc_ns, buf));
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        smol::Timer::after(std::time::Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_microseconds() {
        assert_eq!(Timestamp(1_763_726_400_123_456_789).to_string(), "1763726400.123456");
        assert_eq!(Timestamp(5_000).to_string(), "0.000005");
    }

    #[test]
    fn the_hub_limits_viewers_and_reuses_their_buffers() {
        let slot = LiveSlot::new(16);
        let hub = Hub::new(&slot);
        let a = hub.join(2).unwrap();
        let b = hub.join(2).unwrap();
        assert!(hub.join(2).is_none(), "a third viewer is refused");
        assert_eq!(hub.clients(), 2);
        assert_ne!(a.idx, b.idx);
        drop(a);
        assert_eq!(hub.clients(), 1);
        let c = hub.join(2).unwrap();
        assert_eq!(hub.pool.borrow().len(), 0, "the freed buffer was reused");
        drop((b, c));
        assert_eq!((hub.clients(), hub.used.get()), (0, 0));
    }
}
