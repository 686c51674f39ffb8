//! Alerts from the dashboard (docs/API.md, "Alerts"):
//!
//! - `GET /api/alerts`: the channels (never the mail password: only whether one is set) and
//!   the state (waiting, sent, failed with the reason);
//! - `PUT /api/alerts`: new channel settings, checked as a whole before anything is saved; an
//!   empty or missing `smtp_password` keeps the saved one (write-only);
//! - `POST /api/alerts/test` `{"channel":"webhook"|"email"}`: a test alert sent now on that
//!   channel, and what happened.

use super::api::{only_keys, ApiError, ApiResult, Reply};
use super::json::{self, Value};
use super::status::JsonStr;
use crate::alerts::settings::{AlertSettings, KEYS};
use crate::alerts::{self, Status};
use picoserve::response::StatusCode;

fn unavailable() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "alerts are not running in this process")
}

fn opt_str(s: Option<&str>) -> String {
    s.map_or("null".into(), |c| JsonStr(c).to_string())
}

/// The state object, shared with `/api/status`.
pub fn status_json(s: &Status) -> String {
    format!(
        "{{\"queued\":{},\"sent\":{},\"failed\":{},\"dropped\":{},\"last_sent\":{},\"last_error\":{}}}",
        s.queued,
        s.sent,
        s.failed,
        s.dropped,
        s.last_sent_utc_ns.map_or("null".into(), |t| format!("\"{}\"", crate::clock::Iso(t))),
        opt_str(s.last_error.as_deref())
    )
}

fn settings_json(st: &AlertSettings) -> String {
    format!(
        "{{\"webhook_url\":{},\"webhook_format\":\"{}\",\"smtp_server\":{},\"smtp_security\":\"{}\",\"smtp_user\":{},\"smtp_password_set\":{},\
         \"smtp_from\":{},\"smtp_to\":{},\"alerts_ca_file\":{},\"alert_camera_lost_s\":{}}}",
        JsonStr(&st.webhook_url),
        st.format_name(),
        JsonStr(&st.smtp_server),
        st.security_name(),
        JsonStr(&st.smtp_user),
        !st.smtp_password.is_empty(),
        JsonStr(&st.smtp_from),
        JsonStr(&st.smtp_to),
        JsonStr(&st.alerts_ca_file),
        st.alert_camera_lost_s
    )
}

/// `GET /api/alerts`.
pub fn get() -> ApiResult {
    let sh = alerts::shared().ok_or_else(unavailable)?;
    Ok(Reply::Json(StatusCode::OK, format!("{{\"settings\":{},\"status\":{}}}", settings_json(&sh.settings()), status_json(&sh.status()))))
}

/// `PUT /api/alerts`.
pub fn put(o: &json::Object) -> ApiResult {
    let sh = alerts::shared().ok_or_else(unavailable)?;
    only_keys(o, KEYS)?;
    let mut st = sh.settings();
    for (k, v, _) in &o.members {
        let text = match v {
            Value::Str(s) => s.clone(),
            Value::Num(n) => n.clone(),
            _ => return Err(ApiError::bad_key(k, format!("{k} must be a string or number"))),
        };
        if k == "smtp_password" && text.is_empty() {
            continue;
        }
        st.set(k, &text).map_err(|m| ApiError::bad_key(k, m))?;
    }
    st.validate().map_err(|m| super::api::settings_error(KEYS, m))?;
    st.save(sh.data_dir()).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot save the alert settings: {e}")))?;
    log::info!("alerts: channels changed from the dashboard ({})", st.channels().join(", "));
    let body = settings_json(&st);
    sh.set_settings(st);
    Ok(Reply::Json(StatusCode::OK, body))
}

/// Checks `POST /api/alerts/test`'s body; the channel's name.
pub fn test_channel_of(o: &json::Object) -> Result<String, ApiError> {
    only_keys(o, &["channel"])?;
    match o.get("channel") {
        Some(Value::Str(c)) if c == "webhook" || c == "email" => Ok(c.clone()),
        _ => Err(ApiError::bad_key("channel", "channel: \"webhook\" or \"email\"")),
    }
}

/// `POST /api/alerts/test` (blocking: run it off the web thread).
pub fn test(channel: String) -> ApiResult {
    let sh = alerts::shared().ok_or_else(unavailable)?;
    let body = match alerts::test_channel(sh, &channel) {
        Ok(m) => format!("{{\"ok\":true,\"message\":{}}}", JsonStr(&m)),
        Err(m) => format!("{{\"ok\":false,\"message\":{}}}", JsonStr(&m)),
    };
    Ok(Reply::Json(StatusCode::OK, body))
}
