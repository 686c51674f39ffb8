//! Parking mode: the car is parked, recording goes on, and a thread watches the picture for
//! motion; a motion (or a bump the G-sensor feels at `gsensor_parked_threshold_g`) makes an
//! event with its footage before and after.
//!
//! - **Entered** from the dashboard/API (`POST /api/parking {"on":true}`), or by itself after
//!   `parking_after_min` minutes without vehicle motion — only with a G-sensor that is working
//!   (without one, blackbox can't tell parked from stuck in traffic, so it never enters by
//!   itself). **Left** by the owner, or by driving again (the G-sensor's `moving`).
//! - **Motion analysis** runs on this thread, never on the recorder's: it takes the newest
//!   picture the recorder offers live (the live slot: nothing is copied unless asked) about
//!   twice a second. JPEG recordings: libjpeg-turbo's 1/8-scale grey decode (DC coefficients
//!   only). H.264 recordings: key frames only (one a `keyframe_interval_s`), decoded with
//!   OpenH264 — the picture between them is not looked at. Pictures it had no time for are
//!   simply not analysed: the recorder never waits for it. [`motion`] says what counts.
//! - A motion makes a `motion` event at most every [`MOTION_COOLDOWN_S`] (a longer one extends
//!   the event while it goes on: the sink does that).

pub mod bench;
pub mod motion;

use crate::camera::Codec;
use crate::events::{EventSink, Kind};
use crate::live::LiveSlot;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

pub const ANALYSE_EVERY_MS: u64 = 500;
pub const MOTION_COOLDOWN_S: u64 = 10;

#[derive(Default)]
struct Shared {
    on: AtomicBool,
    auto: AtomicBool,
    since_utc: AtomicI64,
    after_min: AtomicU32,
    analysed: AtomicU64,
    motions: AtomicU64,
    errors: AtomicU64,
}

/// The parking state, shared by the thread, the web side and the G-sensor's impact handler.
#[derive(Clone, Default)]
pub struct Parking {
    s: Arc<Shared>,
}

impl Parking {
    pub fn is_on(&self) -> bool {
        self.s.on.load(Relaxed)
    }

    /// Enters or leaves parking mode (`auto`: by itself, not by the owner).
    pub fn set(&self, on: bool, auto: bool) {
        if self.s.on.swap(on, Relaxed) == on {
            return;
        }
        self.s.auto.store(auto, Relaxed);
        self.s.since_utc.store(crate::clock::now_utc_ns(), Relaxed);
        crate::gsensor::set_parked(on);
        log::warn!(
            "parking mode {} ({})",
            if on { "on: watching the picture for motion" } else { "off" },
            if auto { "by itself" } else { "by the owner" }
        );
    }

    pub fn set_after_min(&self, m: u32) {
        self.s.after_min.store(m, Relaxed);
    }

    /// `{"on":B,"auto":B,"since":T|null,"after_min":N,"analysed":N,"motions":N,"errors":N}`
    pub fn json(&self) -> String {
        let s = &self.s;
        let since = s.since_utc.load(Relaxed);
        format!(
            "{{\"on\":{},\"auto\":{},\"since\":{},\"after_min\":{},\"analysed\":{},\"motions\":{},\"errors\":{}}}",
            s.on.load(Relaxed),
            s.auto.load(Relaxed),
            if since == 0 { "null".to_string() } else { format!("\"{}\"", crate::clock::Iso(since)) },
            s.after_min.load(Relaxed),
            s.analysed.load(Relaxed),
            s.motions.load(Relaxed),
            s.errors.load(Relaxed)
        )
    }
}

/// The H.264 ring's size for the live slot (as the web side makes it).
#[derive(Clone, Copy)]
pub struct RingSize {
    pub bytes: usize,
    pub frames: usize,
}

/// Starts the parking thread.
pub fn spawn(parking: Parking, live: Arc<LiveSlot>, ring: RingSize, sink: Option<EventSink>, moving: Arc<AtomicBool>) -> Parking {
    let p = parking.clone();
    let r = std::thread::Builder::new().name("parking".into()).spawn(move || run(p, live, ring, sink, moving));
    if let Err(e) = r {
        log::error!("parking: cannot start its thread: {e}; parking mode is not available");
    }
    parking
}

fn run(p: Parking, live: Arc<LiveSlot>, ring: RingSize, sink: Option<EventSink>, moving: Arc<AtomicBool>) {
    let mut m = motion::Motion::new();
    let mut a = Analyser::default();
    let mut last_moving = crate::clock::now_mono_ns();
    let mut last_event = 0u64;
    let mut was_on = false;
    loop {
        std::thread::sleep(Duration::from_millis(ANALYSE_EVERY_MS));
        let now = crate::clock::now_mono_ns();
        let sensor_ok = crate::gsensor::status().state == "ok";
        if moving.load(Relaxed) || !sensor_ok {
            last_moving = now;
        }
        let on = p.is_on();
        if on && moving.load(Relaxed) {
            p.set(false, true);
            continue;
        }
        let after = u64::from(p.s.after_min.load(Relaxed));
        if !on && after > 0 && sensor_ok && now.saturating_sub(last_moving) >= after * 60_000_000_000 {
            p.set(true, true);
        }
        if !p.is_on() {
            was_on = false;
            continue;
        }
        if !was_on {
            m.reset();
            a = Analyser::default();
            was_on = true;
        }
        match a.next_picture(&live, ring, now) {
            Ok(Some((mono, y, w, h))) => {
                p.s.analysed.fetch_add(1, Relaxed);
                if m.push(y, w, h, w) {
                    p.s.motions.fetch_add(1, Relaxed);
                    log::info!("parking: motion ({} blocks changed)", m.last_changed);
                    if now.saturating_sub(last_event) >= MOTION_COOLDOWN_S * 1_000_000_000 || last_event == 0 {
                        last_event = now;
                        if let Some(s) = &sink
                            && let Err(e) = s.trigger(Kind::Motion, mono, None)
                        {
                            log::error!("parking: cannot record the motion event: {e}");
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                if p.s.errors.fetch_add(1, Relaxed) < 3 {
                    log::warn!("parking: a picture could not be analysed: {e}");
                }
            }
        }
    }
}

/// A JPEG's luma at 1/8 scale (libjpeg-turbo uses only the DC coefficients for it) into `out`
/// (grown to fit, then reused); its width and height.
pub fn jpeg_luma_eighth(dec: &mut turbojpeg::Decompressor, jpeg: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), String> {
    dec.set_scaling_factor(turbojpeg::ScalingFactor::ONE_EIGHTH).map_err(|e| e.to_string())?;
    let hd = dec.read_header(jpeg).map_err(|e| e.to_string())?.scaled(turbojpeg::ScalingFactor::ONE_EIGHTH);
    out.resize(hd.width * hd.height, 0);
    let img = turbojpeg::Image { pixels: &mut out[..], width: hd.width, pitch: hd.width, height: hd.height, format: turbojpeg::PixelFormat::GRAY };
    dec.decompress(jpeg, img).map_err(|e| e.to_string())?;
    Ok((hd.width, hd.height))
}

/// A picture's capture time (CLOCK_MONOTONIC), its luma plane, width and height.
type Picture<'a> = (u64, &'a [u8], usize, usize);

/// Gets the newest picture's luma from the live slot (buffers reused).
#[derive(Default)]
struct Analyser {
    buf: Vec<u8>,
    luma: Vec<u8>,
    last: u64,
    jpeg: Option<turbojpeg::Decompressor>,
    h264: Option<crate::codec::encoder::SoftH264Decoder>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl Analyser {
    /// `Ok(None)`: nothing new to look at.
    fn next_picture(&mut self, live: &LiveSlot, ring: RingSize, now: u64) -> Result<Option<Picture<'_>>, String> {
        // Keep the recorder offering pictures for the next few seconds.
        live.want(now);
        match live.codec() {
            Some(Codec::Jpeg) => {
                let Some((seq, meta)) = live.read_latest(&mut self.buf) else { return Ok(None) };
                if seq == self.last {
                    return Ok(None);
                }
                self.last = seq;
                let dec = match &mut self.jpeg {
                    Some(d) => d,
                    None => self.jpeg.insert(turbojpeg::Decompressor::new().map_err(|e| e.to_string())?),
                };
                let (w, h) = jpeg_luma_eighth(dec, &self.buf, &mut self.luma)?;
                Ok(Some((meta.mono_ns, &self.luma[..], w, h)))
            }
            Some(Codec::H264) => {
                let ring = live.h264_ring(ring.bytes, ring.frames);
                let k = ring.latest_key();
                if k == 0 || k == self.last {
                    return Ok(None);
                }
                // `read` never grows the buffer: room for the largest frame, once.
                if self.buf.capacity() < ring.max_frame() {
                    self.buf.reserve(ring.max_frame() - self.buf.len());
                }
                let Some(f) = ring.read(k, &mut self.buf) else { return Ok(None) };
                if !f.key {
                    return Ok(None);
                }
                self.last = k;
                let (_, params) = ring.params();
                let gop = crate::codec::still::Gop { params, samples: vec![std::mem::take(&mut self.buf)] };
                let dec = match &mut self.h264 {
                    Some(d) => d,
                    None => self.h264.insert(crate::codec::encoder::SoftH264Decoder::new().map_err(|e| e.to_string())?),
                };
                let r = crate::codec::still::decode_last(dec, &gop, &mut self.luma, &mut self.u, &mut self.v);
                self.buf = gop.samples.into_iter().next().unwrap_or_default();
                let (w, h) = r?;
                Ok(Some((f.mono_ns, &self.luma[..], w, h)))
            }
            _ => Ok(None),
        }
    }
}
