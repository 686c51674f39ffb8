//! Motion on the picture while parked: a grid of block means of the luma plane against a slowly
//! following background, with the burnt-in timestamp masked and whole-picture lighting changes
//! taken out. Fixed-size state; nothing allocated per picture.
//!
//! - Each picture is reduced to [`COLS`] x [`ROWS`] block means of its luma.
//! - The **lighting** change is the median of all blocks' differences to the background; it is
//!   subtracted first, so dusk, a cloud or headlights sweeping the whole scene move every
//!   block alike and count as nothing. When more than [`GLOBAL_SHARE`] of the blocks still
//!   changed, the picture is a scene change (the camera knocked, auto-exposure jumping): the
//!   background is relearnt, no motion reported.
//! - The **timestamp** the recorder burns in (top left) is masked: [`MASK_COLS`] x
//!   [`MASK_ROWS`] blocks.
//! - **Motion**: at least [`MIN_BLOCKS`] blocks changed by more than [`BLOCK_DELTA`] levels, in
//!   [`PERSIST`] pictures in a row (one noisy picture is not a motion).
//! - The background follows each picture by [`LEARN`] where nothing changed, by
//!   [`LEARN_CHANGED`] where something did.

pub const COLS: usize = 16;
pub const ROWS: usize = 9;
pub const MASK_COLS: usize = 6;
pub const MASK_ROWS: usize = 1;
pub const BLOCK_DELTA: f32 = 14.0;
pub const MIN_BLOCKS: usize = 2;
pub const GLOBAL_SHARE: f32 = 0.6;
pub const PERSIST: u32 = 2;
pub const LEARN: f32 = 0.2;
/// How fast a block that changed is learnt: slowly, so a one-picture pulse doesn't leave a
/// ghost and something that stays is taken into the scene within about a minute at 1 Hz.
pub const LEARN_CHANGED: f32 = 0.03;

#[derive(Clone, Debug)]
pub struct Motion {
    bg: [f32; COLS * ROWS],
    have_bg: bool,
    run: u32,
    /// Blocks that changed in the last picture (for the log and tests).
    pub last_changed: usize,
}

impl Default for Motion {
    fn default() -> Self {
        Motion::new()
    }
}

impl Motion {
    pub fn new() -> Motion {
        Motion { bg: [0.0; COLS * ROWS], have_bg: false, run: 0, last_changed: 0 }
    }

    /// Forgets the background (parking mode entered again, another camera).
    pub fn reset(&mut self) {
        self.have_bg = false;
        self.run = 0;
    }

    /// One picture's luma (`w` x `h`, rows `stride` bytes apart). True when it shows motion.
    pub fn push(&mut self, y: &[u8], w: usize, h: usize, stride: usize) -> bool {
        let mut cur = [0f32; COLS * ROWS];
        if !block_means(y, w, h, stride, &mut cur) {
            return false;
        }
        if !self.have_bg {
            self.bg = cur;
            self.have_bg = true;
            self.run = 0;
            return false;
        }
        let mut d = [0f32; COLS * ROWS];
        for i in 0..COLS * ROWS {
            d[i] = cur[i] - self.bg[i];
        }
        let mut sorted = d;
        sorted.sort_unstable_by(|a, b| a.total_cmp(b));
        let lighting = sorted[COLS * ROWS / 2];
        let mut changed = 0;
        let mut live = 0;
        for r in 0..ROWS {
            for c in 0..COLS {
                let i = r * COLS + c;
                let moved = (d[i] - lighting).abs() > BLOCK_DELTA;
                self.bg[i] += if moved { LEARN_CHANGED } else { LEARN } * (cur[i] - self.bg[i]);
                if r < MASK_ROWS && c < MASK_COLS {
                    continue;
                }
                live += 1;
                if moved {
                    changed += 1;
                }
            }
        }
        self.last_changed = changed;
        if changed as f32 > GLOBAL_SHARE * live as f32 {
            // A scene change, not something moving in it.
            self.bg = cur;
            self.run = 0;
            return false;
        }
        if changed >= MIN_BLOCKS {
            self.run += 1;
        } else {
            self.run = 0;
        }
        self.run == PERSIST
    }
}

/// The mean luma of each block; false when the picture is too small or `y` too short.
fn block_means(y: &[u8], w: usize, h: usize, stride: usize, out: &mut [f32; COLS * ROWS]) -> bool {
    if w < COLS || h < ROWS || stride < w || y.len() < stride * (h - 1) + w {
        return false;
    }
    // Sample every `step`th pixel of each block: enough for a mean, cheap on a Pi.
    let step = (w / COLS / 8).max(1);
    for r in 0..ROWS {
        let (y0, y1) = (r * h / ROWS, (r + 1) * h / ROWS);
        for c in 0..COLS {
            let (x0, x1) = (c * w / COLS, (c + 1) * w / COLS);
            let (mut sum, mut n) = (0u32, 0u32);
            for yy in (y0..y1).step_by(step) {
                let row = &y[yy * stride..yy * stride + w];
                for xx in (x0..x1).step_by(step) {
                    sum += u32::from(row[xx]);
                    n += 1;
                }
            }
            out[r * COLS + c] = sum as f32 / n.max(1) as f32;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 320;
    const H: usize = 180;

    /// A textured still scene with `brightness` added, a `sq`-pixel square at `at`, and the
    /// timestamp box's digits changing with `tick`; plus noise.
    fn scene(brightness: i32, at: Option<(usize, usize)>, sq: usize, tick: u32, seed: &mut u32) -> Vec<u8> {
        let mut y = vec![0u8; W * H];
        for r in 0..H {
            for c in 0..W {
                *seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let noise = ((*seed >> 16) % 7) as i32 - 3;
                let base = 60 + ((r / 20 + c / 30) % 4) as i32 * 30;
                let mut v = base + brightness + noise;
                if let Some((x, yy)) = at
                    && (x..x + sq).contains(&c)
                    && (yy..yy + sq).contains(&r)
                {
                    v = 240;
                }
                // The burnt-in timestamp (top left, 110 x 16 px): changes every picture.
                if r < 16 && c < 110 {
                    v = if (c / 8 + tick as usize).is_multiple_of(2) { 255 } else { 0 };
                }
                y[r * W + c] = v.clamp(0, 255) as u8;
            }
        }
        y
    }

    #[test]
    fn a_still_scene_with_noise_and_a_ticking_clock_is_no_motion() {
        let mut m = Motion::new();
        let mut seed = 1;
        for t in 0..50 {
            assert!(!m.push(&scene(0, None, 0, t, &mut seed), W, H, W), "motion at {t}");
        }
    }

    #[test]
    fn something_crossing_the_picture_is_motion_within_a_few_pictures() {
        let mut m = Motion::new();
        let mut seed = 2;
        for t in 0..10 {
            assert!(!m.push(&scene(0, None, 0, t, &mut seed), W, H, W));
        }
        let mut at = None;
        for k in 0..12 {
            if m.push(&scene(0, Some((40 + k * 20, 80)), 40, 10 + k as u32, &mut seed), W, H, W) {
                at = Some(k);
                break;
            }
        }
        assert!(at.is_some_and(|k| k <= 3), "motion seen at {at:?}");
    }

    #[test]
    fn lighting_changes_of_the_whole_picture_are_no_motion() {
        let mut m = Motion::new();
        let mut seed = 3;
        for t in 0..10 {
            m.push(&scene(0, None, 0, t, &mut seed), W, H, W);
        }
        // Dusk: 40 levels darker in steps, and back; then a sudden +50 (headlights).
        for (t, b) in [-10, -20, -30, -40, -40, -30, -20, 0, 50, 50, 50].into_iter().enumerate() {
            assert!(!m.push(&scene(b, None, 0, 20 + t as u32, &mut seed), W, H, W), "motion at lighting {b}");
        }
    }

    #[test]
    fn a_pulse_in_one_picture_only_is_no_motion() {
        let mut m = Motion::new();
        let mut seed = 4;
        for t in 0..10 {
            m.push(&scene(0, None, 0, t, &mut seed), W, H, W);
        }
        assert!(!m.push(&scene(0, Some((150, 60)), 50, 10, &mut seed), W, H, W));
        for t in 11..20 {
            assert!(!m.push(&scene(0, None, 0, t, &mut seed), W, H, W), "motion at {t}");
        }
    }
}
