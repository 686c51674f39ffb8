//! Live view: `GET /api/live.mjpeg` (multipart/x-mixed-replace), `GET /api/live.mp4`
//! (fragmented MP4 of H.264 recordings, for Media Source Extensions) and `GET /api/snapshot.jpg`.
//!
//! The recorder publishes frames into the [`LiveSlot`] and bumps its eventfd; one task on the
//! web thread ([`Hub::run_notify`]) drains the eventfd and wakes the streaming workers, each of
//! which copies the *newest* frame out of the slot into its own buffer and writes it. A slow
//! client therefore skips to the newest frame: there is no queue at all. Per stream the memory
//! is one frame buffer, taken from a pool (allocated once, the first time that many clients
//! watch at once, then reused); nothing is allocated per frame on this path.
//!
//! `/api/live.mp4` reads the H.264 [`Ring`] instead: each viewer keeps its own position (a frame
//! number), starts at the newest IDR, and sends every frame from there on as one fragment. A
//! viewer whose next frame was overwritten (it was too slow) jumps to the next IDR still in the
//! ring; the recorder never learns of it. Its memory is the same pooled buffer, sized for the
//! ring's largest frame.

use super::fmp4::{self, Boxes, Fragment};
use crate::live::{LiveSlot, Ring};
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

/// A viewer waits for an IDR captured at most this long before it joined.
const LIVE_NS: u64 = 1_000_000_000;

/// The body of `/api/live.mp4`: the init segment, then a fragment per access unit, until the
/// client leaves or the stream's parameter sets change (the client then reconnects).
pub struct Mp4<'h, 'a> {
    pub viewer: Viewer<'h, 'a>,
    pub ring: &'a Ring,
}

impl Mp4<'_, '_> {
    /// Waits until the ring holds a current IDR; its number.
    async fn first_key(&self) -> u64 {
        let hub = self.viewer.hub;
        loop {
            let generation = hub.generation.get();
            let now = crate::clock::now_mono_ns();
            hub.slot.want(now);
            let k = self.ring.latest_key();
            if let (Some(key), Some(last)) = (self.ring.entry(k), self.ring.entry(self.ring.latest()))
                && last.mono_ns.saturating_add(LIVE_NS) >= now
                && key.params_gen == self.ring.params().0
            {
                return k;
            }
            hub.changed(self.viewer.idx, generation).await;
        }
    }
}

impl CustomBody for Mp4<'_, '_> {
    async fn write_response_body<W: Write>(mut self, mut w: W) -> Result<(), W::Error> {
        let hub = self.viewer.hub;
        let ring = self.ring;
        let max = ring.max_frame();
        if self.viewer.buf.capacity() < max {
            // Once per pooled buffer (the ring's largest frame), never per frame.
            self.viewer.buf.reserve_exact(max - self.viewer.buf.len());
        }
        let mut n = self.first_key().await;
        let (params_gen, ps) = ring.params();
        // Sound when the microphone is recording now (its format from the live units).
        let sound = (crate::audio::status().state == "recording").then(crate::audio::live::format).flatten();
        let mut init = [0u8; fmp4::INIT_MAX];
        let mut b = Boxes::new(&mut init);
        if !fmp4::init_segment(&ps, sound.as_ref().map(|(r, a)| (*r, a.as_slice())), &mut b) {
            log::warn!("live.mp4: the stream's parameter sets are unreadable");
            return Ok(());
        }
        if let Some(init) = b.done() {
            w.write_all(init).await?;
        }
        let mut head = [0u8; fmp4::FRAGMENT_HEAD];
        let mut sequence = 0u32;
        let mut decode_time = 0u64;
        let mut last: Option<(u64, u64, u64)> = None; // (number, seq, mono_ns) of the frame sent last
        let mut duration = fmp4::TIMESCALE / 30;
        let mut need_key = true;
        let mut skips = 0u64;
        // Sound: the next unit to send, its decode time (samples), and the first video frame's
        // capture time (units from before it are not sent).
        let mut a_seq = 0u64;
        let mut a_next: Option<u64> = None;
        let mut a_buf = [0u8; crate::audio::aac::MAX_AU];
        let mut first_mono: Option<u64> = None;
        loop {
            let generation = hub.generation.get();
            hub.slot.want(crate::clock::now_mono_ns());
            if n > ring.latest() {
                hub.changed(self.viewer.idx, generation).await;
                continue;
            }
            let Some(f) = ring.read(n, &mut self.viewer.buf).filter(|f| f.key || !need_key) else {
                // Overwritten before we got to it (too slow) or not a place to start: on to
                // the next IDR still in the ring, or wait for one.
                skips += 1;
                need_key = true;
                n = match ring.next_key_after(n) {
                    Some(k) => k,
                    None => ring.latest() + 1,
                };
                continue;
            };
            if f.params_gen != params_gen {
                log::info!("live.mp4: the stream changed (new parameter sets); ending this viewer's stream");
                return Ok(());
            }
            need_key = false;
            if let Some((prev_n, prev_seq, prev_mono)) = last {
                // The timeline has no holes for a player to stall in: each fragment starts where
                // the one before ended. A frame's duration is not known until the next one is
                // captured, so each takes the interval before it (exact at a steady rate); after
                // a skip, or across a gap in capture (frames the camera lost), the last one.
                decode_time += u64::from(duration);
                let ns = f.mono_ns.saturating_sub(prev_mono);
                if prev_n + 1 == f.number && prev_seq + 1 == f.seq {
                    duration = (ns.clamp(1_000_000, 1_000_000_000) * u64::from(fmp4::TIMESCALE) / 1_000_000_000) as u32;
                }
            }
            sequence = sequence.wrapping_add(1);
            let frag = Fragment { track: fmp4::TRACK, sequence, decode_time, duration, size: f.len as u32, key: f.key, utc_ns: f.utc_ns };
            let mut b = Boxes::new(&mut head);
            fmp4::fragment_head(&frag, &mut b);
            if let Some(h) = b.done() {
                w.write_all(h).await?;
            }
            w.write_all(&self.viewer.buf).await?;
            // The sound published since, each unit at the place of its capture time on the
            // video's timeline (contiguous while it stays within 100 ms of it).
            if let Some((rate, _)) = &sound {
                let first = *first_mono.get_or_insert(f.mono_ns);
                // Capture time minus the video's decode time: where this timeline's zero is.
                let zero = f.mono_ns as i128 - i128::from(decode_time) * 1_000_000_000 / i128::from(fmp4::TIMESCALE);
                while let Some(u) = crate::audio::live::read(a_seq, &mut a_buf) {
                    a_seq = u.seq + 1;
                    if u.mono_ns < first {
                        continue;
                    }
                    let target = ((i128::from(u.mono_ns) - zero).max(0) * i128::from(*rate) / 1_000_000_000) as u64;
                    let at = match a_next {
                        Some(t) if t.abs_diff(target) <= u64::from(*rate) / 10 => t,
                        _ => target,
                    };
                    a_next = Some(at + crate::audio::aac::FRAME as u64);
                    sequence = sequence.wrapping_add(1);
                    let frag = Fragment { track: fmp4::AUDIO_TRACK, sequence, decode_time: at, duration: crate::audio::aac::FRAME as u32, size: u.len as u32, key: true, utc_ns: u.utc_ns };
                    let mut b = Boxes::new(&mut head);
                    fmp4::fragment_head(&frag, &mut b);
                    if let Some(h) = b.done() {
                        w.write_all(h).await?;
                    }
                    w.write_all(&a_buf[..u.len]).await?;
                }
            }
            w.flush().await?;
            if skips > 0 && sequence.is_multiple_of(1000) {
                log::debug!("live.mp4: a viewer skipped ahead {skips} times so far");
            }
            last = Some((f.number, f.seq, f.mono_ns));
            n = f.number + 1;
        }
    }
}

/// The response of `/api/live.mp4` for a viewer that got a slot.
pub fn mp4_response<'h, 'a>(viewer: Viewer<'h, 'a>, ring: &'a Ring) -> impl picoserve::response::IntoResponse + use<'h, 'a> {
    CustomResponse::build(StatusCode::OK)
        .with_header("Content-Type", "video/mp4")
        .with_header("Cache-Control", "no-store")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_body(Mp4 { viewer, ring })
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

/// Why an H.264 snapshot failed.
#[derive(Debug)]
pub enum SnapshotError {
    /// No current IDR within the timeout (recording stopped?).
    NoFrame,
    /// The pictures would not decode.
    Decode(String),
}

/// The newest picture of the H.264 live stream as a JPEG: waits up to `timeout` for the ring
/// to hold a current GOP, decodes it from its IDR to its newest frame (on a blocking thread,
/// not the web thread) and returns the picture's seq, capture time and JPEG.
pub async fn snapshot_h264(slot: &LiveSlot, ring: &Ring, timeout: std::time::Duration) -> Result<(u64, i64, Vec<u8>), SnapshotError> {
    let deadline = std::time::Instant::now() + timeout;
    let gop = loop {
        let now = crate::clock::now_mono_ns();
        slot.want(now);
        if let Some(g) = current_gop(ring, now) {
            break g;
        }
        if std::time::Instant::now() >= deadline {
            return Err(SnapshotError::NoFrame);
        }
        smol::Timer::after(std::time::Duration::from_millis(20)).await;
    };
    let (seq, utc_ns, gop) = gop;
    let (jpeg, _, _) = super::blocking::run(move || crate::codec::still::jpeg_of_last(&gop)).await.unwrap_or_else(|| Err("the decoder failed".to_string())).map_err(SnapshotError::Decode)?;
    Ok((seq, utc_ns, jpeg))
}

/// The frames from the ring's newest IDR to its newest frame, if that is current (captured
/// within [`LIVE_NS`] of `now`) and whole; with the last one's seq and capture time.
fn current_gop(ring: &Ring, now: u64) -> Option<(u64, i64, crate::codec::still::Gop)> {
    let (k, last) = (ring.latest_key(), ring.latest());
    let newest = ring.entry(last)?;
    if k == 0 || newest.mono_ns.saturating_add(LIVE_NS) < now {
        return None;
    }
    let (params_gen, params) = ring.params();
    let mut samples = Vec::with_capacity((last - k + 1) as usize);
    for n in k..=last {
        let mut buf = Vec::with_capacity(ring.max_frame());
        let f = ring.read(n, &mut buf)?;
        if f.params_gen != params_gen || (n == k && !f.key) {
            return None;
        }
        buf.shrink_to_fit();
        samples.push(buf);
    }
    Some((newest.seq, newest.utc_ns, crate::codec::still::Gop { params, samples }))
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
