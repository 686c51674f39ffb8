//! Offload's durable state under `DATA/offload/` (docs/FORMAT.md, "Offload"):
//!
//! - `manifest`: append-only lines `CRC32 V name target size etag utc_ns`, one per segment
//!   copy that was **verified** (size and ETag read back from the target). Each append is
//!   fdatasync'd before the copy counts. A torn or damaged line is skipped: the copy is then
//!   verified again (HEAD) and the line written again, never assumed.
//! - `inflight`: the multipart upload in progress (`name key upload_id part_size`), replaced
//!   atomically before the first part is sent, removed once the copy is verified. After a
//!   power cut it names the upload to resume; the server's ListParts says which parts it has.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A verified copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub target: String,
    pub size: u64,
    pub etag: String,
    pub utc_ns: i64,
}

pub struct Manifest {
    path: PathBuf,
    file: File,
    /// Segment name → its verified copies' targets.
    entries: HashMap<String, Vec<Verified>>,
    lines: usize,
}

/// Rewritten compactly beyond this many lines (keeping the segments that still exist).
const COMPACT_LINES: usize = 50_000;

fn dir(data: &Path) -> PathBuf {
    data.join("offload")
}

fn line_of(name: &str, v: &Verified) -> String {
    let rec = format!("V {name} {} {} {} {}", v.target, v.size, v.etag, v.utc_ns);
    format!("{:08x} {rec}\n", crc32fast::hash(rec.as_bytes()))
}

fn parse_line(line: &str) -> Option<(String, Verified)> {
    let (crc, rec) = line.split_once(' ')?;
    if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(rec.as_bytes()) {
        return None;
    }
    let f: Vec<&str> = rec.split(' ').collect();
    if f.len() != 6 || f[0] != "V" {
        return None;
    }
    Some((f[1].to_string(), Verified { target: f[2].to_string(), size: f[3].parse().ok()?, etag: f[4].to_string(), utc_ns: f[5].parse().ok()? }))
}

impl Manifest {
    pub fn open(data: &Path) -> io::Result<Manifest> {
        let d = dir(data);
        fs::create_dir_all(&d)?;
        let _ = fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let path = d.join("manifest");
        let text = match fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut entries: HashMap<String, Vec<Verified>> = HashMap::new();
        let (mut lines, mut bad) = (0, 0);
        for l in text.split_terminator('\n') {
            lines += 1;
            match parse_line(l) {
                Some((name, v)) => {
                    let e = entries.entry(name).or_default();
                    e.retain(|x| x.target != v.target);
                    e.push(v);
                }
                None => bad += 1,
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if !text.is_empty() && !text.ends_with('\n') {
            // A torn last line: cut it off so the next record starts on its own line.
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)?;
            file.sync_data()?;
            bad -= 1;
        }
        if bad > 0 {
            log::warn!("{}: {bad} damaged line(s) skipped (those copies will be verified again)", path.display());
        }
        Ok(Manifest { path, file, entries, lines })
    }

    /// The verified copy of `name` at `target`, if any.
    pub fn get(&self, name: &str, target: &str) -> Option<&Verified> {
        self.entries.get(name)?.iter().find(|v| v.target == target)
    }

    /// Whether `name` has a verified copy anywhere.
    pub fn any(&self, name: &str) -> bool {
        self.entries.get(name).is_some_and(|v| !v.is_empty())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a verified copy; durable when this returns.
    pub fn add(&mut self, name: &str, v: Verified) -> io::Result<()> {
        if v.target.contains([' ', '\n']) || v.etag.contains([' ', '\n']) || name.contains([' ', '\n']) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "manifest fields can't hold spaces"));
        }
        self.file.write_all(line_of(name, &v).as_bytes())?;
        self.file.sync_data()?;
        self.lines += 1;
        let e = self.entries.entry(name.to_string()).or_default();
        e.retain(|x| x.target != v.target);
        e.push(v);
        Ok(())
    }

    /// Forgets segments that no longer exist and rewrites the file when it has grown long.
    pub fn compact(&mut self, exists: impl Fn(&str) -> bool) -> io::Result<()> {
        if self.lines < COMPACT_LINES {
            return Ok(());
        }
        self.entries.retain(|name, _| exists(name));
        let mut text = String::new();
        for (name, vs) in &self.entries {
            for v in vs {
                text.push_str(&line_of(name, v));
            }
        }
        crate::config::write_atomic_mode(&self.path, text.as_bytes(), 0o600)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.lines = self.entries.values().map(Vec::len).sum();
        Ok(())
    }
}

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inflight {
    pub name: String,
    pub key: String,
    pub upload_id: String,
    pub part_size: u64,
}

impl Inflight {
    fn path(data: &Path) -> PathBuf {
        dir(data).join("inflight")
    }

    pub fn load(data: &Path) -> Option<Inflight> {
        let text = fs::read_to_string(Self::path(data)).ok()?;
        let line = text.lines().next()?;
        let (crc, rec) = line.split_once(' ')?;
        if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(rec.as_bytes()) {
            log::warn!("offload: the in-flight record is damaged; the upload starts again");
            return None;
        }
        let f: Vec<&str> = rec.split(' ').collect();
        if f.len() != 4 {
            return None;
        }
        Some(Inflight { name: f[0].into(), key: f[1].into(), upload_id: f[2].into(), part_size: f[3].parse().ok()? })
    }

    /// Replaces the record atomically (temp, fsync, rename, directory fsync).
    pub fn save(&self, data: &Path) -> io::Result<()> {
        for s in [&self.name, &self.key, &self.upload_id] {
            if s.contains([' ', '\n']) || s.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("in-flight field {s:?} can't be stored")));
            }
        }
        let rec = format!("{} {} {} {}", self.name, self.key, self.upload_id, self.part_size);
        let text = format!("{:08x} {rec}\n", crc32fast::hash(rec.as_bytes()));
        fs::create_dir_all(dir(data))?;
        crate::config::write_atomic_mode(&Self::path(data), text.as_bytes(), 0o600)
    }

    pub fn clear(data: &Path) -> io::Result<()> {
        match fs::remove_file(Self::path(data)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => File::open(dir(data)).and_then(|d| d.sync_all()).or(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(target: &str) -> Verified {
        Verified { target: target.into(), size: 10, etag: "abc-2".into(), utc_ns: 5 }
    }

    #[test]
    fn manifest_survives_reopen_torn_tail_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let mut m = Manifest::open(d.path()).unwrap();
        m.add("a.seg", v("s3://h/b")).unwrap();
        m.add("b.seg", v("s3://h/b")).unwrap();
        drop(m);
        let p = d.path().join("offload/manifest");
        let mut text = fs::read_to_string(&p).unwrap();
        // damage the first line, tear a third
        text.replace_range(0..1, if text.starts_with('0') { "1" } else { "0" });
        text.push_str("1234 V c.seg");
        fs::write(&p, &text).unwrap();
        let mut m = Manifest::open(d.path()).unwrap();
        assert!(m.get("a.seg", "s3://h/b").is_none());
        assert_eq!(m.get("b.seg", "s3://h/b"), Some(&v("s3://h/b")));
        assert!(m.get("b.seg", "s3://other/b").is_none());
        assert!(!m.any("c.seg"));
        m.add("c.seg", v("s3://h/b")).unwrap();
        let m = Manifest::open(d.path()).unwrap();
        assert!(m.any("c.seg") && m.any("b.seg") && !m.any("a.seg"));
    }

    #[test]
    fn inflight_round_trip() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Inflight::load(d.path()), None);
        let i = Inflight { name: "x.seg".into(), key: "p/dev/2026-12-05/x.seg".into(), upload_id: "u1".into(), part_size: 8 << 20 };
        i.save(d.path()).unwrap();
        assert_eq!(Inflight::load(d.path()), Some(i));
        Inflight::clear(d.path()).unwrap();
        assert_eq!(Inflight::load(d.path()), None);
        Inflight::clear(d.path()).unwrap();
    }
}
