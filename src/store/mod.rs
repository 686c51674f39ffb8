//! The segment store: see docs/FORMAT.md, which this module implements.
//!
//! `Store` is the writer side (one per data dir, held by the recorder thread): it recovers at
//! open, appends frames, commits groups, rotates, recycles and deletes segments under the
//! retention rules. `reader` and `verify` are the read-only side.

pub mod catalog;
mod erase;
pub use erase::erase_all;
pub mod hints;
pub mod names;
pub mod reader;
pub mod record;
pub mod recover;
pub mod segment;
pub mod verify;
pub mod writer;

use crate::camera::{Codec, FrameMeta};
use catalog::{Protected, SegmentInfo};
use hints::RetentionHints;
use names::{NameBuf, SegName};
use record::{Params, SegHeader, INDEX_ENTRY};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use writer::{AppendError, SegmentWriter};

/// What the store needs from the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreOptions {
    pub segment_length_ns: u64,
    pub commit_interval_ns: u64,
    pub commit_frames: u32,
    pub storage_cap_bytes: u64,
    pub min_free_bytes: u64,
    pub protected_cap_percent: u8,
    /// Expected frame rate; bounds the frames per segment (a segment that reaches the bound
    /// rotates early).
    pub fps: u32,
    /// Expected bytes per second, to size the first segment before any has been measured.
    pub expected_bytes_per_s: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_length_ns: 60_000_000_000,
            commit_interval_ns: 500_000_000,
            commit_frames: 30,
            storage_cap_bytes: 8 << 30,
            min_free_bytes: 256 << 20,
            protected_cap_percent: 50,
            fps: 30,
            expected_bytes_per_s: 4 << 20,
        }
    }
}

impl StoreOptions {
    /// The frames a segment's index holds at `fps`.
    fn max_frames(&self, fps: u32) -> u64 {
        let secs = self.segment_length_ns.div_ceil(1_000_000_000);
        // Bounded: an hour at 120 fps fits; a longer segment rotates when its index is full.
        (secs.saturating_mul(u64::from(fps.max(1))) * 3 / 2 + 64).min(1 << 20)
    }

    fn capacity_for(&self, bytes_per_s: u64, max_frames: u64) -> u64 {
        const MIB: u64 = 1 << 20;
        let secs = self.segment_length_ns.div_ceil(1_000_000_000).min(3600);
        let want = bytes_per_s.saturating_mul(secs).saturating_mul(5) / 4
            + writer::close_reserve(max_frames);
        want.div_ceil(MIB).saturating_mul(MIB).clamp(4 * MIB, 1 << 30)
    }
}

#[derive(Debug)]
pub enum StoreError {
    Io(io::Error),
    /// Another process holds the data dir.
    Locked(PathBuf),
    /// No segment could be started (disk full and nothing left to delete); the frame was dropped.
    NoSpace,
    /// An H.264 frame that can't start a segment (not an IDR, or no parameter sets known yet):
    /// it would refer to pictures the segment doesn't hold. Dropped until the next IDR.
    NeedsKeyFrame,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "store I/O error: {e}"),
            StoreError::Locked(p) => write!(f, "{} is in use by another blackbox process", p.display()),
            StoreError::NoSpace => write!(f, "no space for a new segment and nothing left to delete"),
            StoreError::NeedsKeyFrame => write!(f, "an H.264 segment must start with a key frame (IDR) and its parameter sets"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// Counters since the store was opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    pub frames: u64,
    pub dropped: u64,
    pub commits: u64,
    pub syncs: u64,
    pub bytes_written: u64,
    pub segments_started: u64,
    pub segments_closed: u64,
    pub recycled: u64,
    pub deleted: u64,
    /// Protected segments deleted (by the protected cap, or as the last resort).
    pub protected_deleted: u64,
    /// Of those, segments without a verified offloaded copy.
    pub protected_deleted_unoffloaded: u64,
}

pub struct Store {
    data_dir: PathBuf,
    seg_dir: PathBuf,
    seg_dir_file: File,
    _lock: File,
    opts: StoreOptions,
    closed: Vec<SegmentInfo>,
    protected: Protected,
    writer: Option<SegmentWriter>,
    writer_name: NameBuf,
    index_buf: Vec<u8>,
    /// The H.264 parameter sets the next H.264 segment starts with.
    h264_params: Params,
    /// Codec of the open segment's frames.
    seg_codec: Option<Codec>,
    next_seq: u64,
    durable_seq: Option<u64>,
    bytes_per_s: u64,
    /// Frames per second of the last closed segment (of 1 s or more): a camera faster than
    /// `opts.fps` (an RTSP camera sends what it sends) gets segments whose index holds its rate.
    fps_seen: u32,
    /// Where the open segment's last key frame began: (frames before it, write offset).
    gop_mark: Option<(u64, u64)>,
    /// Monotonic time of the last failed segment start (retry at most once a second).
    start_failed_at: Option<u64>,
    stats: StoreStats,
    path_a: PathBuf,
    path_b: PathBuf,
    /// What offload says about copies and the segment it reads (retention's order).
    hints: std::sync::Arc<RetentionHints>,
}

/// The smallest segment the store starts when space is short; below it the card counts as
/// full (`card_full`) and frames are dropped and counted.
pub const MIN_SEGMENT_BYTES: u64 = 8 << 20;

/// How big a recycled file of `len` bytes stays when a segment needs `capacity`: as it is,
/// unless that is more than twice the need; then the need (the rest is freed).
fn recycled_size(len: u64, capacity: u64) -> u64 {
    if len > capacity.saturating_mul(2) { capacity } else { len.max(capacity) }
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, recovering segments left open.
    pub fn open(data_dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        let seg_dir = data_dir.join("segments");
        fs::create_dir_all(&seg_dir)?;
        let lock = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(data_dir.join(".lock"))?;
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(StoreError::Locked(data_dir.to_path_buf()));
        }
        File::open(data_dir)?.sync_all()?;
        let recovery_started = std::time::Instant::now();
        let r = recover::recover(&seg_dir, true)?;
        let recovery_ms = recovery_started.elapsed().as_secs_f64() * 1e3;
        for u in &r.unknown {
            log::warn!("segments/{u}: not a segment file; ignored");
        }
        let next_seq = r.next_seq();
        let durable_seq = r.closed.iter().filter_map(|s| s.last_seq()).max();
        let mut closed = r.closed;
        closed.reserve(4096);
        let bytes_per_s = opts.expected_bytes_per_s;
        let max_frames = opts.max_frames(opts.fps);
        // Scratch paths for renames and unlinks, sized once so rotation never allocates.
        let (path_a, path_b) = (PathBuf::with_capacity(1024), PathBuf::with_capacity(1024));
        let mut store = Store {
            data_dir: data_dir.to_path_buf(),
            seg_dir_file: File::open(&seg_dir)?,
            seg_dir,
            _lock: lock,
            protected: Protected::load(&data_dir.join("protected")),
            opts,
            closed,
            writer: None,
            writer_name: NameBuf::new(),
            index_buf: Vec::with_capacity(max_frames as usize * INDEX_ENTRY),
            h264_params: Params::EMPTY,
            seg_codec: None,
            next_seq,
            durable_seq,
            bytes_per_s,
            fps_seen: 0,
            gop_mark: None,
            start_failed_at: None,
            stats: StoreStats::default(),
            path_a,
            path_b,
            hints: RetentionHints::for_dir(data_dir),
        };
        store.trim_closed();
        log::info!(
            "store {}: {} segments, next seq {}, durable seq {} (recovery took {:.1} ms)",
            data_dir.display(),
            store.closed.len(),
            store.next_seq,
            store.durable_seq.map_or(-1, |s| s as i64),
            recovery_ms
        );
        Ok(store)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// Sequence number of the last acknowledged (fdatasync'd) frame.
    pub fn durable_seq(&self) -> Option<u64> {
        self.durable_seq
    }
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
    pub fn stats(&self) -> StoreStats {
        let mut s = self.stats;
        if let Some(w) = &self.writer {
            s.syncs += w.syncs;
            s.bytes_written += w.bytes_written;
        }
        s
    }
    /// Closed segments, oldest first.
    pub fn closed_segments(&self) -> &[SegmentInfo] {
        &self.closed
    }
    /// The name of the segment being written, if any.
    pub fn open_segment_name(&self) -> Option<&str> {
        self.writer.as_ref().map(|_| self.writer_name.as_str())
    }
    pub fn protected(&self) -> &Protected {
        &self.protected
    }

    /// Applies new retention and commit options to the open store. The segment length and
    /// frame rate bound the index buffer reserved at open, so those two are kept; changing
    /// them needs a reopen.
    pub fn set_options(&mut self, opts: StoreOptions) {
        self.opts = StoreOptions {
            segment_length_ns: self.opts.segment_length_ns,
            fps: self.opts.fps,
            ..opts
        };
    }

    fn set_path(buf: &mut PathBuf, dir: &Path, name: &str) {
        buf.as_mut_os_string().clear();
        buf.push(dir);
        buf.push(name);
    }

    /// Appends a frame; commits when the group is due and rotates when the segment is.
    /// An error means the frame was dropped (and counted); recording can go on.
    pub fn append_frame(&mut self, meta: &FrameMeta, payload: &[u8]) -> Result<(), StoreError> {
        let r = self.append_inner(meta, payload, true);
        if r.is_err() {
            self.stats.dropped += 1;
        }
        r
    }

    /// As [`Store::append_frame`], but never commits (rotation still commits the segment it
    /// closes): the caller commits with [`Store::commit`] when [`Store::commit_due`] says so,
    /// after it has written every frame that was waiting (the recorder's store thread).
    pub fn append_frame_deferred(&mut self, meta: &FrameMeta, payload: &[u8]) -> Result<(), StoreError> {
        let r = self.append_inner(meta, payload, false);
        if r.is_err() {
            self.stats.dropped += 1;
        }
        r
    }

    /// Whether the open group should be committed at `now_mono_ns`: it holds `commit_frames`
    /// frames, or its first frame is `commit_interval_ms` old.
    pub fn commit_due(&self, now_mono_ns: u64) -> bool {
        match &self.writer {
            Some(w) => {
                w.group_frames() > 0
                    && (w.group_frames() >= self.opts.commit_frames
                        || now_mono_ns.saturating_sub(w.group_first_mono()) >= self.opts.commit_interval_ns)
            }
            None => false,
        }
    }

    /// Frames in the open (uncommitted) group.
    pub fn group_frames(&self) -> u32 {
        self.writer.as_ref().map_or(0, |w| w.group_frames())
    }

    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// Monotonic and UTC capture time of the open segment's last frame.
    pub fn last_frame_times(&self) -> Option<(u64, i64)> {
        let w = self.writer.as_ref()?;
        (w.frames() > 0).then(|| (w.last_mono_ns(), w.last_utc_ns()))
    }

    /// True while no segment can be started for lack of space (frames are dropped).
    pub fn out_of_space(&self) -> bool {
        self.start_failed_at.is_some()
    }

    /// The H.264 decoder configuration (`avcC`) of the frames that follow: a segment is
    /// started with it in its header, and an IDR with different parameters starts a new
    /// segment (docs/FORMAT.md, "H.264").
    pub fn set_h264_params(&mut self, avcc: &[u8]) {
        match Params::new(avcc) {
            Some(p) => self.h264_params = p,
            None => log::error!("H.264 parameter sets of {} bytes are too long to store", avcc.len()),
        }
    }

    /// The frames the next segment's index holds: for the expected rate, or the rate seen.
    fn max_frames(&self) -> u64 {
        self.opts.max_frames(self.opts.fps.max(self.fps_seen))
    }

    /// Whether `meta` must start a new segment: the segment is due (an H.264 one at its next
    /// key frame, or at twice its length without one), the codec changes, an H.264 IDR
    /// comes with other parameter sets, or a key frame finds too little room for another GOP.
    fn rotation_due(&self, meta: &FrameMeta) -> bool {
        let Some(w) = &self.writer else { return false };
        let age = meta.mono_ns.saturating_sub(w.header().start_mono_ns);
        // H.264, or the rig's FWHT: a segment starts on a key frame.
        let h264 = meta.codec.inter_coded();
        if w.frames() > 0 && self.seg_codec != Some(meta.codec) {
            return true;
        }
        if meta.codec == Codec::H264 && meta.key && w.frames() > 0 && w.header().params != self.h264_params {
            return true;
        }
        // A key frame ends a GOP: if the segment has no room for two more like it (frames or
        // bytes), it closes here. Full in the middle of a GOP, the frames up to the next key
        // would be lost, as a segment starts on a key frame.
        if h264
            && meta.key
            && let Some((f0, o0)) = self.gop_mark
        {
            let (gop_frames, gop_bytes) = (w.frames().saturating_sub(f0), w.written().saturating_sub(o0));
            let (frames_left, bytes_left) = w.room();
            if frames_left < 2 * gop_frames || bytes_left < 2 * gop_bytes {
                return true;
            }
        }
        age >= self.opts.segment_length_ns && (!h264 || meta.key || age >= 2 * self.opts.segment_length_ns)
    }

    fn append_inner(&mut self, meta: &FrameMeta, payload: &[u8], commit_when_due: bool) -> Result<(), StoreError> {
        if self.rotation_due(meta) {
            self.close_segment()?;
        }
        for attempt in 0..2 {
            if self.writer.is_none() {
                if meta.codec.inter_coded() && (!meta.key || (meta.codec == Codec::H264 && self.h264_params.is_empty())) {
                    return Err(StoreError::NeedsKeyFrame);
                }
                self.start_segment(meta)?;
                self.seg_codec = Some(meta.codec);
            }
            let Some(w) = self.writer.as_mut() else { return Err(StoreError::NoSpace) };
            let before = (w.frames(), w.written());
            match w.append_frame(meta, payload) {
                Ok(()) => {
                    if meta.key && meta.codec.inter_coded() {
                        self.gop_mark = Some(before);
                    }
                    self.next_seq += 1;
                    self.stats.frames += 1;
                    let due = w.group_frames() >= self.opts.commit_frames
                        || meta.mono_ns.saturating_sub(w.group_first_mono()) >= self.opts.commit_interval_ns;
                    if due && commit_when_due {
                        self.commit()?;
                    }
                    return Ok(());
                }
                Err(AppendError::Full) if attempt == 0 && w.frames() > 0 => self.close_segment()?,
                Err(AppendError::Full) => {
                    log::error!("frame of {} bytes does not fit an empty segment; dropped", payload.len());
                    return Err(StoreError::NoSpace);
                }
                Err(AppendError::Io(e)) => {
                    log::error!("write to {} failed: {e}; closing it", self.writer_name);
                    self.abandon_segment();
                    return Err(e.into());
                }
            }
        }
        Err(StoreError::NoSpace)
    }

    /// Records that no frame was stored from `from_utc` to `to_utc` (ns), for `reason`
    /// (docs/FORMAT.md, "gap"), with `lost` frames counted as lost in it.
    pub fn append_gap(&mut self, from_utc: i64, to_utc: i64, reason: u32, lost: u32, mono_ns: u64) -> Result<(), StoreError> {
        let Some(w) = self.writer.as_mut() else { return Ok(()) };
        match w.append_gap(from_utc, to_utc, reason, lost, mono_ns) {
            Ok(()) => Ok(()),
            Err(AppendError::Full) => self.close_segment(),
            Err(AppendError::Io(e)) => {
                self.abandon_segment();
                Err(e.into())
            }
        }
    }

    /// Commits the open group now (pad, fdatasync, raise the durable watermark).
    /// Returns true when the watermark moved.
    pub fn commit(&mut self) -> Result<bool, StoreError> {
        let Some(w) = self.writer.as_mut() else { return Ok(false) };
        match w.commit() {
            Ok(true) => {
                self.stats.commits += 1;
                let moved = w.last_seq() != self.durable_seq && w.last_seq().is_some();
                if w.last_seq().is_some() {
                    self.durable_seq = w.last_seq();
                }
                Ok(moved)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                // After a failed fdatasync the page cache can't be trusted (fsyncgate): never
                // retry on the same data, never acknowledge it; start afresh.
                log::error!("fdatasync of {} failed: {e}; abandoning the segment", self.writer_name);
                self.abandon_segment();
                Err(e.into())
            }
        }
    }

    /// Called when no frame arrived for a while: commits a group whose interval has passed.
    pub fn tick(&mut self, now_mono_ns: u64) -> Result<bool, StoreError> {
        match &self.writer {
            Some(w) if w.group_frames() > 0
                && now_mono_ns.saturating_sub(w.group_first_mono()) >= self.opts.commit_interval_ns =>
            {
                self.commit()
            }
            _ => Ok(false),
        }
    }

    /// Gives up the open segment after an I/O error: it stays `.open` on disk for the next
    /// start's recovery; the store goes on with a new segment at the next frame.
    fn abandon_segment(&mut self) {
        if let Some(w) = self.writer.take() {
            self.stats.syncs += w.syncs;
            self.stats.bytes_written += w.bytes_written;
        }
    }

    /// Seals the open segment and renames it to its closed name.
    pub fn close_segment(&mut self) -> Result<(), StoreError> {
        let Some(w) = self.writer.take() else { return Ok(()) };
        // The rate the camera had, on the monotonic clock (a UTC step can't skew it), rounded:
        // only a camera clearly faster than configured changes the next index's size (which
        // then allocates once, at this rotation).
        let (frames, span) = (w.frames(), w.last_mono_ns().saturating_sub(w.header().start_mono_ns));
        if frames >= 2 && span >= 1_000_000_000 {
            self.fps_seen = ((frames - 1).saturating_mul(1_000_000_000) + span / 2).checked_div(span).unwrap_or(0).min(1000) as u32;
        }
        let (sealed, file, index) = match w.seal() {
            Ok(s) => s,
            Err(e) => {
                log::error!("closing {} failed: {e}; it will be recovered at the next start", self.writer_name);
                return Err(e.into());
            }
        };
        self.index_buf = index;
        self.stats.syncs += sealed.syncs;
        self.stats.bytes_written += sealed.bytes_written;
        self.stats.segments_closed += 1;
        if sealed.frames > 0 {
            self.durable_seq = Some(sealed.header.first_seq + sealed.frames - 1);
        }
        let closed = SegName::Closed {
            start_utc_ns: sealed.min_utc_ns,
            end_utc_ns: sealed.max_utc_ns,
            first_seq: sealed.header.first_seq,
            frames: sealed.frames,
            bytes: sealed.used,
        };
        let name = closed.format();
        Self::set_path(&mut self.path_a, &self.seg_dir, &self.writer_name);
        Self::set_path(&mut self.path_b, &self.seg_dir, &name);
        fs::rename(&self.path_a, &self.path_b)?;
        self.seg_dir_file.sync_all()?;
        let secs = sealed.end_utc_ns.saturating_sub(sealed.header.start_utc_ns).max(1_000_000_000) as u64 / 1_000_000_000;
        self.bytes_per_s = sealed.used / secs.max(1);
        if self.closed.len() == self.closed.capacity() {
            self.closed.reserve(4096);
        }
        // Give the preallocation the segment did not use back to the file system (after the
        // rename: the closed name already says where the data ends, so a cut at any point of
        // the trim leaves a file readable up to its used length).
        let alloc = trim_to_used(&file, &name, sealed.header.capacity.max(sealed.used), sealed.used);
        self.closed.push(SegmentInfo {
            name,
            first_seq: sealed.header.first_seq,
            frames: sealed.frames,
            start_utc_ns: sealed.min_utc_ns,
            end_utc_ns: sealed.max_utc_ns,
            used_bytes: sealed.used,
            alloc_bytes: alloc,
            open_frames: None,
            open_commit_end: 0,
        });
        Ok(())
    }

    /// At open: trims closed segments that still hold much more than their used length (sealed
    /// by recovery after a power cut, closed by an older version, or a trim the cut undid).
    fn trim_closed(&mut self) {
        for i in 0..self.closed.len() {
            let (used, alloc) = (self.closed[i].used_bytes, self.closed[i].alloc_bytes);
            if alloc < used.saturating_add(TRIM_SLACK) {
                continue;
            }
            Self::set_path(&mut self.path_a, &self.seg_dir, &self.closed[i].name);
            match OpenOptions::new().write(true).open(&self.path_a) {
                Ok(f) => self.closed[i].alloc_bytes = trim_to_used(&f, &self.closed[i].name, alloc, used),
                Err(e) => log::warn!("cannot open {} to trim it: {e}", self.closed[i].name),
            }
        }
    }

    /// Closes the open segment cleanly (for shutdown).
    pub fn close(mut self) -> Result<StoreStats, StoreError> {
        self.close_segment()?;
        Ok(self.stats)
    }

    fn is_protected(&self, s: &SegmentInfo) -> bool {
        self.protected.covers(s.start_utc_ns, s.end_utc_ns)
    }

    fn unlink(&mut self, seg: &SegmentInfo) {
        Self::set_path(&mut self.path_a, &self.seg_dir, &seg.name);
        match fs::remove_file(&self.path_a) {
            Ok(()) => {
                self.stats.deleted += 1;
                log::info!("retention: deleted {}", seg.name);
            }
            Err(e) => log::error!("retention: cannot delete {}: {e}", seg.name),
        }
    }

    fn free_bytes(&self) -> u64 {
        match rustix::fs::fstatvfs(&self.seg_dir_file) {
            Ok(s) => s.f_bavail.saturating_mul(s.f_frsize),
            Err(_) => u64::MAX,
        }
    }

    /// The free space retention keeps: `min_free_bytes`, but never more than an eighth of the
    /// file system, so a small card still records (docs/FORMAT.md, "Retention").
    fn reserve_bytes(&self) -> u64 {
        let size = match rustix::fs::fstatvfs(&self.seg_dir_file) {
            Ok(s) => s.f_blocks.saturating_mul(s.f_frsize),
            Err(_) => u64::MAX,
        };
        self.opts.min_free_bytes.min(size / 8)
    }

    /// Logs and counts taking a protected segment because no unprotected one is left (rule 2's
    /// last resort: recording never stops).
    fn note_last_resort(&mut self, seg: &SegmentInfo, uncopied: bool, why: &str) {
        if self.is_protected(seg) {
            log::warn!(
                "retention: deleting protected {}{}: no unprotected footage is left and {why} needs room",
                seg.name,
                if uncopied { " (no verified offloaded copy)" } else { " (verified offloaded)" }
            );
            self.stats.protected_deleted += 1;
            if uncopied {
                self.stats.protected_deleted_unoffloaded += 1;
            }
        }
    }

    /// The segment retention takes next (docs/FORMAT.md, "Retention"): unprotected footage,
    /// then protected footage with a verified offloaded copy, then the rest; the segment an
    /// upload is reading only when nothing else is left. With it: whether it is protected
    /// footage without a verified copy.
    fn oldest_deletable(&self) -> Option<(usize, bool)> {
        let c = &self.closed;
        self.hints.choose(c.len(), |i| c[i].first_seq, |i| self.is_protected(&c[i]))
    }

    /// Applies retention before a segment of `capacity` bytes starts. Returns a segment to
    /// recycle into it, if retention took one.
    fn make_room(&mut self, capacity: u64) -> Option<SegmentInfo> {
        let cap = self.opts.storage_cap_bytes;
        let pcap = cap / 100 * self.opts.protected_cap_percent as u64;
        // Rule 1 (the only rule that deletes protected footage while unprotected footage is
        // left): protected footage over its cap, oldest first. Footage is counted (used bytes),
        // never preallocation.
        loop {
            let pbytes: u64 = self.closed.iter().filter(|s| self.is_protected(s)).map(|s| s.used_bytes).sum();
            if pbytes <= pcap {
                break;
            }
            let c = &self.closed;
            let Some((i, uncopied)) = self.hints.choose_protected(c.len(), |i| c[i].first_seq, |i| self.is_protected(&c[i])) else { break };
            let seg = self.closed.remove(i);
            if uncopied {
                self.stats.protected_deleted_unoffloaded += 1;
            }
            log::warn!(
                "retention: deleting protected {}{} ({} KiB): protected footage {} MiB is over its cap of {} MiB ({}% of the storage cap)",
                seg.name,
                if uncopied { "" } else { " (verified offloaded)" },
                seg.used_bytes >> 10,
                pbytes >> 20,
                pcap >> 20,
                self.opts.protected_cap_percent
            );
            self.stats.protected_deleted += 1;
            self.unlink(&seg);
        }
        let free0 = self.free_bytes();
        let reserve = self.reserve_bytes();
        let mut freed = 0u64;
        let mut recycled: Option<SegmentInfo> = None;
        loop {
            let closed: u64 = self.closed.iter().map(|s| s.used_bytes).sum();
            let (new_alloc, need_new) = match &recycled {
                Some(r) => (recycled_size(r.alloc_bytes, capacity), capacity.saturating_sub(r.alloc_bytes)),
                None => (capacity, capacity),
            };
            let avail = free0.saturating_add(freed);
            if closed + new_alloc <= cap && avail >= need_new.saturating_add(reserve) {
                break;
            }
            let Some((i, uncopied)) = self.oldest_deletable() else { break };
            let seg = self.closed.remove(i);
            self.note_last_resort(&seg, uncopied, "the storage cap or the free-space reserve");
            if recycled.is_none() {
                recycled = Some(seg);
            } else {
                freed += seg.alloc_bytes;
                self.unlink(&seg);
            }
        }
        recycled
    }

    fn start_segment(&mut self, meta: &FrameMeta) -> Result<(), StoreError> {
        if let Some(t) = self.start_failed_at
            && meta.mono_ns.saturating_sub(t) < 1_000_000_000
        {
            return Err(StoreError::NoSpace);
        }
        // A segment never takes more than a quarter of the cap: one bigger than the cap would
        // hold it alone, and rotating out of one that big deletes most of the footage at once.
        let quarter = (self.opts.storage_cap_bytes / 4 / (1 << 20) * (1 << 20)).max(4 << 20);
        let mut capacity = self.opts.capacity_for(self.bytes_per_s, self.max_frames()).min(quarter);
        let victim = self.make_room(capacity);
        // A small or nearly full card: a smaller segment (it rotates early when full) rather
        // than none, down to MIN_SEGMENT_BYTES. A recycled file is only extended as far as the
        // free space allows.
        let room = self.free_bytes().saturating_sub(self.reserve_bytes()) / (1 << 20) * (1 << 20);
        let fits = victim.as_ref().map_or(0, |v| v.alloc_bytes).saturating_add(room);
        if fits < capacity {
            if fits < MIN_SEGMENT_BYTES {
                if self.start_failed_at.is_none() {
                    log::error!(
                        "card full: {} MiB free beyond the {} MiB reserve and no segment left to delete; a segment needs at least {} MiB; dropping frames",
                        room >> 20,
                        self.reserve_bytes() >> 20,
                        MIN_SEGMENT_BYTES >> 20
                    );
                }
                self.start_failed_at = Some(meta.mono_ns);
                if let Some(v) = victim {
                    // Not recycled after all: it stays a closed segment.
                    let at = self.closed.partition_point(|s| s.first_seq < v.first_seq);
                    self.closed.insert(at, v);
                }
                return Err(StoreError::NoSpace);
            }
            if victim.is_none() {
                log::warn!("only {} MiB free: starting a {} MiB segment instead of {} MiB", room >> 20, fits >> 20, capacity >> 20);
            }
            capacity = fits;
        }
        self.writer_name = SegName::Open { start_utc_ns: meta.utc_ns, first_seq: self.next_seq }.format();
        Self::set_path(&mut self.path_b, &self.seg_dir, &self.writer_name);
        let recycling = victim.is_some();
        let file = match victim {
            Some(v) => {
                Self::set_path(&mut self.path_a, &self.seg_dir, &v.name);
                fs::rename(&self.path_a, &self.path_b)?;
                // The new name must be durable before the file's contents change: a power cut
                // after the header's fdatasync but before a later directory fsync would leave
                // the old closed name over the new segment's header (found by scripts/powercut;
                // tests/durable_order.rs). Cut before this fsync: the old segment, intact.
                // After it: an `.open` with the old header, which recovery removes.
                self.seg_dir_file.sync_all()?;
                let f = OpenOptions::new().read(true).write(true).open(&self.path_b)?;
                let mut len = f.metadata()?.len();
                let keep = recycled_size(len, capacity);
                if keep < len {
                    // Much bigger than needed (segments were longer, or the camera busier):
                    // give the rest back, or that one file alone can hold the cap and
                    // retention would delete every other segment to make room for it.
                    f.set_len(keep)?;
                    len = keep;
                }
                // Turn the old contents into unwritten extents (a metadata-only operation on
                // ext4): appends that end mid-page then need no read of the old block first,
                // and nothing stale is left to read back. Not every file system has it; the
                // uid binding of every CRC keeps stale records invalid either way.
                let zero = rustix::fs::FallocateFlags::ZERO_RANGE | rustix::fs::FallocateFlags::KEEP_SIZE;
                let _ = rustix::fs::fallocate(&f, zero, 0, len);
                capacity = capacity.max(len);
                self.stats.recycled += 1;
                log::info!("retention: recycling {} as {}", v.name, self.writer_name);
                f
            }
            None => OpenOptions::new().read(true).write(true).create_new(true).open(&self.path_b)?,
        };
        // Preallocate; on ENOSPC delete the oldest segments one by one and try again.
        loop {
            match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, capacity) {
                Ok(()) => break,
                Err(rustix::io::Errno::NOSPC) => {
                    if let Some((i, uncopied)) = self.oldest_deletable() {
                        let seg = self.closed.remove(i);
                        log::warn!("disk full: deleting {} to make room", seg.name);
                        self.note_last_resort(&seg, uncopied, "a full disk");
                        self.unlink(&seg);
                        continue;
                    }
                    log::error!("disk full and no segment left to delete; dropping frames");
                    let _ = fs::remove_file(&self.path_b);
                    self.start_failed_at = Some(meta.mono_ns);
                    return Err(StoreError::NoSpace);
                }
                Err(rustix::io::Errno::OPNOTSUPP) => {
                    file.set_len(capacity)?;
                    break;
                }
                Err(e) => {
                    let _ = fs::remove_file(&self.path_b);
                    return Err(StoreError::Io(e.into()));
                }
            }
        }
        let header = SegHeader {
            version: record::FORMAT_VERSION,
            uid: random_u64(),
            first_seq: self.next_seq,
            start_utc_ns: meta.utc_ns,
            start_mono_ns: meta.mono_ns,
            capacity,
            params: if meta.codec == Codec::H264 { self.h264_params } else { Params::EMPTY },
        };
        let index = std::mem::take(&mut self.index_buf);
        let w = SegmentWriter::start(file, header, index, self.max_frames())?;
        self.gop_mark = None;
        if !recycling {
            self.seg_dir_file.sync_all()?; // the new file's name, before any frame is acknowledged
        }
        self.writer = Some(w);
        self.start_failed_at = None;
        self.stats.segments_started += 1;
        log::info!("segment {} started ({} MiB preallocated)", self.writer_name, capacity >> 20);
        Ok(())
    }

    /// Protects footage between `from` and `to` (UTC ns) from retention. The ranges are kept
    /// merged; the file is replaced atomically before the call returns.
    pub fn protect(&mut self, from: i64, to: i64) -> io::Result<()> {
        let mut p = self.protected.clone();
        p.add(from, to).map_err(io::Error::other)?;
        crate::config::write_atomic(&self.data_dir.join("protected"), p.to_text().as_bytes())?;
        self.protected = p;
        Ok(())
    }

    /// Removes protection from `from..=to` (UTC ns), trimming ranges that stick out.
    pub fn unprotect(&mut self, from: i64, to: i64) -> io::Result<()> {
        let mut p = self.protected.clone();
        p.remove(from, to);
        crate::config::write_atomic(&self.data_dir.join("protected"), p.to_text().as_bytes())?;
        self.protected = p;
        Ok(())
    }

    /// What counts against the storage cap: the closed segments' footage (used bytes) plus
    /// the open segment's preallocation.
    pub fn used_bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.used_bytes).sum::<u64>()
            + self.writer.as_ref().map_or(0, |w| w.header().capacity)
    }
}

/// A closed segment with at least this much allocated beyond its used length is trimmed.
const TRIM_SLACK: u64 = 1 << 20;

/// Truncates a closed segment's file to its used length when it holds at least `TRIM_SLACK`
/// more; returns what stays allocated. Safe at any moment: nothing past the used length (the
/// seal's end) is ever read, and a truncate either happened or not after a power cut
/// (docs/FORMAT.md, "Trim").
fn trim_to_used(file: &File, name: &str, alloc: u64, used: u64) -> u64 {
    if alloc < used.saturating_add(TRIM_SLACK) {
        return alloc;
    }
    match file.set_len(used) {
        Ok(()) => {
            log::debug!("{name}: trimmed to its {} KiB of footage ({} KiB preallocated)", used >> 10, alloc >> 10);
            used
        }
        Err(e) => {
            log::warn!("{name}: cannot trim its unused preallocation: {e}");
            alloc
        }
    }
}

/// A fresh segment uid from the OS CSPRNG (falls back to time if getrandom fails).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    match rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()) {
        Ok(8) => u64::from_le_bytes(b),
        _ => crate::clock::now_mono_ns() ^ (crate::clock::now_utc_ns() as u64).rotate_left(32),
    }
}

/// Where camera `name`'s store lives (`DATA/cameras/<name>`).
pub fn camera_dir(data: &Path, name: &str) -> PathBuf {
    data.join("cameras").join(name)
}

/// The directory holding the GPS track and the sound (`DATA/gps`, `DATA/audio`) for footage in
/// `store_dir`: the data dir itself for the first camera, two levels up for the others.
pub fn sidecar_dir(store_dir: &Path) -> &Path {
    match store_dir.parent() {
        Some(p) if p.file_name().is_some_and(|n| n == "cameras") => p.parent().unwrap_or(store_dir),
        _ => store_dir,
    }
}
