//! `/api/controls` on a real `blackbox run` with a source that has no controls (synthetic),
//! on 127.0.0.1: the empty list, 404 for any id, auth and cross-site refusal, ids that are not
//! numbers, malformed bodies. The routes against a real V4L2 driver (vivid) are checked in the
//! qemu rig: scripts/qemu/controls-test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Bb {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Bb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Bb {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = dir.path().join("cfg.json");
    std::fs::write(&cfg, r#"{"video_codec": "mjpeg", "video_res_width": 160, "video_res_height": 120, "video_fps": 30, "storage_cap_gb": 1}"#).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_blackbox"))
        .args(["run", "--source", "synthetic", "--data"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .arg("--listen")
        .arg(addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bb = Bb { child, addr, dir };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if bb.dir.path().join("data/secret").exists() && request(&bb, "GET", "/health", &[], "").0 == 200 {
            return bb;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("blackbox did not come up");
}

fn secret(bb: &Bb) -> String {
    std::fs::read_to_string(bb.dir.path().join("data/secret")).unwrap().trim().to_string()
}

/// One request on a fresh connection; returns (status, body).
fn request(bb: &Bb, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(bb.addr) else { return (0, String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", bb.addr);
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn authed(bb: &Bb, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {}", secret(bb));
    let (status, text) = request(bb, method, path, &[("Authorization", &auth)], body);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text:?}"));
    (status, json)
}

#[test]
fn a_source_without_controls_lists_none_and_every_id_is_404() {
    let bb = start();
    let (status, j) = authed(&bb, "GET", "/api/controls", "");
    assert_eq!(status, 200);
    assert_eq!(j, serde_json::json!({"controls": []}));
    let (status, j) = authed(&bb, "PUT", "/api/controls/9963776", r#"{"value":1}"#);
    assert_eq!(status, 404, "{j}");
    assert!(j["error"].as_str().unwrap().contains("no control 9963776"), "{j}");
    let (status, _) = authed(&bb, "POST", "/api/controls/9963776/reset", "");
    assert_eq!(status, 404);
}

#[test]
fn controls_need_auth_and_refuse_cross_site_changes() {
    let bb = start();
    assert_eq!(request(&bb, "GET", "/api/controls", &[], "").0, 401);
    assert_eq!(request(&bb, "PUT", "/api/controls/9963776", &[], r#"{"value":1}"#).0, 401);
    assert_eq!(request(&bb, "POST", "/api/controls/9963776/reset", &[], "").0, 401);
    let auth = format!("Bearer {}", secret(&bb));
    let evil = [("Authorization", auth.as_str()), ("Origin", "http://evil.example")];
    assert_eq!(request(&bb, "PUT", "/api/controls/9963776", &evil, r#"{"value":1}"#).0, 403);
    assert_eq!(request(&bb, "POST", "/api/controls/9963776/reset", &evil, "").0, 403);
}

#[test]
fn control_ids_are_numbers_never_paths() {
    let bb = start();
    let auth = format!("Bearer {}", secret(&bb));
    let h = [("Authorization", auth.as_str())];
    for path in [
        "/api/controls/abc",
        "/api/controls/..",
        "/api/controls/..%2f..%2fetc%2fpasswd",
        "/api/controls/%2e%2e",
        "/api/controls/1%00",
        "/api/controls/-1",
        "/api/controls/99999999999999999999",
        "/api/controls/1/2",
    ] {
        let (status, _) = request(&bb, "PUT", path, &h, r#"{"value":1}"#);
        assert_eq!(status, 404, "PUT {path}");
    }
    // The server is still fine afterwards.
    assert_eq!(authed(&bb, "GET", "/api/controls", "").0, 200);
}

#[test]
fn malformed_control_bodies_get_400_with_a_reason() {
    let bb = start();
    for body in ["", "{", "{\"value\":null}", "{\"valeu\":1}", "{\"value\":1,\"x\":1}", "[1]"] {
        let (status, j) = authed(&bb, "PUT", "/api/controls/9963776", body);
        assert_eq!(status, 400, "body {body:?}: {j}");
        assert!(!j["error"].as_str().unwrap().is_empty());
    }
}

#[test]
fn the_controls_command_reports_a_missing_device_and_bad_usage() {
    let bb = env!("CARGO_BIN_EXE_blackbox");
    let out = Command::new(bb).args(["controls", "/nonexistent/video7"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/video7") && err.contains("open"), "{err}");
    assert_eq!(Command::new(bb).args(["controls"]).output().unwrap().status.code(), Some(2));
    assert_eq!(Command::new(bb).args(["controls", "/dev/null", "--set"]).output().unwrap().status.code(), Some(2));
    // /dev/null is no V4L2 device: an error, not a panic.
    let out = Command::new(bb).args(["controls", "/dev/null"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}
