//! `DATA/sessions`: the dashboard's sessions, so a phone stays signed in across restarts and
//! power cuts (every ignition-off is one). One line per session: the SHA-256 of its token (hex;
//! the token itself is never written) and its expiry in UTC ns. Replaced atomically (temp,
//! fsync, rename, directory fsync; mode 0600 under the process umask) on every change. A
//! damaged file is logged and ignored: nobody is locked out, the secret still signs in.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const FILE: &str = "sessions";

/// The SHA-256 of a session token: what is stored and compared.
pub fn hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(data_dir: &Path) -> Store {
        Store { path: data_dir.join(FILE) }
    }

    /// The stored sessions (hash, expiry UTC ns) that have not expired at `now_utc`.
    pub fn load(&self, now_utc: i64) -> Vec<([u8; 32], i64)> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                log::warn!("{}: {e}; everyone signs in again", self.path.display());
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut bad = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match parse(line) {
                Some((h, exp)) if exp > now_utc => out.push((h, exp)),
                Some(_) => {}
                None => bad += 1,
            }
        }
        if bad > 0 {
            log::warn!("{}: {bad} damaged line(s) ignored (those phones sign in again)", self.path.display());
        }
        out
    }

    /// Replaces the file with `sessions` (hash, expiry UTC ns).
    pub fn save(&self, sessions: &[([u8; 32], i64)]) {
        let mut text = String::with_capacity(sessions.len() * 90);
        for (h, exp) in sessions {
            for b in h {
                text.push_str(&format!("{b:02x}"));
            }
            text.push_str(&format!(" {exp}\n"));
        }
        if let Err(e) = crate::config::write_atomic(&self.path, text.as_bytes()) {
            log::error!("{}: cannot save the sessions: {e} (they last until the next restart)", self.path.display());
        }
    }
}

fn parse(line: &str) -> Option<([u8; 32], i64)> {
    let (hex, exp) = line.trim().split_once(' ')?;
    if hex.len() != 64 {
        return None;
    }
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((h, exp.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_expire_and_survive_damage() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        assert!(s.load(0).is_empty());
        let a = (hash(b"token a"), 1_000);
        let b = (hash(b"token b"), 5_000);
        s.save(&[a, b]);
        assert_eq!(s.load(0), vec![a, b]);
        assert_eq!(s.load(2_000), vec![b], "an expired session is not loaded");
        let mut text = std::fs::read_to_string(d.path().join(FILE)).unwrap();
        text.insert_str(0, "zz garbage\n");
        std::fs::write(d.path().join(FILE), text).unwrap();
        assert_eq!(s.load(0), vec![a, b], "a damaged line loses only itself");
        assert!(!std::fs::read_to_string(d.path().join(FILE)).unwrap().contains(&format!("{:?}", b"token a")));
    }
}
