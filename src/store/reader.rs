//! Read-only access to a store: frames by sequence number or by UTC time range, across
//! segment boundaries. Every frame returned passed its CRCs; anything else is reported as bad
//! and skipped. Works on a live store (another process writing) and on one left by a crash
//! (recovered in memory, nothing written).

use super::catalog::SegmentInfo;
use super::record::{IndexEntry, RecHeader, BLOCK};
use super::recover::{self, Recovered};
use super::segment;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A frame's metadata as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub seq: u64,
    pub utc_ns: i64,
    pub mono_ns: u64,
    pub codec: u8,
    pub len: u32,
}

pub struct Reader {
    seg_dir: PathBuf,
    pub recovered: Recovered,
}

/// One segment opened for reading: its file, identity and frame index.
pub struct SegmentFrames {
    file: File,
    uid: u64,
    pub first_seq: u64,
    pub entries: Vec<IndexEntry>,
    limit: u64,
    /// The codec parameters from the segment header (H.264 `avcC`; empty for JPEG).
    params: super::record::Params,
}

impl SegmentFrames {
    /// The gap markers recorded in this segment (`(from_utc_ns, to_utc_ns)`), in order.
    pub fn gap_markers(&self) -> io::Result<Vec<(i64, i64)>> {
        segment::gap_markers(&self.file, self.uid, self.limit)
    }

    /// The open segment file (held for as long as this value lives).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The segment instance's uid: every record CRC is bound to it.
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// Records must end at or before this offset.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The H.264 decoder configuration (`avcC`) its frames need; empty for JPEG segments.
    pub fn params(&self) -> &[u8] {
        self.params.bytes()
    }

    /// Reads and checks only the record header of frame `i` (header CRC, kind, seq, bounds),
    /// not its payload. `Ok(None)`: the header is damaged. Cheap: one 48-byte read.
    pub fn header(&self, i: usize) -> io::Result<Option<RecHeader>> {
        let Some(e) = self.entries.get(i) else { return Ok(None) };
        let seq = self.first_seq + i as u64;
        segment::read_frame_header(&self.file, self.uid, e, seq, self.limit)
    }

    /// Why frame `i` fails to read, as far as its record header tells (for `verify`'s report).
    pub fn why_bad(&self, i: usize) -> &'static str {
        let Some(e) = self.entries.get(i) else { return "no such frame" };
        let mut hb = [0u8; super::record::REC_HDR];
        let h = match self.file.read_exact_at(&mut hb, e.offset) {
            Ok(()) => RecHeader::decode(&hb, self.uid),
            Err(_) => None,
        };
        match h {
            Some(h) if h.kind == super::record::Kind::Frame && h.seq == self.first_seq + i as u64 => {
                if e.len.is_some_and(|l| l != h.len) || (e.len.is_some() && e.codec != h.codec) {
                    "frame record's length or codec differs from its index entry"
                } else {
                    "frame fails its payload CRC or lies beyond the segment's data"
                }
            }
            _ => "frame fails its CRC or sequence check",
        }
    }

    /// Reads frame `i` of the segment into `buf`. `Ok(None)`: the frame is damaged.
    pub fn read(&self, i: usize, buf: &mut Vec<u8>) -> io::Result<Option<FrameInfo>> {
        let Some(e) = self.entries.get(i) else { return Ok(None) };
        let seq = self.first_seq + i as u64;
        Ok(segment::read_frame(&self.file, self.uid, e, seq, self.limit, buf)?.map(|h| FrameInfo {
            seq,
            utc_ns: h.utc_ns,
            mono_ns: h.mono_ns,
            codec: h.codec,
            len: h.len,
        }))
    }
}

impl Reader {
    /// Opens the store in `data_dir` read-only.
    /// The data directory (the parent of `segments/`).
    pub fn data_dir(&self) -> &Path {
        self.seg_dir.parent().unwrap_or(&self.seg_dir)
    }

    pub fn open(data_dir: &Path) -> io::Result<Reader> {
        let seg_dir = data_dir.join("segments");
        // A live writer may seal (rename) an open segment between the listing and its open:
        // list again. Persistent NotFound after several tries is a real error.
        let mut attempt = 0;
        let recovered = loop {
            match recover::recover(&seg_dir, false) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 8 && seg_dir.is_dir() => attempt += 1,
                r => break r?,
            }
        };
        Ok(Reader { seg_dir, recovered })
    }

    /// The closed segment that an open one listed earlier became (sealed and renamed by the
    /// live writer since), if any.
    fn sealed_since(&self, seg: &SegmentInfo) -> io::Result<Option<SegmentInfo>> {
        let listing = super::catalog::list(&self.seg_dir)?;
        Ok(listing.closed.into_iter().find(|c| c.first_seq == seg.first_seq))
    }

    /// All segments, in sequence order.
    pub fn segments(&self) -> Vec<&SegmentInfo> {
        self.recovered.all().collect()
    }

    /// Opens a segment for reading. `Err` with a reason when its header or index is damaged.
    pub fn load(&self, seg: &SegmentInfo) -> io::Result<Result<SegmentFrames, &'static str>> {
        let file = match File::open(self.seg_dir.join(seg.name.as_str())) {
            Ok(f) => f,
            // Sealed by the live writer since the listing: read it under its closed name
            // (its frames up to the listing are all in it, plus any written since).
            Err(e) if e.kind() == io::ErrorKind::NotFound && seg.open_frames.is_some() => {
                return match self.sealed_since(seg)? {
                    Some(closed) => self.load_closed_as(&closed, seg),
                    None => Ok(Err("segment was deleted")),
                };
            }
            // Deleted by retention since the listing: nothing to read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err("segment was deleted")),
            Err(e) => return Err(e),
        };
        let Some(header) = segment::read_header(&file)? else { return Ok(Err("segment header damaged")) };
        if header.first_seq != seg.first_seq {
            return Ok(Err("segment header does not match its name"));
        }
        let (entries, limit) = match &seg.open_frames {
            Some(frames) => (frames.clone(), seg.used_bytes),
            None => match segment::read_index(&file, &header, seg.used_bytes)? {
                Ok((seal, entries)) => (entries, seal.index_offset),
                Err(why) => return Ok(Err(why)),
            },
        };
        if entries.len() as u64 != seg.frames {
            return Ok(Err("segment index does not match its name"));
        }
        Ok(Ok(SegmentFrames { file, uid: header.uid, first_seq: header.first_seq, entries, limit: limit.max(BLOCK), params: header.params }))
    }

    /// Loads the closed segment `closed` that the open `listed` became, keeping only the frames
    /// the listing knew about (so callers that planned on `listed.frames` see the same count).
    fn load_closed_as(&self, closed: &SegmentInfo, listed: &SegmentInfo) -> io::Result<Result<SegmentFrames, &'static str>> {
        match self.load(closed)? {
            Ok(mut sf) => {
                if (sf.entries.len() as u64) < listed.frames {
                    return Ok(Err("sealed segment holds fewer frames than it did open"));
                }
                sf.entries.truncate(listed.frames as usize);
                Ok(Ok(sf))
            }
            Err(why) => Ok(Err(why)),
        }
    }

    /// Reads the frame with sequence number `seq` into `buf`.
    pub fn frame_by_seq(&self, seq: u64, buf: &mut Vec<u8>) -> io::Result<Option<FrameInfo>> {
        let Some(seg) = self.recovered.all().find(|s| s.frames > 0 && s.first_seq <= seq && seq < s.first_seq + s.frames) else {
            return Ok(None);
        };
        match self.load(seg)? {
            Ok(sf) => sf.read((seq - seg.first_seq) as usize, buf),
            Err(_) => Ok(None),
        }
    }

    /// Calls `f` for every intact frame whose UTC capture time lies in `from..=to`, in sequence
    /// order; `f` returns false to stop. Returns how many damaged frames were skipped.
    pub fn for_each_in_range(
        &self,
        from: i64,
        to: i64,
        buf: &mut Vec<u8>,
        mut f: impl FnMut(&FrameInfo, &[u8]) -> bool,
    ) -> io::Result<u64> {
        let mut bad = 0;
        for seg in self.recovered.all().filter(|s| s.overlaps(from, to)) {
            let sf = match self.load(seg)? {
                Ok(sf) => sf,
                Err(why) => {
                    log::warn!("segment {}: {why}; skipped", seg.name);
                    bad += seg.frames;
                    continue;
                }
            };
            for i in 0..sf.entries.len() {
                let t = sf.entries[i].utc_ns;
                if t < from || t > to {
                    continue;
                }
                match sf.read(i, buf)? {
                    Some(info) => {
                        if !f(&info, buf) {
                            return Ok(bad);
                        }
                    }
                    None => bad += 1,
                }
            }
        }
        Ok(bad)
    }
}
