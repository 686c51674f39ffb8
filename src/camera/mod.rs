//! Cameras: where frames come from.
//!
//! A camera hands out one frame at a time, borrowed from its own buffers (an mmap'd V4L2
//! buffer, a pre-rendered test pattern, an mmap'd file), so the recorder can write it to the
//! store without copying or allocating.

pub mod controls;
pub mod encode;
pub mod file;
pub mod synthetic;
pub mod v4l2;

use std::fmt;

/// How a frame's payload is encoded (stored in each record; see docs/FORMAT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Jpeg = 1,
}

/// What the recorder needs to know about a frame besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Capture time on the monotonic clock, ns.
    pub mono_ns: u64,
    /// Capture time, best-known UTC, ns since the Unix epoch.
    pub utc_ns: i64,
    pub codec: Codec,
    /// Every JPEG is a key frame; kept for codecs with inter frames.
    pub key: bool,
}

#[derive(Debug)]
pub enum CameraError {
    /// No frame arrived within the camera's timeout.
    Timeout,
    /// The source has no more frames (a `file:` source at its end).
    EndOfStream,
    /// The device is gone (unplugged, ENODEV).
    Disconnected(String),
    /// Anything else the source reported.
    Io(std::io::Error),
    /// The source is unusable as configured (bad path, not a JPEG stream, ...).
    Invalid(String),
}

impl fmt::Display for CameraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraError::Timeout => write!(f, "no frame within the timeout"),
            CameraError::EndOfStream => write!(f, "end of stream"),
            CameraError::Disconnected(why) => write!(f, "camera disconnected: {why}"),
            CameraError::Io(e) => write!(f, "camera I/O error: {e}"),
            CameraError::Invalid(why) => write!(f, "camera unusable: {why}"),
        }
    }
}

impl std::error::Error for CameraError {}

impl From<std::io::Error> for CameraError {
    fn from(e: std::io::Error) -> Self {
        CameraError::Io(e)
    }
}

/// A source of frames. Implementations must not allocate in `next_frame`.
pub trait Camera {
    /// One line for the log: what this camera is and what it delivers.
    fn describe(&self) -> String;
    /// Nominal frame rate (frames per second).
    fn fps(&self) -> u32;
    /// Frame size in pixels.
    fn size(&self) -> (u32, u32);
    /// Waits for the next frame (pacing itself at its nominal rate where that applies) and
    /// returns it, borrowed from the camera until the next call.
    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError>;
    /// The V4L2 device node this camera captures from, for its controls; `None` for sources
    /// without controls (synthetic, file).
    fn device(&self) -> Option<&std::path::Path> {
        None
    }
}
