//! The hardware watchdog: pet `/dev/watchdog` only while the recorder is healthy.
//!
//! A small thread of its own looks at the recorder's counters ([`RecorderStatus`]) once a
//! second. The counters are the store side's heartbeat: every frame it takes from the ring
//! raises `frames` (stored) or `lost.store` (the store refused it). Frames the capture side
//! drops because the ring is full don't count: a store thread stuck in `fdatasync` is hung
//! even while the camera goes on. The thread pets the watchdog while
//! - frames are flowing: the counters rose within the last [`STALL_NS`], or
//! - recording is deliberately stopped (`recording` is false: the user stopped it), or
//! - the recorder has just started and has not taken its first frame yet
//!   ([`STARTUP_GRACE_NS`]: camera and store start-up).
//!
//! A hung recorder (a deadlock, a camera that never answers, an `fdatasync` that never
//! returns, the whole process stopped by SIGSTOP) stops the petting, and the hardware resets
//! the device [`TIMEOUT_S`] later. On a deliberate exit (SIGTERM, end of a `file:` source) the
//! thread writes the magic 'V' before closing, so the driver disarms; on any other exit the
//! watchdog stays armed and the restarted blackbox (inittab respawn) must take over in time.
//!
//! The decision is [`Observer::observe`], a pure function of the counters and the clock, so it
//! is tested without a device.

use crate::status::RecorderStatus;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Hardware timeout asked of the driver (WDIOC_SETTIMEOUT); drivers may round it.
pub const TIMEOUT_S: i32 = 10;
/// Frames must have flowed within this long for the recorder to count as alive.
pub const STALL_NS: u64 = 10_000_000_000;
/// Before the first frame, the recorder counts as alive for this long.
pub const STARTUP_GRACE_NS: u64 = 60_000_000_000;
/// How often the thread looks (and pets).
pub const PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the recorder counts as healthy, or that it does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Flowing,
    Stopped,
    Starting,
    Hung,
}

/// Remembers when the recorder's counters last moved.
#[derive(Clone, Copy, Debug)]
pub struct Observer {
    started_ns: u64,
    last_count: u64,
    last_change_ns: Option<u64>,
}

impl Observer {
    /// An observer whose start-up grace begins at `now_ns` (monotonic).
    pub fn new(now_ns: u64, count: u64) -> Observer {
        Observer { started_ns: now_ns, last_count: count, last_change_ns: None }
    }

    /// One look: `recording` and `count` (frames + dropped) as the recorder last stored them.
    pub fn observe(&mut self, recording: bool, count: u64, now_ns: u64) -> Verdict {
        if count != self.last_count {
            self.last_count = count;
            self.last_change_ns = Some(now_ns);
        }
        if !recording {
            // Deliberately stopped. Flowing again is judged afresh from the next frame on.
            self.last_change_ns = self.last_change_ns.map(|_| now_ns);
            self.started_ns = now_ns;
            return Verdict::Stopped;
        }
        match self.last_change_ns {
            Some(t) if now_ns.saturating_sub(t) <= STALL_NS => Verdict::Flowing,
            None if now_ns.saturating_sub(self.started_ns) <= STARTUP_GRACE_NS => Verdict::Starting,
            _ => Verdict::Hung,
        }
    }
}

// <linux/watchdog.h>: _IOR('W', 5, int) and _IOWR('W', 6, int).
const WDIOC_KEEPALIVE: libc::c_ulong = 0x8004_5705;
const WDIOC_SETTIMEOUT: libc::c_ulong = 0xc004_5706;

const RUN: u8 = 0;
const DISARM: u8 = 1;
const LEAVE_ARMED: u8 = 2;

/// The running watchdog thread. Call [`Watchdog::finish`] when the recorder returns.
pub struct Watchdog {
    how: Arc<AtomicU8>,
    thread: JoinHandle<()>,
}

impl Watchdog {
    /// Opens the watchdog device (which arms it), asks for [`TIMEOUT_S`] and starts petting it
    /// from a thread while `status` says the recorder is healthy.
    pub fn start(device: &Path, status: Arc<RecorderStatus>) -> std::io::Result<Watchdog> {
        let mut dev = std::fs::OpenOptions::new().write(true).open(device)?;
        let mut timeout: libc::c_int = TIMEOUT_S;
        // SAFETY: WDIOC_SETTIMEOUT reads and writes one c_int through the pointer, which
        // points at a live local of that type; the fd is open for the duration of the call.
        let rc = unsafe { libc::ioctl(dev.as_raw_fd(), WDIOC_SETTIMEOUT as _, &mut timeout as *mut libc::c_int) };
        if rc == 0 {
            log::info!("watchdog: {} armed, timeout {timeout} s", device.display());
        } else {
            log::warn!(
                "watchdog: {} armed; the driver keeps its own timeout ({})",
                device.display(),
                std::io::Error::last_os_error()
            );
        }
        keepalive(&mut dev);
        let how = Arc::new(AtomicU8::new(RUN));
        let h = Arc::clone(&how);
        let name = device.display().to_string();
        let thread = std::thread::Builder::new().name("watchdog".into()).spawn(move || pet_loop(dev, &status, &h, &name))?;
        Ok(Watchdog { how, thread })
    }

    /// Stops the thread. `deliberate`: the process is stopping on purpose, so the watchdog is
    /// disarmed (magic close); otherwise it stays armed and resets the device unless a new
    /// blackbox takes it over in time.
    pub fn finish(self, deliberate: bool) {
        self.how.store(if deliberate { DISARM } else { LEAVE_ARMED }, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

fn keepalive(dev: &mut File) {
    let mut dummy: libc::c_int = 0;
    // SAFETY: WDIOC_KEEPALIVE takes (and ignores) a pointer to a c_int; it points at a live
    // local. The fd is open.
    let rc = unsafe { libc::ioctl(dev.as_raw_fd(), WDIOC_KEEPALIVE as _, &mut dummy as *mut libc::c_int) };
    if rc != 0 {
        // Drivers without the ioctl take any write as a keepalive.
        let _ = dev.write_all(b"\0");
    }
}

fn pet_loop(mut dev: File, status: &RecorderStatus, how: &AtomicU8, name: &str) {
    let snap = status.snapshot();
    let mut obs = Observer::new(crate::clock::now_mono_ns(), snap.frames + snap.lost.store);
    let mut last = Verdict::Starting;
    loop {
        match how.load(Ordering::Relaxed) {
            RUN => {}
            DISARM => {
                // The magic close: the driver disarms when 'V' was the last write before close.
                match dev.write_all(b"V") {
                    Ok(()) => log::info!("watchdog: {name} disarmed (deliberate stop)"),
                    Err(e) => log::warn!("watchdog: {name}: magic close failed ({e}); it stays armed"),
                }
                return;
            }
            _ => {
                log::warn!("watchdog: {name} left armed: the device resets unless blackbox restarts in time");
                return;
            }
        }
        let snap = status.snapshot();
        let v = obs.observe(snap.run_active, snap.frames + snap.lost.store, crate::clock::now_mono_ns());
        if v != last {
            match v {
                Verdict::Hung => log::error!("watchdog: no frame for {} s: not petting; the device will reset", STALL_NS / 1_000_000_000),
                other => log::info!("watchdog: recorder {other:?}"),
            }
            last = v;
        }
        if v != Verdict::Hung {
            keepalive(&mut dev);
        }
        std::thread::park_timeout(PERIOD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: u64 = 1_000_000_000;

    #[test]
    fn flowing_frames_keep_it_healthy_and_a_stall_is_hung() {
        let mut o = Observer::new(0, 0);
        for t in 1..=30 {
            assert_eq!(o.observe(true, t, t * S), Verdict::Flowing, "t={t}");
        }
        // Counters frozen from t=30 s: healthy up to STALL_NS, hung after.
        assert_eq!(o.observe(true, 30, 30 * S + STALL_NS), Verdict::Flowing);
        assert_eq!(o.observe(true, 30, 30 * S + STALL_NS + 1), Verdict::Hung);
        assert_eq!(o.observe(true, 30, 100 * S), Verdict::Hung);
        // Frames again: healthy again.
        assert_eq!(o.observe(true, 31, 101 * S), Verdict::Flowing);
    }

    #[test]
    fn dropped_frames_count_as_a_living_recorder() {
        // frames + dropped is the heartbeat: a full disk drops frames but the loop is alive.
        let mut o = Observer::new(0, 10);
        for t in 1..=20u64 {
            assert_eq!(o.observe(true, 10 + t, t * S), Verdict::Flowing);
        }
    }

    #[test]
    fn startup_grace_ends_without_a_first_frame() {
        let mut o = Observer::new(5 * S, 0);
        assert_eq!(o.observe(true, 0, 5 * S + STARTUP_GRACE_NS), Verdict::Starting);
        assert_eq!(o.observe(true, 0, 5 * S + STARTUP_GRACE_NS + 1), Verdict::Hung);
    }

    #[test]
    fn a_deliberate_stop_is_healthy_for_as_long_as_it_lasts_and_restarting_is_judged_afresh() {
        let mut o = Observer::new(0, 0);
        assert_eq!(o.observe(true, 5, S), Verdict::Flowing);
        for t in 2..1000 {
            assert_eq!(o.observe(false, 5, t * S), Verdict::Stopped);
        }
        // Restarted after the last look at t=999 s: the first frame may take a while, but
        // not longer than a stall.
        assert_eq!(o.observe(true, 5, 999 * S + STALL_NS), Verdict::Flowing);
        assert_eq!(o.observe(true, 5, 999 * S + STALL_NS + 1), Verdict::Hung);
        assert_eq!(o.observe(true, 6, 999 * S + STALL_NS + 2), Verdict::Flowing);
    }

    #[test]
    fn a_missing_device_is_an_error_not_a_panic() {
        let st = Arc::new(RecorderStatus::new());
        assert!(Watchdog::start(Path::new("/nonexistent/watchdog"), st).is_err());
    }

    #[test]
    fn a_plain_file_takes_the_keepalives_and_the_magic_close() {
        // A regular file refuses the ioctls (ENOTTY), so keepalives fall back to writes: the
        // file records them, and a deliberate finish ends with 'V'.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wd");
        std::fs::write(&p, b"").unwrap();
        let st = Arc::new(RecorderStatus::new());
        st.set_recording(true);
        let wd = Watchdog::start(&p, Arc::clone(&st)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        wd.finish(true);
        let bytes = std::fs::read(&p).unwrap();
        assert!(bytes.len() >= 3, "{bytes:?}");
        assert_eq!(bytes.last(), Some(&b'V'));
        assert!(bytes[..bytes.len() - 1].iter().all(|b| *b == 0));

        std::fs::write(&p, b"").unwrap();
        let wd = Watchdog::start(&p, st).unwrap();
        wd.finish(false);
        assert!(!std::fs::read(&p).unwrap().contains(&b'V'), "left armed: no magic close");
    }
}
