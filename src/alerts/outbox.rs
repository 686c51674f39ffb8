//! `DATA/alerts/outbox`: alerts waiting to be delivered (docs/FORMAT.md, "Alerts"), a durable,
//! bounded journal. Lines `CRC32 RECORD` (CRC as in `events`):
//!
//! - `A id utc_ns kind title<TAB>body` — an alert (tabs and newlines in texts become spaces);
//! - `S id channel` — delivered on that channel (`webhook`, `email`).
//!
//! Each append is fdatasync'd before it counts. A torn or damaged line is skipped (a delivery
//! whose `S` line was lost is sent again: receivers drop duplicates by the alert's id). At most
//! [`MAX_PENDING`] alerts wait; beyond, the oldest waiting one is dropped and counted. The file
//! is rewritten (atomically) with only what still waits when it grows long.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const MAX_PENDING: usize = 64;
const COMPACT_LINES: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub id: u64,
    pub utc_ns: i64,
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Channels it was delivered on.
    pub sent: Vec<String>,
}

pub struct Outbox {
    path: PathBuf,
    file: File,
    pending: Vec<Alert>,
    next_id: u64,
    lines: usize,
    /// Alerts dropped because too many were waiting (since open).
    pub dropped: u64,
}

fn clean(s: &str) -> String {
    s.chars().map(|c| if c == '\t' || c == '\n' || c == '\r' { ' ' } else { c }).collect()
}

fn line(rec: &str) -> String {
    format!("{:08x} {rec}\n", crc32fast::hash(rec.as_bytes()))
}

impl Outbox {
    pub fn open(data: &Path) -> io::Result<Outbox> {
        let dir = data.join("alerts");
        fs::create_dir_all(&dir)?;
        let path = dir.join("outbox");
        let text = match fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut all: Vec<Alert> = Vec::new();
        let mut max_id = 0;
        let mut lines = 0;
        for l in text.split_terminator('\n') {
            lines += 1;
            let Some((crc, rec)) = l.split_once(' ') else { continue };
            if u32::from_str_radix(crc, 16).ok() != Some(crc32fast::hash(rec.as_bytes())) {
                continue;
            }
            let mut f = rec.splitn(5, ' ');
            match (f.next(), f.next()) {
                (Some("A"), Some(id)) => {
                    let (Ok(id), Some(Ok(utc)), Some(kind), Some(text)) = (id.parse::<u64>(), f.next().map(str::parse::<i64>), f.next(), f.next()) else { continue };
                    let (title, body) = text.split_once('\t').unwrap_or((text, ""));
                    max_id = max_id.max(id);
                    all.push(Alert { id, utc_ns: utc, kind: kind.into(), title: title.into(), body: body.into(), sent: Vec::new() });
                }
                (Some("S"), Some(id)) => {
                    if let (Ok(id), Some(ch)) = (id.parse::<u64>(), f.next())
                        && let Some(a) = all.iter_mut().find(|a| a.id == id)
                    {
                        a.sent.push(ch.to_string());
                    }
                }
                _ => {}
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if !text.is_empty() && !text.ends_with('\n') {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)?;
            file.sync_data()?;
        }
        Ok(Outbox { path, file, pending: all, next_id: max_id + 1, lines, dropped: 0 })
    }

    fn append(&mut self, rec: &str) -> io::Result<()> {
        self.file.write_all(line(rec).as_bytes())?;
        self.file.sync_data()?;
        self.lines += 1;
        Ok(())
    }

    /// Adds an alert; durable when this returns.
    pub fn push(&mut self, kind: &str, title: &str, body: &str, utc_ns: i64) -> io::Result<Alert> {
        let a = Alert { id: self.next_id, utc_ns, kind: clean(kind).replace(' ', "_"), title: clean(title), body: clean(body), sent: Vec::new() };
        self.append(&format!("A {} {} {} {}\t{}", a.id, a.utc_ns, a.kind, a.title, a.body))?;
        self.next_id += 1;
        self.pending.push(a.clone());
        Ok(a)
    }

    /// Records a delivery.
    pub fn mark_sent(&mut self, id: u64, channel: &str) -> io::Result<()> {
        self.append(&format!("S {id} {channel}"))?;
        if let Some(a) = self.pending.iter_mut().find(|a| a.id == id) {
            a.sent.push(channel.to_string());
        }
        Ok(())
    }

    /// Alerts not yet delivered on every one of `channels`, oldest first; drops the oldest
    /// beyond [`MAX_PENDING`] (counted, logged) and forgets delivered ones.
    pub fn waiting(&mut self, channels: &[&str]) -> Vec<Alert> {
        let done = |a: &Alert| !channels.is_empty() && channels.iter().all(|c| a.sent.iter().any(|s| s == c));
        self.pending.retain(|a| !done(a));
        while self.pending.len() > MAX_PENDING {
            let a = self.pending.remove(0);
            self.dropped += 1;
            log::warn!("alerts: too many waiting; alert {} ({}) dropped undelivered", a.id, a.title);
        }
        let _ = self.compact();
        self.pending.clone()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn compact(&mut self) -> io::Result<()> {
        if self.lines < COMPACT_LINES {
            return Ok(());
        }
        let mut text = String::new();
        for a in &self.pending {
            text.push_str(&line(&format!("A {} {} {} {}\t{}", a.id, a.utc_ns, a.kind, a.title, a.body)));
            for s in &a.sent {
                text.push_str(&line(&format!("S {} {s}", a.id)));
            }
        }
        crate::config::write_atomic_mode(&self.path, text.as_bytes(), 0o600)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.lines = text.lines().count();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_wait_until_sent_on_every_channel_and_survive_reopen() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(d.path()).unwrap();
        let a = o.push("event", "Impact 6.1 g", "at 12:00\tline\nbreak", 5).unwrap();
        let b = o.push("camera lost", "Camera lost", "", 6).unwrap();
        assert_eq!((a.id, b.id, a.kind.as_str(), a.body.as_str()), (1, 2, "event", "at 12:00 line break"));
        o.mark_sent(1, "webhook").unwrap();
        drop(o);
        let mut o = Outbox::open(d.path()).unwrap();
        let w = o.waiting(&["webhook", "email"]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].sent, vec!["webhook".to_string()]);
        assert_eq!(o.waiting(&["webhook"]).len(), 1, "alert 1 is done for a webhook-only setup");
        o.mark_sent(2, "webhook").unwrap();
        assert!(o.waiting(&["webhook"]).is_empty());
        let c = o.push("x", "y", "z", 7).unwrap();
        assert_eq!(c.id, 3, "ids go on");
        // a torn tail is cut
        drop(o);
        let p = d.path().join("alerts/outbox");
        let mut t = fs::read_to_string(&p).unwrap();
        t.push_str("0000 A 9");
        fs::write(&p, t).unwrap();
        let mut o = Outbox::open(d.path()).unwrap();
        assert_eq!(o.waiting(&["webhook"]).iter().map(|a| a.id).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn the_outbox_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(d.path()).unwrap();
        for i in 0..(MAX_PENDING + 10) {
            o.push("k", &format!("t{i}"), "", i as i64).unwrap();
        }
        let w = o.waiting(&["webhook"]);
        assert_eq!((w.len(), o.dropped), (MAX_PENDING, 10));
        assert_eq!(w[0].title, "t10", "the oldest went");
    }
}
