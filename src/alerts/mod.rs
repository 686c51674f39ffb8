//! Alerts (README, "Alerts"): what the owner should hear about — an event, the camera lost
//! for longer than `alert_camera_lost_s`, blackbox restarted without a clean stop or the
//! watchdog reset the device, store errors, the card full with frames dropped, offload done
//! or failed, protected footage deleted before it was offloaded — goes into a durable,
//! bounded outbox (`outbox.rs`) and is delivered by webhook and/or e-mail when a network is
//! there (on the road there is none). Each alert has an id, so a receiver can drop duplicates
//! (delivery is at least once).
//!
//! Two threads: the sender (low priority; delivers what waits, retrying with a growing pause)
//! and the watcher (every 2 s: the recorder's status, the events, offload's state).

pub mod outbox;
pub mod send;
pub mod settings;

use crate::status::{RecorderStatus, State};
use outbox::{Alert, Outbox};
use settings::AlertSettings;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct Status {
    /// Alerts waiting for delivery.
    pub queued: u64,
    /// Deliveries made since start (alert x channel).
    pub sent: u64,
    /// Failed delivery attempts since start.
    pub failed: u64,
    /// Alerts dropped undelivered because too many were waiting.
    pub dropped: u64,
    pub last_error: Option<String>,
    pub last_sent_utc_ns: Option<i64>,
}

pub struct Shared {
    data: PathBuf,
    device: String,
    settings: Mutex<AlertSettings>,
    outbox: Mutex<Option<Outbox>>,
    status: Mutex<Status>,
    wake: Mutex<bool>,
    cv: Condvar,
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

pub fn shared() -> Option<&'static Arc<Shared>> {
    SHARED.get()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
    pub fn device(&self) -> &str {
        &self.device
    }
    pub fn settings(&self) -> AlertSettings {
        lock(&self.settings).clone()
    }
    pub fn set_settings(&self, s: AlertSettings) {
        *lock(&self.settings) = s;
        self.poke();
    }
    pub fn status(&self) -> Status {
        let mut s = lock(&self.status).clone();
        if let Some(o) = lock(&self.outbox).as_ref() {
            s.queued = o.pending_len() as u64;
            s.dropped = o.dropped;
        }
        s
    }
    /// The sender stops waiting (a network came up, or an alert was raised).
    pub fn poke(&self) {
        *lock(&self.wake) = true;
        self.cv.notify_all();
    }
    fn sleep(&self, d: Duration) {
        let g = lock(&self.wake);
        let (mut g, _) = self.cv.wait_timeout_while(g, d, |w| !*w).unwrap_or_else(|p| p.into_inner());
        *g = false;
    }

    /// Puts an alert in the outbox (durable when this returns) and wakes the sender.
    pub fn raise(&self, kind: &str, title: &str, body: &str) {
        log::warn!("alert: {title}{}{body}", if body.is_empty() { "" } else { ": " });
        let mut o = lock(&self.outbox);
        match o.as_mut().map(|o| o.push(kind, title, body, crate::clock::now_utc_ns())) {
            Some(Ok(_)) => {}
            Some(Err(e)) => log::error!("alerts: cannot store the alert: {e}"),
            None => log::error!("alerts: no outbox; the alert is only in this log"),
        }
        drop(o);
        self.poke();
    }
}

/// Raises an alert when alerts run in this process (else only logs it).
pub fn raise(kind: &str, title: &str, body: &str) {
    match shared() {
        Some(s) => s.raise(kind, title, body),
        None => log::warn!("alert (alerts not running): {title}: {body}"),
    }
}

/// The device's name for alerts: the offload folder name, else the host name.
fn device_name(data: &Path) -> String {
    crate::offload::settings::Settings::load(data).map(|s| s.device_name).unwrap_or_else(|_| "blackbox".into())
}

const RUNNING: &str = "alerts/running";

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Starts alerts for `data`: the outbox, the sender and the watcher. `events` is polled for
/// new events; `status` is the recorder's.
pub fn spawn(data: &Path, status: Arc<RecorderStatus>, events: Option<crate::events::EventSink>) -> Option<Arc<Shared>> {
    let settings = AlertSettings::load(data).unwrap_or_else(|e| {
        log::error!("alerts: {e}; no alert channel until the settings are fixed");
        AlertSettings::defaults()
    });
    let outbox = Outbox::open(data).map_err(|e| log::error!("alerts: cannot open the outbox: {e}")).ok();
    let sh = Arc::new(Shared {
        data: data.to_path_buf(),
        device: device_name(data),
        settings: Mutex::new(settings),
        outbox: Mutex::new(outbox),
        status: Mutex::new(Status::default()),
        wake: Mutex::new(false),
        cv: Condvar::new(),
    });
    if SHARED.set(Arc::clone(&sh)).is_err() {
        return SHARED.get().cloned();
    }
    // Restarted without a clean stop in the same boot (a crash, a kill): an alert. A new boot
    // is the normal end of a drive (the ignition cut the power) and says nothing.
    let marker = data.join(RUNNING);
    let boot = boot_id();
    if let Ok(prev) = std::fs::read_to_string(&marker)
        && !boot.is_empty()
        && prev.trim() == boot
    {
        sh.raise("restarted", "blackbox restarted", "the recorder ended without a clean stop and was started again (a crash or a kill); footage from before is kept");
    }
    if let Err(e) = crate::config::write_atomic_mode(&marker, format!("{boot}\n").as_bytes(), 0o600) {
        log::warn!("alerts: {}: {e}", marker.display());
    }
    // The watchdog reset the device (WDIOF_CARDRESET in the boot status).
    if let Ok(b) = std::fs::read_to_string("/sys/class/watchdog/watchdog0/bootstatus")
        && b.trim().parse::<u32>().is_ok_and(|v| v & 0x20 != 0)
    {
        sh.raise("watchdog_reset", "The watchdog reset the device", "the recorder stopped answering and the hardware watchdog restarted the device");
    }
    let s1 = Arc::clone(&sh);
    if let Err(e) = std::thread::Builder::new().name("alerts".into()).spawn(move || sender(&s1)) {
        log::error!("alerts: no sender thread ({e})");
    }
    let s2 = Arc::clone(&sh);
    if let Err(e) = std::thread::Builder::new().name("alerts-watch".into()).spawn(move || watch(&s2, &status, events)) {
        log::error!("alerts: no watcher thread ({e})");
    }
    Some(sh)
}

/// A clean stop: the next start is not a "restart".
pub fn clean_stop(data: &Path) {
    let _ = std::fs::remove_file(data.join(RUNNING));
}

/// Sends `a` on `channel`.
fn deliver(st: &AlertSettings, a: &Alert, channel: &str, device: &str) -> Result<(), String> {
    match channel {
        "webhook" => send::webhook(st, a, device),
        "email" => send::email(st, a, device),
        _ => Err(format!("unknown channel {channel}")),
    }
}

fn sender(sh: &Shared) {
    let tid = rustix::thread::gettid();
    let _ = rustix::process::setpriority_process(Some(tid), 10);
    let mut backoff = Duration::from_secs(10);
    loop {
        let st = sh.settings();
        let channels = st.channels();
        let waiting = lock(&sh.outbox).as_mut().map(|o| o.waiting(&channels)).unwrap_or_default();
        if channels.is_empty() || waiting.is_empty() {
            sh.sleep(Duration::from_secs(60));
            continue;
        }
        // Channel by channel: one that fails (no network to the webhook) doesn't hold up another.
        let mut failed = false;
        for ch in &channels {
            for a in waiting.iter().filter(|a| !a.sent.iter().any(|s| s == ch)) {
                match deliver(&st, a, ch, &sh.device) {
                    Ok(()) => {
                        if let Some(o) = lock(&sh.outbox).as_mut()
                            && let Err(e) = o.mark_sent(a.id, ch)
                        {
                            log::error!("alerts: cannot record a delivery: {e}");
                        }
                        let mut s = lock(&sh.status);
                        s.sent += 1;
                        s.last_sent_utc_ns = Some(crate::clock::now_utc_ns());
                        s.last_error = None;
                    }
                    Err(e) => {
                        log::warn!("alerts: alert {} by {ch}: {e}", a.id);
                        let mut s = lock(&sh.status);
                        s.failed += 1;
                        s.last_error = Some(format!("{ch}: {e}"));
                        failed = true;
                        break;
                    }
                }
            }
        }
        if !failed {
            backoff = Duration::from_secs(10);
        }
        if failed {
            sh.sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(600));
        }
    }
}

fn kind_title(e: &crate::events::Event) -> String {
    use crate::events::Kind;
    match e.kind {
        Kind::Impact => format!("Impact {:.1} g", e.peak_g.unwrap_or(0.0)),
        Kind::Bump => format!("Bump while parked {:.1} g", e.peak_g.unwrap_or(0.0)),
        Kind::Motion => "Motion while parked".to_string(),
        Kind::Button => "Incident saved".to_string(),
    }
}

/// Every 2 s: turns what the recorder, the events and offload show into alerts, once each.
fn watch(sh: &Shared, status: &RecorderStatus, events: Option<crate::events::EventSink>) {
    let mut last_event = events.as_ref().and_then(|e| e.latest()).map_or(0, |e| e.id);
    let mut lost_since: Option<Instant> = None;
    let mut lost_alerted = false;
    let mut full_alerted = false;
    let mut store_lost = status.snapshot().lost.store;
    let mut store_alert_at: Option<Instant> = None;
    let mut off_error: Option<String> = None;
    let mut off_verified = 0u64;
    let mut off_done_at = 0u64;
    let mut off_lost = 0u64;
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let st = sh.settings();
        if let Some(ev) = &events
            && ev.latest().is_some_and(|e| e.id > last_event)
        {
            let seen = last_event;
            let mut new: Vec<_> = ev.list(i64::MIN, i64::MAX, None).into_iter().filter(|e| e.id > seen).collect();
            new.sort_by_key(|e| e.id);
            for e in new {
                last_event = last_event.max(e.id);
                sh.raise(
                    "event",
                    &kind_title(&e),
                    &format!("at {}; footage from {} to {} is locked", crate::clock::Iso(e.utc_ns), crate::clock::Iso(e.from_utc), crate::clock::Iso(e.to_utc)),
                );
            }
        }
        let s = status.snapshot();
        if s.state == State::CameraLost {
            let since = *lost_since.get_or_insert_with(Instant::now);
            if !lost_alerted && since.elapsed() >= Duration::from_secs(u64::from(st.alert_camera_lost_s)) {
                sh.raise("camera_lost", "Camera lost", &format!("no frame for {} s; blackbox keeps looking for it", since.elapsed().as_secs()));
                lost_alerted = true;
            }
        } else {
            if lost_alerted && s.state == State::Recording {
                sh.raise("camera_back", "Camera back", "recording again");
            }
            lost_since = None;
            lost_alerted = false;
        }
        if s.state == State::CardFull && s.lost.store > store_lost {
            if !full_alerted {
                sh.raise("disk_full", "Card full: frames dropped", &format!("{} frames not recorded so far: nothing left that retention may delete", s.lost.store - store_lost));
                full_alerted = true;
            }
        } else if s.state != State::CardFull {
            full_alerted = false;
            if s.lost.store > store_lost && store_alert_at.is_none_or(|t| t.elapsed() > Duration::from_secs(600)) {
                sh.raise("store_error", "Store errors: frames lost", &format!("{} frames could not be written (write or flush errors); see the log", s.lost.store - store_lost));
                store_alert_at = Some(Instant::now());
            }
        }
        store_lost = s.lost.store;
        if let Some(o) = crate::offload::shared() {
            let os = o.status();
            if os.lost_before_offload > off_lost {
                sh.raise("lost_before_offload", "Event footage deleted before offload", &format!("{} protected segment(s) were deleted by retention before they were copied", os.lost_before_offload - off_lost));
            }
            off_lost = os.lost_before_offload;
            match (&os.last_error, os.state) {
                // Not reaching the server is the normal state on the road: no alert for that.
                (Some(e), "error" | "waiting") if !os.unreachable && off_error.as_deref() != Some(e.as_str()) => {
                    sh.raise("offload_failed", "Offload failed", e);
                    off_error = Some(e.clone());
                }
                (None, _) => off_error = None,
                _ => {}
            }
            if os.verified_since_start > off_verified && os.queued == 0 && os.state == "idle" && os.verified_since_start > off_done_at {
                sh.raise("offload_done", "Offload done", &format!("{} segment(s) copied and verified ({} MB sent) to {}", os.verified_since_start - off_done_at, os.bytes_sent / 1_000_000, os.target));
                off_done_at = os.verified_since_start;
            }
            off_verified = os.verified_since_start;
        }
    }
}

/// Sends a test alert on `channel` now (not through the outbox): Ok, or what failed.
pub fn test_channel(sh: &Shared, channel: &str) -> Result<String, String> {
    let st = sh.settings();
    if !st.channels().contains(&channel) {
        return Err(format!("{channel} is not set up"));
    }
    let a = Alert {
        id: 0,
        utc_ns: crate::clock::now_utc_ns(),
        kind: "test".into(),
        title: "Test alert".into(),
        body: "blackbox can reach you this way".into(),
        sent: Vec::new(),
    };
    let started = Instant::now();
    deliver(&st, &a, channel, &sh.device)?;
    Ok(format!("sent by {channel} in {} ms", started.elapsed().as_millis()))
}
