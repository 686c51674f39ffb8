//! Reading one segment file: its header, a scan of its records (recovery, open segments), its
//! seal and index (closed segments), one frame. Nothing here writes; nothing here trusts a byte
//! before its CRC checked.

use super::record::{
    block_ceil, index_entry_len, record_len, IndexEntry, Kind, RecHeader, Seal, SegHeader, BLOCK,
    FLAG_BY_RECOVERY, REC_HDR, SEAL_PAYLOAD,
};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads `buf.len()` bytes at `off`; `Ok(false)` when the file is too short.
fn read_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<bool> {
    match file.read_exact_at(buf, off) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads and checks the header block. `Ok(None)`: no valid header.
pub fn read_header(file: &File) -> io::Result<Option<SegHeader>> {
    let mut b = [0u8; BLOCK as usize];
    if !read_at(file, &mut b, 0)? {
        return Ok(None);
    }
    Ok(SegHeader::decode(&b))
}

/// Reads the record at `off` (header and payload into `buf`) and checks both CRCs and that it
/// lies inside `limit`. `Ok(None)`: not a valid record.
pub fn read_record(
    file: &File,
    uid: u64,
    off: u64,
    limit: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Option<RecHeader>> {
    if off.checked_add(REC_HDR as u64).is_none_or(|end| end > limit) {
        return Ok(None);
    }
    let mut hb = [0u8; REC_HDR];
    if !read_at(file, &mut hb, off)? {
        return Ok(None);
    }
    let Some(h) = RecHeader::decode(&hb, uid) else { return Ok(None) };
    if off + h.record_len() > limit {
        return Ok(None);
    }
    buf.clear();
    buf.resize(h.len as usize, 0);
    if !read_at(file, buf, off + REC_HDR as u64)? || !h.payload_ok(uid, buf) {
        return Ok(None);
    }
    Ok(Some(h))
}

/// The gap markers among the records from the first block up to `limit`, as `(from_utc_ns,
/// to_utc_ns)`: reads each record's header only (and a gap's 24-byte payload), following the
/// chain of valid records; stops at the first invalid one.
pub fn gap_markers(file: &File, uid: u64, limit: u64) -> io::Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    let mut off = BLOCK;
    let mut hb = [0u8; REC_HDR];
    while off + REC_HDR as u64 <= limit && read_at(file, &mut hb, off)? {
        let Some(h) = RecHeader::decode(&hb, uid) else { break };
        if off + h.record_len() > limit {
            break;
        }
        if h.kind == Kind::Gap && h.len == 24 {
            let mut p = [0u8; 24];
            if read_at(file, &mut p, off + REC_HDR as u64)? && h.payload_ok(uid, &p) {
                let from = i64::from_le_bytes(p[0..8].try_into().unwrap_or_default());
                let to = i64::from_le_bytes(p[8..16].try_into().unwrap_or_default());
                out.push((from, to));
            }
        }
        if h.kind == Kind::Seal {
            break;
        }
        off += h.record_len();
    }
    Ok(out)
}

/// What a scan of a segment's records found: the longest valid prefix.
#[derive(Debug, Default)]
pub struct Scan {
    /// Frames of the prefix, in order (frame i has seq `first_seq + i`).
    pub frames: Vec<IndexEntry>,
    pub gaps: u64,
    /// Offset just after the last valid record.
    pub prefix_end: u64,
    /// Offset just after the last commit record (everything before it was acknowledged).
    pub commit_end: u64,
    /// The seal, when the prefix ends with one (the segment was sealed but not renamed).
    pub seal: Option<Seal>,
}

/// Scans records from the first block up to `limit` and returns the longest valid prefix
/// (docs/FORMAT.md, "Records": magic, kind, bounds, CRCs, frame seq continuity, group field).
pub fn scan(file: &File, header: &SegHeader, limit: u64, buf: &mut Vec<u8>) -> io::Result<Scan> {
    let mut s = Scan { prefix_end: BLOCK, commit_end: BLOCK, ..Scan::default() };
    let mut off = BLOCK;
    let mut group_start = BLOCK;
    while let Some(h) = read_record(file, header.uid, off, limit, buf)? {
        if h.group as u64 * BLOCK != group_start {
            break;
        }
        let end = off + h.record_len();
        match h.kind {
            Kind::Frame => {
                if h.seq != header.first_seq + s.frames.len() as u64 {
                    break;
                }
                s.frames.push(entry_of(off, &h));
            }
            Kind::Gap => s.gaps += 1,
            Kind::Commit => {
                if !end.is_multiple_of(BLOCK) {
                    break;
                }
                s.commit_end = end;
                group_start = end;
            }
            Kind::Index => {}
            Kind::Seal => {
                if !off.is_multiple_of(BLOCK) || h.len as usize != SEAL_PAYLOAD {
                    break;
                }
                s.seal = Seal::decode(buf);
                s.prefix_end = end;
                s.commit_end = end;
                break;
            }
        }
        s.prefix_end = end;
        off = end;
    }
    Ok(s)
}

/// The index entry of the frame record `h` found at `off`.
pub fn entry_of(off: u64, h: &RecHeader) -> IndexEntry {
    IndexEntry { offset: off, utc_ns: h.utc_ns, mono_ns: h.mono_ns, len: Some(h.len), codec: h.codec, flags: h.flags }
}

/// After a prefix ending at `from`, looks for a valid record of a *later* commit group: proof
/// (invariant C2) that the damage at `from` lies inside acknowledged data. Returns its offset.
pub fn find_later_group(file: &File, header: &SegHeader, from: u64, limit: u64) -> io::Result<Option<u64>> {
    const CHUNK: usize = 1 << 20;
    let damaged_block = from / BLOCK * BLOCK;
    let mut chunk = vec![0u8; CHUNK];
    let mut base = block_ceil(from);
    while base < limit {
        let n = ((limit - base) as usize).min(CHUNK);
        let got = match file.read_at(&mut chunk[..n], base) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut at = 0usize;
        while at + REC_HDR <= got {
            if let Some(h) = RecHeader::decode(&chunk[at..at + REC_HDR], header.uid)
                && h.flags & FLAG_BY_RECOVERY == 0
                && h.group as u64 * BLOCK > damaged_block
                && h.group as u64 * BLOCK <= base + at as u64
            {
                return Ok(Some(base + at as u64));
            }
            at += BLOCK as usize;
        }
        base += (got as u64).div_ceil(BLOCK) * BLOCK;
    }
    Ok(None)
}

/// Reads and checks a closed segment's seal and index. `Err` says what is wrong. The entries
/// of a version-1 segment have no length (`len: None`); a version-2 entry's record must lie
/// wholly before the next entry's and before the index.
pub fn read_index(file: &File, header: &SegHeader, used: u64) -> io::Result<Result<(Seal, Vec<IndexEntry>), &'static str>> {
    if used < 3 * BLOCK || !used.is_multiple_of(BLOCK) {
        return Ok(Err("used length is not a plausible sealed size"));
    }
    let mut buf = Vec::new();
    let seal_off = used - BLOCK;
    let Some(h) = read_record(file, header.uid, seal_off, used, &mut buf)? else {
        return Ok(Err("seal block missing or damaged"));
    };
    if h.kind != Kind::Seal || h.len as usize != SEAL_PAYLOAD {
        return Ok(Err("last block is not a seal"));
    }
    let Some(seal) = Seal::decode(&buf) else { return Ok(Err("seal unreadable")) };
    let entry_len = index_entry_len(header.version);
    if seal.index_len != seal.frames.saturating_mul(entry_len as u64)
        || seal.index_offset < BLOCK
        || seal.index_offset >= seal_off
    {
        return Ok(Err("seal describes an impossible index"));
    }
    let Some(ih) = read_record(file, header.uid, seal.index_offset, seal_off, &mut buf)? else {
        return Ok(Err("index record missing or damaged"));
    };
    if ih.kind != Kind::Index || ih.len as u64 != seal.index_len {
        return Ok(Err("index record does not match the seal"));
    }
    let mut entries = Vec::with_capacity(seal.frames as usize);
    let mut prev_end = BLOCK;
    for raw in buf.chunks_exact(entry_len) {
        let Some(e) = IndexEntry::decode(raw, header.version) else { return Ok(Err("index entry unreadable")) };
        let end = e.offset.saturating_add(e.len.map_or(REC_HDR as u64, |l| record_len(l as u64)));
        if e.offset < prev_end || e.offset % 8 != 0 || end > seal.index_offset {
            return Ok(Err("index entries out of order or out of bounds"));
        }
        prev_end = end;
        entries.push(e);
    }
    Ok(Ok((seal, entries)))
}

/// True when the record header `h` is frame `seq` as `entry` describes it: kind, seq and,
/// where the index carries them (version 2), payload length and codec.
pub fn matches_entry(h: &RecHeader, entry: &IndexEntry, seq: u64) -> bool {
    h.kind == Kind::Frame && h.seq == seq && entry.len.is_none_or(|l| l == h.len && entry.codec == h.codec)
}

/// Reads frame `seq` at `entry`, checking kind, seq, CRCs and that the record agrees with its
/// index entry (length, codec). `Ok(None)`: damaged.
pub fn read_frame(
    file: &File,
    uid: u64,
    entry: &IndexEntry,
    seq: u64,
    limit: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Option<RecHeader>> {
    match read_record(file, uid, entry.offset, limit, buf)? {
        Some(h) if matches_entry(&h, entry, seq) => Ok(Some(h)),
        _ => Ok(None),
    }
}

/// Reads only the header of frame `seq` at `entry` and checks its CRC, kind, seq, agreement
/// with the entry and that the whole record lies inside `limit`. The payload is not read (nor
/// its CRC checked). Export planning needs this only for version-1 segments, whose index
/// lacks the length.
pub fn read_frame_header(file: &File, uid: u64, entry: &IndexEntry, seq: u64, limit: u64) -> io::Result<Option<RecHeader>> {
    let off = entry.offset;
    if off.checked_add(REC_HDR as u64).is_none_or(|end| end > limit) {
        return Ok(None);
    }
    let mut hb = [0u8; REC_HDR];
    if !read_at(file, &mut hb, off)? {
        return Ok(None);
    }
    Ok(RecHeader::decode(&hb, uid).filter(|h| matches_entry(h, entry, seq) && off + h.record_len() <= limit))
}
