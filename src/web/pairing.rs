//! Pairing without typing the secret: one-time links (`/pair?code=...`) that sign a browser in.
//!
//! - A signed-in device asks for one (`POST /api/pairing`): a random 80-bit code, valid for
//!   10 minutes, shown on the System page as a link and a QR code (SVG, drawn here with the
//!   `qrcodegen` crate) for a phone's camera.
//! - The first start offers one too, valid for 24 hours: blackbox logs the link when it
//!   generated the secret; on the appliance the boot script puts a code in
//!   `DATA/pairing.request` and the link into `blackbox.txt`, and blackbox takes the code at
//!   start (the request file is deleted).
//! - `GET /pair?code=...` (public) redeems a code once: a new session, its cookie, 303 to the
//!   dashboard. A used, expired or unknown code gets the sign-in page's refusal (no hint which).
//!
//! Codes are kept as SHA-256 hashes with their expiry in UTC seconds in `DATA/pairing` (0600,
//! replaced atomically), so a pending link survives a restart and the file never holds a code.

use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// A link made on the System page lasts this long.
pub const SHORT_TTL_S: i64 = 600;
/// The first start's link lasts this long.
pub const FIRST_TTL_S: i64 = 24 * 3600;
/// At most this many codes wait at once (the oldest goes).
const MAX_CODES: usize = 16;
/// Readable alphabet (no 0/O, 1/l/I): 32 symbols, 5 bits each.
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Code length: 16 symbols = 80 bits.
const CODE_LEN: usize = 16;

pub struct Pairing {
    path: PathBuf,
    codes: RefCell<Vec<([u8; 32], i64)>>,
}

fn now_s() -> i64 {
    crate::clock::now_utc_ns() / 1_000_000_000
}

fn hash(code: &str) -> [u8; 32] {
    Sha256::digest(code.trim().as_bytes()).into()
}

/// A new random code.
pub fn new_code() -> std::io::Result<String> {
    let mut raw = [0u8; CODE_LEN];
    rustix::rand::getrandom(&mut raw, rustix::rand::GetRandomFlags::empty()).map_err(std::io::Error::from)?;
    Ok(raw.iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect())
}

impl Pairing {
    /// Loads `DATA/pairing` (a damaged file is logged and starts empty: pairing links are a
    /// convenience, the secret always signs in) and takes `DATA/pairing.request` if present.
    pub fn load(data_dir: &Path) -> Pairing {
        let path = data_dir.join("pairing");
        let mut codes = Vec::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let parsed = line.split_once(' ').and_then(|(h, e)| {
                    let mut out = [0u8; 32];
                    if h.len() != 64 {
                        return None;
                    }
                    for (i, o) in out.iter_mut().enumerate() {
                        *o = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
                    }
                    Some((out, e.trim().parse::<i64>().ok()?))
                });
                match parsed {
                    Some(c) => codes.push(c),
                    None => log::warn!("{}: a damaged line skipped", path.display()),
                }
            }
        }
        let p = Pairing { path, codes: RefCell::new(codes) };
        let req = data_dir.join("pairing.request");
        if let Ok(code) = std::fs::read_to_string(&req) {
            let code = code.trim();
            if code.len() >= CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b)) {
                p.add(code, FIRST_TTL_S);
                log::info!("pairing: the first start's link (from the boot partition's blackbox.txt) works once, for 24 h");
            } else {
                log::warn!("{}: not a pairing code; ignored", req.display());
            }
            let _ = std::fs::remove_file(&req);
        }
        p
    }

    fn save(&self) {
        let mut text = String::new();
        for (h, e) in self.codes.borrow().iter() {
            for b in h {
                text.push_str(&format!("{b:02x}"));
            }
            text.push_str(&format!(" {e}\n"));
        }
        if let Err(e) = crate::config::write_atomic_mode(&self.path, text.as_bytes(), 0o600) {
            log::warn!("{}: cannot save the pairing codes: {e} (they last until the next start)", self.path.display());
        }
    }

    /// Keeps `code` for `ttl_s` seconds.
    pub fn add(&self, code: &str, ttl_s: i64) {
        let now = now_s();
        {
            let mut c = self.codes.borrow_mut();
            c.retain(|(_, e)| *e > now);
            while c.len() >= MAX_CODES {
                c.remove(0);
            }
            c.push((hash(code), now + ttl_s));
        }
        self.save();
    }

    /// A new code valid for `ttl_s` seconds.
    pub fn create(&self, ttl_s: i64) -> std::io::Result<String> {
        let code = new_code()?;
        self.add(&code, ttl_s);
        Ok(code)
    }

    /// Uses `code` up: true once, while it is valid.
    pub fn redeem(&self, code: &str) -> bool {
        let now = now_s();
        let h = hash(code);
        let found = {
            let mut c = self.codes.borrow_mut();
            let before = c.len();
            // Constant time per entry: every byte compared.
            let hit = c.iter().position(|(x, e)| *e > now && x.iter().zip(h.iter()).fold(0u8, |a, (p, q)| a | (p ^ q)) == 0);
            if let Some(i) = hit {
                c.remove(i);
            }
            c.retain(|(_, e)| *e > now);
            (hit.is_some(), c.len() != before)
        };
        if found.1 {
            self.save();
        }
        found.0
    }
}

/// The QR code of `text` as an SVG (dark modules on white, a 4-module quiet zone).
pub fn qr_svg(text: &str) -> Option<String> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).ok()?;
    let n = qr.size();
    let mut path = String::new();
    for y in 0..n {
        for x in 0..n {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + 4, y + 4));
            }
        }
    }
    let dim = n + 8;
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {dim} {dim}\" shape-rendering=\"crispEdges\"><rect width=\"{dim}\" height=\"{dim}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_signs_in_once_survives_a_restart_and_is_never_stored() {
        let d = tempfile::tempdir().unwrap();
        let p = Pairing::load(d.path());
        let code = p.create(SHORT_TTL_S).unwrap();
        assert_eq!(code.len(), CODE_LEN);
        let file = std::fs::read_to_string(d.path().join("pairing")).unwrap();
        assert!(!file.contains(&code), "only the hash is kept");
        // After a restart the code still works, once.
        let p = Pairing::load(d.path());
        assert!(!p.redeem("abcdefghijkmnpqr"), "an unknown code");
        assert!(p.redeem(&code));
        assert!(!p.redeem(&code), "used up");
        assert!(!Pairing::load(d.path()).redeem(&code), "used up across a restart too");
        // Expired codes don't work.
        p.add("expiredexpiredex", -1);
        assert!(!p.redeem("expiredexpiredex"));
    }

    #[test]
    fn the_first_start_takes_the_boot_scripts_code_and_deletes_the_request() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pairing.request"), "k7mzq2wx9pabcdef\n").unwrap();
        let p = Pairing::load(d.path());
        assert!(!d.path().join("pairing.request").exists());
        assert!(p.redeem("k7mzq2wx9pabcdef"));
        std::fs::write(d.path().join("pairing.request"), "short\n").unwrap();
        let _ = Pairing::load(d.path());
        assert!(!d.path().join("pairing.request").exists(), "a bad request is dropped too");
    }

    #[test]
    fn qr_codes_are_svg_with_a_quiet_zone() {
        let s = qr_svg("http://192.168.4.1/pair?code=k7mzq2wx9pabcdef").unwrap();
        assert!(s.starts_with("<svg") && s.contains("viewBox=\"0 0 37 37\"") || s.contains("viewBox=\"0 0 41 41\""), "{}", &s[..80]);
        assert!(s.matches('M').count() > 100);
    }
}
