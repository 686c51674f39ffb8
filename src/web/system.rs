//! System figures for `/api/status`: CPU use from `/proc/stat` deltas, RAM from
//! `/proc/meminfo`, this process's RSS, the SoC temperature and, on a Raspberry Pi, the
//! firmware's under-voltage/throttling flags; and the recorder's measured frame rate.
//! A task on the web thread samples them once a second ([`Sampler::tick`]); requests only read
//! the last sample.

use std::cell::Cell;
use std::fs;

/// Where a Pi's firmware reports throttling (the same bits `vcgencmd get_throttled` prints).
pub const THROTTLED_PATH: &str = "/sys/devices/platform/soc/soc:firmware/get_throttled";
pub const TEMP_PATH: &str = "/sys/class/thermal/thermal_zone0/temp";

/// Frame-rate window: the rate is measured over the last few one-second samples.
const FPS_SAMPLES: usize = 4;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    pub cpu_percent: Option<f64>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub temp_c: Option<f64>,
    /// Raw `get_throttled` bits (Pi only).
    pub throttled: Option<u32>,
    /// Frames per second recorded, over the last few seconds.
    pub fps: f64,
}

/// Samples kept between ticks. Lives on the web thread (`Cell`s, no locks).
#[derive(Default)]
pub struct Sampler {
    last_cpu: Cell<Option<(u64, u64)>>,
    frames: Cell<[(u64, u64); FPS_SAMPLES]>,
    n: Cell<usize>,
    figures: Cell<Figures>,
}

impl Sampler {
    pub fn figures(&self) -> Figures {
        self.figures.get()
    }

    /// Takes a sample: `frames` is the recorder's frame counter, `mono_ns` now.
    pub fn tick(&self, frames: u64, mono_ns: u64, recording: bool) {
        let mut f = Figures::default();
        if let Some((busy, total)) = read_cpu() {
            if let Some((b0, t0)) = self.last_cpu.get()
                && total > t0
            {
                f.cpu_percent = Some(((busy.saturating_sub(b0)) as f64 * 100.0 / (total - t0) as f64 * 10.0).round() / 10.0);
            }
            self.last_cpu.set(Some((busy, total)));
        }
        if let Some((total, avail)) = read_meminfo() {
            f.mem_total_bytes = Some(total);
            f.mem_used_bytes = Some(total.saturating_sub(avail));
        }
        f.rss_bytes = read_rss();
        f.temp_c = fs::read_to_string(TEMP_PATH).ok().and_then(|t| t.trim().parse::<f64>().ok()).map(|m| (m / 100.0).round() / 10.0);
        f.throttled = fs::read_to_string(THROTTLED_PATH).ok().and_then(|t| parse_throttled(&t));
        let mut s = self.frames.get();
        let n = self.n.get();
        s.rotate_left(1);
        s[FPS_SAMPLES - 1] = (mono_ns, frames);
        self.frames.set(s);
        self.n.set((n + 1).min(FPS_SAMPLES));
        let oldest = s[FPS_SAMPLES - self.n.get()];
        let dt = mono_ns.saturating_sub(oldest.0);
        f.fps = if recording && dt > 0 && frames >= oldest.1 {
            ((frames - oldest.1) as f64 * 1e9 / dt as f64 * 10.0).round() / 10.0
        } else {
            0.0
        };
        self.figures.set(f);
    }
}

/// (busy, total) jiffies from the first line of `/proc/stat`.
fn read_cpu() -> Option<(u64, u64)> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// (MemTotal, MemAvailable) in bytes.
fn read_meminfo() -> Option<(u64, u64)> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

fn read_rss() -> Option<u64> {
    let text = fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// The firmware file holds the bits in hex (`50005`, with or without `0x`).
pub fn parse_throttled(t: &str) -> Option<u32> {
    let t = t.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    u32::from_str_radix(t, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_has_cpu_memory_and_a_frame_rate() {
        let s = Sampler::default();
        s.tick(0, 1_000_000_000, true);
        std::thread::sleep(std::time::Duration::from_millis(300));
        s.tick(30, 2_000_000_000, true);
        let f = s.figures();
        assert!(f.mem_total_bytes.unwrap() > 0 && f.mem_used_bytes.unwrap() > 0);
        assert!(f.rss_bytes.unwrap() > 0);
        assert_eq!(f.fps, 30.0);
        let c = f.cpu_percent.expect("second sample has a CPU figure");
        assert!((0.0..=100.0).contains(&c), "{c}");
        s.tick(30, 3_000_000_000, false);
        assert_eq!(s.figures().fps, 0.0, "not recording: 0 fps");
        assert_eq!(parse_throttled("50005\n"), Some(0x50005));
        assert_eq!(parse_throttled("0x0"), Some(0));
        assert_eq!(parse_throttled("junk"), None);
    }
}
