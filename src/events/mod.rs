//! Events: an impact from the G-sensor, the dashboard's "Save incident" button, a motion or a
//! bump while parked. Each protects the footage from `event_pre_s` before to `event_post_s`
//! after it, is extended when it repeats inside its window, and is written to `DATA/events`
//! (docs/FORMAT.md, "Events") and fsynced before anyone is told it exists.
//!
//! - **Before** is counted in footage, not wall time: the window reaches back over recorded
//!   footage, across gaps (a restart, a stall), until it holds `event_pre_s` of it or the oldest
//!   footage is reached. **After** is wall time from the trigger (footage still to come).
//! - **Protection** goes to the store through the recorder's mailbox ([`crate::control`]),
//!   never waited on by the caller. A power cut between the event's fsync and the store's
//!   protect loses nothing: at every start the protected ranges of all locked events are put
//!   back ([`Events::locked_ranges`]).
//! - [`EventSink`] is `Clone + Send + Sync`: the G-sensor's thread, the parking detector and the
//!   web side all call [`EventSink::trigger`] with the trigger's CLOCK_MONOTONIC time.

pub mod file;

use crate::control::{Command, Control};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use file::Events;

/// What made an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The G-sensor, above `gsensor_threshold_g`.
    Impact,
    /// "Save incident" on the dashboard (`POST /api/incidents`).
    Button,
    /// Motion on the picture while parked.
    Motion,
    /// A knock while parked, above `gsensor_parked_threshold_g`.
    Bump,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Impact => "impact",
            Kind::Button => "button",
            Kind::Motion => "motion",
            Kind::Bump => "bump",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        [Kind::Impact, Kind::Button, Kind::Motion, Kind::Bump].into_iter().find(|k| k.name() == s)
    }
}

/// One event as stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    pub id: u64,
    pub kind: Kind,
    /// The trigger's UTC and CLOCK_MONOTONIC times (ns).
    pub utc_ns: i64,
    pub mono_ns: u64,
    /// The highest acceleration seen (impacts and bumps).
    pub peak_g: Option<f32>,
    /// The protected window (UTC ns, inclusive).
    pub from_utc: i64,
    pub to_utc: i64,
    /// Repeated triggers folded into it.
    pub repeats: u32,
    /// Still protecting its footage (unlocked by the owner: not any more).
    pub locked: bool,
}

/// How the window is measured (`event_pre_s`, `event_post_s`).
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub pre_ns: i64,
    pub post_ns: i64,
}

impl Window {
    pub fn of(c: &crate::config::Config) -> Window {
        Window { pre_ns: i64::from(c.event_pre_s) * 1_000_000_000, post_ns: i64::from(c.event_post_s) * 1_000_000_000 }
    }
}

/// The handle everyone triggers events through.
#[derive(Clone)]
pub struct EventSink {
    events: Arc<Mutex<Events>>,
    /// Every camera's mailbox, the first camera's first: an event protects the same span on
    /// every camera.
    controls: Vec<Arc<Control>>,
    seg_dir: PathBuf,
    window: Arc<Mutex<Window>>,
}

impl EventSink {
    pub fn new(events: Events, controls: Vec<Arc<Control>>, data_dir: &Path, window: Window) -> EventSink {
        EventSink {
            events: Arc::new(Mutex::new(events)),
            controls,
            seg_dir: data_dir.join("segments"),
            window: Arc::new(Mutex::new(window)),
        }
    }

    /// Forgets every event and its thumbnail (the card was erased).
    pub fn clear(&self) -> io::Result<()> {
        let mut g = self.events.lock().unwrap_or_else(|p| p.into_inner());
        g.clear()
    }

    pub fn set_window(&self, w: Window) {
        if let Ok(mut g) = self.window.lock() {
            *g = w;
        }
    }

    /// Records an event at `mono_ns` (CLOCK_MONOTONIC, e.g. a sensor's sample time): a new one,
    /// or the last one extended when `mono_ns` falls inside its window. Returns it once it is
    /// on disk; its footage is protected right after (asynchronously).
    pub fn trigger(&self, kind: Kind, mono_ns: u64, peak_g: Option<f32>) -> io::Result<Event> {
        let ev = self.record(kind, mono_ns, peak_g)?;
        self.protect(ev.from_utc, ev.to_utc);
        Ok(ev)
    }

    /// As [`EventSink::trigger`], without handing the window to the store: for a caller that
    /// does that itself and waits for it (the web side's "Save incident").
    pub fn record(&self, kind: Kind, mono_ns: u64, peak_g: Option<f32>) -> io::Result<Event> {
        let age = crate::clock::now_mono_ns().saturating_sub(mono_ns);
        let utc = crate::clock::now_utc_ns().saturating_sub(i64::try_from(age).unwrap_or(i64::MAX));
        let w = self.window.lock().map(|g| *g).unwrap_or(Window { pre_ns: 20_000_000_000, post_ns: 40_000_000_000 });
        let from = footage_before(&self.seg_dir, utc, w.pre_ns);
        let to = utc.saturating_add(w.post_ns);
        let ev = {
            let mut evs = self.events.lock().map_err(|_| io::Error::other("events poisoned"))?;
            evs.trigger(kind, utc, mono_ns, peak_g, from, to)?
        };
        log::warn!(
            "event {} ({}{}): footage {} .. {} protected",
            ev.id,
            kind.name(),
            peak_g.map(|g| format!(", {g:.1} g")).unwrap_or_default(),
            crate::clock::Iso(ev.from_utc),
            crate::clock::Iso(ev.to_utc)
        );
        Ok(ev)
    }

    /// Hands `from..=to` to every camera's store.
    fn protect(&self, from: i64, to: i64) {
        for c in &self.controls {
            protect_on(c, from, to);
        }
    }

    /// Hands `from..=to` to the stores of the cameras besides the first (the web side's "Save
    /// incident" protects on the first itself and waits for it).
    pub fn protect_others(&self, from: i64, to: i64) {
        for c in self.controls.iter().skip(1) {
            protect_on(c, from, to);
        }
    }

    /// Events whose trigger lies in `from..to` (UTC ns), of `kind` if given, newest first.
    pub fn list(&self, from: i64, to: i64, kind: Option<Kind>) -> Vec<Event> {
        let Ok(evs) = self.events.lock() else { return Vec::new() };
        evs.all().iter().rev().filter(|e| e.utc_ns >= from && e.utc_ns < to && kind.is_none_or(|k| e.kind == k)).copied().collect()
    }

    pub fn get(&self, id: u64) -> Option<Event> {
        self.events.lock().ok()?.all().iter().find(|e| e.id == id).copied()
    }

    pub fn latest(&self) -> Option<Event> {
        self.events.lock().ok()?.all().last().copied()
    }

    /// Unlocks event `id`: its window is unprotected except where another locked event's
    /// window covers it. `Ok(None)`: no such event.
    pub fn unlock(&self, id: u64) -> io::Result<Option<Event>> {
        let (ev, others) = {
            let mut evs = self.events.lock().map_err(|_| io::Error::other("events poisoned"))?;
            let Some(ev) = evs.unlock(id)? else { return Ok(None) };
            (ev, evs.locked_ranges())
        };
        for c in &self.controls {
            let _ = c.submit(Command::Unprotect(ev.from_utc, ev.to_utc));
        }
        for (a, b) in others.into_iter().filter(|&(a, b)| a <= ev.to_utc && b >= ev.from_utc) {
            self.protect(a, b);
        }
        log::info!("event {id} unlocked: its footage is no longer protected");
        Ok(Some(ev))
    }

    pub fn data_dir(&self) -> &Path {
        self.seg_dir.parent().unwrap_or(&self.seg_dir)
    }
}

/// Hands `from..=to` to one store. A full mailbox is retried for a few seconds on a thread of
/// its own; the next start puts it back in any case.
fn protect_on(control: &Arc<Control>, from: i64, to: i64) {
    if control.submit(Command::Protect(from, to)).is_ok() {
        return;
    }
    let control = Arc::clone(control);
    let _ = std::thread::Builder::new().name("event-protect".into()).spawn(move || {
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if control.submit(Command::Protect(from, to)).is_ok() {
                return;
            }
        }
        log::error!("event: the recorder did not take the protection of {} .. {}; it is applied at the next start", crate::clock::Iso(from), crate::clock::Iso(to));
    });
}

/// Where a window that holds `pre_ns` of footage before `t` starts: walks back over the stored
/// segments' spans (from their names: no file is read), across gaps, until that much footage
/// is covered; `t - pre_ns` when nothing is stored before `t`.
pub fn footage_before(seg_dir: &Path, t: i64, pre_ns: i64) -> i64 {
    let plain = t.saturating_sub(pre_ns);
    let Ok(l) = crate::store::catalog::list(seg_dir) else { return plain };
    let mut spans: Vec<(i64, i64)> = l.closed.iter().map(|s| (s.start_utc_ns, s.end_utc_ns)).collect();
    for (_, n) in &l.open {
        if let crate::store::names::SegName::Open { start_utc_ns, .. } = n {
            spans.push((*start_utc_ns, t));
        }
    }
    spans_back(&mut spans, t, pre_ns).unwrap_or(plain)
}

/// Gaps up to this long between segments count as footage when measuring back.
const SHORT_GAP_NS: i64 = 1_000_000_000;

/// [`footage_before`] over `spans` (UTC start, end). `None`: no footage before `t`.
fn spans_back(spans: &mut [(i64, i64)], t: i64, pre_ns: i64) -> Option<i64> {
    spans.sort_unstable_by_key(|s| std::cmp::Reverse(s.1));
    let mut need = pre_ns;
    let mut from = t;
    let mut any = false;
    for &(s, e) in spans.iter() {
        let mut e = e.min(from);
        if e <= s {
            continue;
        }
        // The frame interval between one segment's last frame and the next one's first (or a
        // short hiccup) is footage time, not a gap.
        if any && from - e <= SHORT_GAP_NS {
            e = from;
        }
        any = true;
        let len = e - s;
        if len >= need {
            return Some(e - need);
        }
        need -= len;
        from = s;
    }
    // Less footage than the window: all of it (and the wall-clock window if that reaches
    // further, e.g. the first seconds of a new card).
    any.then_some(from.min(t.saturating_sub(pre_ns)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn the_window_before_is_counted_in_footage_across_gaps() {
        // Footage 0..100 s, a restart gap 100..130 s, footage again from 130 s; trigger at 135 s.
        let mut spans = vec![(0, 100 * S), (130 * S, 140 * S)];
        // 20 s of footage before 135 s: 5 s after the gap and 15 s before it.
        assert_eq!(spans_back(&mut spans, 135 * S, 20 * S), Some(85 * S));
        // No gap: plain.
        let mut spans = vec![(0, 200 * S)];
        assert_eq!(spans_back(&mut spans, 150 * S, 20 * S), Some(130 * S));
        // Segments 0.1 s apart (one frame interval): continuous footage.
        let mut spans = vec![(0, 9_900_000_000), (10 * S, 19_900_000_000), (20 * S, 25 * S)];
        assert_eq!(spans_back(&mut spans, 25 * S, 12 * S), Some(13 * S));
        // Only 3 s of footage so far: from its start, or the wall window, whichever is earlier.
        let mut spans = vec![(50 * S, 60 * S)];
        assert_eq!(spans_back(&mut spans, 53 * S, 20 * S), Some(33 * S));
        // Nothing stored before the trigger.
        let mut spans = vec![(200 * S, 210 * S)];
        assert_eq!(spans_back(&mut spans, 150 * S, 20 * S), None);
    }
}
