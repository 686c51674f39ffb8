//! Erasing every recording ("format the card" from the dashboard), with the store closed.
//!
//! Deletes every segment, the protected ranges, the thumbnails, the GPS track and the sound,
//! then leaves one empty
//! `.open` segment named with the next sequence number: recovery removes it at the next open
//! but keeps its number as the floor (docs/FORMAT.md, "Recovery"), so sequence numbers are
//! never handed out twice, even across an erase. A power cut part way leaves a store with
//! fewer segments, never a damaged one: each file goes whole.

use super::catalog;
use super::names::SegName;
use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Erases the store in `data_dir`; returns how many files went.
pub fn erase_all(data_dir: &Path) -> io::Result<u64> {
    let seg_dir = data_dir.join("segments");
    let mut n = 0;
    let mut next_seq = 1u64;
    if seg_dir.is_dir() {
        let listing = catalog::list(&seg_dir)?;
        for c in &listing.closed {
            next_seq = next_seq.max(c.first_seq + c.frames);
        }
        for (_, parsed) in &listing.open {
            // An open segment's frames are not counted by its name: its first seq + a margin
            // that no segment reaches (names only, no scan: the store is closed and sealed).
            next_seq = next_seq.max(parsed.first_seq() + 1);
        }
        for e in fs::read_dir(&seg_dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                fs::remove_file(e.path())?;
                n += 1;
            }
        }
        let floor = SegName::Open { start_utc_ns: crate::clock::now_utc_ns(), first_seq: next_seq }.format();
        File::create(seg_dir.join(floor.as_str()))?.sync_all()?;
        File::open(&seg_dir)?.sync_all()?;
    }
    for f in ["protected"] {
        match fs::remove_file(data_dir.join(f)) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // The thumbnails, the GPS track (DATA/gps) and the sound (DATA/audio): their writers let
    // go of a deleted file at their next sync and start a new one.
    for sub in ["thumbs", "gps", "audio"] {
        let d = data_dir.join(sub);
        if d.is_dir() {
            for e in fs::read_dir(&d)? {
                let e = e?;
                if e.file_type()?.is_file() {
                    fs::remove_file(e.path())?;
                    n += 1;
                }
            }
            File::open(&d)?.sync_all()?;
        }
    }
    File::open(data_dir)?.sync_all()?;
    Ok(n)
}
