//! The command line: `run`, `verify`, `ls`. Argument parsing is by hand (a handful of flags;
//! no parser crate needed). Exit codes: 0 ok, 1 the check failed / the run failed, 2 bad usage
//! or configuration.

use crate::camera::file::FileCamera;
use crate::camera::h264file::H264FileCamera;
use crate::camera::reopen::Reopening;
use crate::camera::synthetic::Synthetic;
use crate::camera::controls::{self, Control, Input, Kind};
use crate::camera::v4l2::{self as v4l2cam, H264Options, Pixel, V4l2Camera, V4l2Options};
use crate::camera::{list, Camera, CameraError};
use crate::clock::Iso;
use crate::config::Config;
use crate::live::LiveSlot;
use crate::control::Control as RecorderControl;
use crate::status::RecorderStatus;
use crate::supervisor::{self, Supervisor};
use crate::store::reader::Reader;
use crate::store::verify::{self, VerifyReport};
use crate::store::{Store, StoreOptions};
use crate::web::{self, WebContext};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const USAGE: &str = "\
blackbox — a crash-safe dash-cam recorder

usage:
  blackbox run [--config FILE] [--data DIR] [--source SRC] [--listen ADDR]
               [--as-fast-as-possible] [--loop] [--report-durable] [--inline-store]
               [--watchdog DEV] [--portal-host HOST] [--appliance]
      Records until SIGTERM/SIGINT (or the end of a file: source), then closes the open
      segment cleanly. SRC: synthetic | file:PATH (a concatenated-JPEG stream, or
      Annex-B H.264: .h264/.264 or starting with a start code, no B-frames) |
      v4l2:/dev/videoN[@FOURCC] (FOURCC: H264, MJPG, YUYV or NV12 to prefer that format) |
      rtsp://[user:pass@]host[:port]/path (H.264 over TCP, stored as sent). Config key
      cameras records more cameras at once (docs/CONFIG.md). Without --source: the config's camera_device, else the first /dev/video* capture
      device with a usable format, else synthetic. A V4L2 camera that stalls, fails or
      vanishes is reopened with backoff; the gap is recorded.
      DIR defaults to ./blackbox-data; FILE to DIR/config.json when that exists.
      --watchdog DEV: pet the hardware watchdog DEV (/dev/watchdog) while the recorder is
      healthy. --portal-host HOST: phones' captive-portal probes go to http://HOST/login.
      --appliance: the Pi image: the dashboard's Wi-Fi/password settings go to
      DATA/credentials.pending for blackbox.txt at the next start, and it may reboot.
      --inline-store: flush on the camera's thread (the camera waits for the card); only
      for benchmarks (scripts/bench capture) as the peer of the default capture ring.
  blackbox verify DIR [--json]
      Checks every frame of the store in DIR (read-only). Exit 0 only when every frame up to
      the end of the durable data validates; 1 when one doesn't; 3 when the store holds no
      frame at all (nothing recorded: the JSON says \"empty\": true).
  blackbox ls DIR [--json]
      Lists segments: UTC start/end, frames, bytes, protected.
  blackbox cameras [--json]
      Lists the V4L2 devices: driver, card, bus, formats, frame sizes and rates.
  blackbox controls DEVICE [--json] [--set ID=VALUE]... [--reset ID]...
      Lists the V4L2 controls of DEVICE (e.g. /dev/video0) with type, range, default, value
      and menu items. --set and --reset change controls (in order, validated) and report the
      new values instead (with --json, the list follows). ID is the control's number or name;
      VALUE a number, true/false, a menu item's index or name, or text.
      Safe while blackbox records from DEVICE: it never touches the stream.
  blackbox export DIR [--from T] [--to T] [--h264 [--bitrate KBPS]] -o FILE.mp4|-
      Writes the frames captured from T (included) to T (excluded) as an MP4 (H.264 or
      Motion JPEG, as recorded, a subtitle track with the UTC time and, with a GPS track, the
      speed and position, and the sound when it was recorded), to stdout with -o -. T is
      ISO 8601 UTC, e.g. 2026-11-21T12:00:00Z; without --from/--to, from the first / to the
      last frame. --h264 encodes Motion JPEG footage to H.264 (default 4000 kbit/s) first, for
      a file that plays on phones and in browsers (H.264 footage is exported as it is).
      Read-only: a store left by a power cut is recovered in memory.
  blackbox export DIR --gpx [--from T] [--to T] -o FILE.gpx|-
      Writes the GPS track of that time (DIR/gps, one point a second) as GPX 1.1.
  blackbox licenses
      Prints the licences of what is built in (/usr/share/doc/blackbox/LICENSES.md on the
      images: docs/LICENSES.md), the FDK AAC library's in full.
  blackbox --version | --help
";

/// Where the images install docs/LICENSES.md (`blackbox licenses` prints it).
const LICENSES: &str = "/usr/share/doc/blackbox/LICENSES.md";

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    crate::logger::init(log::LevelFilter::Info);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return 2;
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "run" => cmd_run(rest),
        "verify" => cmd_verify(rest),
        "ls" => cmd_ls(rest),
        "cameras" => cmd_cameras(rest),
        // Hidden: for scripts/bench only (see src/camera/bench.rs).
        "bench-encode" => cmd_bench_encode(rest),
        // Hidden: for scripts/bench's parking section (src/parking/bench.rs).
        "bench-motion" => crate::parking::bench::run(rest),
        // Hidden: for scripts/bench's audio section (src/audio/bench.rs).
        "bench-audio" => crate::audio::bench::run(rest),
        "licenses" => match std::fs::read_to_string(LICENSES) {
            Ok(t) => {
                print!("{t}");
                0
            }
            Err(_) => {
                println!(
                    "blackbox is MIT OR Apache-2.0. It includes the Fraunhofer FDK AAC Codec Library (its licence is not OSI-approved) and\n\
                     other libraries under MIT, Apache-2.0, ISC, BSD and IJG licences. The full texts and what they ask of a distributor:\n\
                     {LICENSES} on the dash cam's image, docs/LICENSES.md in the source."
                );
                0
            }
        },
        // Hidden: for scripts/qemu/m2m-test and a real Pi (src/codec/m2m_selftest.rs).
        "m2m-selftest" => cmd_m2m_selftest(rest),
        "controls" => cmd_controls(rest),
        "export" => cmd_export(rest),
        "--version" | "-V" | "version" => {
            println!("blackbox {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            0
        }
        other => {
            eprintln!("blackbox: unknown command {other:?}\n\n{USAGE}");
            2
        }
    }
}

/// Flags of one command: `--name value` pairs, boolean `--name`s and positionals.
struct Args {
    values: Vec<(&'static str, String)>,
    flags: Vec<&'static str>,
    positional: Vec<String>,
}

impl Args {
    fn parse(args: &[String], with_value: &[&'static str], boolean: &[&'static str]) -> Result<Args, String> {
        let mut a = Args { values: Vec::new(), flags: Vec::new(), positional: Vec::new() };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if let Some(name) = with_value.iter().find(|n| **n == arg.as_str()) {
                let v = it.next().ok_or_else(|| format!("{name} needs a value"))?;
                a.values.push((name, v.clone()));
            } else if let Some((n, v)) = arg.split_once('=')
                && let Some(name) = with_value.iter().find(|x| **x == n)
            {
                a.values.push((name, v.to_string()));
            } else if let Some(name) = boolean.iter().find(|n| **n == arg.as_str()) {
                a.flags.push(name);
            } else if arg.starts_with('-') {
                return Err(format!("unknown option {arg:?}"));
            } else {
                a.positional.push(arg.clone());
            }
        }
        Ok(a)
    }
    fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
    fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("blackbox: {msg}\n\n{USAGE}");
    2
}

/// Store options from the configuration.
pub fn store_options(c: &Config) -> StoreOptions {
    StoreOptions {
        segment_length_ns: c.segment_length_s as u64 * 1_000_000_000,
        commit_interval_ns: c.commit_interval_ms as u64 * 1_000_000,
        commit_frames: c.commit_frames,
        storage_cap_bytes: c.storage_cap_bytes(),
        min_free_bytes: c.min_free_bytes(),
        protected_cap_percent: c.protected_cap_percent,
        fps: c.video_fps,
        // Later segments are sized from what the previous one really used.
        expected_bytes_per_s: c.expected_bytes_per_s(),
    }
}

/// The first camera's store options: its share of the cap when there are several cameras.
pub fn front_store_options(c: &Config) -> StoreOptions {
    match c.for_camera(0) {
        Some(f) => store_options(&f),
        None => store_options(c),
    }
}

/// Opens one of the cameras besides the first from its configuration (`Config::for_camera`).
fn open_extra(c: &Config) -> Result<Box<dyn Camera>, String> {
    use crate::config::cameras::SourceKind;
    let Some(e) = c.cameras.first() else { return Err("no camera entry".into()) };
    let src = e.source.as_str();
    let cam = match crate::config::cameras::source_kind(src) {
        Some(SourceKind::V4l2) => v4l2_camera(src, c, true),
        Some(SourceKind::Synthetic) => open_camera("synthetic", c, false, false),
        // A file plays in a loop, at the camera's rate (tests and demos).
        Some(SourceKind::File) => open_camera(src, c, false, true),
        Some(SourceKind::Rtsp) => Ok(rtsp_camera(&e.name, src, e.stall_s, c)),
        None => Err(format!("{src:?} is not a camera source")),
    }?;
    with_codec(cam, c)
}

/// An RTSP camera, reconnected with backoff on trouble (`camera::reopen`); one that can't be
/// reached yet is waited for. The URL in logs never carries the password.
fn rtsp_camera(name: &str, src: &str, stall_s: u32, c: &Config) -> Box<dyn Camera> {
    use crate::camera::rtsp::{RtspCamera, RtspOptions};
    let opts = RtspOptions {
        stall: std::time::Duration::from_secs(stall_s.into()),
        fps: c.video_fps,
        size: (c.video_res_width, c.video_res_height),
    };
    let bare = crate::camera::rtsp_url::Url::parse(src).map(|u| u.bare()).unwrap_or_else(|_| "rtsp://?".into());
    let shown = format!("{name} ({bare})");
    let source = src.to_string();
    let open = move || RtspCamera::open(&source, opts);
    match open() {
        Ok(cam) => Box::new(Reopening::new(cam, &shown, open)),
        Err(e) => {
            log::warn!("camera {shown}: {e}; recording starts when it answers");
            Box::new(Reopening::waiting(&shown, opts.size, opts.fps, open))
        }
    }
}

/// The camera as `video_codec` wants it: JPEG sources encoded to H.264 when it is `h264`.
pub fn with_codec(cam: Box<dyn Camera>, c: &Config) -> Result<Box<dyn Camera>, String> {
    match c.video_codec {
        crate::config::VideoCodec::Mjpeg => Ok(cam),
        // A camera that delivers H.264 (an H.264 file, a V4L2 H264 device, a raw camera
        // encoding to H.264 itself) is recorded as it is.
        crate::config::VideoCodec::H264 if cam.delivers().inter_coded() => Ok(cam),
        crate::config::VideoCodec::H264 => {
            let cam = crate::camera::transcode::H264Camera::new(cam, c.video_bitrate_kbps, c.keyframe_interval_s)
                .map_err(|e| e.to_string())?;
            Ok(Box::new(cam))
        }
    }
}

fn open_camera(source: &str, c: &Config, as_fast: bool, looping: bool) -> Result<Box<dyn Camera>, String> {
    if source == "synthetic" {
        let cam = Synthetic::new(c.video_res_width, c.video_res_height, c.video_fps, c.mjpeg_quality)
            .map_err(|e| e.to_string())?;
        return Ok(Box::new(cam));
    }
    if let Some(path) = source.strip_prefix("file:") {
        let path = Path::new(path);
        if crate::camera::h264file::looks_like_h264(path) {
            if c.video_codec == crate::config::VideoCodec::Mjpeg {
                return Err(format!(
                    "file {}: an H.264 stream, and video_codec is mjpeg: blackbox stores H.264 as it comes and does not \
                     decode it to JPEG; set video_codec to h264 (the default) to record it",
                    path.display()
                ));
            }
            let cam = H264FileCamera::open(path, c.video_fps, as_fast, looping).map_err(|e| e.to_string())?;
            return Ok(Box::new(cam));
        }
        let cam = FileCamera::open(path, c.video_fps, as_fast, looping).map_err(|e| e.to_string())?;
        return Ok(Box::new(cam));
    }
    if let Some(path) = source.strip_prefix("v4l2:") {
        return v4l2_camera(path, c, false);
    }
    if source.starts_with("rtsp://") {
        crate::camera::rtsp_url::Url::parse(source)?;
        return Ok(rtsp_camera(crate::config::cameras::FIRST, source, crate::config::cameras::DEFAULT_STALL_S, c));
    }
    Err(format!("unknown source {source:?} (expected synthetic, file:PATH, v4l2:/dev/videoN or rtsp://[user:pass@]host[:port]/path)"))
}

/// The H.264 settings a V4L2 camera gets: `None` when recording MJPEG.
fn v4l2_h264(c: &Config) -> Option<H264Options> {
    match c.video_codec {
        crate::config::VideoCodec::H264 => {
            Some(H264Options { bitrate_kbps: c.video_bitrate_kbps, keyframe_interval_s: c.keyframe_interval_s })
        }
        crate::config::VideoCodec::Mjpeg => None,
    }
}

/// A V4L2 camera (`DEVICE[@FOURCC]`) that is reopened with backoff on trouble
/// (`camera::reopen`). With `wait`, a device that isn't there yet is waited for.
fn v4l2_camera(spec: &str, c: &Config, wait: bool) -> Result<Box<dyn Camera>, String> {
    let (dev, prefer) = match spec.rsplit_once('@') {
        Some((d, f)) => match Pixel::from_name(f) {
            Some(p) => (d, Some(p)),
            None => return Err(format!("{spec}: unknown pixel format {f:?} (H264, MJPG, YUYV or NV12)")),
        },
        None => (spec, None),
    };
    let h264 = v4l2_h264(c);
    if h264.is_none() && prefer == Some(Pixel::H264) {
        return Err(format!("{spec}: H264 asked for, and video_codec is mjpeg: set video_codec to h264"));
    }
    let opts = V4l2Options { prefer, timestamp: c.embed_timestamp, h264 };
    let (w, h, fps, q) = (c.video_res_width, c.video_res_height, c.video_fps, c.mjpeg_quality);
    let path = PathBuf::from(dev);
    // Opened now, it streams from the first frame the recorder asks for, once the rest is set
    // up; reopened (on trouble), it streams at once and a failing STREAMON is a failed open.
    let first = V4l2Camera::open_with(&path, w, h, fps, q, opts);
    let open = move || V4l2Camera::open_with(&path, w, h, fps, q, opts).and_then(V4l2Camera::streaming);
    match first {
        Ok(cam) => Ok(Box::new(Reopening::new(cam, dev, open))),
        Err(CameraError::Disconnected(why)) if wait => {
            log::warn!("camera {dev}: not there ({why}); recording starts when it appears");
            Ok(Box::new(Reopening::waiting(dev, (w, h), fps, open)))
        }
        Err(e) => Err(format!("{dev}: {e}")),
    }
}

/// The camera when no `--source` is given: `camera_device` from the config (a V4L2 device,
/// waited for when it isn't there yet, or an RTSP camera's URL), else the first `/dev/video*` that opens as a capture device with a
/// usable format, else `synthetic`.
fn default_camera(c: &Config) -> Result<Box<dyn Camera>, String> {
    let dev = c.camera_device.as_str();
    if dev.starts_with("rtsp://") {
        log::info!("camera: camera_device {} from the configuration", crate::config::cameras::redact(dev));
        return Ok(rtsp_camera(crate::config::cameras::FIRST, dev, crate::config::cameras::DEFAULT_STALL_S, c));
    }
    if !dev.is_empty() {
        log::info!("camera: camera_device {dev} from the configuration");
        return v4l2_camera(dev, c, true);
    }
    let opts = V4l2Options { h264: v4l2_h264(c), ..Default::default() };
    if let Some(cam) = v4l2cam::first_usable(c.video_res_width, c.video_res_height, c.video_fps, c.mjpeg_quality, opts) {
        let dev = cam.path().display().to_string();
        log::info!("camera: no source given; using the first usable V4L2 capture device, {dev}");
        drop(cam);
        return v4l2_camera(&dev, c, false);
    }
    log::info!("camera: no source given and no usable V4L2 capture device: using the built-in synthetic camera");
    open_camera("synthetic", c, false, false)
}

fn cmd_run(args: &[String]) -> i32 {
    let a = match Args::parse(
        args,
        &["--config", "--data", "--source", "--listen", "--watchdog", "--portal-host"],
        &["--as-fast-as-possible", "--loop", "--report-durable", "--inline-store", "--appliance"],
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if !a.positional.is_empty() {
        return usage_error(&format!("run takes no positional argument ({:?})", a.positional[0]));
    }
    // SIGUSR1 means "a network just came up" (the appliance's wifi-home sends it after joining
    // the home Wi-Fi): offload and alerts try at once instead of waiting out their back-off.
    // Installed first: the signal's default action would end the process.
    let network_up = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&network_up)) {
        log::error!("cannot install a handler for SIGUSR1: {e}");
    }
    let data = PathBuf::from(a.value("--data").unwrap_or("blackbox-data"));
    // Footage, config and secret are the owner's only: everything created from here on is
    // 0600 (dirs 0700), and what an older version left readable is fixed below.
    crate::perms::private_umask();
    if let Err(e) = std::fs::create_dir_all(&data) {
        eprintln!("blackbox: cannot create data dir {}: {e}", data.display());
        return 1;
    }
    crate::perms::tighten(&data);
    let default_cfg = data.join("config.json");
    let cfg_path = a.value("--config").map(PathBuf::from).or(default_cfg.exists().then_some(default_cfg));
    let mut config = match &cfg_path {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("blackbox: {e}");
                return 2;
            }
        },
        None => Config::default(),
    };
    // What the config file says; `--listen` below overrides the address for this run only.
    let file_config = config.clone();
    crate::export::set_subtitles(crate::export::Subtitles::of(&config));
    if let Some(l) = a.value("--listen") {
        match heapless::String::try_from(l) {
            Ok(s) if l.parse::<std::net::SocketAddr>().is_ok() => {
                config.listen = s;
                config.port = 0;
            }
            _ => return usage_error(&format!("--listen {l:?} is not an address like 127.0.0.1:8080")),
        }
    }
    if let Some(h) = a.value("--portal-host")
        && let Err(e) = web::portal::set_portal_host(h)
    {
        return usage_error(&e);
    }
    let opened = match a.value("--source") {
        Some(s) => open_camera(s, &config, a.flag("--as-fast-as-possible"), a.flag("--loop")),
        None => default_camera(&config),
    }
    .and_then(|cam| with_codec(cam, &config));
    let camera = match opened {
        Ok(c) => c,
        Err(e) => {
            eprintln!("blackbox: {e}");
            return 2;
        }
    };
    log::info!("camera: {}", camera.describe());
    log::info!(
        "config: {} ({}x{} @ {} fps, segments of {} s, commit every {} ms or {} frames, cap {} GiB)",
        cfg_path.as_ref().map_or("defaults".to_string(), |p| p.display().to_string()),
        config.video_res_width,
        config.video_res_height,
        config.video_fps,
        config.segment_length_s,
        config.commit_interval_ms,
        config.commit_frames,
        config.storage_cap_gb
    );
    let live = Arc::new(LiveSlot::new(supervisor::live_capacity(camera.size().0, camera.size().1)));
    let mut store = match Store::open(&data, front_store_options(&config)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("blackbox: {e}");
            return 1;
        }
    };
    // Events (DATA/events): a damaged or unreadable journal never stops recording. Every
    // locked event's window is protected again (a power cut may have come between the
    // event's fsync and the store's).
    let events = match crate::events::Events::open(&data) {
        Ok(ev) => {
            for (a, b) in ev.locked_ranges() {
                if !store.protected().contains(a, b)
                    && let Err(e) = store.protect(a, b)
                {
                    log::error!("events: cannot protect {} .. {}: {e}", Iso(a), Iso(b));
                }
            }
            Some(ev)
        }
        Err(e) => {
            log::error!("events: cannot open {}: {e}; recording without events", data.join(crate::events::Events::FILE).display());
            None
        }
    };
    // The cameras besides the first (config `cameras`): each its own thread and store.
    let stop = Arc::new(AtomicBool::new(false));
    let locked: Vec<(i64, i64)> = events.as_ref().map(|ev| ev.locked_ranges()).unwrap_or_default();
    let extra = crate::cameras::spawn(&data, &config, &stop, a.flag("--report-durable"), Arc::new(open_extra), store_options, &locked);
    let status = Arc::new(RecorderStatus::new());
    supervisor::announce_camera(&status, &live, camera.as_ref());
    status.refresh_store(&store, crate::clock::now_mono_ns());
    let control = Arc::new(RecorderControl::new(file_config));
    let events = events.map(|ev| {
        let mut controls = vec![Arc::clone(&control)];
        controls.extend(extra.handles.iter().map(|h| Arc::clone(&h.control)));
        crate::events::EventSink::new(ev, controls, &data, crate::events::Window::of(&config))
    });
    // Parking mode (src/parking/): its own thread; `moving` comes from the G-sensor.
    let moving = Arc::new(AtomicBool::new(false));
    let parking = crate::parking::Parking::default();
    parking.set_after_min(config.parking_after_min.into());
    let ring = crate::parking::RingSize {
        bytes: crate::live::ring_bytes(config.video_bitrate_kbps, config.keyframe_interval_s),
        frames: crate::live::ring_frames(config.video_fps, config.keyframe_interval_s),
    };
    let parking = crate::parking::spawn(parking, Arc::clone(&live), ring, events.clone(), Arc::clone(&moving));
    // Offload (DATA/offload.conf): its own thread at the lowest priority; off by default.
    let extra_names: Vec<String> = config.cameras.iter().map(|c| c.name.to_string()).collect();
    let _offload = crate::offload::spawn(&data, &extra_names);
    // Alerts (DATA/alerts.conf): the outbox, its sender and the watcher; no channel, no sending.
    let _alerts = crate::alerts::spawn(&data, Arc::clone(&status), events.clone());
    let _ = std::thread::Builder::new().name("network-up".into()).spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        if network_up.swap(false, std::sync::atomic::Ordering::Relaxed) {
            log::info!("a network came up (SIGUSR1): offload and alerts try now");
            if let Some(o) = crate::offload::shared() {
                o.poke();
            }
            if let Some(a) = crate::alerts::shared() {
                a.poke();
            }
        }
    });
    // The recorder must not die because of the web side: without a secret (or a port) it
    // records without the dashboard. Without a secret the dashboard stays off (fail closed).
    match web::auth::Secret::load_or_create(&data) {
        Err(e) => log::error!("dashboard: no secret ({e}); recording without the dashboard"),
        Ok((secret, new)) => {
            let shown = new.then(|| secret.clone());
            // First start: a one-time pairing link too (24 h), kept hashed in DATA/pairing.
            let pair_code = if new && !crate::perms::under_systemd() {
                web::pairing::Pairing::load(&data).create(web::pairing::FIRST_TTL_S).ok()
            } else {
                None
            };
            let web = WebContext {
                status: Arc::clone(&status),
                data_dir: data.clone(),
                cap_bytes: config.storage_cap_bytes(),
                secret,
                camera_device: camera.device().map(Path::to_path_buf),
                control: Arc::clone(&control),
                live: Arc::clone(&live),
                config_path: cfg_path.clone().unwrap_or_else(|| data.join("config.json")),
                events: events.clone(),
                parking: parking.clone(),
                appliance: a.flag("--appliance"),
                more_cameras: extra.handles.clone(),
            };
            let url = match web::start(config.listen_addr(), web) {
                Ok(addr) => {
                    log::info!("dashboard: http://{addr}/");
                    addr.to_string()
                }
                Err(e) => {
                    log::error!("dashboard: cannot listen on {}: {e}; recording without it", config.listen_addr());
                    config.listen_addr().to_string()
                }
            };
            if shown.is_some() && crate::perms::under_systemd() {
                // A service's stderr goes to the journal, which other users and log shipping
                // may read: say where the secret is, not what it is.
                eprintln!(
                    "blackbox: first start: generated the dashboard secret; it is in {} (mode 0600, readable by root only); \
                     sign in at http://{url}/login with it",
                    data.join(web::auth::Secret::FILE).display(),
                );
            } else if let Some(s) = shown {
                // Once, at first start only: straight to stderr, never through the log.
                eprintln!(
                    "blackbox: first start: generated the dashboard secret (stored in {}, mode 0600; shown only now)\n\
                     blackbox:   open   http://{url}/login\n\
                     blackbox:   secret {}",
                    data.join(web::auth::Secret::FILE).display(),
                    s.reveal()
                );
                if let Some(code) = &pair_code {
                    eprintln!("blackbox:   or open this once on your phone (24 h): http://{url}/pair?code={code}");
                }
            }
        }
    }
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            log::error!("cannot install a handler for signal {sig}: {e}");
        }
    }
    // The watchdog must not keep the recorder from running: without it, record anyway.
    let watchdog = a.value("--watchdog").and_then(|dev| {
        crate::watchdog::Watchdog::start(Path::new(dev), Arc::clone(&status))
            .map_err(|e| log::error!("watchdog: cannot open {dev}: {e}; recording without it"))
            .ok()
    });
    // The G-sensor (gsensor_device): its own thread; no sensor, or one that vanishes, never
    // touches recording. `on_impact` is the seam where impacts become events.
    let sink = events.clone();
    let parked = parking.clone();
    let on_impact = move |i: crate::gsensor::Impact| {
        log_impact(i);
        // Parked (a lower threshold): a bump against the car.
        let kind = if parked.is_on() { crate::events::Kind::Bump } else { crate::events::Kind::Impact };
        // Off the sensor's thread: the event's fsync must not make its FIFO overflow.
        if let Some(s) = sink.clone() {
            let _ = std::thread::Builder::new().name("event".into()).spawn(move || {
                if let Err(e) = s.trigger(kind, i.mono_ns, Some(i.peak_g)) {
                    log::error!("event: cannot record the impact: {e}");
                }
            });
        }
    };
    let _gsensor = crate::gsensor::spawn(crate::gsensor::GSensorConfig::from(&config), Box::new(on_impact), Arc::clone(&moving));
    // The GPS receiver (gps_device): its own thread; none, or one unplugged, never touches
    // recording.
    let _gps = crate::gps::spawn(&config.gps_device, &data);
    // The microphone (audio_device; muted with audio false): its own two threads, its files in
    // DATA/audio, which go when the footage they belong to goes.
    let oldest = {
        let status = Arc::clone(&status);
        move || status.snapshot().oldest_utc_ns
    };
    let _audio = crate::audio::spawn(&config.audio_device, config.audio, &data, Box::new(oldest));
    // Restarts from the web reopen the same source (or the auto-selected one) with the new
    // configuration.
    let source = a.value("--source").map(str::to_string);
    let (as_fast, looping) = (a.flag("--as-fast-as-possible"), a.flag("--loop"));
    let reopen = move |c: &Config| {
        match &source {
            Some(s) => open_camera(s, c, as_fast, looping),
            None => default_camera(c),
        }
        .and_then(|cam| with_codec(cam, c))
    };
    let sup = Supervisor {
        data: &data,
        control: &control,
        status: &status,
        live: &live,
        stop: &stop,
        report_durable: a.flag("--report-durable"),
        open_camera: &reopen,
        store_options: &front_store_options,
        // The camera waits for every flush: the design before the capture ring, kept as the
        // benchmark's peer (scripts/bench capture).
        mode: a.flag("--inline-store").then_some(crate::recorder::Mode::Inline),
        name: "",
        persistent: false,
    };
    let outcome = sup.run(Some(camera), store);
    // The first camera's end (a signal, the end of a file: source) ends them all.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    extra.join();
    crate::alerts::clean_stop(&data);
    let (sum, stats, code) = (outcome.summary, outcome.stats, outcome.code);
    if let Some(w) = watchdog {
        // Disarm only on a deliberate stop (a signal, the end of a file: source).
        w.finish(code == 0 && (stop.load(std::sync::atomic::Ordering::Relaxed) || sum.end_of_stream));
    }
    let per_frame = if sum.recording_frames > 0 { sum.allocs_recording as f64 / sum.recording_frames as f64 } else { 0.0 };
    log::info!(
        "run summary: frames={} delivered={} dropped={} dropped_driver={} dropped_deadline={} dropped_encoder={} dropped_backpressure={} dropped_store={} commits={} syncs={} bytes_written={} segments={} camera_errors={} gaps={} allocs_warmup={} allocs_recording={} recording_frames={} allocs_per_frame={:.3}",
        sum.frames,
        sum.delivered,
        sum.dropped,
        sum.lost.driver,
        sum.lost.deadline,
        sum.lost.encoder,
        sum.lost.backpressure,
        sum.lost.store,
        stats.commits,
        stats.syncs,
        stats.bytes_written,
        stats.segments_closed,
        sum.camera_errors,
        sum.gaps,
        sum.allocs_warmup,
        sum.allocs_recording,
        sum.recording_frames,
        per_frame
    );
    code
}

/// An impact from the G-sensor, logged with its sample time (CLOCK_MONOTONIC, the store's
/// `mono_ns`) and the UTC time that corresponds to it now.
fn log_impact(i: crate::gsensor::Impact) {
    let age = crate::clock::now_mono_ns().saturating_sub(i.mono_ns);
    let utc = crate::clock::now_utc_ns().saturating_sub(i64::try_from(age).unwrap_or(i64::MAX));
    log::warn!("gsensor: impact {:.1} g at {} (mono_ns {})", i.peak_g, Iso(utc), i.mono_ns);
}

fn cmd_cameras(args: &[String]) -> i32 {
    let a = match Args::parse(args, &[], &["--json"]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if !a.positional.is_empty() {
        return usage_error("cameras takes no positional argument");
    }
    let devs = list::list();
    if a.flag("--json") {
        println!("{}", list::to_json(&devs));
    } else {
        print!("{}", list::to_text(&devs));
    }
    0
}

const BENCH_ENCODE_USAGE: &str = "bench-encode RAW WIDTHxHEIGHT FRAMES [--quality Q] [--nv12 | --i420] [--timestamp] \
[--h264 [--bitrate KBPS] [--keyint FRAMES] [--fps FPS] [--via-jpeg]] [-o OUT]";

/// `bench-encode RAW WIDTHxHEIGHT FRAMES [--quality Q] [--nv12 | --i420] [--timestamp]
/// [--h264 [--bitrate KBPS] [--keyint FRAMES] [--fps FPS] [--via-jpeg]] [-o OUT]`: encodes raw
/// frames from a file as a raw camera's would be (JPEG, or H.264 with the software encoder;
/// `--via-jpeg`: JPEG first, then decoded and encoded to H.264, the recorder's path for JPEG
/// sources); writes the JPEGs or the Annex-B stream to OUT; prints `frames N bytes B keys K`.
/// `blackbox m2m-selftest [--device /dev/videoN] [--codec h264|fwht] [--size WxH]
/// [--frames N] [--gop G] [--force-at F] [--stall-at S] [--deadline-ms MS] [--bench]`.
fn cmd_m2m_selftest(args: &[String]) -> i32 {
    use crate::codec::m2m::{FOURCC_FWHT, FOURCC_H264};
    let a = match Args::parse(
        args,
        &["--device", "--codec", "--size", "--frames", "--gop", "--force-at", "--stall-at", "--deadline-ms"],
        &["--bench"],
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let num = |name: &str, default: u64| a.value(name).map_or(Ok(default), |v| v.parse::<u64>());
    let codec = match a.value("--codec").unwrap_or("h264") {
        "h264" => FOURCC_H264,
        "fwht" => FOURCC_FWHT,
        other => return usage_error(&format!("m2m-selftest: unknown codec {other:?} (h264 or fwht)")),
    };
    let dims = a.value("--size").unwrap_or("640x360").split_once('x').and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    let (Some((width, height)), Ok(frames), Ok(gop), Ok(force_at), Ok(stall_at), Ok(deadline)) =
        (dims, num("--frames", 60), num("--gop", 10), num("--force-at", 25), num("--stall-at", 42), num("--deadline-ms", 3000))
    else {
        return usage_error("m2m-selftest: bad size, frame count, GOP, frame number or deadline");
    };
    if gop == 0 || gop > 1000 || deadline == 0 || deadline > 60_000 {
        return usage_error("m2m-selftest: GOP 1..1000, deadline 1..60000 ms");
    }
    crate::codec::m2m_selftest::run(&crate::codec::m2m_selftest::Opts {
        device: a.value("--device").map(std::path::PathBuf::from),
        codec,
        width,
        height,
        frames,
        gop: gop as u32,
        force_at,
        stall_at,
        deadline_ms: deadline as u32,
        bench: a.flag("--bench"),
    })
}

fn cmd_bench_encode(args: &[String]) -> i32 {
    use crate::camera::bench::{self, H264Bench, Layout};
    let a = match Args::parse(
        args,
        &["--quality", "--bitrate", "--keyint", "--fps", "-o"],
        &["--nv12", "--i420", "--timestamp", "--h264", "--via-jpeg"],
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let [raw, size, frames] = a.positional.as_slice() else {
        return usage_error(BENCH_ENCODE_USAGE);
    };
    let num = |name: &str, default: u32| a.value(name).map_or(Ok(default), |v| v.parse::<u32>());
    let dims = size.split_once('x').and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    let (Some((w, h)), Ok(n), Ok(q), Ok(kbps), Ok(keyint), Ok(fps)) = (
        dims,
        frames.parse::<u64>(),
        a.value("--quality").unwrap_or("80").parse::<u8>(),
        num("--bitrate", crate::config::Config::default().video_bitrate_kbps),
        num("--keyint", 30),
        num("--fps", 30),
    ) else {
        return usage_error("bench-encode: bad size, frame count, quality, bitrate, key-frame interval or frame rate");
    };
    let layout = match (a.flag("--nv12"), a.flag("--i420")) {
        (false, false) => Layout::Yuyv,
        (true, false) => Layout::Nv12,
        (false, true) => Layout::I420,
        (true, true) => return usage_error("bench-encode: --nv12 or --i420, not both"),
    };
    let h264 = a.flag("--h264");
    if layout == Layout::I420 && (!h264 || a.flag("--via-jpeg")) {
        return usage_error("bench-encode: --i420 is for --h264 without --via-jpeg (the JPEG encoder takes YUYV or NV12)");
    }
    if fps == 0 || keyint == 0 {
        return usage_error("bench-encode: --fps and --keyint must be at least 1");
    }
    let out = a.value("-o").map(Path::new);
    let r = if h264 {
        let s = H264Bench { bitrate_kbps: kbps, keyframe_interval: keyint, fps, via_jpeg: a.flag("--via-jpeg").then_some(q) };
        bench::encode_file_h264(Path::new(raw), layout, w, h, n, a.flag("--timestamp"), s, out)
    } else {
        bench::encode_file(Path::new(raw), layout, w, h, q, n, a.flag("--timestamp"), out)
    };
    match r {
        Ok(r) => {
            println!("frames {} bytes {} keys {}", r.frames, r.bytes, r.keys);
            0
        }
        Err(e) => {
            eprintln!("blackbox: bench-encode: {e}");
            1
        }
    }
}

/// A JSON string literal.
fn js(s: &str) -> String {
    crate::json_str::JsonStr(s).to_string()
}

fn opt_num(v: Option<u64>) -> String {
    v.map_or("null".into(), |n| n.to_string())
}

fn opt_time(v: Option<i64>) -> String {
    v.map_or("null".into(), |t| js(&Iso(t).to_string()))
}

fn verify_json(dir: &Path, r: &VerifyReport) -> String {
    let bad: Vec<String> = r
        .bad_regions
        .iter()
        .map(|b| {
            format!(
                "{{\"segment\":{},\"from\":{},\"to\":{},\"fatal\":{},\"why\":{}}}",
                js(&b.segment),
                b.from,
                b.to,
                b.fatal,
                js(b.why)
            )
        })
        .collect();
    let gaps: Vec<String> = r.seq_gaps.iter().map(|(a, b)| format!("[{a},{b}]")).collect();
    let unknown: Vec<String> = r.unknown_files.iter().map(|u| js(u)).collect();
    let gap_markers: Vec<String> =
        r.gap_markers.iter().map(|(f, t)| format!("{{\"from\":{},\"to\":{}}}", js(&Iso(*f).to_string()), js(&Iso(*t).to_string()))).collect();
    format!(
        "{{\"dir\":{},\"ok\":{},\"empty\":{},\"segments\":{},\"open_segments\":{},\"frames\":{},\"bytes\":{},\"first_seq\":{},\"last_seq\":{},\"durable_seq\":{},\"start\":{},\"end\":{},\"bad_regions\":[{}],\"seq_gaps\":[{}],\"unknown_files\":[{}],\"gap_markers\":[{}]}}",
        js(&dir.display().to_string()),
        r.ok(),
        r.frames == 0,
        r.segments,
        r.open_segments,
        r.frames,
        r.bytes,
        opt_num(r.first_seq),
        opt_num(r.last_seq),
        opt_num(r.durable_seq),
        opt_time(r.start_utc_ns),
        opt_time(r.end_utc_ns),
        bad.join(","),
        gaps.join(","),
        unknown.join(","),
        gap_markers.join(",")
    )
}

fn one_dir(args: &[String], cmd: &str) -> Result<(PathBuf, bool), i32> {
    let a = Args::parse(args, &[], &["--json"]).map_err(|e| usage_error(&e))?;
    match a.positional.as_slice() {
        [d] => Ok((PathBuf::from(d), a.flag("--json"))),
        _ => Err(usage_error(&format!("{cmd} takes exactly one data directory"))),
    }
}

fn check_store_dir(dir: &Path) -> Result<(), String> {
    if !dir.join("segments").is_dir() {
        return Err(format!("{} is not a blackbox data directory (no segments/ folder)", dir.display()));
    }
    Ok(())
}

fn cmd_verify(args: &[String]) -> i32 {
    let (dir, json) = match one_dir(args, "verify") {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Err(e) = check_store_dir(&dir) {
        eprintln!("blackbox: {e}");
        return 2;
    }
    let r = match verify::verify(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("blackbox: verify {}: {e}", dir.display());
            return 1;
        }
    };
    if json {
        println!("{}", verify_json(&dir, &r));
    } else {
        println!("store       {}", dir.display());
        println!("segments    {} ({} open)", r.segments, r.open_segments);
        println!("frames      {} ({} bytes)", r.frames, r.bytes);
        println!("sequence    {} ..= {}", opt_num(r.first_seq), opt_num(r.last_seq));
        println!("durable     {}", opt_num(r.durable_seq));
        let t = |v: Option<i64>| v.map_or("-".to_string(), |t| Iso(t).to_string());
        println!("time span   {} .. {}", t(r.start_utc_ns), t(r.end_utc_ns));
        for (a, b) in &r.seq_gaps {
            println!("seq gap     {a} ..= {b} (deleted by retention)");
        }
        for (f, t) in &r.gap_markers {
            println!("camera gap  {} .. {} (gap marker: no frames)", Iso(*f), Iso(*t));
        }
        for u in &r.unknown_files {
            println!("ignored     segments/{u} (not a segment file)");
        }
        for b in &r.bad_regions {
            println!(
                "{} {} bytes {}..{}: {}",
                if b.fatal { "BAD        " } else { "note       " },
                b.segment,
                b.from,
                b.to,
                b.why
            );
        }
        println!(
            "{}",
            if !r.ok() {
                "FAILED: damaged frames inside durable data"
            } else if r.frames == 0 {
                "EMPTY: the store holds no frame (nothing was recorded, or retention deleted it all)"
            } else {
                "OK: every durable frame validates"
            }
        );
    }
    match (r.ok(), r.frames) {
        (false, _) => 1,
        (true, 0) => 3,
        (true, _) => 0,
    }
}

fn cmd_ls(args: &[String]) -> i32 {
    let (dir, json) = match one_dir(args, "ls") {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Err(e) = check_store_dir(&dir) {
        eprintln!("blackbox: {e}");
        return 2;
    }
    let reader = match Reader::open(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("blackbox: ls {}: {e}", dir.display());
            return 1;
        }
    };
    let protected = crate::store::catalog::Protected::load(&dir.join("protected"));
    let segs = reader.segments();
    if json {
        let rows: Vec<String> = segs
            .iter()
            .map(|s| {
                format!(
                    "{{\"name\":{},\"start\":{},\"end\":{},\"first_seq\":{},\"frames\":{},\"bytes\":{},\"allocated\":{},\"open\":{},\"protected\":{}}}",
                    js(&s.name),
                    js(&Iso(s.start_utc_ns).to_string()),
                    js(&Iso(s.end_utc_ns).to_string()),
                    s.first_seq,
                    s.frames,
                    s.used_bytes,
                    s.alloc_bytes,
                    s.is_open(),
                    protected.covers(s.start_utc_ns, s.end_utc_ns)
                )
            })
            .collect();
        println!("[{}]", rows.join(","));
    } else {
        println!("{:<24}  {:<24}  {:>8}  {:>12}  {:>6}  state", "start (UTC)", "end (UTC)", "frames", "bytes", "prot");
        for s in &segs {
            println!(
                "{:<24}  {:<24}  {:>8}  {:>12}  {:>6}  {}",
                Iso(s.start_utc_ns).to_string(),
                Iso(s.end_utc_ns).to_string(),
                s.frames,
                s.used_bytes,
                if protected.covers(s.start_utc_ns, s.end_utc_ns) { "yes" } else { "no" },
                if s.is_open() { "open" } else { "closed" }
            );
        }
        let frames: u64 = segs.iter().map(|s| s.frames).sum();
        let bytes: u64 = segs.iter().map(|s| s.used_bytes).sum();
        println!("{} segments, {} frames, {} bytes", segs.len(), frames, bytes);
    }
    0
}

/// Finds control `key` by name (ignoring case) in `list`.
fn find_control<'a>(list: &'a [Control], key: &str) -> Result<&'a Control, String> {
    list.iter().find(|c| c.name.eq_ignore_ascii_case(key)).ok_or_else(|| format!("no control named {key:?}"))
}

/// The command line's VALUE for control `c` (the API takes JSON; this is friendlier).
fn cli_value(c: &Control, text: &str) -> Input {
    match c.kind {
        Kind::String => return Input::Text(text.to_string()),
        Kind::Boolean | Kind::Button => match text {
            "1" | "true" | "on" | "yes" => return Input::Bool(true),
            "0" | "false" | "off" | "no" => return Input::Bool(false),
            _ => {}
        },
        Kind::Menu | Kind::IntegerMenu => {
            if let Some(m) = c.menu.iter().find(|m| m.name.eq_ignore_ascii_case(text)) {
                return Input::Int(m.index.into());
            }
        }
        _ => {}
    }
    match text {
        "true" => Input::Bool(true),
        "false" => Input::Bool(false),
        _ => match text.parse::<i64>() {
            Ok(v) => Input::Int(v),
            Err(_) => match text.strip_prefix("0x").map(|h| i64::from_str_radix(h, 16)) {
                Some(Ok(v)) => Input::Int(v),
                _ => Input::Text(text.to_string()),
            },
        },
    }
}

fn cmd_controls(args: &[String]) -> i32 {
    let mut device: Option<&str> = None;
    let mut json = false;
    let mut ops: Vec<(bool, String)> = Vec::new(); // (is_set, arg)
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--set" | "--reset" => match it.next() {
                Some(v) => ops.push((a == "--set", v.clone())),
                None => return usage_error(&format!("{a} needs a value")),
            },
            s if s.starts_with("--set=") => ops.push((true, s["--set=".len()..].to_string())),
            s if s.starts_with("--reset=") => ops.push((false, s["--reset=".len()..].to_string())),
            s if s.starts_with('-') => return usage_error(&format!("unknown option {s:?}")),
            s if device.is_none() => device = Some(s),
            s => return usage_error(&format!("controls takes one device ({s:?} is extra)")),
        }
    }
    let Some(device) = device else {
        return usage_error("controls needs a device, e.g. /dev/video0");
    };
    let dev = Path::new(device);
    let failed = |e: &dyn std::fmt::Display| {
        eprintln!("blackbox: {e}");
        1
    };
    for (is_set, arg) in &ops {
        let (key, value) = if *is_set {
            match arg.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => return usage_error(&format!("--set {arg:?}: expected ID=VALUE")),
            }
        } else {
            (arg.as_str(), None)
        };
        // A number is looked up alone (a few ioctls); a name needs the whole list.
        let found = match key.parse::<u32>() {
            Ok(id) => controls::get(dev, id),
            Err(_) => controls::list(dev).and_then(|l| {
                find_control(&l, key)
                    .cloned()
                    .map_err(|e| controls::ControlError::Invalid(format!("{device}: {e}")))
            }),
        };
        let c = match found {
            Ok(c) => c,
            Err(e) => return failed(&e),
        };
        let r = match value {
            Some(v) => controls::set(dev, c.id, &cli_value(&c, v)),
            None => controls::reset(dev, c.id),
        };
        match r {
            Ok(c) => eprintln!(
                "blackbox: {} {} = {}",
                if value.is_some() { "set" } else { "reset" },
                c.name,
                c.value.as_ref().map_or("(no value)".to_string(), |v| v.to_string())
            ),
            Err(e) => return failed(&e),
        }
    }
    if !ops.is_empty() && !json {
        return 0;
    }
    let list = match controls::list(dev) {
        Ok(l) => l,
        Err(e) => return failed(&e),
    };
    if json {
        println!("{}", crate::web::controls::list_json(&list));
        return 0;
    }
    let mut category = "";
    for c in &list {
        if c.category != category {
            category = &c.category;
            println!("{category}");
        }
        let value = c.value.as_ref().map_or("-".to_string(), |v| v.to_string());
        let mut flags: Vec<&str> = Vec::new();
        for (bit, name) in controls::flag::NAMES {
            if c.flags & bit != 0 {
                flags.push(name);
            }
        }
        let range = match c.kind {
            Kind::Integer | Kind::Integer64 => format!("{}..={} step {} default {}", c.min, c.max, c.step, c.default),
            Kind::Boolean => format!("default {}", c.default != 0),
            Kind::Menu | Kind::IntegerMenu => format!("default {}", c.default),
            Kind::Bitmask => format!("mask 0x{:x} default 0x{:x}", c.max as u32, c.default as u32),
            Kind::String => format!("length {}..={}", c.min, c.max),
            _ => String::new(),
        };
        println!(
            "  {:>9}  {:<32} {:<12} = {:<12} {}{}",
            c.id,
            c.name,
            c.kind.name(),
            value,
            range,
            if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(",")) }
        );
        for m in &c.menu {
            println!("  {:>9}    {}: {}", "", m.index, m.name);
        }
    }
    0
}

fn cmd_export(args: &[String]) -> i32 {
    use std::io::{IsTerminal, Write};
    let a = match Args::parse(args, &["--from", "--to", "-o", "--output", "--bitrate"], &["--h264", "--gpx"]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let [dir] = a.positional.as_slice() else {
        return usage_error("export takes exactly one data directory");
    };
    let bitrate = match a.value("--bitrate").map(str::parse::<u32>) {
        None => 4000,
        Some(Ok(b)) if (crate::codec::encoder::MIN_BITRATE_KBPS..=crate::codec::encoder::MAX_BITRATE_KBPS).contains(&b) => b,
        Some(_) => return usage_error("--bitrate: kbit/s from 100 to 50000"),
    };
    let dir = PathBuf::from(dir);
    let Some(out) = a.value("-o").or(a.value("--output")) else {
        return usage_error("export needs -o FILE.mp4 (or -o - for stdout)");
    };
    let time = |flag: &str, default: i64| match a.value(flag) {
        None => Ok(default),
        Some(t) => crate::clock::parse_iso8601(t).map_err(|e| format!("{flag} {t:?}: {e} (expected e.g. 2026-11-21T12:00:00Z)")),
    };
    let (from, to) = match (time("--from", i64::MIN), time("--to", i64::MAX)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return usage_error(&e),
    };
    if a.flag("--gpx") {
        // The GPS track (DATA/gps) as GPX instead of video.
        let (points, bad) = crate::gps::track::read(&dir, from, to);
        if bad > 0 {
            eprintln!("blackbox: {bad} damaged track record(s) skipped");
        }
        if points.is_empty() {
            eprintln!("blackbox: no GPS track in {} for that range", dir.display());
            return 1;
        }
        let gpx = crate::gps::gpx::write(&points, from, to);
        let r = if out == "-" { std::io::stdout().write_all(gpx.as_bytes()) } else { std::fs::write(out, gpx.as_bytes()) };
        return match r {
            Ok(()) => {
                eprintln!("blackbox: {} track points, {} .. {}", points.len(), crate::clock::Iso(points[0].utc_ns), crate::clock::Iso(points[points.len() - 1].utc_ns));
                0
            }
            Err(e) => {
                eprintln!("blackbox: cannot write {out}: {e}");
                1
            }
        };
    }
    if let Err(e) = check_store_dir(&dir) {
        eprintln!("blackbox: {e}");
        return 2;
    }
    // The subtitles follow the data dir's config (speed unit, position shown or not).
    let cfg = dir.join("config.json");
    if cfg.exists() {
        match Config::load(&cfg) {
            Ok(c) => crate::export::set_subtitles(crate::export::Subtitles::of(&c)),
            Err(e) => eprintln!("blackbox: {e}; the subtitles use the defaults (km/h, position shown)"),
        }
    }
    let export = if a.flag("--h264") {
        if from >= to {
            return usage_error(&crate::export::PlanError::BadRange { from, to }.to_string());
        }
        // Transcoding Motion JPEG footage: a frame counter while it runs (the file's size is
        // known only once every frame is encoded).
        let mut bar = std::io::stderr().is_terminal().then(|| crate::export::progress::Progress::new(0));
        let mut shown = std::time::Instant::now();
        let mut progress = |done: u64, total: u64| {
            if let Some(_b) = bar.as_mut()
                && (shown.elapsed().as_millis() >= 200 || done == total)
            {
                shown = std::time::Instant::now();
                let _ = write!(std::io::stderr(), "\rencoding H.264: frame {done} of {total} ({:.0} %)  ", done as f64 * 100.0 / total.max(1) as f64);
                if done == total {
                    let _ = writeln!(std::io::stderr());
                }
            }
        };
        match crate::export::transcode::to_h264(&dir, from, to, bitrate, 1, &mut progress) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("blackbox: export --h264: {e}");
                return 1;
            }
        }
    } else {
        match crate::export::open(&dir, from, to) {
            Ok(x) => x,
            Err(e @ crate::export::PlanError::BadRange { .. }) => return usage_error(&e.to_string()),
            Err(e) => {
                eprintln!("blackbox: export: {e}");
                return 1;
            }
        }
    };
    let (first, last) = export.utc_span();
    log::info!(
        "export: {} frames, {} .. {}, {:.1} s, {} bytes{}",
        export.frames(),
        Iso(first),
        Iso(last),
        export.duration_ns() as f64 / 1e9,
        export.len(),
        if export.skipped() > 0 { format!(", {} damaged frames left out", export.skipped()) } else { String::new() }
    );
    let to_stdout = out == "-";
    let mut sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::BufWriter::with_capacity(1 << 18, std::io::stdout().lock()))
    } else {
        match std::fs::File::create(out) {
            Ok(f) => Box::new(std::io::BufWriter::with_capacity(1 << 18, f)),
            Err(e) => {
                eprintln!("blackbox: export: cannot create {out}: {e}");
                return 1;
            }
        }
    };
    let mut progress = std::io::stderr().is_terminal().then(|| crate::export::progress::Progress::new(export.len()));
    let mut r = export.reader();
    let mut done = 0u64;
    let result = (|| -> std::io::Result<()> {
        loop {
            let chunk = r.next_chunk()?;
            if chunk.is_empty() {
                break;
            }
            sink.write_all(chunk)?;
            done += chunk.len() as u64;
            if let Some(p) = progress.as_mut() {
                p.update(done, false);
            }
        }
        sink.flush()
    })();
    if let Some(p) = progress.as_mut() {
        p.finish(done);
    }
    match result {
        Ok(()) => {
            if !to_stdout {
                log::info!("export: wrote {out}");
            }
            0
        }
        Err(e) => {
            eprintln!("blackbox: export failed after {done} of {} bytes: {e}", export.len());
            if !to_stdout {
                drop(sink);
                // A partial file is not an export: don't leave it looking like one.
                let _ = std::fs::remove_file(out);
            }
            1
        }
    }
}
