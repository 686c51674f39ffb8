//! What the recorder is doing, for readers on other threads (the web server). The recorder
//! writes plain atomics and never waits; readers load them whenever they like. Each field is
//! consistent on its own; a reader may see `frames` from one frame and `durable_seq` from the
//! previous one, which is fine for a status page.
//!
//! The store-wide figures (bytes used, segment count, oldest footage) cost a walk over the
//! segment list, so the recorder refreshes them at most once per [`STORE_REFRESH_NS`] and
//! whenever the durable watermark rises, not per frame.

use crate::clock;
use crate::store::Store;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};

/// "No value" for the optional fields below.
const NONE_U64: u64 = u64::MAX;
const NONE_I64: i64 = i64::MIN;

/// What the recorder is doing (`state` in `/api/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Opening the camera or the store.
    Starting = 0,
    Recording = 1,
    /// Stopped on request (`PUT /api/recording`); the camera is closed.
    Stopped = 2,
    /// The camera could not be opened or stopped delivering; retrying.
    CameraLost = 3,
    /// Frames arrive but no segment can be started: the card is full (nothing left to
    /// delete) or smaller than the smallest segment.
    CardFull = 4,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Recording => "recording",
            State::Stopped => "stopped",
            State::CameraLost => "camera_lost",
            State::CardFull => "card_full",
        }
    }
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Recording,
            2 => State::Stopped,
            3 => State::CameraLost,
            4 => State::CardFull,
            _ => State::Starting,
        }
    }
}

/// The camera as opened: its one-line description and the negotiated format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CameraInfo {
    pub describe: String,
    /// Device path for V4L2 cameras.
    pub device: Option<String>,
    pub driver: Option<String>,
    /// Pixel format the camera delivers (e.g. `MJPG`, `YUYV`); `JPEG` for synthetic and file sources.
    pub pixel_format: Option<String>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl CameraInfo {
    /// Builds the info from a camera's description (`v4l2 /dev/video0 (vivid): YUYV 640x360 @
    /// 30 fps -> JPEG q80`), size and nominal rate. Parts that don't parse stay `None`.
    pub fn new(describe: String, (width, height): (u32, u32), fps: u32) -> CameraInfo {
        let mut info = CameraInfo { width, height, fps, ..CameraInfo::default() };
        if let Some(rest) = describe.strip_prefix("v4l2 ") {
            let dev_end = rest.find([' ', ':']).unwrap_or(rest.len());
            info.device = Some(rest[..dev_end].to_string());
            let rest = &rest[dev_end..];
            if let Some(open) = rest.strip_prefix(" (")
                && let Some(close) = open.find([',', ')'])
            {
                let d = &open[..close];
                info.driver = Some(d.strip_prefix("driver ").unwrap_or(d).to_string());
            }
            if let Some(colon) = rest.find("): ").map(|i| i + 1).or(rest.find(": ")) {
                info.pixel_format =
                    rest[colon + 2..].split_whitespace().next().filter(|f| f.bytes().all(|b| b.is_ascii_alphanumeric())).map(str::to_string);
            }
        } else if !describe.is_empty() {
            info.pixel_format = Some("JPEG".to_string());
        }
        info.describe = describe;
        info
    }
}

/// While recording, no frame for this long means the camera is lost (`camera_lost`).
pub const CAMERA_LOST_AFTER_NS: u64 = 2_000_000_000;

/// How often at most the recorder recomputes the store-wide figures.
pub const STORE_REFRESH_NS: u64 = 1_000_000_000;

#[derive(Debug)]
pub struct RecorderStatus {
    recording: AtomicBool,
    /// Frames stored.
    frames: AtomicU64,
    /// Frames lost since the process started, by cause (`Cause as usize`).
    lost: [AtomicU64; 8],
    /// Count of earlier recording runs of this process (the recorder counts per run).
    base_frames: AtomicU64,
    /// Monotonic time of the newest frame from the camera (or of the run's start).
    last_frame_mono_ns: AtomicU64,
    /// Frames the camera handed to the recorder since the process started.
    delivered: AtomicU64,
    /// The V4L2 driver's sequence number of the newest frame (`NONE_U64` for other sources).
    camera_sequence: AtomicU64,
    card_full: AtomicBool,
    durable_seq: AtomicU64,
    used_bytes: AtomicU64,
    segments: AtomicU64,
    oldest_utc_ns: AtomicI64,
    newest_utc_ns: AtomicI64,
    store_refreshed_mono_ns: AtomicU64,
    state: AtomicU8,
    /// Set when a camera is opened (not per frame); read by the web side.
    camera: Mutex<CameraInfo>,
    started_mono_ns: u64,
    started_utc_ns: i64,
}

/// One reading of [`RecorderStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Recording as far as frames show: false when the camera went silent or the card is full.
    pub recording: bool,
    /// A recording run is active (the supervisor's flag; true while the camera is silent).
    pub run_active: bool,
    pub state: State,
    pub frames: u64,
    /// Frames the camera handed over (stored, lost to backpressure or the store, or in flight).
    pub delivered: u64,
    /// The V4L2 driver's sequence number of the newest frame.
    pub camera_sequence: Option<u64>,
    /// Frames lost, all causes.
    pub dropped: u64,
    pub lost: crate::recorder::Lost,
    pub durable_seq: Option<u64>,
    pub used_bytes: u64,
    pub segments: u64,
    pub oldest_utc_ns: Option<i64>,
    pub newest_utc_ns: Option<i64>,
    pub started_utc_ns: i64,
    pub uptime_s: u64,
}

impl Default for RecorderStatus {
    fn default() -> Self {
        Self::new()
    }
}

impl RecorderStatus {
    /// A status whose uptime starts now.
    pub fn new() -> RecorderStatus {
        RecorderStatus {
            recording: AtomicBool::new(false),
            frames: AtomicU64::new(0),
            lost: Default::default(),
            base_frames: AtomicU64::new(0),
            last_frame_mono_ns: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            camera_sequence: AtomicU64::new(NONE_U64),
            card_full: AtomicBool::new(false),
            durable_seq: AtomicU64::new(NONE_U64),
            used_bytes: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            oldest_utc_ns: AtomicI64::new(NONE_I64),
            newest_utc_ns: AtomicI64::new(NONE_I64),
            store_refreshed_mono_ns: AtomicU64::new(0),
            state: AtomicU8::new(State::Starting as u8),
            camera: Mutex::new(CameraInfo::default()),
            started_mono_ns: clock::now_mono_ns(),
            started_utc_ns: clock::now_utc_ns(),
        }
    }

    /// Sets the camera description (when a camera is opened; not per frame).
    pub fn set_camera(&self, info: CameraInfo) {
        *self.camera.lock().unwrap_or_else(|p| p.into_inner()) = info;
    }

    /// The camera as last opened.
    pub fn camera(&self) -> CameraInfo {
        self.camera.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_recording(&self, on: bool) {
        self.recording.store(on, Relaxed);
        if on {
            self.last_frame_mono_ns.store(clock::now_mono_ns(), Relaxed);
            self.set_state(State::Recording);
        } else {
            self.card_full.store(false, Relaxed);
        }
    }

    /// The store could not start a segment for lack of space (or can again).
    pub fn set_card_full(&self, full: bool) {
        if self.card_full.load(Relaxed) != full {
            self.card_full.store(full, Relaxed);
        }
    }

    /// `n` frames lost for `cause`. No allocation.
    pub fn lose(&self, cause: crate::recorder::ring::Cause, n: u64) {
        self.lost[cause as usize].fetch_add(n, Relaxed);
    }

    pub fn set_state(&self, state: State) {
        self.state.store(state as u8, Relaxed);
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed))
    }

    /// Before a new recording run: its per-run counters continue the totals of earlier runs.
    pub fn begin_run(&self) {
        self.base_frames.store(self.frames.load(Relaxed), Relaxed);
    }

    /// Per stored frame (the store side): the run's count of frames stored. No allocation.
    pub fn stored(&self, frames: u64) {
        self.frames.store(self.base_frames.load(Relaxed) + frames, Relaxed);
    }

    /// Per frame from the camera (the capture side): the driver's sequence number, if any.
    pub fn camera_sequence(&self, seq: Option<u32>) {
        self.camera_sequence.store(seq.map_or(NONE_U64, u64::from), Relaxed);
    }

    /// Per frame from the camera (the capture side): its capture times. No allocation.
    pub fn frame(&self, utc_ns: i64, mono_ns: u64) {
        // Release: a snapshot that sees this count sees the sequence stored before it.
        self.delivered.fetch_add(1, std::sync::atomic::Ordering::Release);
        self.last_frame_mono_ns.store(mono_ns.max(self.last_frame_mono_ns.load(Relaxed)), Relaxed);
        self.newest_utc_ns.store(utc_ns, Relaxed);
        if self.oldest_utc_ns.load(Relaxed) == NONE_I64 {
            self.oldest_utc_ns.store(utc_ns, Relaxed);
        }
    }

    /// Copies the store's watermark; when it rose, or a second has passed, also the store-wide
    /// figures. Called by the recorder after each tick. No allocation.
    pub fn store(&self, store: &Store, now_mono_ns: u64) {
        let durable = store.durable_seq().unwrap_or(NONE_U64);
        let rose = self.durable_seq.swap(durable, Relaxed) != durable;
        let last = self.store_refreshed_mono_ns.load(Relaxed);
        if rose || now_mono_ns.saturating_sub(last) >= STORE_REFRESH_NS || last == 0 {
            self.refresh_store(store, now_mono_ns);
        }
    }

    /// Recomputes the store-wide figures now.
    pub fn refresh_store(&self, store: &Store, now_mono_ns: u64) {
        self.store_refreshed_mono_ns.store(now_mono_ns.max(1), Relaxed);
        self.durable_seq.store(store.durable_seq().unwrap_or(NONE_U64), Relaxed);
        self.used_bytes.store(store.used_bytes(), Relaxed);
        let closed = store.closed_segments();
        let open = u64::from(store.open_segment_name().is_some());
        self.segments.store(closed.len() as u64 + open, Relaxed);
        // Until a segment closes, the oldest footage is this run's first frame (see `frame`).
        if let Some(first) = closed.first() {
            self.oldest_utc_ns.store(first.start_utc_ns, Relaxed);
        }
        // Footage from an earlier run, before this run's first frame.
        if let Some(last) = closed.last() {
            let _ = self.newest_utc_ns.compare_exchange(NONE_I64, last.end_utc_ns, Relaxed, Relaxed);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let opt_u = |v: u64| (v != NONE_U64).then_some(v);
        let opt_i = |v: i64| (v != NONE_I64).then_some(v);
        use crate::recorder::ring::Cause;
        let l = |c: Cause| self.lost[c as usize].load(Relaxed);
        let lost = crate::recorder::Lost {
            driver: l(Cause::Driver),
            deadline: l(Cause::Deadline),
            encoder: l(Cause::Encoder),
            backpressure: l(Cause::Backpressure),
            store: l(Cause::Store),
        };
        // Recording as far as the supervisor knows; the frames say whether it really is.
        let (mut recording, mut state) = (self.recording.load(Relaxed), self.state());
        if recording && state == State::Recording {
            let silent = clock::now_mono_ns().saturating_sub(self.last_frame_mono_ns.load(Relaxed));
            if silent > CAMERA_LOST_AFTER_NS {
                (recording, state) = (false, State::CameraLost);
            } else if self.card_full.load(Relaxed) {
                (recording, state) = (false, State::CardFull);
            }
        }
        Snapshot {
            recording,
            run_active: self.recording.load(Relaxed),
            state,
            frames: self.frames.load(Relaxed),
            delivered: self.delivered.load(std::sync::atomic::Ordering::Acquire),
            camera_sequence: opt_u(self.camera_sequence.load(Relaxed)),
            dropped: lost.total(),
            lost,
            durable_seq: opt_u(self.durable_seq.load(Relaxed)),
            used_bytes: self.used_bytes.load(Relaxed),
            segments: self.segments.load(Relaxed),
            oldest_utc_ns: opt_i(self.oldest_utc_ns.load(Relaxed)),
            newest_utc_ns: opt_i(self.newest_utc_ns.load(Relaxed)),
            started_utc_ns: self.started_utc_ns,
            uptime_s: clock::now_mono_ns().saturating_sub(self.started_mono_ns) / 1_000_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_status_has_no_values_and_the_camera_is_replaced() {
        let s = RecorderStatus::new();
        let snap = s.snapshot();
        assert!(!snap.recording);
        assert_eq!((snap.durable_seq, snap.oldest_utc_ns, snap.newest_utc_ns), (None, None, None));
        s.set_camera(CameraInfo::new("one".into(), (2, 2), 1));
        s.set_camera(CameraInfo::new("two".into(), (2, 2), 1));
        assert_eq!(s.camera().describe, "two");
        s.set_recording(true);
        s.frame(1234, clock::now_mono_ns());
        s.stored(5);
        s.lose(crate::recorder::ring::Cause::Driver, 1);
        let snap = s.snapshot();
        assert!(snap.recording);
        assert_eq!((snap.frames, snap.dropped, snap.lost.driver, snap.newest_utc_ns), (5, 1, 1, Some(1234)));
        s.frame(2000, clock::now_mono_ns());
        assert_eq!(s.snapshot().oldest_utc_ns, Some(1234), "the first frame stays the oldest");
        s.set_card_full(true);
        assert_eq!(s.snapshot().state, State::CardFull);
        s.set_card_full(false);
        assert_eq!(s.snapshot().state, State::Recording);
    }

    #[test]
    fn frames_that_stop_coming_make_the_camera_lost() {
        let s = RecorderStatus::new();
        s.set_recording(true);
        s.frame(1, clock::now_mono_ns() - CAMERA_LOST_AFTER_NS - 1_000_000);
        // set_recording stamped "now": the run's start counts as a frame.
        assert_eq!(s.snapshot().state, State::Recording);
        let s = RecorderStatus::new();
        s.set_recording(true);
        s.last_frame_mono_ns.store(clock::now_mono_ns() - CAMERA_LOST_AFTER_NS - 1_000_000, Relaxed);
        let snap = s.snapshot();
        assert_eq!((snap.state, snap.recording), (State::CameraLost, false));
    }

    #[test]
    fn camera_info_parses_the_v4l2_description() {
        let i = CameraInfo::new("v4l2 /dev/video0 (driver vivid, card \"x: y\"): YUYV 640x360 @ 30 fps -> JPEG q80".into(), (640, 360), 30);
        assert_eq!(i.device.as_deref(), Some("/dev/video0"));
        assert_eq!(i.driver.as_deref(), Some("vivid"));
        assert_eq!(i.pixel_format.as_deref(), Some("YUYV"));
        let s = CameraInfo::new("synthetic 160x120 @ 30 fps".into(), (160, 120), 30);
        assert_eq!((s.device, s.driver, s.pixel_format.as_deref()), (None, None, Some("JPEG")));
    }
}
