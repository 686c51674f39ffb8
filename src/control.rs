//! The mailbox between the web thread and the recorder: how the dashboard starts and stops
//! recording, changes the configuration and protects footage without the recorder ever
//! waiting on the web side.
//!
//! - **Commands that need the [`Store`]** (protect, unprotect, save the last N seconds, new
//!   retention/commit options) go into a small fixed queue. The web side locks it briefly to
//!   push; the recorder checks one atomic flag per frame and, only when it is set, `try_lock`s
//!   the queue and runs what is there (never blocking: if the web side holds the lock right
//!   then, it tries again at the next frame). Each command carries a one-shot reply channel
//!   that the web side awaits asynchronously, with a timeout.
//! - **Start/stop and restart** are atomic flags the recorder loop checks once per frame; the
//!   supervisor (`src/supervisor.rs`) acts on them between runs.
//! - The **configuration** as saved in the config file lives here too, so `GET /api/config`
//!   answers without asking the recorder.

use crate::config::Config;
use crate::store::{Store, StoreOptions};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Mutex;

/// Commands waiting at most; a full queue answers 503 on the web side.
pub const QUEUE: usize = 16;

/// What the web side asks of the store.
#[derive(Clone, Debug)]
pub enum Command {
    /// Protect `from..=to` (UTC ns).
    Protect(i64, i64),
    /// Remove protection from `from..=to` (UTC ns).
    Unprotect(i64, i64),
    /// Protect the last N seconds up to now.
    SaveLast(u32),
    /// New retention and commit options.
    Options(StoreOptions),
}

/// The store's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The protected ranges after the change.
    Ranges(Vec<(i64, i64)>),
    /// The range `save-last` protected.
    Saved(i64, i64),
    Done,
    Failed(String),
    /// The request can't be honoured as asked (e.g. too many protected ranges): the client's
    /// to fix, nothing failed.
    Refused(String),
}

struct Pending {
    cmd: Command,
    reply: smol::channel::Sender<Reply>,
}

/// The queue is full: try again later.
#[derive(Debug)]
pub struct Busy;

pub struct Control {
    pending: AtomicBool,
    queue: Mutex<heapless::Deque<Pending, QUEUE>>,
    want_recording: AtomicBool,
    restart: AtomicBool,
    /// Erase every recording at the next restart ("format the card" from the dashboard).
    erase: AtomicBool,
    /// Erases done so far (the web side waits for this to move) and the last one's outcome.
    erased: AtomicU32,
    erase_error: Mutex<Option<String>>,
    /// Live viewers allowed at once (`max_live_clients`, applied live).
    max_live_clients: AtomicU32,
    /// The configuration as saved (what `GET /api/config` shows).
    config: Mutex<Config>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("want_recording", &self.want_recording)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}

impl Control {
    pub fn new(config: Config) -> Control {
        Control {
            pending: AtomicBool::new(false),
            queue: Mutex::new(heapless::Deque::new()),
            want_recording: AtomicBool::new(true),
            restart: AtomicBool::new(false),
            erase: AtomicBool::new(false),
            erased: AtomicU32::new(0),
            erase_error: Mutex::new(None),
            max_live_clients: AtomicU32::new(config.max_live_clients),
            config: Mutex::new(config),
        }
    }

    // --- web side ---------------------------------------------------------------------------

    /// Queues a command; the reply arrives on the returned channel once the recorder ran it.
    pub fn submit(&self, cmd: Command) -> Result<smol::channel::Receiver<Reply>, Busy> {
        let (tx, rx) = smol::channel::bounded(1);
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back(Pending { cmd, reply: tx }).map_err(|_| Busy)?;
        self.pending.store(true, std::sync::atomic::Ordering::Release);
        Ok(rx)
    }

    pub fn set_want_recording(&self, on: bool) {
        self.want_recording.store(on, Relaxed);
    }

    pub fn want_recording(&self) -> bool {
        self.want_recording.load(Relaxed)
    }

    /// Asks the supervisor to reopen the camera and the store with the current config.
    pub fn request_restart(&self) {
        self.restart.store(true, Relaxed);
    }

    /// Asks the supervisor to erase every recording (between runs, with the store closed).
    /// Returns the count [`Control::erases_done`] reaches once it is done.
    pub fn request_erase(&self) -> u32 {
        let target = self.erased.load(std::sync::atomic::Ordering::Acquire) + 1;
        self.erase.store(true, Relaxed);
        self.restart.store(true, Relaxed);
        target
    }

    /// Erases done so far, and the last one's error (if it failed).
    pub fn erases_done(&self) -> (u32, Option<String>) {
        let n = self.erased.load(std::sync::atomic::Ordering::Acquire);
        (n, self.erase_error.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    pub fn max_live_clients(&self) -> u32 {
        self.max_live_clients.load(Relaxed)
    }

    pub fn config(&self) -> Config {
        self.config.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the configuration (already validated and saved by the caller) and applies the
    /// parts that apply live.
    pub fn set_config(&self, c: Config) {
        self.max_live_clients.store(c.max_live_clients, Relaxed);
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = c;
    }

    // --- recorder side ----------------------------------------------------------------------

    /// Whether the recorder loop should return to the supervisor (stop or restart asked).
    /// One or two atomic loads; called once per frame.
    pub fn interrupts(&self) -> bool {
        !self.want_recording.load(Relaxed) || self.restart.load(Relaxed)
    }

    pub fn restart_pending(&self) -> bool {
        self.restart.load(Relaxed)
    }

    /// Takes a pending erase request (the supervisor, with the store closed).
    pub fn take_erase(&self) -> bool {
        self.erase.swap(false, Relaxed)
    }

    /// The supervisor finished an erase (`error`: what failed).
    pub fn erase_done(&self, error: Option<String>) {
        *self.erase_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
        self.erased.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Takes a pending restart request.
    pub fn take_restart(&self) -> bool {
        self.restart.swap(false, Relaxed)
    }

    /// Runs queued commands against the store. Costs one atomic load when nothing is queued;
    /// never blocks (a queue the web side holds right now is tried again next time).
    pub fn serve(&self, store: &mut Store) {
        if !self.pending.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let Ok(mut q) = self.queue.try_lock() else { return };
        self.pending.store(false, Relaxed);
        while let Some(p) = q.pop_front() {
            let reply = run(store, p.cmd);
            // The web side may have given up waiting; that is fine.
            let _ = p.reply.try_send(reply);
        }
    }
}

fn run(store: &mut Store, cmd: Command) -> Reply {
    let ranges = |s: &Store| Reply::Ranges(s.protected().ranges.clone());
    match cmd {
        Command::Protect(from, to) => match store.protect(from, to) {
            Ok(()) => {
                log::info!("protected {} .. {}", crate::clock::Iso(from), crate::clock::Iso(to));
                ranges(store)
            }
            Err(e) if e.get_ref().is_some_and(|x| x.is::<crate::store::catalog::TooManyRanges>()) => Reply::Refused(e.to_string()),
            Err(e) => Reply::Failed(format!("cannot save the protected ranges: {e}")),
        },
        Command::Unprotect(from, to) => match store.unprotect(from, to) {
            Ok(()) => {
                log::info!("unprotected {} .. {}", crate::clock::Iso(from), crate::clock::Iso(to));
                ranges(store)
            }
            Err(e) => Reply::Failed(format!("cannot save the protected ranges: {e}")),
        },
        Command::SaveLast(secs) => {
            let to = crate::clock::now_utc_ns();
            let from = to.saturating_sub(i64::from(secs) * 1_000_000_000);
            // Commit first so the footage being protected is on disk.
            if let Err(e) = store.commit() {
                log::error!("save-last: commit failed: {e}");
            }
            match store.protect(from, to) {
                Ok(()) => {
                    log::info!("saved the last {secs} s ({} .. {})", crate::clock::Iso(from), crate::clock::Iso(to));
                    Reply::Saved(from, to)
                }
                Err(e) if e.get_ref().is_some_and(|x| x.is::<crate::store::catalog::TooManyRanges>()) => Reply::Refused(e.to_string()),
                Err(e) => Reply::Failed(format!("cannot save the protected ranges: {e}")),
            }
        }
        Command::Options(o) => {
            store.set_options(o);
            Reply::Done
        }
    }
}
