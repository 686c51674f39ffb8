//! Alerts (issue 17 point 5) through `blackbox run`, with real receivers on 127.0.0.1: an SMTP
//! server (aiosmtpd from PyPI, tests/alerts/smtp_sink.py; plain, STARTTLS with a throwaway CA,
//! AUTH) and a webhook receiver (below). The outbox is replayed after a kill -9; each alert
//! carries one id on every channel; a restart without a clean stop is itself an alert.
//!
//! Needs `aiosmtpd` (BLACKBOX_ALERTS_PYTHON, else target/alerts-venv/bin/python, installed by
//! scripts/test); without it the tests fail unless BLACKBOX_SKIP_SMTP=1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::make_certs;
use support::run::Run;

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BLACKBOX_ALERTS_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/alerts-venv/bin/python");
    if p.exists() {
        return Some(p);
    }
    assert!(std::env::var("BLACKBOX_SKIP_SMTP").as_deref() == Ok("1"), "aiosmtpd is needed: scripts/test installs it into target/alerts-venv (BLACKBOX_SKIP_SMTP=1 skips)");
    None
}

struct Smtp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn start(py: &Path, extra: &[&str]) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(py)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/alerts/smtp_sink.py"))
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("ready ").unwrap_or_else(|| panic!("smtp sink: {line:?}")).parse().unwrap();
        Smtp { child, port, dir }
    }

    /// The messages received so far, oldest first.
    fn mails(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
        names.sort();
        names.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }
}

/// One request the webhook receiver got.
#[derive(Clone, Debug)]
struct Hook {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Hook {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver: answers `status` (settable) and records what it got.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Hook>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    fn start() -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (g, st) = (got.clone(), status.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let mut r = BufReader::new(c);
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let len: usize = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let code = st.load(Ordering::SeqCst);
                g.lock().unwrap().push(Hook { path, headers, body: String::from_utf8_lossy(&body).into_owned() });
                let _ = write!(r.get_mut(), "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Receiver { port, got, status }
    }

    fn got(&self) -> Vec<Hook> {
        self.got.lock().unwrap().clone()
    }
}

fn alert_id(mail: &str) -> Option<String> {
    mail.lines().find_map(|l| l.strip_prefix("X-Blackbox-Alert-Id: ")).map(|s| s.trim().to_string())
}

/// An event's alert reaches both channels with one id; while the webhook answers 503 it waits
/// in the outbox, which survives a kill -9; after the restart it is delivered, and the restart
/// without a clean stop is an alert of its own.
#[test]
fn an_event_alert_waits_in_the_outbox_across_a_kill_and_reaches_webhook_and_mail_once() {
    let Some(py) = python() else { return };
    let smtp = Smtp::start(&py, &[]);
    let hook = Receiver::start();
    hook.status.store(503, Ordering::SeqCst);
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("data")).unwrap();
    std::fs::write(
        d.path().join("data/alerts.conf"),
        format!(
            "webhook_url=http://127.0.0.1:{}/blackbox-alerts\nwebhook_format=ntfy\nsmtp_server=127.0.0.1:{}\nsmtp_security=none\nsmtp_from=cam@example.org\nsmtp_to=owner@example.org\n",
            hook.port, smtp.port
        ),
    )
    .unwrap();
    let bb = Run::start(d.path());
    bb.wait(20, "frames", |b| b.json("/api/status")["frames"].as_u64().unwrap_or(0) > 10);
    let (code, body) = bb.http("POST", "/api/incidents", r#"{"kind":"button"}"#).unwrap();
    assert_eq!(code, 201, "{body}");
    // Mail gets it; the webhook refuses (503) and the alert waits for it.
    bb.wait(30, "the mail", |_| smtp.mails().iter().any(|m| m.contains("Incident saved")));
    bb.wait(30, "a refused webhook attempt", |_| !hook.got().is_empty());
    // The mail's delivery recorded (sent) and the webhook's refusal counted (failed): only then
    // is the cut below a cut between known states.
    bb.wait(30, "the delivery and the refusal counted", |b| {
        let st = &b.json("/api/status")["alerts"];
        st["failed"].as_u64().unwrap_or(0) >= 1 && st["sent"].as_u64().unwrap_or(0) >= 1
    });
    let st = bb.json("/api/status")["alerts"].clone();
    assert!(st["queued"].as_u64().unwrap() >= 1, "the alert waits for the webhook: {st}");
    bb.kill();
    hook.status.store(200, Ordering::SeqCst);
    let bb = Run::start(d.path());
    bb.wait(60, "the webhook delivery after the restart", |_| hook.got().iter().filter(|h| h.header("Title").is_some_and(|t| t.contains("Incident saved"))).count() >= 2);
    bb.wait(60, "the restart alert", |_| hook.got().iter().any(|h| h.header("Title").is_some_and(|t| t.contains("restarted"))));
    let hooks = hook.got();
    let inc: Vec<&Hook> = hooks.iter().filter(|h| h.header("Title").is_some_and(|t| t.contains("Incident saved"))).collect();
    let id = inc[0].header("X-Blackbox-Alert-Id").unwrap().to_string();
    assert!(inc.iter().all(|h| h.header("X-Blackbox-Alert-Id") == Some(id.as_str())), "one id for every attempt: {inc:?}");
    assert_eq!(inc[0].path, "/blackbox-alerts");
    assert_eq!(inc.last().unwrap().header("Priority"), Some("high"));
    assert!(inc.last().unwrap().body.contains("locked"), "{:?}", inc.last());
    let mails = smtp.mails();
    let inc_mails: Vec<&String> = mails.iter().filter(|m| m.contains("Incident saved")).collect();
    assert_eq!(inc_mails.len(), 1, "delivered by mail once (before the kill): {mails:?}");
    assert_eq!(alert_id(inc_mails[0]).as_deref(), Some(id.as_str()), "the same id by mail and webhook");
    assert!(inc_mails[0].contains("To: owner@example.org") && inc_mails[0].contains("Subject: [blackbox "));
    // Delivered everywhere: nothing waits; a clean stop is not a restart next time.
    bb.wait(30, "an empty outbox", |b| b.json("/api/status")["alerts"]["queued"] == 0);
    let log = bb.stop();
    assert!(!log.contains("panicked"), "{log}");
    let n = hook.got().len();
    let bb = Run::start(d.path());
    std::thread::sleep(Duration::from_secs(4));
    assert!(!hook.got()[n..].iter().any(|h| h.header("Title").is_some_and(|t| t.contains("restarted"))), "a clean stop is not a restart");
    drop(bb);
}


/// The dashboard's test buttons: e-mail over STARTTLS with AUTH (the mail server's own CA),
/// a wrong password named, a server without STARTTLS refused when STARTTLS is asked for; the
/// JSON webhook's fields; and the password never comes back from the API.
#[test]
fn test_buttons_starttls_auth_and_the_json_webhook() {
    let Some(py) = python() else { return };
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(certs.path());
    let tls = Smtp::start(&py, &["--starttls", cert.to_str().unwrap(), key.to_str().unwrap(), "--user", "cam", "--password", "s3cret-pw"]);
    let plain = Smtp::start(&py, &[]);
    let hook = Receiver::start();
    let d = tempfile::tempdir().unwrap();
    let bb = Run::start(d.path());
    let put = |body: String| {
        let (code, text) = bb.http("PUT", "/api/alerts", &body).unwrap();
        assert_eq!(code, 200, "{text}");
    };
    put(format!(
        r#"{{"smtp_server":"127.0.0.1:{}","smtp_security":"starttls","smtp_user":"cam","smtp_password":"s3cret-pw","smtp_from":"cam@example.org","smtp_to":"a@example.org,b@example.org","alerts_ca_file":"{}","webhook_url":"http://127.0.0.1:{}/h?t=1","webhook_format":"json"}}"#,
        tls.port,
        ca.display(),
        hook.port
    ));
    let (_, got) = bb.http("GET", "/api/alerts", "").unwrap();
    assert!(!got.contains("s3cret-pw") && got.contains("\"smtp_password_set\":true"), "{got}");
    let (_, r) = bb.http("POST", "/api/alerts/test", r#"{"channel":"email"}"#).unwrap();
    assert!(r.contains("\"ok\":true"), "{r}");
    let m = tls.mails();
    assert_eq!(m.len(), 1);
    assert!(m[0].contains("Subject: [blackbox ") && m[0].contains("Test alert") && m[0].contains("X-Envelope-To: a@example.org,b@example.org"), "{}", m[0]);
    // A wrong password: named.
    put(r#"{"smtp_password":"wrong"}"#.into());
    let (_, r) = bb.http("POST", "/api/alerts/test", r#"{"channel":"email"}"#).unwrap();
    assert!(r.contains("\"ok\":false") && r.contains("password"), "{r}");
    // STARTTLS asked of a server without it: refused before any password is sent.
    put(format!(r#"{{"smtp_server":"127.0.0.1:{}","smtp_password":"s3cret-pw"}}"#, plain.port));
    let (_, r) = bb.http("POST", "/api/alerts/test", r#"{"channel":"email"}"#).unwrap();
    assert!(r.contains("\"ok\":false") && r.contains("STARTTLS"), "{r}");
    assert!(plain.mails().is_empty());
    // Without the mail server's CA: the certificate is refused, nothing sent.
    put(format!(r#"{{"smtp_server":"127.0.0.1:{}","alerts_ca_file":""}}"#, tls.port));
    let (_, r) = bb.http("POST", "/api/alerts/test", r#"{"channel":"email"}"#).unwrap();
    assert!(r.contains("\"ok\":false") && r.contains("trusted CA"), "{r}");
    assert_eq!(tls.mails().len(), 1);
    // The JSON webhook.
    let (_, r) = bb.http("POST", "/api/alerts/test", r#"{"channel":"webhook"}"#).unwrap();
    assert!(r.contains("\"ok\":true"), "{r}");
    let h = hook.got();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].path, "/h?t=1");
    let v: serde_json::Value = serde_json::from_str(&h[0].body).unwrap();
    assert_eq!((v["kind"].as_str(), v["title"].as_str()), (Some("test"), Some("Test alert")));
    assert!(v["time"].as_str().unwrap().ends_with('Z') && v["device"].is_string() && v["id"].is_u64(), "{v}");
    // Bad settings change nothing.
    let (code, r) = bb.http("PUT", "/api/alerts", r#"{"smtp_to":"nobody"}"#).unwrap();
    assert!(code == 400 && r.contains("smtp_to"), "{code} {r}");
    let (code, r) = bb.http("POST", "/api/alerts/test", r#"{"channel":"pigeon"}"#).unwrap();
    assert_eq!(code, 400, "{r}");
    let log = bb.stop();
    assert!(!log.contains("s3cret-pw"), "the password in the log");
    let _ = Instant::now();
}
