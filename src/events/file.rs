//! `DATA/events`: the event journal (docs/FORMAT.md, "Events"). Append-only text lines, each
//! `CRC32 RECORD` with the CRC (8 hex digits, crc32fast) over `RECORD`:
//!
//! - `E id kind utc_ns mono_ns peak_g|- from_utc to_utc` — an event;
//! - `W id from_utc to_utc peak_g|- repeats` — its window extended by a repeated trigger;
//! - `X id` — unlocked by the owner.
//!
//! Every append is `fdatasync`ed before the caller hears of it. At load a line whose CRC or
//! syntax fails is skipped: a torn last line is what a power cut leaves (cut off, not logged
//! as damage); one in the middle is logged. The journal is rewritten compactly (temp + fsync + rename) when
//! it holds many more lines than events.

use super::{Event, Kind};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Events kept in the journal; the oldest unlocked ones are dropped beyond it.
pub const MAX_EVENTS: usize = 10_000;

pub struct Events {
    path: PathBuf,
    file: File,
    list: Vec<Event>,
    lines: usize,
    next_id: u64,
}

impl Events {
    pub const FILE: &'static str = "events";

    /// Opens (creating) `DATA/events` and reads it.
    pub fn open(data_dir: &Path) -> io::Result<Events> {
        let path = data_dir.join(Self::FILE);
        let text = match fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let (list, lines, bad) = parse(&text);
        if bad > 0 {
            log::warn!("{}: {bad} damaged line(s) skipped", path.display());
        }
        let next_id = list.iter().map(|e| e.id).max().map_or(1, |m| m + 1);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if !text.is_empty() && !text.ends_with('\n') {
            // A torn last line (a power cut mid-append): cut it off, so the next record starts
            // on a line of its own and the torn one is not read as damage later.
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)?;
            file.sync_data()?;
        }
        Ok(Events { path, file, list, lines, next_id })
    }

    pub fn all(&self) -> &[Event] {
        &self.list
    }

    /// The windows of the events still locked (to be protected at start).
    pub fn locked_ranges(&self) -> Vec<(i64, i64)> {
        self.list.iter().filter(|e| e.locked).map(|e| (e.from_utc, e.to_utc)).collect()
    }

    fn append(&mut self, record: &str) -> io::Result<()> {
        let line = format!("{:08x} {record}\n", crc32fast::hash(record.as_bytes()));
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.lines += 1;
        Ok(())
    }

    /// A new event, or the last one extended when `utc` falls inside its (locked) window.
    pub fn trigger(&mut self, kind: Kind, utc: i64, mono: u64, peak_g: Option<f32>, from: i64, to: i64) -> io::Result<Event> {
        if let Some(last) = self.list.last().copied()
            && last.locked
            && utc >= last.utc_ns
            && utc <= last.to_utc
        {
            let peak = match (last.peak_g, peak_g) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let e = Event { to_utc: last.to_utc.max(to), from_utc: last.from_utc.min(from), peak_g: peak, repeats: last.repeats + 1, ..last };
            self.append(&format!("W {} {} {} {} {}", e.id, e.from_utc, e.to_utc, peak_text(e.peak_g), e.repeats))?;
            if let Some(x) = self.list.last_mut() {
                *x = e;
            }
            return Ok(e);
        }
        let e = Event { id: self.next_id, kind, utc_ns: utc, mono_ns: mono, peak_g, from_utc: from, to_utc: to, repeats: 0, locked: true };
        self.append(&format!("E {} {} {} {} {} {} {}", e.id, kind.name(), utc, mono, peak_text(peak_g), from, to))?;
        self.next_id += 1;
        self.list.push(e);
        self.compact_if_needed();
        Ok(e)
    }

    /// Unlocks `id`. `Ok(None)`: no such event.
    pub fn unlock(&mut self, id: u64) -> io::Result<Option<Event>> {
        let Some(i) = self.list.iter().position(|e| e.id == id) else { return Ok(None) };
        if self.list[i].locked {
            self.append(&format!("X {id}"))?;
            self.list[i].locked = false;
        }
        Ok(Some(self.list[i]))
    }

    /// Forgets every event (the card was erased): the journal is replaced by an empty one,
    /// atomically. Ids go on from where they were.
    pub fn clear(&mut self) -> io::Result<()> {
        crate::config::write_atomic(&self.path, b"")?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.list.clear();
        self.lines = 0;
        Ok(())
    }

    /// Beyond [`MAX_EVENTS`] the oldest unlocked events go; the journal is rewritten when it
    /// has twice as many lines as events.
    fn compact_if_needed(&mut self) {
        while self.list.len() > MAX_EVENTS {
            match self.list.iter().position(|e| !e.locked) {
                Some(i) => {
                    self.list.remove(i);
                }
                None => break,
            }
        }
        if self.lines <= 2 * self.list.len() + 64 {
            return;
        }
        let mut text = String::new();
        for e in &self.list {
            for r in records(e) {
                text.push_str(&format!("{:08x} {r}\n", crc32fast::hash(r.as_bytes())));
            }
        }
        match crate::config::write_atomic(&self.path, text.as_bytes()).and_then(|_| OpenOptions::new().append(true).open(&self.path)) {
            Ok(f) => {
                self.file = f;
                self.lines = text.lines().count();
            }
            Err(e) => log::warn!("{}: compacting failed: {e} (the journal goes on growing)", self.path.display()),
        }
    }
}

fn peak_text(p: Option<f32>) -> String {
    p.map_or("-".to_string(), |g| format!("{g:.2}"))
}

/// The records that rebuild `e` on their own.
fn records(e: &Event) -> Vec<String> {
    let mut v = vec![format!("E {} {} {} {} {} {} {}", e.id, e.kind.name(), e.utc_ns, e.mono_ns, peak_text(e.peak_g), e.from_utc, e.to_utc)];
    if e.repeats > 0 {
        v.push(format!("W {} {} {} {} {}", e.id, e.from_utc, e.to_utc, peak_text(e.peak_g), e.repeats));
    }
    if !e.locked {
        v.push(format!("X {}", e.id));
    }
    v
}

/// Events from the journal's text: (events in id order, lines, damaged lines other than a torn
/// last one).
pub fn parse(text: &str) -> (Vec<Event>, usize, usize) {
    let mut list: Vec<Event> = Vec::new();
    let mut bad = 0;
    let n = text.lines().count();
    for (i, line) in text.lines().enumerate() {
        let torn_tail = i + 1 == n && !text.ends_with('\n');
        match record(line) {
            Some(r) => apply(&mut list, r),
            None if line.trim().is_empty() || torn_tail => {}
            None => bad += 1,
        }
    }
    list.sort_by_key(|e| e.id);
    (list, n, bad)
}

enum Rec {
    New(Event),
    Window(u64, i64, i64, Option<f32>, u32),
    Unlock(u64),
}

fn record(line: &str) -> Option<Rec> {
    let (crc, rec) = line.split_once(' ')?;
    if crc.len() != 8 || u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(rec.as_bytes()) {
        return None;
    }
    let w: Vec<&str> = rec.split(' ').collect();
    let peak = |s: &str| if s == "-" { Some(None) } else { s.parse::<f32>().ok().filter(|g| g.is_finite()).map(Some) };
    match w.as_slice() {
        ["E", id, kind, utc, mono, pk, from, to] => Some(Rec::New(Event {
            id: id.parse().ok()?,
            kind: Kind::from_name(kind)?,
            utc_ns: utc.parse().ok()?,
            mono_ns: mono.parse().ok()?,
            peak_g: peak(pk)?,
            from_utc: from.parse().ok()?,
            to_utc: to.parse().ok()?,
            repeats: 0,
            locked: true,
        })),
        ["W", id, from, to, pk, rep] => Some(Rec::Window(id.parse().ok()?, from.parse().ok()?, to.parse().ok()?, peak(pk)?, rep.parse().ok()?)),
        ["X", id] => Some(Rec::Unlock(id.parse().ok()?)),
        _ => None,
    }
}

fn apply(list: &mut Vec<Event>, r: Rec) {
    match r {
        Rec::New(e) => {
            if !list.iter().any(|x| x.id == e.id) {
                list.push(e);
            }
        }
        Rec::Window(id, from, to, peak, rep) => {
            if let Some(e) = list.iter_mut().find(|e| e.id == id) {
                e.from_utc = from;
                e.to_utc = to;
                e.peak_g = peak;
                e.repeats = rep;
            }
        }
        Rec::Unlock(id) => {
            if let Some(e) = list.iter_mut().find(|e| e.id == id) {
                e.locked = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_reopen_and_a_torn_or_damaged_line_loses_only_itself() {
        let d = tempfile::tempdir().unwrap();
        let mut ev = Events::open(d.path()).unwrap();
        let a = ev.trigger(Kind::Impact, 1_000, 5, Some(3.25), 0, 2_000).unwrap();
        // Inside a's window: extends it.
        let a2 = ev.trigger(Kind::Impact, 1_500, 6, Some(6.0), 100, 3_000).unwrap();
        assert_eq!((a2.id, a2.to_utc, a2.peak_g, a2.repeats), (a.id, 3_000, Some(6.0), 1));
        let b = ev.trigger(Kind::Button, 10_000, 7, None, 9_000, 11_000).unwrap();
        assert_ne!(a.id, b.id);
        ev.unlock(a.id).unwrap().unwrap();
        assert!(ev.unlock(999).unwrap().is_none());
        let want = ev.all().to_vec();
        drop(ev);
        let again = Events::open(d.path()).unwrap();
        assert_eq!(again.all(), &want[..]);
        assert_eq!(again.locked_ranges(), vec![(9_000, 11_000)]);
        drop(again);
        // A power cut mid-append: a torn last line. Everything before it stays; the next
        // record starts on its own line.
        let path = d.path().join(Events::FILE);
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("1234abcd E 9 impact 5");
        fs::write(&path, &text).unwrap();
        let mut ev = Events::open(d.path()).unwrap();
        assert_eq!(ev.all(), &want[..]);
        let c = ev.trigger(Kind::Motion, 50_000, 8, None, 40_000, 60_000).unwrap();
        drop(ev);
        let ev = Events::open(d.path()).unwrap();
        assert_eq!(ev.all().len(), 3);
        assert_eq!(ev.all()[2], c);
        drop(ev);
        // A flipped byte in the first record: that event is lost, the others are not.
        let mut b = fs::read(&path).unwrap();
        b[12] ^= 0x01;
        fs::write(&path, &b).unwrap();
        let (list, _, bad) = parse(&String::from_utf8_lossy(&b));
        assert_eq!(bad, 1);
        assert!(list.iter().any(|e| e.id == b_id(&want)) && list.iter().any(|e| e.id == c.id));
    }

    fn b_id(want: &[Event]) -> u64 {
        want.iter().find(|e| e.kind == Kind::Button).unwrap().id
    }
}
