//! Camera trouble (issue 3, item 4): a camera that stalls (no frame for 2 s), reports a
//! dequeue error or vanishes (ENODEV, USB unplug) is closed and opened again, with backoff,
//! until it delivers frames again. The process never dies or hangs on it.
//!
//! [`Reopening`] wraps a camera that can be opened again by a closure (for V4L2: the same
//! device with the same requested size, rate and format). On trouble it logs what happened,
//! drops the camera (V4L2's `Drop` ignores every error), and returns the error to the recorder,
//! which turns the frames that don't arrive into a gap marker in the store. Meanwhile each
//! `next_frame` call sleeps at most [`MAX_WAIT`] towards the next attempt and returns
//! [`CameraError::Timeout`] while it isn't due (a signal cuts the sleep short, so SIGTERM stops
//! the recorder at once). Attempts come [`FIRST_BACKOFF`] after the trouble, then at doubling
//! intervals up to [`MAX_BACKOFF`]; the backoff starts over once a frame arrives. The call that
//! reopens the camera also waits for its first frame (the camera's own 2 s dequeue timeout),
//! so one call can take up to ~4 s; no call ever waits without a bound.
//!
//! A camera that comes back with another format or size is recorded as it is; the change is
//! logged.

use crate::camera::v4l2::V4l2Camera;
use crate::camera::{Camera, CameraError, FrameMeta, Losses};
use crate::clock;
use std::io;
use std::time::Duration;

/// Wait before the first attempt to open the camera again.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest a `next_frame` call sleeps while waiting for the next attempt.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// A camera whose frame can be fetched and then borrowed in two steps, so that the wrapper can
/// drop the camera on an error without holding a borrow of its frame.
pub trait TwoStep: Camera {
    /// Waits for the next frame (as [`Camera::next_frame`] does).
    fn advance(&mut self) -> Result<(), CameraError>;
    /// The frame the last successful `advance` made ready.
    fn current(&self) -> Option<(FrameMeta, &[u8])>;
}

impl TwoStep for V4l2Camera {
    fn advance(&mut self) -> Result<(), CameraError> {
        V4l2Camera::advance(self)
    }
    fn current(&self) -> Option<(FrameMeta, &[u8])> {
        V4l2Camera::current(self)
    }
}

/// A camera that is closed on trouble and opened again with backoff (module docs).
pub struct Reopening<C, F> {
    open: F,
    cam: Option<C>,
    /// For the log: the device.
    name: String,
    /// The opened camera's description, to notice when it comes back different.
    described: String,
    size: (u32, u32),
    fps: u32,
    backoff: Duration,
    next_try_ns: u64,
    /// When the trouble began (monotonic ns), while the camera is down.
    down_since_ns: Option<u64>,
    /// Attempts to open it since it went down.
    attempts: u64,
    /// Losses counted by the cameras closed so far (the open one counts its own).
    losses_closed: Losses,
}

impl<C: TwoStep, F: FnMut() -> Result<C, CameraError>> Reopening<C, F> {
    /// Wraps `cam`, already open; `open` opens it again. `name` names it in the log.
    pub fn new(cam: C, name: &str, open: F) -> Self {
        let described = cam.describe();
        let (size, fps) = (cam.size(), cam.fps());
        Reopening {
            open,
            cam: Some(cam),
            name: name.to_string(),
            described,
            size,
            fps,
            backoff: FIRST_BACKOFF,
            next_try_ns: 0,
            down_since_ns: None,
            attempts: 0,
            losses_closed: Losses::default(),
        }
    }

    /// No camera yet (the device isn't there): `open` is tried at once on the first
    /// `next_frame`, then with backoff. `size` and `fps` are what is asked for.
    pub fn waiting(name: &str, size: (u32, u32), fps: u32, open: F) -> Self {
        Reopening {
            open,
            cam: None,
            name: name.to_string(),
            described: format!("{name} (not there yet; waiting for it)"),
            size,
            fps,
            backoff: FIRST_BACKOFF,
            next_try_ns: 0,
            down_since_ns: Some(clock::now_mono_ns()),
            attempts: 0,
            losses_closed: Losses::default(),
        }
    }

    /// Whether a camera is open now.
    pub fn is_open(&self) -> bool {
        self.cam.is_some()
    }

    /// Schedules the next attempt and lengthens the backoff.
    fn schedule(&mut self, now: u64) -> Duration {
        let wait = self.backoff;
        self.next_try_ns = now + wait.as_nanos() as u64;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        wait
    }

    /// Closes the camera after `e`; returns the error for the recorder (never `Invalid`, which
    /// would end the run: a camera that worked once is worth waiting for).
    fn trouble(&mut self, e: CameraError) -> CameraError {
        let now = clock::now_mono_ns();
        self.down_since_ns.get_or_insert(now);
        if let Some(c) = self.cam.take() {
            self.losses_closed = self.losses_closed + c.losses();
        } // V4l2Camera's Drop stops streaming and closes, ignoring errors
        let wait = self.schedule(now);
        log::warn!("camera {}: {e}; closed it, opening it again in {:.1} s", self.name, wait.as_secs_f64());
        match e {
            CameraError::Invalid(why) => CameraError::Io(io::Error::other(why)),
            e => e,
        }
    }

    /// Tries to open the camera when it is due; `Err` when it is still down.
    fn reopen(&mut self) -> Result<(), CameraError> {
        let now = clock::now_mono_ns();
        if now < self.next_try_ns {
            let wait = Duration::from_nanos(self.next_try_ns - now).min(MAX_WAIT);
            sleep(wait)?;
            if clock::now_mono_ns() < self.next_try_ns {
                return Err(CameraError::Timeout);
            }
        }
        self.attempts += 1;
        match (self.open)() {
            Ok(cam) => {
                let d = cam.describe();
                let since = self.down_since_ns.map_or(0.0, |t| clock::now_mono_ns().saturating_sub(t) as f64 / 1e9);
                log::info!(
                    "camera {}: open again after {:.1} s down ({} attempt(s)): {d}",
                    self.name,
                    since,
                    self.attempts
                );
                if d != self.described && self.cam_was_open_before() {
                    log::warn!("camera {}: came back different: was {}, now {d}", self.name, self.described);
                }
                self.size = cam.size();
                self.fps = cam.fps();
                self.described = d;
                self.cam = Some(cam);
                Ok(())
            }
            Err(e) => {
                let wait = self.schedule(clock::now_mono_ns());
                log::warn!(
                    "camera {}: still unavailable ({e}); attempt {} failed, next in {:.1} s",
                    self.name,
                    self.attempts,
                    wait.as_secs_f64()
                );
                Err(CameraError::Timeout)
            }
        }
    }

    /// True once a camera has been open (its description is a real one).
    fn cam_was_open_before(&self) -> bool {
        !self.described.ends_with("(not there yet; waiting for it)")
    }
}

/// Sleeps for `d`; a signal cuts it short with `Interrupted` (the recorder then looks at its
/// stop flag).
fn sleep(d: Duration) -> Result<(), CameraError> {
    let ts = libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: d.subsec_nanos() as libc::c_long };
    // SAFETY: a valid timespec; the remainder isn't wanted.
    if unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Err(CameraError::Io(e));
        }
    }
    Ok(())
}

impl<C: TwoStep, F: FnMut() -> Result<C, CameraError>> Camera for Reopening<C, F> {
    /// The device node, also while it is closed (its controls come back with it).
    fn device(&self) -> Option<&std::path::Path> {
        Some(std::path::Path::new(&self.name))
    }

    fn describe(&self) -> String {
        match &self.cam {
            Some(c) => format!("{} (reopened on trouble)", c.describe()),
            None => self.described.clone(),
        }
    }

    fn fps(&self) -> u32 {
        self.fps
    }

    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
        if self.cam.is_none() {
            self.reopen()?;
        }
        let Some(cam) = self.cam.as_mut() else { return Err(CameraError::Timeout) };
        match cam.advance() {
            Ok(()) => {}
            // A signal: the recorder is asked to stop; the camera is fine.
            Err(CameraError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => return Err(CameraError::Io(e)),
            Err(CameraError::EndOfStream) => return Err(CameraError::EndOfStream),
            Err(CameraError::Skipped) => return Err(CameraError::Skipped),
            Err(e) => return Err(self.trouble(e)),
        }
        if let Some(t) = self.down_since_ns.take() {
            log::info!(
                "camera {}: frames again after {:.1} s",
                self.name,
                clock::now_mono_ns().saturating_sub(t) as f64 / 1e9
            );
            self.attempts = 0;
        }
        self.backoff = FIRST_BACKOFF;
        let cam = self.cam.as_ref().ok_or(CameraError::Timeout)?;
        cam.current().ok_or_else(|| CameraError::Io(io::Error::from_raw_os_error(libc::EINVAL)))
    }

    fn losses(&self) -> Losses {
        self.losses_closed + self.cam.as_ref().map(|c| c.losses()).unwrap_or_default()
    }

    fn sequence(&self) -> Option<u32> {
        self.cam.as_ref().and_then(|c| c.sequence())
    }

    /// What the open camera delivers (JPEG while it is closed: the H.264 wrapper then passes
    /// H.264 frames of a camera that comes back delivering them through).
    fn delivers(&self) -> crate::camera::Codec {
        self.cam.as_ref().map_or(crate::camera::Codec::Jpeg, |c| c.delivers())
    }

    fn request_key_frame(&mut self) {
        if let Some(c) = self.cam.as_mut() {
            c.request_key_frame();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::Codec;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::time::Instant;

    /// What a fake camera does on each `advance`.
    #[derive(Debug)]
    enum Step {
        Frame,
        Stall,
        Fail(i32),
        Gone,
    }

    /// A scripted camera: `steps` is shared by every instance the opener makes, so a script
    /// runs across reopens. Each instance logs its life in `events`.
    struct Fake {
        id: u32,
        steps: Rc<RefCell<VecDeque<Step>>>,
        events: Rc<RefCell<Vec<String>>>,
        frame: [u8; 4],
        width: u32,
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.events.borrow_mut().push(format!("close {}", self.id));
        }
    }

    impl Camera for Fake {
        fn describe(&self) -> String {
            format!("fake {}x10", self.width)
        }
        fn fps(&self) -> u32 {
            30
        }
        fn size(&self) -> (u32, u32) {
            (self.width, 10)
        }
        fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
            self.advance()?;
            self.current().ok_or(CameraError::Timeout)
        }
    }

    impl TwoStep for Fake {
        fn advance(&mut self) -> Result<(), CameraError> {
            let step = self.steps.borrow_mut().pop_front().unwrap_or(Step::Frame);
            match step {
                Step::Frame => Ok(()),
                Step::Stall => Err(CameraError::Timeout),
                Step::Fail(errno) => Err(CameraError::Io(io::Error::from_raw_os_error(errno))),
                Step::Gone => Err(CameraError::Disconnected("ENODEV".into())),
            }
        }
        fn current(&self) -> Option<(FrameMeta, &[u8])> {
            Some((FrameMeta { mono_ns: 1, utc_ns: 1, codec: Codec::Jpeg, key: true, lost_before: 0 }, &self.frame[..]))
        }
    }

    type Opener = Box<dyn FnMut() -> Result<Fake, CameraError>>;
    type Script = Rc<RefCell<VecDeque<Step>>>;
    type Events = Rc<RefCell<Vec<String>>>;

    /// An opener that fails `fail_first` times, then opens fakes of `width` (shared script).
    fn rig(fail_first: usize, width: u32) -> (Opener, Script, Events) {
        let steps = Rc::new(RefCell::new(VecDeque::new()));
        let events = Rc::new(RefCell::new(Vec::new()));
        let (s, ev) = (steps.clone(), events.clone());
        let mut n = 0u32;
        let mut fails = fail_first;
        let open: Opener = Box::new(move || {
            if fails > 0 {
                fails -= 1;
                ev.borrow_mut().push("open failed".into());
                return Err(CameraError::Disconnected("no such device".into()));
            }
            n += 1;
            ev.borrow_mut().push(format!("open {n}"));
            Ok(Fake { id: n, steps: s.clone(), events: ev.clone(), frame: [0xFF, 0xD8, n as u8, 0], width })
        });
        (open, steps, events)
    }

    #[test]
    fn a_dequeue_error_closes_the_camera_and_it_comes_back_after_the_backoff() {
        let (mut open, steps, events) = rig(0, 64);
        let first = open().unwrap();
        let mut cam = Reopening::new(first, "fake0", open);
        assert_eq!(cam.next_frame().unwrap().1[2], 1);
        steps.borrow_mut().push_back(Step::Fail(libc::EIO));
        let e = cam.next_frame().unwrap_err();
        assert!(matches!(e, CameraError::Io(ref io) if io.raw_os_error() == Some(libc::EIO)), "{e:?}");
        assert!(!cam.is_open());
        assert_eq!(events.borrow().last().unwrap(), "close 1", "the camera was not closed on trouble");
        let t = Instant::now();
        let (_, f) = cam.next_frame().expect("a frame from the reopened camera");
        assert_eq!(f[2], 2, "not a new instance");
        let waited = t.elapsed();
        assert!(waited >= FIRST_BACKOFF && waited < FIRST_BACKOFF + Duration::from_millis(400), "waited {waited:?}");
    }

    #[test]
    fn an_unplugged_camera_is_waited_for_with_backoff_and_no_call_blocks_more_than_max_wait() {
        // Gone, then four failed opens: 0.5 + 1 + 2 + 4 + 5 s of backoff before the fifth.
        let (mut open, steps, events) = rig(0, 64);
        let first = open().unwrap();
        let mut fails = 4;
        let mut inner = open;
        let opener = move || {
            if fails > 0 {
                fails -= 1;
                return Err(CameraError::Disconnected("ENOENT".into()));
            }
            inner()
        };
        let mut cam = Reopening::new(first, "fake0", opener);
        steps.borrow_mut().push_back(Step::Gone);
        assert!(matches!(cam.next_frame(), Err(CameraError::Disconnected(_))));
        let t0 = Instant::now();
        let mut calls = 0;
        let frame = loop {
            let t = Instant::now();
            let r = cam.next_frame().map(|(_, f)| f[2]);
            let took = t.elapsed();
            assert!(took <= MAX_WAIT + Duration::from_millis(300), "one call blocked {took:?}");
            calls += 1;
            match r {
                Ok(f) => break f,
                Err(CameraError::Timeout) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
            assert!(calls < 30, "never came back");
        };
        let total = t0.elapsed().as_secs_f64();
        assert_eq!(frame, 2);
        assert!((12.0..14.0).contains(&total), "backoff 0.5+1+2+4+5 s expected, took {total:.2} s");
        assert!(calls >= 7, "{calls} calls: some call waited more than {MAX_WAIT:?}");
        assert!(events.borrow().contains(&"close 1".to_string()));
    }

    #[test]
    fn a_stall_reopens_and_the_backoff_grows_until_a_frame_arrives() {
        let (mut open, steps, _events) = rig(0, 64);
        let first = open().unwrap();
        let mut cam = Reopening::new(first, "fake0", open);
        // Stalls on the first camera and on the next two reopened ones, then frames.
        steps.borrow_mut().extend([Step::Stall, Step::Stall, Step::Stall]);
        let t0 = Instant::now();
        let mut timeouts = 0;
        let f = loop {
            match cam.next_frame() {
                Ok((_, f)) => break f[2],
                Err(CameraError::Timeout) => timeouts += 1,
                Err(e) => panic!("{e:?}"),
            }
        };
        let took = t0.elapsed().as_secs_f64();
        assert_eq!((f, timeouts), (4, 3));
        // 0.5 + 1 + 2 s of backoff: the stall did not reset it.
        assert!((3.4..4.2).contains(&took), "{took:.2} s");
        // A frame resets the backoff.
        steps.borrow_mut().push_back(Step::Fail(libc::EIO));
        assert!(cam.next_frame().is_err());
        let t = Instant::now();
        assert_eq!(cam.next_frame().unwrap().1[2], 5);
        assert!(t.elapsed() < FIRST_BACKOFF + Duration::from_millis(400));
    }

    #[test]
    fn a_camera_that_is_not_there_at_start_is_waited_for() {
        let (open, _steps, events) = rig(2, 64);
        let mut cam = Reopening::waiting("fake0", (64, 10), 30, open);
        assert_eq!(cam.size(), (64, 10));
        let mut n = 0;
        while cam.next_frame().is_err() {
            n += 1;
            assert!(n < 10);
        }
        assert!(n >= 2);
        assert_eq!(events.borrow()[..3], ["open failed", "open failed", "open 1"]);
        assert!(cam.describe().starts_with("fake 64x10"));
    }

    #[test]
    fn a_camera_that_comes_back_with_another_size_is_recorded_at_that_size() {
        let (mut open, steps, _) = rig(0, 64);
        let first = open().unwrap();
        let wide = rig(0, 128).0;
        let mut cam = Reopening::new(first, "fake0", wide);
        assert_eq!(cam.size(), (64, 10));
        steps.borrow_mut().push_back(Step::Gone);
        assert!(cam.next_frame().is_err());
        // The new instance follows its own (empty) script: frames.
        assert!(cam.next_frame().is_ok());
        assert_eq!(cam.size(), (128, 10));
    }
}
