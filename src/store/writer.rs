//! Writing one segment file: records appended with `pwritev` straight from the caller's buffer,
//! group commit padded to a block boundary and `fdatasync`ed, seal at close.
//! (docs/FORMAT.md, "Group commit", "Segment life cycle"). No allocation per frame: the index
//! is a byte buffer reserved for the segment's whole life.

use super::record::{
    block_ceil, index_entry_len, record_len, IndexEntry, Kind, RecHeader, Seal, SegHeader, BLOCK,
    INDEX_ENTRY, REC_HDR, SEAL_PAYLOAD, ZEROS, FLAG_BY_RECOVERY,
};
use crate::camera::FrameMeta;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;

/// Why a record was not appended.
#[derive(Debug)]
pub enum AppendError {
    /// The segment has no room left for this record (rotate and retry).
    Full,
    Io(io::Error),
}

impl From<io::Error> for AppendError {
    fn from(e: io::Error) -> Self {
        AppendError::Io(e)
    }
}

/// Room that must stay free after the last frame so the segment can always be closed:
/// the frame group's commit, the index record and its commit, the seal block. Sized for the
/// current (largest) index entry, so it also covers a version-1 segment sealed by recovery.
pub fn close_reserve(frames: u64) -> u64 {
    (REC_HDR as u64 + BLOCK) + record_len(frames * INDEX_ENTRY as u64) + (REC_HDR as u64 + BLOCK) + BLOCK
}

pub struct SegmentWriter {
    file: File,
    header: SegHeader,
    /// Next write offset.
    off: u64,
    /// Block-aligned offset where the current commit group started.
    group_start: u64,
    /// Records written since the last commit.
    dirty: bool,
    group_frames: u32,
    group_first_mono: u64,
    /// Frame index as bytes (INDEX_ENTRY per frame), capacity reserved at start.
    index: Vec<u8>,
    max_frames: u64,
    frames: u64,
    last_utc_ns: i64,
    last_mono_ns: u64,
    /// Earliest and latest frame capture time (UTC may jump backwards: docs/FORMAT.md).
    min_utc_ns: i64,
    max_utc_ns: i64,
    /// Offset up to which the file is durable; frames below `durable_frames` are acknowledged.
    durable_off: u64,
    durable_frames: u64,
    pub syncs: u64,
    pub bytes_written: u64,
    /// Set when recovery seals a crashed segment: its records carry `FLAG_BY_RECOVERY`.
    by_recovery: bool,
}

impl SegmentWriter {
    /// Starts a segment in `file` (already preallocated to `header.capacity`): writes and syncs
    /// the header block. `index` is a reusable buffer; its capacity bounds the frame count.
    pub fn start(file: File, header: SegHeader, mut index: Vec<u8>, max_frames: u64) -> io::Result<SegmentWriter> {
        let mut hb = [0u8; BLOCK as usize];
        header.encode(&mut hb);
        file.write_all_at(&hb, 0)?;
        file.sync_data()?;
        index.clear();
        index.reserve(max_frames as usize * index_entry_len(header.version));
        Ok(SegmentWriter {
            file,
            header,
            off: BLOCK,
            group_start: BLOCK,
            dirty: false,
            group_frames: 0,
            group_first_mono: 0,
            index,
            max_frames,
            frames: 0,
            last_utc_ns: header.start_utc_ns,
            last_mono_ns: header.start_mono_ns,
            min_utc_ns: header.start_utc_ns,
            max_utc_ns: header.start_utc_ns,
            durable_off: BLOCK,
            durable_frames: 0,
            syncs: 1,
            bytes_written: BLOCK,
            by_recovery: false,
        })
    }

    pub fn header(&self) -> &SegHeader {
        &self.header
    }
    pub fn frames(&self) -> u64 {
        self.frames
    }
    pub fn last_seq(&self) -> Option<u64> {
        (self.frames > 0).then(|| self.header.first_seq + self.frames - 1)
    }
    pub fn durable_frames(&self) -> u64 {
        self.durable_frames
    }
    pub fn durable_off(&self) -> u64 {
        self.durable_off
    }
    pub fn group_frames(&self) -> u32 {
        self.group_frames
    }
    pub fn group_first_mono(&self) -> u64 {
        self.group_first_mono
    }
    pub fn last_mono_ns(&self) -> u64 {
        self.last_mono_ns
    }
    pub fn last_utc_ns(&self) -> i64 {
        self.last_utc_ns
    }
    pub fn written(&self) -> u64 {
        self.off
    }
    /// Room left: (frames, payload bytes), with what closing the segment needs kept aside.
    pub fn room(&self) -> (u64, u64) {
        let reserve = close_reserve(self.max_frames);
        (self.max_frames.saturating_sub(self.frames), self.header.capacity.saturating_sub(self.off + reserve))
    }

    /// Header of a non-frame record (gap, commit, index, seal): it carries the last frame's
    /// seq and times.
    fn marker(&self, kind: Kind) -> RecHeader {
        RecHeader {
            kind,
            codec: 0,
            flags: if self.by_recovery { FLAG_BY_RECOVERY } else { 0 },
            len: 0,
            group: 0,
            seq: self.last_seq().unwrap_or(self.header.first_seq.wrapping_sub(1)),
            mono_ns: self.last_mono_ns,
            utc_ns: self.last_utc_ns,
            payload_crc: 0,
        }
    }

    fn write_record(&mut self, mut h: RecHeader, payload: &[u8]) -> io::Result<u64> {
        h.group = (self.group_start / BLOCK) as u32;
        h.len = payload.len() as u32;
        h.payload_crc = super::record::crc(self.header.uid, &[payload]);
        let hb = h.encode(self.header.uid);
        let total = record_len(payload.len() as u64);
        let pad = &ZEROS[..(total as usize - REC_HDR - payload.len())];
        let at = self.off;
        write_all_vectored_at(&self.file, &[&hb, payload, pad], at)?;
        self.off += total;
        self.bytes_written += total;
        self.dirty = true;
        Ok(at)
    }

    /// Appends one frame (seq = next in this segment). Nothing is durable until `commit`.
    pub fn append_frame(&mut self, meta: &FrameMeta, payload: &[u8]) -> Result<(), AppendError> {
        let need = record_len(payload.len() as u64) + close_reserve(self.frames + 1);
        if payload.len() as u64 > super::record::MAX_PAYLOAD as u64
            || self.frames >= self.max_frames
            || self.off + need > self.header.capacity
        {
            return Err(AppendError::Full);
        }
        let h = RecHeader {
            kind: Kind::Frame,
            codec: meta.codec as u8,
            flags: meta.key as u16,
            len: 0,
            group: 0,
            seq: self.header.first_seq + self.frames,
            mono_ns: meta.mono_ns,
            utc_ns: meta.utc_ns,
            payload_crc: 0,
        };
        let at = self.write_record(h, payload)?;
        let e = IndexEntry {
            offset: at,
            utc_ns: meta.utc_ns,
            mono_ns: meta.mono_ns,
            len: Some(payload.len() as u32),
            codec: h.codec,
            flags: h.flags,
        };
        // Within the capacity reserved at `start` (frames < max_frames): no allocation.
        e.push_to(&mut self.index, self.header.version);
        if self.group_frames == 0 {
            self.group_first_mono = meta.mono_ns;
        }
        self.group_frames += 1;
        self.frames += 1;
        self.last_utc_ns = meta.utc_ns;
        self.last_mono_ns = meta.mono_ns;
        self.min_utc_ns = self.min_utc_ns.min(meta.utc_ns);
        self.max_utc_ns = self.max_utc_ns.max(meta.utc_ns);
        Ok(())
    }

    /// Appends a gap marker: no frame was stored from `from_utc` to `to_utc`, for `reason`,
    /// `lost` frames counted as lost in it.
    pub fn append_gap(&mut self, from_utc: i64, to_utc: i64, reason: u32, lost: u32, mono_ns: u64) -> Result<(), AppendError> {
        if self.off + record_len(24) + close_reserve(self.frames) > self.header.capacity {
            return Err(AppendError::Full);
        }
        let mut p = [0u8; 24];
        p[0..8].copy_from_slice(&from_utc.to_le_bytes());
        p[8..16].copy_from_slice(&to_utc.to_le_bytes());
        p[16..20].copy_from_slice(&reason.to_le_bytes());
        p[20..24].copy_from_slice(&lost.to_le_bytes());
        let h = RecHeader { mono_ns, utc_ns: to_utc, ..self.marker(Kind::Gap) };
        self.write_record(h, &p)?;
        Ok(())
    }

    /// Pads the group to a block boundary with a commit record (no sync).
    fn pad_commit(&mut self) -> io::Result<()> {
        let end = block_ceil(self.off + REC_HDR as u64);
        let len = (end - self.off) as usize - REC_HDR;
        self.write_record(self.marker(Kind::Commit), &ZEROS[..len])?;
        debug_assert_eq!(self.off % BLOCK, 0);
        self.group_start = self.off;
        Ok(())
    }

    /// Group commit: pad to the block boundary, `fdatasync`, then acknowledge.
    /// Returns true when something was committed.
    pub fn commit(&mut self) -> io::Result<bool> {
        if !self.dirty {
            return Ok(false);
        }
        self.pad_commit()?;
        self.file.sync_data()?;
        self.syncs += 1;
        self.dirty = false;
        self.group_frames = 0;
        self.durable_off = self.off;
        self.durable_frames = self.frames;
        Ok(true)
    }

    /// Commits, writes index and seal, syncs. Returns the used length and the file (to be
    /// renamed by the caller) and the index buffer for reuse.
    pub fn seal(mut self) -> io::Result<(Sealed, File, Vec<u8>)> {
        self.commit()?;
        let index = std::mem::take(&mut self.index);
        let index_offset = self.off;
        self.write_record(self.marker(Kind::Index), &index)?;
        self.pad_commit()?;
        let seal = Seal {
            index_offset,
            index_len: index.len() as u64,
            frames: self.frames,
            last_seq: self.last_seq().unwrap_or(self.header.first_seq.wrapping_sub(1)),
            end_utc_ns: self.last_utc_ns,
            end_mono_ns: self.last_mono_ns,
        };
        let mut payload = [0u8; SEAL_PAYLOAD];
        seal.encode(&mut payload);
        self.write_record(self.marker(Kind::Seal), &payload)?;
        self.file.sync_data()?;
        self.syncs += 1;
        self.durable_off = self.off;
        self.durable_frames = self.frames;
        let sealed = Sealed {
            header: self.header,
            frames: self.frames,
            used: self.off,
            end_utc_ns: self.last_utc_ns,
            min_utc_ns: self.min_utc_ns,
            max_utc_ns: self.max_utc_ns,
            syncs: self.syncs,
            bytes_written: self.bytes_written,
        };
        Ok((sealed, self.file, index))
    }
}

/// What a sealed segment's name and the store's statistics need.
#[derive(Clone, Copy, Debug)]
pub struct Sealed {
    pub header: SegHeader,
    pub frames: u64,
    pub used: u64,
    pub end_utc_ns: i64,
    /// The UTC span of the segment's frames: what its closed name says.
    pub min_utc_ns: i64,
    pub max_utc_ns: i64,
    pub syncs: u64,
    pub bytes_written: u64,
}

/// Seals a segment found open at recovery: appends index and seal at the first block boundary
/// after its valid prefix (never inside a block that holds valid data) and syncs.
pub fn seal_recovered(file: File, header: SegHeader, prefix_end: u64, frames: &[IndexEntry]) -> io::Result<Sealed> {
    // The index takes the segment's own format: a version-1 segment left open by the code
    // before index v2 is sealed with a version-1 index, as its header promises.
    let mut index = Vec::with_capacity(frames.len() * index_entry_len(header.version));
    for e in frames {
        e.push_to(&mut index, header.version);
    }
    let last = frames.last().copied();
    let off = block_ceil(prefix_end);
    let w = SegmentWriter {
        file,
        header,
        off,
        group_start: off,
        dirty: false,
        group_frames: 0,
        group_first_mono: 0,
        index,
        max_frames: frames.len() as u64,
        frames: frames.len() as u64,
        last_utc_ns: last.map_or(header.start_utc_ns, |e| e.utc_ns),
        last_mono_ns: last.map_or(header.start_mono_ns, |e| e.mono_ns),
        min_utc_ns: utc_span(header.start_utc_ns, frames).0,
        max_utc_ns: utc_span(header.start_utc_ns, frames).1,
        durable_off: off,
        durable_frames: frames.len() as u64,
        syncs: 0,
        bytes_written: 0,
        by_recovery: true,
    };
    let needed = off + close_reserve(frames.len() as u64);
    if needed > w.file.metadata()?.len() {
        w.file.set_len(needed)?;
    }
    let (sealed, _file, _index) = w.seal()?;
    Ok(sealed)
}

/// Earliest and latest UTC among `start` (the segment's start) and its frames' capture times.
pub fn utc_span(start: i64, frames: &[IndexEntry]) -> (i64, i64) {
    frames.iter().fold((start, start), |(lo, hi), e| (lo.min(e.utc_ns), hi.max(e.utc_ns)))
}

/// `pwritev` of all `parts` at `off`, continuing after short writes.
fn write_all_vectored_at(file: &File, parts: &[&[u8]], mut off: u64) -> io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut done = 0usize;
    while done < total {
        // Build the remaining slices without allocating: at most 3 parts are ever passed.
        let mut slices: [IoSlice<'_>; 3] = [IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[])];
        let mut n = 0;
        let mut skip = done;
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            if n < slices.len() {
                slices[n] = IoSlice::new(&p[skip..]);
                n += 1;
            }
            skip = 0;
        }
        match rustix::io::pwritev(file, &slices[..n], off) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "pwritev wrote nothing")),
            Ok(w) => {
                done += w;
                off += w as u64;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
