//! Byte layout of segment headers and records (docs/FORMAT.md, "Segment header", "Records").
//!
//! Everything here is pure: encode into / decode from byte slices. Decoding never panics and
//! accepts a record only when its magic, kind, length bound and CRCs all check.

/// The unit of commit alignment: every commit group ends on a multiple of this.
pub const BLOCK: u64 = 4096;
/// Size of a record header.
pub const REC_HDR: usize = 48;
/// Largest payload a record may declare.
pub const MAX_PAYLOAD: u32 = 64 << 20;
/// Size of one index entry in the current format (offset, utc_ns, mono_ns, len, codec, flags).
pub const INDEX_ENTRY: usize = 32;
/// Size of one index entry in a version-1 segment (offset, utc_ns, mono_ns: no length).
pub const INDEX_ENTRY_V1: usize = 24;
/// Payload length of the seal record: it fills exactly one block.
pub const SEAL_PAYLOAD: usize = BLOCK as usize - REC_HDR;

const SEG_MAGIC: &[u8; 8] = b"BBXSEG01";
/// The format version new segments are written in (docs/FORMAT.md, "Versions").
pub const FORMAT_VERSION: u32 = 3;
/// Largest H.264 decoder configuration (`avcC`) a version-3 header holds.
pub const MAX_HEADER_PARAMS: usize = 1024;
/// The first format: its index entries lack the payload length. Still read (stores already
/// on users' cards), and still written when recovery seals a version-1 segment left open.
pub const FORMAT_V1: u32 = 1;
const REC_MAGIC: &[u8; 4] = b"BBXR";

/// Size of one index entry in a segment of format `version`.
pub fn index_entry_len(version: u32) -> usize {
    if version == FORMAT_V1 { INDEX_ENTRY_V1 } else { INDEX_ENTRY }
}

/// Flags bit on index, commit and seal records written by recovery when it seals a segment
/// left open by a crash. Such records start a "group" after a tail that was never
/// acknowledged, so they prove nothing about it (docs/FORMAT.md, invariant C2).
pub const FLAG_BY_RECOVERY: u16 = 1 << 15;

/// Zeros for padding: a commit record's payload is at most one block plus a header.
pub static ZEROS: [u8; 2 * BLOCK as usize] = [0; 2 * BLOCK as usize];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Frame = 1,
    Gap = 2,
    Commit = 3,
    Index = 4,
    Seal = 5,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Frame,
            2 => Kind::Gap,
            3 => Kind::Commit,
            4 => Kind::Index,
            5 => Kind::Seal,
            _ => return None,
        })
    }
}

/// CRC-32 of `parts`, bound to a segment instance by feeding its uid first.
pub fn crc(uid: u64, parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&uid.to_le_bytes());
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Length on disk of a record with a payload of `len` bytes (header, payload, pad to 8).
pub fn record_len(len: u64) -> u64 {
    (REC_HDR as u64 + len).div_ceil(8) * 8
}

/// Rounds `off` up to the next block boundary.
pub fn block_ceil(off: u64) -> u64 {
    off.div_ceil(BLOCK) * BLOCK
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The codec parameters of a segment (version 3): the H.264 `avcC` record its frames need,
/// empty for JPEG.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Params {
    len: u16,
    bytes: [u8; MAX_HEADER_PARAMS],
}

impl Params {
    pub const EMPTY: Params = Params { len: 0, bytes: [0; MAX_HEADER_PARAMS] };

    /// `None` when `b` is longer than [`MAX_HEADER_PARAMS`].
    pub fn new(b: &[u8]) -> Option<Params> {
        if b.len() > MAX_HEADER_PARAMS {
            return None;
        }
        let mut p = Params::EMPTY;
        p.bytes[..b.len()].copy_from_slice(b);
        p.len = b.len() as u16;
        Some(p)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Params {
    fn default() -> Self {
        Params::EMPTY
    }
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Params({} bytes)", self.len)
    }
}

/// The header block at the start of every segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegHeader {
    /// Format version: `FORMAT_VERSION` for new segments, `FORMAT_V1` for old ones.
    pub version: u32,
    pub uid: u64,
    pub first_seq: u64,
    pub start_utc_ns: i64,
    pub start_mono_ns: u64,
    pub capacity: u64,
    /// Version 3: the H.264 decoder configuration the segment's frames need (empty for JPEG).
    pub params: Params,
}

impl SegHeader {
    /// Writes the whole 4096-byte header block into `out`.
    pub fn encode(&self, out: &mut [u8; BLOCK as usize]) {
        out.fill(0);
        out[0..8].copy_from_slice(SEG_MAGIC);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&(BLOCK as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.uid.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        out[32..40].copy_from_slice(&self.start_utc_ns.to_le_bytes());
        out[40..48].copy_from_slice(&self.start_mono_ns.to_le_bytes());
        out[48..56].copy_from_slice(&self.capacity.to_le_bytes());
        if self.version >= 3 {
            out[56..58].copy_from_slice(&self.params.len.to_le_bytes());
            out[58..58 + self.params.len as usize].copy_from_slice(self.params.bytes());
        }
        let c = crc(self.uid, &[&out[..4092]]);
        out[4092..4096].copy_from_slice(&c.to_le_bytes());
    }

    /// Decodes a header block; `None` unless magic, version (1 to 3), block size and CRC check.
    pub fn decode(b: &[u8]) -> Option<SegHeader> {
        if b.len() < BLOCK as usize || &b[0..8] != SEG_MAGIC {
            return None;
        }
        let version = u32_at(b, 8);
        if !(FORMAT_V1..=FORMAT_VERSION).contains(&version) || u32_at(b, 12) != BLOCK as u32 {
            return None;
        }
        let uid = u64_at(b, 16);
        if crc(uid, &[&b[..4092]]) != u32_at(b, 4092) {
            return None;
        }
        Some(SegHeader {
            version,
            uid,
            first_seq: u64_at(b, 24),
            start_utc_ns: u64_at(b, 32) as i64,
            start_mono_ns: u64_at(b, 40),
            capacity: u64_at(b, 48),
            params: if version >= 3 {
                let n = u16::from_le_bytes([b[56], b[57]]) as usize;
                Params::new(b.get(58..58 + n)?)?
            } else {
                Params::EMPTY
            },
        })
    }
}

/// A record header (without its CRCs, which `encode` computes and `decode` checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecHeader {
    pub kind: Kind,
    pub codec: u8,
    pub flags: u16,
    pub len: u32,
    /// Block number at which this record's commit group starts.
    pub group: u32,
    pub seq: u64,
    pub mono_ns: u64,
    pub utc_ns: i64,
    /// CRC of (uid, payload); filled by the writer before `encode`.
    pub payload_crc: u32,
}

impl RecHeader {
    pub fn encode(&self, uid: u64) -> [u8; REC_HDR] {
        let mut b = [0u8; REC_HDR];
        b[0..4].copy_from_slice(REC_MAGIC);
        b[4] = self.kind as u8;
        b[5] = self.codec;
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.group.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.mono_ns.to_le_bytes());
        b[32..40].copy_from_slice(&self.utc_ns.to_le_bytes());
        b[40..44].copy_from_slice(&self.payload_crc.to_le_bytes());
        let c = crc(uid, &[&b[..44]]);
        b[44..48].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Decodes and checks a header; the payload CRC is checked separately by `payload_ok`.
    pub fn decode(b: &[u8], uid: u64) -> Option<RecHeader> {
        if b.len() < REC_HDR || &b[0..4] != REC_MAGIC {
            return None;
        }
        if crc(uid, &[&b[..44]]) != u32_at(b, 44) {
            return None;
        }
        let kind = Kind::from_u8(b[4])?;
        let len = u32_at(b, 8);
        if len > MAX_PAYLOAD {
            return None;
        }
        Some(RecHeader {
            kind,
            codec: b[5],
            flags: u16::from_le_bytes([b[6], b[7]]),
            len,
            group: u32_at(b, 12),
            seq: u64_at(b, 16),
            mono_ns: u64_at(b, 24),
            utc_ns: u64_at(b, 32) as i64,
            payload_crc: u32_at(b, 40),
        })
    }

    pub fn payload_ok(&self, uid: u64, payload: &[u8]) -> bool {
        payload.len() == self.len as usize && crc(uid, &[payload]) == self.payload_crc
    }

    /// Total length of this record on disk.
    pub fn record_len(&self) -> u64 {
        record_len(self.len as u64)
    }
}

/// One frame's entry in a closed segment's index (and the in-memory result of a scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub utc_ns: i64,
    pub mono_ns: u64,
    /// Payload length, as in the record header. `None` only for an entry read from a
    /// version-1 index, which does not carry it: read the record header to learn it.
    pub len: Option<u32>,
    /// Codec and flags, as in the record header (0 for a version-1 entry).
    pub codec: u8,
    pub flags: u16,
}

impl IndexEntry {
    /// The current layout (docs/FORMAT.md, "index"): offset u64, utc_ns i64, mono_ns u64,
    /// len u32, codec u8, zero u8, flags u16.
    pub fn encode(&self) -> [u8; INDEX_ENTRY] {
        let mut b = [0u8; INDEX_ENTRY];
        b[..INDEX_ENTRY_V1].copy_from_slice(&self.encode_v1());
        b[24..28].copy_from_slice(&self.len.unwrap_or(0).to_le_bytes());
        b[28] = self.codec;
        b[30..32].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    /// The version-1 layout: offset u64, utc_ns i64, mono_ns u64.
    pub fn encode_v1(&self) -> [u8; INDEX_ENTRY_V1] {
        let mut b = [0u8; INDEX_ENTRY_V1];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.utc_ns.to_le_bytes());
        b[16..24].copy_from_slice(&self.mono_ns.to_le_bytes());
        b
    }

    /// Appends this entry to an index being built for a segment of format `version`.
    /// Never allocates when `index` has room (the writer reserves it per segment).
    pub fn push_to(&self, index: &mut Vec<u8>, version: u32) {
        if version == FORMAT_V1 {
            index.extend_from_slice(&self.encode_v1());
        } else {
            index.extend_from_slice(&self.encode());
        }
    }

    /// Decodes one entry of a segment of format `version`. `None`: too short, or a length
    /// beyond `MAX_PAYLOAD`.
    pub fn decode(b: &[u8], version: u32) -> Option<IndexEntry> {
        if b.len() < index_entry_len(version) {
            return None;
        }
        let mut e = IndexEntry {
            offset: u64_at(b, 0),
            utc_ns: u64_at(b, 8) as i64,
            mono_ns: u64_at(b, 16),
            len: None,
            codec: 0,
            flags: 0,
        };
        if version != FORMAT_V1 {
            let len = u32_at(b, 24);
            if len > MAX_PAYLOAD {
                return None;
            }
            e.len = Some(len);
            e.codec = b[28];
            e.flags = u16::from_le_bytes([b[30], b[31]]);
        }
        Some(e)
    }
}

/// The seal's payload: where the index is and what the segment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    pub index_offset: u64,
    pub index_len: u64,
    pub frames: u64,
    pub last_seq: u64,
    pub end_utc_ns: i64,
    pub end_mono_ns: u64,
}

impl Seal {
    pub fn encode(&self, out: &mut [u8; SEAL_PAYLOAD]) {
        out.fill(0);
        out[0..8].copy_from_slice(&self.index_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.index_len.to_le_bytes());
        out[16..24].copy_from_slice(&self.frames.to_le_bytes());
        out[24..32].copy_from_slice(&self.last_seq.to_le_bytes());
        out[32..40].copy_from_slice(&self.end_utc_ns.to_le_bytes());
        out[40..48].copy_from_slice(&self.end_mono_ns.to_le_bytes());
    }

    pub fn decode(b: &[u8]) -> Option<Seal> {
        if b.len() < 48 {
            return None;
        }
        Some(Seal {
            index_offset: u64_at(b, 0),
            index_len: u64_at(b, 8),
            frames: u64_at(b, 16),
            last_seq: u64_at(b, 24),
            end_utc_ns: u64_at(b, 32) as i64,
            end_mono_ns: u64_at(b, 40),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_uid_binding() {
        let h = RecHeader {
            kind: Kind::Frame,
            codec: 1,
            flags: 1,
            len: 1234,
            group: 7,
            seq: 99,
            mono_ns: 5,
            utc_ns: -3,
            payload_crc: crc(42, &[b"x"]),
        };
        let b = h.encode(42);
        assert_eq!(RecHeader::decode(&b, 42), Some(h));
        assert_eq!(RecHeader::decode(&b, 43), None, "a record must not validate under another uid");
        for i in 0..REC_HDR {
            let mut c = b;
            c[i] ^= 0x10;
            assert_eq!(RecHeader::decode(&c, 42), None, "flip in byte {i} accepted");
        }
    }

    #[test]
    fn segment_header_round_trip() {
        for version in [FORMAT_V1, FORMAT_VERSION] {
            let h = SegHeader { version, uid: 7, first_seq: 10, start_utc_ns: 1, start_mono_ns: 2, capacity: 3, params: Params::EMPTY };
            let mut b = [0u8; BLOCK as usize];
            h.encode(&mut b);
            assert_eq!(SegHeader::decode(&b), Some(h));
            b[100] = 1;
            assert_eq!(SegHeader::decode(&b), None);
        }
        let h = SegHeader { version: FORMAT_VERSION + 1, uid: 7, first_seq: 10, start_utc_ns: 1, start_mono_ns: 2, capacity: 3, params: Params::EMPTY };
        let mut b = [0u8; BLOCK as usize];
        h.encode(&mut b);
        assert_eq!(SegHeader::decode(&b), None, "a version from the future must not be read as ours");
    }

    #[test]
    fn index_entries_round_trip_in_both_versions() {
        let e = IndexEntry { offset: 4096, utc_ns: -5, mono_ns: 77, len: Some(123_456), codec: 1, flags: 1 };
        assert_eq!(IndexEntry::decode(&e.encode(), FORMAT_VERSION), Some(e));
        let v1 = IndexEntry::decode(&e.encode_v1(), FORMAT_V1).unwrap();
        assert_eq!(v1, IndexEntry { len: None, codec: 0, flags: 0, ..e });
        let mut idx = Vec::new();
        e.push_to(&mut idx, FORMAT_V1);
        e.push_to(&mut idx, FORMAT_VERSION);
        assert_eq!(idx.len(), INDEX_ENTRY_V1 + INDEX_ENTRY);
        let mut big = e.encode();
        big[24..28].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        assert_eq!(IndexEntry::decode(&big, FORMAT_VERSION), None);
        assert_eq!(IndexEntry::decode(&e.encode_v1(), FORMAT_VERSION), None, "a v1 entry is too short for v2");
    }

    #[test]
    fn record_lengths_are_8_aligned() {
        assert_eq!(record_len(0), 48);
        assert_eq!(record_len(1), 56);
        assert_eq!(record_len(8), 56);
        assert_eq!(block_ceil(0), 0);
        assert_eq!(block_ceil(1), 4096);
        assert_eq!(block_ceil(4096), 4096);
    }
}
