//! The dashboard: HTML, CSS and JS from `src/web/ui/`, embedded in the binary.
//!
//! - `GET /` is the page shell (`index.html`). It names its assets with `?v=<VERSION>`, a hash
//!   of their bytes computed at compile time, so browsers may cache the assets for a year and
//!   still fetch new ones after an upgrade. The shell itself is revalidated (`no-cache` + ETag).
//! - `GET /assets/{name}` serves the files of [`ASSETS`] (public: they hold no data), with
//!   their Content-Type, `Cache-Control: public, max-age=31536000, immutable` and an ETag
//!   (`If-None-Match` → 304). Any other name is a 404: names are matched against a fixed
//!   table, never used as paths.

use picoserve::io::{Read, Write};
use picoserve::response::{Content, Directory, File, IntoResponse, Response, ResponseWriter, StatusCode};
use picoserve::ResponseSent;

const IMMUTABLE: &[(&str, &str)] = &[("Cache-Control", "public, max-age=31536000, immutable")];

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");
const ICON_SVG: &str = include_str!("ui/icon.svg");
const MANIFEST: &str = include_str!("ui/manifest.webmanifest");
const LOGIN_JS: &str = include_str!("ui/login.js");

/// The files under `/assets/`.
pub const ASSETS: Directory = Directory {
    files: &[
        ("app.js", File::with_content_type_and_headers(File::MIME_JS, APP_JS.as_bytes(), IMMUTABLE)),
        ("app.css", File::with_content_type_and_headers(File::MIME_CSS, APP_CSS.as_bytes(), IMMUTABLE)),
        ("icon.svg", File::with_content_type_and_headers("image/svg+xml", ICON_SVG.as_bytes(), IMMUTABLE)),
        ("login.js", File::with_content_type_and_headers(File::MIME_JS, LOGIN_JS.as_bytes(), IMMUTABLE)),
        (
            "manifest.webmanifest",
            File::with_content_type_and_headers("application/manifest+json", MANIFEST.as_bytes(), IMMUTABLE),
        ),
    ],
    sub_directories: &[],
};

/// FNV-1a (64 bit), usable in constants.
const fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// A hash of every embedded file: changes whenever the dashboard does.
pub const VERSION: u64 = {
    let mut h = 0xcbf2_9ce4_8422_2325;
    h = fnv1a(h, INDEX.as_bytes());
    h = fnv1a(h, APP_JS.as_bytes());
    h = fnv1a(h, APP_CSS.as_bytes());
    h = fnv1a(h, ICON_SVG.as_bytes());
    fnv1a(h, MANIFEST.as_bytes())
};

/// The marker in `index.html` that becomes [`VERSION`] (16 hex digits).
const MARKER: &str = "__V__";

fn version_hex() -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = b"0123456789abcdef"[((VERSION >> (60 - 4 * i)) & 15) as usize];
    }
    out
}

/// `index.html` with every [`MARKER`] replaced by the version, written without a copy.
struct IndexPage;

impl Content for IndexPage {
    fn content_type(&self) -> &'static str {
        File::MIME_HTML
    }

    fn content_length(&self) -> usize {
        INDEX.len() + INDEX.matches(MARKER).count() * (16 - MARKER.len())
    }

    async fn write_content<W: Write>(self, mut writer: W) -> Result<(), W::Error> {
        let v = version_hex();
        let mut parts = INDEX.split(MARKER);
        if let Some(first) = parts.next() {
            writer.write_all(first.as_bytes()).await?;
        }
        for part in parts {
            writer.write_all(&v).await?;
            writer.write_all(part.as_bytes()).await?;
        }
        Ok(())
    }
}

/// The ETag of the page shell: the version in quotes.
fn etag() -> [u8; 18] {
    let mut e = [b'"'; 18];
    e[1..17].copy_from_slice(&version_hex());
    e
}

/// `GET /`: the dashboard shell.
pub struct IndexService;

impl picoserve::routing::RequestHandlerService<(), ()> for IndexService {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _path_parameters: (),
        request: picoserve::request::Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let tag = etag();
        // Only ASCII digits and quotes: always valid UTF-8.
        let tag = core::str::from_utf8(&tag).unwrap_or("\"0\"");
        let fresh = request
            .parts
            .headers()
            .get("If-None-Match")
            .is_some_and(|v| v.split(b',').any(|t| t.as_raw().trim_ascii() == tag.as_bytes()));
        let connection = request.body_connection.finalize().await?;
        if fresh {
            return Response::new(StatusCode::NOT_MODIFIED, "")
                .with_header("ETag", tag)
                .with_header("Cache-Control", "no-cache")
                .write_to(connection, response_writer)
                .await;
        }
        Response::ok(IndexPage)
            .with_header("ETag", tag)
            .with_header("Cache-Control", "no-cache")
            .with_header("X-Content-Type-Options", "nosniff")
            // Not `no-referrer`: that makes Chromium send `Origin: null` with form posts, which the
            // cross-site check refuses (the sign-out form).
            .with_header("Referrer-Policy", "same-origin")
            .with_header(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; \
                 connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            )
            .write_to(connection, response_writer)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_names_versioned_assets_that_exist() {
        assert!(INDEX.contains("/assets/app.js?v=__V__"));
        assert!(INDEX.contains("/assets/app.css?v=__V__"));
        for (name, _) in ASSETS.files {
            assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
        }
        let hex = version_hex();
        assert!(hex.iter().all(u8::is_ascii_hexdigit));
        assert_eq!(etag()[0], b'"');
    }

    #[test]
    fn nothing_external_is_referenced() {
        for (name, text) in [("index.html", INDEX), ("app.js", APP_JS), ("app.css", APP_CSS)] {
            for bad in ["http://", "https://", "//cdn", "@import"] {
                // The SVG namespace URI is an identifier, not a request.
                let hits = text.matches(bad).count() - text.matches("http://www.w3.org/").count().min(text.matches(bad).count());
                assert_eq!(hits, 0, "{name} mentions {bad}");
            }
        }
    }
}
