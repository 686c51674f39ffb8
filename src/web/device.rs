//! The device from the Settings page (docs/API.md, "Device"):
//!
//! - `GET /api/camera/modes`: the sizes and frame rates the recording camera offers (what
//!   `blackbox cameras` lists for its node), so the page offers those instead of free numbers;
//!   sources without a fixed list (the test pattern, files) offer common sizes.
//! - `GET`/`PUT /api/device/credentials`: the Wi-Fi name, Wi-Fi password, country and the
//!   dashboard password. On the appliance (`run --appliance`) they go to
//!   `DATA/credentials.pending` (mode 0600, written atomically), which the boot script
//!   `credentials` merges into `blackbox.txt` on the boot partition at the next start (it
//!   validates them again, writes the file atomically and deletes the pending one). Elsewhere
//!   only the dashboard password applies: it replaces `DATA/secret` for the next start. GET
//!   never returns a password, only which ones are waiting for the next start.
//! - `POST /api/device/reboot {"confirm":"reboot"}`: on the appliance, asks init for a clean
//!   reboot (SIGTERM to PID 1: busybox init runs the shutdown script, which stops the
//!   recorder cleanly); elsewhere 409.
//! - `POST /api/storage/erase {"confirm":"erase"}`: every recording, protected range, event
//!   and thumbnail deleted (the recorder closes the store, erases, reopens: see
//!   [`crate::store::erase_all`]); recording goes on into the empty store.

use super::api::{only_keys, ApiError, ApiResult, Reply};
use super::json::{self, Value};
use super::status::JsonStr;
use crate::camera::list::{self, Interval, SizeInfo};
use core::fmt::Write as _;
use picoserve::response::StatusCode;
use std::path::Path;

/// The pending credentials file in the data dir.
pub const PENDING: &str = "credentials.pending";

/// Sizes offered when the source takes any size.
const COMMON_SIZES: &[(u32, u32)] = &[(1920, 1080), (1280, 720), (960, 540), (640, 480), (640, 360), (320, 240), (320, 180)];
const COMMON_FPS: &[u32] = &[60, 30, 25, 20, 15, 10, 5];

/// `GET /api/camera/modes`.
pub fn modes(device: Option<&Path>) -> ApiResult {
    let mut out = String::from("{");
    let Some(dev) = device else {
        let _ = write!(out, "\"device\":null,\"card\":null,\"any_size\":true,\"modes\":[");
        push_common(&mut out);
        out.push_str("]}");
        return Ok(Reply::Json(StatusCode::OK, out));
    };
    let info = list::probe(dev);
    if let Some(e) = &info.error {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{}: {e}", dev.display())));
    }
    // (width, height) -> (frame rates, formats), over every usable format.
    let mut modes: Vec<(u32, u32, Vec<u32>, Vec<String>)> = Vec::new();
    let mut any_size = false;
    for f in info.formats.iter().filter(|f| f.usable) {
        for s in &f.sizes {
            match s {
                SizeInfo::Discrete { width, height, intervals } => {
                    let i = match modes.iter().position(|m| m.0 == *width && m.1 == *height) {
                        Some(i) => i,
                        None => {
                            modes.push((*width, *height, Vec::new(), Vec::new()));
                            modes.len() - 1
                        }
                    };
                    let m = &mut modes[i];
                    if !m.3.contains(&f.fourcc) {
                        m.3.push(f.fourcc.clone());
                    }
                    for iv in intervals {
                        match *iv {
                            Interval::Discrete { num, den } if num > 0 => {
                                let fps = (f64::from(den) / f64::from(num)).round() as u32;
                                if fps > 0 && !m.2.contains(&fps) {
                                    m.2.push(fps);
                                }
                            }
                            Interval::Range { min, max } => {
                                for &fps in COMMON_FPS {
                                    let (lo, hi) = (f64::from(max.1) / f64::from(max.0.max(1)), f64::from(min.1) / f64::from(min.0.max(1)));
                                    if (lo..=hi).contains(&f64::from(fps)) && !m.2.contains(&fps) {
                                        m.2.push(fps);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                SizeInfo::Range { .. } => any_size = true,
            }
        }
    }
    modes.sort_by_key(|m| std::cmp::Reverse(u64::from(m.0) * u64::from(m.1)));
    let _ = write!(out, "\"device\":{},\"card\":{},\"any_size\":{any_size},\"modes\":[", JsonStr(&dev.display().to_string()), JsonStr(&info.card));
    for (i, (w, h, fps, formats)) in modes.iter_mut().enumerate() {
        fps.sort_unstable_by(|a, b| b.cmp(a));
        let fps: Vec<String> = fps.iter().map(u32::to_string).collect();
        let formats: Vec<String> = formats.iter().map(|f| JsonStr(f).to_string()).collect();
        let _ = write!(out, "{}{{\"width\":{w},\"height\":{h},\"fps\":[{}],\"formats\":[{}]}}", if i > 0 { "," } else { "" }, fps.join(","), formats.join(","));
    }
    if modes.is_empty() && any_size {
        push_common(&mut out);
    }
    out.push_str("]}");
    Ok(Reply::Json(StatusCode::OK, out))
}

fn push_common(out: &mut String) {
    let fps: Vec<String> = COMMON_FPS.iter().map(u32::to_string).collect();
    for (i, (w, h)) in COMMON_SIZES.iter().enumerate() {
        let _ = write!(out, "{}{{\"width\":{w},\"height\":{h},\"fps\":[{}],\"formats\":[]}}", if i > 0 { "," } else { "" }, fps.join(","));
    }
}

// --- credentials ------------------------------------------------------------------------------

const KEYS: &[&str] = &["wifi_ssid", "wifi_passphrase", "wifi_country", "dashboard_password", "home_wifi_ssid", "home_wifi_passphrase"];

/// Plain characters only (what `blackbox.txt` and hostapd take): printable ASCII.
fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Why `value` is not acceptable for `key`, in words for people.
pub fn check(key: &str, value: &str) -> Result<(), String> {
    let n = value.chars().count();
    let plain = printable(value);
    match key {
        "wifi_ssid" if !(1..=32).contains(&n) || !plain => Err("The Wi-Fi name must be 1 to 32 plain characters (letters, digits, spaces, punctuation).".into()),
        "wifi_passphrase" if !(8..=63).contains(&n) || !plain => Err("The Wi-Fi password must be 8 to 63 plain characters.".into()),
        "wifi_country" if !(value.is_empty() || (n == 2 && value.bytes().all(|b| b.is_ascii_alphabetic()))) => {
            Err("The country must be two letters, like US or DE (empty: channels allowed everywhere).".into())
        }
        "dashboard_password" if !(8..=64).contains(&n) || !plain => Err("The dashboard password must be 8 to 64 plain characters.".into()),
        "home_wifi_ssid" if n > 32 || !plain => Err("The home Wi-Fi name must be up to 32 plain characters (empty: no home Wi-Fi).".into()),
        "home_wifi_passphrase" if !(8..=63).contains(&n) || !plain => Err("The home Wi-Fi password must be 8 to 63 plain characters.".into()),
        "wifi_ssid" | "wifi_passphrase" | "wifi_country" | "dashboard_password" | "home_wifi_ssid" | "home_wifi_passphrase" => {
            // A value that starts or ends with a space would be trimmed by blackbox.txt's reader.
            if value.trim() != value { Err("No spaces at the start or the end, please.".into()) } else { Ok(()) }
        }
        _ => Err(format!("unknown setting {key:?}")),
    }
}

/// `key=value` lines of the pending file (later lines win).
fn read_pending(data_dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(data_dir.join(PENDING)).unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=')
            && KEYS.contains(&k)
        {
            out.retain(|(x, _)| x != k);
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// `GET /api/device/credentials`.
pub fn credentials(data_dir: &Path, appliance: bool) -> ApiResult {
    let pending = read_pending(data_dir);
    let names: Vec<String> = pending.iter().map(|(k, _)| JsonStr(k).to_string()).collect();
    // The network's name and country as the access point runs them (never the password).
    let mut ssid = None;
    let mut country = None;
    if appliance && let Ok(conf) = std::fs::read_to_string("/run/blackbox/hostapd.conf") {
        for line in conf.lines() {
            if let Some(v) = line.strip_prefix("ssid=") {
                ssid = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("country_code=") {
                country = Some(v.to_string());
            }
        }
    }
    // The home Wi-Fi (wifi-home): its name and state ("away", "joining", "home FREQ ADDRESS").
    let run_file = |f: &str| if appliance { std::fs::read_to_string(Path::new("/run/blackbox").join(f)).ok().map(|s| s.trim().to_string()) } else { None };
    let home_ssid = run_file("home_ssid");
    let home_state = run_file("home.state");
    let opt = |v: &Option<String>| v.as_deref().map_or("null".to_string(), |s| JsonStr(s).to_string());
    Ok(Reply::Json(
        StatusCode::OK,
        format!(
            "{{\"appliance\":{appliance},\"wifi_ssid\":{},\"wifi_country\":{},\"home_wifi_ssid\":{},\"home_wifi\":{},\"pending\":[{}],\"applies\":\"at the next start\"}}",
            opt(&ssid),
            opt(&country),
            opt(&home_ssid),
            opt(&home_state),
            names.join(",")
        ),
    ))
}

/// `PUT /api/device/credentials`: validates every value first; nothing is written unless all
/// are good.
pub fn put_credentials(data_dir: &Path, appliance: bool, o: &json::Object) -> ApiResult {
    only_keys(o, KEYS)?;
    let mut new: Vec<(String, String)> = Vec::new();
    for (k, v, _) in &o.members {
        let Value::Str(v) = v else {
            return Err(ApiError::bad_key(k, format!("{k} must be a string")));
        };
        let v = if k == "wifi_country" { v.to_ascii_uppercase() } else { v.clone() };
        check(k, &v).map_err(|m| ApiError::bad_key(k, m))?;
        new.push((k.clone(), v));
    }
    if new.is_empty() {
        return Err(ApiError::bad("nothing to change: give wifi_ssid, wifi_passphrase, wifi_country, dashboard_password, home_wifi_ssid or home_wifi_passphrase"));
    }
    if !appliance {
        if let Some((k, _)) = new.iter().find(|(k, _)| k != "dashboard_password") {
            return Err(ApiError {
                key: Some(k.clone()),
                ..ApiError::new(StatusCode::CONFLICT, "blackbox runs on a computer, not the appliance: its Wi-Fi is the computer's to set")
            });
        }
        // The dashboard password: the secret file, read at the next start.
        let pw = &new[0].1;
        crate::config::write_atomic_mode(&data_dir.join(super::auth::Secret::FILE), format!("{pw}\n").as_bytes(), 0o600)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot save the password: {e}")))?;
        log::info!("dashboard password changed from the dashboard; it applies at the next start");
        return Ok(Reply::Json(StatusCode::OK, "{\"saved\":[\"dashboard_password\"],\"applies\":\"at the next start\"}".into()));
    }
    let mut all = read_pending(data_dir);
    for (k, v) in &new {
        all.retain(|(x, _)| x != k);
        all.push((k.clone(), v.clone()));
    }
    let mut text = String::from("# Settings from the dashboard, merged into blackbox.txt at the next start.\n");
    for (k, v) in &all {
        let _ = writeln!(text, "{k}={v}");
    }
    crate::config::write_atomic_mode(&data_dir.join(PENDING), text.as_bytes(), 0o600)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot save: {e}")))?;
    let names: Vec<String> = new.iter().map(|(k, _)| JsonStr(k).to_string()).collect();
    log::info!("device settings saved for the next start: {}", new.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "));
    Ok(Reply::Json(StatusCode::OK, format!("{{\"saved\":[{}],\"applies\":\"at the next start\"}}", names.join(","))))
}

/// The `"confirm"` word a dangerous action needs.
pub fn confirmed(o: &json::Object, word: &str) -> Result<(), ApiError> {
    only_keys(o, &["confirm"])?;
    match o.get("confirm") {
        Some(Value::Str(s)) if s == word => Ok(()),
        _ => Err(ApiError::bad_key("confirm", format!("say {{\"confirm\":\"{word}\"}} to do this"))),
    }
}

/// `POST /api/device/reboot`: a clean reboot through init, a second after the answer leaves.
pub fn reboot(appliance: bool) -> ApiResult {
    if !appliance {
        return Err(ApiError::new(StatusCode::CONFLICT, "blackbox runs on a computer, not the appliance: restart it or the computer yourself"));
    }
    log::warn!("reboot requested from the dashboard");
    let spawned = std::thread::Builder::new().name("reboot".into()).spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(1));
        // busybox init: SIGTERM is "reboot" (the shutdown script stops the recorder first).
        if let Err(e) = rustix::process::kill_process(rustix::process::Pid::INIT, rustix::process::Signal::TERM) {
            log::error!("reboot: cannot signal init: {e}");
        }
    });
    if let Err(e) = spawned {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reboot: {e}")));
    }
    Ok(Reply::Json(StatusCode::ACCEPTED, "{\"rebooting\":true}".into()))
}
