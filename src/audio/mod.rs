//! The microphone: ALSA capture through the kernel's PCM ioctls (`pcm`), AAC-LC encoding
//! (`aac`), and the crash-safe audio files beside the footage (`file`, docs/FORMAT.md,
//! "Audio"). `capture` runs the two threads. Muted (`audio: false`, the live page's switch)
//! means the device is closed and nothing is stored, never "recorded, then silenced".

pub mod aac;
pub mod bench;
pub mod capture;
pub mod file;
pub mod live;
pub mod pcm;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The `audio_device` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// The first capture PCM there is (`/dev/snd/pcmC*D*c`, card order).
    Auto,
    Off,
    Path(String),
}

impl Device {
    pub fn parse(s: &str) -> Result<Device, String> {
        match s {
            "" | "auto" => Ok(Device::Auto),
            "off" => Ok(Device::Off),
            p if p
                .strip_prefix("/dev/snd/pcmC")
                .and_then(|r| r.strip_suffix('c'))
                .and_then(|r| r.split_once('D'))
                .is_some_and(|(c, d)| [c, d].iter().all(|n| (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))) =>
            {
                Ok(Device::Path(p.to_string()))
            }
            _ => Err(format!("{s:?} is not \"auto\", \"off\" or a capture device like \"/dev/snd/pcmC1D0c\"")),
        }
    }
}

/// Why audio was lost (gap records carry it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The capture buffer overran (the process did not read for 2 s).
    Overrun = 1,
    /// The device stalled or was unplugged.
    Device = 2,
    /// The card was slower than the microphone for 30 s (access units dropped).
    Disk = 3,
}

/// The microphone as `/api/status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `"off"`, `"muted"`, `"searching"` (no microphone), `"recording"`, `"lost"`.
    pub state: &'static str,
    pub device: heapless::String<64>,
    pub card: heapless::String<32>,
    pub rate: u32,
    pub channels: u32,
    pub opens: u64,
    /// Access units made durable (each 1024 samples).
    pub stored_aus: u64,
    /// Lost, by cause: samples of overruns and of a stalled or vanished device; access units
    /// dropped because the card was too slow.
    pub lost_overrun_samples: u64,
    pub lost_device_samples: u64,
    pub lost_disk_aus: u64,
    pub overruns: u64,
    pub encoder_errors: u64,
    pub store_errors: u64,
}

static STATUS: Mutex<Status> = Mutex::new(Status {
    state: "off",
    device: heapless::String::new(),
    card: heapless::String::new(),
    rate: 0,
    channels: 0,
    opens: 0,
    stored_aus: 0,
    lost_overrun_samples: 0,
    lost_device_samples: 0,
    lost_disk_aus: 0,
    overruns: 0,
    encoder_errors: 0,
    store_errors: 0,
});

/// Set: nothing is captured or stored (the device is closed).
static MUTED: AtomicBool = AtomicBool::new(false);

/// A copy of the microphone's status (a short lock, no allocation).
pub fn status() -> Status {
    STATUS.lock().map(|s| s.clone()).unwrap_or_else(|p| p.into_inner().clone())
}

fn with_status(f: impl FnOnce(&mut Status)) {
    let mut g = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut g);
}

fn set_state(state: &'static str) {
    with_status(|s| s.state = state);
}

/// The config's `audio` switch: `false` mutes (takes effect within 250 ms: the next period).
pub fn set_enabled(on: bool) {
    MUTED.store(!on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    !MUTED.load(Ordering::Relaxed)
}

/// The UTC time in an audio file's name (`YYYYMMDD-HHMMSS[-N].aud`).
pub fn file_start_utc(p: &std::path::Path) -> Option<i64> {
    let n = p.file_stem()?.to_str()?;
    let d = n.get(0..8)?;
    let t = n.get(9..15)?;
    let num = |s: &str| s.parse::<u32>().ok();
    crate::clock::utc_ns_from_parts(i64::from(num(&d[0..4])?), num(&d[4..6])?, num(&d[6..8])?, num(&t[0..2])?, num(&t[2..4])?, num(&t[4..6])?, 0)
}

/// Starts the microphone's threads (capture, storage) for `audio_device`; `None` when it is
/// `off` or a thread can't be started. `oldest` gives the oldest footage stored (audio older
/// than it goes, as retention deletes the footage).
pub fn spawn(audio_device: &str, enabled: bool, data_dir: &std::path::Path, oldest: Box<dyn Fn() -> Option<i64> + Send>) -> Option<std::thread::JoinHandle<()>> {
    set_enabled(enabled);
    let device = Device::parse(audio_device).unwrap_or(Device::Off);
    if device == Device::Off {
        set_state("off");
        log::info!("audio: off (audio_device \"off\")");
        return None;
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<capture::Msg>(capture::QUEUE);
    let dir = data_dir.to_path_buf();
    std::thread::Builder::new()
        .name("audio-store".into())
        .spawn(move || capture::run_store(rx, &dir, &*oldest))
        .map_err(|e| log::error!("audio: cannot start its storage thread: {e}; recording without sound"))
        .ok()?;
    std::thread::Builder::new()
        .name("audio".into())
        .spawn(move || capture::run_capture(device, tx))
        .map_err(|e| log::error!("audio: cannot start its thread: {e}; recording without sound"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_values() {
        assert_eq!(Device::parse("auto"), Ok(Device::Auto));
        assert_eq!(Device::parse(""), Ok(Device::Auto));
        assert_eq!(Device::parse("off"), Ok(Device::Off));
        assert_eq!(Device::parse("/dev/snd/pcmC1D0c"), Ok(Device::Path("/dev/snd/pcmC1D0c".into())));
        for bad in ["/dev/snd/pcmCaDbc", "/dev/snd/pcmC123D0c", "/dev/snd/pcmC1D0p", "/dev/video0", "on", "/dev/snd/pcmC1D0c/../x", "/dev/snd/pcmC 1D0c"] {
            assert!(Device::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names_give_their_start() {
        let t = file_start_utc(std::path::Path::new("/d/audio/20261121-120000.aud")).unwrap();
        assert_eq!(crate::clock::IsoSeconds(t).to_string(), "2026-11-21T12:00:00Z");
        assert!(file_start_utc(std::path::Path::new("/d/audio/2026112-120000.aud")).is_none());
        assert_eq!(file_start_utc(std::path::Path::new("20261121-120000-1.aud")), Some(t));
    }
}
