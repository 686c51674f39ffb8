//! ALSA capture through the kernel's PCM ioctls on `/dev/snd/pcmC*D*c` (no libasound: Debian
//! ships no static one, and it reads config files at run time). The structs below are the
//! stable UAPI of `<sound/asound.h>` (protocol 2.0.x) for 64-bit targets.
//!
//! Negotiated: interleaved S16_LE, mono (else stereo, mixed down by the caller), 16 kHz (else
//! the first of 48, 44.1, 32, 22.05, 8 kHz the device takes), periods of about 250 ms and a
//! buffer of about 2 s, so a slow card or a busy moment never overruns it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const MASKS: usize = 3;
const INTERVALS: usize = 12;
const P_ACCESS: usize = 0;
const P_FORMAT: usize = 1;
const P_SUBFORMAT: usize = 2;
const P_CHANNELS: usize = 10;
const P_RATE: usize = 11;
const P_PERIOD_SIZE: usize = 13;
const P_BUFFER_SIZE: usize = 17;
const ACCESS_RW_INTERLEAVED: u32 = 3;
const FORMAT_S16_LE: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy)]
struct Mask {
    bits: [u32; 8],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Interval {
    min: u32,
    max: u32,
    /// openmin:1, openmax:1, integer:1, empty:1
    flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct HwParams {
    flags: u32,
    masks: [Mask; MASKS],
    mres: [Mask; 5],
    intervals: [Interval; INTERVALS],
    ires: [Interval; 9],
    rmask: u32,
    cmask: u32,
    info: u32,
    msbits: u32,
    rate_num: u32,
    rate_den: u32,
    fifo_size: libc::c_ulong,
    reserved: [u8; 64],
}

#[repr(C)]
struct SwParams {
    tstamp_mode: i32,
    period_step: u32,
    sleep_min: u32,
    avail_min: libc::c_ulong,
    xfer_align: libc::c_ulong,
    start_threshold: libc::c_ulong,
    stop_threshold: libc::c_ulong,
    silence_threshold: libc::c_ulong,
    silence_size: libc::c_ulong,
    boundary: libc::c_ulong,
    proto: u32,
    tstamp_type: u32,
    reserved: [u8; 56],
}

#[repr(C)]
struct XferI {
    result: libc::c_long,
    buf: *mut libc::c_void,
    frames: libc::c_ulong,
}

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'A' as u64) << 8) | nr
}
const R: u64 = 2;
const W: u64 = 1;
const PVERSION: u64 = ioc(R, 0x00, 4);
const HW_REFINE: u64 = ioc(R | W, 0x10, std::mem::size_of::<HwParams>());
const HW_PARAMS: u64 = ioc(R | W, 0x11, std::mem::size_of::<HwParams>());
const SW_PARAMS: u64 = ioc(R | W, 0x13, std::mem::size_of::<SwParams>());
const DELAY: u64 = ioc(R, 0x21, std::mem::size_of::<libc::c_long>());
const PREPARE: u64 = ioc(0, 0x40, 0);
const START: u64 = ioc(0, 0x42, 0);
const DROP: u64 = ioc(0, 0x43, 0);
const READI_FRAMES: u64 = ioc(R, 0x51, std::mem::size_of::<XferI>());

/// `ioctl(fd, req, arg)` as an `io::Result`.
///
/// # Safety
/// `arg` must point to the struct `req` encodes (or be null for argument-less requests).
unsafe fn xioctl(fd: i32, req: u64, arg: *mut libc::c_void) -> io::Result<()> {
    // SAFETY: the caller passes the struct the request's size and direction describe.
    let r = unsafe { libc::ioctl(fd, req as _, arg) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

impl HwParams {
    /// Everything allowed (alsa-lib's `_snd_pcm_hw_params_any`).
    fn any() -> HwParams {
        HwParams {
            flags: 0,
            masks: [Mask { bits: [u32::MAX; 8] }; MASKS],
            mres: [Mask { bits: [0; 8] }; 5],
            intervals: [Interval { min: 0, max: u32::MAX, flags: 0 }; INTERVALS],
            ires: [Interval { min: 0, max: 0, flags: 0 }; 9],
            rmask: u32::MAX,
            cmask: 0,
            info: u32::MAX,
            msbits: 0,
            rate_num: 0,
            rate_den: 0,
            fifo_size: 0,
            reserved: [0; 64],
        }
    }

    fn set_mask(&mut self, p: usize, v: u32) {
        self.masks[p].bits = [0; 8];
        self.masks[p].bits[(v / 32) as usize] = 1 << (v % 32);
    }

    fn set_range(&mut self, p: usize, min: u32, max: u32) {
        let i = &mut self.intervals[p - 8];
        i.min = min;
        i.max = max;
        i.flags = 1 << 2; // integer
    }

    fn get(&self, p: usize) -> (u32, u32) {
        let i = &self.intervals[p - 8];
        (i.min, i.max)
    }
}

/// An open, configured capture PCM.
pub struct Pcm {
    file: File,
    pub path: PathBuf,
    /// The sound card's id (`/sys/class/sound/cardN/id`), e.g. `Device` or `Loopback`.
    pub card: String,
    pub rate: u32,
    pub channels: u32,
    /// Frames per period and in the whole buffer.
    pub period: usize,
    pub buffer: usize,
}

/// What a read ended with, besides frames.
#[derive(Debug)]
pub enum ReadError {
    /// The buffer overran (EPIPE): samples were lost; [`Pcm::restart`] and go on.
    Overrun,
    /// No samples for longer than the stall time.
    Stalled,
    /// The device is gone (unplugged: ENODEV, or another fatal error).
    Gone(io::Error),
}

/// The rates tried, in order of preference.
const RATES: [u32; 6] = [16_000, 48_000, 44_100, 32_000, 22_050, 8_000];

/// The capture PCMs there are, in card and device order: `/dev/snd/pcmC*D*c`.
pub fn list() -> Vec<PathBuf> {
    let mut v: Vec<(u32, u32, PathBuf)> = std::fs::read_dir("/dev/snd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix("pcmC")?.strip_suffix('c')?;
            let (c, d) = rest.split_once('D')?;
            Some((c.parse().ok()?, d.parse().ok()?, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, _, p)| p).collect()
}

fn card_id(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let card = name.strip_prefix("pcmC").and_then(|r| r.split_once('D')).map(|(c, _)| c).unwrap_or("");
    std::fs::read_to_string(format!("/sys/class/sound/card{card}/id")).map(|s| s.trim().to_string()).unwrap_or_default()
}

impl Pcm {
    /// Opens and configures `path` for capture (see the module doc), prepared and started.
    pub fn open(path: &Path) -> io::Result<Pcm> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
        let fd = file.as_raw_fd();
        let mut version: i32 = 0;
        // SAFETY: PVERSION writes one int.
        unsafe { xioctl(fd, PVERSION, (&raw mut version).cast()) }.map_err(|e| io::Error::new(e.kind(), format!("not an ALSA PCM: {e}")))?;
        let refine = |hw: &mut HwParams| -> io::Result<()> {
            // SAFETY: HW_REFINE reads and writes one snd_pcm_hw_params.
            unsafe { xioctl(fd, HW_REFINE, (hw as *mut HwParams).cast()) }
        };
        let mut hw = HwParams::any();
        hw.set_mask(P_ACCESS, ACCESS_RW_INTERLEAVED);
        hw.set_mask(P_FORMAT, FORMAT_S16_LE);
        hw.set_mask(P_SUBFORMAT, 0);
        refine(&mut hw).map_err(|e| io::Error::new(e.kind(), format!("no interleaved 16-bit capture: {e}")))?;
        // Mono if it can, else the fewest channels it offers (mixed down to mono).
        let (cmin, cmax) = hw.get(P_CHANNELS);
        let channels = if (cmin..=cmax).contains(&1) { 1 } else { cmin.max(1) };
        if channels > 8 {
            return Err(io::Error::new(io::ErrorKind::Unsupported, format!("{channels} channels at least")));
        }
        hw.set_range(P_CHANNELS, channels, channels);
        refine(&mut hw)?;
        let mut rate = 0;
        for r in RATES {
            let mut t = hw;
            t.set_range(P_RATE, r, r);
            if refine(&mut t).is_ok() {
                hw = t;
                rate = r;
                break;
            }
        }
        if rate == 0 {
            let (a, b) = hw.get(P_RATE);
            return Err(io::Error::new(io::ErrorKind::Unsupported, format!("none of the rates blackbox encodes ({a}..{b} Hz offered)")));
        }
        // Periods of 125..500 ms, a buffer of 1..4 s; the kernel picks the smallest period and
        // the largest buffer in range.
        let mut t = hw;
        t.set_range(P_PERIOD_SIZE, rate / 4, rate / 4);
        t.set_range(P_BUFFER_SIZE, rate * 2, rate * 2);
        if refine(&mut t).is_err() {
            t = hw;
            t.set_range(P_PERIOD_SIZE, rate / 8, rate / 2);
            t.set_range(P_BUFFER_SIZE, rate, rate * 4);
        }
        // SAFETY: HW_PARAMS reads and writes one snd_pcm_hw_params.
        unsafe { xioctl(fd, HW_PARAMS, (&raw mut t).cast()) }.map_err(|e| io::Error::new(e.kind(), format!("setting {channels} channel(s) at {rate} Hz: {e}")))?;
        let period = t.get(P_PERIOD_SIZE).0 as usize;
        let buffer = t.get(P_BUFFER_SIZE).0 as usize;
        if period == 0 || buffer < period {
            return Err(io::Error::other(format!("the driver chose a period of {period} and a buffer of {buffer} frames")));
        }
        let mut sw = SwParams {
            tstamp_mode: 0,
            period_step: 1,
            sleep_min: 0,
            avail_min: period as _,
            xfer_align: 1,
            start_threshold: 1,
            stop_threshold: buffer as _,
            silence_threshold: 0,
            silence_size: 0,
            boundary: 0,
            proto: 0,
            tstamp_type: 0,
            reserved: [0; 56],
        };
        // SAFETY: SW_PARAMS reads and writes one snd_pcm_sw_params.
        unsafe { xioctl(fd, SW_PARAMS, (&raw mut sw).cast()) }.map_err(|e| io::Error::new(e.kind(), format!("sw params: {e}")))?;
        let pcm = Pcm { card: card_id(path), file, path: path.to_path_buf(), rate, channels, period, buffer };
        pcm.restart()?;
        Ok(pcm)
    }

    /// Prepares and starts the stream (after opening, and after an overrun).
    pub fn restart(&self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: DROP, PREPARE and START take no argument.
        unsafe {
            let _ = xioctl(fd, DROP, std::ptr::null_mut());
            xioctl(fd, PREPARE, std::ptr::null_mut())?;
            xioctl(fd, START, std::ptr::null_mut())
        }
    }

    /// Frames captured and not yet read (the capture delay).
    pub fn delay(&self) -> io::Result<i64> {
        let mut d: libc::c_long = 0;
        // SAFETY: DELAY writes one snd_pcm_sframes_t.
        unsafe { xioctl(self.file.as_raw_fd(), DELAY, (&raw mut d).cast()) }?;
        #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
        Ok(i64::from(d))
    }

    /// Waits up to `stall_ms` for samples and reads what there is into `buf` (interleaved,
    /// `channels` per frame). Returns the frames read (at least 1).
    pub fn read(&self, buf: &mut [i16], stall_ms: i32) -> Result<usize, ReadError> {
        let fd = self.file.as_raw_fd();
        let frames = buf.len() / self.channels as usize;
        loop {
            let mut x = XferI { result: 0, buf: buf.as_mut_ptr().cast(), frames: frames as _ };
            // SAFETY: READI_FRAMES writes at most `frames` frames of `channels` i16 into `buf`
            // (its length bounds `frames`) and its result into `x`.
            match unsafe { xioctl(fd, READI_FRAMES, (&raw mut x).cast()) } {
                Ok(()) if x.result > 0 => return Ok(x.result as usize),
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Err(ReadError::Overrun),
                // Suspended (ESTRPIPE) or not running any more (EBADFD): start again, as after
                // an overrun.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ESTRPIPE) | Some(libc::EBADFD)) => return Err(ReadError::Overrun),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadError::Gone(e)),
            }
            let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd on the stack.
            let r = unsafe { libc::poll(&mut p, 1, stall_ms) };
            if r == 0 {
                return Err(ReadError::Stalled);
            }
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ReadError::Gone(e));
            }
            if p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 && p.revents & libc::POLLIN == 0 {
                // POLLERR is also how an overrun shows; the next read tells which.
                let mut x = XferI { result: 0, buf: buf.as_mut_ptr().cast(), frames: frames as _ };
                // SAFETY: as above.
                return match unsafe { xioctl(fd, READI_FRAMES, (&raw mut x).cast()) } {
                    Ok(()) if x.result > 0 => Ok(x.result as usize),
                    Err(e) if e.raw_os_error() == Some(libc::EPIPE) => Err(ReadError::Overrun),
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                    Err(e) => Err(ReadError::Gone(e)),
                    Ok(()) => Err(ReadError::Gone(io::Error::other("the device reported an error"))),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_sizes_and_request_numbers() {
        // <sound/asound.h> on 64-bit targets.
        assert_eq!(std::mem::size_of::<HwParams>(), 608);
        assert_eq!(std::mem::size_of::<SwParams>(), 136);
        assert_eq!(std::mem::size_of::<XferI>(), 24);
        assert_eq!(HW_PARAMS, 0xc260_4111);
        assert_eq!(SW_PARAMS, 0xc088_4113);
        assert_eq!(READI_FRAMES, 0x8018_4151);
        assert_eq!(PREPARE, 0x4140);
        assert_eq!(PVERSION, 0x8004_4100);
    }

    #[test]
    fn a_missing_device_is_an_error_not_a_panic() {
        assert!(Pcm::open(Path::new("/nonexistent/pcmC9D9c")).is_err());
        // A file that is not a PCM: PVERSION fails.
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = Pcm::open(f.path()).err().unwrap();
        assert!(e.to_string().contains("not an ALSA PCM"), "{e}");
    }
}
