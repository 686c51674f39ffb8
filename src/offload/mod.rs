//! Offload: copies sealed segments to S3-compatible storage, verified, on a thread of its own
//! at the lowest CPU and I/O priority (never the recorder's). Offload never deletes anything:
//! it records verified copies in a durable manifest (`manifest.rs`) and tells retention which
//! segments have one and which one it is reading (`store::hints`); retention decides.
//!
//! Order: protected footage (events, Save incident, protected ranges) first, oldest first;
//! with `offload=all` the rest after it. A failure is retried with a growing pause (10 s to
//! 5 min); the owner's "offload now" or new settings wake the thread at once. Protected
//! footage retention deleted before it was copied is counted and logged.

pub mod http;
pub mod manifest;
pub mod rsync;
pub mod s3;
pub mod settings;
pub mod sigv4;
pub mod tls;
pub mod upload;

use crate::store::catalog::{self, Protected};
use crate::store::hints::RetentionHints;
use manifest::{Inflight, Manifest};
use settings::{Mode, Settings, Target};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// What `/api/status` and `/api/offload` show.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// `off`, `idle` (all copied), `uploading`, `waiting` (retrying after a failure), `error`
    /// (needs the owner: wrong key, no such bucket).
    pub state: &'static str,
    pub mode: &'static str,
    pub target: String,
    /// Segments still to copy, and their bytes.
    pub queued: u64,
    pub queued_bytes: u64,
    /// Segments in the store with a verified copy.
    pub verified: u64,
    /// Copies verified since start, and bytes sent for them.
    pub verified_since_start: u64,
    pub bytes_sent: u64,
    /// Parts found already on the server when resuming.
    pub parts_skipped: u64,
    /// Failed attempts since start.
    pub failed: u64,
    /// Protected segments retention deleted before they were copied (since start).
    pub lost_before_offload: u64,
    pub current: Option<String>,
    pub last_run_utc_ns: Option<i64>,
    pub last_success_utc_ns: Option<i64>,
    pub last_error: Option<String>,
    /// The last failure was reaching the server at all (no network: the normal state on the
    /// road), not something the server said. Alerts leave those out.
    pub unreachable: bool,
}

pub struct Shared {
    data: PathBuf,
    /// The cameras besides the first (their stores are `DATA/cameras/NAME`).
    cameras: Vec<String>,
    settings: Mutex<Settings>,
    status: Mutex<Status>,
    wake: Mutex<bool>,
    cv: Condvar,
    /// Raised to stop the upload in progress (new settings).
    abort: AtomicBool,
    generation: AtomicU64,
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The running offloader, if `run` started one.
pub fn shared() -> Option<&'static Arc<Shared>> {
    SHARED.get()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }
    /// New settings (already validated and saved): the upload in progress stops, the thread
    /// starts over with them.
    pub fn set_settings(&self, s: Settings) {
        *lock(&self.settings) = s;
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.abort.store(true, Ordering::Relaxed);
        self.poke();
    }
    /// "Offload now": the thread stops waiting.
    pub fn poke(&self) {
        *lock(&self.wake) = true;
        self.cv.notify_all();
    }
    fn sleep(&self, d: Duration) {
        let g = lock(&self.wake);
        let (mut g, _) = self.cv.wait_timeout_while(g, d, |w| !*w).unwrap_or_else(|p| p.into_inner());
        *g = false;
    }
    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut lock(&self.status));
    }
}

/// Starts the offload thread for `data` and the stores of `cameras` besides the first (once
/// per process). Bad settings are logged and offload stays off until they are fixed from the
/// dashboard.
pub fn spawn(data: &Path, cameras: &[String]) -> Option<Arc<Shared>> {
    let settings = Settings::load(data).unwrap_or_else(|e| {
        log::error!("offload: {e}; offload is off until the settings are fixed");
        Settings::defaults()
    });
    let sh = Arc::new(Shared {
        data: data.to_path_buf(),
        cameras: cameras.to_vec(),
        settings: Mutex::new(settings),
        status: Mutex::new(Status { state: "off", mode: "off", ..Status::default() }),
        wake: Mutex::new(false),
        cv: Condvar::new(),
        abort: AtomicBool::new(false),
        generation: AtomicU64::new(0),
    });
    if SHARED.set(Arc::clone(&sh)).is_err() {
        return SHARED.get().cloned();
    }
    let t = Arc::clone(&sh);
    match std::thread::Builder::new().name("offload".into()).spawn(move || run(&t)) {
        Ok(_) => Some(sh),
        Err(e) => {
            log::error!("offload: no thread ({e}); offload is off");
            None
        }
    }
}

/// Lowest CPU priority (nice 19) and the idle I/O class for this thread: reading segments
/// for an upload must never delay the recorder's writes and flushes.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        log::debug!("offload: cannot lower the CPU priority: {e}");
    }
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_IDLE: libc::c_int = 3;
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid.as_raw_nonzero().get(), IOPRIO_CLASS_IDLE << 13) };
    if r != 0 {
        log::debug!("offload: cannot set the idle I/O class: {}", std::io::Error::last_os_error());
    }
}

/// One camera's store: its segments and protection, and offload's manifest and upload in
/// flight beside them (`STORE/offload/`). The first camera's store is the data dir itself.
struct Source {
    /// `None` for the first camera; else its name (`DATA/cameras/NAME`).
    camera: Option<String>,
    dir: PathBuf,
    hints: Arc<RetentionHints>,
    manifest: Option<Manifest>,
    /// Protected segments seen waiting for a copy: one that vanishes uncopied was lost to
    /// retention before offload.
    waiting_protected: HashSet<String>,
}

impl Source {
    fn new(camera: Option<String>, dir: PathBuf) -> Source {
        let hints = RetentionHints::for_dir(&dir);
        Source { camera, dir, hints, manifest: None, waiting_protected: HashSet::new() }
    }
}

/// How the owner sees a segment of a camera's store: its name, after the camera's.
fn label(camera: &Option<String>, name: &str) -> String {
    match camera {
        Some(c) => format!("{c}/{name}"),
        None => name.to_string(),
    }
}

struct Candidate {
    src: usize,
    name: String,
    first_seq: u64,
    start_utc_ns: i64,
    used: u64,
    protected: bool,
}

fn run(sh: &Shared) {
    lower_priority();
    let mut sources = vec![Source::new(None, sh.data.clone())];
    sources.extend(sh.cameras.iter().map(|c| Source::new(Some(c.clone()), crate::store::camera_dir(&sh.data, c))));
    let mut backoff = Duration::from_secs(10);
    let mut buf: Vec<u8> = Vec::new();
    'outer: loop {
        sh.abort.store(false, Ordering::Relaxed);
        let generation = sh.generation.load(Ordering::Relaxed);
        let st = sh.settings();
        sh.set_status(|s| {
            s.mode = st.mode.name();
            s.target = if st.mode == Mode::Off { String::new() } else { st.target_id() };
        });
        let target = st.target_id();
        let mut todo: Vec<Candidate> = Vec::new();
        let mut verified_now = 0u64;
        let mut lost_now = 0u64;
        for (i, src) in sources.iter_mut().enumerate() {
            src.hints.set_prefer_offloaded(st.mode == Mode::All);
            if src.manifest.is_none() {
                match Manifest::open(&src.dir) {
                    Ok(m) => src.manifest = Some(m),
                    Err(e) => {
                        let e = format!("cannot open the manifest in {}: {e}", src.dir.display());
                        log::error!("offload: {e}");
                        sh.set_status(|s| {
                            s.state = "error";
                            s.last_error = Some(e);
                        });
                        sh.sleep(Duration::from_secs(60));
                        continue 'outer;
                    }
                }
            }
            let Some(m) = src.manifest.as_mut() else { continue 'outer };
            let listing = match catalog::list(&src.dir.join("segments")) {
                Ok(l) => l,
                // A camera that has recorded nothing yet has no store.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && src.camera.is_some() => continue,
                Err(e) => {
                    log::warn!("offload: cannot list the segments in {}: {e}", src.dir.display());
                    sh.sleep(Duration::from_secs(30));
                    continue 'outer;
                }
            };
            let names: HashSet<&str> = listing.closed.iter().map(|s| s.name.as_str()).collect();
            let _ = m.compact(|n| names.contains(n));
            src.hints.set_verified(listing.closed.iter().filter(|s| m.any(&s.name)).map(|s| s.first_seq));
            verified_now += listing.closed.iter().filter(|s| m.any(&s.name)).count() as u64;
            // Protected footage that was waiting and is gone without a copy.
            let lost: Vec<String> = src.waiting_protected.iter().filter(|n| !names.contains(n.as_str()) && !m.any(n)).cloned().collect();
            for n in &lost {
                log::error!("offload: protected segment {} was deleted by retention before it was copied", label(&src.camera, n));
                src.waiting_protected.remove(n);
            }
            lost_now += lost.len() as u64;
            if st.mode == Mode::Off {
                src.waiting_protected.clear();
                continue;
            }
            let protected = Protected::load(&src.dir.join("protected"));
            let before = todo.len();
            todo.extend(
                listing
                    .closed
                    .iter()
                    .filter(|s| s.frames > 0 && m.get(&s.name, &target).is_none())
                    .map(|s| Candidate {
                        src: i,
                        name: s.name.to_string(),
                        first_seq: s.first_seq,
                        start_utc_ns: s.start_utc_ns,
                        used: s.used_bytes,
                        protected: protected.covers(s.start_utc_ns, s.end_utc_ns),
                    })
                    .filter(|c| st.mode == Mode::All || c.protected),
            );
            src.waiting_protected = todo[before..].iter().filter(|c| c.protected).map(|c| c.name.clone()).collect();
        }
        sh.set_status(|s| {
            s.lost_before_offload += lost_now;
            s.verified = verified_now;
        });
        if st.mode == Mode::Off {
            sh.set_status(|s| {
                s.state = "off";
                s.queued = 0;
                s.queued_bytes = 0;
                s.current = None;
            });
            sh.sleep(Duration::from_secs(60));
            continue;
        }
        // Protected first, oldest first within each, across every camera (the first camera
        // first at a tie); within one store, in its own order.
        todo.sort_by_key(|c| (!c.protected, c.start_utc_ns, c.src, c.first_seq));
        let set_queue = |todo: &[Candidate]| {
            sh.set_status(|s| {
                s.queued = todo.len() as u64;
                s.queued_bytes = todo.iter().map(|c| c.used).sum();
            })
        };
        set_queue(&todo);
        if todo.is_empty() {
            sh.set_status(|s| {
                s.state = "idle";
                s.current = None;
            });
            sh.sleep(Duration::from_secs(30));
            continue;
        }
        let creds = sigv4::Credentials { access_key: st.s3_access_key.clone(), secret_key: st.s3_secret_key.clone(), region: st.s3_region.clone() };
        let ep = match (st.target, http::Endpoint::parse(&st.s3_endpoint)) {
            (Target::Rsync, _) => http::Endpoint { host: String::new(), port: 0, tls: false },
            (Target::S3, Ok(e)) => e,
            (Target::S3, Err(e)) => {
                sh.set_status(|s| {
                    s.state = "error";
                    s.last_error = Some(e);
                });
                sh.sleep(Duration::from_secs(300));
                continue;
            }
        };
        let mut st = st;
        st.rsync_known_hosts = sh.data.join("offload/known_hosts").display().to_string();
        let mut client = s3::S3::new(ep, &st.s3_bucket, creds, st.offload_kbps);
        client.ca_file = st.ca_file();
        sh.set_status(|s| s.last_run_utc_ns = Some(crate::clock::now_utc_ns()));
        let mut failed = false;
        let mut i = 0;
        while i < todo.len() {
            if sh.generation.load(Ordering::Relaxed) != generation {
                break;
            }
            let c = &todo[i];
            let src = &mut sources[c.src];
            let camera = src.camera.as_deref();
            let seg = upload::Segment { name: c.name.clone(), path: src.dir.join("segments").join(&c.name), used: c.used };
            let key = st.key_for(camera, &c.name, c.start_utc_ns);
            src.hints.pin(Some(c.first_seq));
            sh.set_status(|s| {
                s.state = "uploading";
                s.current = Some(label(&src.camera, &c.name));
            });
            let r = match st.target {
                Target::S3 => upload::upload(&mut client, &src.dir, &seg, &key, &target, &sh.abort, &mut buf),
                Target::Rsync => rsync::copy(&st, &seg, &st.rsync_rel(camera, &c.name, c.start_utc_ns), &target, &sh.abort),
            };
            src.hints.pin(None);
            match r {
                Ok((v, sent)) => {
                    let Some(m) = src.manifest.as_mut() else { break };
                    if let Err(e) = m.add(&c.name, v.clone()) {
                        log::error!("offload: cannot record the verified copy of {}: {e}", label(&src.camera, &c.name));
                        failed = true;
                        break;
                    }
                    let _ = Inflight::clear(&src.dir);
                    src.hints.add_verified(c.first_seq);
                    src.waiting_protected.remove(&c.name);
                    if sent.already_there {
                        log::info!("offload: {key} was already there and verifies (ETag {}); nothing sent", v.etag);
                    } else {
                        log::info!(
                            "offload: {key} verified ({} bytes, ETag {}; {} part(s) sent, {} already there)",
                            v.size,
                            v.etag,
                            sent.parts_sent,
                            sent.parts_skipped
                        );
                    }
                    sh.set_status(|s| {
                        s.verified += 1;
                        s.verified_since_start += 1;
                        s.bytes_sent += sent.bytes_sent;
                        s.parts_skipped += u64::from(sent.parts_skipped);
                        s.last_success_utc_ns = Some(crate::clock::now_utc_ns());
                        s.last_error = None;
                    });
                    backoff = Duration::from_secs(10);
                }
                Err(upload::UploadError::Recycled) => {
                    log::warn!("offload: {} was deleted by retention while it was being copied; nothing wrong was sent", label(&src.camera, &c.name));
                }
                Err(upload::UploadError::Stopped) => break,
                Err(e) => {
                    let needs_owner = matches!(&e, upload::UploadError::S3(s) if !s.transient());
                    let unreachable = matches!(&e, upload::UploadError::S3(s3::S3Error::Io(_)));
                    log::warn!("offload: {key}: {e}");
                    sh.set_status(|s| {
                        s.failed += 1;
                        s.unreachable = unreachable;
                        s.state = if needs_owner { "error" } else { "waiting" };
                        s.last_error = Some(e.to_string());
                    });
                    failed = true;
                    break;
                }
            }
            i += 1;
            set_queue(&todo[i..]);
        }
        sh.set_status(|s| s.current = None);
        if failed {
            sh.sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(300));
        }
    }
}

/// Tries the target with `st` now: the bucket is reached with the key, and a small test
/// object (`PREFIX/DEVICE/.blackbox-test`) is written with Content-MD5 and read back. Ok: what
/// worked; Err: what failed, for the owner.
pub fn test_target(st: &Settings) -> Result<String, String> {
    st.validate()?;
    if st.target == Target::Rsync {
        return test_rsync(st);
    }
    if st.s3_endpoint.is_empty() || st.s3_bucket.is_empty() || st.s3_access_key.is_empty() || st.s3_secret_key.is_empty() {
        return Err("set the endpoint, bucket, access key and secret key first".into());
    }
    let started = std::time::Instant::now();
    let ep = http::Endpoint::parse(&st.s3_endpoint)?;
    let creds = sigv4::Credentials { access_key: st.s3_access_key.clone(), secret_key: st.s3_secret_key.clone(), region: st.s3_region.clone() };
    let mut c = s3::S3::new(ep, &st.s3_bucket, creds, 0);
    c.timeout = Duration::from_secs(15);
    c.ca_file = st.ca_file();
    c.check_bucket().map_err(|e| e.to_string())?;
    let key = format!("{}/.blackbox-test", st.device_dir());
    let body = format!("blackbox offload test {}\n", crate::clock::Iso(crate::clock::now_utc_ns()));
    let md5: [u8; 16] = <md5::Md5 as md5::Digest>::digest(body.as_bytes()).into();
    c.put(&key, body.as_bytes(), &md5).map_err(|e| format!("writing {key}: {e}"))?;
    match c.head(&key).map_err(|e| format!("reading {key} back: {e}"))? {
        Some(i) if i.size == body.len() as u64 => {}
        Some(i) => return Err(format!("{key} reads back with {} bytes, {} were written", i.size, body.len())),
        None => return Err(format!("{key} is not there after writing it")),
    }
    let skew = if c.clock.get().abs() > 60 { format!("; this device's clock is {} s off the server's", c.clock.get()) } else { String::new() };
    Ok(format!("bucket {} reached; {key} written and read back in {} ms{skew}", st.s3_bucket, started.elapsed().as_millis()))
}

/// The rsync target's test: a small file copied to `DEST/DEVICE/.blackbox-test` and checked.
fn test_rsync(st: &Settings) -> Result<String, String> {
    if st.rsync_dest.is_empty() {
        return Err("set rsync_dest first".into());
    }
    let started = std::time::Instant::now();
    let dir = std::env::temp_dir().join(format!("blackbox-rsync-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let body = format!("blackbox offload test {}\n", crate::clock::Iso(crate::clock::now_utc_ns()));
    let path = dir.join(".blackbox-test");
    std::fs::write(&path, &body).map_err(|e| e.to_string())?;
    let seg = upload::Segment { name: ".blackbox-test".into(), path: path.clone(), used: body.len() as u64 };
    let rel = format!("{}/.blackbox-test", st.device_name);
    let r = rsync::copy(st, &seg, &rel, "test", &AtomicBool::new(false));
    let _ = std::fs::remove_dir_all(&dir);
    r.map_err(|e| e.to_string())?;
    Ok(format!("{}/{rel} written and checked in {} ms", st.rsync_dest.trim_end_matches('/'), started.elapsed().as_millis()))
}
