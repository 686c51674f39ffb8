//! `GET /api/export.mp4?from=T&to=T`, `GET /api/export.json?from=T&to=T` and
//! `GET /api/segments/{id}/export.mp4`: an MP4 of stored footage, built on the fly
//! (docs/EXPORT.md), with `Range` support (206 / 416) so players seek and downloads resume.
//!
//! The plan (index + record headers) runs on a thread of its own, and every frame read on a
//! thread the export's body keeps for its life (src/web/blocking.rs): the web thread only
//! copies bytes that are already in memory to the socket.
//!
//! Memory stays bounded whatever the load ([`Limit`]): at most [`MAX_EXPORTS`] exports at
//! once, the plans alive within [`EXPORT_MEMORY`] (reserved from the catalog's frame counts
//! before planning), and a request for footage planned moments ago shares that plan.

use crate::clock::Iso;
use crate::export::{self, Export, ExportReader, PlanError};
use picoserve::io::{Read, Write};
use picoserve::request::{Request, RequestParts};
use picoserve::response::{Content, IntoResponse, Response, ResponseWriter, StatusCode};
use picoserve::ResponseSent;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which footage a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// UTC ns, `from` included, `to` excluded.
    Range { from: i64, to: i64 },
    /// One segment by id (its first seq).
    Segment(u64),
}

/// The three routes; `json` answers size and duration instead of the file.
pub struct ExportService<'a> {
    /// `?camera=` picks the store.
    pub cameras: &'a super::percam::Cameras,
    pub json: bool,
    pub limit: &'a Limit,
}

/// `GET /api/segments/{id}/export.mp4`.
pub struct SegmentExportService<'a> {
    pub cameras: &'a super::percam::Cameras,
    pub limit: &'a Limit,
}

/// A JSON body owned by the response.
struct JsonText(String);

impl Content for JsonText {
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn content_length(&self) -> usize {
        self.0.len()
    }

    async fn write_content<W: Write>(self, mut w: W) -> Result<(), W::Error> {
        w.write_all(self.0.as_bytes()).await
    }
}

pub(super) fn error(status: StatusCode, msg: &str) -> Response<impl picoserve::response::HeadersIter, impl picoserve::response::Body> {
    let mut body = String::from("{\"error\":\"");
    for c in msg.chars() {
        match c {
            '"' => body.push_str("\\\""),
            '\\' => body.push_str("\\\\"),
            c if (c as u32) < 0x20 => body.push(' '),
            c => body.push(c),
        }
    }
    body.push_str("\"}");
    Response::new(status, JsonText(body)).with_header("Cache-Control", "no-store")
}

/// Parses `from` and `to` from the query string (both optional: the whole store), and
/// `clock=1` (export.json only: the video-time to UTC map the player needs).
pub(super) fn query_range(parts: &RequestParts<'_>) -> Result<(What, bool), String> {
    let mut from = i64::MIN;
    let mut to = i64::MAX;
    let mut clock = false;
    if let Some(q) = parts.query() {
        for pair in q.0.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = picoserve::url_encoded::UrlEncodedString(v)
                .try_into_string::<96>()
                .map_err(|_| format!("{k}: bad URL encoding or too long"))?;
            let t = || super::api::parse_clamped_time(&v).map_err(|e| format!("{k} {v:?}: {e} (expected e.g. 2026-11-21T12:00:00Z)"));
            match k {
                "from" => from = t()?,
                "to" => to = t()?,
                "clock" if v.as_str() == "1" => clock = true,
                // Which camera: the router's (`percam.rs`).
                "camera" => {}
                _ => return Err(format!("unknown parameter {k:?} (allowed: from, to, camera; clock=1 for export.json)")),
            }
        }
    }
    Ok((What::Range { from, to }, clock))
}

/// A byte range asked for by a `Range` header, resolved against the file's length.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranged {
    /// No (usable) Range header: the whole file, 200.
    Whole,
    /// `start..end` (end excluded), 206.
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// RFC 9110 single byte ranges: `bytes=a-b`, `bytes=a-`, `bytes=-n`. Anything else in a
/// `Range` header (several ranges, another unit, numbers that do not fit 64 bits, junk) is
/// refused with 416 rather than guessed at.
pub fn parse_range(header: Option<&str>, len: u64) -> Ranged {
    let Some(h) = header else { return Ranged::Whole };
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return Ranged::Unsatisfiable };
    let Some((a, b)) = spec.trim().split_once('-') else { return Ranged::Unsatisfiable };
    let num = |s: &str| -> Option<u64> { (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok()).flatten() };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            Some(0) | None => Ranged::Unsatisfiable,
            Some(_) if len == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part(len.saturating_sub(n), len),
        },
        (a, "") => match num(a) {
            Some(a) if a < len => Ranged::Part(a, len),
            _ => Ranged::Unsatisfiable,
        },
        (a, b) => match (num(a), num(b)) {
            // `b` may be past the end (it is clamped); `b + 1` saturates so it cannot wrap.
            (Some(a), Some(b)) if a <= b && a < len => Ranged::Part(a, b.saturating_add(1).min(len)),
            _ => Ranged::Unsatisfiable,
        },
    }
}

/// Exports planned or streaming at once; more get 503 with `Retry-After`. Each holds a worker
/// mid-response (never shed, src/web/pool.rs) and, while it reads, a blocking-pool thread.
pub const MAX_EXPORTS: usize = 6;
/// `Retry-After` of that 503, seconds.
pub const EXPORT_RETRY_S: u32 = 5;
/// Memory a planned export takes per frame, at most: the plan (48 B), the layout (24 B), the
/// sample tables of the `moov` (4-16 B) and, while it is laid out, its temporary tables
/// (measured: about 90 B at the peak; docs/RELIABILITY.md).
pub const BYTES_PER_FRAME: u64 = 160;
/// Memory every export alive may take together (the Pi has 512 MB and the recorder must never
/// be what the kernel kills): a new plan that would go beyond it waits (503), one that alone
/// would is refused (422: a shorter range). 96 MiB is 629,145 frames: 5.8 h at 30 fps.
pub const EXPORT_MEMORY: u64 = 96 << 20;
/// An export planned this recently is shared by a request for the same footage (so does one
/// whose range ended before it was planned, while it is alive).
pub const SHARE_NS: u64 = 10_000_000_000;

/// A plan alive (somewhere a download or a player holds it).
struct Planned {
    what: What,
    made_mono_ns: u64,
    made_utc_ns: i64,
    frames: u64,
    ex: std::sync::Weak<Export>,
}

/// Exports in progress and the memory of their plans (web thread only).
#[derive(Default)]
pub struct Limit {
    active: std::cell::Cell<usize>,
    /// Frames reserved by plans being made.
    planning: std::cell::Cell<u64>,
    plans: std::cell::RefCell<Vec<Planned>>,
}

/// One export's place under [`Limit`]; freed on drop.
struct Permit<'a>(&'a Limit);

/// Frames reserved for a plan being made; freed on drop (the plan, once made, is counted by
/// [`Limit::plans`] while it is alive).
struct Reservation<'a>(&'a Limit, u64);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.0.planning.set(self.0.planning.get() - self.1);
    }
}

/// Why a plan can't be made now.
enum NoRoom {
    /// Other exports hold the memory: 503.
    Busy,
    /// This one alone is larger than the budget: 422.
    TooLarge { frames: u64 },
}

impl Limit {
    fn take(&self) -> Option<Permit<'_>> {
        let n = self.active.get();
        (n < MAX_EXPORTS).then(|| {
            self.active.set(n + 1);
            Permit(self)
        })
    }

    /// Exports in progress now.
    pub fn active(&self) -> usize {
        self.active.get()
    }

    /// Frames of the plans alive or being made.
    pub fn frames_held(&self) -> u64 {
        let mut plans = self.plans.borrow_mut();
        plans.retain(|p| p.ex.strong_count() > 0);
        self.planning.get() + plans.iter().map(|p| p.frames).sum::<u64>()
    }

    /// A plan of `what` alive that a new request may share.
    fn shared(&self, what: What, now_mono: u64) -> Option<Arc<Export>> {
        let plans = self.plans.borrow();
        let p = plans.iter().rev().find(|p| {
            p.what == what
                && (now_mono.saturating_sub(p.made_mono_ns) < SHARE_NS
                    || matches!(what, What::Range { to, .. } if to <= p.made_utc_ns))
        })?;
        p.ex.upgrade()
    }

    fn reserve(&self, frames: u64) -> Result<Reservation<'_>, NoRoom> {
        let max = EXPORT_MEMORY / BYTES_PER_FRAME;
        if frames > max {
            return Err(NoRoom::TooLarge { frames });
        }
        if self.frames_held() + frames > max {
            return Err(NoRoom::Busy);
        }
        self.planning.set(self.planning.get() + frames);
        Ok(Reservation(self, frames))
    }

    fn planned(&self, what: What, frames: u64, ex: &Arc<Export>) {
        self.plans.borrow_mut().push(Planned {
            what,
            made_mono_ns: crate::clock::now_mono_ns(),
            made_utc_ns: crate::clock::now_utc_ns(),
            frames,
            ex: Arc::downgrade(ex),
        });
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let n = self.0.active.get() - 1;
        self.0.active.set(n);
        if n == 0 {
            // The last export is gone: give its plan's memory back to the system (glibc keeps
            // freed memory in its arenas, one per blocking thread that planned).
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only releases free memory of the allocator's arenas.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}

/// A strong validator of the planned file: same frames, same bytes.
fn etag(ex: &Export) -> String {
    format!("\"{:08x}-{:x}\"", crc32fast::hash(ex.head()), ex.len())
}

/// The body: a byte range of the export. Frame reads run on a thread of its own.
struct Body<'a> {
    reader: Option<ExportReader>,
    len: u64,
    _permit: Permit<'a>,
}

impl Content for Body<'_> {
    fn content_type(&self) -> &'static str {
        "video/mp4"
    }

    fn content_length(&self) -> usize {
        self.len as usize
    }

    async fn write_content<W: Write>(mut self, mut w: W) -> Result<(), W::Error> {
        let Some(mut r) = self.reader.take() else { return Ok(()) };
        // Frame reads on a thread of this export's own, which exits with it.
        let reads = super::blocking::Worker::new(|mut r: ExportReader| {
            let res = r.prefetch();
            (r, res)
        });
        loop {
            let Some((back, res)) = reads.call(r).await else { return Ok(()) };
            r = back;
            if res.is_err() {
                // Logged by the reader. The body ends short of Content-Length: the client
                // sees an incomplete download, never wrong bytes (docs/EXPORT.md).
                return Ok(());
            }
            let chunk = match r.next_chunk() {
                Ok(c) => c,
                Err(_) => return Ok(()),
            };
            if chunk.is_empty() {
                return Ok(());
            }
            w.write_all(chunk).await?;
        }
    }
}

/// The export of `what`: a plan alive shared, or a new one if its memory fits the budget.
async fn plan(data_dir: &Path, limit: &Limit, what: What) -> Result<Arc<Export>, Refused> {
    if let Some(ex) = limit.shared(what, crate::clock::now_mono_ns()) {
        return Ok(ex);
    }
    let dir: PathBuf = data_dir.to_path_buf();
    let (reader, frames) = super::blocking::run(move || {
        let reader = crate::store::reader::Reader::open(&dir)?;
        let frames = match what {
            What::Range { from, to } => export::frames_at_most(&reader, from, to),
            What::Segment(id) => export::segment_frames_at_most(&reader, id),
        };
        Ok::<_, std::io::Error>((reader, frames))
    })
    .await
    .unwrap_or_else(|| Err(std::io::Error::other("reading the catalog failed")))
    .map_err(|e| Refused::Plan(PlanError::Io(e)))?;
    let reservation = limit.reserve(frames).map_err(Refused::NoRoom)?;
    let ex = super::blocking::run(move || match what {
        What::Range { from, to } => export::from_reader(&reader, from, to),
        What::Segment(id) => export::segment_from_reader(&reader, id),
    })
    .await
    .unwrap_or_else(|| Err(PlanError::Io(std::io::Error::other("planning failed"))))
    .map_err(Refused::Plan)?;
    limit.planned(what, ex.frames() as u64, &ex);
    drop(reservation);
    Ok(ex)
}

enum Refused {
    Plan(PlanError),
    NoRoom(NoRoom),
}

fn plan_error(e: &PlanError) -> (StatusCode, String) {
    match e {
        PlanError::NoFootage { .. } | PlanError::NoSegment(_) => (StatusCode::NOT_FOUND, e.to_string()),
        // An empty range (from not before to) holds no footage: schema-valid, so not a 400.
        PlanError::BadRange { .. } => (StatusCode::NOT_FOUND, e.to_string()),
        PlanError::NotExportable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        PlanError::Io(_) => {
            log::error!("export: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

async fn answer<R: Read, W: ResponseWriter<Error = R::Error>>(
    data_dir: &Path,
    limit: &Limit,
    what: Result<What, String>,
    json: bool,
    clock: bool,
    request: Request<'_, R>,
    response_writer: W,
) -> Result<ResponseSent, W::Error> {
    let range_header = request.parts.headers().get("range").and_then(|v| v.as_str().ok()).map(str::to_string);
    let if_range = request.parts.headers().get("if-range").and_then(|v| v.as_str().ok()).map(str::to_string);
    let conn = request.body_connection.finalize().await?;
    let what = match what {
        Ok(w) => w,
        // `?camera=` naming no camera: 404, as on the other routes (`percam.rs`).
        Err(msg) if msg.starts_with("no camera") => return error(StatusCode::NOT_FOUND, &msg).write_to(conn, response_writer).await,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg).write_to(conn, response_writer).await,
    };
    let Some(permit) = limit.take() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, &format!("{MAX_EXPORTS} exports are in progress; try again shortly"))
            .with_header("Retry-After", EXPORT_RETRY_S)
            .write_to(conn, response_writer)
            .await;
    };
    let ex = match plan(data_dir, limit, what).await {
        Ok(ex) => ex,
        Err(Refused::Plan(e)) => {
            let (status, msg) = plan_error(&e);
            return error(status, &msg).write_to(conn, response_writer).await;
        }
        Err(Refused::NoRoom(NoRoom::Busy)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "other exports hold the memory for exports; try again shortly")
                .with_header("Retry-After", EXPORT_RETRY_S)
                .write_to(conn, response_writer)
                .await;
        }
        Err(Refused::NoRoom(NoRoom::TooLarge { frames })) => {
            let max = EXPORT_MEMORY / BYTES_PER_FRAME;
            let msg = format!(
                "the range holds up to {frames} frames; one export holds at most {max} (about {:.1} h at 30 fps): choose a shorter range",
                max as f64 / 30.0 / 3600.0
            );
            return error(StatusCode::UNPROCESSABLE_ENTITY, &msg).write_to(conn, response_writer).await;
        }
    };
    let (first, last) = ex.utc_span();
    let tag = etag(&ex);
    if json {
        let body = format!(
            "{{\"bytes\":{},\"frames\":{},\"duration_s\":{:.3},\"start\":\"{}\",\"end\":\"{}\",\"skipped\":{},\"file_name\":\"{}\",\"codec\":\"{}\",\"codecs\":\"{}\",\"other_settings\":{},\"audio_s\":{:.3},\"audio_units\":{}}}",
            ex.len(),
            ex.frames(),
            ex.duration_ns() as f64 / 1e9,
            Iso(first),
            Iso(last),
            ex.skipped(),
            ex.file_name(),
            if ex.codec() == crate::camera::Codec::H264 { "h264" } else { "mjpeg" },
            ex.codec_string(),
            ex.other_codec(),
            ex.audio_seconds().0,
            ex.audio_seconds().1
        );
        let body = if clock {
            // The player maps the video's time to UTC with this: one point per UTC second.
            let mut b = body;
            b.pop();
            b.push_str(",\"clock\":[");
            for (i, (t, utc)) in ex.clock_points().enumerate() {
                if i > 0 {
                    b.push(',');
                }
                let _ = std::fmt::Write::write_fmt(&mut b, format_args!("[{t:.3},{}]", utc.div_euclid(1_000_000)));
            }
            b.push_str("]}");
            b
        } else {
            body
        };
        return Response::ok(JsonText(body))
            .with_header("Cache-Control", "no-store")
            .write_to(conn, response_writer)
            .await;
    }
    let len = ex.len();
    // If-Range with another validator: the file changed since the partial download; send it whole.
    let ranged = if if_range.is_some_and(|v| v.trim() != tag) { Ranged::Whole } else { parse_range(range_header.as_deref(), len) };
    let disposition = format!("attachment; filename=\"{}\"", ex.file_name());
    let (status, start, end) = match ranged {
        Ranged::Whole => (StatusCode::OK, 0, len),
        Ranged::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Ranged::Unsatisfiable => {
            return Response::new(StatusCode::RANGE_NOT_SATISFIABLE, "")
                .with_header("Content-Range", format!("bytes */{len}"))
                .with_header("Accept-Ranges", "bytes")
                .with_header("ETag", tag)
                .write_to(conn, response_writer)
                .await;
        }
    };
    log::info!(
        "export: {} frames {} .. {}, bytes {start}..{end} of {len}",
        ex.frames(),
        Iso(first),
        Iso(last)
    );
    let body = Body { reader: Some(ex.range(start, end)), len: end - start, _permit: permit };
    Response::new(status, body)
        .with_header("Accept-Ranges", "bytes")
        .with_header("ETag", tag)
        .with_header("Content-Disposition", disposition)
        .with_header("Cache-Control", "no-store")
        .with_headers((status == StatusCode::PARTIAL_CONTENT).then(|| ("Content-Range", format!("bytes {start}-{}/{len}", end - 1))))
        .write_to(conn, response_writer)
        .await
}

impl picoserve::routing::RequestHandlerService<(), ()> for ExportService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _path_parameters: (),
        request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let (what, clock) = match query_range(&request.parts) {
            Ok((_, c)) if c && !self.json => (Err("clock=1 is for export.json only".to_string()), c),
            Ok((w, c)) => (Ok(w), c),
            Err(e) => (Err(e), false),
        };
        let (dir, what) = match self.cameras.pick(&request.parts) {
            Ok(i) => (self.cameras.dir(i), what),
            Err(e) => (self.cameras.dir(0), Err(e)),
        };
        answer(dir, self.limit, what, self.json, clock, request, response_writer).await
    }
}

impl picoserve::routing::RequestHandlerService<(), (u64,)> for SegmentExportService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        (id,): (u64,),
        request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let (dir, what) = match self.cameras.pick(&request.parts) {
            Ok(i) => (self.cameras.dir(i), Ok(What::Segment(id))),
            Err(e) => (self.cameras.dir(0), Err(e)),
        };
        answer(dir, self.limit, what, false, false, request, response_writer).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_budget_refuses_what_cannot_fit() {
        let l = Limit::default();
        let max = EXPORT_MEMORY / BYTES_PER_FRAME;
        assert!(matches!(l.reserve(max + 1), Err(NoRoom::TooLarge { .. })));
        let a = l.reserve(max / 2).ok().unwrap();
        assert!(matches!(l.reserve(max / 2 + 2), Err(NoRoom::Busy)));
        assert_eq!(l.frames_held(), max / 2);
        drop(a);
        assert_eq!(l.frames_held(), 0);
        assert!(l.reserve(max).is_ok());
    }

    #[test]
    fn range_headers_resolve_like_rfc_9110() {
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), Ranged::Whole);
        assert_eq!(r("bytes=0-0"), Ranged::Part(0, 1));
        assert_eq!(r("bytes=10-19"), Ranged::Part(10, 20));
        assert_eq!(r("bytes=990-5000"), Ranged::Part(990, 1000));
        assert_eq!(r("bytes=500-"), Ranged::Part(500, 1000));
        assert_eq!(r("bytes=-100"), Ranged::Part(900, 1000));
        assert_eq!(r("bytes=-5000"), Ranged::Part(0, 1000));
        assert_eq!(r("bytes=1000-"), Ranged::Unsatisfiable);
        assert_eq!(r("bytes=1000-1001"), Ranged::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Ranged::Unsatisfiable);
        // Issue 15: `b + 1` wrapped to 0 and answered 206 with a huge Content-Length.
        assert_eq!(r("bytes=100-18446744073709551615"), Ranged::Part(100, 1000));
        for refused in [
            "bytes=5-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=0-5,3-8",
            "bytes=",
            "bytes=--1",
            "bytes=+1-2",
            "bytes=0-18446744073709551616",
            "bytes=-18446744073709551616",
            "bytes=1 2-3",
        ] {
            assert_eq!(r(refused), Ranged::Unsatisfiable, "{refused}");
        }
        assert_eq!(parse_range(Some("bytes=-5"), 0), Ranged::Unsatisfiable);
    }
}
