//! The worker pool and who gets a worker: no client on the Wi-Fi can lock the owner out.
//!
//! One acceptor task takes every connection as it arrives and hands it to one of the
//! [`super::WORKERS`] workers through a short queue. Each worker has a [`Slot`] that says what
//! its connection is doing. A connection that waits for (or trickles) its next request holds a
//! worker without using it, so when the pool runs low the acceptor **sheds** such a connection
//! to make room for the new one: connections without credentials first, the one that has waited
//! longest first. A connection in the middle of a response (a download, a live view, the event
//! stream) is never shed. On top of that:
//! - a client address holds at most [`PER_CLIENT`] connections (beyond that its own oldest
//!   waiting connection is shed, or the new one is closed);
//! - a request head must arrive whole within [`HEAD_DEADLINE_S`] of the connection starting to
//!   wait for it (slowloris);
//! - a connection that has not shown valid credentials is closed once it is
//!   [`UNAUTH_LIFE_S`] old, at its next request boundary.
//!
//! Everything here is fixed-size and lives for the life of the web thread; the web thread is
//! single-threaded, so `Cell`s are enough.

use super::strict::{Framing, Phase};
use smol::Async;
use smol::channel::{Receiver, Sender};
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, TcpListener, TcpStream};

/// Connections one client address may hold at once.
pub const PER_CLIENT: usize = 24;
/// Workers kept free (or being freed) for new connections when there is something to shed.
pub const SPARE: usize = 4;
/// Connections accepted but not yet taken by a worker; beyond this the acceptor waits (up to
/// [`QUEUE_WAIT_S`], then the connection is closed).
pub const QUEUE: usize = 32;
/// How long the acceptor waits for room in the queue.
pub const QUEUE_WAIT_S: u64 = 2;
/// A request head must be complete this long after the connection began waiting for it.
pub const HEAD_DEADLINE_S: u64 = 10;
/// A connection without valid credentials is closed at its next request once this old.
pub const UNAUTH_LIFE_S: u64 = 30;

const NS: u64 = 1_000_000_000;

/// What one worker's connection is doing.
pub struct Slot {
    /// The worker has a connection.
    pub busy: Cell<bool>,
    pub peer: Cell<Option<IpAddr>>,
    /// The connection has carried valid credentials (a session cookie or the secret).
    pub authed: Cell<bool>,
    pub started_ns: Cell<u64>,
    /// When the connection began waiting for its current (next) request.
    pub waiting_since_ns: Cell<u64>,
    /// A request is being answered (its head has arrived and the worker has not asked for the
    /// next one yet).
    pub in_request: Cell<bool>,
    /// The worker is blocked reading the client (a head, a body, or nothing yet).
    pub reading: Cell<bool>,
    /// Shed has been asked for.
    pub shed: Cell<bool>,
    /// The request being answered is a `HEAD` (src/web/strict.rs): send the response's head
    /// only. `head_scan` counts the bytes of the blank line seen so far (4: in the body),
    /// `head_dropped` the body bytes dropped.
    pub head_only: Cell<bool>,
    pub head_scan: Cell<u8>,
    pub head_dropped: Cell<u32>,
    /// A routed request's response is being written (set by the first layer around the
    /// route). picoserve may read the connection meanwhile (a live stream, the event stream):
    /// such a read is not waiting for a request and gets no deadline.
    pub responding: Cell<bool>,
    pub framing: RefCell<Framing>,
    shed_tx: Sender<()>,
    shed_rx: Receiver<()>,
}

impl Slot {
    fn new() -> Slot {
        let (shed_tx, shed_rx) = smol::channel::bounded(1);
        Slot {
            busy: Cell::new(false),
            peer: Cell::new(None),
            authed: Cell::new(false),
            started_ns: Cell::new(0),
            waiting_since_ns: Cell::new(0),
            in_request: Cell::new(false),
            reading: Cell::new(false),
            shed: Cell::new(false),
            head_only: Cell::new(false),
            head_scan: Cell::new(0),
            head_dropped: Cell::new(0),
            responding: Cell::new(false),
            framing: RefCell::new(Framing::default()),
            shed_tx,
            shed_rx,
        }
    }

    fn begin(&self, peer: IpAddr, now_ns: u64) {
        while self.shed_rx.try_recv().is_ok() {}
        self.busy.set(true);
        self.peer.set(Some(peer));
        self.authed.set(false);
        self.started_ns.set(now_ns);
        self.waiting_since_ns.set(now_ns);
        self.in_request.set(false);
        self.reading.set(false);
        self.shed.set(false);
        self.head_only.set(false);
        self.responding.set(false);
        *self.framing.borrow_mut() = Framing::default();
    }

    /// At the start of each routed request: whether it is a `HEAD` (answered without body).
    pub fn begin_request(&self) {
        let head = self.framing.borrow_mut().take_head();
        self.head_only.set(head);
        self.head_scan.set(0);
        self.head_dropped.set(0);
    }

    fn end(&self) {
        self.busy.set(false);
        self.peer.set(None);
        self.reading.set(false);
        self.shed.set(false);
    }

    /// Whether the worker may be taken from its connection now.
    fn sheddable(&self) -> bool {
        self.busy.get() && !self.shed.get() && self.reading.get() && !self.in_request.get()
    }

    /// Resolves when the acceptor sheds this slot's connection.
    pub async fn shed_signal(&self) {
        let _ = self.shed_rx.recv().await;
    }

    /// Called by the connection at each read: notes request boundaries. Returns the deadline
    /// for the read (mono ns), or `None` when the connection should be closed now.
    pub fn before_read(&self, now_ns: u64) -> Option<Option<u64>> {
        if self.responding.get() {
            return Some(None);
        }
        let phase = self.framing.borrow().phase();
        match phase {
            Phase::Idle => {
                if self.in_request.replace(false) {
                    self.waiting_since_ns.set(now_ns);
                }
                if !self.authed.get() && now_ns.saturating_sub(self.started_ns.get()) > UNAUTH_LIFE_S * NS {
                    return None;
                }
                Some(Some(self.waiting_since_ns.get() + HEAD_DEADLINE_S * NS))
            }
            Phase::Head => Some(Some(self.waiting_since_ns.get() + HEAD_DEADLINE_S * NS)),
            Phase::Body(_) => Some(None),
        }
    }
}

/// Counters for the log and the tests' figures.
#[derive(Default)]
pub struct Counters {
    pub accepted: Cell<u64>,
    pub shed: Cell<u64>,
    pub refused_per_client: Cell<u64>,
    pub refused_queue_full: Cell<u64>,
}

/// All slots and the hand-over queue.
pub struct Pool {
    pub slots: Vec<Slot>,
    queue_tx: Sender<(Async<TcpStream>, IpAddr)>,
    queue_rx: Receiver<(Async<TcpStream>, IpAddr)>,
    pub counters: Counters,
}

impl Pool {
    pub fn new(workers: usize) -> Pool {
        let (queue_tx, queue_rx) = smol::channel::bounded(QUEUE);
        Pool { slots: (0..workers).map(|_| Slot::new()).collect(), queue_tx, queue_rx, counters: Counters::default() }
    }

    /// Sheds one waiting connection (of `only` if given): without credentials first, then the
    /// one waiting longest. Returns whether one was shed.
    fn shed_one(&self, only: Option<IpAddr>) -> bool {
        let pick = self
            .slots
            .iter()
            .filter(|s| s.sheddable() && only.is_none_or(|ip| s.peer.get() == Some(ip)))
            .min_by_key(|s| (s.authed.get(), s.waiting_since_ns.get()));
        match pick {
            Some(s) => {
                s.shed.set(true);
                let _ = s.shed_tx.try_send(());
                self.counters.shed.set(self.counters.shed.get() + 1);
                true
            }
            None => false,
        }
    }

    /// Takes every connection as it comes and queues it for a worker (see the module docs).
    pub async fn accept_loop(&self, listener: &Async<TcpListener>) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    log::warn!("web: accept failed: {e}");
                    smol::Timer::after(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let c = &self.counters;
            c.accepted.set(c.accepted.get() + 1);
            let ip = peer.ip();
            let held = self.slots.iter().filter(|s| s.busy.get() && !s.shed.get() && s.peer.get() == Some(ip)).count();
            if held >= PER_CLIENT && !self.shed_one(Some(ip)) {
                c.refused_per_client.set(c.refused_per_client.get() + 1);
                continue;
            }
            let free = self.slots.iter().filter(|s| !s.busy.get() || s.shed.get()).count();
            if free < self.queue_tx.len() + 1 + SPARE {
                self.shed_one(None);
            }
            let _ = stream.get_ref().set_nodelay(true);
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(stream.get_ref(), super::SEND_BUFFER);
            if let Err(e) = self.queue_tx.try_send((stream, ip)) {
                // Every worker is busy and the queue is full (a flood of connections): shed
                // one more and wait for room (the next connections wait in the kernel's
                // backlog meanwhile) instead of resetting this one, which may be the owner's.
                let item = e.into_inner();
                self.shed_one(None);
                let room = smol::future::or(async { self.queue_tx.send(item).await.is_ok() }, async {
                    smol::Timer::after(std::time::Duration::from_secs(QUEUE_WAIT_S)).await;
                    false
                });
                if !room.await {
                    c.refused_queue_full.set(c.refused_queue_full.get() + 1);
                }
            }
        }
    }

    /// The next connection for the worker of `slot`, which is marked busy.
    pub async fn next(&self, slot: &Slot) -> Option<Async<TcpStream>> {
        let (stream, ip) = self.queue_rx.recv().await.ok()?;
        slot.begin(ip, crate::clock::now_mono_ns());
        Some(stream)
    }

    pub fn done(&self, slot: &Slot) {
        slot.end();
    }
}

/// The per-connection state the routes see (picoserve's router state).
#[derive(Clone, Copy)]
pub struct ConnRef<'a>(pub &'a Slot);
