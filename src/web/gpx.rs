//! `GET /api/export.gpx?from=T&to=T`: the GPS track of a time range (both optional: all of
//! it) as GPX 1.1 (`gps::gpx`), read on the blocking pool.

use super::export::{What, error, query_range};
use picoserve::io::{Read, Write};
use picoserve::request::Request;
use picoserve::response::{Content, IntoResponse, Response, ResponseWriter, StatusCode};
use picoserve::ResponseSent;
use std::path::Path;

pub struct GpxService<'a> {
    pub data_dir: &'a Path,
}

struct Gpx(String);

impl Content for Gpx {
    fn content_type(&self) -> &'static str {
        "application/gpx+xml"
    }

    fn content_length(&self) -> usize {
        self.0.len()
    }

    async fn write_content<W: Write>(self, mut w: W) -> Result<(), W::Error> {
        w.write_all(self.0.as_bytes()).await
    }
}

impl picoserve::routing::RequestHandlerService<(), ()> for GpxService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _path_parameters: (),
        request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let conn = request.body_connection.finalize().await?;
        let (from, to) = match query_range(&request.parts) {
            Ok((What::Range { from, to }, false)) => (from, to),
            Ok(_) => return error(StatusCode::BAD_REQUEST, "clock=1 is for export.json only").write_to(conn, response_writer).await,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e).write_to(conn, response_writer).await,
        };
        let dir = self.data_dir.to_path_buf();
        let built = super::blocking::run(move || {
            let (points, bad) = crate::gps::track::read(&dir, from, to);
            if points.len() > crate::gps::gpx::MAX_POINTS {
                return Err(points.len());
            }
            if bad > 0 {
                log::warn!("gpx: {bad} damaged track record(s) skipped");
            }
            Ok((crate::gps::gpx::write(&points, from, to), points.first().map(|p| p.utc_ns)))
        })
        .await;
        match built {
            Some(Ok((gpx, first))) => {
                let name = format!("blackbox-{}.gpx", crate::clock::Compact(first.unwrap_or(from.max(0))));
                Response::new(StatusCode::OK, Gpx(gpx))
                    .with_header("Content-Disposition", format!("attachment; filename=\"{name}\""))
                    .with_header("Cache-Control", "no-store")
                    .write_to(conn, response_writer)
                    .await
            }
            Some(Err(n)) => {
                error(StatusCode::PAYLOAD_TOO_LARGE, &format!("{n} points: at most {} in one GPX; ask for a shorter range", crate::gps::gpx::MAX_POINTS))
                    .write_to(conn, response_writer)
                    .await
            }
            None => error(StatusCode::INTERNAL_SERVER_ERROR, "the track could not be read").write_to(conn, response_writer).await,
        }
    }
}
