//! The clock from GPS. The Pi has no battery clock; a receiver's RMC sentences carry UTC. A
//! time is trusted only after 3 consecutive valid fixes whose GPS times advance as much as
//! their arrival times do (±0.3 s), so one corrupt or replayed sentence, a receiver still on
//! its almanac's guess, or a backlog read in a burst from the tty can't set it. The result is
//! the GPS time of the last fix plus the monotonic time since it arrived (NMEA trails the
//! second by 50–500 ms: about ±0.5 s, plenty for footage).

/// How far the arrival spacing may differ from the GPS spacing.
const TOLERANCE_NS: i64 = 300_000_000;
/// Fixes further apart than this (in GPS time) don't count as consecutive.
const MAX_STEP_NS: i64 = 2_000_000_000;
/// Fixes needed.
pub const NEEDED: u32 = 3;

#[derive(Debug, Default)]
pub struct TimeFromGps {
    last: Option<(i64, u64)>,
    run: u32,
}

impl TimeFromGps {
    pub fn new() -> TimeFromGps {
        TimeFromGps::default()
    }

    /// A valid fix at GPS time `utc_ns`, whose first byte arrived at `arrival_mono_ns`. Returns
    /// the GPS time at `arrival_mono_ns` once `NEEDED` consecutive fixes agree.
    pub fn offer(&mut self, utc_ns: i64, arrival_mono_ns: u64) -> Option<i64> {
        let agrees = self.last.is_some_and(|(t0, a0)| {
            let dt = utc_ns - t0;
            let da = arrival_mono_ns as i64 - a0 as i64;
            dt > 0 && dt <= MAX_STEP_NS && (da - dt).abs() <= TOLERANCE_NS
        });
        self.run = if agrees { self.run + 1 } else { 1 };
        self.last = Some((utc_ns, arrival_mono_ns));
        (self.run >= NEEDED).then_some(utc_ns)
    }

    /// A sentence that broke the run (a void fix, a bad date): start counting again.
    pub fn reset(&mut self) {
        self.run = 0;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_796_000_000 * S;

    #[test]
    fn three_agreeing_fixes() {
        let mut t = TimeFromGps::new();
        assert_eq!(t.offer(T0, 10 * S as u64), None);
        assert_eq!(t.offer(T0 + S, 11 * S as u64 + 200_000_000), None);
        assert_eq!(t.offer(T0 + 2 * S, 12 * S as u64 + 100_000_000), Some(T0 + 2 * S));
        assert_eq!(t.offer(T0 + 3 * S, 13 * S as u64 + 100_000_000), Some(T0 + 3 * S), "and on");
    }

    #[test]
    fn a_skipped_second_or_a_burst_restarts_the_count() {
        let mut t = TimeFromGps::new();
        t.offer(T0, 10 * S as u64);
        t.offer(T0 + S, 11 * S as u64);
        // A second lost: GPS +2 s, arrival +2 s still agrees (the run goes on)...
        assert_eq!(t.offer(T0 + 3 * S, 13 * S as u64), Some(T0 + 3 * S));
        // ...but a backlog read at once (GPS +1 s, arrival +0.01 s) does not.
        let mut t = TimeFromGps::new();
        t.offer(T0, 10 * S as u64);
        t.offer(T0 + S, 10 * S as u64 + 10_000_000);
        assert_eq!(t.offer(T0 + 2 * S, 10 * S as u64 + 20_000_000), None);
        // Time going backwards (a replay) restarts too.
        let mut t = TimeFromGps::new();
        t.offer(T0, 10 * S as u64);
        t.offer(T0 + S, 11 * S as u64);
        assert_eq!(t.offer(T0, 12 * S as u64), None);
        assert_eq!(t.offer(T0 + S, 13 * S as u64), None);
        assert_eq!(t.offer(T0 + 2 * S, 14 * S as u64), Some(T0 + 2 * S));
    }

    #[test]
    fn reset_by_a_void_fix() {
        let mut t = TimeFromGps::new();
        t.offer(T0, 10 * S as u64);
        t.offer(T0 + S, 11 * S as u64);
        t.reset();
        assert_eq!(t.offer(T0 + 2 * S, 12 * S as u64), None);
        assert_eq!(t.offer(T0 + 3 * S, 13 * S as u64), None);
        assert_eq!(t.offer(T0 + 4 * S, 14 * S as u64), Some(T0 + 4 * S));
    }

    #[test]
    fn five_hertz_receivers_agree_too() {
        let mut t = TimeFromGps::new();
        let step = 200_000_000;
        assert_eq!(t.offer(T0, 10 * S as u64), None);
        assert_eq!(t.offer(T0 + step, 10 * S as u64 + step as u64), None);
        assert_eq!(t.offer(T0 + 2 * step, 10 * S as u64 + 2 * step as u64 + 50_000_000), Some(T0 + 2 * step));
    }
}
