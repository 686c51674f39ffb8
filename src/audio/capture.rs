//! The microphone's two threads. `audio` reads the PCM (250 ms periods), mixes down to mono,
//! encodes 1024-sample AAC frames and hands each access unit to `audio-store` through a
//! bounded channel allocated once; `audio-store` appends them to the audio file and makes them
//! durable (fdatasync about once a second). Capture never waits on the card: when the channel
//! is full (the card slower than the microphone for 30 s), access units are dropped and counted.
//!
//! Timestamps: each run (from a start to an overrun, a stall, an unplug or a mute) anchors
//! its sample clock to CLOCK_MONOTONIC from the kernel's capture delay (the time of the newest
//! sample read is now − delay / rate), then follows the measured time with a slow filter, so the
//! microphone's clock drifting against the system's is followed, not accumulated. An access
//! unit's time is that of the first sample it decodes to (the encoder's delay accounted for).

use super::aac::{Aac, FRAME, MAX_AU};
use super::file::{self, Format, Rec, Writer, KIND_AU, KIND_GAP};
use super::pcm::{self, Pcm, ReadError};
use super::{set_state, with_status, Cause, Device};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// Access units the channel holds: 30 s at 16 kHz, 10 s at 48 kHz.
pub const QUEUE: usize = 480;
/// A read that waits longer than this is a stalled device.
const STALL_MS: i32 = 3000;
/// Files are started anew after this long (retention deletes whole files).
const FILE_SPAN_NS: i64 = 10 * 60 * 1_000_000_000;
/// Durable at least this often.
const SYNC_NS: u64 = 1_000_000_000;

/// What goes from capture to storage: one record, by value (no allocation).
pub struct Msg {
    pub rec: Rec,
    pub data: [u8; MAX_AU],
    pub format: Format,
}

pub fn run_capture(device: Device, tx: SyncSender<Msg>) {
    let mut announced_none = false;
    // When the last run ended because the device stalled or went away: the time until it
    // records again is a gap (counted, and marked in the file when it is back).
    let mut away_since: Option<u64> = None;
    loop {
        if super::MUTED.load(Ordering::Relaxed) {
            set_state("muted");
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let path = match &device {
            Device::Path(p) => Some(PathBuf::from(p)),
            Device::Auto => pcm::list().into_iter().next(),
            Device::Off => return,
        };
        let Some(path) = path else {
            if !announced_none {
                log::info!("audio: no microphone found (/dev/snd/pcmC*D*c); looking again every 2 s");
                announced_none = true;
            }
            set_state("searching");
            std::thread::sleep(Duration::from_secs(2));
            continue;
        };
        match Pcm::open(&path) {
            Ok(p) => {
                announced_none = false;
                log::info!(
                    "audio: {} ({}) at {} Hz, {} channel(s), periods of {} ms, a buffer of {} ms",
                    path.display(),
                    p.card,
                    p.rate,
                    p.channels,
                    p.period as u64 * 1000 / u64::from(p.rate),
                    p.buffer as u64 * 1000 / u64::from(p.rate)
                );
                with_status(|s| {
                    s.device = heapless::String::try_from(path.to_str().unwrap_or("")).unwrap_or_default();
                    s.card = heapless::String::try_from(p.card.as_str()).unwrap_or_default();
                    s.rate = p.rate;
                    s.channels = p.channels;
                    s.opens += 1;
                });
                if let Some(why) = record(&p, &tx, &mut away_since) {
                    log::warn!("audio: {}: {why}; opening it again", path.display());
                    set_state("lost");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            Err(e) => {
                if !announced_none {
                    log::warn!("audio: {}: {e}; trying again every 2 s", path.display());
                    announced_none = true;
                }
                set_state("searching");
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
}

/// One run's sample clock (see the module doc).
struct Clock {
    rate: f64,
    /// CLOCK_MONOTONIC ns of sample 0 of the run.
    t0: f64,
    anchored: bool,
}

impl Clock {
    fn mono_of(&self, sample: i64) -> u64 {
        (self.t0 + sample as f64 * 1e9 / self.rate).max(0.0) as u64
    }

    /// After a read: `read` samples so far in the run and the device's delay.
    fn observe(&mut self, read: u64, delay: i64) {
        let now = crate::clock::now_mono_ns() as f64;
        let measured_t0 = now - (read as f64 + delay.max(0) as f64) * 1e9 / self.rate;
        if !self.anchored {
            self.t0 = measured_t0;
            self.anchored = true;
        } else {
            let err = measured_t0 - self.t0;
            // Scheduling makes reads late, never early: follow slowly, jump only on a big error.
            if err.abs() > 200e6 { self.t0 = measured_t0 } else { self.t0 += err / 32.0 }
        }
    }
}

/// Records from an open PCM until it fails (returns why) or audio is muted (`None`).
/// `away_since`: where the last run's samples ended if the device failed it.
fn record(p: &Pcm, tx: &SyncSender<Msg>, away_since: &mut Option<u64>) -> Option<String> {
    let ch = p.channels as usize;
    let mut buf = vec![0i16; p.period * ch]; // once per open, not per period
    let mut enc = match Aac::new(p.rate, super::bench::bitrate_for(p.rate)) {
        Ok(e) => e,
        Err(e) => return Some(e),
    };
    let format = Format { rate: p.rate, channels: 1, asc: enc.asc.clone(), samples_per_au: FRAME as u32 };
    let mut frame = [0i16; FRAME];
    let mut filled = 0usize;
    let mut out_aus: i64 = 0; // access units out this run
    let mut read: u64 = 0; // samples read this run
    let mut clock = Clock { rate: f64::from(p.rate), t0: 0.0, anchored: false };
    let mut au = [0u8; MAX_AU];
    let mut pad: i64 = 0; // zeros fed ahead of the run's first sample (see `grid_pad`)
    let mut run_end_mono: Option<u64> = None; // where the previous run's samples ended
    set_state("recording");
    loop {
        let r = if super::MUTED.load(Ordering::Relaxed) { Err(None) } else { p.read(&mut buf, STALL_MS).map_err(Some) };
        match r {
            Ok(n) => {
                let first_read = !clock.anchored;
                read += n as u64;
                clock.observe(read, p.delay().unwrap_or(0));
                if first_read && let Some(end) = away_since.take() {
                    // Back after a stall or an unplug: the time away is the gap.
                    let lost = clock.mono_of(0).saturating_sub(end) as f64 * f64::from(p.rate) / 1e9;
                    gap(tx, &format, end, lost as u32, Cause::Device);
                }
                if first_read {
                    // Units on the absolute grid: silence ahead of the run's first sample so
                    // that every unit starts at a multiple of 1024 samples since the epoch.
                    pad = grid_pad(utc_of(clock.mono_of(0)), p.rate, enc.delay);
                    frame[..pad as usize].fill(0);
                    filled = pad as usize;
                }
                if let Some(end) = run_end_mono.take() {
                    // The samples between the last run's end and this one's start were lost.
                    let start = clock.mono_of(0);
                    let lost = start.saturating_sub(end) as f64 * f64::from(p.rate) / 1e9;
                    gap(tx, &format, end, lost as u32, Cause::Overrun);
                }
                for f in 0..n {
                    let s = if ch == 1 {
                        buf[f]
                    } else {
                        let sum: i32 = buf[f * ch..(f + 1) * ch].iter().map(|&v| i32::from(v)).sum();
                        (sum / ch as i32) as i16
                    };
                    frame[filled] = s;
                    filled += 1;
                    if filled == FRAME {
                        filled = 0;
                        emit(&mut enc, &frame, &mut au, &mut out_aus, pad, &clock, &format, tx);
                    }
                }
            }
            Err(Some(ReadError::Overrun)) => {
                // Flush the run (its last samples are in the encoder), then start a new one.
                flush(&mut enc, &mut frame, filled, &mut au, &mut out_aus, pad, &clock, &format, tx);
                run_end_mono = Some(clock.mono_of(read as i64));
                with_status(|s| s.overruns += 1);
                if let Err(e) = p.restart() {
                    break Some(format!("restarting after an overrun: {e}"));
                }
                log::warn!("audio: overrun (the buffer of {} ms filled); restarted", p.buffer as u64 * 1000 / u64::from(p.rate));
                match Aac::new(p.rate, super::bench::bitrate_for(p.rate)) {
                    Ok(e) => enc = e,
                    Err(e) => break Some(e),
                }
                (filled, out_aus, read, pad) = (0, 0, 0, 0);
                clock.anchored = false;
            }
            Err(None) => {
                flush(&mut enc, &mut frame, filled, &mut au, &mut out_aus, pad, &clock, &format, tx);
                log::info!("audio: muted: nothing is recorded until it is switched on again");
                break None;
            }
            Err(Some(e)) => {
                flush(&mut enc, &mut frame, filled, &mut au, &mut out_aus, pad, &clock, &format, tx);
                let end = clock.mono_of(read as i64);
                let why = match e {
                    ReadError::Stalled => format!("no samples for {} s", STALL_MS / 1000),
                    ReadError::Gone(e) => format!("{e}"),
                    ReadError::Overrun => "an overrun".into(),
                };
                // From the last sample read until the device records again is lost (a stall
                // or an unplug): counted when it is back.
                if clock.anchored {
                    *away_since = Some(end);
                }
                break Some(why);
            }
        }
    }
}

fn gap(tx: &SyncSender<Msg>, format: &Format, at_mono: u64, samples: u32, cause: Cause) {
    if samples == 0 {
        return;
    }
    with_status(|s| match cause {
        Cause::Overrun => s.lost_overrun_samples += u64::from(samples),
        Cause::Device => s.lost_device_samples += u64::from(samples),
        Cause::Disk => {}
    });
    let rec = Rec { kind: KIND_GAP, cause: cause as u8, len: 0, utc_ns: utc_of(at_mono), mono_ns: at_mono, samples };
    let _ = tx.try_send(Msg { rec, data: [0; MAX_AU], format: format.clone() });
}

/// UTC of a CLOCK_MONOTONIC time, by today's offset between the clocks.
fn utc_of(mono: u64) -> i64 {
    let now_m = crate::clock::now_mono_ns();
    crate::clock::now_utc_ns() - (now_m as i64 - mono as i64)
}

/// Zeros to feed ahead of a run's first sample (UTC `utc0`) so that its access units start on
/// the absolute grid of 1024-sample slots the export lays sound on (slot n starts at
/// n * 1024 / rate s since the epoch): then a unit lands on its slot exactly, after any gap.
pub fn grid_pad(utc0: i64, rate: u32, delay: u32) -> i64 {
    let s0 = (i128::from(utc0) * i128::from(rate) + 500_000_000).div_euclid(1_000_000_000);
    (s0 - i128::from(delay)).rem_euclid(FRAME as i128) as i64
}

/// Encodes one frame; an access unit that comes out goes to storage.
#[allow(clippy::too_many_arguments)]
fn emit(enc: &mut Aac, frame: &[i16; FRAME], au: &mut [u8; MAX_AU], out_aus: &mut i64, pad: i64, clock: &Clock, format: &Format, tx: &SyncSender<Msg>) {
    let n = match enc.encode(frame, au) {
        Ok(n) => n,
        Err(e) => {
            with_status(|s| s.encoder_errors += 1);
            log::warn!("audio: {e}");
            return;
        }
    };
    if n == 0 {
        return;
    }
    // Access unit k decodes to input samples k * FRAME - delay .., of which the first `pad`
    // were the zeros fed ahead of the run's sample 0.
    let first = *out_aus * FRAME as i64 - i64::from(enc.delay) - pad;
    *out_aus += 1;
    let mono = clock.mono_of(first);
    let rec = Rec { kind: KIND_AU, cause: 0, len: n as u16, utc_ns: utc_of(mono), mono_ns: mono, samples: FRAME as u32 };
    super::live::publish(format.rate, &format.asc, mono, rec.utc_ns, &au[..n]);
    let msg = Msg { rec, data: *au, format: format.clone() };
    // Full: the card has been slower than the microphone for the channel's 30 s; counted.
    // Disconnected: the store thread is gone (shutdown).
    if let Err(TrySendError::Full(_)) = tx.try_send(msg) {
        with_status(|s| s.lost_disk_aus += 1);
    }
}

/// Ends a run: the partial frame padded with silence, then silence until the encoder's
/// look-ahead is out, so every sample read is in an access unit.
#[allow(clippy::too_many_arguments)]
fn flush(enc: &mut Aac, frame: &mut [i16; FRAME], filled: usize, au: &mut [u8; MAX_AU], out_aus: &mut i64, pad: i64, clock: &Clock, format: &Format, tx: &SyncSender<Msg>) {
    if !clock.anchored {
        return;
    }
    frame[filled..].fill(0);
    emit(enc, frame, au, out_aus, pad, clock, format, tx);
    frame.fill(0);
    for _ in 0..(enc.delay as usize).div_ceil(FRAME) {
        emit(enc, frame, au, out_aus, pad, clock, format, tx);
    }
}

/// The storage thread: appends what capture sends, durable about once a second, a new file
/// every 10 minutes or when the format changes; old files go with the footage they belong to.
pub fn run_store(rx: Receiver<Msg>, data_dir: &Path, oldest: &dyn Fn() -> Option<i64>) {
    let mut w: Option<Writer> = None;
    let mut unsynced = 0u64;
    let mut last_sync = crate::clock::now_mono_ns();
    let mut failed_once = false;
    let mut last_prune = Instant::now() - Duration::from_secs(3600);
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(m) => Some(m),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if let Some(m) = msg {
            let rotate = w.as_ref().is_none_or(|w| w.format != m.format || m.rec.utc_ns - w.first_utc_ns >= FILE_SPAN_NS || m.rec.utc_ns < w.first_utc_ns);
            if rotate {
                if let Some(mut old) = w.take() {
                    let _ = old.sync();
                    with_status(|s| s.stored_aus += unsynced);
                    unsynced = 0;
                }
                match Writer::create(data_dir, m.format.clone(), m.rec.utc_ns) {
                    Ok(nw) => w = Some(nw),
                    Err(e) => {
                        store_failed(&mut failed_once, &format!("cannot create an audio file in {}: {e}", file::dir(data_dir).display()));
                        continue;
                    }
                }
            }
            if let Some(wr) = w.as_mut() {
                let payload = &m.data[..m.rec.len as usize];
                match wr.append(&m.rec, payload) {
                    Ok(()) if m.rec.kind == KIND_AU => unsynced += 1,
                    Ok(()) => {}
                    Err(e) => {
                        store_failed(&mut failed_once, &format!("cannot write {}: {e}", wr.path.display()));
                        // A new file next time: never append after a failed write.
                        w = None;
                        unsynced = 0;
                    }
                }
            }
        }
        let now = crate::clock::now_mono_ns();
        if let Some(wr) = w.as_mut()
            && unsynced > 0
            && now.saturating_sub(last_sync) >= SYNC_NS
        {
            match wr.sync() {
                Ok(()) => {
                    with_status(|s| s.stored_aus += unsynced);
                    unsynced = 0;
                    failed_once = false;
                    // Erased meanwhile (the dashboard's "erase the card"): a new file next.
                    if !wr.path.exists() {
                        w = None;
                    }
                }
                Err(e) => {
                    store_failed(&mut failed_once, &format!("cannot sync {}: {e}", wr.path.display()));
                    w = None;
                    unsynced = 0;
                }
            }
            last_sync = now;
        }
        if last_prune.elapsed() >= Duration::from_secs(60) {
            last_prune = Instant::now();
            prune(data_dir, w.as_ref().map(|w| w.path.as_path()), oldest());
        }
    }
}

fn store_failed(failed_once: &mut bool, what: &str) {
    with_status(|s| s.store_errors += 1);
    if !*failed_once {
        log::error!("audio: {what}");
        *failed_once = true;
    }
}

/// Deletes audio files that end before the oldest footage still stored (their footage went
/// to retention); the file being written is never touched.
pub fn prune(data_dir: &Path, current: Option<&Path>, oldest: Option<i64>) {
    let Some(oldest) = oldest else { return };
    let files = file::files(data_dir);
    // A file ends where the next one starts (names are creation times, in order).
    for (i, p) in files.iter().enumerate() {
        if Some(p.as_path()) == current {
            continue;
        }
        let Some(next) = files.get(i + 1) else { continue };
        let next_start = super::file_start_utc(next);
        if next_start.is_some_and(|t| t < oldest) {
            match std::fs::remove_file(p) {
                Ok(()) => log::info!("audio: {} deleted with its footage (retention)", p.display()),
                Err(e) => log::warn!("audio: cannot delete {}: {e}", p.display()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pad_puts_units_on_the_absolute_grid() {
        for (utc0, rate, delay) in [(1_795_262_400_000_000_000i64, 16_000u32, 2048u32), (1_795_262_400_123_456_789, 16_000, 2048), (1_795_262_400_987_654_321, 48_000, 2048), (5_000_000_000, 44_100, 1600)] {
            let pad = grid_pad(utc0, rate, delay);
            assert!((0..FRAME as i64).contains(&pad));
            for k in 0..5i64 {
                // Unit k's first sample, in absolute samples since the epoch.
                let first = k * FRAME as i64 - i64::from(delay) - pad;
                let abs = (i128::from(utc0) * i128::from(rate) + 500_000_000).div_euclid(1_000_000_000) + i128::from(first);
                assert_eq!(abs.rem_euclid(FRAME as i128), 0, "utc0 {utc0} rate {rate} k {k}");
            }
        }
    }
}
