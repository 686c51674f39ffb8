//! Export: an MP4 of any time range, built on the fly from the stored frames (docs/EXPORT.md).
//!
//! `plan` chooses the frames (index + record headers), `mp4` writes the boxes, `body` is the
//! virtual file: total size known up front, any byte range produced on demand, frames read
//! from the segment files and CRC-checked as they are sent. Nothing is written anywhere.

pub mod audio;
pub mod body;
pub mod mp4;
pub mod plan;
pub mod progress;
pub mod transcode;

pub use body::{set_subtitles, subtitles, Export, ExportReader, Subtitles};
pub use plan::PlanError;

use crate::store::reader::Reader;
use std::path::Path;
use std::sync::Arc;

/// Plans the export of the frames captured in `from..to` (UTC ns, `to` excluded) from the store
/// in `data_dir`, read-only (a store left by a crash is recovered in memory).
pub fn open(data_dir: &Path, from: i64, to: i64) -> Result<Arc<Export>, PlanError> {
    let reader = Reader::open(data_dir)?;
    from_reader(&reader, from, to)
}

/// Like [`open`], with a reader the caller already has.
pub fn from_reader(reader: &Reader, from: i64, to: i64) -> Result<Arc<Export>, PlanError> {
    let p = plan::plan(reader, from, to)?;
    Ok(Arc::new(with_track(p, reader.data_dir())))
}

/// The export of `p` with the GPS track of its time from `data_dir/gps` in the subtitles, as
/// [`subtitles`] says (speed unit, position or not).
pub fn with_track(p: plan::Plan, data_dir: &Path) -> Export {
    // Another camera's store (DATA/cameras/NAME) shares the data dir's track and sound.
    let data_dir = crate::store::sidecar_dir(data_dir);
    let track = match (p.frames.iter().map(|f| f.utc_ns).min(), p.frames.iter().map(|f| f.utc_ns).max()) {
        (Some(a), Some(b)) => crate::gps::track::read(data_dir, a.saturating_sub(2_000_000_000), b).0,
        _ => Vec::new(),
    };
    // The sound from the first frame shown (after any H.264 lead-in) to the last frame's end.
    let shown = p.frames.get(p.lead_in.min(p.frames.len())..).unwrap_or(&[]);
    let sound = match (shown.first(), shown.last()) {
        (Some(a), Some(b)) => {
            let tail = plan::durations_ns(&p.frames).last().copied().unwrap_or(0) as i64;
            audio::plan(data_dir, a.utc_ns, b.utc_ns.saturating_add(tail.max(1)))
        }
        _ => None,
    };
    Export::with_track(p, &track, subtitles(), sound)
}

/// At most how many frames [`from_reader`] would plan for `from..to` (the frames of the
/// segments it would read; only the catalog is looked at): what the web side reserves memory
/// for before planning.
pub fn frames_at_most(reader: &Reader, from: i64, to: i64) -> u64 {
    if from >= to {
        return 0;
    }
    reader.segments().iter().filter(|s| s.frames > 0 && s.overlaps(from, to - 1)).map(|s| s.frames).sum()
}

/// Like [`frames_at_most`], for one segment by id.
pub fn segment_frames_at_most(reader: &Reader, id: u64) -> u64 {
    reader.segments().iter().filter(|s| s.first_seq == id).map(|s| s.frames).sum()
}

/// Like [`open_segment`], with a reader the caller already has.
pub fn segment_from_reader(reader: &Reader, id: u64) -> Result<Arc<Export>, PlanError> {
    Ok(Arc::new(with_track(plan::plan_segment(reader, id)?, reader.data_dir())))
}

/// Plans the export of one whole segment, by id (its first frame's seq).
pub fn open_segment(data_dir: &Path, id: u64) -> Result<Arc<Export>, PlanError> {
    let reader = Reader::open(data_dir)?;
    Ok(Arc::new(with_track(plan::plan_segment(&reader, id)?, data_dir)))
}
