//! `/api/incidents`: the events (src/events/) over HTTP — the "Save incident" button, the list,
//! unlocking one, its thumbnail. Each event's JSON names the export of exactly its window.

use super::api::{only_keys, param, parse_time, parse_u64, Api, ApiError, ApiResult, Reply};
use super::json;
use crate::clock::{Iso, IsoNanos};
use crate::events::{Event, EventSink, Kind};
use picoserve::response::StatusCode;

fn event_json(e: &Event) -> String {
    let peak = e.peak_g.map_or("null".to_string(), |g| format!("{g:.2}"));
    format!(
        "{{\"id\":{},\"kind\":\"{}\",\"time\":\"{}\",\"peak_g\":{peak},\"from\":\"{}\",\"to\":\"{}\",\"locked\":{},\"repeats\":{},\
         \"thumb\":\"/api/incidents/{}/thumb.jpg\",\"mp4\":\"/api/export.mp4?from={}&to={}\"}}",
        e.id,
        e.kind.name(),
        Iso(e.utc_ns),
        Iso(e.from_utc),
        Iso(e.to_utc),
        e.locked,
        e.repeats,
        e.id,
        IsoNanos(e.from_utc),
        IsoNanos(e.to_utc.saturating_add(1)),
    )
}

impl Api<'_> {
    fn sink(&self) -> Result<&EventSink, ApiError> {
        self.events.ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "events are not available (DATA/events could not be opened; see the log)"))
    }

    /// `GET /api/incidents?from&to&kind` (newest first) and `POST /api/incidents` (`{}` or
    /// `{"kind":"button"}`: "Save incident").
    pub(super) async fn incidents(&self, method: &str, q: &[(String, String)], body: Option<json::Object>) -> ApiResult {
        let sink = self.sink()?;
        match (method, body) {
            ("GET", _) => {
                let from = param(q, "from").map(|v| parse_time("from", v)).transpose()?.unwrap_or(i64::MIN);
                let to = param(q, "to").map(|v| parse_time("to", v)).transpose()?.unwrap_or(i64::MAX);
                let kind = match param(q, "kind") {
                    None => None,
                    Some(k) => Some(Kind::from_name(k).ok_or_else(|| ApiError::bad_key("kind", format!("unknown kind {k:?} (impact, button, motion, bump)")))?),
                };
                let list = sink.list(from, to, kind);
                let items: Vec<String> = list.iter().map(event_json).collect();
                Ok(Reply::Json(StatusCode::OK, format!("{{\"incidents\":[{}]}}", items.join(","))))
            }
            ("POST", Some(o)) => {
                if !q.is_empty() {
                    return Err(ApiError::bad("POST /api/incidents takes no query"));
                }
                only_keys(&o, &["kind"])?;
                match o.get("kind") {
                    None => {}
                    Some(json::Value::Str(s)) if s == "button" => {}
                    Some(_) => return Err(ApiError::bad_key("kind", "kind must be \"button\" (the other kinds come from the sensors)")),
                }
                let (sink, mine) = (sink.clone(), sink.clone());
                let now = crate::clock::now_mono_ns();
                match super::blocking::run(move || mine.record(Kind::Button, now, None)).await {
                    Some(Ok(e)) => {
                        sink.protect_others(e.from_utc, e.to_utc);
                        // Answer once the store protects the window (the next start would
                        // protect it again anyway: the event is on disk).
                        if let Err(err) = self.command(crate::control::Command::Protect(e.from_utc, e.to_utc)).await {
                            log::warn!("event {}: the recorder did not take its protection now ({}); applied at the next start", e.id, err.msg);
                        }
                        Ok(Reply::Json(StatusCode::CREATED, event_json(&e)))
                    }
                    Some(Err(e)) => {
                        log::error!("event: cannot record it: {e}");
                        Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot record the event: {e}")))
                    }
                    None => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "recording the event failed")),
                }
            }
            _ => Err(ApiError::method("GET, POST")),
        }
    }

    /// `POST /api/incidents/{id}/unlock`, `GET /api/incidents/{id}/thumb.jpg`.
    pub(super) async fn incident(&self, method: &str, p: &str) -> ApiResult {
        let sink = self.sink()?;
        let rest = &p["/incidents/".len()..];
        let (id, what) = rest.split_once('/').unwrap_or((rest, ""));
        let id = parse_u64("id", id, u64::MAX)?;
        let Some(e) = sink.get(id) else { return Err(ApiError::not_found(format!("no incident {id}"))) };
        match (what, method) {
            ("unlock", "POST") => {
                let sink = sink.clone();
                match super::blocking::run(move || sink.unlock(id)).await {
                    Some(Ok(Some(e))) => Ok(Reply::Json(StatusCode::OK, event_json(&e))),
                    Some(Ok(None)) => Err(ApiError::not_found(format!("no incident {id}"))),
                    Some(Err(e)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot unlock: {e}"))),
                    None => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "unlocking failed")),
                }
            }
            ("unlock", _) => Err(ApiError::method("POST")),
            ("thumb.jpg", "GET" | "HEAD") => self.incident_thumb(sink, &e).await,
            ("thumb.jpg", _) => Err(ApiError::method("GET")),
            ("", "GET" | "HEAD") => Ok(Reply::Json(StatusCode::OK, event_json(&e))),
            _ => Err(ApiError::not_found(format!("no such route under /api/incidents/{id}"))),
        }
    }

    /// The picture at the trigger, kept in `DATA/thumbs/ID.jpg` once made (so it outlives
    /// the footage).
    async fn incident_thumb(&self, sink: &EventSink, e: &Event) -> ApiResult {
        let path = sink.data_dir().join("thumbs").join(format!("{}.jpg", e.id));
        if let Ok(data) = std::fs::read(&path) {
            return Ok(Reply::Jpeg { data, seq: 0, utc_ns: e.utc_ns, prev: None, next: None });
        }
        let q = vec![("at".to_string(), IsoNanos(e.utc_ns).to_string())];
        let r = self.get_frame(&q).await?;
        if let Reply::Jpeg { data, .. } = &r {
            let _ = std::fs::create_dir_all(path.parent().unwrap_or(&path));
            if let Err(err) = crate::config::write_atomic(&path, data) {
                log::warn!("incident {}: cannot keep its thumbnail: {err}", e.id);
            }
        }
        Ok(r)
    }
}
