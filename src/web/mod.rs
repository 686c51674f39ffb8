//! The web server: picoserve on smol, on its own thread.
//!
//! A fixed pool of [`WORKERS`] connection workers is spawned once on a single-threaded smol
//! executor. Each worker owns its request and write buffers for the life of the thread and
//! serves one connection at a time: accept, serve (keep-alive) until the client leaves or
//! times out, accept again. No task or buffer is created per connection. When every worker is
//! busy, new connections wait in the kernel's accept queue; picoserve's timeouts bound how long
//! an idle or slow client can hold a worker.
//!
//! The recorder never waits on this thread: the web side only reads the recorder's atomics
//! ([`crate::status::RecorderStatus`]) and, later, the live slot and the store's files.

pub mod auth;
pub mod conn;
pub mod portal;
pub mod status;

use conn::{Conn, SmolRuntime, SmolTimer};
use picoserve::response::Response;
use picoserve::routing::{get, post_service};
use picoserve::time::Duration;
use picoserve::{Config, Router, Timeouts};
use smol::Async;
use status::StatusSource;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// Connections served at the same time.
pub const WORKERS: usize = 32;
/// Request line + headers (+ a body read whole) must fit here; larger requests get 400.
pub const REQUEST_BUFFER: usize = 8 * 1024;
/// Responses are gathered here so headers and a small body leave in one send.
pub const WRITE_BUFFER: usize = 4 * 1024;

/// Timeouts that suit phones on a car's Wi-Fi: patient writes, short idle keep-alive.
pub const CONFIG: Config = Config::new(Timeouts {
    start_read_request: Duration::from_secs(5),
    persistent_start_read_request: Duration::from_secs(5),
    read_request: Duration::from_secs(5),
    write: Duration::from_secs(10),
})
.keep_connection_alive();

/// What the server needs from the rest of blackbox.
pub struct WebContext {
    pub status: Arc<crate::status::RecorderStatus>,
    pub data_dir: std::path::PathBuf,
    pub cap_bytes: u64,
    /// The device secret ([`auth::Secret::load_or_create`]).
    pub secret: auth::Secret,
}

/// Binds `addr` now (so the caller learns of a busy port at once) and starts the web thread.
/// Returns the bound address (useful with port 0).
pub fn start(addr: SocketAddr, ctx: WebContext) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("web".into()).spawn(move || {
        if let Err(e) = serve(listener, ctx) {
            log::error!("web server stopped: {e}");
        }
    })?;
    Ok(local)
}

/// Runs the worker pool on the current thread, forever (until the process exits).
fn serve(listener: TcpListener, ctx: WebContext) -> std::io::Result<()> {
    let listener = Async::new(listener)?;
    let src = StatusSource { status: &ctx.status, data_dir: ctx.data_dir.clone(), cap_bytes: ctx.cap_bytes };
    let src = &src;
    let auth = &auth::Auth::new(ctx.secret.clone());
    let app = portal::routes(Router::new())
        .route("/health", get(move || async move { json(status::health_json(&src.status.snapshot())) }))
        .route(
            "/login",
            get(|| async { auth::Reply::LoginPage }).post_service(auth::LoginService(auth)),
        )
        .route("/logout", post_service(auth::LogoutService(auth)))
        .route("/api/status", get(move || async move { json(status::status_json(src)) }))
        .layer(auth::AuthLayer { auth });
    let app = &app;
    let listener = &listener;
    let ex = smol::LocalExecutor::new();
    let mut workers = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        workers.push(ex.spawn(async move {
            let mut request_buf = [0u8; REQUEST_BUFFER];
            let mut write_buf = [0u8; WRITE_BUFFER];
            loop {
                let stream = match listener.accept().await {
                    Ok((s, _peer)) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        log::warn!("web: accept failed: {e}");
                        smol::Timer::after(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.get_ref().set_nodelay(true);
                let conn = Conn { stream, wbuf: &mut write_buf };
                let server = picoserve::Server::<SmolRuntime, _, _, _>::custom(app, SmolTimer, &CONFIG, &mut request_buf);
                // Errors here are one client's trouble (reset, timeout, bad request): not logged
                // per connection, so a noisy client cannot flood the log.
                let _ = server.serve(conn).await;
            }
        }));
    }
    log::info!("web: serving on {} with {WORKERS} workers", listener.get_ref().local_addr()?);
    smol::block_on(ex.run(smol::future::pending::<()>()));
    drop(workers);
    Ok(())
}

fn json(body: status::JsonBuf) -> impl picoserve::response::IntoResponse {
    Response::ok(body).with_content_type("application/json").with_header("Cache-Control", "no-store")
}
