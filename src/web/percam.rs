//! `?camera=NAME` on the API: which camera a request is about. Every route that concerns one
//! camera's footage or recorder (status, live, snapshot, segments, frames, recording,
//! protection, exports, the status event stream) takes it; without it, the first camera (`front`) answers, so clients
//! written for one camera keep working. Device-wide routes (config, time, incidents, offload,
//! ...) ignore it.

use super::api::{Api, ApiError};
use picoserve::io::Read;
use picoserve::request::{Path, Request, RequestParts};
use picoserve::response::{IntoResponse, ResponseWriter, StatusCode};
use picoserve::routing::PathRouterService;
use picoserve::ResponseSent;
use std::path::PathBuf;

/// The cameras: names and store dirs, the first camera first.
pub struct Cameras {
    pub names: Vec<String>,
    pub dirs: Vec<PathBuf>,
}

impl Cameras {
    /// The camera `?camera=` names (the first when the query names none).
    pub fn pick(&self, parts: &RequestParts<'_>) -> Result<usize, String> {
        let Some(q) = parts.query() else { return Ok(0) };
        let mut found = None;
        for pair in q.0.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k != "camera" {
                continue;
            }
            if found.is_some() {
                return Err("parameter \"camera\" given twice".into());
            }
            let v = super::api::url_decode(v).ok_or("parameter \"camera\": malformed value")?;
            found = Some(self.names.iter().position(|n| *n == v).ok_or_else(|| {
                let shown: String = v.chars().take(32).collect();
                format!("no camera {shown:?} (cameras: {})", self.names.join(", "))
            })?);
        }
        Ok(found.unwrap_or(0))
    }

    /// [`Cameras::pick`], its refusal as the API's answer: 404 for a camera there is not, 400
    /// for a malformed query, both with `key: camera`.
    pub fn pick_or_error(&self, parts: &RequestParts<'_>) -> Result<usize, ApiError> {
        self.pick(parts).map_err(|e| {
            let status = if e.starts_with("no camera") { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
            ApiError { key: Some("camera".into()), ..ApiError::new(status, e) }
        })
    }

    pub fn dir(&self, i: usize) -> &std::path::Path {
        &self.dirs[i.min(self.dirs.len() - 1)]
    }
}

/// The methods a per-camera route answers (others get the route's own 405, whatever the camera).
fn methods(p: &str) -> &'static [&'static str] {
    match p {
        "/recording" => &["GET", "PUT"],
        "/protect" | "/unprotect" | "/save-last" => &["POST"],
        _ => &["GET"],
    }
}

/// Routes under `/api` that concern one camera.
fn per_camera(p: &str) -> bool {
    matches!(
        p,
        "/status"
            | "/events"
            | "/live.mjpeg"
            | "/live.mp4"
            | "/snapshot.jpg"
            | "/segments"
            | "/frame"
            | "/recording"
            | "/protected"
            | "/protect"
            | "/unprotect"
            | "/save-last"
            | "/camera/modes"
    ) || p.starts_with("/segments/")
}

/// The `/api` router: each request goes to its camera's [`Api`].
pub struct PerCamera<'a> {
    pub cameras: &'a Cameras,
    pub apis: &'a [Api<'a>],
}

impl PathRouterService<(), ()> for PerCamera<'_> {
    async fn call_path_router_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        state: &(),
        params: (),
        path: Path<'_>,
        request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let per = per_camera(path.encoded());
        let i = match self.cameras.pick(&request.parts) {
            Ok(i) => i,
            // Another method or a device-wide route: the route answers (405, or ignores it).
            Err(_) if !per || !methods(path.encoded()).contains(&request.parts.method()) => 0,
            Err(_) => {
                let e = self.cameras.pick_or_error(&request.parts).err().unwrap_or_else(|| ApiError::bad("camera"));
                let conn = request.body_connection.finalize().await?;
                return e.write_to(conn, response_writer).await;
            }
        };
        let api = if per { &self.apis[i.min(self.apis.len() - 1)] } else { &self.apis[0] };
        api.call_path_router_service(state, params, path, request, response_writer).await
    }
}
