//! A V4L2 stateful memory-to-memory encoder client (multiplanar API): the VideoCore's H.264
//! encoder on the Pi (bcm2835-codec, `/dev/video11`) and, in the qemu rig, the kernel's
//! virtual FWHT codec (vicodec, `multiplanar=1`): the same API, a different pixel format.
//!
//! One buffer on each queue, as µStreamer's `m2m.c` does: a raw I420 frame is copied into the
//! OUTPUT buffer, queued; the encoded picture is dequeued from CAPTURE with a deadline
//! (`poll`), copied into a buffer sized at open, and the CAPTURE buffer queued again.
//! - Formats: OUTPUT `YU12` at the camera's size (the driver's `bytesperline` and plane
//!   height are honoured), CAPTURE the codec with `sizeimage` at least [`MIN_CAPTURE_BYTES`]
//!   (bcm2835-codec's 512 KiB default is too small for some 1080p I-frames; µStreamer asks
//!   1.5 MB).
//! - Controls: [`super::h264ctl::h264_plan`] plus `GOP_SIZE` (vicodec's only GOP control),
//!   the frame rate with `S_PARM` on OUTPUT (bcm2835-codec produces bad frames without one,
//!   µStreamer's comment). `FORCE_KEY_FRAME` for [`VideoEncoder::request_key_frame`]; where
//!   the device lacks it (vicodec) the encoder is drained, closed and opened again: a new
//!   stream starts with a key frame.
//! - A stall (no picture within [`M2mSettings::deadline_ms`]) closes and reopens the device:
//!   the frame is refused ([`EncoderError::Stalled`]), the caller counts it as an encoder loss
//!   and records the gap; the first picture after the reopen is a key frame. `ENODEV` (the
//!   device went away) is [`EncoderError::Gone`].
//! - Drain at the end: `V4L2_ENC_CMD_STOP`, dequeue until the `LAST` flag, `STREAMOFF`.
//! - Nothing is allocated per frame: the staging planes and the picture buffer are sized at
//!   open; the ioctl structs live on the stack (checked by `blackbox m2m-selftest`, which
//!   counts allocations around its encode loop).

use super::encoder::{Encoded, EncoderError, H264Settings, VideoEncoder};
use super::h264ctl;
use super::raw::{self, RawFrame};
use crate::camera::Codec;
use std::ffi::{c_void, CString};
use std::mem;
use std::path::{Path, PathBuf};
use v4l::v4l_sys::{
    v4l2_buffer, v4l2_encoder_cmd, v4l2_format, v4l2_plane, v4l2_requestbuffers, v4l2_selection, v4l2_streamparm,
};
use v4l::v4l2::vidioc;

mod find;
pub use find::{find_encoder, probe, select_h264};

const BUF_CAPTURE_MPLANE: u32 = 9;
const BUF_OUTPUT_MPLANE: u32 = 10;
const MEMORY_MMAP: u32 = 1;
const CAP_VIDEO_M2M_MPLANE: u32 = 0x0000_4000;
const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
const BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
const BUF_FLAG_ERROR: u32 = 0x0000_0040;
const BUF_FLAG_LAST: u32 = 0x0010_0000;
const ENC_CMD_STOP: u32 = 1;
/// `_IOWR('V', 95, struct v4l2_selection)` (64 bytes; the v4l crate lacks it).
const VIDIOC_S_SELECTION: vidioc::_IOC_TYPE = (0xC000_0000u32 | (64 << 16) | (b'V' as u32) << 8 | 95) as vidioc::_IOC_TYPE;

pub const fn fourcc(b: &[u8; 4]) -> u32 {
    (b[0] as u32) | (b[1] as u32) << 8 | (b[2] as u32) << 16 | (b[3] as u32) << 24
}
pub const FOURCC_H264: u32 = fourcc(b"H264");
pub const FOURCC_FWHT: u32 = fourcc(b"FWHT");
pub const FOURCC_YU12: u32 = fourcc(b"YU12");

/// The least CAPTURE buffer asked for (µStreamer's figure; linux PR 5232).
pub const MIN_CAPTURE_BYTES: u32 = 1536 * 1024;

/// What the M2M encoder is asked for.
#[derive(Clone, Copy, Debug)]
pub struct M2mSettings {
    pub h264: H264Settings,
    /// The CAPTURE pixel format: [`FOURCC_H264`] or, in the rig, [`FOURCC_FWHT`].
    pub codec: u32,
    /// A picture not back within this many ms is a stall.
    pub deadline_ms: u32,
}

/// Test hook (`BLACKBOX_M2M_STALL_AT=N`): before the N-th frame (counted from 1 over the
/// encoder's life) the CAPTURE buffer is withheld from the driver, so the encoder has nowhere
/// to put its picture and stops answering: the real deadline, the real reopen.
fn stall_at_from_env() -> u64 {
    std::env::var("BLACKBOX_M2M_STALL_AT").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// `ioctl` returning `io::Result`.
///
/// # Safety
/// `arg` must point at the struct `req` expects, alive for the call.
unsafe fn xioctl(fd: i32, req: vidioc::_IOC_TYPE, arg: *mut c_void) -> std::io::Result<()> {
    loop {
        // SAFETY: forwarded from the caller.
        let r = unsafe { libc::ioctl(fd, req, arg) };
        if r == 0 {
            return Ok(());
        }
        let e = errno();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn io_err(what: &str, e: std::io::Error) -> EncoderError {
    if e.raw_os_error() == Some(libc::ENODEV) {
        EncoderError::Gone(format!("{what}: {e}"))
    } else {
        EncoderError::Encoder(format!("{what}: {e}"))
    }
}

fn open_fd(path: &Path) -> std::io::Result<i32> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if fd < 0 { Err(errno()) } else { Ok(fd) }
}

/// One mmap'd plane.
struct Map {
    ptr: *mut u8,
    len: usize,
}

/// The open device: fd, both buffers mapped, streaming.
struct Session {
    fd: i32,
    out: Map,
    cap: Map,
    /// OUTPUT `YU12` layout the driver chose.
    bpl: usize,
    plane_h: usize,
    has_force_key: bool,
    /// The CAPTURE buffer is with the driver.
    cap_queued: bool,
}

// SAFETY: the mappings belong to the session alone; nothing else aliases them.
unsafe impl Send for Session {}

impl Session {
    fn open(path: &Path, s: &M2mSettings) -> Result<Session, EncoderError> {
        let fd = open_fd(path).map_err(|e| io_err(&format!("open {}", path.display()), e))?;
        let mut sess = Session { fd, out: Map { ptr: std::ptr::null_mut(), len: 0 }, cap: Map { ptr: std::ptr::null_mut(), len: 0 }, bpl: 0, plane_h: 0, has_force_key: false, cap_queued: false };
        sess.setup(path, s)?;
        Ok(sess)
    }

    fn setup(&mut self, path: &Path, s: &M2mSettings) -> Result<(), EncoderError> {
        let fd = self.fd;
        let (w, h) = (s.h264.width, s.h264.height);
        // OUTPUT: raw I420.
        // SAFETY: all-zero is a valid v4l2_format.
        let mut f: v4l2_format = unsafe { mem::zeroed() };
        f.type_ = BUF_OUTPUT_MPLANE;
        // SAFETY: pix_mp is the member for *_MPLANE types.
        unsafe {
            f.fmt.pix_mp.width = w;
            f.fmt.pix_mp.height = h;
            f.fmt.pix_mp.pixelformat = FOURCC_YU12;
            f.fmt.pix_mp.num_planes = 1;
            f.fmt.pix_mp.plane_fmt[0].bytesperline = w;
        }
        // SAFETY: S_FMT takes a v4l2_format.
        unsafe { xioctl(fd, vidioc::VIDIOC_S_FMT, &mut f as *mut _ as *mut c_void) }.map_err(|e| io_err("S_FMT OUTPUT", e))?;
        // SAFETY: the driver filled pix_mp.
        let mp = unsafe { f.fmt.pix_mp };
        let (gw, gh, bpl, size) = (mp.width, mp.height, mp.plane_fmt[0].bytesperline, mp.plane_fmt[0].sizeimage);
        // Drivers round the coded size up (vicodec to 8, bcm2835-codec pads to 16); the
        // picture is written top-left and the visible rectangle set with S_SELECTION.
        if gw < w || gh < h || gw > w + 64 || gh > h + 64 || mp.num_planes > 1 || mp.pixelformat != FOURCC_YU12 {
            return Err(EncoderError::BadSettings(format!("{}: wants {gw}x{gh}, not {w}x{h} YU12 in one plane", path.display())));
        }
        if gw != w || gh != h {
            // SAFETY: all-zero is a valid v4l2_selection.
            let mut sel: v4l2_selection = unsafe { mem::zeroed() };
            sel.type_ = BUF_OUTPUT_MPLANE;
            sel.target = 0; // V4L2_SEL_TGT_CROP
            sel.r.width = w;
            sel.r.height = h;
            // SAFETY: S_SELECTION takes a v4l2_selection. A driver without it encodes the
            // padded size (the padding is grey).
            if let Err(e) = unsafe { xioctl(fd, VIDIOC_S_SELECTION, &mut sel as *mut _ as *mut c_void) } {
                log::warn!("{}: coded size {gw}x{gh}, cropping to {w}x{h} refused: {e}", path.display());
            }
        }
        self.bpl = (bpl as usize).max(gw as usize);
        // The luma plane's height as laid out (bcm2835-codec pads it to 16).
        self.plane_h = ((size as usize) * 2 / 3 / self.bpl).max(gh as usize);
        // CAPTURE: the codec, big enough for worst-case pictures.
        // SAFETY: as above.
        let mut f: v4l2_format = unsafe { mem::zeroed() };
        f.type_ = BUF_CAPTURE_MPLANE;
        // SAFETY: as above.
        unsafe {
            f.fmt.pix_mp.width = w;
            f.fmt.pix_mp.height = h;
            f.fmt.pix_mp.pixelformat = s.codec;
            f.fmt.pix_mp.num_planes = 1;
            f.fmt.pix_mp.plane_fmt[0].sizeimage = MIN_CAPTURE_BYTES.max(w * h * 3 / 2);
        }
        // SAFETY: as above.
        unsafe { xioctl(fd, vidioc::VIDIOC_S_FMT, &mut f as *mut _ as *mut c_void) }.map_err(|e| io_err("S_FMT CAPTURE", e))?;
        // SAFETY: as above.
        if unsafe { f.fmt.pix_mp.pixelformat } != s.codec {
            return Err(EncoderError::BadSettings(format!("{}: the encoder refused the output format", path.display())));
        }
        // Frame rate, then the controls.
        // SAFETY: all-zero is a valid v4l2_streamparm.
        let mut p: v4l2_streamparm = unsafe { mem::zeroed() };
        p.type_ = BUF_OUTPUT_MPLANE;
        p.parm.output.timeperframe.numerator = 1;
        p.parm.output.timeperframe.denominator = s.h264.fps.max(1);
        // SAFETY: S_PARM takes a v4l2_streamparm. Optional (vicodec has none).
        let _ = unsafe { xioctl(fd, vidioc::VIDIOC_S_PARM, &mut p as *mut _ as *mut c_void) };
        let what = format!("M2M encoder {}", path.display());
        let plan = h264ctl::h264_plan(s.h264.fps, s.h264.bitrate_kbps, 1);
        let mut plan = plan;
        plan[4].value = s.h264.keyframe_interval.clamp(1, i32::MAX as u32) as i32;
        let mut sink = h264ctl::Fd(fd);
        if s.codec == FOURCC_H264 {
            h264ctl::apply(&mut sink, &what, &plan);
        }
        let gop = [h264ctl::Ctrl { id: h264ctl::CID_GOP_SIZE, value: plan[4].value, name: "video_gop_size" }];
        h264ctl::apply(&mut sink, &what, &gop);
        // Does it have FORCE_KEY_FRAME? Asking for one before the first frame is harmless
        // (that picture is a key frame anyway).
        self.has_force_key = h264ctl::force_key_frame(&mut sink);
        // One buffer on each queue, mapped.
        self.out = req_and_map(fd, BUF_OUTPUT_MPLANE).map_err(|e| io_err("OUTPUT buffer", e))?;
        self.cap = req_and_map(fd, BUF_CAPTURE_MPLANE).map_err(|e| io_err("CAPTURE buffer", e))?;
        if self.out.len < self.bpl * self.plane_h * 3 / 2 {
            return Err(EncoderError::BadSettings(format!("{}: OUTPUT buffer of {} bytes", path.display(), self.out.len)));
        }
        self.queue(BUF_CAPTURE_MPLANE, 0).map_err(|e| io_err("QBUF CAPTURE", e))?;
        self.cap_queued = true;
        for t in [BUF_OUTPUT_MPLANE, BUF_CAPTURE_MPLANE] {
            let mut t = t;
            // SAFETY: STREAMON takes the buffer type.
            unsafe { xioctl(fd, vidioc::VIDIOC_STREAMON, &mut t as *mut _ as *mut c_void) }.map_err(|e| io_err("STREAMON", e))?;
        }
        Ok(())
    }

    fn queue(&self, typ: u32, bytesused: u32) -> std::io::Result<()> {
        // SAFETY: all-zero is valid for both.
        let mut plane: v4l2_plane = unsafe { mem::zeroed() };
        let mut b: v4l2_buffer = unsafe { mem::zeroed() };
        plane.bytesused = bytesused;
        plane.length = if typ == BUF_OUTPUT_MPLANE { self.out.len } else { self.cap.len } as u32;
        b.type_ = typ;
        b.memory = MEMORY_MMAP;
        b.index = 0;
        b.length = 1;
        b.m.planes = &mut plane;
        // SAFETY: QBUF takes a v4l2_buffer whose `m.planes` points at `length` (1) planes,
        // alive for the call.
        unsafe { xioctl(self.fd, vidioc::VIDIOC_QBUF, &mut b as *mut _ as *mut c_void) }
    }

    /// Dequeues the buffer of `typ`: (bytesused, flags).
    fn dequeue(&self, typ: u32) -> std::io::Result<(u32, u32)> {
        // SAFETY: as in `queue`.
        let mut plane: v4l2_plane = unsafe { mem::zeroed() };
        let mut b: v4l2_buffer = unsafe { mem::zeroed() };
        b.type_ = typ;
        b.memory = MEMORY_MMAP;
        b.length = 1;
        b.m.planes = &mut plane;
        // SAFETY: as in `queue`.
        unsafe { xioctl(self.fd, vidioc::VIDIOC_DQBUF, &mut b as *mut _ as *mut c_void) }?;
        Ok((plane.bytesused.min(plane.length), b.flags))
    }

    /// Waits up to `ms` for `events`; false on timeout.
    fn wait(&self, events: i16, ms: i32) -> std::io::Result<bool> {
        let mut p = libc::pollfd { fd: self.fd, events, revents: 0 };
        loop {
            // SAFETY: one pollfd, alive for the call.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r > 0 {
                if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 && p.revents & events == 0 {
                    return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
                }
                return Ok(true);
            }
            if r == 0 {
                return Ok(false);
            }
            let e = errno();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }

    fn encoder_cmd(&self, cmd: u32) -> std::io::Result<()> {
        // SAFETY: all-zero is a valid v4l2_encoder_cmd.
        let mut c: v4l2_encoder_cmd = unsafe { mem::zeroed() };
        c.cmd = cmd;
        // SAFETY: ENCODER_CMD takes a v4l2_encoder_cmd.
        unsafe { xioctl(self.fd, vidioc::VIDIOC_ENCODER_CMD, &mut c as *mut _ as *mut c_void) }
    }

    /// `V4L2_ENC_CMD_STOP`, then CAPTURE until the `LAST` flag (or `EPIPE`); the pictures
    /// that came out meanwhile are counted, not kept. Returns how many.
    fn drain(&mut self, deadline_ms: u32) -> std::io::Result<u32> {
        if !self.cap_queued {
            self.queue(BUF_CAPTURE_MPLANE, 0)?;
            self.cap_queued = true;
        }
        self.encoder_cmd(ENC_CMD_STOP)?;
        let mut n = 0;
        loop {
            if !self.wait(libc::POLLIN, deadline_ms as i32)? {
                return Err(std::io::Error::from_raw_os_error(libc::ETIMEDOUT));
            }
            match self.dequeue(BUF_CAPTURE_MPLANE) {
                Ok((used, flags)) => {
                    self.cap_queued = false;
                    if used > 0 {
                        n += 1;
                    }
                    if flags & BUF_FLAG_LAST != 0 {
                        return Ok(n);
                    }
                    self.queue(BUF_CAPTURE_MPLANE, 0)?;
                    self.cap_queued = true;
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Ok(n),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
    }

}

fn req_and_map(fd: i32, typ: u32) -> std::io::Result<Map> {
    // SAFETY: all-zero is a valid v4l2_requestbuffers.
    let mut r: v4l2_requestbuffers = unsafe { mem::zeroed() };
    r.count = 1;
    r.type_ = typ;
    r.memory = MEMORY_MMAP;
    // SAFETY: REQBUFS takes a v4l2_requestbuffers.
    unsafe { xioctl(fd, vidioc::VIDIOC_REQBUFS, &mut r as *mut _ as *mut c_void) }?;
    if r.count < 1 {
        return Err(std::io::Error::from_raw_os_error(libc::ENOMEM));
    }
    // SAFETY: as in Session::queue.
    let mut plane: v4l2_plane = unsafe { mem::zeroed() };
    let mut b: v4l2_buffer = unsafe { mem::zeroed() };
    b.type_ = typ;
    b.memory = MEMORY_MMAP;
    b.index = 0;
    b.length = 1;
    b.m.planes = &mut plane;
    // SAFETY: QUERYBUF takes a v4l2_buffer with `m.planes` pointing at `length` planes.
    unsafe { xioctl(fd, vidioc::VIDIOC_QUERYBUF, &mut b as *mut _ as *mut c_void) }?;
    let len = plane.length as usize;
    // SAFETY: the multiplanar MMAP offset the driver gave for this plane.
    let off = unsafe { plane.m.mem_offset } as libc::off_t;
    // SAFETY: maps `len` bytes of the device's buffer; unmapped in Session::drop.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, off) };
    if ptr == libc::MAP_FAILED {
        return Err(errno());
    }
    Ok(Map { ptr: ptr as *mut u8, len })
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in [BUF_OUTPUT_MPLANE, BUF_CAPTURE_MPLANE] {
            let mut t = t;
            // SAFETY: our fd; errors (ENODEV) are ignored.
            let _ = unsafe { xioctl(self.fd, vidioc::VIDIOC_STREAMOFF, &mut t as *mut _ as *mut c_void) };
        }
        for m in [&self.out, &self.cap] {
            if !m.ptr.is_null() {
                // SAFETY: mapped in req_and_map with this length; nothing borrows it any more.
                unsafe { libc::munmap(m.ptr as *mut c_void, m.len) };
            }
        }
        // SAFETY: our fd.
        unsafe { libc::close(self.fd) };
    }
}

/// Is this picture a key frame? The driver's `KEYFRAME` flag (bcm2835-codec sets it); else
/// from the picture: an IDR NAL unit (H.264), the I-frame flag of the FWHT header (vicodec's
/// encoder flags nothing).
pub fn is_key(codec: u32, flags: u32, data: &[u8]) -> bool {
    if flags & BUF_FLAG_KEYFRAME != 0 {
        return true;
    }
    match codec {
        FOURCC_H264 => super::h264::nal_units(data).any(|n| super::h264::nal_type(n) == super::h264::NAL_IDR),
        // struct fwht_cframe_hdr: magic1, magic2, version, width, height, flags (big-endian).
        FOURCC_FWHT => data.get(20..24).is_some_and(|f| u32::from_be_bytes([f[0], f[1], f[2], f[3]]) & FWHT_FL_I_FRAME != 0),
        _ => false,
    }
}

/// `V4L2_FWHT_FL_I_FRAME`.
const FWHT_FL_I_FRAME: u32 = 1 << 10;

/// The M2M encoder (module docs).
pub struct M2mEncoder {
    path: PathBuf,
    card: String,
    s: M2mSettings,
    sess: Option<Session>,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    out: Vec<u8>,
    force_key: bool,
    frames: u64,
    stall_at: u64,
    /// Stalls detected (each one reopened the device).
    pub stalls: u64,
    /// Reopens (after stalls and failed frames).
    pub reopens: u64,
}

impl M2mEncoder {
    pub fn open(path: &Path, card: &str, s: M2mSettings) -> Result<M2mEncoder, EncoderError> {
        let (w, h) = (s.h264.width as usize, s.h264.height as usize);
        if w == 0 || h == 0 || w % 2 != 0 || h % 2 != 0 || w > 1920 || h > 1920 {
            return Err(EncoderError::BadSettings(format!("{w}x{h}: width and height must be even, at most 1920")));
        }
        let sess = Session::open(path, &s)?;
        let cap_len = sess.cap.len;
        Ok(M2mEncoder {
            path: path.to_path_buf(),
            card: card.to_string(),
            s,
            sess: Some(sess),
            y: vec![0; w * h],
            u: vec![128; w * h / 4],
            v: vec![128; w * h / 4],
            out: Vec::with_capacity(cap_len),
            force_key: false,
            frames: 0,
            stall_at: stall_at_from_env(),
            stalls: 0,
            reopens: 0,
        })
    }

    /// Test hook: withhold the CAPTURE buffer before frame `n` (module docs, as
    /// `BLACKBOX_M2M_STALL_AT`).
    pub fn inject_stall_at(&mut self, n: u64) {
        self.stall_at = n;
    }

    /// Whether the device has `FORCE_KEY_FRAME` (else a forced key frame reopens it).
    pub fn has_force_key(&self) -> bool {
        self.sess.as_ref().is_some_and(|s| s.has_force_key)
    }

    pub fn settings(&self) -> M2mSettings {
        self.s
    }


    fn reopen(&mut self) -> Result<(), EncoderError> {
        self.sess = None;
        self.reopens += 1;
        // A new stream starts with a key frame: a pending request is met by the reopen.
        self.force_key = false;
        let sess = Session::open(&self.path, &self.s)?;
        if sess.cap.len > self.out.capacity() {
            // A reopen, not a frame: the buffer may grow here.
            self.out = Vec::with_capacity(sess.cap.len);
        }
        self.sess = Some(sess);
        Ok(())
    }

    /// Encodes one frame; its key flag. The picture is [`M2mEncoder::output`].
    pub fn encode_frame(&mut self, frame: RawFrame<'_>) -> Result<bool, EncoderError> {
        let (w, h) = (self.s.h264.width as usize, self.s.h264.height as usize);
        raw::to_i420(frame, w, h, &mut self.y, &mut self.u, &mut self.v).map_err(EncoderError::BadInput)?;
        if self.sess.is_none() {
            self.reopen()?;
        }
        self.frames += 1;
        let r = self.encode_staged();
        if let Err(e) = &r {
            // Whatever went wrong, the next frame starts from a fresh device (a key frame);
            // a device that is gone stays closed until it comes back.
            self.sess = None;
            if matches!(e, EncoderError::Stalled(_)) {
                self.stalls += 1;
            }
        }
        r
    }

    fn encode_staged(&mut self) -> Result<bool, EncoderError> {
        let (w, h) = (self.s.h264.width as usize, self.s.h264.height as usize);
        let deadline = self.s.deadline_ms.max(1) as i32;
        let stall_now = self.stall_at != 0 && self.frames == self.stall_at;
        let Some(sess) = self.sess.as_mut() else { return Err(EncoderError::Gone("no device".into())) };
        if self.force_key {
            self.force_key = false;
            if sess.has_force_key {
                let _ = h264ctl::force_key_frame(&mut h264ctl::Fd(sess.fd));
            } else {
                // No FORCE_KEY_FRAME (vicodec): drain, close and open again; a new stream
                // starts with a key frame. Rare (after a gap, at a rotation that asks).
                let _ = sess.drain(self.s.deadline_ms);
                self.sess = None;
                self.reopen()?;
            }
        }
        let Some(sess) = self.sess.as_mut() else { return Err(EncoderError::Gone("no device".into())) };
        if stall_now && sess.cap_queued {
            // The test hook: take the CAPTURE buffer back by restarting the CAPTURE queue
            // without queueing it again; the encoder can't answer this frame.
            let mut t = BUF_CAPTURE_MPLANE;
            // SAFETY: STREAMOFF/STREAMON take the buffer type.
            unsafe { xioctl(sess.fd, vidioc::VIDIOC_STREAMOFF, &mut t as *mut _ as *mut c_void) }.map_err(|e| io_err("stall hook", e))?;
            // SAFETY: as above.
            unsafe { xioctl(sess.fd, vidioc::VIDIOC_STREAMON, &mut t as *mut _ as *mut c_void) }.map_err(|e| io_err("stall hook", e))?;
            sess.cap_queued = false;
            log::warn!("M2M encoder {}: test hook: CAPTURE buffer withheld at frame {}", self.path.display(), self.frames);
        }
        // Copy I420 into the OUTPUT buffer at the driver's layout.
        // SAFETY: the mapping is `out.len` bytes, checked at open to hold bpl*plane_h*3/2;
        // the driver doesn't touch it while it is dequeued (it is, between frames).
        let dst = unsafe { std::slice::from_raw_parts_mut(sess.out.ptr, sess.out.len) };
        let (bpl, ph) = (sess.bpl, sess.plane_h);
        for r in 0..h {
            dst[r * bpl..r * bpl + w].copy_from_slice(&self.y[r * w..(r + 1) * w]);
        }
        let (cw, cbpl) = (w / 2, bpl / 2);
        let (uoff, voff) = (bpl * ph, bpl * ph + cbpl * ph / 2);
        for r in 0..h / 2 {
            dst[uoff + r * cbpl..uoff + r * cbpl + cw].copy_from_slice(&self.u[r * cw..(r + 1) * cw]);
            dst[voff + r * cbpl..voff + r * cbpl + cw].copy_from_slice(&self.v[r * cw..(r + 1) * cw]);
        }
        let used = (bpl * ph * 3 / 2) as u32;
        sess.queue(BUF_OUTPUT_MPLANE, used).map_err(|e| io_err("QBUF OUTPUT", e))?;
        // The picture, within the deadline.
        let (got, flags) = loop {
            if !sess.wait(libc::POLLIN, deadline).map_err(|e| io_err("poll", e))? {
                return Err(EncoderError::Stalled(format!("no picture from {} within {deadline} ms", self.path.display())));
            }
            match sess.dequeue(BUF_CAPTURE_MPLANE) {
                Ok(r) => break r,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(io_err("DQBUF CAPTURE", e)),
            }
        };
        sess.cap_queued = false;
        // The raw frame back (it is done with once the picture is out).
        loop {
            match sess.dequeue(BUF_OUTPUT_MPLANE) {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    if !sess.wait(libc::POLLOUT, deadline).map_err(|e| io_err("poll", e))? {
                        return Err(EncoderError::Stalled(format!("{} kept the raw frame past {deadline} ms", self.path.display())));
                    }
                }
                Err(e) => return Err(io_err("DQBUF OUTPUT", e)),
            }
        }
        self.out.clear();
        let bad = flags & BUF_FLAG_ERROR != 0 || got == 0 || got as usize > self.out.capacity();
        if !bad {
            // SAFETY: the CAPTURE mapping is `cap.len` bytes and `got` <= plane length; the
            // buffer is dequeued, so the driver doesn't write it.
            let src = unsafe { std::slice::from_raw_parts(sess.cap.ptr, (got as usize).min(sess.cap.len)) };
            self.out.extend_from_slice(src);
        }
        sess.queue(BUF_CAPTURE_MPLANE, 0).map_err(|e| io_err("QBUF CAPTURE", e))?;
        sess.cap_queued = true;
        if bad {
            return Err(EncoderError::Encoder(format!("{}: picture flagged bad ({got} bytes, flags {flags:#x})", self.path.display())));
        }
        Ok(is_key(self.s.codec, flags, &self.out))
    }

    /// Drains the encoder (`V4L2_ENC_CMD_STOP` until `LAST`) and stops it; the pictures that
    /// came out while draining.
    pub fn finish(&mut self) -> Result<u32, EncoderError> {
        let Some(sess) = self.sess.as_mut() else { return Ok(0) };
        let n = sess.drain(self.s.deadline_ms).map_err(|e| io_err("drain", e));
        self.sess = None;
        n
    }

    fn codec_name(&self) -> &'static str {
        if self.s.codec == FOURCC_H264 { "H.264 Constrained Baseline" } else { "FWHT" }
    }
}

impl VideoEncoder for M2mEncoder {
    fn codec(&self) -> Codec {
        // H.264, or FWHT on the test rig (`BLACKBOX_ENCODER=m2m-fwht`, `find::select_h264`).
        if self.s.codec == FOURCC_FWHT { Codec::Fwht } else { Codec::H264 }
    }

    fn encode(&mut self, frame: RawFrame<'_>) -> Result<Encoded<'_>, EncoderError> {
        let key = self.encode_frame(frame)?;
        Ok(Encoded { data: &self.out, key })
    }

    fn request_key_frame(&mut self) {
        self.force_key = true;
    }

    fn output(&self) -> &[u8] {
        &self.out
    }

    fn describe(&self) -> String {
        format!(
            "encoded to {} {} kbit/s, key frame every {} frames (V4L2 M2M encoder {}, {})",
            self.codec_name(),
            self.s.h264.bitrate_kbps,
            self.s.h264.keyframe_interval,
            self.path.display(),
            self.card
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s_selection_number() {
        assert_eq!(mem::size_of::<v4l2_selection>(), 64);
        assert_eq!(VIDIOC_S_SELECTION, 0xC040_565F);
    }

    #[test]
    fn key_frames_by_flag_nal_or_fwht_header() {
        assert_eq!(FOURCC_H264, 0x3436_3248);
        assert_eq!(FOURCC_YU12, 0x3231_5559);
        assert!(is_key(FOURCC_H264, BUF_FLAG_KEYFRAME, b""));
        assert!(is_key(FOURCC_H264, 0, &[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0x88]));
        assert!(!is_key(FOURCC_H264, 0, &[0, 0, 0, 1, 0x41, 0x9a]));
        let mut hdr = [0x4fu8; 44];
        hdr[20..24].copy_from_slice(&(1u32 << 10).to_be_bytes());
        assert!(is_key(FOURCC_FWHT, 0, &hdr));
        hdr[20..24].copy_from_slice(&(1u32 << 7).to_be_bytes());
        assert!(!is_key(FOURCC_FWHT, 0, &hdr));
        assert!(!is_key(FOURCC_FWHT, 0, &hdr[..10]));
    }
}
