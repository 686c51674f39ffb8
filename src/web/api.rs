//! The JSON API under `/api` (docs/API.md; the machine-readable contract is `openapi.json`).
//!
//! One picoserve service takes every path under `/api` and dispatches on method and path
//! itself, so that every answer, including 404 and 405, is JSON (`{"error":...}`) and ids and
//! times are parsed as numbers and timestamps, never used as paths. Routes added to the router
//! after this service (e.g. `/api/controls`) are matched before it.

use super::footage::{Footage, Seg};
use super::json::{self, Str, Time, Value};
use super::live::{self, Hub, Timestamp};
use super::status::{self, Extra, StatusSource};
use super::system::Sampler;
use crate::clock::{self, Iso};
use crate::config::Config;
use crate::control::{Command, Control, Reply as CtlReply};
use core::fmt::Write as _;
use picoserve::io::{Read, Write};
use picoserve::request::{Path, Request};
use picoserve::response::chunked::{ChunkWriter, ChunkedResponse, Chunks, ChunksWritten};
use picoserve::response::custom::{CustomBody, CustomResponse};
use picoserve::response::{IntoResponse, Response, ResponseWriter, StatusCode};
use picoserve::routing::PathRouterService;
use picoserve::ResponseSent;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// The OpenAPI 3 document served at `/api/openapi.json`, inflated from the binary's gzip copy.
pub fn openapi() -> String {
    super::assets::gunzip(super::assets::OPENAPI_GZ).and_then(|b| String::from_utf8(b).ok()).unwrap_or_default()
}
/// How long a request waits for the recorder to run a store command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Server-sent event streams open at once; more get 503.
pub const MAX_EVENT_CLIENTS: u32 = 16;
/// `/api/frame?at=` finds frames at most this far from the asked time.
pub const NEAREST_WINDOW_NS: i64 = 5_000_000_000;
/// Longest `save-last`.
pub const MAX_SAVE_LAST_S: u64 = 3600;
/// Times outside 1970-01-01 .. 2200-01-01 are refused.
const MAX_UTC_NS: i64 = 7_258_118_400_000_000_000;

/// Everything the API handlers use. Lives on the web thread.
pub struct Api<'a> {
    pub src: &'a StatusSource<'a>,
    pub control: &'a Control,
    pub hub: &'a Hub<'a>,
    pub sampler: &'a Sampler,
    pub footage: &'a Footage,
    pub config_path: &'a std::path::Path,
    pub event_clients: Cell<u32>,
    /// Events (impacts, "Save incident"); `None` when `DATA/events` could not be opened.
    pub events: Option<&'a crate::events::EventSink>,
    pub parking: &'a crate::parking::Parking,
    /// The recorder's V4L2 device (`/api/camera/modes`); `None` for other sources.
    pub camera_device: Option<&'a std::path::Path>,
    /// `run --appliance`: the device settings, reboot (src/web/device.rs).
    pub appliance: bool,
    /// One-time pairing links (`POST /api/pairing`).
    pub pairing: &'a super::pairing::Pairing,
    /// Every camera (the first is `front`), and which one this `Api` answers for.
    pub cameras: &'a [CamRef<'a>],
    pub index: usize,
}

/// One camera as every camera's `Api` sees it (the status list, erase, config changes).
pub struct CamRef<'a> {
    pub name: &'a str,
    pub status: &'a crate::status::RecorderStatus,
    pub control: &'a Control,
}

/// An error answer: `{"error":"...","key":"..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub msg: String,
    pub key: Option<String>,
    pub retry_after: Option<u32>,
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> ApiError {
        ApiError { status, msg: msg.into(), key: None, retry_after: None, allow: None }
    }
    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, msg)
    }
    pub fn bad_key(key: &str, msg: impl Into<String>) -> ApiError {
        ApiError { key: Some(key.to_string()), ..ApiError::bad(msg) }
    }
    pub fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, msg)
    }
    pub fn busy(msg: impl Into<String>, retry_after: u32) -> ApiError {
        ApiError { retry_after: Some(retry_after), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg) }
    }
    pub fn method(allow: &'static str) -> ApiError {
        ApiError { allow: Some(allow), ..ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("method not allowed (allowed: {allow})")) }
    }
    fn body(&self) -> String {
        let mut s = format!("{{\"error\":{}", Str(&self.msg));
        if let Some(k) = &self.key {
            let _ = write!(s, ",\"key\":{}", Str(k));
        }
        s.push('}');
        s
    }
}

impl IntoResponse for ApiError {
    async fn write_to<R: Read, W: ResponseWriter<Error = R::Error>>(
        self,
        connection: picoserve::response::Connection<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let body = self.body();
        Response::new(self.status, body.as_str())
            .with_content_type("application/json")
            .with_header("Cache-Control", "no-store")
            .with_headers(self.retry_after.map(|r| ("Retry-After", r)))
            .with_headers(self.allow.map(|a| ("Allow", a)))
            .write_to(connection, response_writer)
            .await
    }
}

/// A successful answer.
pub enum Reply {
    Json(StatusCode, String),
    Static(&'static str, &'static str),
    Jpeg { data: Vec<u8>, seq: u64, utc_ns: i64, prev: Option<u64>, next: Option<u64> },
    /// A thumbnail that never changes (a segment's first picture): browsers keep it a week.
    Thumb(Vec<u8>),
}

impl IntoResponse for Reply {
    async fn write_to<R: Read, W: ResponseWriter<Error = R::Error>>(
        self,
        connection: picoserve::response::Connection<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        match self {
            Reply::Json(status, body) => {
                Response::new(status, body.as_str())
                    .with_content_type("application/json")
                    .with_header("Cache-Control", "no-store")
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::Static(ct, body) => {
                Response::ok(body).with_content_type(ct).with_header("Cache-Control", "no-cache").write_to(connection, response_writer).await
            }
            Reply::Jpeg { data, seq, utc_ns, prev, next } => {
                Response::ok(data.as_slice())
                    .with_content_type("image/jpeg")
                    .with_header("Cache-Control", "no-store")
                    .with_header("X-Timestamp", Timestamp(utc_ns))
                    .with_header("X-Seq", seq)
                    .with_headers(prev.map(|p| ("X-Prev-Seq", p)))
                    .with_headers(next.map(|n| ("X-Next-Seq", n)))
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::Thumb(data) => {
                Response::ok(data.as_slice())
                    .with_content_type("image/jpeg")
                    .with_header("Cache-Control", "private, max-age=604800, immutable")
                    .write_to(connection, response_writer)
                    .await
            }
        }
    }
}

pub(super) type ApiResult = Result<Reply, ApiError>;

/// A settings file's whole-object check failed with "key: message": 400 naming the key when
/// it is one of `keys` (the offload and alert settings).
pub fn settings_error(keys: &[&str], m: String) -> ApiError {
    let key = m.split(':').next().unwrap_or("").to_string();
    if keys.contains(&key.as_str()) { ApiError::bad_key(&key, m) } else { ApiError::bad(m) }
}

fn json_ok(body: String) -> ApiResult {
    Ok(Reply::Json(StatusCode::OK, body))
}

// --- query strings -----------------------------------------------------------------------------

/// Decodes `%XX` and `+`; refuses bad escapes, NUL and invalid UTF-8.
pub(super) fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = core::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// The query's parameters, decoded; only `allowed` names are accepted, each at most once.
pub(super) fn query(req: &picoserve::request::RequestParts<'_>, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let Some(q) = req.query() else { return Ok(out) };
    for pair in q.0.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = url_decode(k).ok_or_else(|| ApiError::bad("malformed query string"))?;
        let v = url_decode(v).ok_or_else(|| ApiError::bad_key(&k, format!("parameter {k:?}: malformed value")))?;
        // `camera` is for the router (`percam.rs`), which has checked it already.
        if k == "camera" {
            continue;
        }
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_key(&k, format!("unknown parameter {k:?} (allowed: {})", allowed.join(", "))));
        }
        if out.iter().any(|(n, _)| *n == k) {
            return Err(ApiError::bad_key(&k, format!("parameter {k:?} given twice")));
        }
        out.push((k, v));
    }
    Ok(out)
}

pub(super) fn param<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A time parameter: ISO 8601 / RFC 3339. Valid times outside 1970..2200 are clamped to
/// those ends (no footage or protection can lie outside them).
pub(super) fn parse_time(key: &str, v: &str) -> Result<i64, ApiError> {
    parse_clamped_time(v).map_err(|e| ApiError::bad_key(key, format!("{key}: {v:?} is not an ISO 8601 UTC time ({e})")))
}

/// [`clock::parse_iso8601`], with valid times outside 1970..2200 clamped to those ends: the
/// time parameters of every route (the export routes too) read times this way.
pub fn parse_clamped_time(v: &str) -> Result<i64, clock::TimeParseError> {
    match clock::parse_iso8601(v) {
        Ok(t) => Ok(t.clamp(0, MAX_UTC_NS)),
        Err(clock::TimeParseError::OutOfRange) => {
            let before_1970 = v.get(..4).and_then(|y| y.parse::<u32>().ok()).is_some_and(|y| y < 1970);
            Ok(if before_1970 { 0 } else { MAX_UTC_NS })
        }
        Err(e) => Err(e),
    }
}

/// A decimal number without sign or leading `+`, at most `max`.
pub(super) fn parse_u64(key: &str, v: &str, max: u64) -> Result<u64, ApiError> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_key(key, format!("{key}: {v:?} is not a decimal number")));
    }
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ApiError::bad_key(key, format!("{key}: {v} is out of range (at most {max})"))),
    }
}

fn body_time(o: &json::Object, key: &str) -> Result<i64, ApiError> {
    match o.get(key) {
        Some(Value::Str(s)) => parse_time(key, s),
        Some(v) => Err(ApiError::bad_key(key, format!("{key} must be an ISO 8601 UTC time string, not {}", v.type_name()))),
        None => Err(ApiError::bad_key(key, format!("{key} is missing"))),
    }
}

pub(super) fn only_keys(o: &json::Object, allowed: &[&str]) -> Result<(), ApiError> {
    match o.members.iter().find(|(k, _, _)| !allowed.contains(&k.as_str())) {
        Some((k, _, _)) => Err(ApiError::bad_key(k, format!("unknown key {k:?} (allowed: {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

// --- bodies ------------------------------------------------------------------------------------

async fn read_body<R: Read>(req: &mut Request<'_, R>) -> Result<json::Object, ApiError> {
    let body = req.body_connection.body();
    if !body.entire_body_fits_into_buffer() {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"));
    }
    match body.read_all().await {
        Ok(b) => json::parse_object(b).map_err(ApiError::bad),
        Err(e) => Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body: {e}"))),
    }
}

// --- the routes --------------------------------------------------------------------------------

impl Api<'_> {
    fn extra(&self) -> Extra {
        Extra {
            figures: self.sampler.figures(),
            live_clients: self.hub.clients(),
            cap_bytes: Some(self.control.config().storage_cap_bytes()),
            web_allocations: crate::alloc_count::thread_allocations(),
            codec: if self.h264() { "h264" } else { "mjpeg" },
        }
    }

    /// The recording is H.264: the codec of the frames the recorder offers live, or before the
    /// first one, the configured `video_codec`.
    fn h264(&self) -> bool {
        match self.hub.slot.codec() {
            Some(c) => c == crate::camera::Codec::H264,
            None => self.control.config().video_codec == crate::config::VideoCodec::H264,
        }
    }

    /// The H.264 live ring, made for the configured bitrate the first time it is needed.
    fn ring(&self) -> &crate::live::Ring {
        let c = self.control.config();
        let (bytes, frames) = (crate::live::ring_bytes(c.video_bitrate_kbps, c.keyframe_interval_s), crate::live::ring_frames(c.video_fps, c.keyframe_interval_s));
        self.hub.slot.h264_ring(bytes, frames)
    }

    fn status_json(&self) -> status::JsonBuf {
        let mut j = status::status_json(self.src, &self.extra());
        let list: Vec<status::CameraEntry<'_>> =
            self.cameras.iter().map(|c| status::CameraEntry { name: c.name, status: c.status }).collect();
        let name = self.cameras.get(self.index).map_or(crate::config::cameras::FIRST, |c| c.name);
        status::with_cameras(&mut j, name, &list);
        j
    }

    fn segments(&self) -> Result<Vec<Seg>, ApiError> {
        self.footage.segments().map_err(|e| {
            log::error!("web: listing segments failed: {e}");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot list segments: {e}"))
        })
    }

    fn io_error(e: std::io::Error) -> ApiError {
        log::error!("web: reading footage failed: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read footage: {e}"))
    }

    /// `GET /api/segments?from=&to=`
    fn get_segments(&self, q: &[(String, String)]) -> ApiResult {
        let from = param(q, "from").map(|v| parse_time("from", v)).transpose()?.unwrap_or(i64::MIN);
        let to = param(q, "to").map(|v| parse_time("to", v)).transpose()?.unwrap_or(i64::MAX);
        let segs = self.segments()?;
        let prot = self.footage.protected();
        let sel: Vec<&Seg> = segs.iter().filter(|s| s.frames > 0 && s.start_utc_ns <= to && s.end_utc_ns >= from).collect();
        self.footage.prune_gaps(&segs);
        // Every stretch without frames: inside a segment (recording stopped, camera lost, a
        // long drop) and between segments.
        let mut all_gaps: Vec<(i64, i64)> = Vec::new();
        let mut o = String::from("{\"segments\":[");
        for (i, s) in sel.iter().enumerate() {
            if i > 0 {
                o.push(',');
                if s.start_utc_ns.saturating_sub(sel[i - 1].end_utc_ns) > GAP_NS {
                    all_gaps.push((sel[i - 1].end_utc_ns, s.start_utc_ns));
                }
            }
            let inner = self.footage.gaps_in(s).map_err(Self::io_error)?;
            let missing: i64 = inner.iter().map(|(a, b)| b.saturating_sub(*a).max(0)).sum();
            let footage_ns = s.end_utc_ns.saturating_sub(s.start_utc_ns).saturating_sub(missing).max(0);
            let _ = write!(
                o,
                "{{\"id\":{},\"start\":{},\"end\":{},\"start_ms\":{},\"end_ms\":{},\"footage_ms\":{},\"first_seq\":{},\"frames\":{},\"bytes\":{},\"open\":{},\"protected\":{},\"gaps\":[",
                s.first_seq,
                Time(s.start_utc_ns),
                Time(s.end_utc_ns),
                json::ms(s.start_utc_ns),
                json::ms(s.end_utc_ns),
                footage_ns / 1_000_000,
                s.first_seq,
                s.frames,
                s.bytes,
                s.open,
                prot.covers(s.start_utc_ns, s.end_utc_ns)
            );
            for (k, &(a, b)) in inner.iter().enumerate() {
                let _ = write!(o, "{}{{\"from\":{},\"to\":{}}}", if k > 0 { "," } else { "" }, Time(a), Time(b));
                all_gaps.push((a, b));
            }
            o.push_str("]}");
        }
        all_gaps.sort_unstable();
        o.push_str("],\"gaps\":[");
        for (k, (a, b)) in all_gaps.iter().enumerate() {
            let _ = write!(o, "{}{{\"from\":{},\"to\":{}}}", if k > 0 { "," } else { "" }, Time(*a), Time(*b));
        }
        o.push_str("]}");
        json_ok(o)
    }

    /// `GET /api/frame?at=T` or `?seq=N`: the stored JPEG, or an H.264 picture decoded from the
    /// IDR before it and coded as a JPEG (off the web thread).
    pub(super) async fn get_frame(&self, q: &[(String, String)]) -> ApiResult {
        let (reply, gop) = self.find_frame(q)?;
        let (Some(gop), Reply::Jpeg { seq, utc_ns, prev, next, .. }) = (gop, &reply) else { return Ok(reply) };
        let (seq, utc_ns, prev, next) = (*seq, *utc_ns, *prev, *next);
        match super::blocking::run(move || crate::codec::still::jpeg_of_last(&gop)).await.unwrap_or_else(|| Err("the decoder failed".to_string())) {
            Ok((data, _, _)) => Ok(Reply::Jpeg { data, seq, utc_ns, prev, next }),
            Err(e) => {
                log::warn!("frame {seq}: {e}");
                Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot decode frame {seq}: {e}")))
            }
        }
    }

    /// `GET /api/segments/{id}/thumb.jpg`: the segment's first picture, at most 320 px wide.
    /// Never changes (sequence numbers are never reused), so browsers keep it.
    async fn segment_thumb(&self, p: &str) -> ApiResult {
        let id = p.strip_prefix("/segments/").and_then(|r| r.strip_suffix("/thumb.jpg")).unwrap_or("");
        let id = parse_u64("id", &url_decode(id).unwrap_or_else(|| "\u{fffd}".into()), u64::MAX)?;
        let segs = self.segments()?;
        if !segs.iter().any(|s| s.first_seq == id && s.frames > 0) {
            return Err(ApiError::not_found(format!("no segment {id}")));
        }
        let q = vec![("seq".to_string(), id.to_string())];
        let Reply::Jpeg { data, .. } = self.get_frame(&q).await? else {
            return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no picture"));
        };
        match super::blocking::run(move || crate::codec::still::thumbnail(&data, 320)).await {
            Some(Ok(data)) => Ok(Reply::Thumb(data)),
            Some(Err(e)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("segment {id}: no thumbnail: {e}"))),
            None => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the thumbnail failed")),
        }
    }

    /// The frame `get_frame` answers with, and for an H.264 frame what decodes it.
    fn find_frame(&self, q: &[(String, String)]) -> Result<(Reply, Option<crate::codec::still::Gop>), ApiError> {
        let segs = self.segments()?;
        let mut buf = Vec::new();
        let (seq, utc) = match (param(q, "at"), param(q, "seq")) {
            // Neither: the newest stored frame.
            (None, None) => {
                let Some(last) = segs.iter().filter(|s| s.frames > 0).map(|s| s.first_seq + s.frames - 1).max() else {
                    return Err(ApiError::not_found("no frame stored yet"));
                };
                match self.footage.frame_by_seq(&segs, last, &mut buf).map_err(Self::io_error)? {
                    Some(t) => (last, t),
                    None => return Err(ApiError::not_found(format!("frame {last} is damaged"))),
                }
            }
            (Some(at), None) => {
                let t = parse_time("at", at)?;
                match self.footage.nearest(&segs, t, NEAREST_WINDOW_NS, &mut buf).map_err(Self::io_error)? {
                    Some(x) => x,
                    None => return Err(ApiError::not_found(format!("no frame stored within 5 s of {}", Iso(t)))),
                }
            }
            // `seq` wins when both are given.
            (_, Some(s)) => {
                let seq = parse_u64("seq", s, u64::MAX)?;
                match self.footage.frame_by_seq(&segs, seq, &mut buf).map_err(Self::io_error)? {
                    Some(t) => (seq, t),
                    None => return Err(ApiError::not_found(format!("frame {seq} is not stored (or damaged)"))),
                }
            }
        };
        let has = |s: u64| segs.iter().any(|g| g.contains_seq(s));
        let prev = seq.checked_sub(1).filter(|&s| has(s));
        let next = seq.checked_add(1).filter(|&s| has(s));
        let gop = self.footage.gop_by_seq(&segs, seq).map_err(Self::io_error)?;
        if gop.is_none() && !buf.starts_with(&[0xff, 0xd8]) {
            // H.264 whose IDR (or a picture between) is damaged: nothing to show.
            return Err(ApiError::not_found(format!("frame {seq} cannot be decoded (a picture it needs is damaged)")));
        }
        Ok((Reply::Jpeg { data: buf, seq, utc_ns: utc, prev, next }, gop))
    }

    fn recording_json(&self) -> String {
        let st = self.src.status.state();
        format!("{{\"recording\":{},\"state\":\"{}\"}}", self.control.want_recording(), st.name())
    }

    /// `PUT /api/recording {"recording":B}`: waits (up to 3 s) until the recorder got there.
    async fn put_recording(&self, o: json::Object) -> ApiResult {
        only_keys(&o, &["recording"])?;
        let on = match o.get("recording") {
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(ApiError::bad_key("recording", format!("recording must be a boolean, not {}", v.type_name()))),
            None => return Err(ApiError::bad_key("recording", "recording is missing")),
        };
        if on != self.control.want_recording() {
            log::info!("web: recording {} on request", if on { "starts" } else { "stops" });
        }
        self.control.set_want_recording(on);
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            use crate::status::State;
            let st = self.src.status.state();
            if (on && matches!(st, State::Recording | State::CameraLost)) || (!on && st == State::Stopped) {
                break;
            }
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        json_ok(self.recording_json())
    }

    fn ranges_json(ranges: &[(i64, i64)]) -> String {
        let mut o = String::from("{\"ranges\":[");
        for (i, (a, b)) in ranges.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{{\"from\":{},\"to\":{}}}", Time(*a), Time(*b));
        }
        o.push_str("]}");
        o
    }

    /// Sends a command to the recorder and waits for its answer.
    pub(super) async fn command(&self, cmd: Command) -> Result<CtlReply, ApiError> {
        let rx = self.control.submit(cmd).map_err(|_| ApiError::busy("the recorder is busy; try again", 1))?;
        let timeout = async {
            smol::Timer::after(COMMAND_TIMEOUT).await;
            Err(smol::channel::RecvError)
        };
        match smol::future::or(rx.recv(), timeout).await {
            Ok(CtlReply::Failed(m)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m)),
            Ok(CtlReply::Refused(m)) => Err(ApiError::new(StatusCode::CONFLICT, m)),
            Ok(r) => Ok(r),
            Err(_) => Err(ApiError::busy("the recorder did not answer in time; try again", 2)),
        }
    }

    /// `POST /api/pairing`: a one-time link for another phone, valid 10 minutes, with its QR
    /// code. The link uses the Host this browser reached the device by.
    fn new_pairing(&self, host: &str) -> ApiResult {
        let code = self.pairing.create(super::pairing::SHORT_TTL_S).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("no random numbers: {e}")))?;
        // The Host header passed the layer's check (one of this device's names or addresses).
        let host: String = host.chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
        let url = format!("http://{host}/pair?code={code}");
        let svg = super::pairing::qr_svg(&url).unwrap_or_default();
        let expires = clock::now_utc_ns() + super::pairing::SHORT_TTL_S * 1_000_000_000;
        log::info!("web: a pairing link was made (valid 10 min)");
        Ok(Reply::Json(
            StatusCode::OK,
            format!("{{\"url\":{},\"expires\":\"{}\",\"qr_svg\":{}}}", Str(&url), Iso(expires), Str(&svg)),
        ))
    }

    /// `POST /api/storage/erase`: events first (so none re-protects anything), then the
    /// recorder closes the store, erases it and reopens it; waits up to 60 s for that.
    async fn erase(&self) -> ApiResult {
        if let Some(ev) = self.events
            && let Err(e) = ev.clear()
        {
            return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot clear the events: {e}")));
        }
        // Every camera's recorder erases its own store.
        let targets: Vec<u32> = self.cameras.iter().map(|c| c.control.request_erase()).collect();
        let t0 = std::time::Instant::now();
        loop {
            let mut all = true;
            let mut failed = None;
            for (c, &target) in self.cameras.iter().zip(&targets) {
                let (done, err) = c.control.erases_done();
                all &= done >= target;
                if let Some(e) = err {
                    failed = Some(format!("camera {}: {e}", c.name));
                }
            }
            if all {
                return match failed {
                    None => json_ok("{\"erased\":true}".into()),
                    Some(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("erase failed part way: {e}"))),
                };
            }
            if t0.elapsed() > Duration::from_secs(60) {
                return Err(ApiError::busy("the recorder has not erased yet; it will when it can", 5));
            }
            smol::Timer::after(Duration::from_millis(100)).await;
        }
    }

    /// `POST /api/protect` and `/api/unprotect` `{"from":T,"to":T}`
    async fn post_protect(&self, o: json::Object, protect: bool) -> ApiResult {
        only_keys(&o, &["from", "to"])?;
        let (a, b) = (body_time(&o, "from")?, body_time(&o, "to")?);
        // The order of the two ends does not matter.
        let (from, to) = (a.min(b), a.max(b));
        let cmd = if protect { Command::Protect(from, to) } else { Command::Unprotect(from, to) };
        match self.command(cmd).await? {
            CtlReply::Ranges(r) => json_ok(Self::ranges_json(&r)),
            r => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected reply {r:?}"))),
        }
    }

    /// `POST /api/save-last {"seconds":N}`
    async fn post_save_last(&self, o: json::Object) -> ApiResult {
        only_keys(&o, &["seconds"])?;
        let secs = match o.get("seconds") {
            None => 60,
            Some(Value::Num(n)) => parse_u64("seconds", n, MAX_SAVE_LAST_S)
                .ok()
                .filter(|&s| s >= 1)
                .ok_or_else(|| ApiError::bad_key("seconds", format!("seconds must be a whole number 1..={MAX_SAVE_LAST_S}")))?,
            Some(v) => return Err(ApiError::bad_key("seconds", format!("seconds must be a number, not {}", v.type_name()))),
        };
        match self.command(Command::SaveLast(secs as u32)).await? {
            CtlReply::Saved(a, b) => json_ok(format!("{{\"from\":{},\"to\":{}}}", Time(a), Time(b))),
            r => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected reply {r:?}"))),
        }
    }

    /// `PUT /api/config`: merge, validate, save atomically, apply.
    async fn put_config(&self, o: json::Object) -> ApiResult {
        let old = self.control.config();
        let mut new = merge_config(&old, &o)?;
        // The API never shows an RTSP password: one sent back hidden keeps the saved one.
        crate::config::cameras::restore_passwords(&mut new.cameras, &old.cameras);
        if let Some(s) = crate::config::cameras::restore_password(&new.camera_device, &old.camera_device) {
            new.camera_device = heapless::String::try_from(s.as_str()).unwrap_or_default();
        }
        if let Err(e) = new.save(self.config_path) {
            log::error!("web: saving {} failed: {e}", self.config_path.display());
            return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot save the configuration: {e}")));
        }
        let restart = recorder_restart(&old, &new);
        // The first camera's share of the cap moves when another camera's bitrate does.
        let store_live = store_changed(&old, &new) || crate::cli::front_store_options(&old) != crate::cli::front_store_options(&new);
        let mut next_start = Vec::new();
        if old.listen != new.listen {
            next_start.push("\"listen\"");
        }
        if old.port != new.port {
            next_start.push("\"port\"");
        }
        if old.gsensor_device != new.gsensor_device {
            next_start.push("\"gsensor_device\"");
        }
        if old.gps_device != new.gps_device {
            next_start.push("\"gps_device\"");
        }
        if old.audio_device != new.audio_device {
            next_start.push("\"audio_device\"");
        }
        // Cameras added or removed: at the next start. Those that stay get their new settings
        // now (a restart of that camera alone when its source, size, rate or codec changed).
        let names = |c: &Config| c.cameras.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        if names(&old) != names(&new) {
            next_start.push("\"cameras\"");
        }
        for cam in self.cameras.iter().skip(1) {
            let Some(k) = new.cameras.iter().position(|e| e.name.as_str() == cam.name) else { continue };
            let Some(mine) = new.for_camera(k + 1) else { continue };
            let was = cam.control.config();
            if was == mine {
                continue;
            }
            let video = was.cameras != mine.cameras || recorder_restart(&was, &mine);
            cam.control.set_config(mine.clone());
            if video {
                log::info!("web: camera {} restarts with its new settings", cam.name);
                cam.control.request_restart();
            } else if store_changed(&was, &mine) {
                let _ = cam.control.submit(Command::Options(crate::cli::store_options(&mine)));
            }
        }
        crate::gsensor::set_thresholds(new.gsensor_threshold_g as f32, new.gsensor_parked_threshold_g as f32);
        crate::export::set_subtitles(crate::export::Subtitles::of(&new));
        crate::audio::set_enabled(new.audio);
        if let Some(ev) = self.events {
            ev.set_window(crate::events::Window::of(&new));
        }
        self.parking.set_after_min(new.parking_after_min.into());
        self.control.set_config(new.clone());
        log::info!("web: configuration saved to {}", self.config_path.display());
        let applied = if restart {
            log::info!("web: the new configuration needs a recorder restart");
            self.control.request_restart();
            "restarted"
        } else {
            if store_live {
                self.command(Command::Options(crate::cli::front_store_options(&new))).await?;
            }
            "live"
        };
        json_ok(format!(
            "{{\"config\":{},\"applied\":\"{applied}\",\"next_start\":[{}]}}",
            new.to_json_hidden().trim_end(),
            next_start.join(",")
        ))
    }

    fn time_json(&self) -> String {
        let now = clock::now_utc_ns();
        format!("{{\"utc\":{},\"unix_ms\":{},\"settable\":{}}}", Time(now), json::ms(now), clock_settable())
    }

    /// `PUT /api/time {"unix_ms":N}` or `{"utc":T}`
    fn put_time(&self, o: json::Object) -> ApiResult {
        only_keys(&o, &["unix_ms", "utc"])?;
        let t = match (o.get("unix_ms"), o.get("utc")) {
            (Some(_), Some(_)) => return Err(ApiError::bad_key("utc", "give either unix_ms or utc, not both")),
            (Some(Value::Num(n)), None) => {
                let ms = parse_u64("unix_ms", n, (MAX_UTC_NS / 1_000_000) as u64)?;
                ms as i64 * 1_000_000
            }
            (Some(v), None) => return Err(ApiError::bad_key("unix_ms", format!("unix_ms must be a number, not {}", v.type_name()))),
            (None, Some(_)) => body_time(&o, "utc")?,
            (None, None) => return Err(ApiError::bad_key("unix_ms", "unix_ms or utc is required")),
        };
        if t < MIN_SET_NS {
            return Err(ApiError::bad_key(if o.get("utc").is_some() { "utc" } else { "unix_ms" }, "refusing to set the clock before 2020"));
        }
        if std::env::var_os("BLACKBOX_CLOCK_READONLY").is_some_and(|v| v == "1") {
            return Err(ApiError::new(StatusCode::CONFLICT, "setting the clock is disabled (BLACKBOX_CLOCK_READONLY=1)"));
        }
        let before = clock::now_utc_ns();
        match clock::set_realtime(t) {
            Ok(()) => {
                log::warn!(
                    "clock set from the web: {} -> {} (jump of {:+.3} s)",
                    Iso(before),
                    Iso(t),
                    (t - before) as f64 / 1e9
                );
                json_ok(self.time_json())
            }
            Err(rustix::io::Errno::PERM) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "this process may not set the system clock (it needs CAP_SYS_TIME; run as root or grant the capability)",
            )),
            Err(e) => Err(ApiError::new(StatusCode::CONFLICT, format!("cannot set the clock: {e}"))),
        }
    }
}

/// Segments further apart than this leave a gap in `/api/segments`.
const GAP_NS: i64 = 2_000_000_000;
/// The clock is never set before 2020-01-01.
const MIN_SET_NS: i64 = 1_577_836_800_000_000_000;

/// Whether this process may set the clock (`clock::settable`).
pub fn clock_settable() -> bool {
    clock::settable()
}

/// Settings a camera's recorder applies only by reopening the camera and the store.
fn recorder_restart(old: &Config, new: &Config) -> bool {
    old.video_fps != new.video_fps
        || old.video_res_width != new.video_res_width
        || old.video_res_height != new.video_res_height
        || old.segment_length_s != new.segment_length_s
        || old.camera_device != new.camera_device
        || old.mjpeg_quality != new.mjpeg_quality
        || old.video_codec != new.video_codec
        || old.video_bitrate_kbps != new.video_bitrate_kbps
        || old.keyframe_interval_s != new.keyframe_interval_s
        || old.embed_timestamp != new.embed_timestamp
}

/// Settings the store applies live.
fn store_changed(old: &Config, new: &Config) -> bool {
    old.storage_cap_gb != new.storage_cap_gb
        || old.min_free_mb != new.min_free_mb
        || old.protected_cap_percent != new.protected_cap_percent
        || old.commit_interval_ms != new.commit_interval_ms
        || old.commit_frames != new.commit_frames
}

/// The current config with the body's keys replaced, validated by the config parser (so an
/// error names the key, and unknown keys are refused with a suggestion).
pub fn merge_config(old: &Config, body: &json::Object) -> Result<Config, ApiError> {
    // Device paths and addresses are printable ASCII (the config file allows more, the API
    // promises this much).
    for key in ["camera_device", "listen"] {
        if let Some(Value::Str(v)) = body.get(key)
            && !v.bytes().all(|b| (b' '..=b'~').contains(&b))
        {
            return Err(ApiError::bad_key(key, format!("config key {key:?}: must be printable ASCII")));
        }
    }
    // Only V4L2 device nodes, with one answer for every other path (issue 15), or an RTSP
    // camera's URL (checked as the config is).
    if let Some(Value::Str(v)) = body.get("camera_device")
        && !v.is_empty()
        && !v.starts_with("rtsp://")
        && let Err(crate::camera::CameraError::Invalid(msg)) = crate::camera::v4l2::check_device(std::path::Path::new(v.as_str()))
    {
        return Err(ApiError::bad_key("camera_device", format!("config key \"camera_device\": {msg}")));
    }
    let current = json::parse_object(old.to_json().as_bytes()).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let mut merged = String::from("{");
    for (k, _, raw) in &body.members {
        let _ = write!(merged, "{}:{},", Str(k), raw);
    }
    for (k, _, raw) in &current.members {
        if body.get(k).is_none() {
            let _ = write!(merged, "{}:{},", Str(k), raw);
        }
    }
    merged.pop();
    merged.push('}');
    // An unknown key has no name in the key table: name the body's key that is not a config key.
    let unknown = body.members.iter().find(|(k, _, _)| current.get(k).is_none()).map(|(k, _, _)| k.clone());
    Config::parse(merged.as_bytes()).map_err(|e| ApiError {
        key: e.key().map(str::to_string).or(unknown),
        ..ApiError::bad(e.to_string())
    })
}

// --- streaming bodies --------------------------------------------------------------------------

/// `/api/segments/{id}/download`: the segment's intact frames, one chunk each.
struct Download {
    seg: Rc<super::footage::Loaded>,
}

impl Chunks for Download {
    fn content_type(&self) -> &'static str {
        if self.seg.params.is_some() { "video/h264" } else { "video/x-motion-jpeg" }
    }

    /// Motion JPEG: the stored JPEGs back to back. H.264: the stored access units as an
    /// Annex-B elementary stream (start codes; the segment's SPS and PPS before every IDR),
    /// which VLC, mpv and ffplay play as `.h264`.
    async fn write_chunks<W: Write>(self, mut w: ChunkWriter<W>) -> Result<ChunksWritten, W::Error> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut bad = 0u64;
        // H.264: after a damaged frame, the pictures up to the next IDR would refer to it.
        let mut skip_to_idr = false;
        for i in 0..self.seg.entries.len() {
            match self.seg.read(i, &mut buf) {
                Ok(Some(_)) => match &self.seg.params {
                    Some(ps) => {
                        let idr = self.seg.entries[i].flags & 1 != 0;
                        if skip_to_idr && !idr {
                            bad += 1;
                            continue;
                        }
                        skip_to_idr = false;
                        crate::codec::h264::avcc_to_annexb(&buf, idr.then_some(ps), &mut out);
                        w.write_chunk(&out).await?
                    }
                    None => w.write_chunk(&buf).await?,
                },
                Ok(None) => {
                    bad += 1;
                    skip_to_idr = true;
                }
                Err(e) => {
                    log::warn!("download of {}: {e}; stopping", self.seg.name);
                    break;
                }
            }
        }
        if bad > 0 {
            log::warn!("download of {}: {bad} damaged frames left out", self.seg.name);
        }
        w.finalize().await
    }
}

/// `/api/events`: the status as server-sent events.
struct Events<'x, 'a> {
    api: &'x Api<'a>,
}

impl Drop for Events<'_, '_> {
    fn drop(&mut self) {
        self.api.event_clients.set(self.api.event_clients.get() - 1);
    }
}

impl CustomBody for Events<'_, '_> {
    async fn write_response_body<W: Write>(self, mut w: W) -> Result<(), W::Error> {
        let api = self.api;
        let key = || {
            let s = api.src.status.snapshot();
            ((s.state as u8, s.recording, s.segments, api.hub.clients()), (s.frames, s.durable_seq))
        };
        let mut last = key();
        let mut sent = std::time::Instant::now();
        let mut first = true;
        loop {
            if !first {
                smol::Timer::after(Duration::from_millis(250)).await;
            }
            let k = key();
            let due = first
                || k.0 != last.0
                || (k.1 != last.1 && sent.elapsed() >= Duration::from_secs(1))
                || sent.elapsed() >= Duration::from_secs(2);
            if !due {
                continue;
            }
            first = false;
            last = k;
            sent = std::time::Instant::now();
            let body = api.status_json();
            w.write_all(b"event: status\ndata: ").await?;
            w.write_all(body.as_bytes()).await?;
            w.write_all(b"\n\n").await?;
            w.flush().await?;
        }
    }
}

/// `GET /health` (public); other methods get 405 with `Allow`.
pub struct Health<'a> {
    pub status: &'a crate::status::RecorderStatus,
}

impl picoserve::routing::MethodHandlerService<(), ()> for Health<'_> {
    async fn call_method_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _params: (),
        method: &str,
        request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let conn = request.body_connection.finalize().await?;
        if method != "GET" {
            return ApiError::method("GET").write_to(conn, response_writer).await;
        }
        Reply::Json(StatusCode::OK, status::health_json(&self.status.snapshot()).to_string()).write_to(conn, response_writer).await
    }
}

// --- dispatch ----------------------------------------------------------------------------------

/// The segment id in `/segments/{id}/download`: a decimal number, never a path.
fn segment_id(rest: &str) -> Option<Result<u64, ApiError>> {
    let id = rest.strip_prefix("/segments/")?.strip_suffix("/download")?;
    let id = url_decode(id).unwrap_or_else(|| "\u{fffd}".into());
    Some(parse_u64("id", &id, u64::MAX))
}

impl PathRouterService<(), ()> for Api<'_> {
    async fn call_path_router_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _params: (),
        path: Path<'_>,
        mut request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let parts = request.parts;
        let method = parts.method();
        let p = path.encoded();
        let get = method == "GET";
        let r: ApiResult = 'route: {
        // Every route that answers with a `Reply` or an error leaves the block below with it,
        // so the answer is written in one place (one copy of the writers' state machines in the
        // binary, not one per route); streaming routes write and return on their own.
        macro_rules! answer {
            ($r:expr) => {{
                let r: ApiResult = $r;
                break 'route r;
            }};
        }
        macro_rules! only_get {
            () => {
                if !get {
                    answer!(Err(ApiError::method("GET")))
                }
            };
        }
        macro_rules! body {
            () => {
                match read_body(&mut request).await {
                    Ok(o) => o,
                    Err(e) => answer!(Err(e)),
                }
            };
        }
        macro_rules! no_query {
            () => {
                if let Err(e) = query(&parts, &[]) {
                    answer!(Err(e))
                }
            };
        }
        match p {
            "/status" => {
                only_get!();
                no_query!();
                answer!(json_ok(self.status_json().to_string()))
            }
            "/openapi.json" => {
                only_get!();
                if super::assets::accepts_gzip(&parts.headers()) {
                    let conn = request.body_connection.finalize().await?;
                    return picoserve::response::Response::ok(super::assets::OPENAPI_GZ)
                        .with_content_type("application/json")
                        .with_header("Content-Encoding", "gzip")
                        .with_header("Vary", "Accept-Encoding")
                        .write_to(conn, response_writer)
                        .await;
                }
                answer!(Ok(Reply::Json(StatusCode::OK, openapi())))
            }
            "/live.mjpeg" => {
                only_get!();
                no_query!();
                if self.h264() {
                    answer!(Err(ApiError::new(StatusCode::CONFLICT, "the recording is H.264: watch /api/live.mp4 (video_codec=mjpeg records Motion JPEG)")));
                }
                let max = self.control.max_live_clients();
                match self.hub.join(max) {
                    Some(viewer) => {
                        let conn = request.body_connection.finalize().await?;
                        return live::mjpeg_response(viewer).write_to(conn, response_writer).await;
                    }
                    None => answer!(Err(ApiError::busy(format!("{max} live viewers already (max_live_clients)"), 5))),
                }
            }
            "/live.mp4" => {
                only_get!();
                no_query!();
                if !self.h264() {
                    answer!(Err(ApiError::new(StatusCode::CONFLICT, "the recording is Motion JPEG: watch /api/live.mjpeg (video_codec=h264 records H.264)")));
                }
                let ring = self.ring();
                let max = self.control.max_live_clients();
                match self.hub.join(max) {
                    Some(viewer) => {
                        let conn = request.body_connection.finalize().await?;
                        return live::mp4_response(viewer, ring).write_to(conn, response_writer).await;
                    }
                    None => answer!(Err(ApiError::busy(format!("{max} live viewers already (max_live_clients)"), 5))),
                }
            }
            "/snapshot.jpg" if self.h264() => {
                only_get!();
                no_query!();
                // Nobody watching: the ring fills from the next IDR on, up to keyframe_interval_s away.
                let wait = Duration::from_secs(3.max(u64::from(self.control.config().keyframe_interval_s) + 2));
                let r = match live::snapshot_h264(self.hub.slot, self.ring(), wait).await {
                    Ok((seq, utc_ns, data)) => Ok(Reply::Jpeg { data, seq, utc_ns, prev: None, next: None }),
                    Err(live::SnapshotError::NoFrame) => Err(ApiError::busy(format!("no frame within {} s (is recording stopped?)", wait.as_secs()), 2)),
                    Err(live::SnapshotError::Decode(e)) => {
                        log::warn!("snapshot: {e}");
                        Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot decode the live picture: {e}")))
                    }
                };
                answer!(r)
            }
            "/snapshot.jpg" => {
                only_get!();
                no_query!();
                let r = match live::snapshot(self.hub.slot, Duration::from_secs(3)).await {
                    Some((seq, utc_ns, data)) => Ok(Reply::Jpeg { data, seq, utc_ns, prev: None, next: None }),
                    None => Err(ApiError::busy("no frame within 3 s (is recording stopped?)", 2)),
                };
                answer!(r)
            }
            "/events" => {
                only_get!();
                no_query!();
                if self.event_clients.get() >= MAX_EVENT_CLIENTS {
                    answer!(Err(ApiError::busy("too many event streams", 5)));
                }
                self.event_clients.set(self.event_clients.get() + 1);
                let ev = Events { api: self };
                let conn = request.body_connection.finalize().await?;
                return CustomResponse::build(StatusCode::OK)
                    .with_header("Content-Type", "text/event-stream")
                    .with_header("Cache-Control", "no-store")
                    .with_body(ev)
                    .write_to(conn, response_writer)
                    .await
            }
            "/parking" => {
                no_query!();
                let r = match method {
                    "GET" | "HEAD" => Ok(Reply::Json(StatusCode::OK, self.parking.json())),
                    "POST" => {
                        let o = body!();
                        match (only_keys(&o, &["on"]), o.get("on")) {
                            (Err(e), _) => Err(e),
                            (Ok(()), Some(json::Value::Bool(on))) => {
                                self.parking.set(*on, false);
                                Ok(Reply::Json(StatusCode::OK, self.parking.json()))
                            }
                            _ => Err(ApiError::bad_key("on", "on must be true or false")),
                        }
                    }
                    _ => Err(ApiError::method("GET, POST")),
                };
                answer!(r)
            }
            "/incidents" => {
                let body = if method == "POST" { Some(body!()) } else { None };
                let q = match query(&parts, &["from", "to", "kind"]) {
                    Ok(q) => q,
                    Err(e) => answer!(Err(e)),
                };
                answer!(self.incidents(method, &q, body).await)
            }
            p if p.starts_with("/incidents/") => {
                no_query!();
                answer!(self.incident(method, p).await)
            }
            "/segments" => {
                only_get!();
                let r = query(&parts, &["from", "to"]).and_then(|q| self.get_segments(&q));
                answer!(r)
            }
            "/frame" => {
                only_get!();
                let r = match query(&parts, &["at", "seq"]) {
                    Ok(q) => self.get_frame(&q).await,
                    Err(e) => Err(e),
                };
                answer!(r)
            }
            "/recording" => match method {
                "GET" => {
                    no_query!();
                    answer!(json_ok(self.recording_json()))
                }
                "PUT" => {
                    no_query!();
                    let o = body!();
                    answer!(self.put_recording(o).await)
                }
                _ => answer!(Err(ApiError::method("GET, PUT"))),
            },
            "/protected" => {
                only_get!();
                no_query!();
                answer!(json_ok(Self::ranges_json(&self.footage.protected().ranges)))
            }
            "/protect" | "/unprotect" | "/save-last" => {
                if method != "POST" {
                    answer!(Err(ApiError::method("POST")));
                }
                no_query!();
                let o = body!();
                let r = match p {
                    "/protect" => self.post_protect(o, true).await,
                    "/unprotect" => self.post_protect(o, false).await,
                    _ => self.post_save_last(o).await,
                };
                answer!(r)
            }
            "/config" => match method {
                "GET" => {
                    no_query!();
                    answer!(json_ok(self.control.config().to_json_hidden().trim_end().to_string()))
                }
                "PUT" => {
                    no_query!();
                    let o = body!();
                    answer!(self.put_config(o).await)
                }
                _ => answer!(Err(ApiError::method("GET, PUT"))),
            },
            "/pairing" => {
                if method != "POST" {
                    answer!(Err(ApiError::method("POST")));
                }
                no_query!();
                let host = parts.headers().get("Host").and_then(|h| core::str::from_utf8(h.as_raw()).ok().map(str::to_string)).unwrap_or_default();
                answer!(self.new_pairing(&host))
            }
            "/camera/modes" => {
                only_get!();
                no_query!();
                answer!(super::device::modes(self.camera_device))
            }
            "/device/credentials" => match method {
                "GET" => {
                    no_query!();
                    answer!(super::device::credentials(&self.src.data_dir, self.appliance))
                }
                "PUT" => {
                    no_query!();
                    let o = body!();
                    answer!(super::device::put_credentials(&self.src.data_dir, self.appliance, &o))
                }
                _ => answer!(Err(ApiError::method("GET, PUT"))),
            },
            "/device/reboot" => {
                if method != "POST" {
                    answer!(Err(ApiError::method("POST")));
                }
                no_query!();
                let o = body!();
                if let Err(e) = super::device::confirmed(&o, "reboot") {
                    answer!(Err(e));
                }
                answer!(super::device::reboot(self.appliance))
            }
            "/storage/erase" => {
                if method != "POST" {
                    answer!(Err(ApiError::method("POST")));
                }
                no_query!();
                let o = body!();
                if let Err(e) = super::device::confirmed(&o, "erase") {
                    answer!(Err(e));
                }
                answer!(self.erase().await)
            }
            "/alerts" => match method {
                "GET" => {
                    no_query!();
                    answer!(super::alerts::get())
                }
                "PUT" => {
                    no_query!();
                    let o = body!();
                    answer!(super::alerts::put(&o))
                }
                _ => answer!(Err(ApiError::method("GET, PUT"))),
            },
            "/alerts/test" => {
                if method != "POST" {
                    answer!(Err(ApiError::method("POST")));
                }
                no_query!();
                let o = body!();
                let ch = match super::alerts::test_channel_of(&o) {
                    Ok(c) => c,
                    Err(e) => answer!(Err(e)),
                };
                let r = super::blocking::run(move || super::alerts::test(ch)).await;
                answer!(r.unwrap_or_else(|| Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the test failed unexpectedly"))))
            }
            "/offload" => match method {
                "GET" => {
                    no_query!();
                    answer!(super::offload::get())
                }
                "PUT" => {
                    no_query!();
                    let o = body!();
                    answer!(super::offload::put(&o))
                }
                _ => answer!(Err(ApiError::method("GET, PUT"))),
            },
            "/offload/run" | "/offload/test" => {
                if method != "POST" {
                    answer!(Err(ApiError::method("POST")));
                }
                no_query!();
                let r = if p == "/offload/run" {
                    super::offload::run_now()
                } else {
                    super::blocking::run(super::offload::test_target).await.unwrap_or_else(|| Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the test failed unexpectedly")))
                };
                answer!(r)
            }
            "/time" => match method {
                "GET" => {
                    no_query!();
                    answer!(json_ok(self.time_json()))
                }
                "PUT" => {
                    no_query!();
                    let o = body!();
                    answer!(self.put_time(o))
                }
                _ => answer!(Err(ApiError::method("GET, PUT"))),
            },
            p if p.starts_with("/segments/") && p.ends_with("/thumb.jpg") => {
                only_get!();
                no_query!();
                answer!(self.segment_thumb(p).await)
            }
            _ => {
                let Some(id) = segment_id(p) else {
                    answer!(Err(ApiError::not_found(format!("no such API route: /api{}", p.chars().take(200).collect::<String>()))))
                };
                only_get!();
                no_query!();
                let id = match id {
                    Ok(id) => id,
                    Err(e) => answer!(Err(e)),
                };
                let segs = match self.segments() {
                    Ok(s) => s,
                    Err(e) => answer!(Err(e)),
                };
                let Some(seg) = segs.iter().find(|s| s.first_seq == id && s.frames > 0) else {
                    answer!(Err(ApiError::not_found(format!("no segment {id}"))))
                };
                let loaded = match self.footage.load(seg) {
                    Ok(Some(l)) => l,
                    Ok(None) => answer!(Err(ApiError::not_found(format!("segment {id} is gone or unreadable")))),
                    Err(e) => answer!(Err(Self::io_error(e))),
                };
                let name = format!(
                    "attachment; filename=\"blackbox_{}_{}.{}\"",
                    clock::Compact(seg.start_utc_ns),
                    clock::Compact(seg.end_utc_ns),
                    if loaded.params.is_some() { "h264" } else { "mjpeg" }
                );
                let conn = request.body_connection.finalize().await?;
                return ChunkedResponse::new(Download { seg: loaded })
                    .into_response()
                    .with_header("Content-Disposition", name)
                    .with_header("Cache-Control", "no-store")
                    .write_to(conn, response_writer)
                    .await
            }
        }
        };
        let conn = request.body_connection.finalize().await?;
        match r {
            Ok(reply) => reply.write_to(conn, response_writer).await,
            Err(e) => e.write_to(conn, response_writer).await,
        }
    }
}

/// One method's service on a route of its own (controls, export): any other method gets the
/// API's JSON 405 with `Allow`, which picoserve's method router leaves out.
pub struct Only<S> {
    pub method: &'static str,
    pub service: S,
}

impl<P, S: picoserve::routing::RequestHandlerService<(), P>> picoserve::routing::MethodHandlerService<(), P> for Only<S> {
    async fn call_method_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        state: &(),
        params: P,
        method: &str,
        request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        if method != self.method {
            let conn = request.body_connection.finalize().await?;
            return ApiError::method(self.method).write_to(conn, response_writer).await;
        }
        self.service.call_request_handler_service(state, params, request, response_writer).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decoding_refuses_nul_and_bad_escapes() {
        assert_eq!(url_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(url_decode("%2e%2e"), Some("..".into()));
        assert_eq!(url_decode("%00"), None);
        assert_eq!(url_decode("%zz"), None);
        assert_eq!(url_decode("%4"), None);
        assert_eq!(url_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn segment_ids_are_numbers_never_paths() {
        assert_eq!(segment_id("/segments/42/download").unwrap().unwrap(), 42);
        for bad in ["..", "%2e%2e", "%2F", "-1", "", "1e3", "+5", "99999999999999999999999", "%00", "4%2F2"] {
            let p = format!("/segments/{bad}/download");
            assert!(segment_id(&p).unwrap().is_err(), "{bad}");
        }
        assert!(segment_id("/segments/1/2/download").unwrap().is_err());
        assert!(segment_id("/segmentsx").is_none());
    }

    #[test]
    fn config_merging_names_the_bad_key_and_keeps_the_rest() {
        let old = Config::default();
        let o = json::parse_object(br#"{"video_fps": 10}"#).unwrap();
        let c = merge_config(&old, &o).unwrap();
        assert_eq!(c.video_fps, 10);
        assert_eq!(c.max_live_clients, old.max_live_clients);
        for (body, key) in [
            (&br#"{"video_fps": 500}"#[..], "video_fps"),
            (br#"{"video_fps": "x"}"#, "video_fps"),
            (br#"{"vidoe_fps": 5}"#, "vidoe_fps"),
            (br#"{"listen": "nowhere"}"#, "listen"),
        ] {
            let e = merge_config(&old, &json::parse_object(body).unwrap()).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{}", e.msg);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }
}
