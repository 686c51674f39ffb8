//! The web server of a real `blackbox run`, on 127.0.0.1 only, with std's TcpStream as the
//! client: JSON routes, 404s, oversized and malformed requests, concurrent keep-alive clients,
//! and clients that hold connections without sending (the recorder must not notice).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `blackbox run` child with a synthetic 160x120 camera at 30 fps.
struct Bb {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// `durable N` lines from stdout, with the time each arrived.
    durable: Arc<Mutex<Vec<(Instant, u64)>>>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Bb {
    fn start() -> Bb {
        Bb::start_on(free_port())
    }

    fn start_on(port: u16) -> Bb {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("cfg.json");
        std::fs::write(&cfg, r#"{"video_res_width": 160, "video_res_height": 120, "video_fps": 30, "storage_cap_gb": 1}"#)
            .unwrap();
        let log = dir.path().join("stderr.log");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_blackbox"))
            .args(["run", "--report-durable", "--source", "synthetic", "--data"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&cfg)
            .arg("--listen")
            .arg(addr.to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let durable = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let d = Arc::clone(&durable);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("durable ").and_then(|n| n.parse().ok()) {
                    d.lock().unwrap().push((Instant::now(), n));
                }
            }
        });
        Bb { child, addr, log, durable, _dir: dir }
    }

    /// Waits until the server answers /health (at most 10 s).
    fn ready(self) -> Bb {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(mut c) = Client::connect(self.addr)
                && let Ok((200, _)) = c.get("/health")
            {
                return self;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not come up: {}", self.stderr());
    }

    /// A client that sends the device secret (`DATA/secret`) as a Bearer token.
    fn client(&self) -> Client {
        let secret = std::fs::read_to_string(self._dir.path().join("data/secret")).expect("no DATA/secret");
        let mut c = Client::connect(self.addr).unwrap();
        c.bearer = Some(secret.trim().to_string());
        c
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn durable_max(&self) -> Option<u64> {
        self.durable.lock().unwrap().last().map(|(_, n)| *n)
    }

    /// SIGTERM, wait; returns the exit code and the run summary's `frames=`.
    fn stop(mut self) -> (Option<i32>, u64, String) {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        let err = self.stderr();
        let frames = summary_field(&err, "frames").unwrap_or_else(|| panic!("no run summary: {err}"));
        (status.code(), frames, err)
    }
}

impl Drop for Bb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn summary_field(log: &str, key: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("run summary:"))?;
    let pat = format!(" {key}=");
    let rest = &line[line.find(&pat)? + pat.len()..];
    rest.split(' ').next()?.parse().ok()
}

/// A keep-alive HTTP/1.1 client on one connection.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    /// Sent as `Authorization: Bearer` with every `get`.
    bearer: Option<String>,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let w = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        w.set_read_timeout(Some(Duration::from_secs(10)))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Client { w, r, bearer: None })
    }

    fn get(&mut self, path: &str) -> std::io::Result<(u16, String)> {
        let auth = self.bearer.as_ref().map(|s| format!("Authorization: Bearer {s}\r\n")).unwrap_or_default();
        self.send(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n").as_bytes())
    }

    /// Sends raw bytes, reads one response: (status, body).
    fn send(&mut self, req: &[u8]) -> std::io::Result<(u16, String)> {
        self.w.write_all(req)?;
        self.response()
    }

    fn response(&mut self) -> std::io::Result<(u16, String)> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed before a response"));
        }
        let status: u16 = line.split(' ').nth(1).and_then(|s| s.trim().parse().ok()).ok_or_else(|| bad(&line))?;
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if self.r.read_line(&mut h)? == 0 {
                return Err(bad("connection closed in the headers"));
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().map_err(|_| bad(&h))?;
            }
        }
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn iso(v: &serde_json::Value) -> i64 {
    blackbox::clock::parse_iso8601(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

#[test]
fn health_and_status_are_json_and_the_durable_watermark_rises() {
    let bb = Bb::start().ready();
    let mut c = bb.client();
    let (code, body) = c.get("/health").unwrap();
    assert_eq!(code, 200, "{body}");
    let h = json(&body);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["recording"], true);
    assert!(h["uptime_s"].is_u64());

    // Wait for a first commit, then for the watermark to rise again (same connection).
    let durable = |c: &mut Client| {
        let (code, body) = c.get("/api/status").unwrap();
        assert_eq!(code, 200, "{body}");
        json(&body)["durable_seq"].as_u64()
    };
    let t = Instant::now();
    let mut first = None;
    while first.is_none() && t.elapsed() < Duration::from_secs(10) {
        first = durable(&mut c);
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = first.expect("no durable_seq after 10 s");
    std::thread::sleep(Duration::from_millis(1500));
    let second = durable(&mut c).unwrap();
    assert!(second > first, "durable_seq did not rise: {first} -> {second}");
    let h = json(&c.get("/health").unwrap().1);
    assert!(h["durable_seq"].as_u64().unwrap() >= second);

    let (_, body) = c.get("/api/status").unwrap();
    let s = json(&body);
    assert_eq!(s["recording"], true);
    assert!(s["frames"].as_u64().unwrap() > 30, "{s}");
    assert_eq!((s["lost"]["backpressure"].as_u64(), s["lost"]["store"].as_u64()), (Some(0), Some(0)), "{s}");
    assert!(s["camera"].as_str().unwrap().contains("synthetic"), "{s}");
    assert!(s["storage"]["used_bytes"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["storage"]["cap_bytes"].as_u64(), Some(1 << 30));
    assert!(s["storage"]["free_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["segments"].as_u64().unwrap() >= 1, "{s}");
    let (oldest, newest) = (iso(&s["oldest"]), iso(&s["newest"]));
    assert!(oldest <= newest && newest - oldest > 1_000_000_000, "{s}");
    assert!(iso(&s["started"]) <= oldest, "{s}");
    drop(c);
    let (code, frames, log) = bb.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(frames > 30, "{log}");
}

#[test]
fn unknown_routes_wrong_methods_and_malformed_requests_get_4xx() {
    let bb = Bb::start().ready();
    let mut c = bb.client();
    // `/` is the dashboard now; unknown asset names are 404 like any other unknown path.
    for path in ["/nope", "/api/nope", "/health/x", "/api/status/..%2f..%2fetc", "/%00", "/assets/nope.js", "/assets/..%2fsecret", "/assets/app.js/x"] {
        let (code, _) = c.get(path).unwrap();
        assert_eq!(code, 404, "{path}");
    }
    let (code, _) = c.send(b"POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(code, 405);
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /health HTTP/1.1 extra\r\n\r\n",
        b"\xff\xfe /health HTTP/1.1\r\n\r\n",
    ] {
        let mut c = Client::connect(bb.addr).unwrap();
        let (code, _) = c.send(raw).unwrap();
        assert!((400..500).contains(&code), "{raw:?} -> {code}");
    }
    // A body larger than the request buffer on a route that ignores it: still an answer.
    let mut c = Client::connect(bb.addr).unwrap();
    let code = c.send(b"GET /health HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n").map(|r| r.0);
    assert!(matches!(code, Ok(200) | Ok(400..500)) || code.is_err(), "{code:?}");
    let mut c = Client::connect(bb.addr).unwrap();
    assert_eq!(c.get("/health").unwrap().0, 200, "the server keeps serving");
    let (code, _, log) = bb.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_100_kb_header_gets_4xx_and_the_server_keeps_serving() {
    let bb = Bb::start().ready();
    for _ in 0..3 {
        let mut c = Client::connect(bb.addr).unwrap();
        let mut req = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 100 * 1024));
        req.extend(b"\r\n\r\n");
        let (code, _) = c.send(&req).unwrap();
        assert!((400..500).contains(&code), "{code}");
    }
    let mut c = Client::connect(bb.addr).unwrap();
    assert_eq!(c.get("/health").unwrap().0, 200);
    let (code, _, log) = bb.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn twenty_concurrent_keep_alive_clients_all_get_answers() {
    let bb = Bb::start().ready();
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let mut c = bb.client();
            std::thread::spawn(move || {
                for j in 0..25 {
                    let path = if (i + j) % 2 == 0 { "/health" } else { "/api/status" };
                    let (code, body) = c.get(path).unwrap_or_else(|e| panic!("client {i} request {j}: {e}"));
                    assert_eq!(code, 200);
                    json(&body);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (code, _, log) = bb.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn clients_holding_connections_without_sending_never_slow_the_recorder() {
    let bb = Bb::start().ready();
    std::thread::sleep(Duration::from_millis(700));
    let before = bb.durable_max().expect("no durable report yet");
    // More idle connections than the server has workers, plus some that trickle a header.
    let mut idle: Vec<TcpStream> = (0..48).map(|_| TcpStream::connect(bb.addr).unwrap()).collect();
    for s in idle.iter_mut().take(8) {
        s.write_all(b"GET /health HTTP/1.1\r\nX-Slow: ").unwrap();
    }
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(3) {
        for s in idle.iter_mut().take(8) {
            let _ = s.write_all(b"a");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let during = bb.durable_max().unwrap();
    // 3 s at 30 fps is 90 frames; allow for commit batching and a slow machine.
    assert!(during >= before + 45, "durable watermark stalled while clients held connections: {before} -> {during}");
    drop(idle);
    // Once they are gone (or timed out) the server answers again.
    let t = Instant::now();
    let mut ok = false;
    while !ok && t.elapsed() < Duration::from_secs(15) {
        ok = Client::connect(bb.addr).and_then(|mut c| c.get("/health")).map(|r| r.0 == 200).unwrap_or(false);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "the server did not recover");
    let (code, frames, log) = bb.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(frames >= 100, "{log}");
    assert_eq!((summary_field(&log, "dropped_backpressure"), summary_field(&log, "dropped_store")), (Some(0), Some(0)), "{log}");
}

#[test]
fn a_busy_listen_address_is_logged_and_recording_goes_on() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let bb = Bb::start_on(taken.local_addr().unwrap().port());
    let t = Instant::now();
    while bb.durable_max().unwrap_or(0) < 30 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(bb.durable_max().unwrap_or(0) >= 30, "not recording: {}", bb.stderr());
    let (code, frames, log) = bb.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("dashboard: cannot listen on"), "{log}");
    assert!(frames >= 30, "{log}");
    drop(taken);
}
