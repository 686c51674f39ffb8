//! The recording loop — the hot path, top to bottom: take a frame from the camera, append it
//! to the store (which commits and rotates as due), publish it to the live slot, report the
//! durable watermark. Nothing here allocates per frame.

use crate::alloc_count;
use crate::camera::{Camera, CameraError};
use crate::clock;
use crate::control::Control;
use crate::live::LiveSlot;
use crate::status::RecorderStatus;
use crate::store::Store;
use core::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Frames recorded before the allocation counter's "recording" phase starts.
pub const WARMUP_FRAMES: u64 = 60;

#[derive(Clone, Copy, Debug, Default)]
pub struct RecorderOptions<'a> {
    /// Print `durable <seq>` on stdout each time the durable watermark rises.
    pub report_durable: bool,
    /// Where to publish counters for other threads (the web server); plain atomic stores.
    pub status: Option<&'a RecorderStatus>,
    /// The web side's mailbox: commands for the store run between frames, and a stop or
    /// restart request ends the run (checked once per frame, never waited on).
    pub control: Option<&'a Control>,
}

/// How a recording run went.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub frames: u64,
    pub dropped: u64,
    pub camera_errors: u64,
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

/// Records until `stop` is set or the camera ends. Camera trouble is logged and recorded as a
/// gap; it only ends the run when the camera says it is unusable.
pub fn run(
    camera: &mut dyn Camera,
    store: &mut Store,
    live: &LiveSlot,
    stop: &AtomicBool,
    opts: RecorderOptions<'_>,
) -> Result<Summary, FatalCamera> {
    let mut s = Summary::default();
    let mut reported = store.durable_seq();
    let mut gap_from: Option<i64> = None;
    let mut last_utc = clock::now_utc_ns();
    let mut store_errors_logged = 0u64;
    let allocs_start = alloc_count::thread_allocations();
    let mut allocs_at_warm = None;
    if let Some(st) = opts.status {
        st.set_recording(true);
        st.refresh_store(store, clock::now_mono_ns());
    }
    while !stop.load(Ordering::Relaxed) {
        match camera.next_frame() {
            Ok((meta, data)) => {
                if let Some(from) = gap_from.take() {
                    s.gaps += 1;
                    if let Err(e) = store.append_gap(from, meta.utc_ns, 1, meta.mono_ns) {
                        log::error!("recording a gap marker failed: {e}");
                    }
                }
                last_utc = meta.utc_ns;
                let seq = store.next_seq();
                match store.append_frame(&meta, data) {
                    Ok(()) => s.frames += 1,
                    Err(e) => {
                        s.dropped += 1;
                        // One line per event, not per frame: log the first few, then every 1000th.
                        store_errors_logged += 1;
                        if store_errors_logged <= 3 || store_errors_logged.is_multiple_of(1000) {
                            log::error!("frame {seq} dropped: {e} ({} dropped so far)", s.dropped);
                        }
                    }
                }
                live.publish(seq, &meta, data);
                if let Some(st) = opts.status {
                    st.frame(s.frames, s.dropped, meta.utc_ns);
                }
                if s.frames == WARMUP_FRAMES {
                    allocs_at_warm = Some(alloc_count::thread_allocations());
                }
            }
            Err(CameraError::Timeout) => {
                s.camera_errors += 1;
                gap_from.get_or_insert(last_utc);
                log::warn!("camera: no frame within the timeout");
            }
            Err(CameraError::EndOfStream) => {
                s.end_of_stream = true;
                break;
            }
            Err(e @ CameraError::Invalid(_)) => {
                let _ = store.commit();
                if let Some(st) = opts.status {
                    st.set_recording(false);
                }
                return Err(FatalCamera(e));
            }
            // A signal (SIGTERM/SIGINT) interrupted the wait for a frame: just stop.
            Err(CameraError::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted && stop.load(Ordering::Relaxed) => {}
            Err(e) => {
                s.camera_errors += 1;
                gap_from.get_or_insert(last_utc);
                log::warn!("camera: {e}; retrying");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        let now = clock::now_mono_ns();
        if let Err(e) = store.tick(now) {
            log::error!("commit failed: {e}");
        }
        if let Some(st) = opts.status {
            st.store(store, now);
        }
        if opts.report_durable && store.durable_seq() != reported {
            reported = store.durable_seq();
            if let Some(d) = reported {
                report_durable(d);
            }
        }
        if let Some(c) = opts.control {
            c.serve(store);
            if c.interrupts() {
                break;
            }
        }
    }
    if let Err(e) = store.commit() {
        log::error!("final commit failed: {e}");
    }
    if let Some(st) = opts.status {
        st.refresh_store(store, clock::now_mono_ns());
        st.set_recording(false);
    }
    if opts.report_durable && store.durable_seq() != reported
        && let Some(d) = store.durable_seq()
    {
        report_durable(d);
    }
    let now = alloc_count::thread_allocations();
    match allocs_at_warm {
        Some(w) => {
            s.allocs_warmup = w - allocs_start;
            s.allocs_recording = now - w;
            s.recording_frames = s.frames - WARMUP_FRAMES;
        }
        None => s.allocs_warmup = now - allocs_start,
    }
    Ok(s)
}

/// Writes `durable N` to stdout in one write, without allocating.
fn report_durable(seq: u64) {
    let mut line = heapless::String::<40>::new();
    let _ = writeln!(line, "durable {seq}");
    let _ = rustix::io::write(rustix::stdio::stdout(), line.as_bytes());
}
