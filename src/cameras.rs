//! The cameras recorded besides the first (config `cameras`): each on its own supervisor
//! thread, with its own store in `DATA/cameras/<name>/` (its own segments, durable watermark,
//! gap markers and protection), its own status, live slot and mailbox. Nothing is shared
//! between two cameras' hot paths, so one camera's stall, unplug or reconnect never touches
//! another's frames.
//!
//! A camera here never ends the process: one that can't be opened (missing device, RTSP
//! server down, wrong password) is retried every [`supervisor::RETRY`], state `camera_lost`.

use crate::camera::Camera;
use crate::config::Config;
use crate::control::Control;
use crate::live::LiveSlot;
use crate::status::RecorderStatus;
use crate::store::{Store, StoreOptions};
use crate::supervisor::{self, Supervisor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

/// One camera's handles, shared by its recorder thread and the web side.
#[derive(Clone)]
pub struct Handle {
    pub name: String,
    pub dir: PathBuf,
    pub status: Arc<RecorderStatus>,
    pub live: Arc<LiveSlot>,
    pub control: Arc<Control>,
    /// The V4L2 device (`/api/controls`); `None` for other sources.
    pub device: Option<PathBuf>,
}

/// Opens a camera from its configuration (`Config::for_camera`: its entry is `cameras[0]`).
pub type Open = dyn Fn(&Config) -> Result<Box<dyn Camera>, String> + Send + Sync;

/// The running extra cameras.
pub struct Extra {
    pub handles: Vec<Handle>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts a recorder thread for each `cameras` entry of `config`. A store that can't be opened
/// is logged and that camera left out (the others record).
pub fn spawn(
    data: &Path,
    config: &Config,
    stop: &Arc<AtomicBool>,
    report_durable: bool,
    open: Arc<Open>,
    store_options: fn(&Config) -> StoreOptions,
    protect: &[(i64, i64)],
) -> Extra {
    let mut out = Extra { handles: Vec::new(), threads: Vec::new() };
    for (k, conf) in config.cameras.iter().enumerate() {
        let i = k + 1;
        let Some(cfg) = config.for_camera(i) else { continue };
        let name = conf.name.to_string();
        let dir = crate::store::camera_dir(data, &name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            log::error!("camera {name}: cannot create {}: {e}; not recording it", dir.display());
            continue;
        }
        let mut store = match Store::open(&dir, store_options(&cfg)) {
            Ok(s) => s,
            Err(e) => {
                log::error!("camera {name}: cannot open its store in {}: {e}; not recording it", dir.display());
                continue;
            }
        };
        // Every locked event protects its span on every camera (a power cut may have come
        // between the event's fsync and this store's).
        for &(a, b) in protect {
            if !store.protected().contains(a, b)
                && let Err(e) = store.protect(a, b)
            {
                log::error!("camera {name}: cannot protect an event's footage: {e}");
            }
        }
        let status = Arc::new(RecorderStatus::new());
        status.refresh_store(&store, crate::clock::now_mono_ns());
        let live = Arc::new(LiveSlot::new(supervisor::live_capacity(cfg.video_res_width, cfg.video_res_height)));
        let control = Arc::new(Control::new(cfg.clone()));
        let device = (!cfg.camera_device.is_empty()).then(|| PathBuf::from(cfg.camera_device.split('@').next().unwrap_or("")));
        let h = Handle { name: name.clone(), dir: dir.clone(), status, live, control, device };
        let (hh, stop, open) = (h.clone(), Arc::clone(stop), Arc::clone(&open));
        let t = std::thread::Builder::new().name(format!("rec-{name}")).spawn(move || {
            let reopen = move |c: &Config| open(c);
            let sup = Supervisor {
                data: &hh.dir,
                control: &hh.control,
                status: &hh.status,
                live: &hh.live,
                stop: &stop,
                report_durable,
                open_camera: &reopen,
                store_options: &store_options,
                mode: None,
                name: &hh.name,
                persistent: true,
            };
            let o = sup.run(None, store);
            log::info!(
                "camera {}: stopped: frames={} delivered={} dropped={} gaps={}",
                hh.name,
                o.summary.frames,
                o.summary.delivered,
                o.summary.dropped,
                o.summary.gaps
            );
        });
        match t {
            Ok(t) => {
                log::info!("camera {name}: recording {} into {}", crate::config::cameras::redact(&conf.source), dir.display());
                out.handles.push(h);
                out.threads.push(t);
            }
            Err(e) => log::error!("camera {name}: cannot start its thread: {e}"),
        }
    }
    out
}

impl Extra {
    /// Waits for every camera's thread to close its store (after `stop` is set).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
