//! What the appliance asks of `blackbox run`, against a real process on 127.0.0.1: phones'
//! captive-portal probes are redirected to the login page (`--portal-host`), the owner's
//! password from the boot partition works as the device secret, and `--watchdog` pets a
//! device while frames flow and disarms it (magic 'V') only on a deliberate stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Bb {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Bb {
    fn start(dir: &Path, extra: &[&str]) -> Bb {
        let cfg = dir.join("cfg.json");
        std::fs::write(&cfg, r#"{"video_res_width": 160, "video_res_height": 120, "video_fps": 30, "storage_cap_gb": 1}"#)
            .unwrap();
        let log = dir.join("stderr.log");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_blackbox"))
            .args(["run", "--source", "synthetic", "--data"])
            .arg(dir.join("data"))
            .arg("--config")
            .arg(&cfg)
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let bb = Bb { child, addr, log };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if bb.get("/health", "127.0.0.1", &[]).is_ok_and(|r| r.0 == 200) {
                return bb;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not come up: {}", bb.stderr());
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET with the given Host header; returns (status, Location header, body).
    fn get(&self, path: &str, host: &str, headers: &[&str]) -> std::io::Result<(u16, Option<String>, String)> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let code = line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut location = None;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("location")
            {
                location = Some(v.trim().to_string());
            }
        }
        let mut body = String::new();
        let _ = r.read_to_string(&mut body);
        Ok((code, location, body))
    }

    /// SIGTERM; returns the exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let st = self.child.wait().unwrap();
        (st.code(), self.stderr())
    }
}

impl Drop for Bb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PROBES: &[(&str, &str)] = &[
    ("connectivitycheck.gstatic.com", "/generate_204"),
    ("captive.apple.com", "/hotspot-detect.html"),
    ("www.msftconnecttest.com", "/connecttest.txt"),
    ("detectportal.firefox.com", "/success.txt"),
];

#[test]
fn captive_portal_probes_are_redirected_to_the_login_page_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), &["--portal-host", "192.168.4.1"]);
    for (host, path) in PROBES {
        let (code, loc, body) = bb.get(path, host, &[]).unwrap();
        assert_eq!(code, 302, "{host}{path}: {body}");
        assert_eq!(loc.as_deref(), Some("http://192.168.4.1/login"), "{host}{path}");
        // Not the answer the OS expects from an open internet connection.
        assert!(!body.contains("Success") && !body.contains("Microsoft"), "{body}");
    }
    // The login page it leads to is public; the rest still needs credentials.
    assert_eq!(bb.get("/login", "192.168.4.1", &[]).unwrap().0, 200);
    assert_eq!(bb.get("/api/status", "192.168.4.1", &[]).unwrap().0, 401);
    let (code, _, _) = bb.get("/generate_204/../api/status", "x", &[]).unwrap();
    assert_ne!(code, 200);
    let (c, err) = bb.stop();
    assert_eq!(c, Some(0), "{err}");
}

#[test]
fn without_a_portal_host_probes_go_to_the_login_page_of_the_same_host() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), &[]);
    let (code, loc, _) = bb.get("/generate_204", "connectivitycheck.gstatic.com", &[]).unwrap();
    assert_eq!((code, loc.as_deref()), (302, Some("/login")));
}

#[test]
fn a_portal_host_that_is_not_a_host_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_blackbox"))
        .args(["run", "--source", "synthetic", "--portal-host", "a\r\nSet-Cookie: x", "--data"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--portal-host"));
}

#[test]
fn the_owners_password_in_the_secret_file_is_the_dashboard_secret() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // What the appliance's first boot writes from blackbox.txt's dashboard_password.
    std::fs::write(data.join("secret"), "kind-otter-57-maple\n").unwrap();
    std::fs::set_permissions(data.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let bb = Bb::start(dir.path(), &[]);
    let ok = bb.get("/api/status", "127.0.0.1", &["Authorization: Bearer kind-otter-57-maple"]).unwrap();
    assert_eq!(ok.0, 200, "{}", ok.2);
    let bad = bb.get("/api/status", "127.0.0.1", &["Authorization: Bearer kind-otter-57-mapl"]).unwrap();
    assert_eq!(bad.0, 401);
    let (c, err) = bb.stop();
    assert_eq!(c, Some(0));
    assert!(!err.contains("kind-otter"), "the password stays out of the log: {err}");
    assert!(!err.contains("first start"), "a given password is not a generated one: {err}");
}

#[test]
fn the_watchdog_is_petted_while_recording_and_disarmed_only_by_a_deliberate_stop() {
    // A regular file stands in for /dev/watchdog: it refuses the ioctls, so every keepalive
    // is a one-byte write, and the magic close is a 'V'. (The real i6300esb reset is proven
    // in the qemu boot test, scripts/qemu/appliance-test.)
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("watchdog");
    std::fs::write(&dev, b"").unwrap();
    let bb = Bb::start(dir.path(), &["--watchdog", dev.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(3500));
    let (c, err) = bb.stop();
    assert_eq!(c, Some(0), "{err}");
    let bytes = std::fs::read(&dev).unwrap();
    assert!(bytes.len() >= 3, "at least one keepalive a second: {bytes:?}\n{err}");
    assert_eq!(bytes.last(), Some(&b'V'), "{err}");
    assert!(err.contains("watchdog:") && err.contains("disarmed"), "{err}");

    // Killed (not a deliberate stop): no magic close, the watchdog stays armed.
    std::fs::write(&dev, b"").unwrap();
    let mut bb = Bb::start(dir.path(), &["--watchdog", dev.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1500));
    bb.child.kill().unwrap();
    bb.child.wait().unwrap();
    let bytes = std::fs::read(&dev).unwrap();
    assert!(!bytes.is_empty() && !bytes.contains(&b'V'), "{bytes:?}");
}

#[test]
fn a_missing_watchdog_device_is_logged_and_recording_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let bb = Bb::start(dir.path(), &["--watchdog", "/nonexistent/watchdog"]);
    std::thread::sleep(Duration::from_millis(1000));
    let (c, err) = bb.stop();
    assert_eq!(c, Some(0), "{err}");
    assert!(err.contains("watchdog: cannot open /nonexistent/watchdog"), "{err}");
    let frames: u64 = err
        .split("run summary: frames=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(frames > 0, "{err}");
}
