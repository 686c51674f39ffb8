//! The audio files beside the footage: `DATA/audio/YYYYMMDD-HHMMSS.aud`, append-only, CRC-framed
//! AAC access units and gap markers (docs/FORMAT.md, "Audio"). A file is never appended to after
//! the process that wrote it ends: a torn tail (power cut) is at a file's end only, and reading
//! stops there.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const HEADER: usize = 64;
pub const REC_HDR: usize = 32;
const FILE_MAGIC: &[u8; 8] = b"BBXAUD01";
const REC_MAGIC: &[u8; 4] = b"BBXA";
pub const VERSION: u32 = 1;
pub const CODEC_AAC_LC: u32 = 1;
/// Largest payload a record may declare.
pub const MAX_PAYLOAD: usize = 2048;

pub const KIND_AU: u8 = 1;
pub const KIND_GAP: u8 = 2;

/// The audio directory of a data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audio")
}

/// What a file holds (its header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub rate: u32,
    pub channels: u16,
    pub asc: heapless::Vec<u8, 16>,
    pub samples_per_au: u32,
}

impl Format {
    pub fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..8].copy_from_slice(FILE_MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&CODEC_AAC_LC.to_le_bytes());
        h[16..20].copy_from_slice(&self.rate.to_le_bytes());
        h[20..22].copy_from_slice(&self.channels.to_le_bytes());
        h[22..24].copy_from_slice(&(self.asc.len() as u16).to_le_bytes());
        h[24..24 + self.asc.len()].copy_from_slice(&self.asc);
        h[40..44].copy_from_slice(&self.samples_per_au.to_le_bytes());
        let crc = crc32fast::hash(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(h: &[u8]) -> Option<Format> {
        if h.len() < HEADER || &h[0..8] != FILE_MAGIC || crc32fast::hash(&h[..60]).to_le_bytes() != h[60..64] {
            return None;
        }
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        if u32_at(8) != VERSION || u32_at(12) != CODEC_AAC_LC {
            return None;
        }
        let asc_len = u16::from_le_bytes([h[22], h[23]]) as usize;
        let f = Format {
            rate: u32_at(16),
            channels: u16::from_le_bytes([h[20], h[21]]),
            asc: heapless::Vec::from_slice(h.get(24..24 + asc_len)?).ok()?,
            samples_per_au: u32_at(40),
        };
        (f.rate > 0 && f.samples_per_au > 0).then_some(f)
    }
}

/// One record's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rec {
    pub kind: u8,
    /// Gap: why (see [`crate::audio::Cause`]).
    pub cause: u8,
    pub len: u16,
    /// Time of the first sample the access unit decodes to (gap: of the first lost sample).
    pub utc_ns: i64,
    pub mono_ns: u64,
    /// Samples the access unit decodes to (gap: samples lost).
    pub samples: u32,
}

impl Rec {
    /// The header of this record with `payload`, CRC included.
    pub fn encode(&self, payload: &[u8]) -> [u8; REC_HDR] {
        let mut h = [0u8; REC_HDR];
        h[0..4].copy_from_slice(REC_MAGIC);
        h[4] = self.kind;
        h[5] = self.cause;
        h[6..8].copy_from_slice(&self.len.to_le_bytes());
        h[8..16].copy_from_slice(&self.utc_ns.to_le_bytes());
        h[16..24].copy_from_slice(&self.mono_ns.to_le_bytes());
        h[24..28].copy_from_slice(&self.samples.to_le_bytes());
        let mut c = crc32fast::Hasher::new();
        c.update(&h[..28]);
        c.update(payload);
        h[28..32].copy_from_slice(&c.finalize().to_le_bytes());
        h
    }

    /// Decodes a header; the CRC is checked by [`Rec::check`] once the payload is read.
    pub fn decode(h: &[u8]) -> Option<Rec> {
        if h.len() < REC_HDR || &h[0..4] != REC_MAGIC || !matches!(h[4], KIND_AU | KIND_GAP) {
            return None;
        }
        let len = u16::from_le_bytes([h[6], h[7]]);
        if len as usize > MAX_PAYLOAD {
            return None;
        }
        Some(Rec {
            kind: h[4],
            cause: h[5],
            len,
            utc_ns: i64::from_le_bytes(h[8..16].try_into().ok()?),
            mono_ns: u64::from_le_bytes(h[16..24].try_into().ok()?),
            samples: u32::from_le_bytes(h[24..28].try_into().ok()?),
        })
    }

    pub fn check(h: &[u8], payload: &[u8]) -> bool {
        let mut c = crc32fast::Hasher::new();
        c.update(&h[..28]);
        c.update(payload);
        c.finalize().to_le_bytes() == h[28..32]
    }
}

/// On-disk length of a record with `len` payload bytes (padded to 8).
pub fn record_len(len: usize) -> u64 {
    (REC_HDR + len).div_ceil(8) as u64 * 8
}

/// An access unit found by [`scan`]: where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Au {
    pub utc_ns: i64,
    pub mono_ns: u64,
    pub samples: u32,
    /// Index into the files list [`scan`] returns.
    pub file: usize,
    pub offset: u64,
    pub len: u16,
}

/// A gap marker found by [`scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub utc_ns: i64,
    pub cause: u8,
    pub samples: u32,
}

/// Everything stored in `from..to` (UTC ns; an access unit counts by its first sample).
#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<(PathBuf, Format)>,
    pub aus: Vec<Au>,
    pub gaps: Vec<Gap>,
    /// Records that failed their CRC (or a torn tail): skipped, never served.
    pub bad: u64,
}

/// The audio files by name (creation time order).
pub fn files(data_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir(data_dir))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "aud"))
        .collect();
    v.sort();
    v
}

/// The UTC range of a file's records (first record's time, last record's time), reading only
/// what it must: the whole file (audio files are small: about 2 MB an hour at 16 kHz).
fn scan_file(path: &Path, from: i64, to: i64, index: usize, out: &mut Scan) -> Option<Format> {
    let data = std::fs::read(path).ok()?;
    let fmt = Format::decode(&data)?;
    let mut off = HEADER;
    loop {
        if off + REC_HDR > data.len() {
            // A record's header cut short: a torn tail.
            if data[off.min(data.len())..].iter().any(|&b| b != 0) {
                out.bad += 1;
            }
            break;
        }
        let h = &data[off..off + REC_HDR];
        let Some(r) = Rec::decode(h) else {
            if data[off..].iter().any(|&b| b != 0) {
                out.bad += 1;
            }
            break;
        };
        let end = off + REC_HDR + r.len as usize;
        if end > data.len() || !Rec::check(h, &data[off + REC_HDR..end]) {
            out.bad += 1;
            break;
        }
        if r.utc_ns >= from && r.utc_ns < to {
            match r.kind {
                KIND_AU => out.aus.push(Au { utc_ns: r.utc_ns, mono_ns: r.mono_ns, samples: r.samples, file: index, offset: (off + REC_HDR) as u64, len: r.len }),
                _ => out.gaps.push(Gap { utc_ns: r.utc_ns, cause: r.cause, samples: r.samples }),
            }
        }
        off += record_len(r.len as usize) as usize;
    }
    Some(fmt)
}

/// The access units and gaps stored in `from..to`, in file order (capture order).
pub fn scan(data_dir: &Path, from: i64, to: i64) -> Scan {
    let mut out = Scan::default();
    for p in files(data_dir) {
        let index = out.files.len();
        let before = out.aus.len();
        match scan_file(&p, from, to, index, &mut out) {
            Some(fmt) if out.aus.len() > before => out.files.push((p, fmt)),
            Some(_) => {}
            None => out.bad += 1,
        }
    }
    out
}

/// Reads one access unit's bytes (the CRC was checked by [`scan`]; read again here and
/// checked again, so a card that changed since is never served).
pub fn read_au(scan: &Scan, au: &Au, buf: &mut Vec<u8>) -> io::Result<()> {
    let (path, _) = &scan.files[au.file];
    let f = File::open(path)?;
    let mut hb = [0u8; REC_HDR];
    f.read_exact_at(&mut hb, au.offset - REC_HDR as u64)?;
    buf.resize(au.len as usize, 0);
    f.read_exact_at(buf, au.offset)?;
    if !Rec::check(&hb, buf) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: an audio record failed its CRC", path.display())));
    }
    Ok(())
}

/// Appends records to one file; [`Writer::sync`] makes them durable.
pub struct Writer {
    file: File,
    pub path: PathBuf,
    pub format: Format,
    pub first_utc_ns: i64,
    pub bytes: u64,
    pad: [u8; 8],
}

impl Writer {
    /// Creates a new file for `format`, named by `utc_ns` (the first record's time).
    pub fn create(data_dir: &Path, format: Format, utc_ns: i64) -> io::Result<Writer> {
        let d = dir(data_dir);
        std::fs::create_dir_all(&d)?;
        let stamp = crate::clock::IsoSeconds(utc_ns).to_string(); // 2026-11-21T12:00:00Z
        let base: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
        let base = format!("{}-{}", &base[..8.min(base.len())], &base[8.min(base.len())..]);
        let mut n = 0;
        let (file, path) = loop {
            let name = if n == 0 { format!("{base}.aud") } else { format!("{base}-{n}.aud") };
            let path = d.join(name);
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => return Err(e),
            }
        };
        let mut w = Writer { file, path, format, first_utc_ns: utc_ns, bytes: 0, pad: [0; 8] };
        w.file.write_all(&w.format.encode())?;
        w.bytes = HEADER as u64;
        // The new name durable in the directory before anything is acknowledged in it.
        w.file.sync_data()?;
        if let Ok(dirf) = File::open(&d) {
            let _ = dirf.sync_all();
        }
        Ok(w)
    }

    /// Appends one record (not yet durable).
    pub fn append(&mut self, rec: &Rec, payload: &[u8]) -> io::Result<()> {
        let h = rec.encode(payload);
        let pad = (record_len(payload.len()) as usize) - REC_HDR - payload.len();
        // One write per record: header, payload and padding gathered.
        let bufs = [io::IoSlice::new(&h), io::IoSlice::new(payload), io::IoSlice::new(&self.pad[..pad])];
        let want = REC_HDR + payload.len() + pad;
        let n = self.file.write_vectored(&bufs)?;
        if n != want {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write of an audio record"));
        }
        self.bytes += want as u64;
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt() -> Format {
        Format { rate: 16_000, channels: 1, asc: heapless::Vec::from_slice(&[0x14, 0x08]).unwrap(), samples_per_au: 1024 }
    }

    #[test]
    fn written_records_scan_back_and_a_torn_tail_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        let t0 = 1_800_000_000_000_000_000i64;
        let mut w = Writer::create(d.path(), fmt(), t0).unwrap();
        for i in 0..10u8 {
            let p = vec![i; 100 + i as usize];
            let r = Rec { kind: KIND_AU, cause: 0, len: p.len() as u16, utc_ns: t0 + i as i64 * 64_000_000, mono_ns: 5 + i as u64, samples: 1024 };
            w.append(&r, &p).unwrap();
        }
        w.append(&Rec { kind: KIND_GAP, cause: 2, len: 0, utc_ns: t0 + 700_000_000, mono_ns: 9, samples: 4000 }, &[]).unwrap();
        w.sync().unwrap();
        let path = w.path.clone();
        drop(w);
        assert!(path.file_name().unwrap().to_str().unwrap().ends_with(".aud"));
        let s = scan(d.path(), i64::MIN, i64::MAX);
        assert_eq!((s.aus.len(), s.gaps.len(), s.bad, s.files.len()), (10, 1, 0, 1));
        assert_eq!(s.files[0].1, fmt());
        let mut b = Vec::new();
        read_au(&s, &s.aus[3], &mut b).unwrap();
        assert_eq!(b, vec![3u8; 103]);
        // Range: by first sample time.
        assert_eq!(scan(d.path(), t0 + 64_000_000, t0 + 3 * 64_000_000).aus.len(), 2);
        // A torn tail: the last record cut in half; the others stay.
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 20).unwrap();
        let s = scan(d.path(), i64::MIN, i64::MAX);
        assert_eq!((s.aus.len(), s.gaps.len(), s.bad), (10, 0, 1));
        // A flipped payload byte: that record and what follows are not served.
        let off = s.aus[5].offset;
        f.write_all_at(&[0xee], off + 1).unwrap();
        let s2 = scan(d.path(), i64::MIN, i64::MAX);
        assert_eq!((s2.aus.len(), s2.bad), (5, 1));
        // ...and read_au refuses it even with an older scan.
        assert!(read_au(&s, &s.aus[5], &mut b).is_err());
    }

    #[test]
    fn garbage_is_never_a_panic() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir(d.path())).unwrap();
        let mut x: u64 = 7;
        for n in 0..50 {
            let mut v = fmt().encode().to_vec();
            for _ in 0..(n * 37) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                v.push((x >> 33) as u8);
            }
            if n % 3 == 0 {
                let i = (x as usize) % v.len();
                v[i] ^= 0x40;
            }
            std::fs::write(dir(d.path()).join(format!("{n:03}.aud")), v).unwrap();
        }
        let s = scan(d.path(), i64::MIN, i64::MAX);
        assert!(s.aus.is_empty());
    }
}
