//! RTSP authentication (RFC 2326 with RFC 2617/7616): Basic and Digest (MD5, with or without
//! `qop=auth`), answering the camera's `WWW-Authenticate` challenge.

use md5::{Digest, Md5};

/// A challenge we can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Digest { realm: String, nonce: String, opaque: Option<String>, qop_auth: bool },
}

/// Picks the best challenge among a response's `WWW-Authenticate` headers (Digest before Basic).
/// `None`: none we can answer (another scheme or another digest algorithm).
pub fn choose<'a>(headers: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for h in headers {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            basic = true;
        } else if scheme.eq_ignore_ascii_case("digest") {
            let p = params(rest);
            let get = |k: &str| p.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
            if get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("md5")) {
                continue;
            }
            let (Some(realm), Some(nonce)) = (get("realm"), get("nonce")) else { continue };
            let qop_auth = get("qop").is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")));
            return Some(Challenge::Digest { realm, nonce, opaque: get("opaque"), qop_auth });
        }
    }
    basic.then_some(Challenge::Basic)
}

/// `k=v, k="v", ...` (quoted values may hold commas).
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i] == b' ') {
            i += 1;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[k0..i].trim().to_string();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let val = if b.get(i) == Some(&b'"') {
            i += 1;
            let v0 = i;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            let v = s.get(v0..i.min(b.len())).unwrap_or("").replace("\\\"", "\"");
            i += 1;
            v
        } else {
            let v0 = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            s[v0..i].trim().to_string()
        };
        out.push((key, val));
    }
    out
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization` header value for `method` on `uri`. `nc` counts the requests made with
/// this nonce (from 1).
pub fn authorization(c: &Challenge, user: &str, pass: &str, method: &str, uri: &str, nc: u32) -> String {
    let cnonce = format!("{:016x}", crate::clock::now_mono_ns() ^ 0x9e37_79b9_7f4a_7c15);
    authorization_with(c, user, pass, method, uri, nc, &cnonce)
}

fn authorization_with(c: &Challenge, user: &str, pass: &str, method: &str, uri: &str, nc: u32, cnonce: &str) -> String {
    match c {
        Challenge::Basic => format!("Basic {}", crate::base64::encode(format!("{user}:{pass}").as_bytes())),
        Challenge::Digest { realm, nonce, opaque, qop_auth } => {
            let ha1 = md5_hex(&format!("{user}:{realm}:{pass}"));
            let ha2 = md5_hex(&format!("{method}:{uri}"));
            let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
            let mut h = format!("Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\"", q(user), q(realm), q(nonce), q(uri));
            if *qop_auth {
                let resp = md5_hex(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
                h.push_str(&format!(", response=\"{resp}\", qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\""));
            } else {
                h.push_str(&format!(", response=\"{}\"", md5_hex(&format!("{ha1}:{nonce}:{ha2}"))));
            }
            if let Some(o) = opaque {
                h.push_str(&format!(", opaque=\"{}\"", q(o)));
            }
            h.push_str(", algorithm=MD5");
            h
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_as_rfc_2617_computes_it() {
        // RFC 2617 3.5's example (its published response), and the same without qop (RFC 2069
        // style; the value from Python's hashlib).
        let q = choose(["Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\""].into_iter()).unwrap();
        let a = authorization_with(&q, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b");
        assert!(a.contains("response=\"6629fae49393a05397450978507c4ef1\""), "{a}");
        let c = choose(["Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""].into_iter()).unwrap();
        let a = authorization(&c, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1);
        assert!(a.contains("response=\"670fd8c2df070c60b045671b8b24ff02\""), "{a}");
        assert!(a.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        // Digest is preferred; Basic is taken when it is all there is; other algorithms are not.
        assert!(matches!(choose(["Basic realm=\"x\"", "Digest realm=\"r\", nonce=\"n\""].into_iter()), Some(Challenge::Digest { .. })));
        assert_eq!(choose(["Basic realm=\"x\""].into_iter()), Some(Challenge::Basic));
        assert_eq!(choose(["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"].into_iter()), None);
        assert_eq!(authorization(&Challenge::Basic, "user", "pass", "DESCRIBE", "rtsp://h/", 1), "Basic dXNlcjpwYXNz");
        let q = choose(["Digest realm=\"r\", nonce=\"n\", qop=\"auth,auth-int\""].into_iter()).unwrap();
        assert!(authorization(&q, "u", "p", "PLAY", "rtsp://h/", 2).contains("nc=00000002"));
    }
}
