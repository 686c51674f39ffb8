//! The supervisor: a small loop around [`recorder::run`] on the recorder thread that starts and
//! stops recording on request and restarts it cleanly when the configuration changed in a way
//! that can't be applied live (frame size, rate, device, segment length, JPEG settings).
//!
//! - **Stop** (`PUT /api/recording {"recording":false}`): the recorder loop returns after the
//!   current frame, the open group is committed, the camera is closed (a V4L2 device is
//!   released) and the supervisor idles, still serving protect/unprotect through the store.
//! - **Restart**: close the camera, close the store (the open segment is sealed), reopen the
//!   store with the new options, reopen the camera with the new size/rate/device.
//! - A camera that can't be opened is retried every [`RETRY`] (state `camera_lost`) instead of
//!   ending the process, except for the camera given at start, whose fatal errors end `run`
//!   with exit code 1 as before (a bad `--source` is the operator's to fix).
//!
//! The recorder never waits on the web side: requests arrive through [`Control`]'s atomics
//! and its non-blocking queue.

use crate::camera::Camera;
use crate::clock;
use crate::config::Config;
use crate::control::Control;
use crate::live::LiveSlot;
use crate::recorder::{self, RecorderOptions, Summary};
use crate::status::{CameraInfo, RecorderStatus, State};
use crate::store::{Store, StoreOptions, StoreStats};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a camera that failed to open is tried again.
pub const RETRY: Duration = Duration::from_secs(2);
/// How often the idle supervisor looks at its mailbox.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Opens the camera for a configuration.
pub type OpenCamera<'a> = dyn Fn(&Config) -> Result<Box<dyn Camera>, String> + 'a;

pub struct Supervisor<'a> {
    pub data: &'a Path,
    pub control: &'a Control,
    pub status: &'a RecorderStatus,
    pub live: &'a LiveSlot,
    pub stop: &'a AtomicBool,
    pub report_durable: bool,
    pub open_camera: &'a OpenCamera<'a>,
    pub store_options: &'a dyn Fn(&Config) -> StoreOptions,
    /// Where the store's flushes run (`recorder::Mode`); `None`: a ring sized from the config.
    pub mode: Option<recorder::Mode>,
    /// The camera's name for logs and `durable` lines: empty for the first camera.
    pub name: &'a str,
    /// Every camera error is retried, even at start (the cameras besides the first: one
    /// camera's trouble never ends the process).
    pub persistent: bool,
}

/// Totals over every recording run of the process.
#[derive(Debug, Default)]
pub struct Outcome {
    pub summary: Summary,
    pub stats: StoreStats,
    /// Exit code: 0, or 1 when the start camera failed fatally or the store could not close.
    pub code: i32,
}

fn add_summary(t: &mut Summary, s: &Summary) {
    t.frames += s.frames;
    t.delivered += s.delivered;
    t.dropped += s.dropped;
    t.lost.add(&s.lost);
    t.camera_errors += s.camera_errors;
    t.gaps += s.gaps;
    t.allocs_warmup += s.allocs_warmup;
    t.allocs_recording += s.allocs_recording;
    t.recording_frames += s.recording_frames;
    t.end_of_stream |= s.end_of_stream;
}

fn add_stats(t: &mut StoreStats, s: &StoreStats) {
    t.frames += s.frames;
    t.dropped += s.dropped;
    t.commits += s.commits;
    t.syncs += s.syncs;
    t.bytes_written += s.bytes_written;
    t.segments_started += s.segments_started;
    t.segments_closed += s.segments_closed;
    t.recycled += s.recycled;
    t.deleted += s.deleted;
}

/// The camera's description for the status page, and a live slot large enough for its frames.
pub fn announce_camera(status: &RecorderStatus, live: &LiveSlot, cam: &dyn Camera) {
    let (w, h) = cam.size();
    live.ensure_capacity(live_capacity(w, h));
    status.set_camera(CameraInfo::new(cam.describe(), (w, h), cam.fps()));
}

/// Bytes a live frame of `w`x`h` may take (JPEG frames are far smaller than raw ones).
pub fn live_capacity(w: u32, h: u32) -> usize {
    (w as usize * h as usize * 3 / 2).max(1 << 20)
}

impl Supervisor<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d` in short steps, serving the mailbox; returns early on stop or restart.
    fn idle(&self, d: Duration, store: Option<&mut Store>) {
        let until = std::time::Instant::now() + d;
        let mut store = store;
        while std::time::Instant::now() < until && !self.stopped() {
            if let Some(s) = store.as_deref_mut() {
                self.control.serve(s);
            }
            std::thread::sleep(IDLE_POLL);
            if self.control.restart_pending() {
                break;
            }
        }
    }

    /// Records until SIGTERM/SIGINT (or the end of a `file:` source). `camera` is the camera
    /// opened at start (already announced), `store` the store opened at start.
    pub fn run(&self, camera: Option<Box<dyn Camera>>, store: Store) -> Outcome {
        let mut out = Outcome::default();
        let mut camera = camera;
        let mut store = Some(store);
        // After a reconfiguration from the web, camera trouble is retried, never fatal.
        let mut reconfigured = self.persistent;
        let who = if self.name.is_empty() { "camera".to_string() } else { format!("camera {}", self.name) };
        let mut open_error_logged = false;
        while !self.stopped() {
            if self.control.take_restart() {
                reconfigured = true;
                self.status.set_state(State::Starting);
                if camera.take().is_some() {
                    log::info!("restart: camera closed");
                }
                if let Some(s) = store.take() {
                    match s.close() {
                        Ok(st) => add_stats(&mut out.stats, &st),
                        Err(e) => log::error!("restart: closing the store failed: {e}"),
                    }
                }
                if self.control.take_erase() {
                    let r = crate::store::erase_all(self.data);
                    match &r {
                        Ok(n) => log::warn!("erase: every recording deleted on request from the dashboard ({n} files)"),
                        Err(e) => log::error!("erase: {e}"),
                    }
                    self.control.erase_done(r.err().map(|e| e.to_string()));
                }
                log::info!("restart: applying the new configuration");
            }
            if store.is_none() {
                let cfg = self.control.config();
                match Store::open(self.data, (self.store_options)(&cfg)) {
                    Ok(s) => {
                        self.status.refresh_store(&s, clock::now_mono_ns());
                        store = Some(s);
                    }
                    Err(e) => {
                        log::error!("restart: cannot open the store: {e}; retrying");
                        self.idle(RETRY, None);
                        continue;
                    }
                }
            }
            let Some(st) = store.as_mut() else { continue };
            if !self.control.want_recording() {
                if camera.take().is_some() {
                    log::info!("recording stopped on request; camera closed");
                }
                self.status.set_recording(false);
                self.status.set_state(State::Stopped);
                self.idle(IDLE_POLL, Some(st));
                continue;
            }
            if camera.is_none() {
                let cfg = self.control.config();
                match (self.open_camera)(&cfg) {
                    Ok(c) => {
                        log::info!("{who}: {}", c.describe());
                        announce_camera(self.status, self.live, c.as_ref());
                        open_error_logged = false;
                        camera = Some(c);
                    }
                    Err(e) => {
                        if !open_error_logged {
                            log::error!("{who}: {e}; retrying every {} s", RETRY.as_secs());
                            open_error_logged = true;
                        }
                        self.status.set_recording(false);
                        self.status.set_state(State::CameraLost);
                        self.idle(RETRY, Some(st));
                        continue;
                    }
                }
            }
            let Some(cam) = camera.as_mut() else { continue };
            let mode = self.mode.unwrap_or_else(|| {
                let so = (self.store_options)(&self.control.config());
                let (ring_bytes, ring_frames) = recorder::ring_size(so.expected_bytes_per_s, so.fps);
                recorder::Mode::Threaded { ring_bytes, ring_frames }
            });
            let opts = RecorderOptions {
                report_durable: self.report_durable,
                durable_tag: self.name,
                status: Some(self.status),
                control: Some(self.control),
                mode,
            };
            self.status.begin_run();
            match recorder::run(cam.as_mut(), st, self.live, self.stop, opts) {
                Ok(s) => {
                    add_summary(&mut out.summary, &s);
                    if s.end_of_stream {
                        break;
                    }
                }
                Err(e) => {
                    log::error!("{who}: recording stopped: {}", e.0);
                    camera = None;
                    if !reconfigured {
                        out.code = 1;
                        break;
                    }
                    self.status.set_state(State::CameraLost);
                    self.idle(RETRY, store.as_mut());
                }
            }
        }
        self.status.set_recording(false);
        drop(camera);
        if let Some(s) = store.take() {
            let partial = s.stats();
            match s.close() {
                Ok(st) => add_stats(&mut out.stats, &st),
                Err(e) => {
                    log::error!("closing the store failed: {e}");
                    add_stats(&mut out.stats, &partial);
                    out.code = 1;
                }
            }
        }
        out
    }
}
