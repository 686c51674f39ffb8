//! The dashboard in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`,
//! installed by scripts/test) driven over W3C WebDriver against a real
//! `blackbox run --source synthetic` on 127.0.0.1.
//!
//! The WebDriver client is the few calls these tests need, as JSON over std's TcpStream (one
//! request per connection): no async runtime, no extra crate. Screenshots of every page land in
//! `target/screenshots/` (phone 390x844 and desktop 1280x800) for a human to look at.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn screenshots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------------------------------------
// blackbox

struct Bb {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
    log: PathBuf,
}

impl Bb {
    /// `blackbox run --source synthetic` on DATA (kept across restarts) at 127.0.0.1:PORT.
    fn start(data: &Path, port: u16) -> Bb {
        std::fs::create_dir_all(data).unwrap();
        let log = data.with_extension(format!("{port}.log"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_blackbox"))
            .args(["run", "--source", "synthetic", "--data"])
            .arg(data)
            .arg("--listen")
            .arg(addr.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let bb = Bb { child, addr, data: data.to_path_buf(), log };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if http(addr, "GET", "/health", None, None).is_ok_and(|(code, _)| code == 200) {
                return bb;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("blackbox did not come up: {}", std::fs::read_to_string(&bb.log).unwrap_or_default());
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn secret(&self) -> String {
        std::fs::read_to_string(self.data.join("secret")).expect("no DATA/secret").trim().to_string()
    }

    /// An API call with the Bearer secret (the test's own view, independent of the browser).
    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (code, text) = http(self.addr, method, path, body.map(|b| b.to_string()).as_deref(), Some(&self.secret()))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// SIGTERM and wait: the clean stop a user's restart is.
    fn stop(mut self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "blackbox exited with {status}: {}", std::fs::read_to_string(&self.log).unwrap_or_default());
    }
}

impl Drop for Bb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on its own connection; returns status and body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>, bearer: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(b) = bearer {
        req.push_str(&format!("Authorization: Bearer {b}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status)?;
    let code: u16 = status.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other(format!("bad status line {status:?}")))?;
    let mut len = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse::<usize>().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = len {
        out.resize(n, 0);
        r.read_exact(&mut out)?;
    } else {
        r.read_to_end(&mut out)?;
    }
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}

// ---------------------------------------------------------------------------------------------
// WebDriver

struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `chromedriver` ({e}): this test needs Debian's chromium and chromium-driver (scripts/test installs them)")
            });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Owned from here on: dropping it (also on the panic below) kills chromedriver.
        let driver = Driver { child, addr };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if http(addr, "GET", "/status", None, None).is_ok_and(|(c, _)| c == 200) {
                return driver;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not come up");
    }

    /// A headless Chromium session; `phone` emulates a 390x844 touch screen, else 1280x800.
    fn session(&self, phone: bool) -> Browser {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-dev-shm-usage",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
            "--hide-scrollbars",
        ];
        args.push(if phone { "--window-size=390,844" } else { "--window-size=1280,800" });
        let mut opts = json!({ "args": args });
        if phone {
            opts["mobileEmulation"] = json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2, "touch": true}});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": opts}}});
        let v = wd(self.addr, "POST", "/session", Some(&caps)).unwrap_or_else(|e| panic!("no browser session: {e}"));
        let id = v["sessionId"].as_str().expect("sessionId").to_string();
        Browser { addr: self.addr, id, phone }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command; returns `value`, or the WebDriver error as text.
fn wd(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let text = body.map(|b| b.to_string()).unwrap_or_else(|| if method == "POST" { "{}".into() } else { String::new() });
    let (code, resp) = http(addr, method, path, if text.is_empty() { None } else { Some(&text) }, None).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&resp).map_err(|e| format!("{e}: {resp}"))?;
    if code != 200 {
        return Err(format!("{code}: {}", v["value"]));
    }
    Ok(v["value"].clone())
}

struct Browser {
    addr: SocketAddr,
    id: String,
    phone: bool,
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        wd(self.addr, method, &format!("/session/{}{path}", self.id), body.as_ref())
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).unwrap();
    }

    /// Runs `script` (a function body; `arguments` as usual) and returns its value.
    fn js(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script` with a callback as its last argument (fetch and the like).
    fn js_async(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/async", Some(json!({"script": script, "args": []})))
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    fn find(&self, css: &str) -> Option<String> {
        self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})))
            .ok()
            .and_then(|v| v[ELEMENT].as_str().map(String::from))
    }

    /// Waits until `css` matches a visible element; returns its id.
    fn wait_for(&self, css: &str, what: &str) -> String {
        let sel = serde_json::to_string(css).unwrap();
        self.wait_until(&format!("const e = document.querySelector({sel}); return !!e && e.offsetParent !== null;"), what);
        self.find(css).unwrap_or_else(|| panic!("{what}: {css} is visible but cannot be found: {:?}", self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})))))
    }

    /// Waits (at most 15 s) until `script` returns something truthy; returns it.
    fn wait_until(&self, script: &str, what: &str) -> Value {
        let t = Instant::now();
        loop {
            let v = self.js(script);
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if t.elapsed() > Duration::from_secs(15) {
                self.shot("failure");
                panic!("timed out waiting for {what}; page: {}", self.js("return location.href + '\\n' + document.body.innerText.slice(0, 1500)"));
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn click(&self, css: &str) {
        let id = self.wait_for(css, css);
        // Like a thumb would: bring it to the middle of the screen, clear of the tab bar.
        let sel = serde_json::to_string(css).unwrap();
        self.js(&format!("document.querySelector({sel}).scrollIntoView({{block: 'center', behavior: 'instant'}}); return true;"));
        self.cmd("POST", &format!("/element/{id}/click"), None).unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.wait_for(css, css);
        self.cmd("POST", &format!("/element/{id}/clear"), None).unwrap();
        self.cmd("POST", &format!("/element/{id}/value"), Some(json!({ "text": text }))).unwrap();
    }

    fn text(&self, css: &str) -> String {
        let sel = serde_json::to_string(css).unwrap();
        self.js(&format!("const e = document.querySelector({sel}); return e ? e.textContent : null;")).as_str().unwrap_or("").to_string()
    }

    /// Saves a PNG of the viewport as `target/screenshots/<phone|desktop>-<name>.png`.
    fn shot(&self, name: &str) {
        let Ok(v) = self.cmd("GET", "/screenshot", None) else { return };
        let png = base64_decode(v.as_str().unwrap_or(""));
        let kind = if self.phone { "phone" } else { "desktop" };
        std::fs::write(screenshots_dir().join(format!("{kind}-{name}.png")), png).unwrap();
    }

    fn login(&self, bb: &Bb) {
        self.goto(&bb.url("/"));
        self.wait_until("return location.pathname === '/login';", "the redirect to /login");
        self.shot("login");
        self.type_into("#secret", &bb.secret());
        self.click("button[type=submit]");
        self.wait_until("return location.pathname === '/' && !!document.getElementById('live-img');", "the dashboard after login");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.cmd("DELETE", "", None);
    }
}

/// Standard base64 (screenshots), without a crate for it.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A fingerprint of the live `<img>`'s current frame (drawn into a small canvas).
const LIVE_PIXELS: &str = "const img = document.getElementById('live-img');
if (!img || !img.naturalWidth) return null;
const c = document.createElement('canvas'); c.width = 96; c.height = 54;
const g = c.getContext('2d'); g.drawImage(img, 0, 0, 96, 54);
const d = g.getImageData(0, 0, 96, 54).data; let h = 0;
for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) >>> 0;
return String(h);";

/// Waits until the live image shows a frame different from the one it shows now.
fn assert_live_image_changes(b: &Browser) {
    let first = b.wait_until(LIVE_PIXELS, "a first live frame");
    let t = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = b.js(LIVE_PIXELS);
        if !now.is_null() && now != first {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the live image did not change in 10 s");
    }
}

fn start_blackbox(dir: &Path) -> Bb {
    // Small frames keep two browsers and two recorders light on a 2-core CI machine.
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("data/config.json"),
        r#"{"video_res_width": 320, "video_res_height": 180, "video_fps": 15, "segment_length_s": 5, "storage_cap_gb": 1}"#,
    )
    .unwrap();
    Bb::start(&dir.join("data"), free_port())
}

// ---------------------------------------------------------------------------------------------
// The tests

/// A phone logs in with the device secret, watches live video that moves, opens the day's
/// timeline, plays a recording (the frame-time overlay advances), opens the camera controls,
/// and logs out, after which the API refuses the browser.
#[test]
fn a_phone_logs_in_watches_live_plays_a_recording_and_logs_out() {
    let dir = tempfile::tempdir().unwrap();
    let bb = start_blackbox(dir.path());
    let driver = Driver::start();
    let b = driver.session(true);

    // Not logged in: the dashboard sends the browser to the login form.
    b.login(&bb);

    // Live: the picture changes, the recorder says it is recording, the fps counter runs.
    assert_live_image_changes(&b);
    b.wait_until("return document.getElementById('rec-pill').textContent === 'REC';", "the REC state from /api/events");
    b.wait_until("return /^[1-9][0-9.]* fps$/.test(document.getElementById('live-fps').textContent);", "a nonzero fps figure");
    b.shot("live");

    // Stop and start recording from the button; the state pill follows the recorder.
    b.click("#rec-btn");
    b.wait_until("return document.getElementById('rec-pill').textContent === 'Stopped';", "the Stopped state");
    assert_eq!(bb.api("GET", "/api/recording", None).1["recording"], json!(false));
    b.click("#rec-btn");
    b.wait_until("return document.getElementById('rec-pill').textContent === 'REC';", "REC again");
    assert_eq!(bb.api("GET", "/api/recording", None).1["recording"], json!(true));

    // "Save last 60 s" protects a range on the device.
    b.click("#save-last");
    b.wait_until("const t = document.getElementById('toast'); return !t.hidden && t.textContent.startsWith('Protected ');", "the protected toast");
    let (_, prot) = bb.api("GET", "/api/protected", None);
    assert_eq!(prot["ranges"].as_array().map(Vec::len), Some(1), "{prot}");

    // Digital zoom: the slider zooms, the minimap appears and shows the window.
    b.js("const z = document.getElementById('zoom'); z.value = '2.5'; z.dispatchEvent(new Event('input')); return true;");
    b.wait_until("return !document.getElementById('minimap').hidden;", "the minimap when zoomed");
    assert_eq!(b.text("#live-zoom"), "2.5×");
    b.shot("live-zoomed");
    b.js("const z = document.getElementById('zoom'); z.value = '1'; z.dispatchEvent(new Event('input')); return true;");

    // Camera controls. The synthetic camera has none, so the drawer says so.
    let (code, ctl) = bb.api("GET", "/api/controls", None);
    b.click("#open-controls");
    b.wait_until("return !!document.querySelector('#drawer-body .ctl, #controls-empty');", "the controls drawer");
    b.shot("controls");
    match (code, ctl["controls"].as_array().map(Vec::len)) {
        (200, Some(0)) => assert_eq!(b.text("#controls-empty"), "This camera has no adjustable controls."),
        (404, _) => assert_eq!(b.text("#controls-empty"), "Camera controls are not available in this version of blackbox."),
        // A camera with controls (not the synthetic one): move the first slider and see the
        // device take the value.
        (200, Some(_)) => {
            let moved = b.js(
                "const r = document.querySelector('#drawer-body input[type=range]:not([disabled])');
                 if (!r) return null;
                 const v = Number(r.value) === Number(r.min) ? Number(r.max) : Number(r.min);
                 r.value = String(v); r.dispatchEvent(new Event('change'));
                 return [Number(r.id.slice(4)), v];",
            );
            if let Some([id, v]) = moved.as_array().map(|a| [a[0].clone(), a[1].clone()]) {
                let t = Instant::now();
                loop {
                    let (_, now) = bb.api("GET", "/api/controls", None);
                    let c = now["controls"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap();
                    if c["value"] == v {
                        break;
                    }
                    assert!(t.elapsed() < Duration::from_secs(5), "the control did not take {v}: {c}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        other => panic!("unexpected /api/controls reply {other:?}: {ctl}"),
    }
    b.click("#drawer-close");

    // Recordings: the day's timeline has footage; tapping it opens the player.
    std::thread::sleep(Duration::from_secs(2));
    b.goto(&bb.url("/#recordings"));
    b.wait_for("#hours .bar:not(.none)", "a timeline bar with footage");
    b.wait_until("return document.getElementById('day-sum').textContent.includes('UTC');", "the day summary saying UTC");
    b.shot("recordings");
    b.click("#hours .bar:not(.none)");
    b.wait_until("return location.hash.startsWith('#player?t=');", "the player");
    let first = b.wait_until("const e = document.getElementById('player-time'); return e && e.dataset.ts ? Number(e.dataset.ts) : null;", "a first played frame");
    let overlay = b.text("#player-time");
    assert!(overlay.ends_with(" UTC") || overlay.ends_with(" local"), "the time overlay says which zone: {overlay:?}");
    let t0 = first.as_f64().unwrap();
    let later = b.wait_until(
        &format!("const e = document.getElementById('player-time'); return e && Number(e.dataset.ts) > {t0} + 300 ? Number(e.dataset.ts) : null;"),
        "the time overlay to advance while playing",
    );
    assert!(later.as_f64().unwrap() > t0);
    b.shot("player");

    // The UTC/local switch is remembered and every time says which it is.
    b.click("#zone-player button:nth-child(2)");
    b.wait_until("return document.getElementById('player-time').textContent.endsWith(' local');", "local times after the switch");
    assert_eq!(b.js("return localStorage.getItem('bb.zone');"), json!("local"));
    b.click("#zone-player button:nth-child(1)");

    // System page, then sign out: the session cookie no longer opens the API.
    b.goto(&bb.url("/#system"));
    b.wait_until("return /%$/.test(document.getElementById('sys-storage-big').textContent);", "the storage gauge");
    b.shot("system");
    b.goto(&bb.url("/#settings"));
    b.wait_for("#cfg-video_fps", "the settings form");
    b.shot("settings");
    let before = b.js_async("const done = arguments[arguments.length - 1]; fetch('/api/status').then(r => done(r.status), e => done(String(e)));");
    assert_eq!(before, json!(200), "logged in, the browser reads the API");
    b.goto(&bb.url("/#system"));
    b.click("#logout");
    b.wait_until("return location.pathname === '/login';", "the login page after sign out");
    let after = b.js_async("const done = arguments[arguments.length - 1]; fetch('/api/status').then(r => done(r.status), e => done(String(e)));");
    assert_eq!(after, json!(401), "after sign out the API answers 401");
    bb.stop();
}

/// A setting changed in the browser is validated next to its field, saved, and still there
/// after blackbox restarts. Also screenshots every page at desktop size.
#[test]
fn a_setting_saved_in_the_browser_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bb = start_blackbox(dir.path());
    let driver = Driver::start();
    let b = driver.session(false);
    b.login(&bb);
    assert_live_image_changes(&b);
    b.shot("live");

    b.goto(&bb.url("/#settings"));
    b.wait_for("#cfg-mjpeg_quality", "the settings form");
    b.shot("settings");

    // Out of range: refused, the message sits next to the field, nothing is saved.
    b.type_into("#cfg-video_fps", "500");
    b.click("#save-settings");
    let err = b.wait_until("const e = document.getElementById('cfg-video_fps-err'); return e && !e.hidden ? e.textContent : null;", "the inline error");
    assert!(err.as_str().unwrap().contains("video_fps") || err.as_str().unwrap().contains("120"), "{err}");
    b.shot("settings-error");
    b.type_into("#cfg-video_fps", "15");

    // A valid change is saved and applied.
    b.type_into("#cfg-mjpeg_quality", "63");
    b.click("#save-settings");
    b.wait_until("return document.getElementById('settings-msg').textContent.startsWith('Saved');", "the saved message");
    let (_, cfg) = bb.api("GET", "/api/config", None);
    assert_eq!(cfg["mjpeg_quality"], json!(63));
    assert_eq!(cfg["video_fps"], json!(15), "the refused value was not saved");

    b.goto(&bb.url("/#recordings"));
    b.wait_for("#hours .bar:not(.none)", "the timeline");
    b.shot("recordings");
    b.click("#seglist a.btn");
    b.wait_until("const e = document.getElementById('player-time'); return e && e.dataset.ts;", "a played frame");
    b.shot("player");
    b.goto(&bb.url("/#system"));
    b.wait_until("return /%$/.test(document.getElementById('sys-storage-big').textContent);", "the storage gauge");
    b.shot("system");
    b.goto(&bb.url("/#live"));
    b.click("#open-controls");
    b.wait_until("return !!document.querySelector('#drawer-body .ctl, #controls-empty');", "the controls drawer");
    b.shot("controls");

    // Restart blackbox on the same data directory: the browser must log in again (sessions
    // live in memory) and finds the saved value.
    let port = bb.addr.port();
    let data = bb.data.clone();
    bb.stop();
    let bb = Bb::start(&data, port);
    b.login(&bb);
    b.goto(&bb.url("/#settings"));
    let v = b.wait_until("const e = document.getElementById('cfg-mjpeg_quality'); return e ? e.value : null;", "the settings after restart");
    assert_eq!(v, json!("63"), "the saved setting did not survive the restart");
    bb.stop();
}

/// The whole response to one raw request (`Connection: close`).
fn raw(addr: SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The page shell needs a session and names its assets by a content hash; the assets are
/// public, typed, cached for a year and revalidate with 304.
#[test]
fn dashboard_assets_are_public_versioned_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let bb = start_blackbox(dir.path());
    let host = bb.addr;
    let shell = raw(host, &format!("GET / HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", bb.secret()));
    assert!(shell.starts_with("HTTP/1.1 200"), "{shell}");
    assert!(header(&shell, "Content-Type").unwrap().starts_with("text/html"), "{shell}");
    assert_eq!(header(&shell, "Cache-Control"), Some("no-cache"));
    let v = shell.split("/assets/app.js?v=").nth(1).expect("a versioned app.js").split('"').next().unwrap().to_string();
    assert_eq!(v.len(), 16, "{v}");
    assert!(!shell.contains("__V__"), "every marker is replaced");
    let etag = header(&shell, "ETag").unwrap().to_string();
    let again = raw(host, &format!("GET / HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n", bb.secret()));
    assert!(again.starts_with("HTTP/1.1 304"), "{again}");

    for (name, ty) in [("app.js", "application/javascript"), ("app.css", "text/css"), ("icon.svg", "image/svg+xml")] {
        // No credentials: assets are public.
        let r = raw(host, &format!("GET /assets/{name}?v={v} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        assert!(r.starts_with("HTTP/1.1 200"), "{name}: {r}");
        assert!(header(&r, "Content-Type").unwrap().starts_with(ty), "{name}: {r}");
        assert!(header(&r, "Cache-Control").unwrap().contains("immutable"), "{name}");
        let etag = header(&r, "ETag").expect("ETag").to_string();
        let r = raw(host, &format!("GET /assets/{name} HTTP/1.1\r\nHost: {host}\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"));
        assert!(r.starts_with("HTTP/1.1 304"), "{name}: {r}");
    }
    let r = raw(host, &format!("GET /assets/secret HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    bb.stop();
}
