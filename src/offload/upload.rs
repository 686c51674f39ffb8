//! One sealed segment to S3, verified: its used bytes verbatim under a deterministic key. A
//! copy already there is checked (size and ETag against the local bytes) and not sent again;
//! a multipart upload cut by a power cut is resumed from `inflight` with the parts the server
//! lists (each one checked against the local part's MD5); the finished object is read back
//! (HEAD: size and the composite ETag) before it counts.

use super::manifest::{Inflight, Verified};
use super::s3::{S3Error, S3};
use super::sigv4::hex;
use md5::{Digest, Md5};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Parts of this size (S3's minimum is 5 MiB; every part but the last has this size, so the
/// composite ETag is reproducible from the local file).
pub const PART_SIZE: u64 = 8 << 20;

/// A sealed segment to send.
#[derive(Clone, Debug)]
pub struct Segment {
    pub name: String,
    pub path: PathBuf,
    pub used: u64,
}

#[derive(Debug)]
pub enum UploadError {
    S3(S3Error),
    Io(io::Error),
    /// Retention took the segment while it was being read (only when nothing else was left);
    /// nothing read after that was sent.
    Recycled,
    /// The server's copy doesn't match what was sent.
    Mismatch(String),
    Stopped,
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::S3(e) => e.fmt(f),
            UploadError::Io(e) => write!(f, "reading the segment: {e}"),
            UploadError::Recycled => f.write_str("the segment was deleted by retention during its upload"),
            UploadError::Mismatch(m) => write!(f, "the copy does not verify: {m}"),
            UploadError::Stopped => f.write_str("stopped"),
        }
    }
}

impl From<S3Error> for UploadError {
    fn from(e: S3Error) -> Self {
        UploadError::S3(e)
    }
}
impl From<io::Error> for UploadError {
    fn from(e: io::Error) -> Self {
        UploadError::Io(e)
    }
}

/// What an upload did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub bytes_sent: u64,
    pub parts_sent: u32,
    /// Parts the server already had (a resumed upload).
    pub parts_skipped: u32,
    /// The copy was already there and verified; nothing sent.
    pub already_there: bool,
}

/// The segment's file, checked for identity after every read (retention renames a segment it
/// recycles before writing into it: while the closed name still points at our inode, what we
/// read was the segment's own bytes).
struct Source {
    file: File,
    path: PathBuf,
    ino: u64,
    used: u64,
}

impl Source {
    fn open(seg: &Segment) -> Result<Source, UploadError> {
        let file = File::open(&seg.path).map_err(|e| if e.kind() == io::ErrorKind::NotFound { UploadError::Recycled } else { e.into() })?;
        let m = file.metadata()?;
        if m.len() < seg.used {
            return Err(UploadError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} holds {} bytes, its name says {}", seg.name, m.len(), seg.used))));
        }
        Ok(Source { file, path: seg.path.clone(), ino: m.ino(), used: seg.used })
    }

    /// Reads `[off, off+len)` into `buf` (resized) and checks the file is still the segment.
    fn read(&self, off: u64, len: u64, buf: &mut Vec<u8>) -> Result<(), UploadError> {
        buf.resize(len as usize, 0);
        self.file.read_exact_at(buf, off)?;
        match std::fs::metadata(&self.path) {
            Ok(m) if m.ino() == self.ino => Ok(()),
            _ => Err(UploadError::Recycled),
        }
    }

    fn parts(&self) -> u32 {
        self.used.div_ceil(PART_SIZE).max(1) as u32
    }

    fn part_range(&self, n: u32) -> (u64, u64) {
        let off = u64::from(n - 1) * PART_SIZE;
        (off, (self.used - off).min(PART_SIZE))
    }
}

/// The ETag S3 gives this content: the MD5 for a single PUT (`used <= PART_SIZE`), else the
/// MD5 of the parts' MD5s and `-N`. Reads the whole segment.
fn local_etag(src: &Source, buf: &mut Vec<u8>, stop: &AtomicBool) -> Result<String, UploadError> {
    if src.used <= PART_SIZE {
        src.read(0, src.used, buf)?;
        return Ok(hex(&Md5::digest(&buf[..])));
    }
    let mut all = Md5::new();
    for n in 1..=src.parts() {
        if stop.load(Ordering::Relaxed) {
            return Err(UploadError::Stopped);
        }
        let (off, len) = src.part_range(n);
        src.read(off, len, buf)?;
        all.update(Md5::digest(&buf[..]));
    }
    Ok(format!("{}-{}", hex(&all.finalize()), src.parts()))
}

/// Sends `seg` to `key` unless a verified copy is already there; returns the verified copy.
pub fn upload(s3: &mut S3, data: &Path, seg: &Segment, key: &str, target: &str, stop: &AtomicBool, buf: &mut Vec<u8>) -> Result<(Verified, Sent), UploadError> {
    let src = Source::open(seg)?;
    let mut sent = Sent::default();
    let verified = |etag: String| Verified { target: target.to_string(), size: seg.used, etag, utc_ns: crate::clock::now_utc_ns() };
    // Already there (a re-run, a lost manifest)? Check it against the local bytes.
    if let Some(info) = s3.head(key)? {
        if info.size == seg.used {
            let want = local_etag(&src, buf, stop)?;
            if info.etag == want {
                sent.already_there = true;
                return Ok((verified(want), sent));
            }
            log::warn!("offload: {key} exists with the right size but ETag {} (ours {want}); sending it again", info.etag);
        } else {
            log::warn!("offload: {key} exists with {} bytes (ours {}); sending it again", info.size, seg.used);
        }
    }
    if stop.load(Ordering::Relaxed) {
        return Err(UploadError::Stopped);
    }
    let etag = if src.used <= PART_SIZE {
        src.read(0, src.used, buf)?;
        let md5: [u8; 16] = Md5::digest(&buf[..]).into();
        let got = put_retrying(|| s3.put(key, buf, &md5))?;
        sent.bytes_sent += src.used;
        sent.parts_sent = 1;
        let want = hex(&md5);
        if is_md5_etag(&got) && got != want {
            return Err(UploadError::Mismatch(format!("PUT answered ETag {got}, ours {want}")));
        }
        want
    } else {
        multipart(s3, data, seg, &src, key, stop, buf, &mut sent)?
    };
    // Read back: the size and the ETag the server now reports.
    let info = s3.head(key)?.ok_or_else(|| UploadError::Mismatch(format!("{key} is not there after the upload")))?;
    if info.size != seg.used {
        return Err(UploadError::Mismatch(format!("{key} holds {} bytes, the segment {}", info.size, seg.used)));
    }
    if is_md5_etag(&info.etag) && info.etag != etag {
        return Err(UploadError::Mismatch(format!("{key} has ETag {}, ours {etag}", info.etag)));
    }
    Ok((verified(etag), sent))
}

/// An ETag S3 computes from MD5s (32 hex digits, or that and `-N`); other ETags (some
/// server-side encryption) can't be checked and the size must do.
fn is_md5_etag(e: &str) -> bool {
    let h = e.split_once('-').map_or(e, |(h, n)| if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() { h } else { "" });
    h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Retries a part refused as damaged in transit (BadDigest) up to three times.
fn put_retrying(mut f: impl FnMut() -> Result<String, S3Error>) -> Result<String, S3Error> {
    let mut tries = 0;
    loop {
        match f() {
            Err(S3Error::Http { code, .. }) if code == "BadDigest" && tries < 3 => {
                tries += 1;
                log::warn!("offload: a part arrived damaged (BadDigest); sending it again ({tries}/3)");
            }
            r => return r,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn multipart(s3: &mut S3, data: &Path, seg: &Segment, src: &Source, key: &str, stop: &AtomicBool, buf: &mut Vec<u8>, sent: &mut Sent) -> Result<String, UploadError> {
    // Resume the upload a power cut interrupted, if it is this segment's.
    let mut have = Vec::new();
    let mut upload_id = None;
    if let Some(f) = Inflight::load(data) {
        if f.name == seg.name && f.key == key && f.part_size == PART_SIZE {
            match s3.list_parts(key, &f.upload_id) {
                Ok(p) => {
                    log::info!("offload: resuming the upload of {} ({} parts already on the server)", seg.name, p.len());
                    have = p;
                    upload_id = Some(f.upload_id);
                }
                Err(S3Error::Http { code, .. }) if code == "NoSuchUpload" => log::info!("offload: the interrupted upload of {} is gone; starting again", seg.name),
                Err(e) => return Err(e.into()),
            }
        } else {
            // Another segment's leftover: abort it (best effort; a lifecycle rule cleans up too).
            let _ = s3.abort(&f.key, &f.upload_id);
            let _ = Inflight::clear(data);
        }
    }
    let upload_id = match upload_id {
        Some(u) => u,
        None => {
            let u = s3.create_multipart(key)?;
            Inflight { name: seg.name.clone(), key: key.to_string(), upload_id: u.clone(), part_size: PART_SIZE }.save(data)?;
            u
        }
    };
    let mut etags = Vec::with_capacity(src.parts() as usize);
    let mut all = Md5::new();
    for n in 1..=src.parts() {
        if stop.load(Ordering::Relaxed) {
            return Err(UploadError::Stopped);
        }
        let (off, len) = src.part_range(n);
        src.read(off, len, buf)?;
        let md5: [u8; 16] = Md5::digest(&buf[..]).into();
        all.update(md5);
        let want = hex(&md5);
        if have.iter().any(|p| p.number == n && p.size == len && p.etag == want) {
            sent.parts_skipped += 1;
        } else {
            let got = put_retrying(|| s3.upload_part(key, &upload_id, n, buf, &md5))?;
            if is_md5_etag(&got) && got != want {
                return Err(UploadError::Mismatch(format!("part {n} answered ETag {got}, ours {want}")));
            }
            sent.parts_sent += 1;
            sent.bytes_sent += len;
        }
        etags.push((n, want));
    }
    let want = format!("{}-{}", hex(&all.finalize()), src.parts());
    let got = s3.complete(key, &upload_id, &etags)?;
    if is_md5_etag(&got) && got != want {
        return Err(UploadError::Mismatch(format!("the completed object has ETag {got}, ours {want}")));
    }
    Ok(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_etags() {
        assert!(is_md5_etag("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(is_md5_etag("98609b28d41d8cd98f00b204e9800998-5"));
        assert!(!is_md5_etag("98609b28d41d8cd98f00b204e9800998-"));
        assert!(!is_md5_etag("abc"));
        assert!(!is_md5_etag("zz1d8cd98f00b204e9800998ecf8427e"));
    }

    #[test]
    fn composite_etag_of_a_local_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.seg");
        let data: Vec<u8> = (0..(PART_SIZE as usize * 2 + 100)).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let seg = Segment { name: "s.seg".into(), path: p.clone(), used: data.len() as u64 };
        let src = Source::open(&seg).unwrap();
        let mut buf = Vec::new();
        let e = local_etag(&src, &mut buf, &AtomicBool::new(false)).unwrap();
        let mut all = Md5::new();
        for c in data.chunks(PART_SIZE as usize) {
            all.update(Md5::digest(c));
        }
        assert_eq!(e, format!("{}-3", hex(&all.finalize())));
        // a recycled segment: renamed away under the reader
        std::fs::rename(&p, d.path().join("other.open")).unwrap();
        assert!(matches!(src.read(0, 10, &mut buf), Err(UploadError::Recycled)));
    }
}
