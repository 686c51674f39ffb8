//! Stored footage for the API, read from the segment files while the recorder writes them:
//! the segment list, frames by seq or nearest a time, whole segments for download.
//!
//! Closed segments come from the directory listing (their names carry the catalogue) and their
//! sealed index, cached for the segment read last (a player asks for many frames of one
//! segment). The open segment is scanned incrementally: each call continues from where the
//! last scan stopped, so a frame is checked once, and a record still being written (its CRC
//! doesn't match yet) just ends the scan until next time. Every frame served passed its CRCs.

use crate::camera::Codec;
use crate::codec::h264::{params_from_avcc, ParamSets};
use crate::codec::still::Gop;
use crate::store::catalog::{self, Protected};
use crate::store::record::{IndexEntry, Kind, SegHeader, BLOCK};
use crate::store::segment;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

/// Record flag bit 0: the frame is a key frame (an IDR for H.264; docs/FORMAT.md).
const FLAG_KEY: u16 = 1;

/// One segment as the API lists it.
#[derive(Clone, Debug)]
pub struct Seg {
    pub name: String,
    pub first_seq: u64,
    pub frames: u64,
    pub start_utc_ns: i64,
    pub end_utc_ns: i64,
    pub bytes: u64,
    pub open: bool,
}

impl Seg {
    pub fn contains_seq(&self, seq: u64) -> bool {
        self.frames > 0 && seq >= self.first_seq && seq - self.first_seq < self.frames
    }
}

/// A segment's frames, ready to read.
pub struct Loaded {
    pub name: String,
    file: File,
    uid: u64,
    pub first_seq: u64,
    pub entries: Vec<IndexEntry>,
    limit: u64,
    /// The H.264 parameter sets from the segment header (`None` for JPEG segments).
    pub params: Option<ParamSets>,
}

impl Loaded {
    /// Reads frame `i` into `buf`; `None` when it is damaged (or gone).
    pub fn read(&self, i: usize, buf: &mut Vec<u8>) -> io::Result<Option<i64>> {
        let Some(e) = self.entries.get(i) else { return Ok(None) };
        let seq = self.first_seq + i as u64;
        Ok(segment::read_frame(&self.file, self.uid, e, seq, self.limit, buf)?.map(|h| h.utc_ns))
    }

    /// For an H.264 frame `i`: the samples from the IDR at or before it up to it, to decode it
    /// ([`crate::codec::still`]). `Ok(None)`: not H.264, or a frame it needs is damaged.
    pub fn gop(&self, i: usize) -> io::Result<Option<Gop>> {
        let Some(e) = self.entries.get(i) else { return Ok(None) };
        let Some(params) = self.params.filter(|_| e.codec == Codec::H264 as u8) else { return Ok(None) };
        let Some(k) = (0..=i).rev().find(|&j| self.entries[j].flags & FLAG_KEY != 0) else { return Ok(None) };
        let mut samples = Vec::with_capacity(i - k + 1);
        for j in k..=i {
            let mut buf = Vec::new();
            if self.read(j, &mut buf)?.is_none() {
                return Ok(None);
            }
            samples.push(buf);
        }
        Ok(Some(Gop { params, samples }))
    }
}

struct OpenScan {
    name: String,
    file: File,
    header: SegHeader,
    entries: Vec<IndexEntry>,
    next_off: u64,
    group_start: u64,
    done: bool,
}

impl OpenScan {
    fn start(seg_dir: &std::path::Path, name: &str) -> io::Result<Option<OpenScan>> {
        let file = match File::open(seg_dir.join(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(header) = segment::read_header(&file)? else { return Ok(None) };
        Ok(Some(OpenScan { name: name.to_string(), file, header, entries: Vec::new(), next_off: BLOCK, group_start: BLOCK, done: false }))
    }

    /// Reads the records written since the last call (docs/FORMAT.md rules, as `segment::scan`).
    fn advance(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        let limit = self.file.metadata()?.len();
        while let Some(h) = segment::read_record(&self.file, self.header.uid, self.next_off, limit, buf)? {
            if h.group as u64 * BLOCK != self.group_start {
                break;
            }
            let end = self.next_off + h.record_len();
            match h.kind {
                Kind::Frame => {
                    if h.seq != self.header.first_seq + self.entries.len() as u64 {
                        self.done = true;
                        break;
                    }
                    self.entries.push(segment::entry_of(self.next_off, &h));
                }
                Kind::Commit => self.group_start = end,
                Kind::Gap | Kind::Index => {}
                Kind::Seal => {
                    self.done = true;
                    break;
                }
            }
            self.next_off = end;
        }
        Ok(())
    }

    fn span(&self) -> (i64, i64) {
        let min = self.entries.iter().map(|e| e.utc_ns).min().unwrap_or(self.header.start_utc_ns);
        let max = self.entries.iter().map(|e| e.utc_ns).max().unwrap_or(self.header.start_utc_ns);
        (min, max)
    }
}

/// Frames further apart than this (monotonic clock) leave a gap inside a segment: the same
/// rule as the export's (`export::plan::MAX_FRAME_INTERVAL_NS`), so the timeline, the segment
/// figures and the export agree.
pub const INNER_GAP_NS: u64 = crate::export::plan::MAX_FRAME_INTERVAL_NS;

/// The frame-less stretches inside a segment, `(from_utc_ns, to_utc_ns)`: between two
/// consecutive frames more than [`INNER_GAP_NS`] apart.
pub fn inner_gaps(entries: &[IndexEntry]) -> Vec<(i64, i64)> {
    entries
        .windows(2)
        .filter(|w| w[1].mono_ns.saturating_sub(w[0].mono_ns) > INNER_GAP_NS || w[1].mono_ns < w[0].mono_ns)
        .map(|w| (w[0].utc_ns, w[1].utc_ns))
        .collect()
}

/// Stretches without frames, `(from_utc_ns, to_utc_ns)`, shared between calls.
pub type Gaps = Rc<[(i64, i64)]>;

pub struct Footage {
    data_dir: PathBuf,
    seg_dir: PathBuf,
    open: RefCell<Option<OpenScan>>,
    last: RefCell<Option<Rc<Loaded>>>,
    scratch: RefCell<Vec<u8>>,
    /// Inner gaps of closed segments (they never change), by name; pruned to the listing.
    gaps: RefCell<HashMap<String, Gaps>>,
}

impl Footage {
    pub fn new(data_dir: PathBuf) -> Footage {
        Footage {
            seg_dir: data_dir.join("segments"),
            data_dir,
            open: RefCell::new(None),
            last: RefCell::new(None),
            scratch: RefCell::new(Vec::new()),
            gaps: RefCell::new(HashMap::new()),
        }
    }

    /// The frame-less stretches inside `seg` (see [`inner_gaps`]). A closed segment's index is
    /// read once and remembered; an unreadable one has none (its frames aren't served either).
    pub fn gaps_in(&self, seg: &Seg) -> io::Result<Gaps> {
        if seg.open {
            let open = self.open.borrow();
            return Ok(open.as_ref().filter(|o| o.name == seg.name).map_or_else(|| Rc::from(Vec::new()), |o| Rc::from(inner_gaps(&o.entries))));
        }
        if let Some(g) = self.gaps.borrow().get(&seg.name) {
            return Ok(Rc::clone(g));
        }
        let g: Gaps = match self.load(seg)? {
            Some(l) => Rc::from(inner_gaps(&l.entries)),
            None => Rc::from(Vec::new()),
        };
        self.gaps.borrow_mut().insert(seg.name.clone(), Rc::clone(&g));
        Ok(g)
    }

    /// Forgets remembered gaps of segments no longer listed (retention took them).
    pub fn prune_gaps(&self, segs: &[Seg]) {
        let mut g = self.gaps.borrow_mut();
        if g.len() > segs.len() {
            let names: std::collections::HashSet<&str> = segs.iter().map(|s| s.name.as_str()).collect();
            g.retain(|k, _| names.contains(k.as_str()));
        }
    }

    pub fn protected(&self) -> Protected {
        Protected::load(&self.data_dir.join("protected"))
    }

    /// Every segment, oldest first.
    pub fn segments(&self) -> io::Result<Vec<Seg>> {
        let l = catalog::list(&self.seg_dir)?;
        let mut out: Vec<Seg> = l
            .closed
            .iter()
            .map(|s| Seg {
                name: s.name.to_string(),
                first_seq: s.first_seq,
                frames: s.frames,
                start_utc_ns: s.start_utc_ns,
                end_utc_ns: s.end_utc_ns,
                bytes: s.used_bytes,
                open: false,
            })
            .collect();
        let mut open = self.open.borrow_mut();
        for (name, _) in &l.open {
            if open.as_ref().is_none_or(|o| o.name != name.as_str()) {
                *open = OpenScan::start(&self.seg_dir, name)?;
            }
            let Some(o) = open.as_mut().filter(|o| o.name == name.as_str()) else { continue };
            o.advance(&mut self.scratch.borrow_mut())?;
            let (start, end) = o.span();
            out.push(Seg {
                name: o.name.clone(),
                first_seq: o.header.first_seq,
                frames: o.entries.len() as u64,
                start_utc_ns: start,
                end_utc_ns: end,
                bytes: o.next_off,
                open: true,
            });
        }
        out.sort_by_key(|s| s.first_seq);
        Ok(out)
    }

    /// A segment's frames. `Ok(None)`: it is gone or unreadable (logged).
    pub fn load(&self, seg: &Seg) -> io::Result<Option<Rc<Loaded>>> {
        if seg.open {
            let open = self.open.borrow();
            let Some(o) = open.as_ref().filter(|o| o.name == seg.name) else { return Ok(None) };
            return Ok(Some(Rc::new(Loaded {
                name: o.name.clone(),
                file: o.file.try_clone()?,
                uid: o.header.uid,
                first_seq: o.header.first_seq,
                entries: o.entries.clone(),
                limit: o.next_off,
                params: params_from_avcc(o.header.params.bytes()),
            })));
        }
        if let Some(l) = self.last.borrow().as_ref().filter(|l| l.name == seg.name) {
            return Ok(Some(Rc::clone(l)));
        }
        let file = match File::open(self.seg_dir.join(&seg.name)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(header) = segment::read_header(&file)? else {
            log::warn!("segment {}: header damaged; not served", seg.name);
            return Ok(None);
        };
        if header.first_seq != seg.first_seq {
            return Ok(None);
        }
        let (seal, entries) = match segment::read_index(&file, &header, seg.bytes)? {
            Ok(x) => x,
            Err(why) => {
                log::warn!("segment {}: {why}; not served", seg.name);
                return Ok(None);
            }
        };
        let l = Rc::new(Loaded {
            name: seg.name.clone(),
            file,
            uid: header.uid,
            first_seq: header.first_seq,
            entries,
            limit: seal.index_offset.max(BLOCK),
            params: params_from_avcc(header.params.bytes()),
        });
        *self.last.borrow_mut() = Some(Rc::clone(&l));
        Ok(Some(l))
    }

    /// Frame `seq` into `buf`: its capture time, or `None` when not stored (or damaged).
    pub fn frame_by_seq(&self, segs: &[Seg], seq: u64, buf: &mut Vec<u8>) -> io::Result<Option<i64>> {
        let Some(seg) = segs.iter().find(|s| s.contains_seq(seq)) else { return Ok(None) };
        let Some(l) = self.load(seg)? else { return Ok(None) };
        l.read((seq - l.first_seq) as usize, buf)
    }

    /// What decodes H.264 frame `seq` (see [`Loaded::gop`]); `None` for a JPEG frame.
    pub fn gop_by_seq(&self, segs: &[Seg], seq: u64) -> io::Result<Option<Gop>> {
        let Some(seg) = segs.iter().find(|s| s.contains_seq(seq)) else { return Ok(None) };
        let Some(l) = self.load(seg)? else { return Ok(None) };
        l.gop((seq - l.first_seq) as usize)
    }

    /// The intact frame captured nearest to `t` (UTC ns) within `window` ns: its seq and time.
    pub fn nearest(&self, segs: &[Seg], t: i64, window: i64, buf: &mut Vec<u8>) -> io::Result<Option<(u64, i64)>> {
        let (from, to) = (t.saturating_sub(window), t.saturating_add(window));
        let mut cands: Vec<(u64, u64, Rc<Loaded>, usize)> = Vec::new();
        for seg in segs.iter().filter(|s| s.frames > 0 && s.start_utc_ns <= to && s.end_utc_ns >= from) {
            let Some(l) = self.load(seg)? else { continue };
            for (i, e) in l.entries.iter().enumerate() {
                if e.utc_ns >= from && e.utc_ns <= to {
                    cands.push((e.utc_ns.abs_diff(t), l.first_seq + i as u64, Rc::clone(&l), i));
                }
            }
        }
        cands.sort_by_key(|c| (c.0, c.1));
        // A damaged frame is skipped for the next nearest (a few tries, then give up).
        for (_, seq, l, i) in cands.into_iter().take(16) {
            if let Some(utc) = l.read(i, buf)? {
                return Ok(Some((seq, utc)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{Codec, FrameMeta};
    use crate::store::{Store, StoreOptions};

    fn meta(i: u64) -> FrameMeta {
        FrameMeta { mono_ns: 1_000_000_000 + i * 100_000_000, utc_ns: 1_700_000_000_000_000_000 + i as i64 * 100_000_000, codec: Codec::Jpeg, key: true, lost_before: 0 }
    }

    #[test]
    fn open_and_closed_segments_are_listed_and_frames_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions { segment_length_ns: 1_000_000_000, commit_frames: 3, ..StoreOptions::default() };
        let mut store = Store::open(dir.path(), opts).unwrap();
        for i in 0..25u64 {
            store.append_frame(&meta(i), format!("frame {i}").as_bytes()).unwrap();
        }
        store.commit().unwrap();
        let f = Footage::new(dir.path().to_path_buf());
        let segs = f.segments().unwrap();
        assert!(segs.len() >= 3, "{segs:?}");
        assert!(segs.last().unwrap().open, "the newest is being written");
        assert_eq!(segs.iter().map(|s| s.frames).sum::<u64>(), 25);
        let mut buf = Vec::new();
        for seq in 1..=25u64 {
            let t = f.frame_by_seq(&segs, seq, &mut buf).unwrap().unwrap();
            assert_eq!(buf, format!("frame {}", seq - 1).as_bytes());
            assert_eq!(t, meta(seq - 1).utc_ns);
        }
        assert_eq!(f.frame_by_seq(&segs, 26, &mut buf).unwrap(), None);
        let (seq, _) = f.nearest(&segs, meta(7).utc_ns + 40_000_000, 5_000_000_000, &mut buf).unwrap().unwrap();
        assert_eq!(seq, 8);
        assert_eq!(f.nearest(&segs, meta(0).utc_ns - 10_000_000_000, 5_000_000_000, &mut buf).unwrap(), None);
        // More frames arrive: the open segment's scan continues.
        for i in 25..28u64 {
            store.append_frame(&meta(i), format!("frame {i}").as_bytes()).unwrap();
        }
        store.commit().unwrap();
        let segs = f.segments().unwrap();
        assert_eq!(segs.iter().map(|s| s.frames).sum::<u64>(), 28);
        f.frame_by_seq(&segs, 28, &mut buf).unwrap().unwrap();
        assert_eq!(buf, b"frame 27");
    }

    #[test]
    fn a_stretch_without_frames_inside_a_segment_is_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions { segment_length_ns: 60_000_000_000, commit_frames: 3, ..StoreOptions::default() };
        let mut store = Store::open(dir.path(), opts).unwrap();
        // Frames 0..10, then 39 s without frames (Stop pressed), then 10..20: one segment.
        let at = |i: u64| if i < 10 { meta(i) } else { let mut m = meta(i); m.mono_ns += 39_000_000_000; m.utc_ns += 39_000_000_000; m };
        for i in 0..20u64 {
            store.append_frame(&at(i), b"x").unwrap();
        }
        store.commit().unwrap();
        let f = Footage::new(dir.path().to_path_buf());
        let segs = f.segments().unwrap();
        assert_eq!(segs.len(), 1);
        let want = [(at(9).utc_ns, at(10).utc_ns)];
        assert_eq!(&*f.gaps_in(&segs[0]).unwrap(), &want, "open segment");
        store.close_segment().unwrap();
        let segs = f.segments().unwrap();
        assert!(!segs[0].open);
        assert_eq!(&*f.gaps_in(&segs[0]).unwrap(), &want, "closed segment");
    }
}
