//! `/api/live.mp4` against a real `blackbox run --source synthetic` recording H.264: the stream
//! is an init segment and one fragment per frame starting at an IDR, decodes with
//! `ffmpeg -xerror`; a reader that stops reading is moved on to a later IDR (the stream still
//! decodes) and the recorder loses nothing for it. Also `/api/snapshot.jpg` and `/api/frame` of
//! H.264 footage are JPEGs of the recording's size.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 180;

struct Bb {
    child: Option<Child>,
    addr: SocketAddr,
    data: PathBuf,
    log: PathBuf,
}

impl Bb {
    fn start(dir: &Path, config: &str) -> Bb {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("config.json"), config).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.join("blackbox.log");
        let child = Command::new(env!("CARGO_BIN_EXE_blackbox"))
            .args(["run", "--source", "synthetic", "--data"])
            .arg(&data)
            .arg("--listen")
            .arg(addr.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let bb = Bb { child: Some(child), addr, data, log };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if bb.get("/health").is_ok_and(|(c, _, _)| c == 200) {
                return bb;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("blackbox did not come up: {}", std::fs::read_to_string(&bb.log).unwrap_or_default());
    }

    fn secret(&self) -> String {
        std::fs::read_to_string(self.data.join("secret")).map(|s| s.trim().to_string()).unwrap_or_default()
    }

    /// Opens a request and reads the status line and headers; the stream is at the body.
    fn open(&self, path: &str, rcvbuf: Option<usize>) -> (u16, Vec<String>, BufReader<TcpStream>) {
        let s = match rcvbuf {
            None => TcpStream::connect(self.addr).unwrap(),
            Some(n) => {
                // A small receive window: the server learns at once that this reader is slow.
                use rustix::net::{AddressFamily, SocketType};
                let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
                rustix::net::sockopt::set_socket_recv_buffer_size(&fd, n).unwrap();
                rustix::net::connect(&fd, &self.addr).unwrap();
                TcpStream::from(fd)
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        write!(w, "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", self.addr, self.secret()).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let code = line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if l.trim_end().is_empty() {
                break;
            }
            headers.push(l.trim_end().to_ascii_lowercase());
        }
        (code, headers, r)
    }

    fn get(&self, path: &str) -> std::io::Result<(u16, Vec<String>, Vec<u8>)> {
        let mut s = TcpStream::connect(self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", self.addr, self.secret())?;
        let mut all = Vec::new();
        s.read_to_end(&mut all)?;
        let end = all.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no header end"))?;
        let head = String::from_utf8_lossy(&all[..end]).to_string();
        let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let headers = head.lines().skip(1).map(|l| l.to_ascii_lowercase()).collect();
        Ok((code, headers, all[end + 4..].to_vec()))
    }

    /// SIGTERM, wait, and the run summary's `key=value` figures.
    fn stop(&mut self) -> Vec<(String, u64)> {
        let mut c = self.child.take().unwrap();
        rustix::process::kill_process(rustix::process::Pid::from_raw(c.id() as i32).unwrap(), rustix::process::Signal::TERM).unwrap();
        assert!(c.wait().unwrap().success());
        let log = std::fs::read_to_string(&self.log).unwrap();
        let line = log.lines().find(|l| l.contains("run summary:")).unwrap_or_else(|| panic!("no run summary: {log}"));
        line.split_whitespace().filter_map(|kv| kv.split_once('=')).filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?))).collect()
    }
}

impl Drop for Bb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn figure(sum: &[(String, u64)], k: &str) -> u64 {
    sum.iter().find(|(n, _)| n == k).unwrap_or_else(|| panic!("no {k} in {sum:?}")).1
}

/// One fragment as the client sees it.
#[derive(Debug)]
struct Frag {
    sequence: u32,
    decode_time: u64,
    key: bool,
    /// Capture time from `prft`, ns since 1970.
    utc_ns: i64,
}

/// Reads whole boxes off `r` for `secs` seconds (or until `max` fragments); returns the bytes of
/// the complete boxes read and the fragments. `pause`: stop reading for that long after the
/// first few fragments.
fn read_stream(r: &mut BufReader<TcpStream>, secs: f64, pause: Option<Duration>) -> (Vec<u8>, Vec<Frag>) {
    let mut bytes = Vec::new();
    let mut frags = Vec::new();
    let mut pending: Option<Frag> = None;
    let t = Instant::now();
    let mut paused = false;
    while t.elapsed().as_secs_f64() < secs {
        let mut head = [0u8; 8];
        r.read_exact(&mut head).expect("the stream goes on");
        let size = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        assert!((8..16 << 20).contains(&size), "box size {size}");
        let mut body = vec![0u8; size - 8];
        r.read_exact(&mut body).unwrap();
        let kind = &head[4..8];
        let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
        let be64 = |b: &[u8], at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        match kind {
            b"prft" => {
                let ntp = be64(&body, 8);
                let s = (ntp >> 32) as i64 - 2_208_988_800;
                let frac = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
                pending = Some(Frag { sequence: 0, decode_time: 0, key: false, utc_ns: s * 1_000_000_000 + frac as i64 });
            }
            b"moof" => {
                let f = pending.as_mut().expect("a prft before every moof");
                let find = |t: &[u8; 4]| body.windows(4).position(|w| w == t).unwrap_or_else(|| panic!("no {t:?} in moof")) + 4;
                f.sequence = be32(&body, find(b"mfhd") + 4);
                let tfdt = find(b"tfdt");
                assert_eq!(body[tfdt], 1, "tfdt version 1");
                f.decode_time = be64(&body, tfdt + 4);
                let trun = find(b"trun");
                assert_eq!(be32(&body, trun) & 0xffffff, 0x701);
                assert_eq!(be32(&body, trun + 4), 1, "one sample per fragment");
                f.key = be32(&body, trun + 20) == 0x0200_0000;
            }
            b"mdat" => frags.push(pending.take().expect("a moof before every mdat")),
            b"ftyp" | b"moov" => assert!(frags.is_empty(), "the init segment comes first"),
            other => panic!("unexpected box {:?}", String::from_utf8_lossy(other)),
        }
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(&body);
        if let Some(p) = pause
            && !paused
            && frags.len() == 5
        {
            paused = true;
            std::thread::sleep(p);
        }
    }
    (bytes, frags)
}

/// Decodes `mp4` with `ffmpeg -xerror`; the number of pictures it decoded.
fn ffmpeg_frames(dir: &Path, mp4: &[u8]) -> usize {
    let f = dir.join("live.mp4");
    std::fs::write(&f, mp4).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&f)
        .args(["-f", "framecrc", "-"])
        .output()
        .expect("this test needs ffmpeg (scripts/test installs it)");
    assert!(out.status.success(), "ffmpeg -xerror failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(l.contains(&format!("{}", W * H * 3 / 2)), "a {W}x{H} I420 picture: {l}");
    }
    text.lines().filter(|l| !l.starts_with('#')).count()
}

fn config() -> String {
    format!(r#"{{"video_res_width": {W}, "video_res_height": {H}, "video_fps": 30, "keyframe_interval_s": 1, "segment_length_s": 5}}"#)
}

#[test]
fn live_mp4_starts_at_an_idr_and_decodes_and_a_stalled_reader_skips_ahead_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut bb = Bb::start(dir.path(), &config());
    let (code, _, body) = bb.get("/api/status").unwrap();
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains(r#""codec":"h264""#), "{}", String::from_utf8_lossy(&body));
    let (code, _, _) = bb.get("/api/live.mjpeg").unwrap();
    assert_eq!(code, 409, "an H.264 recording has no MJPEG live stream");

    // A prompt reader: 4 s of stream.
    let (code, headers, mut r) = bb.open("/api/live.mp4", None);
    assert_eq!(code, 200);
    assert!(headers.iter().any(|h| h == "content-type: video/mp4"), "{headers:?}");
    let (mp4, frags) = read_stream(&mut r, 4.0, None);
    drop(r);
    assert!(frags.len() >= 60, "4 s at 30 fps: {} fragments", frags.len());
    assert!(frags[0].key, "a new viewer starts at an IDR");
    for w in frags.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence + 1, "mfhd sequence numbers");
        assert!(w[1].decode_time > w[0].decode_time, "decode times rise: {w:?}");
        assert!(w[1].utc_ns > w[0].utc_ns, "capture times rise: {w:?}");
        let gap = w[1].utc_ns - w[0].utc_ns;
        assert!(gap < 500_000_000, "a prompt reader gets every frame: {gap} ns between two");
    }
    let keys = frags.iter().filter(|f| f.key).count();
    assert!((3..=6).contains(&keys), "an IDR a second: {keys} in {} frames", frags.len());
    let decoded = ffmpeg_frames(dir.path(), &mp4);
    assert_eq!(decoded, frags.len(), "ffmpeg decodes every fragment");

    // A reader that stops for 8 s (the ring holds 4 GOPs: 4 s) with a tiny receive window.
    let (code, _, mut r) = bb.open("/api/live.mp4", Some(4096));
    assert_eq!(code, 200);
    let (mp4, frags) = read_stream(&mut r, 11.0, Some(Duration::from_secs(8)));
    drop(r);
    let jumps: Vec<usize> = (1..frags.len()).filter(|&i| frags[i].utc_ns - frags[i - 1].utc_ns > 1_000_000_000).collect();
    assert!(!jumps.is_empty(), "the stalled reader skipped ahead");
    for &i in &jumps {
        assert!(frags[i].key, "it skips to an IDR: {:?}", &frags[i - 1..=i]);
        assert_eq!(frags[i].sequence, frags[i - 1].sequence + 1, "the fragments stay numbered in order");
    }
    assert_eq!(ffmpeg_frames(dir.path(), &mp4), frags.len(), "the skipped stream still decodes");

    // The recorder kept every frame the camera delivered: the live viewers cost it nothing.
    let sum = bb.stop();
    assert_eq!(figure(&sum, "dropped_backpressure"), 0, "{sum:?}");
    assert_eq!(figure(&sum, "dropped_store"), 0, "{sum:?}");
    if figure(&sum, "dropped_deadline") == 0 {
        assert_eq!(figure(&sum, "frames"), figure(&sum, "delivered"), "{sum:?}");
    }
}

/// The width and height in a baseline JPEG's SOF0.
fn jpeg_size(j: &[u8]) -> (u32, u32) {
    assert_eq!(&j[..2], &[0xff, 0xd8], "a JPEG");
    let mut i = 2;
    while i + 9 < j.len() {
        assert_eq!(j[i], 0xff);
        let m = j[i + 1];
        let len = u16::from_be_bytes([j[i + 2], j[i + 3]]) as usize;
        if (0xc0..=0xc3).contains(&m) {
            return (u16::from_be_bytes([j[i + 7], j[i + 8]]) as u32, u16::from_be_bytes([j[i + 5], j[i + 6]]) as u32);
        }
        i += 2 + len;
    }
    panic!("no SOF in the JPEG");
}

#[test]
fn snapshot_and_frame_of_h264_footage_are_jpegs_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut bb = Bb::start(dir.path(), &config());
    std::thread::sleep(Duration::from_secs(3));
    let (code, headers, jpeg) = bb.get("/api/snapshot.jpg").unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&jpeg));
    assert!(headers.iter().any(|h| h == "content-type: image/jpeg"), "{headers:?}");
    assert_eq!(jpeg_size(&jpeg), (W, H));
    // The newest frame, an early one, one just before an IDR (the longest decode).
    for q in ["", "?seq=2", "?seq=30", "?seq=45"] {
        let (code, headers, jpeg) = bb.get(&format!("/api/frame{q}")).unwrap();
        assert_eq!(code, 200, "/api/frame{q}: {}", String::from_utf8_lossy(&jpeg));
        assert!(headers.iter().any(|h| h == "content-type: image/jpeg"), "{headers:?}");
        assert_eq!(jpeg_size(&jpeg), (W, H), "/api/frame{q}");
        if let Some(seq) = q.strip_prefix("?seq=") {
            assert!(headers.iter().any(|h| h == &format!("x-seq: {seq}")), "{headers:?}");
        }
    }
    // Pictures differ (the synthetic pattern moves): frame 45 is not frame 2 over again.
    let a = bb.get("/api/frame?seq=2").unwrap().2;
    let b = bb.get("/api/frame?seq=45").unwrap().2;
    assert_ne!(a, b);
    bb.stop();
}

#[test]
fn streaming_live_mp4_makes_no_heap_allocation_per_frame_on_the_web_thread() {
    let dir = tempfile::tempdir().unwrap();
    let mut bb = Bb::start(dir.path(), &config());
    let allocs = || {
        let (_, _, body) = bb.get("/api/status").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["web_allocations"].as_u64().unwrap()
    };
    // 4 viewers for `secs`; `during` runs meanwhile. Frames delivered in all.
    let watch = |secs: f64, during: &dyn Fn()| -> usize {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let (code, _, mut r) = bb.open("/api/live.mp4", None);
                        assert_eq!(code, 200);
                        read_stream(&mut r, secs, None).1.len()
                    })
                })
                .collect();
            during();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        })
    };
    // Warm up (the ring, pooled buffers, wakers), then compare an idle stretch with a streaming
    // one of the same length, as tests/web_api.rs does for MJPEG.
    watch(2.5, &|| {});
    std::thread::sleep(Duration::from_secs(1));
    let a = allocs();
    std::thread::sleep(Duration::from_secs(3));
    let b = allocs();
    let cd = std::cell::Cell::new((0, 0));
    let frames = watch(5.0, &|| {
        std::thread::sleep(Duration::from_millis(1500));
        let c = allocs();
        std::thread::sleep(Duration::from_secs(3));
        cd.set((c, allocs()));
    });
    let (c, d) = cd.get();
    let (idle, streaming) = (b - a, d - c);
    let per_frame = streaming.saturating_sub(idle + idle / 3) as f64 / (frames as f64 * 3.0 / 5.0);
    eprintln!("web thread allocations: idle 3 s: {idle}; streaming 3 s to 4 viewers: {streaming}; {per_frame:.4} per frame");
    assert!(frames >= 4 * 100, "{frames}");
    assert!(per_frame < 0.25, "the live.mp4 path allocates: {streaming} allocations in 3 s of 4 viewers (idle: {idle})");
    bb.stop();
}
