//! Strict HTTP/1.1 framing, checked in front of picoserve's parser.
//!
//! picoserve is lenient: it ignores `Transfer-Encoding`, takes the first of several
//! `Content-Length`s, accepts `+18` as a length and strips folded lines and NUL bytes. Behind
//! any proxy that is request smuggling. [`Framing`] watches every byte the connection reads
//! (request head, then exactly `Content-Length` body bytes, then the next head) and refuses,
//! before picoserve has seen a complete head:
//! - `Transfer-Encoding` (any value): 501; chunked bodies are not implemented.
//! - a second `Content-Length`, or one that is not 1 to 19 ASCII digits: 400.
//! - obs-fold (a header line starting with space or tab), NUL or other control bytes, a bare
//!   CR or LF, a header line without a `name:`, whitespace before the colon: 400.
//! - a request line that is not `METHOD SP target SP HTTP/1.x`, or an HTTP/1.1 request
//!   without exactly one `Host`: 400.
//!
//! It also makes `HEAD` a `GET` for the router: the request line's `HEAD` is rewritten in
//! place to ` GET` (same length; picoserve splits the line on whitespace; a method that only
//! starts like `HEAD` comes out as some other unknown method, never `GET`) and the request is
//! queued as head-only, so the connection sends the response's head without its body
//! (src/web/conn.rs). Every route then answers `HEAD` exactly like `GET`.
//!
//! It needs no allocation: a short copy of the current line (enough for the names and values
//! it checks) and a few counters.

/// Refusal of a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400 with this reason.
    Bad(&'static str),
    /// 501: `Transfer-Encoding`.
    NotImplemented,
}

impl Refusal {
    /// The whole response (the connection is closed after it).
    pub fn response(self) -> &'static [u8] {
        match self {
            Refusal::NotImplemented => {
                b"HTTP/1.1 501 Not Implemented\r\nContent-Type: application/json\r\nContent-Length: 52\r\nConnection: close\r\n\r\n{\"error\":\"Transfer-Encoding is not supported (501)\"}"
            }
            Refusal::Bad(_) => {
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 34\r\nConnection: close\r\n\r\n{\"error\":\"malformed HTTP request\"}"
            }
        }
    }
}

/// Where the connection is in its request stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Between requests: no byte of the next request yet.
    Idle,
    /// Inside a request head.
    Head,
    /// Inside a body: this many bytes left.
    Body(u64),
}

const LINE_KEEP: usize = 64;

/// The framing state of one connection.
#[derive(Debug, Clone)]
pub struct Framing {
    phase: Phase,
    line: [u8; LINE_KEEP],
    line_len: usize,
    /// Line number within the head (0: request line).
    line_no: u32,
    prev_cr: bool,
    /// The last 9 bytes of the current line (for the request line's version).
    tail: [u8; 9],
    content_length: Option<u64>,
    transfer_encoding: bool,
    hosts: u32,
    http11: bool,
    /// The current request line starts with `HEAD `.
    head: bool,
    /// One bit per complete request head not yet routed, oldest in bit 0: was it `HEAD`.
    heads: u32,
    heads_len: u8,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            phase: Phase::Idle,
            line: [0; LINE_KEEP],
            line_len: 0,
            line_no: 0,
            prev_cr: false,
            tail: [0; 9],
            content_length: None,
            transfer_encoding: false,
            hosts: 0,
            http11: false,
            head: false,
            heads: 0,
            heads_len: 0,
        }
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Framing {
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the oldest request head not yet routed was a `HEAD` (rewritten to `GET`);
    /// called once per request by the router's first layer.
    pub fn take_head(&mut self) -> bool {
        if self.heads_len == 0 {
            return false;
        }
        let h = self.heads & 1 != 0;
        self.heads >>= 1;
        self.heads_len -= 1;
        h
    }

    /// Feeds bytes read from the client. `Ok(true)` when a request head ended inside them.
    /// The bytes of a request line's `HEAD` are rewritten to ` GET` (see the module doc).
    pub fn feed(&mut self, data: &mut [u8]) -> Result<bool, Refusal> {
        let mut ended = false;
        let mut i = 0;
        while i < data.len() {
            match self.phase {
                Phase::Body(left) => {
                    let take = (left).min((data.len() - i) as u64);
                    i += take as usize;
                    self.phase = if left == take { Phase::Idle } else { Phase::Body(left - take) };
                }
                Phase::Idle => {
                    // RFC 9112 2.2: ignore empty lines before a request line.
                    if matches!(data[i], b'\r' | b'\n') {
                        i += 1;
                        continue;
                    }
                    *self = Framing { phase: Phase::Head, heads: self.heads, heads_len: self.heads_len, ..Framing::default() };
                }
                Phase::Head => {
                    let b = data[i];
                    // `HEAD` -> ` GET`, byte by byte as it passes (a head may arrive in pieces).
                    let k = self.line_len;
                    if self.line_no == 0 && k < 4 && b == b"HEAD"[k] && self.line[..k] == b"HEAD"[..k] {
                        data[i] = b" GET"[k];
                    }
                    if self.byte(b)? {
                        ended = true;
                    }
                    i += 1;
                }
            }
        }
        Ok(ended)
    }

    /// One head byte; `Ok(true)` at the end of the head.
    fn byte(&mut self, b: u8) -> Result<bool, Refusal> {
        if self.prev_cr {
            self.prev_cr = false;
            if b != b'\n' {
                return Err(Refusal::Bad("bare CR"));
            }
            return self.end_line();
        }
        match b {
            b'\r' => {
                self.prev_cr = true;
                Ok(false)
            }
            b'\n' => Err(Refusal::Bad("bare LF")),
            0 => Err(Refusal::Bad("NUL byte")),
            b'\t' => {
                self.push(b);
                Ok(false)
            }
            c if c < 0x20 || c == 0x7f => Err(Refusal::Bad("control byte")),
            c => {
                self.push(c);
                Ok(false)
            }
        }
    }

    fn push(&mut self, b: u8) {
        if self.line_len < LINE_KEEP {
            self.line[self.line_len] = b;
        }
        self.line_len += 1;
        self.tail.copy_within(1.., 0);
        self.tail[8] = b;
    }

    fn end_line(&mut self) -> Result<bool, Refusal> {
        let n = self.line_len.min(LINE_KEEP);
        let line = self.line;
        let line = &line[..n];
        let full_len = self.line_len;
        self.line_len = 0;
        let no = self.line_no;
        self.line_no += 1;
        if no == 0 {
            return self.request_line(line, full_len).map(|()| false);
        }
        if full_len == 0 {
            return self.end_head().map(|()| true);
        }
        if matches!(line[0], b' ' | b'\t') {
            return Err(Refusal::Bad("obs-fold"));
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            // A name longer than we keep cannot be one we check; it still needs a token.
            return if full_len > LINE_KEEP && line.iter().all(|&c| is_tchar(c)) {
                Ok(false)
            } else {
                Err(Refusal::Bad("header line without a name"))
            };
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err(Refusal::Bad("bad header name"));
        }
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            if self.content_length.is_some() {
                return Err(Refusal::Bad("duplicate Content-Length"));
            }
            if full_len > LINE_KEEP || value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                return Err(Refusal::Bad("malformed Content-Length"));
            }
            let v = value.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
            self.content_length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
        }
        Ok(false)
    }

    fn request_line(&mut self, line: &[u8], full_len: usize) -> Result<(), Refusal> {
        let Some(sp) = line.iter().position(|&c| c == b' ') else {
            return Err(Refusal::Bad("bad request line"));
        };
        if sp == 0 || !line[..sp].iter().all(|&c| is_tchar(c)) {
            return Err(Refusal::Bad("bad method"));
        }
        let version = &self.tail[..];
        if full_len < sp + 1 + 1 + 9 || version[0] != b' ' {
            return Err(Refusal::Bad("bad request line"));
        }
        self.http11 = match &version[1..] {
            b"HTTP/1.1" => true,
            b"HTTP/1.0" => false,
            _ => return Err(Refusal::Bad("unsupported HTTP version")),
        };
        if line.get(sp + 1) == Some(&b' ') {
            return Err(Refusal::Bad("empty target"));
        }
        self.head = &line[..sp] == b"HEAD";
        // Exactly three parts: no space inside the target (that we can see).
        let kept_target = &line[sp + 1..];
        let spaces = kept_target.iter().filter(|&&c| c == b' ').count();
        if full_len <= LINE_KEEP && spaces != 1 {
            return Err(Refusal::Bad("bad request line"));
        }
        Ok(())
    }

    fn end_head(&mut self) -> Result<(), Refusal> {
        if self.transfer_encoding {
            return Err(Refusal::NotImplemented);
        }
        if self.hosts > 1 || (self.http11 && self.hosts == 0) {
            return Err(Refusal::Bad("Host missing or repeated"));
        }
        if self.heads_len < 32 {
            self.heads |= u32::from(self.head) << self.heads_len;
            self.heads_len += 1;
        }
        self.phase = match self.content_length {
            Some(n) if n > 0 => Phase::Body(n),
            _ => Phase::Idle,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(req: &[u8]) -> Result<bool, Refusal> {
        Framing::default().feed(&mut req.to_vec())
    }

    #[test]
    fn good_requests_pass_whole_or_byte_by_byte() {
        let reqs: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /health HTTP/1.0\r\n\r\n",
            b"\r\nGET /a?b=c%20d HTTP/1.1\r\nHost: a:80\r\nX-Long: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n",
        ];
        for r in reqs {
            assert_eq!(check(r), Ok(true), "{}", String::from_utf8_lossy(r));
            let mut f = Framing::default();
            let mut ended = false;
            for b in r {
                ended |= f.feed(&mut [*b]).unwrap();
            }
            assert!(ended);
            assert_eq!(f.phase(), Phase::Idle);
        }
    }

    #[test]
    fn head_becomes_get_for_the_router_and_is_queued_as_head_only() {
        // Whole, byte by byte, and pipelined behind a GET.
        let mut f = Framing::default();
        let mut r = b"HEAD /api/status HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        assert_eq!(f.feed(&mut r), Ok(true));
        assert!(r.starts_with(b" GET /api/status HTTP/1.1\r\n"), "{}", String::from_utf8_lossy(&r));
        assert!(f.take_head());
        assert!(!f.take_head());
        let mut f = Framing::default();
        let mut out = Vec::new();
        for &b in b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nHEAD /b HTTP/1.1\r\nHost: a\r\n\r\n" {
            let mut one = [b];
            f.feed(&mut one).unwrap();
            out.push(one[0]);
        }
        assert_eq!(&out[..], &b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n GET /b HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
        assert_eq!((f.take_head(), f.take_head()), (false, true));
        // Other methods are left alone (a method starting like HEAD is garbled, never GET).
        for m in [&b"POST"[..], b"HEADER", b"HEA", b"HE", b"H", b"HEADGET"] {
            let mut r = [m, b" / HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
            let _ = Framing::default().feed(&mut r);
            let words: Vec<&[u8]> = r.split(|c| c.is_ascii_whitespace()).filter(|w| !w.is_empty()).collect();
            assert_ne!(words[0], b"GET", "{}", String::from_utf8_lossy(&r));
        }
    }

    #[test]
    fn refusals_are_well_framed_responses() {
        for r in [Refusal::NotImplemented, Refusal::Bad("x")] {
            let text = std::str::from_utf8(r.response()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let len: usize = head.split("Content-Length: ").nth(1).unwrap().split("\r\n").next().unwrap().parse().unwrap();
            assert_eq!(len, body.len(), "{text}");
        }
    }

    #[test]
    fn a_body_is_skipped_by_its_length() {
        let mut f = Framing::default();
        assert_eq!(f.feed(&mut b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n".to_vec()), Ok(true));
        assert_eq!(f.phase(), Phase::Body(10));
        // Body bytes are not checked as a head, whatever they hold.
        assert_eq!(f.feed(&mut b"\0\0\r\n\nTrans".to_vec()), Ok(false));
        assert_eq!(f.phase(), Phase::Idle);
    }

    #[test]
    fn smuggling_and_sloppy_framing_are_refused() {
        let bad: [(&[u8], Refusal); 14] = [
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::NotImplemented),
            (b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: identity\r\n\r\n", Refusal::NotImplemented),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Refusal::Bad("duplicate Content-Length")),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +18\r\n\r\n", Refusal::Bad("malformed Content-Length")),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n", Refusal::Bad("malformed Content-Length")),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", Refusal::Bad("malformed Content-Length")),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", Refusal::Bad("obs-fold")),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", Refusal::Bad("NUL byte")),
            (b"GET / HTTP/1.1\nHost: a\n\n", Refusal::Bad("bare LF")),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", Refusal::Bad("bad header name")),
            (b"GET / HTTP/1.1\r\n\r\n", Refusal::Bad("Host missing or repeated")),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Refusal::Bad("Host missing or repeated")),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Refusal::Bad("unsupported HTTP version")),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Refusal::Bad("empty target")),
        ];
        for (r, want) in bad {
            assert_eq!(check(r), Err(want), "{}", String::from_utf8_lossy(r));
        }
        for r in [&b"GET /\r\n\r\n"[..], b"GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", b"nospace\r\n", b"GET / HTTP/1.1\r\nnocolon\r\n\r\n"] {
            assert!(check(r).is_err(), "{}", String::from_utf8_lossy(r));
        }
    }
}
