//! Hardening (issue 15): a real `blackbox run` on 127.0.0.1 attacked by clients without
//! credentials from other loopback addresses (127.0.1.x, 127.0.2.x), and checked that:
//! - the owner's new connections (Bearer and cookie) get in within 2 s throughout an attack of
//!   300 slowloris + 100 keep-alive pollers + 300 idle reconnecting sockets; the recorder
//!   drops nothing; RSS stays flat;
//! - lockouts are per client: wrong logins from one address never lock the owner out;
//! - strict HTTP/1.1 framing (501/400), the Host check (421) and the security headers;
//! - `Range` answers: a fuzz of random headers, every 206 body equal to the same bytes of the
//!   full file, everything else 416;
//! - exports: 90 stalled whole-store exports keep RSS under budget, the ones beyond the limit
//!   get 503 + Retry-After, and memory and threads fall back afterwards;
//! - a bounded mutation fuzz of raw requests: no 5xx (but 501 for Transfer-Encoding and 503 +
//!   Retry-After), no panic, nothing dropped. `BB_HTTP_FUZZ_SECS` (default 60) sets how long.
//!
//! Figures are printed (`--nocapture`) and recorded in docs/RELIABILITY.md.

mod support;

use blackbox::camera::{Codec, FrameMeta};
use blackbox::store::{Store, StoreOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const T0: i64 = 1_795_262_400_000_000_000;
const SEC: i64 = 1_000_000_000;

fn raise_fd_limit() {
    let r = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(max) = r.maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit { current: Some(max.min(65536)), maximum: Some(max) },
        );
    }
}

/// A TCP connection to `to` from the local address `from` (127.x.y.z, any port).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    // SAFETY: plain socket/bind/connect on a descriptor we own; it is wrapped at once.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let s = TcpStream::from_raw_fd(fd);
        let sin = |a: Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(a).to_be() },
            sin_zero: [0; 8],
        };
        let local = sin(from, 0);
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_in>() as u32) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let SocketAddr::V4(to) = to else { unreachable!() };
        let remote = sin(*to.ip(), to.port());
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_in>() as u32) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(s)
    }
}

struct Bb {
    child: Child,
    addr: SocketAddr,
    secret: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Bb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bb {
    /// `blackbox run` with the synthetic camera on `data` (made empty when `None`).
    fn start(store: Option<&dyn Fn(&Path)>) -> Bb {
        Bb::start_env(store, &[])
    }

    /// [`Bb::start`] with extra environment variables.
    fn start_env(store: Option<&dyn Fn(&Path)>, env: &[(&str, &str)]) -> Bb {
        raise_fd_limit();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if let Some(make) = store {
            make(&data);
        }
        let cfg = dir.path().join("cfg.json");
        std::fs::write(&cfg, r#"{"video_res_width": 160, "video_res_height": 120, "video_fps": 10, "storage_cap_gb": 4}"#).unwrap();
        let log = dir.path().join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_blackbox"))
            .args(["run", "--source", "synthetic", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&cfg)
            .args(["--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let t = Instant::now();
        let addr: SocketAddr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("web: serving on ").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
            assert!(t.elapsed() < Duration::from_secs(30), "server did not come up: {text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let secret = loop {
            if let Ok(s) = std::fs::read_to_string(data.join("secret")) {
                break s.trim().to_string();
            }
            assert!(t.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(20));
        };
        Bb { child, addr, secret, log, _dir: dir }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request on a fresh connection from 127.0.0.1; `raw` is everything after the
    /// request line's target up to the blank line (must include Host).
    fn req(&self, from: Ipv4Addr, head: &str, body: &[u8]) -> std::io::Result<Resp> {
        let mut s = connect_from(from, self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        Resp::read(&mut BufReader::new(s))
    }

    fn get(&self, path: &str, extra: &str) -> Resp {
        let h = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}\r\n", self.addr);
        self.req(Ipv4Addr::LOCALHOST, &h, b"").unwrap()
    }

    fn bearer(&self) -> String {
        format!("Authorization: Bearer {}\r\n", self.secret)
    }

    fn status(&self) -> serde_json::Value {
        let r = self.get("/api/status", &self.bearer());
        assert_eq!(r.code, 200, "{r:?}");
        serde_json::from_slice(&r.body).unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (RSS in kB, threads) of the server.
    fn rss_threads(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |k: &str| {
            s.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap()
        };
        (field("VmRSS:"), field("Threads:"))
    }

    /// SIGTERM; returns stderr after checking a clean exit without a panic.
    fn stop(mut self) -> String {
        rustix::process::kill_process(rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(), rustix::process::Signal::TERM)
            .unwrap();
        let st = self.child.wait().unwrap();
        let err = self.stderr();
        assert_eq!(st.code(), Some(0), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    }
}

#[derive(Debug)]
struct Resp {
    code: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn read(r: &mut impl BufRead) -> std::io::Result<Resp> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("closed before a response".into()));
        }
        let code: u16 = line.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| bad(line.clone()))?;
        let mut head = line.clone();
        let mut len = None;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Err(bad("closed in the headers".into()));
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = Some(v.trim().parse::<usize>().map_err(|_| bad(h.clone()))?);
            }
            head.push_str(&h);
        }
        let mut body = Vec::new();
        match len {
            Some(n) => {
                body.resize(n, 0);
                r.read_exact(&mut body)?;
            }
            None => {
                r.read_to_end(&mut body)?;
            }
        }
        Ok(Resp { code, head, body })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// The address of attacker `i`: 127.0.1.x .. 127.0.4.x, many distinct clients.
fn attacker(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1 + (i / 200) as u8, 1 + (i % 200) as u8)
}

#[test]
fn the_owner_gets_in_while_700_clients_without_credentials_hold_on() {
    let bb = Bb::start(None);
    let addr = bb.addr;
    // Log in once for a cookie.
    let body = format!("secret={}", bb.secret);
    let h = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let r = bb.req(Ipv4Addr::LOCALHOST, &h, body.as_bytes()).unwrap();
    assert_eq!(r.code, 303, "{r:?}");
    let cookie = r.header("Set-Cookie").unwrap().split(';').next().unwrap().to_string();
    std::thread::sleep(Duration::from_secs(1));
    let (rss0, threads0) = bb.rss_threads();
    let dropped0 = bb.status()["dropped"].as_u64().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reconnects = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    // 300 slowloris: a request head one line at a time, never finished.
    {
        let (stop, reconnects) = (stop.clone(), reconnects.clone());
        attackers.push(std::thread::spawn(move || {
            let mut socks: Vec<Option<TcpStream>> = (0..300).map(|_| None).collect();
            while !stop.load(Ordering::Relaxed) {
                for (i, s) in socks.iter_mut().enumerate() {
                    if s.is_none() {
                        *s = connect_from(attacker(i), addr).ok();
                        reconnects.fetch_add(1, Ordering::Relaxed);
                        if let Some(c) = s {
                            let _ = c.set_nonblocking(true);
                            let _ = c.write_all(format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\n").as_bytes());
                        }
                    } else if let Some(c) = s {
                        let mut b = [0u8; 64];
                        let gone = c.read(&mut b).is_ok() || c.write_all(b"X-a: b\r\n").is_err();
                        if gone {
                            *s = None;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1000));
            }
        }));
    }
    // 100 keep-alive pollers: GET /health every 4 s each (25 requests/s in all).
    {
        let (stop, reconnects) = (stop.clone(), reconnects.clone());
        attackers.push(std::thread::spawn(move || {
            let mut socks: Vec<Option<(TcpStream, BufReader<TcpStream>)>> = (0..100).map(|_| None).collect();
            let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            while !stop.load(Ordering::Relaxed) {
                let round = Instant::now();
                for (i, s) in socks.iter_mut().enumerate() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if s.is_none() {
                        reconnects.fetch_add(1, Ordering::Relaxed);
                        *s = connect_from(attacker(300 + i), addr).ok().and_then(|c| {
                            c.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
                            let r = BufReader::new(c.try_clone().ok()?);
                            Some((c, r))
                        });
                    }
                    if let Some((w, r)) = s
                        && (w.write_all(req.as_bytes()).is_err() || Resp::read(r).is_err())
                    {
                        *s = None;
                    }
                }
                std::thread::sleep(Duration::from_secs(4).saturating_sub(round.elapsed()));
            }
        }));
    }
    // 300 idle sockets that reconnect as soon as they are closed.
    {
        let (stop, reconnects) = (stop.clone(), reconnects.clone());
        attackers.push(std::thread::spawn(move || {
            let mut socks: Vec<Option<TcpStream>> = (0..300).map(|_| None).collect();
            while !stop.load(Ordering::Relaxed) {
                for (i, s) in socks.iter_mut().enumerate() {
                    let gone = match s {
                        None => true,
                        Some(c) => {
                            let mut b = [0u8; 64];
                            !matches!(c.read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
                        }
                    };
                    if gone {
                        reconnects.fetch_add(1, Ordering::Relaxed);
                        *s = connect_from(attacker(400 + i), addr).ok();
                        if let Some(c) = s {
                            let _ = c.set_nonblocking(true);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }));
    }
    // Let the attack take the pool, then probe as the owner for 15 s.
    std::thread::sleep(Duration::from_secs(4));
    let t = Instant::now();
    let mut worst = Duration::ZERO;
    let mut probes = 0;
    let mut failed = Vec::new();
    let owner = Ipv4Addr::new(127, 0, 0, 1);
    while t.elapsed() < Duration::from_secs(15) {
        for (what, cred) in [("bearer", bb.bearer()), ("cookie", format!("Cookie: {cookie}\r\n"))] {
            let s = Instant::now();
            let h = format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cred}\r\n");
            let r = bb.req(owner, &h, b"");
            let took = s.elapsed();
            worst = worst.max(took);
            probes += 1;
            match r {
                Ok(r) if r.code == 200 && took <= Duration::from_secs(2) => {}
                Ok(r) => failed.push(format!("{what}: {} after {took:?}", r.code)),
                Err(e) => failed.push(format!("{what}: {e} after {took:?}")),
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (rss1, threads1) = bb.rss_threads();
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    let dropped1 = bb.status()["dropped"].as_u64().unwrap();
    println!(
        "owner under attack: {probes} probes, worst {worst:?}, failed {failed:?}; attacker (re)connections {}; RSS {rss0} -> {rss1} kB, threads {threads0} -> {threads1}; dropped {dropped0} -> {dropped1}",
        reconnects.load(Ordering::Relaxed)
    );
    assert!(failed.is_empty(), "the owner was kept out: {failed:?}");
    assert!(reconnects.load(Ordering::Relaxed) >= 700, "the attack did not run");
    assert_eq!(dropped1, dropped0, "the recorder dropped frames");
    assert!(rss1 < rss0 + 16 * 1024, "RSS grew from {rss0} to {rss1} kB");
    bb.stop();
}

#[test]
fn wrong_logins_from_one_address_never_lock_the_owner_out() {
    let bb = Bb::start(None);
    let addr = bb.addr;
    let (evil, owner) = (Ipv4Addr::new(127, 0, 2, 9), Ipv4Addr::new(127, 0, 0, 1));
    let login = |from: Ipv4Addr, secret: &str| {
        let body = format!("secret={secret}");
        let h = format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        bb.req(from, &h, body.as_bytes()).unwrap()
    };
    let bearer_get = |from: Ipv4Addr| {
        let h = format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{}\r\n", bb.bearer());
        bb.req(from, &h, b"").unwrap().code
    };
    // The attacker guesses until locked; the owner's Bearer works between every guess.
    let t = Instant::now();
    let mut retry_after = None;
    while retry_after.is_none() && t.elapsed() < Duration::from_secs(40) {
        let r = login(evil, "wrong-guess");
        match r.code {
            401 => {}
            429 => {
                let s: u64 = r.header("Retry-After").unwrap().parse().unwrap();
                if s > 1 {
                    retry_after = Some(s);
                    let page = String::from_utf8_lossy(&r.body);
                    assert!(page.contains(&format!("Try again in {s} s")) && page.contains("<style>"), "{page}");
                } else {
                    std::thread::sleep(Duration::from_millis(1050));
                }
            }
            c => panic!("{c}: {r:?}"),
        }
        assert_eq!(bearer_get(owner), 200, "the owner's Bearer was refused during the attack");
    }
    let retry_after = retry_after.expect("the attacker was never locked out");
    assert!(retry_after > 30, "{retry_after}");
    // Locked: even the right secret from the attacker's address waits; the owner's does not.
    assert_eq!(login(evil, &bb.secret).code, 429);
    assert_eq!(login(owner, &bb.secret).code, 303);
    assert_eq!(bearer_get(owner), 200);
    // The owner's success did not reset the attacker's lockout; the API answers JSON.
    let h = format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{}\r\n", bb.bearer());
    let r = bb.req(evil, &h, b"").unwrap();
    assert_eq!(r.code, 429);
    assert!(String::from_utf8_lossy(&r.body).contains("\"retry_after_s\":"), "{r:?}");
    let err = bb.stop();
    assert!(err.contains("failed logins in a row from 127.0.2.9"), "{err}");
}

#[test]
fn ambiguous_framing_foreign_hosts_and_missing_headers_are_refused() {
    let bb = Bb::start(None);
    let a = bb.addr;
    let send = |raw: String| bb.req(Ipv4Addr::LOCALHOST, &raw, b"").map(|r| r.code).unwrap_or(0);
    // Smuggling: a chunked body holding a second request is not executed.
    let smuggle = format!(
        "POST /login HTTP/1.1\r\nHost: {a}\r\nTransfer-Encoding: chunked\r\n\r\n2c\r\nGET /api/status HTTP/1.1\r\nHost: {a}\r\n\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(send(smuggle), 501);
    for raw in [
        format!("POST /login HTTP/1.1\r\nHost: {a}\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc"),
        format!("POST /login HTTP/1.1\r\nHost: {a}\r\nContent-Length: +3\r\n\r\nabc"),
        format!("GET /health HTTP/1.1\r\nHost: {a}\r\nX-Folded: a\r\n b\r\n\r\n"),
        format!("GET /health HTTP/1.1\r\nHost: {a}\r\nX-Nul: a\0b\r\n\r\n"),
        "GET /health HTTP/1.1\r\n\r\n".to_string(),
        format!("GET /health HTTP/1.1\r\nHost: {a}\r\nHost: {a}\r\n\r\n"),
    ] {
        assert_eq!(send(raw.clone()), 400, "{raw:?}");
    }
    // Host: only our own names and addresses (DNS rebinding gets 421, public routes too).
    for path in ["/health", "/login", "/api/status", "/"] {
        assert_eq!(send(format!("GET {path} HTTP/1.1\r\nHost: rebind.evil.example:{}\r\n\r\n", a.port())), 421, "{path}");
    }
    assert_eq!(send(format!("GET /health HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n", a.port())), 200);
    // A captive-portal probe answers whatever name the phone asked for.
    assert_eq!(send("GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\nConnection: close\r\n\r\n".into()), 302);
    // CSP and nosniff on pages, assets, API answers and refusals.
    for (path, cred) in [("/login", String::new()), ("/", bb.bearer()), ("/api/status", bb.bearer()), ("/assets/app.js", String::new()), ("/api/status", String::new())] {
        let r = bb.get(path, &cred);
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"), "{path}: {r:?}");
        assert!(r.header("Content-Security-Policy").is_some_and(|v| v.contains("frame-ancestors 'none'")), "{path}: {r:?}");
        // Not no-referrer: Chromium then posts forms with `Origin: null`, refused as cross-site
        // (the browser test's sign-in).
        assert_eq!(r.header("Referrer-Policy"), Some("same-origin"), "{path}: {r:?}");
    }
    // Still serving.
    assert_eq!(bb.get("/health", "").code, 200);
    bb.stop();
}

#[test]
fn head_is_answered_like_get_without_the_body_on_every_route() {
    let bb = Bb::start(Some(&|data: &Path| {
        let tmp = tempfile::tempdir().unwrap();
        make_store(data, &support::testsrc_jpegs(tmp.path(), 30), 60, 2);
    }));
    let a = bb.addr;
    let routes = [
        ("/health", String::new()),
        ("/", bb.bearer()),
        ("/", String::new()),
        ("/login", String::new()),
        ("/assets/app.js", String::new()),
        ("/api/status", bb.bearer()),
        ("/api/status", String::new()),
        ("/api/segments", bb.bearer()),
        ("/api/config", bb.bearer()),
        ("/api/export.json?from=2026-11-21T12:00:00Z&to=2026-11-21T12:00:01Z", bb.bearer()),
        ("/api/export.mp4?from=2026-11-21T12:00:00Z&to=2026-11-21T12:00:01Z", bb.bearer()),
        ("/api/segments/1/export.mp4", bb.bearer()),
        ("/api/export.mp4", bb.bearer()),
        ("/no/such/page", bb.bearer()),
    ];
    // One keep-alive connection: HEAD then GET of each route. A HEAD that leaked its body
    // would be read as the next response's status line and fail.
    let mut s = connect_from(Ipv4Addr::LOCALHOST, a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let ignore = ["date", "set-cookie", "etag"];
    for (path, cred) in &routes {
        s.write_all(format!("HEAD {path} HTTP/1.1\r\nHost: {a}\r\n{cred}\r\n").as_bytes()).unwrap();
        // A HEAD response has no body whatever its Content-Length: read the head only.
        let mut head = String::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if l.trim().is_empty() {
                break;
            }
            head.push_str(&l);
        }
        let get_req = format!("GET {path} HTTP/1.1\r\nHost: {a}\r\n{cred}\r\n");
        let get = match s.write_all(get_req.as_bytes()).and_then(|()| Resp::read(&mut r)) {
            Ok(g) => g,
            Err(e) => {
                // The server closes after the head of a body it would not drop quietly (over
                // 256 KiB: downloads, streams); only those may.
                let len: u64 = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().trim().parse().unwrap();
                assert!(len > 256 * 1024, "HEAD {path}: connection lost after a {len}-byte body's head: {e}");
                s = connect_from(Ipv4Addr::LOCALHOST, a).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                r = BufReader::new(s.try_clone().unwrap());
                s.write_all(get_req.as_bytes()).unwrap();
                Resp::read(&mut r).unwrap()
            }
        };
        let norm = |h: &str| -> Vec<String> {
            let mut v: Vec<String> = h
                .lines()
                .filter(|l| !ignore.iter().any(|i| l.to_ascii_lowercase().starts_with(i)))
                .map(str::to_string)
                .collect();
            v.sort();
            v
        };
        assert_eq!(norm(&head), norm(&get.head), "HEAD {path} differs from GET");
        assert_ne!(get.code, 405, "{path}");
    }
    bb.stop();
}

#[test]
fn footage_and_secrets_are_owner_only_and_the_journal_never_sees_the_secret() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    // A data dir left open by an older version (umask 022): fixed at start.
    let old_seg = std::cell::RefCell::new(PathBuf::new());
    let bb = Bb::start_env(
        Some(&|data: &Path| {
            let tmp = tempfile::tempdir().unwrap();
            make_store(data, &support::testsrc_jpegs(tmp.path(), 30), 30, 2);
            let seg = std::fs::read_dir(data.join("segments")).unwrap().next().unwrap().unwrap().path();
            for (p, m) in [(data.to_path_buf(), 0o755), (data.join("segments"), 0o755), (seg.clone(), 0o644)] {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
            }
            *old_seg.borrow_mut() = seg;
        }),
        &[("INVOCATION_ID", "0123456789abcdef"), ("JOURNAL_STREAM", "8:12345")],
    );
    let data = old_seg.borrow().parent().unwrap().parent().unwrap().to_path_buf();
    std::thread::sleep(Duration::from_millis(1500)); // a new segment and a commit or two
    // Config saved by the API, then every file and directory checked.
    let body = r#"{"mjpeg_quality": 81}"#;
    let h = format!(
        "PUT /api/config HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        bb.addr,
        bb.bearer(),
        body.len()
    );
    let r = bb.req(Ipv4Addr::LOCALHOST, &h, body.as_bytes()).unwrap();
    assert_eq!(r.code, 200, "{r:?}");
    assert_eq!(mode(&data), 0o700);
    let mut files = 0;
    for dir in [data.clone(), data.join("segments")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&p), want, "{}", p.display());
            files += 1;
        }
    }
    assert!(files >= 5, "{files}");
    // camera_device: V4L2 devices only, one answer for any other path, existing or not.
    let put = |dev: &str| {
        let body = format!(r#"{{"camera_device": "{dev}"}}"#);
        let h = format!(
            "PUT /api/config HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            bb.addr,
            bb.bearer(),
            body.len()
        );
        let r = bb.req(Ipv4Addr::LOCALHOST, &h, body.as_bytes()).unwrap();
        (r.code, String::from_utf8_lossy(&r.body).replace(dev, "PATH"))
    };
    let answers: Vec<(u16, String)> = ["/etc/shadow", "/etc/no-such-file", "/dev/null", "/root"].iter().map(|d| put(d)).collect();
    assert_eq!(answers[0].0, 400, "{answers:?}");
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let secret = bb.secret.clone();
    let err = bb.stop();
    assert!(!err.contains(&secret), "the secret reached the journal: {err}");
    assert!(err.contains(&format!("it is in {}", data.join("secret").display())), "{err}");
}

#[test]
fn a_stream_outlives_the_request_head_deadline() {
    // The 10 s head deadline and the 30 s life without credentials apply to connections
    // waiting for a request, never to one in the middle of a response (the event stream, a
    // live view). picoserve reads the connection during such a response.
    let bb = Bb::start(None);
    let mut s = connect_from(Ipv4Addr::LOCALHOST, bb.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET /api/events HTTP/1.1\r\nHost: {}\r\n{}\r\n", bb.addr, bb.bearer()).as_bytes()).unwrap();
    let t = Instant::now();
    let mut last = Duration::ZERO;
    let mut b = [0u8; 4096];
    while t.elapsed() < Duration::from_secs(13) {
        match s.read(&mut b) {
            Ok(0) => panic!("the event stream was closed after {:?}", t.elapsed()),
            Ok(_) => last = t.elapsed(),
            Err(e) => panic!("{e} after {:?}", t.elapsed()),
        }
    }
    assert!(last > Duration::from_secs(12), "{last:?}");
    bb.stop();
}

/// `frames` frames at 30 fps from T0, in segments of `seg_s` seconds.
fn make_store(data: &Path, clip: &[Vec<u8>], frames: usize, seg_s: u64) {
    let opts = StoreOptions {
        segment_length_ns: seg_s * SEC as u64,
        commit_interval_ns: 5 * SEC as u64,
        commit_frames: 300,
        storage_cap_bytes: 1 << 40,
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 30 * clip[0].len() as u64,
    };
    let mut s = Store::open(data, opts).unwrap();
    for k in 0..frames as i64 {
        let t = k * SEC / 30;
        let m = FrameMeta { mono_ns: (1000 * SEC + t) as u64, utc_ns: T0 + t, codec: Codec::Jpeg, key: true, lost_before: 0 };
        s.append_frame(&m, &clip[k as usize % clip.len()]).unwrap();
    }
    s.close().unwrap();
}

/// A tiny xorshift PRNG (deterministic per seed; the seed is printed).
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("BB_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        println!("seed {seed} (BB_FUZZ_SEED to repeat)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// A random `Range` header value: valid, edge, overflowing, multiple, malformed.
fn random_range(rng: &mut Rng, len: u64) -> String {
    let kind = rng.below(10);
    let mut n = || -> String {
        match rng.below(8) {
            0 => "18446744073709551615".into(),
            1 => "18446744073709551616".into(),
            2 => len.to_string(),
            3 => (len - 1).to_string(),
            4 => "0".into(),
            _ => rng.below(len + 100).to_string(),
        }
    };
    let one = |n: &mut dyn FnMut() -> String, k: u64| match k {
        0 => format!("{}-{}", n(), n()),
        1 => format!("{}-", n()),
        2 => format!("-{}", n()),
        3 => format!("{}-{}", n(), n()).replace('-', " - "),
        4 => "-".into(),
        _ => format!("{}--{}", n(), n()),
    };
    match kind {
        0 => format!("bytes={},{}", one(&mut n, 0), one(&mut n, 1)),
        1 => format!("items={}", one(&mut n, 0)),
        2 => format!("bytes={}x", one(&mut n, 0)),
        3 => format!("bytes=+{}", one(&mut n, 1)),
        k => format!("bytes={}", one(&mut n, if k < 8 { k % 3 } else { k - 4 })),
    }
}

#[test]
fn random_range_headers_get_exact_slices_or_416() {
    let bb = Bb::start(Some(&|data: &Path| {
        let tmp = tempfile::tempdir().unwrap();
        make_store(data, &support::testsrc_jpegs(tmp.path(), 30), 150, 2);
    }));
    let a = bb.addr;
    let routes = ["/api/export.mp4?from=2026-11-21T12:00:00Z&to=2026-11-21T12:00:05Z", "/api/segments/61/export.mp4"];
    let mut rng = Rng::seeded();
    let mut counts = [0u32; 3];
    for route in routes {
        let full = bb.get(route, &bb.bearer());
        assert_eq!(full.code, 200, "{full:?}");
        let len = full.body.len() as u64;
        let tag = full.header("ETag").unwrap().to_string();
        let mut s = connect_from(Ipv4Addr::LOCALHOST, a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        for _ in 0..300 {
            let spec = random_range(&mut rng, len);
            let if_range = if rng.below(4) == 0 { format!("If-Range: {tag}\r\n") } else { String::new() };
            // One write per request (several small writes meet Nagle and delayed ACKs: 40 ms each).
            s.write_all(format!("GET {route} HTTP/1.1\r\nHost: {a}\r\n{}Range: {spec}\r\n{if_range}\r\n", bb.bearer()).as_bytes()).unwrap();
            let resp = Resp::read(&mut r).unwrap();
            match resp.code {
                206 => {
                    let cr = resp.header("Content-Range").unwrap();
                    let (span, total) = cr.strip_prefix("bytes ").unwrap().split_once('/').unwrap();
                    let (x, y) = span.split_once('-').unwrap();
                    let (x, y): (u64, u64) = (x.parse().unwrap(), y.parse().unwrap());
                    assert_eq!(total.parse::<u64>().unwrap(), len);
                    assert!(x <= y && y < len, "{spec}: {cr}");
                    assert!(resp.body == full.body[x as usize..=y as usize], "{spec}: 206 body differs from the file's bytes {x}..={y}");
                    counts[0] += 1;
                }
                416 => {
                    assert_eq!(resp.header("Content-Range"), Some(format!("bytes */{len}").as_str()), "{spec}");
                    counts[1] += 1;
                }
                c => panic!("{route} Range {spec:?}: {c}"),
            }
        }
        // Issue 15's overflowing range.
        let r = bb.get(route, &format!("{}Range: bytes=100-18446744073709551615\r\n", bb.bearer()));
        assert_eq!(r.code, 206);
        assert_eq!(r.header("Content-Length"), Some((len - 100).to_string().as_str()));
        assert!(r.body == full.body[100..]);
        counts[2] += 1;
    }
    println!("ranges: {} answered 206 (all equal to the file), {} refused 416", counts[0], counts[1]);
    assert!(counts[0] > 100 && counts[1] > 100, "{counts:?}");
    bb.stop();
}

#[test]
fn stalled_exports_of_a_multi_gb_store_keep_memory_bounded() {
    // 250,000 frames of 8 KiB (2.0 GB; 2 h 19 min at 30 fps) in 60 s segments. An export's
    // memory depends on its frame count: ~22 MB planned, 40 MB reserved (160 B a frame), so
    // the 96 MiB budget holds two distinct whole-store plans.
    const FRAMES: usize = 250_000;
    let t = Instant::now();
    let bb = Bb::start(Some(&|data: &Path| {
        let tmp = tempfile::tempdir().unwrap();
        let clip: Vec<Vec<u8>> = support::testsrc_jpegs(tmp.path(), 30)
            .into_iter()
            .map(|mut f| {
                f.resize(8192, 0);
                f
            })
            .collect();
        make_store(data, &clip, FRAMES, 60);
    }));
    let made = t.elapsed();
    let a = bb.addr;
    let (rss0, threads0) = bb.rss_threads();
    // 90 exports whose clients read nothing after the headers (stalled): every other one the
    // whole store (one shared plan), the rest distinct ranges (each its own plan).
    let mut held = Vec::new();
    let mut codes = std::collections::BTreeMap::<u16, u32>::new();
    let mut peak = rss0;
    for i in 0..90 {
        let q = if i % 2 == 0 { String::new() } else { format!("?from=2026-11-21T12:00:{:02}Z", i % 60) };
        let req = format!("GET /api/export.mp4{q} HTTP/1.1\r\nHost: {a}\r\n{}\r\n", bb.bearer());
        let mut s = connect_from(Ipv4Addr::LOCALHOST, a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut r = BufReader::with_capacity(1, s.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            head.push_str(&h);
        }
        let code: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        *codes.entry(code).or_default() += 1;
        match code {
            200 => {}
            503 => {
                assert!(head.to_ascii_lowercase().contains("retry-after: 5"), "{head}");
                let len: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().trim().parse().unwrap();
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                // 1: the memory budget (a third distinct plan), 0: six exports at once.
                *codes.entry(if String::from_utf8_lossy(&body).contains("memory") { 1 } else { 0 }).or_default() += 1;
            }
            c => panic!("export {i}: {c}: {head}"),
        }
        held.push(s);
        peak = peak.max(bb.rss_threads().0);
    }
    std::thread::sleep(Duration::from_secs(1));
    let (rss1, threads1) = bb.rss_threads();
    peak = peak.max(rss1);
    // A stalled client holds its export: memory, threads and a worker, but nothing grows.
    std::thread::sleep(Duration::from_secs(2));
    let (rss1b, _) = bb.rss_threads();
    drop(held);
    // Memory and threads fall back once the clients are gone.
    let t = Instant::now();
    let (mut rss2, mut threads2) = bb.rss_threads();
    while t.elapsed() < Duration::from_secs(20) && (threads2 > threads0 + 1 || rss2 > rss0 + 24 * 1024) {
        std::thread::sleep(Duration::from_millis(500));
        (rss2, threads2) = bb.rss_threads();
    }
    println!(
        "90 stalled exports of a {:.1} GB store ({FRAMES} frames, made in {made:.1?}): answers {codes:?}; RSS {rss0} kB -> peak {peak} -> {rss1b} held -> {rss2} kB after; threads {threads0} -> {threads1} -> {threads2}",
        (FRAMES * 8192) as f64 / 1e9
    );
    // Served: the whole store (one plan shared by five) and one distinct range; the second
    // distinct range did not fit the memory budget (Busy), nor any after it until the sixth.
    assert_eq!(codes.get(&200), Some(&6), "exports at once are limited to 6: {codes:?}");
    assert_eq!(codes.get(&1), Some(&3), "503 for memory while the permits last: {codes:?}");
    // Budget: exports take at most 96 MiB (+16 MiB for the rest of the web side's buffers).
    assert!(peak < rss0 + (96 + 16) * 1024, "RSS peak {peak} kB over the budget (from {rss0} kB)");
    assert!(rss1b <= rss1 + 1024, "RSS grew while the exports stalled: {rss1} -> {rss1b} kB");
    assert!(threads2 <= threads0 + 1, "threads stay: {threads0} -> {threads2}");
    // Back to within 24 MiB of the start (allocator arenas and page tables keep a little).
    assert!(rss2 <= rss0 + 24 * 1024, "memory did not fall back: {rss0} -> {rss2} kB");
    // And exports work again.
    let r = bb.get("/api/export.json?from=2026-11-21T12:00:00Z&to=2026-11-21T12:01:00Z", &bb.bearer());
    assert_eq!(r.code, 200, "{r:?}");
    assert_eq!(bb.status()["dropped"], 0);
    bb.stop();
}

/// Mutates a request: flips, inserts, deletes, repeats and splices in HTTP-ish tokens.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    const TOKENS: &[&[u8]] = &[
        b"\r\n",
        b"\r\n\r\n",
        b"\n",
        b"\r",
        b"\0",
        b" ",
        b"\t",
        b":",
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: 18446744073709551616\r\n",
        b"Content-Length: -1\r\n",
        b"Range: bytes=0-18446744073709551615\r\n",
        b"Range: bytes=-0,5-\r\n",
        b"Host: evil.example\r\n",
        b"%00",
        b"%2e%2e/",
        b"?from=9999-99-99T99:99:99Z",
        b"\xff\xfe",
        b"HTTP/1.0",
        b"Connection: close\r\n",
        b" \r\n folded\r\n",
    ];
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() as u64 + 1) as usize;
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if !v.is_empty() => {
                let n = (rng.below(16) as usize).min(v.len() - at.min(v.len()));
                v.drain(at.min(v.len())..at.min(v.len()) + n);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                v.splice(at..at, t.iter().copied());
            }
            4 if !v.is_empty() => {
                let a = rng.below(v.len() as u64) as usize;
                let b = (a + rng.below(64) as usize).min(v.len());
                let chunk = v[a..b].to_vec();
                v.splice(at..at, chunk);
            }
            5 => v.extend(std::iter::repeat_n(b'A', rng.below(9000) as usize)),
            _ => {
                let i = rng.below(v.len() as u64 + 1) as usize;
                v.truncate(i);
            }
        }
    }
    v
}

#[test]
fn a_mutation_fuzz_of_raw_requests_gets_no_5xx_and_drops_nothing() {
    let secs: u64 = std::env::var("BB_HTTP_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let bb = Bb::start(Some(&|data: &Path| {
        let tmp = tempfile::tempdir().unwrap();
        make_store(data, &support::testsrc_jpegs(tmp.path(), 30), 150, 2);
    }));
    let a = bb.addr;
    let auth = format!("Authorization: Bearer {}", bb.secret);
    let seeds: Vec<String> = vec![
        format!("GET /health HTTP/1.1\r\nHost: {a}\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: {a}\r\n{auth}\r\n\r\n"),
        format!("GET /api/status HTTP/1.1\r\nHost: {a}\r\n{auth}\r\n\r\n"),
        format!("GET /api/config HTTP/1.1\r\nHost: {a}\r\n{auth}\r\n\r\n"),
        format!("GET /api/segments HTTP/1.1\r\nHost: {a}\r\n{auth}\r\n\r\n"),
        format!("GET /api/export.json?from=2026-11-21T12:00:00Z&to=2026-11-21T12:00:03Z HTTP/1.1\r\nHost: {a}\r\n{auth}\r\n\r\n"),
        format!("GET /api/export.mp4?from=2026-11-21T12:00:00Z&to=2026-11-21T12:00:01Z HTTP/1.1\r\nHost: {a}\r\n{auth}\r\nRange: bytes=0-99\r\n\r\n"),
        format!("GET /api/segments/61/export.mp4 HTTP/1.1\r\nHost: {a}\r\n{auth}\r\nRange: bytes=-100\r\n\r\n"),
        format!("GET /login HTTP/1.1\r\nHost: {a}\r\n\r\n"),
        format!("POST /login HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\nsecret=wrong"),
        format!("POST /logout HTTP/1.1\r\nHost: {a}\r\nContent-Length: 0\r\n\r\n"),
        format!("GET /assets/app.js HTTP/1.1\r\nHost: {a}\r\nIf-None-Match: \"x\"\r\n\r\n"),
        format!("OPTIONS /api/status HTTP/1.1\r\nHost: {a}\r\n{auth}\r\n\r\n"),
        format!("GET /generate_204 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    let mut rng = Rng::seeded();
    let dropped0 = bb.status()["dropped"].as_u64().unwrap();
    let t = Instant::now();
    let (mut sent, mut answered, mut closed) = (0u64, 0u64, 0u64);
    let mut codes = std::collections::BTreeMap::<u16, u64>::new();
    // Mutated requests come from 127.0.3.x so their failed logins lock those addresses only.
    while t.elapsed() < Duration::from_secs(secs) {
        let seed = &seeds[rng.below(seeds.len() as u64) as usize];
        let req = mutate(&mut rng, seed.as_bytes());
        let from = Ipv4Addr::new(127, 0, 3, 1 + rng.below(250) as u8);
        let Ok(mut s) = connect_from(from, a) else { continue };
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        sent += 1;
        let _ = s.write_all(&req);
        let _ = s.shutdown(std::net::Shutdown::Write);
        // Read every response on the connection (a mutation may hold several requests).
        let mut r = BufReader::new(s);
        loop {
            match Resp::read(&mut r) {
                Ok(resp) => {
                    answered += 1;
                    *codes.entry(resp.code).or_default() += 1;
                    let ok = resp.code < 500
                        || resp.code == 501
                        || (resp.code == 503 && resp.header("Retry-After").is_some());
                    assert!(ok, "{} for {:?}\n{}", resp.code, String::from_utf8_lossy(&req), String::from_utf8_lossy(&resp.body));
                }
                Err(_) => {
                    closed += 1;
                    break;
                }
            }
        }
    }
    let dropped1 = bb.status()["dropped"].as_u64().unwrap();
    println!("fuzz: {secs} s, {sent} mutated requests, {answered} answers {codes:?}, dropped {dropped0} -> {dropped1}");
    assert!(sent > 50, "{sent}");
    assert_eq!(dropped1, dropped0, "the recorder dropped frames");
    assert_eq!(bb.get("/health", "").code, 200, "the server keeps serving");
    let _ = closed;
    bb.stop();
}
