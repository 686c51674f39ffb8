//! The store side of the recording loop: frames from the ring (or straight from the capture
//! loop, in [`Mode::Inline`](super::Mode::Inline)) into the store, gap markers for frame-less
//! stretches, group commits when due, the web side's commands, the durable watermark.
//!
//! Commits are deferred while frames are queued: after a slow flush the frames that piled up
//! meanwhile go into one group and one flush, so a card with a long flush latency still keeps
//! up (each flush covers everything written before it). A group is committed early only when
//! it holds [`BACKLOG_GROUP_FACTOR`] times `commit_frames`, which bounds how much a power cut
//! can take while the ring drains.

use super::ring::{Cause, Consumer, Slot};
use super::{RecorderOptions, WARMUP_FRAMES};
use crate::alloc_count;
use crate::clock;
use crate::camera::{Codec, FrameMeta};
use crate::codec::h264;
use crate::store::{Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A group still being filled from a backlog is committed once it holds this many times
/// `commit_frames`.
pub const BACKLOG_GROUP_FACTOR: u32 = 4;

/// Longest the store thread sleeps between looks at its mailbox and the commit clock.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// A stretch without frames longer than this (four frame intervals, at least 200 ms) becomes
/// a gap marker.
pub fn gap_threshold_ns(fps: u32) -> u64 {
    (4_000_000_000 / u64::from(fps.max(1))).max(200_000_000)
}

/// What the store side did in one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreSummary {
    pub frames: u64,
    pub gaps: u64,
    pub store_lost: u64,
    pub allocs_warmup: u64,
    pub allocs_recording: u64,
}

pub struct StoreSide<'s, 'a> {
    store: &'s mut Store,
    opts: RecorderOptions<'a>,
    inline: bool,
    gap_after_ns: u64,
    reported: Option<u64>,
    sum: StoreSummary,
    errors_logged: u64,
    /// No frame of this run written yet: a stretch before it is "stopped", not camera trouble.
    first_of_run: bool,
    allocs_start: u64,
    allocs_at_warm: Option<u64>,
    /// Tells the capture side to ask the camera for an H.264 key frame.
    key_wanted: &'a AtomicBool,
    /// H.264: the stream's parameter sets, the last `avcC` given to the store, and the AVCC
    /// sample being written (reused; grows only to the largest frame seen).
    params: h264::ParamSets,
    params_stored: u64,
    sample: Vec<u8>,
    /// H.264: a frame was lost here; drop frames until the next IDR.
    need_key: bool,
}

impl<'s, 'a> StoreSide<'s, 'a> {
    pub fn new(store: &'s mut Store, opts: RecorderOptions<'a>, gap_after_ns: u64, key_wanted: &'a AtomicBool) -> Self {
        StoreSide {
            reported: store.durable_seq(),
            store,
            inline: opts.mode == super::Mode::Inline,
            opts,
            gap_after_ns,
            sum: StoreSummary::default(),
            errors_logged: 0,
            first_of_run: true,
            allocs_start: alloc_count::thread_allocations(),
            allocs_at_warm: None,
            key_wanted,
            params: h264::ParamSets::default(),
            params_stored: u64::MAX,
            sample: Vec::with_capacity(1 << 20),
            need_key: false,
        }
    }

    /// An H.264 access unit (Annex-B) as the store keeps it: an AVCC sample in `self.sample`,
    /// with its parameter sets handed to the store. The frame's key flag comes from its NAL
    /// units (uvcvideo never flags key frames).
    fn h264_sample(&mut self, data: &[u8]) -> Result<bool, h264::AuError> {
        let info = match h264::to_avcc(data, &mut self.params, &mut self.sample) {
            Err(h264::AuError::TooLarge) => {
                // Larger than any frame so far: grow once (not per frame), then convert.
                self.sample.reserve(data.len() + data.len() / 2 + 64);
                h264::to_avcc(data, &mut self.params, &mut self.sample)?
            }
            r => r?,
        };
        if self.params.generation != self.params_stored && self.params.complete() {
            let mut avcc = [0u8; h264::MAX_AVCC];
            let n = self.params.avcc(&mut avcc);
            if n > 0 {
                self.store.set_h264_params(&avcc[..n]);
                self.params_stored = self.params.generation;
            }
        }
        Ok(info.idr)
    }

    /// Writes one frame, after a gap marker when frames are missing before it.
    pub fn write(&mut self, slot: &Slot, data: &[u8]) {
        let meta = &slot.meta;
        if let Some((mono, utc)) = self.store.last_frame_times()
            && meta.mono_ns.saturating_sub(mono) > self.gap_after_ns
        {
            let cause = if self.first_of_run {
                Cause::Stopped
            } else if slot.lost_before > 0 {
                slot.cause
            } else {
                Cause::Camera
            };
            let lost = slot.lost_before.min(u64::from(u32::MAX)) as u32;
            match self.store.append_gap(utc, meta.utc_ns, cause as u32, lost, meta.mono_ns) {
                Ok(()) => self.sum.gaps += 1,
                Err(e) => log::error!("recording a gap marker failed: {e}"),
            }
        }
        self.first_of_run = false;
        let seq = self.store.next_seq();
        let status = self.opts.status;
        let r = if meta.codec == Codec::H264 {
            match self.h264_sample(data) {
                Ok(idr) if self.need_key && !idr => Err(StoreError::NeedsKeyFrame),
                Ok(idr) => {
                    let meta = FrameMeta { key: idr, ..*meta };
                    // Borrow the sample out while the store writes it.
                    let sample = std::mem::take(&mut self.sample);
                    let r = if self.inline { self.store.append_frame(&meta, &sample) } else { self.store.append_frame_deferred(&meta, &sample) };
                    self.sample = sample;
                    r
                }
                Err(e) => {
                    self.errors_logged += 1;
                    if self.errors_logged <= 3 || self.errors_logged.is_multiple_of(1000) {
                        log::error!("frame {seq} refused: {e}");
                    }
                    Err(StoreError::NeedsKeyFrame)
                }
            }
        } else if meta.codec.inter_coded() && self.need_key && !meta.key {
            // FWHT (the rig's codec): a P-picture whose reference was not stored.
            Err(StoreError::NeedsKeyFrame)
        } else if self.inline {
            self.store.append_frame(meta, data)
        } else {
            self.store.append_frame_deferred(meta, data)
        };
        if meta.codec.inter_coded() {
            self.need_key = r.is_err();
            if r.is_err() {
                self.key_wanted.store(true, Ordering::Relaxed);
            }
        }
        match r {
            Ok(()) => {
                self.sum.frames += 1;
                if let Some(st) = status {
                    st.set_card_full(false);
                }
            }
            Err(e) => {
                self.sum.store_lost += 1;
                if let Some(st) = status {
                    st.lose(Cause::Store, 1);
                    st.set_card_full(matches!(e, StoreError::NoSpace));
                }
                // One line per event, not per frame: the first few, then every 1000th.
                self.errors_logged += 1;
                if self.errors_logged <= 3 || self.errors_logged.is_multiple_of(1000) {
                    log::error!("frame {seq} dropped: {e} ({} dropped by the store so far)", self.sum.store_lost);
                }
            }
        }
        if let Some(st) = status {
            st.stored(self.sum.frames);
        }
        if self.sum.frames == WARMUP_FRAMES {
            self.allocs_at_warm = Some(alloc_count::thread_allocations());
        }
    }

    /// Between frames: commit when due (with `queue_empty`, or when the group is large),
    /// publish the status, report the watermark, run the web side's commands.
    pub fn after_frames(&mut self, queue_empty: bool) {
        let now = clock::now_mono_ns();
        let r = if self.inline {
            self.store.tick(now)
        } else if (queue_empty && self.store.commit_due(now))
            || self.store.group_frames() >= self.store.options().commit_frames.saturating_mul(BACKLOG_GROUP_FACTOR)
        {
            self.store.commit()
        } else {
            Ok(false)
        };
        if let Err(e) = r {
            log::error!("commit failed: {e}");
        }
        if let Some(st) = self.opts.status {
            st.store(self.store, now);
        }
        self.report();
        if let Some(c) = self.opts.control {
            c.serve(self.store);
        }
    }

    fn report(&mut self) {
        if self.opts.report_durable && self.store.durable_seq() != self.reported {
            self.reported = self.store.durable_seq();
            if let Some(d) = self.reported {
                super::report_durable(self.opts.durable_tag, d);
            }
        }
    }

    /// The store thread's loop: write what the ring holds, commit when due, sleep until the
    /// next frame; ends once `done` is set and the ring is empty.
    pub fn drain_until(&mut self, ring: &mut Consumer, done: &AtomicBool) {
        loop {
            let mut n = 0u32;
            while let Some((slot, data)) = ring.peek() {
                self.write(&slot, data);
                ring.release();
                n += 1;
                // Keep the mailbox and the big-group rule going through a long backlog.
                if n.is_multiple_of(64) {
                    self.after_frames(false);
                }
            }
            self.after_frames(true);
            if done.load(Ordering::Acquire) && ring.queued() == 0 {
                break;
            }
            ring.wait(IDLE_WAIT);
        }
    }

    /// The final commit and figures.
    pub fn finish(mut self) -> StoreSummary {
        if let Err(e) = self.store.commit() {
            log::error!("final commit failed: {e}");
        }
        if let Some(st) = self.opts.status {
            st.refresh_store(self.store, clock::now_mono_ns());
        }
        self.report();
        let now = alloc_count::thread_allocations();
        // Inline, the capture loop's count already covers this thread.
        match self.allocs_at_warm.filter(|_| !self.inline) {
            Some(w) => {
                self.sum.allocs_warmup = w - self.allocs_start;
                self.sum.allocs_recording = now - w;
            }
            None if !self.inline => self.sum.allocs_warmup = now - self.allocs_start,
            None => {}
        }
        self.sum
    }
}
