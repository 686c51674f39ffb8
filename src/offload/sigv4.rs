//! AWS Signature Version 4 for S3 requests, header-signed (docs.aws.amazon.com, "Signature
//! Calculations for the Authorization Header"). Hand-written over `sha2`: an S3 client needs
//! only this, and an SDK would bring a second HTTP stack.

use sha2::{Digest, Sha256};
use std::fmt::Write;

/// HMAC-SHA256 (RFC 2104) over `sha2`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new().chain_update(ipad).chain_update(msg).finalize();
    Sha256::new().chain_update(opad).chain_update(inner).finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The payload hash of a request whose body is not signed (over TLS, with Content-MD5).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The hash of an empty payload.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// URI-encodes per SigV4: unreserved characters as they are, everything else `%XX`; `/` kept
/// when `keep_slash` (object key paths).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// Standard base64 with padding (Content-MD5).
pub fn base64(data: &[u8]) -> String {
    crate::base64::encode(data)
}

/// Who signs: the key pair and the region.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, not even in a debug print.
        write!(f, "Credentials {{ access_key: {:?}, region: {:?} }}", self.access_key, self.region)
    }
}

/// A request to sign. `path` is the canonical (already URI-encoded) path; `query` the
/// parameters, not encoded; `headers` lower-case names with their values (they are all signed;
/// `host`, `x-amz-date` and `x-amz-content-sha256` must be among them).
pub struct ToSign<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_sha256: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

/// The canonical query string: encoded pairs sorted by name (then value).
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut q: Vec<(String, String)> = query.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
    q.sort();
    let mut o = String::new();
    for (i, (k, v)) in q.iter().enumerate() {
        if i > 0 {
            o.push('&');
        }
        let _ = write!(o, "{k}={v}");
    }
    o
}

fn canonical_request(r: &ToSign<'_>) -> (String, String) {
    let mut h: Vec<(&str, String)> = r.headers.iter().map(|(k, v)| (*k, v.split_whitespace().collect::<Vec<_>>().join(" "))).collect();
    h.sort_by(|a, b| a.0.cmp(b.0));
    let signed: Vec<&str> = h.iter().map(|(k, _)| *k).collect();
    let signed = signed.join(";");
    let mut c = String::with_capacity(512);
    let _ = write!(c, "{}\n{}\n{}\n", r.method, r.path, canonical_query(r.query));
    for (k, v) in &h {
        let _ = writeln!(c, "{k}:{v}");
    }
    let _ = write!(c, "\n{signed}\n{}", r.payload_sha256);
    (c, signed)
}

/// The `Authorization` header's value for `r`.
pub fn authorization(creds: &Credentials, r: &ToSign<'_>) -> String {
    let date = &r.amz_date[..8.min(r.amz_date.len())];
    let scope = format!("{date}/{}/s3/aws4_request", creds.region);
    let (canonical, signed) = canonical_request(r);
    let to_sign = format!("AWS4-HMAC-SHA256\n{}\n{scope}\n{}", r.amz_date, sha256_hex(canonical.as_bytes()));
    let k_date = hmac_sha256(format!("AWS4{}", creds.secret_key).as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, creds.region.as_bytes());
    let k_service = hmac_sha256(&k_region, b"s3");
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    let sig = hex(&hmac_sha256(&k_signing, to_sign.as_bytes()));
    format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}", creds.access_key)
}

/// `YYYYMMDDTHHMMSSZ` for a UTC time in ns.
pub fn amz_date(utc_ns: i64) -> String {
    // Compact is `YYYYMMDDTHHMMSS.mmmZ`: drop the milliseconds.
    let c = crate::clock::Compact(utc_ns).to_string();
    match c.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Credentials {
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            region: "us-east-1".into(),
        }
    }

    // The examples of the S3 API reference, "Signature Calculations for the Authorization
    // Header: Transferring Payload in a Single Chunk".
    #[test]
    fn aws_example_get_object() {
        let a = authorization(
            &example(),
            &ToSign {
                method: "GET",
                path: "/test.txt",
                query: &[],
                headers: &[
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("range", "bytes=0-9"),
                    ("x-amz-content-sha256", EMPTY_SHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                payload_sha256: EMPTY_SHA256,
                amz_date: "20130524T000000Z",
            },
        );
        assert!(a.ends_with("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"), "{a}");
        assert!(a.contains("Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"));
        assert!(a.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"));
    }

    #[test]
    fn aws_example_get_bucket_lifecycle() {
        let a = authorization(
            &example(),
            &ToSign {
                method: "GET",
                path: "/",
                query: &[("lifecycle", "")],
                headers: &[
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("x-amz-content-sha256", EMPTY_SHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                payload_sha256: EMPTY_SHA256,
                amz_date: "20130524T000000Z",
            },
        );
        assert!(a.ends_with("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"), "{a}");
    }

    #[test]
    fn aws_example_list_objects() {
        let a = authorization(
            &example(),
            &ToSign {
                method: "GET",
                path: "/",
                query: &[("prefix", "J"), ("max-keys", "2")],
                headers: &[
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("x-amz-content-sha256", EMPTY_SHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                payload_sha256: EMPTY_SHA256,
                amz_date: "20130524T000000Z",
            },
        );
        assert!(a.ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"), "{a}");
    }

    #[test]
    fn aws_example_put_object() {
        let body = b"Welcome to Amazon S3.";
        let sha = sha256_hex(body);
        assert_eq!(sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
        let a = authorization(
            &example(),
            &ToSign {
                method: "PUT",
                path: "/test%24file.text",
                query: &[],
                headers: &[
                    ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("x-amz-content-sha256", &sha),
                    ("x-amz-date", "20130524T000000Z"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ],
                payload_sha256: &sha,
                amz_date: "20130524T000000Z",
            },
        );
        assert!(a.ends_with("Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"), "{a}");
    }

    #[test]
    fn hmac_rfc4231_case_2() {
        let m = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex(&m), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn encodings() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(uri_encode("a b/c$~", true), "a%20b/c%24~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(canonical_query(&[("uploadId", "x y"), ("partNumber", "2")]), "partNumber=2&uploadId=x%20y");
        assert_eq!(amz_date(1_369_353_600_000_000_000), "20130524T000000Z");
    }
}
