//! Captive-portal answers, so a phone that joins the dash cam's Wi-Fi opens the dashboard by
//! itself.
//!
//! After joining a network, phones and laptops fetch a well-known URL and compare the answer
//! with the one they expect (Android: 204 from `/generate_204`; Apple: a "Success" page from
//! `/hotspot-detect.html`; Windows: "Microsoft Connect Test" from `/connecttest.txt`; Firefox:
//! "success" from `/success.txt`). On the appliance every DNS name resolves to the device
//! (dnsmasq `address=/#/...`), so those requests reach blackbox. A redirect instead of the
//! expected answer is the sign of a captive portal: the system opens its portal browser at the
//! redirect's target, the dashboard's login page.
//!
//! The target is `http://HOST/login` with the HOST given by `--portal-host` (the appliance
//! passes its access-point address), else `/login` on whatever host the probe asked for.
//! These routes are public (no credentials), like `/login` itself.

use picoserve::response::{Response, StatusCode};
use picoserve::routing::{PathRouter, get};
use picoserve::Router;
use std::sync::OnceLock;

/// The probe paths of the common operating systems and browsers.
pub const PROBES: &[&str] = &[
    "/generate_204",              // Android, Chrome OS
    "/gen_204",                   // Android (older)
    "/hotspot-detect.html",       // Apple iOS / macOS
    "/library/test/success.html", // Apple (older)
    "/connecttest.txt",           // Windows 10/11
    "/ncsi.txt",                  // Windows (older)
    "/redirect",                  // Windows: where it sends the browser
    "/success.txt",               // Firefox
    "/canonical.html",            // Firefox
];

static TARGET: OnceLock<String> = OnceLock::new();

/// Sets the host (name or IP, optionally `:port`) the probes are redirected to. Refuses
/// anything that is not a plain host, so no header can be injected through it.
pub fn set_portal_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !ok {
        return Err(format!("--portal-host {host:?} is not a host name or address"));
    }
    TARGET.set(format!("http://{host}/login")).map_err(|_| "--portal-host given twice".to_string())
}

/// The `--portal-host` (name or address, maybe with a port), if given.
pub fn host() -> Option<&'static str> {
    TARGET.get()?.strip_prefix("http://")?.strip_suffix("/login")
}

/// Where probes are sent.
pub fn target() -> &'static str {
    TARGET.get().map_or("/login", String::as_str)
}

/// Whether `path` is one of the probe paths (public, answered with the redirect).
pub fn is_probe(path: &str) -> bool {
    PROBES.contains(&path)
}

fn redirect() -> impl picoserve::response::IntoResponse {
    // 302, as the portal detectors expect; never cached, or a later visit would skip the check.
    Response::new(StatusCode::FOUND, "")
        .with_header("Location", target())
        .with_header("Cache-Control", "no-store")
}

/// `router` plus the probe routes.
pub fn routes<R: PathRouter>(router: Router<R>) -> Router<impl PathRouter> {
    router
        .route(PROBES[0], get(|| async { redirect() }))
        .route(PROBES[1], get(|| async { redirect() }))
        .route(PROBES[2], get(|| async { redirect() }))
        .route(PROBES[3], get(|| async { redirect() }))
        .route(PROBES[4], get(|| async { redirect() }))
        .route(PROBES[5], get(|| async { redirect() }))
        .route(PROBES[6], get(|| async { redirect() }))
        .route(PROBES[7], get(|| async { redirect() }))
        .route(PROBES[8], get(|| async { redirect() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_paths_are_exactly_the_listed_ones() {
        assert!(is_probe("/generate_204") && is_probe("/hotspot-detect.html") && is_probe("/success.txt"));
        assert!(!is_probe("/generate_204/x") && !is_probe("/") && !is_probe("/api/status"));
    }
}
