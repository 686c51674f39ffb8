//! Blocking work off the web thread, on threads that exit when the work is done.
//!
//! smol's blocking pool (the `blocking` crate) keeps every thread it ever started: an idle
//! thread only exits while the pool is over its limit (500), so a burst of 90 exports left 89
//! idle threads for good (issue 15). Here a call gets a thread of its own ([`run`]), and an
//! export's body a reader thread for its life ([`Worker`]); both exit with their work.

use std::sync::mpsc;

/// Stack of these threads: they read files and run the plan (no deep recursion).
const STACK: usize = 512 * 1024;

/// Runs `f` on a new thread and waits for it without blocking the web thread. A thread that
/// can't be started runs `f` here (the web thread waits: better than failing the request).
/// `None`: `f` panicked.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = smol::channel::bounded(1);
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(f)));
    let g = slot.clone();
    let spawned = std::thread::Builder::new().name("web-blocking".into()).stack_size(STACK).spawn(move || {
        let f = g.lock().ok().and_then(|mut o| o.take());
        if let Some(f) = f {
            let _ = tx.send_blocking(f());
        }
    });
    if spawned.is_ok() {
        return rx.recv().await.ok();
    }
    let f = slot.lock().ok().and_then(|mut o| o.take())?;
    Some(f())
}

/// A thread that applies `work` to the values sent to it, one at a time, for as long as this
/// handle lives; it exits when the handle is dropped.
pub struct Worker<T: Send + 'static, R: Send + 'static> {
    tx: Option<mpsc::Sender<T>>,
    rx: smol::channel::Receiver<R>,
    /// No thread could be started: `work` runs on the caller's thread.
    inline: Option<fn(T) -> R>,
}

impl<T: Send + 'static, R: Send + 'static> Worker<T, R> {
    pub fn new(work: fn(T) -> R) -> Worker<T, R> {
        let (tx, in_rx) = mpsc::channel::<T>();
        let (out_tx, rx) = smol::channel::bounded(1);
        let spawned = std::thread::Builder::new().name("web-export".into()).stack_size(STACK).spawn(move || {
            while let Ok(v) = in_rx.recv() {
                if out_tx.send_blocking(work(v)).is_err() {
                    break;
                }
            }
        });
        match spawned {
            Ok(_) => Worker { tx: Some(tx), rx, inline: None },
            Err(e) => {
                log::warn!("web: no thread for an export's reads ({e}); reading on the web thread");
                Worker { tx: None, rx, inline: Some(work) }
            }
        }
    }

    /// `work(v)` on the worker's thread. `None` if the thread is gone (it panicked).
    pub async fn call(&self, v: T) -> Option<R> {
        if let Some(work) = self.inline {
            return Some(work(v));
        }
        self.tx.as_ref()?.send(v).ok()?;
        self.rx.recv().await.ok()
    }
}
