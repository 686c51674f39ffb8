//! An RTSP camera (`rtsp://[user:pass@]host[:port]/path`): H.264 over RTP, interleaved in the
//! RTSP connection (TCP), stored as the camera sends it (no decoding, no re-encoding).
//!
//! Our own small client, on the camera's recorder thread with blocking std I/O like every other
//! source: `retina` (Moonfire NVR's client) runs on tokio and adds 786 KB to the aarch64
//! binary, which has about 50 KB left under its 5 MiB budget (measured; see the commit).
//!
//! - **Session:** OPTIONS, DESCRIBE (SDP), SETUP of the first H.264 video track with
//!   `RTP/AVP/TCP;interleaved`, PLAY; Basic or Digest authentication when the camera asks
//!   (`rtsp_auth`); OPTIONS as keep-alive at half the session timeout; TEARDOWN on close.
//! - **Refused with a clear message:** H.265 and other codecs (blackbox's store holds H.264),
//!   a stream with B-frames (the export and live view play decode order), wrong credentials.
//! - **Trouble:** no video for `stall_s`, a closed connection or a socket error ends the
//!   session with an error; [`super::reopen::Reopening`] around it reconnects with backoff and
//!   the recorder writes the gap.
//! - **Losses:** RTP sequence gaps; damaged pictures and everything up to the next IDR are left
//!   out and counted (`rtp_h264`), as `driver` losses.
//! - **Time:** each picture's capture time follows its RTP timestamp from an anchor on the
//!   monotonic clock. A session's first second of pictures is held back: servers send their
//!   first pictures in a burst (a GOP cache, a preroll), so the anchor is the earliest one those
//!   arrivals allow, and the burst gets the times its RTP timestamps say, all in the past. Then
//!   the anchor moves back whenever a picture arrives earlier than it predicts (network delay
//!   is taken off) and creeps forward after a slower camera clock. Times strictly increase, at
//!   least 1 ms apart.
//! - The password is never logged or shown: logs and `describe` carry the URL without it.

use super::rtp_h264::{Depacketizer, parse_rtp};
use super::rtsp_auth::{self, Challenge};
use super::rtsp_sdp::{Sdp, join};
use super::rtsp_url::Url;
use super::{Camera, CameraError, Codec, FrameMeta, Losses};
use crate::clock;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Connecting and each request's answer wait at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The read buffer: room for the largest interleaved packet (64 KiB) several times over.
const READ_BUF: usize = 256 * 1024;
/// The largest RTSP response (headers + SDP) read.
const MAX_RESPONSE: usize = 64 * 1024;
/// A session's first pictures are held this long before any is handed out (module docs: a
/// server's burst at connect is placed in time by its RTP timestamps, not squeezed).
const HOLD_NS: u64 = 1_000_000_000;
/// Room for the held pictures (allocated once per session, at connect).
const HOLD_BYTES: usize = 4 << 20;
const HOLD_FRAMES: usize = 256;

/// A picture held at the start of a session: where its bytes are in `held`, and what it is.
#[derive(Clone, Copy, Debug)]
struct Held {
    ext_ts: i64,
    arrival: u64,
    key: bool,
    lost_before: u32,
    at: (usize, usize),
}

/// What [`RtspCamera::open`] needs besides the URL.
#[derive(Clone, Copy, Debug)]
pub struct RtspOptions {
    /// No video for this long is a stall.
    pub stall: Duration,
    /// The frame rate to assume until the stream shows its own.
    pub fps: u32,
    /// The frame size to report until the SPS gives it.
    pub size: (u32, u32),
}

struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub struct RtspCamera {
    url: Url,
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    cseq: u32,
    session: String,
    challenge: Option<Challenge>,
    nonce_count: u32,
    /// The URI of the aggregate session (PLAY, keep-alive, TEARDOWN).
    session_uri: String,
    channel: u8,
    payload_type: u8,
    keepalive: Duration,
    last_keepalive_ns: u64,
    last_video_ns: u64,
    opts: RtspOptions,
    size: (u32, u32),
    fps: u32,
    depack: Depacketizer,
    meta: Option<FrameMeta>,
    /// Capture-time anchor: (RTP timestamp, extended; monotonic ns).
    anchor: Option<(i64, u64)>,
    /// The last RTP timestamp, extended past its 32-bit wraps.
    ext_ts: Option<i64>,
    /// The last capture time handed out (times strictly increase).
    last_mono: u64,
    /// The session's first pictures, held (`HOLD_NS`), then handed out one by one.
    held: Vec<u8>,
    held_frames: Vec<Held>,
    held_next: usize,
    holding: bool,
    /// The picture handed out now lies in `held` (else it is the depacketizer's).
    out_held: Option<(usize, usize)>,
    /// A picture that finished while the hold ended with no room for it: handed out after the
    /// held ones, from the depacketizer.
    tail: Option<Held>,
    codec_string: String,
    /// The request text, built in place (keep-alives don't allocate once warm).
    req: String,
    params: crate::codec::h264::ParamSets,
}

fn bad(msg: impl Into<String>) -> CameraError {
    CameraError::Invalid(msg.into())
}

fn gone(msg: impl Into<String>) -> CameraError {
    CameraError::Disconnected(msg.into())
}

impl RtspCamera {
    /// Connects, negotiates and starts playing. Errors never carry the password (nor the URL:
    /// the caller names the camera).
    pub fn open(source: &str, opts: RtspOptions) -> Result<RtspCamera, CameraError> {
        let url = Url::parse(source).map_err(bad)?;
        let bare = url.bare();
        let addr = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|e| gone(format!("cannot resolve {}: {e}", url.host)))?
            .next()
            .ok_or_else(|| gone(format!("{} has no address", url.host)))?;
        let stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).map_err(|e| gone(format!("cannot connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        stream.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(CameraError::Io)?;
        let mut cam = RtspCamera {
            session_uri: bare.clone(),
            url,
            stream,
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
            cseq: 0,
            session: String::new(),
            challenge: None,
            nonce_count: 0,
            channel: 0,
            payload_type: 96,
            keepalive: Duration::from_secs(30),
            last_keepalive_ns: clock::now_mono_ns(),
            last_video_ns: clock::now_mono_ns(),
            opts,
            size: opts.size,
            fps: opts.fps.max(1),
            depack: Depacketizer::new(),
            meta: None,
            anchor: None,
            ext_ts: None,
            last_mono: 0,
            held: Vec::with_capacity(HOLD_BYTES),
            held_frames: Vec::with_capacity(HOLD_FRAMES),
            held_next: 0,
            holding: true,
            out_held: None,
            tail: None,
            codec_string: String::new(),
            req: String::with_capacity(1024),
            params: crate::codec::h264::ParamSets::default(),
        };
        cam.negotiate()?;
        Ok(cam)
    }

    fn negotiate(&mut self) -> Result<(), CameraError> {
        let base = self.url.bare();
        let r = self.request("DESCRIBE", &base, "Accept: application/sdp\r\n")?;
        let sdp = String::from_utf8_lossy(&r.body).into_owned();
        let content_base = r.header("Content-Base").or(r.header("Content-Location")).map(str::to_string).unwrap_or(base.clone());
        let track = Sdp::parse(&sdp)?;
        self.payload_type = track.payload_type;
        if let Some(f) = track.framerate {
            self.fps = f;
        }
        for p in &track.params {
            self.depack.set_param(p);
            let _ = self.params.update(p);
        }
        if let Some(sps) = self.params.parsed() {
            self.size = (sps.width, sps.height);
            self.codec_string = sps.rfc6381().to_string();
        }
        self.session_uri = match &track.session_control {
            Some(c) if c != "*" => join(&content_base, c),
            _ => content_base.clone(),
        };
        let track_uri = match &track.control {
            Some(c) if c != "*" => join(&content_base, c),
            _ => content_base.clone(),
        };
        let r = self.request("SETUP", &track_uri, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")?;
        let transport = r.header("Transport").unwrap_or("");
        if !transport.to_ascii_uppercase().contains("TCP") {
            return Err(bad(format!("the camera offered {transport:?} instead of RTP over the RTSP connection (TCP)")));
        }
        if let Some(ch) = transport.split(';').find_map(|p| p.trim().strip_prefix("interleaved=")) {
            self.channel = ch.split('-').next().and_then(|c| c.parse().ok()).unwrap_or(0);
        }
        let session = r.header("Session").ok_or_else(|| bad("the camera's SETUP answer has no Session"))?;
        let mut parts = session.split(';');
        self.session = parts.next().unwrap_or("").trim().to_string();
        if let Some(t) = parts.find_map(|p| p.trim().strip_prefix("timeout=")).and_then(|t| t.trim().parse::<u64>().ok()) {
            self.keepalive = Duration::from_secs((t / 2).clamp(5, 60));
        }
        let uri = self.session_uri.clone();
        self.request("PLAY", &uri, "Range: npt=0.000-\r\n")?;
        self.last_video_ns = clock::now_mono_ns();
        self.last_keepalive_ns = self.last_video_ns;
        Ok(())
    }

    fn write_request(&mut self, method: &str, uri: &str, extra: &str) -> Result<(), CameraError> {
        use std::fmt::Write as _;
        self.cseq += 1;
        self.req.clear();
        let _ = write!(self.req, "{method} {uri} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: blackbox\r\n{extra}", self.cseq);
        if !self.session.is_empty() {
            let _ = write!(self.req, "Session: {}\r\n", self.session);
        }
        if let (Some(c), Some((user, pass))) = (&self.challenge, self.url.credentials()) {
            self.nonce_count += 1;
            let a = rtsp_auth::authorization(c, &user, &pass, method, uri, self.nonce_count);
            let _ = write!(self.req, "Authorization: {a}\r\n");
        }
        self.req.push_str("\r\n");
        self.stream.write_all(self.req.as_bytes()).map_err(|e| gone(format!("sending {method}: {e}")))
    }

    /// Sends a request and waits for its answer (answering an authentication challenge once).
    fn request(&mut self, method: &str, uri: &str, extra: &str) -> Result<Response, CameraError> {
        for attempt in 0..2 {
            self.write_request(method, uri, extra)?;
            let r = self.read_response(method)?;
            if r.status == 401 && attempt == 0 {
                let Some((_, _)) = self.url.credentials() else {
                    return Err(bad("the camera asks for a user name and password: put them in the source (rtsp://user:password@host/path)"));
                };
                let c = rtsp_auth::choose(r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("WWW-Authenticate")).map(|(_, v)| v.as_str()))
                    .ok_or_else(|| bad("the camera asks for an authentication scheme blackbox doesn't speak (it speaks Basic and Digest MD5)"))?;
                self.challenge = Some(c);
                self.nonce_count = 0;
                continue;
            }
            return match r.status {
                200..=299 => Ok(r),
                401 => Err(bad("the camera refused the user name and password (401 Unauthorized)")),
                s => Err(bad(format!("{method} answered {s} {}", r.reason))),
            };
        }
        Err(bad("the camera refused the user name and password (401 Unauthorized)"))
    }

    /// Fills the buffer with more bytes; `Ok(false)` on a read timeout.
    fn fill(&mut self, timeout: Duration) -> Result<bool, CameraError> {
        if self.start > 0 && (self.start == self.end || self.end + 70_000 > self.buf.len()) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(gone("the camera sent something too large to read"));
        }
        self.stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).map_err(CameraError::Io)?;
        match self.stream.read(&mut self.buf[self.end..]) {
            Ok(0) => Err(gone("the camera closed the connection")),
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(CameraError::Io(e)),
            Err(e) => Err(gone(format!("reading: {e}"))),
        }
    }

    /// Reads until a whole RTSP response is buffered and parses it; interleaved packets
    /// before it are skipped.
    fn read_response(&mut self, method: &str) -> Result<Response, CameraError> {
        let t0 = clock::now_mono_ns();
        loop {
            if let Some(r) = self.parse_response()? {
                return Ok(r);
            }
            let waited = Duration::from_nanos(clock::now_mono_ns().saturating_sub(t0));
            if waited >= REQUEST_TIMEOUT {
                return Err(gone(format!("no answer to {method} within {} s", REQUEST_TIMEOUT.as_secs())));
            }
            self.fill(REQUEST_TIMEOUT - waited)?;
        }
    }

    /// A complete response at the front of the buffer, if there is one.
    fn parse_response(&mut self) -> Result<Option<Response>, CameraError> {
        loop {
            let data = &self.buf[self.start..self.end];
            if data.first() == Some(&b'$') {
                if data.len() < 4 {
                    return Ok(None);
                }
                let len = 4 + usize::from(u16::from_be_bytes([data[2], data[3]]));
                if data.len() < len {
                    return Ok(None);
                }
                self.start += len;
                continue;
            }
            let Some(head_end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                if data.len() > MAX_RESPONSE {
                    return Err(gone("the camera's answer is too large"));
                }
                return Ok(None);
            };
            let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            let mut it = status_line.splitn(3, ' ');
            let (proto, code, reason) = (it.next().unwrap_or(""), it.next().unwrap_or(""), it.next().unwrap_or(""));
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                .collect();
            let clen = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(0);
            if clen > MAX_RESPONSE {
                return Err(gone("the camera's answer is too large"));
            }
            let total = head_end + 4 + clen;
            if data.len() < total {
                return Ok(None);
            }
            let body = data[head_end + 4..total].to_vec();
            self.start += total;
            if !proto.starts_with("RTSP/") {
                // A request from the server (e.g. a keep-alive of its own): not ours to answer.
                continue;
            }
            let status = code.parse().map_err(|_| gone(format!("a garbled answer: {:?}", status_line.chars().take(60).collect::<String>())))?;
            return Ok(Some(Response { status, reason: reason.to_string(), headers, body }));
        }
    }

    /// `ts` extended past its 32-bit wraps.
    fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.ext_ts {
            None => i64::from(ts),
            Some(prev) => prev + i64::from(ts.wrapping_sub(prev as u32) as i32),
        };
        self.ext_ts = Some(ext);
        ext
    }

    /// The capture time of a picture with (extended) RTP timestamp `ext` that arrived at `now`.
    fn capture_mono(&mut self, ext: i64, now: u64) -> u64 {
        let predict = |(ats, amono): (i64, u64)| amono as i64 + (ext - ats) * 1_000_000_000 / 90_000;
        match self.anchor {
            Some(a) if (now as i64 - predict(a)).abs() < 2_000_000_000 && predict(a) <= now as i64 => {
                // Predicted before its arrival, as it must be. The anchor creeps forward by
                // 1/512 of the delay, so a camera clock slower than ours is followed without
                // jumps (a faster one moves the anchor back at once, in the arm below).
                let p = predict(a);
                self.anchor = Some((a.0, a.1 + ((now as i64 - p) / 512) as u64));
                p as u64
            }
            Some(a) if predict(a) > now as i64 && predict(a) - (now as i64) < 2_000_000_000 => {
                // Earlier than predicted: less network delay now; move the anchor back.
                self.anchor = Some((ext, now));
                now
            }
            _ => {
                self.anchor = Some((ext, now));
                now
            }
        }
    }

    fn keepalive_if_due(&mut self, now: u64) -> Result<(), CameraError> {
        if now.saturating_sub(self.last_keepalive_ns) < self.keepalive.as_nanos() as u64 {
            return Ok(());
        }
        self.last_keepalive_ns = now;
        // The answer arrives among the packets and is skipped there.
        let uri = std::mem::take(&mut self.session_uri);
        let r = self.write_request("OPTIONS", &uri, "");
        self.session_uri = uri;
        r
    }

    /// Ends the hold: the anchor is the earliest the held arrivals allow (every held picture
    /// then has a time at or before its arrival, spaced as its RTP timestamps say).
    fn end_hold(&mut self) {
        self.holding = false;
        self.held_next = 0;
        let Some(first) = self.held_frames.first().copied() else { return };
        let mono0 = self
            .held_frames
            .iter()
            .chain(self.tail.iter())
            .map(|h| h.arrival as i64 - (h.ext_ts - first.ext_ts) * 1_000_000_000 / 90_000)
            .min()
            .unwrap_or(first.arrival as i64);
        self.anchor = Some((first.ext_ts, mono0.max(0) as u64));
    }

    /// Hands out a picture with capture time `mono` (strictly after the last one).
    fn hand_out(&mut self, h: Held, mono: u64, now: u64) {
        let mono = mono.max(self.last_mono + 1_000_000);
        self.last_mono = mono;
        let age = now.saturating_sub(mono);
        self.meta = Some(FrameMeta {
            mono_ns: mono,
            utc_ns: clock::now_utc_ns().saturating_sub(age as i64),
            codec: Codec::H264,
            key: h.key,
            lost_before: h.lost_before,
        });
    }

    /// The next held picture (or the tail after them), if the hold is over and any is left.
    fn next_held(&mut self) -> bool {
        if self.holding {
            return false;
        }
        let now = clock::now_mono_ns();
        let Some((ats, amono)) = self.anchor else { return false };
        let at = |e: i64| (amono as i64 + (e - ats) * 1_000_000_000 / 90_000).max(0) as u64;
        if let Some(h) = self.held_frames.get(self.held_next).copied() {
            self.held_next += 1;
            self.out_held = Some(h.at);
            self.hand_out(h, at(h.ext_ts), now);
            return true;
        }
        if !self.held_frames.is_empty() {
            self.held_frames.clear();
            self.held.clear();
            self.out_held = None;
        }
        if let Some(h) = self.tail.take() {
            self.hand_out(h, at(h.ext_ts), now);
            return true;
        }
        false
    }

    /// The next picture: reads packets until the depacketizer finishes one.
    pub fn advance(&mut self) -> Result<(), CameraError> {
        self.out_held = None;
        if self.next_held() {
            return Ok(());
        }
        loop {
            if self.holding
                && let Some(first) = self.held_frames.first()
                && clock::now_mono_ns().saturating_sub(first.arrival) >= HOLD_NS
            {
                self.end_hold();
                if self.next_held() {
                    return Ok(());
                }
            }
            let now = clock::now_mono_ns();
            self.keepalive_if_due(now)?;
            let stall = self.opts.stall.as_nanos() as u64;
            if now.saturating_sub(self.last_video_ns) > stall {
                return Err(gone(format!("no video for {} s", self.opts.stall.as_secs())));
            }
            let data = &self.buf[self.start..self.end];
            if data.len() >= 4 && data[0] == b'$' {
                let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
                if data.len() < 4 + len {
                    self.fill(Duration::from_millis(200))?;
                    continue;
                }
                let ch = data[1];
                let pkt_start = self.start + 4;
                self.start += 4 + len;
                if ch != self.channel {
                    continue; // RTCP
                }
                let Some((h, payload)) = parse_rtp(&self.buf[pkt_start..pkt_start + len]) else { continue };
                if h.payload_type != self.payload_type {
                    continue;
                }
                self.last_video_ns = now;
                if let Some(r) = self.depack.push(&h, payload) {
                    let frame = self.depack.frame();
                    match crate::codec::h264::inspect(frame, &mut self.params) {
                        Err(crate::codec::h264::AuError::BFrames) => {
                            return Err(bad("the camera sends B-frames; set its H.264 profile to Baseline (or turn B-frames off) so blackbox can store it"));
                        }
                        Err(crate::codec::h264::AuError::BadParamSet) => return Err(bad("the camera sent a parameter set blackbox can't read")),
                        Err(_) => continue,
                        Ok(i) => {
                            if i.params_changed
                                && let Some(sps) = self.params.parsed()
                            {
                                self.size = (sps.width, sps.height);
                                self.codec_string = sps.rfc6381().to_string();
                            }
                        }
                    }
                    if let Some(step) = self.depack.step() {
                        self.fps = ((90_000 + step / 2) / step.max(1)).clamp(1, 240);
                    }
                    let ext = self.extend(r.timestamp);
                    let mut h = Held { ext_ts: ext, arrival: now, key: r.idr, lost_before: r.lost_before, at: (0, 0) };
                    if self.holding {
                        let frame = self.depack.frame();
                        if self.held.len() + frame.len() <= self.held.capacity() && self.held_frames.len() < HOLD_FRAMES {
                            h.at = (self.held.len(), self.held.len() + frame.len());
                            self.held.extend_from_slice(frame);
                            self.held_frames.push(h);
                            continue;
                        }
                        // No room to hold more: this one follows the held ones.
                        self.tail = Some(h);
                        self.end_hold();
                        if self.next_held() {
                            return Ok(());
                        }
                        continue;
                    }
                    let mono = self.capture_mono(ext, now);
                    self.hand_out(h, mono, now);
                    return Ok(());
                }
                continue;
            }
            if data.len() >= 4 && data[0] != b'$' {
                // An RTSP answer (to a keep-alive) or a request among the packets.
                let text = data.starts_with(b"RTSP/") || data[..4].iter().all(|&b| b.is_ascii_uppercase() || b == b'_');
                match self.parse_response()? {
                    Some(_) => continue,
                    None if text => {
                        self.fill(Duration::from_millis(200))?;
                        continue;
                    }
                    None => {
                        // Not a packet, not text: skip to the next '$'.
                        let data = &self.buf[self.start..self.end];
                        let skip = data[1..].iter().position(|&b| b == b'$').map_or(data.len(), |p| p + 1);
                        self.start += skip;
                        continue;
                    }
                }
            }
            let left = stall.saturating_sub(clock::now_mono_ns().saturating_sub(self.last_video_ns));
            self.fill(Duration::from_nanos(left).min(Duration::from_millis(500)))?;
        }
    }

    pub fn current(&self) -> Option<(FrameMeta, &[u8])> {
        let frame = match self.out_held {
            Some((a, b)) => &self.held[a..b],
            None => self.depack.frame(),
        };
        self.meta.map(|m| (m, frame))
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        let _ = self.stream.set_write_timeout(Some(Duration::from_millis(500)));
        let uri = std::mem::take(&mut self.session_uri);
        let _ = self.write_request("TEARDOWN", &uri, "");
    }
}

impl Camera for RtspCamera {
    fn describe(&self) -> String {
        format!(
            "RTSP {}: H.264 {} {}x{} @ {} fps, RTP over TCP, stored as sent",
            self.url.bare(),
            if self.codec_string.is_empty() { "(profile not seen yet)" } else { &self.codec_string },
            self.size.0,
            self.size.1,
            self.fps
        )
    }
    fn fps(&self) -> u32 {
        self.fps
    }
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
        self.advance()?;
        self.current().ok_or(CameraError::Timeout)
    }
    fn losses(&self) -> Losses {
        Losses { driver: self.depack.lost, ..Losses::default() }
    }
    fn delivers(&self) -> Codec {
        Codec::H264
    }
}

impl super::reopen::TwoStep for RtspCamera {
    fn advance(&mut self) -> Result<(), CameraError> {
        RtspCamera::advance(self)
    }
    fn current(&self) -> Option<(FrameMeta, &[u8])> {
        RtspCamera::current(self)
    }
}
