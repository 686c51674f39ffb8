//! A one-line progress bar on stderr for `blackbox export`, redrawn at most 5 times a second.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    total: u64,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        Progress { total, started: Instant::now(), last: None }
    }

    /// Redraws the bar for `done` bytes if 200 ms passed since the last draw (or `force`).
    pub fn update(&mut self, done: u64, force: bool) {
        let now = Instant::now();
        if !force && self.last.is_some_and(|l| now - l < Duration::from_millis(200)) {
            return;
        }
        self.last = Some(now);
        let frac = if self.total == 0 { 1.0 } else { done as f64 / self.total as f64 };
        let width = 30;
        let filled = ((frac * width as f64) as usize).min(width);
        let secs = (now - self.started).as_secs_f64().max(1e-3);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let _ = write!(
            std::io::stderr(),
            "\r[{}{}] {:5.1}%  {:.1} / {:.1} MiB  {:.0} MiB/s ",
            "#".repeat(filled),
            "-".repeat(width - filled),
            frac * 100.0,
            mib(done),
            mib(self.total),
            mib(done) / secs
        );
    }

    /// Ends the line.
    pub fn finish(&mut self, done: u64) {
        self.update(done, true);
        let _ = writeln!(std::io::stderr());
    }
}
