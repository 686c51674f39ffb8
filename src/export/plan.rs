//! From a UTC range to the list of frames an export holds: which segment file, which record,
//! how long, when captured. Only the segments' indexes are read here: a version-2 index entry
//! carries the payload length, so planning an hour reads 60 indexes and no frame. (A
//! version-1 segment's index lacks it: there each frame's 48-byte record header is read.)
//! Every record is checked whole, payload CRC included, as it is streamed (`body.rs`). The
//! segment files stay open for the life of the export.

use crate::camera::Codec;
use crate::codec::h264;
use crate::store::catalog::SegmentInfo;
use crate::store::reader::{Reader, SegmentFrames};
use crate::store::names::NameBuf;
use std::fmt;
use std::io;

/// One frame of the export.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// Index into `Plan::segments`.
    pub seg: u32,
    /// Payload length (the JPEG).
    pub len: u32,
    /// Offset of the frame's record in its segment file.
    pub offset: u64,
    pub seq: u64,
    pub utc_ns: i64,
    pub mono_ns: u64,
    /// A key frame (every JPEG; an H.264 IDR).
    pub key: bool,
}

/// A segment an export reads from: its open file, uid and name.
pub struct Source {
    pub frames: SegmentFrames,
    pub name: NameBuf,
}

pub struct Plan {
    pub segments: Vec<Source>,
    pub frames: Vec<Frame>,
    /// Frames in the range that were left out: whole segments whose header or index is
    /// damaged, a first frame that fails its CRC, and (version-1 segments, whose record
    /// headers are read at plan time) frames whose record header is damaged.
    pub skipped: u64,
    /// Picture size from the first frame's JPEG header or the H.264 SPS (0 when it can't be
    /// parsed).
    pub width: u16,
    pub height: u16,
    /// The codec of every frame of the export.
    pub codec: Codec,
    /// H.264: the decoder configuration (`avcC`) shared by every frame; empty for JPEG.
    pub avcc: Vec<u8>,
    /// H.264: frames at the start captured before `from`, from the key frame the picture
    /// at `from` depends on; the file's edit list starts presentation after them.
    pub lead_in: usize,
    /// Frames in the range recorded with another codec or other H.264 parameters than the
    /// first (the settings changed): left out of this export, which covers the footage of
    /// one setting (docs/EXPORT.md).
    pub other_codec: u64,
}

impl Plan {
    pub fn empty() -> Plan {
        Plan {
            segments: Vec::new(),
            frames: Vec::new(),
            skipped: 0,
            width: 0,
            height: 0,
            codec: Codec::Jpeg,
            avcc: Vec::new(),
            lead_in: 0,
            other_codec: 0,
        }
    }
}

#[derive(Debug)]
pub enum PlanError {
    /// Nothing stored in the range.
    NoFootage { from: i64, to: i64 },
    /// No segment with this id (first seq), or none of its frames is intact.
    NoSegment(u64),
    /// The range is empty or reversed.
    BadRange { from: i64, to: i64 },
    /// The footage there is in a codec no MP4 can carry (FWHT, the test rig's codec): `frames`.
    NotExportable { codec: u8, frames: u64 },
    Io(io::Error),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::clock::Iso;
        match self {
            PlanError::NoFootage { from, to } => write!(f, "no footage between {} and {}", Iso(*from), Iso(*to)),
            PlanError::NoSegment(id) => write!(f, "no segment {id} with intact frames"),
            PlanError::BadRange { from, to } => {
                write!(f, "empty time range: from {} is not before to {}", Iso(*from), Iso(*to))
            }
            PlanError::Io(e) => write!(f, "reading the store: {e}"),
            PlanError::NotExportable { codec, frames } => write!(
                f,
                "{frames} frames there are FWHT (codec {codec}: the test rig's stand-in for a hardware encoder), which no MP4 player knows; they can be checked with `blackbox verify`, not exported"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

impl From<io::Error> for PlanError {
    fn from(e: io::Error) -> Self {
        PlanError::Io(e)
    }
}

/// Plans an export of every intact frame whose UTC capture time `t` has `from <= t < to`, in
/// sequence (recording) order.
pub fn plan(reader: &Reader, from: i64, to: i64) -> Result<Plan, PlanError> {
    if from >= to {
        return Err(PlanError::BadRange { from, to });
    }
    select(reader, |s| s.overlaps(from, to - 1), |utc| utc >= from && utc < to).map_err(|e| match e {
        None => PlanError::NoFootage { from, to },
        Some(e) => e,
    })
}

/// Plans an export of every intact frame of the segment whose id (first seq) is `id`.
pub fn plan_segment(reader: &Reader, id: u64) -> Result<Plan, PlanError> {
    select(reader, |s| s.first_seq == id, |_| true).map_err(|e| e.unwrap_or(PlanError::NoSegment(id)))
}

/// The frames of the segments `seg_ok` accepts whose UTC time `frame_ok` accepts.
/// `Err(None)`: no frame.
///
/// H.264: a run of frames that starts on a non-IDR picture is extended back to the IDR it
/// depends on (at the start of the export: the lead-in, hidden by the edit list), so no frame
/// of the export refers to a picture the export doesn't hold.
fn select(
    reader: &Reader,
    seg_ok: impl Fn(&SegmentInfo) -> bool,
    frame_ok: impl Fn(i64) -> bool,
) -> Result<Plan, Option<PlanError>> {
    let mut p = Plan::empty();
    // The codec and parameters of the export: those of its first segment with a wanted frame.
    let mut setting: Option<(u8, Vec<u8>)> = None;
    let mut unexportable: Option<(u8, u64)> = None;
    let wanted: Vec<&SegmentInfo> = reader.segments().into_iter().filter(|s| s.frames > 0 && seg_ok(s)).collect();
    let mut loaded = Vec::with_capacity(LOAD_BATCH);
    for batch in wanted.chunks(LOAD_BATCH) {
        load_batch(reader, batch, &mut loaded);
        for (seg, sf) in batch.iter().copied().zip(loaded.drain(..)) {
            let sf = match sf.map_err(PlanError::Io)? {
                Ok(sf) => sf,
                Err(why) => {
                    log::warn!("export: segment {}: {why}; its frames are left out", seg.name);
                    p.skipped += seg.frames;
                    continue;
                }
            };
            // One codec per segment (the store rotates when it changes); version 1 says 0.
            let seg_codec = sf.entries.first().map_or(1, |e| e.codec.max(1));
            let h264 = seg_codec == Codec::H264 as u8;
            let wanted_here = sf.entries.iter().filter(|e| frame_ok(e.utc_ns)).count() as u64;
            if wanted_here == 0 {
                continue;
            }
            if seg_codec != Codec::Jpeg as u8 && seg_codec != Codec::H264 as u8 {
                log::warn!("export: segment {} is in codec {seg_codec} (not exportable); left out", seg.name);
                unexportable = Some((seg_codec, unexportable.map_or(0, |(_, n)| n) + wanted_here));
                continue;
            }
            match &setting {
                None => setting = Some((seg_codec, sf.params().to_vec())),
                Some((c, params)) if *c != seg_codec || params.as_slice() != sf.params() => {
                    log::warn!("export: segment {} was recorded with other settings (codec {seg_codec}); left out", seg.name);
                    p.other_codec += wanted_here;
                    continue;
                }
                Some(_) => {}
            }
            let si = p.segments.len() as u32;
            let before = p.frames.len();
            p.frames.reserve(sf.entries.len());
            let mut last_key: Option<usize> = None;
            for (i, e) in sf.entries.iter().enumerate() {
                let seq = sf.first_seq + i as u64;
                let key = !h264 || e.flags & 1 != 0;
                if key {
                    last_key = Some(i);
                }
                if !frame_ok(e.utc_ns) {
                    continue;
                }
                if h264 && !key {
                    let follows = p.frames.last().is_some_and(|f| f.seg == si && f.seq + 1 == seq);
                    if !follows {
                        let Some(k) = last_key else {
                            // No IDR before it in its segment: it can't be decoded.
                            p.skipped += 1;
                            continue;
                        };
                        let at_start = p.frames.is_empty();
                        for (j, b) in sf.entries.iter().enumerate().take(i).skip(k) {
                            let Some(len) = b.len else { continue };
                            let bseq = sf.first_seq + j as u64;
                            p.frames.push(Frame { seg: si, len, offset: b.offset, seq: bseq, utc_ns: b.utc_ns, mono_ns: b.mono_ns, key: j == k });
                        }
                        if at_start {
                            p.lead_in = p.frames.len();
                        }
                    }
                }
                if let Some(len) = e.len {
                    // Index v2: everything the plan needs is in the entry.
                    p.frames.push(Frame { seg: si, len, offset: e.offset, seq, utc_ns: e.utc_ns, mono_ns: e.mono_ns, key });
                    continue;
                }
                match sf.header(i).map_err(PlanError::Io)? {
                    Some(h) => p.frames.push(Frame {
                        seg: si,
                        len: h.len,
                        offset: e.offset,
                        seq: h.seq,
                        utc_ns: h.utc_ns,
                        mono_ns: h.mono_ns,
                        key: true,
                    }),
                    None => {
                        log::warn!("export: segment {}: frame {seq} is damaged; left out", seg.name);
                        p.skipped += 1;
                    }
                }
            }
            if p.frames.len() > before {
                let mut frames = sf;
                // The index is not needed any more; the file, uid and limit are.
                frames.entries = Vec::new();
                p.segments.push(Source { frames, name: seg.name.clone() });
            }
        }
    }
    if let Some((c, params)) = setting
        && c == Codec::H264 as u8
    {
        p.codec = Codec::H264;
        if let Some(sps) = h264::params_from_avcc(&params).and_then(|ps| ps.parsed()) {
            p.width = sps.width.min(u16::MAX as u32) as u16;
            p.height = sps.height.min(u16::MAX as u32) as u16;
        }
        p.avcc = params;
    }
    // The picture size comes from the first frame whose payload checks; frames before it that
    // don't are left out (they would fail the stream anyway), and for H.264 the pictures that
    // depend on it, up to the next IDR.
    let mut buf = Vec::new();
    while let Some(f) = p.frames.first().copied() {
        let src = &p.segments[f.seg as usize];
        let rec = crate::store::segment::read_record(src.frames.file(), src.frames.uid(), f.offset, src.frames.limit(), &mut buf);
        match rec.map_err(PlanError::Io)? {
            Some(h) if h.seq == f.seq => {
                if p.codec == Codec::Jpeg
                    && let Some((w, h)) = crate::camera::file::jpeg_dimensions(&buf)
                {
                    p.width = w.min(u16::MAX as u32) as u16;
                    p.height = h.min(u16::MAX as u32) as u16;
                }
                break;
            }
            _ => {
                log::warn!("export: segment {}: frame {} is damaged; left out", src.name, f.seq);
                let mut n = 1;
                while p.codec == Codec::H264 && p.frames.get(n).is_some_and(|g| !g.key) {
                    n += 1;
                }
                p.skipped += n as u64;
                p.frames.drain(..n);
                p.lead_in = p.lead_in.saturating_sub(n);
            }
        }
    }
    if p.frames.is_empty() {
        return Err(unexportable.map(|(codec, frames)| PlanError::NotExportable { codec, frames }));
    }
    // Growth by reserve() can leave up to twice the room needed; the plan lives as long as
    // its export (the web side budgets ~160 bytes a frame, src/web/export.rs).
    p.frames.shrink_to_fit();
    Ok(p)
}

/// Segments whose header, seal and index are read at once (one thread each). Cold, those
/// reads are what an hour's plan waits for: 3 small reads per segment, 180 for an hour of
/// 60 s segments. In parallel the disk (or the page cache) serves them side by side; a batch
/// bounds how many indexes are in memory at a time.
const LOAD_BATCH: usize = 8;

/// `reader.load` of each segment of `batch`, on a thread each, into `out` in order.
fn load_batch(reader: &Reader, batch: &[&SegmentInfo], out: &mut Vec<io::Result<Result<SegmentFrames, &'static str>>>) {
    if batch.len() == 1 {
        out.push(reader.load(batch[0]));
        return;
    }
    std::thread::scope(|sc| {
        let handles: Vec<_> = batch.iter().map(|seg| sc.spawn(move || reader.load(seg))).collect();
        for h in handles {
            out.push(h.join().unwrap_or_else(|_| Err(io::Error::other("reading a segment's index panicked"))));
        }
    });
}

/// Longest time between two frames that still counts as continuous recording. A longer
/// pause (camera stall, recording stopped, reboot) is a gap: see `durations_ns`.
pub const MAX_FRAME_INTERVAL_NS: u64 = 1_000_000_000;
/// Frame interval assumed when the export has no two consecutive frames to measure (30 fps).
const DEFAULT_INTERVAL_NS: u64 = 33_333_333;

/// How long each frame is shown, in ns (docs/EXPORT.md, "Timing and gaps"):
/// - consecutive frames (seq +1) less than `MAX_FRAME_INTERVAL_NS` apart on the monotonic
///   clock: exactly that interval (the monotonic clock, not UTC, which may be stepped);
/// - anything else (a gap, a jump in seq, a reboot): the nominal frame interval, the median of
///   the measured ones. The video then cuts straight to the frame after the gap; the UTC
///   clock track shows the jump. A gap never stretches one picture over minutes or hours.
/// - the last frame: the nominal interval.
pub fn durations_ns(frames: &[Frame]) -> Vec<u64> {
    let measured = |a: &Frame, b: &Frame| -> Option<u64> {
        let d = b.mono_ns.checked_sub(a.mono_ns)?;
        (b.seq == a.seq + 1 && d > 0 && d <= MAX_FRAME_INTERVAL_NS).then_some(d)
    };
    let mut ds: Vec<u64> = frames.windows(2).filter_map(|w| measured(&w[0], &w[1])).collect();
    let nominal = if ds.is_empty() {
        DEFAULT_INTERVAL_NS
    } else {
        let mid = ds.len() / 2;
        *ds.select_nth_unstable(mid).1
    };
    let mut out: Vec<u64> = frames.windows(2).map(|w| measured(&w[0], &w[1]).unwrap_or(nominal)).collect();
    if !frames.is_empty() {
        out.push(nominal);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(seq: u64, mono_ms: u64) -> Frame {
        Frame { seg: 0, len: 1, offset: 0, seq, utc_ns: 0, mono_ns: mono_ms * 1_000_000, key: true }
    }

    #[test]
    fn gaps_and_reboots_last_one_nominal_interval() {
        let frames = [f(1, 1000), f(2, 1040), f(3, 1080), f(4, 61_080), f(5, 61_120), f(9, 61_160), f(10, 5)];
        let d = durations_ns(&frames);
        let ms: Vec<u64> = d.iter().map(|x| x / 1_000_000).collect();
        assert_eq!(ms, [40, 40, 40, 40, 40, 40, 40]);
        // A measured interval is kept as it is (variable frame rate).
        let d = durations_ns(&[f(1, 0), f(2, 50), f(3, 60), f(4, 100)]);
        assert_eq!(d, [50_000_000, 10_000_000, 40_000_000, 40_000_000]);
        assert_eq!(durations_ns(&[f(7, 3)]), [DEFAULT_INTERVAL_NS]);
    }
}
