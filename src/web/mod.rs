//! The web server: picoserve on smol, on its own thread.
//!
//! A fixed pool of [`WORKERS`] connection workers is spawned once on a single-threaded smol
//! executor. Each worker owns its request and write buffers for the life of the thread and
//! serves one connection at a time: take one from the acceptor, serve (keep-alive) until the
//! client leaves, times out or is shed, take the next. No task or buffer is created per
//! connection. [`pool`] decides who gets a worker (the owner always does); [`strict`] refuses
//! ambiguous HTTP framing before picoserve parses it.
//!
//! The recorder never waits on this thread: the web side only reads the recorder's atomics
//! ([`crate::status::RecorderStatus`]) and, later, the live slot and the store's files.

pub mod alerts;
pub mod api;
pub mod assets;
pub mod auth;
pub mod blocking;
pub mod conn;
pub mod controls;
pub mod device;
pub mod export;
pub mod footage;
pub mod gpx;
pub mod host;
pub mod incidents;
pub mod offload;
pub mod json;
pub mod fmp4;
pub mod live;
pub mod pairing;
pub mod percam;
pub mod pool;
pub mod sessions;
pub mod portal;
pub mod status;
pub mod strict;
pub mod system;

use conn::{Conn, SmolRuntime, SmolTimer};
use picoserve::routing::{get, get_service, parse_path_segment, post_service};
use picoserve::time::Duration;
use picoserve::{Config, Router, Timeouts};
use smol::Async;
use status::StatusSource;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// Connections served at the same time: up to 64 live viewers (`max_live_clients`), event
/// streams and ordinary requests.
pub const WORKERS: usize = 96;
/// Request line + headers (+ a body read whole) must fit here; larger requests get 400.
pub const REQUEST_BUFFER: usize = 8 * 1024;
/// Responses are gathered here so headers and a small body leave in one send.
pub const WRITE_BUFFER: usize = 4 * 1024;

/// Kernel send buffer per connection (Linux doubles it). Small on purpose: a Wi-Fi client that
/// falls behind must stall the live stream's writer within a fraction of a second, so the
/// stream skips ahead to a newer frame (MJPEG) or IDR (H.264) instead of queueing seconds of
/// stale video in the kernel (autotuning lets that queue grow to 4 MB). 128 KiB is still far
/// above the bandwidth-delay product of a Wi-Fi hop, so downloads keep their speed.
pub const SEND_BUFFER: usize = 64 * 1024;

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
    /// The recorder's V4L2 device, for `/api/controls`; `None` for synthetic and file sources.
    pub camera_device: Option<std::path::PathBuf>,
    /// The mailbox to the recorder and the saved configuration.
    pub control: Arc<crate::control::Control>,
    /// The live frame slot the recorder publishes into.
    pub live: Arc<crate::live::LiveSlot>,
    /// Where `PUT /api/config` saves the configuration.
    pub config_path: std::path::PathBuf,
    /// Events (`/api/incidents`).
    pub events: Option<crate::events::EventSink>,
    /// Parking mode (`/api/parking`).
    pub parking: crate::parking::Parking,
    /// `run --appliance`: the Pi image (device settings go to blackbox.txt, reboot via init).
    pub appliance: bool,
    /// The cameras besides the first (config `cameras`), for `?camera=`.
    pub more_cameras: Vec<crate::cameras::Handle>,
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
    // Every camera's own pieces, the first camera (the top-level config) first.
    let first = crate::cameras::Handle {
        name: crate::config::cameras::FIRST.to_string(),
        dir: ctx.data_dir.clone(),
        status: Arc::clone(&ctx.status),
        live: Arc::clone(&ctx.live),
        control: Arc::clone(&ctx.control),
        device: ctx.camera_device.clone(),
    };
    let all: Vec<crate::cameras::Handle> = std::iter::once(first).chain(ctx.more_cameras.iter().cloned()).collect();
    let cams = &percam::Cameras { names: all.iter().map(|h| h.name.clone()).collect(), dirs: all.iter().map(|h| h.dir.clone()).collect() };
    let srcs: Vec<StatusSource<'_>> =
        all.iter().map(|h| StatusSource { status: &h.status, data_dir: h.dir.clone(), cap_bytes: h.control.config().storage_cap_bytes() }).collect();
    let srcs = &srcs;
    let refs: Vec<api::CamRef<'_>> = all.iter().map(|h| api::CamRef { name: &h.name, status: &h.status, control: &h.control }).collect();
    let hubs: Vec<live::Hub<'_>> = all.iter().map(|h| live::Hub::new(&h.live)).collect();
    let footages: Vec<footage::Footage> = all.iter().map(|h| footage::Footage::new(h.dir.clone())).collect();
    let pool = &pool::Pool::new(WORKERS);
    let auth = &auth::Auth::with_store(ctx.secret.clone(), &ctx.data_dir);
    let pairing = &pairing::Pairing::load(&ctx.data_dir);
    let exports = &export::Limit::default();
    let hosts = &host::Hosts::new(listener.get_ref().local_addr()?);
    // Each camera's V4L2 controls (none for other sources).
    let ctls: Vec<controls::Shared> =
        all.iter().map(|h| std::cell::RefCell::new(h.device.clone().map(crate::camera::controls::DeviceControls::new))).collect();
    let ctl = controls::PerCamera { cameras: cams, controls: &ctls };
    // One per camera: each measures its own camera's frame rate (and the system's figures).
    let samplers: Vec<system::Sampler> = all.iter().map(|_| system::Sampler::default()).collect();
    let samplers = &samplers;
    let apis: Vec<api::Api<'_>> = (0..all.len())
        .map(|i| api::Api {
            src: &srcs[i],
            control: &all[i].control,
            hub: &hubs[i],
            sampler: &samplers[i],
            footage: &footages[i],
            config_path: &ctx.config_path,
            event_clients: std::cell::Cell::new(0),
            events: ctx.events.as_ref(),
            parking: &ctx.parking,
            camera_device: all[i].device.as_deref(),
            pairing,
            appliance: ctx.appliance,
            cameras: &refs,
            index: i,
        })
        .collect();
    let api = percam::PerCamera { cameras: cams, apis: &apis };
    let hubs = &hubs;
    let app = portal::routes(Router::new())
        .route("/", get_service(assets::ShellService("index.html")))
        .nest_service("/assets", assets::AssetsService)
        .route_service("/favicon.ico", api::Only { method: "GET", service: assets::FaviconService })
        .route_service("/health", api::Health { status: &ctx.status })
        .route(
            "/login",
            get(|| async { auth::Reply::LoginPage }).post_service(auth::LoginService(auth)),
        )
        .route("/logout", post_service(auth::LogoutService(auth)))
        .route("/pair", get_service(auth::PairService(auth, pairing)))
        .route("/logout-everywhere", post_service(auth::LogoutEverywhereService(auth)))
        // Every other /api route; routes added after this line are matched before it.
        .nest_service("/api", api)
        .route_service("/api/docs", api::Only { method: "GET", service: assets::ShellService("docs.html") })
        .route_service("/api/controls", api::Only { method: "GET", service: controls::ListService(ctl) })
        .route_service(
            ("/api/controls", parse_path_segment::<u32>()),
            api::Only { method: "PUT", service: controls::SetService(ctl) },
        )
        .route_service(
            ("/api/controls", parse_path_segment::<u32>(), "/reset"),
            api::Only { method: "POST", service: controls::ResetService(ctl) },
        )
        // Export (docs/EXPORT.md).
        .route_service(
            "/api/export.mp4",
            api::Only { method: "GET", service: export::ExportService { cameras: cams, json: false, limit: exports } },
        )
        .route_service(
            "/api/export.json",
            api::Only { method: "GET", service: export::ExportService { cameras: cams, json: true, limit: exports } },
        )
        .route_service("/api/export.gpx", api::Only { method: "GET", service: gpx::GpxService { data_dir: &ctx.data_dir } })
        .route_service(
            ("/api/segments", parse_path_segment::<u64>(), "/export.mp4"),
            api::Only { method: "GET", service: export::SegmentExportService { cameras: cams, limit: exports } },
        )
        .layer(auth::AuthLayer { auth, hosts });
    let app = &app;
    let listener = &listener;
    let ex = smol::LocalExecutor::new();
    let mut workers = Vec::with_capacity(WORKERS);
    for slot in &pool.slots {
        workers.push(ex.spawn(async move {
            let mut request_buf = [0u8; REQUEST_BUFFER];
            let mut write_buf = [0u8; WRITE_BUFFER];
            let app = app.shared().with_state::<()>(pool::ConnRef(slot));
            while let Some(stream) = pool.next(slot).await {
                let conn = Conn { stream, wbuf: &mut write_buf, slot };
                let server = picoserve::Server::<SmolRuntime, _, _, _>::custom(&app, SmolTimer, &CONFIG, &mut request_buf);
                // Errors here are one client's trouble (reset, timeout, bad request): not logged
                // per connection, so a noisy client cannot flood the log. A shed connection is
                // dropped (closed) where it waits.
                smol::future::or(
                    async {
                        let _ = server.serve(conn).await;
                    },
                    slot.shed_signal(),
                )
                .await;
                pool.done(slot);
            }
        }));
    }
    let acceptor = ex.spawn(pool.accept_loop(listener));
    // Live frames: wake the viewers after each published frame.
    let notify: Vec<_> = hubs.iter().map(|h| ex.spawn(h.run_notify())).collect();
    // Once a second: system figures, and a tick for viewers waiting on a stopped recorder.
    let tick = ex.spawn(async move {
        let mut t = smol::Timer::interval(std::time::Duration::from_secs(1));
        loop {
            for (sampler, src) in samplers.iter().zip(srcs.iter()) {
                let s = src.status.snapshot();
                sampler.tick(s.frames, crate::clock::now_mono_ns(), s.recording);
            }
            for h in hubs {
                h.bump();
            }
            smol::stream::StreamExt::next(&mut t).await;
        }
    });
    log::info!("web: serving on {} with {WORKERS} workers", listener.get_ref().local_addr()?);
    smol::block_on(ex.run(smol::future::pending::<()>()));
    drop((notify, tick, acceptor));
    drop(workers);
    Ok(())
}
