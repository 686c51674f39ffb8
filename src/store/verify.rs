//! The consistency checker behind `blackbox verify` (docs/FORMAT.md, "Verify"): recovers in
//! memory, then checks every record of every segment. Read-only.

use super::reader::Reader;
use super::record::BLOCK;
use super::segment;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct BadRegion {
    pub segment: String,
    pub from: u64,
    pub to: u64,
    /// True when the region lies inside acknowledged data (a real fault).
    pub fatal: bool,
    pub why: &'static str,
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub segments: u64,
    pub open_segments: u64,
    pub frames: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub durable_seq: Option<u64>,
    pub start_utc_ns: Option<i64>,
    pub end_utc_ns: Option<i64>,
    pub bytes: u64,
    pub bad_regions: Vec<BadRegion>,
    /// Sequence ranges missing between segments (retention of unprotected footage between
    /// protected footage leaves these; they are not errors).
    pub seq_gaps: Vec<(u64, u64)>,
    pub unknown_files: Vec<String>,
    /// Gap markers (`from_utc_ns`, `to_utc_ns`): times the camera delivered nothing (a stall,
    /// an unplug, a restart). Not errors.
    pub gap_markers: Vec<(i64, i64)>,
}

impl VerifyReport {
    /// True when every frame up to the end of the durable data validates.
    pub fn ok(&self) -> bool {
        !self.bad_regions.iter().any(|b| b.fatal)
    }
}

pub fn verify(data_dir: &Path) -> io::Result<VerifyReport> {
    let reader = Reader::open(data_dir)?;
    let seg_dir = data_dir.join("segments");
    let mut r = VerifyReport { unknown_files: reader.recovered.unknown.clone(), ..Default::default() };
    let mut buf = Vec::new();
    let mut prev_end: Option<u64> = None;
    for seg in reader.segments() {
        r.segments += 1;
        r.bytes += seg.used_bytes;
        if seg.is_open() {
            r.open_segments += 1;
        }
        let name = seg.name.to_string();
        let sf = match reader.load(seg)? {
            Ok(sf) => sf,
            Err(why) => {
                r.bad_regions.push(BadRegion { segment: name, from: 0, to: seg.used_bytes, fatal: true, why });
                continue;
            }
        };
        r.gap_markers.extend(sf.gap_markers()?);
        let mut good = 0u64;
        for i in 0..sf.entries.len() {
            match sf.read(i, &mut buf)? {
                Some(info) => {
                    good += 1;
                    r.start_utc_ns = Some(r.start_utc_ns.map_or(info.utc_ns, |s| s.min(info.utc_ns)));
                    r.end_utc_ns = Some(r.end_utc_ns.map_or(info.utc_ns, |e| e.max(info.utc_ns)));
                    let committed = !seg.is_open() || sf.entries[i].offset < seg.open_commit_end;
                    if committed {
                        r.durable_seq = Some(r.durable_seq.map_or(info.seq, |d| d.max(info.seq)));
                    }
                }
                None => {
                    let from = sf.entries[i].offset;
                    let to = sf.entries.get(i + 1).map_or(from + BLOCK, |e| e.offset);
                    r.bad_regions.push(BadRegion { segment: name.clone(), from, to, fatal: true, why: sf.why_bad(i) });
                }
            }
        }
        r.frames += good;
        if seg.frames > 0 {
            let last = seg.first_seq + seg.frames - 1;
            r.first_seq = Some(r.first_seq.map_or(seg.first_seq, |f| f.min(seg.first_seq)));
            r.last_seq = Some(r.last_seq.map_or(last, |l| l.max(last)));
            if let Some(pe) = prev_end
                && seg.first_seq > pe + 1
            {
                r.seq_gaps.push((pe + 1, seg.first_seq - 1));
            }
            prev_end = Some(last);
        }
    }
    // Open segments: what lies after the valid prefix?
    for (name, header, len) in &reader.recovered.open_headers {
        let Some(seg) = reader.recovered.open.iter().find(|s| s.name == *name) else { continue };
        let file = File::open(seg_dir.join(name.as_str()))?;
        let from = seg.used_bytes;
        if let Some(at) = segment::find_later_group(&file, header, from, *len)? {
            r.bad_regions.push(BadRegion {
                segment: name.to_string(),
                from,
                to: at,
                fatal: true,
                why: "damaged record followed by a later commit group (inside acknowledged data)",
            });
        } else if from < *len {
            let mut b = [0u8; 64];
            let n = file.read_at(&mut b, from).unwrap_or(0);
            if b[..n].iter().any(|&x| x != 0) {
                r.bad_regions.push(BadRegion {
                    segment: name.to_string(),
                    from,
                    to: *len,
                    fatal: false,
                    why: "unacknowledged tail: torn or stale bytes after the last valid record",
                });
            }
        }
    }
    for name in &reader.recovered.empty_open {
        r.bad_regions.push(BadRegion { segment: name.to_string(), from: 0, to: BLOCK, fatal: false, why: "segment started but its header never became durable (holds no frames)" });
    }
    Ok(r)
}
