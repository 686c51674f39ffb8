//! `blackbox run` as a child process for tests that drive it over HTTP (offload, alerts).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `blackbox run` child on the synthetic camera, data in `dir/data`.
pub struct Run {
    pub dir: PathBuf,
    child: Child,
    addr: String,
    log: PathBuf,
    secret: String,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Run {
    pub fn start(dir: &Path) -> Run {
        Run::start_with(dir, "")
    }

    /// With more config keys (`"key": value, ...`).
    pub fn start_with(dir: &Path, more_config: &str) -> Run {
        let more = if more_config.is_empty() { String::new() } else { format!(", {more_config}") };
        let config = format!(r#"{{"video_res_width": 160, "video_res_height": 120, "video_fps": 10, "storage_cap_gb": 1, "segment_length_s": 60{more}}}"#);
        Run::start_config(dir, &config, Some("synthetic"))
    }

    /// With this whole config file, and `--source` when given (else the config's camera).
    pub fn start_config(dir: &Path, config: &str, source: Option<&str>) -> Run {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join(format!("stderr-{}.log", free_port()));
        std::fs::write(dir.join("cfg.json"), config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_blackbox"));
        cmd.arg("run");
        if let Some(s) = source {
            cmd.args(["--source", s]);
        }
        let child = cmd
            .arg("--data")
            .arg(dir.join("data"))
            .arg("--config")
            .arg(dir.join("cfg.json"))
            .args(["--listen", &addr])
            .env("BLACKBOX_LOG", "info")
            // Tests never set the host's clock (GPS, PUT /api/time), even as root.
            .env("BLACKBOX_CLOCK_READONLY", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut r = Run { dir: dir.to_path_buf(), child, addr, log, secret: String::new() };
        let t = Instant::now();
        while r.http("GET", "/health", "").map(|(s, _)| s) .unwrap_or(0) != 200 {
            assert!(t.elapsed() < Duration::from_secs(20), "blackbox did not come up: {}", r.stderr());
            std::thread::sleep(Duration::from_millis(100));
        }
        r.secret = std::fs::read_to_string(dir.join("data/secret")).unwrap().trim().to_string();
        r
    }

    /// `127.0.0.1:PORT` of its dashboard.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn http(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.secret,
            body.len()
        )?;
        let r = blackbox::offload::http::read_response(&mut s, method == "HEAD")?;
        Ok((r.status, r.body_text()))
    }

    /// Kills it (SIGKILL: a crash or a power cut, as far as the process can tell).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: a clean stop; the log.
    pub fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
        self.stderr()
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let (st, body) = self.http("GET", path, "").unwrap();
        assert_eq!(st, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn wait(&self, secs: u64, what: &str, mut f: impl FnMut(&Run) -> bool) {
        let t = Instant::now();
        while !f(self) {
            assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

