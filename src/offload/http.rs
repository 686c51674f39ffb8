//! A small blocking HTTP/1.1 client for the offload thread: one connection per request, a
//! deadline on every read and write, bodies sent in slices under a bandwidth limit, responses
//! read with a size bound (S3 answers are small XML documents).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            // A server that closes without close_notify: the end of the body (its length is
            // checked by the caller when the response has one).
            Conn::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Where requests go: `https://host[:port]` or `http://host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host` or `host:port` as it goes into the `Host` header.
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Endpoint {
    /// Parses `http://host[:port]` or `https://host[:port]` (a trailing `/` allowed, no path).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{url:?}: the endpoint must start with https:// or http://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!("{url:?}: give the endpoint as scheme://host[:port] only (the bucket is a setting of its own)"));
        }
        let (port, explicit) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => match p.parse::<u16>() {
                Ok(p) if p > 0 && !h.is_empty() => (p, true),
                _ => return Err(format!("{url:?}: bad port")),
            },
            _ => (if tls { 443 } else { 80 }, false),
        };
        let _ = explicit;
        Ok(Endpoint { host: rest.to_string(), port, tls })
    }

    /// The host name without the port.
    pub fn hostname(&self) -> &str {
        match self.host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => h,
            _ => &self.host,
        }
    }
}

/// Sleeps to keep a byte stream at or under `kbps` kilobits per second (0: no limit).
pub struct RateLimit {
    pub kbps: u32,
    window_start: Option<Instant>,
    window_bytes: u64,
}

impl RateLimit {
    pub fn new(kbps: u32) -> RateLimit {
        RateLimit { kbps, window_start: None, window_bytes: 0 }
    }

    /// Accounts `n` bytes just sent; sleeps when ahead of the limit.
    pub fn sent(&mut self, n: usize) {
        if self.kbps == 0 {
            return;
        }
        let now = Instant::now();
        let start = *self.window_start.get_or_insert(now);
        self.window_bytes += n as u64;
        let bytes_per_s = u64::from(self.kbps) * 1000 / 8;
        let due = Duration::from_secs_f64(self.window_bytes as f64 / bytes_per_s.max(1) as f64);
        let spent = now.duration_since(start);
        if due > spent {
            std::thread::sleep(due - spent);
        }
        if spent > Duration::from_secs(10) {
            // A fresh window now and then: an idle spell doesn't buy a burst later.
            self.window_start = Some(Instant::now());
            self.window_bytes = 0;
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The most a response's head or body may hold.
const MAX_HEAD: usize = 64 << 10;
const MAX_BODY: usize = 8 << 20;
/// The slice a body is written in (the bandwidth limit acts per slice).
const SLICE: usize = 64 << 10;

/// Sends one request (`path` already encoded, with its query) and reads the answer.
/// `headers` must not hold Host, Content-Length or Connection (added here).
#[allow(clippy::too_many_arguments)]
pub fn send(
    ep: &Endpoint,
    tls: Option<&Arc<rustls::ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    rate: &mut RateLimit,
    timeout: Duration,
) -> io::Result<Response> {
    let addr = (ep.hostname(), ep.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", ep.hostname())))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    tcp.set_nodelay(true)?;
    let mut s = match (ep.tls, tls) {
        (false, _) => Conn::Plain(tcp),
        (true, Some(cfg)) => {
            let name = rustls::pki_types::ServerName::try_from(ep.hostname().trim_start_matches('[').trim_end_matches(']').to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", ep.hostname())))?;
            let c = rustls::ClientConnection::new(Arc::clone(cfg), name).map_err(io::Error::other)?;
            Conn::Tls(Box::new(rustls::StreamOwned::new(c, tcp)))
        }
        (true, None) => return Err(io::Error::new(io::ErrorKind::InvalidInput, "https:// without a TLS configuration")),
    };
    let mut head = String::with_capacity(1024);
    head.push_str(method);
    head.push(' ');
    head.push_str(path);
    head.push_str(" HTTP/1.1\r\nHost: ");
    head.push_str(&ep.host);
    head.push_str("\r\nConnection: close\r\n");
    for (k, v) in headers {
        if v.contains(['\r', '\n']) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("header {k} holds a line break")));
        }
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    for chunk in body.chunks(SLICE) {
        s.write_all(chunk)?;
        rate.sent(chunk.len());
    }
    s.flush()?;
    read_response(&mut s, method == "HEAD")
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads a response from `r` (which ends at the connection's close).
pub fn read_response(r: &mut impl Read, head_only: bool) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("response head too large"));
        }
        let n = r.read(&mut tmp)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection without an answer"));
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("response head is not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !proto.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(bad("not an HTTP/1.x response"));
    }
    let status: u16 = code.parse().map_err(|_| bad("bad status code"))?;
    let mut headers = Vec::new();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { return Err(bad("bad response header line")) };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut rest = buf[head_end + 4..].to_vec();
    let resp_header = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    let body = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if resp_header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(r, rest)?
    } else if let Some(len) = resp_header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        if len > MAX_BODY {
            return Err(bad("response body too large"));
        }
        while rest.len() < len {
            let n = r.read(&mut tmp)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "response body cut short"));
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    } else {
        loop {
            let n = r.read(&mut tmp)?;
            if n == 0 {
                break rest;
            }
            if rest.len() + n > MAX_BODY {
                return Err(bad("response body too large"));
            }
            rest.extend_from_slice(&tmp[..n]);
        }
    };
    Ok(Response { status, headers, body })
}

fn dechunk(r: &mut impl Read, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut tmp = [0u8; 4096];
    let mut fill = |buf: &mut Vec<u8>| -> io::Result<()> {
        let n = r.read(&mut tmp)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body cut short"));
        }
        buf.extend_from_slice(&tmp[..n]);
        Ok(())
    };
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if buf.len() > 1024 {
                return Err(bad("bad chunk size line"));
            }
            fill(&mut buf)?;
        };
        let line = std::str::from_utf8(&buf[..line_end]).map_err(|_| bad("bad chunk size line"))?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad("bad chunk size"))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Ok(out);
        }
        if out.len() + size > MAX_BODY {
            return Err(bad("response body too large"));
        }
        while buf.len() < size + 2 {
            fill(&mut buf)?;
        }
        out.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:8333").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls, e.hostname()), ("127.0.0.1:8333", 8333, false, "127.0.0.1"));
        let e = Endpoint::parse("https://s3.example.com/").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("s3.example.com", 443, true));
        for bad in ["ftp://x", "http://", "http://h/bucket", "http://h:0", "http://h:99999", "http://u@h", "s3.example.com"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses() {
        let r = read_response(&mut &b"HTTP/1.1 200 OK\r\nETag: \"ab\"\r\nContent-Length: 3\r\n\r\nabcdef"[..], false).unwrap();
        assert_eq!((r.status, r.header("etag"), r.body.as_slice()), (200, Some("\"ab\""), &b"abc"[..]));
        let r = read_response(&mut &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n"[..], false).unwrap();
        assert_eq!(r.body, b"abcde");
        let r = read_response(&mut &b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\n"[..], true).unwrap();
        assert_eq!((r.status, r.body.len()), (404, 0));
        let r = read_response(&mut &b"HTTP/1.0 403 Forbidden\r\n\r\n<Error/>"[..], false).unwrap();
        assert_eq!(r.body, b"<Error/>");
        assert!(read_response(&mut &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"[..], false).is_err());
        assert!(read_response(&mut &b"SSH-2.0-OpenSSH\r\n\r\n"[..], false).is_err());
        assert!(read_response(&mut &b""[..], false).is_err());
    }
}
