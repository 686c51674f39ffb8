//! Dashboard access against a real `blackbox run` on 127.0.0.1: the device secret file, Bearer
//! tokens, the login form and its session cookie, logout, rate limiting, cross-site refusals,
//! and the secret staying out of the logs.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `blackbox run` child with a small synthetic camera, on a data dir that outlives it.
struct Bb {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Bb {
    /// Starts on `dir` (data in `dir/data`, stderr in `dir/<log_name>`) and waits for /health.
    fn start(dir: &Path, log_name: &str) -> Bb {
        let cfg = dir.join("cfg.json");
        std::fs::write(&cfg, r#"{"video_codec": "mjpeg", "video_res_width": 160, "video_res_height": 120, "video_fps": 30, "storage_cap_gb": 1}"#)
            .unwrap();
        let log = dir.join(log_name);
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_blackbox"))
            .args(["run", "--source", "synthetic", "--data"])
            .arg(dir.join("data"))
            .arg("--config")
            .arg(&cfg)
            .arg("--listen")
            .arg(addr.to_string())
            // Not a systemd service here even when the test runner is one (under systemd the
            // secret is not printed: tests/web_harden.rs).
            .env_remove("INVOCATION_ID")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let bb = Bb { child, addr, log };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(r) = bb.req("GET", "/health", &[], "")
                && r.code == 200
            {
                return bb;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not come up: {}", bb.stderr());
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request on a fresh connection (`Host` is added).
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> std::io::Result<Resp> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes())?;
        Resp::read(&mut BufReader::new(s))
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.req("GET", path, headers, "").unwrap()
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        self.req("POST", path, headers, body).unwrap()
    }

    /// SIGTERM and wait; returns the stderr.
    fn stop(mut self) -> String {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        let err = self.stderr();
        assert_eq!(status.code(), Some(0), "{err}");
        err
    }
}

impl Drop for Bb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn read(r: &mut impl BufRead) -> std::io::Result<Resp> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let mut line = String::new();
        r.read_line(&mut line)?;
        let code = line.split(' ').nth(1).and_then(|s| s.trim().parse().ok()).ok_or_else(|| bad(&line))?;
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Err(bad("closed in the headers"));
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.parse().map_err(|_| bad(&h))?;
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        Ok(Resp { code, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `bb_session=<token>` from `Set-Cookie`, for sending back.
    fn cookie(&self) -> String {
        let sc = self.header("Set-Cookie").unwrap_or_else(|| panic!("no Set-Cookie: {self:?}"));
        sc.split(';').next().unwrap().trim().to_string()
    }
}

fn secret_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("data/secret")).expect("no DATA/secret").trim().to_string()
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

#[test]
fn the_api_needs_credentials_and_the_bearer_secret_grants_them() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), "stderr.log");
    let secret = secret_of(dir.path());
    assert_eq!(secret.len(), 32);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");

    let r = bb.get("/api/status", &[]);
    assert_eq!(r.code, 401, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Bearer"), "{r:?}");
    assert!(r.body.contains("unauthorized"), "{r:?}");

    let wrong = bearer("0123456789abcdef0123456789abcdef");
    assert_eq!(bb.get("/api/status", &[("Authorization", &wrong)]).code, 401);
    assert_eq!(bb.get("/api/status", &[("Authorization", "Basic Zm9vOmJhcg==")]).code, 401);
    // A secret in the URL is not a credential.
    assert_eq!(bb.get(&format!("/api/status?secret={secret}"), &[]).code, 401);

    let r = bb.get("/api/status", &[("Authorization", &bearer(&secret))]);
    assert_eq!(r.code, 200, "{r:?}");
    assert!(r.body.contains("\"recording\":true"), "{r:?}");
    // The scheme is case-insensitive.
    assert_eq!(bb.get("/api/status", &[("Authorization", &format!("bearer {secret}"))]).code, 200);

    // Public: health and the login page. HTML pages without credentials go to the login page;
    // unknown /api routes still say 401, not 404 (nothing is revealed before auth).
    assert_eq!(bb.get("/health", &[]).code, 200);
    let login = bb.get("/login", &[]);
    assert_eq!(login.code, 200);
    assert!(login.header("Content-Type").unwrap().starts_with("text/html"), "{login:?}");
    assert!(login.body.contains("<form method=\"post\" action=\"/login\">"), "{}", login.body);
    assert!(login.body.contains("name=\"secret\""), "{}", login.body);
    let r = bb.get("/", &[]);
    assert_eq!((r.code, r.header("Location")), (303, Some("/login")), "{r:?}");
    assert_eq!(bb.get("/api/nope", &[]).code, 401);
    assert_eq!(bb.get("/api/nope", &[("Authorization", &bearer(&secret))]).code, 404);
    bb.stop();
}

#[test]
fn the_secret_is_0600_survives_restart_and_is_printed_only_at_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), "first.log");
    let secret = secret_of(dir.path());
    let path = dir.path().join("data/secret");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    // Use it, and fail with it, so that any logging of credentials would show.
    assert_eq!(bb.get("/api/status", &[("Authorization", &bearer(&secret))]).code, 200);
    assert_eq!(bb.post("/login", &[], &format!("secret={secret}")).code, 303);
    assert_eq!(bb.post("/login", &[], &format!("secret={secret}x")).code, 401);
    let first = bb.stop();
    // Printed exactly once, on the first-start lines, with the URL.
    assert_eq!(first.matches(&secret).count(), 1, "{first}");
    let line = first.lines().find(|l| l.contains(&secret)).unwrap();
    assert!(line.starts_with("blackbox:   secret "), "{line}");
    assert!(first.contains(&format!("http://{}/login", bb_addr_of(&first))), "{first}");

    let bb = Bb::start(dir.path(), "second.log");
    assert_eq!(secret_of(dir.path()), secret, "the secret changed across a restart");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(bb.get("/api/status", &[("Authorization", &bearer(&secret))]).code, 200);
    assert_eq!(bb.post("/login", &[], &format!("secret={secret}")).code, 303);
    let second = bb.stop();
    assert!(!second.contains(&secret), "secret in the second start's stderr:\n{second}");
    assert!(!second.contains("first start"), "{second}");
}

/// The listen address from the `open http://ADDR/login` line.
fn bb_addr_of(log: &str) -> String {
    let l = log.lines().find(|l| l.contains("open   http://")).unwrap_or_else(|| panic!("no URL line: {log}"));
    l.split("http://").nth(1).unwrap().trim_end_matches("/login").to_string()
}

#[test]
fn login_sets_a_strict_http_only_cookie_that_grants_access_until_logout() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), "stderr.log");
    let secret = secret_of(dir.path());

    let r = bb.post("/login", &[], "secret=not-the-secret");
    assert_eq!(r.code, 401, "{r:?}");
    assert!(r.header("Set-Cookie").is_none(), "{r:?}");
    assert!(r.body.contains("Wrong secret"), "{}", r.body);
    let r = bb.post("/login", &[], "");
    assert_eq!(r.code, 401, "{r:?}");

    let r = bb.post("/login", &[("Origin", &format!("http://{}", bb.addr))], &format!("secret={secret}"));
    assert_eq!(r.code, 303, "{r:?}");
    assert_eq!(r.header("Location"), Some("/"));
    let sc = r.header("Set-Cookie").unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(sc.split(';').any(|a| a.trim() == attr), "{attr} missing: {sc}");
    }
    assert!(!sc.contains(&secret), "the cookie carries the secret: {sc}");
    let cookie = r.cookie();
    assert!(cookie.starts_with("bb_session=") && cookie.len() == "bb_session=".len() + 64, "{cookie}");

    let r = bb.get("/api/status", &[("Cookie", &cookie)]);
    assert_eq!(r.code, 200, "{r:?}");
    // Among other cookies, too.
    assert_eq!(bb.get("/api/status", &[("Cookie", &format!("theme=dark; {cookie}; x=1"))]).code, 200);
    // A second login is a second session; both work.
    let cookie2 = bb.post("/login", &[], &format!("secret={secret}")).cookie();
    assert_ne!(cookie, cookie2);
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie2)]).code, 200);
    // A forged token is nothing.
    let forged = format!("bb_session={}", "0".repeat(64));
    assert_eq!(bb.get("/api/status", &[("Cookie", &forged)]).code, 401);

    let r = bb.post("/logout", &[("Cookie", &cookie)], "");
    assert_eq!((r.code, r.header("Location")), (303, Some("/login")), "{r:?}");
    assert!(r.header("Set-Cookie").unwrap().contains("Max-Age=0"), "{r:?}");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 401, "the session outlived logout");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie2)]).code, 200, "logout ended another session");
    bb.stop();
}

#[test]
fn rapid_wrong_logins_get_429_with_retry_after_and_then_a_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), "stderr.log");
    let secret = secret_of(dir.path());
    let mut codes = Vec::new();
    for _ in 0..12 {
        let r = bb.post("/login", &[], "secret=wrong");
        if r.code == 429 {
            let after: u64 = r.header("Retry-After").unwrap_or_else(|| panic!("{r:?}")).parse().unwrap();
            assert!(after >= 1, "{r:?}");
        }
        codes.push(r.code);
    }
    assert!(codes.iter().all(|&c| c == 401 || c == 429), "{codes:?}");
    assert!(codes.contains(&429), "no rate limit: {codes:?}");
    // While the bucket is empty even the right secret is not checked (no oracle for guesses),
    // and wrong Bearer tokens count too.
    assert_eq!(bb.post("/login", &[], &format!("secret={secret}")).code, 429);
    assert_eq!(bb.get("/api/status", &[("Authorization", &bearer("f00"))]).code, 429);
    std::thread::sleep(Duration::from_millis(1100));
    let r = bb.post("/login", &[], &format!("secret={secret}"));
    assert_eq!(r.code, 303, "the limit did not lift: {r:?}");
    let cookie = r.cookie();

    // Ten failures in a row, paced under the bucket, lock secret checks for a minute.
    let t = Instant::now();
    let mut failures = 0;
    let mut locked = None;
    while t.elapsed() < Duration::from_secs(30) && locked.is_none() {
        let r = bb.post("/login", &[], "secret=wrong");
        match r.code {
            401 => failures += 1,
            429 if failures >= 10 => locked = Some(r.header("Retry-After").unwrap().parse::<u64>().unwrap()),
            429 => std::thread::sleep(Duration::from_millis(1050)),
            c => panic!("{c}: {r:?}"),
        }
    }
    let locked = locked.expect("no lockout after 10 failures");
    assert!(locked > 30, "Retry-After {locked}");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(bb.post("/login", &[], &format!("secret={secret}")).code, 429, "the lockout let a login through");
    // An existing session still works during the lockout.
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 200);
    let err = bb.stop();
    assert!(err.contains("failed logins in a row"), "{err}");
}

#[test]
fn cross_site_mutations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), "stderr.log");
    let secret = secret_of(dir.path());
    let body = format!("secret={secret}");
    let same = format!("http://{}", bb.addr);
    let cookie = bb.post("/login", &[("Origin", &same), ("Sec-Fetch-Site", "same-origin")], &body).cookie();

    // Login CSRF: a foreign page posting the form.
    for h in [
        [("Origin", "http://evil.example"), ("X-Nothing", "")],
        [("Origin", "null"), ("X-Nothing", "")],
        [("Origin", &format!("{same}.evil.example")), ("X-Nothing", "")],
        [("Sec-Fetch-Site", "cross-site"), ("X-Nothing", "")],
        [("Sec-Fetch-Site", "same-site"), ("Origin", &same)],
    ] {
        let r = bb.post("/login", &h, &body);
        assert_eq!(r.code, 403, "{h:?}: {r:?}");
        assert!(r.header("Set-Cookie").is_none(), "{r:?}");
    }
    // Logging a user out from another site does not work either, with cookie or Bearer.
    let r = bb.post("/logout", &[("Cookie", &cookie), ("Origin", "http://evil.example")], "");
    assert_eq!(r.code, 403, "{r:?}");
    let r = bb.post("/api/status", &[("Authorization", &bearer(&secret)), ("Origin", "https://evil.example")], "");
    assert_eq!(r.code, 403, "{r:?}");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 200, "a cross-site POST ended the session");
    // Reads are not refused for their Origin (they change nothing).
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie), ("Origin", "http://evil.example")]).code, 200);
    // The same site, and clients that send neither header (curl), may mutate.
    let r = bb.post("/logout", &[("Cookie", &cookie), ("Origin", &same), ("Sec-Fetch-Site", "same-origin")], "");
    assert_eq!(r.code, 303, "{r:?}");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 401);
    assert_eq!(bb.post("/logout", &[], "").code, 303);
    bb.stop();
}

/// Issue 21: a signed-in phone stays signed in across a clean restart and a kill -9 (sessions are
/// kept hashed in DATA/sessions, never the token); "sign out everywhere" ends them all; a damaged
/// sessions file locks nobody out.
#[test]
fn sessions_survive_restarts_and_kill_9_and_sign_out_everywhere_ends_them() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), "stderr1.log");
    let secret = secret_of(dir.path());
    let cookie = bb.post("/login", &[], &format!("secret={secret}")).cookie();
    let cookie2 = bb.post("/login", &[], &format!("secret={secret}")).cookie();
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 200);
    let file = std::fs::read_to_string(dir.path().join("data/sessions")).expect("DATA/sessions");
    assert_eq!(file.lines().count(), 2, "{file}");
    let token = cookie.trim_start_matches("bb_session=");
    assert!(!file.contains(token), "the token itself is stored: {file}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/sessions")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "DATA/sessions is readable by others: {mode:o}");
    }
    bb.stop();
    // A clean restart.
    let bb = Bb::start(dir.path(), "stderr2.log");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 200, "signed out by a restart");
    // kill -9 (a power cut, as far as this process can tell).
    let mut bb = bb;
    let _ = bb.child.kill();
    let _ = bb.child.wait();
    drop(bb);
    let bb = Bb::start(dir.path(), "stderr3.log");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 200, "signed out by a kill -9");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie2)]).code, 200);
    // Logout of one survives a restart too; the other session stays.
    assert_eq!(bb.post("/logout", &[("Cookie", &cookie2)], "").code, 303);
    bb.stop();
    let bb = Bb::start(dir.path(), "stderr4.log");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie2)]).code, 401, "a logged-out session came back");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 200);
    // Sign out everywhere: needs a session or the secret, ends every session, for good.
    assert_eq!(bb.post("/logout-everywhere", &[], "").code, 401);
    let r = bb.post("/logout-everywhere", &[("Cookie", &cookie)], "");
    assert_eq!(r.code, 303, "{r:?}");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 401);
    bb.stop();
    let bb = Bb::start(dir.path(), "stderr5.log");
    assert_eq!(bb.get("/api/status", &[("Cookie", &cookie)]).code, 401, "a session outlived sign out everywhere");
    bb.stop();
    // A damaged sessions file: logged, ignored; the secret still signs in.
    std::fs::write(dir.path().join("data/sessions"), "garbage\n\u{0}\u{1}zz 12\n").unwrap();
    let bb = Bb::start(dir.path(), "stderr6.log");
    let c = bb.post("/login", &[], &format!("secret={secret}")).cookie();
    assert_eq!(bb.get("/api/status", &[("Cookie", &c)]).code, 200);
    let err = bb.stop();
    assert!(err.contains("damaged line"), "{err}");
}
