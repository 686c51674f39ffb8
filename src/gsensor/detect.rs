//! From samples to events: gravity and the mounting angle removed by a high-pass, an impact
//! per hit above the threshold, and whether the vehicle is moving.
//!
//! - **High-pass:** a slowly following estimate of the static acceleration (gravity as the
//!   mount sees it: time constant [`GRAVITY_TAU_S`]) is subtracted from each sample; what is
//!   left is the dynamic acceleration `a` and `|a|` its magnitude. The estimate stops
//!   following while `|a|` is above the threshold (so a hit doesn't pull it), for at most
//!   [`FREEZE_MAX_S`] (so a mount knocked to a new angle is learnt again).
//! - **Impact:** a hit starts at the first sample with `|a| >= threshold` (its time is the
//!   impact's `mono_ns`) and ends once `|a|` stayed below half the threshold for
//!   [`HOLD_OFF_MS`]; then one [`Impact`] with the hit's peak is reported. A 60 ms crash pulse,
//!   its rebound and ringing are one impact; a hit that never settles is reported after
//!   [`MAX_HIT_S`] and the next one needs a quiet spell first.
//! - **Moving:** vibration, not pushes: `a` through a second high-pass ([`VIBRATION_TAU_S`],
//!   about 3 Hz) so a lean, a tilt or a long braking (a step that settles) counts for one window
//!   at most; its RMS over windows of [`WINDOW_S`]: [`MOVING_WINDOWS`] windows in a row at or
//!   above [`MOVING_RMS_G`] mark the vehicle moving (road and engine vibration go on; a bump or
//!   a pothole is one window); [`STILL_WINDOWS`] windows in a row below it mark it still. A
//!   parked car's sensor shows the chip's noise, a few mg RMS. (The qemu rig found the first
//!   version, RMS of `a` itself, calling a 4 s 0.4 g braking "moving".)
//!
//! Everything is fixed-size state: nothing is allocated per sample.

use super::Impact;

pub const GRAVITY_TAU_S: f32 = 1.0;
pub const FREEZE_MAX_S: f32 = 2.0;
pub const HOLD_OFF_MS: u64 = 300;
pub const MAX_HIT_S: u64 = 3;
pub const WINDOW_S: f32 = 2.0;
pub const MOVING_RMS_G: f32 = 0.03;
pub const VIBRATION_TAU_S: f32 = 0.05;
pub const MOVING_WINDOWS: u32 = 3;
pub const STILL_WINDOWS: u32 = 5;

#[derive(Clone, Copy, Debug)]
struct Hit {
    start_ns: u64,
    peak_g: f32,
    /// When `|a|` last was at or above the release level.
    last_loud_ns: u64,
    /// Reported already (a hit that went on too long); wait for quiet.
    reported: bool,
}

#[derive(Clone, Debug)]
pub struct Detector {
    gravity: [f32; 3],
    have_gravity: bool,
    alpha: f32,
    frozen_samples: u32,
    freeze_max: u32,
    hit: Option<Hit>,
    /// `a` low-passed at [`VIBRATION_TAU_S`]: what is left after it is vibration.
    slow: [f32; 3],
    beta: f32,
    win_sum: f32,
    win_n: u32,
    win_len: u32,
    quiet_windows: u32,
    loud_windows: u32,
    moving: bool,
    /// The largest `|a|` of the last hit (for the status page).
    pub last_peak_g: f32,
}

impl Detector {
    pub fn new(period_ns: u64) -> Detector {
        let dt = period_ns as f32 / 1e9;
        Detector {
            gravity: [0.0; 3],
            have_gravity: false,
            alpha: (dt / GRAVITY_TAU_S).min(1.0),
            frozen_samples: 0,
            freeze_max: (FREEZE_MAX_S / dt) as u32,
            hit: None,
            slow: [0.0; 3],
            beta: (dt / VIBRATION_TAU_S).min(1.0),
            win_sum: 0.0,
            win_n: 0,
            win_len: ((WINDOW_S / dt) as u32).max(1),
            quiet_windows: STILL_WINDOWS,
            loud_windows: 0,
            moving: false,
            last_peak_g: 0.0,
        }
    }

    /// Moving (see the module docs).
    pub fn moving(&self) -> bool {
        self.moving
    }

    /// Forget the gravity estimate (a new chip, or one mounted anew) but not a hit in progress.
    pub fn relearn(&mut self) {
        self.have_gravity = false;
    }

    /// One sample (in g) taken at `t_ns`; `threshold_g` is the impact threshold now in force.
    /// Returns an impact when a hit ended.
    pub fn push(&mut self, s: [f32; 3], t_ns: u64, threshold_g: f32) -> Option<Impact> {
        if !self.have_gravity {
            self.gravity = s;
            self.have_gravity = true;
        }
        let a = [s[0] - self.gravity[0], s[1] - self.gravity[1], s[2] - self.gravity[2]];
        let m = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
        let loud = m >= threshold_g;
        if loud && self.frozen_samples < self.freeze_max {
            self.frozen_samples += 1;
        } else {
            if !loud {
                self.frozen_samples = 0;
            }
            for (g, ak) in self.gravity.iter_mut().zip(a) {
                *g += self.alpha * ak;
            }
        }

        // Motion: vibration only.
        let mut v2 = 0.0;
        for (sl, ak) in self.slow.iter_mut().zip(a) {
            *sl += self.beta * (ak - *sl);
            v2 += (ak - *sl) * (ak - *sl);
        }
        self.win_sum += v2;
        self.win_n += 1;
        if self.win_n >= self.win_len {
            let rms = (self.win_sum / self.win_n as f32).sqrt();
            if rms >= MOVING_RMS_G {
                self.quiet_windows = 0;
                self.loud_windows = self.loud_windows.saturating_add(1);
                if self.loud_windows >= MOVING_WINDOWS {
                    self.moving = true;
                }
            } else {
                self.loud_windows = 0;
                self.quiet_windows = self.quiet_windows.saturating_add(1);
                if self.quiet_windows >= STILL_WINDOWS {
                    self.moving = false;
                }
            }
            self.win_sum = 0.0;
            self.win_n = 0;
        }

        // Impacts.
        let release = threshold_g * 0.5;
        match &mut self.hit {
            None if loud => {
                self.hit = Some(Hit { start_ns: t_ns, peak_g: m, last_loud_ns: t_ns, reported: false });
                None
            }
            None => None,
            Some(h) => {
                if m > h.peak_g && !h.reported {
                    h.peak_g = m;
                }
                if m >= release {
                    h.last_loud_ns = t_ns;
                }
                let quiet = t_ns.saturating_sub(h.last_loud_ns) >= HOLD_OFF_MS * 1_000_000;
                let too_long = t_ns.saturating_sub(h.start_ns) >= MAX_HIT_S * 1_000_000_000;
                let out = if !h.reported && (quiet || too_long) {
                    h.reported = true;
                    self.last_peak_g = h.peak_g;
                    Some(Impact { mono_ns: h.start_ns, peak_g: h.peak_g })
                } else {
                    None
                };
                if quiet {
                    self.hit = None;
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 10_000_000; // 100 Hz

    /// A waveform: gravity on z with a tilted mount, plus `extra(t_ms)` on the given axis,
    /// plus ±`noise` g of deterministic noise. Returns every impact.
    fn play(secs: u64, axis: usize, noise: f32, extra: impl Fn(f64) -> f32, threshold: f32) -> (Vec<Impact>, Detector) {
        let mut d = Detector::new(P);
        let mut out = Vec::new();
        let mut x = 7u32;
        for i in 0..secs * 100 {
            let t_ms = (i * P) as f64 / 1e6;
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = ((x >> 16) as f32 / 32768.0 - 1.0) * noise;
            let mut s = [0.17 + n, -0.06 - n, 0.98 + n * 0.5];
            s[axis] += extra(t_ms);
            if let Some(imp) = d.push(s, 1_000_000_000 + i * P, threshold) {
                out.push(imp);
            }
        }
        (out, d)
    }

    fn pulse(start_ms: f64, dur_ms: f64, g: f32) -> impl Fn(f64) -> f32 {
        move |t| if t >= start_ms && t < start_ms + dur_ms { g } else { 0.0 }
    }

    #[test]
    fn a_6g_60ms_pulse_is_one_impact_at_its_onset() {
        for axis in 0..3 {
            for g in [6.0, -6.0] {
                let (imp, _) = play(10, axis, 0.005, pulse(3000.0, 60.0, g), 2.5);
                assert_eq!(imp.len(), 1, "axis {axis} {g} g: {imp:?}");
                assert_eq!(imp[0].mono_ns, 1_000_000_000 + 3_000_000_000);
                assert!((imp[0].peak_g - 6.0).abs() < 0.1, "{:?}", imp[0]);
            }
        }
    }

    #[test]
    fn a_pulse_with_rebound_and_ringing_is_still_one() {
        let wave = |t: f64| {
            if (3000.0..3060.0).contains(&t) {
                6.0
            } else if (3060.0..3120.0).contains(&t) {
                -3.0
            } else if (3120.0..3400.0).contains(&t) {
                (2.8 * ((t - 3120.0) / 15.0).sin()) as f32
            } else {
                0.0
            }
        };
        let (imp, _) = play(10, 0, 0.005, wave, 2.5);
        assert_eq!(imp.len(), 1, "{imp:?}");
        // Two crashes two seconds apart are two.
        let two = |t: f64| pulse(3000.0, 60.0, 6.0)(t) + pulse(5000.0, 60.0, 4.0)(t);
        let (imp, _) = play(10, 0, 0.005, two, 2.5);
        assert_eq!(imp.len(), 2, "{imp:?}");
        assert_eq!(imp[1].mono_ns, 6_000_000_000);
        assert!((imp[1].peak_g - 4.0).abs() < 0.1);
    }

    #[test]
    fn a_pothole_and_long_braking_are_none() {
        // 1.3 g for 80 ms on z (a pothole), then 0.4 g braking for 4 s on x with 0.5 s ramps.
        let pothole = pulse(2000.0, 80.0, 1.3);
        let (imp, _) = play(10, 2, 0.01, pothole, 2.5);
        assert!(imp.is_empty(), "{imp:?}");
        let brake = |t: f64| {
            let r = ((t - 3000.0) / 500.0).clamp(0.0, 1.0) * ((7500.0 - t) / 500.0).clamp(0.0, 1.0);
            -0.4 * r as f32
        };
        let (imp, _) = play(12, 0, 0.01, brake, 2.5);
        assert!(imp.is_empty(), "{imp:?}");
        // A 3 g hit is an impact at 2.5 g but not at a threshold of 3.5 g.
        assert_eq!(play(6, 0, 0.005, pulse(2000.0, 60.0, 3.0), 2.5).0.len(), 1);
        assert_eq!(play(6, 0, 0.005, pulse(2000.0, 60.0, 3.0), 3.5).0.len(), 0);
    }

    #[test]
    fn gravity_and_the_mount_angle_are_removed() {
        // The mount knocked to a new angle (gravity from z to x): no lasting impact state, and
        // a later hit is still seen.
        let knock = |t: f64| if t >= 2000.0 { 1.0 } else { 0.0 };
        let wave = move |t: f64| knock(t) + pulse(8000.0, 60.0, 6.0)(t);
        let (imp, _) = play(12, 0, 0.005, wave, 0.8);
        assert_eq!(imp.len(), 2, "the knock (1 g at a 0.8 g threshold) and the hit: {imp:?}");
        assert_eq!(imp[1].mono_ns, 9_000_000_000);
    }

    #[test]
    fn moving_follows_vibration() {
        let vib = |t: f64| if (2000.0..12000.0).contains(&t) { (0.15 * (t / 1000.0 * 2.0 * std::f64::consts::PI * 15.0).sin()) as f32 } else { 0.0 };
        let mut d = Detector::new(P);
        let mut states = Vec::new();
        for i in 0..2500u64 {
            let t = i as f64 * 10.0;
            d.push([0.0, 0.0, 1.0 + vib(t)], i * P, 2.5);
            if i % 100 == 0 {
                states.push((i / 100, d.moving()));
            }
        }
        let at = |s: u64| states.iter().find(|x| x.0 == s).unwrap().1;
        assert!(!at(1), "still at rest");
        assert!(!at(5), "4 s of vibration are not enough");
        assert!(at(9) && at(11), "moving while it vibrates");
        assert!(at(13), "a stop of a few seconds is still moving");
        assert!(!at(24), "still after 10 s of quiet");
        // Bumps, potholes, a braking are not driving.
        let bumps = |t: f64| pulse(2000.0, 80.0, 1.3)(t) + pulse(10_100.0, 60.0, 6.0)(t) + pulse(16_000.0, 4000.0, -0.4)(t);
        let mut d = Detector::new(P);
        for i in 0..2500u64 {
            d.push([0.0, 0.0, 1.0 + bumps(i as f64 * 10.0)], i * P, 2.5);
            assert!(!d.moving(), "moving at {} ms", i * 10);
        }
        // A long braking on another axis, at every alignment with the 2 s windows (the rig
        // found one alignment calling it "moving").
        for k in 0..8 {
            let start = 5000.0 + k as f64 * 250.0;
            let mut d = Detector::new(P);
            for i in 0..2000u64 {
                let x = pulse(start, 4000.0, -0.4)(i as f64 * 10.0);
                d.push([x, 0.0, 1.0], i * P, 2.5);
                assert!(!d.moving(), "braking from {start} ms: moving at {} ms", i * 10);
            }
        }
        // Chip noise (±10 mg) is not motion.
        let (_, d) = play(10, 2, 0.01, |_| 0.0, 2.5);
        assert!(!d.moving());
    }
}
