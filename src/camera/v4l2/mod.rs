//! V4L2 capture: a real camera (USB UVC webcam, the Pi camera, vivid in the qemu rig).
//!
//! The `v4l` crate opens the device, queries it and negotiates the format. Streaming is done
//! here with its raw ioctl wrappers rather than with `v4l::io::mmap::Stream`, because that
//! stream (0.14) panics in its `Drop` impls on any error other than ENODEV, re-queues a
//! buffer twice after a dequeue timeout, and allocates an `io::Error` on every timeout. Here:
//!
//! - mmap streaming with at least [`BUFFERS`] buffers, all queued before `STREAMON`, which
//!   comes with the first frame asked for (not at open: the caller's set-up would fill the
//!   buffers and the driver would drop frames before the loop started), or at once for a
//!   reopen ([`V4l2Camera::streaming`]);
//! - `next_frame` re-queues the buffer handed out last time, `poll`s with a timeout (always
//!   set: [`DEQUEUE_TIMEOUT_MS`]), and dequeues the next filled one. An MJPEG frame is
//!   `&buf[..bytesused]`, straight from the mmap'd buffer; a raw frame (YUYV, NV12) is
//!   encoded by [`JpegEncoder`] into its preallocated buffer. No heap allocation.
//! - the driver's timestamp (when it says it is monotonic) is the frame's `mono_ns`;
//! - ENODEV (unplugged) is [`CameraError::Disconnected`]; no frame in time is
//!   [`CameraError::Timeout`];
//! - `Drop` stops streaming and unmaps itself, ignoring errors, and drops the `v4l::Device`
//!   (whose handle `unwrap`s `close`) inside `catch_unwind`: a camera error never aborts the
//!   process.

mod format;
mod nodes;

pub use format::Pixel;
pub use nodes::{check_device, first_usable, video_nodes, V4L2_MAJOR};

use crate::camera::encode::JpegEncoder;
use crate::camera::h264dev::{self, H264Joiner};
use crate::camera::overlay::{self, Raw};
use crate::camera::{Camera, CameraError, Codec, FrameMeta};
use crate::clock;
use crate::codec::encoder::VideoEncoder;
use crate::codec::raw::RawFrame;
use std::ffi::c_void;
use std::io;
use std::mem::{self, ManuallyDrop};
use std::path::{Path, PathBuf};
use v4l::buffer::Type as BufType;
use v4l::memory::Memory;
use v4l::v4l_sys::{v4l2_buffer, v4l2_capability, v4l2_requestbuffers};
use v4l::v4l2::{self as raw, vidioc};
use v4l::Device;

/// mmap buffers requested (the driver may give more; fewer is refused).
pub const BUFFERS: u32 = 4;
/// How long `next_frame` waits for a filled buffer before reporting [`CameraError::Timeout`].
pub const DEQUEUE_TIMEOUT_MS: i32 = 2000;

const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
const CAP_STREAMING: u32 = 0x0400_0000;
const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
const BUF_FLAG_ERROR: u32 = 0x0000_0040;
const BUF_FLAG_TIMESTAMP_MASK: u32 = 0x0000_e000;
const BUF_FLAG_TIMESTAMP_MONOTONIC: u32 = 0x0000_2000;


/// What to ask of the device beyond size, rate and quality.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V4l2Options {
    /// Take this pixel format when the device offers it (else the usual order).
    pub prefer: Option<Pixel>,
    /// Burn `YYYY-MM-DD HH:MM:SS UTC` into raw frames before encoding (`embed_timestamp`).
    pub timestamp: bool,
    /// Recording H.264 (`video_codec=h264`): take the device's `H264` format first (stored as
    /// delivered, its encoder controls set from these settings), and encode raw frames to
    /// H.264 rather than JPEG. `None`: MJPEG recording, as before.
    pub h264: Option<H264Options>,
}

/// The H.264 settings a V4L2 camera needs from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H264Options {
    /// `video_bitrate_kbps`.
    pub bitrate_kbps: u32,
    /// `keyframe_interval_s`.
    pub keyframe_interval_s: u32,
}

/// Where the bytes of the frame `advance` made ready are.
#[derive(Clone, Copy, Debug)]
enum Src {
    /// In mmap buffer `.0`, `.1` bytes.
    Mmap(u32, usize),
    /// The JPEG encoder's output.
    Jpeg,
    /// The H.264 encoder's output (a raw camera recording H.264).
    SoftH264,
    /// An H.264 IDR with the cached SPS/PPS put in front ([`H264Joiner`]).
    Joined,
}

/// The frame `advance` made ready: where its bytes are.
#[derive(Clone, Copy, Debug)]
struct Ready {
    meta: FrameMeta,
    src: Src,
}

/// One mmap'd driver buffer.
struct Mapped {
    ptr: *mut u8,
    len: usize,
}

/// A V4L2 capture device (streaming from the first frame asked for).
pub struct V4l2Camera {
    dev: ManuallyDrop<Device>,
    fd: i32,
    path: PathBuf,
    driver: String,
    card: String,
    fourcc: [u8; 4],
    pixel: Pixel,
    width: u32,
    height: u32,
    stride: usize,
    fps: u32,
    quality: u8,
    opts: V4l2Options,
    ready: Option<Ready>,
    bufs: Vec<Mapped>,
    /// The buffer handed out by the last `next_frame`, queued again on the next call.
    held: Option<u32>,
    streaming: bool,
    encoder: Option<JpegEncoder>,
    /// Raw frames to H.264 (recording H.264 from a YUYV/NV12 camera).
    /// Raw frames to H.264: the M2M encoder where the machine has one, else OpenH264.
    h264enc: Option<Box<dyn VideoEncoder>>,
    /// H.264 from the device: key frames from NAL types, SPS/PPS cached and put in front of
    /// IDRs that come without them.
    joiner: Option<Box<H264Joiner>>,
    /// The device's `FORCE_KEY_FRAME` control: unknown until tried, then whether it worked.
    force_key: Option<bool>,
    /// The driver's sequence number of the last frame, to count the frames it dropped.
    last_seq: Option<u32>,
    /// The driver's first sequence number and the buffers dequeued since (the closing log
    /// line: what the driver produced, against what we counted).
    first_seq: Option<u32>,
    dequeued: u64,
    /// Frames the driver skipped (its sequence jumped): no free buffer in time, or the driver
    /// (the machine) was late.
    driver_drops: u64,
    /// How long the last frame waited in the driver before we dequeued it (its capture time to
    /// now): tells a recorder that was behind from a driver that was late.
    last_wait_ns: u64,
    /// Frames the encoder failed on.
    encoder_drops: u64,
}

// The raw pointers are only the mmap'd buffers of this device; nothing is shared.
unsafe impl Send for V4l2Camera {}

fn err_from_io(e: io::Error, what: &str, path: &Path) -> CameraError {
    if e.raw_os_error() == Some(libc::ENODEV) {
        CameraError::Disconnected(format!("{}: {what}: {e}", path.display()))
    } else {
        // Say which call failed (the kind, e.g. Interrupted, is kept).
        CameraError::Io(io::Error::new(e.kind(), format!("{}: {what}: {e}", path.display())))
    }
}

/// Whose lateness a gap of `skipped` frames was: had the frame before it waited in the driver
/// (`wait_ns`, its capture time to its dequeue) for half the gap's span or more, the recorder
/// was behind and the driver had no free buffer in time; else the driver (or the whole
/// machine: a VM descheduled by its host) produced late, with our buffers queued.
fn recorder_was_behind(wait_ns: u64, skipped: u32, fps: u32) -> bool {
    let period_ns = 1_000_000_000 / u64::from(fps.max(1));
    wait_ns.saturating_mul(2) >= u64::from(skipped) * period_ns
}

fn buffer_desc() -> v4l2_buffer {
    // SAFETY: v4l2_buffer is a plain C struct; all-zero is a valid value.
    let mut b: v4l2_buffer = unsafe { mem::zeroed() };
    b.type_ = BufType::VideoCapture as u32;
    b.memory = Memory::Mmap as u32;
    b
}

fn cstr(bytes: &[u8]) -> String {
    let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..n]).into_owned()
}


impl V4l2Camera {
    /// Opens `device`, negotiates a format near `width` x `height` at `fps` (MJPEG at that size
    /// first; else YUYV or NV12, encoded at `quality`) and maps the buffers. Streaming starts
    /// with the first frame asked for.
    pub fn open(device: &Path, width: u32, height: u32, fps: u32, quality: u8) -> Result<Self, CameraError> {
        Self::open_with(device, width, height, fps, quality, V4l2Options::default())
    }

    /// [`V4l2Camera::open`] with options. A device node that does not exist (yet) is
    /// [`CameraError::Disconnected`], like one that vanished.
    pub fn open_with(device: &Path, width: u32, height: u32, fps: u32, quality: u8, opts: V4l2Options) -> Result<Self, CameraError> {
        check_device(device)?;
        let dev = Device::with_path(device).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENXIO) => CameraError::Disconnected(format!("{}: {e}", device.display())),
            _ => err_from_io(e, "open", device),
        })?;
        let mut cam = V4l2Camera {
            fd: dev.handle().fd(),
            dev: ManuallyDrop::new(dev),
            path: device.to_path_buf(),
            driver: String::new(),
            card: String::new(),
            fourcc: *b"????",
            pixel: Pixel::Mjpeg,
            width,
            height,
            stride: 0,
            fps,
            quality,
            opts,
            ready: None,
            bufs: Vec::new(),
            held: None,
            streaming: false,
            encoder: None,
            h264enc: None,
            joiner: None,
            force_key: None,
            last_seq: None,
            first_seq: None,
            dequeued: 0,
            last_wait_ns: 0,
            driver_drops: 0,
            encoder_drops: 0,
        };
        // From here on, an error drops `cam`, which releases whatever was set up. The v4l
        // crate's conversions `expect` on driver answers they don't know (a newer colorspace
        // enum, a non-UTF-8 format name): such a panic becomes an error, not an abort.
        let setup = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), CameraError> {
            cam.query_caps()?;
            cam.negotiate(width, height, fps)?;
            // Streaming starts at the first frame asked for (`advance`), not here: what the
            // caller sets up between open and its loop (the store, other cameras, the web
            // side; a second under TCG) would otherwise fill every buffer, and the driver
            // would drop the frames after them.
            cam.map_buffers()
        }));
        match setup {
            Ok(Ok(())) => Ok(cam),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(CameraError::Invalid(format!(
                "{}: the v4l crate could not parse the driver's answer (panic above)",
                device.display()
            ))),
        }
    }

    fn query_caps(&mut self) -> Result<(), CameraError> {
        // SAFETY: plain C struct, zeroed; the ioctl fills it.
        let mut caps: v4l2_capability = unsafe { mem::zeroed() };
        unsafe { raw::ioctl(self.fd, vidioc::VIDIOC_QUERYCAP, &mut caps as *mut _ as *mut c_void) }
            .map_err(|e| err_from_io(e, "VIDIOC_QUERYCAP", &self.path))?;
        self.driver = cstr(&caps.driver);
        self.card = cstr(&caps.card);
        // device_caps describe this node; capabilities the whole physical device (vivid's
        // output node would claim VIDEO_CAPTURE from it).
        let c = if caps.capabilities & CAP_DEVICE_CAPS != 0 { caps.device_caps } else { caps.capabilities };
        if c & CAP_VIDEO_CAPTURE == 0 {
            return Err(CameraError::Invalid(format!(
                "{}: not a video capture device (driver {}, card {:?})",
                self.path.display(),
                self.driver,
                self.card
            )));
        }
        if c & CAP_STREAMING == 0 {
            return Err(CameraError::Invalid(format!("{}: no streaming I/O (driver {})", self.path.display(), self.driver)));
        }
        Ok(())
    }


    fn map_buffers(&mut self) -> Result<(), CameraError> {
        // SAFETY: plain C struct, zeroed.
        let mut req: v4l2_requestbuffers = unsafe { mem::zeroed() };
        req.count = BUFFERS;
        req.type_ = BufType::VideoCapture as u32;
        req.memory = Memory::Mmap as u32;
        unsafe { raw::ioctl(self.fd, vidioc::VIDIOC_REQBUFS, &mut req as *mut _ as *mut c_void) }
            .map_err(|e| err_from_io(e, "VIDIOC_REQBUFS", &self.path))?;
        if req.count < BUFFERS {
            return Err(CameraError::Invalid(format!(
                "{}: the driver gave {} mmap buffers, blackbox needs {BUFFERS}",
                self.path.display(),
                req.count
            )));
        }
        self.bufs.reserve_exact(req.count as usize);
        for index in 0..req.count {
            let mut b = buffer_desc();
            b.index = index;
            unsafe { raw::ioctl(self.fd, vidioc::VIDIOC_QUERYBUF, &mut b as *mut _ as *mut c_void) }
                .map_err(|e| err_from_io(e, "VIDIOC_QUERYBUF", &self.path))?;
            let len = b.length as usize;
            // SAFETY: maps the driver's buffer `index` at the offset it gave; unmapped in Drop.
            let ptr = unsafe {
                raw::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    self.fd,
                    b.m.offset as libc::off_t,
                )
            }
            .map_err(|e| err_from_io(e, "mmap", &self.path))?;
            self.bufs.push(Mapped { ptr: ptr as *mut u8, len });
        }
        // The joiner must hold the largest buffer plus the parameter sets.
        let biggest = self.bufs.iter().map(|m| m.len).max().unwrap_or(0);
        if let Some(j) = self.joiner.as_mut() {
            j.reserve_for(biggest);
        }
        Ok(())
    }

    fn queue(&self, index: u32) -> io::Result<()> {
        let mut b = buffer_desc();
        b.index = index;
        // SAFETY: a valid v4l2_buffer for one of our mmap buffers.
        unsafe { raw::ioctl(self.fd, vidioc::VIDIOC_QBUF, &mut b as *mut _ as *mut c_void) }
    }

    fn start(&mut self) -> Result<(), CameraError> {
        for i in 0..self.bufs.len() as u32 {
            self.queue(i).map_err(|e| err_from_io(e, "VIDIOC_QBUF", &self.path))?;
        }
        let mut typ = BufType::VideoCapture as u32;
        unsafe { raw::ioctl(self.fd, vidioc::VIDIOC_STREAMON, &mut typ as *mut _ as *mut c_void) }
            .map_err(|e| err_from_io(e, "VIDIOC_STREAMON", &self.path))?;
        self.streaming = true;
        Ok(())
    }

    /// Starts streaming now, for a camera opened inside a running loop (a reopen): its
    /// `STREAMON` failing is then the open's failure, retried as one.
    pub fn streaming(mut self) -> Result<Self, CameraError> {
        self.start()?;
        Ok(self)
    }

    /// The device node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The negotiated pixel format.
    pub fn pixel(&self) -> Pixel {
        self.pixel
    }

    /// The driver's name (`uvcvideo`, `vivid`, `bcm2835 mmal`, ...).
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// Frames the driver dropped so far (gaps in its sequence numbers).
    pub fn driver_drops(&self) -> u64 {
        self.driver_drops
    }

    /// Number of mmap buffers in use.
    pub fn buffers(&self) -> usize {
        self.bufs.len()
    }

    /// Waits for one filled buffer (until `deadline_ns` on the monotonic clock) and dequeues
    /// it. Buffers the driver flags as broken are queued again and skipped.
    fn dequeue(&mut self, deadline_ns: u64) -> Result<v4l2_buffer, CameraError> {
        loop {
            let now = clock::now_mono_ns();
            if now >= deadline_ns {
                return Err(CameraError::Timeout);
            }
            let ms = ((deadline_ns - now).div_ceil(1_000_000)).min(i32::MAX as u64) as i32;
            let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    // A signal (SIGTERM asks the recorder to stop): let it look.
                    return Err(CameraError::Io(e));
                }
                return Err(err_from_io(e, "poll", &self.path));
            }
            if n == 0 {
                return Err(CameraError::Timeout);
            }
            let mut b = buffer_desc();
            // SAFETY: a valid v4l2_buffer; the driver fills it.
            match unsafe { raw::ioctl(self.fd, vidioc::VIDIOC_DQBUF, &mut b as *mut _ as *mut c_void) } {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(err_from_io(e, "VIDIOC_DQBUF", &self.path)),
            }
            if b.index as usize >= self.bufs.len() {
                return Err(CameraError::Io(io::Error::from_raw_os_error(libc::EINVAL)));
            }
            if b.flags & BUF_FLAG_ERROR != 0 || b.bytesused == 0 && matches!(self.pixel, Pixel::Mjpeg | Pixel::H264) {
                // A corrupted or empty frame: give the buffer back and wait for the next.
                self.queue(b.index).map_err(|e| err_from_io(e, "VIDIOC_QBUF", &self.path))?;
                continue;
            }
            return Ok(b);
        }
    }
}

impl V4l2Camera {
    /// Waits for the next frame and makes it ready for [`V4l2Camera::current`]: the
    /// [`Camera::next_frame`] of this camera in two steps, so that a wrapper can act on an
    /// error without holding a borrow of the frame (see `camera::reopen`).
    pub fn advance(&mut self) -> Result<(), CameraError> {
        self.ready = None;
        if !self.streaming {
            self.start()?;
        }
        if let Some(i) = self.held.take() {
            self.queue(i).map_err(|e| err_from_io(e, "VIDIOC_QBUF", &self.path))?;
        }
        let start = clock::now_mono_ns();
        let b = self.dequeue(start + DEQUEUE_TIMEOUT_MS as u64 * 1_000_000)?;
        self.held = Some(b.index);
        if let Some(last) = self.last_seq {
            let skipped = b.sequence.wrapping_sub(last).wrapping_sub(1);
            if skipped > 0 && skipped < 1 << 30 {
                self.driver_drops += u64::from(skipped);
                let why = if recorder_was_behind(self.last_wait_ns, skipped, self.fps) {
                    "the recorder was behind: no free buffer in time"
                } else {
                    "the recorder was keeping up: the driver or the machine was late"
                };
                log::warn!(
                    "camera {}: the driver dropped {skipped} frame(s) before #{} ({} so far); #{last} was taken {} ms after its capture: {why}",
                    self.path.display(),
                    b.sequence,
                    self.driver_drops,
                    self.last_wait_ns / 1_000_000
                );
            }
        }
        let mut lost_before = 0u32;
        if let Some(last) = self.last_seq {
            let skipped = b.sequence.wrapping_sub(last).wrapping_sub(1);
            if skipped > 0 && skipped < 1 << 30 {
                lost_before = skipped;
            }
        }
        self.last_seq = Some(b.sequence);
        self.first_seq.get_or_insert(b.sequence);
        self.dequeued += 1;
        let now_mono = clock::now_mono_ns();
        let now_utc = clock::now_utc_ns();
        // timeval's fields are `long`: 32 bits on 32-bit ARM.
        #[allow(clippy::unnecessary_cast)]
        let mono_ns = if b.flags & BUF_FLAG_TIMESTAMP_MASK == BUF_FLAG_TIMESTAMP_MONOTONIC {
            let t = (b.timestamp.tv_sec as i64).saturating_mul(1_000_000_000) + b.timestamp.tv_usec as i64 * 1000;
            // A driver timestamp from the future or before boot is not believed.
            if t > 0 && (t as u64) <= now_mono { t as u64 } else { now_mono }
        } else {
            now_mono
        };
        let utc_ns = now_utc - (now_mono - mono_ns) as i64;
        self.last_wait_ns = now_mono - mono_ns;
        let m = &self.bufs[b.index as usize];
        let used = if b.bytesused == 0 { m.len } else { (b.bytesused as usize).min(m.len) };
        let meta = FrameMeta { mono_ns, utc_ns, codec: Codec::Jpeg, key: true, lost_before };
        if self.pixel == Pixel::Mjpeg {
            self.ready = Some(Ready { meta, src: Src::Mmap(b.index, used) });
            return Ok(());
        }
        if self.pixel == Pixel::H264 {
            // SAFETY: mmap'd for `len` bytes (`used <= len`) and dequeued (see below).
            let au = unsafe { std::slice::from_raw_parts(m.ptr as *const u8, used) };
            let (key, src) = match self.joiner.as_mut() {
                Some(j) => match j.take(au) {
                    h264dev::Taken::AsIs { idr } => {
                        if idr && j.orphans == 1 && !j.params().complete() {
                            log::warn!("camera {}: an IDR before any SPS/PPS (the recorder waits for them)", self.path.display());
                        }
                        (idr, Src::Mmap(b.index, used))
                    }
                    h264dev::Taken::Joined => {
                        if j.joined == 1 {
                            log::info!(
                                "camera {}: IDR without SPS/PPS: the cached ones are put in front of it (and of every such IDR)",
                                self.path.display()
                            );
                        }
                        (true, Src::Joined)
                    }
                },
                None => (h264dev::is_idr(au), Src::Mmap(b.index, used)),
            };
            let meta = FrameMeta { codec: Codec::H264, key, ..meta };
            self.ready = Some(Ready { meta, src });
            return Ok(());
        }
        // SAFETY: the buffer is mmap'd (PROT_READ | PROT_WRITE) for `len` bytes and dequeued:
        // the driver won't touch it until it is queued again on the next call, which needs
        // `&mut self`; nothing else borrows it now (`ready` was cleared above).
        let data = unsafe { std::slice::from_raw_parts_mut(m.ptr, m.len) };
        let data = &mut data[..used];
        let (stride, w, h) = (self.stride, self.width as usize, self.height as usize);
        let raw = if self.pixel == Pixel::Nv12 { Raw::Nv12 } else { Raw::Yuyv };
        if self.opts.timestamp {
            let mut text = [0u8; overlay::TEXT_MAX];
            let n = overlay::timestamp_text(utc_ns, &mut text);
            overlay::draw(data, raw, stride, w, h, &text[..n]);
        }
        if let Some(enc) = self.h264enc.as_mut() {
            let frame = match raw {
                Raw::Yuyv => RawFrame::Yuyv { data, stride },
                Raw::Nv12 => RawFrame::Nv12 { data, stride },
            };
            let codec = enc.codec();
            match enc.encode(frame) {
                Ok(e) => {
                    let meta = FrameMeta { codec, key: e.key, ..meta };
                    self.ready = Some(Ready { meta, src: Src::SoftH264 });
                    return Ok(());
                }
                Err(e) => {
                    self.encoder_drops += 1;
                    if self.encoder_drops <= 3 || self.encoder_drops.is_multiple_of(1000) {
                        log::warn!("camera {}: video encoding of frame #{} failed: {e} ({} so far)", self.path.display(), b.sequence, self.encoder_drops);
                    }
                    // The next picture must not refer to the one that was lost.
                    enc.request_key_frame();
                    return Err(CameraError::Skipped);
                }
            }
        }
        let encoded = match (raw, self.encoder.as_mut()) {
            (Raw::Yuyv, Some(enc)) => enc.encode_yuyv(data, stride).map(|_| ()),
            (Raw::Nv12, Some(enc)) => enc.encode_nv12(data, stride).map(|_| ()),
            (_, None) => return Err(CameraError::Io(io::Error::from_raw_os_error(libc::EINVAL))),
        };
        if let Err(e) = encoded {
            self.encoder_drops += 1;
            if self.encoder_drops <= 3 || self.encoder_drops.is_multiple_of(1000) {
                log::warn!("camera {}: encoding frame #{} failed: {e} ({} so far)", self.path.display(), b.sequence, self.encoder_drops);
            }
            return Err(CameraError::Skipped);
        }
        self.ready = Some(Ready { meta, src: Src::Jpeg });
        Ok(())
    }

    /// The frame the last successful [`V4l2Camera::advance`] made ready, borrowed until the
    /// next `advance`.
    pub fn current(&self) -> Option<(FrameMeta, &[u8])> {
        let r = self.ready?;
        match r.src {
            Src::Mmap(index, used) => {
                let m = self.bufs.get(index as usize)?;
                // SAFETY: mmap'd for `len` bytes (`used <= len`) and dequeued (see `advance`);
                // the shared borrow of `self` keeps `advance` from re-queueing it meanwhile.
                let buf = unsafe { std::slice::from_raw_parts(m.ptr as *const u8, m.len) };
                Some((r.meta, &buf[..used]))
            }
            Src::Jpeg => Some((r.meta, self.encoder.as_ref()?.output())),
            Src::SoftH264 => Some((r.meta, self.h264enc.as_ref()?.output())),
            Src::Joined => Some((r.meta, self.joiner.as_ref()?.output())),
        }
    }
}

impl Camera for V4l2Camera {
    fn device(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn describe(&self) -> String {
        let fourcc = String::from_utf8_lossy(&self.fourcc);
        let what = match self.pixel {
            Pixel::Mjpeg => "passed through".to_string(),
            Pixel::H264 => "H.264 passed through (key frames from NAL types, SPS/PPS cached)".to_string(),
            _ if self.h264enc.is_some() => {
                let e = self.h264enc.as_ref().map(|e| e.describe()).unwrap_or_default();
                if self.opts.timestamp { format!("timestamp overlay, {e}") } else { e }
            }
            _ if self.opts.timestamp => format!("timestamp overlay, encoded to JPEG q{} (libjpeg-turbo)", self.quality),
            _ => format!("encoded to JPEG q{} (libjpeg-turbo)", self.quality),
        };
        format!(
            "v4l2 {} (driver {}, card {:?}): {} {}x{} @ {} fps, {what}, {} mmap buffers",
            self.path.display(),
            self.driver,
            self.card,
            fourcc,
            self.width,
            self.height,
            self.fps,
            self.bufs.len()
        )
    }

    fn fps(&self) -> u32 {
        self.fps
    }

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
        self.advance()?;
        self.current().ok_or_else(|| CameraError::Io(io::Error::from_raw_os_error(libc::EINVAL)))
    }

    fn losses(&self) -> crate::camera::Losses {
        crate::camera::Losses { driver: self.driver_drops, encoder: self.encoder_drops, deadline: 0 }
    }

    fn sequence(&self) -> Option<u32> {
        self.last_seq
    }

    fn delivers(&self) -> Codec {
        match &self.h264enc {
            _ if self.pixel == Pixel::H264 => Codec::H264,
            Some(e) => e.codec(),
            None => Codec::Jpeg,
        }
    }

    fn request_key_frame(&mut self) {
        if let Some(e) = self.h264enc.as_mut() {
            e.request_key_frame();
        } else if self.pixel == Pixel::H264 && self.force_key != Some(false) {
            let ok = h264dev::force_key_frame(self.fd);
            if self.force_key.is_none() && !ok {
                log::info!(
                    "camera {}: no FORCE_KEY_FRAME control; after a gap the recording resumes at the camera's next IDR",
                    self.path.display()
                );
            }
            self.force_key = Some(ok);
        }
    }
}

impl Drop for V4l2Camera {
    fn drop(&mut self) {
        if let (Some(first), Some(last)) = (self.first_seq, self.last_seq) {
            log::info!(
                "camera {}: closed; driver sequence #{first}..=#{last}: {} frames produced, {} dequeued, {} dropped by the driver, {} lost by the encoder",
                self.path.display(),
                u64::from(last.wrapping_sub(first)) + 1,
                self.dequeued,
                self.driver_drops,
                self.encoder_drops
            );
        }
        if self.streaming {
            let mut typ = BufType::VideoCapture as u32;
            // SAFETY: our fd; errors (ENODEV after an unplug) are ignored.
            let _ = unsafe { raw::ioctl(self.fd, vidioc::VIDIOC_STREAMOFF, &mut typ as *mut _ as *mut c_void) };
        }
        for m in self.bufs.drain(..) {
            // SAFETY: mapped in map_buffers with this length; nothing borrows it any more.
            let _ = unsafe { raw::munmap(m.ptr as *mut c_void, m.len) };
        }
        // SAFETY: plain C struct, zeroed; count 0 frees the driver's buffers.
        let mut req: v4l2_requestbuffers = unsafe { mem::zeroed() };
        req.type_ = BufType::VideoCapture as u32;
        req.memory = Memory::Mmap as u32;
        let _ = unsafe { raw::ioctl(self.fd, vidioc::VIDIOC_REQBUFS, &mut req as *mut _ as *mut c_void) };
        // v4l's Handle::drop unwraps close(): never let that take the process down.
        // SAFETY: dropped exactly once, here.
        let dev = &mut self.dev;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(dev) }));
        if r.is_err() {
            log::error!("camera {}: closing the device failed (ignored)", self.path.display());
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_an_error_not_a_panic() {
        let r = V4l2Camera::open(Path::new("/nonexistent/video9"), 640, 360, 30, 80);
        assert!(r.is_err());
    }

    #[test]
    fn a_file_that_is_no_video_device_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("video0");
        std::fs::write(&p, b"not a device").unwrap();
        assert!(V4l2Camera::open(&p, 640, 360, 30, 80).is_err());
        // /dev/null: an ioctl target that says ENOTTY
        assert!(V4l2Camera::open(Path::new("/dev/null"), 640, 360, 30, 80).is_err());
    }





    #[test]
    fn a_gap_is_the_recorders_when_the_frame_before_it_had_waited() {
        // 30 fps: 33.3 ms a frame. A 12-frame gap spans 400 ms.
        let ms = 1_000_000;
        // The whole VM stalled: the frame before was taken 5 ms after its capture.
        assert!(!recorder_was_behind(5 * ms, 12, 30));
        // The recorder stalled 500 ms: its three queued buffers filled, then 12 ticks found none;
        // the last of them waited about 400 ms.
        assert!(recorder_was_behind(400 * ms, 12, 30));
        assert!(recorder_was_behind(200 * ms, 12, 30));
        assert!(!recorder_was_behind(199 * ms, 12, 30));
        // One frame: half a period of waiting is enough to have been behind.
        assert!(recorder_was_behind(17 * ms, 1, 30));
        assert!(!recorder_was_behind(0, 1, 0));
    }
}
