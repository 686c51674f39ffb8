//! Offload from the dashboard (docs/API.md, "Offload"):
//!
//! - `GET /api/offload`: the settings (the secret key never: only whether one is set) and the
//!   state (queued, verified, failed with the reason, last run);
//! - `PUT /api/offload`: new settings, checked as a whole before anything is saved; an empty or
//!   missing `s3_secret_key` keeps the one saved (write-only);
//! - `POST /api/offload/run`: "offload now" (the thread stops waiting);
//! - `POST /api/offload/test`: tries the target now (the bucket is reached with the key, a small
//!   test object is written and read back) and says what failed.

use super::api::{only_keys, ApiError, ApiResult, Reply};
use super::json::{self, Value};
use super::status::JsonStr;
use crate::offload::settings::{Settings, KEYS};
use crate::offload::{self, Status};
use core::fmt::Write as _;
use picoserve::response::StatusCode;

fn unavailable() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "offload is not running in this process")
}

fn opt_time(t: Option<i64>) -> String {
    t.map_or("null".into(), |t| format!("\"{}\"", crate::clock::Iso(t)))
}

/// The state object, shared with `/api/status`.
pub fn status_json(s: &Status) -> String {
    format!(
        "{{\"state\":\"{}\",\"mode\":\"{}\",\"target\":{},\"queued\":{},\"queued_bytes\":{},\"verified\":{},\"verified_since_start\":{},\
         \"bytes_sent\":{},\"parts_skipped\":{},\"failed\":{},\"lost_before_offload\":{},\"current\":{},\"last_run\":{},\"last_success\":{},\"last_error\":{}}}",
        if s.state.is_empty() { "off" } else { s.state },
        if s.mode.is_empty() { "off" } else { s.mode },
        JsonStr(&s.target),
        s.queued,
        s.queued_bytes,
        s.verified,
        s.verified_since_start,
        s.bytes_sent,
        s.parts_skipped,
        s.failed,
        s.lost_before_offload,
        s.current.as_deref().map_or("null".into(), |c| JsonStr(c).to_string()),
        opt_time(s.last_run_utc_ns),
        opt_time(s.last_success_utc_ns),
        s.last_error.as_deref().map_or("null".into(), |c| JsonStr(c).to_string()),
    )
}

fn settings_json(st: &Settings) -> String {
    let mut o = String::from("{");
    let _ = write!(
        o,
        "\"offload\":\"{}\",\"s3_endpoint\":{},\"s3_bucket\":{},\"s3_region\":{},\"s3_prefix\":{},\"s3_access_key\":{},\
         \"s3_secret_key_set\":{},\"s3_allow_http\":{},\"s3_ca_file\":{},\"offload_kbps\":{},\"device_name\":{},\
         \"offload_target\":\"{}\",\"rsync_dest\":{},\"rsync_password_set\":{},\"rsync_ssh_key\":{},\"rsync_ssh_port\":{}}}",
        st.mode.name(),
        JsonStr(&st.s3_endpoint),
        JsonStr(&st.s3_bucket),
        JsonStr(&st.s3_region),
        JsonStr(&st.s3_prefix),
        JsonStr(&st.s3_access_key),
        !st.s3_secret_key.is_empty(),
        st.s3_allow_http,
        JsonStr(&st.s3_ca_file),
        st.offload_kbps,
        JsonStr(&st.device_name),
        st.target_name(),
        JsonStr(&st.rsync_dest),
        !st.rsync_password.is_empty(),
        JsonStr(&st.rsync_ssh_key),
        st.rsync_ssh_port,
    );
    o
}

/// `GET /api/offload`.
pub fn get() -> ApiResult {
    let sh = offload::shared().ok_or_else(unavailable)?;
    Ok(Reply::Json(StatusCode::OK, format!("{{\"settings\":{},\"status\":{}}}", settings_json(&sh.settings()), status_json(&sh.status()))))
}

/// `PUT /api/offload`: applies the keys given over the saved settings.
pub fn put(o: &json::Object) -> ApiResult {
    let sh = offload::shared().ok_or_else(unavailable)?;
    only_keys(o, KEYS)?;
    let mut st = sh.settings();
    for (k, v, _) in &o.members {
        let text = match v {
            Value::Str(s) => s.clone(),
            Value::Num(n) => n.clone(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(ApiError::bad_key(k, format!("{k} must be a string, number or boolean"))),
        };
        // Write-only: an empty secret keeps the saved one (the page never has it).
        if (k == "s3_secret_key" || k == "rsync_password") && text.is_empty() {
            continue;
        }
        st.set(k, &text).map_err(|m| ApiError::bad_key(k, m))?;
    }
    st.validate().map_err(|m| super::api::settings_error(KEYS, m))?;
    st.save(sh.data_dir()).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot save the offload settings: {e}")))?;
    log::info!("offload: settings changed from the dashboard (offload={}, target {})", st.mode.name(), st.target_id());
    let body = settings_json(&st);
    sh.set_settings(st);
    Ok(Reply::Json(StatusCode::OK, body))
}

/// `POST /api/offload/run`.
pub fn run_now() -> ApiResult {
    let sh = offload::shared().ok_or_else(unavailable)?;
    sh.poke();
    Ok(Reply::Json(StatusCode::ACCEPTED, "{\"started\":true}".into()))
}

/// `POST /api/offload/test` (blocking: run it off the web thread).
pub fn test_target() -> ApiResult {
    let sh = offload::shared().ok_or_else(unavailable)?;
    let mut st = sh.settings();
    st.rsync_known_hosts = sh.data_dir().join("offload/known_hosts").display().to_string();
    let r = offload::test_target(&st);
    Ok(Reply::Json(
        StatusCode::OK,
        match r {
            Ok(msg) => format!("{{\"ok\":true,\"message\":{}}}", JsonStr(&msg)),
            Err(msg) => format!("{{\"ok\":false,\"message\":{}}}", JsonStr(&msg)),
        },
    ))
}

