//! Cameras: where frames come from.
//!
//! A camera hands out one frame at a time, borrowed from its own buffers (an mmap'd V4L2
//! buffer, a pre-rendered test pattern, an mmap'd file), so the recorder can write it to the
//! store without copying or allocating.

pub mod bench;
pub mod controls;
pub mod encode;
pub mod file;
pub mod font;
pub mod h264dev;
pub mod h264file;
pub mod list;
pub mod overlay;
pub mod reopen;
pub mod rtp_h264;
pub mod rtsp;
pub mod rtsp_auth;
pub mod rtsp_sdp;
pub mod rtsp_url;
pub mod synthetic;
pub mod transcode;
pub mod v4l2;

use std::fmt;

/// How a frame's payload is encoded (stored in each record; see docs/FORMAT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Jpeg = 1,
    /// An H.264 access unit: Annex-B from cameras and encoders, stored length-prefixed (AVCC).
    H264 = 2,
    /// A FWHT picture as the kernel's virtual codec (vicodec) makes it: the test rig's stand-in
    /// for a hardware encoder (`BLACKBOX_ENCODER=m2m-fwht`). Stored and verified like any
    /// frame; P-pictures refer to the previous one, so segments start on an I-picture. Not
    /// exportable or viewable live (no player knows it).
    Fwht = 3,
}

impl Codec {
    /// Pictures may refer to earlier ones: a stored run must start on a key frame.
    pub fn inter_coded(self) -> bool {
        self != Codec::Jpeg
    }

    pub fn from_u8(b: u8) -> Option<Codec> {
        match b {
            1 => Some(Codec::Jpeg),
            2 => Some(Codec::H264),
            3 => Some(Codec::Fwht),
            _ => None,
        }
    }
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
    /// Frames the camera produced and lost right before this one (driver drops, missed
    /// deadlines; also counted in [`Camera::losses`]). Not stored in the record; the recorder
    /// puts it in the gap marker it writes before this frame.
    pub lost_before: u32,
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
    /// A frame arrived but could not be used (the encoder failed on it); the camera counted it
    /// in [`Losses::encoder`]. Not camera trouble: the next frame is asked for at once.
    Skipped,
}

impl fmt::Display for CameraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraError::Timeout => write!(f, "no frame within the timeout"),
            CameraError::EndOfStream => write!(f, "end of stream"),
            CameraError::Disconnected(why) => write!(f, "camera disconnected: {why}"),
            CameraError::Io(e) => write!(f, "camera I/O error: {e}"),
            CameraError::Invalid(why) => write!(f, "camera unusable: {why}"),
            CameraError::Skipped => write!(f, "a frame could not be encoded and was skipped"),
        }
    }
}

impl std::error::Error for CameraError {}

impl From<std::io::Error> for CameraError {
    fn from(e: std::io::Error) -> Self {
        CameraError::Io(e)
    }
}

/// Frames a camera produced and did not deliver, by cause, counted since it was opened
/// (docs/ARCHITECTURE.md, "Every lost frame is counted").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Losses {
    /// The V4L2 driver had no free buffer: its sequence numbers jumped.
    pub driver: u64,
    /// A built-in or `file:` camera's frame was due while all its buffers were full (the
    /// recorder came late), as a V4L2 driver would drop it.
    pub deadline: u64,
    /// The encoder (raw cameras: JPEG) failed on a frame.
    pub encoder: u64,
}

impl Losses {
    pub fn total(&self) -> u64 {
        self.driver + self.deadline + self.encoder
    }
}

impl std::ops::Add for Losses {
    type Output = Losses;
    fn add(self, o: Losses) -> Losses {
        Losses { driver: self.driver + o.driver, deadline: self.deadline + o.deadline, encoder: self.encoder + o.encoder }
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
    /// Frames produced and not delivered so far, by cause (cumulative; cheap, read per frame).
    fn losses(&self) -> Losses {
        Losses::default()
    }
    /// The driver's sequence number of the last frame it handed out (V4L2 cameras): an
    /// independent count of the frames the driver produced, for the status and the tests.
    fn sequence(&self) -> Option<u32> {
        None
    }
    /// A source that is not a live camera (a file replayed as fast as possible): the recorder
    /// waits for room in its ring rather than dropping the frame.
    fn waits_for_consumer(&self) -> bool {
        false
    }
    /// The codec of the frames this camera hands out (what it is opened as; JPEG by default).
    /// `cli::with_codec` wraps only JPEG cameras in the H.264 encoder.
    fn delivers(&self) -> Codec {
        Codec::Jpeg
    }
    /// Makes the next frame a key frame, where the camera encodes (H.264 after a loss: the
    /// pictures after a gap must not refer to a missing one). A no-op elsewhere.
    fn request_key_frame(&mut self) {}
}
