//! `file:PATH` with an Annex-B H.264 stream (what `ffmpeg -f h264` and `rpicam-vid -o x.h264`
//! write): replayed one access unit (one picture) per frame, paced by `video_fps` like the
//! JPEG file camera ([`super::file`]), and handed out as delivered (H.264 is stored as it
//! comes; the recorder takes the parameter sets from the stream).
//!
//! The file is read sequentially into one fixed buffer; access units are found by
//! [`h264::next_access_unit`]. The frame size comes from the first SPS; the key flag from the
//! NAL types (an IDR slice). A stream with B-frames is refused when it is opened (the first
//! [`SCAN_BYTES`] are checked) and, should one show up later, when it is reached
//! ([`CameraError::Invalid`], which stops the recording with the message): blackbox stores
//! streams without B-frames only.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::synthetic::{MAX_FPS, Pacer, mono_now_ns, utc_now_ns};
use super::{Camera, CameraError, Codec, FrameMeta};
use crate::codec::h264::{self, AuError, ParamSets};

/// Size of the read buffer. An access unit larger than about half of it makes it grow (once).
pub const BUFFER_BYTES: usize = 2 << 20;
/// The read buffer grows (for one huge access unit) up to this; beyond it the bytes are skipped.
const MAX_AU_BYTES: usize = 32 << 20;
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 256 << 10;
/// How much of the file `open` checks for an SPS and for B-frames.
pub const SCAN_BYTES: u64 = 16 << 20;

/// Does this file hold H.264 rather than JPEGs? By its name (`.h264`, `.264`, `.avc`), else by
/// its first bytes (an Annex-B start code; a JPEG starts `FF D8`).
pub fn looks_like_h264(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    if matches!(ext.as_deref(), Some("h264" | "264" | "avc" | "h26l")) {
        return true;
    }
    let mut head = [0u8; 4];
    let Ok(mut f) = File::open(path) else { return false };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n].starts_with(&[0, 0, 0, 1]) || head[..n].starts_with(&[0, 0, 1])
}

/// Replays an Annex-B H.264 file. See the module documentation.
pub struct H264FileCamera {
    path: PathBuf,
    file: File,
    /// Bytes read from the file; `buf[lo..]` is not consumed yet.
    buf: Vec<u8>,
    lo: usize,
    eof: bool,
    fps: u32,
    fast: bool,
    looping: bool,
    width: u32,
    height: u32,
    codec_string: heapless::String<16>,
    at_end: bool,
    pacer: Pacer,
    params: ParamSets,
}

impl H264FileCamera {
    /// Opens `path`, reads its first SPS (the size) and checks its first [`SCAN_BYTES`] for
    /// B-frames. `fps` is the replay rate; `looping` wraps to the start at the end.
    pub fn open(path: &Path, fps: u32, as_fast_as_possible: bool, looping: bool) -> Result<H264FileCamera, CameraError> {
        let bad = |why: String| CameraError::Invalid(format!("file {}: {why}", path.display()));
        if fps == 0 || fps > MAX_FPS {
            return Err(bad(format!("frame rate {fps} out of range (1 to {MAX_FPS} fps)")));
        }
        let file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let meta = file.metadata().map_err(|e| bad(format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".to_string()));
        }
        if meta.len() == 0 {
            return Err(bad("empty file".to_string()));
        }
        let mut cam = H264FileCamera {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(BUFFER_BYTES),
            lo: 0,
            eof: false,
            fps,
            fast: as_fast_as_possible,
            looping,
            width: 0,
            height: 0,
            codec_string: heapless::String::new(),
            at_end: false,
            pacer: Pacer::new(fps),
            params: ParamSets::default(),
        };
        // Scan the start: the first SPS gives the size; any B slice refuses the file.
        let mut ps = ParamSets::default();
        let (mut pictures, mut scanned) = (0u64, 0u64);
        while let Some((s, e)) = cam.next_au().map_err(|e| bad(format!("cannot read: {e}")))? {
            scanned += (e - s) as u64;
            match h264::inspect(&cam.buf[s..e], &mut ps) {
                Ok(_) => pictures += 1,
                Err(AuError::BFrames) => return Err(bad(AuError::BFrames.to_string())),
                Err(AuError::BadParamSet) => return Err(bad(AuError::BadParamSet.to_string())),
                Err(_) => {}
            }
            if scanned >= SCAN_BYTES {
                break;
            }
        }
        if pictures == 0 {
            return Err(bad("no H.264 access unit with a coded picture found (not an Annex-B H.264 stream?)".to_string()));
        }
        let Some(sps) = ps.parsed() else {
            return Err(bad("no sequence parameter set (SPS) in the stream's first access units".to_string()));
        };
        cam.width = sps.width;
        cam.height = sps.height;
        cam.codec_string = sps.rfc6381();
        cam.rewind().map_err(|e| bad(format!("cannot seek: {e}")))?;
        Ok(cam)
    }

    /// Number of access units with a picture in the file (reads the whole file once).
    pub fn frame_count(&self) -> u64 {
        let Ok(mut c) = H264FileCamera::open(&self.path, self.fps, true, false) else { return 0 };
        let mut n = 0;
        while let Ok(Some(_)) = c.next_au() {
            n += 1;
        }
        n
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.buf.clear();
        self.lo = 0;
        self.eof = false;
        Ok(())
    }

    /// The next complete access unit's range in `buf`; `None` at the end of the file.
    fn next_au(&mut self) -> io::Result<Option<(usize, usize)>> {
        loop {
            if let Some((s, e)) = h264::next_access_unit(&self.buf, self.lo, self.eof) {
                self.lo = e;
                return Ok(Some((s, e)));
            }
            if self.eof {
                return Ok(None);
            }
            self.refill()?;
        }
    }

    /// Drops consumed bytes (keeping the access unit in progress) and reads more.
    fn refill(&mut self) -> io::Result<()> {
        // Bytes before the next start code are garbage: keep at most the 3 that could begin one.
        let rest = &self.buf[self.lo..];
        if !rest.windows(3).any(|w| w == [0, 0, 1]) {
            self.lo = self.buf.len().saturating_sub(3).max(self.lo);
        }
        self.buf.drain(..self.lo);
        self.lo = 0;
        if self.buf.len() == self.buf.capacity() {
            if self.buf.capacity() >= MAX_AU_BYTES {
                // No access unit ends in this much data: skip it rather than grow without bound.
                log::warn!("file {}: no access unit ends within {} bytes; skipping them", self.path.display(), self.buf.len());
                self.buf.clear();
            } else {
                log::warn!("file {}: access unit larger than {} bytes; growing the read buffer", self.path.display(), self.buf.capacity());
                self.buf.reserve(self.buf.capacity());
            }
        }
        let len = self.buf.len();
        let cap = self.buf.capacity().min(len + READ_CHUNK);
        self.buf.resize(cap, 0);
        let n = loop {
            match self.file.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(len + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// The next access unit's range, rewinding when looping; `None` (and `at_end`) at the end.
    fn take_au(&mut self) -> Result<Option<(usize, usize)>, CameraError> {
        if let Some(r) = self.next_au()? {
            return Ok(Some(r));
        }
        if self.looping {
            self.rewind()?;
            if let Some(r) = self.next_au()? {
                return Ok(Some(r));
            }
        }
        self.at_end = true;
        Ok(None)
    }
}

impl Camera for H264FileCamera {
    fn describe(&self) -> String {
        let rate = if self.fast {
            format!("replay as fast as possible (nominal {} fps)", self.fps)
        } else {
            format!("replay at {} fps", self.fps)
        };
        let size = self.file.metadata().map_or(0, |m| m.len());
        format!(
            "file {}: {} MB of H.264 ({}) {}x{}, {}{}, passed through",
            self.path.display(),
            size / 1_000_000,
            self.codec_string,
            self.width,
            self.height,
            rate,
            if self.looping { ", looping" } else { "" }
        )
    }

    fn fps(&self) -> u32 {
        self.fps
    }

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
        if self.at_end {
            return Err(CameraError::EndOfStream);
        }
        // Paced like a camera with a fixed ring of buffers (synthetic::Pacer): pictures that
        // came due while every buffer was full are skipped in the file and counted; the
        // recorder then waits for the next IDR.
        let (mono_ns, skipped) = if self.fast { (mono_now_ns(), 0) } else { self.pacer.wait() };
        for _ in 0..skipped {
            match self.take_au()? {
                // Parameter sets in a skipped access unit still count for the ones after it.
                Some((s, e)) => {
                    let _ = h264::inspect(&self.buf[s..e], &mut self.params);
                }
                None => return Err(CameraError::EndOfStream),
            }
        }
        let Some((s, e)) = self.take_au()? else { return Err(CameraError::EndOfStream) };
        let key = match h264::inspect(&self.buf[s..e], &mut self.params) {
            Ok(info) => info.idr,
            Err(AuError::BFrames) => {
                return Err(CameraError::Invalid(format!("file {}: {}", self.path.display(), AuError::BFrames)));
            }
            // Let the recorder count and report what it can't store.
            Err(_) => false,
        };
        let meta = FrameMeta {
            mono_ns,
            utc_ns: utc_now_ns() - mono_now_ns().saturating_sub(mono_ns) as i64,
            codec: Codec::H264,
            key,
            lost_before: skipped.min(u32::MAX as u64) as u32,
        };
        Ok((meta, &self.buf[s..e]))
    }

    fn losses(&self) -> crate::camera::Losses {
        crate::camera::Losses { deadline: self.pacer.missed(), ..Default::default() }
    }

    fn waits_for_consumer(&self) -> bool {
        self.fast
    }

    fn delivers(&self) -> Codec {
        Codec::H264
    }
}
