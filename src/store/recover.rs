//! Recovery (docs/FORMAT.md, "Recovery"): closed segments come from the directory listing;
//! only segments left `.open` are scanned. With `writable`, they are sealed (or deleted) and
//! renamed; without, the result is kept in memory and nothing is written.

use super::catalog::{self, SegmentInfo};
use super::names::{same_ms, NameBuf, SegName};
use super::record::SegHeader;
use super::segment;
use super::writer;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A torn or unreadable tail found after an open segment's valid prefix.
#[derive(Clone, Debug)]
pub struct Tail {
    pub name: NameBuf,
    pub from: u64,
    pub to: u64,
}

#[derive(Default)]
pub struct Recovered {
    /// Closed segments, sorted by first seq (including any sealed by this recovery).
    pub closed: Vec<SegmentInfo>,
    /// Segments still open (read-only recovery only), sorted by first seq.
    pub open: Vec<SegmentInfo>,
    /// Files in `segments/` that are not segments.
    pub unknown: Vec<String>,
    /// Open segments whose header was invalid (they held no frames).
    pub empty_open: Vec<NameBuf>,
    /// The bytes after each open segment's valid prefix, up to its allocated size.
    pub tails: Vec<Tail>,
    /// Header+scan results for open segments, for `verify`.
    pub open_headers: Vec<(NameBuf, SegHeader, u64)>,
    /// The highest first seq named by any open segment found, kept or removed: sequence
    /// numbers below it were handed out before, so they are never handed out again (a power cut
    /// right after a rotation can leave an open segment with no frame and no older segment).
    pub seq_floor: u64,
}

impl Recovered {
    /// Every segment in seq order.
    pub fn all(&self) -> impl Iterator<Item = &SegmentInfo> {
        let mut v: Vec<&SegmentInfo> = self.closed.iter().chain(self.open.iter()).collect();
        v.sort_by_key(|s| s.first_seq);
        v.into_iter()
    }

    /// The seq the next frame gets: one past the newest frame found.
    pub fn next_seq(&self) -> u64 {
        self.all()
            .map(|s| s.first_seq + s.frames)
            .max()
            .unwrap_or(1)
            .max(self.seq_floor)
            .max(1)
    }
}

fn header_matches(h: &SegHeader, name: &SegName) -> bool {
    h.first_seq == name.first_seq() && same_ms(h.start_utc_ns, name.start_utc_ns())
}

pub fn recover(seg_dir: &Path, writable: bool) -> io::Result<Recovered> {
    let listing = catalog::list(seg_dir)?;
    let mut r = Recovered { closed: listing.closed, unknown: listing.unknown, ..Recovered::default() };
    if writable {
        for t in &listing.temp {
            let _ = fs::remove_file(seg_dir.join(t));
        }
    }
    let mut buf = Vec::new();
    for (name, parsed) in listing.open {
        r.seq_floor = r.seq_floor.max(parsed.first_seq());
        let path = seg_dir.join(name.as_str());
        let file = if writable {
            OpenOptions::new().read(true).write(true).open(&path)?
        } else {
            File::open(&path)?
        };
        let len = file.metadata()?.len();
        let header = segment::read_header(&file)?.filter(|h| header_matches(h, &parsed));
        let Some(header) = header else {
            log::warn!("segment {name}: no valid header (crash while starting it); it holds no frames");
            if writable {
                fs::remove_file(&path)?;
            }
            r.empty_open.push(name);
            continue;
        };
        let scan = segment::scan(&file, &header, len, &mut buf)?;
        if scan.prefix_end < len && scan.seal.is_none() {
            r.tails.push(Tail { name: name.clone(), from: scan.prefix_end, to: len });
        }
        r.open_headers.push((name.clone(), header, len));
        // The segment's UTC span: min..max, not first..last (the clock may have jumped back).
        let (start_utc, end_utc) = writer::utc_span(header.start_utc_ns, &scan.frames);
        if !writable {
            r.open.push(SegmentInfo {
                name,
                first_seq: header.first_seq,
                frames: scan.frames.len() as u64,
                start_utc_ns: start_utc,
                end_utc_ns: end_utc,
                used_bytes: scan.prefix_end,
                alloc_bytes: file.metadata()?.blocks() * 512,
                open_commit_end: scan.commit_end,
                open_frames: Some(scan.frames),
            });
            continue;
        }
        let sealed = if let Some(seal) = scan.seal {
            log::info!("segment {name}: was sealed but not renamed; finishing its close");
            (seal.frames, end_utc, scan.prefix_end)
        } else if scan.frames.is_empty() {
            log::warn!("segment {name}: no frame survived; removing it");
            drop(file);
            fs::remove_file(&path)?;
            continue;
        } else {
            log::warn!(
                "segment {name}: recovered {} frames (seq {}..={}), {} bytes of torn tail dropped",
                scan.frames.len(),
                header.first_seq,
                header.first_seq + scan.frames.len() as u64 - 1,
                len.saturating_sub(scan.prefix_end).min(len)
            );
            let s = writer::seal_recovered(file, header, scan.prefix_end, &scan.frames)?;
            (s.frames, s.max_utc_ns, s.used)
        };
        let (frames, end_utc_ns, used) = sealed;
        let closed = SegName::Closed {
            start_utc_ns: start_utc,
            end_utc_ns,
            first_seq: header.first_seq,
            frames,
            bytes: used,
        };
        let new_name = closed.format();
        let new_path = seg_dir.join(new_name.as_str());
        fs::rename(&path, &new_path)?;
        let alloc = fs::metadata(&new_path)?.blocks() * 512;
        r.closed.push(SegmentInfo {
            name: new_name,
            first_seq: header.first_seq,
            frames,
            start_utc_ns: start_utc,
            end_utc_ns,
            used_bytes: used,
            alloc_bytes: alloc.max(used),
            open_frames: None,
            open_commit_end: 0,
        });
    }
    if writable {
        File::open(seg_dir)?.sync_all()?;
    }
    r.closed.sort_by_key(|s| s.first_seq);
    r.open.sort_by_key(|s| s.first_seq);
    Ok(r)
}
