//! The S3 operations offload needs, path-style (`/BUCKET/KEY`), header-signed with SigV4:
//! HEAD, PUT with Content-MD5, and multipart upload (create, upload part with Content-MD5,
//! list parts, complete, abort). A request refused for clock skew is signed again with the
//! server's `Date` (the Pi has no real-time clock), and the offset is kept.

use super::http::{self, Endpoint, RateLimit, Response};
use super::sigv4::{self, Credentials, ToSign};
use super::tls::{self, ClockOffset};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub enum S3Error {
    /// The connection failed (no network, refused, timed out).
    Io(std::io::Error),
    /// The server answered with an error (`code` from its XML, e.g. `SignatureDoesNotMatch`).
    Http { status: u16, code: String, message: String },
    /// An answer we can't use.
    Protocol(String),
    /// TLS can't be set up (no CA bundle, a bad CA file) or the server's certificate was
    /// refused (the explanation says why, e.g. this device's clock).
    Tls(String),
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Error::Io(e) => write!(f, "cannot reach the S3 server: {e}"),
            S3Error::Http { status, code, message } if code.is_empty() => write!(f, "S3 server answered {status}{}{message}", if message.is_empty() { "" } else { ": " }),
            S3Error::Http { status, code, message } => write!(f, "S3 server answered {status} {code}{}{message}", if message.is_empty() { "" } else { ": " }),
            S3Error::Protocol(m) => write!(f, "unexpected S3 answer: {m}"),
            S3Error::Tls(m) => write!(f, "cannot connect securely: {m}"),
        }
    }
}

impl std::error::Error for S3Error {}

impl From<std::io::Error> for S3Error {
    fn from(e: std::io::Error) -> Self {
        S3Error::Io(e)
    }
}

impl S3Error {
    /// An error that trying again later can cure (network, server trouble, a damaged part),
    /// as against one that needs the owner (wrong key, no such bucket).
    pub fn transient(&self) -> bool {
        match self {
            S3Error::Io(_) | S3Error::Protocol(_) => true,
            S3Error::Tls(_) => false,
            S3Error::Http { status, code, .. } => *status >= 500 || *status == 408 || *status == 429 || code == "BadDigest" || code == "RequestTimeTooSkewed",
        }
    }
}

/// An object's size and ETag (quotes removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: String,
}

/// A part the server holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub etag: String,
    pub size: u64,
}

pub struct S3 {
    pub endpoint: Endpoint,
    pub bucket: String,
    creds: Credentials,
    /// Seconds to add to our clock to get the server's (learnt from a skew refusal); also the
    /// time TLS checks certificate dates with.
    pub clock: Arc<ClockOffset>,
    pub rate: RateLimit,
    pub timeout: Duration,
    /// Trust only this CA (PEM) for https, instead of the system's bundle.
    pub ca_file: Option<PathBuf>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl S3 {
    pub fn new(endpoint: Endpoint, bucket: &str, creds: Credentials, kbps: u32) -> S3 {
        S3 {
            endpoint,
            bucket: bucket.to_string(),
            creds,
            clock: Arc::new(ClockOffset::default()),
            rate: RateLimit::new(kbps),
            timeout: Duration::from_secs(60),
            ca_file: None,
            tls: None,
        }
    }

    /// The TLS configuration, made at the first https request.
    fn tls(&mut self) -> Result<Option<Arc<rustls::ClientConfig>>, S3Error> {
        if !self.endpoint.tls {
            return Ok(None);
        }
        if self.tls.is_none() {
            let cfg = tls::client_config(self.ca_file.as_deref(), Arc::clone(&self.clock)).map_err(S3Error::Tls)?;
            self.tls = Some(cfg);
        }
        Ok(self.tls.clone())
    }

    fn path(&self, key: Option<&str>) -> String {
        match key {
            Some(k) => format!("/{}/{}", sigv4::uri_encode(&self.bucket, false), sigv4::uri_encode(k, true)),
            None => format!("/{}", sigv4::uri_encode(&self.bucket, false)),
        }
    }

    fn now_ns(&self) -> i64 {
        self.clock.now_ns()
    }

    /// Signs and sends one request; an answer of 2xx (or 404 for HEAD) comes back, anything
    /// else as an error. A skew refusal is retried once with the server's time.
    fn request(&mut self, method: &str, key: Option<&str>, query: &[(&str, &str)], extra: &[(&str, &str)], body: &[u8]) -> Result<Response, S3Error> {
        let mut retried = false;
        loop {
            let resp = self.request_once(method, key, query, extra, body)?;
            if resp.status / 100 == 2 || (method == "HEAD" && resp.status == 404) {
                return Ok(resp);
            }
            let (code, message) = error_of(&resp);
            let skewed = code == "RequestTimeTooSkewed" || code == "RequestExpired" || message.contains("expired") || (method == "HEAD" && resp.status == 403);
            if skewed
                && !retried
                && let Some(server) = resp.header("date").and_then(parse_http_date)
            {
                let offset = (server - crate::clock::now_utc_ns()) / 1_000_000_000;
                if (offset - self.clock.get()).abs() > 60 {
                    log::warn!("offload: our clock is {offset} s off the S3 server's; signing with the server's time");
                    self.clock.set(offset);
                    retried = true;
                    continue;
                }
            }
            return Err(S3Error::Http { status: resp.status, code, message });
        }
    }

    fn request_once(&mut self, method: &str, key: Option<&str>, query: &[(&str, &str)], extra: &[(&str, &str)], body: &[u8]) -> Result<Response, S3Error> {
        let tls = self.tls()?;
        let path = self.path(key);
        let amz_date = sigv4::amz_date(self.now_ns());
        // Over TLS the body is not hashed for the signature (UNSIGNED-PAYLOAD): TLS protects it
        // in transit and Content-MD5 end to end, and a Pi without SHA instructions saves a
        // SHA-256 pass over every byte. Plain http signs the body's hash.
        let payload = if body.is_empty() {
            sigv4::EMPTY_SHA256.to_string()
        } else if self.endpoint.tls {
            sigv4::UNSIGNED_PAYLOAD.to_string()
        } else {
            sigv4::sha256_hex(body)
        };
        let lower: Vec<(String, &str)> = extra.iter().map(|(k, v)| (k.to_ascii_lowercase(), *v)).collect();
        let mut headers: Vec<(&str, &str)> = vec![("host", &self.endpoint.host), ("x-amz-content-sha256", &payload), ("x-amz-date", &amz_date)];
        headers.extend(lower.iter().map(|(k, v)| (k.as_str(), *v)));
        let auth = sigv4::authorization(&self.creds, &ToSign { method, path: &path, query, headers: &headers, payload_sha256: &payload, amz_date: &amz_date });
        let q = sigv4::canonical_query(query);
        let full = if q.is_empty() { path } else { format!("{path}?{q}") };
        let mut send_headers: Vec<(&str, &str)> = headers.iter().filter(|(k, _)| *k != "host").copied().collect();
        send_headers.push(("authorization", &auth));
        http::send(&self.endpoint, tls.as_ref(), method, &full, &send_headers, body, &mut self.rate, self.timeout).map_err(|e| match tls::explain(&e) {
            Some(m) => S3Error::Tls(m),
            None => S3Error::Io(e),
        })
    }

    /// The object's size and ETag, or `None` when it doesn't exist.
    pub fn head(&mut self, key: &str) -> Result<Option<ObjectInfo>, S3Error> {
        let r = self.request("HEAD", Some(key), &[], &[], &[])?;
        if r.status == 404 {
            return Ok(None);
        }
        let size = r.header("content-length").and_then(|v| v.parse().ok()).ok_or_else(|| S3Error::Protocol("HEAD without Content-Length".into()))?;
        let etag = unquote(r.header("etag").unwrap_or(""));
        Ok(Some(ObjectInfo { size, etag }))
    }

    /// Checks that the bucket can be reached with these credentials (HEAD bucket).
    pub fn check_bucket(&mut self) -> Result<(), S3Error> {
        let r = self.request("HEAD", None, &[], &[], &[])?;
        if r.status == 404 {
            return Err(S3Error::Http { status: 404, code: "NoSuchBucket".into(), message: format!("bucket {:?} does not exist", self.bucket) });
        }
        Ok(())
    }

    /// A single PUT with Content-MD5; returns the ETag.
    pub fn put(&mut self, key: &str, body: &[u8], md5: &[u8; 16]) -> Result<String, S3Error> {
        let m = sigv4::base64(md5);
        let r = self.request("PUT", Some(key), &[], &[("content-md5", &m), ("content-type", "application/octet-stream")], body)?;
        Ok(unquote(r.header("etag").unwrap_or("")))
    }

    pub fn create_multipart(&mut self, key: &str) -> Result<String, S3Error> {
        let r = self.request("POST", Some(key), &[("uploads", "")], &[("content-type", "application/octet-stream")], &[])?;
        xml_text(&r.body_text(), "UploadId").ok_or_else(|| S3Error::Protocol("CreateMultipartUpload without an UploadId".into()))
    }

    pub fn upload_part(&mut self, key: &str, upload_id: &str, number: u32, body: &[u8], md5: &[u8; 16]) -> Result<String, S3Error> {
        let n = number.to_string();
        let m = sigv4::base64(md5);
        let r = self.request("PUT", Some(key), &[("partNumber", &n), ("uploadId", upload_id)], &[("content-md5", &m)], body)?;
        Ok(unquote(r.header("etag").unwrap_or("")))
    }

    /// Every part the server holds for the upload (all pages).
    pub fn list_parts(&mut self, key: &str, upload_id: &str) -> Result<Vec<Part>, S3Error> {
        let mut parts = Vec::new();
        let mut marker = String::new();
        for _ in 0..100 {
            let mut q: Vec<(&str, &str)> = vec![("uploadId", upload_id)];
            if !marker.is_empty() {
                q.push(("part-number-marker", &marker));
            }
            let r = self.request("GET", Some(key), &q, &[], &[])?;
            let text = r.body_text();
            for p in xml_blocks(&text, "Part") {
                let number = xml_text(p, "PartNumber").and_then(|v| v.parse().ok());
                let size = xml_text(p, "Size").and_then(|v| v.parse().ok());
                if let (Some(number), Some(size)) = (number, size) {
                    parts.push(Part { number, etag: unquote(&xml_text(p, "ETag").unwrap_or_default()), size });
                }
            }
            if xml_text(&text, "IsTruncated").as_deref() != Some("true") {
                break;
            }
            match xml_text(&text, "NextPartNumberMarker") {
                Some(m) if m != marker => marker = m,
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    pub fn complete(&mut self, key: &str, upload_id: &str, parts: &[(u32, String)]) -> Result<String, S3Error> {
        let mut body = String::from("<CompleteMultipartUpload>");
        for (n, etag) in parts {
            body.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>\"{etag}\"</ETag></Part>"));
        }
        body.push_str("</CompleteMultipartUpload>");
        let r = self.request("POST", Some(key), &[("uploadId", upload_id)], &[("content-type", "application/xml")], body.as_bytes())?;
        let text = r.body_text();
        // S3 may answer 200 with an <Error> document for Complete.
        if text.contains("<Error>") {
            let (code, message) = (xml_text(&text, "Code").unwrap_or_default(), xml_text(&text, "Message").unwrap_or_default());
            return Err(S3Error::Http { status: r.status, code, message });
        }
        Ok(unquote(&xml_text(&text, "ETag").unwrap_or_default()))
    }

    pub fn abort(&mut self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        self.request("DELETE", Some(key), &[("uploadId", upload_id)], &[], &[]).map(|_| ())
    }
}

fn error_of(r: &Response) -> (String, String) {
    let text = r.body_text();
    let code = xml_text(&text, "Code").unwrap_or_default();
    let message = xml_text(&text, "Message").unwrap_or_default();
    (code, message.chars().take(300).collect())
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('"').to_string()
}

/// The text of the first `<tag>…</tag>` in `xml`, entities decoded.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml_unescape(&xml[start..end]))
}

/// Every `<tag>…</tag>` block's inside.
fn xml_blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#34;", "\"").replace("&apos;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Parses an HTTP date (`Sat, 05 Dec 2026 15:30:00 GMT`) to UTC ns.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let mut it = s.split_whitespace();
    let _dow = it.next()?;
    let day: u32 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let year: u32 = it.next()?.parse().ok()?;
    let time = it.next()?;
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(mon))? + 1;
    crate::clock::parse_iso8601(&format!("{year:04}-{m:02}-{day:02}T{time}Z")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_dates() {
        let x = "<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber><ETag>&quot;aa&quot;</ETag><Size>5</Size></Part><Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag><Size>3</Size></Part></ListPartsResult>";
        let b = xml_blocks(x, "Part");
        assert_eq!(b.len(), 2);
        assert_eq!(unquote(&xml_text(b[0], "ETag").unwrap()), "aa");
        assert_eq!(xml_text(x, "IsTruncated").as_deref(), Some("false"));
        assert_eq!(xml_text(x, "Nope"), None);
        assert_eq!(parse_http_date("Fri, 24 May 2013 00:00:00 GMT"), Some(1_369_353_600_000_000_000));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn which_errors_are_worth_retrying() {
        let h = |status, code: &str| S3Error::Http { status, code: code.into(), message: String::new() };
        assert!(h(503, "SlowDown").transient());
        assert!(h(400, "BadDigest").transient());
        assert!(!h(403, "SignatureDoesNotMatch").transient());
        assert!(!h(403, "InvalidAccessKeyId").transient());
        assert!(!h(404, "NoSuchBucket").transient());
    }
}
