//! The command line: `run`, `verify`, `ls`. Argument parsing is by hand (a handful of flags;
//! no parser crate needed). Exit codes: 0 ok, 1 the check failed / the run failed, 2 bad usage
//! or configuration.

use crate::camera::file::FileCamera;
use crate::camera::synthetic::Synthetic;
use crate::camera::v4l2::{self as v4l2cam, V4l2Camera};
use crate::camera::Camera;
use crate::clock::Iso;
use crate::config::Config;
use crate::live::LiveSlot;
use crate::recorder::{self, RecorderOptions};
use crate::status::RecorderStatus;
use crate::store::reader::Reader;
use crate::store::verify::{self, VerifyReport};
use crate::store::{Store, StoreOptions};
use crate::web::{self, WebContext};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const USAGE: &str = "\
blackbox — a crash-safe dash-cam recorder

usage:
  blackbox run [--config FILE] [--data DIR] [--source SRC] [--listen ADDR]
               [--as-fast-as-possible] [--loop] [--report-durable]
               [--watchdog DEV] [--portal-host HOST]
      Records until SIGTERM/SIGINT (or the end of a file: source), then closes the open
      segment cleanly. SRC: synthetic | file:PATH (a concatenated-JPEG stream) |
      v4l2:/dev/videoN. Without --source: the config's camera_device, else the first
      /dev/video* capture device with a usable format, else synthetic.
      DIR defaults to ./blackbox-data; FILE to DIR/config.json when that exists.
      --watchdog DEV: pet the hardware watchdog DEV (/dev/watchdog) while the recorder is
      healthy. --portal-host HOST: phones' captive-portal probes go to http://HOST/login.
  blackbox verify DIR [--json]
      Checks every frame of the store in DIR (read-only). Exit 0 only when every frame up to
      the end of the durable data validates.
  blackbox ls DIR [--json]
      Lists segments: UTC start/end, frames, bytes, protected.
  blackbox --version | --help
";

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
    let px = c.video_res_width as u64 * c.video_res_height as u64;
    StoreOptions {
        segment_length_ns: c.segment_length_s as u64 * 1_000_000_000,
        commit_interval_ns: c.commit_interval_ms as u64 * 1_000_000,
        commit_frames: c.commit_frames,
        storage_cap_bytes: c.storage_cap_bytes(),
        min_free_bytes: c.min_free_bytes(),
        protected_cap_percent: c.protected_cap_percent,
        fps: c.video_fps,
        // A JPEG at quality 80 takes roughly 0.5-1.5 bits per pixel; plan for 1. Later
        // segments are sized from what the previous one really used.
        expected_bytes_per_s: px / 8 * c.video_fps as u64,
    }
}

fn open_camera(source: &str, c: &Config, as_fast: bool, looping: bool) -> Result<Box<dyn Camera>, String> {
    if source == "synthetic" {
        let cam = Synthetic::new(c.video_res_width, c.video_res_height, c.video_fps, c.mjpeg_quality)
            .map_err(|e| e.to_string())?;
        return Ok(Box::new(cam));
    }
    if let Some(path) = source.strip_prefix("file:") {
        let cam = FileCamera::open(Path::new(path), c.video_fps, as_fast, looping).map_err(|e| e.to_string())?;
        return Ok(Box::new(cam));
    }
    if let Some(path) = source.strip_prefix("v4l2:") {
        let cam = V4l2Camera::open(Path::new(path), c.video_res_width, c.video_res_height, c.video_fps, c.mjpeg_quality)
            .map_err(|e| format!("{path}: {e}"))?;
        return Ok(Box::new(cam));
    }
    Err(format!("unknown source {source:?} (expected synthetic, file:PATH or v4l2:/dev/videoN)"))
}

/// The camera when no `--source` is given: `camera_device` from the config, else the first
/// `/dev/video*` that opens as a capture device with a usable format, else `synthetic`.
fn default_camera(c: &Config) -> Result<Box<dyn Camera>, String> {
    if !c.camera_device.is_empty() {
        log::info!("camera: camera_device {} from the configuration", c.camera_device.as_str());
        return open_camera(&format!("v4l2:{}", c.camera_device.as_str()), c, false, false);
    }
    if let Some(cam) = v4l2cam::first_usable(c.video_res_width, c.video_res_height, c.video_fps, c.mjpeg_quality) {
        log::info!("camera: no source given; using the first usable V4L2 capture device");
        return Ok(Box::new(cam));
    }
    log::info!("camera: no source given and no usable V4L2 capture device: using the built-in synthetic camera");
    open_camera("synthetic", c, false, false)
}

fn cmd_run(args: &[String]) -> i32 {
    let a = match Args::parse(
        args,
        &["--config", "--data", "--source", "--listen", "--watchdog", "--portal-host"],
        &["--as-fast-as-possible", "--loop", "--report-durable"],
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if !a.positional.is_empty() {
        return usage_error(&format!("run takes no positional argument ({:?})", a.positional[0]));
    }
    let data = PathBuf::from(a.value("--data").unwrap_or("blackbox-data"));
    if let Err(e) = std::fs::create_dir_all(&data) {
        eprintln!("blackbox: cannot create data dir {}: {e}", data.display());
        return 1;
    }
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
    };
    let mut camera = match opened {
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
    let mut store = match Store::open(&data, store_options(&config)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("blackbox: {e}");
            return 1;
        }
    };
    let status = Arc::new(RecorderStatus::new());
    status.set_camera(camera.describe());
    status.refresh_store(&store, crate::clock::now_mono_ns());
    // The recorder must not die because of the web side: without a secret (or a port) it
    // records without the dashboard. Without a secret the dashboard stays off (fail closed).
    match web::auth::Secret::load_or_create(&data) {
        Err(e) => log::error!("dashboard: no secret ({e}); recording without the dashboard"),
        Ok((secret, new)) => {
            let shown = new.then(|| secret.clone());
            let web = WebContext {
                status: Arc::clone(&status),
                data_dir: data.clone(),
                cap_bytes: config.storage_cap_bytes(),
                secret,
            };
            let url = match web::start(config.listen_addr(), web) {
                Ok(addr) => {
                    log::info!("dashboard: http://{addr}/ (status API only in this build)");
                    addr.to_string()
                }
                Err(e) => {
                    log::error!("dashboard: cannot listen on {}: {e}; recording without it", config.listen_addr());
                    config.listen_addr().to_string()
                }
            };
            if let Some(s) = shown {
                // Once, at first start only: straight to stderr, never through the log.
                eprintln!(
                    "blackbox: first start: generated the dashboard secret (stored in {}, mode 0600; shown only now)\n\
                     blackbox:   open   http://{url}/login\n\
                     blackbox:   secret {}",
                    data.join(web::auth::Secret::FILE).display(),
                    s.reveal()
                );
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            log::error!("cannot install a handler for signal {sig}: {e}");
        }
    }
    let (w, h) = camera.size();
    let live = LiveSlot::new((w as usize * h as usize * 3 / 2).max(1 << 20));
    let opts = RecorderOptions { report_durable: a.flag("--report-durable"), status: Some(&status) };
    // The watchdog must not keep the recorder from running: without it, record anyway.
    let watchdog = a.value("--watchdog").and_then(|dev| {
        crate::watchdog::Watchdog::start(Path::new(dev), Arc::clone(&status))
            .map_err(|e| log::error!("watchdog: cannot open {dev}: {e}; recording without it"))
            .ok()
    });
    let result = recorder::run(camera.as_mut(), &mut store, &live, &stop, opts);
    let stats = store.stats();
    let closed = store.close();
    let mut code = 0;
    let sum = match result {
        Ok(s) => s,
        Err(e) => {
            log::error!("recording stopped: {}", e.0);
            code = 1;
            recorder::Summary::default()
        }
    };
    if let Err(e) = &closed {
        log::error!("closing the store failed: {e}");
        code = 1;
    }
    let stats = closed.unwrap_or(stats);
    if let Some(w) = watchdog {
        // Disarm only on a deliberate stop (a signal, the end of a file: source).
        w.finish(code == 0 && (stop.load(std::sync::atomic::Ordering::Relaxed) || sum.end_of_stream));
    }
    let per_frame = if sum.recording_frames > 0 { sum.allocs_recording as f64 / sum.recording_frames as f64 } else { 0.0 };
    log::info!(
        "run summary: frames={} dropped={} commits={} syncs={} bytes_written={} segments={} camera_errors={} gaps={} allocs_warmup={} allocs_recording={} recording_frames={} allocs_per_frame={:.3}",
        sum.frames,
        stats.dropped,
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

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
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
    format!(
        "{{\"dir\":{},\"ok\":{},\"segments\":{},\"open_segments\":{},\"frames\":{},\"bytes\":{},\"first_seq\":{},\"last_seq\":{},\"durable_seq\":{},\"start\":{},\"end\":{},\"bad_regions\":[{}],\"seq_gaps\":[{}],\"unknown_files\":[{}]}}",
        js(&dir.display().to_string()),
        r.ok(),
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
        unknown.join(",")
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
        println!("{}", if r.ok() { "OK: every durable frame validates" } else { "FAILED: damaged frames inside durable data" });
    }
    if r.ok() { 0 } else { 1 }
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
