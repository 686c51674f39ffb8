//! `file:PATH`: replays a concatenated-JPEG stream (what `ffmpeg -f mjpeg` writes).
//!
//! The file is read sequentially into one fixed buffer and frames are handed out as slices of
//! it. Frame boundaries come from parsing the JPEG marker structure ([`next_jpeg`]), so garbage
//! between frames and a truncated last frame are skipped. Reading (rather than mapping) keeps
//! the resident set to the buffer and costs one copy, which measured cheaper than mapping and
//! unmapping every page of a large clip.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::synthetic::{MAX_FPS, Pacer, mono_now_ns, utc_now_ns};
use super::{Camera, CameraError, Codec, FrameMeta};

/// Size of the read buffer. A frame larger than half of it makes the buffer grow (once).
pub const BUFFER_BYTES: usize = 2 << 20;

/// Bytes read from the file at a time.
const READ_CHUNK: usize = 256 << 10;

/// Replays a concatenated-JPEG file. See the module documentation.
pub struct FileCamera {
    path: PathBuf,
    file: File,
    /// Bytes read from the file; `buf[lo..]` is not consumed yet.
    buf: Vec<u8>,
    lo: usize,
    /// File offset just past the last byte in `buf`.
    pos_after_buf: u64,
    eof: bool,
    fps: u32,
    fast: bool,
    looping: bool,
    width: u32,
    height: u32,
    /// File offset of the first complete frame (where a loop restarts).
    first: u64,
    at_end: bool,
    pacer: Pacer,
}

impl FileCamera {
    /// Opens `path` and finds its first frame. `fps` is the replay rate (and the nominal rate
    /// when `as_fast_as_possible`); with `looping` the replay wraps to the first frame at the end
    /// instead of returning [`CameraError::EndOfStream`].
    pub fn open(
        path: &Path,
        fps: u32,
        as_fast_as_possible: bool,
        looping: bool,
    ) -> Result<FileCamera, CameraError> {
        let bad = |why: String| CameraError::Invalid(format!("file {}: {why}", path.display()));
        if fps == 0 || fps > MAX_FPS {
            return Err(bad(format!(
                "frame rate {fps} out of range (1 to {MAX_FPS} fps)"
            )));
        }
        let file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| bad(format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".to_string()));
        }
        if meta.len() == 0 {
            return Err(bad("empty file".to_string()));
        }
        let mut cam = FileCamera {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(BUFFER_BYTES),
            lo: 0,
            pos_after_buf: 0,
            eof: false,
            fps,
            fast: as_fast_as_possible,
            looping,
            width: 0,
            height: 0,
            first: 0,
            at_end: false,
            pacer: Pacer::new(fps),
        };
        // Find the first frame (its size is the camera's size), then rewind to it.
        let (off, w, h) = match cam.next_slice().map_err(|e| bad(format!("cannot read: {e}")))? {
            Some((off, s, e)) => {
                let (w, h) = jpeg_dimensions(&cam.buf[s..e]).ok_or_else(|| {
                    bad(format!("first JPEG frame (at byte {off}) has no usable SOF marker"))
                })?;
                (off, w, h)
            }
            None => {
                return Err(bad("no complete JPEG frame found (not an MJPEG stream?)".to_string()));
            }
        };
        cam.first = off;
        cam.width = w;
        cam.height = h;
        cam.rewind().map_err(|e| bad(format!("cannot seek: {e}")))?;
        Ok(cam)
    }

    /// Number of complete JPEG frames in the file (reads the whole file once).
    pub fn frame_count(&self) -> u64 {
        let Ok(mut c) = FileCamera::open(&self.path, self.fps, true, false) else { return 0 };
        let mut n = 0;
        while let Ok(Some(_)) = c.next_slice() {
            n += 1;
        }
        n
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(self.first))?;
        self.buf.clear();
        self.lo = 0;
        self.pos_after_buf = self.first;
        self.eof = false;
        Ok(())
    }

    /// The next complete frame: its file offset and its range in `buf`; `None` at the end.
    fn next_slice(&mut self) -> io::Result<Option<(u64, usize, usize)>> {
        loop {
            if let Some((s, e)) = next_jpeg(&self.buf, self.lo) {
                self.lo = e;
                return Ok(Some((self.file_offset_of(s), s, e)));
            }
            if self.eof {
                return Ok(None);
            }
            self.refill()?;
        }
    }

    fn file_offset_of(&self, i: usize) -> u64 {
        // The file position is just past buf's end.
        self.pos_after_buf - (self.buf.len() - i) as u64
    }

    /// Drops consumed bytes (keeping a partial frame) and reads more.
    fn refill(&mut self) -> io::Result<()> {
        // Keep from the next possible frame start; garbage before it is consumed.
        let keep = find_soi(&self.buf, self.lo).unwrap_or(self.buf.len().saturating_sub(1).max(self.lo));
        self.buf.drain(..keep);
        self.lo = 0;
        if self.buf.len() == self.buf.capacity() {
            // One frame larger than the buffer: grow (rare; logged).
            log::warn!("file {}: frame larger than {} bytes; growing the read buffer", self.path.display(), self.buf.capacity());
            self.buf.reserve(self.buf.capacity());
        }
        // Read in chunks small enough to still be in the CPU cache when the frame is scanned,
        // checksummed and written out.
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
        self.pos_after_buf += n as u64;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

impl Camera for FileCamera {
    fn describe(&self) -> String {
        let rate = if self.fast {
            format!("replay as fast as possible (nominal {} fps)", self.fps)
        } else {
            format!("replay at {} fps", self.fps)
        };
        let size = self.file.metadata().map_or(0, |m| m.len());
        format!(
            "file {}: {} MB of JPEG frames {}x{}, {}{}",
            self.path.display(),
            size / 1_000_000,
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
        // Paced like a camera with a fixed ring of buffers (synthetic::Pacer): frames that came
        // due while the recorder was late and every buffer was full are skipped in the file,
        // as a real camera would have lost those pictures, and counted.
        let (mono_ns, skipped) = if self.fast { (mono_now_ns(), 0) } else { self.pacer.wait() };
        for _ in 0..skipped {
            if self.take_slice()?.is_none() {
                return Err(CameraError::EndOfStream);
            }
        }
        let Some((s, e)) = self.take_slice()? else { return Err(CameraError::EndOfStream) };
        let meta = FrameMeta {
            mono_ns,
            utc_ns: utc_now_ns() - mono_now_ns().saturating_sub(mono_ns) as i64,
            codec: Codec::Jpeg,
            key: true,
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
}

impl FileCamera {
    /// The next frame's byte range, rewinding when looping; `None` (and `at_end`) at the end.
    fn take_slice(&mut self) -> Result<Option<(usize, usize)>, CameraError> {
        if let Some((_, s, e)) = self.next_slice()? {
            return Ok(Some((s, e)));
        }
        if self.looping {
            self.rewind()?;
            if let Some((_, s, e)) = self.next_slice()? {
                return Ok(Some((s, e)));
            }
        }
        self.at_end = true;
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// JPEG stream parsing. Both functions are total: any input gives an answer, never a panic.

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// Markers that stand alone (no length field): TEM and RST0..RST7.
fn standalone(m: u8) -> bool {
    m == 0x01 || (0xD0..=0xD7).contains(&m)
}

/// Start-of-frame markers (all share the SOF segment layout).
fn is_sof(m: u8) -> bool {
    matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC)
}

fn be16(data: &[u8], at: usize) -> Option<usize> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(((b[0] as usize) << 8) | b[1] as usize)
}

/// Width and height from the SOFn segment of the JPEG that starts at `data[0]` (with its SOI).
/// `None` if `data` does not start with SOI, the headers are malformed or truncated, the SOF
/// comes after the first scan or is missing, or a dimension is 0.
pub fn jpeg_dimensions(data: &[u8]) -> Option<(u32, u32)> {
    if data.get(..2)? != [0xFF, SOI] {
        return None;
    }
    let mut pos = 2;
    loop {
        if *data.get(pos)? != 0xFF {
            return None;
        }
        while *data.get(pos + 1)? == 0xFF {
            pos += 1; // fill bytes
        }
        let m = data[pos + 1];
        if standalone(m) {
            pos += 2;
            continue;
        }
        if m == 0x00 || m == SOI || m == EOI || m == SOS {
            return None;
        }
        let len = be16(data, pos + 2)?;
        if len < 2 {
            return None;
        }
        if is_sof(m) {
            // Segment: length(2) precision(1) height(2) width(2) components(1) ...
            if len < 8 {
                return None;
            }
            let h = be16(data, pos + 5)? as u32;
            let w = be16(data, pos + 7)? as u32;
            return if w > 0 && h > 0 { Some((w, h)) } else { None };
        }
        pos = pos.checked_add(2 + len)?;
    }
}

enum Parse {
    /// A complete JPEG ends (after its EOI) here.
    Complete(usize),
    /// Not a JPEG; look for the next SOI after this one's.
    Broken,
    /// A new SOI at this offset interrupted the frame: resync there.
    RestartAt(usize),
    /// The data (or the known-dead tail) ended inside the frame.
    Truncated,
    /// The frame's entropy-coded data starting at this offset runs to the end of the data
    /// without a marker: no EOI exists at or after it.
    DeadFrom(usize),
}

/// Finds the next complete JPEG at or after `from`: returns `(start, end)` with `start` at its
/// SOI and `end` just past its EOI. Bytes that are not part of a well-formed JPEG are skipped
/// (the search resynchronises at the next SOI); a truncated JPEG at the end is not returned.
///
/// The parse follows the marker structure: SOI, marker segments by their length fields up to
/// SOS, entropy-coded data (honouring FF00 stuffing, RSTn and FF fill bytes) until the next
/// marker, then either EOI or further segments/scans (progressive JPEGs). A frame needs at
/// least one scan.
pub fn next_jpeg(data: &[u8], from: usize) -> Option<(usize, usize)> {
    // No EOI can start at or after `dead` (see `Parse::DeadFrom`): a bound that keeps the
    // resynchronising search linear on a long truncated tail.
    let mut dead = data.len();
    let mut pos = from;
    loop {
        let start = find_soi(&data[..dead], pos)?;
        match parse_at(&data[..dead], start) {
            Parse::Complete(end) => return Some((start, end)),
            Parse::Broken | Parse::Truncated => pos = start + 2,
            Parse::RestartAt(p) => pos = p,
            Parse::DeadFrom(p) => {
                // Keep the byte at `p` so an EOI whose FF is at `p - 1` stays visible.
                dead = p.saturating_add(1).min(dead);
                pos = start + 2;
            }
        }
    }
}

/// Offset of the next `FF D8` at or after `from`.
fn find_soi(data: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    loop {
        let rest = data.get(pos..)?;
        let i = memchr::memchr(0xFF, rest)?;
        let at = pos + i;
        match data.get(at + 1) {
            Some(&SOI) => return Some(at),
            Some(_) => pos = at + 1,
            None => return None,
        }
    }
}

/// Parses the JPEG whose SOI is at `start`.
fn parse_at(data: &[u8], start: usize) -> Parse {
    let mut pos = start + 2;
    let mut scans = 0u32;
    loop {
        // Marker mode: expect FF (fill FFs) marker.
        match data.get(pos) {
            None => return Parse::Truncated,
            Some(0xFF) => {}
            Some(_) => return Parse::Broken,
        }
        loop {
            match data.get(pos + 1) {
                None => return Parse::Truncated,
                Some(0xFF) => pos += 1,
                Some(_) => break,
            }
        }
        let m = data[pos + 1];
        match m {
            SOI => return Parse::RestartAt(pos),
            EOI => {
                return if scans > 0 {
                    Parse::Complete(pos + 2)
                } else {
                    Parse::Broken
                };
            }
            0x00 => return Parse::Broken,
            _ if standalone(m) => {
                pos += 2;
                continue;
            }
            _ => {}
        }
        let Some(len) = be16(data, pos + 2) else {
            return Parse::Truncated;
        };
        if len < 2 {
            return Parse::Broken;
        }
        let next = pos + 2 + len;
        if next > data.len() {
            return Parse::Truncated;
        }
        pos = next;
        if m != SOS {
            continue;
        }
        scans += 1;
        // Entropy-coded data: runs until a marker other than FF00 (stuffing) or RSTn.
        let scan_start = pos;
        loop {
            let Some(i) = data.get(pos..).and_then(|r| memchr::memchr(0xFF, r)) else {
                return Parse::DeadFrom(scan_start);
            };
            pos += i;
            // Skip fill bytes: FF FF ... FF x.
            while data.get(pos + 1) == Some(&0xFF) {
                pos += 1;
            }
            match data.get(pos + 1) {
                None => return Parse::DeadFrom(scan_start),
                Some(0x00) => pos += 2,
                Some(&r) if (0xD0..=0xD7).contains(&r) => pos += 2,
                Some(_) => break, // a real marker: back to marker mode at `pos`
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal syntactically valid JPEG (not decodable, but the structure is right).
    fn tiny(w: u16, h: u16, scan: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        v.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x04, b'J', b'F']);
        v.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8]);
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[1, 1, 0x11, 0]);
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0]);
        v.extend_from_slice(scan);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    #[test]
    fn structure_stuffing_rst_and_fill() {
        let j = tiny(
            16,
            8,
            &[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4, 0xFF, 0xFF, 0xD7, 5],
        );
        assert_eq!(next_jpeg(&j, 0), Some((0, j.len())));
        assert_eq!(jpeg_dimensions(&j), Some((16, 8)));
        // Fill bytes before EOI.
        let mut k = tiny(1, 1, &[9, 9]);
        let n = k.len();
        k.splice(n - 2..n - 2, [0xFF, 0xFF, 0xFF]);
        assert_eq!(next_jpeg(&k, 0), Some((0, k.len())));
        // A byte pair FF D9 hidden in a segment payload is not an EOI.
        let mut s = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, 0xFF, 0xD9];
        s.extend_from_slice(&tiny(2, 2, &[1])[2..]);
        assert_eq!(next_jpeg(&s, 0), Some((0, s.len())));
    }

    #[test]
    fn garbage_truncation_and_restarts() {
        let a = tiny(10, 20, &[1, 2, 3]);
        let b = tiny(30, 40, &[0xFF, 0x00, 7]);
        let mut d = b"garbage \xFF\xD8\x12 more \xFF\xD8\xFF\xE0\xFF\xFF".to_vec();
        let a_at = d.len();
        d.extend_from_slice(&a);
        // A frame interrupted by a new SOI in its entropy data.
        let broken = tiny(5, 5, &[1, 2, 3]);
        d.extend_from_slice(&broken[..broken.len() - 4]);
        let b_at = d.len();
        d.extend_from_slice(&b);
        d.extend_from_slice(&a[..a.len() - 1]); // truncated tail
        assert_eq!(next_jpeg(&d, 0), Some((a_at, a_at + a.len())));
        assert_eq!(next_jpeg(&d, a_at + a.len()), Some((b_at, b_at + b.len())));
        assert_eq!(next_jpeg(&d, b_at + b.len()), None);
        assert_eq!(next_jpeg(&d, d.len() + 10), None);
        assert_eq!(next_jpeg(&[], 0), None);
    }

    #[test]
    fn a_scan_is_required() {
        let j = [0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x02, 0xFF, 0xD9];
        assert_eq!(next_jpeg(&j, 0), None);
        assert_eq!(jpeg_dimensions(&j), None);
    }

    #[test]
    fn dimensions_edge_cases() {
        assert_eq!(jpeg_dimensions(&[]), None);
        assert_eq!(jpeg_dimensions(&[0xFF]), None);
        assert_eq!(jpeg_dimensions(&[0xFF, 0xD8]), None);
        assert_eq!(jpeg_dimensions(&tiny(0, 8, &[])), None);
        let j = tiny(640, 480, &[]);
        for cut in 0..j.len() {
            let got = jpeg_dimensions(&j[..cut]);
            assert!(got.is_none() || got == Some((640, 480)));
        }
        // SOF2 (progressive) and fill bytes before the marker.
        let mut p = tiny(3, 4, &[]);
        p[7] = 0xFF; // APP0 payload byte, harmless
        let sof = p.iter().position(|&b| b == 0xC0).unwrap();
        p[sof] = 0xC2;
        assert_eq!(jpeg_dimensions(&p), Some((3, 4)));
    }

    /// xorshift64*: deterministic, no crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn check_total(d: &[u8]) {
        let _ = jpeg_dimensions(d);
        let mut pos = 0;
        let mut guard = 0;
        while let Some((s, e)) = next_jpeg(d, pos) {
            assert!(s >= pos && s < e && e <= d.len());
            assert_eq!(&d[s..s + 2], &[0xFF, 0xD8]);
            assert_eq!(&d[e - 2..e], &[0xFF, 0xD9]);
            let _ = jpeg_dimensions(&d[s..e]);
            pos = e;
            guard += 1;
            assert!(guard <= d.len());
        }
        for from in [0, 1, d.len() / 2, d.len(), d.len() + 1, usize::MAX] {
            let _ = next_jpeg(d, from);
        }
    }

    #[test]
    fn never_panics_on_random_or_mutated_input() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // Random bytes biased towards marker bytes.
        for _ in 0..3000 {
            let n = rng.below(300);
            let d: Vec<u8> = (0..n)
                .map(|_| match rng.below(4) {
                    0 => 0xFF,
                    1 => [0xD8, 0xD9, 0xDA, 0xC0, 0x00, 0xD0, 0xE0][rng.below(7)],
                    _ => rng.next() as u8,
                })
                .collect();
            check_total(&d);
        }
        // Mutations of valid streams.
        let mut base = tiny(8, 8, &[1, 2, 0xFF, 0, 3, 0xFF, 0xD3, 4]);
        base.extend_from_slice(&tiny(16, 9, &[5, 6, 7]));
        for _ in 0..3000 {
            let mut d = base.clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 => {
                        let i = rng.below(d.len());
                        d[i] = rng.next() as u8;
                    }
                    1 => {
                        let i = rng.below(d.len());
                        d.remove(i);
                    }
                    2 => {
                        let i = rng.below(d.len() + 1);
                        d.insert(i, [0xFF, 0xD8, 0xD9, 0x00][rng.below(4)]);
                    }
                    _ => {
                        let cut = rng.below(d.len() + 1);
                        d.truncate(cut);
                    }
                }
                if d.is_empty() {
                    break;
                }
            }
            check_total(&d);
        }
    }
}
