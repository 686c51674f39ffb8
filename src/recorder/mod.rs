//! The recording loop — the hot path, top to bottom, on two threads:
//!
//! - **capture** (the caller's thread): take a frame from the camera, count what the camera
//!   lost before it, copy it into the [`ring`], publish it to the live slot. It never waits on
//!   the card: when the ring is full the frame is dropped and counted (backpressure).
//! - **store** ([`store_side`], a thread of its own): write the ring's frames to the store,
//!   record gap markers, commit groups when due (the `fdatasync` happens here, however long it
//!   takes), rotate, run the web side's commands, report the durable watermark.
//!
//! [`Mode::Inline`] runs both halves on one thread, as blackbox did before the ring: the
//! camera then waits for every flush. It is kept as the benchmark's peer (`scripts/bench
//! capture`) and for tests that want one thread.
//!
//! Nothing here allocates per frame; every frame the camera produced and the store did not
//! keep is counted by cause ([`Losses`]).

pub mod ring;
pub mod store_side;

use crate::alloc_count;
use crate::camera::{Camera, CameraError};
use crate::clock;
use crate::control::Control;
use crate::live::LiveSlot;
use crate::status::RecorderStatus;
use crate::store::Store;
use core::fmt::Write as _;
use ring::Cause;
use std::sync::atomic::{AtomicBool, Ordering};
use store_side::StoreSide;

/// Frames recorded before the allocation counter's "recording" phase starts.
pub const WARMUP_FRAMES: u64 = 60;

/// How the store's work is scheduled relative to capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The store runs on its own thread behind a ring of this many bytes and frames.
    Threaded { ring_bytes: usize, ring_frames: usize },
    /// The store runs on the capture thread (the camera waits for every flush).
    Inline,
}

impl Default for Mode {
    fn default() -> Self {
        let (ring_bytes, ring_frames) = ring_size(4 << 20, 30);
        Mode::Threaded { ring_bytes, ring_frames }
    }
}

/// The ring for a camera of `bytes_per_s` and `fps`: [`RING_SECONDS`] of footage (which covers
/// a rotation's five flushes at one second each), between 8 and 64 MiB.
pub fn ring_size(bytes_per_s: u64, fps: u32) -> (usize, usize) {
    let bytes = (bytes_per_s.saturating_mul(RING_SECONDS)).clamp(8 << 20, 64 << 20) as usize;
    let frames = (u64::from(fps.max(1)) * RING_SECONDS * 2).clamp(64, 16384) as usize;
    (bytes, frames)
}

/// Seconds of footage the ring is sized for.
pub const RING_SECONDS: u64 = 8;

#[derive(Clone, Copy, Debug, Default)]
pub struct RecorderOptions<'a> {
    /// Print `durable <seq>` on stdout each time the durable watermark rises.
    pub report_durable: bool,
    /// Which camera the `durable` lines are about: empty for the first (`durable <seq>`), a
    /// name for the others (`durable <name> <seq>`).
    pub durable_tag: &'a str,
    /// Where to publish counters for other threads (the web server); plain atomic stores.
    pub status: Option<&'a RecorderStatus>,
    /// The web side's mailbox: commands for the store run between frames on the store side,
    /// and a stop or restart request ends the run (checked once per frame, never waited on).
    pub control: Option<&'a Control>,
    pub mode: Mode,
}

/// Frames lost, by cause (docs/ARCHITECTURE.md, "Every lost frame is counted").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lost {
    /// The V4L2 driver's sequence numbers jumped (no free buffer in time).
    pub driver: u64,
    /// A built-in or `file:` camera's frame came due while all its buffers were full.
    pub deadline: u64,
    /// The encoder failed on the frame.
    pub encoder: u64,
    /// The ring was full (the card slower than the camera for too long).
    pub backpressure: u64,
    /// The store could not write it (I/O error, no space).
    pub store: u64,
}

impl Lost {
    pub fn total(&self) -> u64 {
        self.driver + self.deadline + self.encoder + self.backpressure + self.store
    }

    pub fn add(&mut self, o: &Lost) {
        self.driver += o.driver;
        self.deadline += o.deadline;
        self.encoder += o.encoder;
        self.backpressure += o.backpressure;
        self.store += o.store;
    }
}

/// How a recording run went.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Frames stored.
    pub frames: u64,
    /// Frames the camera delivered (stored, or lost to backpressure or the store).
    pub delivered: u64,
    /// Frames lost, all causes (`lost.total()`).
    pub dropped: u64,
    pub lost: Lost,
    pub camera_errors: u64,
    /// Gap markers written.
    pub gaps: u64,
    pub allocs_warmup: u64,
    pub allocs_recording: u64,
    pub recording_frames: u64,
    /// The camera ran out of frames (a `file:` source at its end).
    pub end_of_stream: bool,
}

/// Why recording stopped with an error.
#[derive(Debug)]
pub struct FatalCamera(pub CameraError);

/// The capture side's bookkeeping of losses that happen before a frame reaches the store.
struct Capture {
    lost: Lost,
    /// Camera counters at the last look (the camera counts cumulatively).
    cam_seen: crate::camera::Losses,
    /// Lost since the last frame that went into the ring, and the latest cause.
    pending: u64,
    cause: Cause,
    /// The camera reported trouble since the last frame (the stretch is a gap).
    trouble: bool,
}

impl Capture {
    /// Takes in the camera's cumulative counters: the losses since the last look are counted
    /// by cause. Driver and deadline losses reach the ring through the next frame's
    /// `lost_before`; an encoder loss (no frame came with it) is pending from here.
    fn camera_losses(&mut self, now: crate::camera::Losses, status: Option<&RecorderStatus>) {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let (drv, ddl, enc) =
            (d(now.driver, self.cam_seen.driver), d(now.deadline, self.cam_seen.deadline), d(now.encoder, self.cam_seen.encoder));
        self.cam_seen = now;
        self.count(drv, Cause::Driver, status);
        self.count(ddl, Cause::Deadline, status);
        if enc > 0 {
            self.lose(enc, Cause::Encoder, status);
        }
    }

    /// Counts `n` lost frames (for the figures only).
    fn count(&mut self, n: u64, cause: Cause, status: Option<&RecorderStatus>) {
        if n == 0 {
            return;
        }
        match cause {
            Cause::Driver => self.lost.driver += n,
            Cause::Deadline => self.lost.deadline += n,
            Cause::Encoder => self.lost.encoder += n,
            Cause::Backpressure => self.lost.backpressure += n,
            Cause::Store => self.lost.store += n,
            Cause::Camera | Cause::Stopped => {}
        }
        if let Some(st) = status {
            st.lose(cause, n);
        }
    }

    /// Counts `n` lost frames and marks them pending for the next frame's gap marker.
    fn lose(&mut self, n: u64, cause: Cause, status: Option<&RecorderStatus>) {
        self.count(n, cause, status);
        self.pending += n;
        self.cause = cause;
    }
}

/// Records until `stop` is set or the camera ends. Camera trouble is logged and recorded as a
/// gap; it only ends the run when the camera says it is unusable.
pub fn run(
    camera: &mut dyn Camera,
    store: &mut Store,
    live: &LiveSlot,
    stop: &AtomicBool,
    opts: RecorderOptions<'_>,
) -> Result<Summary, FatalCamera> {
    if let Some(st) = opts.status {
        st.set_recording(true);
        st.refresh_store(store, clock::now_mono_ns());
    }
    let gap_after_ns = store_side::gap_threshold_ns(camera.fps());
    // Set by the store side when it lost an H.264 frame: the camera is asked for a key frame.
    let key_wanted = AtomicBool::new(false);
    let key_wanted = &key_wanted;
    let result = match opts.mode {
        Mode::Inline => {
            let mut side = StoreSide::new(store, opts, gap_after_ns, key_wanted);
            let r = capture(camera, live, stop, opts, key_wanted, &mut |slot, data| {
                side.write(slot, data);
                side.after_frames(true);
                true
            });
            let store_summary = side.finish();
            r.map(|s| merge(s, store_summary))
        }
        Mode::Threaded { ring_bytes, ring_frames } => {
            let (mut producer, mut consumer) = ring::ring(ring_bytes, ring_frames);
            let capture_done = AtomicBool::new(false);
            std::thread::scope(|sc| {
                let done = &capture_done;
                let store_thread = std::thread::Builder::new().name("store".into()).spawn_scoped(sc, move || {
                    consumer.bind_thread();
                    let mut side = StoreSide::new(store, opts, gap_after_ns, key_wanted);
                    side.drain_until(&mut consumer, done);
                    side.finish()
                });
                let store_thread = match store_thread {
                    Ok(t) => t,
                    Err(e) => {
                        log::error!("cannot start the store thread: {e}");
                        return Err(FatalCamera(CameraError::Io(e)));
                    }
                };
                let unpaced = camera.waits_for_consumer();
                let r = capture(camera, live, stop, opts, key_wanted, &mut |slot, data| {
                    loop {
                        if producer.push(&slot.meta, data, slot.capture_seq, slot.lost_before, slot.cause) {
                            return true;
                        }
                        // A file replayed as fast as possible waits for room instead of dropping.
                        if !unpaced || stop.load(Ordering::Relaxed) {
                            return false;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                });
                capture_done.store(true, Ordering::Release);
                producer.wake();
                let store_summary = store_thread.join().unwrap_or_else(|_| {
                    log::error!("the store thread panicked");
                    store_side::StoreSummary::default()
                });
                r.map(|s| merge(s, store_summary))
            })
        }
    };
    if let Some(st) = opts.status {
        st.set_recording(false);
    }
    result
}

fn merge(mut c: Summary, s: store_side::StoreSummary) -> Summary {
    c.frames = s.frames;
    c.gaps = s.gaps;
    c.lost.store = s.store_lost;
    c.dropped = c.lost.total();
    c.allocs_warmup += s.allocs_warmup;
    c.allocs_recording += s.allocs_recording;
    c
}

/// The capture loop: camera → (`sink`: the ring, or the store inline) → live slot. `sink`
/// answers whether the frame was taken.
///
/// H.264: after any loss (the camera's, the ring's, the store's via `key_wanted`) frames are
/// dropped, and counted under the loss's cause, until the next IDR, and the camera is asked
/// for one: no stored picture refers to a missing one (docs/FORMAT.md, "H.264").
fn capture(
    camera: &mut dyn Camera,
    live: &LiveSlot,
    stop: &AtomicBool,
    opts: RecorderOptions<'_>,
    key_wanted: &AtomicBool,
    sink: &mut dyn FnMut(&ring::Slot, &[u8]) -> bool,
) -> Result<Summary, FatalCamera> {
    let mut s = Summary::default();
    let status = opts.status;
    let mut cap = Capture { lost: Lost::default(), cam_seen: camera.losses(), pending: 0, cause: Cause::Stopped, trouble: false };
    let mut capture_seq = live.latest_seq() + 1;
    // What a frame's `lost_before` means: a V4L2 driver's drops, or a paced source's deadlines.
    let lost_cause = if camera.device().is_some() { Cause::Driver } else { Cause::Deadline };
    let allocs_start = alloc_count::thread_allocations();
    let mut allocs_at_warm = None;
    // H.264: the next stored frame must be an IDR.
    let mut need_key = true;
    let mut ask_key = false;
    // Why the pictures waiting for that IDR are lost (counted under it).
    let mut gate_cause = Cause::Stopped;
    while !stop.load(Ordering::Relaxed) {
        if std::mem::take(&mut ask_key) {
            camera.request_key_frame();
        }
        if let Some(c) = opts.control
            && c.interrupts()
        {
            break;
        }
        cap.camera_losses(camera.losses(), status);
        if let Some(st) = status {
            st.camera_sequence(camera.sequence());
        }
        match camera.next_frame() {
            Ok((meta, data)) => {
                // The camera's cumulative counters can't be read while its frame is borrowed;
                // the frame says what was lost right before it (read again after the frame).
                if meta.lost_before > 0 {
                    cap.pending += u64::from(meta.lost_before);
                    cap.cause = lost_cause;
                }
                let cause = if cap.trouble && cap.pending == 0 { Cause::Camera } else { cap.cause };
                // H.264 (or the rig's FWHT): pictures refer to earlier ones.
                let h264 = meta.codec.inter_coded();
                let from_store = h264 && key_wanted.swap(false, Ordering::Relaxed);
                if h264 && (cap.pending > 0 || cap.trouble || from_store) && !need_key {
                    need_key = true;
                    ask_key = true;
                    gate_cause = if from_store && cap.pending == 0 && !cap.trouble { Cause::Store } else { cause };
                }
                if h264 && need_key && !meta.key {
                    // It would refer to a picture we don't have: lost to the same cause as that
                    // picture (camera trouble, and the pictures before a camera's first IDR,
                    // count with the driver's losses). Not "delivered": it never reached the
                    // ring. The gap marker keeps the original reason.
                    let counted = match gate_cause {
                        Cause::Camera | Cause::Stopped => Cause::Driver,
                        c => c,
                    };
                    cap.count(1, counted, status);
                    cap.pending += 1;
                    capture_seq += 1;
                    continue;
                }
                s.delivered += 1;
                let slot = ring::Slot::new(meta, capture_seq, cap.pending, cause);
                if sink(&slot, data) {
                    need_key = false;
                    cap.pending = 0;
                    cap.trouble = false;
                    cap.cause = Cause::Camera;
                } else {
                    cap.lose(1, Cause::Backpressure, status);
                    if h264 {
                        need_key = true;
                        ask_key = true;
                        gate_cause = Cause::Backpressure;
                    }
                    if cap.lost.backpressure <= 3 || cap.lost.backpressure.is_multiple_of(1000) {
                        log::warn!(
                            "frame dropped: the card is slower than the camera and the ring is full ({} dropped for backpressure so far)",
                            cap.lost.backpressure
                        );
                    }
                }
                live.publish(capture_seq, &meta, data);
                capture_seq += 1;
                if let Some(st) = status {
                    // The driver's sequence and the count of frames taken move together (a
                    // status read between them would show one frame taken and not sequenced).
                    st.camera_sequence(camera.sequence());
                    st.frame(meta.utc_ns, meta.mono_ns);
                }
                if s.delivered == WARMUP_FRAMES {
                    allocs_at_warm = Some(alloc_count::thread_allocations());
                }
            }
            Err(CameraError::Skipped) => {}
            Err(CameraError::Timeout) => {
                s.camera_errors += 1;
                cap.trouble = true;
                log::warn!("camera: no frame within the timeout");
            }
            Err(CameraError::EndOfStream) => {
                s.end_of_stream = true;
                break;
            }
            Err(e @ CameraError::Invalid(_)) => {
                return Err(FatalCamera(e));
            }
            // A signal (SIGTERM/SIGINT) interrupted the wait for a frame: just stop.
            Err(CameraError::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted && stop.load(Ordering::Relaxed) => {}
            Err(e) => {
                s.camera_errors += 1;
                cap.trouble = true;
                log::warn!("camera: {e}; retrying");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }
    cap.camera_losses(camera.losses(), status);
    s.lost = cap.lost;
    let now = alloc_count::thread_allocations();
    match allocs_at_warm {
        Some(w) => {
            s.allocs_warmup = w - allocs_start;
            s.allocs_recording = now - w;
            s.recording_frames = s.delivered - WARMUP_FRAMES;
        }
        None => s.allocs_warmup = now - allocs_start,
    }
    Ok(s)
}

/// Writes `durable N` (`durable TAG N`) to stdout in one write, without allocating.
pub(crate) fn report_durable(tag: &str, seq: u64) {
    let mut line = heapless::String::<64>::new();
    let _ = if tag.is_empty() { writeln!(line, "durable {seq}") } else { writeln!(line, "durable {tag} {seq}") };
    let _ = rustix::io::write(rustix::stdio::stdout(), line.as_bytes());
}
