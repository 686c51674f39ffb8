//! Sample time: when each FIFO sample was taken, in CLOCK_MONOTONIC ns (the store's `mono_ns`
//! clock), reconstructed from its position in the FIFO and the output data rate rather than
//! from when it was read.
//!
//! A drain that found `n` new samples, with the FIFO level read between `t_before` and
//! `t_after`, says: the newest sample existed at `t_after`, and the one after it did not yet
//! exist at `t_before`. So the newest sample's time lies in `(t_before - period, t_after]`.
//! Between drains the samples are `period` apart, so the interval carried from the previous
//! drain moves by `n * period` (widened by the rate's uncertainty) and is intersected with the
//! new one: over a few drains it narrows to the read latency, however late the reader runs.
//! The estimate is the middle of the interval. The period itself is measured over the run
//! (chips' oscillators are off by a few per cent) once 10 s of samples have been read.
//! An overflow (samples lost, count unknown) starts over.

/// How far the measured period may be from the nominal one.
const RATE_SLACK: f64 = 0.2;
/// Uncertainty of the period per sample, relative, for widening the carried interval.
const DRIFT: f64 = 0.005;
/// Samples before the period is measured rather than assumed.
const MEASURE_AFTER: u64 = 1000;

#[derive(Clone, Debug)]
pub struct Timeline {
    nominal: f64,
    period: f64,
    /// Bounds on the newest sample's time, when known.
    lo: f64,
    hi: f64,
    have: bool,
    /// Samples placed since the start (or the last reset).
    count: u64,
    /// The first drain's (count, middle of the read) for measuring the period.
    first: Option<(u64, f64)>,
}

impl Timeline {
    pub fn new(period_ns: u64) -> Timeline {
        let p = period_ns as f64;
        Timeline { nominal: p, period: p, lo: 0.0, hi: 0.0, have: false, count: 0, first: None }
    }

    /// Forget where we are (after an overflow or a new chip); the measured period is kept.
    pub fn reset(&mut self) {
        self.have = false;
        self.first = None;
        self.count = 0;
    }

    pub fn period_ns(&self) -> f64 {
        self.period
    }

    /// Places `n` new samples read in a drain whose FIFO level was read between `t_before` and
    /// `t_after`; returns the time of the first of them (the others follow at `period_ns`).
    pub fn place(&mut self, n: usize, t_before: u64, t_after: u64) -> f64 {
        let (tb, ta) = (t_before as f64, t_after.max(t_before) as f64);
        let p = self.period;
        let step = n as f64 * p;
        let (new_lo, new_hi) = (tb - p, ta);
        if n == 0 {
            // Nothing new: the next sample did not exist at t_before.
            if self.have {
                self.lo = self.lo.max(new_lo);
                if self.lo > self.hi {
                    self.hi = self.lo;
                }
            }
            return self.estimate() + p;
        }
        if self.have {
            let widen = step * DRIFT;
            let (lo, hi) = (self.lo + step - widen, self.hi + step + widen);
            if lo <= new_hi && new_lo <= hi {
                self.lo = lo.max(new_lo);
                self.hi = hi.min(new_hi);
            } else {
                // Inconsistent (a stall we didn't see, a wrong rate): trust the new read.
                self.lo = new_lo;
                self.hi = new_hi;
            }
        } else {
            self.lo = new_lo;
            self.hi = new_hi;
            self.have = true;
        }
        self.count += n as u64;
        let mid = (tb + ta) / 2.0;
        match self.first {
            None => self.first = Some((self.count, mid)),
            Some((c0, t0)) if self.count - c0 >= MEASURE_AFTER => {
                let measured = (mid - t0) / (self.count - c0) as f64;
                self.period = measured.clamp(self.nominal * (1.0 - RATE_SLACK), self.nominal * (1.0 + RATE_SLACK));
            }
            Some(_) => {}
        }
        self.estimate() - (n - 1) as f64 * self.period
    }

    fn estimate(&self) -> f64 {
        (self.lo + self.hi) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_time_is_the_chips_not_the_readers() {
        const MS: f64 = 1e6;
        // A chip making sample i at 3 ms + (i + 1) x 10 ms; a reader that wakes every 100 ms
        // and one time in four up to 600 ms late, whose FIFO-level read takes 100 ms (the qemu
        // rig's USB/IP round trips: the level is read 40 ms into it). However late the read,
        // each sample is placed within 15 ms of its true time once a few drains have narrowed
        // the interval: the error is the read's latency asymmetry, not the lateness.
        let mut x = 12345u64;
        let mut t = 50.0 * MS;
        let mut tl = Timeline::new(10_000_000);
        let mut seen = 0u64;
        let mut worst_late = 0f64;
        for i in 0..400 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let late = if (x >> 20).is_multiple_of(4) { ((x >> 33) % 600) as f64 * MS } else { 0.0 };
            worst_late = worst_late.max(late);
            t += 100.0 * MS + late;
            let produced = ((t - 3.0 * MS) / (10.0 * MS)).floor() as u64;
            let n = (produced - seen) as usize;
            let first = tl.place(n, (t - 40.0 * MS) as u64, (t + 60.0 * MS) as u64);
            if n > 0 && i > 20 {
                let truth = 3.0 * MS + (seen + 1) as f64 * 10.0 * MS;
                assert!((first - truth).abs() < 15.0 * MS, "drain {i}: off by {} ms", (first - truth) / MS);
            }
            seen = produced;
        }
        assert!(worst_late > 500.0 * MS);
    }

    #[test]
    fn a_chip_running_3_percent_slow_is_followed() {
        const MS: f64 = 1e6;
        let reads: Vec<f64> = (1..3000).map(|i| i as f64 * 100.0 * MS).collect();
        let mut tl = Timeline::new(10_000_000);
        let period = 10.3 * MS;
        let mut seen = 0u64;
        for (i, &r) in reads.iter().enumerate() {
            let produced = (r / period).floor() as u64;
            let n = (produced - seen) as usize;
            let first = tl.place(n, (r - 1.0 * MS) as u64, (r + 1.0 * MS) as u64);
            if n > 0 && i > 200 {
                let truth = (seen + 1) as f64 * period;
                assert!((first - truth).abs() < 12.0 * MS, "drain {i}: off by {} ms", (first - truth) / MS);
            }
            seen = produced;
        }
        assert!((tl.period_ns() - period).abs() < 0.01 * MS, "period {}", tl.period_ns());
    }

    #[test]
    fn reset_starts_from_the_next_read() {
        let mut tl = Timeline::new(10_000_000);
        tl.place(10, 1_000_000_000, 1_000_000_000);
        tl.reset();
        // After a reset the old interval says nothing: 5 samples whose newest is at ~5 s.
        let first = tl.place(5, 5_000_000_000, 5_000_000_000);
        assert!((first - (5e9 - 5e6 - 4e7)).abs() < 1e7, "{first}");
    }
}
